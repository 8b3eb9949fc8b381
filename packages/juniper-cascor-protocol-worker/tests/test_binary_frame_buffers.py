"""BinaryFrame's zero-copy paths and the caller's buffers: nothing can be freed under a view.

A view returned by ``decode(..., copy=False)`` or ``encode_parts`` must hold a buffer export of
the memory it points into, as ``numpy.frombuffer`` does, so that resizing a ``bytearray``,
growing an ``array.array`` or closing an ``mmap`` under it raises ``BufferError`` rather than
leaving the view on freed memory. Every test tries the resize *before* reading the view, so
that a regression fails the assertion instead of crashing the run. The reverse holds too: once
the view is gone, or when a call copies or fails, no export is left behind.
"""

from __future__ import annotations

import array as std_array
import gc
import mmap
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from juniper_cascor_protocol.worker import BinaryFrame

VALUES = np.arange(1 << 12, dtype=np.float32)
MATRIX = VALUES.reshape(64, 64)


class Source:
    """A resizable buffer holding one frame, and how to try resizing it."""

    def __init__(self, kind: str, frame: bytes) -> None:
        self.kind = kind
        self.backing: bytearray | std_array.array[int] | mmap.mmap
        if kind == "array.array":
            self.backing = std_array.array("B", frame)
        elif kind == "mmap":
            self.backing = mmap.mmap(-1, len(frame))
            self.backing.write(frame)
        else:
            self.backing = bytearray(frame)
        # What decode is given: the buffer itself, or a view the caller may release later.
        self.given: Any = (
            memoryview(self.backing) if kind.startswith("memoryview") else self.backing
        )
        if kind == "memoryview slice":
            self.given = self.given[:]

    def resize(self) -> None:
        """Free or move the memory if nothing holds an export of it."""
        if isinstance(self.backing, bytearray):
            self.backing.clear()
            self.backing.extend(bytes(64))
        elif isinstance(self.backing, std_array.array):
            self.backing.extend(bytes(1 << 16))
        else:
            self.backing.close()

    def release_callers_view(self) -> None:
        if isinstance(self.given, memoryview):
            self.given.release()


KINDS = ["bytearray", "memoryview", "memoryview slice", "array.array", "mmap"]


def base_chain(array: NDArray[Any]) -> list[object]:
    chain: list[object] = []
    base = array.base
    while base is not None:
        chain.append(base)
        base = base.base if isinstance(base, np.ndarray) else None
    return chain


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("expected", [VALUES, MATRIX], ids=["1-d", "2-d"])
def test_a_view_locks_the_buffer_it_was_decoded_from(kind: str, expected: NDArray[Any]) -> None:
    source = Source(kind, BinaryFrame.encode(expected))
    view = BinaryFrame.decode(source.given, copy=False)
    source.release_callers_view()  # the caller's own view may go; the decoded one stays valid
    with pytest.raises(BufferError):
        source.resize()
    assert any(isinstance(base, memoryview) for base in base_chain(view))
    assert np.array_equal(view, expected)
    del view
    gc.collect()
    source.resize()  # the lock went with the view


def test_the_lock_is_a_memoryview_of_the_callers_bytearray_in_the_base_chain() -> None:
    backing = bytearray(BinaryFrame.encode(MATRIX))
    view = BinaryFrame.decode(backing, copy=False)
    exports = [base for base in base_chain(view) if isinstance(base, memoryview)]
    assert [export.obj for export in exports] == [backing]
    with pytest.raises(BufferError):
        backing.clear()
    assert np.array_equal(view, MATRIX)


@pytest.mark.parametrize("kind", KINDS)
def test_a_copy_leaves_no_export_behind(kind: str) -> None:
    source = Source(kind, BinaryFrame.encode(MATRIX))
    owned = BinaryFrame.decode(source.given)
    source.release_callers_view()
    source.resize()
    assert np.array_equal(owned, MATRIX)


@pytest.mark.parametrize("kind", ["memoryview", "memoryview slice", "array.array"])
def test_a_refused_frame_leaves_no_export_behind(kind: str) -> None:
    source = Source(kind, BinaryFrame.encode(VALUES)[:-1])
    with pytest.raises(ValueError, match="Data size mismatch") as refused:
        BinaryFrame.decode(source.given, copy=False)
    # The traceback is still alive here, as in the caller's ``except`` block.
    assert refused.tb is not None
    source.release_callers_view()
    source.resize()


def test_encode_parts_data_keeps_a_decoded_views_buffer_locked() -> None:
    backing = bytearray(BinaryFrame.encode(MATRIX))
    view = BinaryFrame.decode(backing, copy=False)
    header, data = BinaryFrame.encode_parts(view)
    del view
    gc.collect()
    with pytest.raises(BufferError):
        backing.clear()
    assert header + bytes(data) == BinaryFrame.encode(MATRIX)
    data.release()
    backing.clear()


def test_encode_parts_data_keeps_the_array_alive_and_refuses_writes() -> None:
    backing = bytearray(VALUES.tobytes())
    array = np.frombuffer(backing, np.float32)
    _, data = BinaryFrame.encode_parts(array)
    del array
    gc.collect()
    with pytest.raises(BufferError):
        backing.clear()
    assert data.readonly
    assert bytes(data) == VALUES.tobytes()


ENCODE_INTO_TARGETS: dict[str, Callable[[bytearray], Any]] = {
    "bytearray": lambda backing: backing,
    "memoryview": memoryview,
    "signed-byte view": lambda backing: memoryview(backing).cast("b"),
}


@pytest.mark.parametrize("target", list(ENCODE_INTO_TARGETS))
@pytest.mark.parametrize("array", [MATRIX, MATRIX.T], ids=["c-order", "transposed"])
def test_encode_into_leaves_the_buffer_resizable(target: str, array: NDArray[Any]) -> None:
    backing = bytearray(BinaryFrame.encoded_size(array))
    given = ENCODE_INTO_TARGETS[target](backing)
    assert BinaryFrame.encode_into(array, given) == len(backing)
    if isinstance(given, memoryview):
        given.release()
    encoded = bytes(backing)
    backing.extend(b"more")
    assert encoded == BinaryFrame.encode(array)


@pytest.mark.parametrize("target", list(ENCODE_INTO_TARGETS))
def test_a_buffer_too_small_can_be_grown_in_the_except_block(target: str) -> None:
    backing = bytearray(16)
    given = ENCODE_INTO_TARGETS[target](backing)
    try:
        BinaryFrame.encode_into(MATRIX, given)
    except ValueError:
        if isinstance(given, memoryview):
            given.release()
        backing.extend(bytes(BinaryFrame.encoded_size(MATRIX)))  # grow, then retry
    else:
        raise AssertionError("a 16-byte buffer was accepted")
    size = BinaryFrame.encode_into(MATRIX, backing)
    assert bytes(backing[:size]) == BinaryFrame.encode(MATRIX)
