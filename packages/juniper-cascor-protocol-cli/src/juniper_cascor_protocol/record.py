"""``record URL``: capture what a live ``/ws/training`` or ``/ws/control`` endpoint sends.

The recorder connects as an ordinary client of the endpoint, writes every received message to a
capture file (see :mod:`.capture_file`) the moment it arrives, and reads it through the
endpoint's client session (:class:`TrainingConsumerSession` or :class:`ControlClientSession`),
so that what it counts as invalid, unknown, a ``seq`` gap or a chunk problem is the library's
verdict. It answers the server's heartbeat as a client must, sends nothing else, and never
reconnects. It stops after ``frames`` messages, after ``duration`` seconds, when the server
closes the connection, or on Ctrl-C; the capture is flushed in every case.

``/ws/v1/workers`` is refused: a worker endpoint has no observer role. Whoever connects must
register as a worker within seconds, and the server then hands it tasks that a recorder would
never answer. Record worker traffic on the server's side instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Final, Protocol
from urllib.parse import urlsplit

from rich.console import Console, Group
from rich.text import Text
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, WebSocketException

from juniper_cascor_protocol.capture import DEFAULT_MAX_UNKNOWN_TYPES
from juniper_cascor_protocol.capture_file import CaptureWriter
from juniper_cascor_protocol.demo.server import CONTROL_PATH, TRAINING_PATH, WORKERS_PATH
from juniper_cascor_protocol.demo.transport import connection_settings
from juniper_cascor_protocol.envelope import (
    BaseEnvelope,
    ChunkRejected,
    CommandAnswered,
    ControlClientSession,
    EnvelopeReceived,
    Established,
    IncompatibleVersion,
    InvalidResponse,
    LabelBudget,
    LateResponse,
    PingReceived,
    ProtocolViolation,
    ReassemblyExpired,
    TrainingConsumerSession,
    UnknownEnvelope,
    UnknownResponse,
    UnsolicitedResponse,
)
from juniper_cascor_protocol.envelope.chunking import DEFAULT_MAX_FRAME_BYTES
from juniper_cascor_protocol.envelope.sequence import SeqStats
from juniper_cascor_protocol.envelope.session_events import UnknownFrame
from juniper_cascor_protocol.frame_verdict import is_invalid
from juniper_cascor_protocol.interrupt import run_until_interrupted
from juniper_cascor_protocol.terminal import STATUS_INTERVAL_S, print_error, status_display
from juniper_cascor_protocol.wording import count_of, count_table

__all__ = [
    "EndReason",
    "RecordError",
    "RecordOptions",
    "RecordSummary",
    "Recorder",
    "Tally",
    "endpoint_of",
    "record_command",
    "shown_url",
]

EXPIRE_INTERVAL_S: Final = 1.0
"""How often incomplete chunked messages are aged when nothing arrives."""
_RATE_WINDOW: Final = 8
"""Status samples the frame rate is averaged over (two seconds)."""
_TRANSPORT_SLACK: Final = 4
"""Frames up to this multiple of ``max_frame_bytes`` are recorded (and refused by the session
as oversized); longer ones make ``websockets`` close the connection with 1009."""
_TYPES_SHOWN: Final = 4


class RecordError(Exception):
    """The recording could not start: a bad URL, an endpoint that cannot be recorded, or a
    connection that failed. The message names the cause."""


class EndReason(StrEnum):
    """Why a recording stopped."""

    FRAMES = "frames"
    DURATION = "duration"
    INTERRUPTED = "interrupted"
    CLOSED = "closed"
    """The connection closed; :attr:`RecordSummary.close` says how."""


@dataclass(frozen=True, slots=True)
class RecordOptions:
    """What to record and when to stop (``frames`` and ``duration``: no limit when ``None``)."""

    url: str
    endpoint: str
    frames: int | None = None
    duration: float | None = None
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES


def endpoint_of(url: str, endpoint: str | None = None) -> str:
    """The endpoint path ``url`` speaks: ``endpoint`` if given, else its path's last segments.

    A path ending in ``/ws/training`` or ``/ws/control`` is that endpoint, so a server behind a
    path prefix is recognised too.

    Raises:
        RecordError: not a ``ws://`` or ``wss://`` URL, a worker endpoint, or a path that names
            no endpoint while ``endpoint`` is not given.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise RecordError(f"not a WebSocket URL: {shown_url(url)!r} (expected ws:// or wss://)")
    if endpoint is not None:
        if endpoint not in (TRAINING_PATH, CONTROL_PATH):
            raise RecordError(f"endpoint must be {TRAINING_PATH} or {CONTROL_PATH}: {endpoint!r}")
        return endpoint
    path = parts.path.rstrip("/")
    if path.endswith(WORKERS_PATH):
        raise RecordError(
            f"{WORKERS_PATH} cannot be recorded: a worker endpoint has no observer role (a "
            "client must register as a worker, and the server would hand it tasks)"
        )
    for known in (TRAINING_PATH, CONTROL_PATH):
        if path.endswith(known):
            return known
    raise RecordError(
        f"cannot tell the endpoint from the path {parts.path or '/'!r}: "
        "pass --endpoint training or --endpoint control"
    )


