"""The ``demo`` command: check the options, run the demo with a live display, print the report."""

from __future__ import annotations

import json
import sys

from rich.console import Console

from juniper_cascor_protocol.demo.options import DemoOptions
from juniper_cascor_protocol.demo.progress import show_progress
from juniper_cascor_protocol.demo.run import run_demo_sync

__all__ = ["demo_command"]


def demo_command(
    *,
    frames: int,
    clients: int,
    tensor_mb: float,
    timeout_s: float | None,
    as_json: bool,
    show_status: bool,
) -> int:
    """Run ``demo``; the exit code: 0 clean, 1 problems found, 2 options out of range.

    The live display goes to stderr, and only when ``show_status`` and stderr is a terminal.
    """
    from juniper_cascor_protocol.cli import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE

    try:
        options = DemoOptions(
            frames=frames, clients=clients, tensor_mb=tensor_mb, timeout_s=timeout_s
        )
    except ValueError as error:
        print(f"juniper-cascor-protocol demo: {error}", file=sys.stderr)
        return EXIT_USAGE
    console = Console(stderr=True)
    if show_status and console.is_terminal:
        with show_progress(console) as on_progress:
            report = run_demo_sync(options, on_progress=on_progress)
    else:
        report = run_demo_sync(options)
    if as_json:
        print(json.dumps(report.to_json(), indent=2, sort_keys=True))
    else:
        print(report.render())
    return EXIT_PROBLEMS if report.problems else EXIT_OK
