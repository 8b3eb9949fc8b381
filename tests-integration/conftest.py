"""Shared fixtures of the integration suite.

The loopback tests are plain synchronous tests that drive one event loop each through the
``run`` fixture (``asyncio.run`` under ``asyncio.wait_for``), so every scenario has a hard time
bound and needs no pytest plugin. Everything listens on 127.0.0.1 only, on ephemeral ports.

The packaging tests build the distributions once per session (``built`` fixture) and install
them into clean virtual environments, from uv's cache where it can (``--offline``): the
workspace's own ``uv sync`` filled it with the build backend and every dependency. uv's offline
resolver also needs a package's cached index page, which ``uv sync --frozen`` does not fetch, so
an install the cache cannot serve is retried once with the registry.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
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


# Packaging: the distributions as users install them.

ROOT = Path(__file__).resolve().parent.parent
VERSION = (ROOT / "VERSION").read_text(encoding="utf-8").strip()
DISTRIBUTIONS = {
    "worker": "juniper-cascor-protocol-worker",
    "envelope": "juniper-cascor-protocol-envelope",
    "meta": "juniper-cascor-protocol",
    "cli": "juniper-cascor-protocol-cli",
}
LIBRARY = ("worker", "envelope", "meta")
"""What a server, client or dashboard installs: the meta-package and its parts, not the tool."""


def run_command(*args: str | Path, cwd: Path | None = None) -> str:
    """Run ``args``, fail the test with its output unless it succeeds, return its stdout."""
    completed = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=cwd, check=False
    )
    assert completed.returncode == 0, (
        f"{' '.join(map(str, args))} failed:\n{completed.stdout}\n{completed.stderr}"
    )
    return completed.stdout


def uv(*args: str | Path) -> str:
    """``uv`` from its cache alone if it can; else once more, with the registry."""
    command = [sys.executable, "-m", "uv", *map(str, args)]
    offline = subprocess.run(
        [*command[:3], "--offline", *command[3:]], capture_output=True, text=True, check=False
    )
    if offline.returncode == 0:
        return offline.stdout
    return run_command(*command)


@dataclass(frozen=True)
class Venv:
    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def python_result(self, code: str) -> subprocess.CompletedProcess[str]:
        # Run outside the repository so nothing from the source tree can be imported by accident.
        return subprocess.run(
            [str(self.python), "-I", "-c", code],
            capture_output=True,
            text=True,
            cwd=self.path,
            check=False,
        )

    def run_python(self, code: str) -> str:
        completed = self.python_result(code)
        assert completed.returncode == 0, f"{code}\n--- stderr ---\n{completed.stderr}"
        return completed.stdout

    def install(self, *requirements: str | Path) -> None:
        """Install with uv, offline."""
        uv("pip", "install", "--python", self.python, *requirements)

    def pip(self, *args: str | Path) -> str:
        """Run the venv's own pip (see ``with_pip``), never contacting a registry."""
        return run_command(
            self.python, "-m", "pip", "--disable-pip-version-check", "--no-input", *args
        )

    def installed(self) -> set[str]:
        """Normalised names of the installed distributions."""
        listing = uv("pip", "freeze", "--python", self.python)
        return {line.split("==")[0].lower().replace("_", "-") for line in listing.split()}


VenvFactory = Callable[..., Venv]


@pytest.fixture(scope="session")
def venv_factory(tmp_path_factory: pytest.TempPathFactory) -> VenvFactory:
    """``venv_factory(label, with_pip=False)``: a clean venv of this test's interpreter.

    ``with_pip`` seeds pip from the standard library's bundled ``ensurepip``, so no registry is
    needed for it either.
    """

    def make(label: str, *, with_pip: bool = False) -> Venv:
        location = tmp_path_factory.mktemp(f"venv-{label}") / "venv"
        if with_pip:
            run_command(sys.executable, "-m", "venv", location)
        else:
            uv("venv", "--python", sys.executable, location)
        return Venv(location)

    return make


@dataclass(frozen=True)
class Built:
    """One distribution as it is published: its sdist, and the wheel built from that sdist."""

    sdist: Path
    wheel: Path


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    """Every distribution under ``packages/``, keyed ``worker``, ``envelope``, ``meta``, ``cli``."""
    out = tmp_path_factory.mktemp("dist")
    artifacts = {}
    for key, name in DISTRIBUTIONS.items():
        uv("build", "--out-dir", out / key, ROOT / "packages" / name)
        artifacts[key] = Built(
            sdist=next((out / key).glob("*.tar.gz")), wheel=next((out / key).glob("*.whl"))
        )
    return artifacts


@pytest.fixture(scope="session")
def wheels(built: dict[str, Built]) -> dict[str, Path]:
    return {key: artifacts.wheel for key, artifacts in built.items()}


@pytest.fixture(scope="session")
def distributions() -> dict[str, str]:
    """The distribution names, keyed like ``built``."""
    return dict(DISTRIBUTIONS)


@pytest.fixture(scope="session")
def worker_venv(venv_factory: VenvFactory, wheels: dict[str, Path]) -> Venv:
    """The slim worker image: the worker wheel alone."""
    venv = venv_factory("worker")
    venv.install(wheels["worker"])
    return venv


@pytest.fixture(scope="session")
def envelope_venv(venv_factory: VenvFactory, wheels: dict[str, Path]) -> Venv:
    """A JSON-only consumer: the envelope wheel alone."""
    venv = venv_factory("envelope")
    venv.install(wheels["envelope"])
    return venv


@pytest.fixture(scope="session")
def meta_venv(venv_factory: VenvFactory, wheels: dict[str, Path]) -> Venv:
    """Server, client or dashboard: the meta-package and its two parts, without the tool."""
    venv = venv_factory("meta")
    venv.install(*(wheels[key] for key in LIBRARY))
    return venv


@pytest.fixture(scope="session")
def cli_venv(venv_factory: VenvFactory, wheels: dict[str, Path]) -> Venv:
    """An operator's machine: ``pip install 'juniper-cascor-protocol[cli]'`` from the wheels."""
    venv = venv_factory("cli")
    links = [arg for wheel in wheels.values() for arg in ("--find-links", wheel.parent)]
    venv.install(*links, f"juniper-cascor-protocol[cli]=={VERSION}")
    return venv
