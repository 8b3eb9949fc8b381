"""Write the committed seed corpus (``fuzz/seeds/<target>/``) and the dictionary.

``uv run python -m fuzz.make_seeds`` rewrites both from the wire examples
(``docs/wire-examples/``), from frames built the way the test suite builds them, and from
conversations between real sessions, so the fuzzer starts from valid traffic of every kind and
reaches deep paths at once. Run it again when the protocol gains a message or a field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import numpy as np

from fuzz._wire import Kind, encode_records
from juniper_cascor_protocol.envelope import (
    KNOWN_COMMANDS,
    KNOWN_ENVELOPES,
    BroadcastBuilder,
    Chunker,
    ControlCommand,
    ControlServerSession,
    MetricsEnvelope,
    StateEnvelope,
    TopologyEnvelope,
    TrainingProducerSession,
    to_wire_json,
)
from juniper_cascor_protocol.worker import (
    CANDIDATE_INPUT,
    RESIDUAL_ERROR,
    WEIGHTS,
    WORKER_MESSAGES,
    BinaryFrame,
    ServerSession,
    TaskReceived,
    TaskResultMessage,
    WorkerSession,
)

FUZZ = Path(__file__).parent
EXAMPLES = FUZZ.parent / "docs" / "wire-examples"
SEEDS = FUZZ / "seeds"
DICTIONARY = FUZZ / "protocol.dict"
# libFuzzer's default input length limit grows from the corpus; a seed longer than this
# would only slow every run.
MAX_SEED_BYTES = 16_384
WALL = 1_700_000_000.0

PLAIN_DTYPES = (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64", "complex128",
)  # fmt: skip


def _examples(name: str) -> list[dict[str, Any]]:
    examples: list[dict[str, Any]] = json.loads((EXAMPLES / f"{name}.json").read_text())["examples"]
    return examples


def _texts(name: str, direction: str | None = None) -> list[str]:
    found: list[str] = []
    for example in _examples(name):
        if direction is not None and example["direction"] not in (direction, "either"):
            continue
        found += [example["text"]] if "text" in example else example.get("texts", [])
    return found


def _text_records(texts: Iterable[str]) -> bytes:
    return encode_records([(Kind.TEXT, 0.0, text) for text in texts])


# --- per target ------------------------------------------------------------------------------


def binary_frame() -> list[bytes]:
    seeds = [
        bytes.fromhex(example["hex"]) + bytes(example.get("append_zero_bytes", 0))
        for example in _examples("binary-frames")
    ]
    rng = np.random.default_rng(0)
    for name in PLAIN_DTYPES:
        for shape in ((), (3,), (2, 0), (2, 1, 2)):
            array = np.asarray(rng.standard_normal(shape) * 100).astype(name)
            swapped = array.astype(array.dtype.newbyteorder())
            seeds += [BinaryFrame.encode(array), BinaryFrame.encode(swapped)]
    return seeds


def envelope() -> list[bytes]:
    texts = _texts("training") + _texts("control", "server-to-client")
    return [text.encode("utf-8", "surrogatepass") for text in texts]


def control_request() -> list[bytes]:
    return [text.encode("utf-8", "surrogatepass") for text in _texts("control", "client-to-server")]


def worker_message() -> list[bytes]:
    return [text.encode("utf-8", "surrogatepass") for text in _texts("workers")]


def _chunked_conversation() -> list[str]:
    builder = BroadcastBuilder(chunker=Chunker(700), clock=lambda: WALL, monotonic=lambda: 1.0)
    texts = [to_wire_json(builder.metrics({"loss": 0.5}))]
    big = builder.draft(StateEnvelope, {"history": list(range(600))})
    texts += builder.wire_frames(big)
    texts += builder.wire_frames(builder.initial_metrics_draft([{"epoch": 1}] * 150))
    return texts


def reassembler() -> list[bytes]:
    sequences = [e["texts"] for e in _examples("training") if "texts" in e]
    chunked = _chunked_conversation()
    seeds = [_text_records(texts) for texts in [*sequences, chunked]]
    # Out of order, duplicated, and aged out between chunks.
    seeds.append(_text_records([chunked[2], chunked[1], chunked[2], *chunked[3:]]))
    records: list[tuple[Kind, float, str | bytes]] = [(Kind.TEXT, 0.0, t) for t in chunked[1:3]]
    records += [(Kind.PAUSE, 6.0, b""), *[(Kind.TEXT, 0.0, text) for text in chunked[3:]]]
    seeds.append(encode_records(records))
    return seeds


def training_session() -> list[bytes]:
    producer = TrainingProducerSession(chunker=Chunker(700), server_version="1.4.0")
    texts = producer.subscribe(now=WALL, monotonic=1.0)
    texts += producer.broadcast(TopologyEnvelope, {"weights": [0.5] * 400}, now=WALL, monotonic=2.0)
    for epoch in range(3):
        texts += producer.broadcast(MetricsEnvelope, {"epoch": epoch}, now=WALL, monotonic=3.0)
    texts.append('{"type": "ping", "ts": 1700000014.0}')
    seeds = [_text_records(texts)]
    records: list[tuple[Kind, float, str | bytes]] = [(Kind.TEXT, 0.5, text) for text in texts]
    records.insert(3, (Kind.BINARY, 0.0, b"\x00\x01"))
    records.insert(5, (Kind.PAUSE, 10.0, b""))
    seeds.append(encode_records(records))
    seeds += [_text_records(e["texts"]) for e in _examples("training") if "texts" in e]
    return seeds


def control_server_session() -> list[bytes]:
    requests = [*_texts("control", "client-to-server"), '{"type": "pong"}']
    seeds = [_text_records([text]) for text in requests]
    seeds.append(encode_records([(Kind.BINARY, 0.0, b"\x00"), (Kind.PAUSE, 1.0, b"")]))
    seeds.append(_text_records(requests))
    return seeds


def control_client_session() -> list[bytes]:
    server = ControlServerSession(server_version="1.4.0")

    def answer(command_id: str, status: str = "success") -> str:
        request = ControlCommand(command="start", command_id=command_id)
        return server.respond(request, status, now=WALL, result={"ok": True})

    issue = (Kind.CONTROL, 0.0, b"\x00")
    records: list[tuple[Kind, float, str | bytes]] = [
        (Kind.TEXT, 0.0, server.greeting(now=WALL)),
        issue,
        issue,
        (Kind.TEXT, 0.5, answer("c0")),
        (Kind.PAUSE, 6.0, b""),  # c1 times out
        (Kind.TEXT, 0.0, answer("c1")),  # late
        (Kind.TEXT, 0.0, server.receive("{not json", now=WALL).reply),  # type: ignore[union-attr]
        (Kind.TEXT, 0.0, server.ping(now=WALL)),
        issue,
        (Kind.TEXT, 0.0, '{"type":"command_response","timestamp":1.0,"command_id":"c2"}'),
        issue,
        (Kind.CONTROL, 0.0, b"!"),  # connection lost: c3 abandoned
    ]
    greeting_1 = ControlServerSession(protocol_version="1.0").greeting(now=WALL)
    return [
        encode_records(records),
        encode_records([(Kind.TEXT, 0.0, greeting_1), issue]),
        *(_text_records([text]) for text in _texts("control", "server-to-client")),
    ]


def _worker_conversation() -> tuple[list[tuple[Kind, float, str | bytes]], ...]:
    """What a worker and a server each receive in the README's session, with their actions."""
    server = ServerSession(now=0.0, server_version="0.13.0", heartbeat_interval=5.0)
    worker = WorkerSession("worker-1", now=0.0, capabilities={"gpu": False})
    to_worker: list[tuple[Kind, float, str | bytes]] = []
    to_server: list[tuple[Kind, float, str | bytes]] = []

    def deliver(messages: list[str | bytes], side: str) -> list[Any]:
        log, session = (to_worker, worker) if side == "worker" else (to_server, server)
        events = []
        for message in messages:
            kind = Kind.TEXT if isinstance(message, str) else Kind.BINARY
            log.append((kind, 0.0, message))
            events += session.receive(message, 1.0)
        return events

    deliver(server.data_to_send(), "worker")
    deliver(worker.data_to_send(), "server")
    deliver(server.data_to_send(), "worker")
    tensors = {
        CANDIDATE_INPUT: np.ones((2, 2), np.float32),
        RESIDUAL_ERROR: np.zeros(2, np.float32),
    }
    to_server.append((Kind.CONTROL, 0.0, b"\x00"))  # the server assigns t0
    events = deliver(server.send_task("t0", tensors, now=1.0), "worker")
    task = next(event.task for event in events if isinstance(event, TaskReceived))
    result = TaskResultMessage(
        task_id=task.task_id, candidate_id=0, correlation=0.5, success=True, epochs_completed=1
    )
    to_worker.append((Kind.CONTROL, 0.0, b"\x01"))  # the worker sends its result
    to_worker.append((Kind.CONTROL, 0.0, b"\x00"))  # and a heartbeat
    deliver(worker.send_result(result, {WEIGHTS: np.ones(2, np.float32)}), "server")
    deliver(worker.send_heartbeat(2.0), "server")
    deliver(server.data_to_send(), "worker")
    to_worker.append((Kind.PAUSE, 20.0, b""))
    to_server.append((Kind.PAUSE, 20.0, b""))
    return to_worker, to_server


