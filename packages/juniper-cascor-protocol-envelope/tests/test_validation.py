"""``validate_envelope`` and ``validate_envelope_json``: fallback rules, hostile input, JSON."""

from __future__ import annotations

import enum
import json
import math
import pickle
import sys
import types
from collections import OrderedDict
from typing import Any

import pydantic_core
import pytest

from juniper_cascor_protocol.envelope import (
    MAX_SEQ,
    BaseEnvelope,
    MetricsEnvelope,
    StateEnvelope,
    UnknownEnvelope,
    to_wire_dict,
    to_wire_json,
    validate_envelope,
    validate_envelope_json,
)

NAN = float("nan")
INF = float("inf")


def _deeply_nested(depth: int) -> list[Any]:
    nested: list[Any] = []
    for _ in range(depth):
        nested = [nested]
    return nested


def _unknown(frame: dict[Any, Any]) -> UnknownEnvelope:
    envelope = validate_envelope(frame)
    assert type(envelope) is UnknownEnvelope
    return envelope


# --- the fallback envelope ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_700_000_000.5, 1_700_000_000.5),
        (1_700_000_000, 1_700_000_000.0),
        (0, 0.0),
        (-2.5, -2.5),
        (NAN, 0.0),
        (INF, 0.0),
        (-INF, 0.0),
        (True, 0.0),
        (False, 0.0),
        (10**400, 0.0),
        ("1700000000", 0.0),
        (None, 0.0),
        ([1.0], 0.0),
    ],
)
def test_fallback_timestamp_is_kept_only_if_a_finite_number(value: Any, expected: float) -> None:
    envelope = _unknown({"type": "future_kind", "timestamp": value})
    assert type(envelope.timestamp) is float
    assert envelope.timestamp == expected


def test_fallback_timestamp_is_zero_when_missing() -> None:
    assert _unknown({"type": "future_kind"}).timestamp == 0.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": 1}, {"a": 1}),
        ({}, {}),
        ([("a", 1)], {}),
        ("text", {}),
        (None, {}),
        (3, {}),
    ],
)
def test_fallback_data_is_kept_only_if_a_dict(value: Any, expected: dict[str, Any]) -> None:
    assert _unknown({"type": "future_kind", "timestamp": 1.0, "data": value}).data == expected
    assert _unknown({"type": "future_kind"}).data == {}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (7, 7),
        (0, 0),
        (-1, None),
        (MAX_SEQ, MAX_SEQ),
        (MAX_SEQ + 1, None),
        (10**400, None),
        (True, None),
        (7.0, None),
        ("7", None),
        (None, None),
    ],
)
def test_fallback_seq_is_kept_only_if_an_int_in_range(value: Any, expected: int | None) -> None:
    envelope = _unknown({"type": "future_kind", "timestamp": 1.0, "seq": value})
    assert envelope.seq == expected
    assert type(envelope.seq) is (int if expected is not None else type(None))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12.5, 12.5),
        (12, 12.0),
        (NAN, None),
        (INF, None),
        (True, None),
        ("12.5", None),
        (10**400, None),
    ],
)
def test_fallback_emitted_at_monotonic_is_kept_only_if_finite(
    value: Any, expected: float | None
) -> None:
    envelope = _unknown({"type": "future_kind", "timestamp": 1.0, "emitted_at_monotonic": value})
    assert envelope.emitted_at_monotonic == expected


def test_fallback_keeps_every_other_string_key() -> None:
    frame = {
        "type": "future_kind",
        "timestamp": 1.0,
        "data": {"a": 1},
        "trace": {"id": "t-1"},
        "_fields_set": "a wire key, not an argument",
        "model_config": 5,
    }
    envelope = _unknown(frame)
    assert envelope.model_extra == {
        "trace": {"id": "t-1"},
        "_fields_set": "a wire key, not an argument",
        "model_config": 5,
    }
    assert envelope.model_dump(exclude_none=True) == frame


