"""JSON Schemas of every envelope and worker message, for consumers not written in Python.

The schemas are generated from the models themselves (Pydantic's generator; the worker's
dataclasses go through a ``TypeAdapter`` here, outside the Pydantic-free worker wheel) and
committed under ``schemas/``; a test regenerates them and fails on any drift.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from juniper_cascor_protocol.envelope import KNOWN_ENVELOPES, UnknownEnvelope
from juniper_cascor_protocol.envelope.control import ControlCommand
from juniper_cascor_protocol.worker import WORKER_ID_PATTERN, WORKER_MESSAGES

__all__ = ["check_schemas", "generate_schemas", "write_schemas"]

# Constraints the worker's parse() enforces in code; stated here so other languages see them.
_WORKER_FIELD_CONSTRAINTS: dict[str, dict[str, Any]] = {
    "worker_id": {"pattern": f"^{WORKER_ID_PATTERN.pattern}$"},
    "correlation": {"minimum": 0, "maximum": 1},
}


def generate_schemas() -> dict[str, dict[str, Any]]:
    """Relative file name → JSON Schema, for every envelope, control command and worker message."""
    schemas: dict[str, dict[str, Any]] = {}
    for type_name, model in KNOWN_ENVELOPES.items():
        schemas[f"envelope/{type_name}.schema.json"] = model.model_json_schema()
    schemas["envelope/unknown.schema.json"] = UnknownEnvelope.model_json_schema()
    schemas["control/command.schema.json"] = ControlCommand.model_json_schema()
    for message_type, message_class in WORKER_MESSAGES.items():
        schema = TypeAdapter(message_class).json_schema()
        # The dataclasses carry their tag as a class attribute, not a field: state it here.
        schema.setdefault("properties", {})["type"] = {"const": str(message_type), "type": "string"}
        schema.setdefault("required", []).insert(0, "type")
        for name, constraint in _WORKER_FIELD_CONSTRAINTS.items():
            if name in schema["properties"]:
                schema["properties"][name].update(constraint)
        schemas[f"worker/{message_type}.schema.json"] = schema
    return schemas


def _serialize(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    """Write every schema under ``directory``; returns the paths written."""
    written = []
    for name, schema in generate_schemas().items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_serialize(schema), encoding="utf-8")
        written.append(path)
    return written


def check_schemas(directory: Path) -> list[str]:
    """Differences between the models and the schemas under ``directory`` (empty: in sync)."""
    expected = {name: _serialize(schema) for name, schema in generate_schemas().items()}
    problems = []
    for name, text in expected.items():
        path = directory / name
        if not path.is_file():
            problems.append(f"missing: {name}")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"out of date: {name}")
    present = {p.relative_to(directory).as_posix() for p in directory.rglob("*.schema.json")}
    problems += [f"no longer generated: {name}" for name in sorted(present - expected.keys())]
    return problems
