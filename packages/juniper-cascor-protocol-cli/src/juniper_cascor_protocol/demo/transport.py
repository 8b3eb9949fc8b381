"""WebSocket settings shared by the demo server and clients.

Every connection of the demo uses the same settings:

* ``max_size`` defaults to :data:`MAX_MESSAGE_BYTES`: a largest binary frame (``MAX_FRAME_BYTES``,
  100 MiB, so a 64 MB tensor fits with room to spare) plus 64 KiB. A longer message closes the
  connection with code 1009 inside ``websockets``; anything up to it reaches the consumer,
  which applies its own, usually smaller, limit and counts what it refuses. JSON-only clients
  pass a smaller ``max_size``.
* No ``permessage-deflate``: tensors do not compress, and deflating 64 MB would cost seconds.
* No WebSocket keepalive pings: liveness is the sessions' own (the heartbeats of
  ``/ws/v1/workers``), and a loopback peer busy decoding a large tensor must not be dropped
  for a late pong.
* A short close handshake (:data:`CLOSE_TIMEOUT_S`): a loopback peer answers a close frame at
  once unless it has stopped reading (e.g. it was cancelled with frames still queued), and
  then waiting longer gains nothing.
"""

from __future__ import annotations

from typing import Any, Final

from juniper_cascor_protocol.worker.binary_frame import MAX_FRAME_BYTES

__all__ = ["CLOSE_TIMEOUT_S", "MAX_MESSAGE_BYTES", "connection_settings"]

MAX_MESSAGE_BYTES: Final = MAX_FRAME_BYTES + 64 * 1024
CLOSE_TIMEOUT_S: Final = 0.5
"""How long a closing side waits for the peer's close frame before dropping the connection."""


def connection_settings(max_size: int = MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """Keyword arguments for ``websockets.asyncio.server.serve`` and ``...client.connect``."""
    return {
        "max_size": max_size,
        "compression": None,
        "ping_interval": None,
        "close_timeout": CLOSE_TIMEOUT_S,
    }
