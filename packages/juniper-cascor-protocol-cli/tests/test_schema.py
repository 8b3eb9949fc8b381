"""The JSON Schemas: committed as generated, well formed, and refusing what the validators refuse.

Their agreement with the validators on drawn frames is in ``test_schema_agrees_with_validators``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from juniper_cascor_protocol.cli import EXIT_OK, EXIT_PROBLEMS, main
from juniper_cascor_protocol.envelope import (
    KNOWN_ENVELOPES,
    ControlCommand,
    UnknownEnvelope,
    parse_command,
    validate_envelope,
)
from juniper_cascor_protocol.envelope.control import CONTROL_ENVELOPES
from juniper_cascor_protocol.envelope.training import TRAINING_ENVELOPES
from juniper_cascor_protocol.schema import (
    SCHEMA_DIALECT,
    SCHEMA_DOCUMENTS,
    SCHEMA_ID_PREFIX,
    check_schemas,
    generate_schemas,
    write_schemas,
)
from juniper_cascor_protocol.worker import WORKER_MESSAGES, WorkerMessage, parse_worker_message

COMMITTED = Path(__file__).resolve().parents[3] / "schemas"
SCHEMAS = generate_schemas()


def _is_valid(schema_name: str, frame: object) -> bool:
    return jsonschema.Draft202012Validator(SCHEMAS[schema_name]).is_valid(frame)


def test_committed_schemas_match_the_models() -> None:
    assert check_schemas(COMMITTED) == [], (
        "regenerate with: uv run juniper-cascor-protocol schema --out schemas"
    )


def test_every_frame_kind_has_a_schema_and_each_endpoint_one_combined() -> None:
    expected = {
        *(f"envelope/{name}.schema.json" for name in KNOWN_ENVELOPES),
        *(f"worker/{name}.schema.json" for name in WORKER_MESSAGES),
        "control/command.schema.json",
        "endpoint/training.schema.json",
        "endpoint/control.schema.json",
        "endpoint/workers.schema.json",
    }
    assert set(SCHEMAS) == expected


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_each_schema_is_draft_2020_12_with_a_stable_urn(name: str) -> None:
    schema = SCHEMAS[name]
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == SCHEMA_DIALECT == "https://json-schema.org/draft/2020-12/schema"
    folder, file_name = name.split("/")
    assert schema["$id"] == f"{SCHEMA_ID_PREFIX}{folder}:{file_name.removesuffix('.schema.json')}"


@pytest.mark.parametrize(
    ("endpoint", "types"),
    [
        ("training", [cls.model_fields["type"].default for cls in TRAINING_ENVELOPES]),
        ("control", [cls.model_fields["type"].default for cls in CONTROL_ENVELOPES]),
        ("workers", [str(name) for name in WORKER_MESSAGES]),
    ],
)
def test_an_endpoint_schema_is_one_of_its_per_type_schemas_chosen_by_type(
    endpoint: str, types: list[str]
) -> None:
    combined = SCHEMAS[f"endpoint/{endpoint}.schema.json"]
    folder = "worker" if endpoint == "workers" else "envelope"
    references = [f"#/$defs/{name}" for name in types]
    assert combined["oneOf"] == [{"$ref": reference} for reference in references]
    assert combined["discriminator"] == {
        "propertyName": "type",
        "mapping": dict(zip(types, references, strict=True)),
    }
    assert combined["properties"]["type"] == {"enum": types}
    for name in types:
        alone = {
            key: value
            for key, value in SCHEMAS[f"{folder}/{name}.schema.json"].items()
            if key not in ("$schema", "$id")
        }
        assert combined["$defs"][name] == alone


# --- the disagreements found with jsonschema 4.26, each now a refusal on both sides ------------

_METRICS = {"type": "metrics", "timestamp": 1.5, "data": {}}
_CHUNK = {
    "type": "chunked_message",
    "timestamp": 1.5,
    "data": {
        "chunk_id": "c",
        "chunk_index": 0,
        "total_chunks": 1,
        "original_type": "metrics",
        "payload": "{}",
    },
}
_TENSOR = {"shape": [2, 3], "dtype": "float32"}
_TASK_ASSIGN = {
    "type": "task_assign",
    "task_id": "t",
    "round_id": "r",
    "candidate_index": 0,
    "candidate_data": {},
    "training_params": {},
    "tensor_manifest": {"x": _TENSOR},
}
_REGISTRATION_ACK = {"type": "registration_ack", "worker_id": "w1", "heartbeat_interval": 5}
_RESULT_ACK = {"type": "result_ack", "task_id": "t", "status": "accepted"}


def _with(frame: dict[str, Any], path: tuple[str, ...], value: object) -> dict[str, Any]:
    """A copy of ``frame`` with ``value`` at ``path``; ``...`` removes the key instead."""
    if len(path) == 1:
        changed = {key: item for key, item in frame.items() if key != path[0]}
        if value is not ...:
            changed[path[0]] = value
        return changed
    return {**frame, path[0]: _with(frame[path[0]], path[1:], value)}


def _python_accepts(frame: dict[str, Any]) -> bool:
    if frame.get("type") in KNOWN_ENVELOPES:
        return not isinstance(validate_envelope(frame), UnknownEnvelope)
    return isinstance(parse_worker_message(frame), WorkerMessage)


_REFUSED = [
    ("envelope/metrics", _with(_METRICS, ("type",), ...)),
    ("envelope/metrics", _with(_METRICS, ("timestamp",), float("inf"))),  # 1e400, decoded
    ("envelope/metrics", _with(_METRICS, ("timestamp",), 10**400)),
    ("envelope/metrics", _with(_METRICS, ("emitted_at_monotonic",), -(10**400))),
    ("envelope/chunked_message", _with(_CHUNK, ("data", "chunk_index"), -1)),
    ("envelope/chunked_message", _with(_CHUNK, ("data", "total_chunks"), 0)),
    ("worker/task_assign", _with(_TASK_ASSIGN, ("candidate_index",), -1)),
    ("worker/task_assign", _with(_TASK_ASSIGN, ("tensor_manifest", "x", "shape"), [2, -3])),
    ("worker/task_assign", _with(_TASK_ASSIGN, ("tensor_manifest", "x", "shape"), [2**32])),
    ("worker/task_assign", _with(_TASK_ASSIGN, ("tensor_manifest", "x", "shape"), [1] * 11)),
    ("worker/task_assign", _with(_TASK_ASSIGN, ("tensor_manifest", "x", "dtype"), "object")),
    ("worker/task_assign", _with(_TASK_ASSIGN, ("tensor_manifest", "x", "dtype"), "float128")),
    ("worker/registration_ack", _with(_REGISTRATION_ACK, ("heartbeat_interval",), 0)),
    ("worker/registration_ack", _with(_REGISTRATION_ACK, ("heartbeat_interval",), -1.5)),
    ("worker/registration_ack", _with(_REGISTRATION_ACK, ("worker_id",), "w1\n")),
    ("worker/result_ack", _with(_RESULT_ACK, ("status",), "maybe")),
]


@pytest.mark.parametrize(("schema", "frame"), _REFUSED)
def test_what_the_validators_refuse_the_schema_refuses(schema: str, frame: dict[str, Any]) -> None:
    assert not _python_accepts(frame)
    assert not _is_valid(f"{schema}.schema.json", frame)
    assert not _is_valid(f"endpoint/{_endpoint_of(schema)}.schema.json", frame)


@pytest.mark.parametrize(
    ("schema", "frame"),
    [
        ("envelope/metrics", _METRICS),
        ("envelope/metrics", _with(_METRICS, ("timestamp",), sys.float_info.max)),
        ("envelope/metrics", _with(_METRICS, ("timestamp",), 10**308)),
        ("envelope/chunked_message", _CHUNK),
        ("worker/task_assign", _TASK_ASSIGN),
        ("worker/task_assign", _with(_TASK_ASSIGN, ("tensor_manifest", "x", "shape"), [1] * 10)),
        ("worker/task_assign", _with(_TASK_ASSIGN, ("tensor_manifest", "x", "dtype"), ">c16")),
        ("worker/registration_ack", _REGISTRATION_ACK),
        ("worker/result_ack", _with(_RESULT_ACK, ("status",), "stale")),
    ],
)
def test_what_the_validators_accept_the_schema_accepts(schema: str, frame: dict[str, Any]) -> None:
    assert _python_accepts(frame)
    assert _is_valid(f"{schema}.schema.json", frame)
    assert _is_valid(f"endpoint/{_endpoint_of(schema)}.schema.json", frame)


def _endpoint_of(schema: str) -> str:
    folder, type_name = schema.split("/")
    if folder == "worker":
        return "workers"
    return "training" if KNOWN_ENVELOPES[type_name] in TRAINING_ENVELOPES else "control"


def test_a_frame_of_another_endpoint_is_not_valid_on_this_one() -> None:
    response = {
        "type": "command_response",
        "timestamp": 1,
        "data": {"command": "start", "status": "success"},
    }
    assert _is_valid("endpoint/control.schema.json", response)
    assert not _is_valid("endpoint/training.schema.json", response)


# --- what JSON Schema cannot express: the stock validator differs, as the descriptions say ----


def test_an_integer_written_with_a_fraction_is_a_documented_limit() -> None:
    frame = _with(_METRICS, ("seq",), 3.0)
    assert isinstance(validate_envelope(frame), UnknownEnvelope)
    assert _is_valid("envelope/metrics.schema.json", frame)  # JSON Schema: 3.0 is an integer
    assert "3, not 3.0" in SCHEMAS["envelope/metrics.schema.json"]["description"]
    for name, schema in SCHEMAS.items():
        if '"type": "integer"' in json.dumps(schema):
            assert "3, not 3.0" in schema["description"], name


def test_nan_and_the_rounding_window_below_overflow_are_documented_limits() -> None:
    just_below_overflow = 2**1024 - 2**970 - 1  # rounds to the largest double
    for value in (float("nan"), just_below_overflow):
        frame = _with(_METRICS, ("timestamp",), value)
        schema_says = _is_valid("envelope/metrics.schema.json", frame)
        assert schema_says != _python_accepts(frame)
    description = SCHEMAS["envelope/metrics.schema.json"]["description"]
    assert "NaN and Infinity are not JSON" in description
    assert "2**1024 - 2**970" in description


def test_a_lone_surrogate_in_a_command_is_a_documented_limit() -> None:
    frame = {"command": "start", "command_id": "\ud800"}
    assert not isinstance(parse_command(frame), ControlCommand)
    assert _is_valid("control/command.schema.json", frame)
    assert "lone surrogate" in SCHEMAS["control/command.schema.json"]["description"]


# --- writing and checking the folder ----------------------------------------------------------


def test_writing_removes_stale_schemas_and_leaves_other_files(tmp_path: Path) -> None:
    stale = tmp_path / "gone" / "old.schema.json"
    stale.parent.mkdir()
    stale.write_text("{}", encoding="utf-8")
    renamed = tmp_path / "envelope" / "unknown.schema.json"
    renamed.parent.mkdir()
    renamed.write_text("{}", encoding="utf-8")
    notes = tmp_path / "NOTES.md"
    notes.write_text("kept", encoding="utf-8")
    assert check_schemas(tmp_path)[-2:] == [
        "no longer generated: envelope/unknown.schema.json",
        "no longer generated: gone/old.schema.json",
    ]

    written = write_schemas(tmp_path)

    assert check_schemas(tmp_path) == []
    assert not stale.exists()
    assert not stale.parent.exists()
    assert not renamed.exists()
    assert notes.read_text(encoding="utf-8") == "kept"
    on_disk = {path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*.schema.json")}
    assert on_disk == set(SCHEMAS) == {path.relative_to(tmp_path).as_posix() for path in written}


# --- the command: writing, checking, printing -------------------------------------------------


def test_after_writing_the_check_passes_though_a_stale_schema_was_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_schemas(tmp_path)
    stale = tmp_path / "envelope" / "retired.schema.json"
    stale.write_text("{}", encoding="utf-8")
    assert main(["schema", "--check", "--out", str(tmp_path)]) == EXIT_PROBLEMS
    out = capsys.readouterr().out
    assert "no longer generated: envelope/retired.schema.json" in out
    assert f"run `juniper-cascor-protocol schema --out {tmp_path}` to update them" in out
    assert main(["schema", "--out", str(tmp_path)]) == EXIT_OK
    assert main(["schema", "--check", "--out", str(tmp_path)]) == EXIT_OK
    assert not stale.exists()


@pytest.mark.parametrize(("name", "file"), sorted(SCHEMA_DOCUMENTS.items()))
def test_stdout_prints_one_self_contained_document_as_committed(
    name: str, file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schema", "--stdout", name]) == EXIT_OK
    out = capsys.readouterr().out
    assert out == (COMMITTED / file).read_text(encoding="utf-8")
    document = json.loads(out)
    jsonschema.Draft202012Validator.check_schema(document)
    assert all(node["$ref"].startswith("#/") for node in _nodes(document) if "$ref" in node), (
        "a $ref leads out of the document"
    )


def test_stdout_offers_every_endpoint_and_the_control_request() -> None:
    assert set(SCHEMA_DOCUMENTS) == {"training", "control", "control-request", "workers"}
    assert {SCHEMA_DOCUMENTS[name] for name in ("training", "control", "workers")} == {
        name for name in SCHEMAS if name.startswith("endpoint/")
    }


def _nodes(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        return [node, *(child for value in node.values() for child in _nodes(value))]
    if isinstance(node, list):
        return [child for item in node for child in _nodes(item)]
    return []
