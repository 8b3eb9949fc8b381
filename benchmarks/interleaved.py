"""Timing several variants in turns, so that a busy machine slows them alike."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping


def interleaved_best_seconds(
    variants: Mapping[str, Callable[[], object]], rounds: int
) -> dict[str, float]:
    """Best time of one round per variant, the variants taking turns round after round.

    Measured in turns rather than one test after the other, a machine busy with other work
    for a few seconds slows every variant alike instead of the one running at that moment.
    """
    best = dict.fromkeys(variants, math.inf)
    for _ in range(rounds):
        for name, run in variants.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best
