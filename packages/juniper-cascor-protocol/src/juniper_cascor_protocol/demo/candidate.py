"""The small, real computation a demo worker performs: score one candidate unit.

As in Cascade-Correlation, a candidate hidden unit is scored by how well its output follows the
network's residual error. The task's tensors are the candidate's inputs (``n × d``), its input
weights (``d``) and the residual error (``n × o``); the score for each output ``k`` is the absolute
Pearson correlation between the candidate's output and the error of output ``k``, in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "INPUTS",
    "RESIDUAL_ERROR",
    "WEIGHTS",
    "CandidateScore",
    "make_task_tensors",
    "score_candidate",
]

INPUTS: Final = "candidate_inputs"
WEIGHTS: Final = "candidate_weights"
RESIDUAL_ERROR: Final = "residual_error"
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
    candidate_output: NDArray[np.float32]
    covariances: NDArray[np.float64]


def make_task_tensors(input_bytes: int, seed: int) -> dict[str, NDArray[Any]]:
    """Build one task's tensors, the float32 inputs taking about ``input_bytes`` bytes.

    The residual error is made partly of the candidate's own output, so the expected score is
    well inside (0, 1) rather than noise around zero.
    """
    rng = np.random.default_rng(seed)
    rows = max(2, input_bytes // (4 * _FEATURES))
    inputs = rng.standard_normal((rows, _FEATURES), dtype=np.float32)
    weights = rng.standard_normal(_FEATURES, dtype=np.float32) / np.float32(math.sqrt(_FEATURES))
    signal = np.tanh(inputs @ weights).astype(np.float64)
    noise = rng.standard_normal((rows, _OUTPUTS))
    mix = np.linspace(0.2, 0.9, _OUTPUTS)
    residual = signal[:, None] * mix + noise * (1.0 - mix)
    return {INPUTS: inputs, WEIGHTS: weights, RESIDUAL_ERROR: residual}


def score_candidate(
    inputs: NDArray[Any], weights: NDArray[Any], residual_error: NDArray[Any]
) -> CandidateScore:
    """Score the candidate ``tanh(inputs @ weights)`` against each column of the residual error.

    Raises:
        ValueError: the shapes do not line up (``inputs`` is ``n × d``, ``weights`` ``d``,
            ``residual_error`` ``n × o`` with ``n ≥ 2`` and ``o ≥ 1``).
    """
    if inputs.ndim != 2 or weights.shape != (inputs.shape[1],):
        raise ValueError(
            f"{INPUTS} must be n x d and {WEIGHTS} d, got {inputs.shape} and {weights.shape}"
        )
    if residual_error.ndim != 2 or residual_error.shape[0] != inputs.shape[0]:
        raise ValueError(
            f"{RESIDUAL_ERROR} must be n x o with n = {inputs.shape[0]}, got {residual_error.shape}"
        )
    if inputs.shape[0] < 2 or residual_error.shape[1] < 1:
        raise ValueError(f"need n >= 2 rows and o >= 1 outputs, got {residual_error.shape}")
    output = np.tanh(inputs @ weights).astype(np.float32, copy=False)
    centred = output.astype(np.float64) - float(output.mean(dtype=np.float64))
    errors = residual_error.astype(np.float64, copy=False)
    errors = errors - errors.mean(axis=0)
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
        candidate_output=output,
        covariances=covariances,
    )
