"""How far a demo run has got, and a live display of it on a terminal (``rich``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["DemoProgress", "show_progress"]


@dataclass(frozen=True, slots=True)
class DemoProgress:
    """A snapshot of a run, as ``run_demo(on_progress=...)`` reports it."""

    phase: str
    """``connecting``, ``/ws/control``, ``/ws/training``, ``/ws/v1/workers``, ``closing`` or
    ``done``."""
    deliveries: int
    """Broadcast frames received so far, summed over the clients."""
    deliveries_total: int
    tasks: int
    """Worker tasks settled (accepted or not) so far."""
    tasks_total: int


@contextmanager
def show_progress(console: Console) -> Iterator[Callable[[DemoProgress], None]]:
    """A live display on ``console`` while the block runs, erased at its end; yields the
    ``on_progress`` callback that updates it."""
    columns = (
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bars:
        phase = bars.add_task("connecting", total=None)
        frames = bars.add_task("/ws/training", total=None)
        tasks = bars.add_task("/ws/v1/workers", total=None)

        def update(progress: DemoProgress) -> None:
            bars.update(phase, description=progress.phase)
            bars.update(frames, completed=progress.deliveries, total=progress.deliveries_total)
            bars.update(tasks, completed=progress.tasks, total=progress.tasks_total)

        yield update
