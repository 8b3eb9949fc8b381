"""Turn a received frame into a typed envelope, never raising on what a peer sent.

``validate_envelope(frame)`` takes a decoded dict; ``validate_envelope_json(raw)`` goes straight
from the text or bytes of a WebSocket message to an envelope with Pydantic's JSON parser. Both
dispatch on ``type`` once, through one ``TypeAdapter`` over the discriminated union of the ten
known envelopes, and both return an :class:`UnknownEnvelope` for anything else (see
:func:`validate_envelope` for the fallback rules and :mod:`.labels` for the ``type`` label).

How it stays cheap (see the benchmark in ``benchmarks/test_envelope_validation.py``):

* The adapter's type is ``known envelope | fallback | Any``, tried left to right. The fallback
  is a schema of the envelope's fields that marks a value failing its rule instead of failing,
  so an unknown or invalid frame is checked inside pydantic-core: no ``ValidationError`` is
  raised on any path, and no Python loop runs over the frame. One Python call builds the
  ``UnknownEnvelope`` from the checked values.
* A dict whose ``type`` is not one of the ten names (checked first, by set membership) goes
  straight to the fallback schema, never through the tagged union.
* The adapter is called in strict mode, in which the free-form ``data`` is taken as is (its
  keys checked in C) rather than copied item by item (see :mod:`.base`).
* From JSON, one parse by Pydantic's parser yields the envelope, whichever it is; the text is
  parsed again (by :func:`json.loads`) only when that parser rejects it, so the result is still
  the one ``validate_envelope(json.loads(raw))`` gives.
* A text of 4096 characters (or bytes) or more, such as an ``initial_metrics`` burst, is decoded
  by ``pydantic_core.from_json`` and then validated as a dict: Pydantic's JSON validation parses
  the whole text into a tree of its own before it builds any Python object, and on a list of
  objects that takes about 1.5 times what ``from_json`` takes to build the objects directly. On
  a short text the single JSON call is faster. Either way, a text the parser refuses goes to
  :func:`json.loads`.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, GetPydanticSchema, TypeAdapter
from pydantic_core import CoreSchema, SchemaValidator, core_schema, from_json

from juniper_cascor_protocol.envelope.base import MAX_SEQ, BaseEnvelope, UnknownEnvelope, _exact_str
from juniper_cascor_protocol.envelope.control import (
    CommandResponseEnvelope,
    ConnectionEstablishedEnvelope,
)
from juniper_cascor_protocol.envelope.labels import (
    DEFAULT_LABEL_BUDGET,
    INVALID_TYPE_LABEL,
    MALFORMED_JSON_LABEL,
    MAX_LABEL_LENGTH,
    MISSING_TYPE_LABEL,
    NOT_AN_OBJECT_LABEL,
    RESERVED_LABELS,
    UNKNOWN_TYPE_BUDGET,
    UNMATCHED_TYPE_LABEL,
    LabelBudget,
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
"""The ten typed envelopes, as one type: what ``validate_envelope`` returns besides the fallback."""

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
"""Each known ``type`` name and its envelope class, in the order of the protocol document."""


class _Absent:
    """The marker of a field whose value in the frame is missing or failed its fallback rule."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<absent>"


_ABSENT: Final = _Absent()


def _label_of(value: Any, labels: LabelBudget | None) -> str:
    """The ``type`` label of an unmatched frame whose ``type`` key is present."""
    if type(value) is not str:
        value = _exact_str(value)
    if not value:
        return INVALID_TYPE_LABEL
    return (DEFAULT_LABEL_BUDGET if labels is None else labels).label_for(value)


_new_object: Final = object.__new__
_set_slot: Final = object.__setattr__
_set_extra: Final = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_fields_set: Final = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_private: Final = BaseModel.__dict__["__pydantic_private__"].__set__


_CheckedFrame = tuple[dict[str, Any], dict[str, Any] | None, set[str]]
"""The fallback schema's output, ``(values, extras, fields_set)``: see :func:`_unknown_envelope`."""