def shown_url(url: str) -> str:
    """``url`` without its user info and query, which may hold credentials."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"


# --- what the sessions said --------------------------------------------------------------


@dataclass
class Tally:
    """Running counts of what the session reported, by frame ``type``."""

    frames: int = 0
    types: Counter[str] = field(default_factory=Counter)
    """Frames read as valid or as an unknown type, by ``type`` (greetings and pings too)."""
    unknown: Counter[str] = field(default_factory=Counter)
    invalid: Counter[str] = field(default_factory=Counter)
    """Invalid frames, by ``type`` label, or by refusal (``binary_frame``, ``oversized``)."""
    unexpected: Counter[str] = field(default_factory=Counter)
    """Valid frames of the other endpoint."""
    chunk_problems: Counter[str] = field(default_factory=Counter)
    reassembled: int = 0
    heartbeats: int = 0
    incompatible: str | None = None
    """The protocol version a server announced that this tool cannot read."""

    def frame(self, envelope: BaseEnvelope, *, expected: bool = True) -> None:
        """Count one frame the session delivered: invalid, of an unknown type, or valid
        (``expected=False``: valid, but a frame of the other endpoint)."""
        if is_invalid(envelope):
            self.invalid[envelope.type] += 1
            return
        if isinstance(envelope, UnknownEnvelope):
            self.unknown[envelope.type] += 1
        elif not expected:
            self.unexpected[envelope.type] += 1
        self.types[envelope.type] += 1

    def greeting(self, outcome: Established | IncompatibleVersion) -> None:
        """Count the server's ``connection_established``, noting a version this tool cannot read."""
        self.types["connection_established"] += 1
        if isinstance(outcome, IncompatibleVersion):
            self.incompatible = outcome.announced

    def ping(self) -> None:
        """Count one heartbeat the recorder answered."""
        self.heartbeats += 1
        self.types["ping"] += 1


class _Listener(Protocol):
    """A client session of one endpoint, reduced to what the recorder needs."""

    def receive(self, message: str | bytes, now: float, tally: Tally) -> list[str]:
        """Read one message into ``tally``; the replies to send."""
        ...

    def expire(self, now: float, tally: Tally) -> None: ...

    def seq(self) -> SeqStats | None: ...

    def incomplete(self) -> int:
        """Chunked messages still waiting for chunks."""
        ...


def _connection_event(event: object, tally: Tally, replies: list[str]) -> bool:
    """Count an event both endpoints' sessions report (a heartbeat, whose reply goes into
    ``replies``, the greeting, a refused frame); whether ``event`` was one."""
    if isinstance(event, PingReceived):
        tally.ping()
        replies.append(event.reply)
    elif isinstance(event, Established | IncompatibleVersion):
        tally.greeting(event)
    elif isinstance(event, ProtocolViolation):
        tally.invalid[event.label] += 1
    else:
        return False
    return True


