"""``replay``: what a capture becomes on the wire, as clients of ``/ws/training`` see it."""

from __future__ import annotations

import asyncio
import gzip
import json
import math
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from juniper_cascor_protocol.capture import DEFAULT_MAX_UNKNOWN_TYPES
from juniper_cascor_protocol.capture_file import (
    CapturedMessage,
    CaptureFormatError,
    format_record,
    read_capture,
)
from juniper_cascor_protocol.cli import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, main
from juniper_cascor_protocol.demo import TrainingClient
from juniper_cascor_protocol.envelope import (
    BaseEnvelope,
    Chunker,
    InitialMetricsEnvelope,
    MetricsEnvelope,
    Reseeded,
    StateEnvelope,
    TopologyEnvelope,
    TrainingEvent,
    TrainingProducerSession,
)
from juniper_cascor_protocol.replay import (
    Pacer,
    Playback,
    ReplayEnd,
    ReplayOptions,
    ReplayServer,
    capture_time,
)

T = TypeVar("T")
TOPOLOGY = {"weights": [[i * 0.5 for i in range(40)] for _ in range(40)]}
METRICS = [{"epoch": i, "loss": 1 / (i + 1)} for i in range(30)]


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


def wire_texts(messages: Sequence[tuple[type[BaseEnvelope], dict[str, Any]]]) -> list[str]:
    """What a server sent one client from its start: the greeting, initial_metrics, broadcasts."""
    producer = TrainingProducerSession(chunker=Chunker(4096), server_version="recorded")
    texts = producer.subscribe(now=1000.0, monotonic=0.0)
    for i, (envelope_type, data) in enumerate(messages):
        texts += producer.broadcast(envelope_type, data, now=1000.0 + i, monotonic=float(i))
    return texts


def write_capture(path: Path, texts: Sequence[str | bytes], endpoint: str = "/ws/training") -> Path:
    with path.open("w", encoding="ascii") as out:
        for i, text in enumerate(texts):
            out.write(format_record(text, received_at=1000.0 + i * 0.01, endpoint=endpoint) + "\n")
    return path


SESSION: list[tuple[type[BaseEnvelope], dict[str, Any]]] = [
    *[(MetricsEnvelope, m) for m in METRICS[:10]],
    (TopologyEnvelope, TOPOLOGY),  # over 4096 bytes: chunked when recorded and when replayed
    *[(MetricsEnvelope, m) for m in METRICS[10:]],
    (StateEnvelope, {"phase": "done"}),
]
BROADCAST = [(t.model_fields["type"].default, d) for t, d in SESSION]


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    return write_capture(tmp_path / "capture.jsonl", wire_texts(SESSION))


class Client:
    """A TrainingClient that keeps every envelope and event it got."""

    def __init__(self) -> None:
        self.envelopes: list[BaseEnvelope] = []
        self.events: list[TrainingEvent] = []
        self.client = TrainingClient(on_message=self.envelopes.append, on_event=self.events.append)

    def broadcasts(self) -> list[tuple[str, Any]]:
        return [(e.type, e.data) for e in self.envelopes if e.type != "initial_metrics"]


# --- pacing -------------------------------------------------------------------------------


@given(
    times=st.lists(st.none() | st.floats(-1e9, 1e9), max_size=50),
    speed=st.floats(0.01, 100),
)
def test_messages_go_out_in_order_never_earlier_than_a_previous_one(
    times: list[float | None], speed: float
) -> None:
    pacer = Pacer(speed)
    offsets = [pacer.offset(t) for t in times]
    assert offsets == sorted(offsets)
    assert all(offset >= 0 for offset in offsets)


@given(
    times=st.lists(st.floats(0, 1e6), min_size=1, max_size=50).map(sorted),
    speed=st.floats(0.01, 100),
)
def test_a_message_goes_out_at_its_capture_offset_divided_by_speed(
    times: list[float], speed: float
) -> None:
    pacer = Pacer(speed)
    for t in times:
        assert math.isclose(pacer.offset(t), (t - times[0]) / speed, rel_tol=1e-9, abs_tol=1e-9)


