"""Speed of envelope validation on a realistic mix of ``/ws/training`` and ``/ws/control`` frames.

Measured in one run, each over the whole mix (per-frame figures are the round time divided by
the number of frames):

* baseline: the straightforward implementation of the same contract — look the class up by
  ``type``, ``model_validate`` the frame, and on ``ValidationError`` (or an unknown type) build
  the ``UnknownEnvelope`` with ``model_construct``;
* ``validate_envelope`` on the decoded frames;
* ``json.loads`` alone: the floor for anything that starts from text;
* ``json.loads`` followed by ``validate_envelope``;
* ``validate_envelope_json`` on the text.

pytest-benchmark reports each on its own; for the table printed at the end, the five take turns
over 200 rounds and the best round of each is kept, so that other work on the machine weighs on
all of them alike. The table gives the ratios against their targets with PASS or MISS: a MISS is
reported, not failed, since speed depends on the machine. Every measured function's results
are checked first.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from juniper_cascor_protocol.envelope import (
    KNOWN_ENVELOPES,
    BaseEnvelope,
    UnknownEnvelope,
    reset_unknown_label_state,
    validate_envelope,
    validate_envelope_json,
)
from juniper_cascor_protocol.envelope.labels import label_for_type

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
EXPECTED_TYPES = [type(validate_envelope(frame)).__name__ for frame in MIX]


def _baseline_fallback(frame: Frame, type_: Any) -> UnknownEnvelope:
    fields: dict[str, Any] = {
        "type": label_for_type(type_) if isinstance(type_, str) and type_ else "_invalid_type",
        "timestamp": 0.0,
        "data": {},
    }
    for key, value in frame.items():
        if key == "timestamp" or key == "emitted_at_monotonic":
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if number and math.isfinite(value):
                fields[key] = float(value)
        elif key == "data":
            if isinstance(value, dict):
                fields[key] = value
        elif key == "seq":
            if isinstance(value, int) and not isinstance(value, bool):
                fields[key] = value
        elif key != "type" and isinstance(key, str):
            fields[key] = value
    return UnknownEnvelope.model_construct(**fields)


def baseline(frame: Frame) -> BaseEnvelope:
    """Per-type ``model_validate`` after a dict lookup; ``model_construct`` for the fallback."""
    type_ = frame["type"]
    cls = KNOWN_ENVELOPES.get(type_)
    if cls is not None:
        try:
            return cls.model_validate(frame)
        except ValidationError:
            pass
    return _baseline_fallback(frame, type_)


def _loads_then_validate(raw: str) -> BaseEnvelope:
    return validate_envelope(json.loads(raw))


def _over_mix(function: Callable[[Any], Any], inputs: list[Any]) -> Callable[[], None]:
    def run() -> None:
        for item in inputs:
            function(item)

    return run


def _measure(benchmark: Any, function: Callable[[Any], Any], inputs: list[Any]) -> None:
    benchmark.group = "envelope validation (one round = the whole mix)"
    benchmark(_over_mix(function, inputs))


# Each measured function over its input (decoded frames or their JSON text), by name.
VARIANTS: dict[str, tuple[Callable[[Any], Any], list[Any]]] = {
    "baseline": (baseline, MIX),
    "validate_envelope": (validate_envelope, MIX),
    "json.loads (floor)": (json.loads, RAW),
    "json.loads + validate_envelope": (_loads_then_validate, RAW),
    "validate_envelope_json": (validate_envelope_json, RAW),
}


def _interleaved_best_seconds(rounds: int) -> dict[str, float]:
    """Best time of one round per variant, the variants taking turns round after round.

    Measured in turns rather than one test after the other, a machine busy with other work
    for a few seconds slows every variant alike instead of the one running at that moment.
    """
    runs = {name: _over_mix(function, inputs) for name, (function, inputs) in VARIANTS.items()}
    best = dict.fromkeys(runs, math.inf)
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


_RATIOS = [
    # (what, numerator, denominator, target, sense)
    ("validate_envelope speed-up over baseline", "baseline", "validate_envelope", 3.0, ">="),
    (
        "validate_envelope_json speed-up over loads+validate",
        "json.loads + validate_envelope",
        "validate_envelope_json",
        2.0,
        ">=",
    ),
    (
        "validate_envelope_json time / json.loads time",
        "validate_envelope_json",
        "json.loads (floor)",
        1.5,
        "<=",
    ),
]


def _table_lines(best_seconds: dict[str, float]) -> list[str]:
    per_frame = {name: seconds / len(MIX) * 1e6 for name, seconds in best_seconds.items()}
    lines = [f"{name:<55} {micros:9.2f} us/frame" for name, micros in per_frame.items()]
    lines += ["", f"{'ratio':<55} {'measured':>9} {'target':>7}  result"]
    for what, numerator, denominator, target, sense in _RATIOS:
        if numerator not in per_frame or denominator not in per_frame:
            lines.append(f"{what:<55} {'n/a':>9} {sense}{target:>4.1f}x  not measured")
            continue
        ratio = per_frame[numerator] / per_frame[denominator]
        met = ratio >= target if sense == ">=" else ratio <= target
        lines.append(
            f"{what:<55} {ratio:>8.2f}x {sense}{target:>4.1f}x  {'PASS' if met else 'MISS'}"
        )
    return lines


class _RatioTable:
    """A plugin registered at the end of the module: prints the table in the terminal summary
    (output written from a test or fixture would be captured by pytest)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        title = f"envelope validation: {len(MIX)}-frame mix, best of interleaved rounds"
        terminalreporter.write_sep("=", title)
        for line in self.lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="module", autouse=True)
