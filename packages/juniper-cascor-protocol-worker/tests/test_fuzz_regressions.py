"""Inputs the coverage-guided fuzzer (``fuzz/``) found breaking a promise, minimized.

Each test names its fuzz target and keeps the reproducer as the peer sent it (the text of a
WebSocket message), so a regression shows up here without running the fuzzer.
"""

from __future__ import annotations

import json

import numpy as np

from juniper_cascor_protocol.worker import (
    CANDIDATE_INPUT,
    RESIDUAL_ERROR,
    FieldError,
    ResultReceived,
    ServerSession,
    TaskRefused,
    TaskResultMessage,
    WorkerSession,
    parse_worker_message_json,
)

# fuzz target `worker_message`: ``"tensor_manifest": null`` was read as a manifest of None
# (the field has a default, so it was taken as nullable), which ``to_wire()`` left out and
# which read back as ``{}``; a server session given it for a pending task raised TypeError.
NULL_MANIFEST_RESULT = (
    '{"type": "task_result", "task_id": "t0", "candidate_id": 0, "correlation": 0.8, '
    '"success": true, "epochs_completed": 50, "tensor_manifest": null}'
)
NULL_MANIFEST_TASK = (
    '{"type": "task_assign", "task_id": "t1", "round_id": "r", "candidate_index": 0, '
    '"candidate_data": {}, "training_params": {}, "tensor_manifest": null}'
)


def test_a_null_tensor_manifest_is_refused_with_its_path() -> None:
    for raw in (NULL_MANIFEST_RESULT, NULL_MANIFEST_TASK):
        assert parse_worker_message_json(raw) == [
            FieldError(("tensor_manifest",), "expected an object, got null")
        ]


def test_an_absent_tensor_manifest_reads_back_as_sent() -> None:
    without = json.loads(NULL_MANIFEST_RESULT)
    del without["tensor_manifest"]
    message = parse_worker_message_json(json.dumps(without))
    assert isinstance(message, TaskResultMessage)
    assert message.tensor_manifest == {}
    assert parse_worker_message_json(json.dumps(message.to_wire())) == message


def _ready_pair() -> tuple[ServerSession, WorkerSession]:
    server = ServerSession(now=0.0, heartbeat_interval=5.0)
    worker = WorkerSession("worker-1", now=0.0)
    for sender, receiver in ((server, worker), (worker, server), (server, worker)):
        for message in sender.data_to_send():
            receiver.receive(message, 0.0)
    return server, worker


def test_a_server_session_rejects_a_result_with_a_null_manifest() -> None:
    server, worker = _ready_pair()
    tensors = {
        CANDIDATE_INPUT: np.ones((2, 2), np.float32),
        RESIDUAL_ERROR: np.zeros(2, np.float32),
    }
    for message in server.send_task("t0", tensors, now=1.0):
        worker.receive(message, 1.0)
    events = server.receive(NULL_MANIFEST_RESULT, 2.0)
    [outcome] = [event for event in events if isinstance(event, ResultReceived)]
    assert outcome.status == "rejected"
    assert outcome.reason is not None
    assert "tensor_manifest" in outcome.reason


def test_a_worker_session_refuses_a_task_with_a_null_manifest() -> None:
    _, worker = _ready_pair()
    events = worker.receive(NULL_MANIFEST_TASK, 1.0)
    assert isinstance(events[0], TaskRefused)
    assert events[0].task_id == "t1"
    assert "tensor_manifest" in events[0].reason
