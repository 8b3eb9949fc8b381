"""The ``/ws/v1/workers`` protocol of juniper-cascor: message types, the JSON messages, the
tensor manifest, the binary tensor frame, and the sans-I/O sessions of both ends
(:class:`WorkerSession`, :class:`ServerSession`).

Depends on numpy only (never on Pydantic), so a slim worker image can install it alone.

Importing the package loads the binary tensor frame and the message types only, what
``import juniper_cascor_protocol`` re-exports; the first use of any other name loads the rest
(the JSON messages, the manifest, the sessions), so a process that only moves tensors, or only
imports the package, pays little more than ``import numpy``.
"""

from typing import TYPE_CHECKING

from juniper_cascor_protocol._version import __version__
from juniper_cascor_protocol.worker.binary_frame import (
    DECODE_ERROR_PREFIXES,
    MAX_DTYPE_BYTES,
    MAX_FRAME_BYTES,
    MAX_NDIM,
    BinaryFrame,
)
from juniper_cascor_protocol.worker.message_type import WorkerMessageType

if TYPE_CHECKING:  # at run time, __getattr__ below imports these on first use
    from juniper_cascor_protocol.worker.close_codes import CloseCode, should_reconnect
    from juniper_cascor_protocol.worker.field_error import FieldError
    from juniper_cascor_protocol.worker.manifest import TensorManifest, TensorSpec, check_tensors
    from juniper_cascor_protocol.worker.message_parse_error import (
        PARSE_ERROR_LABELS,
        MessageParseError,
        Problem,
    )
    from juniper_cascor_protocol.worker.messages import (
        MALFORMED_JSON,
        RESULT_ACK_STATUSES,
        WORKER_ID_PATTERN,
        WORKER_MESSAGES,
        ConnectionEstablishedMessage,
        ErrorMessage,
        HeartbeatMessage,
        RegisterMessage,
        RegistrationAckMessage,
        ResultAckMessage,
        TaskAssignMessage,
        TaskResultMessage,
        TokenRefreshMessage,
        WorkerMessage,
        parse_worker_message,
        parse_worker_message_json,
    )
    from juniper_cascor_protocol.worker.protocol_version import (
        PROTOCOL_VERSION,
        SUPPORTED_PROTOCOL_VERSIONS,
        is_compatible,
        parse_protocol_version,
    )
    from juniper_cascor_protocol.worker.server_session import ServerSession
    from juniper_cascor_protocol.worker.session_events import (
        VIOLATION_LABELS,
        Closed,
        ConnectionEstablished,
        HeartbeatDue,
        IncompatibleVersion,
        MessageReceived,
        PeerSilent,
        ProtocolViolation,
        Registered,
        ResultAcknowledged,
        ResultReceived,
        ResultTimedOut,
        SessionEvent,
        SessionState,
        TaskReceived,
        TaskRefused,
        VersionIncompatible,
        Violation,
        WorkerRegistered,
    )
    from juniper_cascor_protocol.worker.session_limits import (
        DEFAULT_BATCH_BYTE_BUDGET,
        DEFAULT_HEARTBEAT_INTERVAL,
        DEFAULT_REGISTER_TIMEOUT,
        DEFAULT_RESULT_TIMEOUT,
        LIVENESS_FACTOR,
        MAX_HEARTBEAT_INTERVAL,
        MAX_JSON_MESSAGE_BYTES,
        MIN_ACCEPTED_MESSAGE_BYTES,
        MIN_HEARTBEAT_INTERVAL,
    )
    from juniper_cascor_protocol.worker.tensor_names import (
        BIAS,
        CANDIDATE_INPUT,
        CANDIDATE_UUID_KEY,
        NORM_ERROR,
        NORM_OUTPUT,
        REQUIRED_TASK_TENSORS,
        RESIDUAL_ERROR,
        RESULT_TENSORS,
        TARGET,
        TASK_TENSORS,
        WEIGHTS,
    )
    from juniper_cascor_protocol.worker.worker_session import WorkerSession

__all__ = [
    "BIAS",
    "CANDIDATE_INPUT",
    "CANDIDATE_UUID_KEY",
    "DECODE_ERROR_PREFIXES",
    "DEFAULT_BATCH_BYTE_BUDGET",
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_REGISTER_TIMEOUT",
    "DEFAULT_RESULT_TIMEOUT",
    "LIVENESS_FACTOR",
    "MALFORMED_JSON",
    "MAX_DTYPE_BYTES",
    "MAX_FRAME_BYTES",
    "MAX_HEARTBEAT_INTERVAL",
    "MAX_JSON_MESSAGE_BYTES",
    "MAX_NDIM",
    "MIN_ACCEPTED_MESSAGE_BYTES",
    "MIN_HEARTBEAT_INTERVAL",
    "NORM_ERROR",
    "NORM_OUTPUT",
    "PARSE_ERROR_LABELS",
    "PROTOCOL_VERSION",
    "REQUIRED_TASK_TENSORS",
    "RESIDUAL_ERROR",
    "RESULT_ACK_STATUSES",
    "RESULT_TENSORS",
    "SUPPORTED_PROTOCOL_VERSIONS",
    "TARGET",
    "TASK_TENSORS",
    "VIOLATION_LABELS",
    "WEIGHTS",
    "WORKER_ID_PATTERN",
    "WORKER_MESSAGES",
    "BinaryFrame",
    "CloseCode",
    "Closed",
    "ConnectionEstablished",
    "ConnectionEstablishedMessage",
    "ErrorMessage",
    "FieldError",
    "HeartbeatDue",
    "HeartbeatMessage",
    "IncompatibleVersion",
    "MessageParseError",
    "MessageReceived",
    "PeerSilent",
    "Problem",
    "ProtocolViolation",
    "RegisterMessage",
    "Registered",
    "RegistrationAckMessage",
    "ResultAckMessage",
    "ResultAcknowledged",
    "ResultReceived",
    "ResultTimedOut",
    "ServerSession",
    "SessionEvent",
    "SessionState",
    "TaskAssignMessage",
    "TaskReceived",
    "TaskRefused",
    "TaskResultMessage",
    "TensorManifest",
    "TensorSpec",
    "TokenRefreshMessage",
    "VersionIncompatible",
    "Violation",
    "WorkerMessage",
    "WorkerMessageType",
    "WorkerRegistered",
    "WorkerSession",
    "__version__",
    "check_tensors",
    "is_compatible",
    "parse_protocol_version",
    "parse_worker_message",
    "parse_worker_message_json",
    "should_reconnect",
]

# The submodules of the names imported for type checkers above, loaded on first use.
_DEFERRED_MODULES = (
    "close_codes",
    "field_error",
    "manifest",
    "message_parse_error",
    "messages",
    "protocol_version",
    "server_session",
    "session_events",
    "session_limits",
    "tensor_names",
    "worker_session",
)

if not TYPE_CHECKING:  # hidden from type checkers, which would accept any name otherwise

    def __getattr__(name: str) -> object:
        """Load the deferred submodules on the first use of a name that is not loaded yet."""
        if not name.startswith("_"):
            import importlib

            namespace = globals()
            for module_name in _DEFERRED_MODULES:
                # Importing a submodule also makes it an attribute here, as it always was.
                module = importlib.import_module(f"{__name__}.{module_name}")
                namespace.update(
                    (key, getattr(module, key)) for key in module.__all__ if key in __all__
                )
            if name in namespace:
                return namespace[name]
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
