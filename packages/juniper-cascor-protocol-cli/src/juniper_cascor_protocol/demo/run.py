"""One demo run: a loopback server, training clients, a control client and workers.

The run has three phases, each checked end to end:

1. ``/ws/control``: every known command, concurrently, plus an unknown command, invalid params
   and malformed JSON; each answer must carry the right ``command_id``, status and code.
2. ``/ws/training``: ``frames`` broadcast messages of every type, one of them a topology too large
   for one frame; every client must receive every frame (no gap, no duplicate, nothing refused)
   and rebuild the topology equal to the original.
3. ``/ws/v1/workers``: ``clients`` workers each take one task of ``tensor_mb`` megabytes, named
   as juniper-cascor names them; tensors must arrive bit-exact (checked by CRC-32 carried in
   ``candidate_data``) and match their manifests, and the worker's result must agree with the
   server's own computation.

Every protocol rule is the sessions'; the demo binds them to sockets and checks the outcomes.

Memory does not grow with the options: broadcast frames are built one at a time and sent with
back-pressure; each client checks the chunked topology when it arrives and keeps only the
verdict; the tasks share one set of tensors (their CRC-32s and the server's expected result are
computed once), the hub hands out tasks only within its ``max_bytes_in_flight``, and each
result is checked as it comes and its tensors dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Coroutine
from typing import Any, Final

import numpy as np

from juniper_cascor_protocol.demo.candidate import (
    CandidateScore,
    make_task_tensors,
    train_candidate,
)
from juniper_cascor_protocol.demo.control_client import ControlClient
from juniper_cascor_protocol.demo.control_service import INVALID_PARAMS_CODE
from juniper_cascor_protocol.demo.options import DemoOptions
from juniper_cascor_protocol.demo.progress import DemoProgress
from juniper_cascor_protocol.demo.report import DemoReport
from juniper_cascor_protocol.demo.server import (
    CONTROL_PATH,
    TRAINING_PATH,
    WORKERS_PATH,
    LoopbackServer,
)
from juniper_cascor_protocol.demo.training_client import TrainingClient
from juniper_cascor_protocol.demo.worker import DemoWorker
from juniper_cascor_protocol.demo.worker_hub import TaskOutcome, WorkerTask, crc32
from juniper_cascor_protocol.envelope.base import BaseEnvelope
from juniper_cascor_protocol.envelope.control import (
    MALFORMED_JSON_CODE,
    UNKNOWN_COMMAND_CODE,
    CommandStatus,
    ControlCommandName,
)
from juniper_cascor_protocol.envelope.control_session import CommandAnswered
from juniper_cascor_protocol.envelope.training import (
    CandidateProgressEnvelope,
    CascadeAddEnvelope,
    EventEnvelope,
    MetricsEnvelope,
    StateEnvelope,
    TopologyEnvelope,
)
from juniper_cascor_protocol.worker.close_codes import CloseCode
from juniper_cascor_protocol.worker.tensor_names import (
    CANDIDATE_INPUT,
    CANDIDATE_UUID_KEY,
    RESIDUAL_ERROR,
    RESULT_TENSORS,
)

__all__ = ["INTERRUPTED", "run_demo", "run_demo_sync"]

# Broadcast mix: mostly metrics, as in a real training run.
_MIX: Final[tuple[type[BaseEnvelope], ...]] = (
    MetricsEnvelope,
    MetricsEnvelope,
    MetricsEnvelope,
    MetricsEnvelope,
    CandidateProgressEnvelope,
    StateEnvelope,
    EventEnvelope,
    CascadeAddEnvelope,
)
# A topology this many nodes large does not fit the default 1 MiB frame budget.
_TOPOLOGY_NODES: Final = 12_000
# The worker's result is recomputed by the server; they may differ by rounding only.
_SCORE_TOLERANCE: Final = 1e-9
_TENSOR_TOLERANCE: Final = 1e-5
# A worker ends its session after its task (1000), or the server ends it at shutdown (4010).
_CLEAN_CLOSES: Final = frozenset({CloseCode.NORMAL, CloseCode.NO_MORE_WORK})


_PROGRESS_INTERVAL_S: Final = 0.2


INTERRUPTED: Final = "interrupted before the end: the report is partial"
"""The problem a run stopped through ``run_demo(stop=...)`` reports."""


class _StoppedError(Exception):
    """``stop`` was set before the run ended."""


async def run_demo(
    options: DemoOptions | None = None,
    *,
    on_progress: Callable[[DemoProgress], None] | None = None,
    stop: asyncio.Event | None = None,
) -> DemoReport:
    """Run one demo over loopback and return its report; never raises for what it observes.

    The traffic is stopped at ``options.time_limit_s``, and a run cut short reports what it saw
    so far plus a ``timed out`` problem; closing the connections then takes at most about one
    second more (see ``transport.CLOSE_TIMEOUT_S``). Setting ``stop`` (the command sets it on
    Ctrl-C) ends the run the same way, with the problem :data:`INTERRUPTED`. Failures of the
    clients or the server are reported as problems too. ``on_progress``, if given, is called
    about five times a second with what has been done so far, and once more at the end.
    """
    demo = _Demo(options if options is not None else DemoOptions())
    started = time.perf_counter()
    watcher = None
    if on_progress is not None:
        watcher = asyncio.create_task(_report_progress(demo, on_progress))
    try:
        async with asyncio.timeout(demo.options.time_limit_s):
            await _unless_stopped(demo.execute(), stop)
    except TimeoutError:
        demo.problems.append(f"timed out after {demo.options.time_limit_s:g} s")
    except _StoppedError:
        demo.problems.append(INTERRUPTED)
    except Exception as error:
        demo.problems.extend(_describe(error))
    finally:
        if watcher is not None and on_progress is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            on_progress(demo.progress())
    return demo.report(time.perf_counter() - started)


def run_demo_sync(
    options: DemoOptions | None = None,
    *,
    on_progress: Callable[[DemoProgress], None] | None = None,
) -> DemoReport:
    """:func:`run_demo` in a fresh event loop (``asyncio.run``)."""
    return asyncio.run(run_demo(options, on_progress=on_progress))


async def _unless_stopped(job: Coroutine[Any, Any, None], stop: asyncio.Event | None) -> None:
    """Await ``job``; if ``stop`` is set first, cancel it and raise :class:`_StoppedError`."""
    if stop is None:
        await job
        return
    running = asyncio.ensure_future(job)
    stopping = asyncio.ensure_future(stop.wait())
    stopped = False
    try:
        done, _ = await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopped = running not in done
    finally:  # also when the time limit cancels us: neither may outlive the run
        for task in (running, stopping):
            task.cancel()
        for task in (running, stopping):
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if stopped:
        raise _StoppedError
    running.result()


async def _report_progress(demo: _Demo, on_progress: Callable[[DemoProgress], None]) -> None:
    while True:
        on_progress(demo.progress())
        await asyncio.sleep(_PROGRESS_INTERVAL_S)


class _Demo:
    def __init__(self, options: DemoOptions) -> None:
        self.options = options
        self.problems: list[str] = []
        self.server: LoopbackServer | None = None
        self.clients: list[TrainingClient] = []
        self.workers: list[DemoWorker] = []
        self.original_topology: dict[str, Any] = _big_topology()
        self.topologies: list[_TopologyCheck] = []
        self.outcomes: list[TaskOutcome] = []
        """Every task's outcome, its tensors dropped once checked."""
        self.phase = "connecting"
        self.broadcast_s = 0.0
        self.tensor_s = 0.0

    async def execute(self) -> None:
        async with LoopbackServer(port=self.options.port) as server, asyncio.TaskGroup() as tasks:
            self.server = server
            for _ in range(self.options.clients):
                check = _TopologyCheck(self.original_topology)
                self.topologies.append(check)
                client = TrainingClient(on_message=check)
                self.clients.append(client)
                tasks.create_task(
                    self._guard(
                        f"training client {len(self.clients)}",
                        client.run(server.url(TRAINING_PATH)),
                    )
                )
            await asyncio.gather(*(client.wait_subscribed() for client in self.clients))
            self.phase = "/ws/control"
            await self._control_phase(server)
            self.phase = "/ws/training"
            await self._broadcast_phase(server)
            self.phase = "/ws/v1/workers"
            await self._worker_phase(server, tasks)
            self.phase = "closing"
            for client in self.clients:
                await client.disconnect()
        self._check_worker_sessions()
        self.phase = "done"

    def progress(self) -> DemoProgress:
        """What has been done so far."""
        return DemoProgress(
            phase=self.phase,
            # The control phase's state frames count too: close enough for a progress bar.
            deliveries=min(
                sum(client.seq.received for client in self.clients), self.options.deliveries
            ),
            deliveries_total=self.options.deliveries,
            tasks=len(self.outcomes),
            tasks_total=self.options.clients,
        )

    async def _guard(self, name: str, job: Coroutine[Any, Any, None]) -> None:
        """Run a client's loop, turning its failure into a problem instead of ending the run."""
        try:
            await job
        except Exception as error:
            self.problems.extend(f"{name}: {line}" for line in _describe(error))

    async def _control_phase(self, server: LoopbackServer) -> None:
        requests: list[tuple[str, dict[str, Any]]] = [
            *((name.value, {}) for name in ControlCommandName),
            ("warp_drive", {}),
            ("set_params", {"learning_rate": -1}),
        ]
        expected = [(CommandStatus.SUCCESS.value, None)] * len(ControlCommandName) + [
            (CommandStatus.ERROR.value, UNKNOWN_COMMAND_CODE),
            (CommandStatus.ERROR.value, INVALID_PARAMS_CODE),
        ]
        async with ControlClient.connect(server.url(CONTROL_PATH)) as control:
            answers = await asyncio.gather(*(control.request(c, p) for c, p in requests))
            malformed = await control.request_raw('{"command": "start", ')
        for (command, _), answer, (status, code) in zip(requests, answers, expected, strict=True):
            if not isinstance(answer, CommandAnswered):
                self.problems.append(f"/ws/control: {command!r} got an invalid response")
                continue
            data = answer.response.data
            got = (data.status, data.code)
            if data.command != command or got != (status, code):
                self.problems.append(
                    f"/ws/control: {command!r} answered {got} for {data.command!r}, "
                    f"expected {(status, code)}"
                )
        if malformed.data.code != MALFORMED_JSON_CODE:
            self.problems.append(
                f"/ws/control: malformed JSON answered code={malformed.data.code!r}, "
                f"expected {MALFORMED_JSON_CODE!r}"
            )

    async def _broadcast_phase(self, server: LoopbackServer) -> None:
        hub = server.training
        started = time.perf_counter()
        topology_at = self.options.frames // 2
        for index in range(self.options.frames):
            if index == topology_at:
                await hub.broadcast(TopologyEnvelope, self.original_topology)
                continue
            kind = _MIX[index % len(_MIX)]
            await hub.broadcast(kind, {"index": index, "loss": 1.0 / (index + 1)})
        last = hub.current_seq
        await asyncio.gather(*(client.wait_for_seq(last) for client in self.clients))
        self.broadcast_s = time.perf_counter() - started
        for number, (client, topologies) in enumerate(
            zip(self.clients, self.topologies, strict=True), 1
        ):
            self._check_client(number, client, topologies, hub.frames_sent)

    def _check_client(
        self, number: int, client: TrainingClient, topologies: _TopologyCheck, sent: int
    ) -> None:
        where = f"/ws/training client {number}"
        seq = client.seq
        if seq.gaps or seq.duplicates or seq.resets:
            self.problems.append(
                f"{where}: {seq.gaps} gaps ({seq.missing} missing), "
                f"{seq.duplicates} duplicates, {seq.resets} resets"
            )
        if seq.received != sent:
            self.problems.append(f"{where}: received {seq.received} of {sent} broadcast frames")
        stats = client.stats
        if stats.bad_frames:
            session = stats.session
            self.problems.append(
                f"{where}: {stats.bad_frames} bad frames (refused {dict(session.refused)}, "
                f"unknown {dict(session.unknown)}, chunk rejections "
                f"{dict(session.reassembly.rejected)})"
            )
        if (topologies.delivered, topologies.equal) != (1, 1):
            self.problems.append(
                f"{where}: the chunked topology was not rebuilt equal to the original "
                f"({topologies.delivered} topology messages delivered, {topologies.equal} equal)"
            )

    async def _worker_phase(self, server: LoopbackServer, tasks: asyncio.TaskGroup) -> None:
        count = self.options.clients
        # One set of tensors for every task: its checksums and the expected result once.
        tensors = make_task_tensors(self.options.tensor_bytes, seed=0)
        checksums = {name: crc32(array) for name, array in tensors.items()}
        expected = train_candidate(tensors[CANDIDATE_INPUT], tensors[RESIDUAL_ERROR])
        work = {
            f"task-{n}": WorkerTask.create(f"task-{n}", tensors, checksums=checksums)
            for n in range(count)
        }
        started = time.perf_counter()
        pending = [server.workers.submit(task) for task in work.values()]
        for n in range(count):
            worker = DemoWorker(f"demo-worker-{n}")
            self.workers.append(worker)
            tasks.create_task(
                self._guard(worker.worker_id, worker.run(server.url(WORKERS_PATH), max_tasks=1))
            )
        for next_outcome in asyncio.as_completed(pending):
            outcome = await next_outcome
            self._check_outcome(work[outcome.task_id], outcome, expected)
            outcome.tensors = {}  # checked: hold no result frame longer
            self.outcomes.append(outcome)
        self.tensor_s = time.perf_counter() - started
        # End any worker still waiting for a task (4010), so the task group can finish.
        await server.workers.close()

    def _check_worker_sessions(self) -> None:
        """Once every worker has left: what either end of a session saw go wrong."""
        hub = self.server.workers if self.server is not None else None
        if hub is not None and hub.violations:
            self.problems.append(f"/ws/v1/workers server: violations {dict(hub.violations)}")
        for worker in self.workers:
            where = f"/ws/v1/workers {worker.worker_id}"
            if worker.stats.problems:
                self.problems.append(f"{where}: problems {dict(worker.stats.problems)}")
            closed = worker.closed
            if closed is None or closed.code not in _CLEAN_CLOSES:
                code = None if closed is None else closed.code
                self.problems.append(f"{where}: session ended with close code {code}")

    def _check_outcome(
        self, task: WorkerTask, outcome: TaskOutcome, expected: CandidateScore
    ) -> None:
        where = f"/ws/v1/workers {task.task_id}"
        self.problems.extend(f"{where}: {problem}" for problem in outcome.problems)
        result = outcome.result
        if result is None:
            return
        if not result.success:
            self.problems.append(f"{where}: worker failed: {result.error_message}")
            return
        if result.candidate_uuid != task.candidate_data.get(CANDIDATE_UUID_KEY):
            self.problems.append(f"{where}: candidate_uuid {result.candidate_uuid!r} not echoed")
        if not math.isclose(result.correlation, expected.correlation, abs_tol=_SCORE_TOLERANCE):
            self.problems.append(
                f"{where}: correlation {result.correlation!r} differs from the server's "
                f"{expected.correlation!r}"
            )
        if tuple(outcome.tensors) != RESULT_TENSORS:
            self.problems.append(f"{where}: result tensors {list(outcome.tensors)}")
            return
        for name, array in expected.tensors.items():
            if not np.allclose(outcome.tensors[name], array, atol=_TENSOR_TOLERANCE):
                self.problems.append(f"{where}: {name} differs from the server's computation")

    def report(self, duration_s: float) -> DemoReport:
        server = self.server
        hub = server.training if server is not None else None
        workers = server.workers if server is not None else None
        return DemoReport(
            frames=self.options.frames,
            clients=self.options.clients,
            tensor_mb=self.options.tensor_mb,
            duration_s=duration_s,
            broadcast_s=self.broadcast_s,
            tensor_s=self.tensor_s,
            frames_by_type=dict(hub.frames_by_type) if hub is not None else {},
            frames_received=sum(client.seq.received for client in self.clients),
            broadcast_bytes=hub.bytes_sent if hub is not None else 0,
            chunked_reassembled=sum(check.equal for check in self.topologies),
            seq_gaps=sum(client.seq.gaps for client in self.clients),
            seq_missing=sum(client.seq.missing for client in self.clients),
            seq_duplicates=sum(client.seq.duplicates for client in self.clients),
            control_responses=dict(server.control.responses) if server is not None else {},
            tasks=sum(outcome.accepted for outcome in self.outcomes),
            tensors_sent=workers.traffic.frames_sent + workers.traffic.frames_received
            if workers
            else 0,
            tensor_bytes=workers.traffic.bytes_sent + workers.traffic.bytes_received
            if workers
            else 0,
            problems=list(self.problems),
        )


class _TopologyCheck:
    """A client's ``on_message``: compares each topology delivered with the original at once,
    keeping only the counts (64 clients' copies would take hundreds of megabytes)."""

    def __init__(self, original: dict[str, Any]) -> None:
        self.original = original
        self.delivered = 0
        self.equal = 0

    def __call__(self, envelope: BaseEnvelope) -> None:
        if isinstance(envelope, TopologyEnvelope):
            self.delivered += 1
            self.equal += envelope.data == self.original


def _big_topology() -> dict[str, Any]:
    return {
        "hidden_units": _TOPOLOGY_NODES,
        "nodes": [
            {
                "id": n,
                "activation": "tanh",
                "weights": [round(math.sin(n + k), 6) for k in range(8)],
            }
            for n in range(_TOPOLOGY_NODES)
        ],
    }


def _describe(error: BaseException) -> list[str]:
    if isinstance(error, BaseExceptionGroup):
        return [line for inner in error.exceptions for line in _describe(inner)]
    return [f"{type(error).__name__}: {error}"]