def test_fallback_drops_keys_that_are_not_strings() -> None:
    frame: dict[Any, Any] = {
        "type": "future_kind",
        "timestamp": 2.0,
        "data": {"a": 1},
        "seq": 3,
        1: "one",
        None: "none",
        ("a", "b"): "tuple",
        "kept": True,
    }
    envelope = _unknown(frame)
    assert envelope.model_dump(exclude_none=True) == {
        "type": "future_kind",
        "timestamp": 2.0,
        "data": {"a": 1},
        "seq": 3,
        "kept": True,
    }


def test_a_known_frame_with_a_non_string_key_falls_back_under_its_name() -> None:
    envelope = _unknown({"type": "metrics", "timestamp": 1.0, "data": {}, 5: "five"})
    assert envelope.type == "metrics"
    assert envelope.model_extra == {}


def test_the_fallback_of_an_unknown_type_dumps_back_to_its_frame() -> None:
    frame = {
        "type": "training_summary",
        "timestamp": 1_700_000_000.5,
        "data": {"epochs": 40, "nested": {"deep": [1, 2, {"x": None}]}},
        "seq": 99,
        "emitted_at_monotonic": 81.25,
        "extra_key": "kept",
    }
    assert _unknown(frame).model_dump(exclude_none=True) == frame


# --- never raise on any dict -------------------------------------------------------------


class _Hostile:
    """A value whose every special method raises."""

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("__eq__")

    def __hash__(self) -> int:
        raise RuntimeError("__hash__")

    def __float__(self) -> float:
        raise RuntimeError("__float__")

    def __index__(self) -> int:
        raise RuntimeError("__index__")

    def __repr__(self) -> str:
        raise RuntimeError("__repr__")

    def __len__(self) -> int:
        raise RuntimeError("__len__")

    def __iter__(self) -> Any:
        raise RuntimeError("__iter__")


class _HostileDict(dict[Any, Any]):
    """A dict subclass whose overridable methods all raise."""

    def get(self, *args: Any) -> Any:
        raise RuntimeError("get")

    def items(self) -> Any:
        raise RuntimeError("items")

    def keys(self) -> Any:
        raise RuntimeError("keys")

    def values(self) -> Any:
        raise RuntimeError("values")

    def __getitem__(self, key: Any) -> Any:
        raise RuntimeError("__getitem__")

    def __iter__(self) -> Any:
        raise RuntimeError("__iter__")

    def __len__(self) -> int:
        raise RuntimeError("__len__")

    def __contains__(self, key: object) -> bool:
        raise RuntimeError("__contains__")


class _StrWithoutMethods(str):
    def __eq__(self, other: object) -> bool:
        raise RuntimeError("__eq__")

    def __hash__(self) -> int:
        raise RuntimeError("__hash__")


HOSTILE_VALUES: list[Any] = [
    _Hostile(),
    _HostileDict(a=1),
    _StrWithoutMethods("metrics"),
    object(),
    type,
    NAN,
    INF,
    10**400,
    -(10**400),
    True,
    b"bytes",
    bytearray(b"x"),
    {1, 2},
    frozenset({"a"}),
    (1, [2]),
    lambda: None,
    (x for x in range(3)),
    _deeply_nested(100_000),
    OrderedDict(a=1),
    types.MappingProxyType({"a": 1}),
]


@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=lambda value: type(value).__name__)
@pytest.mark.parametrize(
    "key", ["type", "timestamp", "data", "seq", "emitted_at_monotonic", "extra"]
)
def test_no_value_under_any_key_makes_it_raise(key: str, value: Any) -> None:
    for type_ in ("metrics", "initial_metrics", "command_response", "no_such_type"):
        frame: dict[str, Any] = {"type": type_, "timestamp": 1.0, "data": {}}
        frame[key] = value
        assert isinstance(validate_envelope(frame), BaseEnvelope)


