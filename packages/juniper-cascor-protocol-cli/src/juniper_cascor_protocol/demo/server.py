"""A loopback server speaking the three endpoints of juniper-cascor through this package's sessions.

``/ws/training`` → :class:`TrainingHub`, ``/ws/control`` → :class:`ControlService`,
``/ws/v1/workers`` → :class:`WorkerHub`; any other path is refused at the handshake with HTTP
404. The server binds ``127.0.0.1`` only, on an ephemeral port unless one is given, ends every
worker session with ``NO_MORE_WORK`` (4010) and closes every connection when its ``async with``
block ends.
"""

from __future__ import annotations

import http
from types import TracebackType
from typing import Final, Self

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from juniper_cascor_protocol.demo.control_service import ControlService
from juniper_cascor_protocol.demo.options import LOOPBACK_HOST, SERVER_VERSION
from juniper_cascor_protocol.demo.training_hub import TrainingHub
from juniper_cascor_protocol.demo.transport import connection_settings
from juniper_cascor_protocol.demo.worker_hub import WorkerHub
from juniper_cascor_protocol.envelope.chunking import DEFAULT_MAX_FRAME_BYTES, Chunker
from juniper_cascor_protocol.envelope.training import StateEnvelope
from juniper_cascor_protocol.envelope.training_session import TrainingProducerSession

__all__ = ["CONTROL_PATH", "TRAINING_PATH", "WORKERS_PATH", "LoopbackServer"]

TRAINING_PATH: Final = "/ws/training"
CONTROL_PATH: Final = "/ws/control"
WORKERS_PATH: Final = "/ws/v1/workers"


class LoopbackServer:
    """``async with LoopbackServer() as server:`` serves until the block ends.

    Args:
        port: the TCP port on 127.0.0.1; 0 (the default) picks a free one, see :attr:`port`.
        max_frame_bytes: the chunker's budget for one ``/ws/training`` text frame; larger
            broadcasts go out as ``chunked_message`` frames.
        workers: the ``/ws/v1/workers`` hub (default: one with the sessions' defaults).
    """

    def __init__(
        self,
        *,
        port: int = 0,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        workers: WorkerHub | None = None,
    ) -> None:
        producer = TrainingProducerSession(
            chunker=Chunker(max_frame_bytes), server_version=SERVER_VERSION
        )
        self.training: TrainingHub = TrainingHub(producer)
        self.control: ControlService = ControlService(
            server_version=SERVER_VERSION, on_state_change=self._publish_state
        )
        self.workers: WorkerHub = workers if workers is not None else WorkerHub()
        self._requested_port = port
        self._server: Server | None = None

    @property
    def port(self) -> int:
        """The port actually bound (known once the server has started)."""
        if self._server is None:
            raise RuntimeError("LoopbackServer.port is known only inside `async with`")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def url(self, path: str) -> str:
        """The ``ws://`` URL of ``path`` on this server."""
        return f"ws://{LOOPBACK_HOST}:{self.port}{path}"

    async def __aenter__(self) -> Self:
        self._server = await serve(
            self._route,
            LOOPBACK_HOST,
            self._requested_port,
            process_request=_refuse_unknown_paths,
            **connection_settings(),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.workers.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _route(self, connection: ServerConnection) -> None:
        path = _path(connection.request)
        if path == TRAINING_PATH:
            await self.training.serve(connection)
        elif path == CONTROL_PATH:
            await self.control.serve(connection)
        else:
            await self.workers.serve(connection)

    async def _publish_state(self, state: dict[str, object]) -> None:
        await self.training.broadcast(StateEnvelope, state)


def _path(request: Request | None) -> str:
    return "" if request is None else request.path.partition("?")[0]


def _refuse_unknown_paths(connection: ServerConnection, request: Request) -> Response | None:
    if _path(request) in (TRAINING_PATH, CONTROL_PATH, WORKERS_PATH):
        return None
    return connection.respond(http.HTTPStatus.NOT_FOUND, "unknown path\n")
