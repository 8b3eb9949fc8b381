"""The ``/ws/training`` sessions: what a producer sends and what a consumer makes of it."""

from __future__ import annotations

import functools
import json

import pytest

from juniper_cascor_protocol.envelope import (
    DEFAULT_LABEL_BUDGET,
    PROTOCOL_VERSION,
    UNKNOWN_TYPE_BUDGET,
    UNMATCHED_TYPE_LABEL,
    BaseEnvelope,
    Chunker,
    ChunkRejected,
    ConnectionEstablishedEnvelope,
    EnvelopeReceived,
    Established,
    FrameRefused,
    IncompatibleVersion,
    InitialMetricsEnvelope,
    LabelBudget,
    MetricsEnvelope,
    PingReceived,
    ProtocolViolation,
    Reassembler,
    ReassemblyExpired,
    Refusal,
    RejectReason,
    Reseeded,
    SeqAnomaly,
    SeqEvent,
    StateEnvelope,
    TopologyEnvelope,
    TrainingConsumerSession,
    TrainingEvent,
    TrainingProducerSession,
    UnknownEnvelope,
    UnknownFrame,
    builders,
)

NOW = 1_700_000_000.0


def deliveries(events: list[TrainingEvent]) -> list[EnvelopeReceived]:
    return [event for event in events if isinstance(event, EnvelopeReceived)]


def feed(
    consumer: TrainingConsumerSession, texts: list[str], now: float = 0.0
) -> list[TrainingEvent]:
    return [event for text in texts for event in consumer.receive(text, now=now)]


# --- producer ------------------------------------------------------------------------------


def test_broadcast_stamps_time_and_consecutive_seq() -> None:
    producer = TrainingProducerSession()
    first = producer.broadcast(MetricsEnvelope, {"loss": 0.5}, now=NOW, monotonic=12.5)
    second = producer.broadcast(StateEnvelope, {"state": "running"}, now=NOW + 1, monotonic=13.0)
    assert [json.loads(text) for text in first + second] == [
        {
            "type": "metrics",
            "timestamp": NOW,
            "data": {"loss": 0.5},
            "seq": 1,
            "emitted_at_monotonic": 12.5,
        },
        {
            "type": "state",
            "timestamp": NOW + 1,
            "data": {"state": "running"},
            "seq": 2,
            "emitted_at_monotonic": 13.0,
        },
    ]
    assert producer.current_seq == 2


def test_a_large_broadcast_is_chunked_with_one_seq_per_frame_within_the_budget() -> None:
    producer = TrainingProducerSession(chunker=Chunker(2048))
    texts = producer.broadcast(TopologyEnvelope, {"weights": [0.25] * 2000}, now=NOW, monotonic=1.0)
    frames = [json.loads(text) for text in texts]
    assert len(frames) > 1
    assert {frame["type"] for frame in frames} == {"chunked_message"}
    assert [frame["seq"] for frame in frames] == list(range(1, len(frames) + 1))
    assert all(len(text.encode()) <= 2048 for text in texts)


def test_broadcast_serializes_each_frame_once_however_many_subscribers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serialized = 0
    original = builders.to_wire_json

    def counting(envelope: BaseEnvelope) -> str:
        nonlocal serialized
        serialized += 1
        return original(envelope)

    monkeypatch.setattr(builders, "to_wire_json", counting)
    producer = TrainingProducerSession(chunker=Chunker(2048))
    consumers = [TrainingConsumerSession() for _ in range(100)]
    for consumer in consumers:
        feed(consumer, producer.subscribe(now=NOW, monotonic=0.0))
    serialized = 0
    texts = producer.broadcast(
        StateEnvelope, {"history": list(range(1000))}, now=NOW, monotonic=1.0
    )
    received = [deliveries(feed(consumer, texts)) for consumer in consumers]
    assert serialized == len(texts) > 1
    assert all(len(events) == 1 and events[0].reassembled for events in received)
    assert len({events[0].envelope.model_dump_json() for events in received}) == 1


