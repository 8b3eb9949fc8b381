"""Chunker (every frame within budget, exact reassembly) and Reassembler (bounded, typed)."""

from __future__ import annotations

import json
import random
import tracemalloc
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from juniper_cascor_protocol.envelope.base import BaseEnvelope, UnknownEnvelope
from juniper_cascor_protocol.envelope.builders import to_wire_json
from juniper_cascor_protocol.envelope.chunking import (
    CHUNK_OVERHEAD_BYTES,
    MIN_FRAME_BYTES,
    MIN_PAYLOAD_BYTES,
    STAMP_HEADROOM,
    Chunker,
    Reassembler,
    ReassemblyResult,
    ReassemblyStatus,
    RejectReason,
)
from juniper_cascor_protocol.envelope.labels import (
    DEFAULT_LABEL_BUDGET,
    UNMATCHED_TYPE_LABEL,
    LabelBudget,
)
from juniper_cascor_protocol.envelope.sequence import MAX_SEQ, SequenceTracker
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
    """Bytes charged for what is buffered, counted independently of the reassembler's tally."""
    return sum(
        len(payload) + CHUNK_OVERHEAD_BYTES
        for partial in reassembler._partials.values()
        for payload in partial.parts.values()
    )


def cost(payload: str) -> int:
    """What buffering one chunk of ``payload`` is charged."""
    return len(payload.encode("utf-8")) + CHUNK_OVERHEAD_BYTES


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

    def test_a_rebuilt_unknown_type_is_labelled_from_the_reassemblers_own_budget(self) -> None:
        own = LabelBudget(1)
        reassembler = Reassembler(labels=own)
        labels = [
            reassembler.feed(
                chunk(kind, total=1, payload=f'{{"type":"{kind}"}}', original_type=kind)
            )
            for kind in ("alpha", "beta")
        ]
        assert [outcome.envelope.type for outcome in labels if outcome.envelope] == [
            "alpha",
            UNMATCHED_TYPE_LABEL,
        ]
        assert own.admitted == {"alpha"}
        assert DEFAULT_LABEL_BUDGET.admitted == frozenset()

    def test_without_a_budget_of_its_own_it_uses_the_process_wide_one(self) -> None:
        done = Reassembler().feed(chunk(total=1, payload='{"type":"alpha"}', original_type="alpha"))
        assert done.envelope is not None
        assert done.envelope.type == "alpha"
        assert DEFAULT_LABEL_BUDGET.admitted == {"alpha"}

    def test_single_chunk_message_completes_at_once(self) -> None:
        payload = '{"type":"state","timestamp":3}'
        done = Reassembler().feed(chunk(total=1, payload=payload, original_type="state"))
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
        cap = 2 * CHUNK_OVERHEAD_BYTES + 100
        reassembler = Reassembler(max_message_bytes=cap, max_buffered_bytes=cap)
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
        assert reassembler.buffered_bytes == 3 + CHUNK_OVERHEAD_BYTES
        done = reassembler.feed(chunk(index=1, payload="}"))
        assert done.status is ReassemblyStatus.COMPLETE
        assert isinstance(done.envelope, UnknownEnvelope)


