"""``BinaryFrame.decode`` of any bytes: as ``bytes``, ``bytearray``, ``memoryview`` (contiguous
and strided), with ``copy`` both ways.

Contract (README "Binary tensor frames", docs/protocol.md): a malformed frame raises
``ValueError`` only, starting with one of ``DECODE_ERROR_PREFIXES``, the same for every buffer
type; a valid one gives the same dtype, shape and bytes through every buffer type, never more
bytes than the frame holds; ``copy=True`` is writable, C-contiguous and owns its data;
``copy=False`` is read-only and locks a ``bytearray`` against resizing; the array encodes back
to a frame that decodes to it, byte for byte the input when the input spelled its dtype as
``str(array.dtype)``.
"""

from __future__ import annotations

import struct
from typing import Any

from fuzz._harness import ContractBreach, instrumented, run

with instrumented():
    import numpy as np
    from numpy.typing import NDArray

    from juniper_cascor_protocol.worker import DECODE_ERROR_PREFIXES, BinaryFrame


def _outcome(data: Any, copy: bool) -> NDArray[Any] | str:
    """The decoded array, or the message of the ``ValueError``; anything else escapes."""
    try:
        return BinaryFrame.decode(data, copy=copy)
    except ValueError as error:
        message = str(error)
        if not message.startswith(DECODE_ERROR_PREFIXES):
            raise ContractBreach(f"ValueError without an established prefix: {message}") from None
        return message


def _dtype_text(data: bytes, ndim: int) -> bytes:
    (length,) = struct.unpack_from("<I", data, 4 + 4 * ndim)
    start = 8 + 4 * ndim
    return data[start : start + length]


def _check_array(array: NDArray[Any], data: bytes, copy: bool, how: str) -> None:
    if array.nbytes > len(data):
        raise ContractBreach(f"{how}: {array.nbytes} bytes decoded from a {len(data)}-byte frame")
    if copy and not (array.flags.writeable and array.flags.c_contiguous and array.flags.owndata):
        raise ContractBreach(f"{how}: copy=True gave {array.flags}")
    if not copy and array.flags.writeable:
        raise ContractBreach(f"{how}: copy=False gave a writable array")


def test_one_input(data: bytes) -> None:
    strided_source = bytearray(2 * len(data))
    strided_source[::2] = data
    inputs: list[tuple[str, Any]] = [
        ("bytes", data),
        ("bytearray", bytearray(data)),
        ("memoryview", memoryview(data)),
        ("strided memoryview", memoryview(strided_source)[::2]),
    ]
    reference = _outcome(data, True)
    for how, buffer in inputs:
        for copy in (True, False):
            outcome = _outcome(buffer, copy)
            label = f"{how}, copy={copy}"
            if isinstance(reference, str) or isinstance(outcome, str):
                if outcome != reference:
                    raise ContractBreach(f"{label}: {outcome!r} where bytes gave {reference!r}")
                continue
            _check_array(outcome, data, copy, label)
            if (outcome.dtype, outcome.shape) != (reference.dtype, reference.shape) or (
                outcome.tobytes() != reference.tobytes()
            ):
                raise ContractBreach(f"{label}: decodes differently from bytes")
            if how == "bytearray" and not copy and outcome.nbytes:
                try:
                    buffer.clear()
                except BufferError:
                    pass
                else:
                    raise ContractBreach("a bytearray was resized under a copy=False view")
            del outcome
    if isinstance(reference, str):
        return
    frame = BinaryFrame.encode(reference)
    if len(frame) != BinaryFrame.encoded_size(reference):
        raise ContractBreach("encoded_size disagrees with encode")
    again = BinaryFrame.decode(frame)
    if (again.dtype, again.shape, again.tobytes()) != (
        reference.dtype,
        reference.shape,
        reference.tobytes(),
    ):
        raise ContractBreach("the decoded array does not survive encode and decode")
    if _dtype_text(data, reference.ndim) == str(reference.dtype).encode() and frame != data:
        raise ContractBreach("a canonical frame re-encodes to different bytes")
    if reference.dtype != np.dtype(reference.dtype.str):
        raise ContractBreach(f"dtype {reference.dtype!r} is not a plain numeric dtype")


if __name__ == "__main__":
    run(test_one_input)
