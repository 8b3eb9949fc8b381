"""Test matrix of the juniper-cascor-protocol workspace.

`nox` runs every default session; `nox -s bench` runs the benchmarks, `nox -s fuzz` the
fuzzer, `nox -s asyncapi` the official AsyncAPI parser over the AsyncAPI document. Sessions
build their virtual environments with uv from `uv.lock`, then override the one dependency a
matrix axis varies (numpy for the worker, Pydantic for the envelope).

Interpreters are never downloaded: each Python of the matrix must be on PATH or installed by
pyenv, whose version folders are added to PATH here so a fresh machine finds them.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import nox
from packaging.requirements import Requirement

ROOT = Path(__file__).parent
PACKAGES = ROOT / "packages"
ENVELOPE = PACKAGES / "juniper-cascor-protocol-envelope"
WORKER = PACKAGES / "juniper-cascor-protocol-worker"
META = PACKAGES / "juniper-cascor-protocol"
CLI = PACKAGES / "juniper-cascor-protocol-cli"

PYTHONS = ["3.11", "3.12", "3.13"]
# numpy 1.26 publishes no wheels for Python 3.13.
NUMPY_1_PYTHONS = ["3.11", "3.12"]

PYRIGHT = "pyright[nodejs]==1.1.414"
"""pyright for `typecheck`'s type-completeness check, with a Node.js wheel from PyPI so that
nothing is fetched when it runs; pinned, so that a newer, stricter pyright is adopted on purpose."""

ASYNCAPI_PARSER = CLI / "tests" / "asyncapi-parser"
"""The official AsyncAPI parser for `asyncapi`: package.json pins `@asyncapi/parser`,
package-lock.json every package under it (with integrity hashes); parse.mjs runs it."""

TYPE_VERIFIED_MODULES = (
    "juniper_cascor_protocol",
    "juniper_cascor_protocol.envelope",
    "juniper_cascor_protocol.worker",
)
"""What consumers type-check against: each, with all its public submodules, must be complete."""

nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = [
    "lint",
    "typecheck",
    "tests_worker",
    "tests_envelope",
    "tests_cli",
    "integration",
]

os.environ["UV_PYTHON_DOWNLOADS"] = "never"
os.environ["UV_PYTHON_PREFERENCE"] = "only-system"


def _put_pyenv_pythons_on_path() -> None:
    """Make `python3.X` of every matrix version findable when only pyenv has it.

    pyenv's shims are no help: a shim for a version that is installed but not selected
    fails when run, so each version's own `bin` folder goes on PATH instead.
    """
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    shims = pyenv_root / "shims"
    extra = []
    for version in PYTHONS:
        on_path = shutil.which(f"python{version}")
        if on_path and Path(on_path).parent != shims:
            continue
        found = sorted(glob.glob(str(pyenv_root / "versions" / f"{version}.*" / "bin")))
        if found:
            extra.append(found[-1])
    if extra:
        os.environ["PATH"] = os.pathsep.join([*extra, os.environ.get("PATH", "")])


_put_pyenv_pythons_on_path()


def _declared_floor(package: Path, distribution: str) -> str:
    """The lowest version of `distribution` that `package` declares it supports."""
    project = tomllib.loads((package / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for line in project["dependencies"]:
        requirement = Requirement(line)
        if requirement.name == distribution:
            for spec in requirement.specifier:
                if spec.operator == ">=":
                    return spec.version
    raise LookupError(f"{package.name} declares no lower bound for {distribution}")


def _sync(session: nox.Session, *extra: str) -> None:
    """Install the locked workspace (every package, editable) and the dev tools into the
    session's venv: the workspace's default group is only the command-line tool's."""
    session.run_install(
        "uv",
        "sync",
        "--frozen",
        "--all-packages",
        "--group",
        "dev",
        *extra,
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
        silent=True,
    )


def _pytest(session: nox.Session, *paths: Path) -> None:
    session.run("pytest", *(str(p) for p in paths), *session.posargs)


