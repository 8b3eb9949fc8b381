"""The server side of ``/ws/control``: a ``ControlServerSession`` per connection, and the
(simulated) training state the commands change.

The session reads each request into a typed command of a known name, or into the error
response to send (``malformed_json``, ``invalid_command``, ``unknown_command``), and builds
every response, echoing the request's ``command_id``. The service applies the commands.
Requests on one connection are answered concurrently, each by its own task, so responses may
come back in any order. Answers:

=============================  ========  ===================================================
request                        status    ``code``
=============================  ========  ===================================================
known command, valid params    success   —  (``result``: ``{"state", "params"}``)
not JSON                       error     ``malformed_json``
JSON, not a valid request      error     ``invalid_command`` (e.g. not an object, no command)
unknown command name           error     ``unknown_command``
known command, bad ``params``  error     ``invalid_params`` (``error`` names field and limit)
=============================  ========  ===================================================

``set_params`` takes the fields of :class:`TrainingParams`, each optional, none other; the other
commands take no params. State transitions always succeed: ``start``/``resume`` → running,
``pause`` → paused, ``stop`` → stopped, ``reset`` → stopped with the default params.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from juniper_cascor_protocol.envelope.control import (
    CommandStatus,
    ControlCommand,
    ControlCommandName,
)
from juniper_cascor_protocol.envelope.control_session import (
    CommandReceived,
    ControlServerSession,
    RequestRejected,
)
from juniper_cascor_protocol.envelope.errors import describe_validation_error

__all__ = [
    "INVALID_PARAMS_CODE",
    "ControlService",
    "TrainingParams",
]

INVALID_PARAMS_CODE: Final = "invalid_params"
_MAX_REPORTED_ERRORS: Final = 8

StateListener = Callable[[dict[str, Any]], Awaitable[None]]


class TrainingParams(BaseModel):
    """The parameters ``set_params`` may change; unknown names are refused."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="forbid", strict=True)

    learning_rate: float = Field(default=0.01, gt=0, le=10)
    max_hidden_units: int = Field(default=16, ge=0, le=10_000)
    candidate_pool_size: int = Field(default=8, ge=1, le=1024)
    patience: int = Field(default=8, ge=1, le=10_000)


_STATE_AFTER: Final = {
    ControlCommandName.START: "running",
    ControlCommandName.RESUME: "running",
    ControlCommandName.PAUSE: "paused",
    ControlCommandName.STOP: "stopped",
    ControlCommandName.RESET: "stopped",
}


class ControlService:
    """Answers ``/ws/control`` requests and keeps the (simulated) training state.

    ``on_state_change`` is awaited with ``{"state", "params", "command"}`` after every
    successful command, before its response is sent (the demo broadcasts it as a ``state``
    frame on ``/ws/training``).
    """

    def __init__(
        self,
        *,
        server_version: str | None = None,
        on_state_change: StateListener | None = None,
    ) -> None:
        self._server_version = server_version
        self._on_state_change = on_state_change
        self.state: str = "stopped"
        self.params: TrainingParams = TrainingParams()
        self.responses: Counter[str] = Counter()
        """Responses sent, by ``code`` (``"success"`` for successful commands)."""

    async def serve(self, connection: ServerConnection) -> None:
        """Handle one ``/ws/control`` connection until it closes."""
        session = ControlServerSession(server_version=self._server_version)
        with contextlib.suppress(ConnectionClosed):
            await connection.send(session.greeting(now=time.time()))
        async with asyncio.TaskGroup() as answers:
            with contextlib.suppress(ConnectionClosed):
                async for message in connection:
                    event = session.receive(message, now=time.time())
                    if isinstance(event, CommandReceived):
                        answers.create_task(self._answer(connection, session, event))
                    elif isinstance(event, RequestRejected):
                        await self._send(connection, event.reply, event.code)

    async def _answer(
        self, connection: ServerConnection, session: ControlServerSession, event: CommandReceived
    ) -> None:
        request, name = event.command, event.name
        error = self._apply(name, request)
        if error is not None:
            reply = session.respond(
                request, CommandStatus.ERROR, now=time.time(), error=error, code=INVALID_PARAMS_CODE
            )
            await self._send(connection, reply, INVALID_PARAMS_CODE)
            return
        snapshot = {"state": self.state, "params": self.params.model_dump()}
        if self._on_state_change is not None:
            await self._on_state_change({**snapshot, "command": name.value})
        reply = session.respond(request, CommandStatus.SUCCESS, now=time.time(), result=snapshot)
        await self._send(connection, reply, CommandStatus.SUCCESS.value)

    async def _send(self, connection: ServerConnection, reply: str, code: str) -> None:
        self.responses[code] += 1
        # A client that leaves before its answer must not take the other answers down with it.
        with contextlib.suppress(ConnectionClosed):
            await connection.send(reply)

    def _apply(self, name: ControlCommandName, request: ControlCommand) -> str | None:
        """Change the state for ``request``; return an error message instead if params are bad."""
        if name is ControlCommandName.SET_PARAMS:
            try:
                update = TrainingParams.model_validate(request.params)
            except ValidationError as failure:
                return "; ".join(
                    describe_validation_error(failure, prefix="params.", limit=_MAX_REPORTED_ERRORS)
                )
            merged = self.params.model_dump() | update.model_dump(exclude_unset=True)
            self.params = TrainingParams.model_validate(merged)
            return None
        if request.params:
            return f"params: {name.value} takes no params, got {sorted(request.params)[:8]}"
        self.state = _STATE_AFTER[name]
        if name is ControlCommandName.RESET:
            self.params = TrainingParams()
        return None
