"""Acceptance of issue 8, item 1, on the sessions: a zero-copy path the codec tests do not reach.

Both sessions decode a task's or a result's tensor frames as views (``TaskReceived.tensors``,
``ResultReceived.tensors``: no copy of ``bytes``). A WebSocket library may hand a frame over as a
``bytearray`` or a ``memoryview`` of a buffer it reuses for the next message. The tensors a
session delivered must stay what was sent when that buffer is then cleared, refilled or
overwritten in place, and the session must leave the buffer free to be reused.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from juniper_cascor_protocol.worker.messages import TaskResultMessage
from juniper_cascor_protocol.worker.server_session import ServerSession
from juniper_cascor_protocol.worker.session_events import (
    ResultReceived,
    SessionEvent,
    SessionState,
    TaskReceived,
)
from juniper_cascor_protocol.worker.tensor_names import (
    BIAS,
    CANDIDATE_INPUT,
    RESIDUAL_ERROR,
    WEIGHTS,
)
from juniper_cascor_protocol.worker.worker_session import WorkerSession

TASK_TENSORS = {
    CANDIDATE_INPUT: np.arange(12, dtype=np.float32).reshape(4, 3),
    RESIDUAL_ERROR: np.linspace(-1.0, 1.0, 8, dtype=np.float32).reshape(4, 2),
}
RESULT_TENSORS = {
    WEIGHTS: np.array([0.25, -0.5, 0.75], dtype=np.float32),
    BIAS: np.array([1.5], dtype=np.float32),
}


class ReusedBuffer:
    """One frame as a transport that reuses its receive buffer hands it over."""

    def __init__(self, frame: bytes, given_as: str) -> None:
        self.backing = bytearray(frame)
        self.given: bytearray | memoryview = (
            self.backing if given_as == "bytearray" else memoryview(self.backing)
        )

    def reuse(self) -> None:
        """Overwrite the bytes in place, then resize: what the next message would do."""
        self.backing[:] = bytes(len(self.backing))  # same length: no resize, new content
        if isinstance(self.given, memoryview):
            self.given.release()
        self.backing.clear()  # raises BufferError if a delivered tensor still views it
        self.backing.extend(b"\xff" * 64)


def registered() -> tuple[ServerSession, WorkerSession]:
    server = ServerSession(now=0.0)
    worker = WorkerSession("worker-1", now=0.0, capabilities={})
    for receiver, sender in ((worker, server), (server, worker), (worker, server)):
        for message in sender.data_to_send():
            receiver.receive(message, 0.0)
    assert (server.state, worker.state) == (SessionState.READY, SessionState.READY)
    return server, worker


def deliver(
    receiver: ServerSession | WorkerSession, messages: list[str | bytes], given_as: str
) -> tuple[list[SessionEvent], list[ReusedBuffer]]:
    """Feed ``messages``, each binary frame through a reused buffer; the events and buffers."""
    events: list[SessionEvent] = []
    buffers: list[ReusedBuffer] = []
    for message in messages:
        if isinstance(message, bytes):
            buffer = ReusedBuffer(message, given_as)
            buffers.append(buffer)
            events += receiver.receive(buffer.given, 1.0)
        else:
            events += receiver.receive(message, 1.0)
    return events, buffers


def assert_intact(received: dict[str, NDArray[Any]], sent: dict[str, NDArray[Any]]) -> None:
    assert list(received) == list(sent)
    for name, array in sent.items():
        assert received[name].dtype == array.dtype
        np.testing.assert_array_equal(received[name], array)
        assert not received[name].flags.writeable


GIVEN_AS = ["bytearray", "memoryview"]


@pytest.mark.parametrize("given_as", GIVEN_AS)
def test_a_task_survives_the_reuse_of_the_buffers_its_frames_came_in(given_as: str) -> None:
    server, worker = registered()
    batch = server.send_task("t1", TASK_TENSORS, now=1.0)
    events, buffers = deliver(worker, batch, given_as)
    [received] = [event for event in events if isinstance(event, TaskReceived)]
    assert len(buffers) == len(TASK_TENSORS)

    for buffer in buffers:
        buffer.reuse()

    assert_intact(dict(received.tensors), TASK_TENSORS)


@pytest.mark.parametrize("given_as", GIVEN_AS)
def test_a_result_survives_the_reuse_of_the_buffers_its_frames_came_in(given_as: str) -> None:
    server, worker = registered()
    for message in server.send_task("t1", TASK_TENSORS, now=1.0):
        worker.receive(message, 1.0)
    result = TaskResultMessage(
        task_id="t1", candidate_id=0, correlation=0.5, success=True, epochs_completed=3
    )
    events, buffers = deliver(server, worker.send_result(result, RESULT_TENSORS), given_as)
    [received] = [event for event in events if isinstance(event, ResultReceived)]
    assert received.status == "accepted"
    assert len(buffers) == len(RESULT_TENSORS)

    for buffer in buffers:
        buffer.reuse()

    assert_intact(dict(received.tensors), RESULT_TENSORS)
