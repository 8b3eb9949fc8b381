"""``record`` and ``replay`` as an operator runs them: real processes, real sockets, real Ctrl-C.

The demo's :class:`LoopbackServer` plays the live training server. ``record`` captures it in a
subprocess, ``validate`` audits the capture, and ``replay`` serves it again to a
:class:`TrainingClient`, which must see exactly what the recorder saw, numbered without a gap.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from juniper_cascor_protocol.capture_file import CapturedMessage, read_capture
from juniper_cascor_protocol.demo import TRAINING_PATH, LoopbackServer, TrainingClient
from juniper_cascor_protocol.envelope import (
    BaseEnvelope,
    MetricsEnvelope,
    StateEnvelope,
    TopologyEnvelope,
)

TOOL = (sys.executable, "-m", "juniper_cascor_protocol")
TOPOLOGY = {"weights": [[i * 0.25 for i in range(50)] for _ in range(50)]}
SESSION: list[tuple[type[BaseEnvelope], dict[str, Any]]] = [
    *[(MetricsEnvelope, {"epoch": i, "loss": 1 / (i + 1)}) for i in range(100)],
    (TopologyEnvelope, TOPOLOGY),  # over the server's 4096-byte frames: chunked
    *[(MetricsEnvelope, {"epoch": i, "loss": 1 / (i + 1)}) for i in range(100, 200)],
    (StateEnvelope, {"phase": "done"}),
]
EXPECTED = [(t.model_fields["type"].default, d) for t, d in SESSION]


async def tool(*args: str | Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *TOOL,
        *map(str, args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(process: asyncio.subprocess.Process) -> tuple[int, str, str]:
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def served_url(replay: asyncio.subprocess.Process) -> str:
    """The URL from replay's first line: ``serving ws://127.0.0.1:PORT/ws/training from ...``."""
    assert replay.stderr is not None
    return (await replay.stderr.readline()).decode().split()[1]


async def wait_for_subscribers(server: LoopbackServer, count: int = 1) -> None:
    while server.training.subscribers < count:
        await asyncio.sleep(0.01)


async def broadcast(
    server: LoopbackServer, session: Sequence[tuple[type[BaseEnvelope], Any]]
) -> int:
    """Broadcast ``session``; the number of wire frames it took."""
    return sum([len(await server.training.broadcast(t, data)) for t, data in session])


def records(path: Path) -> list[CapturedMessage]:
    with path.open("rb") as lines:
        read = [item for _, item in read_capture(lines)]
    assert all(isinstance(item, CapturedMessage) for item in read), read
    return [item for item in read if isinstance(item, CapturedMessage)]


def test_record_validate_replay_round_trip(run: Any, tmp_path: Path) -> None:
    capture = tmp_path / "capture.jsonl"

    async def scenario() -> tuple[list[tuple[str, Any]], TrainingClient, dict[str, Any]]:
        async with LoopbackServer(max_frame_bytes=4096) as server:
            recorder = await tool(
                "record", server.url(TRAINING_PATH), "-o", capture, "--json", "--no-progress"
            )
            await wait_for_subscribers(server)
            sent = await broadcast(server, SESSION)
        code, out, err = await finish(recorder)  # the server going away ends the recording
        assert code == 0, err
        summary = json.loads(out)
        assert summary["frames"] == sent + 2
        assert summary["ended"] == "closed"
        assert summary["close"] == "the server closed the connection (code 1001)"
        assert summary["seq"] == {"gaps": 0, "missing": 0, "duplicates": 0, "resets": 0}
        assert summary["chunked"]["reassembled"] == 1

        validator = await tool("validate", capture, "--json")
        code, out, err = await finish(validator)
        assert code == 0, out + err
        assert json.loads(out)["frames"] == sent + 2

        replay = await tool(
            "replay",
            capture,
            "--port",
            "0",
            "--wait-for-client",
            "--as-fast-as-possible",
            "--max-frame-bytes",
            "2048",
            "--json",
        )
        url = await served_url(replay)
        received: list[BaseEnvelope] = []
        client = TrainingClient(on_message=received.append)
        await client.run(url)  # until the replay has played its pass and closes
        code, out, err = await finish(replay)
        assert code == 0, err
        got = [(e.type, e.data) for e in received if e.type != "initial_metrics"]
        return got, client, json.loads(out)

    got, client, summary = run(scenario())
    assert got == EXPECTED
    assert (client.seq.gaps, client.seq.duplicates, client.seq.resets) == (0, 0, 0)
    assert client.stats.session.reassembly.completed == 1  # the topology, re-chunked at 2048
    assert summary["messages"] == len(SESSION)
    assert summary["clients_served"] == 1
    assert records(capture)[0].endpoint == TRAINING_PATH


