"""Hostile peers against the demo's clients and server, over real loopback connections.

A hostile server sends garbage, then a good frame or task: each test checks that the client is
still working (it processes the good one), that every bad frame was counted once under the
right label or reason, and that memory stayed within the configured caps. Hostile workers
break every rule of ``/ws/v1/workers`` against the loopback server: each is closed with its
documented code, and a good worker is served afterwards.
"""

from __future__ import annotations

import functools
import json
import random
import struct
import uuid
from collections import Counter
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from juniper_cascor_protocol.demo.candidate import make_task_tensors
from juniper_cascor_protocol.demo.server import WORKERS_PATH, LoopbackServer
from juniper_cascor_protocol.demo.training_client import TrainingClient
from juniper_cascor_protocol.demo.worker import DemoWorker
from juniper_cascor_protocol.demo.worker_hub import CRC32_KEY, WorkerHub, WorkerTask
from juniper_cascor_protocol.envelope.base import BaseEnvelope
from juniper_cascor_protocol.envelope.builders import BroadcastBuilder, to_wire_json
from juniper_cascor_protocol.envelope.chunking import Chunker, Reassembler, RejectReason
from juniper_cascor_protocol.envelope.labels import (
    MALFORMED_JSON_LABEL,
    NOT_AN_OBJECT_LABEL,
    RESERVED_LABELS,
    UNKNOWN_TYPE_BUDGET,
    UNMATCHED_TYPE_LABEL,
)
from juniper_cascor_protocol.envelope.session_events import Refusal
from juniper_cascor_protocol.envelope.training import TopologyEnvelope
from juniper_cascor_protocol.worker import BinaryFrame
from juniper_cascor_protocol.worker.close_codes import CloseCode
from juniper_cascor_protocol.worker.manifest import TensorManifest, TensorSpec
from juniper_cascor_protocol.worker.messages import (
    ConnectionEstablishedMessage,
    ErrorMessage,
    HeartbeatMessage,
    RegisterMessage,
    RegistrationAckMessage,
    ResultAckMessage,
    TaskAssignMessage,
    TaskResultMessage,
    WorkerMessage,
    parse_worker_message,
)
from juniper_cascor_protocol.worker.session_limits import MAX_JSON_MESSAGE_BYTES
from juniper_cascor_protocol.worker.tensor_names import (
    CANDIDATE_INPUT,
    RESIDUAL_ERROR,
    RESULT_TENSORS,
)

pytestmark = pytest.mark.usefixtures("fresh_labels")

LIMIT = 4096


def _good_frame(builder: BroadcastBuilder) -> str:
    return to_wire_json(builder.metrics({"loss": 0.25, "epoch": 7}))


def _consume(run: Any, peer_class: Any, script: list[str | bytes], client: TrainingClient) -> None:
    async def scenario() -> None:
        async with peer_class(script, max_size=2**24) as peer:
            await client.run(peer.url)

    run(scenario(), timeout=120)


