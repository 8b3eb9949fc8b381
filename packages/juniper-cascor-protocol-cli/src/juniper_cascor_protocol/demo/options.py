"""What one demo run does: how many frames, clients and tensor megabytes, and its time bound."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

__all__ = [
    "LOOPBACK_HOST",
    "MAX_CLIENTS",
    "MAX_DELIVERIES",
    "MAX_FRAMES",
    "MAX_TENSOR_MB",
    "MAX_TIMEOUT_S",
    "SERVER_VERSION",
    "DemoOptions",
]

LOOPBACK_HOST: Final = "127.0.0.1"
"""The only address the demo binds or connects to: it never listens beyond this machine."""
SERVER_VERSION: Final = "loopback-demo"
"""The ``server_version`` the demo's server announces on every endpoint."""

MAX_FRAMES: Final = 1_000_000
MAX_CLIENTS: Final = 64
MAX_DELIVERIES: Final = 10_000_000
"""The most broadcast frames times clients: every client receives every frame, so this is the
``/ws/training`` phase's work (about four minutes on a loaded 2-core machine)."""
MAX_TENSOR_MB: Final = 64.0
"""The largest tensor must fit one binary frame (``MAX_FRAME_BYTES``, 100 MiB) with its header."""
MAX_TIMEOUT_S: Final = 3600.0

# The default time limit: a fixed allowance, plus the work asked for at rates a slow or busy
# machine still reaches (this one, loaded, runs about 8 times faster).
_BASE_TIMEOUT_S: Final = 60.0
_DELIVERIES_PER_S: Final = 5_000
_TENSOR_MB_PER_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """The knobs of :func:`~juniper_cascor_protocol.demo.run_demo`, checked on creation.

    ``frames`` broadcast frames go to each of ``clients`` training clients on ``/ws/training``
    (at most :data:`MAX_DELIVERIES` frames × clients); ``clients`` workers each run one task on
    ``/ws/v1/workers`` whose input tensor is ``tensor_mb`` megabytes (10**6 bytes) of float32.
    ``port`` 0 picks a free ephemeral port. The traffic stops after :attr:`time_limit_s`: the
    ``timeout_s`` given, or by default one that grows with the work asked for; closing the
    connections then takes at most about one second more.

    Raises:
        ValueError: a field is outside its range; the message names the field and the limit.
    """

    frames: int = 2000
    clients: int = 2
    tensor_mb: float = 8.0
    host: str = LOOPBACK_HOST
    port: int = 0
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        _check_int("frames", self.frames, 1, MAX_FRAMES)
        _check_int("clients", self.clients, 1, MAX_CLIENTS)
        _check_int("port", self.port, 0, 65535)
        _check_float("tensor_mb", self.tensor_mb, MAX_TENSOR_MB)
        if self.timeout_s is not None:
            _check_float("timeout_s", self.timeout_s, MAX_TIMEOUT_S)
        if self.host != LOOPBACK_HOST:
            raise ValueError(f"host must be {LOOPBACK_HOST!r} (loopback only), got {self.host!r}")
        if self.deliveries > MAX_DELIVERIES:
            raise ValueError(
                f"frames x clients must be at most {MAX_DELIVERIES:,}, got "
                f"{self.frames:,} x {self.clients} = {self.deliveries:,}"
            )

    @property
    def tensor_bytes(self) -> int:
        """The size in bytes of each task's input tensor."""
        return int(self.tensor_mb * 1_000_000)

    @property
    def deliveries(self) -> int:
        """Broadcast frames received over all clients: ``frames × clients``."""
        return self.frames * self.clients

    @property
    def time_limit_s(self) -> float:
        """``timeout_s``, or by default 60 s plus 1 s per 5,000 deliveries and per 10 MB of
        task tensors, at most :data:`MAX_TIMEOUT_S`."""
        if self.timeout_s is not None:
            return self.timeout_s
        tensor_mb = self.clients * self.tensor_mb
        work_s = self.deliveries / _DELIVERIES_PER_S + tensor_mb / _TENSOR_MB_PER_S
        return min(MAX_TIMEOUT_S, _BASE_TIMEOUT_S + round(work_s))


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