class _TrainingListener:
    def __init__(self, max_frame_bytes: int) -> None:
        self.session = TrainingConsumerSession(
            max_frame_bytes=max_frame_bytes, labels=_unknown_type_names()
        )

    def receive(self, message: str | bytes, now: float, tally: Tally) -> list[str]:
        replies: list[str] = []
        for event in self.session.receive(message, now=now):
            if _connection_event(event, tally, replies):
                continue
            if isinstance(event, EnvelopeReceived | UnknownFrame):
                tally.frame(event.envelope)
                tally.reassembled += event.reassembled
            else:
                self._chunk_problem(event, tally)
        return replies

    def expire(self, now: float, tally: Tally) -> None:
        for event in self.session.expire(now=now):
            self._chunk_problem(event, tally)

    @staticmethod
    def _chunk_problem(event: object, tally: Tally) -> None:
        if isinstance(event, ChunkRejected):
            tally.chunk_problems[event.reason.value] += 1
        elif isinstance(event, ReassemblyExpired):
            tally.chunk_problems["expired"] += 1
        # Reseeded and SeqAnomaly need no count here: seq() reads the session's own totals.

    def seq(self) -> SeqStats:
        return self.session.stats().seq

    def incomplete(self) -> int:
        return self.session.in_flight


class _ControlListener:
    def __init__(self, max_frame_bytes: int) -> None:
        self.session = ControlClientSession(
            max_frame_bytes=max_frame_bytes, labels=_unknown_type_names()
        )

    def receive(self, message: str | bytes, now: float, tally: Tally) -> list[str]:
        replies: list[str] = []
        for event in self.session.receive(message, now=now):
            if _connection_event(event, tally, replies):
                continue
            if isinstance(event, InvalidResponse):
                tally.invalid[event.envelope.type] += 1
            elif isinstance(event, UnknownFrame):
                tally.frame(event.envelope, expected=False)
            elif isinstance(
                event, CommandAnswered | UnsolicitedResponse | LateResponse | UnknownResponse
            ):
                tally.frame(event.response)
        return replies

    def expire(self, now: float, tally: Tally) -> None:
        self.session.expire(now=now)  # no request is ever pending: nothing can time out

    def seq(self) -> None:
        return None  # /ws/control frames carry no seq

    def incomplete(self) -> int:
        return 0


def _unknown_type_names() -> LabelBudget:
    # A budget of the recorder's own, as validate's, never the process-wide 16 meant for
    # metrics: later new names are counted as ``_unmatched``.
    return LabelBudget(DEFAULT_MAX_UNKNOWN_TYPES)


def _listener(endpoint: str, max_frame_bytes: int) -> _Listener:
    if endpoint == TRAINING_PATH:
        return _TrainingListener(max_frame_bytes)
    return _ControlListener(max_frame_bytes)


