"""The ``juniper-cascor-protocol`` console script: Ctrl-C while the tool is loading exits 130.

A top-level module of its own: ``juniper_cascor_protocol/__init__.py`` imports numpy, so an entry
point inside that package could not catch a Ctrl-C that arrives while it is being imported.
"""

from __future__ import annotations

import sys

__all__ = ["main"]

_EXIT_INTERRUPTED = 130  # juniper_cascor_protocol.cli.EXIT_INTERRUPTED, not yet importable here


def main() -> int:
    """Import the tool and run it on ``sys.argv``; one line and 130 on Ctrl-C, even meanwhile."""
    try:
        from juniper_cascor_protocol.cli import main as run
    except KeyboardInterrupt:
        print("juniper-cascor-protocol: interrupted", file=sys.stderr)
        return _EXIT_INTERRUPTED
    return run()
