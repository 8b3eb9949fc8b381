"""The top level (the worker distribution's): 0.1/0.2's public names, one version, no Pydantic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import juniper_cascor_protocol
import juniper_cascor_protocol._version
import juniper_cascor_protocol.envelope
import juniper_cascor_protocol.worker

VERSION = (Path(__file__).resolve().parents[3] / "VERSION").read_text(encoding="utf-8").strip()


def test_all_lists_exactly_the_compatible_names() -> None:
    assert juniper_cascor_protocol.__all__ == ["__version__", "WorkerMessageType", "BinaryFrame"]
    for name in juniper_cascor_protocol.__all__:
        assert hasattr(juniper_cascor_protocol, name)


def test_top_level_names_are_the_worker_objects() -> None:
    assert juniper_cascor_protocol.BinaryFrame is juniper_cascor_protocol.worker.BinaryFrame
    assert (
        juniper_cascor_protocol.WorkerMessageType
        is juniper_cascor_protocol.worker.WorkerMessageType
    )


def test_all_three_distributions_share_the_one_version() -> None:
    assert juniper_cascor_protocol.__version__ == VERSION
    assert juniper_cascor_protocol._version.__version__ == VERSION
    assert juniper_cascor_protocol.envelope.__version__ == VERSION
    assert juniper_cascor_protocol.worker.__version__ == VERSION


def test_importing_the_top_level_does_not_import_pydantic() -> None:
    code = "import sys, juniper_cascor_protocol; print('pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_python_dash_m_runs_the_command_line_tool() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "juniper_cascor_protocol", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == f"juniper-cascor-protocol {VERSION}"
