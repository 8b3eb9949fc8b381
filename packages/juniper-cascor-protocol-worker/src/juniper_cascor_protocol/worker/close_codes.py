"""The WebSocket close codes of ``/ws/v1/workers`` and whether a worker should reconnect.

The 4xxx codes are those juniper-cascor 0.12 already sends (4001, 4003-4008, 4029), plus the
ones this protocol adds: 4009 (protocol version not supported), 4010 (no more work: do not
reconnect), 4011 (the peer fell silent) and 4012 (replaced by a newer connection).
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["CloseCode", "should_reconnect"]


class CloseCode(IntEnum):
    """Why a ``/ws/v1/workers`` connection was closed."""

    NORMAL = 1000
    """Done, nothing wrong (e.g. a worker told to stop)."""
    GOING_AWAY = 1001
    """The server restarts; reconnect with backoff."""
    MESSAGE_TOO_BIG = 1009
    """Sent by a WebSocket library whose ``max_size`` a message exceeded."""
    AUTH_REQUIRED = 4001
    """The upgrade request had no valid ``X-API-Key``."""
    ORIGIN_FORBIDDEN = 4003
    """The upgrade request carried an ``Origin`` header: workers are not browsers."""
    NOT_READY = 4004
    """The server's worker system is not running."""
    MESSAGE_TOO_LARGE = 4005
    """A JSON message over ``MAX_JSON_MESSAGE_BYTES``."""
    INVALID_JSON = 4006
    """A text message that is not JSON, before registration."""
    EXPECTED_REGISTER = 4007
    """The first message was not ``register``, or it did not come in time."""
    INVALID_MESSAGE = 4008
    """A message the session cannot go on from (invalid ``register``, a broken batch...)."""
    UNSUPPORTED_VERSION = 4009
    """The worker does not speak the protocol version the server announced."""
    NO_MORE_WORK = 4010
    """The server is shutting down or has no work for this worker: do not reconnect."""
    PEER_SILENT = 4011
    """Nothing was received for longer than the liveness timeout."""
    REPLACED = 4012
    """Another connection registered with this worker id; the newer one is the worker."""
    RATE_LIMITED = 4029
    """Too many connection attempts from this address; reconnect later."""


_FINAL = frozenset(
    {
        CloseCode.AUTH_REQUIRED,
        CloseCode.ORIGIN_FORBIDDEN,
        CloseCode.UNSUPPORTED_VERSION,
        CloseCode.NO_MORE_WORK,
        CloseCode.REPLACED,
    }
)


def should_reconnect(code: int | None) -> bool:
    """Whether a worker whose connection closed with ``code`` should connect again (with backoff).

    No for a refused key or Origin, an unsupported version, "no more work" and "replaced":
    retrying cannot succeed (or would fight the newer connection of the same worker id), and a
    worker that loops register-and-close only loads the server. Yes for every other code, an
    unknown one or none (the connection dropped).
    """
    return code not in _FINAL
