"""A ``/ws/training`` client: a ``TrainingConsumerSession`` reading a real connection.

The session validates every frame, checks ``seq``, reseeds on ``initial_metrics`` (counting the
frames missed while away instead of reporting a gap), reassembles chunked messages within its
bounds, checks the server's protocol version and says when to answer a ``ping``. The client only
feeds it each message with the monotonic time, lets it age incomplete chunked messages every
:data:`EXPIRE_INTERVAL_S` when nothing arrives, sends the replies, closes the connection when
the server's version is incompatible, and wakes whoever waits for a ``seq``. Keep one client
across reconnects: :meth:`TrainingClient.run` it again and the session carries over.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from juniper_cascor_protocol.demo.transport import connection_settings
from juniper_cascor_protocol.envelope.base import BaseEnvelope
from juniper_cascor_protocol.envelope.chunking import DEFAULT_MAX_FRAME_BYTES, Reassembler
from juniper_cascor_protocol.envelope.sequence import SeqStats
from juniper_cascor_protocol.envelope.session_events import (
    IncompatibleVersion,
    PingReceived,
)
from juniper_cascor_protocol.envelope.training_session import (
    EnvelopeReceived,
    ReassemblerFactory,
    Reseeded,
    TrainingConsumerSession,
    TrainingConsumerStats,
    TrainingEvent,
)

__all__ = ["EXPIRE_INTERVAL_S", "TrainingClient", "TrainingClientStats"]

EXPIRE_INTERVAL_S: Final = 1.0
"""How often the session's ``expire`` runs while connected, whatever arrives."""

# Text frames up to this multiple of the client's limit reach the session and are counted as
# oversized; longer ones make `websockets` close the connection (1009) before we see them.
_TRANSPORT_SLACK: Final = 4


@dataclass(frozen=True, slots=True)
class TrainingClientStats:
    """The session's totals, plus what the binding saw."""

    session: TrainingConsumerStats
    connections: int
    peak_buffered_bytes: int
    """Most payload bytes of incomplete chunked messages held at once."""
    peak_in_flight: int
    """Most incomplete chunked messages held at once."""

    @property
    def bad_frames(self) -> int:
        """Frames refused, unknown, or rejected by the reassembler."""
        session = self.session
        rejected = sum(session.reassembly.rejected.values())
        return sum(session.refused.values()) + sum(session.unknown.values()) + rejected


class TrainingClient:
    """Consumes ``/ws/training``; every event of its session goes to ``on_event``.

    Args:
        max_frame_bytes: the longest text frame read, in UTF-8 bytes (default: the chunker's
            1 MiB frame budget, which every frame of a conforming server fits).
        reassembler: makes the session's :class:`Reassembler` (e.g.
            ``functools.partial(Reassembler, max_messages_in_flight=4)``).
        on_message: called with every delivered envelope, whole or reassembled, in order.
        on_event: called with every event of the session, in order.
    """

    def __init__(
        self,
        *,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        reassembler: ReassemblerFactory = Reassembler,
        on_message: Callable[[BaseEnvelope], None] | None = None,
        on_event: Callable[[TrainingEvent], None] | None = None,
    ) -> None:
        self.session: TrainingConsumerSession = TrainingConsumerSession(
            max_frame_bytes=max_frame_bytes, reassembler=reassembler
        )
        self.max_frame_bytes = max_frame_bytes
        self.incompatible: IncompatibleVersion | None = None
        self._on_message = on_message
        self._on_event = on_event
        self._connections = 0
        self._peak_buffered = 0
        self._peak_in_flight = 0
        self._seq_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._subscribed = asyncio.Event()
        self._connection: ClientConnection | None = None

    @property
    def seq(self) -> SeqStats:
        """The session's ``seq`` totals."""
        return self.session.stats().seq

    @property
    def stats(self) -> TrainingClientStats:
        return TrainingClientStats(
            self.session.stats(), self._connections, self._peak_buffered, self._peak_in_flight
        )

    async def run(self, uri: str) -> None:
        """Read ``uri`` until the server closes the connection or :meth:`disconnect` is called.

        Raises:
            OSError: the connection could not be opened.
        """
        settings = connection_settings(_TRANSPORT_SLACK * self.max_frame_bytes)
        try:
            async with connect(uri, **settings) as connection:
                self._connection = connection
                self._connections += 1
                timer = asyncio.create_task(self._expire_forever(connection))
                try:
                    while True:
                        message = await connection.recv()
                        for event in self.session.receive(message, now=time.monotonic()):
                            await self._handle(connection, event)
                        self._after_message()
                except ConnectionClosed:
                    pass
                finally:
                    timer.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await timer
        finally:
            self._connection = None
            self._subscribed.clear()
            self._fail_waiters()

    async def disconnect(self) -> None:
        """Close the current connection, making :meth:`run` return."""
        if self._connection is not None:
            await self._connection.close()

    async def wait_subscribed(self) -> None:
        """Wait until the current connection's ``initial_metrics`` has been received."""
        await self._subscribed.wait()

    async def wait_for_seq(self, seq: int) -> None:
        """Wait until a frame with ``seq`` at least ``seq`` has been received.

        Raises:
            ConnectionError: the connection ended first.
        """
        last = self.session.last_seq
        if last is not None and last >= seq:
            return
        future = asyncio.get_running_loop().create_future()
        self._seq_waiters.append((seq, future))
        await future

    async def _expire_forever(self, connection: ClientConnection) -> None:
        while True:
            await asyncio.sleep(EXPIRE_INTERVAL_S)
            for event in self.session.expire(now=time.monotonic()):
                await self._handle(connection, event)

    async def _handle(self, connection: ClientConnection, event: TrainingEvent) -> None:
        if isinstance(event, PingReceived):
            await connection.send(event.reply)
        elif isinstance(event, IncompatibleVersion):
            self.incompatible = event
            await connection.close()
        elif isinstance(event, Reseeded):
            self._subscribed.set()
        elif isinstance(event, EnvelopeReceived) and self._on_message is not None:
            self._on_message(event.envelope)
        if self._on_event is not None:
            self._on_event(event)

    def _after_message(self) -> None:
        self._peak_buffered = max(self._peak_buffered, self.session.buffered_bytes)
        self._peak_in_flight = max(self._peak_in_flight, self.session.in_flight)
        last = self.session.last_seq
        if not self._seq_waiters or last is None:
            return
        pending = []
        for target, future in self._seq_waiters:
            if target > last:
                pending.append((target, future))
            elif not future.done():
                future.set_result(None)
        self._seq_waiters = pending

    def _fail_waiters(self) -> None:
        for target, future in self._seq_waiters:
            if not future.done():
                future.set_exception(
                    ConnectionError(f"connection ended before seq {target} arrived")
                )
        self._seq_waiters = []
