"""Producer side: build envelopes stamped for the wire, and serialize them.

The ``seq`` rule, applied by :class:`BroadcastBuilder` in one place:

- ``seq`` numbers the frames broadcast on ``/ws/training`` — every such wire frame takes the
  next number from the shared :class:`SequenceCounter`, with ``emitted_at_monotonic``;
- a message too large for one frame is chunked *before* stamping: each chunk frame takes its
  own ``seq`` and the original inside the payloads carries none, so numbers stay consecutive
  on the wire and a rebuilt original is ignored by a :class:`SequenceTracker`;
- ``initial_metrics`` goes to one client only, so it consumes no number: it carries
  ``seq = current_seq = counter.current`` (the last number broadcast), and its chunks, if any,
  carry no ``seq``;
- control frames (``command_response``, ``connection_established``) never carry ``seq``;
- a frame is stamped once: a second stamp would spend a number that is never sent.

:meth:`BroadcastBuilder.stamp` applies the rule to one frame and every other public path goes
through it, so no path can break it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic_core import to_json

from juniper_cascor_protocol.envelope.base import BaseEnvelope, _holds_none_extra
from juniper_cascor_protocol.envelope.chunking import STAMP_HEADROOM, Chunker
from juniper_cascor_protocol.envelope.control import (
    CONTROL_ENVELOPES,
    UNKNOWN_COMMAND_CODE,
    CommandParseError,
    CommandResponseData,
    CommandResponseEnvelope,
    CommandStatus,
    ConnectionEstablishedData,
    ConnectionEstablishedEnvelope,
    ControlCommand,
)
from juniper_cascor_protocol.envelope.sequence import SequenceCounter
from juniper_cascor_protocol.envelope.training import (
    CandidateProgressEnvelope,
    CascadeAddEnvelope,
    ChunkedMessageEnvelope,
    EventEnvelope,
    InitialMetricsData,
    InitialMetricsEnvelope,
    MetricsEnvelope,
    StateEnvelope,
    TopologyEnvelope,
)

__all__ = [
    "BroadcastBuilder",
    "ControlBuilder",
    "command_response",
    "connection_established",
    "to_wire_dict",
    "to_wire_json",
]

E = TypeVar("E", bound=BaseEnvelope)
Clock = Callable[[], float]

_CONTROL_TYPES = frozenset(cls.model_fields["type"].default for cls in CONTROL_ENVELOPES)
_UNICAST_TYPE = "initial_metrics"


def _stamp_json(values: dict[str, float | int]) -> bytes | None:
    """The stamp as the end of a JSON object, ``,"seq":N,"emitted_at_monotonic":F}``.

    Written as Pydantic writes the fields (its own writer formats the float), in their declared
    order. ``None`` for a value of another type than ``int`` (``seq``) or a finite ``float``: the
    stamped frame is then serialized as a whole.
    """
    seq = values.get("seq")
    monotonic = values["emitted_at_monotonic"]
    if type(monotonic) is not float or not math.isfinite(monotonic):
        return None
    if seq is None:
        return b',"emitted_at_monotonic":' + to_json(monotonic) + b"}"
    if type(seq) is not int:
        return None
    return b',"seq":%d,"emitted_at_monotonic":%b}' % (seq, to_json(monotonic))


def _kind(envelope: BaseEnvelope) -> str:
    """The type a frame stands for: a chunk's ``original_type``, else its own ``type``."""
    if isinstance(envelope, ChunkedMessageEnvelope):
        return envelope.data.original_type
    return envelope.type


def to_wire_json(envelope: BaseEnvelope) -> str:
    """The frame's wire text, as its method ``envelope.to_wire_json()`` writes it."""
    return envelope.to_wire_json()


def to_wire_dict(envelope: BaseEnvelope) -> dict[str, Any]:
    """The frame as the dict a receiver decodes: equal to ``json.loads(to_wire_json(e))``.

    That is ``model_dump(mode="json", exclude_none=True)``; it only differs from the plain
    ``model_dump(exclude_none=True)`` for data that is not JSON-native (tuples, ``inf``...).
    """
    return envelope.model_dump(mode="json", exclude_none=True)


