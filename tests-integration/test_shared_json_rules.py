"""One table of JSON-type rules, held against all three endpoints' parsers.

The envelope validators (Pydantic, strict) and the worker parser (plain Python, no Pydantic)
implement the same rules twice, and the control parser a third time: bool is not a number,
numbers are finite where a field needs them, ``3.0`` is not an integer, keys are strings, a
``str`` subclass is read by value. Each row below puts one value in the same kind of place on
every endpoint and says what each side must answer, from the decoded object and from the text,
so the copies cannot drift apart unnoticed. Where the sides differ on purpose, the row says so.

The same is done for the two ``protocol_version`` modules (one table of version pairs) and for
``connection_established``, which both distributions model because neither may import the other.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import pytest

from juniper_cascor_protocol.envelope import (
    CommandParseError,
    ConnectionEstablishedEnvelope,
    ControlCommand,
    Established,
    LabelBudget,
    TrainingConsumerSession,
    UnknownEnvelope,
    parse_command,
    parse_command_json,
    validate_envelope,
    validate_envelope_json,
)
from juniper_cascor_protocol.envelope import IncompatibleVersion as EnvelopeIncompatible
from juniper_cascor_protocol.envelope import protocol_version as envelope_versions
from juniper_cascor_protocol.worker import (
    ConnectionEstablished,
    ConnectionEstablishedMessage,
    MessageParseError,
    WorkerMessage,
    WorkerSession,
    parse_worker_message,
    parse_worker_message_json,
)
from juniper_cascor_protocol.worker import IncompatibleVersion as WorkerIncompatible
from juniper_cascor_protocol.worker import protocol_version as worker_versions


class Side(StrEnum):
    ENVELOPE = "envelope"
    CONTROL = "control"
    WORKER = "worker"


class Slot(StrEnum):
    """The kind of place a value is put in; each side has its own field of that kind."""

    NUMBER = "number"
    """A finite number: ``timestamp`` of an envelope and of a worker ``heartbeat``."""
    INTEGER = "integer"
    """An integer: an envelope's ``seq``, a ``task_result``'s ``candidate_id``."""
    STRING = "string"
    """A string: ``connection_established``'s ``server_version``, a request's ``command_id``."""
    FREE_FORM = "free-form value"
    """Any JSON value: in envelope ``data``, request ``params``, ``register.capabilities``."""
    KEY = "key"
    """A key of a free-form object (those three objects)."""
    TYPE = "type"
    """What a frame is dispatched on: ``type``, or a request's ``command``."""


ACCEPTED: Final = "accepted"
REFUSED: Final = "refused"
KEPT_AS_SENT: Final = "accepted, kept as sent"
"""Accepted, and the side keeps the sender's own object: the envelopes take free-form ``data``
as decoded, without a copy (see ``envelope.base``), so a str subclass key stays one."""
NO_SUCH_FIELD: Final = None
"""The side has no field of this kind (a control request holds no number)."""


class Text(str):
    """A ``str`` subclass that equals nothing: the parsers must read it by value."""

    def __eq__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return 0


_NO_VALUE: Final = object()
"""A row that exists only as text (no Python value gives that JSON)."""


@dataclass(frozen=True)
class Row:
    rule: str
    slot: Slot
    value: object
    """The decoded value put in the slot (``_NO_VALUE``: the row is text only)."""
    literal: str | None
    """The same value as JSON text (None: JSON cannot write it, e.g. a key that is no string)."""
    envelope: str | None
    control: str | None
    worker: str | None

    def expected(self, side: Side) -> str | None:
        return {Side.ENVELOPE: self.envelope, Side.CONTROL: self.control, Side.WORKER: self.worker}[
            side
        ]