def _unknown_envelope(
    checked: _CheckedFrame,
    labels: LabelBudget | None,
    # Bound as locals: this runs for every unknown frame (see the benchmark).
    _absent: Any = _ABSENT,
    _default_labels: LabelBudget = DEFAULT_LABEL_BUDGET,
    _new: Any = _new_object,
    _cls: type[UnknownEnvelope] = UnknownEnvelope,
    _set_dict: Any = _set_slot,
    _set_extra: Any = _set_extra,
    _set_fields_set: Any = _set_fields_set,
    _set_private: Any = _set_private,
) -> UnknownEnvelope:
    """The :class:`UnknownEnvelope` of a frame's checked values, built directly.

    ``checked`` is ``(values, extras, fields_set)``: ``values`` has the five fields, each the
    frame's value that passed its fallback rule or ``_ABSENT``, and ``fields_set`` names the
    fields present in the frame and the extras. Both are completed in place: ``type`` becomes
    its label, any other ``_ABSENT`` the field's default, which leaves ``fields_set``.

    The instance is built the way ``model_construct`` builds one, its ``__dict__`` and
    Pydantic's three slots set directly, without that method's per-field Python loop.
    """
    values, extras, fields_set = checked
    type_ = values["type"]
    if type(type_) is str and type_:  # the common case, without a call to ``_label_of``
        values["type"] = (_default_labels if labels is None else labels).label_for(type_)
    else:
        values["type"] = MISSING_TYPE_LABEL if type_ is _absent else _label_of(type_, labels)
    # Unrolled: a loop over the four fields took longer than the checks themselves.
    if values["timestamp"] is _absent:
        values["timestamp"] = 0.0
        fields_set.discard("timestamp")
    if values["data"] is _absent:
        values["data"] = {}
        fields_set.discard("data")
    if values["seq"] is _absent:
        values["seq"] = None
        fields_set.discard("seq")
    if values["emitted_at_monotonic"] is _absent:
        values["emitted_at_monotonic"] = None
        fields_set.discard("emitted_at_monotonic")
    envelope = _new(_cls)
    _set_dict(envelope, "__dict__", values)
    _set_extra(envelope, {} if extras is None else extras)
    _set_fields_set(envelope, fields_set)
    _set_private(envelope, None)
    return envelope  # type: ignore[no-any-return]


def _lenient_schema() -> CoreSchema:
    """The fallback rules of :func:`validate_envelope` as a schema: no field fails.

    It gives the frame's fields (a value missing or failing its rule becomes ``_ABSENT``) and
    extras, for :func:`_unknown_envelope` to build the :class:`UnknownEnvelope` from. It is not
    a model schema of ``UnknownEnvelope``, since Pydantic would use that model's own validator
    in its place, nor builds the envelope itself, which would need a second call into Python.
    """

    def field(schema: CoreSchema) -> core_schema.ModelField:
        return core_schema.model_field(
            core_schema.with_default_schema(schema, default=_ABSENT, on_error="default")
        )

    finite = core_schema.float_schema(allow_inf_nan=False, strict=True)
    return core_schema.model_fields_schema(
        {
            "type": field(core_schema.any_schema()),
            "timestamp": field(finite),
            "data": field(
                core_schema.json_or_python_schema(
                    json_schema=core_schema.dict_schema(),
                    python_schema=core_schema.is_instance_schema(dict),
                )
            ),
            "seq": field(core_schema.int_schema(strict=True, ge=0, le=MAX_SEQ)),
            "emitted_at_monotonic": field(finite),
        },
        extra_behavior="allow",
    )


_LENIENT_SCHEMA: Final = _lenient_schema()

