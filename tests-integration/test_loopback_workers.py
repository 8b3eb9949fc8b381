"""``/ws/v1/workers`` over real loopback connections: sessions, tensors and the task queue."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
from numpy.typing import NDArray
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from juniper_cascor_protocol.demo.candidate import make_task_tensors, train_candidate
from juniper_cascor_protocol.demo.server import WORKERS_PATH, LoopbackServer
from juniper_cascor_protocol.demo.worker import DemoWorker
from juniper_cascor_protocol.demo.worker_hub import TaskOutcome, WorkerHub, WorkerTask
from juniper_cascor_protocol.worker import BinaryFrame
from juniper_cascor_protocol.worker.close_codes import CloseCode
from juniper_cascor_protocol.worker.manifest import TensorManifest, check_tensors
from juniper_cascor_protocol.worker.messages import (
    ConnectionEstablishedMessage,
    ErrorMessage,
    RegisterMessage,
    ResultAckMessage,
    TaskAssignMessage,
    TaskResultMessage,
    parse_worker_message,
)
from juniper_cascor_protocol.worker.protocol_version import PROTOCOL_VERSION
from juniper_cascor_protocol.worker.tensor_names import (
    CANDIDATE_INPUT,
    RESIDUAL_ERROR,
    RESULT_TENSORS,
)


def _same(received: NDArray[Any], original: NDArray[Any]) -> bool:
    """Whether ``received`` is bit for bit ``original``: dtype, shape and every byte."""
    return (
        received.dtype == original.dtype
        and received.shape == original.shape
        and received.tobytes() == original.tobytes()
    )


async def _serve_tasks(
    server: LoopbackServer, worker: DemoWorker, tasks: list[WorkerTask]
) -> list[TaskOutcome]:
    pending = [server.workers.submit(task) for task in tasks]
    runner = asyncio.create_task(worker.run(server.url(WORKERS_PATH), max_tasks=len(tasks)))
    outcomes = list(await asyncio.gather(*pending))
    await runner
    return outcomes


def test_full_session_moves_float32_and_float64_tensors_bit_exact(run: Any) -> None:
    tensors = make_task_tensors(1_000_000, seed=3)
    # juniper-cascor sends float32; any plain numeric dtype travels.
    tensors[RESIDUAL_ERROR] = tensors[RESIDUAL_ERROR].astype(np.float64)
    task = WorkerTask.create("task-1", tensors, round_id="round-7", candidate_index=4)

    async def scenario() -> tuple[DemoWorker, TaskOutcome, LoopbackServer]:
        async with LoopbackServer() as server:
            worker = DemoWorker("worker-1", heartbeats=2, keep_tensors=True)
            (outcome,) = await _serve_tasks(server, worker, [task])
            return worker, outcome, server

    worker, outcome, server = run(scenario())
    hub, stats = server.workers, worker.stats
    assert worker.established is not None
    assert worker.established.protocol_version == PROTOCOL_VERSION
    assert hub.registered == ["worker-1"]
    assert stats.registered
    assert (stats.heartbeats_sent, hub.heartbeats_received, stats.heartbeats_received) == (2, 2, 2)
    # Server -> worker: every tensor as received is bit for bit the original.
    (received,) = worker.received_tensors
    assert list(received) == [CANDIDATE_INPUT, RESIDUAL_ERROR]
    assert all(_same(received[name], array) for name, array in tensors.items())
    # Worker -> server: the result tensors, as the server received them, are exact.
    (sent,) = worker.sent_tensors
    assert tuple(sent) == tuple(outcome.tensors) == RESULT_TENSORS
    assert all(_same(outcome.tensors[name], array) for name, array in sent.items())
    result = outcome.result
    assert result is not None
    assert check_tensors(result.tensor_manifest, outcome.tensors) == []
    assert result.success
    assert (result.task_id, result.candidate_id) == ("task-1", 4)
    assert result.candidate_uuid == task.candidate_data["candidate_uuid"]
    expected = train_candidate(tensors[CANDIDATE_INPUT], tensors[RESIDUAL_ERROR])
    assert result.correlation == expected.correlation
    assert 0.0 < result.correlation <= 1.0
    assert result.all_correlations == expected.all_correlations
    assert outcome.ack_status == "accepted"
    assert stats.acks == {"accepted": 1}
    assert stats.problems.total() == 0
    assert hub.violations.total() == 0
    assert stats.tensors.frames_received == hub.traffic.frames_sent == len(tensors)
    assert stats.tensors.bytes_received == hub.traffic.bytes_sent
    assert stats.tensors.frames_sent == hub.traffic.frames_received == len(RESULT_TENSORS)
    # The worker ended the session once its task was acknowledged.
    assert worker.closed is not None
    assert (worker.closed.code, worker.closed.by_peer) == (CloseCode.NORMAL, False)
    assert hub.closes == {CloseCode.NORMAL: 1}


def test_a_64_mb_tensor_crosses_bit_exact(run: Any) -> None:
    tensors = make_task_tensors(64_000_000, seed=11)
    assert tensors[CANDIDATE_INPUT].nbytes == 64_000_000
    task = WorkerTask.create("big", tensors)

    async def scenario() -> tuple[DemoWorker, TaskOutcome]:
        async with LoopbackServer() as server:
            worker = DemoWorker("big-worker", keep_tensors=True)
            (outcome,) = await _serve_tasks(server, worker, [task])
            return worker, outcome

    worker, outcome = run(scenario(), timeout=120)
    (received,) = worker.received_tensors
    assert all(_same(received[name], array) for name, array in tensors.items())
    assert outcome.accepted
    assert outcome.result is not None
    assert outcome.result.success


def test_the_server_rejects_result_tensors_that_disagree_with_their_manifest(run: Any) -> None:
    task = WorkerTask("t-1", make_task_tensors(1_000, seed=1))
    announced = {name: np.zeros(3, np.float32) for name in RESULT_TENSORS}

    async def rogue_worker(url: str) -> ResultAckMessage:
        async with connect(url, compression=None) as ws:
            await ws.recv()  # connection_established
            await ws.send(json.dumps(RegisterMessage(worker_id="rogue", capabilities={}).to_wire()))
            await ws.recv()  # registration_ack
            assign = parse_worker_message(json.loads(await ws.recv()))
            assert isinstance(assign, TaskAssignMessage)
            for _ in assign.tensor_manifest:
                await ws.recv()
            result = TaskResultMessage(
                task_id=assign.task_id,
                candidate_id=0,
                correlation=0.5,
                success=True,
                epochs_completed=1,
                tensor_manifest=TensorManifest.from_arrays(announced),
            )
            await ws.send(json.dumps(result.to_wire()))
            for name, array in announced.items():
                wrong = array.astype(np.float64) if name == "weights" else array
                await ws.send(BinaryFrame.encode(wrong))
            ack = parse_worker_message(json.loads(await ws.recv()))
            assert isinstance(ack, ResultAckMessage)
            return ack

    async def scenario() -> tuple[ResultAckMessage, TaskOutcome]:
        async with LoopbackServer() as server:
            pending = server.workers.submit(task)
            ack = await rogue_worker(server.url(WORKERS_PATH))
            return ack, await pending

    ack, outcome = run(scenario())
    assert ack.status == "rejected"
    assert ack.reason is not None
    assert "weights" in ack.reason
    assert (outcome.ack_status, outcome.problems) == ("rejected", [ack.reason])
    assert outcome.tensors == {}


def test_registration_is_required_first(run: Any) -> None:
    """An invalid ``register`` is answered with an ``error``, then close code 4008."""

    async def scenario() -> tuple[list[ErrorMessage], int | None]:
        async with (
            LoopbackServer() as server,
            connect(server.url(WORKERS_PATH), compression=None) as ws,
        ):
            greeting = parse_worker_message(json.loads(await ws.recv()))
            assert isinstance(greeting, ConnectionEstablishedMessage)
            assert greeting.protocol_version == PROTOCOL_VERSION
            bad = {"type": "register", "worker_id": "no spaces allowed", "capabilities": {}}
            await ws.send(json.dumps(bad))
            errors: list[ErrorMessage] = []
            try:
                while True:
                    message = parse_worker_message(json.loads(await ws.recv()))
                    assert isinstance(message, ErrorMessage)
                    errors.append(message)
            except ConnectionClosed as closed:
                return errors, closed.rcvd.code if closed.rcvd else None

    errors, code = run(scenario())
    assert code == CloseCode.INVALID_MESSAGE
    assert [e.error for e in errors] == ["invalid_message"]
    assert errors[0].details is not None
    assert "worker_id" in errors[0].details


def test_a_task_whose_worker_leaves_mid_task_goes_to_another_worker(run: Any) -> None:
    tasks = [WorkerTask.create(f"t-{n}", make_task_tensors(4_000, seed=n)) for n in range(2)]

    async def quitter(url: str) -> str:
        """Registers, takes one task_assign, and leaves without answering."""
        async with connect(url, compression=None) as ws:
            await ws.recv()  # connection_established
            await ws.send(
                json.dumps(RegisterMessage(worker_id="quitter", capabilities={}).to_wire())
            )
            await ws.recv()  # registration_ack
            assign = parse_worker_message(json.loads(await ws.recv()))
            assert isinstance(assign, TaskAssignMessage)
            return assign.task_id

    async def scenario() -> tuple[str, list[TaskOutcome]]:
        async with LoopbackServer() as server:
            pending = [server.workers.submit(task) for task in tasks]
            abandoned = await quitter(server.url(WORKERS_PATH))
            worker = DemoWorker("finisher")
            runner = asyncio.create_task(worker.run(server.url(WORKERS_PATH), max_tasks=2))
            outcomes = list(await asyncio.gather(*pending))
            await runner
            return abandoned, outcomes

    abandoned, outcomes = run(scenario())
    assert abandoned == "t-0"
    assert [(o.task_id, o.worker_id, o.accepted) for o in outcomes] == [
        ("t-0", "finisher", True),
        ("t-1", "finisher", True),
    ]


def test_a_task_whose_result_does_not_come_in_time_goes_to_another_worker(run: Any) -> None:
    task = WorkerTask.create("slow", make_task_tensors(4_000, seed=7))

    async def scenario() -> tuple[TaskOutcome, ResultAckMessage, WorkerHub]:
        hub = WorkerHub(result_timeout=0.5)
        async with LoopbackServer(workers=hub) as server:
            url = server.url(WORKERS_PATH)
            pending = hub.submit(task)
            async with connect(url, compression=None) as sleeper:
                await sleeper.recv()  # connection_established
                register = RegisterMessage(worker_id="sleeper", capabilities={})
                await sleeper.send(json.dumps(register.to_wire()))
                await sleeper.recv()  # registration_ack
                assign = parse_worker_message(json.loads(await sleeper.recv()))
                assert isinstance(assign, TaskAssignMessage)
                for _ in assign.tensor_manifest:
                    await sleeper.recv()
                # The sleeper keeps the task past its deadline (and the timer's next tick);
                # the hub gives it no other task, and the next worker gets this one.
                await asyncio.sleep(hub.result_timeout + 0.5)
                await DemoWorker("finisher").run(url, max_tasks=1)
                outcome = await pending
                late = TaskResultMessage(
                    task_id="slow",
                    candidate_id=0,
                    correlation=0.0,
                    success=False,
                    epochs_completed=0,
                )
                await sleeper.send(json.dumps(late.to_wire()))
                ack = parse_worker_message(json.loads(await sleeper.recv()))
                assert isinstance(ack, ResultAckMessage)
            return outcome, ack, hub

    outcome, ack, hub = run(scenario(), timeout=30)
    assert (outcome.worker_id, outcome.accepted, outcome.attempts) == ("finisher", True, 2)
    assert (ack.task_id, ack.status) == ("slow", "stale")
    assert hub.registered == ["sleeper", "finisher"]


def test_a_task_no_worker_finishes_fails_after_its_last_attempt(run: Any) -> None:
    task = WorkerTask.create("doomed", make_task_tensors(4_000, seed=8))

    async def quit_after_assign(url: str) -> None:
        async with connect(url, compression=None) as ws:
            await ws.recv()  # connection_established
            await ws.send(json.dumps(RegisterMessage(worker_id="q", capabilities={}).to_wire()))
            await ws.recv()  # registration_ack
            await ws.recv()  # task_assign

    async def scenario() -> TaskOutcome:
        hub = WorkerHub(max_attempts=2)
        async with LoopbackServer(workers=hub) as server:
            pending = hub.submit(task)
            for _ in range(hub.max_attempts):
                await quit_after_assign(server.url(WORKERS_PATH))
            return await pending

    outcome = run(scenario())
    assert (outcome.task_id, outcome.accepted, outcome.attempts) == ("doomed", False, 2)
    assert outcome.problems == ["the worker left (attempt 2 of 2)"]


def test_the_timers_keep_a_live_worker_connected_and_close_a_silent_one(run: Any) -> None:
    """Both ends' timers: heartbeats when due keep a session alive; silence ends it (4011)."""
    # A worker heartbeats at least every second; a session is gone after 3 silent intervals.
    hub = WorkerHub(heartbeat_interval=1.0)

    async def scenario() -> tuple[DemoWorker, int | None, TaskOutcome]:
        async with LoopbackServer(workers=hub) as server:
            url = server.url(WORKERS_PATH)
            live = DemoWorker("live")
            runner = asyncio.create_task(live.run(url, max_tasks=1))
            async with connect(url, compression=None) as silent:
                await silent.recv()  # connection_established
                register = RegisterMessage(worker_id="silent", capabilities={})
                await silent.send(json.dumps(register.to_wire()))
                await silent.recv()  # registration_ack; then nothing, ever
                try:
                    while True:
                        await silent.recv()  # the server's answers to nothing: none
                except ConnectionClosed as closed:
                    code = closed.rcvd.code if closed.rcvd else None
            # The live worker outlived the silent one; it still takes a task.
            outcome = await hub.submit(WorkerTask.create("late", make_task_tensors(4_000, seed=9)))
            await runner
            return live, code, outcome

    live, silent_code, outcome = run(scenario(), timeout=30)
    assert silent_code == CloseCode.PEER_SILENT
    assert (outcome.worker_id, outcome.accepted) == ("live", True)
    assert live.stats.heartbeats_sent >= 2
    assert hub.heartbeats_received == live.stats.heartbeats_sent
    assert live.stats.heartbeats_received >= 1  # the answer to the last may cross the close
    assert hub.closes[CloseCode.PEER_SILENT] == 1
