"""The AsyncAPI document: every message of each endpoint, who sends it, and payloads that are the
JSON Schemas. ``nox -s asyncapi`` runs the official AsyncAPI parser over it as well."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from juniper_cascor_protocol.asyncapi import (
    ASYNCAPI_VERSION,
    CHANNELS,
    TENSOR_FRAME,
    WORKER_MESSAGE_SENDERS,
    Peer,
    asyncapi_text,
    check_asyncapi,
    generate_asyncapi,
)
from juniper_cascor_protocol.cli import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, main
from juniper_cascor_protocol.envelope import (
    KNOWN_ENVELOPES,
    ControlServerSession,
    PongReceived,
)
from juniper_cascor_protocol.envelope.control import CONTROL_ENVELOPES
from juniper_cascor_protocol.envelope.training import TRAINING_ENVELOPES
from juniper_cascor_protocol.schema import generate_schemas
from juniper_cascor_protocol.worker import (
    MAX_FRAME_BYTES,
    WORKER_MESSAGES,
    ProtocolViolation,
    ServerSession,
    SessionState,
    WorkerMessageType,
    WorkerSession,
)

DOCUMENT = generate_asyncapi()
REPOSITORY = Path(__file__).resolve().parents[3]
WIRE_EXAMPLES = REPOSITORY / "docs" / "wire-examples"
COMMITTED = REPOSITORY / "schemas"
_TYPE_NAMES = {model: name for name, model in KNOWN_ENVELOPES.items()}


def _resolve(reference: str) -> Any:
    assert reference.startswith("#/"), f"{reference} leads out of the document"
    node: Any = DOCUMENT
    for part in reference[2:].split("/"):
        assert isinstance(node, dict), f"{reference} does not resolve"
        assert part in node, f"{reference} does not resolve"
        node = node[part]
    return node


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def _sent(channel: str, sender: Peer) -> set[str]:
    """The ids of the messages that ``sender`` sends on ``channel``, by the operations."""
    sent = set()
    for operation in DOCUMENT["operations"].values():
        if operation["channel"]["$ref"] == f"#/channels/{channel}" and (
            operation["x-sender"] == sender
        ):
            sent |= {reference["$ref"].rsplit("/", 1)[1] for reference in operation["messages"]}
    return sent


def _wire_examples(file_name: str) -> list[dict[str, Any]]:
    examples: list[dict[str, Any]] = json.loads(
        (WIRE_EXAMPLES / file_name).read_text(encoding="utf-8")
    )["examples"]
    return examples


def _worker_message_texts() -> dict[str, str]:
    """One valid text of every worker message type, from the wire examples."""
    texts: dict[str, str] = {}
    for example in _wire_examples("workers.json"):
        if example["expect"]["verdict"] == "message":
            texts.setdefault(example["expect"]["type"], example["text"])
    return texts


def test_the_document_is_asyncapi_3_and_its_channels_are_the_three_endpoints() -> None:
    assert DOCUMENT["asyncapi"] == ASYNCAPI_VERSION == "3.0.0"
    addresses = {name: channel["address"] for name, channel in DOCUMENT["channels"].items()}
    assert addresses == CHANNELS
    assert set(CHANNELS.values()) == {"/ws/training", "/ws/control", "/ws/v1/workers"}


def test_every_message_type_of_each_endpoint_is_on_its_channel() -> None:
    def on(channel: str) -> set[str]:
        return set(DOCUMENT["channels"][channel]["messages"])

    training = {_TYPE_NAMES[model] for model in TRAINING_ENVELOPES}
    control = {_TYPE_NAMES[model] for model in CONTROL_ENVELOPES}
    heartbeat = {"ping", "pong"}
    assert on("training") == training | {"connection_established"} | heartbeat
    assert on("control") == control | {"command"} | heartbeat
    assert on("workers") == {str(name) for name in WORKER_MESSAGES} | {TENSOR_FRAME}


def test_each_message_names_its_wire_type() -> None:
    for channel in DOCUMENT["channels"].values():
        for message_id, reference in channel["messages"].items():
            assert _resolve(reference["$ref"])["name"] == message_id


def test_who_sends_what() -> None:
    training = set(DOCUMENT["channels"]["training"]["messages"])
    assert _sent("training", Peer.SERVER) == training - {"pong"}
    assert _sent("training", Peer.CLIENT) == {"pong"}
    assert _sent("control", Peer.SERVER) == {"connection_established", "command_response", "ping"}
    assert _sent("control", Peer.CLIENT) == {"command", "pong"}
    assert _sent("workers", Peer.SERVER) == {
        "connection_established",
        "registration_ack",
        "heartbeat",
        "task_assign",
        "result_ack",
        "token_refresh",
        "error",
        TENSOR_FRAME,
    }
    assert _sent("workers", Peer.WORKER) == {
        "register",
        "heartbeat",
        "task_result",
        "error",
        TENSOR_FRAME,
    }


def test_an_operation_sends_when_the_server_sends_and_receives_when_its_peer_does() -> None:
    for name, operation in DOCUMENT["operations"].items():
        expected = "send" if operation["x-sender"] == Peer.SERVER else "receive"
        assert operation["action"] == expected, name
        assert Peer.SERVER in (operation["x-sender"], operation["x-receiver"]), name


def test_a_command_request_is_answered_by_one_command_response() -> None:
    [requests] = [
        operation
        for operation in DOCUMENT["operations"].values()
        if {"$ref": "#/channels/control/messages/command"} in operation["messages"]
    ]
    assert requests["reply"] == {
        "channel": {"$ref": "#/channels/control"},
        "messages": [{"$ref": "#/channels/control/messages/command_response"}],
    }
    replying = [name for name, operation in DOCUMENT["operations"].items() if "reply" in operation]
    assert len(replying) == 1


def test_worker_directions_agree_with_the_wire_examples() -> None:
    by_direction = {
        "server-to-worker": frozenset({Peer.SERVER}),
        "worker-to-server": frozenset({Peer.WORKER}),
        "either": frozenset({Peer.SERVER, Peer.WORKER}),
    }
    seen = set()
    for example in _wire_examples("workers.json"):
        if example["expect"]["verdict"] == "message":
            message_type = example["expect"]["type"]
            expected = by_direction[example["direction"]]
            assert WORKER_MESSAGE_SENDERS[message_type] == expected, example["name"]
            seen.add(message_type)
    assert seen == set(WORKER_MESSAGES)


def _violations(events: list[Any]) -> list[str]:
    return [event.label for event in events if isinstance(event, ProtocolViolation)]


def _ready_server(texts: dict[str, str]) -> ServerSession:
    server = ServerSession(now=0.0)
    server.receive(texts["register"], 1.0)
    assert server.state is SessionState.READY
    return server


def _ready_worker(texts: dict[str, str]) -> WorkerSession:
    worker = WorkerSession("w1", now=0.0)
    worker.receive(texts["connection_established"], 1.0)
    worker.receive(texts["registration_ack"], 1.0)
    assert worker.state is SessionState.READY
    return worker


@pytest.mark.parametrize("message_type", sorted(WORKER_MESSAGES))
def test_the_sessions_agree_on_who_sends_each_worker_message(
    message_type: WorkerMessageType,
) -> None:
    """The library's sessions give the verdict: a message that only one side sends is
    unexpected when that side receives it; one that both sides send is taken by both."""
    texts = _worker_message_texts()
    sessions = {Peer.SERVER: _ready_server(texts), Peer.WORKER: _ready_worker(texts)}
    senders = WORKER_MESSAGE_SENDERS[message_type]
    for receiver in senders:
        violations = _violations(sessions[receiver].receive(texts[message_type], 2.0))
        if len(senders) == 2:
            assert violations == [], (receiver, violations)
        else:
            assert "unexpected_message" in violations, (receiver, violations)


def test_every_reference_resolves_inside_the_document() -> None:
    references = list(_references(DOCUMENT))
    assert references
    for reference in references:
        _resolve(reference)


def test_an_operation_lists_messages_of_its_own_channel_only() -> None:
    for name, operation in DOCUMENT["operations"].items():
        channel = operation["channel"]["$ref"]
        assert operation["messages"], name
        for message in operation["messages"]:
            assert message["$ref"].startswith(f"{channel}/messages/"), name


def test_each_json_payload_is_the_generated_schema_of_its_message() -> None:
    schemas = generate_schemas()
    expected_files = {
        **{f"envelope.{name}": f"envelope/{name}.schema.json" for name in KNOWN_ENVELOPES},
        **{f"worker.{name}": f"worker/{name}.schema.json" for name in WORKER_MESSAGES},
        "control.command": "control/command.schema.json",
    }
    for component, file_name in expected_files.items():
        message = DOCUMENT["components"]["messages"][component]
        assert message["contentType"] == "application/json"
        assert _resolve(message["payload"]["$ref"]) == schemas[file_name], component


def test_the_ping_schema_accepts_the_servers_heartbeats() -> None:
    ping = jsonschema.Draft202012Validator(DOCUMENT["components"]["schemas"]["heartbeat.ping"])
    for now in (0.0, 1.5, 1_700_000_000.25):
        assert ping.is_valid(json.loads(ControlServerSession().ping(now=now)))
    assert not ping.is_valid({"type": "ping"})


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "pong"},
        {"type": "pong", "ts": 1.5},
        {"type": "pong", "command": "start"},
        {"type": "ping"},
        {"command": "start"},
        {},
    ],
)
def test_the_pong_schema_accepts_what_the_control_server_takes_as_a_pong(
    frame: dict[str, Any],
) -> None:
    pong = jsonschema.Draft202012Validator(DOCUMENT["components"]["schemas"]["heartbeat.pong"])
    verdict = ControlServerSession().receive(json.dumps(frame), now=0.0)
    assert pong.is_valid(frame) == isinstance(verdict, PongReceived)


def test_the_tensor_frame_is_binary_with_its_layout_described() -> None:
    frame = DOCUMENT["components"]["messages"][f"worker.{TENSOR_FRAME}"]
    assert frame["contentType"] == "application/octet-stream"
    assert frame["payload"] == {"type": "string", "format": "binary"}
    assert "little-endian" in frame["description"]
    assert f"at most {MAX_FRAME_BYTES} bytes" in frame["description"]


def test_the_text_is_the_document_with_sorted_keys() -> None:
    text = asyncapi_text()
    assert text.endswith("}\n")
    assert json.loads(text) == DOCUMENT


def test_the_committed_document_is_the_generated_one() -> None:
    assert check_asyncapi(COMMITTED) == [], (
        "regenerate with: uv run juniper-cascor-protocol schema --asyncapi --out schemas"
    )


def test_schema_asyncapi_writes_the_document_and_check_reports_its_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schema", "--asyncapi", "--check", "--out", str(tmp_path)]) == EXIT_PROBLEMS
    assert "missing: asyncapi.json" in capsys.readouterr().out

    assert main(["schema", "--asyncapi", "--out", str(tmp_path)]) == EXIT_OK
    assert [path.name for path in tmp_path.iterdir()] == ["asyncapi.json"]
    assert (tmp_path / "asyncapi.json").read_text(encoding="utf-8") == asyncapi_text()
    assert main(["schema", "--asyncapi", "--check", "--out", str(tmp_path)]) == EXIT_OK

    (tmp_path / "asyncapi.json").write_text("{}\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["schema", "--asyncapi", "--check", "--out", str(tmp_path)]) == EXIT_PROBLEMS
    assert "out of date: asyncapi.json" in capsys.readouterr().out


def test_schema_writes_the_document_beside_the_schemas_and_checks_it(tmp_path: Path) -> None:
    assert main(["schema", "--out", str(tmp_path)]) == EXIT_OK
    assert check_asyncapi(tmp_path) == []
    (tmp_path / "asyncapi.json").unlink()
    assert main(["schema", "--check", "--out", str(tmp_path)]) == EXIT_PROBLEMS


def test_schema_asyncapi_with_stdout_is_a_usage_error() -> None:
    assert main(["schema", "--asyncapi", "--stdout", "training"]) == EXIT_USAGE
