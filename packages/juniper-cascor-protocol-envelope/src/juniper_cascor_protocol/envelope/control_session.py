"""Sans-I/O sessions of ``/ws/control``: a client issuing commands and the server answering them.

No sockets, no clock, no threads: the shell passes each received message and the current time
in and sends the texts it gets back. ``now`` is monotonic for the client, which times requests
out, and wall-clock Unix seconds for the server, which stamps its frames' ``timestamp`` with it.

Client (:class:`ControlClientSession`): :meth:`~ControlClientSession.issue` turns a command into
the request text with a fresh ``command_id`` and remembers it until its deadline;
:meth:`~ControlClientSession.receive` matches each ``command_response`` to its request by
``command_id`` alone (the server answers concurrently, in any order) and reports responses that
match nothing: without an id (unsolicited), for a request that already timed out (late), or with
an id never issued or already answered (unknown). ``connection_established`` carries the
server's protocol version; an unreadable one is reported as :class:`IncompatibleVersion` and
the session refuses to issue commands. Bounded: at most ``max_pending`` requests in flight and
``max_remembered_ids`` timed-out ids.

Server (:class:`ControlServerSession`): :meth:`~ControlServerSession.receive` turns a request
into a typed :class:`ControlCommand` of a known name, or into the error ``command_response`` to
send back (``malformed_json``, ``invalid_command``, ``unknown_command``);
:meth:`~ControlServerSession.respond` builds the answer to a command.
"""

from __future__ import annotations

import json
import math
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final, TypeAlias

from pydantic_core import from_json

