"""Sans-I/O sessions of ``/ws/training``: the server's broadcast producer and a client's consumer.

Neither session touches a socket, a clock or a thread. The I/O layer around them is a thin
shell: it passes each received message and the current time in, and sends the texts it gets
back. Time is always an argument (``now``), so a session behaves the same in a test as in
production.

Producer (one per broadcast stream, shared by every subscriber):

* :meth:`TrainingProducerSession.broadcast` stamps ``timestamp``, ``seq`` and
  ``emitted_at_monotonic``, splits a frame too large for ``max_frame_bytes`` into
  ``chunked_message`` frames (one ``seq`` each), and returns the texts to send to *every*
  subscriber: a frame is serialized once, however many clients receive it;
* :meth:`TrainingProducerSession.subscribe` returns what one new client gets before joining the
  broadcast: ``connection_established`` and the ``initial_metrics`` burst (the recent metrics and
  ``current_seq``, the last number broadcast), which consumes no ``seq``.

Consumer (one per client, kept across reconnects): :meth:`TrainingConsumerSession.receive`
takes one received message and returns what it means, as events; it never raises on what the
server sent. It validates the frame, reads the server's protocol version from
``connection_established``, checks ``seq`` (gaps, duplicates, a restarted server),
reseeds on ``initial_metrics`` (so frames broadcast while the client was away are counted as
missed, not reported as a gap), reassembles chunked frames within hard bounds, answers the
server's heartbeat, and counts every frame by a bounded label from a budget of its own.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Protocol, TypeAlias

from juniper_cascor_protocol.envelope.base import BaseEnvelope, UnknownEnvelope
from juniper_cascor_protocol.envelope.builders import BroadcastBuilder, ControlBuilder, to_wire_json
from juniper_cascor_protocol.envelope.chunking import (
    DEFAULT_MAX_FRAME_BYTES,
    Chunker,
    Reassembler,
    ReassemblerStats,
    ReassemblyStatus,
    RejectReason,
)
from juniper_cascor_protocol.envelope.control import (
    CONTROL_ENVELOPES,
    ConnectionEstablishedEnvelope,
)
from juniper_cascor_protocol.envelope.labels import LabelBudget
from juniper_cascor_protocol.envelope.protocol_version import (
    PROTOCOL_VERSION,
    SUPPORTED_PROTOCOL_VERSIONS,
)
from juniper_cascor_protocol.envelope.sequence import (
    SeqObservation,
    SeqStats,
    SequenceCounter,
    SequenceTracker,
)
from juniper_cascor_protocol.envelope.session_events import (
    Established,
    IncompatibleVersion,
    PingReceived,
    ProtocolViolation,
    UnknownFrame,
    check_max_frame_bytes,
    checked_versions,
    decode_frame,
    greeting_outcome,
    is_ping,
    text_or_refusal,
)
from juniper_cascor_protocol.envelope.training import (
    ChunkedMessageEnvelope,
    InitialMetricsEnvelope,
    MetricsEnvelope,
)
from juniper_cascor_protocol.envelope.validate import KNOWN_ENVELOPES

__all__ = [
    "DEFAULT_RECENT_METRICS",
    "ChunkRejected",
    "EnvelopeReceived",
    "ReassemblerFactory",
    "ReassemblyExpired",
    "Reseeded",
    "SeqAnomaly",
    "TrainingConsumerSession",
    "TrainingConsumerStats",
    "TrainingEvent",
    "TrainingProducerSession",
]

DEFAULT_RECENT_METRICS: Final = 100
"""``metrics`` payloads a producer keeps for the ``initial_metrics`` burst (as juniper-cascor)."""

_TYPED_ENVELOPES: Final = frozenset(KNOWN_ENVELOPES.values())

_NOT_BROADCAST: Final = frozenset(
    {InitialMetricsEnvelope, ChunkedMessageEnvelope, *CONTROL_ENVELOPES}
)


# --- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnvelopeReceived:
    """A typed envelope for the application: a whole frame, or one rebuilt from its chunks."""

    envelope: BaseEnvelope
    reassembled: bool = False


@dataclass(frozen=True, slots=True)
class Reseeded:
    """``initial_metrics`` set the next expected ``seq`` to ``current_seq + 1``.

    ``missed`` counts the frames broadcast between the last ``seq`` this consumer saw
    (``previous_seq``) and ``current_seq``: those sent while it was away. It is 0 on a first
    connection and when ``current_seq`` is not ahead (a restarted server).
    """

    current_seq: int
    previous_seq: int | None
    missed: int


@dataclass(frozen=True, slots=True)
class SeqAnomaly:
    """A frame whose ``seq`` is not the next one: ``GAP``, ``DUPLICATE`` or ``RESET``.

    The frame itself is still delivered (a duplicate too: the application decides).
    """

    observation: SeqObservation


@dataclass(frozen=True, slots=True)
class ChunkRejected:
    """A ``chunked_message`` frame the reassembler refused; its message is dropped."""

    reason: RejectReason
    chunk_id: str | None


@dataclass(frozen=True, slots=True)
class ReassemblyExpired:
    """An incomplete chunked message older than the reassembler's ``max_age_seconds``."""

    chunk_id: str