class TestReassemblerOriginalType:
    """The rebuilt message must be what its chunks said it is."""

    def test_chunks_labelled_metrics_cannot_deliver_initial_metrics(self) -> None:
        """The README's consumer loop would reseed its tracker from the smuggled frame."""
        smuggled = InitialMetricsEnvelope(
            timestamp=1.0, data=InitialMetricsData(count=0, current_seq=999_999)
        )
        tracker, reassembler = SequenceTracker(), Reassembler()
        tracker.seed(5)
        for part in chunks_of(to_wire_json(smuggled), 3):  # original_type "metrics"
            outcome = reassembler.feed(part)
            if outcome.status is ReassemblyStatus.COMPLETE and outcome.envelope is not None:
                tracker.observe(outcome.envelope)
        assert outcome == ReassemblyResult(
            ReassemblyStatus.REJECTED, reason=RejectReason.ORIGINAL_TYPE_MISMATCH, chunk_id="m1"
        )
        assert tracker.last_seq == 5
        stats = reassembler.stats()
        assert (stats.completed, stats.in_flight, stats.buffered_bytes) == (0, 0, 0)
        late = reassembler.feed(chunks_of(to_wire_json(smuggled), 3)[0])
        assert late.reason is RejectReason.ALREADY_REJECTED

    @pytest.mark.parametrize(
        ("original_type", "payload"),
        [
            ("metrics", '{"type":"state","timestamp":1}'),
            ("metrics", '{"type":"initial_metrics","timestamp":1,"data":{}}'),  # invalid one
            ("metrics", '{"type":"custom_kind","timestamp":1}'),
            ("custom_kind", '{"type":"metrics","timestamp":1}'),
            ("chunked_message", '{"type":"metrics","timestamp":1}'),
        ],
    )
    @pytest.mark.parametrize("total", [1, 2])
    def test_a_contradicting_type_is_rejected(
        self, original_type: str, payload: str, total: int
    ) -> None:
        reassembler = Reassembler()
        parts = [
            chunk(index=i, total=total, payload=p, original_type=original_type)
            for i, p in enumerate([payload[:5], payload[5:]] if total == 2 else [payload])
        ]
        outcomes = [reassembler.feed(part) for part in parts]
        assert (outcomes[-1].status, outcomes[-1].reason) == (
            ReassemblyStatus.REJECTED,
            RejectReason.ORIGINAL_TYPE_MISMATCH,
        )
        assert outcomes[-1].envelope is None

    @pytest.mark.parametrize(
        ("original_type", "payload", "rebuilt_type"),
        [
            ("metrics", '{"type":"metrics","timestamp":1}', "metrics"),
            ("metrics", '{"type":"metrics","timestamp":"1"}', "metrics"),  # invalid: unknown
            ("metrics", '{"type": "metr', "_malformed_json"),
            ("metrics", "[1, 2]", "_not_an_object"),
            ("metrics", '{"timestamp":1}', "_missing_type"),
            ("kind_a", '{"type":"kind_b","timestamp":1}', "kind_b"),  # both merely unknown
        ],
    )
    def test_an_agreeing_or_typeless_original_completes(
        self, original_type: str, payload: str, rebuilt_type: str
    ) -> None:
        done = Reassembler().feed(chunk(total=1, payload=payload, original_type=original_type))
        assert done.status is ReassemblyStatus.COMPLETE
        assert done.envelope is not None
        assert done.envelope.type == rebuilt_type


class TestReassemblerLateChunks:
    """Chunks of a message already delivered: copies are duplicates, anything else conflicts."""

    @pytest.fixture
    def delivered(self) -> tuple[Reassembler, list[ChunkedMessageEnvelope]]:
        parts = chunks_of(to_wire_json(MetricsEnvelope(timestamp=1.0, data={"x": 1})), 3)
        reassembler = Reassembler()
        outcomes = [reassembler.feed(part) for part in parts]
        assert outcomes[-1].status is ReassemblyStatus.COMPLETE
        return reassembler, parts

    @pytest.mark.parametrize("index", [0, 1, 2])
    def test_an_identical_copy_is_a_duplicate(
        self, delivered: tuple[Reassembler, list[ChunkedMessageEnvelope]], index: int
    ) -> None:
        reassembler, parts = delivered
        assert reassembler.feed(parts[index]).status is ReassemblyStatus.DUPLICATE
        assert reassembler.stats().duplicates == 1

    @pytest.mark.parametrize(
        ("changes", "reason"),
        [
            ({"payload": "tampered"}, RejectReason.CONFLICTING_DUPLICATE),
            ({"payload": ""}, RejectReason.CONFLICTING_DUPLICATE),
            ({"total_chunks": 4}, RejectReason.TOTAL_MISMATCH),
            ({"original_type": "initial_metrics"}, RejectReason.TYPE_MISMATCH),
        ],
    )
    def test_a_different_chunk_is_a_conflict_not_a_duplicate(
        self,
        delivered: tuple[Reassembler, list[ChunkedMessageEnvelope]],
        changes: dict[str, Any],
        reason: RejectReason,
    ) -> None:
        reassembler, parts = delivered
        changed = parts[1].model_copy(update={"data": parts[1].data.model_copy(update=changes)})
        outcome = reassembler.feed(changed)
        assert outcome == ReassemblyResult(ReassemblyStatus.REJECTED, reason=reason, chunk_id="m1")
        # The delivered message stays remembered: an identical copy is still a duplicate.
        assert reassembler.feed(parts[1]).status is ReassemblyStatus.DUPLICATE
        assert (reassembler.in_flight, reassembler.buffered_bytes) == (0, 0)

    def test_a_late_chunk_of_a_single_chunk_message_is_judged_too(self) -> None:
        reassembler = Reassembler()
        only = chunk(total=1, payload='{"type":"metrics","timestamp":1}')
        assert reassembler.feed(only).status is ReassemblyStatus.COMPLETE
        assert reassembler.feed(only).status is ReassemblyStatus.DUPLICATE
        other = chunk(total=1, payload='{"type":"metrics","timestamp":2}')
        assert reassembler.feed(other).reason is RejectReason.CONFLICTING_DUPLICATE
        beyond = chunk(index=1, total=1, payload="x")
        assert reassembler.feed(beyond).reason is RejectReason.INDEX_OUT_OF_RANGE


