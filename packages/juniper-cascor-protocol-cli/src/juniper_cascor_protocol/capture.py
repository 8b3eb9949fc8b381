"""Audit a capture of ``/ws/training`` and ``/ws/control`` traffic with the library's own verdicts.

A capture line is a record written by ``record`` (its receive time, endpoint and the message:
see :mod:`.capture_file`) or the plain text of one frame. Every server frame goes through a
:class:`TrainingConsumerSession`, as a client receives it: the session validates it, checks its
``seq`` (so a frame of an unknown type still takes its number), reseeds on ``initial_metrics``,
reassembles ``chunked_message`` frames (aged by the records' receive times), answers heartbeats
and refuses a frame over ``max_frame_bytes``. A client's ``/ws/control`` request
(``{"command": ...}``, no ``type`` or the ``type`` ``"command"``) goes through a
:class:`ControlServerSession`, as the server reads it. The audit only adds what a report needs:
the real name of each unknown type (the session's labels come from a budget of this audit's own,
never the process-wide one), a reason for every invalid frame, and where each ``seq`` anomaly
falls.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from pydantic import ValidationError

from juniper_cascor_protocol.capture_file import CaptureFormatError, parse_capture_line
from juniper_cascor_protocol.envelope import (
    KNOWN_ENVELOPES,
    ChunkRejected,
    ControlServerSession,
    EnvelopeReceived,
    Established,
    IncompatibleVersion,
    LabelBudget,
    PingReceived,
    ProtocolViolation,
    RequestRejected,
    Reseeded,
    SeqAnomaly,
    TrainingConsumerSession,
    UnknownFrame,
    describe_validation_error,
)
from juniper_cascor_protocol.envelope.chunking import DEFAULT_MAX_FRAME_BYTES
from juniper_cascor_protocol.envelope.control_session import (
    COMMAND_REQUEST_TYPE,
    DEFAULT_MAX_REQUEST_BYTES,
    CommandReceived,
)
from juniper_cascor_protocol.frame_verdict import INVALID_LABELS
from juniper_cascor_protocol.wording import count_of

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "DEFAULT_MAX_LISTED",
    "DEFAULT_MAX_UNKNOWN_TYPES",
    "INVALID_ORIGINAL",
    "OTHER_UNKNOWN_TYPES",
    "CaptureAudit",
    "CaptureReport",
    "InvalidFrame",
    "SeqProblem",
    "audit_capture",
    "explain_invalid",
]

INVALID_ORIGINAL: Final = "invalid_original"
"""A chunked message rebuilt into a known ``type`` whose payload is not valid."""

DEFAULT_MAX_LISTED: Final = 50
"""How many invalid frames and ``seq`` events a report lists in detail; all are counted."""

DEFAULT_MAX_UNKNOWN_TYPES: Final = 1000
"""Distinct unknown ``type`` names a report names; frames of any further name are counted."""

OTHER_UNKNOWN_TYPES: Final = "(further names)"
"""The row counting unknown frames whose name came after ``max_unknown_types`` others."""

_NAME_SHOWN_CHARS: Final = 80
_HEARTBEAT: Final = "ping"


@dataclass(frozen=True, slots=True)
class InvalidFrame:
    """A frame of the capture that a consumer would not take, and why."""

    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class SeqProblem:
    """Where the ``seq`` stream changed course: ``gap``, ``duplicate``, ``reset`` or ``reseeded``.

    A gap misses ``missing_first``..``missing_last``; a reseed (``initial_metrics``) sets the
    next expected number to ``seq + 1`` and counts ``missed`` frames sent while away.
    """

    line: int
    event: str
    seq: int | None
    expected: int | None = None
    missing_first: int | None = None
    missing_last: int | None = None
    missed: int | None = None
    received_at: float | None = None


@dataclass
class CaptureReport:
    """What a capture held. ``invalid`` and ``seq_events`` list at most ``max_listed`` each.

    Every non-blank line is counted once: in ``per_type`` (valid frames by ``type``, heartbeats
    as ``ping``), ``requests`` (valid ``/ws/control`` requests by command), ``unknown_types``
    (by their real name) or ``invalid_count``.
    """

    max_listed: int = DEFAULT_MAX_LISTED
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    frames: int = 0
    per_type: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    unknown_types: Counter[str] = field(default_factory=Counter)
    invalid_count: int = 0
    invalid_per_type: Counter[str] = field(default_factory=Counter)
    """Invalid frames by the ``type`` they claimed (a reserved label when they had none)."""
    invalid: list[InvalidFrame] = field(default_factory=list)
    gaps: int = 0
    missing: int = 0
    duplicates: int = 0
    resets: int = 0
    reseeds: int = 0
    missed_while_away: int = 0
    seq_events: list[SeqProblem] = field(default_factory=list)
    reassembled: Counter[str] = field(default_factory=Counter)
    """Originals rebuilt from ``chunked_message`` frames, by their ``type``."""
    chunk_rejections: Counter[str] = field(default_factory=Counter)
    """Chunk frames the reassembler refused, by reason, and ``INVALID_ORIGINAL`` rebuilds."""
    incomplete_chunked: int = 0
    """Chunked originals still missing chunks at the end, or dropped by age or room."""
    interrupted_at_line: int | None = None
    """Set when the audit stopped before the end of the capture (Ctrl-C): a partial report."""

    @property
    def clean(self) -> bool:
        """No invalid frame, seq or chunk problem (unknown types alone are not problems)."""
        return self.invalid_count == 0 and not (
            self.gaps
            or self.duplicates
            or self.resets
            or self.chunk_rejections
            or self.incomplete_chunked
        )

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-compatible dict (what ``validate --json`` prints)."""
        return {
            "frames": self.frames,
            "complete": self.interrupted_at_line is None,
            "max_frame_bytes": self.max_frame_bytes,
            "per_type": dict(sorted(self.per_type.items())),
            "requests": dict(sorted(self.requests.items())),
            "unknown_types": dict(sorted(self.unknown_types.items())),
            "invalid_count": self.invalid_count,
            "invalid_per_type": dict(sorted(self.invalid_per_type.items())),
            "invalid": [{"line": f.line, "reason": f.reason} for f in self.invalid],
            "seq": {
                "gaps": self.gaps,
                "missing": self.missing,
                "duplicates": self.duplicates,
                "resets": self.resets,
                "reseeds": self.reseeds,
                "missed_while_away": self.missed_while_away,
                "timeline": [
                    {k: v for k, v in asdict(p).items() if v is not None} for p in self.seq_events
                ],
            },
            "chunked": {
                "reassembled": dict(sorted(self.reassembled.items())),
                "rejected": dict(sorted(self.chunk_rejections.items())),
                "incomplete": self.incomplete_chunked,
            },
            "clean": self.clean,
        }

    def render(self, *, width: int = 100) -> str:
        """The report as text for people: tables of types, invalid frames and the seq timeline."""
        from rich.console import Console

        buffer = io.StringIO()
        console = Console(file=buffer, width=width, no_color=True, highlight=False)
        for part in self._renderables():
            console.print(part)
        return "\n".join(line.rstrip() for line in buffer.getvalue().rstrip("\n").splitlines())

    def _renderables(self) -> list[Any]:
        from rich.table import Table
        from rich.text import Text

        parts: list[Any] = []
        if self.interrupted_at_line is not None:
            parts.append(Text(f"interrupted at line {self.interrupted_at_line}: a partial report"))
        parts.append(Text(count_of(self.frames, "frame")))
        kinds = sorted(set(self.per_type) | set(self.invalid_per_type))
        if kinds or self.requests:
            table = Table(box=None, show_edge=False, pad_edge=False)
            table.add_column("type")
            table.add_column("valid", justify="right")
            table.add_column("invalid", justify="right")
            table.add_column("reassembled", justify="right")
            for kind in kinds:
                table.add_row(
                    Text(kind),
                    str(self.per_type[kind]),
                    str(self.invalid_per_type[kind]),
                    str(self.reassembled[kind]),
                )
            for command in sorted(self.requests):
                table.add_row(Text(f"request {command}"), str(self.requests[command]), "0", "0")
            parts.append(table)
        if self.unknown_types:
            table = Table(box=None, show_edge=False, pad_edge=False)
            table.add_column(f"unknown type ({count_of(len(self.unknown_types), 'name')})")
            table.add_column("frames", justify="right")
            for name, count in sorted(self.unknown_types.items()):
                table.add_row(Text(name), str(count))
            parts.append(table)
        parts.append(Text(f"invalid frames: {self.invalid_count}"))
        parts += [Text(f"  line {f.line}: {f.reason}") for f in self.invalid]
        if self.invalid_count > len(self.invalid):
            parts.append(Text(f"  ... {self.invalid_count - len(self.invalid)} more not listed"))
        parts.append(
            Text(
                f"seq: {count_of(self.gaps, 'gap')} "
                f"({count_of(self.missing, 'frame')} missing), "
                f"{count_of(self.duplicates, 'duplicate')}, {count_of(self.resets, 'reset')}, "
                f"{count_of(self.reseeds, 'reseed')} "
                f"({count_of(self.missed_while_away, 'frame')} sent while away)"
            )
        )
        if self.seq_events:
            parts.append(self._timeline())
        rebuilt = ", ".join(f"{name} {n}" for name, n in sorted(self.reassembled.items()))
        refused = ", ".join(f"{name} {n}" for name, n in sorted(self.chunk_rejections.items()))
        parts.append(
            Text(
                f"chunked: {sum(self.reassembled.values())} reassembled"
                + (f" ({rebuilt})" if rebuilt else "")
                + f", {count_of(sum(self.chunk_rejections.values()), 'chunk frame')} rejected"
                + (f" ({refused})" if refused else "")
                + f", {self.incomplete_chunked} incomplete"
            )
        )
        return parts

    def _timeline(self) -> Any:
        from rich.table import Table

        table = Table(box=None, show_edge=False, pad_edge=False)
        table.add_column("line", justify="right")
        with_times = any(p.received_at is not None for p in self.seq_events)
        if with_times:
            table.add_column("received", justify="right")
        table.add_column("seq event")
        table.add_column("seq", justify="right")
        table.add_column("detail")
        for p in self.seq_events:
            row = [str(p.line)]
            if with_times:
                row.append("" if p.received_at is None else f"{p.received_at:.3f}")
            row += [p.event, "" if p.seq is None else str(p.seq), _seq_detail(p)]
            table.add_row(*row)
        return table


