"""Speed and memory of BinaryFrame, as ratios to floors measured in the same run.

For float32 payloads of 1 KB to 64 MB this times BinaryFrame's owned decode, encode,
encode_into and zero-copy decode, and four floors, the least work each must do:

* ``copy``: ``bytes(memoryview(payload))``, one allocation and one copy;
* ``join``: ``b"".join((header, array.data))`` (``array.data`` is its memoryview), the header
  built beforehand: what encode cannot do with less;
* ``frombuffer``: ``np.frombuffer(frame, dtype, offset=k).reshape(shape).copy()``, what decode
  cannot do with less, given the header's offset, dtype and shape;
* ``frombuffer view``: the same without ``.copy()``, for ``decode(copy=False)``.

It prints a table and the targets with PASS/MISS at the end of the session:

* at 1 KB, where the fixed cost of a call dominates: encode within 2x ``join``, decode within
  1.25x ``frombuffer`` and decode(copy=False) within 1.3x ``frombuffer view``;
* at 64 KB, encode and decode within 2x ``copy``;
* from 1 MB up, where the copy dominates, decode, encode and encode_into within 1.15x ``copy``;
* zero-copy decode about constant across sizes (64 MB within 2x of 1 KB);
* at 16 MB, decode and encode allocate at most 1x the payload beyond their result (tracemalloc).

Machines are noisy, so a MISS is reported, not failed; what is timed is checked for correctness.
Times are the best round (least disturbed by other processes), identical for every operation.
"""

from __future__ import annotations

import functools
import struct
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from juniper_cascor_protocol.worker import BinaryFrame

SIZES = {"1 KB": 2**10, "64 KB": 2**16, "1 MB": 2**20, "16 MB": 2**24, "64 MB": 2**26}
FLOORS = {
    "copy": "bytes(memoryview(payload))",
    "join": 'b"".join((header, array.data))',
    "frombuffer": "np.frombuffer(frame, dtype, offset=k).reshape(shape).copy()",
    "frombuffer view": "np.frombuffer(frame, dtype, offset=k).reshape(shape)",
}
OPERATIONS = {
    **FLOORS,
    "decode": "decode(frame)",
    "encode": "encode(array)",
    "encode_into": "encode_into(array, buffer)",
    "view": "decode(frame, copy=False)",
}
# (operation, floor, target ratio, sizes)
RATIO_TARGETS = [
    ("encode", "join", 2.0, ["1 KB"]),
    ("decode", "frombuffer", 1.25, ["1 KB"]),
    ("view", "frombuffer view", 1.3, ["1 KB"]),
    ("encode", "copy", 2.0, ["64 KB"]),
    ("decode", "copy", 2.0, ["64 KB"]),
    ("decode", "copy", 1.15, ["1 MB", "16 MB", "64 MB"]),
    ("encode", "copy", 1.15, ["1 MB", "16 MB", "64 MB"]),
    ("encode_into", "copy", 1.15, ["1 MB", "16 MB", "64 MB"]),
]
CONSTANT_TARGET = 2.0
MEMORY_SIZE = "16 MB"
MEMORY_TARGET = 1.0


@dataclass
class CodecReport:
    """Collects the measurements; pytest calls ``pytest_terminal_summary`` at the very end."""

    seconds: dict[tuple[str, str], float] = field(default_factory=dict)
    extra_memory: dict[str, float] = field(default_factory=dict)

    @pytest.hookimpl(trylast=True)  # after pytest-benchmark's own tables
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.seconds:
            for line in self.lines():
                terminalreporter.write_line(line)

    def lines(self) -> list[str]:
        lines = ["", "BinaryFrame and its floors, float32, best round (x: ratio to copy):"]
        ops = list(OPERATIONS)[1:]
        lines.append(f"{'size':>6} {'copy':>10}" + "".join(f" {op:>18}" for op in ops))
        for size in SIZES:
            floor = self.seconds.get((size, "copy"))
            if floor is None:
                continue
            cells = [f"{size:>6} {_time(floor):>10}"]
            for op in ops:
                took = self.seconds.get((size, op))
                cells.append(
                    " " * 19 if took is None else f" {_time(took):>9} {took / floor:>6.2f}x"
                )
            lines.append("".join(cells))
        lines += ["", "Targets:"]
        lines += self._ratio_lines() + self._view_lines() + self._memory_lines()
        return lines

    def _ratio_lines(self) -> list[str]:
        lines = []
        for op, floor, target, sizes in RATIO_TARGETS:
            cells = [
                f"{size} {ratio:.2f}x {_verdict(ratio <= target)}"
                for size in sizes
                if (size, op) in self.seconds and (size, floor) in self.seconds
                for ratio in [self.seconds[size, op] / self.seconds[size, floor]]
            ]
            if cells:
                lines.append(f"  {op} <= {target}x {floor}: " + ", ".join(cells))
        return lines

    def _view_lines(self) -> list[str]:
        small, large = self.seconds.get(("1 KB", "view")), self.seconds.get(("64 MB", "view"))
        if small is None or large is None:
            return []
        growth = large / small
        return [
            f"  decode(copy=False) constant: 64 MB takes {growth:.2f}x the 1 KB time "
            f"(<= {CONSTANT_TARGET}x) {_verdict(growth <= CONSTANT_TARGET)}"
        ]

    def _memory_lines(self) -> list[str]:
        return [
            f"  {op} at {MEMORY_SIZE}: peak memory beyond the result {extra:.2f}x the payload "
            f"(<= {MEMORY_TARGET}x) {_verdict(extra <= MEMORY_TARGET)}"
            for op, extra in self.extra_memory.items()
        ]


