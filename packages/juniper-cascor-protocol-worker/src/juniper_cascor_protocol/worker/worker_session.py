"""The worker's end of ``/ws/v1/workers`` as a sans-I/O state machine.

Feed it every received WebSocket message with :meth:`WorkerSession.receive` and the time with
:meth:`~WorkerSession.tick`; write what :meth:`~WorkerSession.data_to_send` and the ``send_*``
methods return, each list whole and in order; close the WebSocket with ``close_code`` once it
is set. The session sends ``register`` itself when the server greets it with a protocol
version it supports, and answers every task it cannot use with a failed ``task_result``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from typing import Any, Final

from numpy.typing import NDArray

from juniper_cascor_protocol.worker._bounded_text import clip
from juniper_cascor_protocol.worker._session_core import (
    Outgoing,
    SessionCore,
    encode_batch,
    encode_message,
)
from juniper_cascor_protocol.worker.close_codes import CloseCode
from juniper_cascor_protocol.worker.manifest import TensorManifest, check_tensors
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
    TokenRefreshMessage,
    WorkerMessage,
)
from juniper_cascor_protocol.worker.protocol_version import (
    SUPPORTED_PROTOCOL_VERSIONS,
    is_compatible,
)
from juniper_cascor_protocol.worker.session_events import (
    ConnectionEstablished,
    HeartbeatDue,
    IncompatibleVersion,
    MessageReceived,
    ProtocolViolation,
    Registered,
    ResultAcknowledged,
    SessionEvent,
    SessionState,
    TaskReceived,
    TaskRefused,
)
from juniper_cascor_protocol.worker.session_limits import (
    DEFAULT_BATCH_BYTE_BUDGET,
    DEFAULT_HEARTBEAT_INTERVAL,
    LIVENESS_FACTOR,
    MAX_HEARTBEAT_INTERVAL,
    MIN_HEARTBEAT_INTERVAL,
)
from juniper_cascor_protocol.worker.tensor_batch import TensorBatch
from juniper_cascor_protocol.worker.tensor_names import CANDIDATE_UUID_KEY, REQUIRED_TASK_TENSORS

__all__ = ["WorkerSession"]

_PASSIVE = (HeartbeatMessage, TokenRefreshMessage, ErrorMessage)
_AWAITED_ACKS: Final = 1024
"""Results awaiting their ``result_ack`` that a session remembers (a server that never acks
cannot make it grow without bound)."""


def _failed_result(
    task_id: str, candidate_id: int, error: str, candidate_uuid: str | None = None
) -> TaskResultMessage:
    """The ``task_result`` reporting that a task failed: ``success=false``, no tensors."""
    return TaskResultMessage(
        task_id=task_id,
        candidate_id=candidate_id,
        candidate_uuid=candidate_uuid,
        correlation=0.0,
        success=False,
        epochs_completed=0,
        error_message=clip(error, 2000),
    )


def _candidate_uuid(candidate_data: Mapping[str, Any]) -> str | None:
    value = candidate_data.get(CANDIDATE_UUID_KEY)
    return value if isinstance(value, str) else None


class WorkerSession(SessionCore):
    """One connection of a worker to ``/ws/v1/workers``.

    Args:
        worker_id: the id proposed in ``register`` (see ``WORKER_ID_PATTERN``); the server may
            answer with another, which :attr:`worker_id` then holds.
        now: the time the connection opened, on the clock every later ``now`` uses (Unix
            seconds: it is also the ``timestamp`` of the heartbeats sent).
        capabilities: sent in ``register``.
        supported_versions: protocol versions this worker speaks.
        heartbeat_interval: used until ``registration_ack`` sets one; the server is considered
            gone after ``LIVENESS_FACTOR`` intervals without a message.
        byte_budget: the most bytes of tensor frames held while a task arrives.
        required_tensors: tensor names a task must carry (else it fails at once).
        max_tasks_in_flight: tasks held unanswered at once; one more is answered as failed.

    Raises:
        ValueError: ``worker_id`` does not match ``WORKER_ID_PATTERN``.
    """

    def __init__(
        self,
        worker_id: str,
        *,
        now: float,
        capabilities: Mapping[str, Any] | None = None,
        supported_versions: Collection[str] = SUPPORTED_PROTOCOL_VERSIONS,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        byte_budget: int = DEFAULT_BATCH_BYTE_BUDGET,
        required_tensors: tuple[str, ...] = REQUIRED_TASK_TENSORS,
        max_tasks_in_flight: int = 1,
    ) -> None:
        if WORKER_ID_PATTERN.fullmatch(worker_id) is None:
            raise ValueError(f"worker_id {worker_id!r} does not match {WORKER_ID_PATTERN.pattern}")
        super().__init__(
            now=now,
            byte_budget=byte_budget,
            liveness_timeout=LIVENESS_FACTOR * heartbeat_interval,
        )
        self._state = SessionState.AWAITING_CONNECTION_ESTABLISHED
        self.worker_id: str = worker_id
        self.capabilities: dict[str, Any] = dict(capabilities or {})
        self.supported_versions: tuple[str, ...] = tuple(supported_versions)
        self.heartbeat_interval: float = heartbeat_interval
        self.required_tensors = required_tensors
        self.max_tasks_in_flight = max_tasks_in_flight
        self.protocol_version: str | None = None
        """The version the server announced (None: it announced none, read as compatible)."""
        self.token: str | None = None
        """The latest ``token_refresh`` token: send it as ``X-API-Key`` when reconnecting."""
        self._tasks: dict[str, TaskAssignMessage] = {}
        self._awaiting_ack: dict[str, None] = {}
        self._receiving: TaskAssignMessage | None = None
        self._refusal: str | None = None
        self._next_heartbeat = float("inf")
        self._heartbeat_reported = False

    @property
    def tasks(self) -> Mapping[str, TaskAssignMessage]:
        """Tasks received and not answered yet, by ``task_id``."""
        return dict(self._tasks)

    # --- sending -----------------------------------------------------------------------------

    def send_result(
        self, result: TaskResultMessage, tensors: Mapping[str, NDArray[Any]] | None = None
    ) -> list[Outgoing]:
        """The messages of ``result`` and its tensors (the manifest is built from ``tensors``).

        Raises:
            RuntimeError: the session is closed or ``result.task_id`` is not a task it holds.
            ValueError: a tensor holds NaN or infinities, or cannot travel in a frame.
            TypeError: a tensor's dtype cannot travel.
        """
        arrays = dict(tensors or {})
        self._check_open()
        if result.task_id not in self._tasks:
            raise RuntimeError(f"no task {result.task_id!r} awaits a result in this session")
        manifest = TensorManifest.from_arrays(arrays)
        problems = check_tensors(manifest, arrays)
        if problems:
            raise ValueError("; ".join(map(str, problems)))
        message = dataclasses.replace(result, tensor_manifest=manifest).with_extra(result.extra)
        outgoing = encode_batch(message, arrays)
        del self._tasks[result.task_id]
        self._await_ack(result.task_id)
        return outgoing

    def send_failure(self, task_id: str, error: str) -> list[Outgoing]:
        """The ``task_result`` saying that task ``task_id`` failed with ``error``.

        Raises:
            RuntimeError: the session is closed or holds no task ``task_id``.
        """
        self._check_open()
        task = self._tasks.get(task_id)
        if task is None:
            raise RuntimeError(f"no task {task_id!r} awaits a result in this session")
        uuid = _candidate_uuid(task.candidate_data)
        return self.send_result(_failed_result(task_id, task.candidate_index, error, uuid))

    def send_heartbeat(self, now: float) -> list[Outgoing]:
        """The heartbeat to write now; the next is due ``heartbeat_interval`` later.

        Raises:
            RuntimeError: the session is not registered or is closed.
        """
        self._check_open()
        if self._state in (
            SessionState.AWAITING_CONNECTION_ESTABLISHED,
            SessionState.AWAITING_REGISTRATION_ACK,
        ):
            raise RuntimeError("heartbeats start after registration_ack")
        self._now = max(self._now, now)
        self._next_heartbeat = now + self.heartbeat_interval
        self._heartbeat_reported = False
        return [encode_message(HeartbeatMessage(worker_id=self.worker_id, timestamp=now))]

    def _check_open(self) -> None:
        if self._state is SessionState.CLOSED:
            raise RuntimeError("the session is closed")

    # --- receiving ---------------------------------------------------------------------------

    def _message(self, message: WorkerMessage, now: float) -> list[SessionEvent]:
        state = self._state
        if state is SessionState.AWAITING_CONNECTION_ESTABLISHED:
            if isinstance(message, ConnectionEstablishedMessage):
                return self._established(message)
            return self._unexpected(message, "before connection_established", fatal=True)
        if state is SessionState.AWAITING_REGISTRATION_ACK:
            if isinstance(message, RegistrationAckMessage):
                return self._registered(message, now)
            if isinstance(message, _PASSIVE):
                return [MessageReceived(message)]
            return self._unexpected(message, "before registration_ack", fatal=True)
        if isinstance(message, TaskAssignMessage):
            return self._task(message, None, now)
        if isinstance(message, ResultAckMessage):
            if message.task_id in self._awaiting_ack:
                del self._awaiting_ack[message.task_id]
                return [ResultAcknowledged(message)]
            reason = f"result_ack for task {message.task_id!r}, which awaits no ack"
            return [ProtocolViolation("unexpected_message", clip(reason), None)]
        if isinstance(message, TokenRefreshMessage):
            self.token = message.token
        if isinstance(message, _PASSIVE):
            return [MessageReceived(message)]
        return self._unexpected(message, "after registration", fatal=False)

    def _unexpected(self, message: WorkerMessage, when: str, *, fatal: bool) -> list[SessionEvent]:
        reason = f"{message.TYPE.value} {when}"
        if fatal:
            return self._fail("unexpected_message", reason, CloseCode.INVALID_MESSAGE)
        return [ProtocolViolation("unexpected_message", reason, None)]

    def _established(self, message: ConnectionEstablishedMessage) -> list[SessionEvent]:
        version = message.protocol_version
        self.protocol_version = version
        if version is not None and not is_compatible(version, self.supported_versions):
            ours = ", ".join(self.supported_versions)
            reason = clip(f"server speaks protocol {version}, this worker {ours}", 120)
            incompatible = IncompatibleVersion(
                clip(version, 60), self.supported_versions, message.server_version
            )
            return [incompatible, *self.close(CloseCode.UNSUPPORTED_VERSION, reason)]
        self._queue(RegisterMessage(worker_id=self.worker_id, capabilities=self.capabilities))
        self._state = SessionState.AWAITING_REGISTRATION_ACK
        return [ConnectionEstablished(message, version)]

    def _registered(self, message: RegistrationAckMessage, now: float) -> list[SessionEvent]:
        if message.worker_id is not None:
            self.worker_id = message.worker_id
        if message.heartbeat_interval is not None:
            announced = message.heartbeat_interval
            interval = min(max(announced, MIN_HEARTBEAT_INTERVAL), MAX_HEARTBEAT_INTERVAL)
            self.heartbeat_interval = interval
            # Annotated: to pyright, a bare assignment here would declare a new attribute.
            self.liveness_timeout: float = LIVENESS_FACTOR * interval
        self._state = SessionState.READY
        self._next_heartbeat = now + self.heartbeat_interval
        return [Registered(self.worker_id, self.heartbeat_interval, message)]

    def _task(self, task: TaskAssignMessage, refusal: str | None, now: float) -> list[SessionEvent]:
        if task.task_id in self._tasks or task.task_id in self._awaiting_ack:
            # Its result is (or will be) the one of the first copy: skip this one's frames.
            skip = TensorBatch(task.tensor_manifest, budget=self.byte_budget, keep=False)
            reason = f"task_assign for task {task.task_id!r}, which this worker already has"
            return [
                ProtocolViolation("unexpected_message", clip(reason), None),
                *self._start_batch(skip, now),
            ]
        if refusal is None and len(self._tasks) >= self.max_tasks_in_flight:
            refusal = f"worker busy: already holds {len(self._tasks)} task(s)"
        self._receiving, self._refusal = task, refusal
        batch = TensorBatch(
            task.tensor_manifest,
            budget=self.byte_budget,
            keep=refusal is None,
            required=self.required_tensors,
        )
        return self._start_batch(batch, now)

    def _batch_complete(self, batch: TensorBatch, now: float) -> list[SessionEvent]:
        task, refusal = self._receiving, self._refusal
        self._receiving = self._refusal = None
        if task is None:  # the frames of a repeated task, skipped
            return []
        problems = [refusal] if refusal is not None else batch.finish()
        if problems:
            return self._refuse(task, batch.reason() if refusal is None else refusal)
        self._tasks[task.task_id] = task
        return [TaskReceived(task, batch.arrays)]

    def _refuse(self, task: TaskAssignMessage, reason: str) -> list[SessionEvent]:
        uuid = _candidate_uuid(task.candidate_data)
        self._queue(_failed_result(task.task_id, task.candidate_index, reason, uuid))
        self._await_ack(task.task_id)
        return [TaskRefused(task.task_id, clip(reason))]

    def _await_ack(self, task_id: str) -> None:
        """Remember a result sent; the oldest are forgotten past ``_AWAITED_ACKS``."""
        self._awaiting_ack[task_id] = None
        if len(self._awaiting_ack) > _AWAITED_ACKS:
            del self._awaiting_ack[next(iter(self._awaiting_ack))]

    def _invalid(self, label: str, reason: str, decoded: object, now: float) -> list[SessionEvent]:
        if self._state is not SessionState.READY:
            code = (
                CloseCode.INVALID_JSON if label == "malformed_json" else CloseCode.INVALID_MESSAGE
            )
            return self._fail(label, reason, code)
        if isinstance(decoded, dict) and decoded.get("type") == WorkerMessageType.TASK_ASSIGN:
            return self._invalid_task(decoded, reason, now)
        return [ProtocolViolation(label, reason, None)]

    def _invalid_task(self, decoded: dict[str, Any], reason: str, now: float) -> list[SessionEvent]:
        """A ``task_assign`` that did not parse still gets its failed ``task_result``."""
        task_id = decoded.get("task_id")
        index = decoded.get("candidate_index")
        manifest = TensorManifest.parse(decoded.get("tensor_manifest", {}), ("tensor_manifest",))
        if not isinstance(task_id, str):
            return self._fail("invalid_message", reason, CloseCode.INVALID_MESSAGE)
        stand_in = TaskAssignMessage(
            task_id=task_id,
            round_id="",
            candidate_index=index if isinstance(index, int) and not isinstance(index, bool) else 0,
            candidate_data={},
            training_params={},
            tensor_manifest=manifest if isinstance(manifest, dict) else {},
        )
        if isinstance(manifest, list):  # the frames that follow cannot be counted
            return self._refuse(stand_in, reason) + self._fail(
                "invalid_message", reason, CloseCode.INVALID_MESSAGE
            )
        return self._task(stand_in, f"invalid task_assign: {reason}", now)

    def _stray_frame(self, size: int) -> list[SessionEvent]:
        reason = f"binary frame of {size} bytes outside any task"
        if self._state is not SessionState.READY:
            return self._fail("unexpected_binary_frame", reason, CloseCode.INVALID_MESSAGE)
        return [ProtocolViolation("unexpected_binary_frame", reason, None)]

    def _abandon_batch(self) -> list[SessionEvent]:
        task, self._receiving, self._refusal = self._receiving, None, None
        if task is None:
            return []
        return self._refuse(task, "its tensor frames were interrupted")

    def _unfinished(self) -> tuple[str, ...]:
        receiving = () if self._receiving is None else (self._receiving.task_id,)
        return (*self._tasks, *self._awaiting_ack, *receiving)

    def _reply_to_violation(self, violation: ProtocolViolation) -> None:
        """A worker does not answer violations: juniper-cascor would answer its ``error``."""

    def _timers(self, now: float) -> list[SessionEvent]:
        if now >= self._next_heartbeat and not self._heartbeat_reported:
            self._heartbeat_reported = True
            return [HeartbeatDue()]
        return []
