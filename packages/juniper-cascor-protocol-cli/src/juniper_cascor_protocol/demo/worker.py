"""A ``/ws/v1/workers`` client that trains candidate units: a ``WorkerSession`` on a socket.

The session runs the conversation: it registers when the server greets it with a protocol
version it speaks, checks every task's tensors against its manifest and the required names
(refusing a bad task with a failed ``task_result`` by itself), tells when a heartbeat is due,
matches each ``result_ack`` to a result and closes with the right code. The demo worker adds
its application: the CRC-32s of :data:`~.worker_hub.CRC32_KEY`, when a task carries them, and
the training itself (see :mod:`.candidate`). The run ends when the connection closes, or after
``max_tasks`` results were acknowledged (close code 1000).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from websockets.asyncio.client import connect

from juniper_cascor_protocol.demo.candidate import ACTIVATION, train_candidate
from juniper_cascor_protocol.demo.transport import connection_settings
from juniper_cascor_protocol.demo.worker_hub import CRC32_KEY, crc32
from juniper_cascor_protocol.demo.worker_wire import SessionSocket, TensorTraffic
from juniper_cascor_protocol.worker.close_codes import CloseCode
from juniper_cascor_protocol.worker.messages import (
    ErrorMessage,
    HeartbeatMessage,
    TaskAssignMessage,
    TaskResultMessage,
    TokenRefreshMessage,
)
from juniper_cascor_protocol.worker.session_events import (
    Closed,
    ConnectionEstablished,
    HeartbeatDue,
    MessageReceived,
    Registered,
    ResultAcknowledged,
    SessionEvent,
    TaskReceived,
    TaskRefused,
    VersionIncompatible,
    Violation,
)
from juniper_cascor_protocol.worker.session_limits import DEFAULT_BATCH_BYTE_BUDGET
from juniper_cascor_protocol.worker.tensor_names import (
    CANDIDATE_INPUT,
    CANDIDATE_UUID_KEY,
    RESIDUAL_ERROR,
)
from juniper_cascor_protocol.worker.worker_session import WorkerSession

__all__ = ["DemoWorker", "WorkerStats"]

_CAPABILITIES: Final[dict[str, Any]] = {
    "activations": [ACTIVATION],
    "dtypes": ["float32", "float64"],
    "numpy": np.__version__,
}


@dataclass(slots=True)
class WorkerStats:
    """What one worker did and saw, over its connection."""

    registered: bool = False
    tasks_succeeded: int = 0
    tasks_failed: int = 0
    """Tasks answered with ``success=false``: refused by the session or failed by the worker."""
    refused: dict[str, str] = field(default_factory=dict)
    """Tasks the session refused (bad tensors, missing names...), ``task_id`` → reason."""
    acks: Counter[str] = field(default_factory=Counter)
    """``result_ack`` messages by ``status``."""
    heartbeats_sent: int = 0
    heartbeats_received: int = 0
    token_refreshes: int = 0
    errors_received: list[str] = field(default_factory=list)
    tensors: TensorTraffic = field(default_factory=TensorTraffic)
    problems: Counter[str] = field(default_factory=Counter)
    """What the server got wrong, by the session's ``Violation.label``, and tasks this worker
    failed, by ``checksum_mismatch`` or ``unscorable_task``."""


class DemoWorker:
    """One worker. ``worker_id`` must match ``^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$``.

    Args:
        heartbeats: heartbeats sent right after registration, besides those the session says
            are due.
        byte_budget: the most bytes of one task's tensor frames held (the session's budget).
        keep_tensors: keep every task's received and sent tensors (:attr:`received_tensors`,
            :attr:`sent_tensors`).
    """

    def __init__(
        self,
        worker_id: str,
        *,
        heartbeats: int = 0,
        byte_budget: int = DEFAULT_BATCH_BYTE_BUDGET,
        keep_tensors: bool = False,
    ) -> None:
        self.worker_id = worker_id
        self.heartbeats = heartbeats
        self.byte_budget = byte_budget
        self.keep_tensors = keep_tensors
        self.stats: WorkerStats = WorkerStats()
        self.received_tensors: list[Mapping[str, NDArray[Any]]] = []
        self.sent_tensors: list[dict[str, NDArray[Any]]] = []
        self.established: ConnectionEstablished | None = None
        self.incompatible: VersionIncompatible | None = None
        self.closed: Closed | None = None
        """How the session ended."""
        self._max_tasks: int | None = None

    async def run(self, uri: str, *, max_tasks: int | None = None) -> None:
        """Serve tasks on ``uri`` until the connection closes or ``max_tasks`` are acknowledged.

        Raises:
            OSError: the connection could not be opened.
        """
        self._max_tasks = max_tasks
        async with connect(uri, **connection_settings()) as connection:
            session = WorkerSession(
                self.worker_id,
                now=time.time(),
                capabilities=_CAPABILITIES,
                byte_budget=self.byte_budget,
            )
            socket = SessionSocket(connection, session, self.stats.tensors)

            async def handle(events: list[SessionEvent]) -> None:
                await self._handle(socket, events)

            await socket.pump(handle)

    async def _handle(
        self, socket: SessionSocket[WorkerSession], events: list[SessionEvent]
    ) -> None:
        stats = self.stats
        for event in events:
            if isinstance(event, ConnectionEstablished):
                self.established = event
            elif isinstance(event, Registered):
                stats.registered = True
                for _ in range(self.heartbeats):
                    await self._heartbeat(socket)
            elif isinstance(event, HeartbeatDue):
                await self._heartbeat(socket)
            elif isinstance(event, TaskReceived) and not socket.ended:
                await socket.write(self._work(socket.session, event.task, event.tensors))
            elif isinstance(event, TaskRefused):
                stats.tasks_failed += 1
                stats.refused[event.task_id] = event.reason
            elif isinstance(event, ResultAcknowledged):
                stats.acks[event.ack.status] += 1
                if self._max_tasks is not None and stats.acks.total() >= self._max_tasks:
                    await self._handle(socket, await socket.close(CloseCode.NORMAL, "done"))
            elif isinstance(event, MessageReceived):
                self._note(event)
            elif isinstance(event, Violation):
                stats.problems[event.label] += 1
            elif isinstance(event, VersionIncompatible):
                self.incompatible = event
            elif isinstance(event, Closed):
                self.closed = event

    async def _heartbeat(self, socket: SessionSocket[WorkerSession]) -> None:
        if socket.ended:  # it ended while an earlier event was handled: nothing more to send
            return
        await socket.write(socket.session.send_heartbeat(time.time()))
        self.stats.heartbeats_sent += 1

    def _note(self, event: MessageReceived) -> None:
        message = event.message
        if isinstance(message, HeartbeatMessage):
            self.stats.heartbeats_received += 1
        elif isinstance(message, TokenRefreshMessage):
            self.stats.token_refreshes += 1
        elif isinstance(message, ErrorMessage):
            self.stats.errors_received.append(f"{message.error}: {message.details or ''}")

    def _work(
        self, session: WorkerSession, task: TaskAssignMessage, tensors: Mapping[str, NDArray[Any]]
    ) -> list[str | bytes]:
        """Train the candidate of ``task``; the messages of its result, or of its failure."""
        stats = self.stats
        if self.keep_tensors:
            self.received_tensors.append(tensors)
        failure = _checksum_failure(task, tensors)
        if failure is None:
            try:
                score = train_candidate(tensors[CANDIDATE_INPUT], tensors[RESIDUAL_ERROR])
            except ValueError as error:
                failure = ("unscorable_task", str(error))
        if failure is not None:
            label, detail = failure
            stats.problems[label] += 1
            stats.tasks_failed += 1
            return session.send_failure(task.task_id, f"{label}: {detail}")
        uuid = task.candidate_data.get(CANDIDATE_UUID_KEY)
        result = TaskResultMessage(
            task_id=task.task_id,
            candidate_id=task.candidate_index,
            candidate_uuid=uuid if isinstance(uuid, str) else None,
            correlation=score.correlation,
            success=True,
            epochs_completed=1,
            activation_name=ACTIVATION,
            all_correlations=score.all_correlations,
            numerator=score.numerator,
            denominator=score.denominator,
            best_corr_idx=score.best_corr_idx,
        )
        stats.tasks_succeeded += 1
        if self.keep_tensors:
            self.sent_tensors.append(score.tensors)
        return session.send_result(result, score.tensors)


def _checksum_failure(
    task: TaskAssignMessage, tensors: Mapping[str, NDArray[Any]]
) -> tuple[str, str] | None:
    expected = task.candidate_data.get(CRC32_KEY)
    if not isinstance(expected, dict):
        return None
    wrong = [
        f"{name}: CRC-32 {crc32(array)} != {expected[name]}"
        for name, array in tensors.items()
        if name in expected and crc32(array) != expected[name]
    ]
    return ("checksum_mismatch", "; ".join(wrong)) if wrong else None
