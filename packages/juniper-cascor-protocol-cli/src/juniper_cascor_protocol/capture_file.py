"""The capture file: what ``record`` writes and ``replay`` and ``validate`` read.

A capture is JSON lines, one received WebSocket message a line, in the order received. A line
is either a *record* written by ``record``::

    {"capture": 1, "received_at": 1764516106.25, "endpoint": "/ws/training", "text": "{...}"}
    {"capture": 1, "received_at": 1764516106.31, "endpoint": "/ws/training", "binary": "AAEC"}

or a *plain frame*: the text of one frame as it came off the wire (``{"type": "metrics", ...}``),
the older form, which carries no receive time and no endpoint.

A record has ``capture`` (the format version, :data:`CAPTURE_FORMAT`), ``received_at`` (wall-clock
Unix seconds), ``endpoint`` (the path of the protocol's endpoint, never the URL: a URL may hold a
host name or a token) and exactly one of ``text`` (a text frame, verbatim) or ``binary`` (the
bytes of a binary frame, standard base64). A record never has ``type`` and a frame always has
one, so each line says which it is. Records are written with every non-ASCII character escaped,
so any text, lone surrogates included, reads back exactly.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Final

from juniper_cascor_protocol.capture_input import read_capture_lines

__all__ = [
    "CAPTURE_FORMAT",
    "CaptureFormatError",
    "CaptureWriter",
    "CapturedMessage",
    "format_record",
    "longest_line",
    "parse_capture_line",
    "read_capture",
    "read_capture_stream",
]

CAPTURE_FORMAT: Final = 1
"""The version of the record format, written in every record's ``capture`` key."""

_FORMAT_KEY: Final = "capture"
# What ``bytes.strip`` strips: a line ending and ASCII blanks around it, nothing a frame may hold.
_LINE_BLANKS: Final = " \t\n\r\x0b\x0c"
_PAYLOAD_KEYS: Final = ("text", "binary")
# A record escapes its frame: at most 6 characters (\u00XX) for each byte of the frame.
_RECORD_EXPANSION: Final = 6
_RECORD_OVERHEAD: Final = 4096


class CaptureFormatError(ValueError):
    """A line that is neither a readable record nor a text frame; the message says why."""


@dataclass(frozen=True, slots=True)
class CapturedMessage:
    """One received WebSocket message, as a session's ``receive`` takes it.

    ``message`` is a ``str`` for a text frame and ``bytes`` for a binary frame, as the
    ``websockets`` library delivers them. ``received_at`` and ``endpoint`` are ``None`` for a
    plain frame line.
    """

    message: str | bytes
    received_at: float | None = None
    endpoint: str | None = None


def format_record(message: str | bytes, *, received_at: float, endpoint: str) -> str:
    """The record line of ``message`` (without the line break).

    Raises:
        ValueError: ``received_at`` is not a finite number.
    """
    if not math.isfinite(received_at):
        raise ValueError(f"received_at must be a finite number of seconds, got {received_at!r}")
    record: dict[str, object] = {
        _FORMAT_KEY: CAPTURE_FORMAT,
        "received_at": received_at,
        "endpoint": endpoint,
    }
    if isinstance(message, str):
        record["text"] = message
    else:
        record["binary"] = base64.b64encode(message).decode("ascii")
    return json.dumps(record, ensure_ascii=True, separators=(", ", ": "))


def parse_capture_line(line: bytes | str) -> CapturedMessage | None:
    """The message one capture line holds; ``None`` for a blank line.

    ASCII blanks around the line (its line ending included) are not part of the message;
    other whitespace is, so a frame is returned exactly as received.

    A line that is a JSON object with ``capture`` and no ``type`` is a record; any other line
    is a plain text frame, returned as is (whether it is a valid frame is the session's verdict,
    not this reader's).

    Raises:
        CaptureFormatError: a record of another format version or with a missing or wrong
            field, or a plain line that is not UTF-8 (a text frame always is).
    """
    if isinstance(line, bytes):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as error:
            raise CaptureFormatError(
                f"not UTF-8 text (byte {error.start}), so not a text frame"
            ) from None
    else:
        text = line
    text = text.strip(_LINE_BLANKS)
    if not text:
        return None
    if not text.startswith("{") or f'"{_FORMAT_KEY}"' not in text:
        return CapturedMessage(text)  # a plain frame: no need to parse it twice
    try:
        fields = json.loads(text)
    except (ValueError, RecursionError):
        return CapturedMessage(text)  # malformed JSON: the session will say so
    if not isinstance(fields, dict) or _FORMAT_KEY not in fields or "type" in fields:
        return CapturedMessage(text)
    return _record(fields)


