"""Splitting envelopes too large for one frame into ``chunked_message`` frames, and back.

Producer: :class:`Chunker` serializes an envelope to its wire JSON and, if that does not fit in
``max_frame_bytes``, cuts the JSON *text* into payloads so that every chunk frame's own wire
JSON — header, escaped payload and up to ``headroom`` bytes of ``seq``/``emitted_at_monotonic``
added later by the broadcaster — is at most ``max_frame_bytes`` UTF-8 bytes. Joining the
payloads in ``chunk_index`` order gives the original's wire JSON exactly.

Consumer: :class:`Reassembler` collects chunks per ``chunk_id`` within hard caps on chunks,
bytes of memory, messages in flight, age and remembered ids, checks the rebuilt message against
the chunks' ``original_type``, and reports every outcome as a :class:`ReassemblyResult` — it
never raises on received frames.
"""

from __future__ import annotations

import time
import uuid
from array import array
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from pydantic_core import to_json

from juniper_cascor_protocol.envelope.base import BaseEnvelope, UnknownEnvelope, _holds_none_extra
from juniper_cascor_protocol.envelope.labels import RESERVED_LABELS, LabelBudget
from juniper_cascor_protocol.envelope.sequence import MAX_SEQ
from juniper_cascor_protocol.envelope.training import ChunkedMessageData, ChunkedMessageEnvelope
from juniper_cascor_protocol.envelope.validate import KNOWN_ENVELOPES, validate_envelope_json

__all__ = [
    "CHUNK_OVERHEAD_BYTES",
    "DEFAULT_MAX_AGE_SECONDS",
    "DEFAULT_MAX_BUFFERED_BYTES",
    "DEFAULT_MAX_CHUNKS_PER_MESSAGE",
    "DEFAULT_MAX_FRAME_BYTES",
    "DEFAULT_MAX_HEADER_CHARS",
    "DEFAULT_MAX_MESSAGES_IN_FLIGHT",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_MAX_REMEMBERED_IDS",
    "MIN_FRAME_BYTES",
    "MIN_PAYLOAD_BYTES",
    "STAMP_HEADROOM",
    "Chunker",
    "Reassembler",
    "ReassemblerStats",
    "ReassemblyResult",
    "ReassemblyStatus",
    "RejectReason",
]

DEFAULT_MAX_FRAME_BYTES = 1 << 20
"""1 MiB: the default ``max_size`` of the ``websockets`` library."""

_WIDEST_FLOAT_JSON = len("-2.2250738585072014e-308")
"""No float's JSON form is longer: a sign, 17 significant digits, a point and ``e-308``."""

STAMP_HEADROOM: Final = (
    len(',"seq":') + len(str(MAX_SEQ)) + len(',"emitted_at_monotonic":') + _WIDEST_FLOAT_JSON
)
"""Bytes kept free in every frame for ``,"seq":N,"emitted_at_monotonic":F`` (74).

Sized for the widest stamp: a ``seq`` of :data:`~.sequence.MAX_SEQ` (19 digits, the most a
:class:`~.sequence.SequenceCounter` hands out) and any float.
"""

MIN_PAYLOAD_BYTES = 64
"""The smallest payload budget per chunk a :class:`Chunker` accepts."""

MIN_FRAME_BYTES = 512
"""The least ``max_frame_bytes - headroom`` a :class:`Chunker` accepts: room for a chunk header
(about 200 bytes plus ``original_type``) and a useful payload."""

DEFAULT_MAX_CHUNKS_PER_MESSAGE = 4096
DEFAULT_MAX_MESSAGE_BYTES = 64 << 20
DEFAULT_MAX_BUFFERED_BYTES = 128 << 20
DEFAULT_MAX_MESSAGES_IN_FLIGHT = 16
DEFAULT_MAX_AGE_SECONDS = 60.0
DEFAULT_MAX_REMEMBERED_IDS = 1024
DEFAULT_MAX_HEADER_CHARS = 128
"""Longest accepted ``chunk_id`` and ``original_type`` (a UUID4 string is 36)."""

CHUNK_OVERHEAD_BYTES: Final = 128
"""Bytes a :class:`Reassembler` charges per buffered chunk on top of its payload's UTF-8 size.

A buffered chunk costs CPython a ``bytes`` header, an ``int`` index and a dict slot: under 90
bytes, measured. Charging it to the caps keeps a flood of tiny chunks within them too.
"""


