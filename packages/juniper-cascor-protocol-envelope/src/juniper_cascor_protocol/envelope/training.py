"""The eight envelopes that ``/ws/training`` broadcasts, and their data models."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from juniper_cascor_protocol.envelope.base import _WIRE_MODEL_CONFIG, BaseEnvelope, _FreeFormList

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
    """Training metrics of one step or epoch; ``data`` is free-form (``loss``, ``accuracy``...)."""

    type: Literal["metrics"] = "metrics"


class StateEnvelope(BaseEnvelope):
    """The server's training state (``status``, ``phase``...); ``data`` is free-form."""

    type: Literal["state"] = "state"


class TopologyEnvelope(BaseEnvelope):
    """The network's current topology (units and weights); ``data`` is free-form."""

    type: Literal["topology"] = "topology"


class EventEnvelope(BaseEnvelope):
    """A notable training event (``event`` and its ``details``); ``data`` is free-form."""

    type: Literal["event"] = "event"


class CascadeAddEnvelope(BaseEnvelope):
    """A hidden unit was added to the cascade; ``data`` is free-form."""

    type: Literal["cascade_add"] = "cascade_add"


class CandidateProgressEnvelope(BaseEnvelope):
    """Progress of the candidate units' training; ``data`` is free-form."""

    type: Literal["candidate_progress"] = "candidate_progress"


class InitialMetricsData(BaseModel):
    """Sent once on connect: the recent metrics and the broadcaster's current ``seq``."""

    model_config: ClassVar[ConfigDict] = _WIRE_MODEL_CONFIG

    metrics: _FreeFormList = Field(default_factory=list)
    count: int
    current_seq: int = 0


class InitialMetricsEnvelope(BaseEnvelope):
    """The first frame a new client gets: :class:`InitialMetricsData`."""

    type: Literal["initial_metrics"] = "initial_metrics"
    data: InitialMetricsData  # type: ignore[assignment]


class ChunkedMessageData(BaseModel):
    """One piece of an envelope too large for one frame; the pieces' payloads join into its JSON."""

    model_config: ClassVar[ConfigDict] = _WIRE_MODEL_CONFIG

    chunk_id: str
    chunk_index: int = Field(ge=0)
    total_chunks: int = Field(ge=1)
    original_type: str
    payload: str


class ChunkedMessageEnvelope(BaseEnvelope):
    """One chunk of a large envelope: :class:`ChunkedMessageData`."""

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