ROWS: Final = (
    Row("bool is not a number", Slot.NUMBER, True, "true", REFUSED, NO_SUCH_FIELD, REFUSED),
    Row("an integer is a number", Slot.NUMBER, 17, "17", ACCEPTED, NO_SUCH_FIELD, ACCEPTED),
    Row("a float is a number", Slot.NUMBER, 1.5, "1.5", ACCEPTED, NO_SUCH_FIELD, ACCEPTED),
    Row("NaN is not finite", Slot.NUMBER, math.nan, "NaN", REFUSED, NO_SUCH_FIELD, REFUSED),
    Row("Infinity is not finite", Slot.NUMBER, math.inf, "Infinity", REFUSED, None, REFUSED),
    Row("-Infinity is not finite", Slot.NUMBER, -math.inf, "-Infinity", REFUSED, None, REFUSED),
    Row(
        "an integer past a float's range is no number",
        Slot.NUMBER,
        10**400,
        "1" + "0" * 400,
        REFUSED,
        NO_SUCH_FIELD,
        REFUSED,
    ),
    Row("bool is not an integer", Slot.INTEGER, True, "true", REFUSED, NO_SUCH_FIELD, REFUSED),
    Row("3.0 is not an integer", Slot.INTEGER, 3.0, "3.0", REFUSED, NO_SUCH_FIELD, REFUSED),
    # The envelope's integer slot is `seq`, which a reader takes up to 2**63 - 1 only.
    Row(
        "a 64-bit integer is one", Slot.INTEGER, 2**63 - 1, str(2**63 - 1), ACCEPTED, None, ACCEPTED
    ),
    Row("NaN is kept as data", Slot.FREE_FORM, math.nan, "NaN", ACCEPTED, ACCEPTED, ACCEPTED),
    Row(
        "an integer too long to convert is no JSON",  # the envelope drops the value it was in
        Slot.FREE_FORM,
        _NO_VALUE,
        "1" * 5000,
        REFUSED,
        REFUSED,
        REFUSED,
    ),
    Row(
        "a lone surrogate is kept as data",
        Slot.FREE_FORM,
        "\ud800",
        '"\\ud800"',
        ACCEPTED,
        ACCEPTED,
        ACCEPTED,
    ),
    Row(
        "a lone surrogate in a field",  # control: a command_id that could not be echoed back
        Slot.STRING,
        "\ud800",
        '"\\ud800"',
        ACCEPTED,
        REFUSED,
        ACCEPTED,
    ),
    Row("bool is not a string", Slot.STRING, True, "true", REFUSED, REFUSED, REFUSED),
    Row(
        "a str subclass is read by value",
        Slot.STRING,
        Text("x-1"),
        None,
        ACCEPTED,
        ACCEPTED,
        ACCEPTED,
    ),
    Row("keys are strings", Slot.KEY, 1, None, REFUSED, REFUSED, REFUSED),
    Row("a str subclass key", Slot.KEY, Text("k"), None, KEPT_AS_SENT, ACCEPTED, ACCEPTED),
    Row(
        "a lone surrogate key is kept",
        Slot.KEY,
        "\ud800",
        '"\\ud800"',
        ACCEPTED,
        ACCEPTED,
        ACCEPTED,
    ),
    Row(
        "a str subclass type is read by value",
        Slot.TYPE,
        Text(""),
        None,
        ACCEPTED,
        ACCEPTED,
        ACCEPTED,
    ),
)

_PLACEHOLDER: Final = "@@value@@"
_TYPE_OF: Final = {Side.ENVELOPE: "metrics", Side.CONTROL: "start", Side.WORKER: "heartbeat"}


def _sent(side: Side, slot: Slot, value: object) -> object:
    """What ``side``'s frame holds for ``value``: a type row spells the side's own type name."""
    if slot is Slot.TYPE and isinstance(value, Text):
        return Text(_TYPE_OF[side])
    return value


