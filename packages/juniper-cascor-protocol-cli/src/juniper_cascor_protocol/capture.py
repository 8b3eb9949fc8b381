"""Audit a JSON-lines capture of ``/ws/training`` or ``/ws/control`` frames.

Each non-blank line is one frame as received from the wire. Every line is validated with
``validate_envelope_json`` (the consumers' own path); a line that does not become a typed
envelope is explained once more on the slow path, so the reason costs nothing on good frames.
``chunked_message`` frames go through a ``Reassembler`` as a client's would, so an original that
never completes, a rejected chunk, or a rebuilt original that is not a valid envelope is reported.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import ValidationError

from juniper_cascor_protocol.envelope import (
    KNOWN_ENVELOPES,
    BaseEnvelope,
    Reassembler,
    ReassemblyStatus,
    UnknownEnvelope,
    validate_envelope_json,
)
from juniper_cascor_protocol.envelope.errors import describe_validation_error
from juniper_cascor_protocol.envelope.labels import (
    INVALID_TYPE_LABEL,
    MALFORMED_JSON_LABEL,
    MISSING_TYPE_LABEL,
    NOT_AN_OBJECT_LABEL,
)
from juniper_cascor_protocol.envelope.sequence import SeqEvent, SequenceTracker

__all__ = [
    "DEFAULT_MAX_LISTED",
    "INVALID_ORIGINAL",
    "CaptureReport",
    "InvalidFrame",
    "SeqProblem",
    "audit_capture",
]

_SEQ_PROBLEMS = frozenset({SeqEvent.GAP, SeqEvent.DUPLICATE, SeqEvent.RESET})
# Labels an invalid frame can carry: its known type name, or a reserved label for a frame with
# no usable type at all. Every other label of an UnknownEnvelope is an unknown type.
_MAY_BE_INVALID = frozenset(KNOWN_ENVELOPES) | {
    MISSING_TYPE_LABEL,
    INVALID_TYPE_LABEL,
    MALFORMED_JSON_LABEL,
    NOT_AN_OBJECT_LABEL,
}

INVALID_ORIGINAL = "invalid_original"
"""A chunked message rebuilt into a known ``type`` whose payload is not valid."""

DEFAULT_MAX_LISTED = 50
"""How many invalid frames and seq problems a report lists in detail; all are counted."""


@dataclass(frozen=True, slots=True)
class InvalidFrame:
    """A line of the capture that is not a valid frame, and why."""

    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class SeqProblem:
    """A gap (``missing_first``..``missing_last`` never seen), duplicate or reset at ``line``."""

    line: int
    event: str
    seq: int | None
    missing_first: int | None = None
    missing_last: int | None = None


@dataclass
class CaptureReport:
    """What a capture held. ``invalid`` and ``seq_problems`` list at most ``max_listed`` each."""

    max_listed: int = DEFAULT_MAX_LISTED
    frames: int = 0
    per_type: Counter[str] = field(default_factory=Counter)
    unknown_labels: Counter[str] = field(default_factory=Counter)
    invalid_count: int = 0
    invalid: list[InvalidFrame] = field(default_factory=list)
    gaps: int = 0
    missing: int = 0
    duplicates: int = 0
    resets: int = 0
    seq_problems: list[SeqProblem] = field(default_factory=list)
    reassembled: Counter[str] = field(default_factory=Counter)
    """Originals rebuilt from ``chunked_message`` frames, by their ``type``."""
    chunk_rejections: Counter[str] = field(default_factory=Counter)
    """Chunk frames the reassembler refused, by reason, and ``INVALID_ORIGINAL`` rebuilds."""
    incomplete_chunked: int = 0
    """Chunked originals still missing chunks at the end, or dropped by age or room."""

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
            "per_type": dict(sorted(self.per_type.items())),
            "unknown_labels": dict(sorted(self.unknown_labels.items())),
            "invalid_count": self.invalid_count,
            "invalid": [{"line": f.line, "reason": f.reason} for f in self.invalid],
            "seq": {
                "gaps": self.gaps,
                "missing": self.missing,
                "duplicates": self.duplicates,
                "resets": self.resets,
                "problems": [
                    {k: v for k, v in asdict(p).items() if v is not None} for p in self.seq_problems
                ],
            },
            "chunked": {
                "reassembled": dict(sorted(self.reassembled.items())),
                "rejected": dict(sorted(self.chunk_rejections.items())),
                "incomplete": self.incomplete_chunked,
            },
            "clean": self.clean,
        }

    def render(self) -> str:
        """The report as text for people, one finding a line."""
        lines = [f"{self.frames} frames"]
        lines += [f"  {name:<24} {count}" for name, count in sorted(self.per_type.items())]
        if self.unknown_labels:
            lines.append("unknown types (bounded labels):")
            lines += [f"  {name:<24} {n}" for name, n in sorted(self.unknown_labels.items())]
        lines.append(f"invalid frames: {self.invalid_count}")
        lines += [f"  line {f.line}: {f.reason}" for f in self.invalid]
        if self.invalid_count > len(self.invalid):
            lines.append(f"  ... {self.invalid_count - len(self.invalid)} more not listed")
        lines.append(
            f"seq: {self.gaps} gaps ({self.missing} frames missing), "
            f"{self.duplicates} duplicates, {self.resets} resets"
        )
        for p in self.seq_problems:
            where = f"  line {p.line}: {p.event} at seq {p.seq}"
            if p.missing_first is not None:
                where += f", missing {p.missing_first}..{p.missing_last}"
            lines.append(where)
        rebuilt = ", ".join(f"{name} {n}" for name, n in sorted(self.reassembled.items()))
        refused = ", ".join(f"{name} {n}" for name, n in sorted(self.chunk_rejections.items()))
        lines.append(
            f"chunked: {sum(self.reassembled.values())} reassembled"
            + (f" ({rebuilt})" if rebuilt else "")
            + f", {sum(self.chunk_rejections.values())} chunk frames rejected"
            + (f" ({refused})" if refused else "")
            + f", {self.incomplete_chunked} incomplete"
        )
        return "\n".join(lines)


def explain_invalid(raw: bytes) -> str | None:
    """Why ``raw`` did not validate as a known envelope, or None if it is merely an unknown type."""
    try:
        frame = json.loads(raw)
    except (ValueError, RecursionError) as error:
        return f"malformed JSON: {error}"
    if not isinstance(frame, dict):
        return f"not a JSON object: got {type(frame).__name__}"
    kind = frame.get("type")
    if not isinstance(kind, str):
        return "missing or non-string 'type'"
    model = KNOWN_ENVELOPES.get(kind)
    if model is None:
        return None
    try:
        model.model_validate(frame)
    except ValidationError as error:
        return f"invalid {kind!r} frame: " + "; ".join(describe_validation_error(error))
    except RecursionError:
        return f"invalid {kind!r} frame: nested too deeply"
    return f"invalid {kind!r} frame"


def audit_capture(
    lines: Iterable[bytes],
    *,
    max_listed: int = DEFAULT_MAX_LISTED,
    on_line: Callable[[int], None] | None = None,
) -> CaptureReport:
    """Validate every frame of a JSON-lines capture; ``on_line(bytes_read)`` reports progress."""
    report = CaptureReport(max_listed=max_listed)
    tracker = SequenceTracker()
    reassembler = Reassembler()
    for number, line in enumerate(lines, start=1):
        if on_line is not None:
            on_line(len(line))
        raw = line.strip()
        if not raw:
            continue
        report.frames += 1
        envelope = validate_envelope_json(raw)
        if isinstance(envelope, UnknownEnvelope):
            # Any other label names an unknown type: there is no reason to look for.
            reason = explain_invalid(raw) if envelope.type in _MAY_BE_INVALID else None
            if reason is None:
                report.unknown_labels[envelope.type] += 1
            else:
                report.invalid_count += 1
                if len(report.invalid) < max_listed:
                    report.invalid.append(InvalidFrame(number, reason))
            continue
        report.per_type[envelope.type] += 1
        _reassemble(report, reassembler, envelope)
        observation = tracker.observe(envelope)
        if observation.event in _SEQ_PROBLEMS and len(report.seq_problems) < max_listed:
            report.seq_problems.append(
                SeqProblem(
                    line=number,
                    event=observation.event.value,
                    seq=observation.seq,
                    missing_first=observation.missing_first,
                    missing_last=observation.missing_last,
                )
            )
    stats = tracker.stats()
    report.gaps, report.missing = stats.gaps, stats.missing
    report.duplicates, report.resets = stats.duplicates, stats.resets
    chunking = reassembler.stats()
    report.incomplete_chunked = chunking.in_flight + chunking.expired + chunking.evicted
    return report


def _reassemble(report: CaptureReport, reassembler: Reassembler, envelope: BaseEnvelope) -> None:
    outcome = reassembler.feed(envelope)
    if outcome.status is ReassemblyStatus.REJECTED and outcome.reason is not None:
        report.chunk_rejections[outcome.reason.value] += 1
    elif outcome.status is ReassemblyStatus.COMPLETE and outcome.envelope is not None:
        original = outcome.envelope
        report.reassembled[original.type] += 1
        if isinstance(original, UnknownEnvelope) and original.type in KNOWN_ENVELOPES:
            report.chunk_rejections[INVALID_ORIGINAL] += 1
