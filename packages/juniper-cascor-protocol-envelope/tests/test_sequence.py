"""SequenceCounter (producer) and SequenceTracker (consumer) of ``seq``."""

from __future__ import annotations

import threading
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from juniper_cascor_protocol.envelope.builders import (
    BroadcastBuilder,
    ControlBuilder,
    to_wire_json,
)
from juniper_cascor_protocol.envelope.chunking import Chunker, Reassembler, ReassemblyStatus
from juniper_cascor_protocol.envelope.sequence import (
    MAX_SEQ,
    SeqEvent,
    SequenceCounter,
    SequenceTracker,
)
from juniper_cascor_protocol.envelope.training import (
    InitialMetricsData,
    InitialMetricsEnvelope,
    MetricsEnvelope,
    TopologyEnvelope,
)
from juniper_cascor_protocol.envelope.validate import validate_envelope_json


def metrics(seq: int | None) -> MetricsEnvelope:
    return MetricsEnvelope(timestamp=1.0, seq=seq)


class TestSequenceCounter:
    def test_counts_from_start_and_current_is_last_handed_out(self) -> None:
        counter = SequenceCounter(start=5)
        assert counter.current == 4
        assert [counter.next(), counter.next(), counter.next()] == [5, 6, 7]
        assert counter.current == 7
        assert counter.current == 7  # reading does not consume

    def test_default_start_is_one_so_current_starts_at_initial_metrics_default(self) -> None:
        counter = SequenceCounter()
        assert counter.current == InitialMetricsData(count=0).current_seq
        assert counter.next() == 1

    @pytest.mark.parametrize("start", [-1, -100])
    def test_negative_start_rejected_naming_the_limit(self, start: int) -> None:
        with pytest.raises(ValueError, match=r"start must be >= 0"):
            SequenceCounter(start)

    @pytest.mark.parametrize("start", [MAX_SEQ + 1, 10**40])
    def test_start_above_max_seq_rejected_naming_the_limit(self, start: int) -> None:
        with pytest.raises(
            ValueError, match=rf"start must be <= MAX_SEQ \(2\*\*63 - 1 = {MAX_SEQ}\)"
        ):
            SequenceCounter(start)

    def test_max_seq_is_what_a_signed_64_bit_integer_holds(self) -> None:
        assert MAX_SEQ == 9_223_372_036_854_775_807

    def test_counter_never_hands_out_a_number_above_max_seq(self) -> None:
        counter = SequenceCounter(MAX_SEQ - 1)
        assert [counter.next(), counter.next()] == [MAX_SEQ - 1, MAX_SEQ]
        with pytest.raises(OverflowError, match="MAX_SEQ"):
            counter.next()
        assert counter.current == MAX_SEQ  # the refused call consumed nothing

    @pytest.mark.parametrize("start", [1.0, True, "1"])
    def test_non_int_start_rejected(self, start: object) -> None:
        with pytest.raises(TypeError, match="start must be an int"):
            SequenceCounter(start)  # type: ignore[arg-type]

    def test_concurrent_next_hands_out_each_number_once_and_in_order(self) -> None:
        counter = SequenceCounter()
        threads, per_thread = 8, 5000
        seen: list[list[int]] = [[] for _ in range(threads)]
        barrier = threading.Barrier(threads)

        def work(out: list[int]) -> None:
            barrier.wait()
            out.extend(counter.next() for _ in range(per_thread))

        workers = [threading.Thread(target=work, args=(out,)) for out in seen]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

        for numbers in seen:
            assert all(a < b for a, b in pairwise(numbers))
        every = sorted(n for numbers in seen for n in numbers)
        assert every == list(range(1, threads * per_thread + 1))
        assert counter.current == threads * per_thread


