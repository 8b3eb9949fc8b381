"""The command-line tool as a user runs it: outputs, JSON reports and exit codes."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pytest

from juniper_cascor_protocol.cli import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, build_parser, main
from juniper_cascor_protocol.envelope import (
    BroadcastBuilder,
    Chunker,
    TopologyEnvelope,
    reset_unknown_label_state,
    to_wire_json,
)
from juniper_cascor_protocol.worker import MAX_FRAME_BYTES, BinaryFrame

CAPTURE_LINES = [
    '{"type": "initial_metrics", "timestamp": 1.0,'
    ' "data": {"metrics": [], "count": 0, "current_seq": 0}}',
    '{"type": "metrics", "timestamp": 1.1, "data": {"loss": 0.5}, "seq": 1}',
    '{"type": "metrics", "timestamp": 1.2, "data": {"loss": 0.4}, "seq": 2}',
    "",
    '{"type": "state", "timestamp": 1.3, "data": {"phase": "output"}, "seq": 5}',
    '{"type": "brand_new_kind", "timestamp": 1.4, "data": {}}',
    '{"type": "initial_metrics", "timestamp": 1.5, "data": {}}',
    "{not json",
    "[1, 2]",
    '{"type": "command_response", "timestamp": 1.6,'
    ' "data": {"command": "start", "status": "success"}}',
]


@pytest.fixture(autouse=True)
def _fresh_labels() -> None:
    reset_unknown_label_state()


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    path = tmp_path / "capture.jsonl"
    path.write_text("\n".join(CAPTURE_LINES) + "\n", encoding="utf-8")
    return path


def test_validate_reports_types_unknowns_invalid_lines_and_gaps(
    capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(capture)]) == EXIT_PROBLEMS
    out = capsys.readouterr().out
    assert "9 frames" in out
    assert "brand_new_kind" in out
    assert "invalid frames: 3" in out
    assert "line 7: invalid 'initial_metrics' frame: data.count: Field required" in out
    assert "line 8: malformed JSON" in out
    assert "line 9: not a JSON object: got array" in out
    assert "seq: 1 gap (2 frames missing), 0 duplicates, 0 resets, 1 reseed" in out
    timeline = [line.split() for line in out.splitlines() if line.lstrip().startswith("5 ")]
    assert timeline == [["5", "gap", "5", "missing", "3..4", "(2)"]]


def test_validate_json_report_is_machine_readable(
    capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--json", str(capture)]) == EXIT_PROBLEMS
    report = json.loads(capsys.readouterr().out)
    assert report["frames"] == 9
    assert report["per_type"] == {
        "command_response": 1,
        "initial_metrics": 1,
        "metrics": 2,
        "state": 1,
    }
    assert report["unknown_types"] == {"brand_new_kind": 1}
    assert [f["line"] for f in report["invalid"]] == [7, 8, 9]
    assert report["seq"]["gaps"] == 1
    assert report["seq"]["missing"] == 2
    assert report["seq"]["timeline"] == [
        {"line": 1, "event": "reseeded", "seq": 0, "missed": 0},
        {
            "line": 5,
            "event": "gap",
            "seq": 5,
            "expected": 3,
            "missing_first": 3,
            "missing_last": 4,
        },
    ]
    assert report["clean"] is False
    assert report["complete"] is True


def test_validate_clean_capture_exits_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "clean.jsonl"
    path.write_text("\n".join(CAPTURE_LINES[1:3]) + "\n", encoding="utf-8")
    assert main(["validate", str(path)]) == EXIT_OK
    assert "invalid frames: 0" in capsys.readouterr().out


def test_validate_lists_at_most_max_listed_but_counts_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("{oops\n" * 7, encoding="utf-8")
    assert main(["validate", "--json", "--max-listed", "2", str(path)]) == EXIT_PROBLEMS
    report = json.loads(capsys.readouterr().out)
    assert report["invalid_count"] == 7
    assert len(report["invalid"]) == 2


def test_validate_missing_file_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(tmp_path / "absent.jsonl")]) == EXIT_USAGE
    assert "absent.jsonl" in capsys.readouterr().err


def _write_frame(path: Path, array: np.ndarray) -> Path:
    path.write_bytes(BinaryFrame.encode(array))
    return path


def test_inspect_prints_shape_dtype_and_statistics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    array = np.array([[1.0, np.nan], [np.inf, 3.0]], dtype=np.float32)
    frame = _write_frame(tmp_path / "t.bin", array)
    assert main(["inspect", "--json", str(frame)]) == EXIT_OK
    summary = json.loads(capsys.readouterr().out)
    assert summary["valid"] is True
    assert summary["shape"] == [2, 2]
    assert summary["dtype"] == "float32"
    assert summary["elements"] == 4
    assert summary["payload_bytes"] == 16
    assert summary["nan_count"] == 1
    assert summary["inf_count"] == 1
    assert summary["minimum"] == 1.0
    assert summary["maximum"] == 3.0
    assert summary["mean"] == 2.0


def test_inspect_human_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = _write_frame(tmp_path / "t.bin", np.arange(6, dtype=">i4").reshape(3, 2))
    assert main(["inspect", str(frame)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "shape:   (3, 2)" in out
    assert "dtype:   >i4" in out
    assert "min 0  max 5" in out
    assert "size:    6 elements, 24 bytes of payload (43 bytes with the header)" in out


def test_inspect_names_the_precise_reason_for_a_malformed_frame(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = BinaryFrame.encode(np.zeros(4, dtype=np.float64))
    path = tmp_path / "truncated.bin"
    path.write_bytes(full[:-1])
    assert main(["inspect", str(path)]) == EXIT_PROBLEMS
    assert "Data size mismatch" in capsys.readouterr().out
    path.write_bytes(b"\x01\x00")
    assert main(["inspect", "--json", str(path)]) == EXIT_PROBLEMS
    result = json.loads(capsys.readouterr().out)
    assert result["valid"] is False
    assert result["reason"].startswith("Binary frame too short for shape header")


def test_schema_writes_then_checks_and_detects_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "schemas"
    assert main(["schema", "--out", str(out_dir)]) == EXIT_OK
    assert main(["schema", "--check", "--out", str(out_dir)]) == EXIT_OK
    metrics = out_dir / "envelope" / "metrics.schema.json"
    metrics.write_text("{}\n", encoding="utf-8")
    assert main(["schema", "--check", "--out", str(out_dir)]) == EXIT_PROBLEMS
    assert "out of date: envelope/metrics.schema.json" in capsys.readouterr().out


COMMANDS = ("demo", "validate", "inspect", "schema", "record", "replay")


def test_the_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(commands.choices) == set(COMMANDS)
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    listed = capsys.readouterr().out.partition("positional arguments:")[2]
    for command in COMMANDS:
        assert re.search(rf"^    {command} +\S", listed, re.MULTILINE), command
        assert f"``{command}``" in (build_parser.__doc__ or ""), command


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "usage: juniper-cascor-protocol" in out
    assert "exit codes:" in out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["validate"])
    assert exited.value.code == EXIT_USAGE
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--frames", "0"])
    assert exited.value.code == EXIT_USAGE


def test_demo_runs_all_three_endpoints_and_reports_no_problems(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["demo", "--frames", "300", "--clients", "2", "--tensor-mb", "0.5", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == EXIT_OK, report
    assert report["problems"] == []
    assert report["seq_gaps"] == 0


def test_demo_option_out_of_range_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--frames", "2000000"]) == EXIT_USAGE
    assert "frames must be between 1 and 1000000" in capsys.readouterr().err


def test_inspect_reports_an_oversized_file_by_its_size_and_the_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "huge.bin"
    with path.open("wb") as sparse:
        sparse.truncate(MAX_FRAME_BYTES + 4096)  # a sparse file: no disk used
    assert main(["inspect", "--json", str(path)]) == EXIT_PROBLEMS
    result = json.loads(capsys.readouterr().out)
    assert result["frame_bytes"] == MAX_FRAME_BYTES + 4096
    assert result["reason"] == (
        f"the file holds {MAX_FRAME_BYTES + 4096} bytes, more than the frame limit of "
        f"{MAX_FRAME_BYTES} bytes (MAX_FRAME_BYTES); not read"
    )


def _chunked_capture(tmp_path: Path, *, drop: int | None = None, tamper: bool = False) -> Path:
    builder = BroadcastBuilder(chunker=Chunker(2048))
    lines = [to_wire_json(builder.metrics({"loss": 1.0}))]
    topology = builder.draft(TopologyEnvelope, {"weights": [[0.5] * 20 for _ in range(50)]})
    chunks = builder.wire_frames(topology)
    assert len(chunks) > 2
    if drop is not None:
        del chunks[drop]
    if tamper:
        frame = json.loads(chunks[1])
        frame["data"]["total_chunks"] += 1  # conflicts with the chunks before it
        chunks[1] = json.dumps(frame)
    lines += chunks
    lines.append(to_wire_json(builder.metrics({"loss": 0.5})))
    path = tmp_path / "chunked.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_validate_reassembles_chunked_messages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--json", str(_chunked_capture(tmp_path))]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert report["chunked"] == {"reassembled": {"topology": 1}, "rejected": {}, "incomplete": 0}
    assert report["seq"]["gaps"] == 0


def test_validate_reports_a_chunked_message_that_never_completes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(_chunked_capture(tmp_path, drop=1))]) == EXIT_PROBLEMS
    out = capsys.readouterr().out
    assert "chunked: 0 reassembled, 0 chunk frames rejected, 1 incomplete" in out
    assert "seq: 1 gap (1 frame missing)" in out


def test_validate_reports_rejected_chunks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--json", str(_chunked_capture(tmp_path, tamper=True))]) == (
        EXIT_PROBLEMS
    )
    report = json.loads(capsys.readouterr().out)
    # The conflicting chunk rejects its message; every later chunk of it is refused too.
    chunk_frames = report["per_type"]["chunked_message"]
    assert report["chunked"]["rejected"] == {
        "total_mismatch": 1,
        "already_rejected": chunk_frames - 2,
    }
    assert report["chunked"]["reassembled"] == {}
    assert report["clean"] is False


def test_validate_reports_a_chunked_original_that_is_invalid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = '{"type": "initial_metrics", "timestamp": 1.0, "data": {}}'  # count is required
    chunk = {
        "type": "chunked_message",
        "timestamp": 1.0,
        "data": {
            "chunk_id": "c1",
            "chunk_index": 0,
            "total_chunks": 1,
            "original_type": "initial_metrics",
            "payload": original,
        },
    }
    path = tmp_path / "bad-original.jsonl"
    path.write_text(json.dumps(chunk) + "\n", encoding="utf-8")
    assert main(["validate", "--json", str(path)]) == EXIT_PROBLEMS
    report = json.loads(capsys.readouterr().out)
    assert report["chunked"]["reassembled"] == {"initial_metrics": 1}
    assert report["chunked"]["rejected"] == {"invalid_original": 1}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "--frames", "many"], "argument --frames: expected a whole number, got 'many'"),
        (["demo", "--tensor-mb", "big"], "argument --tensor-mb: expected a number, got 'big'"),
        (
            ["demo", "--tensor-mb", "inf"],
            "argument --tensor-mb: must be a finite number greater than 0, got inf",
        ),
        (["validate", "--max-frame-bytes", "0", "-"], "must be at least 1, got 0"),
    ],
)
def test_a_bad_number_is_named_in_words_not_by_the_parsers_function(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err
    assert "_positive" not in err
