"""The summary of one demo run: what crossed each endpoint, how fast, and what went wrong."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["DemoReport"]


@dataclass(frozen=True, slots=True)
class DemoReport:
    """What :func:`~juniper_cascor_protocol.demo.run_demo` observed.

    Counts are taken on both ends and compared; every disagreement, gap, rejected frame, failed
    check or timeout is one line in ``problems``, which is empty on a clean run.
    """

    frames: int
    """Broadcast frames requested (``DemoOptions.frames``)."""
    clients: int
    tensor_mb: float
    """Size of each task's input tensor (``DemoOptions.tensor_mb``)."""
    duration_s: float
    """The whole run, connections and shutdown included."""
    broadcast_s: float
    """The ``/ws/training`` phase: first broadcast until every client had the last frame."""
    tensor_s: float
    """The ``/ws/v1/workers`` phase: first ``task_assign`` until the last ``result_ack``."""
    frames_by_type: dict[str, int]
    """Wire frames broadcast on ``/ws/training``, by ``type`` (each counted once)."""
    frames_received: int
    """Broadcast frames received, summed over the clients."""
    broadcast_bytes: int
    """UTF-8 bytes of the broadcast frames (each counted once)."""
    chunked_reassembled: int
    """Chunked originals rebuilt equal to what was sent, summed over the clients."""
    seq_gaps: int
    seq_missing: int
    seq_duplicates: int
    control_responses: dict[str, int]
    """``/ws/control`` responses by ``code`` (``success`` for successful commands)."""
    tasks: int
    """Worker tasks acknowledged as accepted."""
    tensors_sent: int
    """Binary tensor frames, both directions."""
    tensor_bytes: int
    """Bytes of the binary tensor frames, both directions."""
    problems: list[str] = field(default_factory=list)

    @property
    def frames_sent(self) -> int:
        return sum(self.frames_by_type.values())

    @property
    def frames_per_s(self) -> float:
        """Broadcast frames delivered per second, over all clients."""
        return self.frames_received / self.broadcast_s if self.broadcast_s > 0 else 0.0

    @property
    def tensor_mb_per_s(self) -> float:
        """Tensor megabytes (10**6 bytes) moved per second, both directions."""
        return self.tensor_bytes / 1e6 / self.tensor_s if self.tensor_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """Every field and rate as JSON-compatible values."""
        out = asdict(self)
        out["frames_sent"] = self.frames_sent
        out["frames_per_s"] = round(self.frames_per_s, 1)
        out["tensor_mb_per_s"] = round(self.tensor_mb_per_s, 1)
        return out

    def render(self) -> str:
        """A human summary, one endpoint per paragraph, problems last."""
        by_type = ", ".join(
            f"{name} {count}" for name, count in sorted(self.frames_by_type.items())
        )
        responses = ", ".join(
            f"{code} {count}" for code, count in sorted(self.control_responses.items())
        )
        lines = [
            f"loopback demo: {self.frames} frames x {self.clients} clients, "
            f"tensors of {self.tensor_mb:g} MB, {self.duration_s:.2f} s",
            f"/ws/training    {self.frames_sent} frames sent ({by_type}), "
            f"{self.broadcast_bytes / 1e6:.2f} MB",
            f"                {self.frames_received} received in {self.broadcast_s:.2f} s "
            f"({self.frames_per_s:,.0f} frames/s)",
            f"                seq: {self.seq_gaps} gaps ({self.seq_missing} missing), "
            f"{self.seq_duplicates} duplicates; {self.chunked_reassembled} chunked messages "
            "reassembled",
            f"/ws/control     {sum(self.control_responses.values())} responses ({responses})",
            f"/ws/v1/workers  {self.tasks} tasks, {self.tensors_sent} tensors, "
            f"{self.tensor_bytes / 1e6:.1f} MB in {self.tensor_s:.2f} s "
            f"({self.tensor_mb_per_s:,.1f} MB/s)",
        ]
        if self.problems:
            lines.append(f"problems ({len(self.problems)}):")
            lines.extend(f"  - {problem}" for problem in self.problems)
        else:
            lines.append("problems: none")
        return "\n".join(lines)