class BroadcastBuilder:
    """Builds ``/ws/training`` frames: ``timestamp`` from ``clock``, ``seq`` from ``counter``.

    One builder (and one counter) per broadcast stream; it is as thread-safe as its counter.
    The per-type methods (``metrics(data)``...) return one stamped envelope, for frames known
    to be small. For anything that may be large, build a :meth:`draft` and send
    :meth:`wire_frames` of it: chunked by ``chunker`` when needed, one ``seq`` per frame.

    Numbers are taken when a frame is built, so frames must be sent in the order they were
    built: with several broadcasting tasks, hold one lock across building and sending, and
    register a new client and build its ``initial_metrics`` under that lock too, so it gets
    exactly the frames numbered after its ``current_seq``.

    Raises ``ValueError`` if ``chunker.headroom`` is below :data:`STAMP_HEADROOM`: a stamped
    chunk could then exceed ``chunker.max_frame_bytes``.
    """

    __slots__ = ("_chunker", "_clock", "_counter", "_monotonic")

    def __init__(
        self,
        counter: SequenceCounter | None = None,
        *,
        chunker: Chunker | None = None,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
    ) -> None:
        self._counter = counter if counter is not None else SequenceCounter()
        self._chunker = chunker if chunker is not None else Chunker()
        if self._chunker.headroom < STAMP_HEADROOM:
            raise ValueError(
                f"chunker.headroom must be >= STAMP_HEADROOM ({STAMP_HEADROOM}) for the seq and "
                f"emitted_at_monotonic stamped after chunking, got {self._chunker.headroom}"
            )
        self._clock = clock
        self._monotonic = monotonic

    @property
    def counter(self) -> SequenceCounter:
        return self._counter

    @property
    def chunker(self) -> Chunker:
        return self._chunker

    def draft(self, envelope_type: type[E], data: Mapping[str, Any] | None = None) -> E:
        """An envelope with the current ``timestamp`` and no ``seq``, ready for :meth:`frames`."""
        return envelope_type.model_validate(
            {"timestamp": self._clock(), "data": {} if data is None else data}
        )

    def stamp(self, envelope: E) -> E:
        """A copy of ``envelope`` as it goes on the wire, with ``emitted_at_monotonic``.

        A broadcast frame (or a chunk of one) takes the next ``seq``. A unicast frame takes
        none, since a number spent on it would be a gap for every other client:
        ``initial_metrics`` carries ``seq = data.current_seq`` and a chunk of one no ``seq``.

        Raises ``ValueError`` for an envelope that already has ``seq`` or
        ``emitted_at_monotonic`` (the first stamp's number would never be sent), for a
        ``/ws/control`` frame or a chunk of one (never numbered), and for an
        ``initial_metrics`` that is not an :class:`InitialMetricsEnvelope` (no ``current_seq``).
        """
        self._check_stampable(envelope, "stamp")
        return envelope.model_copy(update=self._stamp_values(envelope))

    def frames(self, envelope: BaseEnvelope) -> list[BaseEnvelope]:
        """The stamped wire frames for an unstamped ``envelope`` (one, or its chunks).

        Each frame is stamped by :meth:`stamp`, which raises ``ValueError`` for what it refuses
        (checked before anything is chunked or numbered).
        """
        self._check_stampable(envelope, "frames")
        return [self.stamp(piece) for piece in self._chunker.split(envelope)]

    def wire_frames(self, envelope: BaseEnvelope) -> list[str]:
        """:meth:`frames` serialized: the text frames to send, in order.

        Each frame is serialized once. A frame that fits is the JSON the chunker measured with
        the stamp appended: exactly the text :func:`to_wire_json` writes for the stamped frame.
        """
        self._check_stampable(envelope, "frames")
        wire_or_chunks = self._chunker.wire_or_chunks(envelope)
        if isinstance(wire_or_chunks, bytes):
            return [self._stamped_text(envelope, wire_or_chunks)]
        return [to_wire_json(self.stamp(chunk)) for chunk in wire_or_chunks]

    def _stamp_values(self, envelope: BaseEnvelope) -> dict[str, float | int]:
        """The stamp of :meth:`stamp`, taking the next ``seq`` of a broadcast frame."""
        if _kind(envelope) != _UNICAST_TYPE:
            values: dict[str, float | int] = {"seq": self._counter.next()}
        elif isinstance(envelope, InitialMetricsEnvelope):
            values = {"seq": envelope.data.current_seq}
        else:  # a chunk of initial_metrics
            values = {}
        values["emitted_at_monotonic"] = self._monotonic()
        return values

    def _stamped_text(self, envelope: BaseEnvelope, wire: bytes) -> str:
        """The wire text of ``envelope`` stamped, given ``wire``, its JSON without the stamp."""
        values = self._stamp_values(envelope)
        stamp = _stamp_json(values)
        if (
            stamp is None
            # Pydantic writes unknown keys after the stamp's fields, and to_wire_json writes
            # some frames otherwise (base.py): an unknown key holding None, or a text from the
            # json module, which has a "\u" escape for every non-ASCII character. Those frames
            # are serialized stamped (as is one whose "\u" escapes a control character).
            or envelope.__pydantic_extra__
            or _holds_none_extra(envelope)
            or b"\\u" in wire
        ):
            return to_wire_json(envelope.model_copy(update=values))
        return (wire[:-1] + stamp).decode()

    def _stamped(self, envelope_type: type[E], data: Mapping[str, Any] | None) -> E:
        return envelope_type.model_validate(
            {
                "timestamp": self._clock(),
                "data": {} if data is None else data,
                "seq": self._counter.next(),
                "emitted_at_monotonic": self._monotonic(),
            }
        )

    @staticmethod
    def _check_stampable(envelope: BaseEnvelope, method: str) -> None:
        if envelope.seq is not None or envelope.emitted_at_monotonic is not None:
            raise ValueError(
                f"{method}() takes an unstamped envelope; got {envelope.type!r} with "
                f"seq={envelope.seq}, emitted_at_monotonic={envelope.emitted_at_monotonic} "
                "(use draft(), not the per-type methods)"
            )
        kind = _kind(envelope)
        if kind in _CONTROL_TYPES:
            raise ValueError(f"{method}(): {kind!r} is a /ws/control frame and never carries seq")
        if kind == _UNICAST_TYPE and not isinstance(
            envelope, InitialMetricsEnvelope | ChunkedMessageEnvelope
        ):
            raise ValueError(
                f"{method}(): an initial_metrics frame must be an InitialMetricsEnvelope "
                f"(its data.current_seq is its seq), got {type(envelope).__name__}"
            )

    def metrics(self, data: Mapping[str, Any] | None = None) -> MetricsEnvelope:
        """A stamped ``metrics`` envelope with the next ``seq``, for a small frame."""
        return self._stamped(MetricsEnvelope, data)

    def state(self, data: Mapping[str, Any] | None = None) -> StateEnvelope:
        """A stamped ``state`` envelope with the next ``seq``, for a small frame."""
        return self._stamped(StateEnvelope, data)

    def topology(self, data: Mapping[str, Any] | None = None) -> TopologyEnvelope:
        """A stamped ``topology`` envelope with the next ``seq``, for a small frame."""
        return self._stamped(TopologyEnvelope, data)

    def event(self, data: Mapping[str, Any] | None = None) -> EventEnvelope:
        """A stamped ``event`` envelope with the next ``seq``, for a small frame."""
        return self._stamped(EventEnvelope, data)

    def cascade_add(self, data: Mapping[str, Any] | None = None) -> CascadeAddEnvelope:
        """A stamped ``cascade_add`` envelope with the next ``seq``, for a small frame."""
        return self._stamped(CascadeAddEnvelope, data)

    def candidate_progress(
        self, data: Mapping[str, Any] | None = None
    ) -> CandidateProgressEnvelope:
        """A stamped ``candidate_progress`` envelope with the next ``seq``, for a small frame."""
        return self._stamped(CandidateProgressEnvelope, data)

    def initial_metrics_draft(
        self, metrics: Sequence[Any] = (), *, count: int | None = None
    ) -> InitialMetricsEnvelope:
        """Unstamped ``initial_metrics`` (``current_seq = counter.current``) for :meth:`frames`."""
        return InitialMetricsEnvelope(
            timestamp=self._clock(),
            data=InitialMetricsData(
                metrics=list(metrics),
                count=len(metrics) if count is None else count,
                current_seq=self._counter.current,
            ),
        )

    def initial_metrics(
        self, metrics: Sequence[Any] = (), *, count: int | None = None
    ) -> InitialMetricsEnvelope:
        """``initial_metrics`` for one new client: ``seq = current_seq = counter.current``.

        ``count`` defaults to ``len(metrics)``. No number is consumed (see the module doc).
        """
        return self.stamp(self.initial_metrics_draft(metrics, count=count))


