"""`validate` as an audit: the library's verdicts, every name, every reason, any input."""

from __future__ import annotations

import codecs
import gzip
import io
import json
from pathlib import Path
from typing import Any

import pytest

from juniper_cascor_protocol.capture import DEFAULT_MAX_FRAME_BYTES, audit_capture
from juniper_cascor_protocol.capture_file import CaptureWriter
from juniper_cascor_protocol.cli import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, main
from juniper_cascor_protocol.envelope import (
    DEFAULT_LABEL_BUDGET,
    TrainingConsumerSession,
    reset_unknown_label_state,
)
from juniper_cascor_protocol.envelope.chunking import (
    DEFAULT_MAX_FRAME_BYTES as LIBRARY_MAX_FRAME_BYTES,
)


@pytest.fixture(autouse=True)
def _fresh_labels() -> None:
    reset_unknown_label_state()


def _frame(kind: str, seq: int | None = None, **fields: Any) -> str:
    frame: dict[str, Any] = {"type": kind, "timestamp": 1.0, "data": {}, **fields}
    if seq is not None:
        frame["seq"] = seq
    return json.dumps(frame)


def _validate(
    tmp_path: Path, lines: list[str], capsys: pytest.CaptureFixture[str], *options: str
) -> tuple[int, dict[str, Any]]:
    path = tmp_path / "capture.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code = main(["validate", "--json", *options, str(path)])
    return code, json.loads(capsys.readouterr().out)


# --- the same verdicts as the library --------------------------------------------------------


def test_a_frame_of_an_unknown_type_takes_its_seq_and_opens_no_gap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [_frame("metrics", 1), _frame("future_kind", 2), _frame("metrics", 3)]
    code, report = _validate(tmp_path, lines, capsys)
    assert code == EXIT_OK
    assert report["seq"]["gaps"] == 0
    assert report["unknown_types"] == {"future_kind": 1}
    session = TrainingConsumerSession()
    for line in lines:
        session.receive(line, now=0.0)
    assert session.stats().seq.gaps == 0


def test_seq_gaps_resets_and_reseeds_are_placed_on_a_timeline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        _frame("metrics", 1),
        _frame("metrics", 4),  # gap: 2..3
        _frame("metrics", 5000),  # gap: 5..4999
        _frame("metrics", 1),  # the server restarted
        _frame("initial_metrics", data={"metrics": [], "count": 0, "current_seq": 10}),
        _frame("metrics", 11),
    ]
    code, report = _validate(tmp_path, lines, capsys)
    assert code == EXIT_PROBLEMS
    assert [(e["line"], e["event"], e["seq"]) for e in report["seq"]["timeline"]] == [
        (2, "gap", 4),
        (3, "gap", 5000),
        (4, "reset", 1),
        (5, "reseeded", 10),
    ]
    assert report["seq"]["timeline"][0] == {
        "line": 2,
        "event": "gap",
        "seq": 4,
        "expected": 2,
        "missing_first": 2,
        "missing_last": 3,
    }
    assert report["seq"]["missed_while_away"] == 9
    assert (report["seq"]["gaps"], report["seq"]["missing"], report["seq"]["resets"]) == (
        2,
        2 + 4995,
        1,
    )


# --- unknown types: every real name, from the audit's own budget ------------------------------


def test_unknown_types_are_named_as_sent_past_the_process_wide_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = [f"kind_{i}" for i in range(40)] + ["bad type!", "_unmatched", "ünïcode"]
    lines = [_frame(name) for name in names] + [_frame("kind_0")]
    code, report = _validate(tmp_path, lines, capsys)
    assert code == EXIT_OK
    assert report["unknown_types"] == dict.fromkeys(names, 1) | {"kind_0": 2}
    assert report["invalid_count"] == 0
    assert DEFAULT_LABEL_BUDGET.admitted == frozenset()  # the process's labels are untouched


def test_names_past_max_unknown_types_are_counted_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [_frame(f"kind_{i}") for i in range(5)] + [_frame("kind_0")]
    code, report = _validate(tmp_path, lines, capsys, "--max-unknown-types", "2")
    assert code == EXIT_OK
    assert report["unknown_types"] == {"kind_0": 2, "kind_1": 1, "(further names)": 3}


