"""BinaryFrame: the byte layout, every limit and error message, and bit-exact round trips."""

from __future__ import annotations

import array as std_array
import re
import struct
from typing import Any, Literal

import numpy as np
import pytest
from numpy.typing import NDArray

from juniper_cascor_protocol.worker import (
    MAX_DTYPE_BYTES,
    MAX_FRAME_BYTES,
    MAX_NDIM,
    BinaryFrame,
)

PLAIN_TYPES = [
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
]
BYTE_ORDERS: tuple[Literal["<"], Literal[">"]] = ("<", ">")
BOTH_ORDERS = [np.dtype(name).newbyteorder(order) for name in PLAIN_TYPES for order in BYTE_ORDERS]


def reference_frame(shape: tuple[int, ...], dtype_text: str, payload: bytes) -> bytes:
    """The layout of the wire contract, written out independently of the implementation."""
    text = dtype_text.encode("utf-8")
    return (
        struct.pack("<I", len(shape))
        + struct.pack(f"<{len(shape)}I", *shape)
        + struct.pack("<I", len(text))
        + text
        + payload
    )


def frame_of(array: NDArray[Any]) -> bytes:
    return reference_frame(array.shape, str(array.dtype), array.tobytes(order="C"))


def assert_same_array(actual: NDArray[Any], expected: NDArray[Any]) -> None:
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    assert actual.tobytes() == expected.tobytes()


def sample(dtype: np.dtype[Any]) -> NDArray[Any]:
    """A small 2x3 array of ``dtype`` whose bytes are all different."""
    raw = np.arange(6 * dtype.itemsize, dtype=np.uint8)
    if dtype.kind == "b":
        raw %= 2
    return raw.view(dtype).reshape(2, 3)


# --- layout -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", BOTH_ORDERS, ids=str)
def test_encode_writes_the_reference_layout(dtype: np.dtype[Any]) -> None:
    array = sample(dtype)
    assert BinaryFrame.encode(array) == frame_of(array)


def test_dtype_string_is_str_of_the_dtype() -> None:
    assert BinaryFrame.encode(np.zeros(1, "<f4"))[12:19] == b"float32"
    assert BinaryFrame.encode(np.zeros(1, ">f4"))[12:15] == b">f4"
    assert BinaryFrame.encode(np.zeros(1, bool))[12:16] == b"bool"


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("float32", np.dtype("<f4")),
        ("<f4", np.dtype("<f4")),
        ("f4", np.dtype("<f4")),
        ("=f4", np.dtype("<f4")),
        (">f8", np.dtype(">f8")),
        ("bool", np.dtype(bool)),
        ("|b1", np.dtype(bool)),
        ("<i2", np.dtype("<i2")),
        (">u8", np.dtype(">u8")),
        ("|u1", np.dtype(np.uint8)),
        ("complex128", np.dtype("<c16")),
        (">c8", np.dtype(">c8")),
        ("float16", np.dtype("<f2")),
    ],
)
def test_decode_accepts_the_spellings_of_other_implementations(
    spelling: str, expected: np.dtype[Any]
) -> None:
    values = sample(expected)
    decoded = BinaryFrame.decode(reference_frame((2, 3), spelling, values.tobytes()))
    assert_same_array(decoded, values)


# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", BOTH_ORDERS, ids=str)
def test_every_plain_dtype_round_trips_bit_exact(dtype: np.dtype[Any]) -> None:
    array = sample(dtype)
    assert_same_array(BinaryFrame.decode(BinaryFrame.encode(array)), array)


@pytest.mark.parametrize(
    ("float_type", "int_type", "patterns"),
    [
        (
            "<f2",
            "<u2",
            [0x7E01, 0x7C01, 0xFE00, 0x8000, 0x7C00, 0xFC00, 0x0001, 0x7BFF],
        ),
        (
            ">f4",
            ">u4",
            [0x7FC00001, 0x7F800001, 0xFFBADBAD, 0x80000000, 0x7F800000, 0x00000001],
        ),
        (
            "<f8",
            "<u8",
            [0x7FF8000000000001, 0x7FF0000000000001, 0x8000000000000000, 0xFFF0000000000000],
        ),
    ],
)
def test_nan_payloads_signed_zero_and_infinities_survive(
    float_type: str, int_type: str, patterns: list[int]
) -> None:
    array = np.array(patterns, dtype=int_type).view(float_type)
    assert_same_array(BinaryFrame.decode(BinaryFrame.encode(array)), array)


