"""`inspect`: statistics in bounded chunks on a zero-copy view, in words that say what they are."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from juniper_cascor_protocol import tensor_summary
from juniper_cascor_protocol.cli import EXIT_OK, main
from juniper_cascor_protocol.tensor_summary import summarize_frame
from juniper_cascor_protocol.worker import MAX_FRAME_BYTES, BinaryFrame

_DTYPES = st.sampled_from(["<f2", ">f4", "<f8", "<c8", ">c16", "|b1", "<i8", ">u2", "|i1"])


@settings(max_examples=120, deadline=None)
@given(
    hnp.arrays(
        _DTYPES,
        hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=9),
        elements={"allow_subnormal": False},
    ),
    st.integers(min_value=1, max_value=7),
)
def test_chunked_statistics_equal_numpys_over_the_whole_array(
    array: np.ndarray[Any, Any], chunk: int
) -> None:
    expected = _whole_array_statistics(array)
    # Beyond this, squared deviations overflow float64 (numpy's std too): no statistic to compare.
    assume(expected["values"] is None or np.abs(expected["values"]).max() < 1e150)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tensor_summary, "CHUNK_ELEMENTS", chunk)
        summary = summarize_frame(BinaryFrame.encode(array))
    assert (summary.nan_count, summary.inf_count) == expected["non_finite"]
    if expected["values"] is None:
        assert summary.minimum is None
        return
    values = expected["values"]
    assert summary.minimum == values.min()
    assert summary.maximum == values.max()
    scale = max(1.0, float(np.abs(values).max()))
    assert summary.mean == pytest.approx(values.mean(), rel=1e-9, abs=1e-12 * scale)
    assert summary.std == pytest.approx(values.std(), rel=1e-6, abs=1e-6 * scale)


def _whole_array_statistics(array: np.ndarray[Any, Any]) -> dict[str, Any]:
    if array.dtype.kind in "fc":
        non_finite = (int(np.isnan(array).sum()), int(np.isinf(array).sum()))
        finite = array[np.isfinite(array)]
        values = np.abs(finite) if array.dtype.kind == "c" else finite
    else:
        non_finite, values = (0, 0), array.ravel()
    values = values.astype(np.float64)
    return {"non_finite": non_finite, "values": values if values.size else None}


def test_complex_statistics_say_they_are_of_the_magnitude(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "z.bin"
    path.write_bytes(BinaryFrame.encode(np.array([3 + 4j, -6 - 8j], dtype=np.complex64)))
    assert main(["inspect", str(path)]) == EXIT_OK
    assert "stats of |z|: min 5  max 10  mean 7.5  std 2.5" in capsys.readouterr().out
    assert main(["inspect", "--json", str(path)]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["statistics_of"] == "magnitude"


def test_one_element_is_one_element(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "one.bin"
    path.write_bytes(BinaryFrame.encode(np.array([1], dtype=np.uint8)))
    assert main(["inspect", str(path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "size:    1 element, 1 byte of payload" in out
    assert "stats:   min 1  max 1  mean 1  std 0" in out


def test_an_oversized_standard_input_is_named_by_the_limit(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class _Stdin:
        class buffer:  # noqa: N801 - the attribute sys.stdin has
            @staticmethod
            def read(size: int) -> bytes:
                return b"\0" * size  # an endless input: only size bytes are ever asked for

    monkeypatch.setattr(sys, "stdin", _Stdin)
    assert main(["inspect", "--json", "-"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["reason"] == (
        f"standard input holds more than {MAX_FRAME_BYTES} bytes, the frame limit "
        "(MAX_FRAME_BYTES); not read further"
    )


_MEASURE = """
import resource, sys
from juniper_cascor_protocol.cli import main
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
code = main(["inspect", "--json", sys.argv[1]])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
print((after - before) * scale, code, file=sys.stderr)
"""


@pytest.mark.parametrize("dtype", ["|b1", "<f4", "<c8"])
def test_a_100_mib_frame_needs_little_more_memory_than_its_own_size(
    tmp_path: Path, dtype: str
) -> None:
    itemsize = np.dtype(dtype).itemsize
    elements = (MAX_FRAME_BYTES - 64) // itemsize
    path = tmp_path / "big.bin"
    # A 1-D header (ndim, then the one dimension at bytes 4..8), then the data a slice at a
    # time: the test never holds the frame either.
    header = bytearray(BinaryFrame.encode_parts(np.zeros(1, dtype=dtype))[0])
    header[4:8] = struct.pack("<I", elements)
    with path.open("wb") as frame:
        frame.write(header)
        rng = np.random.default_rng(7)
        for start in range(0, elements, 1 << 22):
            count = min(1 << 22, elements - start)
            frame.write(rng.standard_normal(count).astype(dtype).tobytes())
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)], capture_output=True, text=True, timeout=300
    )
    growth, code = done.stderr.split()
    assert int(code) == EXIT_OK, done.stdout
    assert json.loads(done.stdout)["elements"] == elements
    # The frame's own pages (mapped, not copied) plus bounded temporaries: before, a bool frame
    # of this size took 1.78 GB.
    assert int(growth) < path.stat().st_size + 48 * 2**20
