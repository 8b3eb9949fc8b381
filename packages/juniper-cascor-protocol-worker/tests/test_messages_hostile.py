"""Worker message parsing on hostile input: subclasses whose methods raise, and raw JSON text.

``parse_worker_message`` and every ``parse`` read a dict subclass as stored and a str, int or
float subclass by value, so none of the overridden methods below ever runs;
``parse_worker_message_json`` never raises on any text or bytes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from juniper_cascor_protocol.worker import (
    MALFORMED_JSON,
    WORKER_MESSAGES,
    FieldError,
    HeartbeatMessage,
    TaskAssignMessage,
    WorkerMessage,
    parse_worker_message,
    parse_worker_message_json,
)


class TripwireError(Exception):
    """Raised by every overridden method: the test fails if parsing calls one."""


class Armed:
    """While ``on``, every override below raises :class:`TripwireError`."""

    on: ClassVar[bool] = False


@contextmanager
def tripwires() -> Iterator[None]:
    """Arm the overrides for the code under test only (building the input calls them)."""
    Armed.on = True
    try:
        yield
    finally:
        Armed.on = False


def trip() -> None:
    if Armed.on:
        raise TripwireError


class HostileDict(dict[Any, Any]):
    def get(self, *args: Any) -> Any:
        trip()
        return super().get(*args)

    def items(self) -> Any:
        trip()
        return super().items()

    def keys(self) -> Any:
        trip()
        return super().keys()

    def values(self) -> Any:
        trip()
        return super().values()

    def __iter__(self) -> Any:
        trip()
        return super().__iter__()

    def __getitem__(self, key: Any) -> Any:
        trip()
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        trip()
        return super().__contains__(key)

    def __len__(self) -> int:
        trip()
        return super().__len__()

    def copy(self) -> Any:
        trip()
        return super().copy()


class HostileList(list[Any]):
    def __iter__(self) -> Any:
        trip()
        return super().__iter__()

    def __len__(self) -> int:
        trip()
        return super().__len__()

    def __getitem__(self, index: Any) -> Any:
        trip()
        return super().__getitem__(index)


class HostileStr(str):
    __slots__ = ()

    def __hash__(self) -> int:
        trip()
        return str.__hash__(self)

    def __eq__(self, other: object) -> bool:
        trip()
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        trip()
        return str.__ne__(self, other)

    def __getitem__(self, index: Any) -> str:
        trip()
        return str.__getitem__(self, index)

    def __len__(self) -> int:
        trip()
        return str.__len__(self)

    def __iter__(self) -> Iterator[str]:
        trip()
        return str.__iter__(self)

    def __str__(self) -> str:
        trip()
        return str.__str__(self)

    def __repr__(self) -> str:
        trip()
        return str.__repr__(self)

    def encode(self, *args: Any, **kwargs: Any) -> bytes:
        trip()
        return str.encode(self, *args, **kwargs)


class HostileInt(int):
    def __int__(self) -> int:
        trip()
        return int.__int__(self)

    def __index__(self) -> int:
        trip()
        return int.__index__(self)

    def __float__(self) -> float:
        trip()
        return int.__float__(self)

    def __lt__(self, other: object) -> bool:
        trip()
        return int.__lt__(self, other)  # type: ignore[operator]

    def __ge__(self, other: object) -> bool:
        trip()
        return int.__ge__(self, other)  # type: ignore[operator]

    def __repr__(self) -> str:
        trip()
        return int.__repr__(self)

    def __hash__(self) -> int:
        trip()
        return int.__hash__(self)

    def __eq__(self, other: object) -> bool:
        trip()
        return int.__eq__(self, other)

    def bit_length(self) -> int:
        trip()
        return int.bit_length(self)


class HostileFloat(float):
    def __float__(self) -> float:
        trip()
        return float.__float__(self)

    def __repr__(self) -> str:
        trip()
        return float.__repr__(self)

    def __le__(self, other: object) -> bool:
        trip()
        return float.__le__(self, other)  # type: ignore[operator]


class Twin(str):
    """Equal only to itself, so a dict holds it beside the plain ``str`` of the same text."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return str.__hash__(self)