def test_complex_nan_payloads_survive() -> None:
    array = np.array([0x7FC00001, 0x80000000, 0xFFBADBAD, 0x3F800000], "<u4").view("<c8")
    assert_same_array(BinaryFrame.decode(BinaryFrame.encode(array)), array)


@pytest.mark.parametrize(
    "shape", [(), (0,), (3, 0), (0, 4, 2), (1,) * MAX_NDIM, (2**32 - 1, 0)], ids=str
)
def test_empty_zero_dimensional_and_degenerate_shapes_round_trip(shape: tuple[int, ...]) -> None:
    array = np.full(shape, 7, dtype=np.int16)
    decoded = BinaryFrame.decode(BinaryFrame.encode(array))
    assert_same_array(decoded, array)
    assert decoded.shape == shape


@pytest.mark.parametrize(
    "array",
    [
        np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2],
        np.asfortranarray(np.arange(12, dtype=">i4").reshape(3, 4)),
        np.arange(12, dtype=np.complex64).reshape(3, 4).T,
        np.arange(10, dtype=np.uint8)[::-3],
    ],
    ids=["strided", "fortran", "transposed", "reversed"],
)
def test_non_contiguous_input_is_sent_in_c_order(array: NDArray[Any]) -> None:
    frame = BinaryFrame.encode(array)
    assert frame == frame_of(np.ascontiguousarray(array))
    decoded = BinaryFrame.decode(frame)
    assert_same_array(decoded, np.ascontiguousarray(array))
    assert decoded.flags.c_contiguous


def test_numpy_scalar_is_a_zero_dimensional_frame() -> None:
    decoded = BinaryFrame.decode(BinaryFrame.encode(np.float32(2.5)))
    assert decoded.shape == ()
    assert decoded.dtype == np.float32
    assert decoded[()] == np.float32(2.5)


class TaggedArray(np.ndarray):
    """A user's ndarray subclass."""


def test_ndarray_subclass_is_encoded_as_its_base_array() -> None:
    base = np.arange(4, dtype=np.int32).reshape(2, 2)
    decoded = BinaryFrame.decode(BinaryFrame.encode(base.view(TaggedArray)))
    assert type(decoded) is np.ndarray
    assert_same_array(decoded, base)


# --- encode_parts / encode_into / encoded_size -------------------------------------------------

VARIED = [
    sample(np.dtype(">f8")),
    np.array(3, dtype=np.uint16),
    np.zeros((0, 5), dtype=np.complex128),
    np.asfortranarray(np.arange(6, dtype=np.int8).reshape(2, 3)),
    np.arange(20, dtype=np.float32)[::4],
]
VARIED_IDS = ["c-order", "zero-d", "empty", "fortran", "strided"]


@pytest.mark.parametrize("array", VARIED, ids=VARIED_IDS)
def test_encode_parts_concatenate_to_encode(array: NDArray[Any]) -> None:
    header, data = BinaryFrame.encode_parts(array)
    assert isinstance(header, bytes)
    assert data.readonly
    assert header + bytes(data) == BinaryFrame.encode(array)


def test_encode_parts_data_is_a_view_of_a_contiguous_array() -> None:
    array = np.arange(8, dtype=np.float64)
    _, data = BinaryFrame.encode_parts(array)
    assert np.shares_memory(np.frombuffer(data, dtype=np.uint8), array)


@pytest.mark.parametrize("array", VARIED, ids=VARIED_IDS)
def test_encode_into_writes_encode_and_returns_its_size(array: NDArray[Any]) -> None:
    frame = BinaryFrame.encode(array)
    buffer = bytearray(b"\xaa" * (len(frame) + 5))
    assert BinaryFrame.encode_into(array, buffer) == len(frame)
    assert bytes(buffer[: len(frame)]) == frame
    assert buffer[len(frame) :] == b"\xaa" * 5


@pytest.mark.parametrize("array", VARIED, ids=VARIED_IDS)
def test_encoded_size_is_the_frame_length(array: NDArray[Any]) -> None:
    assert BinaryFrame.encoded_size(array) == len(BinaryFrame.encode(array))


def test_encode_into_a_memoryview_slice_and_a_non_byte_buffer() -> None:
    array = np.arange(5, dtype=np.int64)
    frame = BinaryFrame.encode(array)
    backing = bytearray(len(frame) + 10)
    assert BinaryFrame.encode_into(array, memoryview(backing)[10:]) == len(frame)
    assert bytes(backing[10:]) == frame
    words = np.zeros(len(frame), dtype=np.uint32)  # format "I", itemsize 4
    assert BinaryFrame.encode_into(array, words.data) == len(frame)
    assert words.tobytes()[: len(frame)] == frame