def _seq_detail(p: SeqProblem) -> str:
    if p.event == "gap" and p.missing_first is not None and p.missing_last is not None:
        count = p.missing_last - p.missing_first + 1
        return f"missing {p.missing_first}..{p.missing_last} ({count})"
    if p.event == "reseeded":
        return f"next {p.seq + 1 if p.seq is not None else '?'}, {p.missed} sent while away"
    if p.expected is not None:
        return f"expected {p.expected}"
    return ""


def explain_invalid(text: str | bytes) -> str:
    """Why ``text`` is not a valid frame of a known ``type``, naming each field that failed.

    Validates as the consumers do (strictly, from JSON), so ``"timestamp": "1.5"`` is named.
    """
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError) as error:
        return f"malformed JSON: {error}"
    if not isinstance(frame, dict):
        return f"not a JSON object: got {_json_kind(frame)}"
    if "type" not in frame:
        return "no 'type' key"
    kind = frame["type"]
    if not isinstance(kind, str) or not kind:
        return f"'type' must be a non-empty string, got {_json_kind(kind)}"
    model = KNOWN_ENVELOPES.get(kind)
    if model is None:
        return f"unknown type {_cut(kind)!r}"
    try:
        model.model_validate_json(text, strict=True)
    except ValidationError as error:
        problems = [p for p in describe_validation_error(error) if "Invalid JSON" not in p]
        if problems:
            return f"invalid {kind!r} frame: " + "; ".join(problems)
        try:  # text Pydantic's parser refuses (a lone surrogate): judge the decoded frame
            model.model_validate(frame, strict=True)
        except ValidationError as dict_error:
            return f"invalid {kind!r} frame: " + "; ".join(describe_validation_error(dict_error))
    except RecursionError:
        return f"invalid {kind!r} frame: nested too deeply"
    return f"invalid {kind!r} frame: no field-level reason found"


