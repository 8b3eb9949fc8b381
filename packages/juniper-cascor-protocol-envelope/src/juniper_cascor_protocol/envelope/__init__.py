"""Typed envelopes of juniper-cascor's ``/ws/training`` and ``/ws/control`` WebSockets.

``validate_envelope(frame)`` turns a decoded frame into its typed envelope and
``validate_envelope_json(raw)`` does the same straight from the message text; both return an
:class:`UnknownEnvelope` with a bounded ``type`` label for anything they do not recognise, and
never raise on what a peer sent.
"""

from importlib.metadata import version as _distribution_version

from juniper_cascor_protocol.envelope.labels import (
    UNKNOWN_TYPE_BUDGET,
    UNMATCHED_TYPE_LABEL,
    reset_unknown_label_state,
)
from juniper_cascor_protocol.envelope.models import (
    KNOWN_ENVELOPES,
    BaseEnvelope,
    CandidateProgressEnvelope,
    CascadeAddEnvelope,
    ChunkedMessageData,
    ChunkedMessageEnvelope,
    CommandResponseData,
    CommandResponseEnvelope,
    ConnectionEstablishedData,
    ConnectionEstablishedEnvelope,
    EventEnvelope,
    InitialMetricsData,
    InitialMetricsEnvelope,
    KnownEnvelope,
    MetricsEnvelope,
    StateEnvelope,
    TopologyEnvelope,
    UnknownEnvelope,
)
from juniper_cascor_protocol.envelope.validation import validate_envelope, validate_envelope_json

__version__: str = _distribution_version("juniper-cascor-protocol-envelope")

__all__ = [
    "KNOWN_ENVELOPES",
    "UNKNOWN_TYPE_BUDGET",
    "UNMATCHED_TYPE_LABEL",
    "BaseEnvelope",
    "CandidateProgressEnvelope",
    "CascadeAddEnvelope",
    "ChunkedMessageData",
    "ChunkedMessageEnvelope",
    "CommandResponseData",
    "CommandResponseEnvelope",
    "ConnectionEstablishedData",
    "ConnectionEstablishedEnvelope",
    "EventEnvelope",
    "InitialMetricsData",
    "InitialMetricsEnvelope",
    "KnownEnvelope",
    "MetricsEnvelope",
    "StateEnvelope",
    "TopologyEnvelope",
    "UnknownEnvelope",
    "__version__",
    "reset_unknown_label_state",
    "validate_envelope",
    "validate_envelope_json",
]
