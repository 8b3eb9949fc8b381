"""Chunker (every frame within budget, exact reassembly) and Reassembler (bounded, typed)."""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from juniper_cascor_protocol.envelope.base import BaseEnvelope, UnknownEnvelope
from juniper_cascor_protocol.envelope.builders import to_wire_json
from juniper_cascor_protocol.envelope.chunking import (
    MIN_FRAME_BYTES,
    MIN_PAYLOAD_BYTES,
    STAMP_HEADROOM,
    Chunker,
    Reassembler,
    ReassemblyResult,
    ReassemblyStatus,
    RejectReason,
)
from juniper_cascor_protocol.envelope.sequence import MAX_SEQ
from juniper_cascor_protocol.envelope.training import (
    CandidateProgressEnvelope,
    CascadeAddEnvelope,
    ChunkedMessageData,
    ChunkedMessageEnvelope,
    EventEnvelope,
    InitialMetricsData,
    InitialMetricsEnvelope,
    MetricsEnvelope,
    StateEnvelope,
    TopologyEnvelope,
)
from juniper_cascor_protocol.envelope.validate import validate_envelope, validate_envelope_json

# The widest ``seq`` and ``emitted_at_monotonic`` STAMP_HEADROOM is documented to allow for.
WIDEST_SEQ = MAX_SEQ
WIDEST_FLOAT = -2.2250738585072014e-308

ESCAPE_HEAVY = '"\\/\x00\x01\x08\x0c\x1f\x7f\n\r\t \u00e9\u20ac\u2028\u2029\U0001f600\ufeff'
texts = st.text(
    alphabet=st.sampled_from(ESCAPE_HEAVY) | st.characters(codec="utf-8"),
    max_size=400,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False) | texts,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(texts, children, max_size=5),
    max_leaves=25,
)
FREE_FORM = [
    MetricsEnvelope,
    StateEnvelope,
    TopologyEnvelope,
    EventEnvelope,
    CascadeAddEnvelope,
    CandidateProgressEnvelope,
]


@st.composite
def envelopes(draw: st.DrawFn) -> BaseEnvelope:
    timestamp = draw(st.floats(0, 4e9))
    if draw(st.booleans()):
        return InitialMetricsEnvelope(
            timestamp=timestamp,
            data=InitialMetricsData(
                metrics=draw(st.lists(json_values, max_size=6)),
                count=draw(st.integers(0, 10**6)),
                current_seq=draw(st.integers(0, 2**40)),
            ),
        )
    envelope_type = draw(st.sampled_from(FREE_FORM))
    return envelope_type(
        timestamp=timestamp,
        data=draw(st.dictionaries(texts, json_values, max_size=6)),
        seq=draw(st.none() | st.integers(0, 2**62)),
    )


def on_the_wire(frame: BaseEnvelope) -> BaseEnvelope:
    """What a receiver makes of ``frame``: its wire JSON, validated."""
    return validate_envelope_json(to_wire_json(frame))


def widest_stamp(frame: BaseEnvelope) -> BaseEnvelope:
    return frame.model_copy(update={"seq": WIDEST_SEQ, "emitted_at_monotonic": WIDEST_FLOAT})


def wire_size(frame: BaseEnvelope) -> int:
    return len(to_wire_json(frame).encode("utf-8"))


def chunk(
    chunk_id: str = "m1",
    index: int = 0,
    total: int = 2,
    payload: str = "x",
    original_type: str = "metrics",
) -> ChunkedMessageEnvelope:
    return ChunkedMessageEnvelope(
        timestamp=1.0,
        data=ChunkedMessageData(
            chunk_id=chunk_id,
            chunk_index=index,
            total_chunks=total,
            original_type=original_type,
            payload=payload,
        ),
    )


