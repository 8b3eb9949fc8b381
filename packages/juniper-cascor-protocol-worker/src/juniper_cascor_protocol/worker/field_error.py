"""One problem found while parsing a worker message: where it is and what is wrong."""

from dataclasses import dataclass

__all__ = ["FieldError"]


@dataclass(frozen=True, slots=True)
class FieldError:
    """A problem at ``path`` inside a message, e.g. ``("tensor_manifest", "weights", "shape", 1)``.

    ``path`` holds object keys (``str``) and list indexes (``int``); ``()`` is the message itself.
    ``message`` names the expectation and what was found instead.
    """

    path: tuple[str | int, ...]
    message: str

    def __str__(self) -> str:
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in self.path)
        return f"{where.lstrip('.') or '(message)'}: {self.message}"