def test_encode_into_refuses_a_buffer_one_byte_too_small() -> None:
    array = np.arange(4, dtype=np.float32)
    size = BinaryFrame.encoded_size(array)
    with pytest.raises(ValueError, match=rf"^Buffer too small for binary frame: {size - 1} bytes"):
        BinaryFrame.encode_into(array, bytearray(size - 1))
    assert BinaryFrame.encode_into(array, bytearray(size)) == size


def test_encode_into_refuses_a_strided_buffer() -> None:
    strided = memoryview(bytearray(200))[::2]
    with pytest.raises(ValueError, match="C-contiguous buffer"):
        BinaryFrame.encode_into(np.zeros(2), strided)


def test_encode_into_a_signed_byte_view() -> None:
    array = np.arange(3, dtype=np.uint8)
    target = memoryview(bytearray(40)).cast("b")
    size = BinaryFrame.encode_into(array, target)
    assert target.tobytes()[:size] == BinaryFrame.encode(array)


def test_encode_into_refuses_a_read_only_buffer() -> None:
    with pytest.raises(TypeError, match="writable buffer"):
        BinaryFrame.encode_into(np.zeros(2), memoryview(bytes(100)))


# --- decode: ownership ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_decode_copy_is_writable_and_owns_its_data(kind: type) -> None:
    source = bytearray(BinaryFrame.encode(np.arange(6, dtype=np.float32)))
    data = kind(source) if kind is not memoryview else memoryview(source)
    decoded = BinaryFrame.decode(data)
    assert decoded.flags.writeable
    assert decoded.flags.c_contiguous
    assert not np.shares_memory(decoded, np.frombuffer(source, dtype=np.uint8))
    source[-4:] = b"\x00\x00\x80\x7f"
    assert decoded[-1] == 5.0


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview"])
def test_decode_without_copy_is_a_read_only_view(kind: str) -> None:
    frame = BinaryFrame.encode(np.arange(6, dtype=np.float32).reshape(2, 3))
    choices: dict[str, bytes | bytearray | memoryview] = {
        "bytes": frame,
        "bytearray": bytearray(frame),
        "memoryview": memoryview(bytearray(frame)),
    }
    data = choices[kind]
    decoded = BinaryFrame.decode(data, copy=False)
    assert not decoded.flags.writeable
    assert np.shares_memory(decoded, np.frombuffer(data, dtype=np.uint8))
    assert_same_array(decoded, np.arange(6, dtype=np.float32).reshape(2, 3))
    with pytest.raises(ValueError, match="read-only"):
        decoded[0, 0] = 1.0


@pytest.mark.parametrize("array", [np.array(1.5), np.zeros((0, 2))], ids=["zero-d", "empty"])
def test_decode_without_copy_handles_zero_d_and_empty(array: NDArray[Any]) -> None:
    decoded = BinaryFrame.decode(bytearray(BinaryFrame.encode(array)), copy=False)
    assert not decoded.flags.writeable
    assert_same_array(decoded, array)


def test_decode_accepts_non_byte_and_strided_buffers() -> None:
    array = np.arange(5, dtype=np.uint16)
    frame = BinaryFrame.encode(array)  # 18-byte header + 10 bytes: an even length
    as_words = np.frombuffer(frame, dtype=np.uint16)
    assert_same_array(BinaryFrame.decode(as_words.data), array)
    assert_same_array(BinaryFrame.decode(std_array.array("H", frame)), array)  # type: ignore[arg-type]
    interleaved = bytearray(2 * len(frame))
    interleaved[::2] = frame
    strided = memoryview(interleaved)[::2]
    assert not strided.c_contiguous
    assert_same_array(BinaryFrame.decode(strided), array)
    assert_same_array(BinaryFrame.decode(memoryview(frame).cast("B", (4, 7))), array)


@pytest.mark.parametrize("value", ["frame", None, 7, [0, 0, 0, 0]], ids=repr)
def test_decode_of_a_non_buffer_is_a_type_error(value: object) -> None:
    with pytest.raises(TypeError, match="bytes-like object"):
        BinaryFrame.decode(value)  # type: ignore[arg-type]


# --- decode: every malformed frame, at and past each limit -------------------------------------


def u32(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}I", *values)