@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=lambda value: type(value).__name__)
def test_no_value_inside_data_makes_it_raise(value: Any) -> None:
    for type_ in ("metrics", "initial_metrics", "command_response", "chunked_message"):
        frame = {"type": type_, "timestamp": 1.0, "data": {"result": value, "metrics": value}}
        assert isinstance(validate_envelope(frame), BaseEnvelope)


def test_a_hostile_dict_subclass_as_the_frame_does_not_raise_and_loses_nothing() -> None:
    frame = _HostileDict(type="future_kind", timestamp=3.0, data={"a": 1}, seq=2, extra="x")
    envelope = _unknown(frame)
    assert envelope.model_dump(exclude_none=True) == {
        "type": "future_kind",
        "timestamp": 3.0,
        "data": {"a": 1},
        "seq": 2,
        "extra": "x",
    }


def test_a_plain_dict_subclass_as_the_frame_validates_like_a_dict() -> None:
    frame = OrderedDict(type="state", timestamp=3.0, data={"status": "idle"})
    envelope = validate_envelope(frame)
    assert type(envelope) is StateEnvelope
    assert envelope.model_dump(exclude_none=True) == dict(frame)


def test_nesting_deeper_than_the_recursion_limit_is_taken_as_is() -> None:
    deep = _deeply_nested(sys.getrecursionlimit() * 20)
    envelope = validate_envelope({"type": "topology", "timestamp": 1.0, "data": {"w": deep}})
    assert type(envelope).__name__ == "TopologyEnvelope"
    assert envelope.data["w"] is deep
    unknown = _unknown({"type": "future_kind", "timestamp": 1.0, "data": {"w": deep}, "x": deep})
    assert unknown.data["w"] is deep
    assert unknown.model_extra == {"x": deep}


def test_a_str_enum_type_dispatches_like_its_value() -> None:
    class Kind(enum.StrEnum):
        STATE = "state"
        FUTURE = "future_kind"

    envelope = validate_envelope({"type": Kind.STATE, "timestamp": 1.0, "data": {}})
    assert type(envelope) is StateEnvelope
    assert type(envelope.type) is str
    assert _unknown({"type": Kind.FUTURE, "timestamp": 1.0}).type == "future_kind"


def test_an_empty_dict_falls_back_with_every_default() -> None:
    envelope = _unknown({})
    assert envelope.model_dump() == {
        "type": "_missing_type",
        "timestamp": 0.0,
        "data": {},
        "seq": None,
        "emitted_at_monotonic": None,
    }


@pytest.mark.parametrize(
    "not_a_dict",
    [None, [], [("type", "metrics")], "{}", b"{}", 3, types.MappingProxyType({"type": "state"})],
    ids=lambda value: type(value).__name__,
)
def test_anything_but_a_dict_is_a_type_error(not_a_dict: Any) -> None:
    with pytest.raises(TypeError, match="frame must be a dict"):
        validate_envelope(not_a_dict)


# --- JSON entry point --------------------------------------------------------------------

METRICS_FRAME = {
    "type": "metrics",
    "timestamp": 1_700_000_000.5,
    "data": {"epoch": 3, "loss": 0.125},
    "seq": 12,
    "emitted_at_monotonic": 7.5,
}


@pytest.mark.parametrize(
    "wrap",
    [
        lambda text: text,
        lambda text: text.encode(),
        lambda text: bytearray(text.encode()),
        lambda text: memoryview(text.encode()),
    ],
    ids=["str", "bytes", "bytearray", "memoryview"],
)
def test_json_accepts_text_and_every_bytes_like_type(wrap: Any) -> None:
    envelope = validate_envelope_json(wrap(json.dumps(METRICS_FRAME)))
    assert type(envelope) is MetricsEnvelope
    assert envelope.model_dump(exclude_none=True) == METRICS_FRAME


NOT_JSON: list[str | bytes] = [
    "",
    " ",
    "{",
    '{"type": "metrics",}',
    "{'type': 'metrics'}",
    "nul",
    b"\xff\xfe{",
    "\x00",
]


