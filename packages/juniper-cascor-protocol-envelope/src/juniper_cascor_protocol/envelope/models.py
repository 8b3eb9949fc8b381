"""The typed envelopes of ``/ws/training`` and ``/ws/control`` (SPEC §2).

Every frame is ``{"type", "timestamp", "data", "seq"?, "emitted_at_monotonic"?}``. Unknown
top-level keys are kept (``extra="allow"``) so ``model_dump(exclude_none=True)`` of an envelope
equals the wire dict, key for key.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class BaseEnvelope(BaseModel):
    """Fields common to every envelope; ``seq`` and ``emitted_at_monotonic`` only on broadcasts."""

    model_config = ConfigDict(extra="allow")

    type: str
    timestamp: float
    data: dict[str, Any] = Field(default_factory=dict)
    seq: int | None = None
    emitted_at_monotonic: float | None = None


class MetricsEnvelope(BaseEnvelope):
    type: Literal["metrics"] = "metrics"


class StateEnvelope(BaseEnvelope):
    type: Literal["state"] = "state"


class TopologyEnvelope(BaseEnvelope):
    type: Literal["topology"] = "topology"


class EventEnvelope(BaseEnvelope):
    type: Literal["event"] = "event"


class CascadeAddEnvelope(BaseEnvelope):
    type: Literal["cascade_add"] = "cascade_add"


class CandidateProgressEnvelope(BaseEnvelope):
    type: Literal["candidate_progress"] = "candidate_progress"


class InitialMetricsData(BaseModel):
    """Sent once on connect: the recent metrics and the broadcaster's current ``seq``."""

    model_config = ConfigDict(extra="allow")

    metrics: list[Any] = Field(default_factory=list)
    count: int
    current_seq: int = 0


class InitialMetricsEnvelope(BaseEnvelope):
    type: Literal["initial_metrics"] = "initial_metrics"
    data: InitialMetricsData  # type: ignore[assignment]


class ChunkedMessageData(BaseModel):
    """One piece of an envelope too large for one frame (SPEC §4)."""

    model_config = ConfigDict(extra="allow")

    chunk_id: str
    chunk_index: int = Field(ge=0)
    total_chunks: int = Field(ge=1)
    original_type: str
    payload: str


class ChunkedMessageEnvelope(BaseEnvelope):
    type: Literal["chunked_message"] = "chunked_message"
    data: ChunkedMessageData  # type: ignore[assignment]


class CommandResponseData(BaseModel):
    """The answer to a ``/ws/control`` command, correlated by ``command_id``."""

    model_config = ConfigDict(extra="allow")

    command: str
    status: str
    command_id: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    code: str | None = None


class CommandResponseEnvelope(BaseEnvelope):
    type: Literal["command_response"] = "command_response"
    data: CommandResponseData  # type: ignore[assignment]


class ConnectionEstablishedData(BaseModel):
    model_config = ConfigDict(extra="allow")

    server_version: str | None = None
    protocol_version: str | None = None


class ConnectionEstablishedEnvelope(BaseEnvelope):
    type: Literal["connection_established"] = "connection_established"
    data: ConnectionEstablishedData = Field(  # type: ignore[assignment]
        default_factory=ConnectionEstablishedData
    )


class UnknownEnvelope(BaseEnvelope):
    """A frame whose ``type`` is unknown or whose payload failed validation.

    ``type`` holds the bounded label (see ``labels``), never the raw value from the wire.
    """


KnownEnvelope = (
    MetricsEnvelope
    | StateEnvelope
    | TopologyEnvelope
    | EventEnvelope
    | CascadeAddEnvelope
    | CandidateProgressEnvelope
    | InitialMetricsEnvelope
    | ChunkedMessageEnvelope
    | CommandResponseEnvelope
    | ConnectionEstablishedEnvelope
)

KNOWN_ENVELOPES: dict[str, type[BaseEnvelope]] = {
    "metrics": MetricsEnvelope,
    "state": StateEnvelope,
    "topology": TopologyEnvelope,
    "event": EventEnvelope,
    "cascade_add": CascadeAddEnvelope,
    "candidate_progress": CandidateProgressEnvelope,
    "initial_metrics": InitialMetricsEnvelope,
    "chunked_message": ChunkedMessageEnvelope,
    "command_response": CommandResponseEnvelope,
    "connection_established": ConnectionEstablishedEnvelope,
}