def expect_error(data: bytes | bytearray, message: str) -> None:
    """``decode`` raises exactly ``ValueError`` whose message matches ``message`` from the start."""
    with pytest.raises(ValueError, match="^" + message) as caught:
        BinaryFrame.decode(data)
    assert type(caught.value) is ValueError


def test_frame_at_the_size_limit_decodes_and_one_byte_more_is_refused() -> None:
    buffer = bytearray(MAX_FRAME_BYTES + 1)
    header = reference_frame((MAX_FRAME_BYTES - 17,), "uint8", b"")
    assert len(header) == 17
    buffer[:17] = header
    limit = memoryview(buffer)[:MAX_FRAME_BYTES]
    assert BinaryFrame.decode(limit, copy=False).shape == (MAX_FRAME_BYTES - 17,)
    expect_error(
        buffer,
        re.escape(
            f"Binary frame exceeds maximum size: {MAX_FRAME_BYTES + 1} bytes > {MAX_FRAME_BYTES}"
        ),
    )


@pytest.mark.parametrize("size", [0, 1, 3])
def test_too_short_for_shape_header(size: int) -> None:
    expect_error(bytes(size), f"Binary frame too short for shape header: {size} bytes")


def test_ndim_at_the_limit_decodes_and_one_more_is_refused() -> None:
    ones = (1,) * MAX_NDIM
    assert BinaryFrame.decode(reference_frame(ones, "int8", b"\x05")).shape == ones
    expect_error(
        reference_frame((1,) * (MAX_NDIM + 1), "int8", b"\x05"),
        re.escape(f"Unreasonable number of dimensions: {MAX_NDIM + 1} > {MAX_NDIM}"),
    )
    expect_error(u32(2**32 - 1), f"Unreasonable number of dimensions: {2**32 - 1} > {MAX_NDIM}")


def test_too_short_for_shape_values() -> None:
    expect_error(
        u32(3, 1, 1), "Binary frame too short for shape values: 12 bytes, 3 dimensions need 16"
    )
    expect_error(u32(1) + b"\x01\x00", "Binary frame too short for shape values: 6 bytes")


def test_too_short_for_dtype_header() -> None:
    expect_error(u32(1, 5), "Binary frame too short for dtype header: 8 bytes, the header needs 12")
    expect_error(u32(0) + b"\x07", "Binary frame too short for dtype header: 5 bytes")


def test_dtype_length_at_the_limit_is_read_and_one_more_is_refused() -> None:
    text = "f" * MAX_DTYPE_BYTES
    # 64 bytes pass the length check and reach the dtype lookup.
    expect_error(reference_frame((), text, b""), re.escape(f"Invalid dtype string {text!r}"))
    expect_error(
        u32(0, MAX_DTYPE_BYTES + 1) + b"f" * (MAX_DTYPE_BYTES + 1),
        re.escape(f"Unreasonable dtype string length: {MAX_DTYPE_BYTES + 1} bytes > 64"),
    )
    expect_error(u32(0, 2**32 - 1), f"Unreasonable dtype string length: {2**32 - 1} bytes")


def test_too_short_for_dtype_string() -> None:
    expect_error(
        u32(0, 7) + b"flo",
        "Binary frame too short for dtype string: 11 bytes, a 7-byte dtype string needs 15",
    )


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"f\xc3", b"\xed\xa0\x80"], ids=repr)
def test_dtype_string_not_utf8(raw: bytes) -> None:
    expect_error(
        u32(0, len(raw)) + raw + b"\x00" * 8,
        re.escape(f"Binary frame dtype string is not valid UTF-8: {raw!r}"),
    )


@pytest.mark.parametrize(
    "text",
    [
        "O",
        "object",
        "V8",
        "|V8",
        "U3",
        "<U3",
        "S2",
        "M8[ns]",
        "datetime64[ns]",
        "m8",
        "(2,)f4",
        "f4,i4",
        "[('a', '<f4')]",
        "float128",
        "f16",
        "<c32",
        "longdouble",
        "int",
        "float",
        "d",
        "f4 ",
        "f4\n",
        "\x00",
        "",
        "f\u00e9",
        ">float32",
        "int0",
        "bool8",
        "T",
    ],
)
def test_invalid_dtype_strings(text: str) -> None:
    raw = text.encode()
    expect_error(
        u32(0, len(raw)) + raw + b"\x00" * 16,
        re.escape(f"Invalid dtype string {text!r}: expected a plain numeric dtype"),
    )


