"""The ``/ws/control`` sessions: requests, responses matched by id, timeouts, versions."""

from __future__ import annotations

import itertools
import json

import pytest

from juniper_cascor_protocol.envelope import (
    DEFAULT_LABEL_BUDGET,
    INVALID_COMMAND_CODE,
    MALFORMED_JSON_CODE,
    PROTOCOL_VERSION,
    UNKNOWN_COMMAND_CODE,
    UNKNOWN_TYPE_BUDGET,
    UNMATCHED_TYPE_LABEL,
    CommandAbandoned,
    CommandAnswered,
    CommandReceived,
    CommandResponseEnvelope,
    CommandStatus,
    CommandTimedOut,
    ControlClientSession,
    ControlClientState,
    ControlCommandName,
    ControlServerSession,
    Established,
    IncompatibleServerError,
    IncompatibleVersion,
    InvalidResponse,
    LateResponse,
    PendingLimitError,
    PingReceived,
    PongReceived,
    ProtocolViolation,
    RequestRejected,
    UnknownFrame,
    UnknownResponse,
    UnsolicitedResponse,
    is_compatible,
    parse_protocol_version,
)

SERVER = ControlServerSession(server_version="1.4.0")


def answer(request_text: str, status: CommandStatus = CommandStatus.SUCCESS) -> str:
    received = SERVER.receive(request_text, now=0.0)
    if isinstance(received, CommandReceived):
        return SERVER.respond(received.command, status, now=0.0, result={"ok": True})
    assert isinstance(received, RequestRejected)
    return received.reply


def sequential_client(
    *, max_pending: int = 256, max_remembered_ids: int = 1024
) -> ControlClientSession:
    """A client whose command ids are c-1, c-2, ..."""
    ids = itertools.count(1)
    return ControlClientSession(
        max_pending=max_pending,
        max_remembered_ids=max_remembered_ids,
        command_id_factory=lambda: f"c-{next(ids)}",
    )


# --- client: requests and responses ---------------------------------------------------------


def test_issue_gives_the_request_text_with_a_fresh_command_id() -> None:
    client = ControlClientSession()
    first = client.issue(ControlCommandName.SET_PARAMS, {"learning_rate": 0.01}, now=5.0)
    second = client.issue("start", now=5.0)
    assert json.loads(first.text) == {
        "command": "set_params",
        "params": {"learning_rate": 0.01},
        "command_id": first.command_id,
        "type": "command",
    }
    assert first.command_id != second.command_id
    assert (first.issued_at, first.deadline) == (5.0, 35.0)  # the default timeout: 30 s
    assert client.pending == 2


def test_responses_are_matched_by_command_id_in_any_order() -> None:
    client = sequential_client()
    requests = [client.issue(name, now=0.0) for name in ("start", "pause", "bogus")]
    replies = [answer(request.text) for request in reversed(requests)]
    events = [event for reply in replies for event in client.receive(reply, now=1.0)]
    assert all(isinstance(event, CommandAnswered) for event in events)
    matched = {event.request.command_id: event.response.data for event in events}  # type: ignore[union-attr]
    assert {key: (data.command, data.status, data.code) for key, data in matched.items()} == {
        "c-1": ("start", "success", None),
        "c-2": ("pause", "success", None),
        "c-3": ("bogus", "error", UNKNOWN_COMMAND_CODE),
    }
    assert client.pending == 0


def test_responses_matching_no_request_are_told_apart() -> None:
    client = sequential_client()
    request = client.issue("start", now=0.0, timeout=1.0)
    reply = answer(request.text)
    assert client.expire(now=1.0) == [CommandTimedOut(request)]
    (late,) = client.receive(reply, now=2.0)
    assert isinstance(late, LateResponse)
    (again,) = client.receive(reply, now=2.0)  # the same answer twice: no longer expected
    assert isinstance(again, UnknownResponse)
    (unsolicited,) = client.receive(answer("{not json"), now=2.0)
    assert isinstance(unsolicited, UnsolicitedResponse)
    assert unsolicited.response.data.code == MALFORMED_JSON_CODE
    stats = client.stats()
    assert (stats.timed_out, stats.late, stats.unknown_responses, stats.unsolicited) == (1, 1, 1, 1)


def test_a_response_at_its_deadline_is_late_and_next_deadline_says_when_to_wake() -> None:
    client = sequential_client()
    slow = client.issue("start", now=0.0, timeout=5.0)
    fast = client.issue("stop", now=0.0, timeout=2.0)
    assert client.next_deadline == 2.0
    timed_out, late = client.receive(answer(fast.text), now=2.0)
    assert timed_out == CommandTimedOut(fast)
    assert isinstance(late, LateResponse)
    assert client.next_deadline == 5.0
    (answered,) = client.receive(answer(slow.text), now=4.9)
    assert isinstance(answered, CommandAnswered)
    assert client.next_deadline is None


