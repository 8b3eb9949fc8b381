"""The fields every envelope of ``/ws/training`` and ``/ws/control`` shares, and the fallback.

The typed envelopes themselves live in :mod:`.training` and :mod:`.control`.

Every frame is ``{"type", "timestamp", "data", "seq"?, "emitted_at_monotonic"?}``. Unknown
top-level keys are kept (``extra="allow"``) so ``model_dump(exclude_none=True)`` of an envelope
equals the wire dict, key for key.

Two modes of validation, on purpose:

* Constructors (``MetricsEnvelope(...)``, ``model_validate``) are Pydantic's default lax mode: a
  ``Mapping`` given as ``data`` is copied into a new ``dict``, so a builder's caller can keep
  mutating its own dict.
* ``validate_envelope`` and ``validate_envelope_json`` validate what came off the wire in strict
  mode (``strict=True`` at the call): no ``"1.5"`` for a float, no ``true`` or ``3.0`` for an int,
  so a typed envelope always dumps back to exactly the frame it came from. In that mode the
  free-form ``data`` (and ``CommandResponseData.result``, ``InitialMetricsData.metrics``) is the
  frame's own, freshly decoded ``dict``/``list``, taken as is: Pydantic's copy, item by item,
  took twice as long as checking in C that every key is a string, which is still done.

``timestamp`` and ``emitted_at_monotonic`` must be finite in both modes: ``NaN`` or infinity is
no point in time (the fallback of ``validate_envelope`` treats them the same way).
"""

from __future__ import annotations

from typing import Annotated, Any, get_origin

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, GetPydanticSchema
from pydantic_core import CoreSchema, core_schema


def _string_keys_only(value: dict[Any, Any]) -> dict[Any, Any]:
    try:
        # ``str.join`` refuses any key that is not a str, in C and without copying the dict.
        "".join(value)
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


class BaseEnvelope(BaseModel):
    """Fields common to every envelope; ``seq`` and ``emitted_at_monotonic`` only on broadcasts."""

    model_config = ConfigDict(extra="allow")

    type: str
    timestamp: Annotated[float, _Finite]
    data: _FreeFormDict = Field(default_factory=dict)
    seq: int | None = None
    emitted_at_monotonic: Annotated[float, _Finite] | None = None


class UnknownEnvelope(BaseEnvelope):
    """A frame whose ``type`` is unknown or whose payload failed validation.

    ``type`` holds the bounded label (see ``labels``), never the raw value from the wire.
    """
