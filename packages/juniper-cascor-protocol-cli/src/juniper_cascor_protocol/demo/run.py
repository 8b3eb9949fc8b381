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
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

import numpy as np

from juniper_cascor_protocol.demo.candidate import make_task_tensors, train_candidate
from juniper_cascor_protocol.demo.control_client import ControlClient
from juniper_cascor_protocol.demo.control_service import INVALID_PARAMS_CODE
from juniper_cascor_protocol.demo.options import DemoOptions
from juniper_cascor_protocol.demo.report import DemoReport
from juniper_cascor_protocol.demo.server import (
    CONTROL_PATH,
    TRAINING_PATH,
    WORKERS_PATH,
    LoopbackServer,
)
from juniper_cascor_protocol.demo.training_client import TrainingClient
from juniper_cascor_protocol.demo.worker import DemoWorker
from juniper_cascor_protocol.demo.worker_hub import TaskOutcome, WorkerTask
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

__all__ = ["run_demo", "run_demo_sync"]

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


async def run_demo(options: DemoOptions | None = None) -> DemoReport:
    """Run one demo over loopback and return its report; never raises for what it observes.

    The traffic is stopped at ``options.timeout_s``, and a run cut short reports what it saw so
    far plus a ``timed out`` problem; closing the connections then takes at most about one
    second more (see ``transport.CLOSE_TIMEOUT_S``). Failures of the clients or the server
    are reported as problems too.
    """
    demo = _Demo(options if options is not None else DemoOptions())
    started = time.perf_counter()
    try:
        async with asyncio.timeout(demo.options.timeout_s):
            await demo.execute()
    except TimeoutError:
        demo.problems.append(f"timed out after timeout_s={demo.options.timeout_s:g} s")
    except Exception as error:
        demo.problems.extend(_describe(error))
    return demo.report(time.perf_counter() - started)


def run_demo_sync(options: DemoOptions | None = None) -> DemoReport:
    """:func:`run_demo` in a fresh event loop (``asyncio.run``)."""
    return asyncio.run(run_demo(options))


class _Demo:
    def __init__(self, options: DemoOptions) -> None:
        self.options = options
        self.problems: list[str] = []
        self.server: LoopbackServer | None = None
        self.clients: list[TrainingClient] = []
        self.workers: list[DemoWorker] = []
        self.topologies: list[list[BaseEnvelope]] = []
        self.original_topology: dict[str, Any] | None = None
        self.outcomes: list[TaskOutcome] = []
        self.broadcast_s = 0.0
        self.tensor_s = 0.0

    async def execute(self) -> None:
        async with LoopbackServer(port=self.options.port) as server, asyncio.TaskGroup() as tasks:
            self.server = server
            for _ in range(self.options.clients):
                received: list[BaseEnvelope] = []
                self.topologies.append(received)
                client = TrainingClient(on_message=_keep_topologies(received))
                self.clients.append(client)
                tasks.create_task(
                    self._guard(
                        f"training client {len(self.clients)}",
                        client.run(server.url(TRAINING_PATH)),
                    )
                )
            await asyncio.gather(*(client.wait_subscribed() for client in self.clients))
            await self._control_phase(server)
            await self._broadcast_phase(server)
            await self._worker_phase(server, tasks)
            for client in self.clients:
                await client.disconnect()
        self._check_worker_sessions()

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
                self.original_topology = _big_topology()
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
        self, number: int, client: TrainingClient, topologies: list[BaseEnvelope], sent: int
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
        if [topology.data for topology in topologies] != [self.original_topology]:
            self.problems.append(
                f"{where}: the chunked topology was not rebuilt equal to the original "
                f"({len(topologies)} topology messages delivered)"
            )

    async def _worker_phase(self, server: LoopbackServer, tasks: asyncio.TaskGroup) -> None:
        count = self.options.clients
        work = [
            WorkerTask.create(f"task-{n}", make_task_tensors(self.options.tensor_bytes, seed=n))
            for n in range(count)
        ]
        started = time.perf_counter()
        pending: list[Awaitable[TaskOutcome]] = [server.workers.submit(task) for task in work]
        for n in range(count):
            worker = DemoWorker(f"demo-worker-{n}")
            self.workers.append(worker)
            tasks.create_task(
                self._guard(worker.worker_id, worker.run(server.url(WORKERS_PATH), max_tasks=1))
            )
        self.outcomes = list(await asyncio.gather(*pending))
        self.tensor_s = time.perf_counter() - started
        # End any worker still waiting for a task (4010), so the task group can finish.
        await server.workers.close()
        for task, outcome in zip(work, self.outcomes, strict=True):
            self._check_outcome(task, outcome)

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

    def _check_outcome(self, task: WorkerTask, outcome: TaskOutcome) -> None:
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
        expected = train_candidate(task.tensors[CANDIDATE_INPUT], task.tensors[RESIDUAL_ERROR])
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
            chunked_reassembled=sum(
                [topology.data for topology in topologies] == [self.original_topology]
                for topologies in self.topologies
            ),
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


def _keep_topologies(into: list[BaseEnvelope]) -> Callable[[BaseEnvelope], None]:
    def keep(envelope: BaseEnvelope) -> None:
        if isinstance(envelope, TopologyEnvelope):
            into.append(envelope)

    return keep


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
