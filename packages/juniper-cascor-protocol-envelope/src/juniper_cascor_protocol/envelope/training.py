"""The eight envelopes that ``/ws/training`` broadcasts, and their data models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from juniper_cascor_protocol.envelope.base import BaseEnvelope, _FreeFormList

__all__ = [
    "TRAINING_ENVELOPES",
    "CandidateProgressEnvelope",
    "CascadeAddEnvelope",
    "ChunkedMessageData",
    "ChunkedMessageEnvelope",
    "EventEnvelope",
    "InitialMetricsData",
    "InitialMetricsEnvelope",
    "MetricsEnvelope",
    "StateEnvelope",
    "TopologyEnvelope",
]


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

    metrics: _FreeFormList = Field(default_factory=list)
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


TRAINING_ENVELOPES: tuple[type[BaseEnvelope], ...] = (
    MetricsEnvelope,
    StateEnvelope,
    TopologyEnvelope,
    EventEnvelope,
    CascadeAddEnvelope,
    CandidateProgressEnvelope,
    InitialMetricsEnvelope,
    ChunkedMessageEnvelope,
)
"""Every ``/ws/training`` envelope class, in the order of the protocol document."""