def chunks_of(text: str, pieces: int, chunk_id: str = "m1") -> list[ChunkedMessageEnvelope]:
    size = -(-len(text) // pieces)
    return [
        chunk(chunk_id, i, pieces, text[i * size : (i + 1) * size], "metrics")
        for i in range(pieces)
    ]


def as_chunks(frames: list[BaseEnvelope]) -> list[ChunkedMessageEnvelope]:
    chunks = [frame for frame in frames if isinstance(frame, ChunkedMessageEnvelope)]
    assert len(chunks) == len(frames)
    return chunks


def held_bytes(reassembler: Reassembler) -> int:
    """Payload bytes actually buffered, counted independently of the reassembler's own tally."""
    return sum(
        len(payload.encode("utf-8", "surrogatepass"))
        for partial in reassembler._partials.values()
        for payload in partial.parts.values()
    )


class TestChunker:
    def test_the_headroom_covers_the_widest_stamp(self) -> None:
        stamp = ',"seq":' + str(WIDEST_SEQ) + ',"emitted_at_monotonic":' + json.dumps(WIDEST_FLOAT)
        assert len(stamp) == STAMP_HEADROOM

    @settings(max_examples=300, deadline=None)
    @given(seq=st.integers(0, MAX_SEQ), monotonic=st.floats(allow_nan=False, allow_infinity=False))
    def test_any_stamp_fits_the_headroom(self, seq: int, monotonic: float) -> None:
        bare = MetricsEnvelope(timestamp=1.0)
        stamped = bare.model_copy(update={"seq": seq, "emitted_at_monotonic": monotonic})
        assert wire_size(stamped) - wire_size(bare) <= STAMP_HEADROOM

    def test_small_envelope_passes_through_unchanged(self) -> None:
        envelope = MetricsEnvelope(timestamp=1.0, data={"loss": 0.5})
        assert Chunker(1024).split(envelope) == [envelope]
        assert Chunker(1024).fits(envelope)

    def test_large_envelope_is_split_and_rejoins_to_its_exact_json(self) -> None:
        envelope = TopologyEnvelope(timestamp=1.5, data={"w": [0.1] * 2000, "s": 'a"\\é' * 300})
        chunker = Chunker(2048)
        assert not chunker.fits(envelope)
        frames = as_chunks(chunker.split(envelope))
        assert len(frames) > 1
        datas = [frame.data for frame in frames]
        assert [d.chunk_index for d in datas] == list(range(len(frames)))
        assert {d.total_chunks for d in datas} == {len(frames)}
        assert {d.original_type for d in datas} == {"topology"}
        assert len({d.chunk_id for d in datas}) == 1
        assert uuid.UUID(datas[0].chunk_id).version == 4
        assert "".join(d.payload for d in datas) == to_wire_json(envelope)
        assert all(wire_size(widest_stamp(frame)) <= 2048 for frame in frames)
        assert all(frame.timestamp == 1.5 and frame.seq is None for frame in frames)

    def test_each_split_gets_a_fresh_chunk_id(self) -> None:
        envelope = StateEnvelope(timestamp=1.0, data={"s": "x" * 5000})
        chunker = Chunker(1024)
        ids = {as_chunks(chunker.split(envelope))[0].data.chunk_id for _ in range(5)}
        assert len(ids) == 5

    def test_chunks_are_filled_close_to_the_budget(self) -> None:
        envelope = StateEnvelope(timestamp=1.0, data={"s": "plain ascii " * 20_000})
        frames = Chunker(4096).split(envelope)
        assert all(wire_size(widest_stamp(f)) > 4096 - 64 for f in frames[:-1])

    def test_chunk_always_splits(self) -> None:
        envelope = EventEnvelope(timestamp=1.0)
        [only] = Chunker(1024).chunk(envelope)
        assert only.data.payload == to_wire_json(envelope)
        assert (only.data.chunk_index, only.data.total_chunks) == (0, 1)

    def test_injected_chunk_id_and_headroom(self) -> None:
        chunker = Chunker(1000, headroom=0, chunk_id_factory=lambda: "fixed")
        frames = as_chunks(chunker.split(MetricsEnvelope(timestamp=1.0, data={"s": "y" * 5000})))
        assert {f.data.chunk_id for f in frames} == {"fixed"}
        assert max(wire_size(f) for f in frames) <= 1000
        assert max(wire_size(f) for f in frames) > 1000 - 16

    @pytest.mark.parametrize(
        ("max_frame_bytes", "headroom"),
        [(STAMP_HEADROOM + MIN_FRAME_BYTES - 1, STAMP_HEADROOM), (711, 200)],
    )
    def test_too_small_a_budget_is_rejected_naming_the_limit(
        self, max_frame_bytes: int, headroom: int
    ) -> None:
        with pytest.raises(ValueError, match=r"max_frame_bytes must be >= headroom \+ 512"):
            Chunker(max_frame_bytes, headroom=headroom)

    def test_negative_headroom_rejected(self) -> None:
        with pytest.raises(ValueError, match="headroom must be >= 0"):
            Chunker(1000, headroom=-1)

    def test_header_leaving_no_payload_room_is_rejected(self) -> None:
        envelope = UnknownEnvelope(type="t" * 800, timestamp=1.0, data={"s": "z" * 2000})
        with pytest.raises(ValueError, match=rf"leaves -?\d+ payload bytes.*{MIN_PAYLOAD_BYTES}"):
            Chunker(1000).split(envelope)

    @settings(max_examples=80, deadline=None)
    @given(
        envelope=envelopes(),
        max_frame_bytes=st.integers(STAMP_HEADROOM + MIN_FRAME_BYTES, 1500),
        rng=st.randoms(),
    )
    def test_any_envelope_survives_shuffled_duplicated_chunks(
        self, envelope: BaseEnvelope, max_frame_bytes: int, rng: random.Random
    ) -> None:
        frames = Chunker(max_frame_bytes).split(envelope)
        for frame in frames:
            assert wire_size(widest_stamp(frame)) <= max_frame_bytes
        if len(frames) == 1:
            assert frames == [envelope]
            return
        received = [on_the_wire(widest_stamp(frame)) for frame in frames]
        received += rng.sample(received, k=min(3, len(received)))  # duplicates
        rng.shuffle(received)
        reassembler = Reassembler()
        outcomes = [reassembler.feed(frame) for frame in received]
        complete = [o for o in outcomes if o.status is ReassemblyStatus.COMPLETE]
        assert len(complete) == 1
        rebuilt = complete[0].envelope
        assert rebuilt is not None
        assert type(rebuilt) is type(envelope)
        assert to_wire_json(rebuilt) == to_wire_json(envelope)
        assert rebuilt == on_the_wire(envelope)
        assert {o.status for o in outcomes} <= {
            ReassemblyStatus.PENDING,
            ReassemblyStatus.COMPLETE,
            ReassemblyStatus.DUPLICATE,
        }
        assert (reassembler.in_flight, reassembler.buffered_bytes) == (0, 0)

    @settings(max_examples=40, deadline=None)
    @given(text=st.text(alphabet=st.sampled_from(ESCAPE_HEAVY), min_size=1, max_size=3000))
    def test_escape_only_payloads_stay_within_budget(self, text: str) -> None:
        envelope = EventEnvelope(timestamp=1.0, data={text: text})
        frames = Chunker(600).chunk(envelope)
        assert all(wire_size(widest_stamp(f)) <= 600 for f in frames)
        assert "".join(f.data.payload for f in frames) == to_wire_json(envelope)


class TestReassemblerOutcomes:
    def test_non_chunks_pass_through(self) -> None:
        reassembler = Reassembler()
        envelope = MetricsEnvelope(timestamp=1.0, seq=3)
        outcome = reassembler.feed(envelope)
        assert outcome == ReassemblyResult(ReassemblyStatus.PASSTHROUGH, envelope=envelope)
        assert reassembler.stats().passthrough == 1

    def test_pending_then_complete_in_any_order(self) -> None:
        original = MetricsEnvelope(timestamp=2.0, data={"loss": 0.25})
        parts = chunks_of(to_wire_json(original), 3)
        reassembler = Reassembler()
        assert reassembler.feed(parts[2]).status is ReassemblyStatus.PENDING
        assert reassembler.feed(parts[0]).status is ReassemblyStatus.PENDING
        done = reassembler.feed(parts[1])
        assert done == ReassemblyResult(ReassemblyStatus.COMPLETE, envelope=original, chunk_id="m1")
        assert reassembler.stats().completed == 1

    def test_identical_duplicate_is_ignored(self) -> None:
        parts = chunks_of(to_wire_json(MetricsEnvelope(timestamp=1.0)), 2)
        reassembler = Reassembler()
        reassembler.feed(parts[0])
        assert reassembler.feed(parts[0]).status is ReassemblyStatus.DUPLICATE
        assert reassembler.feed(parts[1]).status is ReassemblyStatus.COMPLETE
        # A late copy after completion is not buffered again.
        assert reassembler.feed(parts[0]).status is ReassemblyStatus.DUPLICATE
        assert reassembler.in_flight == 0
        assert reassembler.stats().duplicates == 2

    def test_bad_original_json_completes_as_the_usual_unknown_envelope(self) -> None:
        reassembler = Reassembler()
        reassembler.feed(chunk(index=0, payload='{"type": "metr'))
        done = reassembler.feed(chunk(index=1, payload="ics", total=2))
        assert done.status is ReassemblyStatus.COMPLETE
        assert isinstance(done.envelope, UnknownEnvelope)
        assert done.envelope == validate_envelope_json('{"type": "metrics')

    def test_single_chunk_message_completes_at_once(self) -> None:
        done = Reassembler().feed(chunk(total=1, payload='{"type":"state","timestamp":3}'))
        assert done.status is ReassemblyStatus.COMPLETE
        assert isinstance(done.envelope, StateEnvelope)

    @pytest.mark.parametrize(
        ("first", "second", "reason"),
        [
            (chunk(index=0, total=3), chunk(index=1, total=4), RejectReason.TOTAL_MISMATCH),
            (
                chunk(index=0, original_type="metrics"),
                chunk(index=1, original_type="state"),
                RejectReason.TYPE_MISMATCH,
            ),
            (
                chunk(index=0, payload="a"),
                chunk(index=0, payload="b"),
                RejectReason.CONFLICTING_DUPLICATE,
            ),
        ],
    )
    def test_conflicting_chunks_reject_the_message_and_free_it(
        self, first: ChunkedMessageEnvelope, second: ChunkedMessageEnvelope, reason: RejectReason
    ) -> None:
        reassembler = Reassembler()
        assert reassembler.feed(first).status is ReassemblyStatus.PENDING
        assert reassembler.buffered_bytes > 0
        rejected = reassembler.feed(second)
        assert rejected == ReassemblyResult(ReassemblyStatus.REJECTED, reason=reason, chunk_id="m1")
        assert (reassembler.in_flight, reassembler.buffered_bytes) == (0, 0)
        late = reassembler.feed(chunk(index=1, total=first.data.total_chunks))
        assert late.reason is RejectReason.ALREADY_REJECTED
        assert reassembler.in_flight == 0
        assert reassembler.stats().rejected == {reason: 1, RejectReason.ALREADY_REJECTED: 1}

    @pytest.mark.parametrize(
        ("frame", "reason"),
        [
            (chunk(index=2, total=2), RejectReason.INDEX_OUT_OF_RANGE),
            (chunk(index=0, total=10**12), RejectReason.TOO_MANY_CHUNKS),
            (chunk(total=2, payload="p" * 2000), RejectReason.MESSAGE_TOO_LARGE),
            (chunk(original_type="t" * 200), RejectReason.HEADER_TOO_LONG),
            (chunk(chunk_id="i" * 200), RejectReason.HEADER_TOO_LONG),
        ],
    )
    def test_invalid_chunk_is_rejected_with_its_reason(
        self, frame: ChunkedMessageEnvelope, reason: RejectReason
    ) -> None:
        reassembler = Reassembler(max_message_bytes=1000, max_buffered_bytes=1000)
        outcome = reassembler.feed(frame)
        assert (outcome.status, outcome.reason) == (ReassemblyStatus.REJECTED, reason)
        assert (reassembler.in_flight, reassembler.buffered_bytes) == (0, 0)

    def test_overlong_chunk_id_is_not_remembered(self) -> None:
        reassembler = Reassembler(max_header_chars=36)
        for i in range(100):
            reassembler.feed(chunk(chunk_id=f"{i:037d}"))
        assert reassembler.stats().remembered_ids == 0
        assert reassembler.stats().rejected == {RejectReason.HEADER_TOO_LONG: 100}

    def test_message_growing_past_its_cap_is_rejected(self) -> None:
        reassembler = Reassembler(max_message_bytes=100, max_buffered_bytes=100)
        assert reassembler.feed(chunk(index=0, total=3, payload="a" * 60)).status is (
            ReassemblyStatus.PENDING
        )
        outcome = reassembler.feed(chunk(index=1, total=3, payload="\u00e9" * 25))  # 50 bytes
        assert outcome.reason is RejectReason.MESSAGE_TOO_LARGE
        assert reassembler.buffered_bytes == 0

    def test_malformed_chunk_frame_is_rejected(self) -> None:
        frame = validate_envelope({"type": "chunked_message", "timestamp": 1.0, "data": {}})
        assert isinstance(frame, UnknownEnvelope)
        outcome = Reassembler().feed(frame)
        assert (outcome.status, outcome.reason) == (
            ReassemblyStatus.REJECTED,
            RejectReason.MALFORMED,
        )

    def test_locally_built_lone_surrogate_payload_does_not_raise(self) -> None:
        reassembler = Reassembler()
        assert reassembler.feed(chunk(index=0, payload="\ud800")).status is (
            ReassemblyStatus.PENDING
        )
        assert reassembler.buffered_bytes == 3
        done = reassembler.feed(chunk(index=1, payload="}"))
        assert done.status is ReassemblyStatus.COMPLETE
        assert isinstance(done.envelope, UnknownEnvelope)


class TestReassemblerBounds:
    def test_oldest_message_is_evicted_when_too_many_are_in_flight(self) -> None:
        reassembler = Reassembler(max_messages_in_flight=2)
        for chunk_id in ("a", "b", "c"):
            assert reassembler.feed(chunk(chunk_id)).status is ReassemblyStatus.PENDING
        assert reassembler.in_flight == 2
        assert reassembler.stats().evicted == 1
        assert reassembler.feed(chunk("a", index=1)).reason is RejectReason.EVICTED
        assert reassembler.feed(chunk("c", index=1)).status is ReassemblyStatus.COMPLETE

    def test_oldest_messages_are_evicted_to_respect_the_byte_cap(self) -> None:
        reassembler = Reassembler(max_message_bytes=100, max_buffered_bytes=150)
        reassembler.feed(chunk("a", payload="a" * 60))
        reassembler.feed(chunk("b", payload="b" * 60))
        assert reassembler.buffered_bytes == 120
        reassembler.feed(chunk("c", payload="c" * 60))
        assert reassembler.buffered_bytes == 120
        assert reassembler.feed(chunk("a", index=1)).reason is RejectReason.EVICTED
        # The message being extended is never its own victim.
        reassembler.feed(chunk("c", index=1, total=3, payload="c" * 10))
        assert reassembler.stats().rejected[RejectReason.TOTAL_MISMATCH] == 1

    def test_partials_expire_by_age_on_the_next_feed(self) -> None:
        now = [100.0]
        reassembler = Reassembler(max_age_seconds=10.0, clock=lambda: now[0])
        reassembler.feed(chunk("old"))
        now[0] = 105.0
        reassembler.feed(chunk("young"))
        now[0] = 110.0
        reassembler.feed(MetricsEnvelope(timestamp=1.0))
        assert reassembler.in_flight == 1
        assert reassembler.stats().expired == 1
        assert reassembler.feed(chunk("old", index=1)).reason is RejectReason.EXPIRED
        assert reassembler.feed(chunk("young", index=1)).status is ReassemblyStatus.COMPLETE

    def test_explicit_expire_returns_the_dropped_ids(self) -> None:
        now = [0.0]
        reassembler = Reassembler(max_age_seconds=1.0, clock=lambda: now[0])
        reassembler.feed(chunk("a"))
        reassembler.feed(chunk("b"))
        assert reassembler.expire() == []
        now[0] = 1.0
        assert reassembler.expire() == ["a", "b"]
        assert (reassembler.in_flight, reassembler.buffered_bytes) == (0, 0)

    def test_flood_of_distinct_ids_stays_within_every_cap(self) -> None:
        reassembler = Reassembler(
            max_messages_in_flight=8,
            max_message_bytes=1000,
            max_buffered_bytes=4000,
            max_remembered_ids=64,
        )
        for i in range(5000):
            reassembler.feed(chunk(f"id-{i}", payload="x" * 700, total=3))
            assert reassembler.in_flight <= 8
            assert reassembler.buffered_bytes == held_bytes(reassembler) <= 4000
            assert reassembler.stats().remembered_ids <= 64
        assert reassembler.stats().evicted == 5000 - reassembler.in_flight

    def test_flood_of_chunks_for_rejected_ids_holds_nothing(self) -> None:
        reassembler = Reassembler(max_remembered_ids=16)
        reassembler.feed(chunk("bad", index=0, payload="a"))
        reassembler.feed(chunk("bad", index=0, payload="b"))
        for i in range(2000):
            outcome = reassembler.feed(chunk("bad", index=i % 2, payload="z" * 100))
            assert outcome.reason is RejectReason.ALREADY_REJECTED
        stats = reassembler.stats()
        assert (stats.in_flight, stats.buffered_bytes, stats.remembered_ids) == (0, 0, 1)

    def test_remembered_ids_forget_the_oldest_first(self) -> None:
        reassembler = Reassembler(max_remembered_ids=2)
        for chunk_id in ("a", "b", "c"):
            reassembler.feed(chunk(chunk_id, index=5, total=2))
        assert reassembler.stats().remembered_ids == 2
        assert reassembler.feed(chunk("c", index=0)).reason is RejectReason.ALREADY_REJECTED
        assert reassembler.feed(chunk("a", index=0)).status is ReassemblyStatus.PENDING

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"max_chunks_per_message": 0}, "max_chunks_per_message must be >= 1"),
            ({"max_messages_in_flight": 0}, "max_messages_in_flight must be >= 1"),
            ({"max_message_bytes": 10, "max_buffered_bytes": 5}, "max_buffered_bytes must be >="),
            ({"max_age_seconds": 0.0}, "max_age_seconds must be > 0"),
            ({"max_remembered_ids": -1}, "max_remembered_ids must be >= 0"),
        ],
    )
    def test_invalid_caps_rejected_naming_the_field(
        self, kwargs: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            Reassembler(**kwargs)

    @settings(max_examples=60, deadline=None)
    @given(
        frames=st.lists(
            st.tuples(
                st.sampled_from(["a", "b", "c", "d", "e", "f"]),
                st.integers(0, 6),
                st.integers(1, 6),
                st.sampled_from(["metrics", "state"]),
                st.text(max_size=120),
                st.floats(0, 3),
            ),
            max_size=120,
        )
    )
    def test_hostile_stream_never_raises_and_stays_bounded(
        self, frames: list[tuple[str, int, int, str, str, float]]
    ) -> None:
        now = [0.0]
        reassembler = Reassembler(
            max_chunks_per_message=5,
            max_message_bytes=300,
            max_buffered_bytes=600,
            max_messages_in_flight=3,
            max_age_seconds=5.0,
            max_remembered_ids=4,
            clock=lambda: now[0],
        )
        statuses: list[ReassemblyStatus] = []
        for chunk_id, index, total, original_type, payload, step in frames:
            now[0] += step
            outcome = reassembler.feed(chunk(chunk_id, index, total, payload, original_type))
            statuses.append(outcome.status)
            assert (outcome.status is ReassemblyStatus.REJECTED) == (outcome.reason is not None)
            assert reassembler.in_flight <= 3
            assert reassembler.buffered_bytes == held_bytes(reassembler) <= 600
            assert reassembler.stats().remembered_ids <= 4
        stats = reassembler.stats()
        assert stats.chunks == len(frames)
        assert stats.completed == statuses.count(ReassemblyStatus.COMPLETE)
        assert stats.duplicates == statuses.count(ReassemblyStatus.DUPLICATE)
        assert sum(stats.rejected.values()) == statuses.count(ReassemblyStatus.REJECTED)
