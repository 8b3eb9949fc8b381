"""The server side of ``/ws/v1/workers``: a ``ServerSession`` per worker and one task queue.

Each connection's ``ServerSession`` runs the conversation (``connection_established``,
``register`` first, heartbeats, ``task_assign`` and its tensor frames, one ``result_ack`` for
every ``task_result``, timeouts and close codes). The hub only decides which task goes to which
worker, from the session's events: a task goes to the next worker that can take one; a task
whose worker leaves before its result, or whose result does not come in time, goes back to the
queue, up to :data:`MAX_ATTEMPTS` assignments. A worker that let a task time out gets no other
task on that connection (its late result is still answered, ``stale``).

Memory is bounded by design, however many workers connect: tasks are assigned only while the
tensor bytes of the tasks out with workers stay within ``max_bytes_in_flight`` (one task at a
time when a single task is larger), so the encoded frames, the socket buffers and the workers'
copies exist for a bounded number of tasks at once; the others wait in the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from websockets.asyncio.server import ServerConnection

from juniper_cascor_protocol.demo.options import SERVER_VERSION
from juniper_cascor_protocol.demo.worker_wire import SessionSocket, TensorTraffic
from juniper_cascor_protocol.worker.close_codes import CloseCode
from juniper_cascor_protocol.worker.messages import HeartbeatMessage, TaskResultMessage
from juniper_cascor_protocol.worker.server_session import ServerSession
from juniper_cascor_protocol.worker.session_events import (
    Closed,
    MessageReceived,
    ResultReceived,
    ResultTimedOut,
    SessionEvent,
    SessionState,
    Violation,
    WorkerRegistered,
)
from juniper_cascor_protocol.worker.session_limits import (
    DEFAULT_BATCH_BYTE_BUDGET,
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_REGISTER_TIMEOUT,
    DEFAULT_RESULT_TIMEOUT,
)
from juniper_cascor_protocol.worker.tensor_names import CANDIDATE_UUID_KEY, RESULT_TENSORS

__all__ = [
    "CRC32_KEY",
    "DEFAULT_MAX_BYTES_IN_FLIGHT",
    "MAX_ATTEMPTS",
    "TaskOutcome",
    "WorkerHub",
    "WorkerTask",
    "crc32",
]

CRC32_KEY: Final = "crc32"
"""``candidate_data[CRC32_KEY]``: ``{tensor name: CRC-32 of its raw data}``, the demo's own
end-to-end check that tensors arrive bit-exact (a worker that does not know it ignores it)."""
MAX_ATTEMPTS: Final = 3
"""How many times a task is assigned before its worker leaving (or timing out) is its outcome."""
DEFAULT_MAX_BYTES_IN_FLIGHT: Final = 128 * 2**20
"""Tensor bytes of the tasks assigned and not yet answered, over all workers (see the module)."""


def crc32(array: NDArray[Any]) -> int:
    """CRC-32 of ``array``'s raw data in C order: what its binary frame carries after the header."""
    return zlib.crc32(np.ascontiguousarray(array).data.cast("B")) if array.size else 0


@dataclass(frozen=True, slots=True)
class WorkerTask:
    """One ``task_assign`` and its tensors, in the order their frames are sent."""

    task_id: str
    tensors: dict[str, NDArray[Any]]
    round_id: str = "round-0"
    candidate_index: int = 0
    candidate_data: dict[str, Any] = field(default_factory=dict)
    training_params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        task_id: str,
        tensors: Mapping[str, NDArray[Any]],
        *,
        checksums: Mapping[str, int] | None = None,
        **kwargs: Any,
    ) -> WorkerTask:
        """A task whose ``candidate_data`` carries a fresh ``candidate_uuid`` and each tensor's
        CRC-32 (see :data:`CRC32_KEY`): ``checksums`` when given (tasks sharing their tensors
        compute them once), else computed here."""
        if checksums is None:
            checksums = {name: crc32(array) for name, array in tensors.items()}
        data = {
            CANDIDATE_UUID_KEY: str(uuid.uuid4()),
            **kwargs.pop("candidate_data", {}),
            CRC32_KEY: dict(checksums),
        }
        return cls(task_id, dict(tensors), candidate_data=data, **kwargs)

    @property
    def nbytes(self) -> int:
        """The bytes of the task's tensors."""
        return sum(array.nbytes for array in self.tensors.values())