# --- the summary --------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordSummary:
    """What a recording held and how it ended."""

    url: str
    """The URL without user info or query."""
    endpoint: str
    out: str
    end: EndReason
    close: str | None
    """How the connection closed, when it did (``end`` is ``CLOSED``)."""
    close_clean: bool
    """The close was a normal one (1000 or 1001 both ways), not a lost connection or an error."""
    duration_s: float
    capture_bytes: int
    tally: Tally
    seq: SeqStats | None
    incomplete_chunked: int
    frames_limit: int | None = None
    duration_limit: float | None = None

    @property
    def problems(self) -> list[str]:
        """Everything that makes the recording exit with 1, one sentence each."""
        tally, found = self.tally, []
        if tally.incompatible is not None:
            found.append(
                f"the server announced protocol version {tally.incompatible!r}, "
                "which this tool cannot read"
            )
        if tally.invalid:
            found.append(count_of(sum(tally.invalid.values()), "invalid frame"))
        if tally.unexpected:
            found.append(f"{count_of(sum(tally.unexpected.values()), 'frame')} of another endpoint")
        if self.seq is not None and (self.seq.gaps or self.seq.duplicates or self.seq.resets):
            found.append(_seq_text(self.seq))
        chunk_problems = sum(tally.chunk_problems.values()) + self.incomplete_chunked
        if chunk_problems:
            found.append(f"{count_of(chunk_problems, 'chunked message')} lost or refused")
        if self.end is EndReason.CLOSED and not self.close_clean:
            found.append(f"the connection ended abnormally: {self.close}")
        return found

    def ended(self) -> str:
        """Why the recording stopped, in words."""
        if self.end is EndReason.FRAMES:
            return f"--frames {self.frames_limit} reached"
        if self.end is EndReason.DURATION:
            return f"--duration {self.duration_limit:g} s elapsed"
        if self.end is EndReason.INTERRUPTED:
            return "interrupted (Ctrl-C)"
        return self.close or "the connection closed"

    def to_json(self) -> dict[str, Any]:
        """The summary as a JSON-compatible dict (what ``record --json`` prints)."""
        tally = self.tally
        return {
            "url": self.url,
            "endpoint": self.endpoint,
            "out": self.out,
            "ended": self.end.value,
            "close": self.close,
            "duration_s": round(self.duration_s, 3),
            "frames": tally.frames,
            "capture_bytes": self.capture_bytes,
            "per_type": dict(sorted(tally.types.items())),
            "unknown_types": dict(sorted(tally.unknown.items())),
            "invalid": dict(sorted(tally.invalid.items())),
            "other_endpoint": dict(sorted(tally.unexpected.items())),
            "seq": None
            if self.seq is None
            else {
                "gaps": self.seq.gaps,
                "missing": self.seq.missing,
                "duplicates": self.seq.duplicates,
                "resets": self.seq.resets,
            },
            "chunked": {
                "reassembled": tally.reassembled,
                "problems": dict(sorted(tally.chunk_problems.items())),
                "incomplete": self.incomplete_chunked,
            },
            "heartbeats_answered": tally.heartbeats,
            "problems": self.problems,
            "clean": not self.problems,
        }

    def render(self) -> Group:
        """The summary for people: a headline, a table of frame types, then the findings."""
        tally = self.tally
        lines: list[Any] = [
            Text(
                f"recorded {count_of(tally.frames, 'frame')} ({_size(self.capture_bytes)}) from "
                f"{self.url} in {self.duration_s:.1f} s to {self.out}"
            ),
            Text(f"ended: {self.ended()}"),
        ]
        if tally.types:
            shown = {
                f"{name} (unknown type)" if name in tally.unknown else name: count
                for name, count in tally.types.items()
            }
            lines.append(count_table(shown, ("type", "frames")))
        if tally.invalid:
            parts = ", ".join(f"{name} {n}" for name, n in sorted(tally.invalid.items()))
            lines.append(Text(f"invalid: {parts} (validate the capture for each reason)"))
        if self.seq is not None:
            lines.append(Text(f"seq: {_seq_text(self.seq)}"))
        if tally.reassembled or tally.chunk_problems or self.incomplete_chunked:
            lines.append(
                Text(
                    f"chunked: {tally.reassembled:,} reassembled, "
                    f"{sum(tally.chunk_problems.values()):,} refused or expired, "
                    f"{self.incomplete_chunked:,} incomplete at the end"
                )
            )
        problems = self.problems
        lines.append(Text("problems: " + ("; ".join(problems) if problems else "none")))
        return Group(*lines)


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return count_of(n, "byte")


def _seq_text(seq: SeqStats) -> str:
    return (
        f"{count_of(seq.gaps, 'gap')} ({seq.missing:,} missing), "
        f"{count_of(seq.duplicates, 'duplicate')}, {count_of(seq.resets, 'reset')}"
    )


def _describe_close(error: ConnectionClosed) -> str:
    if error.rcvd is not None:
        close, who = error.rcvd, "the server closed the connection"
    elif error.sent is not None:
        close, who = error.sent, "this tool closed the connection"
    else:
        return "the connection was lost without a close frame"
    reason = f": {close.reason}" if close.reason else ""
    return f"{who} (code {close.code}{reason})"


# --- the recorder -------------------------------------------------------------------------


