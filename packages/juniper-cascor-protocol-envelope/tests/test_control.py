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
    CommandResponseData,
    CommandResponseEnvelope,
    CommandStatus,
    ConnectionEstablishedData,
    ControlCommand,
    ControlCommandName,
    parse_command,
    parse_command_json,
)
from juniper_cascor_protocol.envelope.validate import validate_envelope_json


def json_values_with(floats: st.SearchStrategy[float]) -> st.SearchStrategy[Any]:
    return st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**63) | floats | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=10), children, max_size=4)
        ),
        max_leaves=15,
    )


json_values = json_values_with(st.floats(allow_nan=False, allow_infinity=False))


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
    assert all(i is not None and len(i) == 32 and int(i, 16) >= 0 for i in ids)


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
        assert from_dict == from_json
    else:
        assert from_dict == from_json


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


class TestCommandId:
    """A request without ``command_id`` is answered without one, never with an invented one."""

    @pytest.mark.parametrize(
        "raw", ['{"command": "start"}', '{"command": "start", "command_id": null}']
    )
    def test_a_request_without_command_id_has_none(self, raw: str) -> None:
        for parsed in (parse_command_json(raw), parse_command(json.loads(raw))):
            assert isinstance(parsed, ControlCommand)
            assert parsed.command_id is None
            assert "command_id" not in parsed.to_wire_dict()
            assert "command_id" not in json.loads(parsed.to_wire_json())
            assert parse_command_json(parsed.to_wire_json()) == parsed

    @pytest.mark.parametrize(
        ("raw", "status", "code"),
        [
            ('{"command": "start"}', CommandStatus.SUCCESS, None),
            ('{"command": "teleport"}', CommandStatus.ERROR, UNKNOWN_COMMAND_CODE),
            ('{"command": "start", "params": 3}', CommandStatus.ERROR, INVALID_COMMAND_CODE),
        ],
    )
    def test_its_response_carries_no_command_id(
        self, raw: str, status: CommandStatus, code: str | None
    ) -> None:
        control = ControlBuilder(clock=lambda: 1.0)
        request = parse_command_json(raw)
        if isinstance(request, ControlCommand) and request.known_name is not None:
            response = control.command_response(request, CommandStatus.SUCCESS)
        else:
            response = control.rejection(request)
        wire = to_wire_dict(response)
        assert (wire["data"]["status"], wire["data"].get("code")) == (status, code)
        assert "command_id" not in wire["data"]

    def test_a_client_built_request_still_gets_a_fresh_id(self) -> None:
        request = ControlCommand(command="start")
        assert request.command_id is not None
        assert len(request.command_id) == 32
        assert json.loads(request.to_wire_json())["command_id"] == request.command_id


class TestWhatJsonLoadsReads:
    """``parse_command_json(raw)`` reads whatever ``json.loads(raw)`` reads."""

    def test_a_memoryview_is_read_like_its_bytes(self) -> None:
        raw = b'{"command": "start", "command_id": "c1", "params": {}}'
        parsed = parse_command_json(memoryview(raw))
        assert isinstance(parsed, ControlCommand)
        assert parsed == parse_command_json(raw)

    @pytest.mark.parametrize("depth", [230, 250, 600])
    def test_deeply_nested_json_is_a_request(self, depth: int) -> None:
        raw = '{"command": "set_params", "command_id": "c1", "params": {"x": '
        raw += "[" * depth + "]" * depth + "}}"
        parsed = parse_command_json(raw)
        assert isinstance(parsed, ControlCommand)
        assert parsed == parse_command(json.loads(raw))

    def test_json_too_deep_even_for_json_loads_is_malformed(self) -> None:
        raw = '{"command": "start", "params": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}"
        parsed = parse_command_json(raw)
        assert isinstance(parsed, CommandParseError)
        assert parsed.code == MALFORMED_JSON_CODE

    def test_a_lone_surrogate_is_refused_and_never_echoed(self) -> None:
        raw = '{"command": "\\ud800", "command_id": "c\\udc00"}'
        assert json.loads(raw)["command"] == "\ud800"
        parsed = parse_command_json(raw)
        assert isinstance(parsed, CommandParseError)
        assert parsed.code == INVALID_COMMAND_CODE
        assert {error.split(":")[0] for error in parsed.errors} == {"command", "command_id"}
        assert (parsed.command, parsed.command_id) == (None, None)
        json.loads(ControlBuilder().rejection(parsed).model_dump_json())  # serializable

    @pytest.mark.parametrize("raw", [5, None, ["{}"], {"command": "start"}])
    def test_what_is_not_text_or_bytes_is_a_caller_bug(self, raw: object) -> None:
        with pytest.raises(TypeError, match="raw must be str, bytes, bytearray or memoryview"):
            parse_command_json(raw)  # type: ignore[arg-type]