def test_data_size_mismatch_one_byte_short_and_long() -> None:
    payload = bytes(24)
    assert BinaryFrame.decode(reference_frame((2, 3), "<f4", payload)).shape == (2, 3)
    expect_error(
        reference_frame((2, 3), "<f4", payload[:-1]),
        re.escape(
            "Data size mismatch: shape (2, 3) of float32 needs 24 bytes, the frame carries 23"
        ),
    )
    expect_error(
        reference_frame((2, 3), "<f4", payload + b"\x00"),
        re.escape(
            "Data size mismatch: shape (2, 3) of float32 needs 24 bytes, the frame carries 25"
        ),
    )


def test_data_size_mismatch_with_huge_dimensions_does_not_overflow() -> None:
    shape = (2**32 - 1,) * MAX_NDIM
    expected = (2**32 - 1) ** MAX_NDIM * 8
    expect_error(
        reference_frame(shape, "float64", b""),
        re.escape(f"Data size mismatch: shape {shape} of float64 needs {expected} bytes"),
    )


def test_zero_sized_shape_numpy_cannot_represent_is_a_size_mismatch() -> None:
    expect_error(reference_frame((2**32 - 1, 0, 2**32 - 1), "float64", b""), "Data size mismatch")


# --- encode refusals --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("array", "reason"),
    [
        (np.array([object()], dtype=object), "memory addresses"),
        (np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]), "structured"),
        (np.zeros(2, dtype="(2,)f4,i4"), "structured"),
        (np.zeros(2, dtype="U3"), "only bool"),
        (np.zeros(2, dtype="S2"), "only bool"),
        (np.zeros(2, dtype="V8"), "only bool"),
        (np.zeros(2, dtype="M8[ns]"), "only bool"),
        (np.zeros(2, dtype="m8[s]"), "only bool"),
        (np.zeros(2, dtype=np.longdouble), "platform-dependent"),
        (np.zeros(2, dtype=np.clongdouble), "platform-dependent"),
    ],
    ids=lambda value: str(getattr(value, "dtype", value)),
)
def test_encode_refuses_dtypes_decode_could_not_return(array: NDArray[Any], reason: str) -> None:
    with pytest.raises(TypeError, match=rf"^Cannot encode an array of dtype .*{reason}"):
        BinaryFrame.encode(array)
    with pytest.raises(TypeError):
        BinaryFrame.encode_parts(array)
    with pytest.raises(TypeError):
        BinaryFrame.encode_into(array, bytearray(1000))
    with pytest.raises(TypeError):
        BinaryFrame.encoded_size(array)


@pytest.mark.parametrize(
    "value", [[1.0, 2.0], "text", b"bytes", None, 3.5, np.ma.masked_array([1.0], mask=[True])]
)
def test_encode_refuses_non_arrays(value: object) -> None:
    with pytest.raises(TypeError, match=r"numpy\.ndarray|masked array"):
        BinaryFrame.encode(value)  # type: ignore[arg-type]


def test_encode_refuses_more_than_max_ndim() -> None:
    assert BinaryFrame.decode(BinaryFrame.encode(np.zeros((1,) * MAX_NDIM))).ndim == MAX_NDIM
    with pytest.raises(ValueError, match=f"^Cannot encode an array with {MAX_NDIM + 1} dimensions"):
        BinaryFrame.encode(np.zeros((1,) * (MAX_NDIM + 1)))


def test_encode_refuses_a_dimension_of_2_to_the_32() -> None:
    with pytest.raises(ValueError, match=r"every dimension must be below 2\*\*32"):
        BinaryFrame.encode(np.empty((3, 2**32, 0)))


def test_encode_size_limit_at_and_one_byte_past_the_boundary() -> None:
    # A 1-d uint8 frame has a 17-byte header; np.empty does not touch the pages.
    at_limit = np.empty(MAX_FRAME_BYTES - 17, dtype=np.uint8)
    assert BinaryFrame.encoded_size(at_limit) == MAX_FRAME_BYTES
    too_big = np.empty(MAX_FRAME_BYTES - 16, dtype=np.uint8)
    message = (
        f"^Binary frame exceeds maximum size: .* {MAX_FRAME_BYTES + 1} bytes > {MAX_FRAME_BYTES}"
    )
    with pytest.raises(ValueError, match=message):
        BinaryFrame.encode(too_big)
    with pytest.raises(ValueError, match=message):
        BinaryFrame.encoded_size(too_big)
