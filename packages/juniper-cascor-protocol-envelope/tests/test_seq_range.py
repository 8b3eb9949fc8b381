"""A received ``seq`` is a number from 0 to MAX_SEQ, as docs/protocol.md promises consumers.

Outside that range a frame is invalid for its type (it keeps its name, no budget is used) and its
``seq`` is dropped, so no consumer ever holds a ``seq`` that a signed 64-bit integer cannot, and a
tracker never reports millions of digits of missing frames.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from juniper_cascor_protocol.envelope import (
    MAX_SEQ,
    MetricsEnvelope,
    SequenceTracker,
    UnknownEnvelope,
    validate_envelope,
    validate_envelope_json,
)


def frame(seq: object, type_: str = "metrics") -> dict[str, object]:
    return {"type": type_, "timestamp": 1.5, "data": {"loss": 0.5}, "seq": seq}


@pytest.mark.parametrize("seq", [-1, MAX_SEQ + 1, 10**30, -(2**70)])
@pytest.mark.parametrize("type_", ["metrics", "future_kind"])
def test_a_seq_out_of_range_is_dropped_and_a_known_frame_is_invalid(seq: int, type_: str) -> None:
    for envelope in (
        validate_envelope(frame(seq, type_)),
        validate_envelope_json(json.dumps(frame(seq, type_))),
    ):
        assert type(envelope) is UnknownEnvelope
        assert envelope.type == type_
        assert envelope.seq is None
        assert "seq" not in envelope.model_fields_set


@pytest.mark.parametrize("seq", [0, 1, MAX_SEQ])
def test_the_bounds_themselves_are_valid(seq: int) -> None:
    envelope = validate_envelope_json(json.dumps(frame(seq)))
    assert isinstance(envelope, MetricsEnvelope)
    assert envelope.seq == seq
    assert validate_envelope(frame(seq, "future_kind")).seq == seq


@given(st.integers())
def test_no_validated_seq_is_outside_the_range(seq: int) -> None:
    envelope = validate_envelope(frame(seq, "future_kind"))
    assert envelope.seq is None or 0 <= envelope.seq <= MAX_SEQ
    assert (envelope.seq == seq) is (0 <= seq <= MAX_SEQ)


def test_a_tracker_never_sees_a_gap_wider_than_the_range() -> None:
    tracker = SequenceTracker()
    tracker.observe(validate_envelope(frame(1)))
    observation = tracker.observe(validate_envelope(frame(10**4000)))
    # The out-of-range frame carries no seq: nothing to judge, no gap of 10**4000 frames.
    assert observation.missing_count == 0
    assert observation.seq is None
