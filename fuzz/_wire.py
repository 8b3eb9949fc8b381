"""How a fuzz input becomes a conversation, and how results are compared.

A session target reads its input as a sequence of records, each one WebSocket message or a
pause: ``[control: u8][length: u16 little-endian][payload]``. The control byte's low two bits
say what the record is (:class:`Kind`); its upper six bits advance the clock by that many half
seconds before the record is handled. A record cut short by the end of the input takes what is
left. Text payloads are decoded as UTF-8 with replacement, as a WebSocket text frame is always
valid UTF-8.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

__all__ = ["Kind", "Record", "decode_records", "encode_records", "json_equal", "loads_or_none"]

_HEADER = struct.Struct("<BH")
_SECONDS_PER_STEP = 0.5


class Kind(IntEnum):
    TEXT = 0
    BINARY = 1
    PAUSE = 2  # no message: the timers run (tick / expire)
    CONTROL = 3  # a target-specific action (e.g. a command issued, a close)


@dataclass(frozen=True, slots=True)
class Record:
    kind: Kind
    advance: float
    payload: bytes

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8", "replace")


def decode_records(data: bytes, limit: int = 64) -> Iterator[Record]:
    """The records of ``data``, at most ``limit`` of them."""
    offset = 0
    for _ in range(limit):
        if offset + _HEADER.size > len(data):
            return
        control, length = _HEADER.unpack_from(data, offset)
        offset += _HEADER.size
        payload = data[offset : offset + length]
        offset += length
        yield Record(Kind(control & 0b11), (control >> 2) * _SECONDS_PER_STEP, payload)


def encode_records(records: Sequence[tuple[Kind, float, str | bytes]]) -> bytes:
    """The input that :func:`decode_records` reads back as ``records`` (for the seed corpus)."""
    out = bytearray()
    for kind, advance, payload in records:
        raw = payload.encode("utf-8") if isinstance(payload, str) else payload
        steps = min(round(advance / _SECONDS_PER_STEP), 63)
        out += _HEADER.pack((steps << 2) | kind, len(raw)) + raw
    return bytes(out)


def loads_or_none(raw: str | bytes) -> tuple[bool, Any]:
    """``(True, json.loads(raw))``, or ``(False, None)`` when the standard parser refuses it."""
    try:
        return True, json.loads(raw)
    except (ValueError, RecursionError):
        return False, None


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and value != value


def json_equal(left: object, right: object) -> bool:
    """Equality of decoded JSON values where NaN equals NaN and ``true`` is not ``1``.

    Iterative, not recursive: a peer's JSON may nest as deep as the parser allows.
    """
    pending = [(left, right)]
    while pending:
        one, other = pending.pop()
        if isinstance(one, bool) or isinstance(other, bool):
            if type(one) is not type(other) or one != other:
                return False
        elif isinstance(one, dict) and isinstance(other, dict):
            if one.keys() != other.keys():
                return False
            pending += [(one[key], other[key]) for key in one]
        elif isinstance(one, list | tuple) and isinstance(other, list | tuple):
            if len(one) != len(other):
                return False
            pending += zip(one, other, strict=True)
        elif isinstance(one, int | float) and isinstance(other, int | float):
            both_nan = _is_nan(one) and _is_nan(other)
            if not (one == other or both_nan):
                return False
        elif type(one) is not type(other) or one != other:
            return False
    return True
