"""Stand-in ``juniper_cascor_protocol`` that explains a broken install instead of a bare error.

The meta wheel ships this file as ``_juniper_cascor_protocol_upgrade_guard/
juniper_cascor_protocol/__init__.py`` with a ``.pth`` file holding only that folder's name (no
code runs at start-up). ``site`` appends the folder to ``sys.path`` after site-packages, and
Python's path finder takes the first regular package it meets over namespace portions, so this
module is imported only when no ``juniper_cascor_protocol/__init__.py`` comes before it. In a
healthy install the worker wheel's ``__init__.py`` in site-packages does.

The case it is for: ``pip install -U juniper-cascor-protocol`` over the 0.1/0.2 single wheel
installs the new envelope and worker wheels first, then uninstalls the old wheel, whose RECORD
lists the same file names, deleting what the new wheels had just written (pypa/pip#8509).
"""

from __future__ import annotations

import shlex
import sys
from importlib import metadata
from pathlib import Path

META = "juniper-cascor-protocol"
OWNER = "juniper-cascor-protocol-worker"  # the distribution whose __init__.py should be found
PARTS = (OWNER, "juniper-cascor-protocol-envelope")
SHOWN_MISSING = 3


def repair_command() -> str:
    """The command that rewrites every file of the three distributions, pinned to this version."""
    try:
        pin = f"=={metadata.version(META)}"
    except metadata.PackageNotFoundError:
        pin = ""
    names = " ".join(f"{name}{pin}" for name in (META, *PARTS))
    return f"{shlex.quote(sys.executable)} -m pip install --force-reinstall --no-deps {names}"


def missing_files(name: str) -> list[str]:
    """Files of the package that the distribution's RECORD lists but that are not on disk."""
    try:
        files = metadata.distribution(name).files or []
    except metadata.PackageNotFoundError:
        return []
    return [
        path.as_posix()
        for path in files
        if path.parts[0] == "juniper_cascor_protocol"
        and "__pycache__" not in path.parts  # compiled files follow their sources
        and not Path(path.locate()).exists()
    ]


def diagnosis() -> str:
    """Why no installed ``juniper_cascor_protocol/__init__.py`` came before this one."""
    try:
        owner = metadata.distribution(OWNER)
    except metadata.PackageNotFoundError:
        return (
            f"{OWNER}, which provides juniper_cascor_protocol/__init__.py since 0.3, "
            f"is not installed (was {META} installed without its dependencies?)"
        )
    missing = [path for name in PARTS for path in missing_files(name)]
    if missing:
        shown = ", ".join(missing[:SHOWN_MISSING])
        more = f" and {len(missing) - SHOWN_MISSING} more" if len(missing) > SHOWN_MISSING else ""
        return (
            f"{len(missing)} installed file(s) of the juniper-cascor-protocol distributions are "
            f"missing ({shown}{more}). pip's in-place upgrade from {META} 0.1/0.2 deletes them: "
            "it installs the new envelope and worker wheels first, then uninstalls the old "
            "single wheel, whose file list names the same files (pypa/pip#8509)"
        )
    init = owner.locate_file("juniper_cascor_protocol/__init__.py")
    return (
        f"{OWNER}'s {init} comes after {META}'s site directory on sys.path; "
        "install the three distributions into the same environment"
    )


raise ImportError(
    f"juniper_cascor_protocol cannot be imported: {diagnosis()}. Repair: {repair_command()}",
    name=__name__,
)
