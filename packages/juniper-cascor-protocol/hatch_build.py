"""Build hooks of the meta-package.

- Pin the envelope and worker distributions, and the ``cli`` extra (the command-line tool's
  distribution), to the meta-package's own version, read from the shared VERSION file.
- Put the upgrade guard (``upgrade_guard/``) into real wheels, not editable ones: a ``.pth`` file
  naming ``_juniper_cascor_protocol_upgrade_guard/``, which holds a ``juniper_cascor_protocol``
  that is imported only when pip's in-place upgrade from 0.1/0.2 deleted the real one.
- Keep the repository's ``.gitignore`` out of the sdist: hatchling copies the nearest one into
  every sdist, whatever ``exclude`` says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.config import BuilderConfig
from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from hatchling.metadata.plugin.interface import MetadataHookInterface

SIBLINGS = ("juniper-cascor-protocol-envelope", "juniper-cascor-protocol-worker")
TOOL = "juniper-cascor-protocol-cli"
GUARD_PTH = "juniper_cascor_protocol_upgrade_guard.pth"
GUARD_FOLDER = "_juniper_cascor_protocol_upgrade_guard"


class PinSiblingsHook(MetadataHookInterface):
    def update(self, metadata: dict[str, Any]) -> None:
        version = (Path(self.root) / ".." / ".." / "VERSION").read_text(encoding="utf-8").strip()
        metadata["dependencies"] = [f"{name}=={version}" for name in SIBLINGS]
        metadata["optional-dependencies"] = {"cli": [f"{TOOL}=={version}"]}


class MetaBuildHook(BuildHookInterface[BuilderConfig]):
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        forced = build_data["force_include"]
        if self.target_name == "sdist":
            for source in [source for source, target in forced.items() if target == ".gitignore"]:
                del forced[source]
        # An editable install has no 0.1/0.2 files to lose, and its own .pth folders.
        if self.target_name != "wheel" or version == "editable":
            return
        guard = Path(self.root) / "upgrade_guard"
        forced[str(guard / GUARD_PTH)] = GUARD_PTH
        forced[str(guard / "juniper_cascor_protocol" / "__init__.py")] = (
            f"{GUARD_FOLDER}/juniper_cascor_protocol/__init__.py"
        )
