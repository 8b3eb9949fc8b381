"""The ten envelopes of SPEC §2: classes, wire fidelity, and the public names of the package."""

from __future__ import annotations

import copy
import importlib.metadata
import json
import types
import typing
from typing import Any

import pytest
from pydantic import ValidationError

import juniper_cascor_protocol.envelope as envelope_pkg
from juniper_cascor_protocol.envelope import (
    KNOWN_ENVELOPES,
    UNKNOWN_TYPE_BUDGET,
    UNMATCHED_TYPE_LABEL,
    BaseEnvelope,
    ChunkedMessageData,
    CommandResponseData,
    CommandResponseEnvelope,
    ConnectionEstablishedData,
    ConnectionEstablishedEnvelope,
    InitialMetricsData,
    InitialMetricsEnvelope,
    KnownEnvelope,
    MetricsEnvelope,
    UnknownEnvelope,
    validate_envelope,
    validate_envelope_json,
)

TIMESTAMP = 1_700_000_000.25

# One realistic wire frame per known type, as a server sends it.
WIRE_FRAMES: dict[str, dict[str, Any]] = {
    "metrics": {
        "type": "metrics",
        "timestamp": TIMESTAMP,
        "data": {"epoch": 12, "loss": 0.031, "accuracy": 0.97, "hidden_units": 3},
        "seq": 41,
        "emitted_at_monotonic": 8123.5,
    },
    "state": {
        "type": "state",
        "timestamp": TIMESTAMP,
        "data": {"status": "training", "phase": "candidate"},
        "seq": 42,
        "emitted_at_monotonic": 8123.75,
    },
    "topology": {
        "type": "topology",
        "timestamp": TIMESTAMP,
        "data": {"input_size": 2, "hidden_units": [{"id": 0, "weights": [[0.5, -0.25]]}]},
        "seq": 43,
        "emitted_at_monotonic": 8124.0,
    },
    "event": {
        "type": "event",
        "timestamp": TIMESTAMP,
        "data": {"event": "training_complete", "details": {"epochs": 200}},
        "seq": 44,
        "emitted_at_monotonic": 8124.5,
    },
    "cascade_add": {
        "type": "cascade_add",
        "timestamp": TIMESTAMP,
        "data": {"unit_index": 3, "correlation": 0.82},
        "seq": 45,
        "emitted_at_monotonic": 8125.0,
    },
    "candidate_progress": {
        "type": "candidate_progress",
        "timestamp": TIMESTAMP,
        "data": {"candidate": 5, "epoch": 20, "best_correlation": 0.4},
        "seq": 46,
        "emitted_at_monotonic": 8125.5,
    },
    "initial_metrics": {
        "type": "initial_metrics",
        "timestamp": TIMESTAMP,
        "data": {"metrics": [{"epoch": 1, "loss": 0.9}], "count": 1, "current_seq": 46},
        "seq": 46,
        "emitted_at_monotonic": 8125.6,
    },
    "chunked_message": {
        "type": "chunked_message",
        "timestamp": TIMESTAMP,
        "data": {
            "chunk_id": "6f1c1b8e-2f43-4b8e-9d3c-1b2a3c4d5e6f",
            "chunk_index": 0,
            "total_chunks": 2,
            "original_type": "topology",
            "payload": '{"type": "topo',
        },
        "seq": 47,
        "emitted_at_monotonic": 8126.0,
    },
    "command_response": {
        "type": "command_response",
        "timestamp": TIMESTAMP,
        "data": {
            "command": "set_params",
            "status": "success",
            "command_id": "req-7",
            "result": {"learning_rate": 0.05},
        },
    },
    "connection_established": {
        "type": "connection_established",
        "timestamp": TIMESTAMP,
        "data": {"server_version": "0.9.1", "protocol_version": "1"},
    },
}

SPEC_ORDER = [
    "metrics",
    "state",
    "topology",
    "event",
    "cascade_add",
    "candidate_progress",
    "initial_metrics",
    "chunked_message",
    "command_response",
    "connection_established",
]


def test_known_envelopes_are_the_ten_types_in_spec_order() -> None:
    assert list(KNOWN_ENVELOPES) == SPEC_ORDER
    for type_, cls in KNOWN_ENVELOPES.items():
        assert issubclass(cls, BaseEnvelope)
        assert cls.model_fields["type"].default == type_


