"""The wheels as users install them: each built, then installed into its own clean venv.

This is the proof that the slim worker image never installs Pydantic (and the envelope image
never numpy), and that 0.1/0.2's top-level import works wherever the worker wheel is installed:
not an import test in the development environment, where everything is present.
"""

from __future__ import annotations

import json
import zipfile
from email.parser import Parser
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Venv, VenvFactory

ROOT = Path(__file__).resolve().parent.parent
VERSION = (ROOT / "VERSION").read_text(encoding="utf-8").strip()
TOP_LEVEL_FILES = {
    "juniper_cascor_protocol/__init__.py",
    "juniper_cascor_protocol/_version.py",
    "juniper_cascor_protocol/py.typed",
}
GUARD_FOLDER = "_juniper_cascor_protocol_upgrade_guard"
GUARD_PTH = "juniper_cascor_protocol_upgrade_guard.pth"

# 0.1/0.2's documented import, and what it must give.
UPSTREAM_IMPORT = (
    "import json, sys\n"
    "import numpy as np\n"
    "from juniper_cascor_protocol import BinaryFrame, WorkerMessageType\n"
    "import juniper_cascor_protocol as p, juniper_cascor_protocol._version as v\n"
    "a = np.arange(6, dtype='float32').reshape(2, 3)\n"
    "assert (BinaryFrame.decode(BinaryFrame.encode(a)) == a).all()\n"
    "assert WorkerMessageType.REGISTER == 'register'\n"
    "print(json.dumps([p.__all__, p.__version__, v.__version__, 'pydantic' in sys.modules]))\n"
)


def _metadata(wheel: Path) -> tuple[str, list[str]]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(archive.read(name).decode("utf-8"))
    return message["Version"], sorted(message.get_all("Requires-Dist") or [])


def _files(wheel: Path) -> set[str]:
    """What the wheel installs into site-packages (its .dist-info aside)."""
    with zipfile.ZipFile(wheel) as archive:
        return {n for n in archive.namelist() if ".dist-info/" not in n}


def test_worker_wheel_alone_installs_numpy_and_never_pydantic(worker_venv: Venv) -> None:
    installed = worker_venv.installed()
    assert "juniper-cascor-protocol-worker" in installed
    assert "numpy" in installed
    assert "pydantic" not in installed
    assert "pydantic-core" not in installed


def test_worker_wheel_alone_serves_the_0_2_top_level_import(worker_venv: Venv) -> None:
    exported, version, version_module, pydantic_imported = json.loads(
        worker_venv.run_python(UPSTREAM_IMPORT)
    )
    assert exported == ["__version__", "WorkerMessageType", "BinaryFrame"]
    assert version == version_module == VERSION
    assert pydantic_imported is False


def test_worker_wheel_alone_has_no_envelope(worker_venv: Venv) -> None:
    out = worker_venv.run_python(
        "import importlib.util as u\n"
        "print(u.find_spec('juniper_cascor_protocol.envelope') is None)\n"
    )
    assert out.split() == ["True"]


def test_envelope_wheel_alone_installs_pydantic_and_never_numpy(envelope_venv: Venv) -> None:
    installed = envelope_venv.installed()
    assert "juniper-cascor-protocol-envelope" in installed
    assert "pydantic" in installed
    assert "numpy" not in installed
    out = envelope_venv.run_python(
        "from juniper_cascor_protocol.envelope import validate_envelope, MetricsEnvelope\n"
        "import juniper_cascor_protocol\n"
        "e = validate_envelope({'type': 'metrics', 'timestamp': 1.5, 'data': {'loss': 0.1}})\n"
        "print(type(e).__name__, e.data['loss'], juniper_cascor_protocol.__file__)\n"
    )
    # Without the worker wheel the top level is a bare PEP 420 namespace: no __init__ to run.
    assert out.split() == ["MetricsEnvelope", "0.1", "None"]


def test_meta_wheel_installs_both_and_keeps_pydantic_out_of_the_top_level(
    meta_venv: Venv, distributions: dict[str, str]
) -> None:
    installed = meta_venv.installed()
    assert {distributions[key] for key in ("worker", "envelope", "meta")} <= installed
    assert {"numpy", "pydantic"} <= installed
    exported, version, version_module, pydantic_imported = json.loads(
        meta_venv.run_python(UPSTREAM_IMPORT)
    )
    assert exported == ["__version__", "WorkerMessageType", "BinaryFrame"]
    assert version == version_module == VERSION
    assert pydantic_imported is False
    out = meta_venv.run_python(
        "import juniper_cascor_protocol.envelope as e, juniper_cascor_protocol.worker as w\n"
        "import juniper_cascor_protocol as p\n"
        "print(e.__version__, w.__version__, p.BinaryFrame is w.BinaryFrame)\n"
    )
    assert out.split() == [VERSION, VERSION, "True"]


def test_meta_wheel_installs_the_upgrade_guard_and_a_healthy_import_never_uses_it(
    meta_venv: Venv,
) -> None:
    out = meta_venv.run_python(
        "import json, sys, sysconfig\n"
        "import juniper_cascor_protocol as p\n"
        "site = sysconfig.get_path('purelib')\n"
        "print(json.dumps([p.__file__, site, sys.path]))\n"
    )
    top_level_file, site_packages, sys_path = json.loads(out)
    guard = str(Path(site_packages) / GUARD_FOLDER)
    # The .pth put the guard on sys.path after site-packages; the real __init__ still won.
    assert sys_path.index(guard) > sys_path.index(site_packages)
    assert Path(top_level_file) == Path(site_packages) / "juniper_cascor_protocol" / "__init__.py"


