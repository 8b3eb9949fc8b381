"""Upgrading in place from the 0.1/0.2 single wheel, with pip and with uv, without a registry.

0.2.0's wheel is rebuilt here with upstream's file layout (its RECORD is what matters: pip
deletes what it lists). pip installs the new envelope and worker wheels before it uninstalls
0.2.0, so that uninstall deletes files the new wheels had just written (pypa/pip#8509). The meta
wheel's upgrade guard must then turn the bare ImportError into one that names the cause and a
repair command, and that command must work.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shlex
import zipfile
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Venv, VenvFactory

ROOT = Path(__file__).resolve().parent.parent
VERSION = (ROOT / "VERSION").read_text(encoding="utf-8").strip()

OLD_VERSION = "0.2.0"
# Upstream 0.2.0's package files; only the names and that they import matter here.
OLD_FILES = {
    "juniper_cascor_protocol/__init__.py": (
        "from juniper_cascor_protocol._version import __version__\n"
        "from juniper_cascor_protocol.worker import BinaryFrame, WorkerMessageType\n"
        '__all__ = ["__version__", "WorkerMessageType", "BinaryFrame"]\n'
    ),
    "juniper_cascor_protocol/_version.py": f'__version__ = "{OLD_VERSION}"\n',
    "juniper_cascor_protocol/envelope/__init__.py": (
        "from juniper_cascor_protocol.envelope.validate import validate_envelope\n"
    ),
    "juniper_cascor_protocol/envelope/base.py": (
        "from pydantic import BaseModel\n\n\nclass BaseEnvelope(BaseModel):\n    type: str\n"
    ),
    "juniper_cascor_protocol/envelope/training.py": "from .base import BaseEnvelope\n",
    "juniper_cascor_protocol/envelope/control.py": "from .base import BaseEnvelope\n",
    "juniper_cascor_protocol/envelope/validate.py": (
        "from .base import BaseEnvelope\n\n\ndef validate_envelope(frame):\n"
        "    return BaseEnvelope.model_validate(frame)\n"
    ),
    "juniper_cascor_protocol/worker/__init__.py": (
        "from .binary_frame import BinaryFrame\nfrom .messages import WorkerMessageType\n"
    ),
    "juniper_cascor_protocol/worker/binary_frame.py": "class BinaryFrame:\n    pass\n",
    "juniper_cascor_protocol/worker/messages.py": (
        "import enum\n\n\nclass WorkerMessageType(str, enum.Enum):\n    REGISTER = 'register'\n"
    ),
}

# 0.1/0.2's documented import, then the envelopes, all from the 0.3 wheels.
WORKS_AS_0_3 = (
    "import sys\n"
    "from juniper_cascor_protocol import BinaryFrame, WorkerMessageType, __version__\n"
    "from juniper_cascor_protocol.envelope import MetricsEnvelope, validate_envelope\n"
    "import juniper_cascor_protocol.worker as worker\n"
    "assert BinaryFrame is worker.BinaryFrame and WorkerMessageType.REGISTER == 'register'\n"
    "assert isinstance(validate_envelope({'type': 'metrics', 'timestamp': 1}), MetricsEnvelope)\n"
    "print(__version__)\n"
)


def _record_line(name: str, content: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(content)}"


def _build_old_wheel(folder: Path) -> Path:
    """``juniper-cascor-protocol`` 0.2.0 as one wheel holding the whole namespace."""
    dist_info = f"juniper_cascor_protocol-{OLD_VERSION}.dist-info"
    files = {name: text.encode() for name, text in OLD_FILES.items()}
    files[f"{dist_info}/METADATA"] = (
        "Metadata-Version: 2.1\n"
        "Name: juniper-cascor-protocol\n"
        f"Version: {OLD_VERSION}\n"
        "Requires-Python: >=3.11\n"
        "Requires-Dist: numpy>=1.24\n"
        "Requires-Dist: pydantic>=2\n"
    ).encode()
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = [_record_line(name, content) for name, content in files.items()]
    files[f"{dist_info}/RECORD"] = "\n".join([*record, f"{dist_info}/RECORD,,", ""]).encode()
    wheel = folder / f"juniper_cascor_protocol-{OLD_VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return wheel


@pytest.fixture(scope="module")
def old_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_old_wheel(tmp_path_factory.mktemp("old-wheel"))


def _find_links(*wheels: Path) -> list[str | Path]:
    """pip/uv options that take the given wheels, and nothing else, as the package index."""
    options: list[str | Path] = ["--no-index"]
    for folder in sorted({wheel.parent for wheel in wheels}):
        options += ["--find-links", folder]
    return options


def _venv_with_dependencies(venv_factory: VenvFactory, label: str, *, with_pip: bool) -> Venv:
    venv = venv_factory(label, with_pip=with_pip)
    # The versions the workspace synced, so uv's cache has them.
    venv.install(f"numpy=={version('numpy')}", f"pydantic=={version('pydantic')}")
    return venv


def test_pip_in_place_upgrade_from_0_2_names_the_cause_and_its_repair_works(
    venv_factory: VenvFactory, wheels: dict[str, Path], old_wheel: Path
) -> None:
    venv = _venv_with_dependencies(venv_factory, "pip-upgrade", with_pip=True)
    venv.pip("install", *_find_links(old_wheel), f"juniper-cascor-protocol=={OLD_VERSION}")
    installed_old = venv.run_python(
        "from juniper_cascor_protocol import BinaryFrame, WorkerMessageType, __version__\n"
        "print(__version__)\n"
    )
    assert installed_old.strip() == OLD_VERSION
    new = _find_links(*wheels.values())

    venv.pip("install", "-U", *new, f"juniper-cascor-protocol=={VERSION}")

    broken = venv.python_result("from juniper_cascor_protocol import BinaryFrame")
    assert broken.returncode == 1
    error = broken.stderr.strip().splitlines()[-1]
    assert error.startswith("ImportError: juniper_cascor_protocol cannot be imported: ")
    assert "juniper_cascor_protocol/__init__.py" in error  # a deleted file, named
    assert "pip's in-place upgrade from juniper-cascor-protocol 0.1/0.2" in error
    assert "pypa/pip#8509" in error
    repair = shlex.split(error.split("Repair: ", 1)[1])
    assert repair[:3] == [str(venv.python), "-m", "pip"]

    venv.pip(*repair[3:], *new)

    assert venv.run_python(WORKS_AS_0_3).strip() == VERSION


def test_uninstalling_only_the_meta_package_keeps_the_top_level_import(
    venv_factory: VenvFactory, wheels: dict[str, Path]
) -> None:
    """A worker image moving from the meta-package to the worker wheel alone."""
    venv = _venv_with_dependencies(venv_factory, "pip-uninstall-meta", with_pip=True)
    venv.pip("install", *_find_links(*wheels.values()), f"juniper-cascor-protocol=={VERSION}")

    venv.pip("uninstall", "--yes", "juniper-cascor-protocol")

    out = venv.run_python(
        "import json, sys\n"
        "from juniper_cascor_protocol import BinaryFrame, WorkerMessageType, __version__\n"
        "import juniper_cascor_protocol.envelope\n"
        "print(json.dumps([__version__, any('upgrade_guard' in entry for entry in sys.path)]))\n"
    )
    assert json.loads(out) == [VERSION, False]


def test_uv_in_place_upgrade_from_0_2_needs_no_repair(
    venv_factory: VenvFactory, wheels: dict[str, Path], old_wheel: Path
) -> None:
    venv = _venv_with_dependencies(venv_factory, "uv-upgrade", with_pip=False)
    venv.install(old_wheel)

    venv.install("--upgrade", *_find_links(*wheels.values()), f"juniper-cascor-protocol=={VERSION}")

    assert venv.run_python(WORKS_AS_0_3).strip() == VERSION