def longest_line(max_frame_bytes: int) -> int:
    """The longest capture line, in bytes, that holds a frame of up to ``max_frame_bytes``:
    a plain frame, or a record, whose escapes make it longer than its frame."""
    return max_frame_bytes * _RECORD_EXPANSION + _RECORD_OVERHEAD


def read_capture(
    lines: Iterable[bytes | str],
) -> Iterator[tuple[int, CapturedMessage | CaptureFormatError]]:
    """``(line number, message or error)`` for every non-blank line, numbered from 1."""
    for number, line in enumerate(lines, start=1):
        yield from _numbered(number, line)


def read_capture_stream(
    stream: IO[bytes], *, max_frame_bytes: int
) -> Iterator[tuple[int, CapturedMessage | CaptureFormatError]]:
    """:func:`read_capture` of a capture file as it was saved: plain, gzip, UTF-16 or with a
    BOM (see :func:`.capture_input.read_capture_lines`).

    A line longer than :func:`longest_line` of ``max_frame_bytes`` is skipped unread and
    reported as a :class:`CaptureFormatError` giving its length.

    Raises:
        CaptureInputError: the stream is a corrupt gzip stream or not valid in the encoding its
            first bytes announce.
    """
    limit = longest_line(max_frame_bytes)
    for line in read_capture_lines(stream, max_line_bytes=limit):
        if line.too_long:
            yield (
                line.number,
                CaptureFormatError(
                    f"line of {line.size} bytes, longer than a capture line of a frame up to "
                    f"max_frame_bytes={max_frame_bytes} can be ({limit} bytes); not read"
                ),
            )
        else:
            yield from _numbered(line.number, line.data)


def _numbered(
    number: int, line: bytes | str
) -> Iterator[tuple[int, CapturedMessage | CaptureFormatError]]:
    try:
        message = parse_capture_line(line)
    except CaptureFormatError as error:
        yield number, error
        return
    if message is not None:
        yield number, message


def _record(fields: dict[str, object]) -> CapturedMessage:
    version = fields[_FORMAT_KEY]
    if version != CAPTURE_FORMAT or isinstance(version, bool):
        raise CaptureFormatError(
            f"record of capture format {version!r}; this tool reads format {CAPTURE_FORMAT}"
        )
    received_at = fields.get("received_at")
    if (
        not isinstance(received_at, int | float)
        or isinstance(received_at, bool)
        or not math.isfinite(received_at)
    ):
        raise CaptureFormatError(f"record: 'received_at' must be a number, got {received_at!r}")
    endpoint = fields.get("endpoint")
    if not isinstance(endpoint, str):
        raise CaptureFormatError(f"record: 'endpoint' must be a string, got {endpoint!r}")
    present = [key for key in _PAYLOAD_KEYS if key in fields]
    if len(present) != 1:
        raise CaptureFormatError(
            f"record: needs exactly one of 'text' or 'binary', got {present or 'neither'}"
        )
    payload = fields[present[0]]
    if not isinstance(payload, str):
        raise CaptureFormatError(
            f"record: {present[0]!r} must be a string, got {type(payload).__name__}"
        )
    message: str | bytes = payload
    if present[0] == "binary":
        try:
            message = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as error:
            raise CaptureFormatError(f"record: 'binary' is not base64: {error}") from None
    return CapturedMessage(message, float(received_at), endpoint)


class CaptureWriter:
    """Writes records to ``stream``, one line each; counts them and the bytes written.

    The stream is not closed by the writer; :meth:`flush` pushes what is buffered to the
    operating system.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.records: int = 0
        """Records written."""
        self.bytes_written: int = 0
        """Bytes written, line breaks included."""

    def write(self, message: str | bytes, *, received_at: float, endpoint: str) -> None:
        """Write the record of ``message``, received at ``received_at`` on ``endpoint``.

        Raises:
            ValueError: ``received_at`` is not a finite number.
        """
        line = (format_record(message, received_at=received_at, endpoint=endpoint) + "\n").encode(
            "ascii"
        )
        self._stream.write(line)
        self.records += 1
        self.bytes_written += len(line)

    def flush(self) -> None:
        """Push the records buffered so far to the operating system."""
        self._stream.flush()
