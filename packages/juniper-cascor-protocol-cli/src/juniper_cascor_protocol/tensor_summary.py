"""Describe one binary tensor frame of ``/ws/v1/workers``: what it holds, or why it is malformed.

The frame is decoded without a copy (``BinaryFrame.decode(..., copy=False)``) and its statistics
are computed a bounded chunk of elements at a time, so summarising a 100 MiB frame held in an
``mmap`` needs little memory beyond the frame's own pages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from juniper_cascor_protocol.worker import BinaryFrame

__all__ = ["CHUNK_ELEMENTS", "TensorSummary", "summarize_frame"]

CHUNK_ELEMENTS: Final = 1 << 18
"""Elements per chunk of the statistics: a few MiB of float64 temporaries at a time."""

MAGNITUDE: Final = "magnitude"
VALUE: Final = "value"


@dataclass(frozen=True, slots=True)
class TensorSummary:
    """Shape, dtype and statistics of a decoded frame.

    Statistics are over the finite values (``statistics_of`` says of what: ``"magnitude"``,
    ``|z|``, for complex dtypes; ``"value"`` otherwise, 0/1 for bool); they are None when the
    array has no finite value.
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
    statistics_of: str = VALUE

    def to_json(self) -> dict[str, Any]:
        """The summary as a JSON-compatible dict (what ``inspect --json`` prints)."""
        return {name: getattr(self, name) for name in self.__slots__} | {"shape": list(self.shape)}

    def render(self) -> str:
        """The summary as text for people, one property a line."""
        element_word = "element" if self.elements == 1 else "elements"
        lines = [
            f"shape:   {self.shape}",
            f"dtype:   {self.dtype}",
            f"size:    {self.elements} {element_word}, {_bytes(self.payload_bytes)} of payload "
            f"({_bytes(self.frame_bytes)} with the header)",
        ]
        label = ("stats of |z|: " if self.statistics_of == MAGNITUDE else "stats: ").ljust(9)
        if self.minimum is None:
            lines.append(f"{label}no finite values")
        else:
            lines.append(
                f"{label}min {self.minimum:.6g}  max {self.maximum:.6g}  "
                f"mean {self.mean:.6g}  std {self.std:.6g}"
            )
        lines.append(f"non-finite: {self.nan_count} NaN, {self.inf_count} Inf")
        return "\n".join(lines)


def _bytes(count: int) -> str:
    return f"{count} byte" if count == 1 else f"{count} bytes"


class _Moments:
    """Count, min, max, mean and the sum of squared deviations, merged chunk by chunk (Chan)."""

    __slots__ = ("count", "m2", "maximum", "mean", "minimum")

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.minimum = math.inf
        self.maximum = -math.inf

    def add(self, values: np.ndarray[Any, np.dtype[np.float64]]) -> None:
        n = int(values.size)
        if n == 0:
            return
        chunk_mean = float(values.mean())
        chunk_m2 = float(np.square(values - chunk_mean).sum())
        if self.count == 0:
            self.count, self.mean, self.m2 = n, chunk_mean, chunk_m2
        else:
            total = self.count + n
            delta = chunk_mean - self.mean
            self.mean += delta * n / total
            self.m2 += chunk_m2 + delta * delta * (self.count * n / total)
            self.count = total
        self.minimum = min(self.minimum, float(values.min()))
        self.maximum = max(self.maximum, float(values.max()))


def summarize_frame(data: bytes | bytearray | memoryview | Any) -> TensorSummary:
    """Decode ``data`` (any buffer: ``bytes``, an ``mmap``...) without copying it and summarise it.

    Raises ``ValueError`` with ``BinaryFrame``'s established wording for a malformed frame.
    """
    array = BinaryFrame.decode(data, copy=False)
    flat = array.reshape(-1)  # a view: the decoded frame is contiguous
    kind = array.dtype.kind
    moments = _Moments()
    nan_count = inf_count = 0
    for start in range(0, flat.size, CHUNK_ELEMENTS):
        chunk = flat[start : start + CHUNK_ELEMENTS]
        if kind in "fc":
            nan_count += int(np.count_nonzero(np.isnan(chunk)))
            inf_count += int(np.count_nonzero(np.isinf(chunk)))
            finite = chunk[np.isfinite(chunk)]
            # float64 accumulation: float16 sums overflow; |z| of a complex is its magnitude.
            values = np.abs(finite) if kind == "c" else finite
            moments.add(values.astype(np.float64, copy=False))
        else:
            moments.add(chunk.astype(np.float64))
    stats: tuple[float | None, ...] = (None, None, None, None)
    if moments.count:
        std = math.sqrt(max(moments.m2, 0.0) / moments.count)
        stats = (moments.minimum, moments.maximum, moments.mean, std)
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
        statistics_of=MAGNITUDE if kind == "c" else VALUE,
    )
