"""The binary tensor frame of ``/ws/v1/workers``: one numpy array per WebSocket binary message.

Layout, every integer an unsigned 32-bit little-endian value::

    [ndim][shape[0] ... shape[ndim - 1]][len][len bytes: dtype string, UTF-8][raw C-order data]

The dtype string is ``str(array.dtype)`` (``"float32"``, ``">f4"``, ``"bool"`` ...). Limits:
a whole frame is at most :data:`MAX_FRAME_BYTES`, ``ndim`` at most :data:`MAX_NDIM`, the dtype
string at most :data:`MAX_DTYPE_BYTES`.

Only plain numeric dtypes travel: ``bool``, ``int8``-``int64``, ``uint8``-``uint64``,
``float16``/``float32``/``float64`` and ``complex64``/``complex128``, in either byte order. A
received dtype string is looked up in a fixed table of spellings (never handed to
``numpy.dtype``, so a hostile peer can neither reach numpy's dtype parser nor grow its cache):

* the numpy name, e.g. ``"float32"`` (native byte order), or
* the type string, e.g. ``"f4"``, with an optional byte-order prefix ``<``, ``>``, ``=`` or ``|``.

``longdouble`` is refused: its bytes mean different things on different platforms.

Speed: most frames are small (metrics, heartbeats, short tensors), so the fixed cost of a call
matters as much as the copy. Each direction remembers the last few hundred headers it checked:
a ``bytes`` frame whose header bytes equal one that passed every check goes straight to the
copy, and a plain ndarray whose dtype and shape were encoded before reuses its header.
Everything else takes the full path, so what is accepted and every error message are the same
either way. A full cache starts afresh: a peer sending ever new headers cannot grow it.
"""

from __future__ import annotations

import math
import struct
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["DECODE_ERROR_PREFIXES", "MAX_DTYPE_BYTES", "MAX_FRAME_BYTES", "MAX_NDIM", "BinaryFrame"]

MAX_FRAME_BYTES = 100 * 1024 * 1024
"""Largest accepted frame, header included (100 MiB)."""
MAX_NDIM = 10
"""Largest accepted number of dimensions."""
MAX_DTYPE_BYTES = 64
"""Longest accepted dtype string, in UTF-8 bytes."""
DECODE_ERROR_PREFIXES = (
    "Binary frame exceeds maximum size",
    "Binary frame too short for shape header",
    "Unreasonable number of dimensions",
    "Binary frame too short for shape values",
    "Binary frame too short for dtype header",
    "Unreasonable dtype string length",
    "Binary frame too short for dtype string",
    "Binary frame dtype string is not valid UTF-8",
    "Invalid dtype string",
    "Data size mismatch",
)
"""The established wording that starts every ``decode`` error, for consumers that match on it."""

_U32_LIMIT = 2**32
_U32 = struct.Struct("<I")
# The shape values and the dtype-string length are adjacent: one unpack reads both.
_SHAPE_AND_LEN = tuple(struct.Struct(f"<{n + 1}I") for n in range(MAX_NDIM + 1))
_DTYPE_TEXT = tuple(struct.Struct(f"{n}s") for n in range(MAX_DTYPE_BYTES + 1))

_PLAIN_TYPES = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
)
_PLAIN_DESCRIPTION = (
    "bool, int8-int64, uint8-uint64, float16/float32/float64 or complex64/complex128"
)


class _WireDtype(NamedTuple):
    """What encoding an array of one dtype needs, computed once per dtype at import."""

    text: bytes
    """``str(dtype)`` in UTF-8."""
    headers: tuple[struct.Struct, ...]
    """Per ``ndim``, the packer of the whole header: ndim, shape, length and dtype string."""


def _decode_table() -> dict[bytes, np.dtype[Any]]:
    table: dict[bytes, np.dtype[Any]] = {}
    for name in _PLAIN_TYPES:
        dtype = np.dtype(name)
        type_code = f"{dtype.kind}{dtype.itemsize}"
        table[name.encode()] = dtype
        table[type_code.encode()] = dtype
        for order in "<>=|":
            table[f"{order}{type_code}".encode()] = np.dtype(f"{order}{type_code}")
    return table


