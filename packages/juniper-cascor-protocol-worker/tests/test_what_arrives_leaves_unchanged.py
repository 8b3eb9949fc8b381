"""What arrives leaves unchanged, on ``/ws/v1/workers``: whatever parses can be sent again.

Free-form values (``capabilities``, ``candidate_data``, ``training_params``, unknown keys, a
manifest entry's unknown keys) keep ``NaN`` and infinities and are re-sent as Python's ``json``
writes them; numeric fields stay finite, on reading and on sending. A decoded dict holding a
value that is not JSON is refused at the value's path; JSON values of any subclass are kept as
plain copies.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from juniper_cascor_protocol.worker import (
    FieldError,
    MessageParseError,
    RegisterMessage,
    TaskResultMessage,
    WorkerMessage,
    parse_worker_message,
    parse_worker_message_json,
)
from juniper_cascor_protocol.worker._checks import MAX_NESTING
from juniper_cascor_protocol.worker.server_session import ServerSession
from juniper_cascor_protocol.worker.session_events import SessionState, TaskReceived
from juniper_cascor_protocol.worker.tensor_names import CANDIDATE_INPUT, RESIDUAL_ERROR
from juniper_cascor_protocol.worker.worker_session import WorkerSession

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _as_text(value: Any) -> str:
    """``value`` as JSON text: NaN equals itself there, and 1 differs from 1.0."""
    return json.dumps(value)


def _same_message(left: WorkerMessage, right: WorkerMessage) -> bool:
    return type(left) is type(right) and _as_text(left.to_wire()) == _as_text(right.to_wire())


def _parsed(text: str) -> WorkerMessage:
    message = parse_worker_message_json(text)
    assert isinstance(message, WorkerMessage), message
    return message


# --- NaN and infinities in free-form values --------------------------------------------------


def test_nan_and_infinities_in_free_form_values_are_re_sent_as_they_arrived() -> None:
    raw = (
        '{"type": "register", "worker_id": "w1", '
        '"capabilities": {"loss": NaN, "cap": Infinity, "big": 1e400}, "trace": [-Infinity]}'
    )
    message = _parsed(raw)
    assert isinstance(message, RegisterMessage)
    assert math.isnan(message.capabilities["loss"])
    wire = message.to_wire_json()
    assert wire == raw.replace("1e400", "Infinity")  # the same value, as json writes it
    assert _same_message(_parsed(wire), message)


def test_a_manifest_entry_keeps_its_non_finite_unknown_keys() -> None:
    raw = json.dumps(
        {
            "type": "task_assign",
            "task_id": "t",
            "round_id": "r",
            "candidate_index": 0,
            "candidate_data": {"seed": math.nan},
            "training_params": {"lr": math.inf},
            "tensor_manifest": {"x": {"shape": [2], "dtype": "float32", "scale": -math.inf}},
        }
    )
    message = _parsed(raw)
    assert message.to_wire_json() == raw


def test_a_numeric_field_still_refuses_nan_on_reading() -> None:
    refused = parse_worker_message_json(
        '{"type": "heartbeat", "worker_id": "w1", "timestamp": NaN}'
    )
    assert isinstance(refused, MessageParseError)
    assert list(refused) == [FieldError(("timestamp",), "must be a finite number, got nan")]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"correlation": math.nan}, "task_result: correlation: must be a finite number, got nan"),
        ({"numerator": math.inf}, "task_result: numerator: must be a finite number, got inf"),
        (
            {"all_correlations": [0.5, -math.inf]},
            "task_result: all_correlations[1]: must be a finite number, got -inf",
        ),
        (
            {"all_correlations": (math.nan,)},
            "task_result: all_correlations[0]: must be a finite number, got nan",
        ),
    ],
)
def test_a_locally_built_non_finite_numeric_field_is_refused_when_sent(
    changes: dict[str, Any], problem: str
) -> None:
    fields: dict[str, Any] = {
        "task_id": "t1",
        "candidate_id": 0,
        "correlation": 0.5,
        "success": True,
        "epochs_completed": 1,
    }
    result = TaskResultMessage(**(fields | changes))
    with pytest.raises(ValueError, match=rf"^{_escaped(problem)}$"):
        result.to_wire_json()
    server, worker = _registered()
    _feed(worker, server.send_task("t1", _task_tensors(), now=1.0))
    with pytest.raises(ValueError, match=rf"^{_escaped(problem)}$"):
        worker.send_result(result)
    assert list(worker.tasks) == ["t1"]  # nothing was sent: the task still awaits its result


def test_a_session_relays_nan_in_free_form_data() -> None:
    server, worker = _registered()
    outgoing = server.send_task(
        "t1", _task_tensors(), now=1.0, candidate_data={"loss": math.nan, "cap": math.inf}
    )
    assert '"candidate_data": {"loss": NaN, "cap": Infinity}' in outgoing[0]
    [received] = [event for event in _feed(worker, outgoing) if isinstance(event, TaskReceived)]
    assert _as_text(received.task.candidate_data) == '{"loss": NaN, "cap": Infinity}'


def _escaped(text: str) -> str:
    return "".join("\\" + char if char in "[]().*+?" else char for char in text)


def _task_tensors() -> dict[str, Any]:
    return {
        CANDIDATE_INPUT: np.ones((2, 3), dtype=np.float32),
        RESIDUAL_ERROR: np.ones((2, 1), dtype=np.float32),
    }


def _feed(session: ServerSession | WorkerSession, messages: list[str | bytes]) -> list[Any]:
    events: list[Any] = []
    for message in messages:
        events += session.receive(message, 1.0)
    return events


def _registered() -> tuple[ServerSession, WorkerSession]:
    server = ServerSession(now=0.0)
    worker = WorkerSession("worker-1", now=0.0, capabilities={"gpu": False})
    _feed(worker, server.data_to_send())
    _feed(server, worker.data_to_send())
    _feed(worker, server.data_to_send())
    assert server.state is worker.state is SessionState.READY
    return server, worker


# --- values that are not JSON, and subclasses ------------------------------------------------


class _ExplodingList(list[Any]):
    def __iter__(self) -> Any:
        raise RuntimeError("__iter__ ran")

    def __len__(self) -> int:
        raise RuntimeError("__len__ ran")


class _ExplodingDict(dict[Any, Any]):
    def items(self) -> Any:
        raise RuntimeError("items ran")

    def __iter__(self) -> Any:
        raise RuntimeError("__iter__ ran")


class _Text(str):
    __slots__ = ()


def _register(capabilities: object, **extra: object) -> dict[str, object]:
    return {"type": "register", "worker_id": "w1", "capabilities": capabilities, **extra}


@pytest.mark.parametrize(
    ("value", "json_type"),
    [(b"x", "bytes"), ({1, 2}, "set"), (frozenset(), "frozenset"), (object(), "object")],
)
def test_a_value_that_is_not_json_is_refused_at_its_path(value: object, json_type: str) -> None:
    refused = parse_worker_message(_register({"nested": [1, {"v": value}]}, trace=value))
    assert isinstance(refused, MessageParseError)
    assert refused.label == "invalid_message"
    expected = f"expected a JSON value, got {json_type}"
    assert list(refused) == [
        FieldError(("capabilities", "nested", 1, "v"), expected),
        FieldError(("trace",), expected),
    ]


def test_a_manifest_entry_value_that_is_not_json_is_refused_at_its_path() -> None:
    task = {
        "type": "task_assign",
        "task_id": "t",
        "round_id": "r",
        "candidate_index": 0,
        "candidate_data": {},
        "training_params": {},
        "tensor_manifest": {"x": {"shape": [2], "dtype": "float32", "raw": b"\x00"}},
    }
    refused = parse_worker_message(task)
    assert isinstance(refused, MessageParseError)
    assert list(refused) == [
        FieldError(("tensor_manifest", "x", "raw"), "expected a JSON value, got bytes")
    ]


def test_a_nested_key_that_is_not_a_string_is_refused_at_its_path() -> None:
    refused = parse_worker_message(_register({"a": {1: "one"}}))
    assert isinstance(refused, MessageParseError)
    assert list(refused) == [
        FieldError(("capabilities", "a", "1"), "object keys must be strings, got integer")
    ]


def test_json_values_of_any_subclass_are_kept_as_plain_copies() -> None:
    free_form = {
        "list": _ExplodingList([1, _Text("a")]),
        "dict": _ExplodingDict({_Text("k"): (1.5, None)}),
    }
    parsed = parse_worker_message(_register(free_form, trace=_ExplodingList([True])))
    assert isinstance(parsed, RegisterMessage)
    expected = {"list": [1, "a"], "dict": {"k": [1.5, None]}}
    assert parsed.capabilities == expected
    assert parsed.extra == {"trace": [True]}
    assert type(parsed.capabilities["list"]) is list
    assert type(parsed.capabilities["dict"]) is dict
    assert [type(key) for key in parsed.capabilities["dict"]] == [str]
    assert type(parsed.capabilities["list"][1]) is str
    assert type(parsed.extra["trace"]) is list
    assert json.loads(parsed.to_wire_json()) == _register(expected, trace=[True])


def test_a_value_that_contains_itself_is_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    refused = parse_worker_message(_register({"loop": loop}))
    assert isinstance(refused, MessageParseError)
    [error] = list(refused)
    assert error.path == ("capabilities", "loop", *([0] * (MAX_NESTING - 1)))
    assert error.message == f"nested deeper than {MAX_NESTING} arrays and objects"


def test_nesting_is_accepted_up_to_the_limit_and_refused_beyond_it() -> None:
    def register_text(levels: int) -> str:
        """A register message whose capabilities nest ``levels`` deep (the object is one)."""
        inner = "[" * (levels - 1) + "]" * (levels - 1)
        return '{"type": "register", "worker_id": "w1", "capabilities": {"a": ' + inner + "}}"

    deepest = _parsed(register_text(MAX_NESTING))
    assert _parsed(deepest.to_wire_json()) == deepest  # no NaN here: == compares it all
    refused = parse_worker_message_json(register_text(MAX_NESTING + 1))
    assert isinstance(refused, MessageParseError)
    assert refused.label == "invalid_message"
    assert [error.message for error in refused] == [
        f"nested deeper than {MAX_NESTING} arrays and objects"
    ]


# --- the property ----------------------------------------------------------------------------

lone_surrogates = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"])
# Text as json.loads may give it, lone surrogates included (st.text() almost never draws one).
wire_text = st.lists(st.one_of(st.characters(), lone_surrogates), max_size=6).map("".join)
# Anything json.loads gives: NaN and infinities too.
wire_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), wire_text),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(wire_text, children, max_size=3)
    ),
    max_leaves=12,
)
objects = st.dictionaries(wire_text, wire_values, max_size=4)
finite = st.floats(allow_nan=False, allow_infinity=False)
worker_ids = st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9_-]{0,10}", fullmatch=True)
manifests = st.dictionaries(
    wire_text,
    st.fixed_dictionaries(
        {
            "shape": st.lists(st.integers(0, 2**32 - 1), max_size=3),
            "dtype": st.sampled_from(["float32", "<f8", "int64"]),
        },
        optional={"note": wire_values},
    ),
    max_size=2,
)
messages: list[st.SearchStrategy[dict[str, Any]]] = [
    st.fixed_dictionaries(
        {"type": st.just("register"), "worker_id": worker_ids, "capabilities": objects}
    ),
    st.fixed_dictionaries(
        {"type": st.just("heartbeat"), "worker_id": worker_ids, "timestamp": finite}
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("task_assign"),
            "task_id": wire_text,
            "round_id": wire_text,
            "candidate_index": st.integers(min_value=0),
            "candidate_data": objects,
            "training_params": objects,
            "tensor_manifest": manifests,
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("task_result"),
            "task_id": wire_text,
            "candidate_id": st.integers(),
            "correlation": st.floats(0.0, 1.0),
            "success": st.booleans(),
            "epochs_completed": st.integers(min_value=0),
        },
        optional={
            "all_correlations": st.lists(finite, max_size=3),
            "error_message": st.none() | wire_text,
            "tensor_manifest": manifests,
        },
    ),
    st.fixed_dictionaries(
        {"type": st.just("error"), "error": wire_text, "timestamp": finite},
        optional={"details": wire_text},
    ),
]
unknown_keys = st.dictionaries(wire_text.filter(lambda key: key != "type"), wire_values, max_size=3)


@SETTINGS
@given(st.one_of(*messages), unknown_keys, st.booleans())
def test_every_text_that_parses_is_re_sent_with_the_same_values(
    fields: dict[str, Any], extra: dict[str, Any], ensure_ascii: bool
) -> None:
    frame = {**extra, **fields}
    text = json.dumps(frame, ensure_ascii=ensure_ascii)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # no WebSocket text frame holds a raw surrogate: it arrives escaped
        text = json.dumps(frame)
    message = parse_worker_message_json(text)
    if isinstance(message, MessageParseError):
        # An unknown key may collide with a field; such a frame is not what this property reads.
        assert set(extra) & {str(error.path[0]) for error in message if error.path}, message
        return
    wire = message.to_wire_json()
    assert wire.isascii()
    again = parse_worker_message_json(wire)
    assert isinstance(again, WorkerMessage), again
    assert _same_message(again, message)
    assert _as_text(json.loads(wire)) == _as_text(message.to_wire())
    from_dict = parse_worker_message(json.loads(text))  # the reader of decoded frames
    assert isinstance(from_dict, WorkerMessage), from_dict
    assert _same_message(from_dict, message)