class ControlBuilder:
    """Builds ``/ws/control`` frames: ``timestamp`` from ``clock``, never a ``seq``."""

    __slots__ = ("_clock",)

    def __init__(self, *, clock: Clock = time.time) -> None:
        self._clock = clock

    def command_response(
        self,
        command: str | ControlCommand,
        status: CommandStatus | str,
        *,
        command_id: str | None = None,
        result: Mapping[str, Any] | None = None,
        error: str | None = None,
        code: str | None = None,
    ) -> CommandResponseEnvelope:
        """The answer to ``command``; given a :class:`ControlCommand`, echoes its ``command_id``.

        Raises ``ValueError`` when ``status`` is not a :class:`CommandStatus` value.
        """
        try:
            status = CommandStatus(status)
        except ValueError:
            allowed = ", ".join(CommandStatus)
            raise ValueError(f"status must be one of {allowed}; got {status!r}") from None
        if isinstance(command, ControlCommand):
            command_id = command.command_id if command_id is None else command_id
            command = command.command
        return CommandResponseEnvelope(
            timestamp=self._clock(),
            data=CommandResponseData(
                command=str(command),  # a ControlCommandName becomes its plain value
                status=status.value,
                command_id=command_id,
                result=None if result is None else dict(result),
                error=error,
                code=code,
            ),
        )

    def rejection(self, request: CommandParseError | ControlCommand) -> CommandResponseEnvelope:
        """``status="error"`` for a request that failed to parse or names an unknown command."""
        if isinstance(request, CommandParseError):
            return self.command_response(
                request.command or "",
                CommandStatus.ERROR,
                command_id=request.command_id,
                error="; ".join(request.errors),
                code=request.code,
            )
        return self.command_response(
            request,
            CommandStatus.ERROR,
            error=f"unknown command {request.command!r}",
            code=UNKNOWN_COMMAND_CODE,
        )

    def connection_established(
        self, server_version: str | None = None, protocol_version: str | None = None
    ) -> ConnectionEstablishedEnvelope:
        """The greeting sent first on a new connection, announcing the server's versions."""
        return ConnectionEstablishedEnvelope(
            timestamp=self._clock(),
            data=ConnectionEstablishedData(
                server_version=server_version, protocol_version=protocol_version
            ),
        )


_CONTROL = ControlBuilder()


def command_response(
    command: str | ControlCommand,
    status: CommandStatus | str,
    *,
    command_id: str | None = None,
    result: Mapping[str, Any] | None = None,
    error: str | None = None,
    code: str | None = None,
) -> CommandResponseEnvelope:
    """:meth:`ControlBuilder.command_response` with the wall clock."""
    return _CONTROL.command_response(
        command, status, command_id=command_id, result=result, error=error, code=code
    )


def connection_established(
    server_version: str | None = None, protocol_version: str | None = None
) -> ConnectionEstablishedEnvelope:
    """:meth:`ControlBuilder.connection_established` with the wall clock."""
    return _CONTROL.connection_established(server_version, protocol_version)