def traced_growth(action: Callable[[], object]) -> int:
    """Bytes still allocated after ``action`` that were not before, by ``tracemalloc``."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        action()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


# What each message in flight may hold besides its chunks (short ids here), as documented.
PER_MESSAGE_BOOKKEEPING = 1024


class TestReassemblerMemory:
    """The byte caps bound the memory really held, measured with ``tracemalloc``."""

    @pytest.mark.parametrize("widest", ["x", "\u00e9", "\u20ac", "\U0001f600"])
    def test_buffered_memory_stays_within_buffered_bytes_whatever_the_characters(
        self, widest: str
    ) -> None:
        """One character outside Latin-1 makes CPython store a whole str at 2 or 4 bytes each."""
        reassembler = Reassembler()

        def payload(index: int) -> str:  # a new str per chunk, as decoded from each frame
            return f"{index:02d}" + "y" * 65_536 + widest

        def buffer_32_chunks() -> None:
            for index in range(32):
                assert reassembler.feed(chunk("m", index, 33, payload(index))).status is (
                    ReassemblyStatus.PENDING
                )

        held = traced_growth(buffer_32_chunks)
        assert reassembler.buffered_bytes == 32 * cost(payload(0))
        assert held <= reassembler.buffered_bytes + PER_MESSAGE_BOOKKEEPING

    def test_a_flood_of_tiny_chunks_stays_within_buffered_bytes(self) -> None:
        reassembler = Reassembler(max_messages_in_flight=16)

        def buffer_tiny_chunks() -> None:
            for message in range(16):
                for index in range(1000):
                    reassembler.feed(chunk(f"m{message}", index, 4096, "\U0001f600"))

        held = traced_growth(buffer_tiny_chunks)
        assert reassembler.in_flight == 16
        assert reassembler.buffered_bytes == 16_000 * cost("\U0001f600")
        assert held <= reassembler.buffered_bytes + 16 * PER_MESSAGE_BOOKKEEPING

    def test_remembering_delivered_messages_costs_what_is_documented(self) -> None:
        """``max_remembered_ids * (4 * chunks + 2 KiB)``: 4 bytes per chunk to judge late ones."""
        reassembler = Reassembler(max_remembered_ids=16)
        text = to_wire_json(MetricsEnvelope(timestamp=1.0, data={"s": "z" * 1000}))

        def deliver_32_messages() -> None:
            for message in range(32):
                for part in chunks_of(text, 200, chunk_id=f"{uuid.UUID(int=message)}"):
                    reassembler.feed(part)

        held = traced_growth(deliver_32_messages)
        assert reassembler.stats().completed == 32
        assert reassembler.stats().remembered_ids == 16
        assert held <= 16 * (4 * 200 + 2048)


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
        one = cost("a" * 60)
        reassembler = Reassembler(max_message_bytes=2 * one, max_buffered_bytes=2 * one + 30)
        reassembler.feed(chunk("a", payload="a" * 60))
        reassembler.feed(chunk("b", payload="b" * 60))
        assert reassembler.buffered_bytes == 2 * one
        reassembler.feed(chunk("c", payload="c" * 60))
        assert reassembler.buffered_bytes == 2 * one
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
            max_message_bytes=800,
            max_buffered_bytes=1600,
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
            assert reassembler.buffered_bytes == held_bytes(reassembler) <= 1600
            assert reassembler.stats().remembered_ids <= 4
        stats = reassembler.stats()
        assert stats.chunks == len(frames)
        assert stats.completed == statuses.count(ReassemblyStatus.COMPLETE)
        assert stats.duplicates == statuses.count(ReassemblyStatus.DUPLICATE)
        assert sum(stats.rejected.values()) == statuses.count(ReassemblyStatus.REJECTED)