def test_as_fast_as_possible_never_waits() -> None:
    pacer = Pacer(None)
    assert [pacer.offset(t) for t in (5.0, None, 100.0)] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (CapturedMessage("{}", 12.5, "/ws/training"), 12.5),
        (CapturedMessage('{"type": "metrics", "timestamp": 7.25}'), 7.25),
        (CapturedMessage('{"type": "metrics", "timestamp": "7"}'), None),
        (CapturedMessage('{"type": "metrics", "timestamp": true}'), None),
        (CapturedMessage("{broken"), None),
        (CapturedMessage(b"\x00"), None),
    ],
)
def test_capture_time_is_the_receive_time_else_the_frame_timestamp(
    item: CapturedMessage, expected: float | None
) -> None:
    assert capture_time(item) == expected


# --- what is replayed ---------------------------------------------------------------------


def test_playback_delivers_what_a_client_would_and_counts_what_it_skips(tmp_path: Path) -> None:
    texts: list[str | bytes] = [
        *wire_texts(SESSION[:3]),
        '{"type":"future_kind","timestamp":1.0,"data":{},"seq":4}',
        '{"type":"metrics","timestamp":"soon","data":{}}',
        '{"type":"ping","ts":1.0}',
        b"\x00\x01",
    ]
    path = write_capture(tmp_path / "c.jsonl", texts)
    with path.open("a", encoding="ascii") as out:
        out.write(format_record("{}", received_at=2000.0, endpoint="/ws/control") + "\n")
        out.write('{"capture": 7}\n')
    playback = Playback()
    with path.open("rb") as lines:
        delivered = [e for n, item in read_capture(lines) for e in playback.feed(n, item)]
    assert [e.type for e in delivered] == ["initial_metrics", "metrics", "metrics", "metrics"]
    assert [e.data for e in delivered[1:]] == METRICS[:3]
    assert playback.skipped == {
        "connection_established (each client gets its own)": 1,
        "unknown type future_kind": 1,
        "invalid metrics": 1,
        "ping (heartbeats are per connection)": 1,
        "refused: binary_frame": 1,
        "/ws/control record": 1,
    }
    assert playback.invalid == 2
    assert playback.unreadable_count == 1
    assert playback.unreadable[0][0] == len(texts) + 2
    assert "capture format 7" in playback.unreadable[0][1]


def test_playback_rebuilds_a_chunked_message_once() -> None:
    playback = Playback()
    delivered = [
        e
        for n, text in enumerate(wire_texts([(TopologyEnvelope, TOPOLOGY)]), start=1)
        for e in playback.feed(n, CapturedMessage(text, float(n), "/ws/training"))
    ]
    assert [(e.type, e.data) for e in delivered[1:]] == [("topology", TOPOLOGY)]


def test_playback_names_unknown_types_up_to_validate_s_budget() -> None:
    playback = Playback()
    for i in range(DEFAULT_MAX_UNKNOWN_TYPES + 2):
        frame = json.dumps({"type": f"kind_{i}", "timestamp": 1.0, "data": {}})
        assert playback.feed(i + 1, CapturedMessage(frame)) == []
    assert len(playback.skipped) == DEFAULT_MAX_UNKNOWN_TYPES + 1
    assert playback.skipped["unknown type _unmatched"] == 2


def test_playback_reports_an_unreadable_line() -> None:
    playback = Playback()
    assert playback.feed(3, CaptureFormatError("bad")) == []
    assert playback.unreadable == [(3, "bad")]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"speed": 0.0}, "speed must be a finite number > 0"),
        ({"speed": math.inf}, "speed must be a finite number > 0"),
        ({"passes": 0}, "passes must be at least 1"),
        ({"port": 70000}, "port must be in 0..65535"),
        ({"max_frame_bytes": 100}, "max_frame_bytes must be >="),
    ],
)
def test_options_out_of_range_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReplayOptions(capture=Path("c"), **options)


# --- on the wire --------------------------------------------------------------------------