def test_meta_wheel_without_the_worker_wheel_says_what_is_missing(
    venv_factory: VenvFactory, wheels: dict[str, Path]
) -> None:
    venv = venv_factory("meta-without-worker")
    venv.install("--no-deps", wheels["meta"], wheels["envelope"])
    failed = venv.python_result("import juniper_cascor_protocol")
    error = failed.stderr.strip().splitlines()[-1]
    assert error.startswith("ImportError: juniper_cascor_protocol cannot be imported: ")
    assert "juniper-cascor-protocol-worker, which provides" in error
    assert "is not installed" in error
    assert f"juniper-cascor-protocol-worker=={VERSION}" in error.split("Repair: ")[1]


def test_meta_wheel_holds_no_module_and_no_command(
    meta_venv: Venv, wheels: dict[str, Path]
) -> None:
    # Only its pins and the upgrade guard: the code comes from the parts, the tool from [cli].
    assert _files(wheels["meta"]) == {
        GUARD_PTH,
        f"{GUARD_FOLDER}/juniper_cascor_protocol/__init__.py",
    }
    installed = meta_venv.installed()
    assert "juniper-cascor-protocol-cli" not in installed
    assert not {"websockets", "rich"} & installed
    out = meta_venv.run_python(
        "import importlib.util as u, shutil, sysconfig\n"
        "print(u.find_spec('juniper_cascor_protocol.cli') is None,"
        " shutil.which('juniper-cascor-protocol', path=sysconfig.get_path('scripts')) is None)\n"
    )
    assert out.split() == ["True", "True"]


def test_cli_extra_brings_the_command_line_tool(cli_venv: Venv) -> None:
    assert {"juniper-cascor-protocol-cli", "websockets", "rich"} <= cli_venv.installed()
    out = cli_venv.run_python(
        "import subprocess, sys, sysconfig\n"
        "tool = sysconfig.get_path('scripts') + '/juniper-cascor-protocol'\n"
        "print(subprocess.run([tool, '--help'], capture_output=True, text=True).stdout)\n"
        "print(subprocess.run([sys.executable, '-m', 'juniper_cascor_protocol', '--version'],"
        " capture_output=True, text=True).stdout)\n"
    )
    assert "usage: juniper-cascor-protocol" in out
    assert f"juniper-cascor-protocol {VERSION}" in out


def test_wheel_metadata_pins_exactly_what_each_distribution_needs(wheels: dict[str, Path]) -> None:
    assert _metadata(wheels["worker"]) == (VERSION, ["numpy>=1.24"])
    envelope_version, envelope_requires = _metadata(wheels["envelope"])
    assert envelope_version == VERSION
    assert len(envelope_requires) == 1
    assert envelope_requires[0].startswith("pydantic>=2")
    assert _metadata(wheels["meta"]) == (
        VERSION,
        [
            f"juniper-cascor-protocol-cli=={VERSION}; extra == 'cli'",
            f"juniper-cascor-protocol-envelope=={VERSION}",
            f"juniper-cascor-protocol-worker=={VERSION}",
        ],
    )
    assert _metadata(wheels["cli"]) == (
        VERSION,
        [f"juniper-cascor-protocol=={VERSION}", "rich>=13", "websockets>=13"],
    )


def test_only_the_worker_wheel_owns_the_top_level(wheels: dict[str, Path]) -> None:
    assert _files(wheels["worker"]) >= TOP_LEVEL_FILES
    assert not TOP_LEVEL_FILES & _files(wheels["envelope"])
    assert not TOP_LEVEL_FILES & _files(wheels["meta"])
    assert not TOP_LEVEL_FILES & _files(wheels["cli"])
    assert "juniper_cascor_protocol/worker/py.typed" in _files(wheels["worker"])
    assert "juniper_cascor_protocol/envelope/py.typed" in _files(wheels["envelope"])


def test_no_two_wheels_install_the_same_file(wheels: dict[str, Path]) -> None:
    # A shared file is deleted by uninstalling either owner, breaking the other.
    files = {key: _files(wheel) for key, wheel in wheels.items()}
    for key, mine in files.items():
        for other_key, theirs in files.items():
            if key < other_key:
                assert not mine & theirs, (key, other_key)


def test_meta_wheel_guard_pth_is_one_path_line(wheels: dict[str, Path]) -> None:
    with zipfile.ZipFile(wheels["meta"]) as archive:
        lines = archive.read(GUARD_PTH).decode("utf-8").splitlines()
    # A path line runs nothing at start-up; an `import` line would run code in every Python.
    assert lines == [GUARD_FOLDER]
    assert f"{GUARD_FOLDER}/juniper_cascor_protocol/__init__.py" in _files(wheels["meta"])


def test_editable_workspace_install_resolves_every_portion_from_its_source_folder() -> None:
    import juniper_cascor_protocol
    import juniper_cascor_protocol._version
    import juniper_cascor_protocol.cli
    import juniper_cascor_protocol.envelope
    import juniper_cascor_protocol.worker

    sources = {
        juniper_cascor_protocol: "juniper-cascor-protocol-worker",
        juniper_cascor_protocol._version: "juniper-cascor-protocol-worker",
        juniper_cascor_protocol.cli: "juniper-cascor-protocol-cli",
        juniper_cascor_protocol.envelope: "juniper-cascor-protocol-envelope",
        juniper_cascor_protocol.worker: "juniper-cascor-protocol-worker",
    }
    for module, distribution in sources.items():
        assert module.__file__ is not None
        assert Path(module.__file__).is_relative_to(ROOT / "packages" / distribution / "src")
    assert juniper_cascor_protocol.__version__ == juniper_cascor_protocol._version.__version__