@pytest.mark.parametrize("raw", NOT_JSON)
def test_text_that_is_not_json_is_labelled_malformed(raw: str | bytes) -> None:
    envelope = validate_envelope_json(raw)
    assert type(envelope) is UnknownEnvelope
    assert envelope.model_dump(exclude_none=True) == {
        "type": "_malformed_json",
        "timestamp": 0.0,
        "data": {},
    }


@pytest.mark.parametrize("raw", ["[]", "[1, 2]", "1", "-0.5", '"metrics"', "null", "true", "NaN"])
def test_json_that_is_not_an_object_is_labelled_not_an_object(raw: str) -> None:
    envelope = validate_envelope_json(raw)
    assert type(envelope) is UnknownEnvelope
    assert envelope.model_dump(exclude_none=True) == {
        "type": "_not_an_object",
        "timestamp": 0.0,
        "data": {},
    }


def test_reserved_json_labels_consume_no_budget() -> None:
    for _ in range(20):
        validate_envelope_json("{")
        validate_envelope_json("[]")
    labels = [f"kind_{index}" for index in range(16)]
    assert [validate_envelope_json(json.dumps({"type": t})).type for t in labels] == labels


@pytest.mark.parametrize("not_text", [None, 3, {"type": "metrics"}, ["{}"]])
def test_json_of_something_that_is_not_text_is_a_type_error(not_text: Any) -> None:
    with pytest.raises(TypeError, match="raw must be str, bytes, bytearray or memoryview"):
        validate_envelope_json(not_text)


def _nan_equal(value: Any) -> Any:
    """``value`` with every NaN replaced by a marker, since NaN is not equal to itself."""
    if isinstance(value, float) and math.isnan(value):
        return "<NaN>"
    if isinstance(value, dict):
        return {key: _nan_equal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_nan_equal(item) for item in value]
    return value


def _same(raw: str | bytes) -> type[BaseEnvelope]:
    """``validate_envelope_json(raw)`` and ``validate_envelope(json.loads(raw))`` agree."""
    from_json = validate_envelope_json(raw)
    from_dict = validate_envelope(json.loads(raw))
    assert type(from_json) is type(from_dict)
    assert _nan_equal(from_json.model_dump()) == _nan_equal(from_dict.model_dump())
    return type(from_json)


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps(METRICS_FRAME),
        json.dumps({"type": "future_kind", "timestamp": 3, "data": [1], "seq": True, "z": 1}),
        json.dumps({"type": "command_response", "timestamp": 3, "data": {"command": "x"}}),
        json.dumps({"type": "metrics", "timestamp": NAN, "data": {"loss": INF}}),
        json.dumps({"type": "metrics", "timestamp": 1.0, "data": {"loss": NAN}}),
        json.dumps({"type": "metrics", "timestamp": 10**400, "seq": 10**400}),
        json.dumps({"type": "metrics", "timestamp": 1.0, "seq": 10**400}),
        json.dumps({"type": 5, "timestamp": 1.0}),
        json.dumps({"type": None}),
        json.dumps({"type": ["metrics"]}),
        json.dumps({"timestamp": 1.0}),
        json.dumps({}),
        '{"type": "metrics", "timestamp": 1e400}',
        # Lone surrogates: Pydantic's parser refuses them, json.loads does not.
        '{"type": "metrics", "timestamp": 1.0, "data": {"k": "\\ud800"}}',
        '{"type": "bad\\udfff", "timestamp": 1.0}',
        # Deeper than Pydantic's parser goes, within json.loads's reach.
        '{"type": "metrics", "timestamp": 1.0, "data": {"w": ' + "[" * 250 + "]" * 250 + "}}",
        # Not UTF-8: json.loads detects UTF-16.
        json.dumps(METRICS_FRAME).encode("utf-16"),
        json.dumps(METRICS_FRAME, ensure_ascii=False).encode("utf-8-sig"),
    ],
)
def test_json_gives_the_result_of_json_loads_then_validate_envelope(raw: str | bytes) -> None:
    _same(raw)