_CHUNK_TYPE: Final = "chunked_message"
_REPLACEMENT_CHARACTER_UTF8: Final = "\ufffd".encode()
_WHOLE_ENVELOPES: Final = frozenset(KNOWN_ENVELOPES.values()) - {ChunkedMessageEnvelope}
"""The typed envelopes that are never a chunk, tested by exact type (``isinstance`` on a model
class goes through ``ABCMeta``)."""


def _wire_json(envelope: BaseEnvelope) -> bytes:
    """The text ``envelope.to_wire_json()`` writes, UTF-8, from one serialization as a rule.

    Pydantic's dump first, so that an envelope it cannot write raises its error. It is the wire
    text unless ``to_wire_json`` writes the frame otherwise (an unknown key holding ``None``,
    kept; a replacement character, which may stand for a key's lone surrogate): that text, which
    is what a chunk must carry and may be longer, is then written too.
    """
    wire = envelope.__pydantic_serializer__.to_json(envelope, exclude_none=True)
    if _REPLACEMENT_CHARACTER_UTF8 in wire or _holds_none_extra(envelope):
        return envelope.to_wire_json().encode()
    return wire


def _new_chunk_id() -> str:
    return str(uuid.uuid4())


def _escaped_size(text: str) -> int:
    """UTF-8 bytes ``text`` takes inside a JSON string literal, as Pydantic serializes it."""
    return len(to_json(text)) - 2


class Chunker:
    """Splits envelopes whose wire JSON exceeds ``max_frame_bytes`` into chunk envelopes.

    ``headroom`` bytes of every frame are left for fields a broadcaster adds after chunking
    (see :data:`STAMP_HEADROOM`); the chunk frames themselves carry no ``seq``. They reuse the
    original's ``timestamp``. Raises ``ValueError`` when the limits leave fewer than
    :data:`MIN_PAYLOAD_BYTES` for a payload, and Pydantic's serialization error for an
    envelope that has no JSON form (e.g. a string with lone surrogates).
    """

    __slots__ = ("_chunk_id_factory", "_headroom", "_max_frame_bytes")

    def __init__(
        self,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        *,
        headroom: int = STAMP_HEADROOM,
        chunk_id_factory: Callable[[], str] = _new_chunk_id,
    ) -> None:
        if headroom < 0:
            raise ValueError(f"headroom must be >= 0, got {headroom}")
        if max_frame_bytes - headroom < MIN_FRAME_BYTES:
            raise ValueError(
                f"max_frame_bytes must be >= headroom + {MIN_FRAME_BYTES} "
                f"(= {headroom + MIN_FRAME_BYTES}), got {max_frame_bytes}"
            )
        self._max_frame_bytes = max_frame_bytes
        self._headroom = headroom
        self._chunk_id_factory = chunk_id_factory

    @property
    def max_frame_bytes(self) -> int:
        return self._max_frame_bytes

    @property
    def headroom(self) -> int:
        return self._headroom

    def fits(self, envelope: BaseEnvelope) -> bool:
        """Whether ``envelope`` goes out as one frame, headroom included."""
        return len(_wire_json(envelope)) + self._headroom <= self._max_frame_bytes

    def split(self, envelope: BaseEnvelope) -> list[BaseEnvelope]:
        """``[envelope]`` if it fits in one frame, else its chunk envelopes in index order."""
        wire_or_chunks = self.wire_or_chunks(envelope)
        if isinstance(wire_or_chunks, bytes):
            return [envelope]
        return list(wire_or_chunks)

    def wire_or_chunks(self, envelope: BaseEnvelope) -> bytes | list[ChunkedMessageEnvelope]:
        """What :meth:`split` decides, keeping the JSON it serialized to decide it.

        The envelope's wire text, UTF-8 (what ``to_wire_json`` writes, as :meth:`fits` measures
        it), when it fits in one frame, headroom included; else its chunk envelopes in index
        order, cut from that text. A broadcaster appends its stamp to the text instead of
        serializing the frame again.
        """
        wire = _wire_json(envelope)
        if len(wire) + self._headroom <= self._max_frame_bytes:
            return wire
        return self._chunks(envelope, wire.decode())

    def chunk(self, envelope: BaseEnvelope) -> list[ChunkedMessageEnvelope]:
        """Always split, even an envelope that would fit (one chunk then)."""
        return self._chunks(envelope, envelope.model_dump_json(exclude_none=True))

    def _chunks(self, envelope: BaseEnvelope, text: str) -> list[ChunkedMessageEnvelope]:
        chunk_id = self._chunk_id_factory()
        # No piece is empty, so there are at most len(text) chunks: size the header for that.
        widest = 10 ** len(str(max(len(text), 1))) - 1
        header = _chunk(envelope, chunk_id, widest, widest, "")
        budget = self._max_frame_bytes - self._headroom - len(to_json(header, exclude_none=True))
        if budget < MIN_PAYLOAD_BYTES:
            raise ValueError(
                f"max_frame_bytes={self._max_frame_bytes} leaves {budget} payload bytes per "
                f"chunk for original_type={envelope.type[:40]!r}; at least {MIN_PAYLOAD_BYTES} "
                "are needed"
            )
        pieces = _cut(text, budget)
        total = len(pieces)
        return [
            _chunk(envelope, chunk_id, index, total, piece) for index, piece in enumerate(pieces)
        ]


