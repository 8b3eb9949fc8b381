"""A ``/ws/control`` client: a ``ControlClientSession`` on one connection, many requests in flight.

The session makes each request's ``command_id``, matches every response to its request by
that id alone (the server answers concurrently, in any order), times requests out, answers the
server's ``ping`` and checks its protocol version. The client only sends what the session
builds, feeds it each message with the monotonic time, wakes it at its ``next_deadline`` and
hands each outcome to the caller waiting for it.

:meth:`ControlClient.request_raw` sends text the session did not build (malformed JSON, a
request without ``command``...), for tests of the server: its answer is the next response
without a ``command_id`` (``UnsolicitedResponse``), or the unmatched one carrying the given id
(``UnknownResponse``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import Any, Final, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from juniper_cascor_protocol.demo.transport import connection_settings
from juniper_cascor_protocol.envelope.control import CommandResponseEnvelope
from juniper_cascor_protocol.envelope.control_session import (
    DEFAULT_COMMAND_TIMEOUT,
    CommandAbandoned,
    CommandAnswered,
    CommandTimedOut,
    ControlClientEvent,
    ControlClientSession,
    ControlClientStats,
    InvalidResponse,
    UnknownResponse,
    UnsolicitedResponse,
)
from juniper_cascor_protocol.envelope.session_events import (
    Established,
    IncompatibleVersion,
    PingReceived,
)

__all__ = ["ControlClient"]

_MAX_RESPONSE_BYTES: Final = 1 << 20

Outcome = CommandAnswered | InvalidResponse
T = TypeVar("T")


class ControlClient:
    """Sends ``/ws/control`` requests over one connection; use :meth:`connect`.

    Args:
        default_timeout: seconds a request waits for its response.
    """

    def __init__(
        self, connection: ClientConnection, *, default_timeout: float = DEFAULT_COMMAND_TIMEOUT
    ) -> None:
        self._connection = connection
        self.session: ControlClientSession = ControlClientSession(default_timeout=default_timeout)
        self.established: Established | None = None
        self.incompatible: IncompatibleVersion | None = None
        self._waiting: dict[str, asyncio.Future[Outcome]] = {}
        self._raw_by_id: dict[str, asyncio.Future[CommandResponseEnvelope]] = {}
        self._unsolicited: asyncio.Queue[CommandResponseEnvelope] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls, uri: str, *, default_timeout: float = DEFAULT_COMMAND_TIMEOUT
    ) -> AsyncIterator[ControlClient]:
        """Open ``uri``; close the connection and stop reading on exit."""
        async with connect(uri, **connection_settings(_MAX_RESPONSE_BYTES)) as connection:
            client = cls(connection, default_timeout=default_timeout)
            try:
                yield client
            finally:
                await connection.close()
                await client._reader

    @property
    def stats(self) -> ControlClientStats:
        return self.session.stats()

    async def request(
        self,
        command: str,
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> Outcome:
        """Send ``command`` and wait for its outcome: the response, or an invalid one.

        Raises:
            TimeoutError: no response before the request's deadline.
            ConnectionError: the connection closed before the response arrived.
            IncompatibleServerError, PendingLimitError: the session refused to issue it.
        """
        if self._reader.done():
            raise ConnectionError("control connection closed")
        issued = self.session.issue(command, params, now=time.monotonic(), timeout=timeout)
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting[issued.command_id] = future
        self._wake.set()  # a new deadline for the reader
        try:
            await self._send(issued.text)
            return await future
        finally:
            self._waiting.pop(issued.command_id, None)

    async def request_raw(
        self, text: str | bytes, command_id: str | None = None
    ) -> CommandResponseEnvelope:
        """Send ``text`` as is; wait for the response with ``command_id`` the session did not
        issue (with ``None``: the next response without one; keep one such request in flight).

        Raises:
            ConnectionError: the connection closed before the response arrived.
        """
        if command_id is None:
            await self._send(text)
            return await self._until_closed(self._unsolicited.get())
        future: asyncio.Future[CommandResponseEnvelope] = asyncio.get_running_loop().create_future()
        self._raw_by_id[command_id] = future
        try:
            await self._send(text)
            return await self._until_closed(future)
        finally:
            self._raw_by_id.pop(command_id, None)

    async def _send(self, text: str | bytes) -> None:
        try:
            await self._connection.send(text)
        except ConnectionClosed as closed:
            raise ConnectionError("control connection closed") from closed

    async def _until_closed(self, awaitable: Awaitable[T]) -> T:
        """``awaitable``'s result; ``ConnectionError`` if the connection ends first."""
        job = asyncio.ensure_future(awaitable)
        await asyncio.wait({job, self._reader}, return_when=asyncio.FIRST_COMPLETED)
        if job.done():
            return job.result()
        job.cancel()
        raise ConnectionError("control connection closed before the response arrived")

    async def _read(self) -> None:
        """Feed the session each message, and wake it at its ``next_deadline``."""
        received: asyncio.Future[str | bytes] | None = None
        woken: asyncio.Future[Any] | None = None
        try:
            while True:
                if received is None:
                    received = asyncio.ensure_future(self._connection.recv())
                if woken is None:
                    woken = asyncio.ensure_future(self._wake.wait())
                deadline = self.session.next_deadline
                await asyncio.wait(
                    {received, woken},
                    timeout=None if deadline is None else max(0.0, deadline - time.monotonic()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                events: list[ControlClientEvent] = list(self.session.expire(now=time.monotonic()))
                if woken.done():
                    self._wake.clear()
                    woken = None
                if received.done():
                    message, received = received.result(), None
                    events += self.session.receive(message, now=time.monotonic())
                for event in events:
                    await self._dispatch(event)
        except ConnectionClosed:
            pass
        finally:
            for job in (received, woken):
                if job is not None:
                    job.cancel()
            for abandoned in self.session.connection_lost():
                await self._dispatch(abandoned)
            self._fail_raw()

    async def _dispatch(self, event: ControlClientEvent | CommandAbandoned) -> None:
        if isinstance(event, CommandAnswered | InvalidResponse):
            self._settle(event.request.command_id, event)
        elif isinstance(event, CommandTimedOut):
            error = TimeoutError(f"no response to {event.request.command!r} in time")
            self._fail(event.request.command_id, error)
        elif isinstance(event, CommandAbandoned):
            self._fail(event.request.command_id, ConnectionError("control connection closed"))
        elif isinstance(event, UnsolicitedResponse):
            self._unsolicited.put_nowait(event.response)
        elif isinstance(event, UnknownResponse):
            command_id = event.response.data.command_id or ""
            raw = self._raw_by_id.get(command_id)
            if raw is not None and not raw.done():
                raw.set_result(event.response)
        elif isinstance(event, PingReceived):
            with contextlib.suppress(ConnectionClosed):
                await self._connection.send(event.reply)
        elif isinstance(event, Established):
            self.established = event
        elif isinstance(event, IncompatibleVersion):
            self.incompatible = event

    def _settle(self, command_id: str, outcome: Outcome) -> None:
        future = self._waiting.get(command_id)
        if future is not None and not future.done():
            future.set_result(outcome)

    def _fail(self, command_id: str, error: Exception) -> None:
        future = self._waiting.get(command_id)
        if future is not None and not future.done():
            future.set_exception(error)

    def _fail_raw(self) -> None:
        for future in self._raw_by_id.values():
            if not future.done():
                future.set_exception(ConnectionError("control connection closed"))
