"""``seq`` on ``/ws/training``: the producer's counter and the consumer's gap tracker.

``seq`` is per wire frame: every broadcast frame the server sends gets the next number, and
``initial_metrics`` (sent to one client on connect) reports the last number handed out as
``current_seq`` without consuming one, so connecting a client never opens a gap for the others.

A counter never hands out more than :data:`MAX_SEQ` (2**63 - 1), the largest ``seq`` a consumer
written in another language can hold in a signed 64-bit integer; the chunker's
:data:`~.chunking.STAMP_HEADROOM` is sized from it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from juniper_cascor_protocol.envelope.base import MAX_SEQ, BaseEnvelope
from juniper_cascor_protocol.envelope.training import InitialMetricsEnvelope

__all__ = [
    "DEFAULT_REORDER_WINDOW",
    "DEFAULT_RESTART_MAX_SEQ",
    "MAX_SEQ",
    "SeqEvent",
    "SeqObservation",
    "SeqStats",
    "SequenceCounter",
    "SequenceTracker",
]

DEFAULT_REORDER_WINDOW = 1000
"""A step back by more than this many numbers is read as a server restart, not a replay."""

DEFAULT_RESTART_MAX_SEQ = 1
"""A step back to a ``seq`` at most this small is read as a restart (a fresh counter's first)."""


class SequenceCounter:
    """Thread-safe source of ``seq``: ``next()`` returns ``start``, ``start + 1``, ...

    ``current`` is the last number returned, or ``start - 1`` before the first ``next()``;
    it is what ``initial_metrics.current_seq`` carries. Numbers are handed out under a lock,
    so concurrent broadcasters never share or skip one. ``start`` is at most :data:`MAX_SEQ`,
    and ``next()`` raises ``OverflowError`` rather than hand out a number above it.
    """

    __slots__ = ("_last", "_lock")

    def __init__(self, start: int = 1) -> None:
        if isinstance(start, bool) or not isinstance(start, int):
            raise TypeError(f"start must be an int, got {type(start).__name__}")
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        if start > MAX_SEQ:
            raise ValueError(f"start must be <= MAX_SEQ (2**63 - 1 = {MAX_SEQ}), got {start}")
        self._last = start - 1
        self._lock = threading.Lock()

    def next(self) -> int:
        """Hand out the next number; ``OverflowError`` once :data:`MAX_SEQ` has been handed out."""
        with self._lock:
            if self._last >= MAX_SEQ:
                raise OverflowError(f"seq is exhausted: MAX_SEQ ({MAX_SEQ}) was handed out")
            self._last += 1
            return self._last

    @property
    def current(self) -> int:
        """The last number handed out (``start - 1`` if none yet); does not consume one."""
        with self._lock:
            return self._last

    def __repr__(self) -> str:
        return f"SequenceCounter(current={self.current})"


class SeqEvent(StrEnum):
    """What one observed ``seq`` means, relative to the previous one."""

    IGNORED = "ignored"
    """The frame carries no ``seq`` (control frames, reassembled originals)."""
    SEEDED = "seeded"
    """``initial_metrics`` (or ``seed()``) set the expectation to ``current_seq + 1``."""
    FIRST = "first"
    """The first ``seq`` seen without a seed; nothing to compare with."""
    OK = "ok"
    """Exactly the previous ``seq`` + 1."""
    GAP = "gap"
    """Ahead of the previous + 1: ``missing_first``..``missing_last`` were never received."""
    DUPLICATE = "duplicate"
    """At or slightly behind the previous ``seq``: a replay or an out-of-order frame."""
    RESET = "reset"
    """Far behind the previous ``seq``, or back to a fresh counter's start: a restarted server."""


@dataclass(frozen=True, slots=True)
class SeqObservation:
    """The verdict on one frame. ``missing_*`` are set for ``GAP`` only (bounds inclusive)."""

    event: SeqEvent
    seq: int | None = None
    expected: int | None = None
    missing_first: int | None = None
    missing_last: int | None = None

    @property
    def missing_count(self) -> int:
        """How many ``seq`` numbers the gap skipped (0 unless ``GAP``)."""
        if self.missing_first is None or self.missing_last is None:
            return 0
        return self.missing_last - self.missing_first + 1


@dataclass(frozen=True, slots=True)
class SeqStats:
    """Running totals since the tracker was created, for monitoring."""

    received: int
    """Frames that carried a ``seq`` (``initial_metrics`` seeds are not counted)."""
    ignored: int
    gaps: int
    missing: int
    """Sum of ``missing_count`` over all gaps."""
    duplicates: int
    resets: int
    last_seq: int | None


_IGNORED: Final = SeqObservation(SeqEvent.IGNORED)
"""Every frame without ``seq`` gets this same verdict: it is immutable and carries nothing else."""


class SequenceTracker:
    """Consumer-side check of ``seq`` on one ``/ws/training`` connection.

    Feed every received envelope to :meth:`observe`, in arrival order. ``initial_metrics``
    seeds the tracker from ``data.current_seq``; frames without ``seq`` are ignored.
    For a frame with ``seq`` and a previous value ``last``:

    - ``seq == last + 1`` → ``OK``; ``seq > last + 1`` → ``GAP`` (``last + 1 .. seq - 1`` missing);
    - ``seq < last`` → ``RESET`` when ``last - seq > reorder_window`` or
      ``seq <= restart_max_seq`` (a restarted counter begins again near zero);
    - any other ``seq <= last`` → ``DUPLICATE`` (a replay or an out-of-order frame);
    - ``GAP``, ``OK``, ``FIRST`` and ``RESET`` move ``last`` to ``seq``; ``DUPLICATE`` does not.

    Not thread-safe: a connection has one consumer; guard it yourself if you share it.
    """

    __slots__ = (
        "_duplicates",
        "_gaps",
        "_ignored",
        "_last",
        "_missing",
        "_received",
        "_reorder_window",
        "_resets",
        "_restart_max_seq",
    )

    def __init__(
        self,
        *,
        reorder_window: int = DEFAULT_REORDER_WINDOW,
        restart_max_seq: int = DEFAULT_RESTART_MAX_SEQ,
    ) -> None:
        if reorder_window < 0:
            raise ValueError(f"reorder_window must be >= 0, got {reorder_window}")
        self._reorder_window = reorder_window
        self._restart_max_seq = restart_max_seq
        self._last: int | None = None
        self._received = 0
        self._ignored = 0
        self._gaps = 0
        self._missing = 0
        self._duplicates = 0
        self._resets = 0

    @property
    def last_seq(self) -> int | None:
        """The ``seq`` the next frame is compared with (``None`` before the first)."""
        return self._last

    def seed(self, initial: InitialMetricsEnvelope | int) -> SeqObservation:
        """Expect ``current_seq + 1`` next; takes the ``initial_metrics`` envelope or the int."""
        current = (
            initial.data.current_seq if isinstance(initial, InitialMetricsEnvelope) else initial
        )
        self._last = current
        return SeqObservation(SeqEvent.SEEDED, seq=current, expected=current + 1)

    def reseed(self, current_seq: int) -> int | None:
        """:meth:`seed` without building its verdict; returns the ``last_seq`` it replaces."""
        previous = self._last
        self._last = current_seq
        return previous

    def observe(self, envelope: BaseEnvelope) -> SeqObservation:
        """Classify one received envelope (``initial_metrics`` seeds instead)."""
        if isinstance(envelope, InitialMetricsEnvelope):
            return self.seed(envelope)
        if envelope.seq is None:
            self._ignored += 1
            return _IGNORED
        return self.observe_seq(envelope.seq)

    def observe_seq(self, seq: int) -> SeqObservation:
        """Classify a bare ``seq`` number."""
        last = self._last
        anomaly = self.check_seq(seq)
        if anomaly is not None:
            return anomaly
        if last is None:
            return SeqObservation(SeqEvent.FIRST, seq=seq)
        return SeqObservation(SeqEvent.OK, seq=seq, expected=seq)

    def check_seq(self, seq: int | None) -> SeqObservation | None:
        """:meth:`observe_seq`, but only a ``GAP``, ``DUPLICATE`` or ``RESET`` verdict is returned.

        ``None`` for ``FIRST`` and ``OK``, and for a frame without ``seq`` (``None``, counted as
        ignored, as :meth:`observe` counts it): the counts and ``last_seq`` move exactly as
        with :meth:`observe`, and nothing is allocated for a frame in order.
        """
        if seq is None:
            self._ignored += 1
            return None
        self._received += 1
        last = self._last
        if last is None or seq == last + 1:
            self._last = seq
            return None
        expected = last + 1
        if seq > expected:
            self._last = seq
            self._gaps += 1
            self._missing += seq - expected
            return SeqObservation(
                SeqEvent.GAP,
                seq=seq,
                expected=expected,
                missing_first=expected,
                missing_last=seq - 1,
            )
        if seq < last and (last - seq > self._reorder_window or seq <= self._restart_max_seq):
            self._last = seq
            self._resets += 1
            return SeqObservation(SeqEvent.RESET, seq=seq, expected=expected)
        self._duplicates += 1
        return SeqObservation(SeqEvent.DUPLICATE, seq=seq, expected=expected)

    def stats(self) -> SeqStats:
        """A snapshot of the running totals."""
        return SeqStats(
            received=self._received,
            ignored=self._ignored,
            gaps=self._gaps,
            missing=self._missing,
            duplicates=self._duplicates,
            resets=self._resets,
            last_seq=self._last,
        )
