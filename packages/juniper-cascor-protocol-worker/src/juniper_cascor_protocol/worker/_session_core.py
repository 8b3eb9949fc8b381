"""What both ends of a ``/ws/v1/workers`` session share: framing, limits, liveness and closing.

No sockets, no clock: every input is one received WebSocket message or an explicit ``now``.
Nothing here raises on what a peer sent; a subclass says what each message means in each state.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Final

from numpy.typing import NDArray

from juniper_cascor_protocol.worker._bounded_text import clip
from juniper_cascor_protocol.worker.binary_frame import BinaryFrame
from juniper_cascor_protocol.worker.close_codes import CloseCode, should_reconnect
from juniper_cascor_protocol.worker.message_parse_error import MessageParseError
from juniper_cascor_protocol.worker.messages import (
    HeartbeatMessage,
    WorkerMessage,
    parse_worker_message,
)
from juniper_cascor_protocol.worker.session_events import (
    Closed,
    PeerSilent,
    ProtocolViolation,
    SessionEvent,
    SessionState,
)
from juniper_cascor_protocol.worker.session_limits import MAX_JSON_MESSAGE_BYTES
from juniper_cascor_protocol.worker.tensor_batch import TensorBatch

__all__ = ["Outgoing", "Received", "SessionCore", "encode_batch", "encode_message"]

Outgoing = str | bytes
"""One WebSocket message to write: text (``str``) or binary (``bytes``)."""
Received = str | bytes | bytearray | memoryview
"""One received WebSocket message, as a WebSocket library hands it over."""

_CLOSE_REASON_BYTES: Final = 123  # the most a WebSocket close frame carries


def encode_message(message: WorkerMessage) -> str:
    """``message.to_wire_json()``: ``ValueError`` if it exceeds ``MAX_JSON_MESSAGE_BYTES`` or a
    numeric field is not finite (free-form values keep their ``NaN``, as they arrived)."""
    text = message.to_wire_json()  # ASCII only: len(text) is its bytes
    if len(text) > MAX_JSON_MESSAGE_BYTES:
        raise ValueError(
            f"{message.TYPE.value} message of {len(text)} bytes exceeds MAX_JSON_MESSAGE_BYTES "
            f"({MAX_JSON_MESSAGE_BYTES}); a peer would refuse it"
        )
    return text


def encode_batch(message: WorkerMessage, tensors: Mapping[str, NDArray[Any]]) -> list[Outgoing]:
    """``message`` followed by one binary frame per tensor, in order: written whole."""
    return [encode_message(message), *(BinaryFrame.encode(array) for array in tensors.values())]


def _close_reason(text: str) -> str:
    """``text`` as a close frame carries it: valid UTF-8, at most 123 bytes."""
    raw = text.encode("utf-8", "replace")
    if len(raw) <= _CLOSE_REASON_BYTES:
        return raw.decode("utf-8")
    return raw[: _CLOSE_REASON_BYTES - 3].decode("utf-8", "ignore") + "..."


class SessionCore(ABC):
    """State, outbox, batch, liveness and closing; the two sessions add what each end does."""

    def __init__(self, *, now: float, byte_budget: int, liveness_timeout: float) -> None:
        self._state = SessionState.CLOSED  # set by the subclass
        self.byte_budget = byte_budget
        self.liveness_timeout: float = liveness_timeout
        self.close_code: int | None = None
        """The code to close the WebSocket with, once this side ended the session."""
        self.close_reason: str = ""
        self._outbox: list[Outgoing] = []
        self._now = now
        """The latest ``now`` given: the timestamp of the messages a session writes itself."""
        self._last_received = now
        self._batch: TensorBatch | None = None

    # --- what a shell reads ------------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def frames_awaited(self) -> int:
        """Binary frames still due for the message being received (0 outside a batch)."""
        return 0 if self._batch is None else self._batch.frames_awaited

    @property
    def buffered_bytes(self) -> int:
        """Bytes of received frames this session holds now; never above ``byte_budget``."""
        return 0 if self._batch is None else self._batch.held_bytes

    def data_to_send(self) -> list[Outgoing]:
        """The replies the session queued (acks, heartbeat answers...), to write in order."""
        outgoing, self._outbox = self._outbox, []
        return outgoing

    # --- what a shell feeds ------------------------------------------------------------------

    def receive(self, message: Received, now: float) -> list[SessionEvent]:
        """Handle one received WebSocket message; the events it caused. Never raises."""
        if self._state is SessionState.CLOSED:
            return []
        self._now = max(self._now, now)
        self._last_received = self._now
        if not isinstance(message, str):
            if self._batch is None:
                size = message.nbytes if isinstance(message, memoryview) else len(message)
                return self._stray_frame(size)
            self._batch.add(message)
            if self._batch.frames_awaited:
                return []
            batch, self._batch = self._batch, None
            self._state = SessionState.READY
            return self._batch_complete(batch, now)
        if len(message) > MAX_JSON_MESSAGE_BYTES:  # characters <= UTF-8 bytes: a cheap first test
            size = len(message.encode("utf-8", "surrogatepass"))
            if size > MAX_JSON_MESSAGE_BYTES:
                return self._fail(
                    "oversized_message",
                    f"text message of {size} bytes > MAX_JSON_MESSAGE_BYTES "
                    f"({MAX_JSON_MESSAGE_BYTES})",
                    CloseCode.MESSAGE_TOO_LARGE,
                )
        try:
            decoded = json.loads(message)
        except (ValueError, RecursionError) as error:
            if self._batch is not None:
                return self._interrupted("a text message that is not JSON")
            return self._invalid("malformed_json", clip(f"not JSON: {error}"), None, now)
        parsed = parse_worker_message(decoded)
        if isinstance(parsed, MessageParseError):
            if self._batch is not None:
                return self._interrupted(f"an invalid text message ({parsed.label})")
            return self._invalid(parsed.label, parsed.reason, decoded, now)
        if self._batch is not None:
            if isinstance(parsed, HeartbeatMessage):
                return self._message(parsed, now)  # tolerated between a message and its frames
            return self._interrupted(parsed.TYPE.value)
        return self._message(parsed, now)

    def receive_close(self, code: int | None, reason: str = "") -> list[SessionEvent]:
        """The peer closed the connection (``code`` None: it dropped without a close frame)."""
        if self._state is SessionState.CLOSED:
            return []
        return self._end(code, clip(reason, _CLOSE_REASON_BYTES), by_peer=True)

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> list[SessionEvent]:
        """End the session from this side; then close the WebSocket with ``close_code``."""
        if self._state is SessionState.CLOSED:
            return []
        self.close_code = int(code)
        self.close_reason = _close_reason(reason)
        return self._end(self.close_code, self.close_reason, by_peer=False)

    def tick(self, now: float) -> list[SessionEvent]:
        """Timers: the events due at ``now`` (call it at least once a second)."""
        if self._state is SessionState.CLOSED:
            return []
        self._now = max(self._now, now)
        if now - self._last_received > self.liveness_timeout:
            silent: list[SessionEvent] = [PeerSilent(self._last_received, self.liveness_timeout)]
            reason = f"nothing received for {self.liveness_timeout:g} s"
            return silent + self.close(CloseCode.PEER_SILENT, reason)
        return self._timers(now)

    # --- for the subclasses ------------------------------------------------------------------

    def _start_batch(self, batch: TensorBatch, now: float) -> list[SessionEvent]:
        """Expect ``batch``'s frames next; completes at once when the manifest is empty."""
        if batch.frames_awaited == 0:
            return self._batch_complete(batch, now)
        self._batch = batch
        self._state = SessionState.AWAITING_TENSOR_FRAMES
        return []

    def _fail(self, label: str, reason: str, code: int) -> list[SessionEvent]:
        """A violation after which the session cannot go on: report it and close."""
        violation = ProtocolViolation(label, clip(reason), int(code))
        self._reply_to_violation(violation)
        return [violation, *self.close(code, f"{label}: {reason}")]

    def _end(self, code: int | None, reason: str, *, by_peer: bool) -> list[SessionEvent]:
        unfinished = self._unfinished()
        self._state = SessionState.CLOSED
        self._batch = None
        return [Closed(code, reason, by_peer, should_reconnect(code), unfinished)]

    def _queue(self, message: WorkerMessage) -> None:
        self._outbox.append(encode_message(message))

    def _interrupted(self, what: str) -> list[SessionEvent]:
        assert self._batch is not None
        awaited = self._batch.frames_awaited
        self._batch = None
        abandoned = self._abandon_batch()
        reason = f"{what} came where {awaited} more binary frame(s) were due"
        return abandoned + self._fail("missing_tensor_frame", reason, CloseCode.INVALID_MESSAGE)

    @abstractmethod
    def _message(self, message: WorkerMessage, now: float) -> list[SessionEvent]:
        """A valid message outside a batch (or a heartbeat inside one)."""

    @abstractmethod
    def _invalid(self, label: str, reason: str, decoded: object, now: float) -> list[SessionEvent]:
        """A text message that did not parse: ``decoded`` is its JSON (None if it was not)."""

    @abstractmethod
    def _batch_complete(self, batch: TensorBatch, now: float) -> list[SessionEvent]:
        """Every frame of ``batch`` arrived."""

    @abstractmethod
    def _stray_frame(self, size: int) -> list[SessionEvent]:
        """A binary frame outside any batch."""

    @abstractmethod
    def _abandon_batch(self) -> list[SessionEvent]:
        """The batch being received will not complete: queue what its message is owed."""

    @abstractmethod
    def _unfinished(self) -> tuple[str, ...]:
        """Task ids with no acknowledged outcome yet."""

    @abstractmethod
    def _reply_to_violation(self, violation: ProtocolViolation) -> None:
        """Queue what the peer is told about ``violation``, if anything."""

    @abstractmethod
    def _timers(self, now: float) -> list[SessionEvent]:
        """The subclass's own timers."""
