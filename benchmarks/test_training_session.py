"""End to end on ``/ws/training``: the sans-I/O sessions against floors measured in the same run.

* Consumer: a ``TrainingConsumerSession`` fed the envelope benchmark's 20-frame mix as raw text
  (validation, reassembly, ``seq`` verdicts, counting), against a bare ``json.loads`` loop over
  the same text. Target: at least 2x the loop's throughput. ``validate_envelope_json`` alone
  shows what the session adds to validation. One session takes every round, as one client keeps
  its session: each pass over the mix is a restarted server to it (``seq`` begins again at 1),
  and its ``initial_metrics`` reseeds it.
* Producer: one ``metrics`` frame broadcast by a ``TrainingProducerSession`` and sent to 100
  clients (each a list standing for its socket), against the same sent to 1. Target: the frame
  serialized once, however many clients: the envelope serializer's calls are counted, and every
  client gets the very same ``str``.

As in the envelope benchmark, the variants take turns over 200 rounds and the best round of each
is kept; the table at the end gives each target with PASS or MISS (reported, not failed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from benchmarks.envelope_mix import MIX, RAW
from benchmarks.interleaved import interleaved_best_seconds
from juniper_cascor_protocol.envelope import (
    MetricsEnvelope,
    reset_unknown_label_state,
    validate_envelope_json,
)
from juniper_cascor_protocol.envelope.session_events import UnknownFrame
from juniper_cascor_protocol.envelope.training_session import (
    ChunkRejected,
    EnvelopeReceived,
    Reseeded,
    SeqAnomaly,
    TrainingConsumerSession,
    TrainingEvent,
    TrainingProducerSession,
)

CLIENTS = 100
METRICS_DATA = MIX[0]["data"]


def _consume(session: TrainingConsumerSession) -> Callable[[], None]:
    receive = session.receive

    def run() -> None:
        for text in RAW:
            receive(text, now=1.0)

    return run


def _loads() -> None:
    for text in RAW:
        json.loads(text)


def _validate() -> None:
    for text in RAW:
        validate_envelope_json(text)


def _fan_out(producer: TrainingProducerSession, sockets: list[list[str]]) -> list[str]:
    """One broadcast, sent to every socket: what the shell around the producer does."""
    texts = producer.broadcast(MetricsEnvelope, METRICS_DATA, now=1.0, monotonic=2.0)
    for socket in sockets:
        socket.extend(texts)
    return texts


def _fan_out_round(clients: int) -> Callable[[], None]:
    producer = TrainingProducerSession()
    sockets: list[list[str]] = [[] for _ in range(clients)]

    def run() -> None:
        _fan_out(producer, sockets)
        for socket in sockets:
            socket.clear()

    return run


VARIANTS: dict[str, Callable[[], None]] = {
    "consumer session": _consume(TrainingConsumerSession()),
    "json.loads": _loads,
    "validate_envelope_json": _validate,
    f"broadcast to {CLIENTS} clients": _fan_out_round(CLIENTS),
    "broadcast to 1 client": _fan_out_round(1),
}


class _CountingSerializer:
    """Stands for a model's ``__pydantic_serializer__``, counting the frames it serializes."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    def to_json(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.inner.to_json(*args, **kwargs)

    def to_python(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.inner.to_python(*args, **kwargs)


def _serializations(monkeypatch: pytest.MonkeyPatch, clients: int) -> tuple[int, list[list[str]]]:
    """Serializations of one broadcast to ``clients`` sockets, and the sockets afterwards."""
    counting = _CountingSerializer(MetricsEnvelope.__pydantic_serializer__)
    with monkeypatch.context() as patch:
        patch.setattr(MetricsEnvelope, "__pydantic_serializer__", counting)
        sockets: list[list[str]] = [[] for _ in range(clients)]
        _fan_out(TrainingProducerSession(), sockets)
    return counting.calls, sockets


def _line(what: str, measured: str, target: str, met: bool) -> str:
    return f"{what:<58} {measured:>9}  {target:>7}  {'PASS' if met else 'MISS'}"


class _Table:
    """Prints the table in the terminal summary (test output would be captured)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_sep("=", "/ws/training sessions: best of interleaved rounds")
        for line in self.lines:
            terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _fresh_labels() -> None:
    reset_unknown_label_state()


def _kinds(events: list[TrainingEvent]) -> list[str]:
    return [type(event).__name__ for event in events]


def test_the_consumer_reads_the_mix() -> None:
    session = TrainingConsumerSession()
    events = [event for text in RAW for event in session.receive(text, now=1.0)]
    delivered = [event.envelope.type for event in events if isinstance(event, EnvelopeReceived)]
    assert delivered == [frame["type"] for frame in MIX[:16]]
    unknown = [event.envelope.type for event in events if isinstance(event, UnknownFrame)]
    assert unknown == ["training_summary", "heartbeat", "command_response"]
    assert [event.reason for event in events if isinstance(event, ChunkRejected)] == ["malformed"]
    assert [event.current_seq for event in events if isinstance(event, Reseeded)] == [13]
    assert not [event for event in events if isinstance(event, SeqAnomaly)]
    assert session.stats().messages == len(RAW)
    # A second pass is a restarted server: one RESET, then the counting goes on.
    again = [event for text in RAW for event in session.receive(text, now=1.0)]
    anomalies = [event.observation.event for event in again if isinstance(event, SeqAnomaly)]
    assert anomalies == ["reset"]
    assert _kinds(again).count("EnvelopeReceived") == 16


def test_a_broadcast_reaches_every_client_as_the_same_text(monkeypatch: pytest.MonkeyPatch) -> None:
    calls_for_many, sockets = _serializations(monkeypatch, CLIENTS)
    calls_for_one, _ = _serializations(monkeypatch, 1)
    assert calls_for_many == calls_for_one  # nothing is serialized per client
    [text] = sockets[0]
    assert all(socket == [text] and socket[0] is text for socket in sockets)
    assert json.loads(text)["data"] == METRICS_DATA


def test_table(
    benchmark: Any, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    benchmark.group = "/ws/training sessions: the interleaved measurement behind the table"
    best = benchmark.pedantic(interleaved_best_seconds, args=(VARIANTS, 200), rounds=1)
    per_frame = {name: seconds / len(RAW) * 1e6 for name, seconds in best.items()}
    lines = [f"{'per frame of the mix':<58} {'us':>9}"]
    lines += [f"{name:<58} {per_frame[name]:>9.2f}" for name in list(VARIANTS)[:3]]
    lines += [f"{'per broadcast':<58} {'us':>9}"]
    lines += [f"{name:<58} {best[name] * 1e6:>9.2f}" for name in list(VARIANTS)[3:]]
    speed_up = best["json.loads"] / best["consumer session"]
    calls, _ = _serializations(monkeypatch, CLIENTS)
    lines += [
        "",
        f"{'target':<58} {'measured':>9}  {'target':>7}  result",
        _line(
            "consumer session throughput / json.loads loop",
            f"{speed_up:.2f}x",
            ">= 2.0x",
            speed_up >= 2,
        ),
        _line(f"serializations of one broadcast to {CLIENTS} clients", str(calls), "1", calls == 1),
    ]
    request.config.pluginmanager.register(_Table(lines), "training-session-table")
