"""What ``import juniper_cascor_protocol.worker`` loads at once, and what on first use.

The package imports the tensor frame and the message types; every other public name loads
with the deferred submodules the first time it is used. Each test that watches ``sys.modules``
runs in a fresh interpreter, since this test process has loaded everything already.
"""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import juniper_cascor_protocol.worker as worker

PACKAGE = "juniper_cascor_protocol.worker"


def _run(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True)


def test_importing_the_package_loads_only_the_frame_and_the_message_types() -> None:
    _run(
        "import sys\n"
        "import juniper_cascor_protocol\n"
        "from juniper_cascor_protocol.worker import BinaryFrame, WorkerMessageType\n"
        f"deferred = [f'{PACKAGE}.{{name}}' for name in {worker._DEFERRED_MODULES!r}]\n"
        "loaded = [name for name in deferred if name in sys.modules]\n"
        "assert not loaded, loaded\n"
        "assert 'json' not in sys.modules, 'json was imported'\n"
    )


def test_first_use_of_any_public_name_loads_it() -> None:
    _run(
        f"import {PACKAGE} as worker\n"
        "assert worker.parse_worker_message({'type': 'heartbeat'})\n"
        f"from {PACKAGE} import WorkerSession\n"
        f"from {PACKAGE}.worker_session import WorkerSession as defined\n"
        "assert WorkerSession is defined\n"
    )
    _run(
        # A submodule is an attribute of the package without an import of its own.
        f"import {PACKAGE} as worker\n"
        "assert worker.messages.parse_worker_message is worker.parse_worker_message\n"
    )
    _run(
        f"from {PACKAGE} import *\n"
        f"import {PACKAGE} as worker\n"
        "missing = [name for name in worker.__all__ if name not in globals()]\n"
        "assert not missing, missing\n"
    )


def test_dir_lists_every_public_name_before_first_use() -> None:
    _run(
        f"import {PACKAGE} as worker\n"
        "assert set(worker.__all__) <= set(dir(worker))\n"
        "assert 'parse_worker_message' in dir(worker)\n"
    )


def test_an_unknown_or_private_name_is_an_attribute_error() -> None:
    _run(
        "import sys\n"
        f"import {PACKAGE} as worker\n"
        "assert not hasattr(worker, '_not_here')\n"
        f"assert '{PACKAGE}.messages' not in sys.modules, 'a private probe loaded the rest'\n"
        "try:\n"
        "    worker.NotAName\n"
        "except AttributeError as error:\n"
        f"    assert str(error) == \"module '{PACKAGE}' has no attribute 'NotAName'\", error\n"
        "else:\n"
        "    raise AssertionError('no AttributeError')\n"
    )


def _type_checking_imports() -> dict[str, str]:
    """Each name the ``if TYPE_CHECKING:`` block of ``__init__`` imports, and its submodule."""
    assert worker.__file__ is not None
    tree = ast.parse(Path(worker.__file__).read_text(encoding="utf-8"))
    (block,) = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    ]
    names = {}
    for statement in block.body:
        assert isinstance(statement, ast.ImportFrom)
        assert statement.module is not None
        for alias in statement.names:
            names[alias.asname or alias.name] = statement.module
    return names


def test_the_names_type_checkers_see_are_the_names_loaded_on_first_use() -> None:
    declared = _type_checking_imports()
    assert {module.rsplit(".", 1)[1] for module in declared.values()} == set(
        worker._DEFERRED_MODULES
    )
    eager = {"__version__", "BinaryFrame", "WorkerMessageType"}
    eager |= {"DECODE_ERROR_PREFIXES", "MAX_DTYPE_BYTES", "MAX_FRAME_BYTES", "MAX_NDIM"}
    assert set(declared) | eager == set(worker.__all__)
    for name, module in declared.items():
        assert getattr(worker, name) is getattr(importlib.import_module(module), name), name
