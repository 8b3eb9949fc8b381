"""Ctrl-C ends a long command its own way: ``run_until_interrupted`` (record, replay, demo)."""

from __future__ import annotations

import asyncio
import os
import signal

from juniper_cascor_protocol.interrupt import run_until_interrupted


def test_sigint_sets_stop_and_the_command_finishes_its_own_way() -> None:
    finished = []

    async def command(stop: asyncio.Event) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C on the terminal would
        await asyncio.wait_for(stop.wait(), 10)
        finished.append("cleaned up")  # runs: the command was not cancelled

    assert run_until_interrupted(command) is True
    assert finished == ["cleaned up"]
    # Python's own handler is back: a later Ctrl-C is a KeyboardInterrupt again.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_command_that_ends_by_itself_was_not_interrupted() -> None:
    async def command(stop: asyncio.Event) -> None:
        assert not stop.is_set()

    assert run_until_interrupted(command) is False
