"""Structure-aware mutations, used beside libFuzzer's own byte mutations.

Bytes flipped at random rarely keep a JSON text valid, so a byte mutator alone spends most of
its time on texts every parser refuses at once. Half of the time these mutators parse the
input instead, change one value, key or record, and write it back, so that the fuzzer reaches
the checks behind a successful parse: wrong types, limits, odd numbers, lone surrogates, keys
of the protocol in the wrong place. The other half goes to libFuzzer's mutations.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fuzz._wire import Kind, decode_records, encode_records

__all__ = ["ByteMutator", "combined", "mutate_json_text", "mutate_records"]

ByteMutator = Callable[[bytes, int], bytes]
"""libFuzzer's own mutation: ``atheris.Mutate(data, max_size)``."""

_DICTIONARY = Path(__file__).with_name("protocol.dict")
_WORD = re.compile(r'^"([A-Za-z_][A-Za-z0-9_]*)"$')


def _protocol_words() -> list[str]:
    """The names of the protocol (types, fields, commands, dtypes) from the dictionary."""
    words = []
    for line in _DICTIONARY.read_text().splitlines():
        match = _WORD.match(line)
        if match:
            words.append(match.group(1))
    return words or ["type"]


_WORDS = _protocol_words()
# Values that sit on a limit or break a rule of the protocol somewhere.
_EDGE_VALUES: list[Any] = [
    0,
    -1,
    1,
    0.5,
    1.5,
    -0.0,
    2**31,
    2**53 + 1,
    2**63 - 1,
    2**63,
    2**64,
    -(2**63) - 1,
    1e308,
    float("nan"),
    float("inf"),
    float("-inf"),
    True,
    False,
    None,
    "",
    "\ud800",
    "x" * 65,
    "x" * 129,
    "é" * 40,
    [],
    {},
    [1, 2, 3],
    {"shape": [2], "dtype": "float32"},
]


_LONG_INTEGER = "\x00long integer\x00"


def _edge_value(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.2:
        return rng.choice(_WORDS)
    if roll < 0.25:
        return _LONG_INTEGER  # written as digits past int64, a double, or what Python converts
    if roll < 0.28:
        nested: Any = []
        for _ in range(rng.choice((30, 300, 1100))):
            nested = [nested]
        return nested
    return rng.choice(_EDGE_VALUES)


def _containers(value: Any, found: list[Any]) -> list[Any]:
    if isinstance(value, dict | list):
        found.append(value)
        children = value.values() if isinstance(value, dict) else value
        for child in children:
            if len(found) < 200:
                _containers(child, found)
    return found


def _mutate_value(document: Any, rng: random.Random) -> Any:
    """``document`` with one change somewhere in it."""
    containers = _containers(document, [])
    if not containers:
        return _edge_value(rng) if rng.random() < 0.5 else {"type": rng.choice(_WORDS)}
    target = rng.choice(containers)
    action = rng.randrange(5)
    if isinstance(target, dict):
        keys = list(target)
        if action == 0 or not keys:  # a key of the protocol, maybe where it does not belong
            target[rng.choice(_WORDS)] = _edge_value(rng)
        elif action == 1:
            del target[rng.choice(keys)]
        elif action == 2:  # a value moved under another key
            target[rng.choice(keys)] = target[rng.choice(keys)]
        else:
            target[rng.choice(keys)] = _edge_value(rng)
    elif action == 0 or not target:
        target.insert(rng.randrange(len(target) + 1), _edge_value(rng))
    elif action == 1:
        del target[rng.randrange(len(target))]
    elif action == 2:
        target.append(target[rng.randrange(len(target))])
    else:
        target[rng.randrange(len(target))] = _edge_value(rng)
    return document


def _dumps(document: Any, rng: random.Random) -> bytes:
    try:
        text = json.dumps(document, ensure_ascii=rng.random() < 0.5)
    except (RecursionError, ValueError):
        return b""
    digits = "9" * rng.choice((19, 20, 309, 4301))
    return text.replace(json.dumps(_LONG_INTEGER), digits).encode("utf-8", "surrogatepass")


def mutate_json_text(data: bytes, rng: random.Random) -> bytes | None:
    """A JSON text with one change, or None if ``data`` is not JSON."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return _dumps(_mutate_value(document, rng), rng)


def mutate_records(data: bytes, rng: random.Random) -> bytes | None:
    """A conversation (see :mod:`fuzz._wire`) with one message changed, added, moved or
    dropped, or one pause changed; None if ``data`` holds no record."""
    records: list[tuple[Kind, float, str | bytes]] = [
        (record.kind, record.advance, record.payload) for record in decode_records(data)
    ]
    if not records:
        return None
    index = rng.randrange(len(records))
    kind, advance, payload = records[index]
    action = rng.randrange(6)
    if action <= 1 and kind is Kind.TEXT:
        changed = mutate_json_text(bytes(payload), rng) if isinstance(payload, bytes) else None
        if changed is None:
            return None
        records[index] = (kind, advance, changed)
    elif action == 2:  # the same message again, later: a replay
        records.insert(rng.randrange(index, len(records) + 1), records[index])
    elif action == 3:
        del records[index]
    elif action == 4:  # two messages swap places
        other = rng.randrange(len(records))
        records[index], records[other] = records[other], records[index]
    else:
        step = rng.choice((0.0, 0.5, 5.0, 10.0, 31.5))
        records[index] = (rng.choice(list(Kind)), step, payload)
    return encode_records(records)


def combined(
    structured: Callable[[bytes, random.Random], bytes | None], libfuzzer: ByteMutator
) -> Callable[[bytes, int, int], bytes]:
    """A custom mutator for atheris: ``structured`` half of the time, libFuzzer's otherwise."""

    def mutate(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if rng.random() < 0.5:
            mutated = structured(data, rng)
            if mutated is not None and len(mutated) <= max_size:
                return mutated
        return libfuzzer(data, max_size)

    return mutate
