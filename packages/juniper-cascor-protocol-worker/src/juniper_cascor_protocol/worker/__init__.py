"""The ``/ws/v1/workers`` protocol of juniper-cascor: message types, the JSON messages, the
tensor manifest and the binary tensor frame.

Depends on numpy only (never on Pydantic), so a slim worker image can install it alone.
"""

from importlib.metadata import version as _distribution_version

from juniper_cascor_protocol.worker.binary_frame import (
    DECODE_ERROR_PREFIXES,
    MAX_DTYPE_BYTES,
    MAX_FRAME_BYTES,
    MAX_NDIM,
    BinaryFrame,
)
from juniper_cascor_protocol.worker.field_error import FieldError
from juniper_cascor_protocol.worker.manifest import TensorManifest, TensorSpec, check_tensors
from juniper_cascor_protocol.worker.message_type import WorkerMessageType
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

__version__: str = _distribution_version("juniper-cascor-protocol-worker")

__all__ = [
    "DECODE_ERROR_PREFIXES",
    "MALFORMED_JSON",
    "MAX_DTYPE_BYTES",
    "MAX_FRAME_BYTES",
    "MAX_NDIM",
    "RESULT_ACK_STATUSES",
    "WORKER_ID_PATTERN",
    "WORKER_MESSAGES",
    "BinaryFrame",
    "ConnectionEstablishedMessage",
    "ErrorMessage",
    "FieldError",
    "HeartbeatMessage",
    "RegisterMessage",
    "RegistrationAckMessage",
    "ResultAckMessage",
    "TaskAssignMessage",
    "TaskResultMessage",
    "TensorManifest",
    "TensorSpec",
    "TokenRefreshMessage",
    "WorkerMessage",
    "WorkerMessageType",
    "__version__",
    "check_tensors",
    "parse_worker_message",
    "parse_worker_message_json",
]
