"""Worker messages: valid examples round-trip, every invalid field is reported precisely."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import pickle
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from juniper_cascor_protocol.worker import (
    RESULT_ACK_STATUSES,
    WORKER_MESSAGES,
    ConnectionEstablishedMessage,
    ErrorMessage,
    FieldError,
    HeartbeatMessage,
    RegisterMessage,
    RegistrationAckMessage,
    ResultAckMessage,
    TaskAssignMessage,
    TaskResultMessage,
    TensorManifest,
    TensorSpec,
    TokenRefreshMessage,
    WorkerMessage,
    WorkerMessageType,
    parse_worker_message,
)

MANIFEST = {
    "weights": {"shape": [4, 3], "dtype": "float32"},
    "bias": {"shape": [], "dtype": "<f8"},
}

VALID: dict[str, dict[str, Any]] = {
    "register": {
        "type": "register",
        "worker_id": "worker-01_a",
        "capabilities": {"gpu": False, "cores": 8, "activations": ["tanh"]},
    },
    "heartbeat": {"type": "heartbeat", "worker_id": "w1", "timestamp": 1_700_000_000.25},
    "task_result": {
        "type": "task_result",
        "task_id": "task-7",
        "candidate_id": 3,
        "candidate_uuid": "0c9a4e0e-57d7-4e57-9d3c-6a1f0d5d3b0e",
        "correlation": 0.75,
        "success": True,
        "epochs_completed": 120,
        "activation_name": "tanh",
        "all_correlations": [0.5, 0.75, 0.25],
        "numerator": 3.5,
        "denominator": -2.0,
        "best_corr_idx": 1,
        "error_message": None,
        "tensor_manifest": MANIFEST,
    },
    "registration_ack": {
        "type": "registration_ack",
        "worker_id": "w1",
        "heartbeat_interval": 15.0,
    },
    "result_ack": {"type": "result_ack", "task_id": "task-7", "status": "accepted"},
    "task_assign": {
        "type": "task_assign",
        "task_id": "task-7",
        "round_id": "round-2",
        "candidate_index": 0,
        "candidate_data": {"activation": "tanh", "seed": 42},
        "training_params": {"epochs": 200, "learning_rate": 0.01},
        "tensor_manifest": MANIFEST,
    },
    "token_refresh": {"type": "token_refresh", "token": "s3cret", "expires_at": 1_700_003_600},
    "connection_established": {
        "type": "connection_established",
        "server_version": "0.9.1",
        "protocol_version": "0.3.0",
    },
    "error": {
        "type": "error",
        "error": "bad frame",
        "details": "dtype 'O' refused",
        "timestamp": 1_700_000_000.0,
    },
}

MINIMAL: dict[str, dict[str, Any]] = {
    "registration_ack": {"type": "registration_ack"},
    "token_refresh": {"type": "token_refresh", "token": "t"},
    "connection_established": {"type": "connection_established"},
    "error": {"type": "error", "error": "oops", "timestamp": 0},
    "result_ack": {"type": "result_ack", "task_id": "t", "status": "stale"},
}


REQUIRED: dict[str, list[str]] = {
    "task_result": ["task_id", "candidate_id", "correlation", "success", "epochs_completed"],
}
"""Required fields of the messages whose valid example also holds optional ones."""


def valid(message_type: str, **changes: Any) -> dict[str, Any]:
    message = copy.deepcopy(VALID[message_type])
    message.update(changes)
    return message


def parse_ok(obj: dict[str, Any]) -> WorkerMessage:
    parsed = parse_worker_message(obj)
    assert isinstance(parsed, WorkerMessage), parsed
    return parsed


def errors_of(obj: object) -> list[FieldError]:
    parsed = parse_worker_message(obj)
    assert isinstance(parsed, list), parsed
    return parsed


def test_registry_follows_the_enum_and_each_class_carries_its_type() -> None:
    assert list(WORKER_MESSAGES) == list(WorkerMessageType)
    assert set(VALID) == {member.value for member in WorkerMessageType}
    for message_type, message_class in WORKER_MESSAGES.items():
        assert message_class.TYPE is message_type


@pytest.mark.parametrize("message_type", list(VALID))
def test_valid_example_parses_to_its_class_and_round_trips(message_type: str) -> None:
    obj = valid(message_type)
    parsed = parse_ok(obj)
    assert type(parsed) is WORKER_MESSAGES[WorkerMessageType(message_type)]
    assert type(parsed).parse(obj) == parsed
    assert parsed.to_wire() == obj
    assert json.loads(json.dumps(parsed.to_wire())) == obj


@pytest.mark.parametrize("message_type", list(MINIMAL))
def test_minimal_example_parses_and_round_trips(message_type: str) -> None:
    obj = MINIMAL[message_type]
    assert parse_ok(obj).to_wire() == obj


@pytest.mark.parametrize("message_type", list(VALID))
def test_unknown_keys_are_kept_and_written_back(message_type: str) -> None:
    obj = valid(message_type, added_in_a_later_version={"nested": [1, None]}, flag=True)
    parsed = parse_ok(obj)
    assert dict(parsed.extra) == {"added_in_a_later_version": {"nested": [1, None]}, "flag": True}
    assert parsed.to_wire() == obj


def test_typed_values_are_what_the_fields_say() -> None:
    result = parse_ok(valid("task_result", numerator=3, correlation=1))
    assert isinstance(result, TaskResultMessage)
    assert type(result.numerator) is float
    assert type(result.correlation) is float
    assert result.tensor_manifest["weights"] == TensorSpec([4, 3], "float32")
    assign = parse_ok(valid("task_assign"))
    assert isinstance(assign, TaskAssignMessage)
    assert list(assign.tensor_manifest) == ["weights", "bias"]


def test_messages_built_in_code_serialise_with_their_type() -> None:
    heartbeat = HeartbeatMessage(worker_id="w1", timestamp=12.5)
    assert heartbeat.to_wire() == {"type": "heartbeat", "worker_id": "w1", "timestamp": 12.5}
    ack = ResultAckMessage(task_id="t", status="rejected", reason="NaN weights")
    assert ack.to_wire() == {
        "type": "result_ack",
        "task_id": "t",
        "status": "rejected",
        "reason": "NaN weights",
    }
    error = ErrorMessage(error="boom", timestamp=1.0)
    assert error.to_wire() == {"type": "error", "error": "boom", "timestamp": 1.0}
    assert ConnectionEstablishedMessage().to_wire() == {"type": "connection_established"}


def test_with_extra_adds_keys_but_fields_win() -> None:
    register = RegisterMessage(worker_id="w1", capabilities={})
    extended = register.with_extra({"zone": "eu", "worker_id": "ignored"})
    assert extended.to_wire() == {
        "type": "register",
        "worker_id": "w1",
        "capabilities": {},
        "zone": "eu",
    }
    assert register.to_wire() == {"type": "register", "worker_id": "w1", "capabilities": {}}


def test_extra_is_read_only_and_to_wire_does_not_alias_the_message() -> None:
    parsed = parse_ok(valid("register", zone="eu"))
    with pytest.raises(TypeError):
        parsed.extra["zone"] = "us"  # type: ignore[index]
    wire = parsed.to_wire()
    wire["capabilities"]["gpu"] = True
    assert isinstance(parsed, RegisterMessage)
    assert parsed.capabilities["gpu"] is False


def test_messages_are_frozen() -> None:
    heartbeat = HeartbeatMessage(worker_id="w1", timestamp=1.0)
    with pytest.raises(AttributeError):
        heartbeat.timestamp = 2.0  # type: ignore[misc]


def test_token_is_not_in_repr() -> None:
    assert "s3cret" not in repr(parse_ok(valid("token_refresh")))
    assert "s3cret" not in repr(TokenRefreshMessage(token="s3cret"))


def test_optional_null_is_accepted_and_omitted() -> None:
    parsed = parse_ok(valid("error", details=None))
    assert isinstance(parsed, ErrorMessage)
    assert parsed.details is None
    assert "details" not in parsed.to_wire()


def test_task_result_requires_only_what_juniper_cascor_requires() -> None:
    required = {key: VALID["task_result"][key] for key in ["type", *REQUIRED["task_result"]]}
    parsed = parse_ok(required)
    assert parsed.to_wire() == {**required, "error_message": None, "tensor_manifest": {}}
    failed = parse_ok(valid("task_result", success=False, error_message="diverged"))
    assert isinstance(failed, TaskResultMessage)
    assert failed.error_message == "diverged"


@pytest.mark.parametrize("status", RESULT_ACK_STATUSES)
def test_every_result_ack_status_is_accepted(status: str) -> None:
    assert parse_ok(valid("result_ack", status=status)).to_wire()["status"] == status


@pytest.mark.parametrize(
    "worker_id", ["a", "A" * 64, "0-_", "w1", "Worker_01-blue"], ids=lambda value: value[:8]
)
def test_worker_id_pattern_accepts(worker_id: str) -> None:
    parse_ok(valid("register", worker_id=worker_id))


WORKER_ID_REFUSAL = (
    "expected 1-64 ASCII letters, digits, '_' or '-', starting with a letter or digit "
    "(^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$), got "
)


@pytest.mark.parametrize(
    "worker_id",
    ["", "-w", "_w", "a" * 64 + "b", "w1\n", "\nw1", "w 1", "w.1", "wé", "w\u0663", "w1\x00"],
    ids=repr,
)
def test_worker_id_pattern_refuses(worker_id: str) -> None:
    (error,) = errors_of(valid("heartbeat", worker_id=worker_id))
    assert error.path == ("worker_id",)
    assert error.message.startswith(WORKER_ID_REFUSAL)
    shown = repr(worker_id)
    assert error.message.endswith(shown if len(shown) <= 60 else "...")


NOT_STRING = "expected a string, got "
NOT_NUMBER = "expected a number, got "
NOT_INTEGER = "expected an integer, got "
NOT_FINITE = "must be a finite number, got "
NO_STR_KEYS = "object keys must be strings, got integer"
HUGE = "number out of range for a float: an integer of about 401 digits"
STATUSES = "expected one of accepted, duplicate, stale, rejected, got 'ok'"

# Each case: message type, field, bad value, expected path, expected message.
INVALID_FIELDS: list[tuple[str, str, object, tuple[str | int, ...], str]] = [
    ("register", "worker_id", 7, ("worker_id",), NOT_STRING + "integer"),
    ("register", "capabilities", [], ("capabilities",), "expected an object, got array"),
    ("register", "capabilities", {1: "x"}, ("capabilities", "1"), NO_STR_KEYS),
    ("heartbeat", "timestamp", True, ("timestamp",), NOT_NUMBER + "boolean"),
    ("heartbeat", "timestamp", "1.0", ("timestamp",), NOT_NUMBER + "string"),
    ("heartbeat", "timestamp", math.nan, ("timestamp",), NOT_FINITE + "nan"),
    ("heartbeat", "timestamp", -math.inf, ("timestamp",), NOT_FINITE + "-inf"),
    ("heartbeat", "timestamp", 10**400, ("timestamp",), HUGE),
    ("heartbeat", "timestamp", None, ("timestamp",), NOT_NUMBER + "null"),
    ("registration_ack", "heartbeat_interval", 0, ("heartbeat_interval",), "must be > 0, got 0.0"),
    ("registration_ack", "worker_id", "-x", ("worker_id",), WORKER_ID_REFUSAL + "'-x'"),
    ("task_assign", "task_id", None, ("task_id",), NOT_STRING + "null"),
    ("task_assign", "round_id", 2, ("round_id",), NOT_STRING + "integer"),
    ("task_assign", "candidate_index", -1, ("candidate_index",), "must be >= 0, got -1"),
    ("task_assign", "candidate_index", 1.0, ("candidate_index",), NOT_INTEGER + "number"),
    ("task_assign", "candidate_index", False, ("candidate_index",), NOT_INTEGER + "boolean"),
    ("task_assign", "candidate_data", "x", ("candidate_data",), "expected an object, got string"),
    ("task_assign", "training_params", None, ("training_params",), "expected an object, got null"),
    ("task_assign", "tensor_manifest", [], ("tensor_manifest",), "expected an object, got array"),
    ("task_result", "correlation", 1.5, ("correlation",), "must be in [0, 1], got 1.5"),
    ("task_result", "correlation", -0.01, ("correlation",), "must be in [0, 1], got -0.01"),
    ("task_result", "correlation", math.nan, ("correlation",), NOT_FINITE + "nan"),
    ("task_result", "correlation", True, ("correlation",), NOT_NUMBER + "boolean"),
    ("task_result", "success", 1, ("success",), "expected a boolean, got integer"),
    ("task_result", "success", "true", ("success",), "expected a boolean, got string"),
    ("task_result", "epochs_completed", -3, ("epochs_completed",), "must be >= 0, got -3"),
    ("task_result", "candidate_id", "3", ("candidate_id",), NOT_INTEGER + "string"),
    ("task_result", "best_corr_idx", 1.5, ("best_corr_idx",), NOT_INTEGER + "number"),
    (
        "task_result",
        "all_correlations",
        0.5,
        ("all_correlations",),
        "expected an array of numbers, got number",
    ),
    (
        "task_result",
        "all_correlations",
        [0.1, math.inf],
        ("all_correlations", 1),
        NOT_FINITE + "inf",
    ),
    ("task_result", "all_correlations", [False], ("all_correlations", 0), NOT_NUMBER + "boolean"),
    ("task_result", "numerator", math.nan, ("numerator",), NOT_FINITE + "nan"),
    ("task_result", "denominator", [1.0], ("denominator",), NOT_NUMBER + "array"),
    ("task_result", "error_message", 5, ("error_message",), NOT_STRING + "integer"),
    ("task_result", "activation_name", 7, ("activation_name",), NOT_STRING + "integer"),
    ("result_ack", "status", "ok", ("status",), STATUSES),
    ("token_refresh", "token", None, ("token",), NOT_STRING + "null"),
    ("token_refresh", "expires_at", "soon", ("expires_at",), NOT_NUMBER + "string"),
    ("connection_established", "server_version", 1, ("server_version",), NOT_STRING + "integer"),
    ("error", "details", {"a": 1}, ("details",), NOT_STRING + "object"),
    ("error", "error", None, ("error",), NOT_STRING + "null"),
]


@pytest.mark.parametrize(
    ("message_type", "name", "value", "path", "message"),
    INVALID_FIELDS,
    ids=[f"{case[0]}.{case[1]}={case[2]!r}"[:60] for case in INVALID_FIELDS],
)
def test_invalid_field_is_reported_at_its_path(
    message_type: str, name: str, value: object, path: tuple[str | int, ...], message: str
) -> None:
    obj = valid(message_type, **{name: value})
    expected = [FieldError(path, message)]
    assert errors_of(obj) == expected
    assert WORKER_MESSAGES[WorkerMessageType(message_type)].parse(obj) == expected


@pytest.mark.parametrize("message_type", list(VALID))
def test_every_missing_required_field_is_reported(message_type: str) -> None:
    message_class = WORKER_MESSAGES[WorkerMessageType(message_type)]
    required = REQUIRED.get(message_type) or [
        key for key in MINIMAL.get(message_type, VALID[message_type]) if key != "type"
    ]
    parsed = message_class.parse({"type": message_type})
    if required:
        assert parsed == [FieldError((key,), "missing required field") for key in required]
    else:
        assert isinstance(parsed, message_class)


PLAIN_DTYPE = "expected a plain numeric dtype string such as 'float32' or '<f4', got "
BELOW_2_32 = "must be below 2**32 (a frame's u32), got 4294967296"
INVALID_MANIFESTS: list[tuple[object, tuple[str | int, ...], str]] = [
    ({"w": 3}, ("w",), "expected an object, got integer"),
    ({"w": {"dtype": "float32"}}, ("w", "shape"), "missing required field"),
    ({"w": {"shape": [1]}}, ("w", "dtype"), "missing required field"),
    (
        {"w": {"shape": "2", "dtype": "f4"}},
        ("w", "shape"),
        "expected an array of integers, got string",
    ),
    ({"w": {"shape": [2, -1], "dtype": "f4"}}, ("w", "shape", 1), "must be >= 0, got -1"),
    ({"w": {"shape": [True], "dtype": "f4"}}, ("w", "shape", 0), NOT_INTEGER + "boolean"),
    ({"w": {"shape": [2.0], "dtype": "f4"}}, ("w", "shape", 0), NOT_INTEGER + "number"),
    ({"w": {"shape": [2**32], "dtype": "f4"}}, ("w", "shape", 0), BELOW_2_32),
    ({"w": {"shape": [1] * 11, "dtype": "f4"}}, ("w", "shape"), "at most 10 dimensions, got 11"),
    ({"w": {"shape": [], "dtype": "O"}}, ("w", "dtype"), PLAIN_DTYPE + "'O'"),
    ({"w": {"shape": [], "dtype": "(2,)f4"}}, ("w", "dtype"), PLAIN_DTYPE + "'(2,)f4'"),
    ({"w": {"shape": [], "dtype": 4}}, ("w", "dtype"), NOT_STRING + "integer"),
    ({3: {"shape": [], "dtype": "bool"}}, ("3",), NO_STR_KEYS),
]


@pytest.mark.parametrize(
    ("manifest", "path", "message"),
    INVALID_MANIFESTS,
    ids=[str(case[1]) for case in INVALID_MANIFESTS],
)
@pytest.mark.parametrize("message_type", ["task_assign", "task_result"])
def test_invalid_manifest_entry_is_reported_at_its_path(
    message_type: str, manifest: object, path: tuple[str | int, ...], message: str
) -> None:
    obj = valid(message_type, tensor_manifest=manifest)
    assert errors_of(obj) == [FieldError(("tensor_manifest", *path), message)]


def test_all_problems_are_reported_together() -> None:
    obj = valid(
        "task_result",
        correlation=2.0,
        success="yes",
        all_correlations=[math.nan, "x"],
        tensor_manifest={"w": {"shape": [-1], "dtype": "V8"}},
    )
    del obj["task_id"]
    assert errors_of(obj) == [
        FieldError(("task_id",), "missing required field"),
        FieldError(("correlation",), "must be in [0, 1], got 2.0"),
        FieldError(("success",), "expected a boolean, got string"),
        FieldError(("all_correlations", 0), "must be a finite number, got nan"),
        FieldError(("all_correlations", 1), "expected a number, got string"),
        FieldError(("tensor_manifest", "w", "shape", 0), "must be >= 0, got -1"),
        FieldError(
            ("tensor_manifest", "w", "dtype"),
            "expected a plain numeric dtype string such as 'float32' or '<f4', got 'V8'",
        ),
    ]


def test_class_parse_refuses_another_type_and_a_missing_type() -> None:
    assert RegisterMessage.parse(valid("heartbeat", type="register")) == [
        FieldError(("capabilities",), "missing required field")
    ]
    heartbeat = valid("heartbeat")
    assert HeartbeatMessage.parse({**heartbeat, "type": "register"}) == [
        FieldError(("type",), "expected 'heartbeat' for HeartbeatMessage, got 'register'")
    ]
    del heartbeat["type"]
    assert HeartbeatMessage.parse(heartbeat) == [FieldError(("type",), "missing required field")]
    assert HeartbeatMessage.parse({**heartbeat, "type": ["heartbeat"]}) == [
        FieldError(("type",), "expected 'heartbeat' for HeartbeatMessage, got array")
    ]


@pytest.mark.parametrize(
    "obj", [None, [], "register", 3, 2.5, True, ("type", "register")], ids=repr
)
def test_non_object_is_one_error(obj: object) -> None:
    assert len(errors_of(obj)) == 1
    assert errors_of(obj)[0].path == ()
    assert errors_of(obj)[0].message.startswith("expected a JSON object, got ")
    assert RegistrationAckMessage.parse(obj) == errors_of(obj)


def test_dispatch_errors_on_the_type_key() -> None:
    assert errors_of({}) == [FieldError(("type",), "missing required field")]
    assert errors_of({"type": ["register"]}) == [
        FieldError(("type",), "expected a string, got array")
    ]
    assert errors_of({"type": None}) == [FieldError(("type",), "expected a string, got null")]
    unknown = errors_of({"type": "metrics"})
    assert unknown == [
        FieldError(
            ("type",),
            "unknown worker message type 'metrics'; expected one of register, heartbeat, "
            "task_result, registration_ack, result_ack, task_assign, token_refresh, "
            "connection_established, error",
        )
    ]


def test_long_values_are_shortened_in_messages() -> None:
    (error,) = errors_of(valid("register", worker_id="x" * 10_000))
    assert len(error.message) < 200
    assert error.message.endswith("...")


def test_field_error_renders_its_path() -> None:
    nested = FieldError(("tensor_manifest", "w", "shape", 1), "bad")
    assert str(nested) == "tensor_manifest.w.shape[1]: bad"
    assert str(FieldError((), "not an object")) == "(message): not an object"


# --- properties ------------------------------------------------------------------------------

SETTINGS = settings(max_examples=200, deadline=None)

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([10**400, -(10**400), 2**64, 0, -1]),
    st.floats(),  # NaN and infinities included
    st.text(max_size=20),
    st.sampled_from(list(WorkerMessageType)),
)
JSON_LIKE = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=10), children, max_size=4),
    ),
    max_leaves=20,
)
KEYS = st.one_of(
    st.sampled_from(sorted({key for message in VALID.values() for key in message})),
    st.text(max_size=10),
    st.integers(),
    st.none(),
    st.tuples(st.integers()),
)
ANY_DICT = st.dictionaries(KEYS, JSON_LIKE, max_size=8)


def assert_parse_result(result: object) -> None:
    """A parse result is a message that serialises, or a non-empty list of FieldErrors."""
    if isinstance(result, list):
        assert result
        assert all(isinstance(error, FieldError) for error in result)
        assert all(isinstance(part, str | int) for error in result for part in error.path)
    else:
        assert isinstance(result, WorkerMessage)
        assert result.to_wire()["type"] == result.TYPE


@SETTINGS
@given(st.one_of(ANY_DICT, JSON_LIKE))
def test_parse_never_raises_on_arbitrary_input(obj: object) -> None:
    assert_parse_result(parse_worker_message(obj))
    for message_class in WORKER_MESSAGES.values():
        assert_parse_result(message_class.parse(obj))


@SETTINGS
@given(
    st.sampled_from(list(VALID)),
    st.dictionaries(
        st.sampled_from(sorted({key for message in VALID.values() for key in message})),
        JSON_LIKE,
        max_size=4,
    ),
)
def test_parse_never_raises_on_valid_messages_with_fields_replaced(
    message_type: str, replacements: dict[str, Any]
) -> None:
    obj = {**copy.deepcopy(VALID[message_type]), **replacements}
    result = parse_worker_message(obj)
    assert_parse_result(result)
    if isinstance(result, WorkerMessage):
        assert type(result).parse(result.to_wire()) == result


MANIFESTS = st.dictionaries(
    st.text(max_size=8),
    st.fixed_dictionaries(
        {
            "shape": st.lists(st.integers(0, 2**32 - 1), max_size=10),
            "dtype": st.sampled_from(["float32", "<f4", ">f8", "bool", "int8", "uint64"]),
        }
    ),
    max_size=4,
)
FINITE = st.floats(allow_nan=False, allow_infinity=False)


@SETTINGS
@given(
    st.fixed_dictionaries(
        {
            "type": st.just("task_result"),
            "task_id": st.text(),
            "candidate_id": st.integers(),
            "candidate_uuid": st.text(),
            "correlation": st.floats(0, 1),
            "success": st.booleans(),
            "epochs_completed": st.integers(min_value=0),
            "activation_name": st.text(),
            "all_correlations": st.lists(FINITE, max_size=5),
            "numerator": FINITE,
            "denominator": FINITE,
            "best_corr_idx": st.integers(),
            "error_message": st.none() | st.text(),
            "tensor_manifest": MANIFESTS,
        }
    ),
    st.dictionaries(
        st.text(max_size=8).filter(lambda key: key not in VALID["task_result"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
        max_size=3,
    ),
)
def test_generated_valid_task_results_round_trip(
    obj: dict[str, Any], extra: dict[str, Any]
) -> None:
    obj.update(extra)
    result = parse_worker_message(obj)
    assert isinstance(result, WorkerMessage), result
    assert result.to_wire() == obj
    manifest = TensorManifest.parse(obj["tensor_manifest"])
    assert isinstance(manifest, dict)
    assert TensorManifest.to_wire(manifest) == obj["tensor_manifest"]


# --- copies and pickles keep the keys a newer peer added ---------------------------------------

NEWER_KEYS: dict[str, Any] = {"added_later": {"nested": [1, None]}, "flag": True}
ENTRY_KEYS: dict[str, Any] = {"layout": "row-major", "scale": [0.5]}


def with_newer_keys(message_type: str) -> dict[str, Any]:
    """A valid message with unknown keys at the top and, if it has a manifest, in its entries."""
    obj = valid(message_type, **copy.deepcopy(NEWER_KEYS))
    for entry in obj.get("tensor_manifest", {}).values():
        entry.update(copy.deepcopy(ENTRY_KEYS))
    return obj


def pickled(protocol: int) -> Callable[[Any], Any]:
    def round_trip(obj: Any) -> Any:
        return pickle.loads(pickle.dumps(obj, protocol))

    return round_trip


COPIES: dict[str, Callable[[Any], Any]] = {
    "copy.copy": copy.copy,
    "copy.deepcopy": copy.deepcopy,
    **{
        f"pickle protocol {protocol}": pickled(protocol)
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1)
    },
}


@pytest.mark.parametrize("how", list(COPIES))
@pytest.mark.parametrize("message_type", list(VALID))
def test_copies_and_pickles_keep_unknown_keys(message_type: str, how: str) -> None:
    obj = with_newer_keys(message_type)
    parsed = parse_ok(obj)
    duplicate = COPIES[how](parsed)
    assert type(duplicate) is type(parsed)
    assert duplicate == parsed
    assert duplicate.extra == NEWER_KEYS
    assert duplicate.to_wire() == obj


@pytest.mark.parametrize("how", list(COPIES))
def test_copies_and_pickles_of_a_tensor_spec_keep_unknown_keys(how: str) -> None:
    assign = parse_ok(with_newer_keys("task_assign"))
    assert isinstance(assign, TaskAssignMessage)
    spec = assign.tensor_manifest["weights"]
    duplicate = COPIES[how](spec)
    assert isinstance(duplicate, TensorSpec)
    assert duplicate == spec
    assert duplicate.extra == ENTRY_KEYS
    assert TensorManifest.to_wire({"weights": duplicate}) == {
        "weights": {"shape": [4, 3], "dtype": "float32", **ENTRY_KEYS}
    }


def test_deepcopy_copies_the_unknown_keys_and_copy_shares_them() -> None:
    parsed = parse_ok(with_newer_keys("heartbeat"))
    deep = copy.deepcopy(parsed)
    assert deep.extra["added_later"] == parsed.extra["added_later"]
    assert deep.extra["added_later"] is not parsed.extra["added_later"]
    assert copy.copy(parsed).extra["added_later"] is parsed.extra["added_later"]


def test_messages_without_unknown_keys_still_copy_and_pickle() -> None:
    built = HeartbeatMessage(worker_id="w1", timestamp=1.0)
    for how in COPIES.values():
        duplicate = how(built)
        assert duplicate == built
        assert duplicate.extra == {}


def test_a_message_inside_its_own_field_survives_deepcopy_and_pickle() -> None:
    register = RegisterMessage(worker_id="w1", capabilities={}).with_extra({"zone": "eu"})
    register.capabilities["self"] = register
    for duplicate in (copy.deepcopy(register), pickle.loads(pickle.dumps(register))):
        assert isinstance(duplicate, RegisterMessage)
        assert duplicate.capabilities["self"] is duplicate
        assert duplicate.extra == {"zone": "eu"}


def test_replace_builds_from_fields_and_with_extra_carries_the_unknown_keys() -> None:
    parsed = parse_ok(with_newer_keys("heartbeat"))
    assert isinstance(parsed, HeartbeatMessage)
    updated = dataclasses.replace(parsed, timestamp=2.0).with_extra(parsed.extra)
    assert updated.to_wire() == {**with_newer_keys("heartbeat"), "timestamp": 2.0}


def test_to_wire_writes_mapping_and_sequence_fields_in_json_types() -> None:
    counts: defaultdict[str, int] = defaultdict(int, cores=8)
    register = RegisterMessage(worker_id="w1", capabilities=counts)
    assert register.to_wire() == {
        "type": "register",
        "worker_id": "w1",
        "capabilities": {"cores": 8},
    }
    assert type(register.to_wire()["capabilities"]) is dict
    assign = TaskAssignMessage(
        task_id="t",
        round_id="r",
        candidate_index=0,
        candidate_data=OrderedDict(seed=1),
        training_params=MappingProxyType({"epochs": 2}),  # type: ignore[arg-type]
        tensor_manifest={},
    )
    wire = assign.to_wire()
    assert json.loads(json.dumps(wire)) == wire
    assert [type(wire[key]) for key in ("candidate_data", "training_params")] == [dict, dict]
    result = parse_ok(valid("task_result"))
    assert isinstance(result, TaskResultMessage)
    from_tuple = dataclasses.replace(result, all_correlations=(0.5, 0.25))  # type: ignore[arg-type]
    assert from_tuple.to_wire()["all_correlations"] == [0.5, 0.25]
