"""The bounded, thread-safe set of labels that an unmatched frame's ``type`` may become.

An :class:`~juniper_cascor_protocol.envelope.base.UnknownEnvelope` carries a label instead of
the raw ``type`` from the wire, because consumers count frames per ``type`` in their metrics and a
peer must not be able to create an unbounded number of time series. The rules:

* Charset and length: a label is at most :data:`MAX_LABEL_LENGTH` (64) characters of
  ``[A-Za-z0-9_]``. The raw string is cut to 64 characters and every other character becomes
  ``"_"``, so ``"bad type!"`` is labelled ``"bad_type_"``.
* Budget: the first :data:`UNKNOWN_TYPE_BUDGET` (16) distinct labels in a process are returned
  verbatim; any later new label becomes :data:`UNMATCHED_TYPE_LABEL` (``"_unmatched"``). A label
  already admitted stays verbatim for the life of the process (or until
  :func:`reset_unknown_label_state`).
* Labels that never consume the budget: the ten known ``type`` names (a known frame whose payload
  fails validation keeps its name) and the reserved labels in :data:`RESERVED_LABELS`:

  ``"_missing_type"``
      the frame has no ``type`` key;
  ``"_invalid_type"``
      ``type`` is not a string, or is the empty string;
  ``"_malformed_json"``
      the text given to ``validate_envelope_json`` is not JSON;
  ``"_not_an_object"``
      it is JSON, but not an object;
  ``"_unmatched"``
      the budget is spent.

Looking up an admitted label reads an immutable ``frozenset`` without a lock; only admitting a
new label takes the lock (at most 16 times per process).
"""

from __future__ import annotations

import re
import threading
from typing import Final

from juniper_cascor_protocol.envelope.control import CONTROL_ENVELOPES
from juniper_cascor_protocol.envelope.training import TRAINING_ENVELOPES

__all__ = [
    "INVALID_TYPE_LABEL",
    "MALFORMED_JSON_LABEL",
    "MAX_LABEL_LENGTH",
    "MISSING_TYPE_LABEL",
    "NOT_AN_OBJECT_LABEL",
    "RESERVED_LABELS",
    "UNKNOWN_TYPE_BUDGET",
    "UNMATCHED_TYPE_LABEL",
    "label_for_type",
    "reset_unknown_label_state",
]

UNKNOWN_TYPE_BUDGET: Final = 16
UNMATCHED_TYPE_LABEL: Final = "_unmatched"
MISSING_TYPE_LABEL: Final = "_missing_type"
INVALID_TYPE_LABEL: Final = "_invalid_type"
MALFORMED_JSON_LABEL: Final = "_malformed_json"
NOT_AN_OBJECT_LABEL: Final = "_not_an_object"
MAX_LABEL_LENGTH: Final = 64

RESERVED_LABELS: Final = frozenset(
    {
        UNMATCHED_TYPE_LABEL,
        MISSING_TYPE_LABEL,
        INVALID_TYPE_LABEL,
        MALFORMED_JSON_LABEL,
        NOT_AN_OBJECT_LABEL,
    }
)

_UNSAFE_CHARS: Final = re.compile(r"[^A-Za-z0-9_]")
# Known names and reserved labels are always returned verbatim and are never counted.
_EXEMPT: Final = (
    frozenset(cls.model_fields["type"].default for cls in (*TRAINING_ENVELOPES, *CONTROL_ENVELOPES))
    | RESERVED_LABELS
)

_lock = threading.Lock()
# Replaced (never mutated) under ``_lock``, so readers see a consistent set without locking.
_admitted: frozenset[str] = frozenset()


def _sanitize(raw: str) -> str:
    """Cut ``raw`` to :data:`MAX_LABEL_LENGTH` and replace characters outside ``[A-Za-z0-9_]``."""
    cut = raw[:MAX_LABEL_LENGTH]
    # ``isidentifier`` on ASCII text means [A-Za-z_][A-Za-z0-9_]*: the common case skips the regex.
    if cut.isascii() and cut.isidentifier():
        return cut
    return _UNSAFE_CHARS.sub("_", cut) or INVALID_TYPE_LABEL


def label_for_type(raw: str) -> str:
    """Return the bounded label for the ``type`` string ``raw`` of an unmatched frame.

    Admits the label into the budget if it is new and the budget is not yet spent.
    """
    # An admitted or exempt label is its own sanitized form, so the raw string can be looked up
    # before any work is done.
    if raw in _admitted or raw in _EXEMPT:
        return raw
    label = _sanitize(raw)
    if label in _admitted or label in _EXEMPT:
        return label
    return _admit(label)


def _admit(label: str) -> str:
    global _admitted
    with _lock:
        if label in _admitted:
            return label
        if len(_admitted) >= UNKNOWN_TYPE_BUDGET:
            return UNMATCHED_TYPE_LABEL
        _admitted = _admitted | {label}
        return label


def reset_unknown_label_state() -> None:
    """Forget every admitted label, giving the process a fresh budget (meant for tests)."""
    global _admitted
    with _lock:
        _admitted = frozenset()
