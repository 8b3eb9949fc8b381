"""Acceptance of issue 8, item 8, where a user meets it: a ``TrainingConsumerSession``.

The ``Reassembler`` tests show that chunks announced as ``metrics`` cannot deliver an
``initial_metrics``. The session is what the README recommends for consuming ``/ws/training``,
and it reseeds its ``seq`` position on every ``initial_metrics`` it delivers, reassembled ones
included. So the attack of the issue is replayed against it: a server (or anything between)
smuggles ``initial_metrics`` with ``current_seq`` 999999 inside chunks labelled ``metrics``. The
session must reject the message, keep its position, and keep reporting the next broadcast as in
order; and a late chunk of a delivered message with other content is a conflict, not a copy.
"""

from __future__ import annotations

import json
from typing import Any

from juniper_cascor_protocol.envelope import (
    ChunkRejected,
    EnvelopeReceived,
    InitialMetricsData,
    InitialMetricsEnvelope,
    RejectReason,
    Reseeded,
    SeqAnomaly,
    TrainingConsumerSession,
    TrainingEvent,
)


def chunk_frame(payload: str, index: int, total: int, seq: int, original_type: str) -> str:
    data = {
        "chunk_id": "c-1",
        "chunk_index": index,
        "total_chunks": total,
        "original_type": original_type,
        "payload": payload,
    }
    frame: dict[str, Any] = {"type": "chunked_message", "timestamp": 1.0, "data": data}
    return json.dumps({**frame, "seq": seq, "emitted_at_monotonic": 1.0})


def metrics_frame(seq: int) -> str:
    return json.dumps({"type": "metrics", "timestamp": 1.0, "data": {}, "seq": seq})


def receive_all(consumer: TrainingConsumerSession, texts: list[str]) -> list[TrainingEvent]:
    return [event for text in texts for event in consumer.receive(text, now=0.0)]


SMUGGLED = InitialMetricsEnvelope(
    timestamp=1.0, data=InitialMetricsData(metrics=[], count=0, current_seq=999_999)
).to_wire_json()


def test_chunks_labelled_metrics_cannot_reseed_the_consumer() -> None:
    consumer = TrainingConsumerSession()
    receive_all(consumer, [metrics_frame(seq) for seq in range(1, 6)])
    assert consumer.last_seq == 5
    halves = [SMUGGLED[:20], SMUGGLED[20:]]

    events = receive_all(
        consumer, [chunk_frame(half, i, 2, 6 + i, "metrics") for i, half in enumerate(halves)]
    )

    assert not any(isinstance(event, Reseeded | EnvelopeReceived) for event in events)
    assert events[-1] == ChunkRejected(RejectReason.ORIGINAL_TYPE_MISMATCH, "c-1")
    assert consumer.last_seq == 7  # the chunk frames' own numbers, never 999999
    after = consumer.receive(metrics_frame(8), now=0.0)
    assert not any(isinstance(event, SeqAnomaly) for event in after)
    assert consumer.last_seq == 8


def test_the_same_chunks_labelled_initial_metrics_do_reseed() -> None:
    """The control case: the rule rejects the contradiction, not chunked initial_metrics."""
    consumer = TrainingConsumerSession()
    halves = [SMUGGLED[:20], SMUGGLED[20:]]

    events = receive_all(
        consumer,
        [chunk_frame(half, i, 2, 1 + i, "initial_metrics") for i, half in enumerate(halves)],
    )

    assert Reseeded(current_seq=999_999, previous_seq=2, missed=999_997) in events
    assert consumer.last_seq == 999_999


def test_a_late_chunk_with_other_content_is_a_conflict_not_a_duplicate() -> None:
    consumer = TrainingConsumerSession()
    text = json.dumps({"type": "metrics", "timestamp": 1.0, "data": {"loss": 0.5}})
    parts = [text[:15], text[15:]]
    frames = [chunk_frame(part, i, 2, 1 + i, "metrics") for i, part in enumerate(parts)]
    delivered = receive_all(consumer, frames)
    assert any(isinstance(event, EnvelopeReceived) and event.reassembled for event in delivered)

    (conflict,) = consumer.receive(chunk_frame("tampered", 1, 2, 3, "metrics"), now=0.0)
    copy = consumer.receive(chunk_frame(parts[1], 1, 2, 4, "metrics"), now=0.0)

    assert conflict == ChunkRejected(RejectReason.CONFLICTING_DUPLICATE, "c-1")
    assert not any(isinstance(event, ChunkRejected | EnvelopeReceived) for event in copy)
    assert consumer.stats().reassembly.duplicates == 1