# Tried left to right: the typed envelope, else the fallback's checked values (a tuple), else the
# input as is (JSON that is not an object, or a dict that pydantic-core cannot read).
_WireFrame = Annotated[
    Annotated[KnownEnvelope, Field(discriminator="type")]
    | Annotated[_CheckedFrame, GetPydanticSchema(lambda _source, _handler: _LENIENT_SCHEMA)]
    | Any,
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
_validate_unknown: Final = SchemaValidator(_LENIENT_SCHEMA).validate_python

_KNOWN_CLASSES: Final = frozenset(KNOWN_ENVELOPES.values())
_FIELD_NAMES: Final = ("type", "timestamp", "data", "seq", "emitted_at_monotonic")


def validate_envelope(frame: dict[str, Any], *, labels: LabelBudget | None = None) -> BaseEnvelope:
    """Validate a decoded frame into its typed envelope.

    Returns the typed envelope when ``type`` is one of the ten known names and the frame is
    valid for it (strictly: see :mod:`.base`). Otherwise returns an :class:`UnknownEnvelope`,
    whatever the dict holds:

    * ``type``: the bounded label of :meth:`~.labels.LabelBudget.label_for`, from ``labels``
      (default: the process-wide :data:`~.labels.DEFAULT_LABEL_BUDGET`); a known name whose
      payload failed validation keeps its name, a missing ``type`` is ``"_missing_type"``, a
      non-string or empty one ``"_invalid_type"``;
    * ``timestamp``: kept if a finite ``int`` or ``float`` (not ``bool``), else ``0.0``;
    * ``data``: kept (the same object) if a dict, else ``{}``;
    * ``seq``: kept if an ``int`` (not ``bool``) from 0 to :data:`MAX_SEQ`, else absent;
    * ``emitted_at_monotonic``: kept if a finite ``int`` or ``float`` (not ``bool``), else absent;
    * every other top-level key that is a string is kept, as on a typed envelope; keys that are
      not strings (JSON cannot produce them) are dropped.

    ``model_fields_set`` of the fallback names the keys whose value was kept.

    Raises:
        TypeError: ``frame`` is not a dict (a bug in the caller, not bad input from a peer).
    """
    if not isinstance(frame, dict):
        raise TypeError(f"validate_envelope: frame must be a dict, got {type(frame).__name__}")
    try:
        # ``dict.get``, not ``frame.get``: a dict subclass may override ``get``. A str subclass
        # (a StrEnum member, say) dispatches like its value.
        type_ = dict.get(frame, "type")
        if type(type_) is not str and isinstance(type_, str):
            # Read by value: the subclass's own ``__eq__`` and ``__hash__`` never run, and
            # strict ``Literal`` refuses a str subclass on older Pydantic.
            frame = dict(dict.items(frame))
            frame["type"] = type_ = _exact_str(type_)
        if type(type_) is str and type_ in KNOWN_ENVELOPES:  # an exact str by now
            result = _validate_python(frame, strict=True)
            # Exact type checks: ``isinstance`` on a model class goes through ``ABCMeta``.
            result_type = type(result)
            if result_type in _KNOWN_CLASSES:
                return result  # type: ignore[no-any-return]
            if result_type is tuple:
                return _unknown_envelope(result, labels)
        else:
            # The fallback schema alone: its checked values, or an error (no ``Any`` to match).
            return _unknown_envelope(_validate_unknown(frame, strict=True), labels)
    except Exception:  # a dict no validator can read: it gets the fallback like any invalid one
        pass
    return _fallback(frame, labels)


def validate_envelope_json(
    raw: str | bytes | bytearray | memoryview, *, labels: LabelBudget | None = None
) -> BaseEnvelope:
    """Validate the text of one WebSocket message straight into its typed envelope.

    Gives the same result as ``validate_envelope(json.loads(raw), labels=labels)`` and never
    raises on any ``str`` or bytes: text that is not JSON (or nests too deeply for
    :func:`json.loads`) becomes an :class:`UnknownEnvelope` labelled ``"_malformed_json"``, JSON
    that is not an object one labelled ``"_not_an_object"``; both have ``timestamp`` 0.0 and
    ``data`` ``{}``.

    An integer with more digits than the interpreter converts (:func:`sys.get_int_max_str_digits`,
    4300 by default), which :func:`json.loads` refuses, makes the frame invalid: it becomes the
    :class:`UnknownEnvelope` of its ``type``, by the fallback rules of :func:`validate_envelope`,
    with every top-level value that holds such an integer treated as invalid (``data`` is then
    ``{}``, an extra key is dropped). Such an integer is never converted nor kept.

    Two differences remain with older Pydantic, on input no encoder of this protocol writes and
    in a text shorter than 4096 characters (a longer one is decoded as :func:`json.loads` does):
    before 2.11, a key repeated in one object gives its first value where :func:`json.loads`
    gives the last; before 2.12, a JSON integer of 19 or more digits is refused where a float
    is expected (``timestamp``, ``emitted_at_monotonic``) where the dict path accepts it.

    Raises:
        TypeError: ``raw`` is not ``str``, ``bytes``, ``bytearray`` or ``memoryview``.
    """
    # Two identity tests for the common case (``isinstance`` with a union built a union per call).
    text = raw if type(raw) is str or type(raw) is bytes else _parser_input(raw)
    if len(text) >= _LONG_TEXT:
        return _validate_long_text(text, labels)
    try:
        result = _validate_json(text, strict=True)
    except Exception:
        # Pydantic's parser refused the text (not JSON, nested deeper than its limit, a lone
        # surrogate escape, not UTF-8, an integer of more than 4300 digits); the standard parser
        # decides, as in the dict path.
        return _decode_with_json_module(text, labels)
    result_type = type(result)
    if result_type in _KNOWN_CLASSES:
        return result  # type: ignore[no-any-return]
    if result_type is tuple:
        return _unknown_envelope(result, labels)
    if isinstance(result, dict):  # not expected (a JSON object's keys are strings), but safe
        return validate_envelope(result, labels=labels)
    return _reserved(NOT_AN_OBJECT_LABEL)


_TEXT_TYPES: Final = (str, bytes, bytearray)


def _parser_input(raw: object) -> str | bytes | bytearray:
    """``raw`` as Pydantic's parsers take it: a ``memoryview`` is copied to ``bytes``."""
    if isinstance(raw, memoryview):
        return raw.tobytes()
    if isinstance(raw, _TEXT_TYPES):
        return raw
    raise TypeError(
        "validate_envelope_json: raw must be str, bytes, bytearray or memoryview, "
        f"got {type(raw).__name__}"
    )


_LONG_TEXT: Final = 4096
"""From this length on, ``from_json`` and the dict path beat one JSON validation (module doc)."""


def _validate_long_text(raw: str | bytes | bytearray, labels: LabelBudget | None) -> BaseEnvelope:
    try:
        decoded = from_json(raw)
    except Exception:  # as in validate_envelope_json: the standard parser decides
        return _decode_with_json_module(raw, labels)
    if type(decoded) is not dict:
        return _reserved(NOT_AN_OBJECT_LABEL)
    return validate_envelope(decoded, labels=labels)


class _TooLongInteger:
    """Stands, in a decoded frame, for an integer with more digits than may be converted."""

    __slots__ = ()


_TOO_LONG_INTEGER: Final = _TooLongInteger()


def _int_within_limit(literal: str) -> int | _TooLongInteger:
    """``json.loads``'s ``parse_int``: the int, unless it has too many digits to convert."""
    limit = sys.get_int_max_str_digits()  # 0: no limit
    if limit and len(literal) - literal.startswith("-") > limit:
        return _TOO_LONG_INTEGER
    return int(literal)


def _holds_too_long_integer(value: Any) -> bool:
    pending = [value]
    while pending:  # a loop, not recursion: the value may nest as deep as json.loads allows
        item = pending.pop()
        if item is _TOO_LONG_INTEGER:
            return True
        if type(item) is dict:
            pending.extend(item.values())
        elif type(item) is list:
            pending.extend(item)
    return False


def _decode_with_json_module(
    raw: str | bytes | bytearray, labels: LabelBudget | None
) -> BaseEnvelope:
    try:
        decoded = json.loads(raw, parse_int=_int_within_limit)
    except Exception:  # ValueError for bad JSON, RecursionError for too deep
        return _reserved(MALFORMED_JSON_LABEL)
    if not isinstance(decoded, dict):
        return _reserved(NOT_AN_OBJECT_LABEL)
    invalid = {key for key, value in decoded.items() if _holds_too_long_integer(value)}
    if invalid:
        for key in invalid:
            decoded[key] = _TOO_LONG_INTEGER  # invalid for every field, dropped as an extra
        return _fallback(decoded, labels)
    return validate_envelope(decoded, labels=labels)


def _reserved(label: str) -> UnknownEnvelope:
    """The envelope of a message that is no frame at all: nothing in it was taken."""
    return UnknownEnvelope.model_construct(set(), type=label, timestamp=0.0, data={})


def _fallback(frame: dict[Any, Any], labels: LabelBudget | None) -> UnknownEnvelope:
    """Build the :class:`UnknownEnvelope` for any ``frame`` from checked values; cannot raise."""
    values: dict[str, Any] = dict.fromkeys(_FIELD_NAMES, _ABSENT)
    extras: dict[str, Any] = {}
    fields_set: set[str] = set()
    try:
        # A view of the dict's own storage: a subclass's ``items``/``__iter__`` are not called.
        items = list(dict.items(frame))
    except Exception:
        items = []
    for key_obj, value in items:
        key = _exact_str(key_obj)
        if key is None or (value is _TOO_LONG_INTEGER and key not in _FIELD_NAMES):
            continue
        fields_set.add(key)
        if key not in _FIELD_NAMES:
            extras[key] = value
        elif key == "type":
            values[key] = value
        elif key == "timestamp" or key == "emitted_at_monotonic":
            number = _finite_float(value)
            values[key] = _ABSENT if number is None else number
        elif key == "data":
            values[key] = value if isinstance(value, dict) else _ABSENT
        elif isinstance(value, int) and not isinstance(value, bool):  # seq
            number = int.__int__(value)
            if 0 <= number <= MAX_SEQ:
                values[key] = number
    return _unknown_envelope((values, extras, fields_set), labels)


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
