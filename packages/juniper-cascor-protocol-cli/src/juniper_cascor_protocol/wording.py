"""Counts in words for the tool's reports: "1 frame", "2 frames", "1,024 passes"."""

from __future__ import annotations

__all__ = ["count_of"]


def count_of(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` with thousands separators and the noun that agrees with it."""
    return f"{n:,} {singular if n == 1 else plural or singular + 's'}"
