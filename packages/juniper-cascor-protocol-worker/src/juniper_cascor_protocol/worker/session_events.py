"""What a ``/ws/v1/workers`` session reports: the events ``receive``, ``tick`` and ``close`` return.

Every event is a frozen dataclass. A shell matches on their classes, e.g.
``match event: case TaskReceived(task=task, tensors=tensors): ...``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from numpy.typing import NDArray

from juniper_cascor_protocol.worker.messages import (
    ConnectionEstablishedMessage,
    RegisterMessage,
    RegistrationAckMessage,
    ResultAckMessage,
    TaskAssignMessage,
    TaskResultMessage,
    WorkerMessage,
)

__all__ = [
    "VIOLATION_LABELS",
    "Closed",
    "ConnectionEstablished",
    "HeartbeatDue",
    "IncompatibleVersion",
    "MessageReceived",
    "PeerSilent",
    "ProtocolViolation",
    "Registered",
    "ResultAcknowledged",
    "ResultReceived",
    "ResultTimedOut",
    "SessionEvent",
    "SessionState",
    "TaskReceived",
    "TaskRefused",
    "VersionIncompatible",
    "Violation",
    "WorkerRegistered",
]


class SessionState(StrEnum):
    """Where a session is in the conversation (see ``docs/protocol.md``)."""

    AWAITING_CONNECTION_ESTABLISHED = "awaiting_connection_established"
    """Worker: the connection is open, the server has not greeted yet."""
    AWAITING_REGISTER = "awaiting_register"
    """Server: ``connection_established`` is sent, ``register`` has not come."""
    AWAITING_REGISTRATION_ACK = "awaiting_registration_ack"
    """Worker: ``register`` is sent, ``registration_ack`` has not come."""
    READY = "ready"
    """Registered: tasks, results and heartbeats flow."""
    AWAITING_TENSOR_FRAMES = "awaiting_tensor_frames"
    """A ``task_assign`` or ``task_result`` came; some of its binary frames have not."""
    CLOSED = "closed"
    """Nothing more is received or sent; see ``close_code``."""


VIOLATION_LABELS: Final = frozenset(
    {
        "oversized_message",
        "malformed_json",
        "not_an_object",
        "unknown_type",
        "invalid_message",
        "unexpected_message",
        "unexpected_binary_frame",
        "missing_tensor_frame",
        "unanswerable_result",
        "register_timeout",
    }
)
"""Every ``ProtocolViolation.label``: a fixed set, safe to use as a metric label."""


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """The peer broke a rule. ``close_code`` is None when the session goes on regardless.

    The envelope sessions report the same event, with the same fields.
    """

    label: str
    """One of :data:`VIOLATION_LABELS`."""
    reason: str
    """What was wrong, for people; at most 500 characters."""
    close_code: int | None


Violation = ProtocolViolation
"""The first name of :class:`ProtocolViolation`, kept as an alias."""


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A message with no event of its own (heartbeat, ``token_refresh``, ``error``...)."""

    message: WorkerMessage


@dataclass(frozen=True, slots=True)
class ConnectionEstablished:
    """Worker: the server greeted, speaking ``protocol_version`` (None: it named none, which is
    read as compatible); ``register`` is queued."""

    message: ConnectionEstablishedMessage
    protocol_version: str | None


@dataclass(frozen=True, slots=True)
class IncompatibleVersion:
    """Worker: the server announced a protocol version this worker cannot read; the session
    closed (code 4009). The envelope sessions report the same event, with the same fields."""

    announced: str
    """The server's ``protocol_version`` as sent (cut to 60 characters)."""
    supported: tuple[str, ...]
    """The versions this worker supports (any minor of their majors)."""
    server_version: str | None = None
    """The server software's version, from ``connection_established``."""


VersionIncompatible = IncompatibleVersion
"""The first name of :class:`IncompatibleVersion`, kept as an alias. Its first field, then
named ``server_version``, is now ``announced``; ``server_version`` is the software's version."""


@dataclass(frozen=True, slots=True)
class Registered:
    """Worker: the server accepted ``register``; use ``worker_id`` from now on."""

    worker_id: str
    heartbeat_interval: float
    message: RegistrationAckMessage


@dataclass(frozen=True, slots=True)
class WorkerRegistered:
    """Server: a worker registered as ``worker_id``; ``registration_ack`` is queued."""

    worker_id: str
    message: RegisterMessage


@dataclass(frozen=True, slots=True)
class TaskReceived:
    """Worker: a task and all its tensors arrived and agree with the manifest.

    ``tensors`` are read-only arrays viewing the received frames (no copy).
    """

    task: TaskAssignMessage
    tensors: Mapping[str, NDArray[Any]]


@dataclass(frozen=True, slots=True)
class TaskRefused:
    """Worker: a task could not be used; a ``task_result`` with ``success=false`` is queued."""

    task_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ResultReceived:
    """Server: a ``task_result`` and its frames were handled; the ``result_ack`` is queued.

    ``status`` is the ack's: ``accepted`` (use ``result`` and ``tensors``; a ``success=false``
    result is accepted too: the worker's failure is the task's outcome), ``duplicate``,
    ``stale`` or ``rejected`` (``reason`` says why; ``result`` is None when it did not parse).
    """

    task_id: str
    status: str
    reason: str | None
    result: TaskResultMessage | None
    tensors: Mapping[str, NDArray[Any]]

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"


@dataclass(frozen=True, slots=True)
class ResultAcknowledged:
    """Worker: the server answered one of this session's results."""

    ack: ResultAckMessage


@dataclass(frozen=True, slots=True)
class ResultTimedOut:
    """Server: no ``task_result`` for ``task_id`` by its deadline; a late one is ``stale``."""

    task_id: str


@dataclass(frozen=True, slots=True)
class HeartbeatDue:
    """Worker: time to call ``send_heartbeat``."""


@dataclass(frozen=True, slots=True)
class PeerSilent:
    """Nothing came for ``timeout`` seconds (last at ``last_received``); the session closed."""

    last_received: float
    timeout: float


@dataclass(frozen=True, slots=True)
class Closed:
    """The session ended: by the peer (``by_peer``) or by this side (close the WebSocket with
    ``code`` and ``reason``). ``unfinished_tasks``: task ids with no acknowledged outcome.
    ``reconnect``: whether a worker should connect again (see ``should_reconnect``)."""

    code: int | None
    reason: str
    by_peer: bool
    reconnect: bool
    unfinished_tasks: tuple[str, ...]


SessionEvent = (
    ProtocolViolation
    | MessageReceived
    | ConnectionEstablished
    | IncompatibleVersion
    | Registered
    | WorkerRegistered
    | TaskReceived
    | TaskRefused
    | ResultReceived
    | ResultAcknowledged
    | ResultTimedOut
    | HeartbeatDue
    | PeerSilent
    | Closed
)
"""Any event a session returns."""
