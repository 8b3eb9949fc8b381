"""The version of the ``/ws/v1/workers`` protocol and how two versions are compared.

The rule of every endpoint (``docs/protocol.md#versioning``): a version is ``"MAJOR.MINOR"``,
each part 0-9999 without leading zeros, the first two numbers of the release that defines it.
A minor release only adds what an older peer may ignore, so two versions are compatible when
their majors are equal. The server announces its version in
``connection_established.protocol_version``; a server that announces none (juniper-cascor
before the protocol had versions) is read as compatible.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final, cast

__all__ = [
    "PROTOCOL_VERSION",
    "SUPPORTED_PROTOCOL_VERSIONS",
    "is_compatible",
    "parse_protocol_version",
]

PROTOCOL_VERSION: Final = "0.3"
"""The version this package speaks."""
SUPPORTED_PROTOCOL_VERSIONS: Final = (PROTOCOL_VERSION,)
"""The versions a worker session accepts by default: any ``0.x``."""
_MAX_VERSION_CHARS: Final = len("9999.9999")
_VERSION: Final = re.compile(r"(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})")

# The code below is the same in both distributions' protocol_version.py (neither may import the
# other); tests-integration/test_shared_json_rules.py holds them to one table of verdicts.


def parse_protocol_version(text: object) -> tuple[int, int] | None:
    """``(major, minor)`` of ``text``, or ``None`` unless it is a string ``MAJOR.MINOR``.

    Never raises, whatever ``text`` is (it comes from a peer); a ``str`` subclass is read by
    value, as every JSON string is.
    """
    if not issubclass(type(text), str):
        return None
    value = str.__str__(cast(str, text))
    if len(value) > _MAX_VERSION_CHARS:
        return None
    match = _VERSION.fullmatch(value)
    if match is None:
        return None
    return int(match[1]), int(match[2])


def is_compatible(announced: object, supported: Iterable[str]) -> bool:
    """Whether a peer announcing ``announced`` is read by one supporting ``supported``."""
    theirs = parse_protocol_version(announced)
    if theirs is None:
        return False
    ours = (parse_protocol_version(version) for version in supported)
    return any(version is not None and version[0] == theirs[0] for version in ours)
