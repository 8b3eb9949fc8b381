"""The ``/ws/v1/workers`` protocol of juniper-cascor: message types and the binary tensor frame.

Depends on numpy only (never on Pydantic), so a slim worker image can install it alone.
"""

from importlib.metadata import version as _distribution_version

from juniper_cascor_protocol.worker.binary_frame import (
    MAX_DTYPE_BYTES,
    MAX_FRAME_BYTES,
    MAX_NDIM,
    BinaryFrame,
)
from juniper_cascor_protocol.worker.message_type import WorkerMessageType

__version__: str = _distribution_version("juniper-cascor-protocol-worker")

__all__ = [
    "MAX_DTYPE_BYTES",
    "MAX_FRAME_BYTES",
    "MAX_NDIM",
    "BinaryFrame",
    "WorkerMessageType",
    "__version__",
]