@dataclass(slots=True)
class TaskOutcome:
    """What came back for one task. ``problems`` is empty when it was accepted."""

    task_id: str
    worker_id: str = ""
    result: TaskResultMessage | None = None
    tensors: Mapping[str, NDArray[Any]] = field(default_factory=dict)
    """The result's tensors, read-only views of the frames as received."""
    problems: list[str] = field(default_factory=list)
    ack_status: str = ""
    """The ``result_ack`` status the server's session sent (empty: no result came)."""
    attempts: int = 0

    @property
    def accepted(self) -> bool:
        return self.ack_status == "accepted"


@dataclass(slots=True)
class _Queued:
    task: WorkerTask
    future: asyncio.Future[TaskOutcome]
    attempts: int = 0


@dataclass(slots=True, eq=False)
class _Worker:
    socket: SessionSocket[ServerSession]
    assigned: dict[str, _Queued] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the session may have become able to take a task, or ended."""
    timed_out: bool = False


class WorkerHub:
    """Queues tasks and binds one ``ServerSession`` to each worker connection.

    The keyword arguments are the sessions' (see ``ServerSession``); every successful result
    must carry the protocol's ``RESULT_TENSORS``.
    """

    def __init__(
        self,
        *,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        register_timeout: float = DEFAULT_REGISTER_TIMEOUT,
        result_timeout: float = DEFAULT_RESULT_TIMEOUT,
        byte_budget: int = DEFAULT_BATCH_BYTE_BUDGET,
        max_attempts: int = MAX_ATTEMPTS,
        max_bytes_in_flight: int = DEFAULT_MAX_BYTES_IN_FLIGHT,
    ) -> None:
        if max_bytes_in_flight < 1:
            raise ValueError(f"max_bytes_in_flight must be at least 1, got {max_bytes_in_flight}")
        self.heartbeat_interval = heartbeat_interval
        self.register_timeout = register_timeout
        self.result_timeout = result_timeout
        self.byte_budget = byte_budget
        self.max_attempts = max_attempts
        self.max_bytes_in_flight = max_bytes_in_flight
        self.bytes_in_flight: int = 0
        """Tensor bytes of the tasks out with workers now."""
        self.peak_bytes_in_flight: int = 0
        self._budget_freed = asyncio.Event()
        self._queue: asyncio.Queue[_Queued] = asyncio.Queue()
        self._live: set[_Worker] = set()
        self._closing = False
        self.registered: list[str] = []
        self.heartbeats_received: int = 0
        self.traffic: TensorTraffic = TensorTraffic()
        self.violations: Counter[str] = Counter()
        """What workers got wrong, by the sessions' ``Violation.label``."""
        self.closes: Counter[int | None] = Counter()
        """Sessions ended, by close code (None: the worker dropped without a close frame)."""

    def submit(self, task: WorkerTask) -> asyncio.Future[TaskOutcome]:
        """Queue ``task`` for the next free worker; the future resolves with its outcome."""
        queued = _Queued(task, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(queued)
        return queued.future

    async def close(self) -> None:
        """Fail the tasks still queued and end every session with ``NO_MORE_WORK`` (4010)."""
        self._closing = True
        while not self._queue.empty():
            _fail_unassigned(self._queue.get_nowait())
        for worker in list(self._live):
            events = await worker.socket.close(CloseCode.NO_MORE_WORK, "no more work")
            self._handle(worker, events)

    async def serve(self, connection: ServerConnection) -> None:
        """Run one worker's session until it ends."""
        session = ServerSession(
            now=time.time(),
            server_version=SERVER_VERSION,
            heartbeat_interval=self.heartbeat_interval,
            register_timeout=self.register_timeout,
            result_timeout=self.result_timeout,
            byte_budget=self.byte_budget,
            required_result_tensors=RESULT_TENSORS,
        )
        worker = _Worker(SessionSocket(connection, session, self.traffic))
        self._live.add(worker)
        feeder = asyncio.create_task(self._feed(worker))
        try:
            await worker.socket.write(session.data_to_send())  # connection_established
            if self._closing:
                self._handle(worker, await worker.socket.close(CloseCode.NO_MORE_WORK, ""))

            async def handle(events: list[SessionEvent]) -> None:
                self._handle(worker, events)

            await worker.socket.pump(handle)
        finally:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder
            self._live.discard(worker)
            for task_id in list(worker.assigned):
                self._retry(self._unassign(worker, task_id), "the connection ended")

    async def _feed(self, worker: _Worker) -> None:
        """Give this worker the next queued task whenever its session can take one."""
        session = worker.socket.session
        while True:
            while not session.can_assign and session.state is not SessionState.CLOSED:
                await worker.wake.wait()
                worker.wake.clear()
            if session.state is SessionState.CLOSED or worker.timed_out:
                return
            queued = await self._queue.get()
            try:
                await self._admit(queued.task.nbytes)
            except asyncio.CancelledError:  # the connection ended while the task waited
                if self._closing:
                    _fail_unassigned(queued)
                else:
                    self._queue.put_nowait(queued)
                raise
            if not session.can_assign or worker.timed_out:  # it changed while we waited
                self._release(queued.task.nbytes)
                self._queue.put_nowait(queued)
                continue
            task = queued.task
            queued.attempts += 1
            try:
                messages = session.send_task(
                    task.task_id,
                    task.tensors,
                    now=time.time(),
                    round_id=task.round_id,
                    candidate_index=task.candidate_index,
                    candidate_data=task.candidate_data,
                    training_params=task.training_params,
                )
            except (ValueError, TypeError) as error:
                self._release(task.nbytes)
                _settle(queued, TaskOutcome(task.task_id, problems=[f"not assigned: {error}"]))
                continue
            worker.assigned[task.task_id] = queued
            await worker.socket.write(messages)

    def _handle(self, worker: _Worker, events: list[SessionEvent]) -> None:
        session = worker.socket.session
        for event in events:
            if isinstance(event, WorkerRegistered):
                self.registered.append(event.worker_id)
            elif isinstance(event, MessageReceived):
                if isinstance(event.message, HeartbeatMessage):
                    self.heartbeats_received += 1
            elif isinstance(event, ResultReceived):
                queued = self._unassign(worker, event.task_id)
                if queued is not None:  # else a duplicate or stale result: already decided
                    outcome = TaskOutcome(
                        event.task_id,
                        worker_id=session.worker_id or "",
                        result=event.result,
                        tensors=event.tensors,
                        problems=[] if event.accepted else [event.reason or event.status],
                        ack_status=event.status,
                        attempts=queued.attempts,
                    )
                    _settle(queued, outcome)
            elif isinstance(event, ResultTimedOut):
                worker.timed_out = True
                why = f"no task_result within {self.result_timeout:g} s"
                self._retry(self._unassign(worker, event.task_id), why)
            elif isinstance(event, Violation):
                self.violations[event.label] += 1
            elif isinstance(event, Closed):
                self.closes[event.code] += 1
                for task_id in event.unfinished_tasks:
                    self._retry(self._unassign(worker, task_id), "the worker left")
        worker.wake.set()

    async def _admit(self, nbytes: int) -> None:
        """Wait until ``nbytes`` more fit the budget (always when nothing is out); take them."""
        while self.bytes_in_flight and self.bytes_in_flight + nbytes > self.max_bytes_in_flight:
            self._budget_freed.clear()
            await self._budget_freed.wait()
        self.bytes_in_flight += nbytes
        self.peak_bytes_in_flight = max(self.peak_bytes_in_flight, self.bytes_in_flight)

    def _release(self, nbytes: int) -> None:
        self.bytes_in_flight -= nbytes
        self._budget_freed.set()

    def _unassign(self, worker: _Worker, task_id: str) -> _Queued | None:
        """Take ``task_id`` back from ``worker``, returning its bytes to the budget."""
        queued = worker.assigned.pop(task_id, None)
        if queued is not None:
            self._release(queued.task.nbytes)
        return queued

    def _retry(self, queued: _Queued | None, why: str) -> None:
        """Queue a task again after ``why``, or make ``why`` its outcome after the last try."""
        if queued is None or queued.future.done():
            return
        if queued.attempts < self.max_attempts and not self._closing:
            self._queue.put_nowait(queued)
            return
        problem = f"{why} (attempt {queued.attempts} of {self.max_attempts})"
        _settle(
            queued, TaskOutcome(queued.task.task_id, problems=[problem], attempts=queued.attempts)
        )


def _fail_unassigned(queued: _Queued) -> None:
    if not queued.future.done():
        queued.future.set_exception(ConnectionError("server closed before the task was assigned"))


def _settle(queued: _Queued, outcome: TaskOutcome) -> None:
    if not queued.future.done():
        queued.future.set_result(outcome)