def _encode_table(decodable: dict[bytes, np.dtype[Any]]) -> dict[np.dtype[Any], _WireDtype]:
    table: dict[np.dtype[Any], _WireDtype] = {}
    for dtype in decodable.values():
        if dtype in table:
            continue
        text = str(dtype).encode()
        # What we send must be what we accept, or our own frames would not decode.
        assert decodable[text] == dtype
        headers = tuple(struct.Struct(f"<{ndim + 2}I{len(text)}s") for ndim in range(MAX_NDIM + 1))
        table[dtype] = _WireDtype(text, headers)
    return table


_DECODE_DTYPES = _decode_table()
_ENCODE_DTYPES = _encode_table(_DECODE_DTYPES)

# A header and a C-contiguous array's data, in one new bytes object. numpy's type stubs declare
# ndarray a buffer on Python 3.12+ only; it is one everywhere, and casting here costs no call.
_concatenate = cast("Callable[[tuple[bytes, NDArray[Any]]], bytes]", b"".join)


class _Plan(NamedTuple):
    """What a checked header says: how to read the array that follows it."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    data_start: int
    """Where the data starts: the header's length."""
    frame_size: int
    """The only frame length this header allows."""


_KNOWN_LIMIT = 256
"""Headers the decoder remembers before it starts afresh (some 100 KB at worst)."""
_KNOWN_SHAPES_PER_DTYPE = 64
"""Headers the encoder remembers per dtype before it starts afresh (25 dtypes: 400 KB at worst)."""
# Header bytes -> plan, for headers that passed every check and describe a non-empty array.
_KNOWN_PLANS: dict[bytes, _Plan] = {}
# dtype -> shape -> header bytes, for arrays that passed every check of the encoders.
_KNOWN_HEADERS: dict[np.dtype[Any], dict[tuple[int, ...], bytes]] = {}


def dtype_from_text(text: str) -> np.dtype[Any] | None:
    """The dtype a frame's dtype string names, or None when it is not an accepted spelling."""
    return _DECODE_DTYPES.get(text.encode("utf-8", "surrogatepass"))


def text_of_dtype(dtype: np.dtype[Any]) -> str:
    """The dtype string a frame carries for ``dtype``; ``TypeError`` when it cannot travel."""
    wire = _ENCODE_DTYPES.get(dtype)
    if wire is None:
        raise TypeError(_unencodable_dtype(dtype))
    return wire.text.decode()


