"""WebSocket settings shared by the demo server and clients, and the tensor send/receive path.

Every connection of the demo uses the same settings:

* ``max_size`` defaults to :data:`MAX_MESSAGE_BYTES`: a largest binary frame (``MAX_FRAME_BYTES``,
  100 MiB, so a 64 MB tensor fits with room to spare) plus 64 KiB. A longer message closes the
  connection with code 1009 inside ``websockets``; anything up to it reaches the consumer,
  which applies its own, usually smaller, limit and counts what it refuses. JSON-only clients
  pass a smaller ``max_size``.
* No ``permessage-deflate``: tensors do not compress, and deflating 64 MB would cost seconds.
* No keepalive pings: a loopback peer busy decoding a large tensor must not be dropped for a
  late pong; every run is bounded by its own timeout instead.
* A short close handshake (:data:`CLOSE_TIMEOUT_S`): a loopback peer answers a close frame at
  once unless it has stopped reading (e.g. it was cancelled with frames still queued), and
  then waiting longer gains nothing.
"""

from __future__ import annotations

from typing import Any, Final

from numpy.typing import NDArray
from websockets.asyncio.connection import Connection

from juniper_cascor_protocol.worker import MAX_FRAME_BYTES, BinaryFrame

__all__ = [
    "CLOSE_TIMEOUT_S",
    "MAX_MESSAGE_BYTES",
    "connection_settings",
    "receive_tensor",
    "send_tensor",
]

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


async def send_tensor(connection: Connection, array: NDArray[Any]) -> int:
    """Send ``array`` as one binary message; return the frame's size in bytes.

    The header and a zero-copy view of the data go out as two fragments of one message, so the
    tensor is never concatenated with its header in Python (``websockets`` still copies each
    fragment once into its write buffer). The receiver gets one ordinary binary message.
    """
    header, data = BinaryFrame.encode_parts(array)
    await connection.send([header, data])
    return len(header) + len(data)


def receive_tensor(message: bytes) -> NDArray[Any]:
    """Decode one received binary message without copying its payload.

    ``message`` is an immutable ``bytes`` object that ``websockets`` created for us, so the
    read-only view returned by ``decode(copy=False)`` can never change under the caller.

    Raises:
        ValueError: ``message`` is not a well-formed binary frame.
    """
    array: NDArray[Any] = BinaryFrame.decode(message, copy=False)
    return array