class Recorder:
    """Records ``options.url``; :meth:`run` it, then read :meth:`summary`.

    ``open_capture`` gives the stream the capture is written to, as a context manager; it is
    entered once the connection is open and left when :meth:`run` ends. ``on_status`` is called
    with a one-line status every :data:`.terminal.STATUS_INTERVAL_S` while recording; the
    capture is flushed as often.
    """

    def __init__(
        self,
        options: RecordOptions,
        open_capture: Callable[[], contextlib.AbstractContextManager[IO[bytes]]],
        *,
        on_status: Callable[[Text], None] | None = None,
    ) -> None:
        self.options = options
        self.tally: Tally = Tally()
        """What the session has reported so far."""
        self._open_capture = open_capture
        self._writer: CaptureWriter | None = None
        self._listener = _listener(options.endpoint, options.max_frame_bytes)
        self._on_status = on_status
        self._end = EndReason.CLOSED
        self._close: str | None = None
        self._close_clean = True
        self._started = time.monotonic()
        self._stopped: float | None = None
        self._samples: deque[tuple[float, int]] = deque(maxlen=_RATE_WINDOW)

    async def run(self, stop: asyncio.Event) -> None:
        """Record until a limit, the end of the connection, or ``stop`` is set.

        Raises:
            RecordError: the connection could not be opened.
        """
        self._started = time.monotonic()
        reader = asyncio.create_task(self._read())
        stopped = asyncio.create_task(stop.wait())
        ticker = asyncio.create_task(self._tick())
        try:
            done, _ = await asyncio.wait(
                {reader, stopped},
                timeout=self.options.duration,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if reader not in done:
                self._end = EndReason.INTERRUPTED if stop.is_set() else EndReason.DURATION
        finally:
            for task in (reader, stopped, ticker):
                task.cancel()
            await asyncio.gather(stopped, ticker, return_exceptions=True)
            with contextlib.suppress(asyncio.CancelledError):
                await reader  # raises RecordError if the connection never opened
            self._stopped = time.monotonic()

    def summary(self, *, out: str, interrupted: bool = False) -> RecordSummary:
        """What was recorded; ``interrupted`` when Ctrl-C ended :meth:`run` from outside."""
        end = EndReason.INTERRUPTED if interrupted else self._end
        stopped = time.monotonic() if self._stopped is None else self._stopped
        return RecordSummary(
            url=shown_url(self.options.url),
            endpoint=self.options.endpoint,
            out=out,
            end=end,
            close=self._close if end is EndReason.CLOSED else None,
            close_clean=self._close_clean,
            duration_s=stopped - self._started,
            capture_bytes=self._bytes_written,
            tally=self.tally,
            seq=self._listener.seq(),
            incomplete_chunked=self._listener.incomplete(),
            frames_limit=self.options.frames,
            duration_limit=self.options.duration,
        )

    def status(self, now: float | None = None) -> Text:
        """The live status line: time, frames, rate, bytes, seq gaps, invalid frames, types."""
        now = time.monotonic() if now is None else now
        tally = self.tally
        shown = ", ".join(f"{name} {n:,}" for name, n in tally.types.most_common(_TYPES_SHOWN))
        hidden = len(tally.types) - _TYPES_SHOWN
        if hidden > 0:
            shown += f", +{hidden} more"
        seq = self._listener.seq()
        # One terminal line: what matters most first, the list of types cut at the edge.
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"{now - self._started:6.1f} s  ", style="dim")
        line.append(f"{count_of(tally.frames, 'frame')}  {self._rate(now):,.1f}/s  ")
        line.append(f"{_size(self._bytes_written)}  ")
        gaps = "-" if seq is None else f"{seq.gaps:,}"
        line.append(f"seq gaps {gaps}  ", style="bold red" if seq and seq.gaps else "")
        invalid = sum(self.tally.invalid.values())
        line.append(f"invalid {invalid:,}  ", style="bold red" if invalid else "")
        line.append(f"types: {shown or '-'}")
        return line

    @property
    def _bytes_written(self) -> int:
        return 0 if self._writer is None else self._writer.bytes_written

    def _rate(self, now: float) -> float:
        self._samples.append((now, self.tally.frames))
        (then, before), (_, after) = self._samples[0], self._samples[-1]
        if now - then <= 0:
            return 0.0
        return (after - before) / (now - then)

    async def _connect(self) -> ClientConnection:
        settings = connection_settings(_TRANSPORT_SLACK * self.options.max_frame_bytes)
        try:
            return await connect(self.options.url, **settings)
        except (OSError, TimeoutError, WebSocketException) as error:
            raise RecordError(
                f"cannot connect to {shown_url(self.options.url)}: {error or type(error).__name__}"
            ) from None

    async def _read(self) -> None:
        connection = await self._connect()
        endpoint, tally, listener = self.options.endpoint, self.tally, self._listener
        limit = math.inf if self.options.frames is None else self.options.frames
        async with connection:
            with self._open_capture() as stream:
                self._writer = writer = CaptureWriter(stream)
                try:
                    while tally.frames < limit:
                        message = await connection.recv()
                        writer.write(message, received_at=time.time(), endpoint=endpoint)
                        tally.frames += 1
                        for reply in listener.receive(message, time.monotonic(), tally):
                            await connection.send(reply)
                    self._end = EndReason.FRAMES
                except ConnectionClosed as error:
                    self._close = _describe_close(error)
                    self._close_clean = isinstance(error, ConnectionClosedOK)
                finally:
                    writer.flush()

    async def _tick(self) -> None:
        last_expire = time.monotonic()
        while True:
            await asyncio.sleep(STATUS_INTERVAL_S)
            now = time.monotonic()
            if now - last_expire >= EXPIRE_INTERVAL_S:
                self._listener.expire(now, self.tally)
                last_expire = now
            if self._writer is not None:
                self._writer.flush()
            if self._on_status is not None:
                self._on_status(self.status(now))


