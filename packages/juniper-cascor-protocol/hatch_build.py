"""Pin the meta-package's dependencies to its own version, read from the shared VERSION file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.metadata.plugin.interface import MetadataHookInterface

SIBLINGS = ("juniper-cascor-protocol-envelope", "juniper-cascor-protocol-worker")


class PinSiblingsHook(MetadataHookInterface):
    def update(self, metadata: dict[str, Any]) -> None:
        version = (Path(self.root) / ".." / ".." / "VERSION").read_text(encoding="utf-8").strip()
        metadata["dependencies"] = [f"{name}=={version}" for name in SIBLINGS]