class LyingClass:
    """Claims to be a dict through ``__class__``, which ``isinstance`` consults."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        trip()
        return HostileDict


def hostile(value: Any) -> Any:
    """The same JSON value built from the hostile subclasses, all the way down."""
    if isinstance(value, dict):
        return HostileDict({HostileStr(key): hostile(item) for key, item in value.items()})
    if isinstance(value, list):
        return HostileList(hostile(item) for item in value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return HostileInt(value)
    if isinstance(value, float):
        return HostileFloat(value)
    if isinstance(value, str):
        return HostileStr(value)
    raise AssertionError(value)


MANIFEST = {"weights": {"shape": [4, 3], "dtype": "float32", "note": "kept"}}
MESSAGES: dict[str, dict[str, Any]] = {
    "heartbeat": {"type": "heartbeat", "worker_id": "w1", "timestamp": 17.5, "load": 0.5},
    "register": {"type": "register", "worker_id": "w1", "capabilities": {"cores": 8}},
    "task_assign": {
        "type": "task_assign",
        "task_id": "t",
        "round_id": "r",
        "candidate_index": 2,
        "candidate_data": {"seed": 1},
        "training_params": {"epochs": 3},
        "tensor_manifest": MANIFEST,
    },
    "task_result": {
        "type": "task_result",
        "task_id": "t",
        "candidate_id": 3,
        "correlation": 0.5,
        "success": True,
        "epochs_completed": 12,
        "all_correlations": [0.25, 0.5],
        "error_message": None,
        "tensor_manifest": MANIFEST,
    },
    "result_ack": {"type": "result_ack", "task_id": "t", "status": "accepted"},
    "registration_ack": {"type": "registration_ack", "worker_id": "w1", "heartbeat_interval": 5},
}


def exact_types(value: object) -> bool:
    """True when ``value`` holds built-in JSON types only, subclasses nowhere."""
    if isinstance(value, dict):
        return type(value) is dict and all(
            type(key) is str and exact_types(item) for key, item in dict.items(value)
        )
    if isinstance(value, list):
        return type(value) is list and all(exact_types(item) for item in list.copy(value))
    return value is None or type(value) in (bool, int, float, str)


@pytest.mark.parametrize("name", list(MESSAGES))
def test_hostile_subclasses_parse_like_the_plain_message(name: str) -> None:
    plain = MESSAGES[name]
    expected = parse_worker_message(plain)
    assert isinstance(expected, WorkerMessage), expected
    subject = hostile(plain)
    with tripwires():
        parsed = parse_worker_message(subject)
        again = type(expected).parse(subject)
    assert parsed == again == expected
    # Strings, numbers and the fields' own containers are plain: read by value.
    assert isinstance(parsed, WorkerMessage)
    for spec in parsed._FIELDS:
        value = getattr(parsed, spec.name)
        if spec.name != "tensor_manifest" and isinstance(value, str | int | float | list):
            assert exact_types(value), (spec.name, type(value))
    assert parsed.to_wire() == plain


def test_hostile_values_that_are_invalid_are_reported_without_running_their_methods() -> None:
    obj = hostile(
        {
            "type": "task_result",
            "task_id": 5,
            "candidate_id": 2.5,
            "correlation": 10**400,
            "success": "yes",
            "epochs_completed": -1,
            "all_correlations": [float("nan"), "x"],
            "tensor_manifest": {"w": {"shape": [-1, 2**32], "dtype": "object" * 20}},
        }
    )
    dict.__setitem__(obj, HostileInt(7), "a non-string key")
    with tripwires():
        errors = parse_worker_message(obj)
    assert errors == [
        FieldError(("task_id",), "expected a string, got integer"),
        FieldError(("candidate_id",), "expected an integer, got number"),
        FieldError(
            ("correlation",), "number out of range for a float: an integer of about 401 digits"
        ),
        FieldError(("success",), "expected a boolean, got string"),
        FieldError(("epochs_completed",), "must be >= 0, got -1"),
        FieldError(("all_correlations", 0), "must be a finite number, got nan"),
        FieldError(("all_correlations", 1), "expected a number, got string"),
        FieldError(("tensor_manifest", "w", "shape", 0), "must be >= 0, got -1"),
        FieldError(
            ("tensor_manifest", "w", "shape", 1),
            "must be below 2**32 (a frame's u32), got 4294967296",
        ),
        FieldError(
            ("tensor_manifest", "w", "dtype"),
            "expected a plain numeric dtype string such as 'float32' or '<f4', got "
            "'objectobjectobjectobjectobjectobjectobjectobjectobjectob...",
        ),
        FieldError(("7",), "object keys must be strings, got integer"),
    ]


@pytest.mark.parametrize(
    "type_value",
    [HostileStr("heartbeat"), HostileStr("no-such-type"), HostileInt(3), LyingClass()],
    ids=["known", "unknown", "int", "lying __class__"],
)
def test_a_hostile_type_value_dispatches_by_value(type_value: object) -> None:
    obj = HostileDict({"type": type_value, "worker_id": "w1", "timestamp": 1.0})
    with tripwires():
        result = parse_worker_message(obj)
        for message_class in WORKER_MESSAGES.values():
            message_class.parse(obj)
    if isinstance(type_value, HostileStr) and str.__eq__(type_value, "heartbeat"):
        assert isinstance(result, HeartbeatMessage)
    else:
        assert isinstance(result, list)
        assert [error.path for error in result] == [("type",)]


def test_an_object_lying_about_its_class_is_not_an_object() -> None:
    lying_field = HostileDict(MESSAGES["register"])
    dict.__setitem__(lying_field, "capabilities", LyingClass())
    with tripwires():
        assert parse_worker_message(LyingClass()) == [
            FieldError((), "expected a JSON object, got LyingClass")
        ]
        assert TaskAssignMessage.parse(LyingClass()) == [
            FieldError((), "expected a JSON object, got LyingClass")
        ]
        assert parse_worker_message(lying_field) == [
            FieldError(("capabilities",), "expected an object, got LyingClass")
        ]


def test_a_str_key_and_its_subclass_twin_read_alike_and_the_later_wins() -> None:
    obj = HostileDict(MESSAGES["heartbeat"])
    dict.__setitem__(obj, Twin("timestamp"), 99.0)
    assert len(dict.keys(obj)) == len(MESSAGES["heartbeat"]) + 1
    with tripwires():
        parsed = parse_worker_message(obj)
    assert isinstance(parsed, HeartbeatMessage)
    assert parsed.timestamp == 99.0


# --- parse_worker_message_json ------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MESSAGES))
@pytest.mark.parametrize("kind", ["str", "bytes", "bytearray", "memoryview", "str subclass"])
def test_json_text_parses_like_the_decoded_dict(name: str, kind: str) -> None:
    text = json.dumps(MESSAGES[name])
    raw: Any = {
        "str": text,
        "bytes": text.encode(),
        "bytearray": bytearray(text.encode()),
        "memoryview": memoryview(text.encode()),
        "str subclass": HostileStr(text),
    }[kind]
    with tripwires():
        parsed = parse_worker_message_json(raw)
    assert parsed == parse_worker_message(MESSAGES[name])
    assert isinstance(parsed, WorkerMessage)
    assert parsed.to_wire() == MESSAGES[name]


def malformed(detail: str) -> list[FieldError]:
    return [FieldError((), f"{MALFORMED_JSON}: {detail}")]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", malformed("Expecting value at line 1 column 1 (char 0)")),
        (
            '{"type": "heartbeat",',
            malformed(
                "Expecting property name enclosed in double quotes at line 1 column 22 (char 21)"
            ),
        ),
        (
            "{'type': 1}",
            malformed(
                "Expecting property name enclosed in double quotes at line 1 column 2 (char 1)"
            ),
        ),
        ("NaN x", malformed("Extra data at line 1 column 5 (char 4)")),
        (b"\xff{}", malformed("not valid utf-8: invalid start byte at byte 0")),
        ("[" * 100_000, malformed("nested too deeply to parse")),
        ("[1, 2]", [FieldError((), "expected a JSON object, got array")]),
        ('"heartbeat"', [FieldError((), "expected a JSON object, got string")]),
        ("null", [FieldError((), "expected a JSON object, got null")]),
        ("{}", [FieldError(("type",), "missing required field")]),
    ],
    ids=[
        "empty",
        "truncated",
        "single quotes",
        "extra data",
        "not utf-8",
        "too deep",
        "array",
        "string",
        "null",
        "no type",
    ],
)
def test_json_that_is_not_a_message_is_one_error(
    raw: str | bytes, expected: list[FieldError]
) -> None:
    assert parse_worker_message_json(raw) == expected


def test_a_huge_json_integer_is_an_error_not_an_exception() -> None:
    digits = sys.get_int_max_str_digits() or 4300
    text = '{"type": "heartbeat", "worker_id": "w1", "timestamp": ' + "9" * (digits + 1) + "}"
    (error,) = parse_worker_message_json(text)  # type: ignore[misc]
    assert error.path == ()
    assert error.message.startswith(f"{MALFORMED_JSON}: ")
    in_range = '{"type": "heartbeat", "worker_id": "w1", "timestamp": 1' + "0" * 400 + "}"
    assert parse_worker_message_json(in_range) == [
        FieldError(
            ("timestamp",), "number out of range for a float: an integer of about 401 digits"
        )
    ]


def test_a_lone_surrogate_is_kept_where_any_string_is_allowed() -> None:
    text = '{"type": "result_ack", "task_id": "\\ud800", "status": "stale"}'
    parsed = parse_worker_message_json(text)
    assert isinstance(parsed, WorkerMessage)
    assert parsed.to_wire()["task_id"] == "\ud800"
    refused = parse_worker_message_json(
        '{"type": "heartbeat", "worker_id": "\\udfff", "timestamp": 1}'
    )
    assert isinstance(refused, list)
    assert [error.path for error in refused] == [("worker_id",)]


@pytest.mark.parametrize("raw", [None, 7, ["{}"], {"type": "heartbeat"}], ids=repr)
def test_json_of_something_that_is_not_text_is_a_caller_type_error(raw: object) -> None:
    with pytest.raises(TypeError, match="raw must be str, bytes, bytearray or memoryview"):
        parse_worker_message_json(raw)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(), st.binary(), st.text(alphabet='{}[]":,0123456789.eE-+ tfnrulas\\', max_size=40)
    )
)
def test_json_parsing_never_raises_on_any_text_or_bytes(raw: str | bytes) -> None:
    result = parse_worker_message_json(raw)
    if isinstance(result, list):
        assert result
        assert all(isinstance(error, FieldError) for error in result)
    else:
        assert isinstance(result, WorkerMessage)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(list(MESSAGES)),
    st.dictionaries(
        st.sampled_from(sorted({k for m in MESSAGES.values() for k in m})), JSON_VALUES, max_size=4
    ),
)
def test_hostile_copies_of_any_message_parse_like_the_plain_one(
    name: str, replacements: dict[str, Any]
) -> None:
    plain = {**MESSAGES[name], **replacements}
    expected = parse_worker_message(plain)
    subject = hostile(plain)
    with tripwires():
        result = parse_worker_message(subject)
    assert result == expected
