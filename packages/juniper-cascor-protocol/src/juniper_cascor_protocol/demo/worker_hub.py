"""The server side of ``/ws/v1/workers``: register workers and hand them tasks with tensors.

Session, per connection (SPEC §3): the server sends ``connection_established``; the worker must
answer ``register`` (anything else: ``error`` and close with 1008); the server sends
``registration_ack``. Then, while tasks are queued, the session sends ``task_assign`` and its
tensor frames, waits for the matching ``task_result`` and its frames, checks them, and answers
``result_ack`` with status ``accepted`` — or ``rejected`` (with a ``reason``) when a frame was
malformed or the tensors disagree with the worker's manifest. Heartbeats are answered at any
time. Every message the worker gets wrong is answered with an ``error`` message and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from numpy.typing import NDArray
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from juniper_cascor_protocol.demo.worker_wire import (
    Problem,
    TensorBatch,
    crc32,
    error_message,
    read_message,
    receive_tensors,
    send_message,
    send_with_tensors,
)
from juniper_cascor_protocol.worker.binary_frame import MAX_FRAME_BYTES
from juniper_cascor_protocol.worker.manifest import TensorManifest, TensorSpec
from juniper_cascor_protocol.worker.messages import (
    ConnectionEstablishedMessage,
    HeartbeatMessage,
    RegisterMessage,
    RegistrationAckMessage,
    ResultAckMessage,
    TaskAssignMessage,
    TaskResultMessage,
)

__all__ = ["CRC32_KEY", "MAX_ATTEMPTS", "TaskOutcome", "WorkerHub", "WorkerTask"]

CRC32_KEY: Final = "crc32"
"""``candidate_data[CRC32_KEY]``: ``{tensor name: CRC-32 of its raw data}``, for the worker."""
MAX_ATTEMPTS: Final = 3
"""How many times a task is assigned before a worker leaving mid-task becomes its outcome."""
_REGISTER_TIMEOUT_S: Final = 10.0
_POLICY_VIOLATION: Final = 1008


@dataclass(frozen=True, slots=True)
class WorkerTask:
    """One ``task_assign`` and its tensors, in the order their frames are sent.

    ``manifest`` is what ``task_assign`` announces; by default it describes ``tensors``. Giving
    one that does not (a test of the worker's checks) sends the tensors as they are.
    """

    task_id: str
    tensors: dict[str, NDArray[Any]]
    round_id: str = "round-0"
    candidate_index: int = 0
    candidate_data: dict[str, Any] = field(default_factory=dict)
    training_params: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, TensorSpec] | None = None

    @classmethod
    def create(cls, task_id: str, tensors: Mapping[str, NDArray[Any]], **kwargs: Any) -> WorkerTask:
        """A task whose ``candidate_data`` carries each tensor's CRC-32 (see :data:`CRC32_KEY`)."""
        checksums = {name: crc32(array) for name, array in tensors.items()}
        data = {**kwargs.pop("candidate_data", {}), CRC32_KEY: checksums}
        return cls(task_id, dict(tensors), candidate_data=data, **kwargs)

    def assign_message(self) -> TaskAssignMessage:
        manifest = self.manifest
        if manifest is None:
            manifest = TensorManifest.from_arrays(self.tensors)
        return TaskAssignMessage(
            task_id=self.task_id,
            round_id=self.round_id,
            candidate_index=self.candidate_index,
            candidate_data=self.candidate_data,
            training_params=self.training_params,
            tensor_manifest=manifest,
        )


@dataclass(slots=True)
class TaskOutcome:
    """What came back for one task. ``problems`` is empty when it was accepted."""

    task_id: str
    worker_id: str = ""
    result: TaskResultMessage | None = None
    tensors: dict[str, NDArray[Any]] = field(default_factory=dict)
    frames: list[bytes] = field(default_factory=list)
    """The result's binary frames exactly as received."""
    problems: list[str] = field(default_factory=list)
    ack_status: str = ""

    @property
    def accepted(self) -> bool:
        return self.ack_status == "accepted"


@dataclass(slots=True)
class _Queued:
    task: WorkerTask
    future: asyncio.Future[TaskOutcome]
    attempts: int = 0


class WorkerHub:
    """Queues tasks and runs one session per worker connection.

    Args:
        max_frame_bytes: the largest result tensor frame accepted from a worker.
    """

    def __init__(self, *, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._queue: asyncio.Queue[_Queued] = asyncio.Queue()
        self._closing = asyncio.Event()
        self.registered: list[str] = []
        self.heartbeats_received = 0
        self.tensors_sent = 0
        self.tensor_bytes_sent = 0
        self.tensors_received = 0
        self.tensor_bytes_received = 0
        self.problems: Counter[str] = Counter()
        """Messages and frames workers got wrong, by :class:`Problem` label."""

    def submit(self, task: WorkerTask) -> asyncio.Future[TaskOutcome]:
        """Queue ``task`` for the next free worker; the future resolves when it is acknowledged.

        A task whose worker leaves before answering is queued again for another worker, up to
        :data:`MAX_ATTEMPTS` assignments in all; after that its outcome carries the problem. A
        task still queued when the hub closes fails with ``ConnectionError``.
        """
        future: asyncio.Future[TaskOutcome] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Queued(task, future))
        return future

    def close(self) -> None:
        """End every session after its current task, and fail the tasks still queued."""
        self._closing.set()
        while not self._queue.empty():
            future = self._queue.get_nowait().future
            if not future.done():
                future.set_exception(ConnectionError("server closed before the task was assigned"))

    async def serve(self, connection: ServerConnection) -> None:
        """Run one worker session until the worker leaves or the hub closes."""
        await _Session(self, connection).run()

    def count(self, problem: Problem) -> None:
        self.problems[problem.label] += 1


class _Session:
    def __init__(self, hub: WorkerHub, connection: ServerConnection) -> None:
        self.hub = hub
        self.connection = connection
        self.worker_id = ""
        self.send_lock = asyncio.Lock()
        self.results: asyncio.Queue[tuple[TaskResultMessage, TensorBatch]] = asyncio.Queue()

    async def run(self) -> None:
        await send_message(self.connection, ConnectionEstablishedMessage(server_version="demo"))
        if not await self._register():
            return
        reader = asyncio.create_task(self._read())
        try:
            while (queued := await self._next_task(reader)) is not None:
                queued.attempts += 1
                outcome = await self._run_task(queued.task, reader)
                if reader.done() and outcome.result is None and queued.attempts < MAX_ATTEMPTS:
                    self.hub._queue.put_nowait(queued)  # the worker left: let another take it
                elif not queued.future.done():
                    queued.future.set_result(outcome)
                if reader.done():
                    break
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await reader
            await self.connection.close()

    async def _register(self) -> bool:
        try:
            raw = await asyncio.wait_for(self.connection.recv(), _REGISTER_TIMEOUT_S)
        except (TimeoutError, ConnectionClosed):
            return False
        message = read_message(raw)
        if not isinstance(message, RegisterMessage):
            problem = (
                message
                if isinstance(message, Problem)
                else Problem("expected_register", f"got {message.TYPE.value} before register")
            )
            self.hub.count(problem)
            with contextlib.suppress(ConnectionClosed):
                await send_message(self.connection, error_message(problem))
                await self.connection.close(_POLICY_VIOLATION, problem.label)
            return False
        self.worker_id = message.worker_id
        self.hub.registered.append(message.worker_id)
        ack = RegistrationAckMessage(worker_id=message.worker_id)
        await send_message(self.connection, ack)
        return True

    async def _next_task(self, reader: asyncio.Task[None]) -> _Queued | None:
        if self.hub._closing.is_set():
            return None
        getter = asyncio.ensure_future(self.hub._queue.get())
        closing = asyncio.ensure_future(self.hub._closing.wait())
        await asyncio.wait({getter, closing, reader}, return_when=asyncio.FIRST_COMPLETED)
        closing.cancel()
        if getter.done():
            return getter.result()
        getter.cancel()
        return None

    async def _run_task(self, task: WorkerTask, reader: asyncio.Task[None]) -> TaskOutcome:
        hub = self.hub
        outcome = TaskOutcome(task.task_id, worker_id=self.worker_id)
        try:
            async with self.send_lock:
                sent = await send_with_tensors(self.connection, task.assign_message(), task.tensors)
        except ConnectionClosed:
            outcome.problems.append("worker disconnected before the task was sent")
            return outcome
        hub.tensors_sent += len(task.tensors)
        hub.tensor_bytes_sent += sent
        getter = asyncio.ensure_future(self.results.get())
        await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
        if not getter.done():
            getter.cancel()
            outcome.problems.append("worker disconnected before its task_result")
            return outcome
        result, batch = getter.result()
        outcome.result, outcome.tensors, outcome.frames = result, batch.arrays, batch.frames
        outcome.problems.extend(f"{p.label}: {p.detail}" for p in batch.problems)
        if result.task_id != task.task_id:
            outcome.problems.append(
                f"task_result for {result.task_id!r}, expected {task.task_id!r}"
            )
        outcome.ack_status = "rejected" if outcome.problems else "accepted"
        reason = "; ".join(outcome.problems)[:500] or None
        ack = ResultAckMessage(task_id=result.task_id, status=outcome.ack_status, reason=reason)
        with contextlib.suppress(ConnectionClosed):
            async with self.send_lock:
                await send_message(self.connection, ack)
        return outcome

    async def _read(self) -> None:
        """Read until the connection closes: answer heartbeats, queue results, report errors."""
        hub = self.hub
        pending: str | bytes | None = None
        try:
            while True:
                raw = pending if pending is not None else await self.connection.recv()
                pending = None
                message = read_message(raw)
                if isinstance(message, HeartbeatMessage):
                    hub.heartbeats_received += 1
                    beat = HeartbeatMessage(worker_id=self.worker_id, timestamp=time.time())
                    async with self.send_lock:
                        await send_message(self.connection, beat)
                elif isinstance(message, TaskResultMessage):
                    batch = await receive_tensors(
                        self.connection,
                        message.tensor_manifest,
                        max_frame_bytes=hub.max_frame_bytes,
                    )
                    hub.tensors_received += len(batch.frames)
                    hub.tensor_bytes_received += batch.nbytes
                    for problem in batch.problems:
                        hub.count(problem)
                    pending = batch.interrupted_by
                    self.results.put_nowait((message, batch))
                else:
                    problem = (
                        message
                        if isinstance(message, Problem)
                        else Problem("unexpected_type", f"{message.TYPE.value} from a worker")
                    )
                    hub.count(problem)
                    async with self.send_lock:
                        await send_message(self.connection, error_message(problem))
        except ConnectionClosed:
            return