def _chunk(
    original: BaseEnvelope, chunk_id: str, index: int, total: int, payload: str
) -> ChunkedMessageEnvelope:
    return ChunkedMessageEnvelope(
        timestamp=original.timestamp,
        data=ChunkedMessageData(
            chunk_id=chunk_id,
            chunk_index=index,
            total_chunks=total,
            original_type=original.type,
            payload=payload,
        ),
    )


def _cut(text: str, budget: int) -> list[str]:
    """Cut ``text`` into non-empty pieces whose escaped size is at most ``budget`` bytes."""
    pieces: list[str] = []
    start, end_of_text = 0, len(text)
    while start < end_of_text:
        # Every character costs at least one byte escaped, so ``budget`` characters is an
        # upper bound; shrink in proportion to the overshoot until the piece fits. One
        # character costs at most 6 bytes (``\\u001f``), well under MIN_PAYLOAD_BYTES.
        length = min(end_of_text - start, budget)
        while (size := _escaped_size(text[start : start + length])) > budget:
            length = min(length - 1, length * budget // size)
        pieces.append(text[start : start + length])
        start += length
    return pieces


class ReassemblyStatus(StrEnum):
    """What :meth:`Reassembler.feed` did with one envelope."""

    PASSTHROUGH = "passthrough"
    """Not a chunk: ``envelope`` is the input, unchanged."""
    PENDING = "pending"
    """Chunk stored; the message is incomplete."""
    COMPLETE = "complete"
    """Last chunk arrived: ``envelope`` is the rebuilt original."""
    DUPLICATE = "duplicate"
    """An identical copy of a chunk stored or already delivered in a completed message: ignored."""
    REJECTED = "rejected"
    """See ``reason``; any data buffered for this ``chunk_id`` has been freed."""


class RejectReason(StrEnum):
    """Why a chunk was rejected (:attr:`ReassemblyStatus.REJECTED`), a label of bounded range."""

    MALFORMED = "malformed"
    """A ``chunked_message`` frame whose data failed validation (an ``UnknownEnvelope``)."""
    HEADER_TOO_LONG = "header_too_long"
    """``chunk_id`` or ``original_type`` longer than ``max_header_chars``."""
    TOO_MANY_CHUNKS = "too_many_chunks"
    """``total_chunks`` above ``max_chunks_per_message``."""
    INDEX_OUT_OF_RANGE = "index_out_of_range"
    """``chunk_index >= total_chunks``."""
    TOTAL_MISMATCH = "total_mismatch"
    """``total_chunks`` differs from earlier chunks of the same ``chunk_id``."""
    TYPE_MISMATCH = "type_mismatch"
    """``original_type`` differs from earlier chunks of the same ``chunk_id``."""
    CONFLICTING_DUPLICATE = "conflicting_duplicate"
    """A second chunk with the same index but a different payload.

    Like the two reasons above, also reported for a late chunk of a message already completed
    (which stays delivered and remembered as completed)."""
    ORIGINAL_TYPE_MISMATCH = "original_type_mismatch"
    """The rebuilt message's ``type`` contradicts the chunks' ``original_type``: nothing is
    delivered (see :class:`Reassembler` for what counts as a contradiction)."""
    MESSAGE_TOO_LARGE = "message_too_large"
    """The chunks of one message would hold more than ``max_message_bytes`` (payload UTF-8
    bytes plus :data:`CHUNK_OVERHEAD_BYTES` per chunk)."""
    ALREADY_REJECTED = "already_rejected"
    """A chunk of a message rejected earlier (for any of the reasons above)."""
    EXPIRED = "expired"
    """A chunk of a message dropped for exceeding ``max_age_seconds``."""
    EVICTED = "evicted"
    """A chunk of a message evicted to respect ``max_messages_in_flight``/``max_buffered_bytes``."""


@dataclass(frozen=True, slots=True)
class ReassemblyResult:
    """The outcome of feeding one envelope to a :class:`Reassembler`."""

    status: ReassemblyStatus
    envelope: BaseEnvelope | None = None
    """The input (``PASSTHROUGH``) or the rebuilt original (``COMPLETE``), else ``None``."""
    reason: RejectReason | None = None
    """Why, for ``REJECTED``; else ``None``."""
    chunk_id: str | None = None
    """The chunk's message; ``None`` for a passthrough, a malformed chunk or an overlong id."""


@dataclass(frozen=True, slots=True)
class ReassemblerStats:
    """Counters since creation plus the current buffer occupancy, for monitoring."""

    chunks: int
    """Chunk frames fed (every ``chunked_message``, whatever the outcome)."""
    passthrough: int
    completed: int
    duplicates: int
    rejected: Mapping[RejectReason, int]
    """Rejected chunk frames by reason."""
    expired: int
    """Incomplete messages dropped by age."""
    evicted: int
    """Incomplete messages dropped to make room."""
    in_flight: int
    buffered_bytes: int
    remembered_ids: int


@dataclass(slots=True)
class _Partial:
    total: int
    original_type: str
    started: float
    parts: dict[int, bytes] = field(default_factory=dict)
    """Payloads as UTF-8: one byte per byte counted, whatever characters a str would need."""
    size: int = 0
    """Bytes charged: payload sizes plus :data:`CHUNK_OVERHEAD_BYTES` per chunk."""


@dataclass(frozen=True, slots=True)
class _Completed:
    """What is remembered of a delivered message: enough to judge its late chunks."""

    total: int
    original_type: str
    digests: array[int]
    """A 32-bit digest of each chunk's payload, by index (4 bytes per chunk)."""


def _encoded(payload: str) -> bytes:
    # ``surrogatepass``: a locally built payload may hold lone surrogates; never raise on it.
    return payload.encode("utf-8", "surrogatepass")


def _digest(part: bytes) -> int:
    # Python's keyed hash of bytes, cut to 32 bits: a collision only reports a conflicting
    # late chunk as a duplicate, and both are dropped.
    return hash(part) & 0xFFFFFFFF


def _contradicts(rebuilt_type: str, original_type: str) -> bool:
    """Whether a rebuilt message of ``rebuilt_type`` is not what chunks of ``original_type`` said.

    Equal types agree, and so does a reserved label (an original without a usable ``type``:
    not JSON, not an object...), reported as the usual :class:`UnknownEnvelope`. Otherwise they
    contradict when either is a known type: two unknown types are both just unknown, and
    their labels may differ from the raw string anyway.
    """
    if rebuilt_type == original_type or rebuilt_type in RESERVED_LABELS:
        return False
    return rebuilt_type in KNOWN_ENVELOPES or original_type in KNOWN_ENVELOPES


class Reassembler:
    """Rebuilds chunked envelopes of one connection, within hard memory and time bounds.

    Feed every received envelope to :meth:`feed`. Payloads are held as UTF-8 ``bytes``, and
    each buffered chunk is charged its payload's size plus :data:`CHUNK_OVERHEAD_BYTES`, so the
    byte caps bound memory, not characters. Bounds (all configurable), with what each costs at
    worst in CPython:

    - ``max_buffered_bytes`` (all messages): the memory of every buffered chunk together;
    - ``max_message_bytes``: the same for one ``chunk_id``. When the last chunk arrives, the
      payloads are joined into one ``bytes`` of at most this size, parsed, and freed; the
      rebuilt envelope is as large as the message would be had it come whole;
    - ``max_messages_in_flight``: when a new message would exceed it, or a new chunk
      ``max_buffered_bytes``, the *oldest* incomplete messages are evicted, so a peer that
      drops chunks cannot block later messages. Each message in flight also holds its
      ``chunk_id`` and ``original_type`` and under 1 KiB of bookkeeping;
    - ``max_chunks_per_message``: larger ``total_chunks`` is rejected on its first chunk;
    - ``max_age_seconds``: an incomplete message older than this (since its first chunk, by
      ``clock``, which must be monotonic) is dropped on the next :meth:`feed` or :meth:`expire`;
    - ``max_remembered_ids``: completed, rejected, expired and evicted ids are remembered
      (oldest forgotten first) so their late chunks are reported instead of buffered again. A
      completed one also keeps its ``original_type`` and 4 bytes per chunk, to tell a late
      copy (``DUPLICATE``) from a conflicting chunk: at most
      ``max_remembered_ids * (4 * max_chunks_per_message + 2 KiB)``, 18 MiB at the defaults;
    - ``max_header_chars``: longer ``chunk_id``/``original_type`` are rejected, not stored (a
      character costs CPython at most 4 bytes).

    The rebuilt JSON goes through ``validate_envelope_json``, so a bad original comes back as an
    ``UnknownEnvelope``, its ``type`` labelled from ``labels`` (default: the process-wide
    :data:`~.labels.DEFAULT_LABEL_BUDGET`; a consumer passes the budget it labels its other
    frames from); it is not reassembled again if it is itself a chunk. It must agree with
    the chunks' ``original_type``: when either names one of the ten known types, the rebuilt
    ``type`` must be that type, or a reserved label (an original without a usable ``type``);
    otherwise the message is rejected with ``ORIGINAL_TYPE_MISMATCH`` and nothing is delivered,
    so chunks labelled ``metrics`` cannot deliver an ``initial_metrics``. The original's own
    ``seq`` (none, from :class:`BroadcastBuilder`) is kept as rebuilt. Not thread-safe: one
    connection has one reader.
    """

    def __init__(
        self,
        *,
        max_chunks_per_message: int = DEFAULT_MAX_CHUNKS_PER_MESSAGE,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
        max_messages_in_flight: int = DEFAULT_MAX_MESSAGES_IN_FLIGHT,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        max_remembered_ids: int = DEFAULT_MAX_REMEMBERED_IDS,
        max_header_chars: int = DEFAULT_MAX_HEADER_CHARS,
        clock: Callable[[], float] = time.monotonic,
        labels: LabelBudget | None = None,
    ) -> None:
        for name, value in (
            ("max_chunks_per_message", max_chunks_per_message),
            ("max_message_bytes", max_message_bytes),
            ("max_messages_in_flight", max_messages_in_flight),
            ("max_header_chars", max_header_chars),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if max_buffered_bytes < max_message_bytes:
            raise ValueError(
                f"max_buffered_bytes must be >= max_message_bytes ({max_message_bytes}), "
                f"got {max_buffered_bytes}"
            )
        if not max_age_seconds > 0:
            raise ValueError(f"max_age_seconds must be > 0, got {max_age_seconds}")
        if max_remembered_ids < 0:
            raise ValueError(f"max_remembered_ids must be >= 0, got {max_remembered_ids}")
        self._max_chunks = max_chunks_per_message
        self._max_message_bytes = max_message_bytes
        self._max_buffered_bytes = max_buffered_bytes
        self._max_in_flight = max_messages_in_flight
        self._max_age = max_age_seconds
        self._max_remembered = max_remembered_ids
        self._max_header = max_header_chars
        self._clock = clock
        self._labels = labels
        # Insertion order is arrival order of each message's first chunk: oldest first.
        self._partials: OrderedDict[str, _Partial] = OrderedDict()
        self._closed: OrderedDict[str, RejectReason | _Completed] = OrderedDict()
        self._buffered = 0
        self._chunks = 0
        self._passthrough = 0
        self._completed = 0
        self._duplicates = 0
        self._expired = 0
        self._evicted = 0
        self._rejected: Counter[RejectReason] = Counter()

    @property
    def buffered_bytes(self) -> int:
        """Bytes charged for the chunks held now (payloads plus the per-chunk overhead)."""
        return self._buffered

    @property
    def in_flight(self) -> int:
        """Incomplete messages held now."""
        return len(self._partials)

    def stats(self) -> ReassemblerStats:
        """The counters since creation and the buffers' occupancy now."""
        return ReassemblerStats(
            chunks=self._chunks,
            passthrough=self._passthrough,
            completed=self._completed,
            duplicates=self._duplicates,
            rejected=MappingProxyType(dict(self._rejected)),
            expired=self._expired,
            evicted=self._evicted,
            in_flight=len(self._partials),
            buffered_bytes=self._buffered,
            remembered_ids=len(self._closed),
        )

    def expire(self) -> list[str]:
        """Drop incomplete messages older than ``max_age_seconds``; returns their ids."""
        deadline = self._clock() - self._max_age
        expired: list[str] = []
        while self._partials:
            chunk_id, partial = next(iter(self._partials.items()))
            if partial.started > deadline:
                break
            self._drop(chunk_id, RejectReason.EXPIRED)
            expired.append(chunk_id)
        self._expired += len(expired)
        return expired

    def feed_whole(self, envelope: BaseEnvelope) -> bool:
        """Pass ``envelope`` through if it is a whole frame, without building a result.

        ``True``: ``envelope`` is not a chunk, and was counted as :meth:`feed` counts a
        ``PASSTHROUGH`` (after expiring what was due). ``False``: it is, or may be, a chunk
        (``chunked_message``, valid or not), and nothing was done: give it to :meth:`feed`.
        """
        kind = type(envelope)
        if kind not in _WHOLE_ENVELOPES and (
            kind is not UnknownEnvelope or envelope.type == _CHUNK_TYPE
        ):
            return False
        if self._partials:
            self.expire()
        self._passthrough += 1
        return True

    def feed(self, envelope: BaseEnvelope) -> ReassemblyResult:
        """Take one received envelope; non-chunks pass through. Never raises."""
        if self.feed_whole(envelope):
            return ReassemblyResult(ReassemblyStatus.PASSTHROUGH, envelope)
        if self._partials:  # with none, expiring would only read the clock
            self.expire()
        if not isinstance(envelope, ChunkedMessageEnvelope):
            if isinstance(envelope, UnknownEnvelope) and envelope.type == _CHUNK_TYPE:
                self._chunks += 1
                return self._reject(RejectReason.MALFORMED, None)
            self._passthrough += 1  # an envelope of a class of its own
            return ReassemblyResult(ReassemblyStatus.PASSTHROUGH, envelope)
        self._chunks += 1
        return self._feed_chunk(envelope.data)

    def _feed_chunk(self, chunk: ChunkedMessageData) -> ReassemblyResult:
        chunk_id = chunk.chunk_id
        if len(chunk_id) > self._max_header:
            return self._reject(RejectReason.HEADER_TOO_LONG, None)  # too long to remember
        closed = self._closed.get(chunk_id)
        if isinstance(closed, _Completed):
            return self._late_chunk(chunk, closed)
        if closed is not None:
            reason = closed
            if reason not in (RejectReason.EXPIRED, RejectReason.EVICTED):
                reason = RejectReason.ALREADY_REJECTED
            return self._reject(reason, chunk_id)
        if len(chunk.original_type) > self._max_header:
            return self._close_rejected(RejectReason.HEADER_TOO_LONG, chunk_id)
        if chunk.total_chunks > self._max_chunks:
            return self._close_rejected(RejectReason.TOO_MANY_CHUNKS, chunk_id)
        if chunk.chunk_index >= chunk.total_chunks:
            return self._close_rejected(RejectReason.INDEX_OUT_OF_RANGE, chunk_id)
        data = _encoded(chunk.payload)
        size = len(data) + CHUNK_OVERHEAD_BYTES
        partial = self._partials.get(chunk_id)
        if partial is None:
            if size > self._max_message_bytes:
                return self._close_rejected(RejectReason.MESSAGE_TOO_LARGE, chunk_id)
            if chunk.total_chunks == 1:
                return self._complete(chunk_id, chunk.original_type, [data])
            partial = _Partial(chunk.total_chunks, chunk.original_type, self._clock())
            while len(self._partials) >= self._max_in_flight:
                self._evict_oldest()
            self._partials[chunk_id] = partial
        else:
            if chunk.total_chunks != partial.total:
                return self._close_rejected(RejectReason.TOTAL_MISMATCH, chunk_id)
            if chunk.original_type != partial.original_type:
                return self._close_rejected(RejectReason.TYPE_MISMATCH, chunk_id)
            stored = partial.parts.get(chunk.chunk_index)
            if stored is not None:
                if stored == data:
                    self._duplicates += 1
                    return ReassemblyResult(ReassemblyStatus.DUPLICATE, chunk_id=chunk_id)
                return self._close_rejected(RejectReason.CONFLICTING_DUPLICATE, chunk_id)
            if partial.size + size > self._max_message_bytes:
                return self._close_rejected(RejectReason.MESSAGE_TOO_LARGE, chunk_id)
        while self._buffered + size > self._max_buffered_bytes:
            self._evict_oldest(keep=chunk_id)
        partial.parts[chunk.chunk_index] = data
        partial.size += size
        self._buffered += size
        if len(partial.parts) < partial.total:
            return ReassemblyResult(ReassemblyStatus.PENDING, chunk_id=chunk_id)
        parts = [partial.parts[index] for index in range(partial.total)]
        self._drop(chunk_id, None)
        return self._complete(chunk_id, partial.original_type, parts)

    def _complete(self, chunk_id: str, original_type: str, parts: list[bytes]) -> ReassemblyResult:
        # Bytes, not text: pydantic parses them as they are (``json.loads`` decodes them with
        # ``surrogatepass`` if it must), so the result is the joined text's.
        original = validate_envelope_json(b"".join(parts), labels=self._labels)
        if _contradicts(original.type, original_type):
            return self._close_rejected(RejectReason.ORIGINAL_TYPE_MISMATCH, chunk_id)
        digests = array("I", [_digest(part) for part in parts])
        self._remember(chunk_id, _Completed(len(parts), original_type, digests))
        self._completed += 1
        return ReassemblyResult(ReassemblyStatus.COMPLETE, envelope=original, chunk_id=chunk_id)

    def _late_chunk(self, chunk: ChunkedMessageData, completed: _Completed) -> ReassemblyResult:
        """A chunk of a delivered message: a copy of one of its chunks, or a conflict."""
        if chunk.total_chunks != completed.total:
            reason = RejectReason.TOTAL_MISMATCH
        elif chunk.original_type != completed.original_type:
            reason = RejectReason.TYPE_MISMATCH
        elif chunk.chunk_index >= completed.total:
            reason = RejectReason.INDEX_OUT_OF_RANGE
        elif _digest(_encoded(chunk.payload)) != completed.digests[chunk.chunk_index]:
            reason = RejectReason.CONFLICTING_DUPLICATE
        else:
            self._duplicates += 1
            return ReassemblyResult(ReassemblyStatus.DUPLICATE, chunk_id=chunk.chunk_id)
        # The message stays delivered: later identical copies are still duplicates.
        return self._reject(reason, chunk.chunk_id)

    def _reject(self, reason: RejectReason, chunk_id: str | None) -> ReassemblyResult:
        self._rejected[reason] += 1
        return ReassemblyResult(ReassemblyStatus.REJECTED, None, reason, chunk_id)

    def _close_rejected(self, reason: RejectReason, chunk_id: str) -> ReassemblyResult:
        self._drop(chunk_id, reason)
        return self._reject(reason, chunk_id)

    def _evict_oldest(self, keep: str | None = None) -> None:
        victim = next(chunk_id for chunk_id in self._partials if chunk_id != keep)
        self._drop(victim, RejectReason.EVICTED)
        self._evicted += 1

    def _drop(self, chunk_id: str, reason: RejectReason | None) -> None:
        """Free ``chunk_id``'s buffer; remember why unless it completed (the caller does)."""
        partial = self._partials.pop(chunk_id, None)
        if partial is not None:
            self._buffered -= partial.size
        if reason is not None:
            self._remember(chunk_id, reason)

    def _remember(self, chunk_id: str, outcome: RejectReason | _Completed) -> None:
        if self._max_remembered == 0:
            return
        self._closed[chunk_id] = outcome
        self._closed.move_to_end(chunk_id)
        while len(self._closed) > self._max_remembered:
            self._closed.popitem(last=False)
