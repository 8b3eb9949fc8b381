"""The demo within its documented limits: bounded memory, a time limit that fits the work, the
limits shown by ``--help``, progress reported, and the hub's bound on tensors in flight."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest

from juniper_cascor_protocol.cli import main
from juniper_cascor_protocol.demo import (
    DEFAULT_MAX_BYTES_IN_FLIGHT,
    MAX_CLIENTS,
    MAX_DELIVERIES,
    MAX_FRAMES,
    MAX_TENSOR_MB,
    MAX_TIMEOUT_S,
    WORKERS_PATH,
    DemoOptions,
    DemoProgress,
    DemoWorker,
    LoopbackServer,
    WorkerHub,
    WorkerTask,
    run_demo,
)
from juniper_cascor_protocol.demo.candidate import make_task_tensors

_MB = 2**20
# What a run holds whatever its options: the interpreter, numpy, Pydantic, websockets, the
# 12,000-node topology, and each client's connection and session.
_BASE_BYTES = 160 * _MB
_PER_CLIENT_BYTES = 2 * _MB
# Each task's bytes out with a worker exist a few times at once: the encoded frames, the socket
# buffers on both ends, the worker's float64 copies while it trains.
_COPIES_PER_TASK_IN_FLIGHT = 8

_PEAK_RSS_SCRIPT = """
import json, resource, sys
from juniper_cascor_protocol.demo import DemoOptions, run_demo_sync
report = run_demo_sync(DemoOptions(**json.loads(sys.argv[1])))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"problems": report.problems, "tasks": report.tasks,
                  "peak_bytes": peak if sys.platform == "darwin" else peak * 1024}))
