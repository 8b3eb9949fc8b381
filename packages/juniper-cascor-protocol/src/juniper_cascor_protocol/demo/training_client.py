"""A ``/ws/training`` consumer: validates, reassembles and sequence-checks every frame it gets.

:class:`TrainingClient` is sans-I/O at its core — :meth:`TrainingClient.feed` takes one received
WebSocket message and never raises — with :meth:`TrainingClient.run` as the thin loop that reads a
real connection. One client may :meth:`~TrainingClient.run` several connections in turn (a
reconnect); its counters and its :class:`SequenceTracker` carry over.

Every frame lands in exactly one of these counters, so a hostile peer's frames can be accounted
for one by one:

* ``frames_by_type``: valid typed envelopes, by ``type`` (``chunked_message`` included);
* ``refused``: not validated at all, by :class:`Refusal` (binary frames, oversized text);
* ``unknown_types``: :class:`UnknownEnvelope` results, by their bounded label (an unknown
  ``type``, ``_malformed_json``, ``_not_an_object``, or a known name whose payload is invalid);
* ``chunk_rejections``: valid ``chunked_message`` frames the :class:`Reassembler` refused, by
  :class:`RejectReason`.

Reconnects: ``initial_metrics`` on each new connection reseeds the tracker with ``current_seq``,
so the frames broadcast while the client was away are *not* reported as a ``GAP`` by the tracker.
The client reports them itself, as ``missed_while_disconnected`` (``current_seq`` minus the last
``seq`` seen before the disconnect).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from juniper_cascor_protocol.demo.transport import connection_settings
from juniper_cascor_protocol.envelope.base import BaseEnvelope, UnknownEnvelope
from juniper_cascor_protocol.envelope.chunking import (
    DEFAULT_MAX_FRAME_BYTES,
    Reassembler,
    ReassemblyStatus,
)
from juniper_cascor_protocol.envelope.sequence import SeqStats, SequenceTracker
from juniper_cascor_protocol.envelope.training import InitialMetricsEnvelope
from juniper_cascor_protocol.envelope.validate import validate_envelope_json

__all__ = ["Refusal", "TrainingClient", "TrainingClientStats"]

# Text frames up to this multiple of the client's limit reach `feed` and are counted as
# oversized; longer ones make `websockets` close the connection (1009) before we see them.
_TRANSPORT_SLACK: Final = 4
# A UTF-8 character takes at most 4 bytes: shorter strings cannot exceed the limit.
_MAX_UTF8_BYTES_PER_CHAR: Final = 4


class Refusal(StrEnum):
    """Why a message was refused before validation."""

    BINARY_FRAME = "binary_frame"
    """``/ws/training`` carries JSON text frames only."""
    OVERSIZED = "oversized"
    """A text frame longer than the client's ``max_frame_bytes`` (UTF-8 bytes)."""


@dataclass(slots=True)
class TrainingClientStats:
    """What one client received, over all its connections."""

    messages: int = 0
    """WebSocket messages received."""
    frames_by_type: Counter[str] = field(default_factory=Counter)
    messages_by_type: Counter[str] = field(default_factory=Counter)
    """Delivered messages by ``type``: unchunked frames and reassembled originals."""
    refused: Counter[str] = field(default_factory=Counter)
    unknown_types: Counter[str] = field(default_factory=Counter)
    chunk_rejections: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    missed_while_disconnected: int = 0
    peak_buffered_bytes: int = 0
    """Most payload bytes the reassembler held at once."""
    peak_in_flight: int = 0
    """Most incomplete chunked messages the reassembler held at once."""

    @property
    def bad_frames(self) -> int:
        """Frames that were refused, unknown, or rejected by the reassembler."""
        return self.refused.total() + self.unknown_types.total() + self.chunk_rejections.total()


