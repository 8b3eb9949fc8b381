"""BinaryFrame against a frozen copy of itself from before its fixed-cost work.

The codec now remembers the headers it has checked (see ``binary_frame``'s module docstring).
Nothing a peer or a caller sends may tell the difference: every frame, in every kind of buffer,
and every array goes to both implementations, which must return the same array (dtype with its
byte order, shape, bytes, flags) or raise the same exception type with the same message. Each
input is tried before and after the codec has seen the valid frame it was mutated from, so the
remembered header is there to be (mis)used.
"""

from __future__ import annotations

import array as std_array
import importlib.util
import struct
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from juniper_cascor_protocol.worker import MAX_DTYPE_BYTES, MAX_FRAME_BYTES, MAX_NDIM, BinaryFrame
from juniper_cascor_protocol.worker import binary_frame as codec


def _load_reference() -> ModuleType:
    path = Path(__file__).with_name("frozen_binary_frame.py")
    spec = importlib.util.spec_from_file_location("frozen_binary_frame", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REFERENCE: Any = _load_reference().BinaryFrame
# Both are fed what their signatures do not allow too, as a peer or a careless caller can.
OURS: Any = BinaryFrame
SETTINGS = settings(max_examples=400, deadline=None)

PLAIN_DTYPES = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(endianness="?"),
    hnp.unsigned_integer_dtypes(endianness="?"),
    hnp.floating_dtypes(endianness="?"),
    hnp.complex_number_dtypes(endianness="?"),
)
ARRAYS = PLAIN_DTYPES.flatmap(
    lambda dtype: hnp.arrays(
        dtype, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)
    )
)
U32 = st.one_of(
    st.integers(0, 12),
    st.sampled_from([2**8, 2**16, 2**24, 2**31, 2**32 - 1]),
    st.integers(0, 2**32 - 1),
)
DTYPE_TEXTS = st.one_of(
    st.sampled_from(
        [
            *["float32", "<f4", ">f8", "f4", "=i2", "|u1", "|b1", "bool", "?", "int", "O"],
            *["V8", "U3", "S2", "M8[ns]", "(2,)f4", "f4,i4", "float128", "g", "<f16", "c32"],
        ]
    ).map(str.encode),
    st.binary(max_size=MAX_DTYPE_BYTES + 2),
    st.text(max_size=MAX_DTYPE_BYTES // 4).map(lambda text: text.encode("utf-8", "surrogatepass")),
)


def _with_u32(frame: bytes, at: int, value: int) -> bytes:
    if at + 4 > len(frame):
        return frame
    return frame[:at] + struct.pack("<I", value) + frame[at + 4 :]


@st.composite
def mutated_frames(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A valid frame and a mutation of it: truncated, extended, or lying in one field."""
    frame = REFERENCE.encode(draw(ARRAYS))
    (ndim,) = struct.unpack_from("<I", frame)
    length_at = 4 + 4 * ndim
    (text_length,) = struct.unpack_from("<I", frame, length_at)
    data_start = length_at + 4 + text_length
    mutation = draw(
        st.sampled_from(
            ["none", "truncate", "extend", "flip", "ndim", "dimension", "length", "text", "high"]
        )
    )
    if mutation == "truncate":
        mutated = frame[: draw(st.integers(0, max(len(frame) - 1, 0)))]
    elif mutation == "extend":
        mutated = frame + draw(st.binary(min_size=1, max_size=16))
    elif mutation == "flip":
        at = draw(st.integers(0, len(frame) - 1))
        mask = draw(st.integers(1, 255))
        mutated = frame[:at] + bytes([frame[at] ^ mask]) + frame[at + 1 :]
    elif mutation == "ndim":
        mutated = _with_u32(frame, 0, draw(U32))
    elif mutation == "dimension" and ndim:
        mutated = _with_u32(frame, 4 + 4 * draw(st.integers(0, ndim - 1)), draw(U32))
    elif mutation == "length":
        mutated = _with_u32(frame, length_at, draw(U32))
    elif mutation == "text":
        text = draw(DTYPE_TEXTS)
        honest = draw(st.booleans())
        header = frame[:length_at] + struct.pack("<I", len(text) if honest else text_length)
        mutated = header + text + frame[data_start:]
    elif mutation == "high":
        # A non-zero high byte in the ndim or dtype-length field: the low byte looks valid.
        at = draw(st.sampled_from([1, 2, 3, length_at + 1, length_at + 2, length_at + 3]))
        mutated = frame[:at] + bytes([draw(st.integers(1, 255))]) + frame[at + 1 :]
    else:
        mutated = frame
    return frame, mutated


def _strided(frame: bytes) -> memoryview:
    """The frame's bytes as a non-contiguous view (every other byte of a larger buffer)."""
    spread = np.zeros((len(frame), 2), np.uint8)
    spread[:, 0] = np.frombuffer(frame, np.uint8)
    return spread[:, 0].data


BUFFERS: dict[str, Callable[[bytes], object]] = {
    "bytes": bytes,
    "bytearray": bytearray,
    "memoryview": memoryview,
    "memoryview of a bytearray": lambda frame: memoryview(bytearray(frame)),
    "memoryview slice": lambda frame: memoryview(b"\x01\x02" + frame)[2:],
    "memoryview of uint16": lambda frame: (
        memoryview(frame).cast("H") if len(frame) % 2 == 0 else memoryview(frame)
    ),
    "strided memoryview": _strided,
    "array.array": lambda frame: std_array.array("B", frame),
    "numpy uint8 array": lambda frame: np.frombuffer(frame, np.uint8).copy(),
    "not a buffer": list,
}
KINDS = st.sampled_from(sorted(BUFFERS))


Outcome = tuple[object, ...]


def _outcome(run: Callable[[], NDArray[Any] | bytes]) -> Outcome:
    """What a call returned or raised, everything a caller can see compared."""
    try:
        result = run()
    except Exception as exc:  # the exception is the outcome compared
        return ("raised", type(exc), str(exc))
    if isinstance(result, bytes):
        return ("bytes", result)
    flags = result.flags
    return (
        "array",
        type(result),
        result.dtype.str,
        result.dtype,
        result.shape,
        result.tobytes(),
        flags.writeable,
        flags.c_contiguous,
        flags.owndata,
    )


def _decode_outcomes(frame: bytes, kind: str, copy: bool) -> tuple[Outcome, Outcome]:
    # Each implementation gets its own buffer: a zero-copy view may lock the one it was given.
    make = BUFFERS[kind]
    ours = _outcome(lambda: OURS.decode(make(frame), copy=copy))
    theirs = _outcome(lambda: REFERENCE.decode(make(frame), copy=copy))
    return ours, theirs


@SETTINGS
@given(mutated_frames(), KINDS, st.booleans())
def test_decode_of_mutated_frames_matches_the_reference(
    frames: tuple[bytes, bytes], kind: str, copy: bool
) -> None:
    valid, mutated = frames
    ours, theirs = _decode_outcomes(mutated, kind, copy)
    assert ours == theirs
    # Now the codec knows the valid frame's header; the mutated frame must not profit from it.
    ours, theirs = _decode_outcomes(valid, "bytes", copy)
    assert ours == theirs
    for buffer_kind in (kind, "bytes"):
        ours, theirs = _decode_outcomes(mutated, buffer_kind, copy)
        assert ours == theirs


@SETTINGS
@given(st.binary(max_size=200), KINDS, st.booleans())
def test_decode_of_arbitrary_bytes_matches_the_reference(
    data: bytes, kind: str, copy: bool
) -> None:
    ours, theirs = _decode_outcomes(data, kind, copy)
    assert ours == theirs


def test_decode_of_frames_at_the_limits_matches_the_reference() -> None:
    header = struct.pack("<II", 1, 0) + struct.pack("<I", 4) + b"<f4"
    cases = [
        # Zero-size arrays whose shapes numpy cannot hold, and the largest frame allowed.
        struct.pack("<4I", 3, 0, 2**32 - 1, 2**32 - 1) + struct.pack("<I", 2) + b"u1",
        struct.pack("<3I", 2, 2**31, 0) + struct.pack("<I", 2) + b"f8",
        struct.pack("<2I", 1, MAX_FRAME_BYTES - 12) + struct.pack("<I", 2) + b"u1",
        struct.pack("<I", MAX_NDIM) + struct.pack(f"<{MAX_NDIM}I", *[1] * MAX_NDIM),
        struct.pack("<I", MAX_NDIM + 1) + struct.pack(f"<{MAX_NDIM + 1}I", *[1] * 11),
        header,
    ]
    largest = bytes(struct.pack("<2I", 1, MAX_FRAME_BYTES - 14) + struct.pack("<I", 2) + b"u1")
    cases += [largest + bytes(MAX_FRAME_BYTES - len(largest)), bytes(MAX_FRAME_BYTES + 1)]
    for frame in cases:
        for copy in (True, False):
            for _ in range(2):  # the second time, a header that passed is remembered
                ours, theirs = _decode_outcomes(frame, "bytes", copy)
                assert ours == theirs, frame[:40]


class _Subclass(np.ndarray):
    pass


UNSUPPORTED_DTYPES = st.sampled_from(
    ["longdouble", "clongdouble", "O", "M8[ns]", "m8[s]", "U3", "S2", "V4", "f4,i4", "(2,)i2"]
).map(np.dtype)


@st.composite
def encoder_inputs(draw: st.DrawFn) -> tuple[object, NDArray[Any] | None]:
    """Something to encode, and a C-contiguous array of the same dtype and shape (if any)."""
    array = draw(ARRAYS)
    form = draw(
        st.sampled_from(
            [
                *["plain", "fortran", "strided", "read-only", "subclass", "masked", "scalar"],
                *["too many dimensions", "unsupported dtype", "list", "str", "none"],
            ]
        )
    )
    thing: object = array
    if form == "fortran":
        thing = array.T
    elif form == "strided":
        thing = array[::2] if array.ndim else array
    elif form == "read-only":
        array.setflags(write=False)
    elif form == "subclass":
        thing = array.view(_Subclass)
    elif form == "masked":
        thing = np.ma.masked_array(array)
    elif form == "scalar":
        thing = array.dtype.type(0)
    elif form == "too many dimensions":
        thing = array.reshape(array.shape + (1,) * (MAX_NDIM + 1 - array.ndim))
    elif form == "unsupported dtype":
        thing = np.zeros(array.shape, draw(UNSUPPORTED_DTYPES))
    elif form == "list":
        thing = array.tolist()
    elif form == "str":
        thing = "float32"
    elif form == "none":
        thing = None
    if isinstance(thing, np.ndarray):
        return thing, np.zeros(thing.shape, thing.dtype)
    return thing, None


def _encode_outcomes(thing: object) -> list[tuple[Outcome, Outcome]]:
    return [
        (_outcome(lambda: OURS.encode(thing)), _outcome(lambda: REFERENCE.encode(thing))),
        (
            _outcome(lambda: b"".join(OURS.encode_parts(thing))),
            _outcome(lambda: b"".join(REFERENCE.encode_parts(thing))),
        ),
    ]


@SETTINGS
@given(encoder_inputs())
def test_encode_matches_the_reference(inputs: tuple[object, NDArray[Any] | None]) -> None:
    thing, contiguous_twin = inputs
    for ours, theirs in _encode_outcomes(thing):
        assert ours == theirs
    if contiguous_twin is not None:
        # The codec now knows this dtype and shape; the input itself must still be checked.
        for ours, theirs in _encode_outcomes(contiguous_twin) + _encode_outcomes(thing):
            assert ours == theirs


@pytest.mark.parametrize(
    ("dtype", "shape"),
    [
        ("uint8", (2**32,)),  # a dimension too large for the header
        ("float64", (MAX_FRAME_BYTES // 8,)),  # one header too large for a frame
        ("float32", (2**16, 2**16)),
        ("complex128", (3, 0, 2**32)),  # empty, yet a dimension too large
    ],
)
def test_encode_of_arrays_beyond_the_limits_matches_the_reference(
    dtype: str, shape: tuple[int, ...]
) -> None:
    # Broadcast views: the shapes are real, the memory is one element.
    huge = np.broadcast_to(np.zeros(1, dtype), shape)
    for _ in range(2):
        for ours, theirs in _encode_outcomes(huge):
            assert ours == theirs
            assert ours[0] == "raised"


def test_the_remembered_headers_stay_bounded() -> None:
    # A peer may send any number of distinct valid headers; memory must not grow with them.
    for count in range(1, 4 * codec._KNOWN_LIMIT):
        BinaryFrame.decode(BinaryFrame.encode(np.zeros(count, np.uint8)))
        assert len(codec._KNOWN_PLANS) <= codec._KNOWN_LIMIT
        known_shapes = codec._KNOWN_HEADERS[np.dtype(np.uint8)]
        assert len(known_shapes) <= codec._KNOWN_SHAPES_PER_DTYPE
