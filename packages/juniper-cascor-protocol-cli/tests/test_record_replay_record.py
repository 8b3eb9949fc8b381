"""``record``: what it writes, what it reports and how it ends, against a scripted server."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from juniper_cascor_protocol.capture import DEFAULT_MAX_UNKNOWN_TYPES
from juniper_cascor_protocol.capture_file import CapturedMessage, read_capture
from juniper_cascor_protocol.cli import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, main
from juniper_cascor_protocol.envelope.session_events import PONG_TEXT
from juniper_cascor_protocol.record import (
    EndReason,
    Recorder,
    RecordError,
    RecordOptions,
    RecordSummary,
    endpoint_of,
    shown_url,
)

GREETING = (
    '{"type":"connection_established","timestamp":1.0,'
    '"data":{"server_version":"s","protocol_version":"0.3"}}'
)
PING = '{"type":"ping","ts":1.0}'
# A bit of everything a /ws/training client meets: an unknown type that still takes its seq (no
# false gap), a known type with an invalid payload, a binary frame, a heartbeat, a real gap.
TRAINING_SCRIPT: list[str | bytes] = [
    GREETING,
    '{"type":"metrics","timestamp":1.0,"data":{"loss":0.5},"seq":1}',
    '{"type":"future_kind","timestamp":1.0,"data":{},"seq":2}',
    '{"type":"metrics","timestamp":1.0,"data":{"loss":0.4},"seq":3}',
    '{"type":"metrics","timestamp":"soon","data":{}}',
    b"\x00\x01",
    PING,
    '{"type":"state","timestamp":1.0,"data":{"phase":"output"},"seq":5}',
]

End = Literal["close", "abort", "idle"]


class ScriptedServer:
    """A WebSocket server in a thread: every connection gets ``script``, then ``end``.

    ``close``: wait for ``replies`` messages from the client, then close normally (1000);
    ``abort``: drop the TCP connection without a close frame; ``idle``: read until the client
    closes.
    """

    def __init__(self, script: Sequence[str | bytes], end: End = "close", replies: int = 0):
        self.script, self.end, self.replies = script, end, replies
        self.received: list[str | bytes] = []
        self._server: Server = serve(self._handle, "127.0.0.1", 0)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str = "/ws/training") -> str:
        return f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}{path}"

    def _handle(self, connection: ServerConnection) -> None:
        try:
            for message in self.script:
                connection.send(message)
            if self.end == "abort":
                connection.socket.shutdown(socket.SHUT_RDWR)
                connection.socket.close()
                return
            if self.end == "idle":
                for message in connection:
                    self.received.append(message)
                return
            for _ in range(self.replies):
                self.received.append(connection.recv(timeout=5))
            connection.close()
        except (ConnectionClosed, OSError, TimeoutError):
            pass  # the recorder left first: nothing more to do

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)


@pytest.fixture
def training_server() -> Iterator[ScriptedServer]:
    with ScriptedServer(TRAINING_SCRIPT, replies=1) as server:
        yield server


def record(url: str, out: Path, **options: object) -> tuple[Recorder, RecordSummary]:
    """Record ``url`` into ``out`` in a fresh event loop (bounded to 30 s)."""
    recorder = Recorder(
        RecordOptions(url=url, endpoint=endpoint_of(url), **options),  # type: ignore[arg-type]
        lambda: out.open("wb"),
    )
    asyncio.run(asyncio.wait_for(recorder.run(asyncio.Event()), 30))
    return recorder, recorder.summary(out=str(out))


def captured(path: Path) -> list[CapturedMessage]:
    with path.open("rb") as lines:
        return [m for _, m in read_capture(lines) if isinstance(m, CapturedMessage)]


def test_every_message_is_captured_verbatim_with_its_endpoint(
    training_server: ScriptedServer, tmp_path: Path
) -> None:
    out = tmp_path / "capture.jsonl"
    record(training_server.url(), out)
    messages = captured(out)
    assert [m.message for m in messages] == TRAINING_SCRIPT
    assert {m.endpoint for m in messages} == {"/ws/training"}
    times = [m.received_at or 0.0 for m in messages]
    assert all(times)
    assert times == sorted(times)


def test_the_session_s_verdicts_are_counted(
    training_server: ScriptedServer, tmp_path: Path
) -> None:
    _, summary = record(training_server.url(), tmp_path / "c.jsonl")
    tally = summary.tally
    assert tally.frames == len(TRAINING_SCRIPT)
    assert tally.types == {
        "connection_established": 1,
        "metrics": 2,
        "future_kind": 1,
        "ping": 1,
        "state": 1,
    }
    assert tally.unknown == {"future_kind": 1}
    assert tally.invalid == {"metrics": 1, "binary_frame": 1}
    assert summary.seq is not None
    assert (summary.seq.gaps, summary.seq.missing) == (1, 1)  # seq 4 only, not 2
    assert summary.end is EndReason.CLOSED
    assert summary.close == "the server closed the connection (code 1000)"
    assert summary.problems == [
        "2 invalid frames",
        "1 gap (1 missing), 0 duplicates, 0 resets",
    ]


def test_unknown_types_are_named_up_to_validate_s_budget_then_counted_together(
    tmp_path: Path,
) -> None:
    names = [f"kind_{i}" for i in range(DEFAULT_MAX_UNKNOWN_TYPES + 2)]
    script = [json.dumps({"type": name, "timestamp": 1.0, "data": {}}) for name in names]
    with ScriptedServer(script) as server:
        _, summary = record(server.url(), tmp_path / "c.jsonl")
    assert summary.tally.unknown == {
        **dict.fromkeys(names[:DEFAULT_MAX_UNKNOWN_TYPES], 1),
        "_unmatched": 2,
    }


def test_the_server_s_heartbeat_is_answered(
    training_server: ScriptedServer, tmp_path: Path
) -> None:
    _, summary = record(training_server.url(), tmp_path / "c.jsonl")
    assert training_server.received == [PONG_TEXT]
    assert summary.tally.heartbeats == 1


def test_the_status_line_shows_frames_types_gaps_and_invalid_frames(
    training_server: ScriptedServer, tmp_path: Path
) -> None:
    recorder, _ = record(training_server.url(), tmp_path / "c.jsonl")
    line = recorder.status().plain
    assert "8 frames" in line
    assert "types: metrics 2, connection_established 1" in line
    assert "seq gaps 1" in line
    assert "invalid 2" in line


def test_frames_limit_stops_with_exactly_that_many_records(tmp_path: Path) -> None:
    script = [f'{{"type":"metrics","timestamp":1.0,"data":{{}},"seq":{i}}}' for i in range(1, 101)]
    with ScriptedServer(script, end="idle") as server:
        _, summary = record(server.url(), tmp_path / "c.jsonl", frames=10)
    assert len(captured(tmp_path / "c.jsonl")) == 10
    assert summary.end is EndReason.FRAMES
    assert summary.ended() == "--frames 10 reached"
    assert summary.problems == []


def test_duration_stops_a_quiet_recording(tmp_path: Path) -> None:
    with ScriptedServer([GREETING], end="idle") as server:
        _, summary = record(server.url(), tmp_path / "c.jsonl", duration=0.3)
    assert summary.end is EndReason.DURATION
    assert summary.ended() == "--duration 0.3 s elapsed"
    assert len(captured(tmp_path / "c.jsonl")) == 1


def test_a_server_that_drops_the_connection_mid_capture_is_reported_and_nothing_is_lost(
    tmp_path: Path,
) -> None:
    script = [GREETING, *TRAINING_SCRIPT[1:4]]
    with ScriptedServer(script, end="abort") as server:
        _, summary = record(server.url(), tmp_path / "c.jsonl", frames=1000)
    assert [m.message for m in captured(tmp_path / "c.jsonl")] == script
    assert summary.end is EndReason.CLOSED
    assert summary.close == "the connection was lost without a close frame"
    assert summary.problems == [
        "the connection ended abnormally: the connection was lost without a close frame"
    ]


def test_stopping_flushes_the_capture_and_says_it_was_interrupted(tmp_path: Path) -> None:
    out = tmp_path / "c.jsonl"
    script = [GREETING, *TRAINING_SCRIPT[1:4]]

    async def scenario(recorder: Recorder) -> None:
        stop = asyncio.Event()
        running = asyncio.create_task(recorder.run(stop))
        while recorder.tally.frames < len(script):
            await asyncio.sleep(0.01)
        stop.set()
        await running

    with ScriptedServer(script, end="idle") as server:
        url = server.url()
        recorder = Recorder(RecordOptions(url, endpoint_of(url)), lambda: out.open("wb"))
        asyncio.run(asyncio.wait_for(scenario(recorder), 30))
    summary = recorder.summary(out=str(out))
    assert summary.end is EndReason.INTERRUPTED
    assert summary.ended() == "interrupted (Ctrl-C)"
    assert [m.message for m in captured(out)] == script


def test_a_frame_over_the_limit_is_recorded_and_counted_invalid(tmp_path: Path) -> None:
    big = '{"type":"metrics","timestamp":1.0,"data":{"pad":"%s"},"seq":1}' % ("x" * 2000)
    with ScriptedServer([GREETING, big]) as server:
        _, summary = record(server.url(), tmp_path / "c.jsonl", max_frame_bytes=1024)
    assert [m.message for m in captured(tmp_path / "c.jsonl")] == [GREETING, big]
    assert summary.tally.invalid == {"oversized": 1}


def test_a_frame_far_over_the_limit_ends_the_connection_as_a_problem(tmp_path: Path) -> None:
    huge = '{"type":"metrics","timestamp":1.0,"data":{"pad":"%s"}}' % ("x" * 5000)
    with ScriptedServer([GREETING, huge], end="idle") as server:
        _, summary = record(server.url(), tmp_path / "c.jsonl", max_frame_bytes=1024)
    assert [m.message for m in captured(tmp_path / "c.jsonl")] == [GREETING]
    assert summary.close is not None
    assert "(code 1009" in summary.close
    assert summary.problems == [f"the connection ended abnormally: {summary.close}"]


def test_a_control_endpoint_is_read_with_the_control_client_session(tmp_path: Path) -> None:
    script = [
        GREETING,
        '{"type":"command_response","timestamp":1.0,"data":{"command":"start","status":"success"}}',
        PING,
        '{"type":"metrics","timestamp":1.0,"data":{},"seq":1}',
    ]
    with ScriptedServer(script, replies=1) as server:
        _, summary = record(server.url("/ws/control"), tmp_path / "c.jsonl")
        assert server.received == [PONG_TEXT]
    assert summary.endpoint == "/ws/control"
    assert summary.tally.types == {
        "connection_established": 1,
        "command_response": 1,
        "ping": 1,
        "metrics": 1,
    }
    assert summary.tally.unexpected == {"metrics": 1}
    assert summary.seq is None
    assert summary.problems == ["1 frame of another endpoint"]
    assert {m.endpoint for m in captured(tmp_path / "c.jsonl")} == {"/ws/control"}


# --- the command --------------------------------------------------------------------------


def test_record_prints_the_summary_and_exits_1_on_problems(
    training_server: ScriptedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "c.jsonl"
    assert main(["record", training_server.url(), "-o", str(out)]) == EXIT_PROBLEMS
    printed = capsys.readouterr().out
    assert re.search(rf"recorded 8 frames \(1\.\d kB\) from {training_server.url()} in ", printed)
    assert "ended: the server closed the connection (code 1000)" in printed
    assert "future_kind (unknown type)" in printed
    assert "invalid: binary_frame 1, metrics 1" in printed
    assert "seq: 1 gap (1 missing), 0 duplicates, 0 resets" in printed


def test_record_json_summary(
    training_server: ScriptedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["record", training_server.url(), "-o", str(tmp_path / "c.jsonl"), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 8
    assert summary["endpoint"] == "/ws/training"
    assert summary["ended"] == "closed"
    assert summary["unknown_types"] == {"future_kind": 1}
    assert summary["invalid"] == {"binary_frame": 1, "metrics": 1}
    assert summary["seq"] == {"gaps": 1, "missing": 1, "duplicates": 0, "resets": 0}
    assert summary["heartbeats_answered"] == 1
    assert summary["clean"] is False


def test_a_clean_recording_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = [GREETING, '{"type":"metrics","timestamp":1.0,"data":{},"seq":1}']
    with ScriptedServer(script) as server:
        assert main(["record", server.url(), "-o", str(tmp_path / "c.jsonl")]) == EXIT_OK
    assert "problems: none" in capsys.readouterr().out


def test_capture_on_standard_output_moves_the_summary_to_standard_error(
    training_server: ScriptedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["record", training_server.url(), "-o", "-"])
    printed = capsys.readouterr()
    records = [m for _, m in read_capture(printed.out.splitlines())]
    assert all(isinstance(m, CapturedMessage) and m.endpoint for m in records)
    assert [m.message for m in records if isinstance(m, CapturedMessage)] == TRAINING_SCRIPT
    assert "recorded 8 frames" in printed.err
    assert "to standard output" in printed.err


def test_a_failed_connection_leaves_an_existing_capture_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "precious.jsonl"
    out.write_text("keep me\n")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["record", f"ws://127.0.0.1:{port}/ws/training", "-o", str(out)]) == EXIT_USAGE
    assert f"cannot connect to ws://127.0.0.1:{port}/ws/training" in capsys.readouterr().err
    assert out.read_text() == "keep me\n"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://host/ws/training", "not a WebSocket URL"),
        ("ws://host/ws/v1/workers", "a worker endpoint has no observer role"),
        ("ws://host/somewhere", "pass --endpoint training or --endpoint control"),
    ],
)
def test_urls_that_cannot_be_recorded_are_usage_errors(
    url: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["record", url, "-o", str(tmp_path / "c.jsonl")]) == EXIT_USAGE
    assert message in capsys.readouterr().err
    assert not (tmp_path / "c.jsonl").exists()


# --- endpoints and URLs -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "endpoint", "expected"),
    [
        ("ws://h:1/ws/training", None, "/ws/training"),
        ("wss://h/ws/control/", None, "/ws/control"),
        ("wss://h/cascor/ws/training?token=x", None, "/ws/training"),
        ("ws://h/anything", "/ws/control", "/ws/control"),
    ],
)
def test_the_endpoint_comes_from_the_path_or_is_given(
    url: str, endpoint: str | None, expected: str
) -> None:
    assert endpoint_of(url, endpoint) == expected


def test_an_unknown_endpoint_name_is_refused() -> None:
    with pytest.raises(RecordError, match="endpoint must be"):
        endpoint_of("ws://h/x", "/ws/v1/workers")


def test_credentials_never_reach_the_output() -> None:
    assert shown_url("wss://user:secret@h:8/ws/training?token=abc") == "wss://h:8/ws/training"
