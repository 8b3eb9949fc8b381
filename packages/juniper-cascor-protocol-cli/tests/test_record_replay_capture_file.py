"""The capture file format shared by ``record``, ``replay`` and ``validate``."""

from __future__ import annotations

import gzip
import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from juniper_cascor_protocol.capture_file import (
    CAPTURE_FORMAT,
    CapturedMessage,
    CaptureFormatError,
    CaptureWriter,
    format_record,
    longest_line,
    parse_capture_line,
    read_capture,
    read_capture_stream,
)

# Any text a peer's library may hand over, lone surrogates included, and any bytes.
messages = st.text(st.characters(exclude_categories=())) | st.binary()
times = st.floats(allow_nan=False, allow_infinity=False)
endpoints = st.sampled_from(["/ws/training", "/ws/control"]) | st.text()


@given(message=messages, received_at=times, endpoint=endpoints)
def test_a_record_reads_back_exactly_what_was_received(
    message: str | bytes, received_at: float, endpoint: str
) -> None:
    line = format_record(message, received_at=received_at, endpoint=endpoint)
    assert "\n" not in line
    assert line.isascii()
    assert parse_capture_line(line) == CapturedMessage(message, received_at, endpoint)
    assert parse_capture_line(line.encode("ascii") + b"\r\n") == CapturedMessage(
        message, received_at, endpoint
    )


def test_a_record_names_its_format_receive_time_endpoint_and_payload() -> None:
    text = format_record('{"type":"metrics"}', received_at=1.5, endpoint="/ws/training")
    assert json.loads(text) == {
        "capture": CAPTURE_FORMAT,
        "received_at": 1.5,
        "endpoint": "/ws/training",
        "text": '{"type":"metrics"}',
    }
    binary = format_record(b"\x00\x01\x02", received_at=2.0, endpoint="/ws/training")
    assert json.loads(binary)["binary"] == "AAEC"


@pytest.mark.parametrize(
    "line",
    [
        '{"type": "metrics", "timestamp": 1.0, "data": {}, "seq": 1}',
        # A frame is a frame even with a "capture" key: only a record lacks "type".
        '{"type": "metrics", "capture": 1, "timestamp": 1.0, "data": {}}',
        "{not json",
        "[1, 2]",
        '"capture"',
    ],
)
def test_a_plain_frame_line_is_returned_as_the_text_frame_it_is(line: str) -> None:
    assert parse_capture_line(line + "\n") == CapturedMessage(line)
    assert parse_capture_line(line.encode()) == CapturedMessage(line)


def test_blank_lines_hold_nothing() -> None:
    assert parse_capture_line(b"  \r\n") is None
    assert parse_capture_line(b"\t\x0b\x0c") is None
    assert parse_capture_line("") is None


@pytest.mark.parametrize("text", ["\x1c", "\u2028", '{"type": "metrics"}\u00a0'])
def test_other_whitespace_belongs_to_the_frame(text: str) -> None:
    assert parse_capture_line(text.encode() + b"\n") == CapturedMessage(text)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"capture": 2, "received_at": 1, "endpoint": "e", "text": ""}, "capture format 2"),
        ({"capture": True, "received_at": 1, "endpoint": "e", "text": ""}, "capture format True"),
        ({"capture": 1, "endpoint": "e", "text": ""}, "'received_at' must be a number"),
        ({"capture": 1, "received_at": "1", "endpoint": "e", "text": ""}, "'received_at'"),
        ({"capture": 1, "received_at": 1, "text": ""}, "'endpoint' must be a string"),
        ({"capture": 1, "received_at": 1, "endpoint": "e"}, "exactly one of 'text' or 'binary'"),
        (
            {"capture": 1, "received_at": 1, "endpoint": "e", "text": "", "binary": ""},
            "exactly one of 'text' or 'binary'",
        ),
        ({"capture": 1, "received_at": 1, "endpoint": "e", "text": 5}, "'text' must be a string"),
        ({"capture": 1, "received_at": 1, "endpoint": "e", "binary": "a!b"}, "not base64"),
    ],
)
def test_a_broken_record_is_refused_naming_the_field(
    record: dict[str, object], reason: str
) -> None:
    with pytest.raises(CaptureFormatError, match=reason):
        parse_capture_line(json.dumps(record))


def test_a_record_with_a_non_finite_time_is_refused_both_ways() -> None:
    with pytest.raises(CaptureFormatError, match="received_at"):
        parse_capture_line('{"capture": 1, "received_at": NaN, "endpoint": "e", "text": ""}')
    with pytest.raises(ValueError, match="received_at must be a finite number"):
        format_record("x", received_at=float("inf"), endpoint="e")


def test_a_plain_line_that_is_not_utf8_is_refused_as_no_text_frame() -> None:
    with pytest.raises(CaptureFormatError, match="not UTF-8 text"):
        parse_capture_line(b'{"type": "metrics", "x": "\xff"}')


def test_read_capture_numbers_lines_and_reports_errors_in_place() -> None:
    lines = [
        format_record("a", received_at=1.0, endpoint="/ws/training").encode(),
        b"",
        b'{"capture": 9}',
        b'{"type": "state"}',
    ]
    read = list(read_capture(lines))
    assert [number for number, _ in read] == [1, 3, 4]
    assert read[0][1] == CapturedMessage("a", 1.0, "/ws/training")
    assert isinstance(read[1][1], CaptureFormatError)
    assert read[2][1] == CapturedMessage('{"type": "state"}')


def test_the_writer_counts_what_it_wrote_and_it_reads_back() -> None:
    stream = io.BytesIO()
    writer = CaptureWriter(stream)
    writer.write("é", received_at=1.0, endpoint="/ws/control")
    writer.write(b"\xff", received_at=2.0, endpoint="/ws/training")
    writer.flush()
    assert writer.records == 2
    assert writer.bytes_written == len(stream.getvalue())
    assert [m for _, m in read_capture(stream.getvalue().splitlines())] == [
        CapturedMessage("é", 1.0, "/ws/control"),
        CapturedMessage(b"\xff", 2.0, "/ws/training"),
    ]


@given(
    message=messages, received_at=times, endpoint=st.sampled_from(["/ws/training", "/ws/control"])
)
def test_a_record_of_a_frame_fits_in_the_longest_line_of_its_size(
    message: str | bytes, received_at: float, endpoint: str
) -> None:
    size = (
        len(message)
        if isinstance(message, bytes)
        else len(message.encode("utf-8", "surrogatepass"))
    )
    line = format_record(message, received_at=received_at, endpoint=endpoint)
    assert len(line.encode("ascii")) <= longest_line(size)


def test_a_capture_stream_line_over_the_limit_is_reported_by_its_length_not_read() -> None:
    frame = json.dumps({"type": "metrics", "data": {"epoch": 1}})
    huge = "x" * (longest_line(10) + 1)
    stream = io.BytesIO(gzip.compress(f"{frame}\n{huge}\n{frame}\n".encode()))
    read = list(read_capture_stream(stream, max_frame_bytes=10))
    assert [n for n, _ in read] == [1, 2, 3]
    assert read[0][1] == read[2][1] == CapturedMessage(frame)
    refused = read[1][1]
    assert isinstance(refused, CaptureFormatError)
    assert f"line of {len(huge)} bytes" in str(refused)
    assert "max_frame_bytes=10" in str(refused)
