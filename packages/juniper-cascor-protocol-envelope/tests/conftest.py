"""Shared fixtures of the envelope tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from juniper_cascor_protocol.envelope import reset_unknown_label_state


@pytest.fixture(autouse=True)
def fresh_label_budget() -> Iterator[None]:
    """Every test starts with the whole budget of unknown ``type`` labels and leaves it so."""
    reset_unknown_label_state()
    yield
    reset_unknown_label_state()
