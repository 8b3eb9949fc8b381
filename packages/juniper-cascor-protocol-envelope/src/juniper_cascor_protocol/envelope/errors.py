"""One-line descriptions of a Pydantic ``ValidationError``, each naming the field that failed."""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["describe_validation_error"]


def describe_validation_error(
    error: ValidationError, *, prefix: str = "", limit: int = 8
) -> tuple[str, ...]:
    """``"<prefix><dotted.location>: <message>"`` for at most ``limit`` of ``error``'s problems.

    The input values are left out: they came from a peer and may be large or sensitive.
    """
    details = error.errors(include_url=False, include_input=False, include_context=False)
    return tuple(
        f"{prefix}{'.'.join(str(part) for part in item['loc']) or '<frame>'}: {item['msg']}"
        for item in details[:limit]
    )
