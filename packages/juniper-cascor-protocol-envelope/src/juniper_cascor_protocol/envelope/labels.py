"""The bounded, thread-safe labels that an unmatched frame's ``type`` may become.

An :class:`~juniper_cascor_protocol.envelope.base.UnknownEnvelope` carries a label instead of
the raw ``type`` from the wire, because consumers count frames per ``type`` in their metrics and a
peer must not be able to create an unbounded number of time series. The rules:

* Charset and length: a label is at most :data:`MAX_LABEL_LENGTH` (64) characters of
  ``[A-Za-z0-9_]``. The raw string is cut to 64 characters and every other character becomes
  ``"_"``, so ``"bad type!"`` is labelled ``"bad_type_"``.
* Reserved prefix: labels starting with ``"_"`` belong to this library (the reserved labels
  below). A label from the wire that would start with ``"_"`` gets an ``"x"`` in front (and is
  cut to 64 characters again), so a peer sending ``"_unmatched"`` is labelled ``"x_unmatched"``
  and cannot fake a reserved counter.
* Budget: a :class:`LabelBudget` returns the first ``size`` (by default
  :data:`UNKNOWN_TYPE_BUDGET`, 16) distinct labels verbatim; any later new label becomes
  :data:`UNMATCHED_TYPE_LABEL` (``"_unmatched"``). A label already admitted stays verbatim for
  the life of the budget (or until :meth:`LabelBudget.reset`). Validation uses the process-wide
  :data:`DEFAULT_LABEL_BUDGET` unless it is given a budget of the consumer's own (one per
  connection, say), so that one noisy peer cannot spend the labels of every other.
* Labels that never consume a budget: the ten known ``type`` names (a known frame whose payload
  fails validation keeps its name) and the reserved labels in :data:`RESERVED_LABELS`, which only
  this library produces:

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
new label takes the budget's lock (at most ``size`` times in its life).
"""

from __future__ import annotations

import re
import threading
from typing import Final

from juniper_cascor_protocol.envelope.control import CONTROL_ENVELOPES
from juniper_cascor_protocol.envelope.training import TRAINING_ENVELOPES

__all__ = [
    "DEFAULT_LABEL_BUDGET",
    "INVALID_TYPE_LABEL",
    "MALFORMED_JSON_LABEL",
    "MAX_LABEL_LENGTH",
    "MISSING_TYPE_LABEL",
    "NOT_AN_OBJECT_LABEL",
    "RESERVED_LABELS",
    "UNKNOWN_TYPE_BUDGET",
    "UNMATCHED_TYPE_LABEL",
    "LabelBudget",
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
_RESERVED_PREFIX: Final = "_"
_WIRE_PREFIX: Final = "x"
# Known names are always returned verbatim and are never counted.
_KNOWN_NAMES: Final = frozenset(
    cls.model_fields["type"].default for cls in (*TRAINING_ENVELOPES, *CONTROL_ENVELOPES)
)


def _sanitize(raw: str) -> str:
    """Non-empty ``raw`` cut to 64 characters of ``[A-Za-z0-9_]``, without the reserved prefix."""
    cut = raw[:MAX_LABEL_LENGTH]
    # ``isidentifier`` on ASCII text means [A-Za-z_][A-Za-z0-9_]*: the common case skips the regex.
    label = cut if cut.isascii() and cut.isidentifier() else _UNSAFE_CHARS.sub("_", cut)
    if label.startswith(_RESERVED_PREFIX):
        label = (_WIRE_PREFIX + label)[:MAX_LABEL_LENGTH]
    return label


class LabelBudget:
    """The unknown ``type`` labels one consumer has admitted: at most ``size``, thread-safe.

    A consumer that wants its own count (one per connection, so that one noisy peer cannot
    spend everyone's labels) creates one and passes it as ``labels=`` to ``validate_envelope``
    or ``validate_envelope_json``; without one, they use :data:`DEFAULT_LABEL_BUDGET`.

    Raises:
        ValueError: ``size`` is negative.
        TypeError: ``size`` is not an ``int``.
    """

    __slots__ = ("_admitted", "_lock", "_size")

    def __init__(self, size: int = UNKNOWN_TYPE_BUDGET) -> None:
        if not isinstance(size, int) or isinstance(size, bool):
            raise TypeError(f"LabelBudget size must be an int, got {type(size).__name__}")
        if size < 0:
            raise ValueError(f"LabelBudget size must be at least 0, got {size}")
        self._size = size
        self._lock = threading.Lock()
        # Replaced (never mutated) under ``_lock``, so readers see a consistent set unlocked.
        self._admitted: frozenset[str] = frozenset()

    @property
    def size(self) -> int:
        """How many distinct labels this budget admits before answering ``"_unmatched"``."""
        return self._size

    @property
    def admitted(self) -> frozenset[str]:
        """The labels admitted so far (known names and reserved labels are never counted)."""
        return self._admitted

    def label_for(self, raw: str) -> str:
        """The bounded label of the ``type`` string ``raw`` of an unmatched frame.

        Admits the label if it is new and the budget is not yet spent. The empty string is
        ``"_invalid_type"``.
        """
        # An admitted label or a known name is its own sanitized form, so the raw string can be
        # looked up before any work is done.
        if raw in self._admitted or raw in _KNOWN_NAMES:
            return raw
        if not raw:
            return INVALID_TYPE_LABEL
        label = _sanitize(raw)
        if label in self._admitted or label in _KNOWN_NAMES:
            return label
        return self._admit(label)

    def _admit(self, label: str) -> str:
        with self._lock:
            if label in self._admitted:
                return label
            if len(self._admitted) >= self._size:
                return UNMATCHED_TYPE_LABEL
            self._admitted = self._admitted | {label}
            return label

    def reset(self) -> None:
        """Forget every admitted label: the whole budget is available again."""
        with self._lock:
            self._admitted = frozenset()

    def __repr__(self) -> str:
        return f"LabelBudget(size={self._size}, admitted={len(self._admitted)})"


DEFAULT_LABEL_BUDGET: Final = LabelBudget()
"""The process-wide budget, used by validation when no ``labels=`` budget is given."""


def label_for_type(raw: str, budget: LabelBudget | None = None) -> str:
    """The bounded label of the ``type`` string ``raw``, from ``budget`` (default: process-wide).

    Admits the label into the budget if it is new and the budget is not yet spent.
    """
    return (DEFAULT_LABEL_BUDGET if budget is None else budget).label_for(raw)


def reset_unknown_label_state() -> None:
    """Forget every label of :data:`DEFAULT_LABEL_BUDGET`, giving the process a fresh budget."""
    DEFAULT_LABEL_BUDGET.reset()
