"""The names the envelope side shares with the worker side: failures, events, JSON out."""

from __future__ import annotations

import json

import pytest

from juniper_cascor_protocol.envelope import (
    INVALID_COMMAND_CODE,
    MALFORMED_JSON_CODE,
    PROTOCOL_VERSION,
    CommandParseError,
    ConnectionEstablishedEnvelope,
    ControlClientSession,
    ControlServerSession,
    IncompatibleVersion,
    MetricsEnvelope,
    ProtocolViolation,
    RequestRejected,
    TrainingConsumerSession,
    is_compatible,
    parse_command,
    parse_command_json,
    parse_protocol_version,
    to_wire_json,
    validate_envelope_json,
)


def test_a_refused_request_names_each_problem_by_its_path() -> None:
    refused = parse_command({"command": 7, "params": [], "command_id": "c-1"})
    assert isinstance(refused, CommandParseError)
    assert refused.label == INVALID_COMMAND_CODE
    assert refused.problems == (
        (("command",), "Input should be a valid string"),
        (("params",), "Input should be a valid dictionary"),
    )
    assert refused.reason == "; ".join(refused.errors)
    assert refused.errors == (
        "command: Input should be a valid string",
        "params: Input should be a valid dictionary",
    )


@pytest.mark.parametrize(
    ("raw", "label", "message"),
    [
        ("{oops", MALFORMED_JSON_CODE, "request is not valid JSON: "),
        ("[1]", INVALID_COMMAND_CODE, "Input should be a valid dictionary or instance of"),
        ({1: "start"}, INVALID_COMMAND_CODE, "every key must be a string"),
    ],
)
def test_a_problem_of_the_whole_request_has_the_empty_path(
    raw: str | dict[object, object], label: str, message: str
) -> None:
    refused = parse_command_json(raw) if isinstance(raw, str) else parse_command(raw)
    assert isinstance(refused, CommandParseError)
    assert refused.label == label
    [(path, text)] = refused.problems
    assert path == ()
    assert text.startswith(message)


def test_a_parse_error_built_from_lines_reads_them_as_problems() -> None:
    built = CommandParseError(("request: too long",))
    assert built.problems == (((), "request: too long"),)
    assert (built.label, built.reason) == (INVALID_COMMAND_CODE, "request: too long")


def test_the_server_rejects_with_the_same_reason() -> None:
    event = ControlServerSession().receive('{"command": ""}', now=0.0)
    refused = parse_command_json('{"command": ""}')
    assert isinstance(event, RequestRejected)
    assert isinstance(refused, CommandParseError)
    assert (event.code, event.errors) == (refused.label, refused.errors)


def test_every_envelope_writes_its_own_text() -> None:
    envelope = MetricsEnvelope(timestamp=1.0, data={"loss": float("nan")}, seq=3, trace=None)
    assert envelope.to_wire_json() == to_wire_json(envelope)
    assert json.loads(envelope.to_wire_json().replace("NaN", "null")) == {
        "type": "metrics",
        "timestamp": 1.0,
        "data": {"loss": None},
        "seq": 3,
        "trace": None,
    }
    assert validate_envelope_json(envelope.to_wire_json()).to_wire_json() == to_wire_json(envelope)


def test_an_incompatible_server_is_reported_as_the_worker_side_reports_it() -> None:
    greeting = ConnectionEstablishedEnvelope(
        timestamp=0.0, data={"server_version": "9.1.0", "protocol_version": "1.0"}
    )
    for session in (TrainingConsumerSession(), ControlClientSession()):
        (event,) = session.receive(greeting.to_wire_json(), now=0.0)
        assert event == IncompatibleVersion("1.0", (PROTOCOL_VERSION,), "9.1.0")
    assert IncompatibleVersion("1.0", ("0.3",)).server_version is None


def test_a_refused_frame_is_a_protocol_violation_the_session_survives() -> None:
    consumer = TrainingConsumerSession()
    (event,) = consumer.receive(b"\x00", now=0.0)
    assert event == ProtocolViolation("binary_frame", "a bytes message; only text frames are read")
    assert consumer.stats().refused == {"binary_frame": 1}


class _Version(str):
    """A str subclass whose own methods lie: the version is read by value."""

    def __len__(self) -> int:
        raise AssertionError("never called")


def test_a_str_subclass_version_is_read_by_value() -> None:
    assert parse_protocol_version(_Version("0.7")) == (0, 7)
    assert is_compatible(_Version("0.7"), [PROTOCOL_VERSION])
