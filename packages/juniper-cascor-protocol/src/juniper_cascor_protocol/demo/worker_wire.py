"""Framing on ``/ws/v1/workers``, shared by both ends: a JSON message, then its tensor frames.

A ``task_assign`` or ``task_result`` text frame is followed by one binary frame per entry of its
``tensor_manifest``, in manifest order. Everything a peer can get wrong is reported as a
:class:`Problem` with a bounded ``label`` (for counting) and a ``detail`` (for people); nothing
here raises on received data. The labels:

* messages: ``malformed_json``, ``not_an_object``, ``unknown_type`` (missing or unknown
  ``type``), ``invalid_message`` (a known ``type`` whose fields are wrong),
  ``unexpected_binary_frame`` (a binary frame outside any task);
* tensor frames: ``oversized_frame``, ``missing_tensor_frame`` (text came instead), the decode
  error's established prefix in snake case (e.g. ``data_size_mismatch``,
  ``invalid_dtype_string``), and ``manifest_mismatch`` (``check_tensors`` disagreed).
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from websockets.asyncio.connection import Connection

from juniper_cascor_protocol.demo.transport import receive_tensor, send_tensor
from juniper_cascor_protocol.worker.binary_frame import DECODE_ERROR_PREFIXES
from juniper_cascor_protocol.worker.manifest import TensorSpec, check_tensors
from juniper_cascor_protocol.worker.message_type import WorkerMessageType
from juniper_cascor_protocol.worker.messages import (
    ErrorMessage,
    WorkerMessage,
    parse_worker_message,
)

__all__ = [
    "Problem",
    "TensorBatch",
    "crc32",
    "error_message",
    "frame_error_label",
    "read_message",
    "receive_tensors",
    "send_message",
    "send_with_tensors",
]

_DETAIL_LIMIT: Final = 500
_KNOWN_TYPES: Final = frozenset(WorkerMessageType)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing a peer got wrong. ``label`` is from a fixed set; ``detail`` is free text."""

    label: str
    detail: str


@dataclass(slots=True)
class TensorBatch:
    """The tensor frames that followed one message."""

    arrays: dict[str, NDArray[Any]] = field(default_factory=dict)
    frames: list[bytes] = field(default_factory=list)
    """The binary messages exactly as received."""
    problems: list[Problem] = field(default_factory=list)
    interrupted_by: str | None = None
    """A text message that arrived where a tensor frame was expected (handle it normally)."""

    @property
    def nbytes(self) -> int:
        return sum(len(frame) for frame in self.frames)


def frame_error_label(error: ValueError) -> str:
    """The label of a ``BinaryFrame.decode`` error: its established prefix, snake_cased."""
    text = str(error)
    for prefix in DECODE_ERROR_PREFIXES:
        if text.startswith(prefix):
            return prefix.lower().replace(" ", "_").replace("-", "_")
    return "invalid_binary_frame"


def read_message(raw: str | bytes) -> WorkerMessage | Problem:
    """Parse one received message; binary frames and bad JSON become a :class:`Problem`."""
    if not isinstance(raw, str):
        return Problem("unexpected_binary_frame", f"{len(raw)} bytes outside any task")
    try:
        decoded = json.loads(raw)
    except (ValueError, RecursionError) as error:
        return Problem("malformed_json", _clip(str(error)))
    parsed = parse_worker_message(decoded)
    if isinstance(parsed, WorkerMessage):
        return parsed
    if not isinstance(decoded, dict):
        label = "not_an_object"
    elif isinstance(decoded.get("type"), str) and decoded["type"] in _KNOWN_TYPES:
        label = "invalid_message"
    else:
        label = "unknown_type"
    return Problem(label, _clip("; ".join(str(error) for error in parsed)))


async def send_message(connection: Connection, message: WorkerMessage) -> None:
    await connection.send(json.dumps(message.to_wire(), allow_nan=False))


async def send_with_tensors(
    connection: Connection, message: WorkerMessage, tensors: Mapping[str, NDArray[Any]]
) -> int:
    """Send ``message`` and then each tensor as a binary frame; return the frames' bytes.

    Callers sharing ``connection`` between tasks must hold a lock around this call, so that no
    other message slips in between the JSON frame and its tensors.
    """
    await send_message(connection, message)
    sent = 0
    for array in tensors.values():
        sent += await send_tensor(connection, array)
    return sent


async def receive_tensors(
    connection: Connection, manifest: Mapping[str, TensorSpec], *, max_frame_bytes: int
) -> TensorBatch:
    """Read one binary frame per manifest entry and check the arrays against the manifest.

    Frames over ``max_frame_bytes`` or that fail to decode are reported and skipped; a text
    message instead of a frame stops the batch (see :attr:`TensorBatch.interrupted_by`).
    """
    batch = TensorBatch()
    for name in manifest:
        message = await connection.recv()
        if isinstance(message, str):
            batch.problems.append(
                Problem("missing_tensor_frame", f"{name}: a text message came instead")
            )
            batch.interrupted_by = message
            return batch
        batch.frames.append(message)
        if len(message) > max_frame_bytes:
            batch.problems.append(
                Problem(
                    "oversized_frame",
                    f"{name}: {len(message)} bytes > max_frame_bytes={max_frame_bytes}",
                )
            )
            continue
        try:
            batch.arrays[name] = receive_tensor(message)
        except ValueError as error:
            batch.problems.append(Problem(frame_error_label(error), f"{name}: {error}"))
    if not batch.problems:
        mismatches = check_tensors(manifest, batch.arrays)
        batch.problems.extend(Problem("manifest_mismatch", str(error)) for error in mismatches)
    return batch


def error_message(problem: Problem) -> ErrorMessage:
    """The ``error`` message telling the peer about ``problem``."""
    return ErrorMessage(error=problem.label, details=problem.detail, timestamp=time.time())


def crc32(array: NDArray[Any]) -> int:
    """CRC-32 of ``array``'s raw data in C order: what its binary frame carries after the header."""
    return zlib.crc32(np.ascontiguousarray(array).data.cast("B")) if array.size else 0


def _clip(text: str) -> str:
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 3] + "..."