def _fresh_labels() -> None:
    reset_unknown_label_state()


def _dump(envelope: BaseEnvelope) -> tuple[str, dict[str, Any]]:
    return type(envelope).__name__, envelope.model_dump(exclude_none=True)


def test_the_mix_is_realistic() -> None:
    assert EXPECTED_TYPES.count("MetricsEnvelope") == len(MIX) // 2
    assert EXPECTED_TYPES.count("UnknownEnvelope") == 4
    assert len(set(EXPECTED_TYPES)) == 6


def test_baseline(benchmark: Any) -> None:
    assert [_dump(baseline(frame)) for frame in MIX] == [
        _dump(validate_envelope(frame)) for frame in MIX
    ]
    _measure(benchmark, baseline, MIX)


def test_validate_envelope(benchmark: Any) -> None:
    results = [validate_envelope(frame) for frame in MIX]
    assert [type(result).__name__ for result in results] == EXPECTED_TYPES
    for frame, result in zip(MIX, results, strict=True):
        if not isinstance(result, UnknownEnvelope):
            assert result.model_dump(exclude_none=True) == frame
    _measure(benchmark, validate_envelope, MIX)


def test_json_loads_floor(benchmark: Any) -> None:
    assert [json.loads(raw) for raw in RAW] == MIX
    _measure(benchmark, json.loads, RAW)


def test_json_loads_then_validate_envelope(benchmark: Any) -> None:
    assert [type(_loads_then_validate(raw)).__name__ for raw in RAW] == EXPECTED_TYPES
    _measure(benchmark, _loads_then_validate, RAW)


def test_validate_envelope_json(benchmark: Any) -> None:
    assert [_dump(validate_envelope_json(raw)) for raw in RAW] == [
        _dump(validate_envelope(frame)) for frame in MIX
    ]
    _measure(benchmark, validate_envelope_json, RAW)


def test_ratio_table(benchmark: Any, request: pytest.FixtureRequest) -> None:
    """The five variants (each checked by its own test above) timed in turns, for the table."""
    benchmark.group = "envelope validation: the interleaved measurement behind the table"
    best_seconds = benchmark.pedantic(_interleaved_best_seconds, args=(200,), rounds=1)
    assert set(best_seconds) == set(VARIANTS)
    request.config.pluginmanager.register(
        _RatioTable(_table_lines(best_seconds)), "envelope-ratio-table"
    )