def _invalid_dtype_text(raw: bytes) -> str:
    """The error message for a dtype string that is not in the table."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (
            f"Binary frame dtype string is not valid UTF-8: {raw!r} "
            f"({exc.reason} at byte {exc.start})"
        )
    return f"Invalid dtype string {text!r}: expected a plain numeric dtype ({_PLAIN_DESCRIPTION})"


def _unencodable_dtype(dtype: np.dtype[Any]) -> str:
    if dtype.kind == "O":
        reason = "object arrays hold memory addresses, not values"
    elif dtype.fields is not None:
        reason = "structured dtypes are not supported"
    elif dtype.subdtype is not None:
        reason = "subarray dtypes are not supported"
    elif dtype.kind in "fc":
        reason = "extended precision has a platform-dependent byte layout"
    else:
        reason = f"only {_PLAIN_DESCRIPTION} arrays are supported"
    return f"Cannot encode an array of dtype {dtype}: {reason}"


def as_frame_array(array: object) -> NDArray[Any]:
    """``array`` as the plain ndarray a frame carries; ``TypeError`` for what no frame takes.

    An ndarray subclass becomes its base array and a numpy scalar a 0-d array. Anything
    else is refused, a masked array (its mask would be lost) and a list or ``str`` (numpy
    would guess the dtype on the wire) included. The one rule of the encoders,
    :meth:`~juniper_cascor_protocol.worker.TensorManifest.from_arrays` and
    :func:`~juniper_cascor_protocol.worker.check_tensors`.
    """
    if isinstance(array, np.ma.MaskedArray):
        raise TypeError("Cannot encode a masked array: the mask would be lost; send .filled(...)")
    if isinstance(array, np.ndarray):
        return array.view(np.ndarray)
    if isinstance(array, np.generic):
        return np.asarray(array)
    raise TypeError(
        f"expected a numpy.ndarray or a numpy scalar, got {type(array).__name__}; convert it "
        "with numpy.asarray(value, dtype=...) so the dtype on the wire is your choice"
    )


def frame_array(array: object) -> NDArray[Any]:
    """``array`` validated as the encoders validate it: ``TypeError`` or ``ValueError`` likewise."""
    return _checked(array)[0]


def _checked(array: object) -> tuple[NDArray[Any], _WireDtype, int]:
    """Validate an array for encoding; return it, its dtype entry and the whole frame size."""
    if type(array) is not np.ndarray:
        array = as_frame_array(array)
    assert isinstance(array, np.ndarray)
    wire = _ENCODE_DTYPES.get(array.dtype)
    if wire is None:
        raise TypeError(_unencodable_dtype(array.dtype))
    shape = array.shape
    ndim = len(shape)
    if ndim > MAX_NDIM:
        raise ValueError(
            f"Cannot encode an array with {ndim} dimensions: a binary frame allows at most "
            f"{MAX_NDIM}"
        )
    if ndim and max(shape) >= _U32_LIMIT:
        raise ValueError(
            f"Cannot encode shape {shape}: every dimension must be below 2**32 ({_U32_LIMIT})"
        )
    size = 8 + 4 * ndim + len(wire.text) + array.nbytes
    if size > MAX_FRAME_BYTES:
        raise ValueError(
            f"Binary frame exceeds maximum size: encoding shape {shape} of {array.dtype} takes "
            f"{size} bytes > {MAX_FRAME_BYTES} bytes"
        )
    return array, wire, size


def _header(array: NDArray[Any], wire: _WireDtype) -> bytes:
    """The header of a checked array; remembered, so the next array like it skips the checks."""
    shape = array.shape
    header = wire.headers[len(shape)].pack(len(shape), *shape, len(wire.text), wire.text)
    known = _KNOWN_HEADERS.setdefault(array.dtype, {})
    if len(known) >= _KNOWN_SHAPES_PER_DTYPE:
        known.clear()
    known[shape] = header
    return header


def _byte_buffer(data: object) -> memoryview:
    """A flat byte view of any buffer, so that ``len`` counts bytes and offsets are bytes."""
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"BinaryFrame.decode expects a bytes-like object, got {type(data).__name__}"
        ) from None
    with view:
        if view.ndim == 1 and view.itemsize == 1 and view.c_contiguous:
            return view[:]
        if view.c_contiguous:
            return view.cast("B")
        # A strided view has no flat bytes to point at; take its logical bytes once.
        return memoryview(view.tobytes())


def _writable_bytes(buffer: object) -> memoryview:
    """A flat, writable byte view of ``buffer`` for :meth:`BinaryFrame.encode_into`."""
    with memoryview(buffer) as target:  # type: ignore[arg-type]
        if target.readonly:
            raise TypeError("BinaryFrame.encode_into needs a writable buffer")
        if not target.c_contiguous:
            raise ValueError("BinaryFrame.encode_into needs a C-contiguous buffer")
        # A new view of the same buffer: it outlives ``target``, released here.
        return target[:] if target.ndim == 1 and target.format == "B" else target.cast("B")


class BinaryFrame:
    """Encode and decode the binary tensor frame (see the module docstring for the layout).

    Every method is static; the class is a namespace. ``decode`` raises only ``ValueError`` on a
    malformed frame, with a message starting with one of the established phrases (``Binary frame
    exceeds maximum size``, ``Binary frame too short for shape header``, ``Unreasonable number of
    dimensions``, ``Binary frame too short for shape values``, ``Binary frame too short for dtype
    header``, ``Unreasonable dtype string length``, ``Binary frame too short for dtype string``,
    ``Binary frame dtype string is not valid UTF-8``, ``Invalid dtype string``, ``Data size
    mismatch``) followed by the numbers involved. Passing something that is not a bytes-like
    object at all is a caller bug and raises ``TypeError``.

    The encoders accept a ``numpy.ndarray`` (subclasses are encoded as their base array) or a
    numpy scalar (a 0-d frame). Anything else, a list or a ``str`` included, raises
    ``TypeError``: converting it would make numpy pick the dtype that goes on the wire. A dtype
    outside the plain numeric set raises ``TypeError``; too many dimensions, a dimension of
    2**32 or more, or a frame over :data:`MAX_FRAME_BYTES` raise ``ValueError``.
    """

    @staticmethod
    def encode(array: NDArray[Any] | np.generic) -> bytes:
        """Return the frame of ``array``: one allocation and one copy of its data.

        Non-contiguous and Fortran-order arrays are copied to C order first (a second copy).
        """
        if type(array) is np.ndarray:
            # The frame size follows from dtype and shape alone, so a known pair has passed
            # every check; only the memory order is left to see.
            known = _KNOWN_HEADERS.get(array.dtype)
            if known is not None:
                header = known.get(array.shape)
                if header is not None:
                    try:
                        return _concatenate((header, array))
                    except TypeError:  # not C-contiguous, so no flat buffer: the full path
                        pass
        checked, wire, _ = _checked(array)
        if not checked.flags.c_contiguous:
            checked = np.ascontiguousarray(checked)
        return _concatenate((_header(checked, wire), checked))

    @staticmethod
    def encode_parts(array: NDArray[Any] | np.generic) -> tuple[bytes, memoryview]:
        """Return the frame as ``(header, data)`` without copying a C-contiguous array's data.

        ``header + bytes(data)`` equals :meth:`encode`'s result. ``data`` is a read-only byte
        view that keeps the array alive; send both parts as fragments of one message (for
        example ``await websocket.send([header, data])``) to skip the concatenation.
        """
        checked, wire, _ = _checked(array)
        if not checked.flags.c_contiguous:
            checked = np.ascontiguousarray(checked)
        if checked.nbytes == 0:  # memoryview cannot cast a view with a zero in its shape
            return _header(checked, wire), memoryview(b"")
        return _header(checked, wire), checked.data.cast("B").toreadonly()

    @staticmethod
    def encode_into(array: NDArray[Any] | np.generic, buffer: bytearray | memoryview) -> int:
        """Write the frame of ``array`` at the start of ``buffer``; return its size in bytes.

        ``buffer`` is any writable C-contiguous buffer at least :meth:`encoded_size` bytes long
        (``ValueError`` otherwise; ``TypeError`` if it is read-only). The data is copied once,
        straight into ``buffer``, whatever the memory order of ``array``.
        """
        checked, wire, size = _checked(array)
        # Released on the way out, raising included: a traceback must not keep ``buffer``
        # locked, or the caller could not grow it and retry after "Buffer too small".
        with _writable_bytes(buffer) as target:
            if len(target) < size:
                raise ValueError(
                    f"Buffer too small for binary frame: {len(target)} bytes < {size} bytes needed"
                )
            shape = checked.shape
            start = size - checked.nbytes
            header = wire.headers[len(shape)]
            header.pack_into(target, 0, len(shape), *shape, len(wire.text), wire.text)
            if checked.nbytes == 0:
                pass
            elif checked.flags.c_contiguous:
                target[start:size] = checked.data.cast("B")  # same length: a copy, no resize
            else:
                destination = np.frombuffer(target, checked.dtype, checked.size, start)
                np.copyto(destination.reshape(shape), checked, casting="no")
        return size

    @staticmethod
    def encoded_size(array: NDArray[Any] | np.generic) -> int:
        """Return the size in bytes of ``array``'s frame, header included (validates it too)."""
        return _checked(array)[2]

    @staticmethod
    def decode(data: bytes | bytearray | memoryview, *, copy: bool = True) -> NDArray[Any]:
        """Return the array carried by the frame ``data``.

        ``data`` is ``bytes``, ``bytearray``, ``memoryview`` or any other buffer (a strided one
        is read through one private copy of its bytes).

        With ``copy=True`` (the default) the result is a writable, C-contiguous array that owns
        its data: the payload is copied exactly once. With ``copy=False`` it is a read-only view
        of ``data``'s bytes, made in constant time; it keeps ``data`` alive, and it changes if
        the caller later writes to ``data``. Like :func:`numpy.frombuffer`, the view holds a
        buffer export of ``data`` while it lives (through its ``base``): resizing a
        ``bytearray`` under it, or closing an ``mmap``, raises ``BufferError`` instead of
        leaving the view on freed memory. ``memoryview.release()`` on the caller's own view
        is allowed and leaves the decoded view intact.
        """
        if type(data) is bytes:  # what WebSocket libraries deliver: the hot path, inlined
            # Where the header ends, from the low bytes of the ndim and dtype-length fields:
            # the lookup compares every header byte, so a hit is a header that passed every
            # check (zero high bytes included), and only the frame's length is left to check.
            try:
                length_at = 4 + 4 * data[0]
                plan = _KNOWN_PLANS.get(data[: length_at + 4 + data[length_at]])
            except IndexError:  # too short to hold a header: the full checks say why
                plan = None
            if plan is None or plan.frame_size != len(data):
                plan = _checked_plan(data)
            shape, dtype, data_start, frame_size = plan
            if frame_size == data_start:
                return _empty_array(shape, dtype, copy)
            # Immutable: the reference in ``base`` is all it takes to keep the memory.
            array = np.ndarray(shape, dtype, data, data_start)
            return array.copy() if copy else array  # already read-only, no flag write
        if type(data) is bytearray:
            return _decode(data, copy)
        with _byte_buffer(data) as buf:
            # Released on the way out, raising included; a returned view holds its own export.
            return _decode(buf, copy)