@nox.session(python=PYTHONS[0])
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    _sync(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHONS[0])
def typecheck(session: nox.Session) -> None:
    """mypy --strict over every package's sources and build hooks, the tests, the benchmarks and
    the noxfile; then pyright --verifytypes over the built wheels, as consumers see them."""
    _sync(session)
    session.run(
        "mypy",
        str(ENVELOPE / "src"),
        str(WORKER / "src"),
        str(CLI / "src"),
        "noxfile.py",
        "conftest.py",
    )
    # Each test folder has its own conftest module, so each is checked on its own; so is the
    # meta wheel's upgrade guard, a second `juniper_cascor_protocol` by design.
    for folder in (
        ENVELOPE / "tests",
        WORKER / "tests",
        CLI / "tests",
        META / "upgrade_guard",
        "tests-integration",
    ):
        session.run("mypy", str(folder))
    session.run("mypy", "benchmarks")
    session.run("mypy", "fuzz")
    # The build hooks import hatchling, which the workspace does not install; each package has
    # its own hatch_build.py, so each is a module of that name and is checked on its own.
    session.install("hatchling>=1.21")
    for package in (ENVELOPE, WORKER, META, CLI):
        session.run("mypy", str(package / "hatch_build.py"))
    _verify_types(session)


def _verify_types(session: nox.Session) -> None:
    """`pyright --verifytypes` of every module in TYPE_VERIFIED_MODULES, from the built wheels.

    Each must score 100% (no exported symbol of unknown or ambiguous type) and document every
    public class and function. The wheels go into a fresh venv: against the workspace's
    editable install pyright finds no `py.typed`.
    """
    with tempfile.TemporaryDirectory(prefix="verifytypes-") as scratch:
        wheels, venv, empty = (Path(scratch) / name for name in ("wheels", "venv", "empty"))
        empty.mkdir()
        for package in (ENVELOPE, WORKER, META, CLI):
            session.run("uv", "build", "--quiet", "--wheel", "--out-dir", str(wheels), str(package))
        interpreter = shutil.which("python", path=session.bin) or f"python{PYTHONS[0]}"
        session.run("uv", "venv", "--quiet", "--python", interpreter, str(venv))
        bin_dir = venv / ("Scripts" if sys.platform == "win32" else "bin")
        built = sorted(str(wheel) for wheel in wheels.glob("*.whl"))
        session.run("uv", "pip", "install", "--quiet", "--python", str(venv), *built, PYRIGHT)
        pyright = shutil.which("pyright", path=str(bin_dir))
        if pyright is None:
            session.error(f"{PYRIGHT} installed no pyright command in {bin_dir}")
        environment = {
            **os.environ,
            # pyright reads the packages of the first `python` on PATH (it ignores --pythonpath
            # with --verifytypes), and nox would put the session's own first: hence not
            # session.run.
            "PATH": os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")]),
            "VIRTUAL_ENV": str(venv),
            "PYRIGHT_PYTHON_IGNORE_WARNINGS": "1",  # no look-up of pyright's latest release
            "PYRIGHT_PYTHON_GLOBAL_NODE": "0",  # the Node.js wheel, whatever node is installed
        }
        problems: list[str] = []
        for module in TYPE_VERIFIED_MODULES:
            command = [pyright, "--verifytypes", module, "--ignoreexternal", "--outputjson"]
            session.log(" ".join(["pyright", *command[1:]]))
            run = subprocess.run(
                command, cwd=empty, env=environment, capture_output=True, text=True, check=False
            )
            problems += _incomplete_types(module, run)
    if problems:
        session.error("type completeness (pyright --verifytypes):\n" + "\n".join(problems))


def _incomplete_types(module: str, run: subprocess.CompletedProcess[str]) -> list[str]:
    """Every problem of one `pyright --verifytypes --outputjson` run, one line each."""
    try:
        report: dict[str, Any] = json.loads(run.stdout)
        completeness: dict[str, Any] = report["typeCompleteness"]
    except (ValueError, KeyError):
        return [f"{module}: pyright exited {run.returncode} without a report: {run.stderr}"]
    problems = [
        f"{module}: {diagnostic['message']}"
        for diagnostic in report.get("generalDiagnostics", [])
        if diagnostic["severity"] != "information"
    ]
    problems += [
        f"{module}: {symbol['name']}: {diagnostic['message']}"
        for symbol in completeness["symbols"]
        for diagnostic in symbol["diagnostics"]
        if diagnostic["severity"] != "information"
    ]
    if run.returncode != 0 and not problems:
        problems.append(f"{module}: pyright exited {run.returncode}: {run.stderr}")
    return problems


