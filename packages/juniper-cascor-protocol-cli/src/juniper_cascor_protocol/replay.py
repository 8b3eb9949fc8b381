"""``replay CAPTURE``: serve a capture as a live ``/ws/training`` endpoint.

A dashboard or a client can then be developed and tested without a training server. The replay
reads the capture's ``/ws/training`` messages through a :class:`TrainingConsumerSession`, as a
client would (so chunked messages are rebuilt and invalid frames recognised), and broadcasts each
message it delivers through a :class:`TrainingProducerSession`, as a server would: every client
gets ``connection_established`` and an ``initial_metrics`` of the recent metrics with
``current_seq`` when it joins, however late; frames are numbered ``seq`` 1, 2, ... without a gap
across passes; a message over ``max_frame_bytes`` goes out as ``chunked_message`` frames; and
``timestamp`` is the time of sending. Messages go out at their original pace (the receive time of
each record, or a plain frame's ``timestamp``), scaled by ``speed``, or as fast as possible.
The capture is read as ``validate`` reads it: plain, gzip, UTF-16 or with a BOM.

What a server only sends to one client, or could not have sent, is not replayed: the captured
greetings, ``initial_metrics`` and heartbeats (each client gets its own), frames of unknown type
(no producer builds them), invalid frames and ``/ws/control`` records; the summary counts them.
Only ``data`` is carried over: keys a frame had beside ``type``, ``timestamp``, ``data``,
``seq`` and ``emitted_at_monotonic`` are not.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Final

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from juniper_cascor_protocol.capture import DEFAULT_MAX_UNKNOWN_TYPES
from juniper_cascor_protocol.capture_file import (
    CapturedMessage,
    CaptureFormatError,
    read_capture_stream,
)
from juniper_cascor_protocol.capture_input import CaptureInputError
from juniper_cascor_protocol.demo.options import LOOPBACK_HOST
from juniper_cascor_protocol.demo.server import TRAINING_PATH
from juniper_cascor_protocol.demo.training_hub import TrainingHub
from juniper_cascor_protocol.demo.transport import connection_settings
from juniper_cascor_protocol.envelope import (
    BaseEnvelope,
    Chunker,
    ChunkRejected,
    EnvelopeReceived,
    Established,
    IncompatibleVersion,
    LabelBudget,
    PingReceived,
    ProtocolViolation,
    ReassemblyExpired,
    TrainingConsumerSession,
    TrainingProducerSession,
    UnknownFrame,
)
from juniper_cascor_protocol.envelope.chunking import (
    DEFAULT_MAX_FRAME_BYTES,
    DEFAULT_MAX_MESSAGE_BYTES,
)
from juniper_cascor_protocol.frame_verdict import is_invalid
from juniper_cascor_protocol.interrupt import run_until_interrupted
from juniper_cascor_protocol.terminal import STATUS_INTERVAL_S, print_error, status_display
from juniper_cascor_protocol.wording import count_of, count_table

__all__ = [
    "DEFAULT_PORT",
    "Pacer",
    "Playback",
    "ReplayEnd",
    "ReplayError",
    "ReplayOptions",
    "ReplayServer",
    "ReplaySummary",
    "capture_time",
    "replay_command",
]

DEFAULT_PORT: Final = 8765
"""The port ``replay`` listens on unless told otherwise (0 picks a free one)."""
_LISTED_UNREADABLE: Final = 10
"""Unreadable capture lines listed in the summary with their reason; all are counted."""
_WAIT_POLL_S: Final = 0.05


class ReplayError(Exception):
    """The replay could not start or go on: the capture cannot be opened or read as text (a
    corrupt gzip stream, a bad encoding), or the port cannot be bound."""


class ReplayEnd(StrEnum):
    """Why a replay stopped."""

    FINISHED = "finished"
    INTERRUPTED = "interrupted"
    NOTHING_TO_REPLAY = "nothing_to_replay"
    """A pass broadcast nothing: the capture holds no ``/ws/training`` message to replay."""


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """What to serve, where and how fast.

    ``speed`` is a factor on the original pace (2.0: twice as fast); ``None`` sends as fast as
    the clients read. ``passes`` is how many times the capture is played; ``None``: until
    stopped. ``wait_for_client`` holds the first pass until a client has joined.

    Raises:
        ValueError: a ``speed``, ``passes``, ``port`` or ``max_frame_bytes`` out of range.
    """

    capture: Path
    host: str = LOOPBACK_HOST
    port: int = DEFAULT_PORT
    speed: float | None = 1.0
    passes: int | None = 1
    wait_for_client: bool = False
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES

    def __post_init__(self) -> None:
        if self.speed is not None and not 0 < self.speed < math.inf:
            raise ValueError(f"speed must be a finite number > 0, got {self.speed}")
        if self.passes is not None and self.passes < 1:
            raise ValueError(f"passes must be at least 1, got {self.passes}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")
        Chunker(self.max_frame_bytes)  # raises ValueError, naming the limit, if it is too small


class Pacer:
    """When each message of one pass goes out, in seconds from the start of the pass.

    A message goes out ``(t - t_first) / speed`` seconds after the first, ``t`` being its
    capture time. A time earlier than one seen before (a clock step, records out of order)
    goes out at once; a message without a time goes out with the previous one. With
    ``speed=None`` every message goes out at once.
    """

    def __init__(self, speed: float | None) -> None:
        self._speed = speed
        self._first: float | None = None
        self._latest = 0.0

    def offset(self, capture_time: float | None) -> float:
        """The playback offset of a message captured at ``capture_time``."""
        if self._speed is None:
            return 0.0
        if capture_time is not None:
            if self._first is None:
                self._first = capture_time
            self._latest = max(self._latest, (capture_time - self._first) / self._speed)
        return self._latest


def capture_time(item: CapturedMessage) -> float | None:
    """When ``item`` was captured: its record's receive time, else a plain frame's ``timestamp``."""
    if item.received_at is not None:
        return item.received_at
    if not isinstance(item.message, str):
        return None
    try:
        frame = json.loads(item.message)
    except (ValueError, RecursionError):
        return None
    stamp = frame.get("timestamp") if isinstance(frame, dict) else None
    if isinstance(stamp, int | float) and not isinstance(stamp, bool) and math.isfinite(stamp):
        return float(stamp)
    return None


class Playback:
    """One pass over a capture, read as a client reads it, and what is not replayed.

    :meth:`feed` gives the envelopes a client delivers for one capture line (none, one, or a
    message rebuilt from its last chunk); the producer then refuses those never broadcast
    (``initial_metrics``, ``/ws/control`` frames), and :meth:`skip` counts them.
    """

    def __init__(self) -> None:
        self.skipped: Counter[str] = Counter()
        """Messages not replayed, by reason."""
        self.invalid: int = 0
        """Frames the session found invalid."""
        self.unreadable: list[tuple[int, str]] = []
        """The first unreadable lines of the capture, with the reason."""
        self.unreadable_count: int = 0
        """Every unreadable line of the capture, listed or not."""
        self._session = TrainingConsumerSession(
            # Read what the recorded server sent, whatever its size: the producer re-chunks it.
            max_frame_bytes=DEFAULT_MAX_MESSAGE_BYTES,
            labels=LabelBudget(DEFAULT_MAX_UNKNOWN_TYPES),
        )
        self._now = 0.0

    def feed(self, line: int, item: CapturedMessage | CaptureFormatError) -> list[BaseEnvelope]:
        """The envelopes a client delivers for one capture line, in order."""
        if isinstance(item, CaptureFormatError):
            self.unreadable_count += 1
            if len(self.unreadable) < _LISTED_UNREADABLE:
                self.unreadable.append((line, str(item)))
            return []
        if item.endpoint is not None and item.endpoint != TRAINING_PATH:
            self.skipped[f"{item.endpoint} record"] += 1
            return []
        # The session ages chunked messages by this clock: the capture's, never going back.
        self._now = max(self._now, capture_time(item) or 0.0)
        envelopes: list[BaseEnvelope] = []
        for event in self._session.receive(item.message, now=self._now):
            if isinstance(event, EnvelopeReceived):
                envelopes.append(event.envelope)
            elif isinstance(event, UnknownFrame):
                if is_invalid(event.envelope):
                    self.invalid += 1
                    self.skipped[f"invalid {event.envelope.type}"] += 1
                else:
                    self.skipped[f"unknown type {event.envelope.type}"] += 1
            elif isinstance(event, Established | IncompatibleVersion):
                self.skipped["connection_established (each client gets its own)"] += 1
            elif isinstance(event, PingReceived):
                self.skipped["ping (heartbeats are per connection)"] += 1
            elif isinstance(event, ProtocolViolation):
                self.invalid += 1
                self.skipped[f"refused: {event.label}"] += 1
            elif isinstance(event, ChunkRejected):
                self.skipped[f"chunk refused: {event.reason.value}"] += 1
            elif isinstance(event, ReassemblyExpired):
                self.skipped["chunked message expired"] += 1
        return envelopes

    def skip(self, reason: str) -> None:
        """Count one message not replayed, for ``reason``."""
        self.skipped[reason] += 1


# --- the server ---------------------------------------------------------------------------


def _only_training(connection: ServerConnection, request: Request) -> Response | None:
    if request.path.partition("?")[0] == TRAINING_PATH:
        return None
    return connection.respond(http.HTTPStatus.NOT_FOUND, f"only {TRAINING_PATH} is served\n")


class ReplayServer:
    """``async with ReplayServer(options) as server: await server.play(stop)``.

    Serves ``/ws/training`` on ``options.host``/``options.port`` (any other path gets HTTP 404)
    while :meth:`play` broadcasts the capture; leaving the block closes every connection
    (1001, going away).
    """

    def __init__(self, options: ReplayOptions) -> None:
        from juniper_cascor_protocol import __version__

        self.options = options
        self.hub: TrainingHub = TrainingHub(
            TrainingProducerSession(
                chunker=Chunker(options.max_frame_bytes),
                server_version=f"juniper-cascor-protocol replay {__version__}",
            )
        )
        """The connected clients and what was broadcast to them."""
        self.clients_served: int = 0
        """Clients that connected, over the whole replay."""
        self.passes_done: int = 0
        """Passes played to the end."""
        self.messages_sent: int = 0
        """Messages broadcast, over every pass."""
        self.position_s: float = 0.0
        """Capture seconds into the current pass."""
        self.playback: Playback = Playback()
        """The current pass's reading of the capture."""
        self.end: ReplayEnd = ReplayEnd.FINISHED
        """Why :meth:`play` stopped, once it has."""
        self._server: Server | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The port bound (known once the server has started)."""
        if self._port is None:
            raise RuntimeError("ReplayServer.port is known only once `async with` has started")
        return self._port

    @property
    def url(self) -> str:
        """The ``ws://`` URL of the endpoint served."""
        host = self.options.host
        shown = f"[{host}]" if ":" in host else host
        return f"ws://{shown}:{self.port}{TRAINING_PATH}"

    async def __aenter__(self) -> ReplayServer:
        try:
            self._server = await serve(
                self._serve_client,
                self.options.host,
                self.options.port,
                process_request=_only_training,
                **connection_settings(),
            )
        except OSError as error:
            raise ReplayError(
                f"cannot listen on {self.options.host} port {self.options.port}: "
                f"{error.strerror or error}"
            ) from None
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def play(self, stop: asyncio.Event) -> None:
        """Play every pass, or until ``stop`` is set.

        Raises:
            ReplayError: the capture cannot be opened or read as text.
        """
        if self.options.wait_for_client:
            while self.hub.subscribers == 0 and not stop.is_set():
                await _sleep_unless(stop, _WAIT_POLL_S)
        passes = self.options.passes
        while (passes is None or self.passes_done < passes) and not stop.is_set():
            sent = await self._play_pass(stop)
            if stop.is_set():
                break
            self.passes_done += 1
            if sent == 0:
                self.end = ReplayEnd.NOTHING_TO_REPLAY
                return
        if stop.is_set():
            self.end = ReplayEnd.INTERRUPTED

    async def _play_pass(self, stop: asyncio.Event) -> int:
        pacer, loop, sent = Pacer(self.options.speed), asyncio.get_running_loop(), 0
        playback = self.playback = Playback()
        start = loop.time()
        with _open_capture(self.options.capture) as stream:
            for number, item in _read_capture(self.options.capture, stream):
                if not isinstance(item, CaptureFormatError):
                    self.position_s = pacer.offset(capture_time(item))
                    delay = start + self.position_s - loop.time()
                    if delay > 0 and await _sleep_unless(stop, delay):
                        break
                for envelope in playback.feed(number, item):
                    try:
                        await self.hub.broadcast(type(envelope), envelope.data)
                    except ValueError:  # the producer's verdict: a type never broadcast
                        playback.skip(f"{envelope.type} (not broadcast)")
                    else:
                        sent += 1
                        self.messages_sent += 1
                # Let clients join and Ctrl-C through, even when nothing waits.
                await asyncio.sleep(0)
                if stop.is_set():
                    break
        return sent

    async def _serve_client(self, connection: ServerConnection) -> None:
        self.clients_served += 1
        await self.hub.serve(connection)

    def summary(self, *, interrupted: bool, duration_s: float) -> ReplaySummary:
        """What the replay did; ``interrupted`` when Ctrl-C ended :meth:`play` from outside."""
        hub = self.hub
        return ReplaySummary(
            capture=str(self.options.capture),
            url="" if self._port is None else self.url,
            end=ReplayEnd.INTERRUPTED if interrupted else self.end,
            passes=self.passes_done,
            messages=self.messages_sent,
            frames_by_type=Counter(hub.frames_by_type),
            frames=hub.frames_sent,
            deliveries=hub.deliveries,
            clients_served=self.clients_served,
            duration_s=duration_s,
            skipped=Counter(self.playback.skipped),
            invalid=self.playback.invalid,
            unreadable=list(self.playback.unreadable),
            unreadable_count=self.playback.unreadable_count,
        )

    def status(self) -> Text:
        """The live status line: the pass, where in the capture, what was sent, to how many."""
        line = Text(no_wrap=True, overflow="ellipsis")
        passes = "∞" if self.options.passes is None else str(self.options.passes)
        line.append(f"pass {self.passes_done + 1}/{passes}  ", style="dim")
        line.append(f"capture at {self.position_s:,.1f} s  ")
        line.append(f"{count_of(self.messages_sent, 'message')}  ")
        line.append(f"{count_of(self.hub.frames_sent, 'frame')}  ")
        line.append(f"{count_of(self.hub.subscribers, 'client')} connected")
        return line


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` or until ``stop`` is set; whether it was set."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True


@contextlib.contextmanager
def _open_capture(path: Path) -> Iterator[IO[bytes]]:
    try:
        stream = path.open("rb")
    except OSError as error:
        raise ReplayError(f"cannot read {path}: {error.strerror or error}") from None
    with stream:
        yield stream


def _read_capture(
    path: Path, stream: IO[bytes]
) -> Iterator[tuple[int, CapturedMessage | CaptureFormatError]]:
    """The capture's lines, read as ``validate`` reads them (gzip, UTF-16, a BOM)."""
    try:
        # Every message the session reads, whatever its size: the producer re-chunks it.
        yield from read_capture_stream(stream, max_frame_bytes=DEFAULT_MAX_MESSAGE_BYTES)
    except CaptureInputError as error:
        raise ReplayError(f"{path}: {error}") from None


# --- the summary --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplaySummary:
    """What a replay sent, to whom, and what it skipped."""

    capture: str
    url: str
    end: ReplayEnd
    passes: int
    """Passes played to the end."""
    messages: int
    """Messages broadcast (a chunked one counts once)."""
    frames_by_type: Counter[str]
    frames: int
    """Wire frames broadcast (each chunk counts)."""
    deliveries: int
    """Frames sent, summed over clients."""
    clients_served: int
    duration_s: float
    skipped: Counter[str]
    """Messages of the last pass not replayed, by reason."""
    invalid: int
    unreadable: list[tuple[int, str]]
    unreadable_count: int

    @property
    def problems(self) -> list[str]:
        """What makes the replay exit with 1: capture lines or frames that could not be read."""
        found = []
        if self.unreadable_count:
            found.append(count_of(self.unreadable_count, "unreadable capture line"))
        if self.invalid:
            found.append(f"{count_of(self.invalid, 'invalid frame')} not replayed")
        return found

    def to_json(self) -> dict[str, Any]:
        """The summary as a JSON-compatible dict (what ``replay --json`` prints)."""
        return {
            "capture": self.capture,
            "url": self.url,
            "ended": self.end.value,
            "passes": self.passes,
            "messages": self.messages,
            "frames": self.frames,
            "frames_by_type": dict(sorted(self.frames_by_type.items())),
            "deliveries": self.deliveries,
            "clients_served": self.clients_served,
            "duration_s": round(self.duration_s, 3),
            "skipped": dict(sorted(self.skipped.items())),
            "unreadable": [{"line": n, "reason": r} for n, r in self.unreadable],
            "unreadable_count": self.unreadable_count,
            "problems": self.problems,
        }

    def render(self) -> Group:
        """The summary for people."""
        ended = {
            ReplayEnd.FINISHED: "every pass played",
            ReplayEnd.INTERRUPTED: "interrupted (Ctrl-C)",
            ReplayEnd.NOTHING_TO_REPLAY: "the capture holds no /ws/training message to replay",
        }[self.end]
        parts: list[Any] = [
            Text(
                f"replayed {self.capture} on {self.url}: "
                f"{count_of(self.passes, 'pass', 'passes')}, "
                f"{count_of(self.messages, 'message')} in {count_of(self.frames, 'frame')} to "
                f"{count_of(self.clients_served, 'client')} in {self.duration_s:.1f} s"
            ),
            Text(f"ended: {ended}"),
        ]
        if self.frames_by_type:
            parts.append(count_table(self.frames_by_type, ("type", "frames")))
        if self.skipped:
            parts.append(Text("not replayed (last pass):"))
            parts.append(count_table(self.skipped))
        for number, reason in self.unreadable:
            parts.append(Text(f"  line {number}: {reason}"))
        if self.unreadable_count > len(self.unreadable):
            parts.append(Text(f"  ... {self.unreadable_count - len(self.unreadable):,} more"))
        problems = self.problems
        parts.append(Text("problems: " + ("; ".join(problems) if problems else "none")))
        return Group(*parts)


# --- the command --------------------------------------------------------------------------


def replay_command(
    capture: str,
    *,
    host: str | None = None,
    port: int | None = None,
    speed: float | None = 1.0,
    passes: int | None = 1,
    wait_for_client: bool = False,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    as_json: bool = False,
    show_status: bool = True,
) -> int:
    """``juniper-cascor-protocol replay``: serve, print the summary, return the exit code.

    ``host`` and ``port`` default to 127.0.0.1 and :data:`DEFAULT_PORT`. The address served
    is printed on standard error as soon as it listens; the summary goes to standard output.
    """
    from juniper_cascor_protocol.cli import EXIT_INTERRUPTED, EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE

    try:
        options = ReplayOptions(
            capture=Path(capture),
            host=LOOPBACK_HOST if host is None else host,
            port=DEFAULT_PORT if port is None else port,
            speed=speed,
            passes=passes,
            wait_for_client=wait_for_client,
            max_frame_bytes=max_frame_bytes,
        )
    except ValueError as error:
        print_error("replay", str(error))
        return EXIT_USAGE
    if not options.capture.is_file():
        print_error("replay", f"{capture}: no such file")
        return EXIT_USAGE
    display = status_display(Console(stderr=True, highlight=False), enabled=show_status)
    server = ReplayServer(options)
    started = time.monotonic()

    async def run(stop: asyncio.Event) -> None:
        async with server:
            waiting = ", once a client has joined" if wait_for_client else ""
            print(f"serving {server.url} from {capture}{waiting}; Ctrl-C stops", file=sys.stderr)
            sys.stderr.flush()
            if display is None:
                await server.play(stop)
                return
            with display:
                display.update(server.status(), refresh=True)
                ticker = asyncio.create_task(_redraw_forever(display, server))
                try:
                    await server.play(stop)
                finally:
                    ticker.cancel()

    try:
        interrupted = run_until_interrupted(run)
    except ReplayError as error:
        print_error("replay", str(error))
        return EXIT_USAGE
    summary = server.summary(interrupted=interrupted, duration_s=time.monotonic() - started)
    if as_json:
        print(json.dumps(summary.to_json(), indent=2, sort_keys=True))
    else:
        Console(highlight=False, soft_wrap=True).print(summary.render())
    if interrupted:
        print_error("replay", "interrupted")
        return EXIT_INTERRUPTED
    if summary.end is ReplayEnd.NOTHING_TO_REPLAY:
        print_error("replay", f"{capture} holds no /ws/training message to replay")
        return EXIT_USAGE
    return EXIT_PROBLEMS if summary.problems else EXIT_OK


async def _redraw_forever(live: Live, server: ReplayServer) -> None:
    while True:
        await asyncio.sleep(STATUS_INTERVAL_S)
        live.update(server.status(), refresh=True)
