"""The small, real computation a demo worker performs: train and score one candidate unit.

As in Cascade-Correlation, a candidate hidden unit is trained so that its output follows the
network's residual error. A task carries the protocol's tensors (see
``juniper_cascor_protocol.worker.tensor_names``): ``candidate_input`` (samples × inputs) and
``residual_error`` (samples × outputs). The demo trains in one step: the input weights point
along the inputs' covariance with the summed residual error, and the candidate's output is
``tanh(candidate_input @ weights + bias)``. Its score for each output ``k`` is the absolute
Pearson correlation between that output and the error of output ``k``, in [0, 1]. The result
carries ``weights``, ``bias``, ``norm_output`` and ``norm_error``, as juniper-cascor expects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from juniper_cascor_protocol.worker.tensor_names import (
    BIAS,
    CANDIDATE_INPUT,
    NORM_ERROR,
    NORM_OUTPUT,
    RESIDUAL_ERROR,
    WEIGHTS,
)

__all__ = ["ACTIVATION", "CandidateScore", "make_task_tensors", "train_candidate"]

ACTIVATION: Final = "tanh"
_FEATURES: Final = 16
_OUTPUTS: Final = 4


@dataclass(frozen=True, slots=True)
class CandidateScore:
    """The fields of a ``task_result`` that the worker computes, and its result tensors."""

    correlation: float
    all_correlations: list[float]
    best_corr_idx: int
    numerator: float
    denominator: float
    tensors: dict[str, NDArray[Any]]
    """``weights``, ``bias``, ``norm_output`` and ``norm_error``, in that order, float32."""


def make_task_tensors(input_bytes: int, seed: int) -> dict[str, NDArray[Any]]:
    """One task's tensors, float32 as juniper-cascor sends them; the inputs take about
    ``input_bytes`` bytes.

    The residual error is made partly of a hidden unit's output, so the expected score is well
    inside (0, 1) rather than noise around zero.
    """
    rng = np.random.default_rng(seed)
    rows = max(2, input_bytes // (4 * _FEATURES))
    inputs = rng.standard_normal((rows, _FEATURES), dtype=np.float32)
    hidden = rng.standard_normal(_FEATURES) / math.sqrt(_FEATURES)
    signal = np.tanh(inputs @ hidden)
    noise = rng.standard_normal((rows, _OUTPUTS))
    mix = np.linspace(0.2, 0.9, _OUTPUTS)
    residual = (signal[:, None] * mix + noise * (1.0 - mix)).astype(np.float32)
    return {CANDIDATE_INPUT: inputs, RESIDUAL_ERROR: residual}


def train_candidate(inputs: NDArray[Any], residual_error: NDArray[Any]) -> CandidateScore:
    """Train the candidate on ``inputs`` (n × d) against ``residual_error`` (n × o) and score it.

    Any float dtype is read; the computation is in float64.

    Raises:
        ValueError: the shapes do not line up (``n ≥ 2`` rows in both, ``d ≥ 1``, ``o ≥ 1``).
    """
    if inputs.ndim != 2 or residual_error.ndim != 2:
        raise ValueError(
            f"{CANDIDATE_INPUT} and {RESIDUAL_ERROR} must be 2-D, got {inputs.shape} and "
            f"{residual_error.shape}"
        )
    rows = inputs.shape[0]
    if (
        rows < 2
        or residual_error.shape[0] != rows
        or 0 in (inputs.shape[1], residual_error.shape[1])
    ):
        raise ValueError(
            f"need the same n >= 2 rows, d >= 1 inputs and o >= 1 outputs, got "
            f"{CANDIDATE_INPUT} {inputs.shape} and {RESIDUAL_ERROR} {residual_error.shape}"
        )
    x = inputs.astype(np.float64, copy=False)
    errors = residual_error.astype(np.float64, copy=False)
    errors = errors - errors.mean(axis=0)
    direction = (x - x.mean(axis=0)).T @ errors.sum(axis=1)
    length = float(np.linalg.norm(direction))
    weights = direction / length if length > 0 else np.zeros(x.shape[1])
    output = np.tanh(x @ weights)
    centred = output - output.mean()
    covariances = centred @ errors
    scale = math.sqrt(float(centred @ centred)) * np.sqrt(np.einsum("ij,ij->j", errors, errors))
    with np.errstate(divide="ignore", invalid="ignore"):
        correlations = np.where(scale > 0, np.abs(covariances) / scale, 0.0)
    # Rounding can push |r| a hair past 1; the wire contract says [0, 1].
    correlations = np.clip(np.nan_to_num(correlations), 0.0, 1.0)
    best = int(np.argmax(correlations))
    return CandidateScore(
        correlation=float(correlations[best]),
        all_correlations=[float(c) for c in correlations],
        best_corr_idx=best,
        numerator=float(abs(covariances[best])),
        denominator=float(scale[best]),
        tensors={
            WEIGHTS: weights.astype(np.float32),
            BIAS: np.zeros(1, dtype=np.float32),
            NORM_OUTPUT: centred.astype(np.float32),
            NORM_ERROR: errors[:, best].astype(np.float32),
        },
    )