"""


def _memory_bound(options: DemoOptions) -> int:
    """The most a run of ``options`` may hold: it grows with the clients and with the tasks the
    hub lets out at once, never with clients × tensor size."""
    task_bytes = options.tensor_bytes * 5 // 4  # candidate_input and residual_error
    in_flight = max(1, min(options.clients, DEFAULT_MAX_BYTES_IN_FLIGHT // task_bytes))
    return (
        _BASE_BYTES
        + _PER_CLIENT_BYTES * options.clients
        + _COPIES_PER_TASK_IN_FLIGHT * in_flight * task_bytes
    )


@pytest.mark.parametrize(
    "fields",
    [
        # The most clients: 64 tasks of 4 MB were all built at once (1.9 GB and more before).
        {"clients": MAX_CLIENTS, "tensor_mb": 4.0, "frames": 200},
        # The largest tensor: one task at a time.
        {"clients": 2, "tensor_mb": MAX_TENSOR_MB, "frames": 200},
    ],
    ids=["most-clients", "largest-tensor"],
)
def test_a_corner_of_the_limits_finishes_within_a_memory_bound_from_its_options(
    fields: dict[str, Any],
) -> None:
    options = DemoOptions(**fields)

    completed = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS_SCRIPT, json.dumps(fields)],
        capture_output=True,
        text=True,
        check=False,
        timeout=options.time_limit_s + 30,
    )

    assert completed.returncode == 0, completed.stderr
    outcome = json.loads(completed.stdout)
    assert outcome["problems"] == []
    assert outcome["tasks"] == options.clients
    bound = _memory_bound(options)
    assert outcome["peak_bytes"] <= bound, (
        f"peak RSS {outcome['peak_bytes'] / _MB:.0f} MiB > bound {bound / _MB:.0f} MiB"
    )


def test_the_largest_corner_stays_within_its_memory_bound_on_paper() -> None:
    # 64 clients x 64 MB took 12.7 GB: the bound must not grow with clients x tensor size.
    largest = DemoOptions(clients=MAX_CLIENTS, tensor_mb=MAX_TENSOR_MB, frames=200)

    assert _memory_bound(largest) < 1024 * _MB
    assert _memory_bound(largest) < largest.clients * largest.tensor_bytes // 4


def test_frames_times_clients_past_the_limit_is_refused_naming_both() -> None:
    with pytest.raises(ValueError, match="frames x clients") as refused:
        DemoOptions(frames=MAX_FRAMES, clients=MAX_CLIENTS)
    assert f"{MAX_DELIVERIES:,}" in str(refused.value)
    assert DemoOptions(frames=MAX_FRAMES, clients=MAX_DELIVERIES // MAX_FRAMES).deliveries == (
        MAX_DELIVERIES
    )


def test_the_default_time_limit_grows_with_the_work_and_an_explicit_one_is_kept() -> None:
    small = DemoOptions(frames=100, clients=1, tensor_mb=0.1)
    broadcast = DemoOptions(frames=MAX_DELIVERIES // MAX_CLIENTS, clients=MAX_CLIENTS)
    tensors = DemoOptions(clients=MAX_CLIENTS, tensor_mb=MAX_TENSOR_MB)

    assert small.time_limit_s == 60
    assert broadcast.time_limit_s == 60 + 2000 + round(MAX_CLIENTS * 8.0 / 10)
    assert tensors.time_limit_s > 60 + MAX_CLIENTS * MAX_TENSOR_MB / 10
    assert all(o.time_limit_s <= MAX_TIMEOUT_S for o in (small, broadcast, tensors))
    assert DemoOptions(timeout_s=5).time_limit_s == 5
    with pytest.raises(ValueError, match="timeout_s"):
        DemoOptions(timeout_s=MAX_TIMEOUT_S + 1)


def test_demo_help_shows_the_limits_the_options_enforce(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())

    for shown in (
        f"1 to {MAX_FRAMES:,}",
        f"at most {MAX_DELIVERIES:,}",
        f"1 to {MAX_CLIENTS}",
        f"up to {MAX_TENSOR_MB:g}",
        f"up to {MAX_TIMEOUT_S:g}",
        "--timeout",
    ):
        assert shown in text


def test_the_timeout_option_stops_a_long_run_with_a_problem(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["demo", "--frames", "1000000", "--clients", "1", "--timeout", "0.5"])

    assert code == 1
    assert "timed out after 0.5 s" in capsys.readouterr().out


def test_progress_is_reported_while_running_and_complete_at_the_end(run: Any) -> None:
    seen: list[DemoProgress] = []
    options = DemoOptions(frames=3000, clients=3, tensor_mb=0.5)

    report = run(run_demo(options, on_progress=seen.append))

    assert report.problems == []
    assert len(seen) >= 2
    last = seen[-1]
    assert last.phase == "done"
    assert (last.deliveries, last.tasks) == (options.deliveries, options.clients)
    assert (last.deliveries_total, last.tasks_total) == (options.deliveries, options.clients)
    deliveries = [snapshot.deliveries for snapshot in seen]
    assert deliveries == sorted(deliveries)


def test_the_hub_lets_out_tasks_only_within_its_byte_budget(run: Any) -> None:
    tensors = make_task_tensors(1_000_000, seed=1)
    task_bytes = sum(array.nbytes for array in tensors.values())
    hub = WorkerHub(max_bytes_in_flight=2 * task_bytes + task_bytes // 2)  # two fit, not three

    async def scenario() -> list[bool]:
        async with LoopbackServer(workers=hub) as server:
            workers = [DemoWorker(f"w{n}") for n in range(6)]
            running = [
                asyncio.create_task(w.run(server.url(WORKERS_PATH), max_tasks=1)) for w in workers
            ]
            outcomes = await asyncio.gather(
                *(hub.submit(WorkerTask.create(f"t{n}", tensors)) for n in range(6))
            )
            await asyncio.gather(*running)
        return [outcome.accepted for outcome in outcomes]

    assert run(scenario()) == [True] * 6
    assert hub.peak_bytes_in_flight == 2 * task_bytes
    assert hub.bytes_in_flight == 0


def test_a_task_larger_than_the_budget_still_goes_out_alone(run: Any) -> None:
    tensors = make_task_tensors(200_000, seed=2)
    hub = WorkerHub(max_bytes_in_flight=1)

    async def scenario() -> list[bool]:
        async with LoopbackServer(workers=hub) as server:
            workers = [DemoWorker(f"w{n}") for n in range(3)]
            running = [
                asyncio.create_task(w.run(server.url(WORKERS_PATH), max_tasks=1)) for w in workers
            ]
            outcomes = await asyncio.gather(
                *(hub.submit(WorkerTask.create(f"t{n}", tensors)) for n in range(3))
            )
            await asyncio.gather(*running)
        return [outcome.accepted for outcome in outcomes]

    assert run(scenario()) == [True] * 3
    assert hub.peak_bytes_in_flight == sum(array.nbytes for array in tensors.values())
