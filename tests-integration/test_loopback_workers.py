"""``/ws/v1/workers`` over real loopback connections: the session, tensors and manifests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
from numpy.typing import NDArray
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from juniper_cascor_protocol.demo.candidate import make_task_tensors, score_candidate
from juniper_cascor_protocol.demo.server import WORKERS_PATH, LoopbackServer
from juniper_cascor_protocol.demo.worker import CANDIDATE_OUTPUT, COVARIANCES, DemoWorker
from juniper_cascor_protocol.demo.worker_hub import TaskOutcome, WorkerTask
from juniper_cascor_protocol.worker import BinaryFrame
from juniper_cascor_protocol.worker.manifest import TensorManifest, TensorSpec, check_tensors
from juniper_cascor_protocol.worker.messages import (
    ErrorMessage,
    RegisterMessage,
    ResultAckMessage,
    TaskAssignMessage,
    TaskResultMessage,
    parse_worker_message,
)


def _same_frame(frame: bytes, array: NDArray[Any]) -> bool:
    """Whether ``frame`` is byte for byte the encoding of ``array`` (compared without copies)."""
    header, data = BinaryFrame.encode_parts(array)
    view = memoryview(frame)
    return (
        len(frame) == len(header) + len(data)
        and view[: len(header)] == header
        and (view[len(header) :] == data)
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
    task = WorkerTask.create("task-1", tensors, round_id="round-7", candidate_index=4)

    async def scenario() -> tuple[DemoWorker, TaskOutcome, LoopbackServer]:
        async with LoopbackServer() as server:
            worker = DemoWorker("worker-1", heartbeats=2, keep_frames=True)
            (outcome,) = await _serve_tasks(server, worker, [task])
            return worker, outcome, server

    worker, outcome, server = run(scenario())
    hub, stats = server.workers, worker.stats
    assert worker.established is not None
    assert hub.registered == ["worker-1"]
    assert stats.registered
    assert (stats.heartbeats_sent, hub.heartbeats_received, stats.heartbeats_received) == (2, 2, 2)
    # Server -> worker: every frame as received is the exact encoding of the original.
    assert {a.dtype for a in tensors.values()} == {np.dtype("float32"), np.dtype("float64")}
    (received,) = worker.received_frames
    assert len(received) == len(tensors)
    assert all(_same_frame(f, a) for f, a in zip(received, tensors.values(), strict=True))
    # Worker -> server: the result frames, and the arrays decoded from them, are exact.
    (sent,) = worker.sent_tensors
    assert list(sent) == [CANDIDATE_OUTPUT, COVARIANCES]
    assert all(_same_frame(f, a) for f, a in zip(outcome.frames, sent.values(), strict=True))
    for name, array in sent.items():
        assert outcome.tensors[name].dtype == array.dtype
        assert outcome.tensors[name].shape == array.shape
        assert outcome.tensors[name].tobytes() == array.tobytes()
    result = outcome.result
    assert result is not None
    assert check_tensors(result.tensor_manifest, outcome.tensors) == []
    assert result.success
    assert result.task_id == "task-1"
    assert result.candidate_id == 4
    expected = score_candidate(*tensors.values())
    assert result.correlation == expected.correlation
    assert 0.0 <= result.correlation <= 1.0
    assert result.all_correlations == expected.all_correlations
    assert outcome.ack_status == "accepted"
    assert stats.acks == {"accepted": 1}
    assert stats.problems.total() == 0
    assert hub.problems.total() == 0
    assert stats.tensors_received == hub.tensors_sent == len(tensors)
    assert stats.tensor_bytes_received == hub.tensor_bytes_sent


def test_a_64_mb_tensor_crosses_bit_exact(run: Any) -> None:
    tensors = make_task_tensors(64_000_000, seed=11)
    assert tensors["candidate_inputs"].nbytes == 64_000_000
    task = WorkerTask.create("big", tensors)

    async def scenario() -> tuple[DemoWorker, TaskOutcome]:
        async with LoopbackServer() as server:
            worker = DemoWorker("big-worker", keep_frames=True)
            (outcome,) = await _serve_tasks(server, worker, [task])
            return worker, outcome

    worker, outcome = run(scenario(), timeout=120)
    (received,) = worker.received_frames
    assert all(_same_frame(f, a) for f, a in zip(received, tensors.values(), strict=True))
    assert outcome.accepted
    assert outcome.result is not None
    assert outcome.result.success


def test_a_manifest_that_disagrees_with_the_frames_is_detected_by_the_worker(run: Any) -> None:
    payload: dict[str, NDArray[Any]] = {
        "x": np.arange(4, dtype=np.float32),
        "y": np.ones((2, 3), dtype=np.float64),
    }
    wrong_dtype = WorkerTask(
        "wrong-dtype",
        payload,
        manifest={"x": TensorSpec([4], "float64"), "y": TensorSpec([2, 3], "float64")},
    )
    wrong_shape = WorkerTask(
        "wrong-shape",
        payload,
        manifest={"x": TensorSpec([4], "float32"), "y": TensorSpec([3, 2], "float64")},
    )
    good = WorkerTask.create("good", make_task_tensors(10_000, seed=5))

    async def scenario() -> tuple[DemoWorker, list[TaskOutcome]]:
        async with LoopbackServer() as server:
            worker = DemoWorker("checker")
            outcomes = await _serve_tasks(server, worker, [wrong_dtype, wrong_shape, good])
            return worker, outcomes

    worker, (dtype_outcome, shape_outcome, good_outcome) = run(scenario())
    assert worker.stats.problems == {"manifest_mismatch": 2}
    assert (worker.stats.tasks_failed, worker.stats.tasks_succeeded) == (2, 1)
    for outcome, needle in ((dtype_outcome, "x.dtype"), (shape_outcome, "y.shape")):
        assert outcome.result is not None
        assert not outcome.result.success
        assert outcome.result.error_message is not None
        assert needle in outcome.result.error_message
        assert outcome.result.tensor_manifest == {}
    # The worker went on: the next task was scored.
    assert good_outcome.result is not None
    assert good_outcome.result.success


def test_the_server_rejects_result_tensors_that_disagree_with_their_manifest(run: Any) -> None:
    task = WorkerTask("t-1", {"x": np.arange(3, dtype=np.float32)})

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
                candidate_uuid="u",
                correlation=0.5,
                success=True,
                epochs_completed=1,
                activation_name="tanh",
                all_correlations=[0.5],
                numerator=1.0,
                denominator=2.0,
                best_corr_idx=0,
                error_message=None,
                tensor_manifest=TensorManifest.from_arrays({"out": np.zeros(3, np.float32)}),
            )
            await ws.send(json.dumps(result.to_wire()))
            await ws.send(BinaryFrame.encode(np.zeros(3, dtype=np.float64)))  # not float32
            ack = parse_worker_message(json.loads(await ws.recv()))
            assert isinstance(ack, ResultAckMessage)
            return ack

    async def scenario() -> tuple[ResultAckMessage, TaskOutcome, LoopbackServer]:
        async with LoopbackServer() as server:
            pending = server.workers.submit(task)
            ack = await rogue_worker(server.url(WORKERS_PATH))
            return ack, await pending, server

    ack, outcome, server = run(scenario())
    assert ack.status == "rejected"
    assert ack.reason is not None
    assert "out.dtype" in ack.reason
    assert outcome.ack_status == "rejected"
    assert server.workers.problems == {"manifest_mismatch": 1}


def test_registration_is_required_first(run: Any) -> None:
    async def scenario() -> tuple[list[ErrorMessage], int | None]:
        async with (
            LoopbackServer() as server,
            connect(server.url(WORKERS_PATH), compression=None) as ws,
        ):
            await ws.recv()  # connection_established
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
    assert code == 1008
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
