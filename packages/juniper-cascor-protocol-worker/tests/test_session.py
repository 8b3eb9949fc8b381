"""The sans-I/O sessions of /ws/v1/workers: each rule of the conversation, one test each."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from juniper_cascor_protocol.worker import BinaryFrame, parse_worker_message
from juniper_cascor_protocol.worker.close_codes import CloseCode, should_reconnect
from juniper_cascor_protocol.worker.messages import ResultAckMessage, TaskResultMessage
from juniper_cascor_protocol.worker.protocol_version import (
    PROTOCOL_VERSION,
    is_compatible,
    parse_protocol_version,
)
from juniper_cascor_protocol.worker.server_session import ServerSession
from juniper_cascor_protocol.worker.session_events import (
    Closed,
    ConnectionEstablished,
    HeartbeatDue,
    MessageReceived,
    PeerSilent,
    Registered,
    ResultAcknowledged,
    ResultReceived,
    ResultTimedOut,
    SessionEvent,
    SessionState,
    TaskReceived,
    TaskRefused,
    VersionIncompatible,
    Violation,
    WorkerRegistered,
)
from juniper_cascor_protocol.worker.session_limits import (
    MAX_HEARTBEAT_INTERVAL,
    MAX_JSON_MESSAGE_BYTES,
    MIN_HEARTBEAT_INTERVAL,
)
from juniper_cascor_protocol.worker.tensor_names import (
    BIAS,
    CANDIDATE_INPUT,
    RESIDUAL_ERROR,
    WEIGHTS,
)
from juniper_cascor_protocol.worker.worker_session import WorkerSession

Wire = list[str | bytes]


def task_tensors(rows: int = 4) -> dict[str, NDArray[Any]]:
    return {
        CANDIDATE_INPUT: np.arange(rows * 3, dtype=np.float32).reshape(rows, 3),
        RESIDUAL_ERROR: np.ones((rows, 2), dtype=np.float32),
    }


def result_tensors() -> dict[str, NDArray[Any]]:
    return {WEIGHTS: np.full(3, 0.5, dtype=np.float32), BIAS: np.zeros(1, dtype=np.float32)}


def a_result(task_id: str, **changes: Any) -> TaskResultMessage:
    fields: dict[str, Any] = {
        "task_id": task_id,
        "candidate_id": 0,
        "correlation": 0.5,
        "success": True,
        "epochs_completed": 10,
    }
    return TaskResultMessage(**(fields | changes))


def wire(message: dict[str, Any]) -> str:
    return json.dumps(message)


def feed(session: ServerSession | WorkerSession, messages: Wire, now: float) -> list[SessionEvent]:
    events: list[SessionEvent] = []
    for message in messages:
        events += session.receive(message, now)
    return events


def decoded(messages: Wire) -> list[dict[str, Any]]:
    """The JSON text messages of ``messages``, parsed (each must be a valid worker message)."""
    texts = [json.loads(message) for message in messages if isinstance(message, str)]
    for text in texts:
        assert not isinstance(parse_worker_message(text), list), text
    return texts


def registered(**server_options: Any) -> tuple[ServerSession, WorkerSession]:
    server = ServerSession(now=0.0, **server_options)
    worker = WorkerSession("worker-1", now=0.0, capabilities={"gpu": False})
    feed(worker, server.data_to_send(), 0.0)
    feed(server, worker.data_to_send(), 0.0)
    feed(worker, server.data_to_send(), 0.0)
    assert server.state is SessionState.READY
    assert worker.state is SessionState.READY
    return server, worker


def of_type(events: list[SessionEvent], kind: type[Any]) -> list[Any]:
    return [event for event in events if isinstance(event, kind)]


# --- handshake and version negotiation ---------------------------------------------------------


def test_the_handshake_registers_the_worker_on_both_ends() -> None:
    server = ServerSession(now=0.0, server_version="0.13.0", heartbeat_interval=2.5)
    worker = WorkerSession("worker-1", now=0.0, capabilities={"gpu": False})
    greeting = server.data_to_send()
    assert decoded(greeting) == [
        {"type": "connection_established", "server_version": "0.13.0", "protocol_version": "0.3"}
    ]
    assert of_type(feed(worker, greeting, 0.0), ConnectionEstablished)
    register = worker.data_to_send()
    assert decoded(register) == [
        {"type": "register", "worker_id": "worker-1", "capabilities": {"gpu": False}}
    ]
    [joined] = feed(server, register, 0.0)
    assert isinstance(joined, WorkerRegistered)
    assert joined.worker_id == "worker-1"
    [registered_event] = feed(worker, server.data_to_send(), 0.0)
    assert isinstance(registered_event, Registered)
    assert registered_event.heartbeat_interval == 2.5
    assert worker.liveness_timeout == 7.5


def test_the_worker_adopts_the_id_the_server_assigns() -> None:
    server = ServerSession(now=0.0, assign_worker_id=lambda proposed: f"srv-{proposed}")
    worker = WorkerSession("w1", now=0.0)
    feed(worker, server.data_to_send(), 0.0)
    feed(server, worker.data_to_send(), 0.0)
    feed(worker, server.data_to_send(), 0.0)
    assert server.worker_id == worker.worker_id == "srv-w1"
    assert decoded(worker.send_heartbeat(1.0))[0]["worker_id"] == "srv-w1"


@pytest.mark.parametrize("announced", ["1.0", "2.3", "one", "0.3.0", "03.1", ""])
def test_a_server_version_the_worker_lacks_is_a_typed_incompatibility(announced: str) -> None:
    worker = WorkerSession("w1", now=0.0)
    greeting = wire({"type": "connection_established", "protocol_version": announced})
    events = worker.receive(greeting, 0.0)
    assert events[0] == VersionIncompatible(announced, (PROTOCOL_VERSION,))
    assert isinstance(events[1], Closed)
    assert not events[1].reconnect
    assert worker.close_code == CloseCode.UNSUPPORTED_VERSION
    assert worker.data_to_send() == []  # no register to a server it cannot understand


def test_a_server_naming_no_version_is_read_as_compatible() -> None:
    """juniper-cascor 0.12 sends ``{"type": "connection_established", "data": {...}}``."""
    worker = WorkerSession("w1", now=0.0)
    greeting = wire({"type": "connection_established", "data": {"channel": "workers"}})
    [event] = worker.receive(greeting, 0.0)
    assert isinstance(event, ConnectionEstablished)
    assert event.protocol_version is None
    assert decoded(worker.data_to_send())[0]["type"] == "register"


def test_another_minor_version_is_compatible() -> None:
    assert is_compatible("0.7", ["0.3"])
    assert is_compatible("0.2", ["0.3"])
    assert not is_compatible("1.0", ["0.3"])
    assert parse_protocol_version("1.10") == (1, 10)
    assert parse_protocol_version("01.0") is None
    assert parse_protocol_version("1." + "9" * 10_000) is None


# --- close codes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first_message", "code"),
    [
        ("not json", CloseCode.INVALID_JSON),
        (
            wire({"type": "heartbeat", "worker_id": "w", "timestamp": 1}),
            CloseCode.EXPECTED_REGISTER,
        ),
        (wire({"type": "register", "worker_id": "bad id!", "capabilities": {}}), 4008),
        (wire({"type": "telemetry"}), CloseCode.EXPECTED_REGISTER),
        ("[" * 10 + "]" * 10, CloseCode.EXPECTED_REGISTER),
        ("x" * (MAX_JSON_MESSAGE_BYTES + 1), CloseCode.MESSAGE_TOO_LARGE),
        (b"\x00\x00\x00\x00", CloseCode.EXPECTED_REGISTER),
    ],
    ids=["bad-json", "heartbeat", "invalid", "unknown", "array", "oversized", "binary"],
)
def test_what_comes_instead_of_register_closes_with_juniper_cascors_code(
    first_message: str | bytes, code: int
) -> None:
    server = ServerSession(now=0.0)
    server.data_to_send()
    events = server.receive(first_message, 1.0)
    assert isinstance(events[0], Violation)
    assert events[0].close_code == code
    assert server.close_code == code
    assert server.state is SessionState.CLOSED
    [error] = decoded(server.data_to_send())
    assert error["type"] == "error"
    assert error["error"] == events[0].label


def test_register_must_come_in_time() -> None:
    server = ServerSession(now=0.0, register_timeout=10.0)
    assert server.tick(10.0) == []
    events = server.tick(10.5)
    assert of_type(events, Violation)[0].label == "register_timeout"
    assert server.close_code == CloseCode.EXPECTED_REGISTER


@pytest.mark.parametrize(
    ("code", "reconnect"),
    [
        (CloseCode.NO_MORE_WORK, False),
        (CloseCode.AUTH_REQUIRED, False),
        (CloseCode.ORIGIN_FORBIDDEN, False),
        (CloseCode.UNSUPPORTED_VERSION, False),
        (CloseCode.REPLACED, False),
        (CloseCode.GOING_AWAY, True),
        (CloseCode.PEER_SILENT, True),
        (1012, True),
        (None, True),
    ],
)
def test_a_worker_stops_reconnecting_only_when_retrying_cannot_help(
    code: int | None, reconnect: bool
) -> None:
    assert should_reconnect(code) is reconnect


def test_a_server_shutting_down_tells_the_worker_not_to_come_back() -> None:
    server, worker = registered()
    [closed] = server.close(CloseCode.NO_MORE_WORK, "training finished")
    assert isinstance(closed, Closed)
    assert (server.close_code, server.close_reason) == (4010, "training finished")
    [seen] = worker.receive_close(server.close_code, server.close_reason)
    assert isinstance(seen, Closed)
    assert seen.by_peer
    assert not seen.reconnect
    assert worker.state is SessionState.CLOSED
    assert worker.receive(wire({"type": "heartbeat"}), 1.0) == []


def test_a_close_reason_fits_a_close_frame() -> None:
    server, _ = registered()
    server.close(CloseCode.NO_MORE_WORK, "é" * 200)
    assert len(server.close_reason.encode()) <= 123


# --- tasks, results and their tensors ---------------------------------------------------------


def test_a_task_arrives_with_its_tensors_as_views_of_the_frames() -> None:
    server, worker = registered()
    tensors = task_tensors()
    batch = server.send_task("t1", tensors, now=1.0, candidate_data={"candidate_uuid": "c-1"})
    assert [type(message) for message in batch] == [str, bytes, bytes]
    events = []
    for index, message in enumerate(batch):
        events += worker.receive(message, 1.0)
        if index < len(batch) - 1:
            assert worker.state is SessionState.AWAITING_TENSOR_FRAMES
            assert worker.frames_awaited == len(batch) - 1 - index
    [received] = events
    assert isinstance(received, TaskReceived)
    assert received.task.candidate_data == {"candidate_uuid": "c-1"}
    for name, frame in zip(tensors, batch[1:], strict=True):
        array = received.tensors[name]
        np.testing.assert_array_equal(array, tensors[name])
        assert isinstance(frame, bytes)
        assert np.shares_memory(array, np.frombuffer(frame, dtype=np.uint8))
        assert not array.flags.writeable


def test_the_demos_tensor_names_fail_the_task_with_a_failed_result() -> None:
    """The real worker needs candidate_input and residual_error; a task without them fails."""
    server, worker = registered()
    demo_names = {"candidate_inputs": np.ones((4, 3), np.float32)}
    events = feed(worker, server.send_task("t1", demo_names, now=1.0), 1.0)
    [refused] = of_type(events, TaskRefused)
    assert "candidate_input: required tensor missing" in refused.reason
    [failure] = decoded(worker.data_to_send())
    assert failure["type"] == "task_result"
    assert failure["success"] is False
    assert failure["task_id"] == "t1"
    assert "candidate_input" in failure["error_message"]
    [outcome] = feed(server, [json.dumps(failure)], 1.0)
    assert isinstance(outcome, ResultReceived)
    assert outcome.status == "accepted"  # the worker's failure is the task's outcome


def test_a_result_round_trip_is_acknowledged_once() -> None:
    server, worker = registered()
    feed(worker, server.send_task("t1", task_tensors(), now=1.0), 1.0)
    assert server.tasks_in_flight == ("t1",)
    sent = worker.send_result(a_result("t1", candidate_uuid="c-1"), result_tensors())
    [outcome] = feed(server, sent, 2.0)
    assert isinstance(outcome, ResultReceived)
    assert outcome.accepted
    assert outcome.result is not None
    assert outcome.result.candidate_uuid == "c-1"
    np.testing.assert_array_equal(outcome.tensors[WEIGHTS], result_tensors()[WEIGHTS])
    assert not server.tasks_in_flight
    acks = server.data_to_send()
    assert decoded(acks) == [{"type": "result_ack", "task_id": "t1", "status": "accepted"}]
    [acknowledged] = feed(worker, acks, 2.0)
    assert acknowledged == ResultAcknowledged(ResultAckMessage(task_id="t1", status="accepted"))


def test_a_refused_result_still_gets_its_ack() -> None:
    """A ``task_result`` with correlation 1.5 used to get no ack: its task waited forever."""
    server, worker = registered()
    feed(worker, server.send_task("t1", task_tensors(), now=1.0), 1.0)
    text = wire(a_result("t1").to_wire() | {"correlation": 1.5})
    [outcome] = server.receive(text, 2.0)
    assert isinstance(outcome, ResultReceived)
    assert outcome.status == "rejected"
    assert outcome.reason is not None
    assert "correlation" in outcome.reason
    [ack] = decoded(server.data_to_send())
    assert (ack["type"], ack["task_id"], ack["status"]) == ("result_ack", "t1", "rejected")
    assert not server.tasks_in_flight


def test_a_result_with_the_five_required_fields_is_accepted() -> None:
    server, worker = registered()
    feed(worker, server.send_task("t1", task_tensors(), now=1.0), 1.0)
    minimal = {
        "type": "task_result",
        "task_id": "t1",
        "candidate_id": 0,
        "correlation": 0.25,
        "success": True,
        "epochs_completed": 3,
    }
    [outcome] = server.receive(wire(minimal), 2.0)
    assert isinstance(outcome, ResultReceived)
    assert outcome.accepted


@pytest.mark.parametrize(
    ("setup", "status"),
    [("repeat", "duplicate"), ("late", "stale"), ("never-assigned", "rejected")],
)
def test_every_result_gets_one_ack_whatever_its_task(setup: str, status: str) -> None:
    server, worker = registered(result_timeout=5.0)
    feed(worker, server.send_task("t1", task_tensors(), now=1.0), 1.0)
    sent = worker.send_result(a_result("t1"), result_tensors())
    if setup == "repeat":
        feed(server, sent, 2.0)
        server.data_to_send()
    elif setup == "late":
        assert server.tick(6.5) == [ResultTimedOut("t1")]
    else:
        sent = [wire(a_result("t9").to_wire())]
    [outcome] = feed(server, sent, 7.0)
    assert isinstance(outcome, ResultReceived)
    assert outcome.status == status
    [ack] = decoded(server.data_to_send())
    assert ack["status"] == status


def test_a_corrupt_frame_rejects_the_result_and_the_session_goes_on() -> None:
    server, worker = registered()
    feed(worker, server.send_task("t1", task_tensors(), now=1.0), 1.0)
    text, weights, bias = worker.send_result(a_result("t1"), result_tensors())
    assert isinstance(weights, bytes)
    events = feed(server, [text, weights[:-1], bias], 2.0)
    [outcome] = of_type(events, ResultReceived)
    assert outcome.status == "rejected"
    assert outcome.reason is not None
    assert "weights" in outcome.reason
    assert server.state is SessionState.READY
    assert server.close_code is None


def test_a_result_with_nan_is_rejected() -> None:
    server, worker = registered()
    feed(worker, server.send_task("t1", task_tensors(), now=1.0), 1.0)
    bad = np.array([np.nan, 1.0, 2.0], dtype=np.float32)
    message = a_result("t1").to_wire() | {
        "tensor_manifest": {WEIGHTS: {"shape": [3], "dtype": "float32"}}
    }
    events = feed(server, [wire(message), BinaryFrame.encode(bad)], 2.0)
    [outcome] = of_type(events, ResultReceived)
    assert outcome.status == "rejected"
    assert outcome.reason is not None
    assert "NaN" in outcome.reason


def test_a_heartbeat_between_a_result_and_its_frames_is_answered_and_the_batch_goes_on() -> None:
    """Under load juniper-cascor-worker 0.6.1 slips a heartbeat in there."""
    server, worker = registered()
    feed(worker, server.send_task("t1", task_tensors(), now=1.0), 1.0)
    text, *frames = worker.send_result(a_result("t1"), result_tensors())
    beat = worker.send_heartbeat(2.0)
    events = feed(server, [text, *beat, frames[0], *beat, frames[1]], 2.0)
    assert [type(event) for event in events] == [MessageReceived, MessageReceived, ResultReceived]
    assert of_type(events, ResultReceived)[0].accepted
    replies = decoded(server.data_to_send())
    assert [reply["type"] for reply in replies] == ["heartbeat", "heartbeat", "result_ack"]


def test_any_other_message_inside_a_batch_is_a_violation_and_the_result_gets_its_ack() -> None:
    server, worker = registered()
    feed(worker, server.send_task("t1", task_tensors(), now=1.0), 1.0)
    text, *frames = worker.send_result(a_result("t1"), result_tensors())
    events = feed(server, [text, frames[0], text], 2.0)
    [outcome] = of_type(events, ResultReceived)
    assert outcome.status == "rejected"
    [violation] = of_type(events, Violation)
    assert (violation.label, violation.close_code) == ("missing_tensor_frame", 4008)
    replies = decoded(server.data_to_send())
    assert [reply["type"] for reply in replies] == ["result_ack", "error"]
    assert server.close_code == CloseCode.INVALID_MESSAGE


def test_a_worker_interrupted_inside_a_task_reports_it_failed_before_closing() -> None:
    server, worker = registered()
    text, *frames = server.send_task("t1", task_tensors(), now=1.0)
    events = feed(
        worker,
        [text, frames[0], wire({"type": "result_ack", "task_id": "x", "status": "stale"})],
        1.0,
    )
    assert [type(event) for event in events] == [TaskRefused, Violation, Closed]
    [failure] = decoded(worker.data_to_send())
    assert (failure["task_id"], failure["success"]) == ("t1", False)
    assert worker.close_code == CloseCode.INVALID_MESSAGE


def test_an_invalid_task_assign_is_answered_with_a_failed_result() -> None:
    server, worker = registered()
    text, *frames = server.send_task("t1", task_tensors(), now=1.0)
    broken = json.loads(text) | {"candidate_index": -1}
    events = feed(worker, [json.dumps(broken), *frames], 1.0)
    [refused] = of_type(events, TaskRefused)
    assert "candidate_index" in refused.reason
    assert worker.state is SessionState.READY
    [failure] = decoded(worker.data_to_send())
    assert (failure["task_id"], failure["success"]) == ("t1", False)


def test_a_task_over_the_byte_budget_is_refused_without_holding_its_frames() -> None:
    server = ServerSession(now=0.0)
    worker = WorkerSession("w1", now=0.0, byte_budget=1024)
    feed(worker, server.data_to_send(), 0.0)
    feed(server, worker.data_to_send(), 0.0)
    feed(worker, server.data_to_send(), 0.0)
    text, *frames = server.send_task("t1", task_tensors(rows=100), now=1.0)
    assert worker.receive(text, 1.0) == []
    for frame in frames:
        events = worker.receive(frame, 1.0)
        assert worker.buffered_bytes == 0
    [refused] = events
    assert isinstance(refused, TaskRefused)
    assert "budget of 1024 bytes" in refused.reason


def test_a_busy_worker_answers_an_extra_task_as_failed() -> None:
    server, worker = registered(max_tasks_in_flight=2)
    feed(worker, server.send_task("t1", task_tensors(), now=1.0), 1.0)
    events = feed(worker, server.send_task("t2", task_tensors(), now=1.0), 1.0)
    [refused] = of_type(events, TaskRefused)
    assert refused.task_id == "t2"
    assert "busy" in refused.reason
    assert list(worker.tasks) == ["t1"]


def test_the_senders_refuse_what_a_peer_would_refuse() -> None:
    server, worker = registered()
    with pytest.raises(ValueError, match="NaN"):
        server.send_task("t1", {CANDIDATE_INPUT: np.array([np.nan])}, now=1.0)
    with pytest.raises(ValueError, match="MAX_JSON_MESSAGE_BYTES"):
        server.send_task("t1", task_tensors(), now=1.0, candidate_data={"x": "y" * 70_000})
    feed(worker, server.send_task("t1", task_tensors(), now=1.0), 1.0)
    with pytest.raises(RuntimeError, match="cannot assign"):
        server.send_task("t2", task_tensors(), now=1.0)
    with pytest.raises(RuntimeError, match="no task 't9'"):
        worker.send_result(a_result("t9"))
    with pytest.raises(ValueError, match="NaN"):
        worker.send_result(a_result("t1"), {WEIGHTS: np.array([np.inf, np.nan])})


def test_send_failure_reports_the_task_with_its_candidate_uuid() -> None:
    server, worker = registered()
    batch = server.send_task("t1", task_tensors(), now=1.0, candidate_data={"candidate_uuid": "c"})
    feed(worker, batch, 1.0)
    [failure] = decoded(worker.send_failure("t1", "diverged"))
    assert failure == {
        "type": "task_result",
        "task_id": "t1",
        "candidate_id": 0,
        "correlation": 0.0,
        "success": False,
        "epochs_completed": 0,
        "candidate_uuid": "c",
        "error_message": "diverged",
        "tensor_manifest": {},
    }


# --- heartbeats and liveness -------------------------------------------------------------------


def test_heartbeats_are_due_at_the_interval_the_server_set_and_echoed() -> None:
    server, worker = registered(heartbeat_interval=5.0)
    assert worker.tick(4.9) == []
    assert worker.tick(5.0) == [HeartbeatDue()]
    assert worker.tick(5.5) == []  # reported once per interval
    beat = worker.send_heartbeat(5.5)
    [received] = feed(server, beat, 5.5)
    assert isinstance(received, MessageReceived)
    [echo] = decoded(server.data_to_send())
    assert (echo["type"], echo["worker_id"]) == ("heartbeat", "worker-1")
    assert worker.tick(10.4) == []
    assert worker.tick(10.5) == [HeartbeatDue()]


@pytest.mark.parametrize("end", ["server", "worker"])
def test_a_silent_peer_closes_the_session_and_lists_its_unfinished_tasks(end: str) -> None:
    server, worker = registered(heartbeat_interval=10.0)
    feed(worker, server.send_task("t1", task_tensors(), now=1.0), 1.0)
    session: ServerSession | WorkerSession = server if end == "server" else worker
    assert of_type(session.tick(30.0), PeerSilent) == []
    events = session.tick(31.5)
    assert isinstance(events[0], PeerSilent)
    assert isinstance(events[1], Closed)
    assert events[1].unfinished_tasks == ("t1",)
    assert events[1].reconnect
    assert session.close_code == CloseCode.PEER_SILENT


def test_a_stray_frame_after_registration_is_reported_and_tolerated() -> None:
    server, worker = registered()
    [violation] = server.receive(b"\x01\x02", 1.0)
    assert violation == Violation(
        "unexpected_binary_frame", "binary frame of 2 bytes outside any task_result", None
    )
    assert decoded(server.data_to_send())[0]["error"] == "unexpected_binary_frame"
    [seen] = worker.receive(bytearray(3), 1.0)
    assert isinstance(seen, Violation)
    assert seen.close_code is None
    assert server.state is worker.state is SessionState.READY


def test_an_unknown_message_type_after_registration_is_tolerated() -> None:
    """A newer peer may send types this version does not know."""
    server, _ = registered()
    [violation] = server.receive(wire({"type": "progress", "pct": 50}), 1.0)
    assert isinstance(violation, Violation)
    assert (violation.label, violation.close_code) == ("unknown_type", None)
    assert server.state is SessionState.READY


def test_a_refreshed_token_is_kept_for_the_next_connection() -> None:
    _, worker = registered()
    [seen] = worker.receive(wire({"type": "token_refresh", "token": "k2", "expires_at": 9.0}), 1.0)
    assert isinstance(seen, MessageReceived)
    assert worker.token == "k2"


def test_a_server_that_never_acknowledges_cannot_grow_a_worker_without_bound() -> None:
    server, worker = registered(max_tasks_in_flight=1)
    text, *frames = server.send_task("t0", task_tensors(), now=1.0)
    assert isinstance(text, str)
    feed(worker, [text, *frames], 1.0)
    for number in range(1, 1200):  # each one more than the worker holds: refused, unacked
        feed(worker, [text.replace('"t0"', f'"t{number}"'), *frames], 1.0)
    [closed] = worker.close(CloseCode.NORMAL)
    assert isinstance(closed, Closed)
    assert 1000 < len(closed.unfinished_tasks) <= 1 + 1024


def test_a_close_reason_that_is_not_valid_utf8_is_repaired() -> None:
    _, worker = registered()
    worker.close(CloseCode.NORMAL, "bad \ud800 surrogate")
    worker.close_reason.encode("utf-8")


def test_a_repeated_task_is_skipped_and_the_first_copy_keeps_its_result() -> None:
    server, worker = registered()
    batch = server.send_task("t1", task_tensors(), now=1.0)
    feed(worker, batch, 1.0)
    events = feed(worker, batch, 1.0)
    assert [type(event) for event in events] == [Violation]
    assert worker.state is SessionState.READY
    assert worker.data_to_send() == []  # no failed result for the task it holds
    assert list(worker.tasks) == ["t1"]


def test_the_heartbeat_interval_a_server_sets_is_bounded() -> None:
    worker = WorkerSession("w1", now=0.0)
    worker.receive(wire({"type": "connection_established"}), 0.0)
    [registered_event] = worker.receive(
        wire({"type": "registration_ack", "heartbeat_interval": 1e-9}), 0.0
    )
    assert isinstance(registered_event, Registered)
    assert registered_event.heartbeat_interval == worker.heartbeat_interval == 1.0
    assert worker.liveness_timeout == 3.0


@pytest.mark.parametrize("interval", [0.5, 3600.5, float("nan")])
def test_a_server_session_refuses_to_announce_an_interval_no_worker_honours(
    interval: float,
) -> None:
    # A worker brings the interval within [1 s, 1 h]: announcing another would make every worker
    # beat at another pace than the server expects, and be closed as silent.
    with pytest.raises(ValueError, match=r"heartbeat_interval must be between 1\.0 and 3600\.0"):
        ServerSession(now=0.0, heartbeat_interval=interval)


@pytest.mark.parametrize("interval", [MIN_HEARTBEAT_INTERVAL, MAX_HEARTBEAT_INTERVAL])
def test_a_server_session_announces_the_bounds_themselves(interval: float) -> None:
    server, worker = registered(heartbeat_interval=interval)
    assert worker.heartbeat_interval == server.heartbeat_interval == interval


def test_a_result_whose_frames_cannot_be_counted_is_rejected_then_closed() -> None:
    server, worker = registered()
    feed(worker, server.send_task("t1", task_tensors(), now=1.0), 1.0)
    broken = a_result("t1").to_wire() | {"tensor_manifest": {WEIGHTS: {"shape": "3"}}}
    events = server.receive(wire(broken), 2.0)
    assert [type(event) for event in events] == [ResultReceived, Violation, Closed]
    replies = decoded(server.data_to_send())
    assert [(reply["type"], reply.get("status")) for reply in replies] == [
        ("result_ack", "rejected"),
        ("error", None),
    ]
    assert server.close_code == CloseCode.INVALID_MESSAGE


def test_a_result_without_a_task_id_cannot_be_answered_and_closes() -> None:
    server, _ = registered()
    events = server.receive(wire({"type": "task_result", "correlation": 0.5}), 2.0)
    assert isinstance(events[0], Violation)
    assert (events[0].label, events[0].close_code) == ("unanswerable_result", 4008)