def test_the_text_report_has_a_per_type_table_and_names_unknown_types(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "capture.jsonl"
    lines = [_frame("metrics", 1), _frame("metrics", 2), _frame("state", 3, timestamp="x")]
    lines += [_frame("[bold]kind[/bold]"), '{"command": "stop", "command_id": "c-9"}']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["validate", str(path)]) == EXIT_PROBLEMS
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["type", "valid", "invalid", "reassembled"] in rows
    assert ["metrics", "2", "0", "0"] in rows
    assert ["state", "0", "1", "0"] in rows
    assert ["request", "stop", "1", "0", "0"] in rows
    assert ["[bold]kind[/bold]", "1"] in rows  # shown as sent: never read as rich markup


# --- a reason for every invalid frame -------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (
            '{"type": "metrics", "timestamp": "1700000000.5", "data": {}}',
            "invalid 'metrics' frame: timestamp: Input should be a valid number",
        ),
        (
            '{"type": "metrics", "timestamp": 1.0, "data": {}, "seq": 3.0}',
            "invalid 'metrics' frame: seq: Input should be a valid integer",
        ),
        ('{"timestamp": 1.0, "data": {}}', "no 'type' key"),
        ('{"type": 7, "timestamp": 1.0}', "'type' must be a non-empty string, got number"),
        ("[1, 2]", "not a JSON object: got array"),
        (
            '{"command": "frobnicate", "command_id": "c-2"}',
            "request refused (unknown_command): unknown command 'frobnicate'",
        ),
    ],
)
def test_every_invalid_frame_gets_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, reason: str
) -> None:
    code, report = _validate(tmp_path, [line], capsys)
    assert code == EXIT_PROBLEMS
    assert report["invalid"] == [{"line": 1, "reason": reason}]


