"""Inputs the coverage-guided fuzzer (``fuzz/``) found breaking a promise, minimized.

Each test names its fuzz target and keeps the reproducer as the peer sent it (bytes of a
WebSocket text frame), so a regression shows up here without running the fuzzer.
"""

from __future__ import annotations

import json

import pytest

from juniper_cascor_protocol.envelope import (
    ControlCommand,
    UnknownEnvelope,
    parse_command_json,
    to_wire_dict,
    to_wire_json,
    validate_envelope_json,
)

# fuzz target `envelope`: a key escaped as a lone surrogate, which ``json.loads`` reads and the
# fallback envelope keeps; Pydantic cannot write such a key, and ``to_wire_json`` raised
# ``UnicodeEncodeError``.
LONE_SURROGATE_KEY_FRAMES = [
    b'{"\\udcbf":"","":0}',  # the minimized reproducer: no type
    b'{"type":"metrics","timestamp":1,"data":{},"\\udcbf":null,"z":null}',  # a known type
    b'{"type":"x","a":1,"\\ud800":[1,NaN],"b":2,"seq":3}',  # an unknown type, with seq
]


@pytest.mark.parametrize("raw", LONE_SURROGATE_KEY_FRAMES)
def test_unknown_envelope_with_a_lone_surrogate_key_is_written_with_every_key(raw: bytes) -> None:
    envelope = validate_envelope_json(raw)
    assert isinstance(envelope, UnknownEnvelope)
    sent = json.loads(raw)
    written = json.loads(to_wire_json(envelope))
    # Every unknown key the peer sent is written back with its value (NaN compared as text).
    extras = {key: value for key, value in sent.items() if key not in type(envelope).model_fields}
    kept = {key: written[key] for key in extras}
    assert json.dumps(kept, sort_keys=True) == json.dumps(extras, sort_keys=True)
    assert json.dumps(to_wire_dict(envelope), sort_keys=True) == json.dumps(written, sort_keys=True)
    # Read back, the envelope keeps the same unknown keys.
    again = validate_envelope_json(to_wire_json(envelope))
    assert json.dumps(again.model_extra, sort_keys=True) == json.dumps(
        envelope.model_extra, sort_keys=True
    )


# fuzz target `control_request`: a request with a lone surrogate (as a JSON escape) in an
# unknown key's value or in ``params`` is valid, but ``to_wire_json`` raised
# ``PydanticSerializationError``, and a surrogate in a ``params`` key was written as U+FFFD.
LONE_SURROGATE_REQUESTS = [
    b'{"command":"0","":"\\udbdb","0":true}',  # the minimized reproducer
    b'{"command":"start","params":{"a":["\\udbdb",NaN]}}',
    b'{"command":"start","params":{"\\udbdb":1},"command_id":"c-1"}',
]


@pytest.mark.parametrize("raw", LONE_SURROGATE_REQUESTS)
def test_request_with_a_lone_surrogate_is_re_sent_unchanged(raw: bytes) -> None:
    request = parse_command_json(raw)
    assert isinstance(request, ControlCommand)
    text = request.to_wire_json()
    sent = {"params": {}, **json.loads(raw)}  # the default params are written out
    assert json.dumps(json.loads(text), sort_keys=True) == json.dumps(sent, sort_keys=True)
    again = parse_command_json(text)
    assert isinstance(again, ControlCommand)
    assert again.to_wire_json() == text
    assert json.dumps(request.to_wire_dict()) == json.dumps(again.to_wire_dict())


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# fuzz target `envelope` (structure-aware mutations): data nested 300 deep, which Pydantic's
# parser and json.loads read, is deeper than Pydantic's serializer goes: ``to_wire_json`` raised
# ``PydanticSerializationError`` and ``model_dump(mode="json")`` ``ValueError`` on a typed
# envelope the library had accepted. The minimized input nests lists 300 deep under "".
@pytest.mark.parametrize("depth", [300, 900])
def test_deeply_nested_data_is_written_back(depth: int) -> None:
    raw = f'{{"type":"metrics","timestamp":1,"data":{{"":{_nested(depth)}}},"seq":2}}'
    envelope = validate_envelope_json(raw)
    assert envelope.type == "metrics"
    text = to_wire_json(envelope)
    assert json.loads(text) == {**json.loads(raw), "timestamp": 1.0}
    assert to_wire_json(validate_envelope_json(text)) == text
    assert envelope.model_dump(mode="json")["data"] == json.loads(raw)["data"]


@pytest.mark.parametrize("depth", [300, 900])
def test_request_with_deeply_nested_params_is_re_sent(depth: int) -> None:
    raw = f'{{"command":"start","params":{{"":{_nested(depth)}}},"command_id":"c-1"}}'
    request = parse_command_json(raw)
    assert isinstance(request, ControlCommand)
    assert request.to_wire_dict() == json.loads(raw)
    again = parse_command_json(request.to_wire_json())
    assert isinstance(again, ControlCommand)
    assert again.to_wire_json() == request.to_wire_json()