TrainingEvent: TypeAlias = (
    EnvelopeReceived
    | Established
    | IncompatibleVersion
    | Reseeded
    | SeqAnomaly
    | ChunkRejected
    | ReassemblyExpired
    | UnknownFrame
    | ProtocolViolation
    | PingReceived
)


# --- producer -----------------------------------------------------------------------------


class TrainingProducerSession:
    """The server side of ``/ws/training``: one broadcast stream for every subscriber.

    Args:
        counter: the source of ``seq`` (default: a fresh one, first number 1).
        chunker: splits frames over its ``max_frame_bytes`` (default 1 MiB).
        recent_metrics: how many ``metrics`` payloads the ``initial_metrics`` burst carries.
        server_version, protocol_version: announced in ``connection_established``.

    Not thread-safe: frames must go out in the order they were built, so the shell holds one
    lock across :meth:`broadcast`/:meth:`subscribe` and sending their texts (and adds a new
    subscriber to its list under that lock, after sending what :meth:`subscribe` returned).
    """

    __slots__ = (
        "_chunker",
        "_counter",
        "_protocol_version",
        "_recent",
        "_server_version",
    )

    def __init__(
        self,
        *,
        counter: SequenceCounter | None = None,
        chunker: Chunker | None = None,
        recent_metrics: int = DEFAULT_RECENT_METRICS,
        server_version: str | None = None,
        protocol_version: str | None = PROTOCOL_VERSION,
    ) -> None:
        if recent_metrics < 0:
            raise ValueError(f"recent_metrics must be >= 0, got {recent_metrics}")
        self._counter = counter if counter is not None else SequenceCounter()
        self._chunker = chunker if chunker is not None else Chunker()
        self._recent: deque[dict[str, Any]] = deque(maxlen=recent_metrics)
        self._server_version = server_version
        self._protocol_version = protocol_version

    @property
    def current_seq(self) -> int:
        """The last ``seq`` broadcast (the counter's start - 1 before the first)."""
        return self._counter.current

    def broadcast(
        self,
        envelope_type: type[BaseEnvelope],
        data: Mapping[str, Any] | None = None,
        *,
        now: float,
        monotonic: float,
    ) -> list[str]:
        """The texts to send to every subscriber, in order, for one broadcast message.

        ``now`` (wall-clock seconds) becomes ``timestamp`` and ``monotonic`` becomes
        ``emitted_at_monotonic``. One text normally; the ``chunked_message`` frames of the
        message when it is too large for one frame. Each text carries its own ``seq``.

        Raises:
            ValueError: ``envelope_type`` is not broadcast (``initial_metrics``,
                ``chunked_message`` and the ``/ws/control`` envelopes are not).
        """
        if envelope_type in _NOT_BROADCAST:
            raise ValueError(
                f"{envelope_type.__name__} is not broadcast on /ws/training "
                "(initial_metrics comes from subscribe(), chunks from the chunker)"
            )
        builder = self._builder(now, monotonic)
        draft = builder.draft(envelope_type, data)
        if isinstance(draft, MetricsEnvelope) and self._recent.maxlen:
            self._recent.append(draft.data)
        return builder.wire_frames(draft)

    def subscribe(self, *, now: float, monotonic: float) -> list[str]:
        """The texts one new client gets before its first broadcast frame, in order.

        ``connection_established``, then ``initial_metrics`` (chunked if large) with the recent
        ``metrics`` payloads and ``current_seq``: the client's next frame is
        ``current_seq + 1``. No ``seq`` is consumed.
        """
        greeting = ControlBuilder(clock=lambda: now).connection_established(
            server_version=self._server_version, protocol_version=self._protocol_version
        )
        builder = self._builder(now, monotonic)
        burst = builder.wire_frames(builder.initial_metrics_draft(list(self._recent)))
        return [to_wire_json(greeting), *burst]

    def _builder(self, now: float, monotonic: float) -> BroadcastBuilder:
        # A builder per call: the time is an argument, never read from a clock.
        return BroadcastBuilder(
            self._counter, chunker=self._chunker, clock=lambda: now, monotonic=lambda: monotonic
        )