class TestStrictAndHostileFrames:
    """The same defences as ``validate_envelope``: strict, and no code of the frame's runs."""

    @pytest.mark.parametrize(
        ("frame", "field"),
        [
            ({"command": b"start"}, "command"),
            ({"command": bytearray(b"start")}, "command"),
            ({"command": "start", "command_id": b"c1"}, "command_id"),
            ({"command": "start", "command_id": 7.0}, "command_id"),
        ],
    )
    def test_values_of_the_wrong_type_are_not_coerced(
        self, frame: dict[str, Any], field: str
    ) -> None:
        parsed = parse_command(frame)
        assert isinstance(parsed, CommandParseError)
        assert parsed.code == INVALID_COMMAND_CODE
        assert any(error.startswith(f"{field}:") for error in parsed.errors), parsed.errors

    def test_a_dict_subclass_is_read_through_its_own_storage(self) -> None:
        class Hostile(dict[Any, Any]):
            def get(self, *args: object) -> object:
                raise RuntimeError("get")

            def items(self) -> Any:
                raise RuntimeError("items")

            def keys(self) -> Any:
                raise RuntimeError("keys")

            def __getitem__(self, key: object) -> object:
                raise RuntimeError("getitem")

            def __iter__(self) -> Any:
                raise RuntimeError("iter")

        valid = {"command": "pause", "command_id": "c1", "params": {}}
        assert parse_command(Hostile(valid)) == parse_command(valid)
        invalid = {"command": "pause", "command_id": "c1", "params": 3}
        failed = parse_command(Hostile(invalid))
        assert failed == parse_command(invalid)
        assert isinstance(failed, CommandParseError)
        assert (failed.command, failed.command_id) == ("pause", "c1")

    def test_str_subclasses_are_read_by_value(self) -> None:
        class Sly(str):
            armed = False  # hostile once the frame is built

            def __eq__(self, other: object) -> bool:
                if Sly.armed:
                    raise RuntimeError("eq")
                return str.__eq__(self, other)

            def __hash__(self) -> int:
                if Sly.armed:
                    raise RuntimeError("hash")
                return str.__hash__(self)

            def __str__(self) -> str:
                raise RuntimeError("str")

        frame = {Sly("command"): Sly("start"), Sly("command_id"): Sly("c1")}
        Sly.armed = True
        parsed = parse_command(frame)
        assert isinstance(parsed, ControlCommand)
        assert (type(parsed.command), parsed.command, parsed.command_id) == (str, "start", "c1")
        assert parsed.known_name is ControlCommandName.START
        Sly.armed = False
        frame = {Sly("command"): Sly("start"), Sly("command_id"): Sly("c" * 200)}
        Sly.armed = True
        failed = parse_command(frame)
        assert isinstance(failed, CommandParseError)
        assert failed.command == "start"

    def test_a_key_that_is_not_a_string_is_refused(self) -> None:
        class Unhashable:
            def __hash__(self) -> int:
                return 1

            def __eq__(self, other: object) -> bool:
                raise RuntimeError("eq")

        for key in (1, Unhashable(), b"command"):
            parsed = parse_command({key: "x", "command": "start"})
            assert isinstance(parsed, CommandParseError)
            assert parsed.errors == ("<frame>: every key must be a string",)

    def test_params_whose_keys_run_failing_code_never_raise(self) -> None:
        class Exploding(str):
            armed = False

            def __hash__(self) -> int:
                if Exploding.armed:
                    raise RuntimeError("hash")
                return str.__hash__(self)

        frame = {"command": "set_params", "params": {Exploding("lr"): 1}}
        Exploding.armed = True
        parsed = parse_command(frame)
        # Pydantic copies the params, reading the key by value or refusing it, depending on
        # its version: either way no exception, and no hostile key kept.
        if isinstance(parsed, ControlCommand):
            assert [type(key) for key in parsed.params] == [str]
        else:
            assert parsed.code == INVALID_COMMAND_CODE


json_values_with_non_finite = json_values_with(st.floats())


def _as_json_module_writes(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


class TestNonFiniteNumbersLeaveUnchanged:
    """``NaN`` and infinities in a control model are written as JSON's constants, not ``null``."""

    @given(params=st.dictionaries(st.text(max_size=10), json_values_with_non_finite, max_size=4))
    def test_a_request_writes_its_params_as_json_dumps_does(self, params: dict[str, Any]) -> None:
        request = ControlCommand(command="set_params", params=params)
        assert _as_json_module_writes(json.loads(request.to_wire_json())["params"]) == (
            _as_json_module_writes(params)
        )
        assert _as_json_module_writes(request.to_wire_dict()["params"]) == (
            _as_json_module_writes(params)
        )

    def test_a_relayed_request_is_sent_as_it_arrived(self) -> None:
        raw = (
            '{"command":"set_params","params":{"lr":NaN,"cap":Infinity},'
            '"command_id":"a","x":-Infinity}'
        )
        parsed = parse_command_json(raw)
        assert isinstance(parsed, ControlCommand)
        assert parsed.to_wire_json() == raw

    def test_response_data_dumped_on_its_own(self) -> None:
        data = CommandResponseData(
            command="start", status="success", result={"loss": float("nan")}, bound=float("inf")
        )
        text = data.model_dump_json(exclude_none=True)
        assert (
            text == '{"command":"start","status":"success","result":{"loss":NaN},"bound":Infinity}'
        )

    def test_greeting_data_dumped_on_its_own(self) -> None:
        data = ConnectionEstablishedData(server_version="1.0", load=float("-inf"))
        assert '"load":-Infinity' in data.model_dump_json()
