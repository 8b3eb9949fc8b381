"""What every fuzz target shares: atheris's setup, and a minimizer for what it finds.

A target module defines ``test_one_input(data: bytes) -> None``, which raises on any breach of
the contract it checks, and ends with ``run(test_one_input)``. Run as a script it fuzzes (every
argument goes to libFuzzer); with ``--minimize FILE`` it shrinks a reproducer in-process and
writes ``FILE.min``. The library is imported inside :func:`instrumented`, so that atheris adds
coverage feedback to its Python code (pydantic-core and numpy are compiled: only their Python
side is instrumented, and only when imported there).
"""

from __future__ import annotations

import random
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from fuzz._mutators import combined

try:
    import atheris  # type: ignore[import-not-found, import-untyped, unused-ignore]
except ImportError:  # the regression tests and mypy run without it
    _atheris: ModuleType | None = None
else:
    _atheris = atheris

__all__ = ["ContractBreach", "instrumented", "read_as_every_carrier", "run"]

TestOneInput = Callable[[bytes], None]
Read = TypeVar("Read")
StructuredMutator = Callable[[bytes, random.Random], bytes | None]

# The package whose code is fuzzed: only its modules are instrumented.
_INSTRUMENTED_PACKAGE = "juniper_cascor_protocol"
# Shrinking stops after this many attempts: a reproducer need not be the smallest one.
_MAX_MINIMIZE_ATTEMPTS = 20_000


class ContractBreach(AssertionError):  # noqa: N818 (reads as what it reports)
    """A documented promise was broken by the input: the fuzzer reports it as a crash."""


def read_as_every_carrier(
    data: bytes,
    read: Callable[[str | bytes | bytearray | memoryview], Read],
    same: Callable[[Read, Read], bool],
    check: Callable[[str | bytes, Read], None],
) -> None:
    """Feed one message to a JSON-text reader in every form a WebSocket library hands it over.

    bytes, bytearray and memoryview must read alike; ``check`` holds the bytes' result and the
    text's (as a library decodes a text frame) to the reader's contract; and any ``str`` at all,
    raw lone surrogates included, must still be read without an exception.
    """
    result = read(data)
    for carrier in (bytearray(data), memoryview(data)):
        other = read(carrier)
        if not same(other, result):
            raise ContractBreach(f"{type(carrier).__name__} gave {other!r}, not {result!r}")
    check(data, result)
    text = data.decode("utf-8", "replace")
    check(text, read(text))
    read(data.decode("utf-8", "surrogateescape"))


@contextmanager
def instrumented() -> Iterator[None]:
    """Import the library inside this block so that atheris sees its branches."""
    # Minimizing replays inputs without libFuzzer: nothing to instrument for.
    context: Any = (
        nullcontext()
        if _atheris is None or "--minimize" in sys.argv
        else _atheris.instrument_imports(include=[_INSTRUMENTED_PACKAGE])
    )
    with context:
        yield


def run(test_one_input: TestOneInput, structure: StructuredMutator | None = None) -> None:
    """The target's entry point: fuzz, or ``--minimize FILE``.

    ``structure`` (see :mod:`fuzz._mutators`) mutates the input as what it encodes, half of
    the time; libFuzzer's byte mutations do the rest.
    """
    if len(sys.argv) == 3 and sys.argv[1] == "--minimize":
        sys.exit(_minimize(test_one_input, Path(sys.argv[2])))
    if _atheris is None:
        sys.exit("atheris is not installed: `uv run --group dev nox -s fuzz` installs it")
    if structure is None:
        _atheris.Setup(sys.argv, test_one_input)
    else:
        atheris_module = _atheris
        # Looked up at each call: atheris binds Mutate only once Fuzz() runs.
        mutator = combined(structure, lambda data, size: atheris_module.Mutate(data, size))
        _atheris.Setup(sys.argv, test_one_input, custom_mutator=mutator)
    _atheris.Fuzz()


def _signature(test_one_input: TestOneInput, data: bytes) -> tuple[str, str, int] | None:
    """Which failure ``data`` causes (exception type and innermost line), or None."""
    try:
        test_one_input(data)
    except Exception as error:
        frame = traceback.extract_tb(error.__traceback__)[-1]
        return type(error).__name__, frame.filename, frame.lineno or 0
    return None


def _minimize(test_one_input: TestOneInput, path: Path) -> int:
    """Shrink the input at ``path`` while it fails the same way (delta debugging, then bytes)."""
    data = path.read_bytes()
    wanted = _signature(test_one_input, data)
    if wanted is None:
        print(f"{path}: does not fail any more")
        return 1
    attempts = 0

    def still_fails(candidate: bytes) -> bool:
        nonlocal attempts
        attempts += 1
        return _signature(test_one_input, candidate) == wanted

    # Remove ever smaller chunks, then lower each byte: smaller inputs read better in a test.
    chunk = max(len(data) // 2, 1)
    while chunk >= 1 and attempts < _MAX_MINIMIZE_ATTEMPTS:
        start = 0
        while start < len(data) and attempts < _MAX_MINIMIZE_ATTEMPTS:
            candidate = data[:start] + data[start + chunk :]
            if candidate != data and still_fails(candidate):
                data = candidate
            else:
                start += chunk
        chunk //= 2
    for index in range(len(data)):
        for simpler in (0x30, 0x20, 0x00):  # '0', ' ', NUL: the plainest bytes
            if attempts >= _MAX_MINIMIZE_ATTEMPTS or data[index] == simpler:
                continue
            candidate = data[:index] + bytes([simpler]) + data[index + 1 :]
            if still_fails(candidate):
                data = candidate
                break
    out = path.with_name(path.name + ".min")
    out.write_bytes(data)
    print(f"minimized {path.name}: {path.stat().st_size} -> {len(data)} bytes, {wanted[0]}")
    print(f"reproducer: {data!r}")
    print(f"written to {out}")
    return 0
