"""Run a long asyncio command so that Ctrl-C stops it cleanly instead of cancelling it.

The command gets an :class:`asyncio.Event` that SIGINT sets: it finishes its own way (closes
its connections, flushes its file) and its caller prints the partial summary and exits with 130.
Where the event loop cannot catch signals (Windows, a thread other than the main one), Ctrl-C
falls back to asyncio's default: the command is cancelled and ``KeyboardInterrupt`` raised after
its ``finally`` blocks ran, which :func:`run_until_interrupted` reports the same way.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["run_until_interrupted"]


def run_until_interrupted(command: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> bool:
    """Run ``command(stop)`` in a new event loop; ``True`` if Ctrl-C ended it.

    ``stop`` is set on SIGINT; ``command`` should then return promptly.
    """
    interrupted = False

    def on_sigint(stop: asyncio.Event) -> None:
        nonlocal interrupted
        interrupted = True
        stop.set()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGINT, on_sigint, stop)
        except (NotImplementedError, RuntimeError, ValueError):
            installed = False  # no signal support here: asyncio's default applies
        else:
            installed = True
        try:
            await command(stop)
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGINT)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        return True
    return interrupted
