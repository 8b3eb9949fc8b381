"""The bounded ``type`` label of unmatched frames: budget, reserved labels, charset, threads."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from juniper_cascor_protocol.envelope import (
    KNOWN_ENVELOPES,
    UNKNOWN_TYPE_BUDGET,
    UNMATCHED_TYPE_LABEL,
    reset_unknown_label_state,
    validate_envelope,
)
from juniper_cascor_protocol.envelope.labels import (
    INVALID_TYPE_LABEL,
    MAX_LABEL_LENGTH,
    MISSING_TYPE_LABEL,
    RESERVED_LABELS,
    label_for_type,
)

SAFE_LABEL = re.compile(r"[A-Za-z0-9_]{1,64}")


def _label(type_: Any) -> str:
    """The ``type`` that ``validate_envelope`` gives a frame with this ``type`` and no payload."""
    return validate_envelope({"type": type_, "timestamp": 1.0}).type


def test_the_first_sixteen_new_labels_are_verbatim_and_the_seventeenth_is_unmatched() -> None:
    labels = [f"future_type_{index}" for index in range(UNKNOWN_TYPE_BUDGET)]
    assert [_label(label) for label in labels] == labels
    assert _label("one_too_many") == UNMATCHED_TYPE_LABEL
    assert _label("and_another") == UNMATCHED_TYPE_LABEL


def test_labels_already_seen_stay_verbatim_after_the_budget_is_spent() -> None:
    labels = [f"t{index}" for index in range(UNKNOWN_TYPE_BUDGET)]
    for label in labels:
        _label(label)
    assert _label("new") == UNMATCHED_TYPE_LABEL
    assert [_label(label) for label in reversed(labels)] == labels[::-1]


def test_reset_gives_a_fresh_budget() -> None:
    for index in range(UNKNOWN_TYPE_BUDGET):
        _label(f"old_{index}")
    assert _label("new") == UNMATCHED_TYPE_LABEL
    reset_unknown_label_state()
    assert _label("new") == "new"


def test_repeating_a_label_does_not_consume_the_budget() -> None:
    for _ in range(3 * UNKNOWN_TYPE_BUDGET):
        assert _label("same_every_time") == "same_every_time"
    fresh = [f"fresh_{index}" for index in range(UNKNOWN_TYPE_BUDGET - 1)]
    assert [_label(label) for label in fresh] == fresh


@pytest.mark.parametrize("type_", list(KNOWN_ENVELOPES))
def test_known_names_with_invalid_payloads_keep_their_name_and_consume_nothing(
    type_: str,
) -> None:
    for index in range(UNKNOWN_TYPE_BUDGET):
        _label(f"spent_{index}")
    invalid = validate_envelope({"type": type_, "timestamp": float("nan"), "data": {}})
    assert invalid.type == type_
    assert type(invalid).__name__ == "UnknownEnvelope"


def test_reserved_labels_consume_nothing() -> None:
    for type_ in [None, 3, ["a"], {"k": "v"}, "", True, 1.5]:
        assert _label(type_) == INVALID_TYPE_LABEL
    assert validate_envelope({"timestamp": 1.0}).type == MISSING_TYPE_LABEL
    labels = [f"after_reserved_{index}" for index in range(UNKNOWN_TYPE_BUDGET)]
    assert [_label(label) for label in labels] == labels


def test_a_wire_type_equal_to_a_reserved_label_consumes_nothing() -> None:
    for label in sorted(RESERVED_LABELS):
        assert _label(label) == label
    labels = [f"x{index}" for index in range(UNKNOWN_TYPE_BUDGET)]
    assert [_label(label) for label in labels] == labels


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("bad type!", "bad_type_"),
        ("training.summary/v2", "training_summary_v2"),
        ("héllo", "h_llo"),
        ("metrics\n", "metrics_"),
        ("9lives", "9lives"),
        ("x" * 100, "x" * MAX_LABEL_LENGTH),
        ("é" * 100, "_" * MAX_LABEL_LENGTH),
    ],
)
def test_labels_are_cut_to_64_characters_of_a_safe_charset(raw: str, label: str) -> None:
    assert _label(raw) == label


def test_raw_types_that_clean_to_the_same_label_count_once() -> None:
    assert _label("a-b") == "a_b"
    assert _label("a.b") == "a_b"
    fresh = [f"f{index}" for index in range(UNKNOWN_TYPE_BUDGET - 1)]
    assert [_label(label) for label in fresh] == fresh
    assert _label("a b") == "a_b"


def test_a_str_subclass_is_labelled_by_its_value() -> None:
    class Shouting(str):
        def __hash__(self) -> int:
            raise RuntimeError("no hashing")

        def __str__(self) -> str:
            raise RuntimeError("no str()")

    assert _label(Shouting("custom_kind")) == "custom_kind"


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_every_label_is_short_and_metrics_safe(raw: str) -> None:
    reset_unknown_label_state()
    label = label_for_type(raw)
    assert SAFE_LABEL.fullmatch(label)
    assert label == _label(raw)


def test_threads_racing_admit_exactly_the_budget_and_agree_on_every_label() -> None:
    threads_count = 8
    shared = [f"shared_{index}" for index in range(12)]
    own = {thread: [f"own_{thread}_{index}" for index in range(6)] for thread in range(8)}
    start = threading.Barrier(threads_count)
    results: dict[int, dict[str, str]] = {}

    def work(thread: int) -> None:
        seen: dict[str, str] = {}
        start.wait()
        for _ in range(3):  # repeat, so that already-seen lookups race with admissions
            for raw in [*shared, *own[thread]]:
                label = _label(raw)
                assert seen.setdefault(raw, label) == label
        results[thread] = seen

    workers = [threading.Thread(target=work, args=(thread,)) for thread in range(threads_count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert len(results) == threads_count
    answers: dict[str, set[str]] = {}
    for seen in results.values():
        for raw, label in seen.items():
            answers.setdefault(raw, set()).add(label)
    # Every thread got the same answer for the same raw type...
    assert all(len(labels) == 1 for labels in answers.values())
    verbatim = {raw for raw, labels in answers.items() if labels == {raw}}
    unmatched = {raw for raw, labels in answers.items() if labels == {UNMATCHED_TYPE_LABEL}}
    # ...and exactly the budget was admitted, the rest unmatched.
    assert len(verbatim) == UNKNOWN_TYPE_BUDGET
    assert verbatim | unmatched == set(answers)
