"""Build hooks of the command-line tool's distribution.

- Depend on the meta-package at exactly this distribution's version (read from the shared VERSION
  file), plus the libraries only the tool needs.
- Keep the repository's ``.gitignore`` out of the sdist: hatchling copies the nearest one into
  every sdist, whatever ``exclude`` says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.config import BuilderConfig
from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from hatchling.metadata.plugin.interface import MetadataHookInterface

# Only the tool needs these; no library install pulls them in.
TOOL_DEPENDENCIES = ["websockets>=13", "rich>=13"]


class PinMetaPackageHook(MetadataHookInterface):
    def update(self, metadata: dict[str, Any]) -> None:
        version = (Path(self.root) / ".." / ".." / "VERSION").read_text(encoding="utf-8").strip()
        metadata["dependencies"] = [f"juniper-cascor-protocol=={version}", *TOOL_DEPENDENCIES]


class SdistWithoutGitignoreHook(BuildHookInterface[BuilderConfig]):
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        forced = build_data["force_include"]
        for source in [source for source, target in forced.items() if target == ".gitignore"]:
            del forced[source]