def _frame(side: Side, slot: Slot, value: object) -> dict[Any, Any] | None:
    """A valid frame of ``side`` but for ``value`` in its field of kind ``slot``."""
    value = _sent(side, slot, value)
    frames: dict[Slot, dict[Any, Any] | None]
    if side is Side.ENVELOPE:
        frames = {
            Slot.NUMBER: {"type": "metrics", "timestamp": value, "data": {}},
            Slot.INTEGER: {"type": "metrics", "timestamp": 1.0, "data": {}, "seq": value},
            Slot.STRING: {
                "type": "connection_established",
                "timestamp": 1.0,
                "data": {"server_version": value},
            },
            Slot.FREE_FORM: {"type": "metrics", "timestamp": 1.0, "data": {"v": value}},
            Slot.KEY: {"type": "metrics", "timestamp": 1.0, "data": {value: 1}},
            Slot.TYPE: {"type": value, "timestamp": 1.0, "data": {}},
        }
    elif side is Side.CONTROL:
        frames = {
            Slot.NUMBER: None,
            Slot.INTEGER: None,
            Slot.STRING: {"command": "start", "command_id": value},
            Slot.FREE_FORM: {"command": "start", "params": {"v": value}},
            Slot.KEY: {"command": "start", "params": {value: 1}},
            Slot.TYPE: {"command": value},
        }
    else:
        result = {"type": "task_result", "task_id": "t", "correlation": 0.5, "success": True}
        frames = {
            Slot.NUMBER: {"type": "heartbeat", "worker_id": "w1", "timestamp": value},
            Slot.INTEGER: {**result, "candidate_id": value, "epochs_completed": 1},
            Slot.STRING: {"type": "connection_established", "server_version": value},
            Slot.FREE_FORM: {"type": "register", "worker_id": "w1", "capabilities": {"v": value}},
            Slot.KEY: {"type": "register", "worker_id": "w1", "capabilities": {value: 1}},
            Slot.TYPE: {"type": value, "worker_id": "w1", "timestamp": 1.0},
        }
    return frames[slot]


def _read(side: Side, slot: Slot, parsed: Any) -> object:
    """The value a side kept from its field of kind ``slot``."""
    if side is Side.ENVELOPE:
        data = parsed.data if isinstance(parsed.data, dict) else parsed.data.model_dump()
        fields = {
            Slot.NUMBER: lambda: parsed.timestamp,
            Slot.INTEGER: lambda: parsed.seq,
            Slot.STRING: lambda: data["server_version"],
            Slot.FREE_FORM: lambda: data["v"],
            Slot.KEY: lambda: next(iter(data)),
            Slot.TYPE: lambda: parsed.type,
        }
    elif side is Side.CONTROL:
        fields = {
            Slot.STRING: lambda: parsed.command_id,
            Slot.FREE_FORM: lambda: parsed.params["v"],
            Slot.KEY: lambda: next(iter(parsed.params)),
            Slot.TYPE: lambda: parsed.command,
        }
    else:
        fields = {
            Slot.NUMBER: lambda: parsed.timestamp,
            Slot.INTEGER: lambda: parsed.candidate_id,
            Slot.STRING: lambda: parsed.server_version,
            Slot.FREE_FORM: lambda: parsed.capabilities["v"],
            Slot.KEY: lambda: next(iter(parsed.capabilities)),
            Slot.TYPE: lambda: parsed.TYPE.value,
        }
    return fields[slot]()


_PARSERS: Final[dict[Side, tuple[Callable[[Any], Any], Callable[[str], Any]]]] = {
    Side.ENVELOPE: (
        lambda frame: validate_envelope(frame, labels=LabelBudget()),
        lambda text: validate_envelope_json(text, labels=LabelBudget()),
    ),
    Side.CONTROL: (parse_command, parse_command_json),
    Side.WORKER: (parse_worker_message, parse_worker_message_json),
}


def _verdict(side: Side, parsed: object) -> str:
    refused = {
        Side.ENVELOPE: UnknownEnvelope,
        Side.CONTROL: CommandParseError,
        Side.WORKER: MessageParseError,
    }[side]
    kept = {Side.ENVELOPE: object, Side.CONTROL: ControlCommand, Side.WORKER: WorkerMessage}[side]
    if isinstance(parsed, refused):
        return REFUSED
    assert isinstance(parsed, kept), f"{side} returned a {type(parsed).__name__}"
    return ACCEPTED