# --- consumer -----------------------------------------------------------------------------


class ReassemblerFactory(Protocol):
    """Makes the consumer's :class:`Reassembler` around the session's clock and label budget.

    ``Reassembler`` itself is one; ``functools.partial(Reassembler, max_messages_in_flight=4)``
    changes a cap.
    """

    def __call__(self, *, clock: Callable[[], float], labels: LabelBudget) -> Reassembler: ...


@dataclass(frozen=True, slots=True)
class TrainingConsumerStats:
    """What one consumer received, over all its connections. Every key set is bounded."""

    messages: int
    """Messages given to :meth:`TrainingConsumerSession.receive`."""
    delivered: Mapping[str, int]
    """Envelopes delivered (whole or reassembled), by ``type``: the known names."""
    unknown: Mapping[str, int]
    """Unknown frames, by bounded label."""
    refused: Mapping[str, int]
    """Messages not read, by :class:`Refusal` (chunks rejected: ``reassembly.rejected``)."""
    heartbeats: int
    greetings: int
    """``connection_established`` frames, reported as :class:`Established` or
    :class:`IncompatibleVersion` rather than delivered."""
    reseeds: int
    missed_while_away: int
    """Sum of :attr:`Reseeded.missed`."""
    seq: SeqStats
    reassembly: ReassemblerStats


