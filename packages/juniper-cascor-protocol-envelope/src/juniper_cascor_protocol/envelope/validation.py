"""Turn a received frame into a typed envelope, never raising on what a peer sent.

``validate_envelope(frame)`` takes a decoded dict; ``validate_envelope_json(raw)`` goes straight
from the text or bytes of a WebSocket message to an envelope with Pydantic's JSON parser. Both
dispatch on ``type`` once, through one ``TypeAdapter`` over the discriminated union of the ten
known envelopes, and both return an :class:`UnknownEnvelope` for anything else (see
:func:`validate_envelope` for the fallback rules and :mod:`.labels` for the ``type`` label).
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Final

from juniper_cascor_protocol.envelope.labels import (
    INVALID_TYPE_LABEL,
    MALFORMED_JSON_LABEL,
    MISSING_TYPE_LABEL,
    NOT_AN_OBJECT_LABEL,
    label_for_type,
)
from juniper_cascor_protocol.envelope.models import (
    KNOWN_ENVELOPES,
    BaseEnvelope,
    KnownEnvelope,
    UnknownEnvelope,
)
from pydantic import Field, TypeAdapter

__all__ = ["validate_envelope", "validate_envelope_json"]

_ADAPTER: Final = TypeAdapter[KnownEnvelope](Annotated[KnownEnvelope, Field(discriminator="type")])
_validate_python: Final = _ADAPTER.validator.validate_python
_validate_json: Final = _ADAPTER.validator.validate_json

# Fields of the fallback that are rebuilt from checked values; all other string keys are kept.
_ENVELOPE_FIELDS: Final = frozenset({"type", "timestamp", "data", "seq", "emitted_at_monotonic"})


def validate_envelope(frame: dict[str, Any]) -> BaseEnvelope:
    """Validate a decoded frame into its typed envelope.

    Returns the typed envelope when ``type`` is one of the ten known names and the frame is
    valid for it. Otherwise returns an :class:`UnknownEnvelope`, whatever the dict holds:

    * ``type``: the bounded label of :func:`~.labels.label_for_type` (a known name whose payload
      failed validation keeps its name; a missing ``type`` is ``"_missing_type"``, a non-string
      or empty one ``"_invalid_type"``);
    * ``timestamp``: kept if a finite ``int`` or ``float`` (not ``bool``), else ``0.0``;
    * ``data``: kept (as a plain ``dict``) if a dict, else ``{}``;
    * ``seq``: kept if an ``int`` (not ``bool``), else absent;
    * ``emitted_at_monotonic``: kept if a finite ``int`` or ``float`` (not ``bool``), else absent;
    * every other top-level key that is a string is kept as an extra field, as on a typed
      envelope; non-string keys (which JSON cannot produce) are dropped.

    Raises:
        TypeError: ``frame`` is not a dict (a bug in the caller, not bad input from a peer).
    """
    if not isinstance(frame, dict):
        raise TypeError(f"validate_envelope: frame must be a dict, got {type(frame).__name__}")
    try:
        # ``dict.get`` rather than ``frame.get``: a dict subclass may override ``get``.
        type_ = dict.get(frame, "type")
        if type(type_) is str and type_ in KNOWN_ENVELOPES:
            envelope: BaseEnvelope = _validate_python(frame)
            return envelope
    except Exception:  # any failure means "not a valid known frame": fall back
        pass
    return _fallback(frame)


def validate_envelope_json(raw: str | bytes | bytearray | memoryview) -> BaseEnvelope:
    """Validate the text of one WebSocket message straight into its typed envelope.

    Gives the same result as ``validate_envelope(json.loads(raw))`` and never raises: text that
    is not JSON becomes an :class:`UnknownEnvelope` labelled ``"_malformed_json"``, JSON that is
    not an object one labelled ``"_not_an_object"`` (both with ``timestamp`` 0.0 and ``data``
    ``{}``).

    Raises:
        TypeError: ``raw`` is not ``str``, ``bytes``, ``bytearray`` or ``memoryview``.
    """
    if isinstance(raw, memoryview):
        # Pydantic's parser takes str, bytes and bytearray only.
        raw = raw.tobytes()
    elif not isinstance(raw, str | bytes | bytearray):
        raise TypeError(
            f"validate_envelope_json: raw must be str, bytes, bytearray or memoryview, "
            f"got {type(raw).__name__}"
        )
    try:
        envelope: BaseEnvelope = _validate_json(raw)
        return envelope
    except Exception:  # unknown, invalid or not JSON: decide on the slow path
        pass
    try:
        decoded = json.loads(raw)
    except Exception:
        return _reserved(MALFORMED_JSON_LABEL)
    if not isinstance(decoded, dict):
        return _reserved(NOT_AN_OBJECT_LABEL)
    return validate_envelope(decoded)


def _reserved(label: str) -> UnknownEnvelope:
    return UnknownEnvelope.model_construct(type=label, timestamp=0.0, data={})


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


def _exact_str(value: object) -> str | None:
    """Return ``value`` as an exact ``str`` without calling any method a subclass could override."""
    if type(value) is str:
        return value
    if isinstance(value, str):
        return "".join((value,))
    return None


def _fallback(frame: dict[Any, Any]) -> UnknownEnvelope:
    """Build the :class:`UnknownEnvelope` for ``frame`` from checked values; cannot raise."""
    try:
        # A view of the dict's own storage: overridden ``items``/``__iter__`` are never called.
        items = list(dict.items(frame))
    except Exception:
        items = []
    fields: dict[str, Any] = {"type": MISSING_TYPE_LABEL, "timestamp": 0.0, "data": {}}
    extra: dict[str, Any] = {}
    for key_obj, value in items:
        key = _exact_str(key_obj)
        if key is None:
            continue
        if key == "type":
            type_str = _exact_str(value)
            fields["type"] = label_for_type(type_str) if type_str else INVALID_TYPE_LABEL
        elif key == "timestamp":
            fields["timestamp"] = _finite_float(value) or 0.0
        elif key == "data":
            fields["data"] = _plain_dict(value)
        elif key == "seq":
            if isinstance(value, int) and not isinstance(value, bool):
                fields["seq"] = int.__int__(value)
        elif key == "emitted_at_monotonic":
            monotonic = _finite_float(value)
            if monotonic is not None:
                fields["emitted_at_monotonic"] = monotonic
        else:
            extra[key] = value
    envelope = UnknownEnvelope.model_construct(**fields)
    # Extras are added after construction: a key such as "_fields_set" must not be taken for an
    # argument of ``model_construct``.
    if envelope.__pydantic_extra__ is None:
        object.__setattr__(envelope, "__pydantic_extra__", extra)
    else:
        envelope.__pydantic_extra__.update(extra)
    return envelope


def _plain_dict(value: object) -> dict[Any, Any]:
    """A plain copy of ``value`` if it is a dict (subclasses included), else ``{}``."""
    if not isinstance(value, dict):
        return {}
    try:
        return dict(dict.items(value))
    except Exception:
        return {}
