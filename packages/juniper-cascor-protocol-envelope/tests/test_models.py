"""The ten envelopes (docs/protocol.md#envelopes): classes, wire fidelity, the public names."""

from __future__ import annotations

import copy
import importlib.metadata
import inspect
import json
import pickle
import types
import typing
from typing import Any

import pydantic
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
    to_wire_json,
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

DOCUMENTED_ORDER = [
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
    assert list(KNOWN_ENVELOPES) == DOCUMENTED_ORDER
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


@pytest.mark.parametrize("type_", DOCUMENTED_ORDER)
def test_a_valid_frame_becomes_its_class_and_dumps_back_to_the_wire_dict(type_: str) -> None:
    frame = WIRE_FRAMES[type_]
    envelope = validate_envelope(copy.deepcopy(frame))
    assert type(envelope) is KNOWN_ENVELOPES[type_]
    assert envelope.model_dump(exclude_none=True) == frame
    assert json.loads(envelope.model_dump_json(exclude_none=True)) == frame


@pytest.mark.parametrize("type_", DOCUMENTED_ORDER)
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


# --- 0.1/0.2 compatibility -----------------------------------------------------------------

# A validated ``MetricsEnvelope`` as 0.1/0.2 pickled it: a reference to the class by module and
# name (``juniper_cascor_protocol.envelope.training.MetricsEnvelope``) and Pydantic's
# ``__getstate__`` dict (``__dict__``, ``__pydantic_extra__``, ``__pydantic_fields_set__``,
# ``__pydantic_private__``), written by ``pickle.dumps`` and ``pickletools.optimize``.
PICKLED_METRICS = {
    2: (
        b"\x80\x02cjuniper_cascor_protocol.envelope.training\nMetricsEnvelope\n)\x81}("
        b"X\x08\x00\x00\x00__dict__}(X\x04\x00\x00\x00typeq\x00X\x07\x00\x00\x00metrics"
        b"X\t\x00\x00\x00timestampq\x01GA\xd9T\xfc@\x10\x00\x00X\x04\x00\x00\x00dataq\x02}("
        b"X\x05\x00\x00\x00epochK\x0cX\x04\x00\x00\x00lossG?\x9f\xbev\xc8\xb49Xu"
        b"X\x03\x00\x00\x00seqq\x03K)X\x14\x00\x00\x00emitted_at_monotonicq\x04"
        b"G@\xbf\xbb\x80\x00\x00\x00\x00uX\x12\x00\x00\x00__pydantic_extra__}"
        b"X\x05\x00\x00\x00traceq\x05X\x03\x00\x00\x00t-1sX\x17\x00\x00\x00"
        b"__pydantic_fields_set__c__builtin__\nset\n](h\x04h\x01h\x03h\x00h\x02h\x05e\x85R"
        b"X\x14\x00\x00\x00__pydantic_private__Nub."
    ),
    5: (
        b'\x80\x05\x95"\x01\x00\x00\x00\x00\x00\x00\x8c)juniper_cascor_protocol.envelope.training'
        b"\x8c\x0fMetricsEnvelope\x93)\x81}(\x8c\x08__dict__}(\x8c\x04type\x94\x8c\x07metrics"
        b"\x8c\ttimestamp\x94GA\xd9T\xfc@\x10\x00\x00\x8c\x04data\x94}(\x8c\x05epochK\x0c"
        b"\x8c\x04lossG?\x9f\xbev\xc8\xb49Xu\x8c\x03seq\x94K)\x8c\x14emitted_at_monotonic\x94"
        b"G@\xbf\xbb\x80\x00\x00\x00\x00u\x8c\x12__pydantic_extra__}\x8c\x05trace\x94"
        b"\x8c\x03t-1s\x8c\x17__pydantic_fields_set__\x8f(h\x04h\x01h\x03h\x00h\x02h\x05\x90"
        b"\x8c\x14__pydantic_private__Nub."
    ),
}


@pytest.mark.parametrize("protocol", sorted(PICKLED_METRICS))
def test_a_metrics_envelope_pickled_by_0_1_loads_and_re_serializes(protocol: int) -> None:
    frame = {
        "type": "metrics",
        "timestamp": 1_700_000_000.25,
        "data": {"epoch": 12, "loss": 0.031},
        "seq": 41,
        "emitted_at_monotonic": 8123.5,
        "trace": "t-1",
    }
    loaded = pickle.loads(PICKLED_METRICS[protocol])
    assert type(loaded) is MetricsEnvelope
    assert loaded == validate_envelope(frame)
    assert loaded.model_fields_set == set(frame)
    assert json.loads(to_wire_json(loaded)) == frame
    assert pickle.loads(pickle.dumps(loaded, protocol=protocol)) == loaded


def test_every_model_config_is_annotated_as_a_class_variable() -> None:
    models: list[type[pydantic.BaseModel]] = [BaseEnvelope, UnknownEnvelope]
    models += [*KNOWN_ENVELOPES.values(), InitialMetricsData, ChunkedMessageData]
    for model in models:
        assert model.model_config["extra"] == "allow", model
        assert model.model_config["ser_json_inf_nan"] == "constants", model
    # Where the source sets a configuration, it declares its type (pyright's "known type").
    for model in (BaseEnvelope, InitialMetricsData, ChunkedMessageData):
        annotations = inspect.get_annotations(model, eval_str=True)
        assert annotations["model_config"] == typing.ClassVar[pydantic.ConfigDict], model