@pytest.mark.parametrize("envelope_type", [InitialMetricsEnvelope, ConnectionEstablishedEnvelope])
def test_broadcast_refuses_what_is_not_broadcast(envelope_type: type[MetricsEnvelope]) -> None:
    producer = TrainingProducerSession()
    with pytest.raises(ValueError, match="not broadcast on /ws/training"):
        producer.broadcast(envelope_type, {}, now=NOW, monotonic=0.0)
    assert producer.current_seq == 0


def test_subscribe_greets_then_sends_recent_metrics_without_using_a_seq() -> None:
    producer = TrainingProducerSession(recent_metrics=2, server_version="1.4.0")
    for epoch in range(3):
        producer.broadcast(MetricsEnvelope, {"epoch": epoch}, now=NOW, monotonic=0.0)
    producer.broadcast(StateEnvelope, {"state": "running"}, now=NOW, monotonic=0.0)
    greeting, burst = (json.loads(text) for text in producer.subscribe(now=NOW, monotonic=5.0))
    assert greeting["type"] == "connection_established"
    assert greeting["data"] == {"server_version": "1.4.0", "protocol_version": PROTOCOL_VERSION}
    assert "seq" not in greeting
    assert burst["type"] == "initial_metrics"
    assert burst["data"] == {"metrics": [{"epoch": 1}, {"epoch": 2}], "count": 2, "current_seq": 4}
    assert burst["seq"] == 4
    assert producer.current_seq == 4


# --- consumer ------------------------------------------------------------------------------


def test_a_reconnect_reseeds_and_counts_the_frames_missed_meanwhile_as_no_gap() -> None:
    producer = TrainingProducerSession()
    consumer = TrainingConsumerSession()
    first = feed(consumer, producer.subscribe(now=NOW, monotonic=0.0))
    assert Reseeded(current_seq=0, previous_seq=None, missed=0) in first
    feed(consumer, producer.broadcast(MetricsEnvelope, {"epoch": 1}, now=NOW, monotonic=0.0))
    for epoch in range(5):  # while the consumer is away
        producer.broadcast(MetricsEnvelope, {"epoch": epoch}, now=NOW, monotonic=0.0)
    again = feed(consumer, producer.subscribe(now=NOW, monotonic=0.0))
    assert Reseeded(current_seq=6, previous_seq=1, missed=5) in again
    after = feed(consumer, producer.broadcast(MetricsEnvelope, {}, now=NOW, monotonic=0.0))
    assert not any(isinstance(event, SeqAnomaly) for event in again + after)
    stats = consumer.stats()
    assert (stats.seq.gaps, stats.reseeds, stats.missed_while_away) == (0, 2, 5)


def test_a_gap_is_reported_before_the_frame_which_is_still_delivered() -> None:
    producer = TrainingProducerSession()
    consumer = TrainingConsumerSession()
    feed(consumer, producer.subscribe(now=NOW, monotonic=0.0))
    producer.broadcast(MetricsEnvelope, {"lost": 1}, now=NOW, monotonic=0.0)
    producer.broadcast(MetricsEnvelope, {"lost": 2}, now=NOW, monotonic=0.0)
    events = feed(
        consumer, producer.broadcast(MetricsEnvelope, {"kept": 3}, now=NOW, monotonic=0.0)
    )
    anomaly, delivered = events
    assert isinstance(anomaly, SeqAnomaly)
    assert anomaly.observation.event is SeqEvent.GAP
    assert (anomaly.observation.missing_first, anomaly.observation.missing_last) == (1, 2)
    assert isinstance(delivered, EnvelopeReceived)
    assert delivered.envelope.data == {"kept": 3}


