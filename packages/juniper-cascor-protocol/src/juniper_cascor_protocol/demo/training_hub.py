"""The server side of ``/ws/training``: one broadcast stream, numbered, to every subscriber.

Ordering rules that make "zero loss, no false gap" hold for every subscriber:

* a frame's ``seq`` is stamped and the frame sent to every subscriber under one lock, so the
  wire order of each connection is the ``seq`` order;
* a new subscriber gets ``connection_established`` and ``initial_metrics`` (whose
  ``current_seq`` is the last number stamped) and joins the subscriber list under the same
  lock, so the first broadcast frame it sees is exactly ``current_seq + 1``;
* sends are awaited, so a slow subscriber slows the stream down (back-pressure) instead of
  losing frames.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Mapping
from typing import Any, Final

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from juniper_cascor_protocol.envelope.base import BaseEnvelope
from juniper_cascor_protocol.envelope.builders import (
    BroadcastBuilder,
    ControlBuilder,
    to_wire_json,
)
from juniper_cascor_protocol.envelope.training import MetricsEnvelope

__all__ = ["TrainingHub"]

_RECENT_METRICS: Final = 32


class TrainingHub:
    """Broadcasts ``/ws/training`` frames built by ``builder`` to every connected client.

    Counters (``frames_by_type``, ``frames_sent``, ``bytes_sent``) count each wire frame once,
    however many subscribers received it; ``deliveries`` counts frame × subscriber sends.
    """

    def __init__(
        self,
        builder: BroadcastBuilder,
        control: ControlBuilder,
        *,
        server_version: str | None = None,
        recent_metrics: int = _RECENT_METRICS,
    ) -> None:
        self.builder = builder
        self._control = control
        self._server_version = server_version
        self._subscribers: list[ServerConnection] = []
        self._lock = asyncio.Lock()
        self._recent: deque[dict[str, Any]] = deque(maxlen=recent_metrics)
        self.frames_by_type: Counter[str] = Counter()
        self.frames_sent = 0
        self.bytes_sent = 0
        self.deliveries = 0

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def current_seq(self) -> int:
        """The last ``seq`` stamped."""
        return self.builder.counter.current

    async def serve(self, connection: ServerConnection) -> None:
        """Handle one ``/ws/training`` connection until it closes."""
        async with self._lock:
            hello = self._control.connection_established(server_version=self._server_version)
            await connection.send(to_wire_json(hello))
            initial = self.builder.initial_metrics_draft(list(self._recent))
            for frame in self.builder.frames(initial):
                await connection.send(to_wire_json(frame))
            self._subscribers.append(connection)
        try:
            # Clients send nothing we act on; reading keeps the close handshake flowing.
            async for _ in connection:
                pass
        except ConnectionClosed:
            pass  # an abrupt close is as final as a clean one
        finally:
            self._drop(connection)

    async def broadcast(self, envelope: BaseEnvelope) -> int:
        """Stamp ``envelope`` (chunked if too large) and send it to every subscriber.

        ``envelope`` is unstamped (``builder.draft(...)``). Returns the last ``seq`` used.
        """
        async with self._lock:
            if isinstance(envelope, MetricsEnvelope):
                self._recent.append(envelope.data)
            for frame in self.builder.frames(envelope):
                text = to_wire_json(frame)
                self.frames_by_type[frame.type] += 1
                self.frames_sent += 1
                self.bytes_sent += len(text.encode())
                for connection in list(self._subscribers):
                    try:
                        await connection.send(text)
                    except ConnectionClosed:
                        self._drop(connection)
                    else:
                        self.deliveries += 1
            return self.current_seq

    async def broadcast_data(
        self, envelope_type: type[BaseEnvelope], data: Mapping[str, Any]
    ) -> int:
        """:meth:`broadcast` of a fresh ``envelope_type`` draft carrying ``data``."""
        return await self.broadcast(self.builder.draft(envelope_type, data))

    def _drop(self, connection: ServerConnection) -> None:
        if connection in self._subscribers:
            self._subscribers.remove(connection)
