"""The ``demo`` command: check the options, run the demo with a live display, print the report."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from rich.console import Console

from juniper_cascor_protocol.demo.options import DemoOptions
from juniper_cascor_protocol.demo.progress import DemoProgress, show_progress
from juniper_cascor_protocol.demo.report import DemoReport
from juniper_cascor_protocol.demo.run import run_demo
from juniper_cascor_protocol.interrupt import run_until_interrupted
from juniper_cascor_protocol.terminal import print_error

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
    """Run ``demo``; the exit code: 0 clean, 1 problems found, 2 options out of range, 130
    interrupted by Ctrl-C (after the partial report).

    The live display goes to stderr, and only when ``show_status`` and stderr is a terminal.
    """
    from juniper_cascor_protocol.cli import EXIT_INTERRUPTED, EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE

    try:
        options = DemoOptions(
            frames=frames, clients=clients, tensor_mb=tensor_mb, timeout_s=timeout_s
        )
    except ValueError as error:
        print_error("demo", str(error))
        return EXIT_USAGE
    console = Console(stderr=True)
    if show_status and console.is_terminal:
        with show_progress(console) as on_progress:
            report, interrupted = _run(options, on_progress)
    else:
        report, interrupted = _run(options, None)
    if report is not None:
        if as_json:
            print(json.dumps(report.to_json(), indent=2, sort_keys=True))
        else:
            print(report.render())
    if interrupted:
        print_error("demo", "interrupted")
        return EXIT_INTERRUPTED
    return EXIT_PROBLEMS if report is None or report.problems else EXIT_OK


def _run(
    options: DemoOptions, on_progress: Callable[[DemoProgress], None] | None
) -> tuple[DemoReport | None, bool]:
    """The report (None if Ctrl-C came where no signal handler could catch it), and whether
    Ctrl-C ended the run."""
    reports: list[DemoReport] = []

    async def command(stop: asyncio.Event) -> None:
        reports.append(await run_demo(options, on_progress=on_progress, stop=stop))

    interrupted = run_until_interrupted(command)
    return (reports[0] if reports else None), interrupted
