"""What every session reports about a received message before its own rules apply.

The sessions of ``/ws/training`` and ``/ws/control`` share these outcomes:

* :class:`ProtocolViolation`: the message was not read at all, because it was a binary frame
  (both endpoints carry JSON text frames only) or longer than the session's ``max_frame_bytes``;
* :class:`PingReceived`: the server's application heartbeat ``{"type": "ping", ...}``, which the
  juniper-cascor server sends on both endpoints and which a client answers with
  :data:`PONG_TEXT` (``reply``) or gets disconnected;
* :class:`Established` or :class:`IncompatibleVersion`: the server's ``connection_established``
  (the first frame on both endpoints), with the protocol version it announces checked against
  the versions the client supports (see :mod:`.protocol_version`);
* :class:`UnknownFrame`: a frame that is not one the session expects (an unknown ``type``, a
  known one whose payload is invalid, text that is not a JSON object, or a known frame of the
  other endpoint), kept as its envelope so nothing the peer sent is lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from pydantic_core import from_json

from juniper_cascor_protocol.envelope.base import BaseEnvelope, UnknownEnvelope
from juniper_cascor_protocol.envelope.control import ConnectionEstablishedEnvelope
from juniper_cascor_protocol.envelope.labels import UNMATCHED_TYPE_LABEL, LabelBudget
from juniper_cascor_protocol.envelope.protocol_version import (
    is_compatible,
    parse_protocol_version,
)
from juniper_cascor_protocol.envelope.validate import validate_envelope_json

__all__ = [
    "PING_TYPE",
    "PONG_TEXT",
    "PONG_TYPE",
    "Established",
    "FrameRefused",
    "IncompatibleVersion",
    "PingReceived",
    "ProtocolViolation",
    "Refusal",
    "UnknownFrame",
]

PING_TYPE: Final = "ping"
PONG_TYPE: Final = "pong"
PONG_TEXT: Final = '{"type":"pong"}'
"""The answer to a server's ``ping``, as the juniper-cascor clients send it."""

_REPORTED_VERSION_CHARS: Final = 64
# A UTF-8 character takes at most 4 bytes: a shorter string cannot exceed a byte limit.
_MAX_UTF8_BYTES_PER_CHAR: Final = 4


class Refusal(StrEnum):
    """Why a received message was not read: the ``label`` of its :class:`ProtocolViolation`."""

    BINARY_FRAME = "binary_frame"
    """The endpoint carries JSON text frames only."""
    OVERSIZED = "oversized"
    """A text frame longer than the session's ``max_frame_bytes`` (UTF-8 bytes)."""


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """The peer broke a rule: a received message that was not read.

    The worker sessions report the same event, with the same fields.
    """

    label: str
    """A :class:`Refusal`: a fixed set, safe to use as a metric label."""
    reason: str
    """What was wrong, for people: the limit broken."""
    close_code: int | None = None
    """None: these sessions go on; the shell may still close the connection."""

    @property
    def detail(self) -> str:
        """The first name of :attr:`reason`, kept as an alias."""
        return self.reason


FrameRefused = ProtocolViolation
"""The first name of :class:`ProtocolViolation`, kept as an alias. Its first field, then named
``reason``, is now ``label``; ``reason`` is the text, then named ``detail``."""


@dataclass(frozen=True, slots=True)
class PingReceived:
    """The server's heartbeat: send ``reply`` back to stay connected."""

    reply: str = PONG_TEXT


@dataclass(frozen=True, slots=True)
class UnknownFrame:
    """A frame the session does not expect, usually an :class:`UnknownEnvelope`.

    ``envelope.type`` is a known name or a bounded label, safe to count by (see :mod:`.labels`).
    """

    envelope: BaseEnvelope
    reassembled: bool = False
    """Whether it was rebuilt from ``chunked_message`` frames."""


@dataclass(frozen=True, slots=True)
class Established:
    """The server's ``connection_established``, with a protocol version this client reads.

    ``protocol_version`` is ``None`` when the server announced none (one older than 0.3).
    """

    server_version: str | None
    protocol_version: str | None


@dataclass(frozen=True, slots=True)
class IncompatibleVersion:
    """The server announced a protocol version this client cannot read."""

    announced: str
    """The server's protocol version as sent (cut to 64 characters; a non-string is shown as
    ``<type>``)."""
    supported: tuple[str, ...]
    """The versions this client supports (any minor of their majors)."""
    server_version: str | None = None
    """The server software's version, from ``connection_established``."""


