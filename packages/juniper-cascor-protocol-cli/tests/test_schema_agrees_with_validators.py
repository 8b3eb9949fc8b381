"""Differential test: a real JSON Schema validator and the Python validators agree on every frame.

Frames are drawn from each per-type schema (valid ones), then most of them are mutated up to three
times (near-valid ones): a value removed, replaced by one of ``_TRICKY_VALUES``, an array grown
past every length limit, or an object given an unknown key. Each frame gets a verdict from
``jsonschema`` and from the validator that is the truth for it (``validate_envelope``,
``parse_command``, ``parse_worker_message``); they must agree, for the endpoint's combined schema
and for the per-type schema the frame was drawn from.

Two rules are beyond JSON Schema and stated in the schemas' descriptions:

* an integer must be written as one (``3``, not ``3.0``). ``jsonschema`` is run here with that
  rule as its ``integer`` type (a Python ``int``, which is what ``json.loads`` gives for an integer
  written as one); every other keyword is ``jsonschema``'s own;
* a request's strings must be Unicode text: a frame with a lone surrogate there must be refused by
  ``parse_command``, and is not compared.

``test_schema.py`` checks that the stock validator differs on these only as the descriptions say.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Mapping
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from juniper_cascor_protocol.envelope import (
    KNOWN_ENVELOPES,
    ControlCommand,
    describe_validation_error,
    parse_command,
    validate_envelope,
)
from juniper_cascor_protocol.schema import generate_schemas
from juniper_cascor_protocol.worker import (
    WORKER_MESSAGES,
    WorkerMessage,
    WorkerMessageType,
    parse_worker_message,
)

SCHEMAS = generate_schemas()


def _is_written_integer(_checker: object, instance: object) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


WrittenIntegerValidator = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", _is_written_integer
    ),
)
"""Draft 2020-12, with ``integer`` meaning an integer written as one (see the module docstring)."""


# --- frames drawn from a schema ---------------------------------------------------------------

_ANNOTATIONS = frozenset({"$schema", "$id", "title", "description", "default"})
_UNDERSTOOD = frozenset(
    {
        "type",
        "const",
        "enum",
        "anyOf",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "maxItems",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "pattern",
    }
)

_JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _numbers(schema: Mapping[str, Any], *, integers_only: bool) -> st.SearchStrategy[Any]:
    low, high = schema.get("minimum"), schema.get("maximum")
    exclude_low = "exclusiveMinimum" in schema
    exclude_high = "exclusiveMaximum" in schema
    low = schema.get("exclusiveMinimum", low)
    high = schema.get("exclusiveMaximum", high)
    int_low = None if low is None else int(low) + (1 if exclude_low and low == int(low) else 0)
    int_high = (
        None if high is None else int(high) - (1 if exclude_high and high == int(high) else 0)
    )
    integers = st.integers(min_value=int_low, max_value=int_high)
    if integers_only:
        return integers
    floats = st.floats(
        min_value=low,
        max_value=high,
        exclude_min=exclude_low,
        exclude_max=exclude_high,
        allow_nan=False,
        allow_infinity=False,
    )
    return integers | floats


def _objects(schema: Mapping[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    properties = {name: _values_of(sub) for name, sub in schema.get("properties", {}).items()}
    required = set(schema.get("required", ()))
    unknown_required = required - properties.keys()
    if unknown_required:
        raise NotImplementedError(f"required without a property schema: {unknown_required}")
    fields = st.fixed_dictionaries(
        {name: values for name, values in properties.items() if name in required},
        optional={name: values for name, values in properties.items() if name not in required},
    )
    additional = schema.get("additionalProperties", True)
    if additional is False:
        return fields
    extra_values = _JSON_VALUES if additional is True else _values_of(additional)
    extra_keys = st.text(max_size=8).filter(lambda key: key not in properties)
    # Entries of a schema of their own (a tensor manifest's) are what the test is after.
    extras = st.dictionaries(
        extra_keys, extra_values, min_size=0 if additional is True else 1, max_size=3
    )
    return st.builds(lambda more, known: {**more, **known}, extras, fields)


def _values_of(schema: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid for ``schema``, for the keywords the schemas use; any other one is an error."""
    unknown = schema.keys() - _UNDERSTOOD - _ANNOTATIONS
    if unknown:
        raise NotImplementedError(
            f"the schemas use {sorted(unknown)}, which this test cannot draw frames for yet"
        )
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema:
        return st.one_of([_values_of(sub) for sub in schema["anyOf"]])
    kind = schema.get("type")
    if kind is None:
        return _JSON_VALUES
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"])
        return st.text(min_size=schema.get("minLength", 0), max_size=schema.get("maxLength"))
    if kind in ("integer", "number"):
        return _numbers(schema, integers_only=kind == "integer")
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        items = _values_of(schema["items"]) if "items" in schema else _JSON_VALUES
        return st.lists(items, max_size=min(schema.get("maxItems", 4), 12))
    if kind == "object":
        return _objects(schema)
    raise NotImplementedError(f"type {kind!r}")


