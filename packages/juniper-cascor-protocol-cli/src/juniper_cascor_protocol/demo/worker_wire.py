"""A ``/ws/v1/workers`` session bound to one WebSocket: both ends use it.

The session (``WorkerSession`` or ``ServerSession``) owns every rule of the conversation; this
binding only moves messages and time. :meth:`SessionSocket.pump` reads each message into the
session with the wall-clock time (the sessions stamp heartbeats with it) and calls the
session's timers every :data:`TICK_INTERVAL_S`; after every call it writes what the session
queued and, once the session set its ``close_code``, closes the WebSocket with it. Lists of
messages are written whole under one lock, so a heartbeat never falls between a message and its
tensor frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed

from juniper_cascor_protocol.worker.server_session import ServerSession
from juniper_cascor_protocol.worker.session_events import SessionEvent, SessionState
from juniper_cascor_protocol.worker.worker_session import WorkerSession

__all__ = ["TICK_INTERVAL_S", "SessionSocket", "TensorTraffic"]

TICK_INTERVAL_S: Final = 0.25
"""How often a session's timers run (the sessions ask for at least once a second)."""

S = TypeVar("S", ServerSession, WorkerSession)
EventHandler = Callable[[list[SessionEvent]], Awaitable[None]]


@dataclass(slots=True)
class TensorTraffic:
    """Binary tensor frames written and read, possibly summed over several connections."""

    frames_sent: int = 0
    bytes_sent: int = 0
    frames_received: int = 0
    bytes_received: int = 0


class SessionSocket(Generic[S]):
    """``session`` speaking over ``connection``; counts tensor frames into ``traffic``."""

    def __init__(self, connection: Connection, session: S, traffic: TensorTraffic) -> None:
        self.connection = connection
        self.session: S = session
        self.traffic = traffic
        self._write_lock = asyncio.Lock()
        self._socket_closed = False
        self._stopping = asyncio.Event()

    @property
    def ended(self) -> bool:
        return self.session.state is SessionState.CLOSED

    async def write(self, messages: Sequence[str | bytes]) -> None:
        """Send ``messages`` in order, none in between; a closed connection drops them (the
        reader then reports the close)."""
        async with self._write_lock:
            with contextlib.suppress(ConnectionClosed):
                for message in messages:
                    await self.connection.send(message)
                    if isinstance(message, bytes):
                        self.traffic.frames_sent += 1
                        self.traffic.bytes_sent += len(message)

    async def close(self, code: int, reason: str) -> list[SessionEvent]:
        """End the session from this side; the WebSocket closes with ``code``."""
        events = self.session.close(code, reason)
        await self._settle()
        return events

    async def pump(self, handle: EventHandler) -> None:
        """Feed received messages and timer ticks to the session until it ends; every list of
        events goes to ``handle``."""
        ticker = asyncio.create_task(self._tick(handle))
        try:
            while not self.ended:
                await handle(await self._receive())
        finally:
            # Stopped between ticks, never in the middle of one: its events are handled.
            self._stopping.set()
            await ticker

    async def _receive(self) -> list[SessionEvent]:
        try:
            message = await self.connection.recv()
        except ConnectionClosed as closed:
            frame = closed.rcvd
            code, reason = (frame.code, frame.reason) if frame is not None else (None, "")
            self._socket_closed = True
            return self.session.receive_close(code, reason)
        if isinstance(message, bytes):
            self.traffic.frames_received += 1
            self.traffic.bytes_received += len(message)
        events = self.session.receive(message, time.time())
        await self._settle()
        return events

    async def _tick(self, handle: EventHandler) -> None:
        while not self.ended:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), TICK_INTERVAL_S)
            if self._stopping.is_set():
                return
            events = self.session.tick(time.time())
            await self._settle()
            await handle(events)

    async def _settle(self) -> None:
        """Write what the session queued; close the WebSocket once the session ended it."""
        await self.write(self.session.data_to_send())
        code = self.session.close_code
        if code is not None and not self._socket_closed:
            self._socket_closed = True
            await self.connection.close(code, self.session.close_reason)
