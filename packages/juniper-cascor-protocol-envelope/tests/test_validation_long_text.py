"""``validate_envelope_json`` on long texts, which are decoded by ``from_json`` and then validated
as a dict (see the module docstring of ``validate.py``): the result must not depend on the path.

JSON allows whitespace after the value, so padding a text with spaces sends it down the long
path without changing what it says.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from juniper_cascor_protocol.envelope import (
    DEFAULT_LABEL_BUDGET,
    KNOWN_ENVELOPES,
    BaseEnvelope,
    InitialMetricsEnvelope,
    LabelBudget,
    MetricsEnvelope,
    StateEnvelope,
    UnknownEnvelope,
    reset_unknown_label_state,
    validate_envelope,
    validate_envelope_json,
)

LONG = 4096
"""The length from which a text takes the long path."""


def _padded(raw: str) -> str:
    return raw + " " * LONG


def _assert_same(envelope: BaseEnvelope, expected: BaseEnvelope) -> None:
    assert type(envelope) is type(expected)
    # As text: NaN compares equal to itself there, and 1 differs from 1.0.
    assert envelope.model_dump_json() == expected.model_dump_json()
    assert envelope.model_fields_set == expected.model_fields_set


METRICS = {"type": "metrics", "timestamp": 1.5, "data": {"loss": 0.25}, "seq": 3}
SURROGATE = '{"type": "metrics", "timestamp": 1.0, "data": {"k": "\\ud800"}}'
DEEP = '{"type": "state", "timestamp": 1.0, "data": {"w": ' + "[" * 250 + "]" * 250 + "}}"

# Read alike by both paths, whatever the Pydantic version.
COMMON_CASES = [
    json.dumps(METRICS),
    json.dumps({"type": "future_kind", "timestamp": 3, "data": [1], "seq": True, "z": 1}),
    json.dumps({"type": "command_response", "timestamp": 3, "data": {"command": "x"}}),
    json.dumps({"type": "metrics", "timestamp": float("nan"), "data": {"loss": math.inf}}),
    json.dumps({"type": "metrics", "timestamp": 10**400, "seq": 10**400}),
    json.dumps({"type": 5, "timestamp": 1.0}),
    json.dumps({"timestamp": 1.0, "extra": None}),
    json.dumps({}),
    '{"type": "metrics", "timestamp": 1e400}',
    # Only json.loads reads these: a lone surrogate, and nesting deeper than from_json goes.
    SURROGATE,
    DEEP,
]
CASES = [
    *COMMON_CASES,
    # Where the short path differs before Pydantic 2.11 and 2.12 (see validate_envelope_json).
    '{"type": "metrics", "timestamp": 1.0, "timestamp": 2.0, "data": {"a": 1, "a": 2}}',
    json.dumps({"type": "metrics", "timestamp": 10**30, "emitted_at_monotonic": 10**19}),
]


@pytest.mark.parametrize("raw", CASES)
def test_a_long_text_gives_what_json_loads_then_validate_envelope_gives(raw: str) -> None:
    long_text = _padded(raw)
    expected = validate_envelope(json.loads(raw))
    for text in (long_text, long_text.encode(), bytearray(long_text.encode())):
        reset_unknown_label_state()
        _assert_same(validate_envelope_json(text), expected)


def test_the_short_and_the_long_path_agree() -> None:
    for raw in COMMON_CASES:
        reset_unknown_label_state()
        _assert_same(validate_envelope_json(_padded(raw)), validate_envelope_json(raw))


def test_a_long_text_with_an_integer_too_long_to_convert_falls_back_without_it() -> None:
    raw = '{"type": "metrics", "timestamp": 1.0, "data": {"n": ' + "7" * 5000 + "}}"
    envelope = validate_envelope_json(raw)
    assert type(envelope) is UnknownEnvelope
    assert envelope.model_dump(exclude_none=True) == {
        "type": "metrics",
        "timestamp": 1.0,
        "data": {},
    }
    assert envelope.model_fields_set == {"type", "timestamp"}


def test_a_long_text_that_only_json_loads_reads_is_still_typed() -> None:
    assert type(validate_envelope_json(_padded(SURROGATE))) is MetricsEnvelope
    assert type(validate_envelope_json(_padded(DEEP))) is StateEnvelope


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("[" + "1, " * LONG + "1]", "_not_an_object"),
        ('"' + "x" * LONG + '"', "_not_an_object"),
        ('{"type": "metrics", "data": ' + "x" * LONG, "_malformed_json"),
        ("{" * LONG, "_malformed_json"),
    ],
)
def test_a_long_text_that_is_no_frame_is_labelled_as_a_short_one(raw: str, label: str) -> None:
    envelope = validate_envelope_json(raw)
    assert type(envelope) is UnknownEnvelope
    assert envelope.model_dump(exclude_none=True) == {"type": label, "timestamp": 0.0, "data": {}}


def test_a_long_text_spends_the_budget_it_is_given() -> None:
    budget = LabelBudget(size=1)
    assert validate_envelope_json(_padded('{"type": "first"}'), labels=budget).type == "first"
    assert validate_envelope_json(_padded('{"type": "second"}'), labels=budget).type == "_unmatched"
    surrogate = '{"type": "third", "data": {"s": "\\ud800"}}'
    assert validate_envelope_json(_padded(surrogate), labels=budget).type == "_unmatched"
    assert DEFAULT_LABEL_BUDGET.admitted == frozenset()


def test_a_long_burst_is_typed_and_keeps_every_entry() -> None:
    entries = [{"epoch": epoch, "loss": 1 / (epoch + 1), "phase": "output"} for epoch in range(200)]
    frame = {
        "type": "initial_metrics",
        "timestamp": 1.0,
        "data": {"metrics": entries, "count": 200, "current_seq": 9},
    }
    raw = json.dumps(frame)
    assert len(raw) >= LONG
    envelope = validate_envelope_json(raw)
    assert type(envelope) is InitialMetricsEnvelope
    assert envelope.model_dump(exclude_none=True) == frame


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text()),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def json_frames(draw: st.DrawFn) -> dict[str, Any]:
    """A frame with any of the envelope keys, a known ``type`` most often, and other keys."""
    frame = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3))
    if draw(st.booleans()):
        frame["type"] = draw(st.sampled_from(list(KNOWN_ENVELOPES)) | st.text(max_size=8))
    for field in ("timestamp", "data", "seq", "emitted_at_monotonic"):
        if draw(st.booleans()):
            frame[field] = draw(json_values)
    return frame


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_frames(), st.booleans())
def test_any_long_text_gives_what_json_loads_then_validate_envelope_gives(
    frame: dict[str, Any], as_bytes: bool
) -> None:
    text = _padded(json.dumps(frame))
    reset_unknown_label_state()
    expected = validate_envelope(json.loads(text))
    reset_unknown_label_state()
    _assert_same(validate_envelope_json(text.encode() if as_bytes else text), expected)
