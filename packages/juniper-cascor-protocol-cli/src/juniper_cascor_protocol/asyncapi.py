"""An AsyncAPI 3.0 document of the three endpoints, for consumers not written in Python.

The application it describes is the juniper-cascor training server: one channel per endpoint
(``/ws/training``, ``/ws/control``, ``/ws/v1/workers``), every message each carries, and who
sends it. AsyncAPI states direction from the described application's side, so an operation whose
``action`` is ``send`` is the server sending and ``receive`` is a client or a worker sending to
the server; each operation's ``x-sender`` and ``x-receiver`` say so in words.

Each JSON message's payload is the JSON Schema that ``schema.generate_schemas`` writes for it,
embedded under ``components.schemas`` by its file name (``envelope/metrics.schema.json`` is
``envelope.metrics``), so the document stands alone: a parser resolves it offline. The
heartbeat (``ping``/``pong``) has no file of its own and is described in place. The binary
tensor frames of ``/ws/v1/workers`` are ``application/octet-stream``, their layout in the
message's description.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from juniper_cascor_protocol.envelope import (
    KNOWN_ENVELOPES,
    PROTOCOL_VERSION,
    ConnectionEstablishedEnvelope,
)
from juniper_cascor_protocol.envelope.control import CONTROL_ENVELOPES
from juniper_cascor_protocol.envelope.session_events import PING_TYPE, PONG_TYPE
from juniper_cascor_protocol.envelope.training import TRAINING_ENVELOPES
from juniper_cascor_protocol.schema import generate_schemas
from juniper_cascor_protocol.worker import (
    MAX_DTYPE_BYTES,
    MAX_FRAME_BYTES,
    MAX_NDIM,
    WORKER_MESSAGES,
    WorkerMessageType,
)

__all__ = [
    "ASYNCAPI_FILE",
    "ASYNCAPI_VERSION",
    "CHANNELS",
    "TENSOR_FRAME",
    "WORKER_MESSAGE_SENDERS",
    "Peer",
    "asyncapi_text",
    "check_asyncapi",
    "generate_asyncapi",
    "write_asyncapi",
]

ASYNCAPI_VERSION: Final = "3.0.0"
"""The AsyncAPI specification version the document follows."""
ASYNCAPI_FILE: Final = "asyncapi.json"
"""The document's file name beside the JSON Schemas (``schemas/asyncapi.json``)."""

CHANNELS: Final = {
    "training": "/ws/training",
    "control": "/ws/control",
    "workers": "/ws/v1/workers",
}
"""Channel id → the endpoint's path, its ``address``."""

TENSOR_FRAME: Final = "tensor_frame"
"""The id of the binary tensor frame's message on ``/ws/v1/workers``."""


class Peer(StrEnum):
    """Who sends a message: the server, or the peer of its endpoint."""

    SERVER = "server"
    CLIENT = "client"
    WORKER = "worker"


WORKER_MESSAGE_SENDERS: Final[Mapping[WorkerMessageType, frozenset[Peer]]] = {
    WorkerMessageType.REGISTER: frozenset({Peer.WORKER}),
    WorkerMessageType.HEARTBEAT: frozenset({Peer.SERVER, Peer.WORKER}),
    WorkerMessageType.TASK_RESULT: frozenset({Peer.WORKER}),
    WorkerMessageType.REGISTRATION_ACK: frozenset({Peer.SERVER}),
    WorkerMessageType.RESULT_ACK: frozenset({Peer.SERVER}),
    WorkerMessageType.TASK_ASSIGN: frozenset({Peer.SERVER}),
    WorkerMessageType.TOKEN_REFRESH: frozenset({Peer.SERVER}),
    WorkerMessageType.CONNECTION_ESTABLISHED: frozenset({Peer.SERVER}),
    WorkerMessageType.ERROR: frozenset({Peer.SERVER, Peer.WORKER}),
}
"""Who sends each ``/ws/v1/workers`` message type (the direction column of the protocol's
worker messages table)."""

_JSON: Final = "application/json"
_OCTET_STREAM: Final = "application/octet-stream"

