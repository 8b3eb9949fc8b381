"""The tensors a ``task_assign`` and a ``task_result`` carry, by manifest name.

These are the names juniper-cascor 0.12 sends and juniper-cascor-worker 0.6 reads. Any plain
numeric dtype travels; both programs use ``float32``.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BIAS",
    "CANDIDATE_INPUT",
    "CANDIDATE_UUID_KEY",
    "NORM_ERROR",
    "NORM_OUTPUT",
    "REQUIRED_TASK_TENSORS",
    "RESIDUAL_ERROR",
    "RESULT_TENSORS",
    "TARGET",
    "TASK_TENSORS",
    "WEIGHTS",
]

CANDIDATE_INPUT: Final = "candidate_input"
"""``task_assign``: the candidate's inputs, samples × inputs. Required."""
RESIDUAL_ERROR: Final = "residual_error"
"""``task_assign``: the network's residual error, samples × outputs. Required."""
TARGET: Final = "y"
"""``task_assign``: the training targets, samples × outputs. Optional."""
TASK_TENSORS: Final = (CANDIDATE_INPUT, TARGET, RESIDUAL_ERROR)
"""Every tensor name a ``task_assign`` may carry, in the order juniper-cascor sends them."""
REQUIRED_TASK_TENSORS: Final = (CANDIDATE_INPUT, RESIDUAL_ERROR)
"""The tensors without which a worker cannot train: a task lacking one fails."""

WEIGHTS: Final = "weights"
"""``task_result``: the trained candidate's input weights."""
BIAS: Final = "bias"
"""``task_result``: the trained candidate's bias."""
NORM_OUTPUT: Final = "norm_output"
"""``task_result``: the candidate's normalised output over the samples."""
NORM_ERROR: Final = "norm_error"
"""``task_result``: the normalised residual error it was correlated with."""
RESULT_TENSORS: Final = (WEIGHTS, BIAS, NORM_OUTPUT, NORM_ERROR)
"""The tensors of a successful ``task_result``; a failed one (``success=false``) has none."""

CANDIDATE_UUID_KEY: Final = "candidate_uuid"
"""``task_assign.candidate_data[CANDIDATE_UUID_KEY]``: the id the server gives the candidate,
which the worker echoes in ``task_result.candidate_uuid``."""
