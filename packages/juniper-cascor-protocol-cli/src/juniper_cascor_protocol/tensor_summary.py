"""Describe one binary tensor frame of ``/ws/v1/workers``: what it holds, or why it is malformed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from juniper_cascor_protocol.worker import BinaryFrame

__all__ = ["TensorSummary", "summarize_frame"]


@dataclass(frozen=True, slots=True)
class TensorSummary:
    """Shape, dtype and statistics of a decoded frame.

    Statistics are over the finite values (the magnitude for complex dtypes, 0/1 for bool);
    they are None when the array has no finite value.
    """

    shape: tuple[int, ...]
    dtype: str
    elements: int
    payload_bytes: int
    frame_bytes: int
    minimum: float | None
    maximum: float | None
    mean: float | None
    std: float | None
    nan_count: int
    inf_count: int

    def to_json(self) -> dict[str, Any]:
        """The summary as a JSON-compatible dict (what ``inspect --json`` prints)."""
        return {name: getattr(self, name) for name in self.__slots__} | {"shape": list(self.shape)}

    def render(self) -> str:
        """The summary as text for people, one property a line."""
        lines = [
            f"shape:   {self.shape}",
            f"dtype:   {self.dtype}",
            f"size:    {self.elements} elements, {self.payload_bytes} payload bytes "
            f"({self.frame_bytes} bytes with header)",
        ]
        if self.minimum is None:
            lines.append("stats:   no finite values")
        else:
            lines.append(
                f"stats:   min {self.minimum:.6g}  max {self.maximum:.6g}  "
                f"mean {self.mean:.6g}  std {self.std:.6g}"
            )
        lines.append(f"non-finite: {self.nan_count} NaN, {self.inf_count} Inf")
        return "\n".join(lines)


def summarize_frame(data: bytes | bytearray | memoryview) -> TensorSummary:
    """Decode ``data`` without copying it and summarise it.

    Raises ``ValueError`` with ``BinaryFrame``'s established wording for a malformed frame.
    """
    array = BinaryFrame.decode(data, copy=False)
    values: np.ndarray[Any, Any] = array
    if values.dtype.kind == "c":
        nan_count = int(np.count_nonzero(np.isnan(values)))
        inf_count = int(np.count_nonzero(np.isinf(values)))
        values = np.abs(values)
    elif values.dtype.kind == "f":
        nan_count = int(np.count_nonzero(np.isnan(values)))
        inf_count = int(np.count_nonzero(np.isinf(values)))
    else:
        nan_count = inf_count = 0
    finite = values[np.isfinite(values)] if values.dtype.kind in "fc" else values.ravel()
    stats: tuple[float | None, ...] = (None, None, None, None)
    if finite.size:
        # float64 accumulation: float16 sums overflow and integer means would truncate.
        as_float = finite.astype(np.float64)
        stats = (
            float(as_float.min()),
            float(as_float.max()),
            float(as_float.mean()),
            float(as_float.std()),
        )
    return TensorSummary(
        shape=tuple(int(n) for n in array.shape),
        dtype=str(array.dtype),
        elements=int(array.size),
        payload_bytes=int(array.nbytes),
        frame_bytes=memoryview(data).nbytes,
        minimum=stats[0],
        maximum=stats[1],
        mean=stats[2],
        std=stats[3],
        nan_count=nan_count,
        inf_count=inf_count,
    )