def test_a_chunked_initial_metrics_reseeds_when_it_completes() -> None:
    producer = TrainingProducerSession(chunker=Chunker(2048), recent_metrics=500)
    for epoch in range(200):
        producer.broadcast(MetricsEnvelope, {"epoch": epoch, "loss": 0.5}, now=NOW, monotonic=0.0)
    texts = producer.subscribe(now=NOW, monotonic=0.0)
    assert len(texts) > 2  # the greeting and several chunks
    consumer = TrainingConsumerSession()
    events = feed(consumer, texts)
    reseed = events[-2]
    assert reseed == Reseeded(current_seq=200, previous_seq=None, missed=0)
    final = events[-1]
    assert isinstance(final, EnvelopeReceived)
    assert final.reassembled
    assert isinstance(final.envelope, InitialMetricsEnvelope)
    assert final.envelope.data.count == 200
    next_frame = producer.broadcast(MetricsEnvelope, {}, now=NOW, monotonic=0.0)
    assert not any(isinstance(event, SeqAnomaly) for event in feed(consumer, next_frame))


def test_the_greeting_reports_the_servers_protocol_version_instead_of_delivering_it() -> None:
    consumer = TrainingConsumerSession()
    readable = TrainingProducerSession(server_version="1.4.0").subscribe(now=NOW, monotonic=0.0)
    assert consumer.receive(readable[0], now=0.0) == [Established("1.4.0", PROTOCOL_VERSION)]
    newer = TrainingProducerSession(protocol_version="1.0").subscribe(now=NOW, monotonic=0.0)
    assert consumer.receive(newer[0], now=0.0) == [
        IncompatibleVersion(announced="1.0", supported=(PROTOCOL_VERSION,), server_version=None)
    ]
    stats = consumer.stats()
    assert (stats.greetings, dict(stats.delivered), stats.seq.ignored) == (2, {}, 0)


def test_the_servers_ping_is_answered_with_a_pong_and_not_counted_as_unknown() -> None:
    consumer = TrainingConsumerSession()
    events = consumer.receive('{"type": "ping", "ts": 1700000000.0}', now=0.0)
    assert events == [PingReceived()]
    assert json.loads(events[0].reply) == {"type": "pong"}  # type: ignore[union-attr]
    stats = consumer.stats()
    assert (stats.heartbeats, dict(stats.unknown)) == (1, {})


def test_binary_and_oversized_messages_are_refused_naming_the_limit() -> None:
    consumer = TrainingConsumerSession(max_frame_bytes=1024)
    (binary,) = consumer.receive(b'{"type": "metrics"}', now=0.0)
    (oversized,) = consumer.receive("é" * 600, now=0.0)  # 600 characters, 1200 bytes
    assert isinstance(binary, ProtocolViolation)
    assert binary.label is Refusal.BINARY_FRAME
    assert isinstance(oversized, ProtocolViolation)
    assert oversized.label is Refusal.OVERSIZED
    assert "max_frame_bytes=1024" in oversized.reason
    assert oversized.close_code is None  # the session goes on
    assert FrameRefused is ProtocolViolation  # the first name, kept
    assert oversized.detail == oversized.reason
    assert consumer.receive("é" * 512, now=0.0)[0].envelope.type == "_malformed_json"  # type: ignore[union-attr]
    assert dict(consumer.stats().refused) == {"binary_frame": 1, "oversized": 1}


def test_unknown_frames_are_kept_and_counted_by_their_bounded_label() -> None:
    consumer = TrainingConsumerSession()
    (event,) = consumer.receive(
        '{"type": "initial status!", "timestamp": 1, "data": {"a": 1}}', now=0
    )
    assert isinstance(event, UnknownFrame)
    assert (event.envelope.type, event.envelope.data) == ("initial_status_", {"a": 1})
    assert dict(consumer.stats().unknown) == {"initial_status_": 1}


def test_a_frame_of_an_unknown_type_still_counts_for_seq() -> None:
    consumer = TrainingConsumerSession()
    consumer.receive('{"type": "metrics", "timestamp": 1, "data": {}, "seq": 1}', now=0)
    consumer.receive('{"type": "resume_ok", "timestamp": 1, "data": {}, "seq": 2}', now=0)
    events = consumer.receive('{"type": "metrics", "timestamp": 1, "data": {}, "seq": 3}', now=0)
    assert not any(isinstance(event, SeqAnomaly) for event in events)