# --- near-valid frames ------------------------------------------------------------------------

_TYPE_NAMES = sorted({*KNOWN_ENVELOPES, *(str(name) for name in WORKER_MESSAGES)})
_TRICKY_VALUES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    1,
    2,
    3.0,  # an integer written with a fraction
    -0.0,
    0.5,
    1.5,
    2**32 - 1,
    2**32,  # past a shape entry's u32
    2**63,
    10**400,  # a 401-digit integer
    -(10**400),
    float("inf"),  # what json.loads makes of 1e400
    float("-inf"),
    sys.float_info.max,
    -sys.float_info.max,
    "",
    "x",
    "w1",
    "w1\n",
    "-w",
    "w" * 65,
    "\ud800",  # a lone surrogate, as json.loads makes of "\ud800"
    "accepted",
    "float32",
    "<f4",
    "float128",
    "object",
    [],
    [1],
    [1.5],
    [0] * 11,  # past the 10-dimension limit
    {},
    {"a": 1},
    {"shape": [2], "dtype": "float32"},
    {"shape": [2]},
    *_TYPE_NAMES,
    "no_such_type",
)

Path = tuple[str | int, ...]


def _positions(value: Any, schema: Mapping[str, Any], path: Path = ()) -> list[Path]:
    """Every position inside ``value`` that ``schema`` constrains, its root excluded.

    The insides of free-form values are left out: no mutation there can change a verdict, and
    leaving them out makes the positions that can more likely to be drawn.
    """
    alternatives = [sub for sub in schema.get("anyOf", ()) if sub.get("type") != "null"]
    if alternatives:
        schema = alternatives[0]
    found: list[Path] = []
    children: list[tuple[str | int, Any, Mapping[str, Any] | None]] = []
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        additional = schema.get("additionalProperties", True)
        entries = additional if isinstance(additional, dict) else None
        children = [(key, child, properties.get(key, entries)) for key, child in value.items()]
    elif isinstance(value, list) and "items" in schema:
        children = [(index, child, schema["items"]) for index, child in enumerate(value)]
    for key, child, child_schema in children:
        found.append((*path, key))
        if child_schema is not None:
            found += _positions(child, child_schema, (*path, key))
    return found


def _parent(frame: Any, path: Path) -> Any:
    for key in path[:-1]:
        frame = frame[key]
    return frame


def _at(frame: Any, path: Path) -> Any:
    return _parent(frame, path)[path[-1]]


@st.composite
def _near_valid(
    draw: st.DrawFn, frame: dict[str, Any], schema: Mapping[str, Any]
) -> dict[str, Any]:
    """``frame`` after up to three mutations: a value removed, replaced or grown."""
    mutated = copy.deepcopy(frame)
    for _ in range(draw(st.sampled_from((0, 1, 1, 2, 2, 3)))):
        mutation = draw(st.sampled_from(("remove", "replace", "lengthen", "widen")))
        positions = _positions(mutated, schema)
        if mutation in ("lengthen", "widen"):
            # Drawn among the arrays alone, or the objects alone, each is reached more often.
            kind = list if mutation == "lengthen" else dict
            positions = [path for path in positions if isinstance(_at(mutated, path), kind)]
        if not positions:
            continue
        path = draw(st.sampled_from(positions))
        parent = _parent(mutated, path)
        target = parent[path[-1]]
        if mutation == "remove":
            del parent[path[-1]]
        elif mutation == "replace":
            parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(_TRICKY_VALUES)))
        elif mutation == "lengthen":
            # Past every length limit (a shape's 10 dimensions), with elements already there.
            parent[path[-1]] = copy.deepcopy((target or [0]) * 11)
        else:
            target[draw(st.text(max_size=8))] = copy.deepcopy(draw(st.sampled_from(_TRICKY_VALUES)))
    return mutated


