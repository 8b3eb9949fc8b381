"""Typed envelopes of juniper-cascor's ``/ws/training`` and ``/ws/control`` WebSockets.

``validate_envelope(frame)`` turns a decoded frame into its typed envelope and
``validate_envelope_json(raw)`` does the same straight from the message text; both return an
:class:`UnknownEnvelope` with a bounded ``type`` label for anything they do not recognise, and
never raise on what a peer sent.
"""

from importlib.metadata import version as _distribution_version

from juniper_cascor_protocol.envelope.base import BaseEnvelope, UnknownEnvelope
from juniper_cascor_protocol.envelope.builders import (
    BroadcastBuilder,
    ControlBuilder,
    command_response,
    connection_established,
    to_wire_dict,
    to_wire_json,
)
from juniper_cascor_protocol.envelope.chunking import (
    STAMP_HEADROOM,
    Chunker,
    Reassembler,
    ReassemblerStats,
    ReassemblyResult,
    ReassemblyStatus,
    RejectReason,
)
from juniper_cascor_protocol.envelope.control import (
    INVALID_COMMAND_CODE,
    KNOWN_COMMANDS,
    MALFORMED_JSON_CODE,
    UNKNOWN_COMMAND_CODE,
    CommandParseError,
    CommandResponseData,
    CommandResponseEnvelope,
    CommandStatus,
    ConnectionEstablishedData,
    ConnectionEstablishedEnvelope,
    ControlCommand,
    ControlCommandName,
    parse_command,
    parse_command_json,
)
from juniper_cascor_protocol.envelope.errors import describe_validation_error
from juniper_cascor_protocol.envelope.labels import (
    UNKNOWN_TYPE_BUDGET,
    UNMATCHED_TYPE_LABEL,
    reset_unknown_label_state,
)
from juniper_cascor_protocol.envelope.sequence import (
    SeqEvent,
    SeqObservation,
    SeqStats,
    SequenceCounter,
    SequenceTracker,
)
from juniper_cascor_protocol.envelope.training import (
    CandidateProgressEnvelope,
    CascadeAddEnvelope,
    ChunkedMessageData,
    ChunkedMessageEnvelope,
    EventEnvelope,
    InitialMetricsData,
    InitialMetricsEnvelope,
    MetricsEnvelope,
    StateEnvelope,
    TopologyEnvelope,
)
from juniper_cascor_protocol.envelope.validate import (
    KNOWN_ENVELOPES,
    KnownEnvelope,
    validate_envelope,
    validate_envelope_json,
)

__version__: str = _distribution_version("juniper-cascor-protocol-envelope")

__all__ = [
    "INVALID_COMMAND_CODE",
    "KNOWN_COMMANDS",
    "KNOWN_ENVELOPES",
    "MALFORMED_JSON_CODE",
    "STAMP_HEADROOM",
    "UNKNOWN_COMMAND_CODE",
    "UNKNOWN_TYPE_BUDGET",
    "UNMATCHED_TYPE_LABEL",
    "BaseEnvelope",
    "BroadcastBuilder",
    "CandidateProgressEnvelope",
    "CascadeAddEnvelope",
    "ChunkedMessageData",
    "ChunkedMessageEnvelope",
    "Chunker",
    "CommandParseError",
    "CommandResponseData",
    "CommandResponseEnvelope",
    "CommandStatus",
    "ConnectionEstablishedData",
    "ConnectionEstablishedEnvelope",
    "ControlBuilder",
    "ControlCommand",
    "ControlCommandName",
    "EventEnvelope",
    "InitialMetricsData",
    "InitialMetricsEnvelope",
    "KnownEnvelope",
    "MetricsEnvelope",
    "Reassembler",
    "ReassemblerStats",
    "ReassemblyResult",
    "ReassemblyStatus",
    "RejectReason",
    "SeqEvent",
    "SeqObservation",
    "SeqStats",
    "SequenceCounter",
    "SequenceTracker",
    "StateEnvelope",
    "TopologyEnvelope",
    "UnknownEnvelope",
    "__version__",
    "command_response",
    "connection_established",
    "describe_validation_error",
    "parse_command",
    "parse_command_json",
    "reset_unknown_label_state",
    "to_wire_dict",
    "to_wire_json",
    "validate_envelope",
    "validate_envelope_json",
]
