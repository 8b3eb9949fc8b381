"""Counts for people in the tool's reports: "1 frame", "2 frames", "1,024 passes", and tables of
counts by name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["count_of", "count_table"]


def count_of(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` with thousands separators and the noun that agrees with it."""
    return f"{n:,} {singular if n == 1 else plural or singular + 's'}"


def count_table(counts: Mapping[str, int], header: tuple[str, str] | None = None) -> Table:
    """``counts`` as a borderless table sorted by name, each count right-aligned with thousands
    separators; under ``header``'s two titles, or indented under the caller's own line without."""
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, show_edge=False, show_header=header is not None)
    name_title, count_title = header or ("", "")
    table.add_column(name_title)
    table.add_column(count_title, justify="right")
    indent = "" if header is not None else "  "
    for name, count in sorted(counts.items()):
        # Text: a name is what a peer sent, never rich markup to interpret.
        table.add_row(Text(indent + name), f"{count:,}")
    return table