def _time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.2f} {unit}"
    return f"{seconds / 1e-9:.0f} ns"


def _verdict(passed: bool) -> str:
    return "PASS" if passed else "MISS"


@pytest.fixture(scope="session")
def report(pytestconfig: pytest.Config) -> CodecReport:
    name = "tensor-codec-report"
    plugin = pytestconfig.pluginmanager.get_plugin(name)
    if plugin is None:
        plugin = CodecReport()
        pytestconfig.pluginmanager.register(plugin, name)
    assert isinstance(plugin, CodecReport)
    return plugin


@dataclass(frozen=True)
class Payload:
    array: NDArray[np.float32]
    payload: bytes
    frame: bytes
    header: bytes


@functools.lru_cache(maxsize=1)  # one size at a time: the 64 MB case is large enough
def payload_of(size: str) -> Payload:
    count = SIZES[size] // 4
    array = np.arange(count, dtype=np.float32) * np.float32(0.5) - np.float32(3.0)
    payload = array.tobytes()
    # The layout written out by hand, independently of BinaryFrame.
    header = struct.pack("<III", 1, count, 7) + b"float32"
    return Payload(array, payload, header + payload, header)


def operation(op: str, data: Payload, buffer: bytearray) -> Callable[[], object]:
    dtype, shape, offset = data.array.dtype, data.array.shape, len(data.header)
    return {
        "copy": lambda: bytes(memoryview(data.payload)),
        "join": lambda: b"".join((data.header, data.array.data)),
        "frombuffer": lambda: np.frombuffer(data.frame, dtype, offset=offset).reshape(shape).copy(),
        "frombuffer view": lambda: np.frombuffer(data.frame, dtype, offset=offset).reshape(shape),
        "decode": lambda: BinaryFrame.decode(data.frame),
        "encode": lambda: BinaryFrame.encode(data.array),
        "encode_into": lambda: BinaryFrame.encode_into(data.array, buffer),
        "view": lambda: BinaryFrame.decode(data.frame, copy=False),
    }[op]


def check(op: str, result: object, data: Payload, buffer: bytearray) -> None:
    """What was timed did the right thing."""
    if op == "copy":
        assert result == data.payload
    elif op in ("join", "encode", "encode_into"):
        frame = bytes(buffer) if op == "encode_into" else result
        assert op != "encode_into" or result == len(data.frame)
        assert frame == data.frame
    else:
        assert isinstance(result, np.ndarray)
        assert result.dtype == np.float32
        assert result.shape == data.array.shape
        assert result.tobytes() == data.payload
        owned = op in ("decode", "frombuffer")
        assert result.flags.writeable is owned
        assert np.shares_memory(result, np.frombuffer(data.frame, np.uint8)) is not owned


def peak_extra_memory(run: Callable[[], object], payload_bytes: int) -> float:
    """Peak traced allocation during ``run()`` beyond its result, in multiples of the payload."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        result = run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    kept = result.nbytes if isinstance(result, np.ndarray) else len(result)  # type: ignore[arg-type]
    return (peak - before - kept) / payload_bytes


CASES = [(size, op) for size in SIZES for op in OPERATIONS]


@pytest.mark.benchmark(min_rounds=5, max_time=0.25, warmup=True, warmup_iterations=3)
@pytest.mark.parametrize(("size", "op"), CASES, ids=[f"{s.replace(' ', '')}-{o}" for s, o in CASES])
def test_tensor_codec(benchmark: Any, report: CodecReport, size: str, op: str) -> None:
    data = payload_of(size)
    buffer = bytearray(len(data.frame))
    run = operation(op, data, buffer)
    benchmark.group = f"tensor codec {size}"
    result = benchmark(run)
    check(op, result, data, buffer)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # None when benchmarks are disabled: nothing was timed
        report.seconds[size, op] = stats.stats.min
    if size == MEMORY_SIZE and op in ("decode", "encode"):
        report.extra_memory[op] = peak_extra_memory(run, len(data.payload))