class TrainingClient:
    """Consumes ``/ws/training`` frames; see the module docstring for what it counts.

    Args:
        max_frame_bytes: the longest text frame accepted, in UTF-8 bytes (default: the
            chunker's 1 MiB frame budget, which every frame of a conforming server fits).
        reassembler: the :class:`Reassembler` to use (its caps bound memory under a chunk
            flood); a fresh one with default caps if omitted.
        on_message: called with every delivered envelope — each valid unchunked frame and each
            reassembled original — in arrival order.
    """

    def __init__(
        self,
        *,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        reassembler: Reassembler | None = None,
        on_message: Callable[[BaseEnvelope], None] | None = None,
    ) -> None:
        if max_frame_bytes < 1:
            raise ValueError(f"max_frame_bytes must be >= 1, got {max_frame_bytes}")
        self.max_frame_bytes = max_frame_bytes
        self.reassembler = reassembler if reassembler is not None else Reassembler()
        self.tracker = SequenceTracker()
        self.stats = TrainingClientStats()
        self._on_message = on_message
        self._seq_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._subscribed = asyncio.Event()
        self._connection: ClientConnection | None = None

    @property
    def seq(self) -> SeqStats:
        """The sequence tracker's running totals."""
        return self.tracker.stats()

    def feed(self, message: str | bytes) -> None:
        """Account for one received WebSocket message. Never raises on what a peer sent."""
        stats = self.stats
        stats.messages += 1
        if not isinstance(message, str):
            stats.refused[Refusal.BINARY_FRAME] += 1
            return
        if self._oversized(message):
            stats.refused[Refusal.OVERSIZED] += 1
            return
        envelope = validate_envelope_json(message)
        self._observe_seq(envelope)
        if isinstance(envelope, UnknownEnvelope):
            stats.unknown_types[envelope.type] += 1
            return
        stats.frames_by_type[envelope.type] += 1
        outcome = self.reassembler.feed(envelope)
        if outcome.status is ReassemblyStatus.PENDING:
            self._track_reassembly_peak()
        elif outcome.status is ReassemblyStatus.REJECTED and outcome.reason is not None:
            stats.chunk_rejections[outcome.reason] += 1
        elif outcome.envelope is not None:  # PASSTHROUGH or COMPLETE
            self._deliver(outcome.envelope)

    async def run(self, uri: str) -> None:
        """Read ``uri`` until the server closes the connection or :meth:`disconnect` is called.

        Raises:
            OSError: the connection could not be opened.
        """
        settings = connection_settings(_TRANSPORT_SLACK * self.max_frame_bytes)
        try:
            async with connect(uri, **settings) as connection:
                self._connection = connection
                self.stats.connections += 1
                try:
                    while True:
                        self.feed(await connection.recv())
                except ConnectionClosed:
                    pass
        finally:
            self._connection = None
            self._subscribed.clear()
            self._fail_waiters()

    async def disconnect(self) -> None:
        """Close the current connection, making :meth:`run` return."""
        if self._connection is not None:
            await self._connection.close()

    async def wait_subscribed(self) -> None:
        """Wait until the current connection's ``initial_metrics`` has been received."""
        await self._subscribed.wait()

    async def wait_for_seq(self, seq: int) -> None:
        """Wait until a frame with ``seq`` at least ``seq`` has been received.

        Raises:
            ConnectionError: the connection ended first.
        """
        last = self.tracker.last_seq
        if last is not None and last >= seq:
            return
        future = asyncio.get_running_loop().create_future()
        self._seq_waiters.append((seq, future))
        await future

    def _oversized(self, message: str) -> bool:
        if len(message) > self.max_frame_bytes:
            return True
        if len(message) * _MAX_UTF8_BYTES_PER_CHAR <= self.max_frame_bytes:
            return False  # cannot exceed the limit: skip encoding to count bytes
        return len(message.encode("utf-8", "surrogatepass")) > self.max_frame_bytes

    def _observe_seq(self, envelope: BaseEnvelope) -> None:
        if isinstance(envelope, InitialMetricsEnvelope):
            last = self.tracker.last_seq
            if last is not None and envelope.data.current_seq > last:
                self.stats.missed_while_disconnected += envelope.data.current_seq - last
            self.tracker.seed(envelope)
            self._subscribed.set()
        else:
            self.tracker.observe(envelope)
        if self._seq_waiters:
            self._wake_waiters()

    def _wake_waiters(self) -> None:
        last = self.tracker.last_seq
        if last is None:
            return
        pending = []
        for target, future in self._seq_waiters:
            if target <= last:
                if not future.done():
                    future.set_result(None)
            else:
                pending.append((target, future))
        self._seq_waiters = pending

    def _fail_waiters(self) -> None:
        for target, future in self._seq_waiters:
            if not future.done():
                future.set_exception(
                    ConnectionError(f"connection ended before seq {target} arrived")
                )
        self._seq_waiters = []

    def _track_reassembly_peak(self) -> None:
        stats = self.stats
        stats.peak_buffered_bytes = max(stats.peak_buffered_bytes, self.reassembler.buffered_bytes)
        stats.peak_in_flight = max(stats.peak_in_flight, self.reassembler.in_flight)

    def _deliver(self, envelope: BaseEnvelope) -> None:
        if isinstance(envelope, UnknownEnvelope):
            # A reassembled original that failed validation.
            self.stats.unknown_types[envelope.type] += 1
            return
        self.stats.messages_by_type[envelope.type] += 1
        if self._on_message is not None:
            self._on_message(envelope)
