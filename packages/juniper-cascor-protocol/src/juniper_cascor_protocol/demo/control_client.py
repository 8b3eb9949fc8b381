"""A ``/ws/control`` client that keeps many requests in flight and matches each answer by id.

Responses are matched to requests by ``command_id`` alone, never by arrival order, because the
server answers concurrently. A response that carries no ``command_id`` (the answer to a
request too broken to have one) goes to a queue read by :meth:`ControlClient.request_raw`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Final

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from juniper_cascor_protocol.demo.transport import connection_settings
from juniper_cascor_protocol.envelope.base import BaseEnvelope
from juniper_cascor_protocol.envelope.control import (
    CommandResponseEnvelope,
    ConnectionEstablishedEnvelope,
    ControlCommand,
)
from juniper_cascor_protocol.envelope.validate import validate_envelope_json

__all__ = ["ControlClient"]

_MAX_RESPONSE_BYTES: Final = 1 << 20


class ControlClient:
    """Sends ``/ws/control`` requests over one connection; use :meth:`connect`."""

    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection
        self._pending: dict[str, asyncio.Future[CommandResponseEnvelope]] = {}
        self._uncorrelated: asyncio.Queue[CommandResponseEnvelope] = asyncio.Queue()
        self.established: ConnectionEstablishedEnvelope | None = None
        self.unexpected: Counter[str] = Counter()
        """Frames that were neither a response nor ``connection_established``, by ``type``."""
        self._reader = asyncio.create_task(self._read())

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, uri: str) -> AsyncIterator[ControlClient]:
        """Open ``uri``; close the connection and stop reading on exit."""
        async with connect(uri, **connection_settings(_MAX_RESPONSE_BYTES)) as connection:
            client = cls(connection)
            try:
                yield client
            finally:
                await connection.close()
                await client._reader

    async def request(self, command: ControlCommand) -> CommandResponseEnvelope:
        """Send ``command`` and wait for the response carrying its ``command_id``.

        Raises:
            ConnectionError: the connection closed before the response arrived.
        """
        return await self.request_raw(command.to_wire_json(), command.command_id)

    async def request_raw(
        self, text: str | bytes, command_id: str | None = None
    ) -> CommandResponseEnvelope:
        """Send ``text`` as is; wait for the response with ``command_id``.

        With ``command_id=None`` (a request that has none, e.g. malformed JSON) the next
        response without a ``command_id`` is returned; keep at most one such request in flight.

        Raises:
            ConnectionError: the connection closed before the response arrived.
        """
        if command_id is None:
            await self._connection.send(text)
            return await self._next_uncorrelated()
        if command_id in self._pending:
            raise ValueError(f"command_id {command_id!r} is already in flight")
        future: asyncio.Future[CommandResponseEnvelope] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = future
        try:
            await self._connection.send(text)
            return await future
        finally:
            self._pending.pop(command_id, None)

    async def _next_uncorrelated(self) -> CommandResponseEnvelope:
        getter = asyncio.ensure_future(self._uncorrelated.get())
        done, _ = await asyncio.wait({getter, self._reader}, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            return getter.result()
        getter.cancel()
        raise ConnectionError("control connection closed before the response arrived")

    async def _read(self) -> None:
        try:
            async for message in self._connection:
                self._dispatch(validate_envelope_json(message))
        except ConnectionClosed:
            pass
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(
                        ConnectionError("control connection closed before the response arrived")
                    )

    def _dispatch(self, envelope: BaseEnvelope) -> None:
        if isinstance(envelope, CommandResponseEnvelope):
            command_id = envelope.data.command_id
            future = self._pending.get(command_id) if command_id is not None else None
            if future is not None and not future.done():
                future.set_result(envelope)
            elif command_id is None:
                self._uncorrelated.put_nowait(envelope)
            else:
                self.unexpected["command_response"] += 1
        elif isinstance(envelope, ConnectionEstablishedEnvelope):
            self.established = envelope
        else:
            self.unexpected[envelope.type] += 1
