"""Properties of the /ws/v1/workers sessions over arbitrary input and arbitrary task plans."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from juniper_cascor_protocol.worker import BinaryFrame, parse_worker_message
from juniper_cascor_protocol.worker.close_codes import CloseCode
from juniper_cascor_protocol.worker.messages import TaskResultMessage
from juniper_cascor_protocol.worker.server_session import ServerSession
from juniper_cascor_protocol.worker.session_events import (
    VIOLATION_LABELS,
    Closed,
    ResultAcknowledged,
    ResultReceived,
    ResultTimedOut,
    SessionEvent,
    SessionState,
    TaskReceived,
    TaskRefused,
    Violation,
)
from juniper_cascor_protocol.worker.session_limits import MAX_JSON_MESSAGE_BYTES
from juniper_cascor_protocol.worker.tensor_names import (
    BIAS,
    CANDIDATE_INPUT,
    RESIDUAL_ERROR,
    WEIGHTS,
)
from juniper_cascor_protocol.worker.worker_session import WorkerSession

BUDGET = 4096
ARRAYS: list[NDArray[Any]] = [
    np.zeros((4, 3), np.float32),
    np.ones(2, np.float64),
    np.arange(600, dtype=np.float64).reshape(20, 30),  # 4800 bytes: over the budget alone
    np.array(7, np.int8),
]


def spec(array: NDArray[Any]) -> dict[str, Any]:
    return {"shape": list(array.shape), "dtype": str(array.dtype)}


MANIFESTS = st.dictionaries(
    st.sampled_from([CANDIDATE_INPUT, RESIDUAL_ERROR, WEIGHTS, "x"]),
    st.sampled_from(ARRAYS).map(spec),
    max_size=3,
)
TASK_IDS = st.sampled_from(["t1", "t2", "t3"])
VALID_MESSAGES = st.one_of(
    st.just({"type": "connection_established", "protocol_version": "0.3"}),
    st.just({"type": "connection_established", "protocol_version": "9.0"}),
    st.just({"type": "register", "worker_id": "w1", "capabilities": {}}),
    st.just({"type": "registration_ack", "worker_id": "w1", "heartbeat_interval": 1.0}),
    st.just({"type": "heartbeat", "worker_id": "w1", "timestamp": 1.0}),
    st.builds(
        lambda task_id, manifest: {
            "type": "task_assign",
            "task_id": task_id,
            "round_id": "r",
            "candidate_index": 0,
            "candidate_data": {},
            "training_params": {},
            "tensor_manifest": manifest,
        },
        st.integers(0, 10**6).map(lambda number: f"a{number}"),
        MANIFESTS,
    ),
    st.builds(
        lambda task_id, manifest, correlation: {
            "type": "task_result",
            "task_id": task_id,
            "candidate_id": 0,
            "correlation": correlation,
            "success": True,
            "epochs_completed": 1,
            "tensor_manifest": manifest,
        },
        TASK_IDS,
        MANIFESTS,
        st.sampled_from([0.5, 1.5]),
    ),
    st.builds(
        lambda task_id, status: {"type": "result_ack", "task_id": task_id, "status": status},
        TASK_IDS,
        st.sampled_from(["accepted", "stale"]),
    ),
    st.just({"type": "error", "error": "e", "timestamp": 0}),
    st.just({"type": "token_refresh", "token": "t"}),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
RECEIVED = st.one_of(
    VALID_MESSAGES.map(json.dumps),
    VALID_MESSAGES.map(lambda message: json.dumps({**message, "type": "task_result"})),
    JSON_VALUES.map(lambda value: json.dumps(value, allow_nan=True)),
    st.text(max_size=40),
    st.just("[" * 5000),
    st.just(" " * (MAX_JSON_MESSAGE_BYTES + 1)),
    st.sampled_from(ARRAYS).map(BinaryFrame.encode),
    st.sampled_from(ARRAYS).map(lambda array: bytearray(BinaryFrame.encode(array))),
    st.binary(max_size=40),
)


@st.composite
def batches(draw: st.DrawFn) -> list[str | bytes]:
    """A task_assign or task_result, the frames its manifest announces, maybe cut short."""
    message = {
        "type": draw(st.sampled_from(["task_assign", "task_result"])),
        "task_id": draw(TASK_IDS),
        "round_id": "r",
        "candidate_index": 0,
        "candidate_data": {},
        "training_params": {},
        "candidate_id": 0,
        "correlation": 0.5,
        "success": True,
        "epochs_completed": 1,
    }
    arrays = draw(st.lists(st.sampled_from(ARRAYS), max_size=3))
    names = [CANDIDATE_INPUT, RESIDUAL_ERROR, WEIGHTS][: len(arrays)]
    message["tensor_manifest"] = {
        name: spec(array) for name, array in zip(names, arrays, strict=True)
    }
    frames = [BinaryFrame.encode(array) for array in arrays]
    return [json.dumps(message), *frames[: draw(st.integers(0, len(frames)))]]


STEPS = st.lists(
    st.one_of(
        RECEIVED.map(lambda message: ("receive", [message])),
        batches().map(lambda messages: ("receive", messages)),
        batches().map(lambda messages: ("receive", messages)),
        st.floats(0, 5).map(lambda delay: ("tick", delay)),
    ),
    max_size=40,
)
PEER_CLOSES = st.sampled_from([None, 1000, 4010])


def check_output(session: ServerSession | WorkerSession, events: list[SessionEvent]) -> None:
    assert session.buffered_bytes <= BUDGET
    for event in events:
        if isinstance(event, Violation):
            assert event.label in VIOLATION_LABELS
            assert len(event.reason) <= 500
            assert event.close_code is None or event.close_code in set(CloseCode)
    if session.close_code is not None:
        assert session.state is SessionState.CLOSED
    for message in session.data_to_send():
        if isinstance(message, str):
            assert len(message) <= MAX_JSON_MESSAGE_BYTES
            assert not isinstance(parse_worker_message(json.loads(message)), list)
        else:
            assert isinstance(message, bytes)


def new_session(kind: str, register: bool) -> ServerSession | WorkerSession:
    if kind == "server":
        server = ServerSession(now=0.0, byte_budget=BUDGET, max_tasks_in_flight=3)
        if register:
            server.receive(
                json.dumps({"type": "register", "worker_id": "w", "capabilities": {}}), 0
            )
        return server
    worker = WorkerSession(
        "w", now=0.0, byte_budget=BUDGET, max_tasks_in_flight=1000, required_tensors=()
    )
    if register:
        worker.receive(json.dumps({"type": "connection_established"}), 0.0)
        worker.receive(json.dumps({"type": "registration_ack"}), 0.0)
    return worker


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["server", "worker"]),
    register=st.sampled_from([True, True, True, False]),
    steps=STEPS,
    with_server_task=st.booleans(),
    peer_close=PEER_CLOSES,
)
def test_arbitrary_input_never_raises_and_stays_within_the_budget(
    kind: str,
    register: bool,
    steps: list[tuple[str, Any]],
    with_server_task: bool,
    peer_close: int | None,
) -> None:
    session = new_session(kind, register)
    if with_server_task and isinstance(session, ServerSession) and session.can_assign:
        for task_id in ("t1", "t2", "t3"):
            session.send_task(task_id, {CANDIDATE_INPUT: ARRAYS[0]}, now=0.0)
    now = 0.0
    for action, value in steps:
        if action == "receive":
            for message in value:
                check_output(session, session.receive(message, now))
        else:
            now += value
            check_output(session, session.tick(now))
    check_output(session, session.receive_close(peer_close, "bye"))
    assert session.state is SessionState.CLOSED


# --- a worker and a server, driven against each other ------------------------------------------

BEHAVIOURS = ["succeed", "fail", "no_input", "corrupt_frame", "bad_correlation", "late"]
PLANS = st.lists(st.tuples(st.sampled_from(BEHAVIOURS), st.booleans()), min_size=1, max_size=8)
EXPECTED = {
    "succeed": "accepted",
    "fail": "accepted",  # a failure the worker reports is the task's outcome
    "no_input": "accepted",  # the worker's session reports it failed
    "corrupt_frame": "rejected",
    "bad_correlation": "rejected",
    "late": "stale",
}


class Link:
    """Both sessions and what each end saw of every task."""

    def __init__(self) -> None:
        self.now = 0.0
        self.server = ServerSession(now=0.0, result_timeout=60.0, heartbeat_interval=1000.0)
        self.worker = WorkerSession("w1", now=0.0, heartbeat_interval=1000.0)
        self.server_saw: dict[str, str] = {}
        self.worker_saw: dict[str, str] = {}
        self.acks: Counter[str] = Counter()
        self.to_worker(self.server.data_to_send())
        self.to_server(self.worker.data_to_send())
        self.to_worker(self.server.data_to_send())

    def to_worker(self, messages: list[str | bytes]) -> list[SessionEvent]:
        events: list[SessionEvent] = []
        for message in messages:
            if isinstance(message, str) and json.loads(message)["type"] == "result_ack":
                self.acks[json.loads(message)["task_id"]] += 1
            events += self.worker.receive(message, self.now)
        for event in events:
            if isinstance(event, ResultAcknowledged):
                self.worker_saw[event.ack.task_id] = event.ack.status
        return events

    def to_server(self, messages: list[str | bytes]) -> None:
        for message in messages:
            for event in self.server.receive(message, self.now):
                if isinstance(event, ResultReceived):
                    self.server_saw[event.task_id] = event.status
        self.to_worker(self.server.data_to_send())


def result_for(task_id: str, correlation: float = 0.5) -> TaskResultMessage:
    return TaskResultMessage(
        task_id=task_id, candidate_id=0, correlation=correlation, success=True, epochs_completed=1
    )


@settings(max_examples=100)
@given(plans=PLANS)
def test_a_worker_and_a_server_agree_on_every_tasks_outcome(
    plans: list[tuple[str, bool]],
) -> None:
    link = Link()
    outputs = {WEIGHTS: np.ones(3, np.float32), BIAS: np.zeros(1, np.float32)}
    for number, (behaviour, heartbeat_inside) in enumerate(plans):
        task_id = f"task-{number}"
        tensors = {CANDIDATE_INPUT: ARRAYS[0], RESIDUAL_ERROR: np.ones((4, 1), np.float32)}
        if behaviour == "no_input":
            del tensors[CANDIDATE_INPUT]
        link.now += 1.0
        events = link.to_worker(link.server.send_task(task_id, tensors, now=link.now))
        if behaviour == "no_input":
            assert [type(event) for event in events] == [TaskRefused]
            link.to_server(link.worker.data_to_send())
            continue
        assert [type(event) for event in events] == [TaskReceived]
        if behaviour == "fail":
            sent = link.worker.send_failure(task_id, "diverged")
        elif behaviour == "bad_correlation":
            sent = link.worker.send_result(result_for(task_id, correlation=1.5), outputs)
        else:
            sent = link.worker.send_result(result_for(task_id), outputs)
        if behaviour == "corrupt_frame":
            sent[1] = sent[1][:-1]
        if behaviour == "late":
            link.now += 61.0
            assert link.server.tick(link.now) == [ResultTimedOut(task_id)]
        if heartbeat_inside:
            sent[1:1] = link.worker.send_heartbeat(link.now)
        link.to_server(sent)
    for number, (behaviour, _) in enumerate(plans):
        task_id = f"task-{number}"
        assert link.server_saw[task_id] == link.worker_saw[task_id] == EXPECTED[behaviour]
        assert link.acks[task_id] == 1
    assert link.server.state is link.worker.state is SessionState.READY
    [closed] = link.server.close(CloseCode.NO_MORE_WORK, "done")
    assert isinstance(closed, Closed)
    assert closed.unfinished_tasks == ()
