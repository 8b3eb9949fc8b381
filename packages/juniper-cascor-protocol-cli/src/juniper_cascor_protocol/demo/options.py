"""What one demo run does: how many frames, clients and tensor megabytes, and its time bound."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

__all__ = ["LOOPBACK_HOST", "SERVER_VERSION", "DemoOptions"]

LOOPBACK_HOST: Final = "127.0.0.1"
"""The only address the demo binds or connects to: it never listens beyond this machine."""
SERVER_VERSION: Final = "loopback-demo"
"""The ``server_version`` the demo's server announces on every endpoint."""

_MAX_FRAMES: Final = 1_000_000
_MAX_CLIENTS: Final = 64
# The largest tensor must fit one binary frame (MAX_FRAME_BYTES, 100 MiB) with its header.
_MAX_TENSOR_MB: Final = 64.0
_MAX_TIMEOUT_S: Final = 3600.0


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """The knobs of :func:`~juniper_cascor_protocol.demo.run_demo`, checked on creation.

    ``frames`` broadcast frames go to each of ``clients`` training clients on ``/ws/training``;
    ``clients`` workers each run one task on ``/ws/v1/workers`` whose input tensor is
    ``tensor_mb`` megabytes (10**6 bytes) of float32. ``port`` 0 picks a free ephemeral port.
    The traffic stops after ``timeout_s`` seconds at most; closing the connections then takes
    at most about one second more.

    Raises:
        ValueError: a field is outside its range; the message names the field and the limit.
    """

    frames: int = 2000
    clients: int = 2
    tensor_mb: float = 8.0
    host: str = LOOPBACK_HOST
    port: int = 0
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        _check_int("frames", self.frames, 1, _MAX_FRAMES)
        _check_int("clients", self.clients, 1, _MAX_CLIENTS)
        _check_int("port", self.port, 0, 65535)
        _check_float("tensor_mb", self.tensor_mb, _MAX_TENSOR_MB)
        _check_float("timeout_s", self.timeout_s, _MAX_TIMEOUT_S)
        if self.host != LOOPBACK_HOST:
            raise ValueError(f"host must be {LOOPBACK_HOST!r} (loopback only), got {self.host!r}")

    @property
    def tensor_bytes(self) -> int:
        """The size in bytes of each task's input tensor."""
        return int(self.tensor_mb * 1_000_000)


def _check_int(field: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{field} must be an int, got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{field} must be between {low} and {high}, got {value}")


def _check_float(field: str, value: object, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{field} must be a number, got {type(value).__name__}")
    if not (math.isfinite(value) and 0 < value <= high):
        raise ValueError(f"{field} must be > 0 and <= {high:g}, got {value}")