def serve_options(capture: Path, **options: Any) -> ReplayOptions:
    defaults: dict[str, Any] = {"port": 0, "speed": None, "max_frame_bytes": 2048}
    return ReplayOptions(capture=capture, **(defaults | options))


def test_two_passes_reach_a_client_in_order_numbered_without_a_gap(capture: Path) -> None:
    watcher = Client()

    async def scenario() -> ReplayServer:
        stop = asyncio.Event()
        async with ReplayServer(serve_options(capture, passes=2, wait_for_client=True)) as server:
            reader = asyncio.create_task(watcher.client.run(server.url))
            await server.play(stop)
        await reader
        return server

    server = run(scenario())
    assert watcher.broadcasts() == BROADCAST + BROADCAST
    seq = watcher.client.seq
    assert (seq.gaps, seq.duplicates, seq.resets) == (0, 0, 0)
    assert seq.last_seq == server.hub.current_seq
    # Re-chunked for this server's 2048-byte frames, and rebuilt by the client.
    assert server.hub.frames_by_type["chunked_message"] > 2
    summary = server.summary(interrupted=False, duration_s=1.0)
    assert (summary.end, summary.passes, summary.messages) == (
        ReplayEnd.FINISHED,
        2,
        2 * len(SESSION),
    )
    assert summary.skipped == {
        "connection_established (each client gets its own)": 1,
        "initial_metrics (not broadcast)": 1,
    }
    assert summary.problems == []


def test_a_late_joiner_gets_initial_metrics_and_then_every_frame(capture: Path) -> None:
    first, late = Client(), Client()

    async def scenario() -> None:
        stop = asyncio.Event()
        options = serve_options(capture, passes=None, wait_for_client=True)
        async with ReplayServer(options) as server:
            readers = [asyncio.create_task(first.client.run(server.url))]
            playing = asyncio.create_task(server.play(stop))
            await first.client.wait_for_seq(50)
            readers.append(asyncio.create_task(late.client.run(server.url)))
            await late.client.wait_subscribed()
            await late.client.wait_for_seq(server.hub.current_seq + 30)
            stop.set()
            await playing
        await asyncio.gather(*readers)

    run(scenario())
    reseeded = next(e for e in late.events if isinstance(e, Reseeded))
    assert reseeded.current_seq >= 50
    initial = late.envelopes[0]
    assert isinstance(initial, InitialMetricsEnvelope)
    assert initial.data.metrics  # the recent metrics the replay broadcast so far
    assert all(m in METRICS for m in initial.data.metrics)
    seq = late.client.seq
    assert (seq.gaps, seq.duplicates, seq.resets) == (0, 0, 0)
    # What the late joiner got is exactly the tail of what the first client got.
    tail = late.broadcasts()
    assert len(tail) >= 30
    assert tail == first.broadcasts()[-len(tail) :]


def test_a_client_leaving_mid_replay_costs_the_others_nothing(capture: Path) -> None:
    leaving, staying = Client(), Client()

    async def scenario() -> ReplayServer:
        stop = asyncio.Event()
        options = serve_options(capture, passes=40, wait_for_client=True)
        async with ReplayServer(options) as server:
            readers = [asyncio.create_task(c.client.run(server.url)) for c in (staying, leaving)]
            while server.hub.subscribers < 2:
                await asyncio.sleep(0.01)
            playing = asyncio.create_task(server.play(stop))
            await leaving.client.wait_for_seq(100)
            await leaving.client.disconnect()
            await playing
        await asyncio.gather(*readers)
        return server

    server = run(scenario())
    assert staying.broadcasts() == BROADCAST * 40
    assert len(leaving.broadcasts()) < len(BROADCAST) * 40
    assert server.clients_served == 2
    assert staying.client.seq.gaps == 0


def test_a_capture_with_nothing_to_broadcast_ends_even_when_looping(tmp_path: Path) -> None:
    control_only = write_capture(tmp_path / "c.jsonl", ['{"type": "x"}'], endpoint="/ws/control")

    async def scenario() -> ReplayServer:
        async with ReplayServer(serve_options(control_only, passes=None)) as server:
            await server.play(asyncio.Event())
        return server

    assert run(scenario()).end is ReplayEnd.NOTHING_TO_REPLAY


