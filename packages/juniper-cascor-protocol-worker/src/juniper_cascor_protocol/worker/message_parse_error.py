"""What the worker parsers return for a message they refuse: every problem, and a label.

It reads like the control side's ``CommandParseError`` (``label``, ``reason``, ``problems``)
and stays the ``list[FieldError]`` the parsers returned before it had a name.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, TypeAlias

from juniper_cascor_protocol.worker._bounded_text import clip
from juniper_cascor_protocol.worker.field_error import FieldError

__all__ = ["PARSE_ERROR_LABELS", "MessageParseError", "Problem"]

PARSE_ERROR_LABELS: Final = frozenset(
    {"malformed_json", "not_an_object", "unknown_type", "invalid_message"}
)
"""Every ``MessageParseError.label``: a fixed set, safe to use as a metric label."""

Problem: TypeAlias = tuple[tuple[str | int, ...], str]
"""One problem as a ``(path, message)`` pair; ``()`` is the message itself."""


class MessageParseError(list[FieldError]):
    """Why a message was refused: the list of every :class:`FieldError` found, plus
    ``label`` (one of :data:`PARSE_ERROR_LABELS`), ``reason`` and ``problems``.

    Being a list, it compares equal to a plain list of the same errors.
    """

    __slots__ = ("label",)

    label: str
    """One of :data:`PARSE_ERROR_LABELS`."""

    def __init__(self, errors: Iterable[FieldError], label: str) -> None:
        if label not in PARSE_ERROR_LABELS:
            raise ValueError(f"label must be one of {sorted(PARSE_ERROR_LABELS)}, got {label!r}")
        super().__init__(errors)
        self.label: str = label

    @property
    def reason(self) -> str:
        """The problems for people, ``"; "``-separated; at most 500 characters."""
        return clip("; ".join(map(str, self)))

    @property
    def problems(self) -> tuple[Problem, ...]:
        """Every problem as a ``(path, message)`` pair, in the order found."""
        return tuple((error.path, error.message) for error in self)

    def __repr__(self) -> str:
        return f"MessageParseError({list.__repr__(self)}, label={self.label!r})"

    def __reduce__(self) -> tuple[type[MessageParseError], tuple[list[FieldError], str]]:
        return MessageParseError, (list(self), self.label)
