"""Sizes and times every ``/ws/v1/workers`` peer must honour, and the sessions' defaults."""

from __future__ import annotations

from typing import Final

from juniper_cascor_protocol.worker.binary_frame import MAX_FRAME_BYTES

__all__ = [
    "DEFAULT_BATCH_BYTE_BUDGET",
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_REGISTER_TIMEOUT",
    "DEFAULT_RESULT_TIMEOUT",
    "LIVENESS_FACTOR",
    "MAX_HEARTBEAT_INTERVAL",
    "MAX_JSON_MESSAGE_BYTES",
    "MIN_ACCEPTED_MESSAGE_BYTES",
    "MIN_HEARTBEAT_INTERVAL",
]

MAX_JSON_MESSAGE_BYTES: Final = 64 * 1024
"""Largest JSON text message, in UTF-8 bytes (juniper-cascor refuses longer ones)."""
MIN_ACCEPTED_MESSAGE_BYTES: Final = MAX_FRAME_BYTES
"""Every receiver accepts WebSocket messages at least this long (set the WebSocket library's
``max_size`` to it, at least): a tensor frame may be that large."""
DEFAULT_BATCH_BYTE_BUDGET: Final = 256 * 1024 * 1024
"""Default bound on the tensor bytes one session holds while a batch arrives."""
DEFAULT_HEARTBEAT_INTERVAL: Final = 10.0
"""Seconds between a worker's heartbeats unless ``registration_ack`` says otherwise."""
MIN_HEARTBEAT_INTERVAL: Final = 1.0
MAX_HEARTBEAT_INTERVAL: Final = 3600.0
"""The heartbeat intervals a server may set, in seconds: a worker brings any
``registration_ack.heartbeat_interval`` within them, so a server session refuses to announce
one outside them (its workers would beat at another pace and be closed as silent)."""
LIVENESS_FACTOR: Final = 3
"""A peer silent for this many heartbeat intervals is gone."""
DEFAULT_REGISTER_TIMEOUT: Final = 10.0
"""Seconds the server waits for ``register`` after the connection opens."""
DEFAULT_RESULT_TIMEOUT: Final = 120.0
"""Seconds the server waits for a task's ``task_result`` before giving the task up."""
