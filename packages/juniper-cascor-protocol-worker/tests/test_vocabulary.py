"""The names the worker side shares with the envelope side: failures, events, JSON out."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

from juniper_cascor_protocol.worker import (
    MALFORMED_JSON,
    PARSE_ERROR_LABELS,
    PROTOCOL_VERSION,
    VIOLATION_LABELS,
    Closed,
    FieldError,
    HeartbeatMessage,
    IncompatibleVersion,
    MessageParseError,
    ProtocolViolation,
    ServerSession,
    VersionIncompatible,
    Violation,
    WorkerSession,
    parse_worker_message,
    parse_worker_message_json,
)
from juniper_cascor_protocol.worker.protocol_version import is_compatible, parse_protocol_version

HEARTBEAT = {"type": "heartbeat", "worker_id": "w1", "timestamp": 1.5}


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("{oops", "malformed_json"),
        (b"\xff", "malformed_json"),
        ("[1, 2]", "not_an_object"),
        ('"heartbeat"', "not_an_object"),
        ("{}", "unknown_type"),
        ('{"type": 7}', "unknown_type"),
        ('{"type": "gossip"}', "unknown_type"),
        ('{"type": "heartbeat", "worker_id": "w1"}', "invalid_message"),
        ('{"type": "heartbeat", "worker_id": "w1", "timestamp": true}', "invalid_message"),
    ],
)
def test_a_refused_message_carries_a_bounded_label(text: str | bytes, label: str) -> None:
    refused = parse_worker_message_json(text)
    assert isinstance(refused, MessageParseError)
    assert refused.label == label
    assert label in PARSE_ERROR_LABELS <= VIOLATION_LABELS  # a session reports the same label


def test_the_failure_reads_like_the_control_side() -> None:
    refused = parse_worker_message({"type": "heartbeat", "worker_id": "", "timestamp": "x"})
    assert isinstance(refused, MessageParseError)
    assert refused.problems == (
        (("worker_id",), refused[0].message),
        (("timestamp",), "expected a number, got string"),
    )
    assert refused.reason == "; ".join(str(error) for error in refused)
    assert refused.reason.startswith("worker_id: expected 1-64 ASCII letters")


def test_the_failure_is_still_the_list_of_field_errors() -> None:
    refused = parse_worker_message_json("{oops")
    assert isinstance(refused, list)
    assert refused == [
        FieldError(
            (),
            f"{MALFORMED_JSON}: Expecting property name enclosed in double quotes at line 1 "
            "column 2 (char 1)",
        )
    ]
    assert "label='malformed_json'" in repr(refused)


def test_a_long_reason_is_cut_but_every_problem_is_kept() -> None:
    refused = parse_worker_message(
        {"type": "task_result", "task_id": "t", "candidate_id": 0, "correlation": 0.5,
         "success": True, "epochs_completed": 1, "all_correlations": ["x"] * 1000}
    )  # fmt: skip
    assert isinstance(refused, MessageParseError)
    assert len(refused.problems) == 1000
    assert len(refused.reason) <= 500
    assert refused.reason.endswith("...")


@pytest.mark.parametrize(
    "how",
    [copy.copy, copy.deepcopy, lambda value: pickle.loads(pickle.dumps(value))],
)
def test_copies_of_a_failure_keep_the_label(how: object) -> None:
    refused = parse_worker_message([])
    assert isinstance(refused, MessageParseError)
    copied = how(refused)  # type: ignore[operator]
    assert isinstance(copied, MessageParseError)
    assert (copied.label, list(copied)) == (refused.label, list(refused))


def test_a_failure_label_outside_the_set_is_refused() -> None:
    with pytest.raises(ValueError, match="label must be one of"):
        MessageParseError([], "whatever")


def test_every_message_writes_its_own_text() -> None:
    message = parse_worker_message({**HEARTBEAT, "load": 0.5})
    assert isinstance(message, HeartbeatMessage)
    assert json.loads(message.to_wire_json()) == message.to_wire()
    assert parse_worker_message_json(message.to_wire_json()) == message


def test_the_event_names_of_before_are_aliases() -> None:
    assert Violation is ProtocolViolation
    assert VersionIncompatible is IncompatibleVersion


def test_an_incompatible_server_is_reported_with_both_versions() -> None:
    worker = WorkerSession("w1", now=0.0)
    greeting = json.dumps(
        {"type": "connection_established", "server_version": "9.1.0", "protocol_version": "1.0"}
    )
    incompatible, closed = worker.receive(greeting, 0.0)
    assert incompatible == IncompatibleVersion(
        announced="1.0", supported=(PROTOCOL_VERSION,), server_version="9.1.0"
    )
    assert isinstance(closed, Closed)


def test_a_session_reports_the_label_of_the_parser() -> None:
    text = '{"type": "register", "worker_id": 5, "capabilities": {"gpu": false}}'
    violation = ServerSession(now=0.0).receive(text, 0.0)[0]
    assert isinstance(violation, ProtocolViolation)
    refused = parse_worker_message_json(text)
    assert isinstance(refused, MessageParseError)
    assert (violation.label, violation.reason) == (refused.label, refused.reason)


class _Version(str):
    """A str subclass whose own methods lie: the version is read by value."""

    def __len__(self) -> int:
        raise AssertionError("never called")


@pytest.mark.parametrize("announced", [None, 3, 0.3, True, b"0.3", ["0.3"], {"0": 3}])
def test_a_version_that_is_not_a_string_is_incompatible_never_an_exception(
    announced: object,
) -> None:
    assert parse_protocol_version(announced) is None
    assert not is_compatible(announced, [PROTOCOL_VERSION])


def test_a_str_subclass_version_is_read_by_value() -> None:
    assert parse_protocol_version(_Version("0.7")) == (0, 7)
    assert is_compatible(_Version("0.7"), [PROTOCOL_VERSION])