def worker_session() -> list[bytes]:
    to_worker, _ = _worker_conversation()
    seeds = [encode_records(to_worker)]
    seeds += [_text_records([text]) for text in _texts("workers", "server-to-worker")]
    return seeds


def server_session() -> list[bytes]:
    _, to_server = _worker_conversation()
    seeds = [encode_records(to_server)]
    seeds += [_text_records([text]) for text in _texts("workers", "worker-to-server")]
    return seeds


TARGETS = {
    "binary_frame": binary_frame,
    "envelope": envelope,
    "control_request": control_request,
    "worker_message": worker_message,
    "reassembler": reassembler,
    "training_session": training_session,
    "control_client_session": control_client_session,
    "control_server_session": control_server_session,
    "worker_session": worker_session,
    "server_session": server_session,
}


# --- the dictionary --------------------------------------------------------------------------


def _tokens() -> list[bytes]:
    words: set[str] = set(KNOWN_ENVELOPES) | set(KNOWN_COMMANDS)
    words |= {"chunked_message", "ping", "pong", "current_seq", "original_type", "chunk_id"}
    for model in KNOWN_ENVELOPES.values():
        words |= set(model.model_fields)
        data = model.model_fields["data"].annotation
        if isinstance(data, type) and hasattr(data, "model_fields"):
            words |= set(data.model_fields)
    words |= set(ControlCommand.model_fields)
    for member, message in WORKER_MESSAGES.items():
        words.add(str(member))
        words |= {field.name for field in dataclasses.fields(cast(Any, message))}
    words |= {"shape", "dtype", "tensor_manifest", "accepted", "duplicate", "stale", "rejected"}
    for name in PLAIN_DTYPES:
        dtype = np.dtype(name)
        words |= {name, f"{dtype.kind}{dtype.itemsize}"}
        words |= {f"{order}{dtype.kind}{dtype.itemsize}" for order in "<>=|"}
    tokens = {f'"{word}"'.encode() for word in words} | {word.encode() for word in words}
    tokens |= {b"NaN", b"Infinity", b"-Infinity", b"true", b"false", b"null", b"1e308"}
    tokens |= {b"\\ud800", b"\\u0000", b'":', b'{"type":', b"9" * 30, b"-0.0"}
    # Binary frame headers: small u32 counts, and each dtype string behind its length.
    tokens |= {n.to_bytes(4, "little") for n in (0, 1, 2, 3, 10, 11, 64, 65, 0xFFFFFFFF)}
    for name in PLAIN_DTYPES:
        tokens.add(len(name).to_bytes(4, "little") + name.encode())
    return sorted(tokens)


def _dictionary_line(token: bytes) -> str:
    escaped = "".join(
        chr(byte) if 0x20 <= byte < 0x7F and byte not in b'"\\' else f"\\x{byte:02x}"
        for byte in token
    )
    return f'"{escaped}"'


def main() -> None:
    shutil.rmtree(SEEDS, ignore_errors=True)
    total = 0
    for target, make in TARGETS.items():
        folder = SEEDS / target
        folder.mkdir(parents=True)
        for seed in make():
            if len(seed) <= MAX_SEED_BYTES:
                # Content-addressed names, as libFuzzer names what it finds.
                (folder / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
                total += len(seed)
    header = "# Protocol tokens for libFuzzer's -dict: written by fuzz/make_seeds.py.\n"
    DICTIONARY.write_text(header + "\n".join(map(_dictionary_line, _tokens())) + "\n")
    print(f"{total} bytes of seeds in {SEEDS}, dictionary {DICTIONARY}")


if __name__ == "__main__":
    main()
