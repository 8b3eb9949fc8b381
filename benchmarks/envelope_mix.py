"""The frame mix both envelope benchmarks measure: 20 ``/ws/training`` and ``/ws/control``
frames in the proportions a client sees, as dicts (``MIX``) and as their JSON text (``RAW``)."""

from __future__ import annotations

import json
import random
from typing import Any

Frame = dict[str, Any]


def _metrics_data(epoch: int) -> dict[str, Any]:
    return {
        "epoch": epoch,
        "step": epoch * 10,
        "phase": 1,
        "loss": 0.5 / (epoch + 1),
        "accuracy": 0.9,
        "val_loss": 0.6,
        "val_accuracy": 0.88,
        "hidden_units": 3,
        "learning_rate": 0.01,
        "correlation": 0.7,
        "candidates": 8,
        "best_candidate": 2,
        "patience": 5,
        "output_error": 0.01,
        "elapsed_s": 12.5,
    }


def _make_mix() -> list[Frame]:
    """20 frames: half metrics, plus every other common kind, 2 unknown and 2 invalid."""
    rng = random.Random(7)
    seq = 0
    timestamp = 1_700_000_000.25

    def broadcast(type_: str, data: dict[str, Any]) -> Frame:
        nonlocal seq
        seq += 1
        return {
            "type": type_,
            "timestamp": timestamp + seq,
            "data": data,
            "seq": seq,
            "emitted_at_monotonic": 5_000.5 + seq,
        }

    frames = [broadcast("metrics", _metrics_data(epoch)) for epoch in range(10)]
    frames += [
        broadcast("state", {"status": "training", "phase": "output", "epoch": 3}),
        broadcast("state", {"status": "paused", "phase": "candidate", "epoch": 4}),
        {
            "type": "command_response",
            "timestamp": timestamp,
            "data": {"command": "start", "status": "success", "command_id": "c-1", "result": {}},
        },
        {
            "type": "command_response",
            "timestamp": timestamp,
            "data": {"command": "set_params", "status": "error", "error": "bad", "code": "E1"},
        },
        broadcast(
            "topology",
            {
                "input_size": 20,
                "output_size": 2,
                "hidden_units": [
                    {"id": unit, "weights": [rng.uniform(-1, 1) for _ in range(20)]}
                    for unit in range(50)
                ],
            },
        ),
        {
            "type": "initial_metrics",
            "timestamp": timestamp,
            "data": {
                "metrics": [_metrics_data(epoch) for epoch in range(100)],
                "count": 100,
                "current_seq": seq,
            },
        },
        broadcast("training_summary", {"epochs": 40}),  # unknown: a newer server's type
        broadcast("heartbeat", {}),  # unknown on this channel
        # Invalid: no ``status``; a negative ``chunk_index``.
        {"type": "command_response", "timestamp": timestamp, "data": {"command": "stop"}},
        broadcast(
            "chunked_message",
            {
                "chunk_id": "c0ffee",
                "chunk_index": -1,
                "total_chunks": 2,
                "original_type": "topology",
                "payload": "{",
            },
        ),
    ]
    return frames


MIX = _make_mix()
RAW = [json.dumps(frame) for frame in MIX]