# --- the command --------------------------------------------------------------------------


@contextlib.contextmanager
def _output(out: str) -> Iterator[IO[bytes]]:
    if out == "-":
        yield sys.stdout.buffer
        return
    with Path(out).open("wb") as stream:
        yield stream


def record_command(
    url: str,
    *,
    out: str,
    endpoint: str | None = None,
    frames: int | None = None,
    duration: float | None = None,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    as_json: bool = False,
    show_status: bool = True,
) -> int:
    """``juniper-cascor-protocol record``: record, print the summary, return the exit code.

    ``out`` is a file name, or ``-`` for standard output; it is opened only once connected, so
    a connection that fails leaves an existing file as it was. The summary goes to standard
    output, or to standard error when the capture is written to standard output. The status
    line is drawn on standard error when it is a terminal and ``show_status`` is true.
    """
    from juniper_cascor_protocol.cli import EXIT_INTERRUPTED, EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE

    try:
        options = RecordOptions(
            url=url,
            endpoint=endpoint_of(url, endpoint),
            frames=frames,
            duration=duration,
            max_frame_bytes=max_frame_bytes,
        )
    except RecordError as error:
        print_error("record", str(error))
        return EXIT_USAGE
    errors = Console(stderr=True, highlight=False)
    display = status_display(errors, enabled=show_status)
    recorder = Recorder(
        options,
        lambda: _output(out),
        on_status=None if display is None else lambda line: display.update(line, refresh=True),
    )
    with display if display is not None else contextlib.nullcontext():
        if display is not None:
            errors.print(f"recording {shown_url(url)} to {out}; Ctrl-C stops", style="dim")
        try:
            interrupted = run_until_interrupted(recorder.run)
        except RecordError as error:
            print_error("record", str(error))
            return EXIT_USAGE
    summary = recorder.summary(
        out="standard output" if out == "-" else out, interrupted=interrupted
    )
    report = sys.stderr if out == "-" else sys.stdout
    if as_json:
        print(json.dumps(summary.to_json(), indent=2, sort_keys=True), file=report)
    else:
        Console(file=report, highlight=False, soft_wrap=True).print(summary.render())
    if interrupted:
        print_error("record", "interrupted")
        return EXIT_INTERRUPTED
    return EXIT_PROBLEMS if summary.problems else EXIT_OK
