"""Read a capture file as UTF-8 lines, whatever it was saved as: plain, gzip, UTF-16 or a BOM.

A capture is JSON lines, but an operator's tools save text their own way: ``gzip``, a Windows
editor's UTF-16 with a byte-order mark, a UTF-8 BOM. The input is recognised once, from its
first bytes (gzip's magic number, then a BOM or the NUL pattern that JSON text in UTF-16 or
UTF-32 has), and decoded as a stream, so a bad encoding is one clear error and not one invalid
frame per line. Lines are read with a length cap, so one enormous line costs no more memory
than the cap: the rest of it is skipped and only its length is reported.
"""

from __future__ import annotations

import codecs
import gzip
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Final, cast

__all__ = ["CaptureInputError", "CaptureLine", "read_capture_lines"]

_GZIP_MAGIC: Final = b"\x1f\x8b"
_SNIFF_BYTES: Final = 4
_SKIP_CHUNK: Final = 1 << 20

# Longest first: the UTF-32 LE BOM begins with the UTF-16 LE one.
_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


class CaptureInputError(ValueError):
    """The input cannot be read as text lines at all (a corrupt gzip stream, a bad encoding)."""


@dataclass(frozen=True, slots=True)
class CaptureLine:
    """One line of the input, without its line ending, in UTF-8.

    ``size`` is the line's full length in bytes of the input; when it exceeds the reader's cap
    ``data`` is empty and ``too_long`` is set.
    """

    number: int
    data: bytes
    size: int
    too_long: bool = False


def _encoding_of(head: bytes) -> tuple[str, int]:
    """The encoding of text starting with ``head``, and the length of its BOM."""
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name, len(bom)
    # Without a BOM, JSON text starts with an ASCII character: its NUL bytes give the encoding.
    if len(head) >= 4 and head[:3] == b"\0\0\0":
        return "utf-32-be", 0
    if len(head) >= 4 and head[1:4] == b"\0\0\0":
        return "utf-32-le", 0
    if len(head) >= 2 and head[0] == 0:
        return "utf-16-be", 0
    if len(head) >= 2 and head[1] == 0:
        return "utf-16-le", 0
    return "utf-8", 0


def _peek(stream: IO[bytes] | gzip.GzipFile, size: int) -> tuple[io.BufferedReader, bytes]:
    """``stream`` buffered (to look ahead without consuming), and its first ``size`` bytes."""
    if isinstance(stream, io.BufferedReader):
        buffered = stream
    else:
        buffered = io.BufferedReader(cast("io.RawIOBase", stream))
    return buffered, buffered.peek(size)[:size]


def read_capture_lines(stream: IO[bytes], *, max_line_bytes: int) -> Iterator[CaptureLine]:
    """The lines of ``stream`` as UTF-8, each at most ``max_line_bytes`` long.

    Raises:
        CaptureInputError: the input is a corrupt gzip stream or not valid in the encoding
            its first bytes announce; raised once, at the point where reading fails.
    """
    buffered, head = _peek(stream, _SNIFF_BYTES)
    if not head.startswith(_GZIP_MAGIC):
        yield from _text_lines(buffered, head, max_line_bytes)
        return
    try:
        unzipped, head = _peek(gzip.GzipFile(fileobj=buffered, mode="rb"), _SNIFF_BYTES)
        yield from _text_lines(unzipped, head, max_line_bytes)
    except (OSError, EOFError, zlib.error) as error:
        raise CaptureInputError(f"the gzip stream is corrupt or truncated: {error}") from None


def _text_lines(
    stream: io.BufferedReader, head: bytes, max_line_bytes: int
) -> Iterator[CaptureLine]:
    encoding, bom_length = _encoding_of(head)
    if bom_length:
        stream.read(bom_length)
    if encoding == "utf-8":
        yield from _byte_lines(stream, max_line_bytes)
    else:
        yield from _decoded_lines(stream, encoding, max_line_bytes)


def _byte_lines(stream: io.BufferedReader, max_line_bytes: int) -> Iterator[CaptureLine]:
    number = 0
    while True:
        chunk = stream.readline(max_line_bytes + 1)
        if not chunk:
            return
        number += 1
        if len(chunk) > max_line_bytes and not chunk.endswith(b"\n"):
            size = len(chunk) + _skip_rest(stream)
            yield CaptureLine(number, b"", size, too_long=True)
            continue
        data = chunk.rstrip(b"\r\n")
        yield CaptureLine(number, data, len(data))


def _skip_rest(stream: IO[bytes]) -> int:
    """Read to the end of the current line without keeping it; returns the bytes skipped."""
    skipped = 0
    while True:
        chunk = stream.readline(_SKIP_CHUNK)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped - (1 if chunk.endswith(b"\n") else 0)


def _decoded_lines(
    stream: io.BufferedReader, encoding: str, max_line_bytes: int
) -> Iterator[CaptureLine]:
    # newline="" keeps "\r\n" as it is; a line is cut at "\n" alone, as in the UTF-8 path.
    text = io.TextIOWrapper(stream, encoding=encoding, errors="strict", newline="")
    number = 0
    try:
        while True:
            # A character takes at least one UTF-8 byte: this many characters may be too long.
            chunk = text.readline(max_line_bytes + 1)
            if not chunk:
                return
            number += 1
            too_long = len(chunk) > max_line_bytes and not chunk.endswith("\n")
            if too_long:
                size = len(chunk.encode("utf-8", "surrogatepass"))
                while chunk and not chunk.endswith("\n"):
                    chunk = text.readline(_SKIP_CHUNK)
                    size += len(chunk.rstrip("\n").encode("utf-8", "surrogatepass"))
                yield CaptureLine(number, b"", size, too_long=True)
                continue
            data = chunk.rstrip("\r\n").encode("utf-8", "surrogatepass")
            if len(data) > max_line_bytes:
                yield CaptureLine(number, b"", len(data), too_long=True)
                continue
            yield CaptureLine(number, data, len(data))
    except UnicodeDecodeError as error:
        # Decoded ahead in blocks: the failing line cannot be named, only the encoding.
        raise CaptureInputError(
            f"the input starts as {encoding.upper()} text, by its first bytes, but is not "
            f"valid {encoding.upper()} ({error.reason}); convert it to UTF-8 first"
        ) from None
    finally:
        text.detach()
