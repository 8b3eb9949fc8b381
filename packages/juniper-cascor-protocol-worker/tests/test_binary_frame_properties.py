"""Property tests: decode never fails with anything but ValueError; encode/decode round-trip."""

from __future__ import annotations

import math
import struct
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from juniper_cascor_protocol.worker import (
    DECODE_ERROR_PREFIXES,
    MAX_DTYPE_BYTES,
    MAX_NDIM,
    BinaryFrame,
)

SETTINGS = settings(max_examples=300, deadline=None)

PLAIN_DTYPES = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(endianness="?"),
    hnp.unsigned_integer_dtypes(endianness="?"),
    hnp.floating_dtypes(endianness="?"),
    hnp.complex_number_dtypes(endianness="?"),
)
ARRAYS = PLAIN_DTYPES.flatmap(
    lambda dtype: hnp.arrays(
        dtype,
        hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
        elements=hnp.from_dtype(dtype, allow_nan=True, allow_infinity=True)
        if dtype.kind in "fc"
        else None,
    )
)

VALID_DTYPE_TEXTS = st.sampled_from(
    ["float32", "<f4", ">f8", "bool", "|u1", "int64", ">c16", "=i2", "float16"]
)
OTHER_DTYPE_TEXTS = st.one_of(
    st.sampled_from(["O", "V8", "U3", "S2", "M8[ns]", "(2,)f4", "float128", "f4,i4", "int"]),
    st.text(max_size=MAX_DTYPE_BYTES // 4),
)
DIMENSION = st.one_of(st.integers(0, 3), st.integers(0, 2**32 - 1))
MOSTLY = st.sampled_from([True, True, True, False])


def mostly(honest: int, draw: st.DrawFn) -> int:
    """Usually the honest value; sometimes any u32."""
    return honest if draw(MOSTLY) else draw(st.integers(0, 2**32 - 1))


@st.composite
def plausible_frames(draw: st.DrawFn) -> bytes:
    """Frames whose header is mostly well formed, with lies about ndim, lengths and the data."""
    shape = draw(st.lists(DIMENSION, max_size=MAX_NDIM + 1))
    if draw(MOSTLY):
        text = draw(VALID_DTYPE_TEXTS).encode()
    elif draw(st.booleans()):
        text = draw(OTHER_DTYPE_TEXTS).encode()
    else:
        text = draw(st.binary(max_size=MAX_DTYPE_BYTES + 2))
    needed = math.prod(shape) * (16 if text.endswith(b"16") else 8)  # within 2x of the truth
    data_size = needed if draw(MOSTLY) and needed < 10_000 else draw(st.integers(0, 200))
    frame = (
        struct.pack("<I", mostly(len(shape), draw))
        + struct.pack(f"<{len(shape)}I", *shape)
        + struct.pack("<I", mostly(len(text), draw))
        + text
        + draw(st.binary(min_size=data_size, max_size=data_size))
    )
    if draw(MOSTLY):
        return frame
    return frame[: draw(st.integers(0, len(frame)))]


ESTABLISHED_PREFIXES = (
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


def decode_or_value_error(data: bytes, *, copy: bool) -> NDArray[Any] | None:
    """Decode, or return None after a ValueError carrying one of the established messages."""
    try:
        return BinaryFrame.decode(data, copy=copy)
    except ValueError as error:
        failure = error
    assert type(failure) is ValueError
    assert str(failure).startswith(ESTABLISHED_PREFIXES), str(failure)
    return None


@SETTINGS
@given(st.binary(max_size=300), st.booleans())
def test_decode_of_arbitrary_bytes_raises_only_value_error(data: bytes, copy: bool) -> None:
    decoded = decode_or_value_error(data, copy=copy)
    if decoded is not None:
        assert decoded.nbytes <= len(data)


@SETTINGS
@given(plausible_frames(), st.booleans())
def test_decode_of_plausible_frames_raises_only_value_error(frame: bytes, copy: bool) -> None:
    decoded = decode_or_value_error(frame, copy=copy)
    if decoded is not None:
        # Whatever decodes is exactly the frame's tail, in the declared shape.
        (ndim,) = struct.unpack_from("<I", frame)
        shape = struct.unpack_from(f"<{ndim}I", frame, 4)
        assert decoded.shape == shape
        assert decoded.tobytes() == frame[len(frame) - math.prod(shape) * decoded.itemsize :]


@SETTINGS
@given(ARRAYS, st.booleans())
def test_every_plain_array_round_trips_bit_exact(array: NDArray[Any], transpose: bool) -> None:
    if transpose:
        array = array.T  # Fortran order for ndim >= 2
    frame = BinaryFrame.encode(array)
    for decoded in (BinaryFrame.decode(frame), BinaryFrame.decode(frame, copy=False)):
        assert decoded.dtype == array.dtype
        assert decoded.shape == array.shape
        assert decoded.tobytes() == array.tobytes(order="C")
    header, data = BinaryFrame.encode_parts(array)
    assert header + bytes(data) == frame
    buffer = bytearray(BinaryFrame.encoded_size(array))
    assert BinaryFrame.encode_into(array, buffer) == len(frame)
    assert buffer == frame


def test_the_exported_prefixes_are_the_established_wording() -> None:
    assert DECODE_ERROR_PREFIXES == ESTABLISHED_PREFIXES
