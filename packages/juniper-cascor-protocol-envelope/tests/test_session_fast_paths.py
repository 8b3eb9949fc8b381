"""The /ws/training sessions' short cuts (issue 12, item 4) say exactly what the long way says.

* A broadcast is serialized once: the text of a frame that fits is the measured JSON with the
  stamp appended, and it must be the very text ``to_wire_json`` writes for the stamped frame.
* The consumer builds no ``seq`` verdict and no reassembly result for a whole frame in order;
  its events must be those of the session's algorithm run through the public pieces
  (``SequenceTracker.observe``, ``Reassembler.feed``), which the reference below spells out.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from juniper_cascor_protocol.envelope import (
    KNOWN_ENVELOPES,
    MAX_SEQ,
    SUPPORTED_PROTOCOL_VERSIONS,
    BaseEnvelope,
    BroadcastBuilder,
    Chunker,
    ChunkRejected,
    EnvelopeReceived,
    InitialMetricsEnvelope,
    MetricsEnvelope,
    Reassembler,
    ReassemblyExpired,
    ReassemblyStatus,
    Reseeded,
    SeqAnomaly,
    SeqEvent,
    SequenceCounter,
    SequenceTracker,
    StateEnvelope,
    TopologyEnvelope,
    TrainingConsumerSession,
    TrainingEvent,
    TrainingProducerSession,
    UnknownEnvelope,
    UnknownFrame,
    validate_envelope_json,
)
from juniper_cascor_protocol.envelope.builders import to_wire_json
from juniper_cascor_protocol.envelope.chunking import DEFAULT_MAX_FRAME_BYTES, STAMP_HEADROOM
from juniper_cascor_protocol.envelope.labels import LabelBudget
from juniper_cascor_protocol.envelope.session_events import (
    PingReceived,
    ProtocolViolation,
    decode_frame,
    greeting_outcome,
    is_ping,
    text_or_refusal,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

keys = st.text(max_size=6) | st.sampled_from(["\ufffd", "\ud800", "a\\u0041", "\x1f"])
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["\ufffd", "\ud800", "\\u00e9", "\u00e9\u4e2d\U0001f600"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=12,
)
json_objects = st.dictionaries(keys, json_values, max_size=5)
monotonic_values = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e-7, 1e16, -0.0, 5e-324, -2.2250738585072014e-308, 0.00001234567890123])
    | st.integers(-5, 5)
    | st.sampled_from([float("nan"), float("inf"), True])
)


def _outcome(write: Callable[[], list[str]]) -> list[str] | str:
    """The texts written, or the name of the error raised instead."""
    try:
        return write()
    except ValueError as error:  # Pydantic's serialization error is one
        return type(error).__name__


@SETTINGS
@given(
    kind=st.sampled_from(["metrics", "topology", "initial_metrics", "initial_metrics_chunks"]),
    data=json_objects,
    extras=st.dictionaries(st.sampled_from(["trace", "\ufffd", "z"]), json_values, max_size=2),
    timestamp=st.floats(-1e12, 1e12, allow_nan=False),
    monotonic=monotonic_values,
    behind_max=st.integers(0, 2**40),
    budget=st.sampled_from([STAMP_HEADROOM + 600, STAMP_HEADROOM + 2000, DEFAULT_MAX_FRAME_BYTES]),
)
def test_wire_frames_are_the_stamped_frames_as_serialized(
    kind: str,
    data: dict[str, Any],
    extras: dict[str, Any],
    timestamp: float,
    monotonic: Any,
    behind_max: int,
    budget: int,
) -> None:
    """Byte for byte what ``to_wire_json`` writes for each of :meth:`frames` (stamped once,
    each chunk numbered), for any data, unknown keys, clock and ``seq``, so each text validates
    to the envelope the re-serialized one does; or both paths refuse the envelope alike."""

    def builder() -> BroadcastBuilder:
        ids = itertools.count()
        return BroadcastBuilder(
            SequenceCounter(MAX_SEQ - behind_max),
            chunker=Chunker(budget, chunk_id_factory=lambda: f"chunk-{next(ids)}"),
            clock=lambda: timestamp,
            monotonic=lambda: monotonic,
        )

    sent, reserialized = builder(), builder()
    if kind.startswith("initial_metrics"):
        many = 40 if kind == "initial_metrics_chunks" else 1
        draft: BaseEnvelope = sent.initial_metrics_draft([data] * many)
    else:
        draft = sent.draft(MetricsEnvelope if kind == "metrics" else TopologyEnvelope, data)
    draft = draft.model_copy(update=extras)  # unknown top-level keys, as a relay may hold
    texts = _outcome(lambda: sent.wire_frames(draft))
    assert texts == _outcome(lambda: [to_wire_json(frame) for frame in reserialized.frames(draft)])
    assert sent.counter.current == reserialized.counter.current
    if not isinstance(texts, str):
        assert all(len(text.encode()) <= budget for text in texts)


class _CountingSerializer:
    """Stands for a model's ``__pydantic_serializer__``, counting the frames it writes."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    def to_json(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.inner.to_json(*args, **kwargs)

    def to_python(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.inner.to_python(*args, **kwargs)


def test_a_broadcast_is_serialized_once(monkeypatch: pytest.MonkeyPatch) -> None:
    counting = _CountingSerializer(MetricsEnvelope.__pydantic_serializer__)
    monkeypatch.setattr(MetricsEnvelope, "__pydantic_serializer__", counting)
    producer = TrainingProducerSession()
    [text] = producer.broadcast(MetricsEnvelope, {"loss": 0.25}, now=5.0, monotonic=7.5)
    assert counting.calls == 1
    assert json.loads(text) == {
        "type": "metrics",
        "timestamp": 5.0,
        "data": {"loss": 0.25},
        "seq": 1,
        "emitted_at_monotonic": 7.5,
    }


def test_a_frame_is_measured_as_it_is_sent() -> None:
    """A replacement character in a key sends the frame through the json module, escaped and
    longer than Pydantic's text: the chunker measures that text, so every frame fits."""
    budget = STAMP_HEADROOM + 512
    builder = BroadcastBuilder(SequenceCounter(MAX_SEQ - 60), chunker=Chunker(budget))
    data = {"\ufffd": None, "00\x1f\x07\x7f": None, "0\x1f\x1f\x1f": [None, None, None]}
    texts = builder.wire_frames(builder.initial_metrics_draft([data] * 5))
    assert all(len(text.encode()) <= budget for text in texts)  # one was 589 bytes of 586


def test_a_chunked_frame_keeps_an_unknown_key_holding_none() -> None:
    builder = BroadcastBuilder(chunker=Chunker(STAMP_HEADROOM + 600))
    draft = builder.draft(StateEnvelope, {"history": list(range(300))}).model_copy(
        update={"trace": None}
    )
    session = TrainingConsumerSession()
    events = [e for text in builder.wire_frames(draft) for e in session.receive(text, now=1.0)]
    [delivered] = [e for e in events if isinstance(e, EnvelopeReceived)]
    assert delivered.reassembled
    assert delivered.envelope.model_extra == {"trace": None}


# --- consumer ------------------------------------------------------------------------------

_ANOMALIES = (SeqEvent.GAP, SeqEvent.DUPLICATE, SeqEvent.RESET)


class _ReferenceConsumer:
    """``TrainingConsumerSession.receive`` as the composition of the public pieces."""

    def __init__(self, reassembler: Callable[..., Reassembler]) -> None:
        self.labels = LabelBudget()
        self.now = 0.0
        self.reassembler = reassembler(clock=lambda: self.now, labels=self.labels)
        self.tracker = SequenceTracker()

    def receive(self, message: object, now: float) -> list[TrainingEvent]:
        self.now = now
        events: list[TrainingEvent] = [ReassemblyExpired(c) for c in self.reassembler.expire()]
        text = text_or_refusal(message, DEFAULT_MAX_FRAME_BYTES)
        if isinstance(text, ProtocolViolation):
            return [*events, text]
        envelope = decode_frame(text, self.labels)
        if is_ping(envelope, text):
            return [*events, PingReceived()]
        greeting = greeting_outcome(envelope, SUPPORTED_PROTOCOL_VERSIONS)
        if greeting is not None:
            return [*events, greeting]
        if isinstance(envelope, InitialMetricsEnvelope):
            events.append(self.reseed(envelope))
        else:
            observation = self.tracker.observe(envelope)
            if observation.event in _ANOMALIES:
                events.append(SeqAnomaly(observation))
        outcome = self.reassembler.feed(envelope)
        if outcome.status is ReassemblyStatus.PASSTHROUGH:
            events.append(self.deliver(envelope, reassembled=False))
        elif outcome.status is ReassemblyStatus.REJECTED:
            assert outcome.reason is not None
            events.append(ChunkRejected(outcome.reason, outcome.chunk_id))
        elif outcome.status is ReassemblyStatus.COMPLETE:
            assert outcome.envelope is not None
            if isinstance(outcome.envelope, InitialMetricsEnvelope):
                events.append(self.reseed(outcome.envelope))
            events.append(self.deliver(outcome.envelope, reassembled=True))
        return events

    def reseed(self, initial: InitialMetricsEnvelope) -> Reseeded:
        previous = self.tracker.last_seq
        current = self.tracker.seed(initial).seq
        assert current is not None
        missed = current - previous if previous is not None and current > previous else 0
        return Reseeded(current_seq=current, previous_seq=previous, missed=missed)

    @staticmethod
    def deliver(envelope: BaseEnvelope, *, reassembled: bool) -> TrainingEvent:
        if isinstance(envelope, UnknownEnvelope):
            return UnknownFrame(envelope, reassembled=reassembled)
        return EnvelopeReceived(envelope, reassembled=reassembled)


def _frame(type_: str, seq: int | None, data: Any) -> str:
    frame: dict[str, Any] = {"type": type_, "timestamp": 1.0, "data": data}
    if seq is not None:
        frame["seq"] = seq
    return json.dumps(frame)


_CHUNKER = Chunker(STAMP_HEADROOM + 600, chunk_id_factory=lambda: "big")
_BIG = BroadcastBuilder(chunker=_CHUNKER).draft(TopologyEnvelope, {"w": list(range(400))})
_BIG_CHUNKS = [chunk.to_wire_json() for chunk in _CHUNKER.split(_BIG)]

seqs = st.none() | st.integers(0, 12) | st.integers(1000, 1010)
# No NaN: events are compared with ==, and NaN != NaN.
finite_objects = st.dictionaries(
    st.text(max_size=4),
    st.integers() | st.floats(allow_nan=False) | st.text(max_size=4),
    max_size=3,
)
messages = st.one_of(
    st.builds(_frame, st.sampled_from([*KNOWN_ENVELOPES, "ping", "news"]), seqs, finite_objects),
    st.builds(
        lambda current: _frame("initial_metrics", None, {"count": 0, "current_seq": current}),
        st.integers(0, 12),
    ),
    st.sampled_from(_BIG_CHUNKS),
    st.builds(
        lambda index, payload: _frame(
            "chunked_message",
            3,
            {
                "chunk_id": "c",
                "chunk_index": index,
                "total_chunks": 2,
                "original_type": "metrics",
                "payload": payload,
            },
        ),
        st.integers(-1, 2),
        st.sampled_from(['{"type":"metrics",', '"timestamp":1,"data":{}}', "{"]),
    ),
    st.just('{"type":"connection_established","timestamp":1,"data":{"protocol_version":"9.0"}}'),
    st.binary(max_size=4),
    st.text(max_size=8),
)
reassemblers = st.sampled_from(
    [Reassembler, functools.partial(Reassembler, max_age_seconds=1.0, max_messages_in_flight=1)]
)


@SETTINGS
@given(
    steps=st.lists(st.tuples(messages, st.floats(0.0, 2.0)), max_size=40),
    reassembler=reassemblers,
)
def test_the_consumer_reports_what_the_public_pieces_report(
    steps: list[tuple[object, float]], reassembler: Callable[..., Reassembler]
) -> None:
    session = TrainingConsumerSession(reassembler=reassembler)
    reference = _ReferenceConsumer(reassembler)
    now = 0.0
    for message, elapsed in steps:
        now += elapsed
        assert session.receive(message, now=now) == reference.receive(message, now)
    stats = session.stats()
    assert stats.seq == reference.tracker.stats()
    assert stats.reassembly == reference.reassembler.stats()


# --- the pieces' short cuts ------------------------------------------------------------------


@SETTINGS
@given(
    seqs=st.lists(st.none() | st.integers(0, 30) | st.integers(0, 3000), max_size=40),
    seed=st.none() | st.integers(0, 30),
)
def test_check_seq_is_observe_with_only_the_anomalies(
    seqs: list[int | None], seed: int | None
) -> None:
    checked, observed = SequenceTracker(), SequenceTracker()
    if seed is not None:
        assert checked.reseed(seed) is None
        observed.seed(seed)
    for seq in seqs:
        verdict = checked.check_seq(seq)
        envelope = MetricsEnvelope(timestamp=1.0) if seq is None else None
        observation = observed.observe(envelope) if envelope else observed.observe_seq(seq or 0)
        assert verdict == (observation if observation.event in _ANOMALIES else None)
    assert checked.stats() == observed.stats()
    assert checked.reseed(7) == observed.last_seq


@SETTINGS
@given(messages=st.lists(messages, max_size=30))
def test_feed_whole_passes_through_what_feed_passes_through(messages: list[object]) -> None:
    whole, fed = Reassembler(), Reassembler()
    for message in messages:
        if not isinstance(message, str):
            continue
        envelope = validate_envelope_json(message)
        passed = whole.feed_whole(envelope)
        outcome = fed.feed(envelope)
        may_be_a_chunk = envelope.type == "chunked_message"  # valid, or an UnknownEnvelope
        assert passed is not may_be_a_chunk
        assert (outcome.status is ReassemblyStatus.PASSTHROUGH) is passed
        if not passed:
            assert whole.feed(envelope) == outcome
    assert whole.stats() == fed.stats()
