"""Turn a received frame into a typed envelope, never raising on what a peer sent.

``validate_envelope(frame)`` takes a decoded dict; ``validate_envelope_json(raw)`` goes straight
from the text or bytes of a WebSocket message to an envelope with Pydantic's JSON parser. Both
dispatch on ``type`` once, through one ``TypeAdapter`` over the discriminated union of the ten
known envelopes, and both return an :class:`UnknownEnvelope` for anything else (see
:func:`validate_envelope` for the fallback rules and :mod:`.labels` for the ``type`` label).

How it stays cheap (see the benchmark in ``benchmarks/test_envelope_validation.py``):

* The adapter's type is ``known envelope | fallback envelope | Any``, tried left to right. The
  fallback is an ``UnknownEnvelope`` schema whose fields fall back to their defaults instead of
  failing, so an unknown or invalid frame becomes its ``UnknownEnvelope`` inside pydantic-core:
  no ``ValidationError`` is raised on any path, and no Python loop runs over the frame.
* A dict whose ``type`` is not one of the ten names (checked first, by set membership) goes
  straight to the fallback schema, never through the tagged union.
* The adapter is called in strict mode, in which the free-form ``data`` is taken as is (its
  keys checked in C) rather than copied item by item (see :mod:`.base`).
* From JSON, one parse by Pydantic's parser yields the envelope, whichever it is; the text is
  parsed again (by :func:`json.loads`) only when that parser rejects it, so the result is still
  the one ``validate_envelope(json.loads(raw))`` gives.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Final

from pydantic import ConfigDict, Field, GetCoreSchemaHandler, TypeAdapter
from pydantic_core import CoreSchema, core_schema

from juniper_cascor_protocol.envelope.base import BaseEnvelope, UnknownEnvelope
from juniper_cascor_protocol.envelope.control import (
    CommandResponseEnvelope,
    ConnectionEstablishedEnvelope,
)
from juniper_cascor_protocol.envelope.labels import (
    INVALID_TYPE_LABEL,
    MALFORMED_JSON_LABEL,
    MAX_LABEL_LENGTH,
    MISSING_TYPE_LABEL,
    NOT_AN_OBJECT_LABEL,
    RESERVED_LABELS,
    UNKNOWN_TYPE_BUDGET,
    UNMATCHED_TYPE_LABEL,
    label_for_type,
)
from juniper_cascor_protocol.envelope.training import (
    CandidateProgressEnvelope,
    CascadeAddEnvelope,
    ChunkedMessageEnvelope,
    EventEnvelope,
    InitialMetricsEnvelope,
    MetricsEnvelope,
    StateEnvelope,
    TopologyEnvelope,
)

__all__ = [
    "INVALID_TYPE_LABEL",
    "KNOWN_ENVELOPES",
    "MALFORMED_JSON_LABEL",
    "MAX_LABEL_LENGTH",
    "MISSING_TYPE_LABEL",
    "NOT_AN_OBJECT_LABEL",
    "RESERVED_LABELS",
    "UNKNOWN_TYPE_BUDGET",
    "UNMATCHED_TYPE_LABEL",
    "KnownEnvelope",
    "validate_envelope",
    "validate_envelope_json",
]

KnownEnvelope = (
    MetricsEnvelope
    | StateEnvelope
    | TopologyEnvelope
    | EventEnvelope
    | CascadeAddEnvelope
    | CandidateProgressEnvelope
    | InitialMetricsEnvelope
    | ChunkedMessageEnvelope
    | CommandResponseEnvelope
    | ConnectionEstablishedEnvelope
)

KNOWN_ENVELOPES: dict[str, type[BaseEnvelope]] = {
    "metrics": MetricsEnvelope,
    "state": StateEnvelope,
    "topology": TopologyEnvelope,
    "event": EventEnvelope,
    "cascade_add": CascadeAddEnvelope,
    "candidate_progress": CandidateProgressEnvelope,
    "initial_metrics": InitialMetricsEnvelope,
    "chunked_message": ChunkedMessageEnvelope,
    "command_response": CommandResponseEnvelope,
    "connection_established": ConnectionEstablishedEnvelope,
}


def _label_of(value: Any) -> str:
    """The ``type`` label of an unmatched frame whose ``type`` key is present."""
    type_str = _exact_str(value)
    return label_for_type(type_str) if type_str else INVALID_TYPE_LABEL


def _lenient_schema(cls: type[UnknownEnvelope]) -> CoreSchema:
    """The fallback rules of :func:`validate_envelope` as a schema of ``cls``: no field fails."""

    def field(schema: CoreSchema, **default: Any) -> core_schema.ModelField:
        return core_schema.model_field(
            core_schema.with_default_schema(schema, on_error="default", **default)
        )

    finite = core_schema.float_schema(allow_inf_nan=False, strict=True)
    return core_schema.model_schema(
        cls,
        core_schema.model_fields_schema(
            {
                "type": field(
                    core_schema.no_info_plain_validator_function(_label_of),
                    default=MISSING_TYPE_LABEL,
                ),
                "timestamp": field(finite, default=0.0),
                "data": field(
                    core_schema.json_or_python_schema(
                        json_schema=core_schema.dict_schema(),
                        python_schema=core_schema.is_instance_schema(dict),
                    ),
                    default_factory=dict,
                ),
                "seq": field(core_schema.int_schema(strict=True), default=None),
                "emitted_at_monotonic": field(finite, default=None),
            },
            extra_behavior="allow",
        ),
        extra_behavior="allow",
    )


class _LenientUnknownEnvelope(UnknownEnvelope):
    """An ``UnknownEnvelope`` that pydantic-core builds from any dict with string keys.

    Its schema (:func:`_lenient_schema`) implements the fallback rules of
    :func:`validate_envelope`: every field falls back to its default instead of failing. It is a
    private subclass because Pydantic reuses a model's own validator wherever that model appears
    in a schema, so ``UnknownEnvelope`` itself cannot carry a second one; :func:`_as_unknown`
    turns each instance into a plain ``UnknownEnvelope`` (same fields, same layout) before it is
    returned.
    """

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return _lenient_schema(cls)


def _as_unknown(envelope: _LenientUnknownEnvelope) -> UnknownEnvelope:
    # Compatible layouts (a subclass adding no slots), so CPython allows the reassignment.
    object.__setattr__(envelope, "__class__", UnknownEnvelope)
    return envelope


# Tried left to right: the typed envelope, else the fallback envelope, else the input as is
# (JSON that is not an object, or a dict that pydantic-core cannot read).
_WireFrame = Annotated[
    Annotated[KnownEnvelope, Field(discriminator="type")] | _LenientUnknownEnvelope | Any,
    Field(union_mode="left_to_right"),
]
_ADAPTER: Final = TypeAdapter[Any](
    _WireFrame,
    # Frames repeat the same short strings, keys ("type", "loss") and values ("success")
    # alike: the JSON parser reuses their str objects. Measured on the benchmark's mix,
    # "keys" or "none" were slower.
    config=ConfigDict(cache_strings="all"),
)
# The validators' own methods: ``TypeAdapter.validate_*`` adds a Python call per frame.
_validate_python: Final = _ADAPTER.validator.validate_python
_validate_json: Final = _ADAPTER.validator.validate_json
_validate_unknown: Final = _LenientUnknownEnvelope.__pydantic_validator__.validate_python

_KNOWN_CLASSES: Final = frozenset(KNOWN_ENVELOPES.values())
_FIELD_NAMES: Final = frozenset({"type", "timestamp", "data", "seq", "emitted_at_monotonic"})


def validate_envelope(frame: dict[str, Any]) -> BaseEnvelope:
    """Validate a decoded frame into its typed envelope.

    Returns the typed envelope when ``type`` is one of the ten known names and the frame is
    valid for it (strictly: see :mod:`.base`). Otherwise returns an :class:`UnknownEnvelope`,
    whatever the dict holds:

    * ``type``: the bounded label of :func:`~.labels.label_for_type` (a known name whose payload
      failed validation keeps its name; a missing ``type`` is ``"_missing_type"``, a non-string
      or empty one ``"_invalid_type"``);
    * ``timestamp``: kept if a finite ``int`` or ``float`` (not ``bool``), else ``0.0``;
    * ``data``: kept (the same object) if a dict, else ``{}``;
    * ``seq``: kept if an ``int`` (not ``bool``), else absent;
    * ``emitted_at_monotonic``: kept if a finite ``int`` or ``float`` (not ``bool``), else absent;
    * every other top-level key that is a string is kept, as on a typed envelope; keys that are
      not strings (JSON cannot produce them) are dropped.

    Raises:
        TypeError: ``frame`` is not a dict (a bug in the caller, not bad input from a peer).
    """
    if not isinstance(frame, dict):
        raise TypeError(f"validate_envelope: frame must be a dict, got {type(frame).__name__}")
    try:
        # ``dict.get``, not ``frame.get``: a dict subclass may override ``get``. A str subclass
        # (a StrEnum member, say) dispatches like its value.
        type_ = dict.get(frame, "type")
        if isinstance(type_, str) and type_ in KNOWN_ENVELOPES:
            if type(type_) is not str:
                # Strict ``Literal`` refuses a str subclass on older Pydantic: pass its value.
                frame = dict(dict.items(frame))
                frame["type"] = "".join((type_,))
            result = _validate_python(frame, strict=True)
        else:
            result = _validate_unknown(frame, strict=True)
        # Exact type checks: ``isinstance`` on a model class goes through ``ABCMeta``.
        result_type = type(result)
        if result_type in _KNOWN_CLASSES:
            return result  # type: ignore[no-any-return]
        if result_type is _LenientUnknownEnvelope:
            return _as_unknown(result)
    except Exception:  # a dict no validator can read: it gets the fallback like any invalid one
        pass
    return _fallback(frame)


def validate_envelope_json(raw: str | bytes | bytearray | memoryview) -> BaseEnvelope:
    """Validate the text of one WebSocket message straight into its typed envelope.

    Gives the same result as ``validate_envelope(json.loads(raw))`` and never raises on any
    ``str`` or bytes: text that is not JSON (or nests too deeply for :func:`json.loads`) becomes
    an :class:`UnknownEnvelope` labelled ``"_malformed_json"``, JSON that is not an object one
    labelled ``"_not_an_object"``; both have ``timestamp`` 0.0 and ``data`` ``{}``.

    Two differences remain with older Pydantic, on input no encoder of this protocol writes:
    before 2.11, a key repeated in one object gives its first value where :func:`json.loads`
    gives the last; before 2.12, a JSON integer of 19 or more digits is refused where a float
    is expected (``timestamp``, ``emitted_at_monotonic``) where the dict path accepts it.

    Raises:
        TypeError: ``raw`` is not ``str``, ``bytes``, ``bytearray`` or ``memoryview``.
    """
    if isinstance(raw, memoryview):
        raw = raw.tobytes()  # Pydantic's parser takes str, bytes and bytearray only
    elif not isinstance(raw, str | bytes | bytearray):
        raise TypeError(
            "validate_envelope_json: raw must be str, bytes, bytearray or memoryview, "
            f"got {type(raw).__name__}"
        )
    try:
        result = _validate_json(raw, strict=True)
    except Exception:
        # Pydantic's parser refused the text (not JSON, nested deeper than its limit, a lone
        # surrogate escape, not UTF-8); the standard parser decides, as in the dict path.
        return _decode_with_json_module(raw)
    result_type = type(result)
    if result_type in _KNOWN_CLASSES:
        return result  # type: ignore[no-any-return]
    if result_type is _LenientUnknownEnvelope:
        return _as_unknown(result)
    if isinstance(result, dict):  # not expected (a JSON object's keys are strings), but safe
        return validate_envelope(result)
    return _reserved(NOT_AN_OBJECT_LABEL)


def _decode_with_json_module(raw: str | bytes | bytearray) -> BaseEnvelope:
    try:
        decoded = json.loads(raw)
    except Exception:  # ValueError for bad JSON, RecursionError for too deep
        return _reserved(MALFORMED_JSON_LABEL)
    if not isinstance(decoded, dict):
        return _reserved(NOT_AN_OBJECT_LABEL)
    return validate_envelope(decoded)


def _reserved(label: str) -> UnknownEnvelope:
    return UnknownEnvelope.model_construct(type=label, timestamp=0.0, data={})


def _fallback(frame: dict[Any, Any]) -> UnknownEnvelope:
    """Build the :class:`UnknownEnvelope` for any ``frame`` from checked values; cannot raise."""
    fields: dict[str, Any] = {"type": MISSING_TYPE_LABEL, "timestamp": 0.0, "data": {}}
    extra: dict[str, Any] = {}
    try:
        # A view of the dict's own storage: a subclass's ``items``/``__iter__`` are not called.
        items = list(dict.items(frame))
    except Exception:
        items = []
    for key_obj, value in items:
        key = _exact_str(key_obj)
        if key is None:
            continue
        if key not in _FIELD_NAMES:
            extra[key] = value
        elif key == "type":
            fields["type"] = _label_of(value)
        elif key == "timestamp":
            timestamp = _finite_float(value)
            if timestamp is not None:
                fields["timestamp"] = timestamp
        elif key == "data":
            if isinstance(value, dict):
                fields["data"] = value
        elif key == "seq":
            if isinstance(value, int) and not isinstance(value, bool):
                fields["seq"] = int.__int__(value)
        else:  # emitted_at_monotonic
            monotonic = _finite_float(value)
            if monotonic is not None:
                fields["emitted_at_monotonic"] = monotonic
    envelope = UnknownEnvelope.model_construct(**fields)
    # Extras are added afterwards, so that a wire key such as "_fields_set" cannot be taken for
    # an argument of ``model_construct``.
    kept = envelope.__pydantic_extra__
    if kept is not None:  # always a dict with extra="allow"
        kept.update(extra)
    return envelope


def _exact_str(value: object) -> str | None:
    """``value`` as an exact ``str`` (no method of a subclass is called), or ``None``."""
    if type(value) is str:
        return value
    if isinstance(value, str):
        return "".join((value,))
    return None


def _finite_float(value: object) -> float | None:
    """``value`` as a float if it is a finite ``int`` or ``float`` (not ``bool``), else ``None``."""
    if isinstance(value, bool):
        return None
    try:
        # The base-class methods, so a subclass cannot run code of its own here.
        if isinstance(value, float):
            number = float.__float__(value)
        elif isinstance(value, int):
            number = int.__float__(value)
        else:
            return None
    except OverflowError:  # an int too large for a float, such as 10**400
        return None
    return number if math.isfinite(number) else None