@nox.session
@nox.parametrize(
    ("python", "numpy"),
    [(py, "latest") for py in PYTHONS] + [(py, "1.26") for py in NUMPY_1_PYTHONS],
)
def tests_worker(session: nox.Session, numpy: str) -> None:
    """The worker distribution against numpy 1.26 and the latest numpy."""
    _sync(session)
    if numpy != "latest":
        session.install(f"numpy=={numpy}.*")
    session.run("python", "-c", "import numpy; print('numpy', numpy.__version__)")
    _pytest(session, WORKER / "tests")


@nox.session
@nox.parametrize(
    ("python", "pydantic"),
    [(py, "latest") for py in PYTHONS] + [(PYTHONS[0], "lowest")],
)
def tests_envelope(session: nox.Session, pydantic: str) -> None:
    """The envelope distribution against its lowest supported Pydantic and the latest."""
    _sync(session)
    if pydantic == "lowest":
        session.install(f"pydantic=={_declared_floor(ENVELOPE, 'pydantic')}")
    session.run("python", "-c", "import pydantic; print('pydantic', pydantic.VERSION)")
    _pytest(session, ENVELOPE / "tests")


@nox.session(python=PYTHONS)
def tests_cli(session: nox.Session) -> None:
    """The command-line tool's distribution: its commands, the JSON Schemas, the demo engine."""
    _sync(session)
    _pytest(session, CLI / "tests")


@nox.session(python=PYTHONS[0])
def integration(session: nox.Session) -> None:
    """Built wheels in clean venvs, and real WebSocket traffic over loopback."""
    _sync(session)
    _pytest(session, ROOT / "tests-integration")


@nox.session(python=PYTHONS[0])
def bench(session: nox.Session) -> None:
    """Benchmarks: every figure printed as a ratio to a floor measured in the same run."""
    _sync(session)
    # The envelope benchmark's frontier; bench-only, so not in the dev group.
    session.install("msgspec")
    session.run(
        "pytest",
        str(ROOT / "benchmarks"),
        "--benchmark-columns=min,median,mean,rounds",
        "--benchmark-sort=name",
        *session.posargs,
    )


@nox.session(python=PYTHONS[0])
def fuzz(session: nox.Session) -> None:
    """Coverage-guided fuzzing (atheris) of every function that reads a peer's bytes: 15 s per
    target by default; `nox -s fuzz -- --seconds 600 --parallel 2` runs longer (fuzz/README.md).

    Not a default session: atheris publishes wheels for Linux x86_64 only, and a timed run is
    not reproducible; every finding is locked by a regression test in the default run instead.
    """
    _sync(session)
    # Only wheels: building atheris needs clang and a libFuzzer of its own.
    session.install("--only-binary=atheris", "atheris>=2.3")
    session.run("python", "-m", "fuzz.run", *session.posargs)


@nox.session(python=PYTHONS[0])
def asyncapi(session: nox.Session) -> None:
    """The AsyncAPI document, generated afresh and as committed in schemas/, through the official
    AsyncAPI parser on Node.js: any error-severity diagnostic fails the session.

    Not a default session: it needs node and npm, and fetches the pinned parser from the npm
    registry once (into nox's cache folder; again only when the lock file changes). A machine
    without node skips it, saying so.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        session.skip("needs Node.js: node and npm on PATH; the AsyncAPI document was not checked")
    _sync(session)
    parser = Path(session.cache_dir) / "asyncapi-parser"
    cached_lock = parser / "package-lock.json"
    lock = (ASYNCAPI_PARSER / "package-lock.json").read_bytes()
    installed = parser / "node_modules" / ".package-lock.json"
    if not (installed.is_file() and cached_lock.is_file() and cached_lock.read_bytes() == lock):
        shutil.rmtree(parser, ignore_errors=True)
        parser.mkdir(parents=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(ASYNCAPI_PARSER / name, parser / name)
        # --ignore-scripts: nothing from the registry runs at install time.
        session.run(
            npm,
            "ci",
            "--prefix",
            str(parser),
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            external=True,
        )
    # An ES module resolves its imports from its own folder: it runs beside node_modules.
    shutil.copyfile(ASYNCAPI_PARSER / "parse.mjs", parser / "parse.mjs")
    with tempfile.TemporaryDirectory(prefix="asyncapi-") as scratch:
        session.run("juniper-cascor-protocol", "schema", "--asyncapi", "--out", scratch)
        session.run(
            node,
            str(parser / "parse.mjs"),
            str(Path(scratch) / "asyncapi.json"),
            os.path.relpath(ROOT / "schemas" / "asyncapi.json"),
            external=True,
        )
