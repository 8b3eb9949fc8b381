"""Shared fixtures of the integration suite.

The loopback tests are plain synchronous tests that drive one event loop each through the
``run`` fixture (``asyncio.run`` under ``asyncio.wait_for``), so every scenario has a hard time
bound and needs no pytest plugin. Everything listens on 127.0.0.1 only, on ephemeral ports.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import pytest

T = TypeVar("T")
Runner = Callable[..., Any]

DEFAULT_TIMEOUT_S = 60.0


@pytest.fixture
def run() -> Runner:
    """``run(coroutine, timeout=60.0)``: run it in a fresh event loop, failing past ``timeout``."""

    def runner(coroutine: Coroutine[Any, Any, T], timeout: float = DEFAULT_TIMEOUT_S) -> T:
        return asyncio.run(asyncio.wait_for(coroutine, timeout))

    return runner


@pytest.fixture
def fresh_labels() -> Iterator[None]:
    """Give the test a fresh unknown-``type`` label budget, and leave one behind it too."""
    from juniper_cascor_protocol.envelope.labels import reset_unknown_label_state

    reset_unknown_label_state()
    yield
    reset_unknown_label_state()


class ScriptedPeer:
    """A hostile (or merely scripted) WebSocket server on 127.0.0.1 for testing consumers.

    Every connection, on any path, receives ``script`` — each item sent as one message, ``str``
    as text and ``bytes`` as binary. Then the server closes the connection normally or, with
    ``drain=True``, keeps reading (into :attr:`received`) until the client closes it.
    """

    def __init__(
        self, script: Sequence[str | bytes], *, max_size: int = 2**20, drain: bool = False
    ) -> None:
        self._script = script
        self._max_size = max_size
        self._drain = drain
        self._server: Any = None
        self.received: list[str | bytes] = []

    @property
    def url(self) -> str:
        port = self._server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}/ws/training"

    async def _handler(self, connection: Any) -> None:
        for message in self._script:
            await connection.send(message)
        if self._drain:
            async for message in connection:
                self.received.append(message)
        await connection.close()

    async def __aenter__(self) -> Self:
        from websockets.asyncio.server import serve

        self._server = await serve(
            self._handler, "127.0.0.1", 0, compression=None, max_size=self._max_size
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.close()
        await self._server.wait_closed()


@pytest.fixture
def scripted_peer() -> type[ScriptedPeer]:
    """The :class:`ScriptedPeer` class: ``async with scripted_peer(messages) as peer: ...``."""
    return ScriptedPeer