def _decode(buf: bytearray | memoryview, copy: bool) -> NDArray[Any]:
    """:meth:`BinaryFrame.decode` of a flat, possibly writable byte buffer."""
    shape, dtype, data_start, frame_size = _checked_plan(buf)
    if frame_size == data_start:
        return _empty_array(shape, dtype, copy)
    # np.frombuffer, unlike np.ndarray(buffer=...), keeps a buffer export (a memoryview in
    # ``base``) for the array's life, so nobody can resize or free the memory under it, not
    # even while ``copy`` runs with the GIL released.
    array = np.frombuffer(buf, dtype, -1, data_start)
    if len(shape) != 1:
        array = array.reshape(shape)
    if copy:
        return array.copy()
    array.setflags(write=False)
    return array


def _empty_array(shape: tuple[int, ...], dtype: np.dtype[Any], copy: bool) -> NDArray[Any]:
    """The array of a frame without data; read-only for ``copy=False`` like every view."""
    try:
        array = np.empty(shape, dtype)
    except ValueError as exc:  # numpy bounds the product of the non-zero dimensions
        raise ValueError(
            f"Data size mismatch: shape {shape} of {dtype} is beyond numpy: {exc}"
        ) from None
    if not copy:
        array.setflags(write=False)
    return array


def _checked_plan(buf: bytes | bytearray | memoryview) -> _Plan:
    """Check every field of ``buf``'s header; ``ValueError`` naming the first one that fails."""
    size = len(buf)
    if size > MAX_FRAME_BYTES:
        raise ValueError(
            f"Binary frame exceeds maximum size: {size} bytes > {MAX_FRAME_BYTES} bytes"
        )
    if size < 4:
        raise ValueError(
            f"Binary frame too short for shape header: {size} bytes, the header needs 4"
        )
    (ndim,) = _U32.unpack_from(buf)
    if ndim > MAX_NDIM:
        raise ValueError(f"Unreasonable number of dimensions: {ndim} > {MAX_NDIM}")
    shape_end = 4 + 4 * ndim
    if size < shape_end:
        raise ValueError(
            f"Binary frame too short for shape values: {size} bytes, {ndim} dimensions "
            f"need {shape_end}"
        )
    text_start = shape_end + 4
    if size < text_start:
        raise ValueError(
            f"Binary frame too short for dtype header: {size} bytes, the header needs {text_start}"
        )
    values = _SHAPE_AND_LEN[ndim].unpack_from(buf, 4)
    shape = values[:ndim]
    text_length = values[ndim]
    if text_length > MAX_DTYPE_BYTES:
        raise ValueError(
            f"Unreasonable dtype string length: {text_length} bytes > {MAX_DTYPE_BYTES}"
        )
    data_start = text_start + text_length
    if size < data_start:
        raise ValueError(
            f"Binary frame too short for dtype string: {size} bytes, a {text_length}-byte "
            f"dtype string needs {data_start}"
        )
    (text,) = _DTYPE_TEXT[text_length].unpack_from(buf, text_start)
    dtype = _DECODE_DTYPES.get(text)
    if dtype is None:
        raise ValueError(_invalid_dtype_text(text))
    expected = math.prod(shape) * dtype.itemsize
    if size - data_start != expected:
        raise ValueError(
            f"Data size mismatch: shape {shape} of {dtype} needs {expected} bytes, "
            f"the frame carries {size - data_start}"
        )
    plan = _Plan(shape, dtype, data_start, size)
    if expected:  # an empty array's shape may still be beyond numpy: never skip that check
        if len(_KNOWN_PLANS) >= _KNOWN_LIMIT:
            _KNOWN_PLANS.clear()
        _KNOWN_PLANS[bytes(buf[:data_start])] = plan
    return plan
