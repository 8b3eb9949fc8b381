"""The version of the ``/ws/v1/workers`` protocol and how two versions are compared.

A version is ``"MAJOR.MINOR"``. A minor release only adds what an older peer may ignore
(optional fields, keys kept as ``extra``), so two versions are compatible when their majors
are equal. The server announces its version in ``connection_established.protocol_version``;
a server that sends none (juniper-cascor 0.12 and earlier) speaks :data:`LEGACY_PROTOCOL_VERSION`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

__all__ = [
    "LEGACY_PROTOCOL_VERSION",
    "PROTOCOL_VERSION",
    "SUPPORTED_PROTOCOL_VERSIONS",
    "is_compatible",
    "parse_protocol_version",
]

PROTOCOL_VERSION: Final = "1.0"
"""The version this package speaks."""
LEGACY_PROTOCOL_VERSION: Final = "1.0"
"""The version of a server whose ``connection_established`` names none."""
SUPPORTED_PROTOCOL_VERSIONS: Final = (PROTOCOL_VERSION,)
"""The versions a worker session accepts by default."""

_VERSION = re.compile(r"(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})")


def parse_protocol_version(text: str) -> tuple[int, int] | None:
    """``(major, minor)`` of ``text``, or None when it is not ``MAJOR.MINOR`` (each 0-9999)."""
    match = _VERSION.fullmatch(text) if len(text) <= 9 else None
    if match is None:
        return None
    return int(match[1]), int(match[2])


def is_compatible(announced: str, supported: Iterable[str]) -> bool:
    """Whether a peer announcing ``announced`` can be spoken to by one supporting ``supported``."""
    theirs = parse_protocol_version(announced)
    if theirs is None:
        return False
    ours = (parse_protocol_version(version) for version in supported)
    return any(version is not None and version[0] == theirs[0] for version in ours)
