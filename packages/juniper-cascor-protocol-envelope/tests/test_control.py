"""/ws/control requests: names, statuses, the request model and its never-raising parsers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from juniper_cascor_protocol.envelope.builders import ControlBuilder, to_wire_dict
from juniper_cascor_protocol.envelope.control import (
    COMMAND_ID_MAX_LENGTH,
    COMMAND_NAME_MAX_LENGTH,
    INVALID_COMMAND_CODE,
    KNOWN_COMMANDS,
    MALFORMED_JSON_CODE,
    UNKNOWN_COMMAND_CODE,
    CommandParseError,
    CommandResponseEnvelope,
    CommandStatus,
    ControlCommand,
    ControlCommandName,
    parse_command,
    parse_command_json,
)
from juniper_cascor_protocol.envelope.validate import validate_envelope_json

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=15,
)


def test_the_six_commands_and_four_statuses_of_the_spec() -> None:
    assert [name.value for name in ControlCommandName] == [
        "start",
        "stop",
        "pause",
        "resume",
        "reset",
        "set_params",
    ]
    assert frozenset({"start", "stop", "pause", "resume", "reset", "set_params"}) == KNOWN_COMMANDS
    assert [status.value for status in CommandStatus] == ["success", "error", "timeout", "queued"]


@pytest.mark.parametrize("name", list(ControlCommandName))
def test_every_known_command_builds_and_parses_back(name: ControlCommandName) -> None:
    params = {"learning_rate": 0.01} if name is ControlCommandName.SET_PARAMS else {}
    request = ControlCommand(command=name, params=params)
    wire = request.to_wire_json()
    assert json.loads(wire) == {
        "command": name.value,
        "params": params,
        "command_id": request.command_id,
    }
    assert request.to_wire_dict() == json.loads(wire)
    for parsed in (parse_command_json(wire), parse_command(json.loads(wire))):
        assert parsed == request
        assert isinstance(parsed, ControlCommand)
        assert parsed.known_name is name


def test_command_id_defaults_to_a_fresh_uuid4_hex() -> None:
    ids = {ControlCommand(command="start").command_id for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_params_default_to_an_empty_object() -> None:
    parsed = parse_command_json('{"command": "pause", "command_id": "c1"}')
    assert isinstance(parsed, ControlCommand)
    assert parsed.params == {}


def test_unknown_command_is_accepted_for_forward_compatibility() -> None:
    parsed = parse_command_json('{"command": "checkpoint", "command_id": "c7", "params": {}}')
    assert isinstance(parsed, ControlCommand)
    assert parsed.known_name is None
    response = ControlBuilder(clock=lambda: 3.0).rejection(parsed)
    assert to_wire_dict(response) == {
        "type": "command_response",
        "timestamp": 3.0,
        "data": {
            "command": "checkpoint",
            "status": "error",
            "command_id": "c7",
            "error": "unknown command 'checkpoint'",
            "code": UNKNOWN_COMMAND_CODE,
        },
    }


def test_unknown_top_level_keys_are_kept() -> None:
    parsed = parse_command({"command": "start", "command_id": "c", "priority": 3})
    assert isinstance(parsed, ControlCommand)
    assert parsed.to_wire_dict()["priority"] == 3


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ({"command_id": "c1"}, "command"),
        ({"command": "", "command_id": "c1"}, "command"),
        ({"command": "x" * (COMMAND_NAME_MAX_LENGTH + 1), "command_id": "c1"}, "command"),
        ({"command": 7, "command_id": "c1"}, "command"),
        ({"command": "start", "command_id": "c" * (COMMAND_ID_MAX_LENGTH + 1)}, "command_id"),
        ({"command": "start", "command_id": 12}, "command_id"),
        ({"command": "start", "params": None}, "params"),
        ({"command": "start", "params": [1, 2]}, "params"),
    ],
)
def test_invalid_request_names_the_field(frame: dict[str, Any], field: str) -> None:
    for parsed in (parse_command(frame), parse_command_json(json.dumps(frame))):
        assert isinstance(parsed, CommandParseError)
        assert any(error.startswith(f"{field}:") for error in parsed.errors), parsed.errors
        assert parsed.code == INVALID_COMMAND_CODE


def test_parse_error_keeps_what_correlates_the_response() -> None:
    parsed = parse_command_json('{"command": "set_params", "command_id": "abc", "params": 5}')
    assert isinstance(parsed, CommandParseError)
    assert (parsed.command, parsed.command_id) == ("set_params", "abc")
    response = ControlBuilder(clock=lambda: 1.0).rejection(parsed)
    assert isinstance(validate_envelope_json(response.model_dump_json()), CommandResponseEnvelope)
    assert response.data.command_id == "abc"
    assert response.data.status == "error"
    assert response.data.code == INVALID_COMMAND_CODE
    assert response.data.error is not None
    assert "params:" in response.data.error


def test_overlong_identifiers_are_not_echoed() -> None:
    long_id = "i" * (COMMAND_ID_MAX_LENGTH + 1)
    parsed = parse_command({"command": "c" * 10_000, "command_id": long_id})
    assert isinstance(parsed, CommandParseError)
    assert (parsed.command, parsed.command_id) == (None, None)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff\xfe",
        "not json",
        "null",
        "[]",
        '"start"',
        "[" * 10_000,
        '{"command": "start", "params": ' + "{" * 5_000,
        '{"command": "start", "params": {"x": ' + "9" * 5_000 + "}}",
        '{"command": "\\ud800"}',
        "\ud800",
        '{"command": "start", "command": "stop"}',
        bytearray(b'{"command": "start"}'),
    ],
)
def test_parse_command_json_never_raises_on_hostile_text(raw: str | bytes | bytearray) -> None:
    parsed = parse_command_json(raw)
    assert isinstance(parsed, ControlCommand | CommandParseError)
    if isinstance(parsed, CommandParseError):
        assert parsed.errors
        assert len(parsed.errors) <= 8


@settings(max_examples=150, deadline=None)
@given(
    frame=json_values
    | st.dictionaries(st.sampled_from(["command", "params", "command_id"]), json_values)
)
def test_parsers_never_raise_and_agree(frame: Any) -> None:
    from_dict = parse_command(frame)
    from_json = parse_command_json(json.dumps(frame))
    assert type(from_dict) is type(from_json)
    if isinstance(from_dict, ControlCommand):
        assert isinstance(from_json, ControlCommand)
        # Without a command_id in the frame, each parse generates its own.
        generated = {"command_id"} if "command_id" not in frame else set()
        assert from_dict.model_dump(exclude=generated) == from_json.model_dump(exclude=generated)


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=200) | st.text(max_size=200))
def test_parse_command_json_never_raises_on_arbitrary_input(raw: bytes | str) -> None:
    assert isinstance(parse_command_json(raw), ControlCommand | CommandParseError)


@settings(max_examples=80, deadline=None)
@given(
    name=st.sampled_from(list(ControlCommandName)),
    params=st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    command_id=st.text(min_size=1, max_size=COMMAND_ID_MAX_LENGTH),
)
def test_any_request_round_trips(
    name: ControlCommandName, params: dict[str, Any], command_id: str
) -> None:
    request = ControlCommand(command=name, params=params, command_id=command_id)
    parsed = parse_command_json(request.to_wire_json())
    assert parsed == request


@pytest.mark.parametrize("raw", [b"", b"\xff\xfe", "not json", "[" * 10_000, '{"command": "st'])
def test_text_that_is_not_json_is_answered_as_malformed(raw: str | bytes) -> None:
    parsed = parse_command_json(raw)
    assert isinstance(parsed, CommandParseError)
    assert parsed.code == MALFORMED_JSON_CODE
    assert parsed.errors[0].startswith("request is not valid JSON")
    reply = ControlBuilder().rejection(parsed)
    assert (reply.data.status, reply.data.code) == ("error", MALFORMED_JSON_CODE)


@pytest.mark.parametrize("raw", ["null", "[]", '"start"', '{"params": {}}'])
def test_json_that_is_not_a_request_is_answered_as_invalid(raw: str) -> None:
    parsed = parse_command_json(raw)
    assert isinstance(parsed, CommandParseError)
    assert parsed.code == INVALID_COMMAND_CODE
    assert ControlBuilder().rejection(parsed).data.code == INVALID_COMMAND_CODE