class TestSequenceTracker:
    def test_seeded_by_initial_metrics_then_consecutive_frames_are_ok(self) -> None:
        tracker = SequenceTracker()
        initial = InitialMetricsEnvelope(
            timestamp=1.0, seq=41, data=InitialMetricsData(count=0, current_seq=41)
        )
        seeded = tracker.observe(initial)
        assert (seeded.event, seeded.seq, seeded.expected) == (SeqEvent.SEEDED, 41, 42)
        assert [tracker.observe(metrics(s)).event for s in (42, 43, 44)] == [SeqEvent.OK] * 3
        stats = tracker.stats()
        assert (stats.received, stats.gaps, stats.missing, stats.last_seq) == (3, 0, 0, 44)

    def test_seed_accepts_a_bare_int(self) -> None:
        tracker = SequenceTracker()
        tracker.seed(9)
        assert tracker.observe(metrics(10)).event is SeqEvent.OK

    def test_seeded_with_current_seq_a_skipped_first_frame_is_a_gap(self) -> None:
        tracker = SequenceTracker()
        tracker.seed(0)
        result = tracker.observe(metrics(2))
        assert result.event is SeqEvent.GAP
        assert (result.missing_first, result.missing_last, result.missing_count) == (1, 1, 1)

    def test_unseeded_first_frame_is_first(self) -> None:
        tracker = SequenceTracker()
        first = tracker.observe(metrics(100))
        assert (first.event, first.seq, first.expected) == (SeqEvent.FIRST, 100, None)
        assert tracker.observe(metrics(101)).event is SeqEvent.OK

    def test_gap_reports_the_missing_range_and_counts_it(self) -> None:
        tracker = SequenceTracker()
        tracker.seed(10)
        gap = tracker.observe(metrics(15))
        assert gap.event is SeqEvent.GAP
        assert (gap.expected, gap.missing_first, gap.missing_last) == (11, 11, 14)
        assert gap.missing_count == 4
        assert tracker.observe(metrics(16)).event is SeqEvent.OK
        tracker.observe(metrics(20))
        stats = tracker.stats()
        assert (stats.gaps, stats.missing) == (2, 7)

    def test_huge_jump_is_one_gap_without_enumerating_it(self) -> None:
        tracker = SequenceTracker()
        tracker.seed(0)
        gap = tracker.observe(metrics(MAX_SEQ))
        assert gap.missing_count == MAX_SEQ - 1
        assert tracker.stats().missing == MAX_SEQ - 1

    @pytest.mark.parametrize("replayed", [50, 45, 2])
    def test_repeat_or_small_step_back_is_a_duplicate_and_keeps_position(
        self, replayed: int
    ) -> None:
        tracker = SequenceTracker()
        tracker.seed(49)
        tracker.observe(metrics(50))
        result = tracker.observe(metrics(replayed))
        assert result.event is SeqEvent.DUPLICATE
        assert tracker.last_seq == 50
        assert tracker.observe(metrics(51)).event is SeqEvent.OK
        assert tracker.stats().duplicates == 1

    def test_back_to_a_fresh_counter_start_is_a_reset(self) -> None:
        tracker = SequenceTracker()
        tracker.seed(49)
        tracker.observe(metrics(50))
        result = tracker.observe(metrics(1))
        assert result.event is SeqEvent.RESET
        assert tracker.observe(metrics(2)).event is SeqEvent.OK
        assert tracker.stats().resets == 1

    def test_step_back_beyond_reorder_window_is_a_reset(self) -> None:
        tracker = SequenceTracker(reorder_window=100)
        tracker.seed(5000)
        assert tracker.observe(metrics(4899)).event is SeqEvent.RESET
        assert tracker.observe(metrics(4900)).event is SeqEvent.OK
        tracker.seed(5000)
        assert tracker.observe(metrics(4900)).event is SeqEvent.DUPLICATE

    def test_negative_reorder_window_rejected(self) -> None:
        with pytest.raises(ValueError, match="reorder_window must be >= 0"):
            SequenceTracker(reorder_window=-1)

    def test_frames_without_seq_are_ignored_and_counted(self) -> None:
        tracker = SequenceTracker()
        tracker.seed(1)
        response = ControlBuilder(clock=lambda: 1.0).command_response("start", "success")
        assert tracker.observe(response).event is SeqEvent.IGNORED
        assert tracker.observe(metrics(None)).event is SeqEvent.IGNORED
        assert tracker.observe(metrics(2)).event is SeqEvent.OK
        stats = tracker.stats()
        assert (stats.ignored, stats.received) == (2, 1)

    @settings(max_examples=60, deadline=None)
    @given(
        start=st.integers(0, 10**6),
        kept=st.lists(st.booleans(), min_size=1, max_size=200),
    )
    def test_dropped_frames_are_counted_exactly(self, start: int, kept: list[bool]) -> None:
        """Drop any frames from a consecutive stream: missing == dropped, gaps == dropped runs."""
        tracker = SequenceTracker()
        tracker.seed(start)
        stream = [(start + 1 + i, keep) for i, keep in enumerate(kept)]
        for seq, keep in stream:
            if keep:
                tracker.observe(metrics(seq))
        last_kept = max((i for i, keep in enumerate(kept) if keep), default=-1)
        dropped_before_last = kept[: last_kept + 1].count(False)
        runs = sum(1 for i in range(last_kept + 1) if not kept[i] and (i == 0 or kept[i - 1]))
        stats = tracker.stats()
        assert stats.missing == dropped_before_last
        assert stats.gaps == runs
        assert stats.received == kept.count(True)
        assert stats.duplicates == stats.resets == 0


def receive(tracker: SequenceTracker, reassembler: Reassembler, wire: str) -> list[SeqEvent]:
    """A client's pipeline: check ``seq`` per wire frame, then reassemble."""
    frame = validate_envelope_json(wire)
    events = [tracker.observe(frame).event]
    outcome = reassembler.feed(frame)
    if outcome.status is ReassemblyStatus.COMPLETE:
        assert outcome.envelope is not None
        events.append(tracker.observe(outcome.envelope).event)
    return events


def test_builder_stream_with_chunks_and_late_joiner_has_no_gaps() -> None:
    """What the server emits through BroadcastBuilder is gap-free for every client."""
    builder = BroadcastBuilder(chunker=Chunker(600), clock=lambda: 1.0, monotonic=lambda: 2.0)
    early = (SequenceTracker(), Reassembler())
    late = (SequenceTracker(), Reassembler())
    events: list[SeqEvent] = []
    for wire in builder.wire_frames(builder.initial_metrics_draft([])):
        events += receive(*early, wire)
    for step in range(30):
        if step == 10:
            # A second client connects: its (chunked) initial_metrics goes to it alone.
            draft = builder.initial_metrics_draft([{"loss": 0.5}] * 40)
            joined = builder.wire_frames(draft)
            assert len(joined) > 1
            for wire in joined:
                events += receive(*late, wire)
        big = builder.draft(TopologyEnvelope, {"nodes": list(range(step * 20))})
        for wire in [to_wire_json(builder.metrics({"step": step})), *builder.wire_frames(big)]:
            events += receive(*early, wire)
            if step >= 10:
                events += receive(*late, wire)
    assert set(events) == {SeqEvent.SEEDED, SeqEvent.OK, SeqEvent.IGNORED}
    for tracker, _ in (early, late):
        assert tracker.stats().gaps == 0
        assert tracker.last_seq == builder.counter.current
