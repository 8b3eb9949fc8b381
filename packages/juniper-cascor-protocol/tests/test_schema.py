"""The committed JSON Schemas are exactly what the models generate: they cannot drift."""

from __future__ import annotations

from pathlib import Path

from juniper_cascor_protocol.envelope import KNOWN_ENVELOPES
from juniper_cascor_protocol.schema import check_schemas, generate_schemas
from juniper_cascor_protocol.worker import WORKER_MESSAGES

COMMITTED = Path(__file__).resolve().parents[3] / "schemas"


def test_committed_schemas_match_the_models() -> None:
    assert check_schemas(COMMITTED) == [], (
        "regenerate with: uv run juniper-cascor-protocol schema --out schemas"
    )


def test_every_envelope_and_worker_message_has_a_schema() -> None:
    names = set(generate_schemas())
    assert {f"envelope/{t}.schema.json" for t in KNOWN_ENVELOPES} <= names
    assert {f"worker/{t}.schema.json" for t in WORKER_MESSAGES} <= names
    assert "control/command.schema.json" in names


def test_worker_schemas_state_their_type_tag() -> None:
    for message_type in WORKER_MESSAGES:
        schema = generate_schemas()[f"worker/{message_type}.schema.json"]
        assert schema["properties"]["type"]["const"] == str(message_type)
        assert "type" in schema["required"]


def test_worker_schemas_carry_the_constraints_parse_enforces() -> None:
    schemas = generate_schemas()
    register = schemas["worker/register.schema.json"]["properties"]["worker_id"]
    assert register["pattern"] == "^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$"
    correlation = schemas["worker/task_result.schema.json"]["properties"]["correlation"]
    assert (correlation["minimum"], correlation["maximum"]) == (0, 1)
