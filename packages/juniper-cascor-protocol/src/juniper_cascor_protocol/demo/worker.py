"""A ``/ws/v1/workers`` client that scores candidate units: the worker side of the session.

:meth:`DemoWorker.run` waits for ``connection_established``, sends ``register``, waits for
``registration_ack``, sends ``heartbeats`` heartbeats, then serves tasks: for each ``task_assign``
it reads one binary frame per manifest entry, checks the arrays against the manifest (and the
CRC-32s in ``candidate_data``, when given), scores the candidate (see :mod:`.candidate`) and
replies ``task_result`` followed by its result tensors. A task whose tensors are bad gets a
``task_result`` with ``success=false`` and the reasons in ``error_message``; the worker goes on.

Every problem with what the server sent is counted in ``stats.problems`` under a bounded label
(see :mod:`.worker_wire`). The run ends when the server closes the connection, or after
``max_tasks`` results have been acknowledged.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from juniper_cascor_protocol.demo.candidate import (
    INPUTS,
    RESIDUAL_ERROR,
    WEIGHTS,
    CandidateScore,
    score_candidate,
)
from juniper_cascor_protocol.demo.transport import connection_settings
from juniper_cascor_protocol.demo.worker_hub import CRC32_KEY
from juniper_cascor_protocol.demo.worker_wire import (
    Problem,
    TensorBatch,
    crc32,
    read_message,
    receive_tensors,
    send_message,
    send_with_tensors,
)
from juniper_cascor_protocol.worker.binary_frame import MAX_FRAME_BYTES
from juniper_cascor_protocol.worker.manifest import TensorManifest
from juniper_cascor_protocol.worker.messages import (
    ConnectionEstablishedMessage,
    ErrorMessage,
    HeartbeatMessage,
    RegisterMessage,
    RegistrationAckMessage,
    ResultAckMessage,
    TaskAssignMessage,
    TaskResultMessage,
    TokenRefreshMessage,
)

__all__ = ["CANDIDATE_OUTPUT", "COVARIANCES", "DemoWorker", "WorkerStats"]

CANDIDATE_OUTPUT: Final = "candidate_output"
COVARIANCES: Final = "covariances"
_ACTIVATION: Final = "tanh"


@dataclass(slots=True)
class WorkerStats:
    """What one worker did and saw, over its connection."""

    registered: bool = False
    tasks_succeeded: int = 0
    tasks_failed: int = 0
    acks: Counter[str] = field(default_factory=Counter)
    """``result_ack`` messages by ``status``."""
    heartbeats_sent: int = 0
    heartbeats_received: int = 0
    token_refreshes: int = 0
    errors_received: list[str] = field(default_factory=list)
    tensors_received: int = 0
    tensor_bytes_received: int = 0
    tensors_sent: int = 0
    tensor_bytes_sent: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    """What the server got wrong, by :class:`~.worker_wire.Problem` label."""


class DemoWorker:
    """One worker. ``worker_id`` must match ``^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$``.

    Args:
        heartbeats: heartbeats sent right after registration (the server answers each).
        max_frame_bytes: the largest tensor frame accepted from the server.
        keep_frames: keep every task's received frames, as received, in :attr:`received_frames`.
    """

    def __init__(
        self,
        worker_id: str,
        *,
        heartbeats: int = 1,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        keep_frames: bool = False,
    ) -> None:
        self.worker_id = worker_id
        self.heartbeats = heartbeats
        self.max_frame_bytes = max_frame_bytes
        self.keep_frames = keep_frames
        self.stats = WorkerStats()
        self.received_frames: list[list[bytes]] = []
        self.sent_tensors: list[dict[str, NDArray[Any]]] = []
        """The result tensors of every task, as sent (kept with ``keep_frames``)."""
        self.established: ConnectionEstablishedMessage | None = None

    async def run(self, uri: str, *, max_tasks: int | None = None) -> None:
        """Serve tasks on ``uri`` until the server closes or ``max_tasks`` are acknowledged.

        Raises:
            OSError: the connection could not be opened.
        """
        async with connect(uri, **connection_settings()) as connection:
            with contextlib.suppress(ConnectionClosed):
                await self._session(connection, max_tasks)

    async def _session(self, connection: ClientConnection, max_tasks: int | None) -> None:
        stats = self.stats
        pending: str | bytes | None = None
        while max_tasks is None or stats.acks.total() < max_tasks:
            raw = pending if pending is not None else await connection.recv()
            pending = None
            message = read_message(raw)
            if isinstance(message, Problem):
                stats.problems[message.label] += 1
            elif isinstance(message, ConnectionEstablishedMessage):
                self.established = message
                register = RegisterMessage(worker_id=self.worker_id, capabilities=_CAPABILITIES)
                await send_message(connection, register)
            elif isinstance(message, RegistrationAckMessage):
                stats.registered = True
                for _ in range(self.heartbeats):
                    beat = HeartbeatMessage(worker_id=self.worker_id, timestamp=time.time())
                    await send_message(connection, beat)
                    stats.heartbeats_sent += 1
            elif isinstance(message, HeartbeatMessage):
                stats.heartbeats_received += 1
            elif isinstance(message, TaskAssignMessage):
                pending = await self._task(connection, message)
            elif isinstance(message, ResultAckMessage):
                stats.acks[message.status] += 1
            elif isinstance(message, TokenRefreshMessage):
                stats.token_refreshes += 1
            elif isinstance(message, ErrorMessage):
                stats.errors_received.append(f"{message.error}: {message.details or ''}")
            else:
                stats.problems["unexpected_type"] += 1
        await connection.close()

    async def _task(self, connection: ClientConnection, task: TaskAssignMessage) -> str | None:
        """Receive, check and score one task; reply. Returns a text message that interrupted it."""
        stats = self.stats
        batch = await receive_tensors(
            connection, task.tensor_manifest, max_frame_bytes=self.max_frame_bytes
        )
        stats.tensors_received += len(batch.frames)
        stats.tensor_bytes_received += batch.nbytes
        if self.keep_frames:
            self.received_frames.append(batch.frames)
        problems = batch.problems or _checksum_problems(task, batch)
        outputs: dict[str, NDArray[Any]] = {}
        score: CandidateScore | None = None
        if not problems:
            try:
                score = score_candidate(
                    batch.arrays[INPUTS], batch.arrays[WEIGHTS], batch.arrays[RESIDUAL_ERROR]
                )
            except (KeyError, ValueError) as error:
                problems = [Problem("unscorable_task", f"{type(error).__name__}: {error}")]
            else:
                outputs = {CANDIDATE_OUTPUT: score.candidate_output, COVARIANCES: score.covariances}
        for problem in problems:
            stats.problems[problem.label] += 1
        if problems or score is None:
            stats.tasks_failed += 1
            result = _failed_result(task, problems)
        else:
            stats.tasks_succeeded += 1
            result = _result(task, score, outputs)
        stats.tensor_bytes_sent += await send_with_tensors(connection, result, outputs)
        stats.tensors_sent += len(outputs)
        if self.keep_frames:
            self.sent_tensors.append(outputs)
        return batch.interrupted_by


_CAPABILITIES: Final[dict[str, Any]] = {
    "activations": [_ACTIVATION],
    "dtypes": ["float32", "float64"],
    "numpy": np.__version__,
}


def _checksum_problems(task: TaskAssignMessage, batch: TensorBatch) -> list[Problem]:
    expected = task.candidate_data.get(CRC32_KEY)
    if not isinstance(expected, dict):
        return []
    return [
        Problem("checksum_mismatch", f"{name}: CRC-32 {crc32(array)} != {expected[name]}")
        for name, array in batch.arrays.items()
        if name in expected and crc32(array) != expected[name]
    ]


def _result(
    task: TaskAssignMessage, score: CandidateScore, outputs: dict[str, NDArray[Any]]
) -> TaskResultMessage:
    return TaskResultMessage(
        task_id=task.task_id,
        candidate_id=task.candidate_index,
        candidate_uuid=str(uuid.uuid4()),
        correlation=score.correlation,
        success=True,
        epochs_completed=1,
        activation_name=_ACTIVATION,
        all_correlations=score.all_correlations,
        numerator=score.numerator,
        denominator=score.denominator,
        best_corr_idx=score.best_corr_idx,
        error_message=None,
        tensor_manifest=TensorManifest.from_arrays(outputs),
    )


def _failed_result(task: TaskAssignMessage, problems: list[Problem]) -> TaskResultMessage:
    return TaskResultMessage(
        task_id=task.task_id,
        candidate_id=task.candidate_index,
        candidate_uuid=str(uuid.uuid4()),
        correlation=0.0,
        success=False,
        epochs_completed=0,
        activation_name=_ACTIVATION,
        all_correlations=[],
        numerator=0.0,
        denominator=0.0,
        best_corr_idx=-1,
        error_message="; ".join(f"{p.label}: {p.detail}" for p in problems)[:2000],
        tensor_manifest={},
    )