def test_json_valid_frames_are_typed_even_when_only_json_loads_can_read_them() -> None:
    surrogate = '{"type": "metrics", "timestamp": 1.0, "data": {"k": "\\ud800"}}'
    assert _same(surrogate) is MetricsEnvelope
    deep = '{"type": "state", "timestamp": 1.0, "data": {"w": ' + "[" * 250 + "]" * 250 + "}}"
    assert _same(deep) is StateEnvelope


def test_json_nested_beyond_json_loads_is_malformed() -> None:
    depth = sys.getrecursionlimit() * 20
    raw = '{"type": "metrics", "timestamp": 1.0, "data": ' + "[" * depth + "]" * depth + "}"
    assert validate_envelope_json(raw).type == "_malformed_json"


def test_json_fallback_keeps_unknown_keys_and_values() -> None:
    frame = {"type": "future_kind", "timestamp": 5.5, "data": {"a": [1, 2]}, "x": {"y": None}}
    envelope = validate_envelope_json(json.dumps(frame))
    assert type(envelope) is UnknownEnvelope
    assert envelope.model_dump(exclude_none=True) == frame


def test_json_timestamps_are_finite_floats() -> None:
    for raw in ['{"type": "x", "timestamp": NaN}', '{"type": "x", "timestamp": -Infinity}']:
        timestamp = validate_envelope_json(raw).timestamp
        assert timestamp == 0.0
        assert math.isfinite(timestamp)


def test_escaped_non_ascii_strings_survive_the_json_parser_every_time() -> None:
    # Pydantic 2.7.0-2.7.2 read escaped non-ASCII strings back as mojibake ("\u00b7" as "Â·")
    # once pydantic_core.from_json (which parse_command_json uses) had run in the process; the
    # declared floor (2.7.3) must not.
    alphabet = "ab·éü☃"
    keys = sorted({a + b + c for a in alphabet for b in alphabet for c in alphabet})
    for key in keys:
        frame = {"type": "metrics", "timestamp": 1.0, "data": {key: key}, key: [key]}
        text = json.dumps(frame)  # ensure_ascii: every non-ASCII character escaped
        assert pydantic_core.from_json(text) == frame, key
        envelope = validate_envelope_json(text)
        assert envelope.model_dump(exclude_none=True) == frame, key


# --- what arrives leaves unchanged -------------------------------------------------------


def test_nan_and_infinity_in_data_are_re_sent_as_they_came() -> None:
    raw = (
        '{"type":"metrics","timestamp":1.0,'
        '"data":{"loss":NaN,"grad":[Infinity,-Infinity],"nested":{"x":NaN}},"note":NaN}'
    )
    envelope = validate_envelope_json(raw)
    assert type(envelope) is MetricsEnvelope
    assert math.isnan(envelope.data["loss"])
    assert to_wire_json(envelope) == raw
    assert _nan_equal(to_wire_dict(envelope)) == _nan_equal(json.loads(raw))


def test_a_diverged_loss_from_json_dumps_reaches_the_next_hop_as_nan() -> None:
    frame = {"type": "metrics", "timestamp": 1.0, "data": {"loss": NAN, "epoch": 7}}
    envelope = validate_envelope(json.loads(json.dumps(frame)))
    assert type(envelope) is MetricsEnvelope
    relayed = json.loads(to_wire_json(envelope))
    assert math.isnan(relayed["data"]["loss"])
    assert relayed["data"]["epoch"] == 7


@pytest.mark.parametrize(
    "raw",
    [
        '{"type": "metrics", "timestamp": 1.0, "data": {"s": "\\ud800"}}',
        '{"type": "metrics", "timestamp": 1.0, "data": {"\\udfff": ["a\\udc80b", "é"]}}',
        '{"type": "state", "timestamp": 1.0, "data": {}, "trace": "\\ud83d"}',
        '{"type": "chunked_message", "timestamp": 1.0, "data": {"chunk_id": "\\ud800",'
        ' "chunk_index": 0, "total_chunks": 1, "original_type": "metrics", "payload": "{}"}}',
    ],
)
def test_a_lone_surrogate_is_re_sent_escaped_and_reads_back_equal(raw: str) -> None:
    envelope = validate_envelope_json(raw)
    assert type(envelope) is not UnknownEnvelope
    text = to_wire_json(envelope)
    text.encode("utf-8")  # a WebSocket text frame must be UTF-8
    assert validate_envelope_json(text) == envelope
    assert json.loads(text) == json.loads(raw)


