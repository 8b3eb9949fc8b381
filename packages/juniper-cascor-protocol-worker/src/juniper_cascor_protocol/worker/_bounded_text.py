"""Text from or about a peer, cut to a bounded length before it is kept or sent."""

from __future__ import annotations

from typing import Final

__all__ = ["DETAIL_LIMIT", "clip"]

DETAIL_LIMIT: Final = 500
"""The most characters of a reason or detail a session keeps or sends."""


def clip(text: str, limit: int = DETAIL_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
