"""The envelope's version: one constant the build writes from the repository's ``VERSION`` file.

Importing the package must not look the version up in the installed distributions' metadata,
a scan that cost the import time of every consumer.
"""

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import juniper_cascor_protocol.envelope

REPOSITORY_VERSION = (Path(__file__).parents[3] / "VERSION").read_text(encoding="utf-8").strip()


def test_the_version_is_the_repository_version_and_the_distributions() -> None:
    assert juniper_cascor_protocol.envelope.__version__ == REPOSITORY_VERSION
    assert metadata.version("juniper-cascor-protocol-envelope") == REPOSITORY_VERSION


def test_importing_the_envelope_package_looks_up_no_distribution_version() -> None:
    # A fresh interpreter in which any lookup of a distribution's version fails.
    code = (
        "import importlib.metadata\n"
        "def refuse(name):\n"
        "    raise AssertionError(f'importlib.metadata.version({name!r}) was called')\n"
        "importlib.metadata.version = refuse\n"
        "import juniper_cascor_protocol.envelope as envelope\n"
        "assert envelope.__version__\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
