"""Ctrl-C during a demo: the partial report, one line on stderr, exit 130, no traceback."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

from juniper_cascor_protocol.demo import DemoOptions, DemoProgress, run_demo
from juniper_cascor_protocol.demo.run import INTERRUPTED

# Runs the real command in a fresh interpreter and sends it SIGINT once frames have arrived:
# run_demo is wrapped only to learn when, not to change what it does.
_SIGINT_WHEN_RUNNING = """
import os, signal, sys
import juniper_cascor_protocol.demo.command as command

real_run_demo = command.run_demo

def interrupt_once_frames_arrive(progress):
    if progress.deliveries and not getattr(interrupt_once_frames_arrive, "sent", False):
        interrupt_once_frames_arrive.sent = True
        os.kill(os.getpid(), signal.SIGINT)

async def run_demo(options, *, on_progress=None, stop=None):
    return await real_run_demo(options, on_progress=interrupt_once_frames_arrive, stop=stop)

command.run_demo = run_demo
from juniper_cascor_protocol.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_prints_the_partial_report_and_exits_130() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", _SIGINT_WHEN_RUNNING, "demo", "--frames", "1000000"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert completed.returncode == 130, completed.stderr
    assert completed.stdout.startswith("loopback demo: 1000000 frames x 2 clients")
    assert INTERRUPTED in completed.stdout
    assert completed.stderr == "juniper-cascor-protocol demo: interrupted\n"


def test_a_stopped_run_reports_what_it_saw_and_the_interruption(run: Any) -> None:
    async def scenario() -> tuple[Any, list[DemoProgress]]:
        stop = asyncio.Event()
        seen: list[DemoProgress] = []

        def stop_once_frames_arrive(progress: DemoProgress) -> None:
            seen.append(progress)
            if progress.deliveries:
                stop.set()

        options = DemoOptions(frames=1_000_000, clients=1)
        report = await run_demo(options, on_progress=stop_once_frames_arrive, stop=stop)
        return report, seen

    report, seen = run(scenario())

    assert report.problems == [INTERRUPTED]
    assert 0 < report.frames_received < report.frames
    assert report.tasks == 0
    assert seen[-1].deliveries > 0
