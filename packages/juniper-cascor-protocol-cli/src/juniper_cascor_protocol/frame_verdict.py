"""Tell an invalid frame from a frame of an unknown type, by the label a session gave it.

A session reports both as an :class:`UnknownEnvelope`. Its ``type`` label says which (see
:mod:`juniper_cascor_protocol.envelope.labels`): a known name means a known frame whose payload
failed validation, a reserved label (``_missing_type``, ``_malformed_json``...) a frame with no
usable type at all; any other label, ``_unmatched`` included (the label budget was spent on
other names), is a type this library does not know, which is not an error.
"""

from __future__ import annotations

from typing import Final

from juniper_cascor_protocol.envelope import KNOWN_ENVELOPES, BaseEnvelope, UnknownEnvelope
from juniper_cascor_protocol.envelope.labels import RESERVED_LABELS, UNMATCHED_TYPE_LABEL

__all__ = ["INVALID_LABELS", "is_invalid"]

INVALID_LABELS: Final = frozenset(KNOWN_ENVELOPES) | (RESERVED_LABELS - {UNMATCHED_TYPE_LABEL})
"""The labels an :class:`UnknownEnvelope` carries when its frame is invalid."""


def is_invalid(envelope: BaseEnvelope) -> bool:
    """Whether a session's ``envelope`` stands for an invalid frame (not merely an unknown type)."""
    return isinstance(envelope, UnknownEnvelope) and envelope.type in INVALID_LABELS