def test_pending_requests_are_bounded() -> None:
    client = sequential_client(max_pending=2)
    client.issue("start", now=0.0)
    client.issue("stop", now=0.0)
    with pytest.raises(PendingLimitError, match="max_pending=2"):
        client.issue("pause", now=0.0)
    client.expire(now=100.0)
    client.issue("pause", now=100.0)


def test_remembered_timed_out_ids_are_bounded() -> None:
    client = sequential_client(max_remembered_ids=2)
    requests = [client.issue("start", now=0.0, timeout=1.0) for _ in range(3)]
    client.expire(now=1.0)
    assert client.stats().remembered_ids == 2
    (oldest,) = client.receive(answer(requests[0].text), now=2.0)
    (newest,) = client.receive(answer(requests[2].text), now=2.0)
    assert isinstance(oldest, UnknownResponse)
    assert isinstance(newest, LateResponse)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"timeout": 0.0}, "timeout must be a finite number of seconds > 0"),
        ({"timeout": float("inf")}, "timeout must be a finite number of seconds > 0"),
        ({"command_id": "c-1"}, "is pending"),
        ({"command_id": ""}, "command_id"),
    ],
)
def test_issue_refuses_invalid_requests(options: dict[str, object], match: str) -> None:
    client = sequential_client()
    client.issue("start", now=0.0)
    with pytest.raises(ValueError, match=match):
        client.issue("start", now=0.0, **options)  # type: ignore[arg-type]
    assert client.pending == 1


def test_a_lost_connection_abandons_pending_requests() -> None:
    client = sequential_client()
    request = client.issue("start", now=0.0)
    assert client.connection_lost() == [CommandAbandoned(request)]
    assert (client.pending, client.state) == (0, ControlClientState.CONNECTING)
    (unknown,) = client.receive(answer(request.text), now=1.0)
    assert isinstance(unknown, UnknownResponse)


def test_an_invalid_response_for_a_pending_request_closes_it() -> None:
    # juniper-cascor's rate limiter answers without timestamp and data.
    client = sequential_client()
    request = client.issue("start", now=0.0, timeout=1.0)
    limited = {"type": "command_response", "command": "start", "status": "rate_limited"}
    (event,) = client.receive(json.dumps({**limited, "command_id": request.command_id}), now=0.5)
    assert isinstance(event, InvalidResponse)
    assert event.request == request
    assert event.envelope.model_extra == {"command": "start", "status": "rate_limited"} | {
        "command_id": request.command_id
    }
    assert client.expire(now=2.0) == []
    (stray,) = client.receive(json.dumps(limited), now=2.0)
    assert isinstance(stray, UnknownFrame)


def test_pings_frames_and_refusals_on_the_client() -> None:
    client = ControlClientSession(max_frame_bytes=64)
    assert client.receive('{"type": "ping", "ts": 1.5}', now=0.0) == [PingReceived()]
    (metrics,) = client.receive('{"type": "metrics", "timestamp": 1, "data": {}}', now=0.0)
    assert isinstance(metrics, UnknownFrame)
    (refused,) = client.receive("x" * 65, now=0.0)
    assert refused == ProtocolViolation(
        "oversized", "text frame of at least 65 bytes exceeds max_frame_bytes=64", None
    )
    stats = client.stats()
    assert (stats.heartbeats, dict(stats.unknown_frames), dict(stats.refused)) == (
        1,
        {"metrics": 1},
        {"oversized": 1},
    )


# --- client: the server's protocol version ---------------------------------------------------


@pytest.mark.parametrize(
    ("greeting", "expected"),
    [
        (SERVER.greeting(now=0.0), Established("1.4.0", PROTOCOL_VERSION)),
        (ControlServerSession(protocol_version="0.9").greeting(now=0), Established(None, "0.9")),
        (ControlServerSession(protocol_version=None).greeting(now=0), Established(None, None)),
        # juniper-cascor's own greeting: no timestamp, no version.
        (
            '{"type": "connection_established", "data": {"channel": "control"}}',
            Established(None, None),
        ),
    ],
)
def test_a_readable_protocol_version_opens_the_session(
    greeting: str, expected: Established
) -> None:
    client = ControlClientSession()
    assert client.receive(greeting, now=0.0) == [expected]
    assert client.state is ControlClientState.OPEN


@pytest.mark.parametrize(
    ("announced", "shown"),
    [("1.0", "1.0"), ("0.3.1", "0.3.1"), ("v0.3", "v0.3"), (3, "<int>"), ("9" * 100, "9" * 64)],
)
def test_an_unreadable_protocol_version_is_reported_with_both_versions(
    announced: object, shown: str
) -> None:
    client = ControlClientSession()
    greeting = {"type": "connection_established", "timestamp": 1.0, "data": {}}
    greeting["data"] = {"server_version": "2.0.0", "protocol_version": announced}
    (event,) = client.receive(json.dumps(greeting), now=0.0)
    assert event == IncompatibleVersion(
        announced=shown, supported=(PROTOCOL_VERSION,), server_version="2.0.0"
    )
    assert client.state is ControlClientState.INCOMPATIBLE
    with pytest.raises(IncompatibleServerError, match="not readable by this client"):
        client.issue("start", now=0.0)
    client.connection_lost()  # a new connection may reach another server
    client.issue("start", now=0.0)


