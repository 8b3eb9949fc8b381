"""The bounded ``type`` label of unmatched frames: budget, reserved labels, charset, threads."""

from __future__ import annotations

import json
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
    LabelBudget,
    reset_unknown_label_state,
    validate_envelope,
    validate_envelope_json,
)
from juniper_cascor_protocol.envelope.labels import (
    DEFAULT_LABEL_BUDGET,
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


@pytest.mark.parametrize("reserved", sorted(RESERVED_LABELS))
def test_a_peer_cannot_forge_a_reserved_label(reserved: str) -> None:
    assert _label(reserved) == "x" + reserved
    assert validate_envelope_json(json.dumps({"type": reserved})).type == "x" + reserved
    assert validate_envelope({"type": reserved + "!"}).type == "x" + reserved + "_"


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("_", "x_"),
        ("__init__", "x__init__"),
        ("_" * 100, "x" + "_" * (MAX_LABEL_LENGTH - 1)),
        (".hidden", "x_hidden"),
        ("\udcff", "x_"),
        ("x_unmatched", "x_unmatched"),  # a type that is the forged form already: no collision
    ],
)
def test_a_wire_label_never_starts_with_the_reserved_underscore(raw: str, label: str) -> None:
    assert _label(raw) == label


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("bad type!", "bad_type_"),
        ("training.summary/v2", "training_summary_v2"),
        ("héllo", "h_llo"),
        ("metrics\n", "metrics_"),
        ("9lives", "9lives"),
        ("x" * 100, "x" * MAX_LABEL_LENGTH),
        ("é" * 100, "x" + "_" * (MAX_LABEL_LENGTH - 1)),
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


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=1), max_size=3 * UNKNOWN_TYPE_BUDGET))
def test_only_the_library_gives_a_label_starting_with_an_underscore(raws: list[str]) -> None:
    budget = LabelBudget()
    for raw in raws:
        label = budget.label_for(raw)
        assert not label.startswith("_") or label == UNMATCHED_TYPE_LABEL


# --- budgets of one's own ----------------------------------------------------------------


def _spend(budget: LabelBudget | None, prefix: str) -> list[str]:
    labels = [f"{prefix}_{index}" for index in range(UNKNOWN_TYPE_BUDGET)]
    return [validate_envelope({"type": label}, labels=budget).type for label in labels]


def test_a_budget_of_ones_own_leaves_the_process_budget_untouched() -> None:
    noisy = LabelBudget()
    assert _spend(noisy, "noisy") == [f"noisy_{index}" for index in range(UNKNOWN_TYPE_BUDGET)]
    assert validate_envelope({"type": "one_more"}, labels=noisy).type == UNMATCHED_TYPE_LABEL
    assert DEFAULT_LABEL_BUDGET.admitted == frozenset()
    # Every other consumer still has its whole budget, the process-wide one included.
    assert _spend(None, "quiet") == [f"quiet_{index}" for index in range(UNKNOWN_TYPE_BUDGET)]
    assert _spend(LabelBudget(), "other") == [
        f"other_{index}" for index in range(UNKNOWN_TYPE_BUDGET)
    ]
    assert noisy.admitted == {f"noisy_{index}" for index in range(UNKNOWN_TYPE_BUDGET)}


def test_the_json_entry_point_uses_the_budget_it_is_given() -> None:
    budget = LabelBudget(size=1)
    assert validate_envelope_json('{"type": "first"}', labels=budget).type == "first"
    assert validate_envelope_json(b'{"type": "second"}', labels=budget).type == "_unmatched"
    # Frames only the standard parser reads take the same budget.
    surrogate = '{"type": "third", "data": {"s": "\\ud800"}}'
    assert validate_envelope_json(surrogate, labels=budget).type == "_unmatched"
    assert DEFAULT_LABEL_BUDGET.admitted == frozenset()


def test_a_budget_of_size_zero_labels_every_unknown_type_unmatched() -> None:
    budget = LabelBudget(size=0)
    assert validate_envelope({"type": "anything"}, labels=budget).type == UNMATCHED_TYPE_LABEL
    assert validate_envelope({"type": "metrics", "data": 1}, labels=budget).type == "metrics"
    assert validate_envelope({"type": 3}, labels=budget).type == INVALID_TYPE_LABEL


def test_label_for_type_takes_a_budget_and_reset_empties_it() -> None:
    budget = LabelBudget(size=2)
    assert budget.size == 2
    assert [label_for_type(raw, budget) for raw in ["a", "b", "c"]] == ["a", "b", "_unmatched"]
    assert budget.admitted == {"a", "b"}
    budget.reset()
    assert budget.admitted == frozenset()
    assert label_for_type("c", budget) == "c"


@pytest.mark.parametrize(("size", "error"), [(-1, ValueError), (1.5, TypeError), (True, TypeError)])
def test_a_budget_size_must_be_a_non_negative_int(size: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="LabelBudget size"):
        LabelBudget(size)


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