def test_a_lone_surrogate_keeps_the_callers_dump_options() -> None:
    envelope = validate_envelope({"type": "metrics", "timestamp": 1.0, "data": {"s": "\ud800"}})
    assert json.loads(envelope.model_dump_json(exclude={"data"})) == {
        "type": "metrics",
        "timestamp": 1.0,
        "seq": None,
        "emitted_at_monotonic": None,
    }
    assert envelope.model_dump_json(indent=2).startswith('{\n  "type": "metrics",')


@pytest.mark.parametrize(
    "raw",
    [
        '{"type":"metrics","timestamp":1.0,"data":{"a":null},"trace":null}',
        '{"type":"command_response","timestamp":1.0,'
        '"data":{"command":"start","status":"success","hint":null}}',
        '{"type":"connection_established","timestamp":1.0,"data":{"region":null}}',
    ],
)
def test_an_unknown_key_that_is_null_is_re_sent(raw: str) -> None:
    envelope = validate_envelope_json(raw)
    assert type(envelope) is not UnknownEnvelope
    assert to_wire_json(envelope) == raw
    assert to_wire_dict(envelope) == json.loads(raw)
    assert envelope.model_dump(exclude_none=True) == json.loads(raw)


def test_declared_fields_that_are_none_are_still_left_out() -> None:
    envelope = validate_envelope_json(
        '{"type":"command_response","timestamp":1.0,"seq":null,"x":null,'
        '"data":{"command":"start","status":"success","command_id":null,"error":null}}'
    )
    assert json.loads(to_wire_json(envelope)) == {
        "type": "command_response",
        "timestamp": 1.0,
        "x": None,
        "data": {"command": "start", "status": "success"},
    }
    # With an ``include`` or ``exclude`` of the caller's own, Pydantic's meaning is unchanged.
    assert envelope.model_dump(exclude_none=True, exclude={"timestamp"}) == {
        "type": "command_response",
        "data": {"command": "start", "status": "success"},
    }


def test_serialization_errors_other_than_surrogates_still_raise() -> None:
    envelope = MetricsEnvelope(timestamp=1.0, data={"when": object()})
    with pytest.raises(pydantic_core.PydanticSerializationError):
        to_wire_json(envelope)


# --- integers longer than the interpreter converts ---------------------------------------

TOO_LONG = "7" * (sys.get_int_max_str_digits() + 1)


def test_an_integer_too_long_to_convert_makes_the_frame_invalid_not_malformed() -> None:
    raw = (
        '{"type": "metrics", "timestamp": 1.5, "seq": 3, "trace": "t-1",'
        f' "data": {{"loss": 0.5, "big": {TOO_LONG}}}, "huge": [-{TOO_LONG}]}}'
    )
    envelope = validate_envelope_json(raw)
    assert type(envelope) is UnknownEnvelope
    assert envelope.model_dump(exclude_none=True) == {
        "type": "metrics",
        "timestamp": 1.5,
        "data": {},
        "seq": 3,
        "trace": "t-1",
    }
    assert envelope.model_fields_set == {"type", "timestamp", "seq", "trace"}


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("type", {"type": "_invalid_type", "timestamp": 1.0, "data": {"a": 1}}),
        ("timestamp", {"type": "future_kind", "timestamp": 0.0, "data": {"a": 1}}),
        ("seq", {"type": "future_kind", "timestamp": 1.0, "data": {"a": 1}}),
        ("emitted_at_monotonic", {"type": "future_kind", "timestamp": 1.0, "data": {"a": 1}}),
    ],
)
def test_an_integer_too_long_in_a_field_falls_back_like_any_invalid_value(
    field: str, expected: dict[str, Any]
) -> None:
    frame = {"type": "future_kind", "timestamp": 1.0, "data": {"a": 1}}
    raw = json.dumps({**frame, field: 0}).replace('"' + field + '": 0', f'"{field}": {TOO_LONG}')
    assert validate_envelope_json(raw).model_dump(exclude_none=True) == expected