def test_known_envelope_is_the_union_of_the_ten_classes() -> None:
    assert typing.get_args(KnownEnvelope) == tuple(KNOWN_ENVELOPES.values())


def test_unknown_envelope_is_a_base_envelope_but_no_known_one() -> None:
    assert issubclass(UnknownEnvelope, BaseEnvelope)
    assert UnknownEnvelope not in KNOWN_ENVELOPES.values()


def test_constants() -> None:
    assert UNKNOWN_TYPE_BUDGET == 16
    assert UNMATCHED_TYPE_LABEL == "_unmatched"


def test_version_is_the_distribution_version() -> None:
    expected = importlib.metadata.version("juniper-cascor-protocol-envelope")
    assert envelope_pkg.__version__ == expected


def test_every_spec_name_is_exported() -> None:
    spec_names = {
        "BaseEnvelope",
        "UnknownEnvelope",
        "MetricsEnvelope",
        "StateEnvelope",
        "TopologyEnvelope",
        "EventEnvelope",
        "CascadeAddEnvelope",
        "CandidateProgressEnvelope",
        "InitialMetricsEnvelope",
        "ChunkedMessageEnvelope",
        "CommandResponseEnvelope",
        "ConnectionEstablishedEnvelope",
        "InitialMetricsData",
        "ChunkedMessageData",
        "CommandResponseData",
        "ConnectionEstablishedData",
        "KNOWN_ENVELOPES",
        "KnownEnvelope",
        "UNKNOWN_TYPE_BUDGET",
        "UNMATCHED_TYPE_LABEL",
        "reset_unknown_label_state",
        "validate_envelope",
        "validate_envelope_json",
        "__version__",
    }
    assert spec_names <= set(envelope_pkg.__all__)
    assert len(envelope_pkg.__all__) == len(set(envelope_pkg.__all__))
    for name in envelope_pkg.__all__:
        assert hasattr(envelope_pkg, name), name


@pytest.mark.parametrize("type_", SPEC_ORDER)
def test_a_valid_frame_becomes_its_class_and_dumps_back_to_the_wire_dict(type_: str) -> None:
    frame = WIRE_FRAMES[type_]
    envelope = validate_envelope(copy.deepcopy(frame))
    assert type(envelope) is KNOWN_ENVELOPES[type_]
    assert envelope.model_dump(exclude_none=True) == frame
    assert json.loads(envelope.model_dump_json(exclude_none=True)) == frame


@pytest.mark.parametrize("type_", SPEC_ORDER)
def test_unknown_keys_are_kept_at_the_top_level_and_in_typed_data(type_: str) -> None:
    frame = copy.deepcopy(WIRE_FRAMES[type_])
    frame["trace_id"] = "abc"
    frame["data"]["added_in_a_later_server"] = [1, 2]
    envelope = validate_envelope(copy.deepcopy(frame))
    assert type(envelope) is KNOWN_ENVELOPES[type_]
    assert envelope.model_extra == {"trace_id": "abc"}
    assert envelope.model_dump(exclude_none=True) == frame


def test_an_int_timestamp_is_a_float_equal_to_it() -> None:
    envelope = validate_envelope({"type": "state", "timestamp": 1_700_000_000, "data": {}})
    assert isinstance(envelope.timestamp, float)
    assert envelope.timestamp == 1_700_000_000


def test_free_form_data_defaults_to_an_empty_dict() -> None:
    envelope = validate_envelope({"type": "event", "timestamp": TIMESTAMP})
    assert type(envelope).__name__ == "EventEnvelope"
    assert envelope.data == {}


def test_typed_data_has_its_documented_defaults() -> None:
    initial = validate_envelope(
        {"type": "initial_metrics", "timestamp": TIMESTAMP, "data": {"count": 0}}
    )
    assert isinstance(initial, InitialMetricsEnvelope)
    assert initial.data == InitialMetricsData(metrics=[], count=0, current_seq=0)

    connected = validate_envelope({"type": "connection_established", "timestamp": TIMESTAMP})
    assert isinstance(connected, ConnectionEstablishedEnvelope)
    assert connected.data == ConnectionEstablishedData()

    response = validate_envelope(
        {
            "type": "command_response",
            "timestamp": TIMESTAMP,
            "data": {"command": "stop", "status": "queued"},
        }
    )
    assert isinstance(response, CommandResponseEnvelope)
    assert response.data == CommandResponseData(command="stop", status="queued")