def test_a_client_supporting_another_major_accepts_its_minors() -> None:
    client = ControlClientSession(supported_versions=("0.3", "1.2"))
    greeting = ControlServerSession(protocol_version="1.0").greeting(now=0.0)
    assert client.receive(greeting, now=0.0) == [Established(None, "1.0")]
    with pytest.raises(ValueError, match=r"MAJOR\.MINOR"):
        ControlClientSession(supported_versions=("one",))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.3", (0, 3)),
        ("12.0", (12, 0)),
        ("9999.9999", (9999, 9999)),
        ("01.3", None),
        ("1", None),
        ("1.2.3", None),
        (" 1.2", None),
        ("1.2\n", None),
        ("10000.0", None),
        ("١.٢", None),  # Arabic-Indic digits are not ASCII digits
        (3, None),
        (None, None),
    ],
)
def test_parse_protocol_version(text: object, expected: tuple[int, int] | None) -> None:
    assert parse_protocol_version(text) == expected


def test_versions_are_compatible_when_their_majors_are_equal() -> None:
    assert is_compatible("0.7", ["0.3"])
    assert not is_compatible("1.0", ["0.3"])
    assert is_compatible("1.0", ["0.3", "1.5"])
    assert not is_compatible("0.x", ["0.3"])


# --- server ----------------------------------------------------------------------------------


def test_the_server_turns_a_request_into_a_typed_command_and_answers_it() -> None:
    server = ControlServerSession()
    received = server.receive(
        '{"command": "set_params", "params": {"a": 1}, "command_id": "x"}', now=0
    )
    assert isinstance(received, CommandReceived)
    assert received.name is ControlCommandName.SET_PARAMS
    assert received.command.params == {"a": 1}
    reply = server.respond(received.command, "success", now=7.0, result={"applied": True})
    assert json.loads(reply) == {
        "type": "command_response",
        "timestamp": 7.0,
        "data": {
            "command": "set_params",
            "status": "success",
            "command_id": "x",
            "result": {"applied": True},
        },
    }


@pytest.mark.parametrize(
    ("message", "code", "command_id", "error"),
    [
        ("{not json", MALFORMED_JSON_CODE, None, "request is not valid JSON"),
        (
            '{"command": "checkpoint", "command_id": "c-9"}',
            UNKNOWN_COMMAND_CODE,
            "c-9",
            "unknown command",
        ),
        (
            '{"command": "start", "params": 3, "command_id": "c-8"}',
            INVALID_COMMAND_CODE,
            "c-8",
            "params:",
        ),
        ("[1, 2]", INVALID_COMMAND_CODE, None, ""),
        ('{"type": "pong", "command": ""}', INVALID_COMMAND_CODE, None, "command:"),
        (b'{"command": "start"}', INVALID_COMMAND_CODE, None, "only text frames"),
        ("x" * 70_000, INVALID_COMMAND_CODE, None, "max_request_bytes=65536"),
    ],
)
def test_the_server_rejects_what_it_cannot_act_on_with_an_error_response(
    message: str | bytes, code: str, command_id: str | None, error: str
) -> None:
    rejected = ControlServerSession().receive(message, now=3.0)
    assert isinstance(rejected, RequestRejected)
    assert (rejected.code, rejected.command_id) == (code, command_id)
    assert error in "; ".join(rejected.errors)
    response = CommandResponseEnvelope.model_validate_json(rejected.reply)
    assert (response.timestamp, response.data.status, response.data.code) == (3.0, "error", code)
    assert response.data.command_id == command_id


def test_the_server_pings_and_takes_a_pong_as_no_request() -> None:
    server = ControlServerSession()
    assert json.loads(server.ping(now=12.5)) == {"type": "ping", "ts": 12.5}
    client = ControlClientSession()
    (ping,) = client.receive(server.ping(now=12.5), now=0.0)
    assert isinstance(ping, PingReceived)
    assert server.receive(ping.reply, now=0.0) == PongReceived()


def test_each_control_client_spends_its_own_label_budget() -> None:
    noisy, quiet = ControlClientSession(), ControlClientSession()
    for index in range(UNKNOWN_TYPE_BUDGET + 1):
        noisy.receive(f'{{"type": "kind-{index}", "timestamp": 1, "data": {{}}}}', now=0.0)
    (event,) = quiet.receive('{"type": "fresh", "timestamp": 1, "data": {}}', now=0.0)
    assert isinstance(event, UnknownFrame)
    assert event.envelope.type == "fresh"
    assert noisy.stats().unknown_frames[UNMATCHED_TYPE_LABEL] == 1
    assert DEFAULT_LABEL_BUDGET.admitted == frozenset()