_TENSOR_FRAME_DESCRIPTION: Final = f"""\
One numpy array per binary WebSocket message. A `task_assign` or a `task_result` is followed by \
one such frame per entry of its `tensor_manifest`, in manifest order; only a `heartbeat` may come \
between them.

Layout, every header integer an unsigned 32-bit little-endian value:

| offset | size | content |
|---|---|---|
| 0 | 4 | `ndim`, 0 to {MAX_NDIM} |
| 4 | 4 × `ndim` | the shape, one value per dimension |
| 4 + 4 × `ndim` | 4 | `len`, the dtype string's length in bytes, 0 to {MAX_DTYPE_BYTES} |
| 8 + 4 × `ndim` | `len` | the dtype string, UTF-8 (`float32`, `>f4`, ...) |
| 8 + 4 × `ndim` + `len` | the rest | the elements in C (row-major) order: exactly \
product(shape) × itemsize bytes |

A frame is at most {MAX_FRAME_BYTES} bytes, header included. The dtype string is one of the \
spellings that a tensor manifest entry's `dtype` lists: plain numeric dtypes only, `>` marking \
big-endian data."""

_HEARTBEAT_NOTE: Final = (
    "The server's application heartbeat, on /ws/training and /ws/control alike; a live client "
    "answers each ping with a pong."
)
_PING_SCHEMA: Final = {
    "title": "Ping",
    "description": "The server's heartbeat: `ts` is the time it was sent, Unix seconds.",
    "type": "object",
    "required": ["type", "ts"],
    "properties": {"type": {"const": PING_TYPE}, "ts": {"type": "number"}},
    "additionalProperties": True,
}
_PONG_SCHEMA: Final = {
    "title": "Pong",
    "description": "A client's answer to the server's ping; it carries no `command`.",
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"const": PONG_TYPE}},
    "not": {"required": ["command"]},  # with a `command`, it is a /ws/control request
    "additionalProperties": True,
}


def _schema_key(file_name: str) -> str:
    """``envelope/metrics.schema.json`` → ``envelope.metrics``: a component's name."""
    return file_name.removesuffix(".schema.json").replace("/", ".")


def _direction(senders: frozenset[Peer], peer: Peer) -> str:
    """``Server → worker``, ``Worker → server`` or ``Either direction``, for a summary."""
    if len(senders) > 1:
        return "Either direction"
    if Peer.SERVER in senders:
        return f"Server → {peer.value}"
    return f"{peer.value.capitalize()} → server"


class _Builder:
    """Collects the components and each channel's messages, then the operations over them."""

    def __init__(self, schemas: Mapping[str, Mapping[str, Any]]) -> None:
        self._file_schemas = schemas
        self.schemas: dict[str, Any] = {}
        self.messages: dict[str, Any] = {}
        self.channel_messages: dict[str, dict[str, Any]] = {channel: {} for channel in CHANNELS}
        self.senders: dict[str, dict[str, frozenset[Peer]]] = {channel: {} for channel in CHANNELS}

    def payload(self, key: str, schema: Mapping[str, Any]) -> dict[str, str]:
        """A ``$ref`` to ``schema``, embedded as the component schema ``key``."""
        self.schemas[key] = dict(schema)
        return {"$ref": f"#/components/schemas/{key}"}

    def file_payload(self, file_name: str) -> dict[str, str]:
        """A ``$ref`` to the embedded copy of one file of ``schemas/``."""
        if file_name not in self._file_schemas:
            raise LookupError(f"no JSON Schema {file_name} is generated")
        return self.payload(_schema_key(file_name), self._file_schemas[file_name])

    def add(
        self,
        channel: str,
        message_id: str,
        component: str,
        senders: frozenset[Peer],
        message: Mapping[str, Any],
    ) -> None:
        """Put ``message`` in the components once, and on ``channel`` as ``message_id``."""
        self.messages.setdefault(component, dict(message))
        self.channel_messages[channel][message_id] = {"$ref": f"#/components/messages/{component}"}
        self.senders[channel][message_id] = senders


