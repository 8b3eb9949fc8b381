"""What every command of the tool shows on standard error beside its report: a problem, named
after the command on one line, and the live status line of the long-running commands."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live

__all__ = ["PROG", "STATUS_INTERVAL_S", "print_error", "status_display"]

PROG: Final = "juniper-cascor-protocol"
"""The tool's command name, which starts each of its error lines."""

STATUS_INTERVAL_S: Final = 0.25
"""How often a live status line is redrawn."""


def print_error(command: str | None, message: str) -> None:
    """``juniper-cascor-protocol COMMAND: MESSAGE`` on standard error (no COMMAND when None)."""
    print(f"{PROG}{' ' + command if command else ''}: {message}", file=sys.stderr)


def status_display(console: Console, *, enabled: bool) -> Live | None:
    """A one-line display on ``console`` that disappears when left, redrawn only when told to;
    ``None`` unless ``enabled`` and ``console`` is a terminal (a log file gets no status line)."""
    if not (enabled and console.is_terminal):
        return None
    from rich.live import Live

    return Live(console=console, transient=True, auto_refresh=False, redirect_stdout=False)
