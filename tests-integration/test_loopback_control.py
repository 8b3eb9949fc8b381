"""``/ws/control`` over real loopback connections: correlation by ``command_id`` and error codes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from juniper_cascor_protocol.demo.control_client import ControlClient
from juniper_cascor_protocol.demo.control_service import INVALID_PARAMS_CODE
from juniper_cascor_protocol.demo.server import CONTROL_PATH, TRAINING_PATH, LoopbackServer
from juniper_cascor_protocol.demo.training_client import TrainingClient
from juniper_cascor_protocol.envelope.control import (
    INVALID_COMMAND_CODE,
    MALFORMED_JSON_CODE,
    UNKNOWN_COMMAND_CODE,
    CommandResponseEnvelope,
    CommandStatus,
    ControlCommandName,
)
from juniper_cascor_protocol.envelope.control_session import CommandAnswered
from juniper_cascor_protocol.envelope.protocol_version import PROTOCOL_VERSION

STATE_AFTER = {
    "start": "running",
    "resume": "running",
    "pause": "paused",
    "stop": "stopped",
    "reset": "stopped",
}


def _requests(rounds: int) -> list[tuple[str, dict[str, Any]]]:
    requests = []
    for round_ in range(rounds):
        for name in ControlCommandName:
            params = {"patience": round_ + 1} if name is ControlCommandName.SET_PARAMS else {}
            requests.append((name.value, params))
    return requests


def _response(outcome: object) -> CommandResponseEnvelope:
    assert isinstance(outcome, CommandAnswered)
    assert outcome.response.data.command_id == outcome.request.command_id
    return outcome.response


def test_every_known_command_is_answered_and_correlated_while_many_are_in_flight(
    run: Any,
) -> None:
    requests = _requests(rounds=5)

    async def scenario() -> None:
        async with LoopbackServer() as server:
            watcher = TrainingClient()
            reader = asyncio.create_task(watcher.run(server.url(TRAINING_PATH)))
            await watcher.wait_subscribed()
            async with ControlClient.connect(server.url(CONTROL_PATH)) as client:
                outcomes = await asyncio.gather(*(client.request(c, p) for c, p in requests))
                assert client.established is not None
                assert client.established.protocol_version == PROTOCOL_VERSION
                stats = client.stats
                assert (stats.answered, stats.pending) == (len(requests), 0)
                assert stats.unknown_responses == stats.unsolicited == stats.late == 0
                assert dict(stats.unknown_frames) == {}
            for (command, params), outcome in zip(requests, outcomes, strict=True):
                # Many requests were in flight: each outcome answers its own request.
                response = _response(outcome)
                data = response.data
                assert data.command == command
                assert data.status == CommandStatus.SUCCESS
                assert data.code is None
                assert response.seq is None  # control frames never carry seq
                assert data.result is not None
                if command == ControlCommandName.SET_PARAMS:
                    assert data.result["params"]["patience"] == params["patience"]
                else:
                    assert data.result["state"] == STATE_AFTER[command]
            # Each successful command was announced once on /ws/training as a `state` frame.
            await watcher.wait_for_seq(server.training.current_seq)
            assert watcher.stats.session.delivered["state"] == len(requests)
            await watcher.disconnect()
            await reader

    run(scenario())


def test_errors_carry_their_codes_and_stay_correlated(run: Any) -> None:
    wrong: list[tuple[str, dict[str, Any]]] = [
        ("teleport", {}),
        ("set_params", {"learning_rate": -1.0}),
        ("set_params", {"momentum": 0.9}),
        ("start", {"epochs": 3}),
        ("set_params", {"patience": "three"}),
    ]

    async def scenario() -> None:
        async with LoopbackServer() as server:
            async with ControlClient.connect(server.url(CONTROL_PATH)) as client:
                outcomes = await asyncio.gather(*(client.request(c, p) for c, p in wrong))
                no_command = await client.request_raw(
                    json.dumps({"command_id": "no-command", "params": {}}), "no-command"
                )
                malformed = await client.request_raw('{"command": "start", "command_id": ')
                not_object = await client.request_raw("[1, 2, 3]")
            answers = [*map(_response, outcomes), no_command]
            codes = [a.data.code for a in answers]
            assert codes == [
                UNKNOWN_COMMAND_CODE,
                INVALID_PARAMS_CODE,
                INVALID_PARAMS_CODE,
                INVALID_PARAMS_CODE,
                INVALID_PARAMS_CODE,
                INVALID_COMMAND_CODE,
            ]
            assert all(a.data.status == CommandStatus.ERROR for a in answers)
            assert [a.data.command for a in answers[:5]] == [c for c, _ in wrong]
            assert answers[5].data.command_id == "no-command"
            errors = [a.data.error or "" for a in answers]
            assert "teleport" in errors[0]
            assert "learning_rate" in errors[1]
            assert "greater than 0" in errors[1]
            assert "momentum" in errors[2]
            assert "epochs" in errors[3]
            assert "patience" in errors[4]
            assert "command" in errors[5]
            assert malformed.data.code == MALFORMED_JSON_CODE
            assert malformed.data.command_id is None
            assert not_object.data.code == INVALID_COMMAND_CODE
            # Failed commands change nothing.
            assert server.control.state == "stopped"
            assert server.control.params.learning_rate > 0
            assert server.control.responses == {
                UNKNOWN_COMMAND_CODE: 1,
                INVALID_PARAMS_CODE: 4,
                INVALID_COMMAND_CODE: 2,
                MALFORMED_JSON_CODE: 1,
            }

    run(scenario())


def test_a_request_times_out_at_its_deadline_and_the_servers_ping_is_answered(
    run: Any, scripted_peer: Any
) -> None:
    """A server that greets, pings and never answers: the client's timer ends the request."""
    script = ['{"type": "connection_established", "data": {"channel": "control"}}']
    script.append('{"type": "ping", "ts": 1700000000.0}')

    async def scenario() -> tuple[list[str | bytes], Any]:
        async with scripted_peer(script, drain=True) as peer:
            async with ControlClient.connect(peer.url) as client:
                with pytest.raises(TimeoutError, match="'start'"):
                    await client.request("start", timeout=0.3)
                stats = client.stats
            return list(peer.received), stats

    received, stats = run(scenario(), timeout=10)
    assert (stats.timed_out, stats.pending, stats.heartbeats) == (1, 0, 1)
    pong = '{"type":"pong"}'
    assert pong in received
    (request,) = [json.loads(text) for text in received if text != pong]
    assert request["command"] == "start"


def test_a_request_on_a_closed_connection_is_a_connection_error(
    run: Any, scripted_peer: Any
) -> None:
    """The server greets and closes: whenever the request goes out, it ends in ConnectionError."""
    script = ['{"type": "connection_established", "data": {"channel": "control"}}']

    async def scenario() -> Any:
        async with scripted_peer(script) as peer, ControlClient.connect(peer.url) as client:
            for _ in range(3):  # before, while and after the reader sees the close
                with pytest.raises(ConnectionError):
                    await client.request("start")
        return client.stats

    stats = run(scenario(), timeout=10)
    # Nothing is left pending once the reader has seen the connection end.
    assert (stats.pending, stats.timed_out, stats.answered) == (0, 0, 0)
