"""The binary frames that follow one ``task_assign`` or ``task_result``, received within a budget.

A manifest tells, before any frame arrives, how large each frame can be: its data is
``prod(shape) * itemsize`` bytes and its header at most ``8 + 4 * ndim + MAX_DTYPE_BYTES``. A
batch whose frames could exceed the byte budget is refused at once, and its frames are then
counted and dropped as they come, never held: a session never holds more than its budget.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from numpy.typing import NDArray

from juniper_cascor_protocol.worker._bounded_text import clip
from juniper_cascor_protocol.worker.binary_frame import (
    MAX_DTYPE_BYTES,
    MAX_FRAME_BYTES,
    BinaryFrame,
    dtype_from_text,
)
from juniper_cascor_protocol.worker.manifest import TensorSpec, check_tensors

__all__ = ["TensorBatch", "largest_frame_bytes"]


def largest_frame_bytes(spec: TensorSpec) -> int:
    """The most bytes the frame of ``spec`` can take, header included."""
    dtype = dtype_from_text(spec.dtype)
    itemsize = 1 if dtype is None else dtype.itemsize
    return 8 + 4 * len(spec.shape) + MAX_DTYPE_BYTES + math.prod(spec.shape) * itemsize


class TensorBatch:
    """Collects one binary frame per manifest entry, in manifest order, and checks them.

    Args:
        manifest: the ``tensor_manifest`` of the message the frames follow.
        budget: the most bytes of frames this batch may hold at once.
        keep: False to count and drop the frames without decoding (a result already refused).
        required: names the manifest must list.
    """

    __slots__ = ("_names", "_next", "arrays", "held_bytes", "keep", "manifest", "problems")

    def __init__(
        self,
        manifest: Mapping[str, TensorSpec],
        *,
        budget: int,
        keep: bool = True,
        required: tuple[str, ...] = (),
    ) -> None:
        self.manifest: Mapping[str, TensorSpec] = manifest
        self._names = list(manifest)
        self._next = 0
        self.arrays: dict[str, NDArray[Any]] = {}
        self.problems: list[str] = [
            f"{name}: required tensor missing from the manifest"
            for name in required
            if name not in manifest
        ]
        self.held_bytes: int = 0
        self.keep: bool = keep
        if keep:
            self._check_sizes(budget)

    def _check_sizes(self, budget: int) -> None:
        sizes = {name: largest_frame_bytes(spec) for name, spec in self.manifest.items()}
        too_large = [name for name, size in sizes.items() if size > MAX_FRAME_BYTES]
        for name in too_large:
            self.problems.append(
                f"{name}: its frame would take {sizes[name]} bytes > {MAX_FRAME_BYTES} "
                "(MAX_FRAME_BYTES)"
            )
        total = sum(sizes.values())
        if not too_large and total > budget:
            self.problems.append(
                f"the batch's frames could take {total} bytes > this session's budget of "
                f"{budget} bytes"
            )
        if self.problems:
            self.keep = False

    @property
    def frames_awaited(self) -> int:
        """How many frames have not arrived yet."""
        return len(self._names) - self._next

    def add(self, frame: bytes | bytearray | memoryview) -> None:
        """Take the next frame: decode it (a view of ``frame``, no copy) or note its problem.

        A mutable buffer is copied once into ``bytes`` first, so that the arrays never change.
        """
        name = self._names[self._next]
        self._next += 1
        if not self.keep:
            return
        size = frame.nbytes if isinstance(frame, memoryview) else len(frame)
        allowed = largest_frame_bytes(self.manifest[name])
        if size > allowed:
            self.problems.append(
                f"{name}: frame of {size} bytes, its manifest entry allows {allowed}"
            )
            self._drop()
            return
        data = frame if type(frame) is bytes else bytes(frame)
        try:
            self.arrays[name] = BinaryFrame.decode(data, copy=False)
        except ValueError as error:
            self.problems.append(clip(f"{name}: {error}"))
            self._drop()
            return
        self.held_bytes += size

    def finish(self) -> list[str]:
        """Once every frame came: check the arrays against the manifest; every problem found.

        When there is any, the arrays are released.
        """
        if not self.problems:
            self.problems += [str(error) for error in check_tensors(self.manifest, self.arrays)]
        if self.problems:
            self._drop()
        return self.problems

    def reason(self) -> str:
        """The problems as one bounded line."""
        return clip("; ".join(self.problems))

    def _drop(self) -> None:
        self.keep = False
        self.arrays = {}
        self.held_bytes = 0