def test_a_line_that_is_not_utf8_is_invalid_with_its_position(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "capture.jsonl"
    path.write_bytes(_frame("metrics", 1).encode() + b"\n" + b'{"type": "\xff"}\n')
    assert main(["validate", "--json", str(path)]) == EXIT_PROBLEMS
    (invalid,) = json.loads(capsys.readouterr().out)["invalid"]
    assert invalid == {"line": 2, "reason": "not UTF-8 text (byte 10), so not a text frame"}


# --- the capture file of record, and plain lines, in one file ---------------------------------


def test_records_of_record_are_audited_with_their_receive_times(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    buffer = io.BytesIO()
    writer = CaptureWriter(buffer)
    writer.write(_frame("metrics", 1), received_at=1700000000.25, endpoint="/ws/training")
    writer.write(_frame("metrics", 3), received_at=1700000001.5, endpoint="/ws/training")
    writer.write(b"\x00\x01", received_at=1700000002.0, endpoint="/ws/training")
    lines = buffer.getvalue().decode("ascii").splitlines()
    lines.append(_frame("metrics", 4))  # a plain frame line may follow
    lines.append('{"capture": 9, "received_at": 1.0, "endpoint": "/ws/training", "text": ""}')
    code, report = _validate(tmp_path, lines, capsys)
    assert code == EXIT_PROBLEMS
    assert report["per_type"] == {"metrics": 3}
    assert report["seq"]["timeline"] == [
        {
            "line": 2,
            "event": "gap",
            "seq": 3,
            "expected": 2,
            "missing_first": 2,
            "missing_last": 2,
            "received_at": 1700000001.5,
        }
    ]
    assert report["invalid"] == [
        {"line": 3, "reason": "a bytes message; only text frames are read"},
        {"line": 5, "reason": "record of capture format 9; this tool reads format 1"},
    ]
    path = tmp_path / "capture.jsonl"
    assert main(["validate", str(path)]) == EXIT_PROBLEMS
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["line", "received", "seq", "event", "seq", "detail"] in rows
    assert ["2", "1700000001.500", "gap", "3", "missing", "2..2", "(1)"] in rows


# --- /ws/control requests -------------------------------------------------------------------


def test_control_requests_are_read_as_the_server_reads_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        '{"command":"start","command_id":"c-1"}',
        '{"type":"command","command":"set_params","params":{"lr":0.1},"command_id":"c-2"}',
        '{"type":"command_response","timestamp":1.0,'
        '"data":{"command":"start","status":"success","command_id":"c-1"}}',
    ]
    code, report = _validate(tmp_path, lines, capsys)
    assert code == EXIT_OK
    assert report["requests"] == {"set_params": 1, "start": 1}
    assert report["per_type"] == {"command_response": 1}


def test_a_request_over_the_servers_limit_is_refused_by_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = json.dumps({"command": "set_params", "params": {"x": "a" * 70_000}})
    code, report = _validate(tmp_path, [big], capsys)
    assert code == EXIT_PROBLEMS
    assert report["invalid"][0]["reason"].startswith("request refused (invalid_command): request:")
    assert "max_request_bytes=65536" in report["invalid"][0]["reason"]


# --- --max-frame-bytes ----------------------------------------------------------------------


def test_max_frame_bytes_defaults_to_what_a_client_reads() -> None:
    assert DEFAULT_MAX_FRAME_BYTES == LIBRARY_MAX_FRAME_BYTES == 1 << 20


def test_a_frame_over_max_frame_bytes_is_invalid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = _frame("metrics", 1, data={"blob": "a" * 2000})
    code, report = _validate(
        tmp_path, [big, _frame("metrics", 2)], capsys, "--max-frame-bytes", "1000"
    )
    assert code == EXIT_PROBLEMS
    assert report["invalid"] == [
        {
            "line": 1,
            "reason": f"text frame of at least {len(big)} bytes exceeds max_frame_bytes=1000",
        }
    ]
    assert report["per_type"] == {"metrics": 1}


def test_a_line_too_long_to_read_is_reported_by_its_size_without_being_held(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Over the read cap (6 x max_frame_bytes + 4 KiB): the line is skipped, not loaded.
    huge = _frame("metrics", 1, data={"blob": "a" * 20_000})
    code, report = _validate(
        tmp_path, [huge, _frame("metrics", 2)], capsys, "--max-frame-bytes", "1000"
    )
    assert code == EXIT_PROBLEMS
    assert report["invalid"] == [
        {
            "line": 1,
            "reason": f"line of {len(huge)} bytes: a frame over max_frame_bytes=1000 (not read)",
        }
    ]
    assert report["frames"] == 2
    assert report["seq"]["gaps"] == 0


def test_a_50_mb_line_is_flagged_by_default() -> None:
    line = _frame("metrics", 1, data={"blob": "a" * (50 * 2**20)}).encode()
    report = audit_capture([line])
    assert report.invalid_count == 1
    assert "exceeds max_frame_bytes=1048576" in report.invalid[0].reason


# --- input as operators save it: gzip, UTF-16, byte-order marks ------------------------------

_LINES = [
    _frame("metrics", 1, data={"note": "ünï"}),
    _frame("future_kind", 2),
    _frame("metrics", 4),
    '{"type": "metrics", "timestamp": "1.5", "data": {}}',
]


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: gzip.compress(text.encode("utf-8")),
        lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
        lambda text: text.encode("utf-16"),  # with its byte-order mark
        lambda text: text.encode("utf-16-be"),  # none: told by its NUL bytes
        lambda text: text.replace("\n", "\r\n").encode("utf-16-le"),
        lambda text: text.encode("utf-32"),
        lambda text: gzip.compress(text.encode("utf-16")),
    ],
    ids=["gzip", "utf-8-bom", "utf-16", "utf-16-be", "utf-16-le-crlf", "utf-32", "gzip-utf-16"],
)
def test_gzip_and_other_encodings_give_the_report_of_the_plain_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], encode: Any
) -> None:
    text = "\n".join(_LINES) + "\n"
    plain = tmp_path / "plain.jsonl"
    plain.write_text(text, encoding="utf-8")
    assert main(["validate", "--json", str(plain)]) == EXIT_PROBLEMS
    expected = json.loads(capsys.readouterr().out)
    other = tmp_path / "other.jsonl"
    other.write_bytes(encode(text))
    assert main(["validate", "--json", str(other)]) == EXIT_PROBLEMS
    assert json.loads(capsys.readouterr().out) == expected


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "\n".join(_LINES).encode("utf-16") + b"\x00\xd8\x41\x00",
            "the input starts as UTF-16-LE text, by its first bytes, but is not valid "
            "UTF-16-LE (illegal UTF-16 surrogate); convert it to UTF-8 first",
        ),
        (
            gzip.compress("\n".join(_LINES).encode())[:40],
            "the gzip stream is corrupt or truncated: Compressed file ended before the "
            "end-of-stream marker was reached",
        ),
    ],
    ids=["bad-utf-16", "truncated-gzip"],
)
def test_an_unreadable_encoding_is_refused_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    assert main(["validate", str(path)]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"juniper-cascor-protocol validate: {path}: {message}\n"