def greeting_outcome(
    envelope: BaseEnvelope, supported: tuple[str, ...]
) -> Established | IncompatibleVersion | None:
    """What a ``connection_established`` means for a client supporting ``supported``.

    ``None`` for any other frame. An invalid greeting is still read (juniper-cascor's own
    carries no ``timestamp``): whatever its ``data`` says about the versions.
    """
    if isinstance(envelope, ConnectionEstablishedEnvelope):
        server: object = envelope.data.server_version
        announced: object = envelope.data.protocol_version
    elif isinstance(envelope, UnknownEnvelope) and envelope.type == "connection_established":
        server = envelope.data.get("server_version")
        announced = envelope.data.get("protocol_version")
    else:
        return None
    server_version = server if isinstance(server, str) else None
    if announced is None:
        return Established(server_version, None)
    if isinstance(announced, str) and is_compatible(announced, supported):
        return Established(server_version, announced)
    shown = announced if isinstance(announced, str) else f"<{type(announced).__name__}>"
    return IncompatibleVersion(shown[:_REPORTED_VERSION_CHARS], supported, server_version)


def checked_versions(versions: Iterable[str]) -> tuple[str, ...]:
    """``versions`` as a tuple; raises ``ValueError`` unless each is ``MAJOR.MINOR``."""
    checked = tuple(versions)
    if not checked or any(parse_protocol_version(version) is None for version in checked):
        raise ValueError(f"supported_versions must be MAJOR.MINOR strings, got {checked!r}")
    return checked


def text_or_refusal(
    message: object, max_frame_bytes: int, limit_name: str = "max_frame_bytes"
) -> str | ProtocolViolation:
    """``message`` (one received WebSocket message) as text to read, or why it is not read.

    ``limit_name`` names ``max_frame_bytes`` in the refusal's ``detail``.
    """
    if not isinstance(message, str):
        return ProtocolViolation(
            Refusal.BINARY_FRAME, f"a {type(message).__name__} message; only text frames are read"
        )
    if len(message) * _MAX_UTF8_BYTES_PER_CHAR <= max_frame_bytes:
        return message  # cannot exceed the limit: skip counting the bytes
    size = len(message) if len(message) > max_frame_bytes else _utf8_size(message)
    if size <= max_frame_bytes:
        return message
    return ProtocolViolation(
        Refusal.OVERSIZED,
        f"text frame of at least {size} bytes exceeds {limit_name}={max_frame_bytes}",
    )


def _utf8_size(text: str) -> int:
    # ``surrogatepass``: a str from a lenient decoder may hold lone surrogates; never raise on it.
    return len(text.encode("utf-8", "surrogatepass"))


def decode_frame(text: str, labels: LabelBudget) -> BaseEnvelope:
    """The envelope of one received text frame, unknown types labelled from ``labels``.

    The one place where sessions validate what they receive; never raises.
    """
    return validate_envelope_json(text, labels=labels)


def is_ping(envelope: BaseEnvelope, text: str) -> bool:
    """Whether ``envelope``, read from ``text``, is the server's heartbeat (``type`` ``ping``)."""
    if not isinstance(envelope, UnknownEnvelope):
        return False
    if envelope.type == PING_TYPE:
        return True
    # Once the label budget is spent every new label reads "_unmatched", "ping" included; a
    # missed heartbeat would get the client disconnected, so read the type itself.
    return envelope.type == UNMATCHED_TYPE_LABEL and _raw_type(text) == PING_TYPE


def _raw_type(text: str) -> object:
    try:
        frame = from_json(text)
    except (ValueError, TypeError):  # TypeError: a str with lone surrogates
        return None
    return frame.get("type") if isinstance(frame, dict) else None


def check_max_frame_bytes(max_frame_bytes: int) -> int:
    """``max_frame_bytes`` if it is a positive ``int``; raises ``ValueError`` otherwise."""
    if isinstance(max_frame_bytes, bool) or not isinstance(max_frame_bytes, int):
        raise TypeError(f"max_frame_bytes must be an int, got {type(max_frame_bytes).__name__}")
    if max_frame_bytes < 1:
        raise ValueError(f"max_frame_bytes must be >= 1, got {max_frame_bytes}")
    return max_frame_bytes