def test_garbage_frames_are_each_counted_and_the_consumer_keeps_going(
    run: Any, scripted_peer: Any
) -> None:
    rng = random.Random(1234)
    builder = BroadcastBuilder()
    good = _good_frame(builder)
    random_binary = [rng.randbytes(rng.randrange(0, 300)) for _ in range(50)]
    # A JSON object cut short anywhere is never JSON.
    truncated = [good[: rng.randrange(1, len(good))] for _ in range(50)]
    oversized = ['{"type":"metrics","data":{"x":"' + "x" * LIMIT + '"}}' for _ in range(5)]
    multibyte = ["é" * (LIMIT // 2 + 1)] * 3  # fewer characters than LIMIT, more bytes
    wrong_json = ["[1, 2]", "3", '"metrics"', "null", "true", "[]", "-1.5e300"] * 4
    script: list[str | bytes] = [
        *random_binary,
        *truncated,
        *oversized,
        *multibyte,
        *wrong_json,
        good,
    ]
    rng.shuffle(script)
    delivered: list[BaseEnvelope] = []
    client = TrainingClient(max_frame_bytes=LIMIT, on_message=delivered.append)

    _consume(run, scripted_peer, script, client)

    stats = client.stats.session
    assert stats.messages == len(script)
    assert stats.refused == {
        Refusal.BINARY_FRAME: len(random_binary),
        Refusal.OVERSIZED: len(oversized) + len(multibyte),
    }
    assert stats.unknown == {
        MALFORMED_JSON_LABEL: len(truncated),
        NOT_AN_OBJECT_LABEL: len(wrong_json),
    }
    assert client.stats.bad_frames == len(script) - 1
    assert [e.data for e in delivered] == [{"loss": 0.25, "epoch": 7}]


def test_100k_distinct_unknown_types_stay_within_the_label_budget(
    run: Any, scripted_peer: Any
) -> None:
    count = 100_000
    builder = BroadcastBuilder()
    script: list[str | bytes] = [
        f'{{"type":"kind_{i}","timestamp":1.0,"data":{{}}}}' for i in range(count)
    ]
    script.append(_good_frame(builder))
    delivered: list[BaseEnvelope] = []
    client = TrainingClient(on_message=delivered.append)

    _consume(run, scripted_peer, script, client)

    labels = client.stats.session.unknown
    verbatim = {f"kind_{i}": 1 for i in range(UNKNOWN_TYPE_BUDGET)}
    assert labels == {**verbatim, UNMATCHED_TYPE_LABEL: count - UNKNOWN_TYPE_BUDGET}
    assert len(set(labels) - RESERVED_LABELS) <= UNKNOWN_TYPE_BUDGET
    assert len(delivered) == 1
    assert delivered[0].type == "metrics"


def _chunk(chunk_id: str, index: int, total: int, payload: str, original: str = "topology") -> str:
    return json.dumps(
        {
            "type": "chunked_message",
            "timestamp": 1.0,
            "data": {
                "chunk_id": chunk_id,
                "chunk_index": index,
                "total_chunks": total,
                "original_type": original,
                "payload": payload,
            },
        }
    )


def test_chunk_floods_are_bounded_and_rejections_are_counted_by_reason(
    run: Any, scripted_peer: Any
) -> None:
    rng = random.Random(99)
    caps = {
        "max_chunks_per_message": 64,
        "max_message_bytes": 32 * 1024,
        "max_buffered_bytes": 64 * 1024,
        "max_messages_in_flight": 8,
    }
    payload = "p" * 2000
    # 1. Many distinct chunk_ids, each of which never completes: oldest evicted beyond the caps.
    distinct = [
        _chunk(str(uuid.UUID(int=rng.getrandbits(128))), 0, 3, payload) for _ in range(3000)
    ]
    # 2. Absurd total_chunks.
    huge_total = [_chunk(f"huge-{i}", 0, 10**9, payload) for i in range(200)]
    # 3. Conflicts on one id each: the second chunk of each pair disagrees with the first.
    conflicts: list[str | bytes] = []
    expected_reasons: Counter[str] = Counter({RejectReason.TOO_MANY_CHUNKS: len(huge_total)})
    for i in range(100):
        conflicts += [_chunk(f"dup-{i}", 0, 3, "a"), _chunk(f"dup-{i}", 0, 3, "b")]
        conflicts += [_chunk(f"total-{i}", 0, 3, "a"), _chunk(f"total-{i}", 1, 4, "b")]
        conflicts += [_chunk(f"kind-{i}", 0, 3, "a"), _chunk(f"kind-{i}", 1, 3, "b", "metrics")]
        conflicts.append(_chunk(f"index-{i}", 5, 3, "a"))
        # A chunk for an id already rejected above is refused, not buffered again.
        conflicts.append(_chunk(f"dup-{i}", 1, 3, "c"))
    expected_reasons[RejectReason.CONFLICTING_DUPLICATE] = 100
    expected_reasons[RejectReason.TOTAL_MISMATCH] = 100
    expected_reasons[RejectReason.TYPE_MISMATCH] = 100
    expected_reasons[RejectReason.INDEX_OUT_OF_RANGE] = 100
    expected_reasons[RejectReason.ALREADY_REJECTED] = 100
    # 4. Structurally invalid chunk frames: rejected as malformed, counted there only.
    malformed = [
        json.dumps({"type": "chunked_message", "timestamp": 1.0, "data": {"chunk_index": -1}})
    ] * 20
    expected_reasons[RejectReason.MALFORMED] = len(malformed)
    # Then a good chunked message, proving the reassembler still works after the flood.
    builder = BroadcastBuilder(chunker=Chunker(2048))
    original = builder.draft(TopologyEnvelope, {"nodes": list(range(2000))})
    good = [to_wire_json(frame) for frame in builder.frames(original)]
    assert len(good) > 1
    script: list[str | bytes] = [*distinct, *huge_total, *conflicts, *malformed, *good]
    delivered: list[BaseEnvelope] = []
    reassembler = functools.partial(
        Reassembler,
        max_chunks_per_message=caps["max_chunks_per_message"],
        max_message_bytes=caps["max_message_bytes"],
        max_buffered_bytes=caps["max_buffered_bytes"],
        max_messages_in_flight=caps["max_messages_in_flight"],
    )
    client = TrainingClient(reassembler=reassembler, on_message=delivered.append)

    _consume(run, scripted_peer, script, client)

    stats = client.stats
    assert stats.session.reassembly.rejected == expected_reasons
    assert stats.session.unknown == {}
    assert stats.bad_frames == expected_reasons.total()
    assert stats.peak_in_flight <= caps["max_messages_in_flight"]
    assert stats.peak_buffered_bytes <= caps["max_buffered_bytes"]
    after = stats.session.reassembly
    assert after.in_flight <= caps["max_messages_in_flight"]
    assert after.buffered_bytes <= caps["max_buffered_bytes"]
    assert after.evicted >= len(distinct) - caps["max_messages_in_flight"]
    assert [e for e in delivered if e.type == "topology"] == [original]


def _wire(message: WorkerMessage) -> str:
    return json.dumps(message.to_wire())


def _frame_with_dtype(dtype_text: bytes, count: int) -> bytes:
    return struct.pack(f"<III{len(dtype_text)}s", 1, count, len(dtype_text), dtype_text) + bytes(
        4 * count
    )


def _assign(task_id: str, manifest: dict[str, TensorSpec], **fields: Any) -> str:
    message = TaskAssignMessage(
        task_id=task_id,
        round_id="r",
        candidate_index=0,
        candidate_data=fields.get("candidate_data", {}),
        training_params={},
        tensor_manifest=manifest,
    )
    return _wire(message)


def _task(
    task_id: str, frames: dict[str, bytes], manifest: dict[str, TensorSpec]
) -> list[str | bytes]:
    return [_assign(task_id, manifest), *frames.values()]


GREETING = _wire(ConnectionEstablishedMessage(server_version="hostile"))
REGISTERED = _wire(RegistrationAckMessage(worker_id="target"))


def test_hostile_server_frames_are_counted_by_the_worker_which_keeps_working(
    run: Any, scripted_peer: Any
) -> None:
    rng = random.Random(7)
    inputs = np.arange(8, dtype=np.float32).reshape(4, 2)
    residual = np.ones((4, 1), dtype=np.float32)
    manifest = TensorManifest.from_arrays({CANDIDATE_INPUT: inputs, RESIDUAL_ERROR: residual})
    good_residual = BinaryFrame.encode(residual)
    script: list[str | bytes] = [
        GREETING,
        REGISTERED,
        *(rng.randbytes(rng.randrange(1, 64)) for _ in range(5)),  # outside any task
        "[1]",
        "null",
        "3",
        '"x"',
        '{"type": "warp"}',
        '{"no_type": 1}',
        "{bad",
        '{"type": "result_ack", "task_id": "z", "status": "bogus"}',
        _wire(ResultAckMessage(task_id="never-sent", status="accepted")),
        _wire(RegisterMessage(worker_id="server", capabilities={})),
    ]
    violations = Counter(
        unexpected_binary_frame=5,
        not_an_object=4,
        unknown_type=2,
        malformed_json=1,
        invalid_message=1,
        unexpected_message=2,
    )
    # Tasks the worker's session refuses by itself, each with the reason's key words.
    refused: dict[str, str] = {}
    script.append('{"type": "task_assign", "task_id": "half", "tensor_manifest": {}}')
    refused["half"] = "invalid task_assign"
    bad_frames = {
        "Binary frame too short for shape header": b"\x00\x00",
        "Data size mismatch": BinaryFrame.encode(inputs)[:-3],
        "Unreasonable number of dimensions": struct.pack("<I", 11) + bytes(16),
        "Invalid dtype string": _frame_with_dtype(b"O", 4),
    }
    for number, (wording, frame) in enumerate(bad_frames.items()):
        script += _task(f"frame-{number}", {"a": frame, "b": good_residual}, manifest)
        refused[f"frame-{number}"] = wording
    x = np.arange(4, dtype=np.float32)
    script += _task("unnamed", {"x": BinaryFrame.encode(x)}, TensorManifest.from_arrays({"x": x}))
    refused["unnamed"] = f"{CANDIDATE_INPUT}: required tensor missing"
    big = np.zeros((300_000, 1), dtype=np.float32)  # 1.2 MB, over the worker's 1 MiB budget
    big_tensors = {CANDIDATE_INPUT: big, RESIDUAL_ERROR: np.zeros((300_000, 1), np.float32)}
    script += _task(
        "oversized",
        {name: BinaryFrame.encode(array) for name, array in big_tensors.items()},
        TensorManifest.from_arrays(big_tensors),
    )
    refused["oversized"] = "budget"
    lying = {
        CANDIDATE_INPUT: TensorSpec([4, 2], "float64"),
        RESIDUAL_ERROR: manifest[RESIDUAL_ERROR],
    }
    script += _task("lying", {"a": BinaryFrame.encode(inputs), "b": good_residual}, lying)
    refused["lying"] = f"{CANDIDATE_INPUT}.dtype"
    nan_inputs = inputs.copy()
    nan_inputs[0, 0] = np.nan
    script += _task("nan", {"a": BinaryFrame.encode(nan_inputs), "b": good_residual}, manifest)
    refused["nan"] = "NaN"
    # Tasks the session accepts and the demo worker fails: its own checks.
    tensors = make_task_tensors(20_000, seed=1)
    frames = {name: BinaryFrame.encode(array) for name, array in tensors.items()}
    corrupt = WorkerTask.create("corrupt", tensors)
    corrupt.candidate_data[CRC32_KEY][RESIDUAL_ERROR] ^= 1
    script += [_assign("corrupt", TensorManifest.from_arrays(tensors), **vars_of(corrupt))]
    script += frames.values()
    short = np.ones((3, 1), dtype=np.float32)  # 3 rows against 4: cannot be trained
    unscorable = {CANDIDATE_INPUT: inputs, RESIDUAL_ERROR: short}
    script += _task(
        "unscorable",
        {name: BinaryFrame.encode(array) for name, array in unscorable.items()},
        TensorManifest.from_arrays(unscorable),
    )
    good = WorkerTask.create("good", tensors)
    script += [_assign("good", TensorManifest.from_arrays(tensors), **vars_of(good))]
    script += frames.values()
    task_ids = [*refused, "corrupt", "unscorable", "good"]
    script += [_wire(ResultAckMessage(task_id=task_id, status="accepted")) for task_id in task_ids]
    worker = DemoWorker("target", byte_budget=2**20)

    async def scenario() -> list[str | bytes]:
        async with scripted_peer(script, max_size=2**24, drain=True) as peer:
            await worker.run(peer.url, max_tasks=len(task_ids))
            return list(peer.received)

    received = run(scenario())

    stats = worker.stats
    assert stats.problems == violations + Counter(checksum_mismatch=1, unscorable_task=1)
    assert list(stats.refused) == list(refused)
    for task_id, needle in refused.items():
        assert needle in stats.refused[task_id], (task_id, stats.refused[task_id])
    assert (stats.tasks_failed, stats.tasks_succeeded) == (len(task_ids) - 1, 1)
    assert stats.acks == {"accepted": len(task_ids)}
    assert worker.closed is not None
    assert (worker.closed.code, worker.closed.by_peer) == (CloseCode.NORMAL, False)
    replies = [parse_worker_message(json.loads(m)) for m in received if isinstance(m, str)]
    assert isinstance(replies[0], RegisterMessage)
    results = [r for r in replies if isinstance(r, TaskResultMessage)]
    assert [r.task_id for r in results] == task_ids
    assert [r.success for r in results] == [False] * (len(task_ids) - 1) + [True]
    assert results[-1].candidate_uuid == good.candidate_data["candidate_uuid"]
    assert tuple(results[-1].tensor_manifest) == RESULT_TENSORS
    assert sum(isinstance(m, bytes) for m in received) == len(RESULT_TENSORS)


def vars_of(task: WorkerTask) -> dict[str, Any]:
    return {"candidate_data": task.candidate_data}


@pytest.mark.parametrize(
    ("script", "code"),
    [
        pytest.param([b"\x00"], CloseCode.INVALID_MESSAGE, id="binary-before-greeting"),
        pytest.param(["{bad"], CloseCode.INVALID_JSON, id="not-json-before-greeting"),
        pytest.param(
            [GREETING, _assign("early", {})], CloseCode.INVALID_MESSAGE, id="task-before-ack"
        ),
        pytest.param(
            [
                GREETING,
                REGISTERED,
                '{"type": "heartbeat", "pad": "' + "x" * MAX_JSON_MESSAGE_BYTES + '"}',
            ],
            CloseCode.MESSAGE_TOO_LARGE,
            id="oversized-json",
        ),
        pytest.param(
            [_wire(ConnectionEstablishedMessage(protocol_version="2.0"))],
            CloseCode.UNSUPPORTED_VERSION,
            id="another-major-version",
        ),
    ],
)
def test_a_hostile_server_the_worker_cannot_go_on_with_is_left_with_its_close_code(
    run: Any, scripted_peer: Any, script: list[str | bytes], code: CloseCode
) -> None:
    worker = DemoWorker("target")

    async def scenario() -> list[str | bytes]:
        async with scripted_peer(script, drain=True) as peer:
            await worker.run(peer.url)
            return list(peer.received)

    received = run(scenario(), timeout=10)

    assert worker.closed is not None
    assert (worker.closed.code, worker.closed.by_peer) == (code, False)
    assert worker.stats.tasks_succeeded == 0
    if code is CloseCode.UNSUPPORTED_VERSION:
        assert worker.incompatible is not None
        assert received == []  # it never registered


def test_a_batch_cut_short_by_a_text_message_fails_its_task_and_ends_the_session(
    run: Any, scripted_peer: Any
) -> None:
    tensors = make_task_tensors(1000, seed=2)
    first_frame = BinaryFrame.encode(tensors[CANDIDATE_INPUT])
    script: list[str | bytes] = [
        GREETING,
        REGISTERED,
        _assign("cut", TensorManifest.from_arrays(tensors)),
        first_frame,
        _wire(HeartbeatMessage(worker_id="server", timestamp=1.0)),  # tolerated inside a batch
        _assign("next", {}),  # not tolerated: the second frame was due
    ]
    worker = DemoWorker("target")

    async def scenario() -> list[str | bytes]:
        async with scripted_peer(script, drain=True) as peer:
            await worker.run(peer.url)
            return list(peer.received)

    received = run(scenario(), timeout=10)

    assert worker.stats.heartbeats_received == 1
    assert worker.stats.problems == {"missing_tensor_frame": 1}
    assert list(worker.stats.refused) == ["cut"]
    assert worker.stats.tasks_failed == 1
    assert worker.closed is not None
    assert worker.closed.code == CloseCode.INVALID_MESSAGE
    replies = [parse_worker_message(json.loads(m)) for m in received if isinstance(m, str)]
    (failed,) = [r for r in replies if isinstance(r, TaskResultMessage)]
    assert (failed.task_id, failed.success) == ("cut", False)


# Hostile workers against the loopback server.


async def _greeted(url: str) -> ClientConnection:
    ws = await connect(url, compression=None, max_size=2**24)
    await ws.recv()  # connection_established
    return ws


async def _registered(url: str, worker_id: str) -> ClientConnection:
    ws = await _greeted(url)
    await ws.send(_wire(RegisterMessage(worker_id=worker_id, capabilities={})))
    await ws.recv()  # registration_ack
    return ws


async def _until_closed(ws: ClientConnection) -> tuple[list[WorkerMessage], int | None]:
    """Everything the server sends until it closes, and its close code."""
    messages: list[WorkerMessage] = []
    try:
        while True:
            raw = await ws.recv()
            if isinstance(raw, str):
                message = parse_worker_message(json.loads(raw))
                assert isinstance(message, WorkerMessage), message
                messages.append(message)
    except ConnectionClosed as closed:
        return messages, closed.rcvd.code if closed.rcvd else None


def _errors(messages: list[WorkerMessage]) -> list[str]:
    return [m.error for m in messages if isinstance(m, ErrorMessage)]


def test_the_server_survives_every_hostile_worker_and_serves_the_next(run: Any) -> None:
    task = WorkerTask.create("t-1", make_task_tensors(4_000, seed=4))
    tensors = make_task_tensors(1000, seed=5)

    async def first_message(url: str, first: str | bytes) -> tuple[list[str], int | None]:
        ws = await _greeted(url)
        await ws.send(first)
        messages, code = await _until_closed(ws)
        return _errors(messages), code

    async def silent(url: str) -> tuple[list[str], int | None]:
        messages, code = await _until_closed(await _greeted(url))
        return _errors(messages), code

    async def unassigned_result_then_garbage(url: str) -> tuple[list[str], list[str]]:
        ws = await _registered(url, "liar")
        result = TaskResultMessage(
            task_id="never-assigned",
            candidate_id=0,
            correlation=0.5,
            success=False,
            epochs_completed=0,
        )
        await ws.send(_wire(result))
        await ws.send(b"\x00" * 8)  # a binary frame outside any result
        await ws.send("[]")
        statuses: list[str] = []
        errors: list[str] = []
        while len(statuses) + len(errors) < 3:
            message = parse_worker_message(json.loads(await ws.recv()))
            if isinstance(message, ResultAckMessage):
                statuses.append(message.status)
            elif isinstance(message, ErrorMessage):
                errors.append(message.error)
        await ws.close()
        return statuses, errors

    async def cut_result(url: str) -> tuple[list[WorkerMessage], int | None]:
        """Takes the task, announces its result's frames, then sends text instead."""
        ws = await _registered(url, "cutter")
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
            tensor_manifest=TensorManifest.from_arrays(tensors),
        )
        await ws.send(_wire(result))
        await ws.send(_wire(HeartbeatMessage(worker_id="cutter", timestamp=1.0)))
        await ws.send("{}")
        return await _until_closed(ws)

    async def scenario() -> dict[str, Any]:
        hub = WorkerHub(register_timeout=0.5)
        async with LoopbackServer(workers=hub) as server:
            url = server.url(WORKERS_PATH)
            seen: dict[str, Any] = {
                "heartbeat-first": await first_message(
                    url, _wire(HeartbeatMessage(worker_id="w", timestamp=1.0))
                ),
                "not-json-first": await first_message(url, "{bad"),
                "binary-first": await first_message(url, b"\x01\x02"),
                "invalid-register": await first_message(
                    url, '{"type": "register", "worker_id": "no spaces", "capabilities": {}}'
                ),
                "oversized-first": await first_message(url, "x" * (MAX_JSON_MESSAGE_BYTES + 1)),
                "silent": await silent(url),
                "liar": await unassigned_result_then_garbage(url),
            }
            outcome = hub.submit(task)  # the next worker to register takes it
            seen["cutter"] = await cut_result(url)
            seen["outcome"] = await outcome
            served = hub.submit(WorkerTask.create("t-2", make_task_tensors(4_000, seed=6)))
            await DemoWorker("good").run(url, max_tasks=1)
            seen["served"] = await served
            return seen

    seen = run(scenario(), timeout=30)

    assert seen["heartbeat-first"] == (["unexpected_message"], CloseCode.EXPECTED_REGISTER)
    assert seen["not-json-first"] == (["malformed_json"], CloseCode.INVALID_JSON)
    assert seen["binary-first"] == (["unexpected_binary_frame"], CloseCode.EXPECTED_REGISTER)
    assert seen["invalid-register"] == (["invalid_message"], CloseCode.INVALID_MESSAGE)
    assert seen["oversized-first"] == (["oversized_message"], CloseCode.MESSAGE_TOO_LARGE)
    assert seen["silent"] == (["register_timeout"], CloseCode.EXPECTED_REGISTER)
    assert seen["liar"] == (["rejected"], ["unexpected_binary_frame", "not_an_object"])
    cut_messages, cut_code = seen["cutter"]
    assert cut_code == CloseCode.INVALID_MESSAGE
    (ack,) = [m for m in cut_messages if isinstance(m, ResultAckMessage)]
    assert (ack.task_id, ack.status) == ("t-1", "rejected")
    assert _errors(cut_messages) == ["missing_tensor_frame"]
    # The cutter's result was rejected: that is the task's outcome, not a reason to retry.
    assert (seen["outcome"].worker_id, seen["outcome"].ack_status) == ("cutter", "rejected")
    assert (seen["served"].worker_id, seen["served"].ack_status) == ("good", "accepted")
