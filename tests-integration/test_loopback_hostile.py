"""A hostile peer against the consumers, over real loopback connections.

The peer sends garbage, then a good frame. Each test checks that the consumer is still working
(it processes the good frame), that every bad frame was counted once under the right label or
reason, and that memory stayed within the configured caps.
"""

from __future__ import annotations

import json
import random
import struct
import uuid
from collections import Counter
from typing import Any

import numpy as np
import pytest

from juniper_cascor_protocol.demo.candidate import make_task_tensors
from juniper_cascor_protocol.demo.training_client import Refusal, TrainingClient
from juniper_cascor_protocol.demo.worker import DemoWorker
from juniper_cascor_protocol.demo.worker_hub import CRC32_KEY, WorkerTask
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
from juniper_cascor_protocol.envelope.training import TopologyEnvelope
from juniper_cascor_protocol.worker import BinaryFrame
from juniper_cascor_protocol.worker.manifest import TensorSpec
from juniper_cascor_protocol.worker.messages import (
    ConnectionEstablishedMessage,
    HeartbeatMessage,
    RegistrationAckMessage,
    ResultAckMessage,
    TaskResultMessage,
    WorkerMessage,
    parse_worker_message,
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

    stats = client.stats
    assert stats.messages == len(script)
    assert stats.refused == {
        Refusal.BINARY_FRAME: len(random_binary),
        Refusal.OVERSIZED: len(oversized) + len(multibyte),
    }
    assert stats.unknown_types == {
        MALFORMED_JSON_LABEL: len(truncated),
        NOT_AN_OBJECT_LABEL: len(wrong_json),
    }
    assert stats.bad_frames == len(script) - 1
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

    labels = client.stats.unknown_types
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
    # 4. Structurally invalid chunk frames are unknown envelopes keeping the known name.
    malformed = [
        json.dumps({"type": "chunked_message", "timestamp": 1.0, "data": {"chunk_index": -1}})
    ] * 20
    # Then a good chunked message, proving the reassembler still works after the flood.
    builder = BroadcastBuilder(chunker=Chunker(2048))
    original = builder.draft(TopologyEnvelope, {"nodes": list(range(2000))})
    good = [to_wire_json(frame) for frame in builder.frames(original)]
    assert len(good) > 1
    script: list[str | bytes] = [*distinct, *huge_total, *conflicts, *malformed, *good]
    delivered: list[BaseEnvelope] = []
    reassembler = Reassembler(
        max_chunks_per_message=caps["max_chunks_per_message"],
        max_message_bytes=caps["max_message_bytes"],
        max_buffered_bytes=caps["max_buffered_bytes"],
        max_messages_in_flight=caps["max_messages_in_flight"],
    )
    client = TrainingClient(reassembler=reassembler, on_message=delivered.append)

    _consume(run, scripted_peer, script, client)

    stats = client.stats
    assert stats.chunk_rejections == expected_reasons
    assert stats.unknown_types == {"chunked_message": len(malformed)}
    assert stats.peak_in_flight <= caps["max_messages_in_flight"]
    assert stats.peak_buffered_bytes <= caps["max_buffered_bytes"]
    after = client.reassembler.stats()
    assert after.in_flight <= caps["max_messages_in_flight"]
    assert after.buffered_bytes <= caps["max_buffered_bytes"]
    assert after.evicted >= len(distinct) - caps["max_messages_in_flight"]
    assert [e for e in delivered if e.type == "topology"] == [original]


def _wire(message: WorkerMessage) -> str:
    return json.dumps(message.to_wire())


def _frame_with_dtype(dtype_text: bytes, count: int) -> bytes:
    return struct.pack(f"<III{len(dtype_text)}s", 1, count, len(dtype_text), dtype_text) + bytes(
        8 * count
    )


def test_hostile_server_frames_are_counted_by_the_worker_which_keeps_working(
    run: Any, scripted_peer: Any
) -> None:
    rng = random.Random(7)
    x = np.arange(4, dtype=np.float32)
    x_manifest = {"x": TensorSpec([4], "float32")}
    script: list[str | bytes] = [
        _wire(ConnectionEstablishedMessage(server_version="hostile")),
        _wire(RegistrationAckMessage(worker_id="target")),
        *(rng.randbytes(rng.randrange(1, 64)) for _ in range(5)),  # outside any task
        "[1]",
        "null",
        "3",
        '"x"',
        '{"type": "warp"}',
        '{"no_type": 1}',
        "{bad",
        '{"type": "task_assign"}',
        '{"type": "result_ack", "task_id": "z", "status": "bogus"}',
    ]
    expected: Counter[str] = Counter(
        unexpected_binary_frame=5,
        not_an_object=4,
        unknown_type=2,
        malformed_json=1,
        invalid_message=2,
    )
    bad_frames = {
        "binary_frame_too_short_for_shape_header": b"\x00\x00",
        "data_size_mismatch": BinaryFrame.encode(x)[:-3],
        "unreasonable_number_of_dimensions": struct.pack("<I", 11) + bytes(64),
        "invalid_dtype_string": _frame_with_dtype(b"O", 4),
    }
    for label, frame in bad_frames.items():
        script += [_wire(WorkerTask(label, {"x": x}).assign_message()), frame]
        expected[label] += 1
    big = np.zeros(300_000, dtype=np.float32)  # 1.2 MB, over the worker's 1 MiB limit
    script += [_wire(WorkerTask("oversized", {"x": big}).assign_message()), BinaryFrame.encode(big)]
    expected["oversized_frame"] += 1
    # A heartbeat where the tensor frame should be: the task fails, the heartbeat still counts.
    script += [
        _wire(WorkerTask("interrupted", {"x": x}).assign_message()),
        _wire(HeartbeatMessage(worker_id="server", timestamp=1.0)),
    ]
    expected["missing_tensor_frame"] += 1
    lying = WorkerTask("lying", {"x": x}, manifest={"x": TensorSpec([4], "float64")})
    script += [_wire(lying.assign_message()), BinaryFrame.encode(x)]
    expected["manifest_mismatch"] += 1
    tensors = make_task_tensors(20_000, seed=1)
    corrupt = WorkerTask.create("corrupt", tensors)
    corrupt.candidate_data[CRC32_KEY]["residual_error"] ^= 1
    script += [_wire(corrupt.assign_message()), *map(BinaryFrame.encode, tensors.values())]
    expected["checksum_mismatch"] += 1
    script += [_wire(WorkerTask("unscorable", {"x": x}, manifest=x_manifest).assign_message())]
    script += [BinaryFrame.encode(x)]
    expected["unscorable_task"] += 1
    good = WorkerTask.create("good", tensors)
    script += [_wire(good.assign_message()), *map(BinaryFrame.encode, tensors.values())]
    tasks = 10
    script += [_wire(ResultAckMessage(task_id=f"t{i}", status="accepted")) for i in range(tasks)]
    worker = DemoWorker("target", max_frame_bytes=2**20)

    async def scenario() -> list[str | bytes]:
        async with scripted_peer(script, max_size=2**24, drain=True) as peer:
            await worker.run(peer.url, max_tasks=tasks)
            return list(peer.received)

    received = run(scenario())

    stats = worker.stats
    assert stats.problems == expected
    assert (stats.tasks_failed, stats.tasks_succeeded) == (tasks - 1, 1)
    assert stats.heartbeats_received == 1
    assert stats.acks == {"accepted": tasks}
    replies = [parse_worker_message(json.loads(m)) for m in received if isinstance(m, str)]
    results = [r for r in replies if isinstance(r, TaskResultMessage)]
    assert [r.success for r in results] == [False] * (tasks - 1) + [True]
    assert [r.task_id for r in results][-1] == "good"
    assert sum(isinstance(m, bytes) for m in received) == len(results[-1].tensor_manifest)