def test_only_the_training_endpoint_is_served(capture: Path) -> None:
    async def scenario() -> int:
        async with ReplayServer(serve_options(capture)) as server:
            with pytest.raises(InvalidStatus) as refused:
                await connect(server.url.replace("/ws/training", "/ws/control"))
        return refused.value.response.status_code

    assert run(scenario()) == 404


# --- the command --------------------------------------------------------------------------


def test_replay_of_a_missing_capture_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(tmp_path / "nope.jsonl")]) == EXIT_USAGE
    assert "nope.jsonl: no such file" in capsys.readouterr().err


def test_replay_options_are_checked_before_serving(
    capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(capture), "--port", "70000"]) == EXIT_USAGE
    assert "port must be in 0..65535" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["replay", str(capture), "--speed", "2", "--as-fast-as-possible"])
    assert usage.value.code == EXIT_USAGE


def test_replay_with_no_client_plays_to_the_end_and_summarises(
    capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["replay", str(capture), "--port", "0", "--as-fast-as-possible", "--json"]
    assert main(argv) == EXIT_OK
    summary = json.loads(capsys.readouterr().out)
    assert summary["ended"] == "finished"
    assert summary["messages"] == len(SESSION)
    assert summary["clients_served"] == 0


def test_replay_exits_1_when_the_capture_has_unreadable_lines(
    capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with capture.open("a", encoding="ascii") as out:
        out.write('{"capture": 1, "received_at": "x", "endpoint": "/ws/training", "text": ""}\n')
    argv = ["replay", str(capture), "--port", "0", "--as-fast-as-possible"]
    assert main(argv) == EXIT_PROBLEMS
    printed = capsys.readouterr().out
    assert f"line {len(wire_texts(SESSION)) + 1}: record: 'received_at' must be a number" in printed
    assert "problems: 1 unreadable capture line" in printed


def test_replay_json_lists_unreadable_lines(
    capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture.write_text('{"capture": 3}\n' + capture.read_text())
    main(["replay", str(capture), "--port", "0", "--as-fast-as-possible", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["unreadable"] == [
        {"line": 1, "reason": "record of capture format 3; this tool reads format 1"}
    ]


# --- the capture as it was saved ----------------------------------------------------------


def test_replay_serves_a_gzip_capture_like_the_plain_one(
    capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zipped = capture.with_suffix(".jsonl.gz")
    zipped.write_bytes(gzip.compress(capture.read_bytes()))
    watcher = Client()

    async def scenario() -> None:
        options = serve_options(zipped, wait_for_client=True)
        async with ReplayServer(options) as server:
            reader = asyncio.create_task(watcher.client.run(server.url))
            await server.play(asyncio.Event())
        await reader

    run(scenario())
    assert watcher.broadcasts() == BROADCAST
    argv = ["replay", str(zipped), "--port", "0", "--as-fast-as-possible", "--json"]
    assert main(argv) == EXIT_OK
    summary = json.loads(capsys.readouterr().out)
    assert (summary["messages"], summary["unreadable_count"]) == (len(SESSION), 0)


def test_replay_reads_a_utf16_capture_with_its_bom(
    capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture.write_bytes(capture.read_text(encoding="ascii").encode("utf-16"))
    argv = ["replay", str(capture), "--port", "0", "--as-fast-as-possible", "--json"]
    assert main(argv) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["messages"] == len(SESSION)


def test_replay_of_a_corrupt_gzip_capture_is_one_clear_error(
    capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture.write_bytes(gzip.compress(capture.read_bytes())[:-40])
    argv = ["replay", str(capture), "--port", "0", "--as-fast-as-possible"]
    assert main(argv) == EXIT_USAGE
    assert f"{capture}: the gzip stream is corrupt or truncated" in capsys.readouterr().err
