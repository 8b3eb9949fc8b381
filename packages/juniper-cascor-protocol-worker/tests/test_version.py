"""The version: one constant the build writes from the repository's ``VERSION`` file.

Reading it must not cost an import of ``importlib.metadata`` and a scan of the installed
distributions (about a quarter of the worker package's import time when it did).
"""

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import juniper_cascor_protocol
import juniper_cascor_protocol._version
import juniper_cascor_protocol.worker

REPOSITORY_VERSION = (Path(__file__).parents[3] / "VERSION").read_text(encoding="utf-8").strip()


def test_every_version_attribute_is_the_repository_version() -> None:
    assert juniper_cascor_protocol.__version__ == REPOSITORY_VERSION
    assert juniper_cascor_protocol._version.__version__ == REPOSITORY_VERSION
    assert juniper_cascor_protocol.worker.__version__ == REPOSITORY_VERSION
    assert metadata.version("juniper-cascor-protocol-worker") == REPOSITORY_VERSION


def test_importing_the_worker_package_reads_no_distribution_metadata() -> None:
    # A fresh interpreter: this test process imported importlib.metadata above.
    code = (
        "import sys, juniper_cascor_protocol.worker as worker\n"
        "assert worker.__version__\n"
        "assert 'importlib.metadata' not in sys.modules, 'importlib.metadata was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
