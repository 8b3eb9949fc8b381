"""Ctrl-C and a closed pipe end the tool as a Unix user expects: one line or none, no traceback."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from juniper_cascor_protocol.cli import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, main
from juniper_cascor_protocol.envelope import reset_unknown_label_state

_LINE = b'{"type": "metrics", "timestamp": 1.0, "data": {}, "seq": %d}\n'


def _run_tool(
    prelude: str, args: list[str], stdout: int = subprocess.PIPE
) -> subprocess.CompletedProcess[bytes]:
    """Run the console script's entry point in a fresh interpreter, after ``prelude``."""
    script = (
        f"{prelude}\nimport sys\nsys.argv = ['juniper-cascor-protocol', *{args!r}]\n"
        "from _juniper_cascor_protocol_cli import main\nraise SystemExit(main())\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script], stdout=stdout, stderr=subprocess.PIPE, timeout=120
    )


# Ctrl-C at a known point: when the package's first import of numpy starts.
_CTRL_C_DURING_IMPORT = """
import builtins, os, signal
_real_import = builtins.__import__
def _import(name, *args, **kwargs):
    if name == "numpy":
        builtins.__import__ = _real_import
        os.kill(os.getpid(), signal.SIGINT)
    return _real_import(name, *args, **kwargs)
builtins.__import__ = _import
"""


def test_ctrl_c_while_the_tool_is_still_importing_exits_130_with_one_line() -> None:
    done = _run_tool(_CTRL_C_DURING_IMPORT, ["--version"])
    assert done.returncode == EXIT_INTERRUPTED
    assert done.stderr == b"juniper-cascor-protocol: interrupted\n"
    assert done.stdout == b""


class _InterruptedInput(io.RawIOBase):
    """Standard input that gives ``data``, then Ctrl-C, as a user pressing it mid-read."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = self._data.readinto(buffer)
        if n == 0:
            raise KeyboardInterrupt
        return n


class _Stdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = _InterruptedInput(data)


def test_ctrl_c_during_validate_prints_the_partial_report_and_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    reset_unknown_label_state()
    lines = b"".join(_LINE % seq for seq in (1, 2, 5))
    monkeypatch.setattr(sys, "stdin", _Stdin(lines))
    assert main(["validate", "--json", "-"]) == EXIT_INTERRUPTED
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["complete"] is False
    assert report["frames"] == 3
    assert report["seq"]["gaps"] == 1
    assert captured.err == (
        "juniper-cascor-protocol validate: interrupted at line 3: the report is partial\n"
    )


def test_ctrl_c_during_validate_says_so_in_the_text_report(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    reset_unknown_label_state()
    monkeypatch.setattr(sys, "stdin", _Stdin(_LINE % 1))
    assert main(["validate", "-"]) == EXIT_INTERRUPTED
    out = capsys.readouterr().out
    assert out.startswith("interrupted at line 1: a partial report\n1 frame\n")


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "CAPTURE"],
        ["validate", "--json", "CAPTURE"],
        ["schema", "--stdout", "training"],
    ],
)
def test_a_reader_that_went_away_ends_the_tool_quietly_with_141(
    tmp_path: Path, args: list[str]
) -> None:
    capture = tmp_path / "capture.jsonl"
    capture.write_bytes(b"".join(_LINE % seq for seq in range(1, 2000)))
    args = [str(capture) if arg == "CAPTURE" else arg for arg in args]
    read_end, write_end = os.pipe()
    os.close(read_end)  # as `| head -1` once it has its line: every write fails
    try:
        done = _run_tool("", args, stdout=write_end)
    finally:
        os.close(write_end)
    assert done.returncode == EXIT_BROKEN_PIPE
    assert done.stderr == b""


def test_ctrl_c_in_any_command_exits_130_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from juniper_cascor_protocol import schema

    def pressed(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(schema, "generate_schemas", pressed)
    assert main(["schema", "--stdout", "training"]) == EXIT_INTERRUPTED
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "juniper-cascor-protocol schema: interrupted\n")