def _json_kind(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _cut(name: str) -> str:
    return name if len(name) <= _NAME_SHOWN_CHARS else name[:_NAME_SHOWN_CHARS] + "…"


def _raw_type(text: str) -> object:
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return frame.get("type") if isinstance(frame, dict) else None


def _is_request(text: str) -> bool:
    """Whether ``text`` is a client's ``/ws/control`` request rather than a server's frame."""
    if '"command"' not in text:  # cheap: most frames are not requests
        return False
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return (
        isinstance(frame, dict)
        and "command" in frame
        and frame.get("type", COMMAND_REQUEST_TYPE) == COMMAND_REQUEST_TYPE
    )


class CaptureAudit:
    """An audit in progress: feed the capture's frames in order, then call :meth:`finish`.

    Args:
        max_listed: invalid frames and seq events listed in detail (all are counted).
        max_frame_bytes: the longest server frame read, in UTF-8 bytes (default: the 1 MiB a
            client reads); a client's request is read up to the server's own 64 KiB.
        max_unknown_types: distinct unknown ``type`` names reported by name.
    """

    def __init__(
        self,
        *,
        max_listed: int = DEFAULT_MAX_LISTED,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_unknown_types: int = DEFAULT_MAX_UNKNOWN_TYPES,
    ) -> None:
        self.report: CaptureReport = CaptureReport(
            max_listed=max_listed, max_frame_bytes=max_frame_bytes
        )
        """The report so far; complete once :meth:`finish` has added the session's totals."""
        self._max_unknown_types = max_unknown_types
        # This audit's own budget, as large as the report: never the process-wide 16 labels.
        self._training = TrainingConsumerSession(
            max_frame_bytes=max_frame_bytes, labels=LabelBudget(max_unknown_types)
        )
        self._control = ControlServerSession(max_request_bytes=DEFAULT_MAX_REQUEST_BYTES)
        self._last_line = 0

    @property
    def last_line(self) -> int:
        """The number of the last line fed."""
        return self._last_line

    def feed_line(self, number: int, raw: bytes) -> None:
        """One line of a capture: a record of ``record``, or a frame's text (blank: skipped)."""
        self._last_line = number
        try:
            captured = parse_capture_line(raw)
        except CaptureFormatError as error:
            self._invalid(number, "_capture_line", str(error))
            return
        if captured is not None:
            self.feed_text(number, captured.message, received_at=captured.received_at)

    def feed_oversized(self, number: int, size: int) -> None:
        """A line too long to read: counted as a frame over the limit, by its length."""
        self._last_line = number
        self._invalid(
            number,
            "_oversized",
            f"line of {size} bytes: a frame over max_frame_bytes={self.report.max_frame_bytes} "
            "(not read)",
        )

    def feed_text(
        self, number: int, message: str | bytes, *, received_at: float | None = None
    ) -> None:
        """One received message: a ``str`` for a text frame, ``bytes`` for a binary one."""
        self._last_line = number
        if isinstance(message, str) and _is_request(message):
            self._request(number, message, received_at)
            return
        now = 0.0 if received_at is None else received_at
        events = self._training.receive(message, now=now)
        wire_counted = False
        for event in events:
            if isinstance(event, EnvelopeReceived):
                if event.reassembled:
                    self.report.reassembled[event.envelope.type] += 1
                else:
                    self.report.per_type[event.envelope.type] += 1
                    wire_counted = True
            elif isinstance(event, UnknownFrame):
                if event.reassembled:
                    self._reassembled_unknown(event)
                else:
                    self._unknown(number, event, message)
                    wire_counted = True
            elif isinstance(event, SeqAnomaly):
                obs = event.observation
                self._seq_event(
                    SeqProblem(
                        line=number,
                        event=obs.event.value,
                        seq=obs.seq,
                        expected=obs.expected,
                        missing_first=obs.missing_first,
                        missing_last=obs.missing_last,
                        received_at=received_at,
                    )
                )
            elif isinstance(event, Reseeded):
                self._seq_event(
                    SeqProblem(
                        line=number,
                        event="reseeded",
                        seq=event.current_seq,
                        missed=event.missed,
                        received_at=received_at,
                    )
                )
            elif isinstance(event, ChunkRejected):
                self.report.chunk_rejections[event.reason.value] += 1
            elif isinstance(event, ProtocolViolation):
                self._invalid(number, f"_{event.label}", event.reason)
                wire_counted = True
            elif isinstance(event, PingReceived):
                self.report.per_type[_HEARTBEAT] += 1
                wire_counted = True
            elif isinstance(event, Established):
                self.report.per_type["connection_established"] += 1
                wire_counted = True
            elif isinstance(event, IncompatibleVersion):
                self._invalid(
                    number,
                    "connection_established",
                    f"the server announces protocol version {event.announced!r}; a client "
                    f"reading {', '.join(event.supported)} leaves",
                )
                wire_counted = True
        if not wire_counted:
            # Taken by the reassembler (pending, completing, duplicate or refused chunk).
            self.report.per_type["chunked_message"] += 1

    def finish(self) -> CaptureReport:
        """The report, with the session's totals (seq, chunked messages left incomplete)."""
        stats = self._training.stats()
        report = self.report
        # Each frame lands in exactly one of these, so an interrupted audit still adds up.
        report.frames = (
            report.invalid_count
            + sum(report.per_type.values())
            + sum(report.requests.values())
            + sum(report.unknown_types.values())
        )
        report.gaps, report.missing = stats.seq.gaps, stats.seq.missing
        report.duplicates, report.resets = stats.seq.duplicates, stats.seq.resets
        report.reseeds, report.missed_while_away = stats.reseeds, stats.missed_while_away
        chunking = stats.reassembly
        report.incomplete_chunked = chunking.in_flight + chunking.expired + chunking.evicted
        return report

    def _request(self, number: int, text: str, received_at: float | None) -> None:
        event = self._control.receive(text, now=0.0 if received_at is None else received_at)
        if isinstance(event, CommandReceived):
            self.report.requests[str(event.name)] += 1
        elif isinstance(event, RequestRejected):
            self._invalid(
                number, "request", f"request refused ({event.code}): " + "; ".join(event.errors)
            )
        else:
            self.report.requests["pong"] += 1

    def _unknown(self, number: int, event: UnknownFrame, message: str | bytes) -> None:
        label = event.envelope.type
        if label in INVALID_LABELS:
            self._invalid(number, label, explain_invalid(message))
            return
        # The session's label is cut and sanitized; the report names the type as it was sent.
        raw = _raw_type(message) if isinstance(message, str) else None
        self._count_unknown(_cut(raw) if isinstance(raw, str) and raw else label)

    def _count_unknown(self, name: str) -> None:
        names = self.report.unknown_types
        if name in names or len(names) < self._max_unknown_types:
            names[name] += 1
        else:
            names[OTHER_UNKNOWN_TYPES] += 1

    def _reassembled_unknown(self, event: UnknownFrame) -> None:
        label = event.envelope.type
        self.report.reassembled[label] += 1
        if label in KNOWN_ENVELOPES:
            self.report.chunk_rejections[INVALID_ORIGINAL] += 1

    def _seq_event(self, event: SeqProblem) -> None:
        if len(self.report.seq_events) < self.report.max_listed:
            self.report.seq_events.append(event)

    def _invalid(self, number: int, kind: str, reason: str) -> None:
        self.report.invalid_count += 1
        self.report.invalid_per_type[kind] += 1
        if len(self.report.invalid) < self.report.max_listed:
            self.report.invalid.append(InvalidFrame(number, reason))


def audit_capture(
    lines: Iterable[bytes],
    *,
    max_listed: int = DEFAULT_MAX_LISTED,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    max_unknown_types: int = DEFAULT_MAX_UNKNOWN_TYPES,
    on_line: Callable[[int], None] | None = None,
) -> CaptureReport:
    """Audit a plain JSON-lines capture, one frame a line; ``on_line(n_bytes)`` reports progress."""
    audit = CaptureAudit(
        max_listed=max_listed, max_frame_bytes=max_frame_bytes, max_unknown_types=max_unknown_types
    )
    for number, line in enumerate(lines, start=1):
        if on_line is not None:
            on_line(len(line))
        audit.feed_line(number, line)
    return audit.finish()