@pytest.mark.parametrize(
    ("type_", "data"),
    [
        ("initial_metrics", {"metrics": []}),  # count is required
        ("initial_metrics", {"count": "3"}),
        ("chunked_message", {**WIRE_FRAMES["chunked_message"]["data"], "chunk_index": -1}),
        ("chunked_message", {**WIRE_FRAMES["chunked_message"]["data"], "total_chunks": 0}),
        ("chunked_message", {"chunk_id": "x", "chunk_index": 0, "total_chunks": 1}),
        ("command_response", {"command": "start"}),  # status is required
        ("command_response", {"command": "start", "status": "success", "result": [1]}),
        ("connection_established", {"server_version": 9}),
        ("metrics", [1, 2]),
        ("metrics", {1: "a key that is not a string"}),
        ("event", {"ok": 1, ("a", "b"): 2}),
        ("command_response", {"command": "start", "status": "success", "result": {0: "x"}}),
    ],
)
def test_an_invalid_payload_falls_back_under_its_known_name(type_: str, data: Any) -> None:
    frame = {"type": type_, "timestamp": TIMESTAMP, "data": data, "seq": 5}
    envelope = validate_envelope(frame)
    assert type(envelope) is UnknownEnvelope
    assert envelope.type == type_
    assert envelope.timestamp == TIMESTAMP
    assert envelope.seq == 5
    assert envelope.data == (data if isinstance(data, dict) else {})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timestamp", "1700000000.5"),  # a string, even of a number
        ("timestamp", True),
        ("timestamp", float("nan")),
        ("timestamp", float("inf")),
        ("seq", 3.0),
        ("seq", "3"),
        ("seq", True),
        ("emitted_at_monotonic", float("-inf")),
        ("emitted_at_monotonic", False),
    ],
)
def test_the_wire_is_validated_strictly(field: str, value: Any) -> None:
    frame = {**WIRE_FRAMES["metrics"], field: value}
    assert type(validate_envelope(frame)) is UnknownEnvelope
    assert type(validate_envelope_json(json.dumps(frame))) is UnknownEnvelope


def test_constructors_stay_lax_and_copy_the_callers_data() -> None:
    # A builder's caller may pass any Mapping and keep mutating its own dict afterwards.
    mine = {"epoch": 1}
    envelope = MetricsEnvelope(timestamp=TIMESTAMP, data=mine)
    mine["epoch"] = 2
    assert envelope.data == {"epoch": 1}
    proxied = MetricsEnvelope(timestamp=TIMESTAMP, data=types.MappingProxyType({"a": 1}))
    assert type(proxied.data) is dict
    assert proxied.data == {"a": 1}
    assert MetricsEnvelope.model_validate({"timestamp": "1.5"}).timestamp == 1.5


def test_the_wire_path_takes_the_decoded_data_as_is() -> None:
    frame = copy.deepcopy(WIRE_FRAMES["metrics"])
    assert validate_envelope(frame).data is frame["data"]


def test_timestamps_must_be_finite_in_constructors_too() -> None:
    with pytest.raises(ValidationError, match="timestamp"):
        MetricsEnvelope(timestamp=float("nan"))
    with pytest.raises(ValidationError, match="emitted_at_monotonic"):
        MetricsEnvelope(timestamp=1.0, emitted_at_monotonic=float("inf"))


def test_chunk_limits_name_the_field() -> None:
    with pytest.raises(ValidationError, match="chunk_index"):
        ChunkedMessageData(
            chunk_id="x", chunk_index=-1, total_chunks=1, original_type="state", payload=""
        )
    with pytest.raises(ValidationError, match="total_chunks"):
        ChunkedMessageData(
            chunk_id="x", chunk_index=0, total_chunks=0, original_type="state", payload=""
        )


def test_control_frames_carry_no_seq() -> None:
    for type_ in ("command_response", "connection_established"):
        envelope = validate_envelope(copy.deepcopy(WIRE_FRAMES[type_]))
        assert envelope.seq is None
        assert "seq" not in envelope.model_dump(exclude_none=True)
