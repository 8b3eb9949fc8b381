"""The server side of ``/ws/training``: a ``TrainingProducerSession`` and its subscribers.

The session stamps, numbers, chunks and serializes every broadcast once, and builds what a new
subscriber gets (``connection_established``, then ``initial_metrics`` with ``current_seq``).
The hub only sends those texts, holding one lock across building and sending, as the session
requires: every subscriber's wire order is then the ``seq`` order, and a new subscriber joins
between two broadcasts, so its first broadcast frame is exactly ``current_seq + 1``. Sends are
awaited: a slow subscriber slows the stream down (back-pressure) instead of losing frames.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from juniper_cascor_protocol.envelope.base import BaseEnvelope
from juniper_cascor_protocol.envelope.training import ChunkedMessageEnvelope
from juniper_cascor_protocol.envelope.training_session import TrainingProducerSession

__all__ = ["TrainingHub"]


class TrainingHub:
    """Broadcasts what ``session`` builds to every connected client.

    Counters (``frames_by_type``, ``frames_sent``, ``bytes_sent``) count each wire frame once,
    however many subscribers received it; ``deliveries`` counts frame × subscriber sends.
    """

    def __init__(self, session: TrainingProducerSession) -> None:
        self.session = session
        self._subscribers: list[ServerConnection] = []
        self._lock = asyncio.Lock()
        self.frames_by_type: Counter[str] = Counter()
        self.frames_sent: int = 0
        self.bytes_sent: int = 0
        self.deliveries: int = 0

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def current_seq(self) -> int:
        """The last ``seq`` broadcast."""
        return self.session.current_seq

    async def serve(self, connection: ServerConnection) -> None:
        """Handle one ``/ws/training`` connection until it closes."""
        async with self._lock:
            texts = self.session.subscribe(now=time.time(), monotonic=time.monotonic())
            try:
                for text in texts:
                    await connection.send(text)
            except ConnectionClosed:
                return
            self._subscribers.append(connection)
        try:
            # Clients send nothing the server acts on; reading keeps the close handshake flowing.
            async for _ in connection:
                pass
        except ConnectionClosed:
            pass  # an abrupt close is as final as a clean one
        finally:
            self._drop(connection)

    async def broadcast(
        self, envelope_type: type[BaseEnvelope], data: Mapping[str, Any] | None = None
    ) -> list[str]:
        """Send one ``envelope_type`` message carrying ``data`` to every subscriber.

        Returns the wire texts sent: one frame, or the ``chunked_message`` frames of a message
        too large for one.
        """
        async with self._lock:
            texts = self.session.broadcast(
                envelope_type, data, now=time.time(), monotonic=time.monotonic()
            )
            # A message too large for one frame goes out as two chunks or more.
            kind = envelope_type if len(texts) == 1 else ChunkedMessageEnvelope
            self.frames_by_type[kind.model_fields["type"].default] += len(texts)
            for text in texts:
                self.frames_sent += 1
                self.bytes_sent += len(text.encode())
                for connection in list(self._subscribers):
                    try:
                        await connection.send(text)
                    except ConnectionClosed:
                        self._drop(connection)
                    else:
                        self.deliveries += 1
            return texts

    def _drop(self, connection: ServerConnection) -> None:
        if connection in self._subscribers:
            self._subscribers.remove(connection)
