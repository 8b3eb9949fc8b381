"""The version of the ``/ws/training`` and ``/ws/control`` protocol and how two are compared.

The rule is the one of every endpoint (the worker distribution applies it to
``/ws/v1/workers``): a version is ``"MAJOR.MINOR"``, each part 0-9999 without leading zeros. A
minor release only adds what an older peer may ignore (optional fields, new frame types, which
every reader already tolerates), so two versions are compatible when their majors are equal. The
server announces its version in ``connection_established.protocol_version``; a client supporting
a set of versions accepts any minor of their majors, and reports any other announcement, or one
it cannot parse, at connect time instead of failing later on a frame it cannot read. A server
that announces no version (juniper-cascor before this protocol had versions) is read as
compatible.
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
"""The versions a client session accepts by default: any ``0.x``."""
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