def _json_message(name: str, summary: str, payload: Mapping[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "summary": summary,
        "contentType": _JSON,
        "payload": payload,
    }


def _add_envelopes(builder: _Builder) -> None:
    type_names = {model: name for name, model in KNOWN_ENVELOPES.items()}
    greeting = type_names[ConnectionEstablishedEnvelope]
    for channel, models in (("training", TRAINING_ENVELOPES), ("control", CONTROL_ENVELOPES)):
        names = [type_names[model] for model in models]
        # The greeting is the first frame of every connection, on /ws/training too.
        for name in [greeting, *(name for name in names if name != greeting)]:
            summary = f"Server → client: the `{name}` envelope."
            payload = builder.file_payload(f"envelope/{name}.schema.json")
            message = _json_message(name, summary, payload)
            builder.add(channel, name, f"envelope.{name}", frozenset({Peer.SERVER}), message)


def _add_heartbeat(builder: _Builder) -> None:
    ping = builder.payload("heartbeat.ping", _PING_SCHEMA)
    pong = builder.payload("heartbeat.pong", _PONG_SCHEMA)
    for channel in ("training", "control"):
        ping_message = {
            **_json_message(PING_TYPE, "Server → client: the heartbeat.", ping),
            "description": _HEARTBEAT_NOTE,
        }
        pong_message = {
            **_json_message(PONG_TYPE, "Client → server: the answer to a ping.", pong),
            "description": _HEARTBEAT_NOTE,
        }
        builder.add(channel, PING_TYPE, "heartbeat.ping", frozenset({Peer.SERVER}), ping_message)
        builder.add(channel, PONG_TYPE, "heartbeat.pong", frozenset({Peer.CLIENT}), pong_message)


def _add_control_request(builder: _Builder) -> None:
    summary = "Client → server: a command request; the server answers with one command_response."
    payload = builder.file_payload("control/command.schema.json")
    message = _json_message("command", summary, payload)
    builder.add("control", "command", "control.command", frozenset({Peer.CLIENT}), message)


def _add_worker_messages(builder: _Builder) -> None:
    if set(WORKER_MESSAGES) != set(WORKER_MESSAGE_SENDERS):
        raise LookupError("WORKER_MESSAGE_SENDERS must name every worker message type")
    for message_type in WORKER_MESSAGES:
        name = str(message_type)
        senders = WORKER_MESSAGE_SENDERS[message_type]
        summary = f"{_direction(senders, Peer.WORKER)}: the `{name}` message."
        payload = builder.file_payload(f"worker/{name}.schema.json")
        message = _json_message(name, summary, payload)
        builder.add("workers", name, f"worker.{name}", senders, message)
    frame = {
        "name": TENSOR_FRAME,
        "title": "Binary tensor frame",
        "summary": "Either direction: one tensor of a task_assign or a task_result.",
        "description": _TENSOR_FRAME_DESCRIPTION,
        "contentType": _OCTET_STREAM,
        "payload": {"type": "string", "format": "binary"},
    }
    both = frozenset({Peer.SERVER, Peer.WORKER})
    builder.add("workers", TENSOR_FRAME, f"worker.{TENSOR_FRAME}", both, frame)


_PEERS: Final = {"training": Peer.CLIENT, "control": Peer.CLIENT, "workers": Peer.WORKER}

_CHANNEL_DESCRIPTIONS: Final = {
    "training": (
        "A broadcast: every subscriber receives the same frames in the same order. The server "
        "sends connection_established, then initial_metrics, then every broadcast envelope "
        "with the next `seq`; an envelope too large for one frame goes out as chunked_message "
        "frames. A client sends nothing but the pong answering the server's ping."
    ),
    "control": (
        "A client sends command requests; the server answers each with exactly one "
        "command_response echoing its `command` and `command_id`. The server's first frame is "
        "connection_established."
    ),
    "workers": (
        "One remote worker and the server, both ways: JSON text messages, and one binary frame "
        "per tensor after a task_assign or a task_result, as its `tensor_manifest` announces."
    ),
}


def _operation(
    channel: str, sender: Peer, receiver: Peer, message_ids: list[str], summary: str
) -> dict[str, Any]:
    return {
        "action": "send" if sender is Peer.SERVER else "receive",
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": summary,
        "messages": [{"$ref": f"#/channels/{channel}/messages/{id_}"} for id_ in message_ids],
        "x-sender": sender.value,
        "x-receiver": receiver.value,
    }


def _operations(builder: _Builder) -> dict[str, Any]:
    """Per channel: what the server sends, what its peer sends, and the heartbeat on its own
    (a pong is answered by nothing, a command by its command_response)."""
    operations: dict[str, Any] = {}
    heartbeat = (PING_TYPE, PONG_TYPE)
    for channel, address in CHANNELS.items():
        peer = _PEERS[channel]
        senders = builder.senders[channel]
        for sender, receiver in ((Peer.SERVER, peer), (peer, Peer.SERVER)):
            ids = [id_ for id_, by in senders.items() if sender in by and id_ not in heartbeat]
            if not ids:  # a /ws/training client sends nothing but its pongs
                continue
            summary = f"{sender.value.capitalize()} → {receiver.value} on {address}."
            operation = _operation(channel, sender, receiver, ids, summary)
            if channel == "control" and sender is peer:
                operation["reply"] = {
                    "channel": {"$ref": "#/channels/control"},
                    "messages": [{"$ref": "#/channels/control/messages/command_response"}],
                }
            operations[f"{channel}.{operation['action']}"] = operation
        if PING_TYPE in senders:
            summary = f"The heartbeat on {address}: the server's ping."
            operations[f"{channel}.ping"] = _operation(
                channel, Peer.SERVER, peer, [PING_TYPE], summary
            )
            summary = f"The heartbeat on {address}: the client's pong, answering a ping."
            operations[f"{channel}.pong"] = _operation(
                channel, peer, Peer.SERVER, [PONG_TYPE], summary
            )
    return operations


def generate_asyncapi(
    schemas: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the three endpoints.

    ``schemas`` is ``generate_schemas()``'s result (computed when not given): the payloads
    embed them.
    """
    builder = _Builder(generate_schemas() if schemas is None else schemas)
    _add_envelopes(builder)
    _add_control_request(builder)
    _add_heartbeat(builder)
    _add_worker_messages(builder)
    channels = {
        channel: {
            "address": address,
            "title": address,
            "description": _CHANNEL_DESCRIPTIONS[channel],
            "messages": builder.channel_messages[channel],
        }
        for channel, address in CHANNELS.items()
    }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:juniper-cascor-protocol:asyncapi",
        "info": {
            "title": "juniper-cascor wire protocol",
            "version": PROTOCOL_VERSION,
            "description": (
                "The three WebSocket endpoints of the juniper-cascor training server. The "
                "described application is the server: an operation's `send` is the server "
                "sending, `receive` a client or a worker sending to it (`x-sender` and "
                "`x-receiver` name both)."
            ),
            "license": {"name": "MIT"},
        },
        "defaultContentType": _JSON,
        "channels": channels,
        "operations": _operations(builder),
        "components": {"schemas": builder.schemas, "messages": builder.messages},
    }


def asyncapi_text(schemas: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """The document as written to ``asyncapi.json``: indented, keys sorted, one final newline."""
    document = generate_asyncapi(schemas)
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_asyncapi(directory: Path) -> Path:
    """Write the document to ``directory / ASYNCAPI_FILE``; returns that path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ASYNCAPI_FILE
    path.write_text(asyncapi_text(), encoding="utf-8")
    return path


def check_asyncapi(directory: Path) -> list[str]:
    """How ``directory / ASYNCAPI_FILE`` differs from the document (empty: in sync), worded as
    ``check_schemas`` words a schema's drift."""
    path = directory / ASYNCAPI_FILE
    if not path.is_file():
        return [f"missing: {ASYNCAPI_FILE}"]
    if path.read_text(encoding="utf-8") != asyncapi_text():
        return [f"out of date: {ASYNCAPI_FILE}"]
    return []