def _frames(schema: Mapping[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Frames of ``schema``: valid about one time in six, near-valid otherwise."""
    return _values_of(schema).flatmap(lambda frame: _near_valid(frame, schema))


# --- verdicts ---------------------------------------------------------------------------------

Verdict = tuple[bool, str]
"""Whether the frame is valid, and why not."""


def _schema_verdict(schema: Mapping[str, Any], frame: Any) -> Verdict:
    error = jsonschema.exceptions.best_match(WrittenIntegerValidator(schema).iter_errors(frame))
    if error is None:
        return True, ""
    return False, f"{error.json_path}: {error.message[:300]}"


def _envelope_verdict(frame: dict[str, Any], accepted: tuple[type[Any], ...]) -> Verdict:
    envelope = validate_envelope(frame)
    if type(envelope) in accepted:
        return True, ""
    type_name = frame.get("type")
    model = KNOWN_ENVELOPES.get(type_name) if isinstance(type_name, str) else None
    if model is None:
        return False, f"not a typed envelope of {[cls.__name__ for cls in accepted]}"
    try:
        model.model_validate(frame, strict=True)
    except ValidationError as error:
        return False, "; ".join(describe_validation_error(error))
    return False, f"a {type(envelope).__name__}, not one of {[c.__name__ for c in accepted]}"


def _worker_verdict(frame: dict[str, Any], accepted: type[WorkerMessage]) -> Verdict:
    message = parse_worker_message(frame)
    if isinstance(message, accepted):
        return True, ""
    if isinstance(message, list):
        return False, "; ".join(str(error) for error in message)
    return False, f"a {type(message).__name__}, not a {accepted.__name__}"


def _command_verdict(frame: dict[str, Any]) -> Verdict:
    request = parse_command(frame)
    if isinstance(request, ControlCommand):
        return True, ""
    return False, "; ".join(request.errors)


def _assert_agree(schema_name: str, frame: Any, schema: Verdict, python: Verdict) -> None:
    if schema[0] == python[0]:
        return
    shown = repr(frame)
    shown = shown if len(shown) <= 600 else shown[:600] + "..."
    pytest.fail(
        f"{schema_name} and the Python validators disagree:\n"
        f"  frame: {shown}\n"
        f"  schema: {'valid' if schema[0] else 'invalid, ' + schema[1]}\n"
        f"  validators: {'valid' if python[0] else 'invalid, ' + python[1]}\n"
        "If a validator's rule changed on purpose, teach juniper_cascor_protocol.schema the new "
        "rule and run `juniper-cascor-protocol schema`; otherwise one of the two is wrong.",
        pytrace=False,
    )


# --- the tests --------------------------------------------------------------------------------

# Each per-type schema gets its own examples, so that rare shapes (a tensor manifest's entries)
# are reached as often as common ones.
_VARIANTS = [
    pytest.param(endpoint, type_name, id=f"{endpoint}:{type_name}")
    for endpoint in ("training", "control", "workers")
    for type_name in SCHEMAS[f"endpoint/{endpoint}.schema.json"]["$defs"]
]
_EXAMPLES = settings(max_examples=120, suppress_health_check=[HealthCheck.too_slow])


def _python_verdicts(
    endpoint: str, type_name: str, frame: dict[str, Any]
) -> tuple[Verdict, Verdict]:
    """The validators' verdict for the endpoint's combined schema, then for the per-type one."""
    if endpoint == "workers":
        message_class = WORKER_MESSAGES[WorkerMessageType(type_name)]
        return _worker_verdict(frame, WorkerMessage), _worker_verdict(frame, message_class)
    endpoint_schema = SCHEMAS[f"endpoint/{endpoint}.schema.json"]
    endpoint_classes = tuple(KNOWN_ENVELOPES[name] for name in endpoint_schema["$defs"])
    return (
        _envelope_verdict(frame, endpoint_classes),
        _envelope_verdict(frame, (KNOWN_ENVELOPES[type_name],)),
    )


@pytest.mark.parametrize(("endpoint", "type_name"), _VARIANTS)
@_EXAMPLES
@given(data=st.data())
def test_frames_get_the_same_verdict_from_both(
    endpoint: str, type_name: str, data: st.DataObject
) -> None:
    combined_name = f"endpoint/{endpoint}.schema.json"
    alone_name = f"{'worker' if endpoint == 'workers' else 'envelope'}/{type_name}.schema.json"
    frame = data.draw(_frames(SCHEMAS[alone_name]), label="frame")
    for_endpoint, for_type = _python_verdicts(endpoint, type_name, frame)
    _assert_agree(
        combined_name, frame, _schema_verdict(SCHEMAS[combined_name], frame), for_endpoint
    )
    _assert_agree(alone_name, frame, _schema_verdict(SCHEMAS[alone_name], frame), for_type)


def _has_lone_surrogate(value: object) -> bool:
    return isinstance(value, str) and any("\ud800" <= char <= "\udfff" for char in value)


@_EXAMPLES
@given(_frames(SCHEMAS["control/command.schema.json"]))
def test_control_requests_get_the_same_verdict_from_both(frame: dict[str, Any]) -> None:
    schema = SCHEMAS["control/command.schema.json"]
    if _has_lone_surrogate(frame.get("command")) or _has_lone_surrogate(frame.get("command_id")):
        # The one rule of this schema that JSON Schema cannot express: its description says so.
        assert "lone surrogate" in schema["description"]
        accepted, _ = _command_verdict(frame)
        assert not accepted, "parse_command now takes a lone surrogate: drop the schema's note"
        return
    _assert_agree(
        "control/command.schema.json",
        frame,
        _schema_verdict(schema, frame),
        _command_verdict(frame),
    )


def test_the_frame_generator_knows_every_keyword_of_every_schema() -> None:
    # Building the strategies walks every keyword: a new one must be taught to the generator
    # before the differential tests above can claim to cover it.
    for name, schema in SCHEMAS.items():
        variants = schema.get("$defs", {name: schema})
        for variant in variants.values():
            _values_of(variant).validate()