def test_incomplete_chunks_expire_by_the_time_given_never_by_a_clock() -> None:
    producer = TrainingProducerSession(chunker=Chunker(2048))
    consumer = TrainingConsumerSession(
        reassembler=functools.partial(Reassembler, max_age_seconds=10.0)
    )
    texts = producer.broadcast(TopologyEnvelope, {"w": [0.5] * 2000}, now=NOW, monotonic=0.0)
    consumer.receive(texts[0], now=100.0)
    assert consumer.in_flight == 1
    assert consumer.buffered_bytes > 0
    assert consumer.expire(now=109.0) == []
    (expired,) = consumer.expire(now=110.0)
    assert isinstance(expired, ReassemblyExpired)
    assert (consumer.in_flight, consumer.buffered_bytes) == (0, 0)
    (late,) = consumer.receive(texts[1], now=111.0)
    assert isinstance(late, ChunkRejected)
    assert late.reason is RejectReason.EXPIRED


def test_a_malformed_chunk_is_rejected() -> None:
    consumer = TrainingConsumerSession()
    frame = '{"type": "chunked_message", "timestamp": 1, "data": {"chunk_id": 3}, "seq": 1}'
    events = consumer.receive(frame, now=0.0)
    assert events[-1] == ChunkRejected(RejectReason.MALFORMED, None)
    stats = consumer.stats()
    assert (dict(stats.reassembly.rejected), dict(stats.refused)) == ({"malformed": 1}, {})


def test_a_ping_is_recognized_after_the_label_budget_is_spent() -> None:
    consumer = TrainingConsumerSession()
    for index in range(UNKNOWN_TYPE_BUDGET + 1):
        consumer.receive(f'{{"type": "kind-{index}", "timestamp": 1, "data": {{}}}}', now=0.0)
    assert consumer.stats().unknown[UNMATCHED_TYPE_LABEL] == 1
    assert consumer.receive('{"type": "ping", "ts": 2.0}', now=0.0) == [PingReceived()]


def test_each_consumer_spends_its_own_label_budget() -> None:
    noisy, quiet = TrainingConsumerSession(), TrainingConsumerSession()
    for index in range(UNKNOWN_TYPE_BUDGET + 5):
        noisy.receive(f'{{"type": "kind-{index}", "timestamp": 1, "data": {{}}}}', now=0.0)
    (event,) = quiet.receive('{"type": "fresh", "timestamp": 1, "data": {}}', now=0.0)
    assert isinstance(event, UnknownFrame)
    assert event.envelope.type == "fresh"
    assert len(noisy.stats().unknown) == UNKNOWN_TYPE_BUDGET + 1  # the budget, and _unmatched
    assert DEFAULT_LABEL_BUDGET.admitted == frozenset()
    shared = LabelBudget(1)
    first, second = TrainingConsumerSession(labels=shared), TrainingConsumerSession(labels=shared)
    first.receive('{"type": "one", "timestamp": 1, "data": {}}', now=0.0)
    (late,) = second.receive('{"type": "two", "timestamp": 1, "data": {}}', now=0.0)
    assert late.envelope.type == UNMATCHED_TYPE_LABEL  # type: ignore[union-attr]


def test_a_chunked_message_of_an_unknown_type_is_labelled_from_the_sessions_budget() -> None:
    custom = UnknownEnvelope(type="custom", timestamp=1.0, data={"loss": [0.5] * 500})
    texts = [builders.to_wire_json(frame) for frame in Chunker(2048).chunk(custom)]
    assert len(texts) > 1
    consumer = TrainingConsumerSession(labels=LabelBudget(0))
    (event,) = feed(consumer, texts)
    assert isinstance(event, UnknownFrame)
    assert event.envelope.type == UNMATCHED_TYPE_LABEL  # the session's budget, which is spent
    assert DEFAULT_LABEL_BUDGET.admitted == frozenset()