def _same_value(read: object, sent: object) -> bool:
    """``read`` is ``sent`` as a plain JSON value: same exact type, same value, NaN included."""
    if isinstance(sent, Text):
        return type(read) is str and read == str.__str__(sent)
    if isinstance(sent, float) and math.isnan(sent):
        return isinstance(read, float) and math.isnan(read)
    wanted = float if type(sent) is int and type(read) is float else type(sent)
    return type(read) is wanted and read == sent


def _cases(keep: Callable[[Row], bool]) -> list[Any]:
    """A test case per row and side that has such a field, for the rows ``keep`` keeps."""
    return [
        pytest.param(row, side, id=f"{row.rule} ({side})")
        for row in ROWS
        for side in Side
        if row.expected(side) is not NO_SUCH_FIELD and keep(row)
    ]


@pytest.mark.parametrize(("row", "side"), _cases(lambda row: row.value is not _NO_VALUE))
def test_each_side_gives_the_verdict_of_the_table_on_the_decoded_frame(
    row: Row, side: Side
) -> None:
    parsed = _PARSERS[side][0](_frame(side, row.slot, row.value))
    expected = row.expected(side)
    read = _read(side, row.slot, parsed) if expected != REFUSED else None
    if expected == KEPT_AS_SENT:
        assert _verdict(side, parsed) == ACCEPTED
        assert read is row.value
    else:
        assert _verdict(side, parsed) == expected
        assert expected == REFUSED or _same_value(read, _sent(side, row.slot, row.value))


@pytest.mark.parametrize(("row", "side"), _cases(lambda row: row.literal is not None))
def test_each_side_gives_the_verdict_of_the_table_on_the_text(row: Row, side: Side) -> None:
    assert row.literal is not None
    parsed = _PARSERS[side][1](_text(_frame(side, row.slot, _PLACEHOLDER), row.literal))
    assert _verdict(side, parsed) == row.expected(side)
    if row.expected(side) == ACCEPTED and row.value is not _NO_VALUE:
        assert _same_value(_read(side, row.slot, parsed), row.value)


def _text(frame: dict[str, Any] | None, literal: str) -> str:
    """``frame`` as JSON text, with ``literal`` written where it holds the placeholder."""
    return json.dumps(frame).replace(json.dumps(_PLACEHOLDER), literal)


def test_the_too_long_integer_is_named_by_each_side() -> None:
    """The one row whose failures differ in kind: the envelope keeps the frame's type."""
    literal = "1" * 5000
    envelope = validate_envelope_json(
        _text(_frame(Side.ENVELOPE, Slot.FREE_FORM, _PLACEHOLDER), literal), labels=LabelBudget()
    )
    assert isinstance(envelope, UnknownEnvelope)
    assert (envelope.type, envelope.data) == ("metrics", {})
    request = parse_command_json(_text(_frame(Side.CONTROL, Slot.FREE_FORM, _PLACEHOLDER), literal))
    assert isinstance(request, CommandParseError)
    assert request.label == "malformed_json"
    message = parse_worker_message_json(
        _text(_frame(Side.WORKER, Slot.FREE_FORM, _PLACEHOLDER), literal)
    )
    assert isinstance(message, MessageParseError)
    assert message.label == "malformed_json"


# --- protocol versions ------------------------------------------------------------------------

VERSION_PAIRS: Final = (
    ("0.3", ("0.3",), True),
    ("0.0", ("0.3",), True),
    ("0.9999", ("0.3",), True),
    ("1.0", ("0.3",), False),
    ("1.2", ("0.3", "1.0"), True),
    ("9999.9999", ("9999.0",), True),
    ("10000.0", ("0.3",), False),
    ("0.10000", ("0.3",), False),
    ("00.3", ("0.3",), False),
    ("0.03", ("0.3",), False),
    ("0.3.0", ("0.3",), False),
    ("0.3\n", ("0.3",), False),
    (" 0.3", ("0.3",), False),
    ("0,3", ("0.3",), False),
    ("\u0660.\u0663", ("0.3",), False),  # Arabic-Indic digits are no ASCII digits
    ("", ("0.3",), False),
    ("0." + "3" * 10_000, ("0.3",), False),
    ("0.3", ("bogus",), False),
    ("0.3", (), False),
    (None, ("0.3",), False),
    (3, ("0.3",), False),
    (0.3, ("0.3",), False),
    (True, ("0.3",), False),
    (b"0.3", ("0.3",), False),
    (["0.3"], ("0.3",), False),
    (Text("0.7"), ("0.3",), True),
)