def test_an_integer_of_a_million_digits_is_neither_converted_nor_kept() -> None:
    digits = "9" * 1_000_000
    envelope = validate_envelope_json(
        '{"type": "topology", "timestamp": 2.0, "data": {"w": [' + digits + "]}}"
    )
    assert envelope.model_dump() == {
        "type": "topology",
        "timestamp": 2.0,
        "data": {},
        "seq": None,
        "emitted_at_monotonic": None,
    }
    assert len(to_wire_json(envelope)) < 100


def test_an_integer_at_the_limit_is_kept_and_re_sent() -> None:
    at_limit = "-" + "7" * sys.get_int_max_str_digits()
    raw = '{"type":"metrics","timestamp":1.0,"data":{"x":' + at_limit + "}}"
    envelope = validate_envelope_json(raw)
    assert type(envelope) is MetricsEnvelope
    assert envelope.data["x"] == int(at_limit)
    assert to_wire_json(envelope) == raw


def test_a_long_integer_in_text_that_is_no_frame_changes_nothing() -> None:
    assert validate_envelope_json('{"type": "metrics", "data": ' + TOO_LONG).type == (
        "_malformed_json"
    )
    assert validate_envelope_json(TOO_LONG).type == "_not_an_object"
    assert validate_envelope_json(f"[{TOO_LONG}]").type == "_not_an_object"


# --- the fallback envelope is a plain UnknownEnvelope --------------------------------------


@pytest.mark.parametrize(
    ("frame", "fields_set"),
    [
        ({"type": "future_kind"}, {"type"}),
        ({"type": "future_kind", "timestamp": "soon", "data": [], "seq": 1.5}, {"type"}),
        ({"type": "metrics", "timestamp": 2.0, "data": 3, "x": None}, {"type", "timestamp", "x"}),
        ({"timestamp": NAN, "emitted_at_monotonic": 4.0}, {"emitted_at_monotonic"}),
        (
            {"type": "command_response", "timestamp": 1.0, "data": {"command": "x"}, "seq": 2},
            {"type", "timestamp", "data", "seq"},
        ),
    ],
)
def test_the_fallback_marks_as_set_only_the_values_it_took_from_the_frame(
    frame: dict[str, Any], fields_set: set[str]
) -> None:
    from_dict = _unknown(frame)
    assert from_dict.model_fields_set == fields_set
    assert validate_envelope_json(json.dumps(frame)).model_fields_set == fields_set
    # The fallback built in Python, for a dict pydantic-core cannot read, agrees.
    hostile = _HostileDict(frame)
    assert _unknown(hostile).model_fields_set == fields_set
    assert _unknown(hostile).model_dump() == from_dict.model_dump()


def test_messages_that_are_no_frame_set_no_field() -> None:
    for raw in ["{", "[]"]:
        assert validate_envelope_json(raw).model_fields_set == set()


def test_the_fallback_is_a_plain_unknown_envelope_that_copies_and_pickles() -> None:
    envelope = validate_envelope(
        {"type": "future_kind", "timestamp": 2.0, "data": {"a": 1}, "x": 1}
    )
    assert type(envelope) is UnknownEnvelope
    assert UnknownEnvelope.__subclasses__() == []
    assert pickle.loads(pickle.dumps(envelope)) == envelope
    assert envelope.model_copy(deep=True) == envelope
    assert envelope == UnknownEnvelope(type="future_kind", timestamp=2.0, data={"a": 1}, x=1)
    assert UnknownEnvelope.model_validate(envelope.model_dump()) == envelope
