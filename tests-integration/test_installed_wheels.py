"""The three wheels as users install them: each built, then installed into its own clean venv.

This is the proof that the slim worker image never installs Pydantic (and the envelope image
never numpy): not an import test in the development environment, where everything is present.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VERSION = (ROOT / "VERSION").read_text(encoding="utf-8").strip()
DISTRIBUTIONS = {
    "worker": "juniper-cascor-protocol-worker",
    "envelope": "juniper-cascor-protocol-envelope",
    "meta": "juniper-cascor-protocol",
}


def _run(*args: str | Path, cwd: Path | None = None) -> str:
    completed = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=cwd, check=False
    )
    assert completed.returncode == 0, (
        f"{' '.join(map(str, args))} failed:\n{completed.stdout}\n{completed.stderr}"
    )
    return completed.stdout


@dataclass(frozen=True)
class Venv:
    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def run_python(self, code: str) -> str:
        # Run outside the repository so nothing from the source tree can be imported by accident.
        return _run(self.python, "-I", "-c", code, cwd=self.path)

    def pip_list(self) -> set[str]:
        listing = json.loads(_run(self.python, "-m", "pip", "list", "--format=json"))
        return {entry["name"].lower().replace("_", "-") for entry in listing}


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    for key, name in DISTRIBUTIONS.items():
        _run(
            sys.executable,
            "-m",
            "uv",
            "build",
            "--wheel",
            "--out-dir",
            out / key,
            ROOT / "packages" / name,
        )
    built = {key: next((out / key).glob("*.whl")) for key in DISTRIBUTIONS}
    return built


def _clean_venv(tmp_path_factory: pytest.TempPathFactory, label: str, *wheel_files: Path) -> Venv:
    location = tmp_path_factory.mktemp(f"venv-{label}") / "venv"
    # --seed puts pip in the venv, so `pip list` below is pip's own view of what got installed.
    _run(sys.executable, "-m", "uv", "venv", "--seed", "--python", sys.executable, location)
    venv = Venv(location)
    _run(sys.executable, "-m", "uv", "pip", "install", "--python", venv.python, *wheel_files)
    return venv


@pytest.fixture(scope="session")
def worker_venv(tmp_path_factory: pytest.TempPathFactory, wheels: dict[str, Path]) -> Venv:
    return _clean_venv(tmp_path_factory, "worker", wheels["worker"])


@pytest.fixture(scope="session")
def envelope_venv(tmp_path_factory: pytest.TempPathFactory, wheels: dict[str, Path]) -> Venv:
    return _clean_venv(tmp_path_factory, "envelope", wheels["envelope"])


@pytest.fixture(scope="session")
def meta_venv(tmp_path_factory: pytest.TempPathFactory, wheels: dict[str, Path]) -> Venv:
    return _clean_venv(tmp_path_factory, "meta", *wheels.values())


def _metadata(wheel: Path) -> tuple[str, list[str]]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(archive.read(name).decode("utf-8"))
    return message["Version"], sorted(message.get_all("Requires-Dist") or [])


def _files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_worker_wheel_alone_installs_numpy_and_never_pydantic(worker_venv: Venv) -> None:
    installed = worker_venv.pip_list()
    assert "juniper-cascor-protocol-worker" in installed
    assert "numpy" in installed
    assert "pydantic" not in installed
    assert "pydantic-core" not in installed
    out = worker_venv.run_python(
        "import sys\n"
        "import numpy as np\n"
        "from juniper_cascor_protocol.worker import BinaryFrame, WorkerMessageType\n"
        "a = np.arange(6, dtype='float32').reshape(2, 3)\n"
        "assert (BinaryFrame.decode(BinaryFrame.encode(a)) == a).all()\n"
        "assert WorkerMessageType.REGISTER == 'register'\n"
        "print('pydantic' in sys.modules)\n"
    )
    assert out.strip() == "False"


def test_worker_wheel_alone_has_no_envelope_or_meta(worker_venv: Venv) -> None:
    out = worker_venv.run_python(
        "import importlib.util as u\n"
        "print(u.find_spec('juniper_cascor_protocol.envelope') is None)\n"
        "import juniper_cascor_protocol\n"
        "print(getattr(juniper_cascor_protocol, '__file__', None) is None)\n"
    )
    # Without the meta-package the namespace is a PEP 420 namespace package with no __init__.
    assert out.split() == ["True", "True"]


def test_envelope_wheel_alone_installs_pydantic_and_never_numpy(envelope_venv: Venv) -> None:
    installed = envelope_venv.pip_list()
    assert "juniper-cascor-protocol-envelope" in installed
    assert "pydantic" in installed
    assert "numpy" not in installed
    out = envelope_venv.run_python(
        "from juniper_cascor_protocol.envelope import validate_envelope, MetricsEnvelope\n"
        "e = validate_envelope({'type': 'metrics', 'timestamp': 1.5, 'data': {'loss': 0.1}})\n"
        "print(type(e).__name__, e.data['loss'])\n"
    )
    assert out.split() == ["MetricsEnvelope", "0.1"]


def test_meta_wheel_installs_both_and_keeps_pydantic_out_of_the_top_level(meta_venv: Venv) -> None:
    installed = meta_venv.pip_list()
    assert set(DISTRIBUTIONS.values()) <= installed
    assert {"numpy", "pydantic"} <= installed
    out = meta_venv.run_python(
        "import sys, json\n"
        "import juniper_cascor_protocol as p\n"
        "print(json.dumps([p.__all__, 'pydantic' in sys.modules, p.__version__]))\n"
    )
    exported, pydantic_imported, version = json.loads(out)
    assert exported == ["__version__", "WorkerMessageType", "BinaryFrame"]
    assert pydantic_imported is False
    assert version == VERSION
    out = meta_venv.run_python(
        "import juniper_cascor_protocol.envelope as e, juniper_cascor_protocol.worker as w\n"
        "import juniper_cascor_protocol as p\n"
        "print(e.__version__, w.__version__, p.BinaryFrame is w.BinaryFrame)\n"
    )
    assert out.split() == [VERSION, VERSION, "True"]


def test_meta_wheel_provides_the_command_line_tool(meta_venv: Venv) -> None:
    out = _run(meta_venv.path / "bin" / "juniper-cascor-protocol", "--help")
    assert "usage: juniper-cascor-protocol" in out


def test_wheel_metadata_pins_exactly_what_each_distribution_needs(wheels: dict[str, Path]) -> None:
    assert _metadata(wheels["worker"]) == (VERSION, ["numpy>=1.24"])
    envelope_version, envelope_requires = _metadata(wheels["envelope"])
    assert envelope_version == VERSION
    assert len(envelope_requires) == 1
    assert envelope_requires[0].startswith("pydantic>=2")
    assert _metadata(wheels["meta"]) == (
        VERSION,
        [
            f"juniper-cascor-protocol-envelope=={VERSION}",
            f"juniper-cascor-protocol-worker=={VERSION}",
            "websockets>=13; extra == 'demo'",
        ],
    )


def test_only_the_meta_wheel_owns_the_namespace_init(wheels: dict[str, Path]) -> None:
    namespace_init = "juniper_cascor_protocol/__init__.py"
    assert namespace_init not in _files(wheels["worker"])
    assert namespace_init not in _files(wheels["envelope"])
    assert namespace_init in _files(wheels["meta"])
    assert "juniper_cascor_protocol/worker/py.typed" in _files(wheels["worker"])
    assert "juniper_cascor_protocol/envelope/py.typed" in _files(wheels["envelope"])
    assert "juniper_cascor_protocol/py.typed" in _files(wheels["meta"])


def test_editable_workspace_install_resolves_every_portion_from_its_source_folder() -> None:
    import juniper_cascor_protocol
    import juniper_cascor_protocol.envelope
    import juniper_cascor_protocol.worker

    sources = {
        juniper_cascor_protocol: "juniper-cascor-protocol",
        juniper_cascor_protocol.envelope: "juniper-cascor-protocol-envelope",
        juniper_cascor_protocol.worker: "juniper-cascor-protocol-worker",
    }
    for module, distribution in sources.items():
        assert module.__file__ is not None
        assert Path(module.__file__).is_relative_to(ROOT / "packages" / distribution / "src")
