"""The fields every envelope of ``/ws/training`` and ``/ws/control`` shares, and the fallback.

The typed envelopes themselves live in :mod:`.training` and :mod:`.control`.

Every frame is ``{"type", "timestamp", "data", "seq"?, "emitted_at_monotonic"?}``. Unknown
top-level keys are kept (``extra="allow"``), even when ``null``, so
``model_dump(exclude_none=True)`` of an envelope equals the wire dict, key for key.

Two modes of validation, on purpose:

* Constructors (``MetricsEnvelope(...)``, ``model_validate``) are Pydantic's default lax mode: a
  ``Mapping`` given as ``data`` is copied into a new ``dict``, so a builder's caller can keep
  mutating its own dict.
* ``validate_envelope`` and ``validate_envelope_json`` validate what came off the wire in strict
  mode (``strict=True`` at the call): no ``"1.5"`` for a float, no ``true`` or ``3.0`` for an int,
  so a typed envelope always dumps back to exactly the frame it came from. In that mode the
  free-form ``data`` (and ``CommandResponseData.result``, ``InitialMetricsData.metrics``) is the
  frame's own, freshly decoded ``dict``/``list``, taken as is: Pydantic's copy, item by item,
  took twice as long as checking in C that every key is a string, which is still done (by
  keyword unpacking, see ``_string_keys_only``).

``timestamp`` and ``emitted_at_monotonic`` must be finite in both modes: ``NaN`` or infinity is
no point in time (the fallback of ``validate_envelope`` treats them the same way).

What arrives leaves unchanged: a frame that validates serializes back (``model_dump_json``) to
the same values, so a relay re-sends exactly what it received.

* ``NaN``, ``Infinity`` and ``-Infinity`` anywhere in the free-form data (a diverged loss) are
  kept and written as those constants, as Python's :mod:`json` writes them, not as ``null``
  (``ser_json_inf_nan="constants"``, which an envelope applies to everything it holds).
* A string holding a lone surrogate (``"\\ud800"``, which :func:`json.loads` accepts) cannot
  be encoded as UTF-8; such an envelope is written with every non-ASCII character escaped, as
  ``json.dumps`` does, instead of failing (or, for a key, being written as ``"\\ufffd"``).
* ``exclude_none=True`` (the wire form) leaves out the declared optional fields that are
  ``None`` (``seq``, ``command_id``...), never an unknown key: ``"trace": null`` from a newer
  peer is data, and is re-sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, ClassVar, Final, get_origin

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, GetPydanticSchema
from pydantic_core import CoreSchema, PydanticSerializationError, core_schema, to_jsonable_python

__all__ = ["BaseEnvelope", "UnknownEnvelope"]


def _string_keys_only(value: dict[Any, Any]) -> dict[Any, Any]:
    try:
        # Keyword unpacking refuses any key that is not a str. CPython marks a dict whose keys
        # are all exact str, so the check does not look at each key: this copies the dict in C
        # (twice, and drops the copies) in less time than ``str.join`` of the keys took.
        copy: dict[str, Any] = {}
        copy.update(**value)
    except TypeError:
        raise ValueError("every key must be a string") from None
    return value


def _taken_as_is_when_strict(source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
    """Lax: Pydantic's own copying schema. Strict, from Python: the caller's object itself."""
    copying = handler(source)
    origin = get_origin(source)
    as_is: CoreSchema = core_schema.is_instance_schema(origin)
    if origin is dict:
        as_is = core_schema.no_info_after_validator_function(_string_keys_only, as_is)
    return core_schema.lax_or_strict_schema(
        lax_schema=copying,
        strict_schema=core_schema.json_or_python_schema(json_schema=copying, python_schema=as_is),
    )


_FreeFormDict = Annotated[dict[str, Any], GetPydanticSchema(_taken_as_is_when_strict)]
"""``dict[str, Any]``, not copied by the strict wire validation (see the module docstring)."""

_FreeFormList = Annotated[list[Any], GetPydanticSchema(_taken_as_is_when_strict)]
"""``list[Any]``, not copied by the strict wire validation (see the module docstring)."""

_Finite = Field(allow_inf_nan=False)

_WIRE_MODEL_CONFIG: Final = ConfigDict(extra="allow", ser_json_inf_nan="constants")
"""The envelopes' configuration (and their data models'): unknown keys kept, ``NaN`` re-sent."""

_SURROGATE_ERROR: Final = "surrogates not allowed"
# Pydantic's serializer stops at a nesting depth that its JSON parser and json.loads accept
# ("Maximum serialization depth exceeded"; older ones "Circular reference detected (depth
# exceeded)").
_DEPTH_ERROR: Final = "depth exceeded"
_REPLACEMENT_CHARACTER: Final = "\ufffd"


def _exact_str(value: object) -> str | None:
    """``value`` as an exact ``str`` (no method of a subclass is called), or ``None``.

    How the envelope validators and the control parsers read a key or a ``type`` from a peer.
    """
    if type(value) is str:
        return value
    if isinstance(value, str):
        return "".join((value,))
    return None


MAX_SEQ: Final = 2**63 - 1
"""The largest ``seq`` on the wire, a signed 64-bit integer's maximum, so that a consumer in any
language can hold every ``seq``; ``seq`` is never negative."""

_Seq = Annotated[int, Field(ge=0, le=MAX_SEQ)]


class BaseEnvelope(BaseModel):
    """Fields common to every envelope; ``seq`` and ``emitted_at_monotonic`` only on broadcasts."""

    model_config: ClassVar[ConfigDict] = _WIRE_MODEL_CONFIG

    type: str
    timestamp: Annotated[float, _Finite]
    data: _FreeFormDict = Field(default_factory=dict)
    seq: _Seq | None = None
    emitted_at_monotonic: Annotated[float, _Finite] | None = None

    def to_wire_json(self) -> str:
        """The frame's wire text: ``model_dump_json(exclude_none=True)``.

        Every outgoing object has this method: the envelopes, ``ControlCommand`` and the worker
        messages. ``to_wire_json(envelope)``, the function, returns the same text.
        """
        return self.model_dump_json(exclude_none=True)

    def model_dump(self, *, exclude_none: bool = False, **options: Any) -> dict[str, Any]:
        """Pydantic's ``model_dump``; ``exclude_none`` leaves unknown keys in (module docstring).

        In ``mode="json"``, a key holding a lone surrogate, or data nested deeper than Pydantic
        serializes, which Pydantic fails on, is dumped as the JSON text of
        :meth:`model_dump_json` reads back.
        """
        if exclude_none and _holds_none_extra(self):
            options = _none_extras_kept(self, options)
        else:
            options["exclude_none"] = exclude_none
        try:
            return super().model_dump(**options)
        except ValueError as error:  # PydanticSerializationError, UnicodeEncodeError, depth
            if options.get("mode") != "json" or not _written_by_json_module(error):
                raise
        options.pop("mode")
        return json.loads(self.model_dump_json(**options))  # type: ignore[no-any-return]

    def model_dump_json(
        self, *, indent: int | None = None, exclude_none: bool = False, **options: Any
    ) -> str:
        """Pydantic's ``model_dump_json``, which also writes strings holding lone surrogates.

        Pydantic cannot encode such a string (``json.loads`` accepts ``"\\ud800"``): it fails
        on a value and writes ``"\\ufffd"`` for a key. It also fails on data nested deeper
        than its serializer goes, which its parser reads. The envelope is then written by
        :func:`json.dumps`, every non-ASCII character escaped, from the same values (``options``
        as for ``model_dump``), so it reads back equal. As in :meth:`model_dump`,
        ``exclude_none`` leaves unknown keys in.
        """
        if exclude_none and _holds_none_extra(self):
            options = _none_extras_kept(self, options)
        else:
            options["exclude_none"] = exclude_none
        text = _pydantic_text(partial(super().model_dump_json, indent=indent, **options))
        if text is not None:
            return text
        options.pop("ensure_ascii", None)
        return _json_module_text(_python_values(self, options), indent)


def _pydantic_text(dump: Callable[[], str]) -> str | None:
    """Pydantic's JSON text, ``dump()``, or ``None`` where :func:`_json_module_text` must write it.

    Shared by the envelopes and ``ControlCommand``. Pydantic fails on a string holding a lone
    surrogate and on data nested deeper than it goes, and writes ``"\\ufffd"`` for a surrogate
    in a key: a replacement character in its text sends the values to the slower writer, which
    gives the same values for a legitimate one.
    """
    try:
        text = dump()
    except PydanticSerializationError as error:
        if not _written_by_json_module(error):
            raise
        return None
    return None if _REPLACEMENT_CHARACTER in text else text


def _json_module_text(values: Any, indent: int | None = None) -> str:
    """``values`` written by :func:`json.dumps`: every non-ASCII character escaped."""
    return json.dumps(
        values,
        indent=indent,
        separators=None if indent is not None else (",", ":"),
        default=to_jsonable_python,  # what is not JSON-native, as Pydantic's JSON mode has it
    )


def _written_by_json_module(error: Exception) -> bool:
    """Whether Pydantic failed on what :func:`json.dumps` writes: a lone surrogate, deep data."""
    return _SURROGATE_ERROR in str(error) or _DEPTH_ERROR in str(error)


def _python_values(envelope: BaseEnvelope, options: dict[str, Any]) -> dict[str, Any]:
    """``model_dump(mode="python")``, even with an unknown key holding a lone surrogate.

    Pydantic cannot dump such a key (nor exclude it), which the fallback envelope of a frame
    keeps, as it keeps every string key: those keys are added after the others, their values
    as received.
    """
    extra = envelope.__pydantic_extra__ or {}
    unencodable = [key for key in extra if not _encodable(key)]
    if not unencodable or options.get("include") is not None:
        return BaseModel.model_dump(envelope, mode="python", **options)
    rest = envelope.model_copy()  # shallow: the values are not copied
    rest.__pydantic_extra__ = {key: value for key, value in extra.items() if _encodable(key)}
    excluded = options.get("exclude") or ()
    kept = {key: extra[key] for key in unencodable if key not in excluded}
    if options.get("exclude_none"):
        kept = {key: value for key, value in kept.items() if value is not None}
    return {**BaseModel.model_dump(rest, mode="python", **options), **kept}


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _holds_none_extra(envelope: BaseModel) -> bool:
    """Whether an unknown key of ``envelope``, or of its ``data`` model, is ``None``."""
    extra = envelope.__pydantic_extra__
    if extra and any(value is None for value in extra.values()):
        return True
    data = envelope.__dict__.get("data")
    if type(data) is dict:  # free-form data: its None values are always kept
        return False
    # Exact attribute lookups: ``isinstance`` on a model class goes through ``ABCMeta``.
    data_extra: dict[str, Any] | None = getattr(data, "__pydantic_extra__", None)
    return data_extra is not None and any(value is None for value in data_extra.values())


def _none_extras_kept(model: BaseModel, options: dict[str, Any]) -> dict[str, Any]:
    """``exclude_none`` for ``model``: an ``exclude`` of its declared fields that are None.

    Pydantic's ``exclude_none`` drops unknown keys too. Given ``include`` or ``exclude`` of
    their own, the caller gets Pydantic's meaning unchanged.
    """
    if options.get("include") is not None or options.get("exclude") is not None:
        return {**options, "exclude_none": True}
    return {**options, "exclude": _declared_none_fields(model)}


def _declared_none_fields(model: BaseModel) -> dict[str, Any]:
    """The ``exclude`` argument naming the declared fields of ``model`` (or nested) set to None."""
    excluded: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = model.__dict__.get(name)
        if value is None:
            excluded[name] = True
        elif isinstance(value, BaseModel):
            nested = _declared_none_fields(value)
            if nested:
                excluded[name] = nested
    return excluded


class UnknownEnvelope(BaseEnvelope):
    """A frame whose ``type`` is unknown or whose payload failed validation.

    ``type`` holds the bounded label (see ``labels``), never the raw value from the wire.
    """