@pytest.mark.parametrize(("announced", "supported", "compatible"), VERSION_PAIRS)
def test_both_version_modules_give_the_verdict_of_the_table(
    announced: object, supported: tuple[str, ...], compatible: bool
) -> None:
    assert envelope_versions.is_compatible(announced, supported) is compatible
    assert worker_versions.is_compatible(announced, supported) is compatible
    assert envelope_versions.parse_protocol_version(
        announced
    ) == worker_versions.parse_protocol_version(announced)


def test_both_distributions_speak_the_same_version() -> None:
    assert envelope_versions.PROTOCOL_VERSION == worker_versions.PROTOCOL_VERSION
    assert (
        envelope_versions.SUPPORTED_PROTOCOL_VERSIONS == worker_versions.SUPPORTED_PROTOCOL_VERSIONS
    )


# --- connection_established ----------------------------------------------------------------------

GREETINGS: Final[tuple[tuple[dict[str, object], str], ...]] = (
    # (the fields of the greeting, what both sides make of it)
    ({}, "compatible"),
    ({"server_version": "0.13.0"}, "compatible"),
    ({"server_version": "0.13.0", "protocol_version": "0.3"}, "compatible"),
    ({"protocol_version": "0.9", "build": "abc"}, "compatible"),
    ({"server_version": "\ud800", "protocol_version": "0.3"}, "compatible"),
    ({"server_version": "2.0.0", "protocol_version": "1.0"}, "incompatible"),
    ({"protocol_version": "one"}, "incompatible"),
    ({"protocol_version": "0.3.1"}, "incompatible"),
    ({"protocol_version": 3}, "invalid"),
    ({"server_version": 7, "protocol_version": "0.3"}, "invalid"),
    ({"server_version": None, "protocol_version": None}, "compatible"),
)


@pytest.mark.parametrize(("fields", "outcome"), GREETINGS)
def test_both_models_of_connection_established_read_the_same_examples(
    fields: dict[str, object], outcome: str
) -> None:
    envelope = validate_envelope(
        {"type": "connection_established", "timestamp": 1.0, "data": dict(fields)},
        labels=LabelBudget(),
    )
    message = parse_worker_message({"type": "connection_established", **fields})
    if outcome == "invalid":
        assert isinstance(envelope, UnknownEnvelope)
        assert isinstance(message, MessageParseError)
        return
    assert isinstance(envelope, ConnectionEstablishedEnvelope)
    assert isinstance(message, ConnectionEstablishedMessage)
    for name in ("server_version", "protocol_version"):
        assert getattr(envelope.data, name) == getattr(message, name) == fields.get(name)
    assert envelope.data.model_extra == message.extra


@pytest.mark.parametrize(
    ("fields", "outcome"), [greeting for greeting in GREETINGS if greeting[1] != "invalid"]
)
def test_both_session_families_judge_the_greeting_alike(
    fields: dict[str, object], outcome: str
) -> None:
    envelope_text = json.dumps({"type": "connection_established", "timestamp": 1.0, "data": fields})
    (client_event,) = TrainingConsumerSession().receive(envelope_text, now=0.0)
    worker_event = WorkerSession("w1", now=0.0).receive(
        json.dumps({"type": "connection_established", **fields}), 0.0
    )[0]
    if outcome == "compatible":
        assert isinstance(client_event, Established)
        assert isinstance(worker_event, ConnectionEstablished)
        assert client_event.protocol_version == worker_event.protocol_version
        return
    assert isinstance(client_event, EnvelopeIncompatible)
    assert isinstance(worker_event, WorkerIncompatible)
    fields_of = ("announced", "supported", "server_version")
    assert [getattr(client_event, name) for name in fields_of] == [
        getattr(worker_event, name) for name in fields_of
    ]