from juniper_cascor_protocol.envelope.base import BaseEnvelope, UnknownEnvelope
from juniper_cascor_protocol.envelope.builders import ControlBuilder, to_wire_json
from juniper_cascor_protocol.envelope.chunking import DEFAULT_MAX_FRAME_BYTES
from juniper_cascor_protocol.envelope.control import (
    COMMAND_ID_MAX_LENGTH,
    INVALID_COMMAND_CODE,
    CommandParseError,
    CommandResponseEnvelope,
    CommandStatus,
    ControlCommand,
    ControlCommandName,
    _new_command_id,
    parse_command_json,
)
from juniper_cascor_protocol.envelope.labels import LabelBudget
from juniper_cascor_protocol.envelope.protocol_version import (
    PROTOCOL_VERSION,
    SUPPORTED_PROTOCOL_VERSIONS,
)
from juniper_cascor_protocol.envelope.session_events import (
    PING_TYPE,
    PONG_TYPE,
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

__all__ = [
    "COMMAND_REQUEST_TYPE",
    "DEFAULT_COMMAND_TIMEOUT",
    "DEFAULT_MAX_PENDING_COMMANDS",
    "DEFAULT_MAX_REMEMBERED_COMMAND_IDS",
    "DEFAULT_MAX_REQUEST_BYTES",
    "CommandAbandoned",
    "CommandAnswered",
    "CommandReceived",
    "CommandTimedOut",
    "ControlClientError",
    "ControlClientEvent",
    "ControlClientSession",
    "ControlClientState",
    "ControlClientStats",
    "ControlServerEvent",
    "ControlServerSession",
    "IncompatibleServerError",
    "InvalidResponse",
    "IssuedCommand",
    "LateResponse",
    "PendingLimitError",
    "PongReceived",
    "RequestRejected",
    "UnknownResponse",
    "UnsolicitedResponse",
]

DEFAULT_MAX_PENDING_COMMANDS: Final = 256
"""Requests a client keeps in flight at most (as juniper-cascor-client)."""
DEFAULT_COMMAND_TIMEOUT: Final = 30.0
"""Seconds a client waits for a response by default (as juniper-cascor-client)."""
DEFAULT_MAX_REMEMBERED_COMMAND_IDS: Final = 1024
"""Timed-out ``command_id`` values a client remembers, to tell a late response from an unknown."""
DEFAULT_MAX_REQUEST_BYTES: Final = 64 * 1024
"""The longest request a server reads, in UTF-8 bytes (as juniper-cascor)."""
COMMAND_REQUEST_TYPE: Final = "command"
"""The ``type`` a client's request carries (as juniper-cascor-client; servers ignore it)."""


# --- client events ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IssuedCommand:
    """A request the client sent: send ``text``; its response is matched by ``command_id``."""

    command_id: str
    command: str
    text: str
    issued_at: float
    deadline: float


@dataclass(frozen=True, slots=True)
class CommandAnswered:
    """The response to a pending request (any status: ``success``, ``error``, ...)."""

    request: IssuedCommand
    response: CommandResponseEnvelope


@dataclass(frozen=True, slots=True)
class InvalidResponse:
    """A ``command_response`` for a pending request whose payload is invalid.

    The request is closed (it will not time out). ``envelope`` keeps every field received, so
    a response in an older or newer shape can still be read from it.
    """

    request: IssuedCommand
    envelope: UnknownEnvelope


@dataclass(frozen=True, slots=True)
class UnsolicitedResponse:
    """A ``command_response`` without ``command_id`` (the answer to a request that had none)."""

    response: CommandResponseEnvelope


@dataclass(frozen=True, slots=True)
class LateResponse:
    """A ``command_response`` for a request that had already timed out."""

    response: CommandResponseEnvelope


@dataclass(frozen=True, slots=True)
class UnknownResponse:
    """A ``command_response`` whose ``command_id`` was never issued or was already answered."""

    response: CommandResponseEnvelope


@dataclass(frozen=True, slots=True)
class CommandTimedOut:
    """No response by ``request.deadline``; a response arriving later is a :class:`LateResponse`."""

    request: IssuedCommand


@dataclass(frozen=True, slots=True)
class CommandAbandoned:
    """The connection was lost before the response came."""

    request: IssuedCommand


ControlClientEvent: TypeAlias = (
    Established
    | IncompatibleVersion
    | CommandAnswered
    | InvalidResponse
    | UnsolicitedResponse
    | LateResponse
    | UnknownResponse
    | CommandTimedOut
    | UnknownFrame
    | ProtocolViolation
    | PingReceived
)


class ControlClientError(RuntimeError):
    """A command the client session will not issue."""


class PendingLimitError(ControlClientError):
    """``max_pending`` requests are in flight already: wait for a response or a timeout."""


class IncompatibleServerError(ControlClientError):
    """The server announced a protocol version this client cannot read."""


class ControlClientState(StrEnum):
    """Where a :class:`ControlClientSession` stands with the server of its connection."""

    CONNECTING = "connecting"
    """No ``connection_established`` yet on this connection (commands may be issued)."""
    OPEN = "open"
    """The server greeted with a readable protocol version, or announced none."""
    INCOMPATIBLE = "incompatible"
    """The server's protocol version is unreadable: commands are refused."""


@dataclass(frozen=True, slots=True)
class ControlClientStats:
    """Running totals of one client session. Every key set is bounded."""

    issued: int
    answered: int
    invalid_responses: int
    timed_out: int
    abandoned: int
    late: int
    unsolicited: int
    unknown_responses: int
    pending: int
    remembered_ids: int
    heartbeats: int
    unknown_frames: Mapping[str, int]
    """Frames that are neither a response, a greeting nor a ping, by bounded label."""
    refused: Mapping[str, int]


# --- client -------------------------------------------------------------------------------


class ControlClientSession:
    """A client of ``/ws/control``; see the module docstring.

    Keep one session across reconnects: call :meth:`connection_lost` when a connection ends
    (it abandons what is pending) and feed the next connection's frames as before.

    Args:
        max_pending: requests in flight at most; :meth:`issue` raises beyond.
        default_timeout: seconds from :meth:`issue` to :class:`CommandTimedOut`.
        max_remembered_ids: timed-out ids kept to recognise a :class:`LateResponse`.
        max_frame_bytes: the longest text frame read, in UTF-8 bytes.
        supported_versions: the protocol versions this client reads (any minor of their majors).
        command_id_factory: makes each fresh ``command_id`` (default: a random UUID, hex).
        labels: the budget of unknown ``type`` labels (default: one of this session's own).

    Not thread-safe: the shell serializes calls (one event loop does).
    """

    __slots__ = (
        "_default_timeout",
        "_earliest",
        "_incompatibility",
        "_labels",
        "_max_frame_bytes",
        "_max_pending",
        "_max_remembered",
        "_new_id",
        "_pending",
        "_refused",
        "_state",
        "_supported",
        "_timed_out",
        "_totals",
        "_unknown_frames",
    )

    def __init__(
        self,
        *,
        max_pending: int = DEFAULT_MAX_PENDING_COMMANDS,
        default_timeout: float = DEFAULT_COMMAND_TIMEOUT,
        max_remembered_ids: int = DEFAULT_MAX_REMEMBERED_COMMAND_IDS,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        supported_versions: Iterable[str] = SUPPORTED_PROTOCOL_VERSIONS,
        command_id_factory: Callable[[], str] = _new_command_id,
        labels: LabelBudget | None = None,
    ) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        if max_remembered_ids < 0:
            raise ValueError(f"max_remembered_ids must be >= 0, got {max_remembered_ids}")
        self._max_pending = max_pending
        self._default_timeout = _check_timeout(default_timeout, "default_timeout")
        self._max_remembered = max_remembered_ids
        self._max_frame_bytes = check_max_frame_bytes(max_frame_bytes)
        self._supported = checked_versions(supported_versions)
        self._new_id = command_id_factory
        self._labels = LabelBudget() if labels is None else labels
        self._state = ControlClientState.CONNECTING
        self._incompatibility: IncompatibleVersion | None = None
        self._pending: dict[str, IssuedCommand] = {}
        # No pending deadline is earlier than this (it may be stale-early, never late).
        self._earliest = math.inf
        self._timed_out: OrderedDict[str, None] = OrderedDict()
        self._totals: Counter[str] = Counter()
        self._unknown_frames: Counter[str] = Counter()
        self._refused: Counter[str] = Counter()

    @property
    def state(self) -> ControlClientState:
        return self._state

    @property
    def pending(self) -> int:
        """Requests waiting for their response."""
        return len(self._pending)

    @property
    def next_deadline(self) -> float | None:
        """The earliest deadline of a pending request: when to call :meth:`expire` next."""
        return min((request.deadline for request in self._pending.values()), default=None)

    def issue(
        self,
        command: str,
        params: Mapping[str, Any] | None = None,
        *,
        now: float,
        timeout: float | None = None,
        command_id: str | None = None,
    ) -> IssuedCommand:
        """Register a request and return it; send its ``text``.

        ``command`` is a :class:`ControlCommandName` or any name (a server that lacks it
        answers ``unknown_command``). ``command_id`` defaults to a fresh one.

        Raises:
            IncompatibleServerError: the server announced an unreadable protocol version.
            PendingLimitError: ``max_pending`` requests are in flight.
            ValueError: ``command_id`` is already pending, or the request is invalid (an empty
                or too long ``command``/``command_id``, a ``timeout`` not > 0).
        """
        if self._incompatibility is not None:
            raise IncompatibleServerError(
                f"server protocol version {self._incompatibility.announced!r} is not readable "
                f"by this client (supported: {', '.join(self._supported)})"
            )
        if len(self._pending) >= self._max_pending:
            raise PendingLimitError(
                f"{len(self._pending)} requests are pending; max_pending={self._max_pending}"
            )
        wait = self._default_timeout if timeout is None else _check_timeout(timeout, "timeout")
        if command_id is None:
            command_id = self._new_id()
        if command_id in self._pending:
            raise ValueError(f"command_id {command_id[:COMMAND_ID_MAX_LENGTH]!r} is pending")
        request = ControlCommand.model_validate(
            {
                "command": str(command),  # a ControlCommandName becomes its plain value
                "params": {} if params is None else dict(params),
                "command_id": command_id,
                "type": COMMAND_REQUEST_TYPE,
            }
        )
        issued = IssuedCommand(
            command_id=command_id,
            command=request.command,
            text=request.to_wire_json(),
            issued_at=now,
            deadline=now + wait,
        )
        self._pending[command_id] = issued
        self._earliest = min(self._earliest, issued.deadline)
        self._totals["issued"] += 1
        return issued

    def receive(self, message: object, *, now: float) -> list[ControlClientEvent]:
        """What one received WebSocket message means, in order. Never raises on ``message``.

        Requests whose deadline is at or before ``now`` time out first, so a response arriving
        after its deadline is a :class:`LateResponse`.
        """
        events: list[ControlClientEvent] = list(self.expire(now=now))
        text = text_or_refusal(message, self._max_frame_bytes)
        if isinstance(text, ProtocolViolation):
            self._refused[text.label] += 1
            events.append(text)
            return events
        envelope = decode_frame(text, self._labels)
        if isinstance(envelope, CommandResponseEnvelope):
            events.append(self._match(envelope))
        elif (greeting := greeting_outcome(envelope, self._supported)) is not None:
            events.append(self._greeted(greeting))
        elif is_ping(envelope, text):
            self._totals["heartbeats"] += 1
            events.append(PingReceived())
        else:
            events.append(self._unexpected(envelope))
        return events

    def expire(self, *, now: float) -> list[CommandTimedOut]:
        """Time out every pending request whose deadline is at or before ``now``."""
        if now < self._earliest:
            return []
        expired = [request for request in self._pending.values() if request.deadline <= now]
        for request in expired:
            del self._pending[request.command_id]
            self._remember_timed_out(request.command_id)
        self._totals["timed_out"] += len(expired)
        earliest = self.next_deadline
        self._earliest = math.inf if earliest is None else earliest
        return [CommandTimedOut(request) for request in expired]

    def connection_lost(self) -> list[CommandAbandoned]:
        """The connection ended: abandon every pending request, await a new greeting."""
        abandoned = [CommandAbandoned(request) for request in self._pending.values()]
        self._pending.clear()
        self._earliest = math.inf
        self._totals["abandoned"] += len(abandoned)
        self._state = ControlClientState.CONNECTING
        self._incompatibility = None
        return abandoned

    def stats(self) -> ControlClientStats:
        """A snapshot of the running totals."""
        totals = self._totals
        return ControlClientStats(
            issued=totals["issued"],
            answered=totals["answered"],
            invalid_responses=totals["invalid_responses"],
            timed_out=totals["timed_out"],
            abandoned=totals["abandoned"],
            late=totals["late"],
            unsolicited=totals["unsolicited"],
            unknown_responses=totals["unknown_responses"],
            pending=len(self._pending),
            remembered_ids=len(self._timed_out),
            heartbeats=totals["heartbeats"],
            unknown_frames=MappingProxyType(dict(self._unknown_frames)),
            refused=MappingProxyType(dict(self._refused)),
        )

    def _match(self, response: CommandResponseEnvelope) -> ControlClientEvent:
        command_id = response.data.command_id
        if command_id is None:
            self._totals["unsolicited"] += 1
            return UnsolicitedResponse(response)
        request = self._pending.pop(command_id, None)
        if request is not None:
            self._totals["answered"] += 1
            return CommandAnswered(request, response)
        if command_id in self._timed_out:
            del self._timed_out[command_id]  # a second late copy is unknown
            self._totals["late"] += 1
            return LateResponse(response)
        self._totals["unknown_responses"] += 1
        return UnknownResponse(response)

    def _greeted(self, outcome: Established | IncompatibleVersion) -> ControlClientEvent:
        if isinstance(outcome, Established):
            self._state = ControlClientState.OPEN
            self._incompatibility = None
        else:
            self._state = ControlClientState.INCOMPATIBLE
            self._incompatibility = outcome
        return outcome

    def _unexpected(self, envelope: BaseEnvelope) -> ControlClientEvent:
        if isinstance(envelope, UnknownEnvelope) and envelope.type == "command_response":
            # An invalid payload: still close its request, as juniper-cascor's rate limiter
            # answers without ``timestamp`` and ``data``.
            request = self._pending.pop(_loose_command_id(envelope), None)
            if request is not None:
                self._totals["invalid_responses"] += 1
                return InvalidResponse(request, envelope)
        self._unknown_frames[envelope.type] += 1
        return UnknownFrame(envelope)

    def _remember_timed_out(self, command_id: str) -> None:
        if self._max_remembered == 0:
            return
        self._timed_out[command_id] = None
        while len(self._timed_out) > self._max_remembered:
            self._timed_out.popitem(last=False)


def _loose_command_id(envelope: UnknownEnvelope) -> str:
    """The ``command_id`` of an invalid response, from ``data`` or the top level, or ``""``."""
    for value in (envelope.data.get("command_id"), (envelope.model_extra or {}).get("command_id")):
        if isinstance(value, str):
            return value
    return ""  # never a pending id: ControlCommand refuses an empty one


def _check_timeout(value: float, name: str) -> float:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not (number and 0 < value < math.inf):
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    return float(value)


# --- server -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandReceived:
    """A valid request naming a known command: act on it, then send :meth:`respond`."""

    command: ControlCommand
    name: ControlCommandName


@dataclass(frozen=True, slots=True)
class RequestRejected:
    """A request the server cannot act on: send ``reply`` (an error ``command_response``)."""

    reply: str
    code: str
    errors: tuple[str, ...]
    command_id: str | None


@dataclass(frozen=True, slots=True)
class PongReceived:
    """A client's answer to :meth:`ControlServerSession.ping`: it is alive."""


ControlServerEvent: TypeAlias = CommandReceived | RequestRejected | PongReceived


class ControlServerSession:
    """The server side of one ``/ws/control`` connection; see the module docstring.

    Holds no per-request state: requests may be answered in any order, each response echoes
    its request's ``command_id``.

    Args:
        server_version, protocol_version: announced by :meth:`greeting`.
        max_request_bytes: the longest request read, in UTF-8 bytes.
    """

    __slots__ = ("_max_request_bytes", "_protocol_version", "_server_version")

    def __init__(
        self,
        *,
        server_version: str | None = None,
        protocol_version: str | None = PROTOCOL_VERSION,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    ) -> None:
        self._server_version = server_version
        self._protocol_version = protocol_version
        self._max_request_bytes = check_max_frame_bytes(max_request_bytes)

    def greeting(self, *, now: float) -> str:
        """``connection_established``: the first frame of every connection."""
        envelope = ControlBuilder(clock=lambda: now).connection_established(
            server_version=self._server_version, protocol_version=self._protocol_version
        )
        return to_wire_json(envelope)

    def ping(self, *, now: float) -> str:
        """The heartbeat ``{"type": "ping", "ts": now}``; a live client answers with a pong."""
        return json.dumps({"type": PING_TYPE, "ts": now}, separators=(",", ":"), allow_nan=False)

    def receive(self, message: object, *, now: float) -> ControlServerEvent:
        """What one received request means. Never raises on ``message``.

        ``now`` stamps the error response, if one is needed.
        """
        text = text_or_refusal(message, self._max_request_bytes, "max_request_bytes")
        if isinstance(text, ProtocolViolation):
            return self._rejected(CommandParseError((f"request: {text.reason}",)), now)
        request = parse_command_json(text)
        if isinstance(request, ControlCommand):
            name = request.known_name
            if name is not None:
                return CommandReceived(request, name)
        elif _is_pong(text):
            return PongReceived()
        return self._rejected(request, now)

    def respond(
        self,
        request: ControlCommand,
        status: CommandStatus | str,
        *,
        now: float,
        result: Mapping[str, Any] | None = None,
        error: str | None = None,
        code: str | None = None,
    ) -> str:
        """The ``command_response`` text answering ``request``, echoing its ``command_id``.

        Raises:
            ValueError: ``status`` is not a :class:`CommandStatus` value.
        """
        envelope = ControlBuilder(clock=lambda: now).command_response(
            request, status, result=result, error=error, code=code
        )
        return to_wire_json(envelope)

    def _rejected(self, request: CommandParseError | ControlCommand, now: float) -> RequestRejected:
        reply = ControlBuilder(clock=lambda: now).rejection(request)
        data = reply.data
        return RequestRejected(
            reply=to_wire_json(reply),
            code=data.code or INVALID_COMMAND_CODE,
            errors=_errors_of(request, data.error),
            command_id=data.command_id,
        )


def _errors_of(request: CommandParseError | ControlCommand, error: str | None) -> tuple[str, ...]:
    if isinstance(request, CommandParseError):
        return request.errors
    return (error or "",)


def _is_pong(text: str) -> bool:
    """Whether ``text`` is a client's ``{"type": "pong"}`` (a request without ``command``)."""
    try:
        frame = from_json(text)
    except (ValueError, TypeError):  # TypeError: a str with lone surrogates
        return False
    return isinstance(frame, dict) and frame.get("type") == PONG_TYPE and "command" not in frame
