"""Build hook: keep the repository's ``.gitignore`` out of the source distribution.

hatchling copies the nearest ``.gitignore`` into every sdist, whatever ``exclude`` says.
"""

from __future__ import annotations

from typing import Any

from hatchling.builders.config import BuilderConfig
from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class SdistWithoutGitignoreHook(BuildHookInterface[BuilderConfig]):
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        forced = build_data["force_include"]
        for source in [source for source, target in forced.items() if target == ".gitignore"]:
            del forced[source]