def test_ctrl_c_stops_record_with_the_capture_flushed_and_a_partial_summary(
    run: Any, tmp_path: Path
) -> None:
    capture = tmp_path / "capture.jsonl"

    async def scenario() -> tuple[int, str, str]:
        async with LoopbackServer() as server:
            recorder = await tool("record", server.url(TRAINING_PATH), "-o", capture)
            await wait_for_subscribers(server)
            epoch = 0
            # The recorder flushes four times a second: broadcast until 50 frames are on disk.
            while not capture.exists() or capture.read_bytes().count(b"\n") < 50:
                await server.training.broadcast(MetricsEnvelope, {"epoch": epoch})
                epoch += 1
                await asyncio.sleep(0.005)
            recorder.send_signal(signal.SIGINT)
            return await finish(recorder)

    code, out, err = run(scenario())
    assert code == 130
    assert "Traceback" not in out + err
    assert err == "juniper-cascor-protocol record: interrupted\n"
    assert "ended: interrupted (Ctrl-C)" in out
    captured = records(capture)
    assert f"recorded {len(captured):,} frames" in out
    assert len(captured) >= 50


def test_a_server_going_away_mid_capture_ends_the_recording_cleanly(
    run: Any, tmp_path: Path
) -> None:
    capture = tmp_path / "capture.jsonl"

    async def scenario() -> tuple[int, str, str, int]:
        async with LoopbackServer() as server:
            recorder = await tool(
                "record", server.url(TRAINING_PATH), "-o", capture, "--frames", "100000"
            )
            await wait_for_subscribers(server)
            sent = await broadcast(server, SESSION[:50])
        return (*await finish(recorder), sent)

    code, out, err, sent = run(scenario())
    assert code == 0, err
    assert "ended: the server closed the connection (code 1001)" in out
    assert "problems: none" in out
    assert len(records(capture)) == sent + 2


def test_ctrl_c_stops_replay_and_closes_its_clients(run: Any, tmp_path: Path) -> None:
    capture = tmp_path / "capture.jsonl"

    async def scenario() -> tuple[int, str, str, int]:
        async with LoopbackServer(max_frame_bytes=4096) as server:
            recorder = await tool("record", server.url(TRAINING_PATH), "-o", capture)
            await wait_for_subscribers(server)
            await broadcast(server, SESSION)
        await finish(recorder)

        replay = await tool("replay", capture, "--port", "0", "--loop", "--as-fast-as-possible")
        url = await served_url(replay)
        client = TrainingClient()
        reader = asyncio.create_task(client.run(url))
        await client.wait_for_seq(3 * len(SESSION))  # looping: past the third pass
        replay.send_signal(signal.SIGINT)
        code, out, err = await finish(replay)
        await reader  # the replay closed the connection on its way out
        return code, out, err, client.seq.gaps

    code, out, err, gaps = run(scenario())
    assert code == 130
    assert "Traceback" not in out + err
    assert err.splitlines()[-1] == "juniper-cascor-protocol replay: interrupted"
    assert "ended: interrupted (Ctrl-C)" in out
    assert gaps == 0
