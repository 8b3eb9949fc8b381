"""The server's end of ``/ws/v1/workers`` as a sans-I/O state machine.

Construct it when a worker's WebSocket opens (``connection_established`` is then queued); feed
it every received message with :meth:`ServerSession.receive` and the time with
:meth:`~ServerSession.tick`; write what :meth:`~ServerSession.data_to_send` and
:meth:`~ServerSession.send_task` return, each list whole and in order; close the WebSocket with
``close_code`` once it is set. The session answers ``register``, every heartbeat and every
``task_result`` (exactly one ``result_ack`` each) by itself.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Final

from numpy.typing import NDArray

from juniper_cascor_protocol.worker._bounded_text import clip
from juniper_cascor_protocol.worker._session_core import (
    Outgoing,
    SessionCore,
    encode_batch,
)
from juniper_cascor_protocol.worker.close_codes import CloseCode
from juniper_cascor_protocol.worker.manifest import TensorManifest, TensorSpec, check_tensors
from juniper_cascor_protocol.worker.message_type import WorkerMessageType
from juniper_cascor_protocol.worker.messages import (
    WORKER_ID_PATTERN,
    ConnectionEstablishedMessage,
    ErrorMessage,
    HeartbeatMessage,
    RegisterMessage,
    RegistrationAckMessage,
    ResultAckMessage,
    TaskAssignMessage,
    TaskResultMessage,
    WorkerMessage,
)
from juniper_cascor_protocol.worker.protocol_version import PROTOCOL_VERSION
from juniper_cascor_protocol.worker.session_events import (
    MessageReceived,
    ProtocolViolation,
    ResultReceived,
    ResultTimedOut,
    SessionEvent,
    SessionState,
    WorkerRegistered,
)
from juniper_cascor_protocol.worker.session_limits import (
    DEFAULT_BATCH_BYTE_BUDGET,
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_REGISTER_TIMEOUT,
    DEFAULT_RESULT_TIMEOUT,
    LIVENESS_FACTOR,
    MAX_HEARTBEAT_INTERVAL,
    MIN_HEARTBEAT_INTERVAL,
)
from juniper_cascor_protocol.worker.tensor_batch import TensorBatch

__all__ = ["ServerSession"]

_REMEMBERED_TASKS: Final = 1024
"""Finished task ids kept to answer a late or repeated result ``duplicate`` or ``stale``."""


class _IncomingResult:
    """A ``task_result`` whose frames are arriving, and the ack it will get."""

    __slots__ = ("reason", "result", "status", "task_id")

    def __init__(
        self, task_id: str, result: TaskResultMessage | None, status: str | None, reason: str | None
    ) -> None:
        self.task_id = task_id
        self.result = result
        self.status = status
        """None while the verdict waits for the frames."""
        self.reason = reason


class ServerSession(SessionCore):
    """One worker's connection to the server.

    Args:
        now: the time the connection opened, on the clock every later ``now`` uses (Unix
            seconds: it is also the ``timestamp`` of the heartbeats answered).
        server_version: announced in ``connection_established``.
        heartbeat_interval: sent in ``registration_ack``; the worker's heartbeats are due at it.
            Between ``MIN_HEARTBEAT_INTERVAL`` and ``MAX_HEARTBEAT_INTERVAL`` (1 s to 1 h), the
            range a worker honours; anything else is a ``ValueError``.
        liveness_timeout: a worker silent this long is gone (default ``LIVENESS_FACTOR``
            heartbeat intervals).
        register_timeout: how long ``register`` may take to come.
        result_timeout: how long a task's ``task_result`` may take to come.
        byte_budget: the most bytes of tensor frames held while a result arrives.
        assign_worker_id: maps the id a worker proposes to the one the server gives it
            (default: the proposed id, so a worker reconnecting with its id stays one worker).
        required_result_tensors: tensor names a successful result must carry.
        max_tasks_in_flight: tasks assigned and not answered at once.
    """

    def __init__(
        self,
        *,
        now: float,
        server_version: str | None = None,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        liveness_timeout: float | None = None,
        register_timeout: float = DEFAULT_REGISTER_TIMEOUT,
        result_timeout: float = DEFAULT_RESULT_TIMEOUT,
        byte_budget: int = DEFAULT_BATCH_BYTE_BUDGET,
        assign_worker_id: Callable[[str], str] | None = None,
        required_result_tensors: tuple[str, ...] = (),
        max_tasks_in_flight: int = 1,
    ) -> None:
        if not MIN_HEARTBEAT_INTERVAL <= heartbeat_interval <= MAX_HEARTBEAT_INTERVAL:
            raise ValueError(
                f"heartbeat_interval must be between {MIN_HEARTBEAT_INTERVAL} and "
                f"{MAX_HEARTBEAT_INTERVAL} seconds (a worker honours no other), "
                f"got {heartbeat_interval!r}"
            )
        super().__init__(
            now=now,
            byte_budget=byte_budget,
            liveness_timeout=(
                LIVENESS_FACTOR * heartbeat_interval
                if liveness_timeout is None
                else liveness_timeout
            ),
        )
        self._state = SessionState.AWAITING_REGISTER
        self.heartbeat_interval = heartbeat_interval
        self.register_timeout = register_timeout
        self.result_timeout = result_timeout
        self.required_result_tensors = required_result_tensors
        self.max_tasks_in_flight = max_tasks_in_flight
        self._assign_worker_id = assign_worker_id
        self.worker_id: str | None = None
        """The registered worker's id, once it registered."""
        self.capabilities: Mapping[str, Any] = {}
        self._opened = now
        self._deadlines: dict[str, float] = {}
        self._finished: OrderedDict[str, str] = OrderedDict()
        self._incoming: _IncomingResult | None = None
        self._queue(
            ConnectionEstablishedMessage(
                server_version=server_version, protocol_version=PROTOCOL_VERSION
            )
        )

    @property
    def tasks_in_flight(self) -> tuple[str, ...]:
        """Tasks assigned on this connection and not answered yet."""
        return tuple(self._deadlines)

    @property
    def can_assign(self) -> bool:
        """Whether :meth:`send_task` may be called now."""
        registered = self._state in (SessionState.READY, SessionState.AWAITING_TENSOR_FRAMES)
        return registered and len(self._deadlines) < self.max_tasks_in_flight

    # --- sending -----------------------------------------------------------------------------

    def send_task(
        self,
        task_id: str,
        tensors: Mapping[str, NDArray[Any]],
        *,
        now: float,
        round_id: str = "",
        candidate_index: int = 0,
        candidate_data: Mapping[str, Any] | None = None,
        training_params: Mapping[str, Any] | None = None,
    ) -> list[Outgoing]:
        """The messages of a ``task_assign`` and its tensors; its result is due by
        ``now + result_timeout``.

        Raises:
            RuntimeError: not :attr:`can_assign` (not registered, closed, or busy).
            ValueError: ``task_id`` was already used on this connection, or a tensor holds NaN
                or infinities, or the message would exceed ``MAX_JSON_MESSAGE_BYTES``.
            TypeError: a tensor's dtype cannot travel.
        """
        if not self.can_assign:
            raise RuntimeError(f"cannot assign a task in state {self._state.value}")
        if task_id in self._deadlines or task_id in self._finished:
            raise ValueError(f"task_id {task_id!r} was already assigned on this connection")
        arrays = dict(tensors)
        manifest = TensorManifest.from_arrays(arrays)
        problems = check_tensors(manifest, arrays)
        if problems:
            raise ValueError("; ".join(map(str, problems)))
        message = TaskAssignMessage(
            task_id=task_id,
            round_id=round_id,
            candidate_index=candidate_index,
            candidate_data=dict(candidate_data or {}),
            training_params=dict(training_params or {}),
            tensor_manifest=manifest,
        )
        outgoing = encode_batch(message, arrays)
        self._now = max(self._now, now)
        self._deadlines[task_id] = now + self.result_timeout
        return outgoing

    # --- receiving ---------------------------------------------------------------------------

    def _message(self, message: WorkerMessage, now: float) -> list[SessionEvent]:
        if self._state is SessionState.AWAITING_REGISTER:
            if isinstance(message, RegisterMessage):
                return self._register(message)
            reason = f"{message.TYPE.value} before register"
            return self._fail("unexpected_message", reason, CloseCode.EXPECTED_REGISTER)
        if isinstance(message, HeartbeatMessage):
            assert self.worker_id is not None
            self._queue(HeartbeatMessage(worker_id=self.worker_id, timestamp=self._now))
            return [MessageReceived(message)]
        if isinstance(message, TaskResultMessage):
            return self._result(message.task_id, message, message.tensor_manifest, None, now)
        if isinstance(message, ErrorMessage):
            return [MessageReceived(message)]
        return self._violation("unexpected_message", f"{message.TYPE.value} after registration")

    def _register(self, message: RegisterMessage) -> list[SessionEvent]:
        proposed = message.worker_id
        worker_id = proposed if self._assign_worker_id is None else self._assign_worker_id(proposed)
        if WORKER_ID_PATTERN.fullmatch(worker_id) is None:
            raise ValueError(f"assign_worker_id gave {worker_id!r}, not a valid worker_id")
        self.worker_id = worker_id
        self.capabilities = message.capabilities
        self._queue(
            RegistrationAckMessage(worker_id=worker_id, heartbeat_interval=self.heartbeat_interval)
        )
        self._state = SessionState.READY
        return [WorkerRegistered(worker_id, message)]

    def _result(
        self,
        task_id: str,
        result: TaskResultMessage | None,
        manifest: Mapping[str, TensorSpec],
        refusal: str | None,
        now: float,
    ) -> list[SessionEvent]:
        status: str | None = None
        if refusal is not None:
            status = "rejected"
        elif task_id in self._finished:
            status = self._finished[task_id]
            refusal = f"task {task_id!r} already has its outcome"
        elif task_id not in self._deadlines:
            status, refusal = "rejected", f"task {task_id!r} was not assigned to this worker"
        self._incoming = _IncomingResult(task_id, result, status, refusal)
        success = result is not None and result.success
        batch = TensorBatch(
            manifest,
            budget=self.byte_budget,
            keep=status is None,
            required=self.required_result_tensors if success else (),
        )
        return self._start_batch(batch, now)

    def _batch_complete(self, batch: TensorBatch, now: float) -> list[SessionEvent]:
        incoming, self._incoming = self._incoming, None
        assert incoming is not None
        status, reason = incoming.status, incoming.reason
        if status is None:
            if incoming.task_id not in self._deadlines:  # timed out while its frames came
                status, reason = "stale", f"task {incoming.task_id!r} timed out"
            elif batch.finish():
                status, reason = "rejected", batch.reason()
            else:
                status = "accepted"
        return [
            self._acknowledge(
                incoming, status, reason, batch.arrays if status == "accepted" else {}
            )
        ]

    def _acknowledge(
        self,
        incoming: _IncomingResult,
        status: str,
        reason: str | None,
        tensors: Mapping[str, NDArray[Any]],
    ) -> ResultReceived:
        task_id = incoming.task_id
        if self._deadlines.pop(task_id, None) is not None:
            self._remember(task_id, "duplicate")
        reason = None if reason is None else clip(reason)
        self._queue(ResultAckMessage(task_id=task_id, status=status, reason=reason))
        result = incoming.result
        return ResultReceived(task_id, status, reason, result, tensors)

    def _remember(self, task_id: str, status: str) -> None:
        self._finished[task_id] = status
        if len(self._finished) > _REMEMBERED_TASKS:
            self._finished.popitem(last=False)

    def _invalid(self, label: str, reason: str, decoded: object, now: float) -> list[SessionEvent]:
        if self._state is SessionState.AWAITING_REGISTER:
            is_register = isinstance(decoded, dict) and decoded.get("type") == "register"
            code = {
                "malformed_json": CloseCode.INVALID_JSON,
                "invalid_message": (
                    CloseCode.INVALID_MESSAGE if is_register else CloseCode.EXPECTED_REGISTER
                ),
            }.get(label, CloseCode.EXPECTED_REGISTER)
            return self._fail(label, reason, code)
        if isinstance(decoded, dict) and decoded.get("type") == WorkerMessageType.TASK_RESULT:
            return self._invalid_result(decoded, reason, now)
        return self._violation(label, reason)

    def _invalid_result(
        self, decoded: dict[str, Any], reason: str, now: float
    ) -> list[SessionEvent]:
        """A ``task_result`` that did not parse is still answered: ``rejected``."""
        task_id = decoded.get("task_id")
        if not isinstance(task_id, str):
            why = f"a task_result without a string task_id cannot be answered: {reason}"
            return self._fail("unanswerable_result", why, CloseCode.INVALID_MESSAGE)
        manifest = TensorManifest.parse(decoded.get("tensor_manifest", {}), ("tensor_manifest",))
        if isinstance(manifest, list):  # the frames that follow cannot be counted
            incoming = _IncomingResult(task_id, None, "rejected", reason)
            refused = self._acknowledge(incoming, "rejected", reason, {})
            return [refused, *self._fail("invalid_message", reason, CloseCode.INVALID_MESSAGE)]
        return self._result(task_id, None, manifest, f"invalid task_result: {reason}", now)

    def _violation(self, label: str, reason: str) -> list[SessionEvent]:
        violation = ProtocolViolation(label, clip(reason), None)
        self._reply_to_violation(violation)
        return [violation]

    def _stray_frame(self, size: int) -> list[SessionEvent]:
        reason = f"binary frame of {size} bytes outside any task_result"
        if self._state is SessionState.AWAITING_REGISTER:
            return self._fail("unexpected_binary_frame", reason, CloseCode.EXPECTED_REGISTER)
        return self._violation("unexpected_binary_frame", reason)

    def _abandon_batch(self) -> list[SessionEvent]:
        incoming, self._incoming = self._incoming, None
        if incoming is None:
            return []
        reason = "its tensor frames were interrupted"
        return [self._acknowledge(incoming, "rejected", reason, {})]

    def _unfinished(self) -> tuple[str, ...]:
        return tuple(self._deadlines)

    def _reply_to_violation(self, violation: ProtocolViolation) -> None:
        self._queue(
            ErrorMessage(error=violation.label, details=violation.reason, timestamp=self._now)
        )

    def _timers(self, now: float) -> list[SessionEvent]:
        if self._state is SessionState.AWAITING_REGISTER:
            if now - self._opened > self.register_timeout:
                reason = f"no register within {self.register_timeout:g} s"
                return self._fail("register_timeout", reason, CloseCode.EXPECTED_REGISTER)
            return []
        expired = [task_id for task_id, deadline in self._deadlines.items() if now >= deadline]
        for task_id in expired:
            del self._deadlines[task_id]
            self._remember(task_id, "stale")
        return [ResultTimedOut(task_id) for task_id in expired]