class TrainingConsumerSession:
    """A client of ``/ws/training``: turns received messages into :data:`TrainingEvent` lists.

    Keep one session across reconnects: ``initial_metrics`` on the new connection reseeds it.
    The server's ``connection_established`` is reported as :class:`Established`, or as
    :class:`IncompatibleVersion` when its protocol version is not readable (the shell should
    then close the connection: later frames may not mean what this session thinks).
    Chunks left incomplete by a dropped connection expire after the reassembler's
    ``max_age_seconds``. ``now`` must come from a monotonic clock (it ages chunked messages).

    Args:
        max_frame_bytes: the longest text frame read, in UTF-8 bytes (default: the chunker's
            1 MiB budget, which every frame of a conforming server fits).
        reassembler: makes the :class:`Reassembler` whose caps bound buffered chunks.
        reorder_window, restart_max_seq: see :class:`SequenceTracker`.
        supported_versions: the protocol versions this client reads (any minor of their majors).
        labels: the budget of unknown ``type`` labels (default: one of this session's own, so
            that a noisy server cannot spend the labels of every other consumer).

    Not thread-safe: one connection has one reader.
    """

    __slots__ = (
        "_always_within_limit",
        "_delivered",
        "_greetings",
        "_heartbeats",
        "_labels",
        "_max_frame_bytes",
        "_messages",
        "_missed",
        "_now",
        "_reassembler",
        "_refused",
        "_reseeds",
        "_supported",
        "_tracker",
        "_unknown",
    )

    def __init__(
        self,
        *,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        reassembler: ReassemblerFactory = Reassembler,
        reorder_window: int | None = None,
        restart_max_seq: int | None = None,
        supported_versions: Iterable[str] = SUPPORTED_PROTOCOL_VERSIONS,
        labels: LabelBudget | None = None,
    ) -> None:
        self._max_frame_bytes = check_max_frame_bytes(max_frame_bytes)
        # A UTF-8 character takes at most 4 bytes: a text this long or shorter is within limit.
        self._always_within_limit = self._max_frame_bytes // 4
        self._supported = checked_versions(supported_versions)
        self._labels = LabelBudget() if labels is None else labels
        self._now = 0.0
        self._reassembler = reassembler(clock=self._clock, labels=self._labels)
        tracker_options: dict[str, int] = {}
        if reorder_window is not None:
            tracker_options["reorder_window"] = reorder_window
        if restart_max_seq is not None:
            tracker_options["restart_max_seq"] = restart_max_seq
        self._tracker = SequenceTracker(**tracker_options)
        self._messages = 0
        self._heartbeats = 0
        self._greetings = 0
        self._reseeds = 0
        self._missed = 0
        # ``defaultdict(int)``: counting into it takes half the time ``Counter`` takes.
        self._delivered: defaultdict[str, int] = defaultdict(int)
        self._unknown: defaultdict[str, int] = defaultdict(int)
        self._refused: defaultdict[str, int] = defaultdict(int)

    @property
    def last_seq(self) -> int | None:
        """The last ``seq`` received (or seeded); ``None`` before the first."""
        return self._tracker.last_seq

    @property
    def buffered_bytes(self) -> int:
        """Payload bytes of incomplete chunked messages held now."""
        return self._reassembler.buffered_bytes

    @property
    def in_flight(self) -> int:
        """Incomplete chunked messages held now."""
        return self._reassembler.in_flight

    def receive(self, message: object, *, now: float) -> list[TrainingEvent]:
        """What one received WebSocket message means, in order. Never raises on ``message``.

        ``message`` is what the WebSocket library gave: a ``str`` for a text frame; anything
        else is refused as a binary frame.
        """
        self._messages += 1
        events: list[TrainingEvent] = []
        if self._reassembler.in_flight:
            events.extend(self.expire(now=now))
        else:
            self._now = now  # nothing to expire; the reassembler reads the time from here
        if type(message) is str and len(message) <= self._always_within_limit:
            text = message  # what text_or_refusal returns for it, without the call
        else:
            refusal_or_text = text_or_refusal(message, self._max_frame_bytes)
            if isinstance(refusal_or_text, ProtocolViolation):
                self._refused[refusal_or_text.label] += 1
                events.append(refusal_or_text)
                return events
            text = refusal_or_text
        envelope = decode_frame(text, self._labels)
        # The validators return these classes themselves; exact type tests are much cheaper
        # than ``isinstance`` on a model class, which goes through ``ABCMeta``.
        kind = type(envelope)
        if kind is UnknownEnvelope or kind is ConnectionEstablishedEnvelope:
            if is_ping(envelope, text):
                self._heartbeats += 1
                events.append(PingReceived())
                return events
            greeting = greeting_outcome(envelope, self._supported)
            if greeting is not None:
                self._greetings += 1
                events.append(greeting)
                return events
        if type(envelope) is InitialMetricsEnvelope:  # not ``kind``: mypy narrows this test
            events.append(self._reseed(envelope))
        else:
            # No verdict object for a frame in order, nor for one without ``seq`` (ignored).
            anomaly = self._tracker.check_seq(envelope.seq)
            if anomaly is not None:
                events.append(SeqAnomaly(anomaly))
        if self._reassembler.feed_whole(envelope):  # no result object for a whole frame
            if kind in _TYPED_ENVELOPES:  # what _deliver does for it, without the call
                self._delivered[envelope.type] += 1
                events.append(EnvelopeReceived(envelope, False))
            else:
                events.append(self._deliver(envelope))
            return events
        outcome = self._reassembler.feed(envelope)
        status = outcome.status
        if status is ReassemblyStatus.PASSTHROUGH:
            events.append(self._deliver(envelope))
        elif status is ReassemblyStatus.REJECTED and outcome.reason is not None:
            events.append(ChunkRejected(outcome.reason, outcome.chunk_id))
        elif status is ReassemblyStatus.COMPLETE and outcome.envelope is not None:
            original = outcome.envelope
            if isinstance(original, InitialMetricsEnvelope):
                events.append(self._reseed(original))
            events.append(self._deliver(original, reassembled=True))
        return events  # PENDING and DUPLICATE chunks need nothing from the application

    def expire(self, *, now: float) -> list[ReassemblyExpired]:
        """Drop incomplete chunked messages older than the reassembler's ``max_age_seconds``.

        :meth:`receive` does this too; call it when no message has arrived for a while.
        """
        self._now = now
        return [ReassemblyExpired(chunk_id) for chunk_id in self._reassembler.expire()]

    def stats(self) -> TrainingConsumerStats:
        """A snapshot of the running totals."""
        return TrainingConsumerStats(
            messages=self._messages,
            delivered=MappingProxyType(dict(self._delivered)),
            unknown=MappingProxyType(dict(self._unknown)),
            refused=MappingProxyType(dict(self._refused)),
            heartbeats=self._heartbeats,
            greetings=self._greetings,
            reseeds=self._reseeds,
            missed_while_away=self._missed,
            seq=self._tracker.stats(),
            reassembly=self._reassembler.stats(),
        )

    def _clock(self) -> float:
        return self._now

    def _reseed(self, initial: InitialMetricsEnvelope) -> Reseeded:
        current = initial.data.current_seq
        previous = self._tracker.reseed(current)
        missed = current - previous if previous is not None and current > previous else 0
        self._reseeds += 1
        self._missed += missed
        return Reseeded(current, previous, missed)

    def _deliver(
        self, envelope: BaseEnvelope, *, reassembled: bool = False
    ) -> EnvelopeReceived | UnknownFrame:
        kind = type(envelope)
        if kind is UnknownEnvelope or (
            kind not in _TYPED_ENVELOPES and isinstance(envelope, UnknownEnvelope)
        ):
            self._unknown[envelope.type] += 1
            return UnknownFrame(envelope, reassembled)
        self._delivered[envelope.type] += 1
        return EnvelopeReceived(envelope, reassembled)  # positional: a keyword costs ~0.15 us
