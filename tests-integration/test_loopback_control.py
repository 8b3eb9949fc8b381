"""``/ws/control`` over real loopback connections: correlation by ``command_id`` and error codes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from juniper_cascor_protocol.demo.control_client import ControlClient
from juniper_cascor_protocol.demo.control_service import INVALID_PARAMS_CODE
from juniper_cascor_protocol.demo.server import CONTROL_PATH, TRAINING_PATH, LoopbackServer
from juniper_cascor_protocol.demo.training_client import TrainingClient
from juniper_cascor_protocol.envelope.control import (
    INVALID_COMMAND_CODE,
    MALFORMED_JSON_CODE,
    UNKNOWN_COMMAND_CODE,
    CommandStatus,
    ControlCommand,
    ControlCommandName,
)

STATE_AFTER = {
    "start": "running",
    "resume": "running",
    "pause": "paused",
    "stop": "stopped",
    "reset": "stopped",
}


def _requests(rounds: int) -> list[ControlCommand]:
    requests = []
    for round_ in range(rounds):
        for name in ControlCommandName:
            params = {"patience": round_ + 1} if name is ControlCommandName.SET_PARAMS else {}
            requests.append(ControlCommand(command=name, params=params))
    return requests


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
                responses = await asyncio.gather(*(client.request(r) for r in requests))
                assert client.established is not None
                assert client.unexpected.total() == 0
            for request, response in zip(requests, responses, strict=True):
                data = response.data
                assert data.command_id == request.command_id
                assert data.command == request.command
                assert data.status == CommandStatus.SUCCESS
                assert data.code is None
                assert response.seq is None  # control frames never carry seq
                assert data.result is not None
                if request.command == ControlCommandName.SET_PARAMS:
                    assert data.result["params"]["patience"] == request.params["patience"]
                else:
                    assert data.result["state"] == STATE_AFTER[request.command]
            # Each successful command was announced once on /ws/training as a `state` frame.
            await watcher.wait_for_seq(server.training.current_seq)
            assert watcher.stats.messages_by_type["state"] == len(requests)
            await watcher.disconnect()
            await reader

    run(scenario())


def test_errors_carry_their_codes_and_stay_correlated(run: Any) -> None:
    unknown = ControlCommand(command="teleport")
    negative_rate = ControlCommand(command="set_params", params={"learning_rate": -1.0})
    unknown_param = ControlCommand(command="set_params", params={"momentum": 0.9})
    params_on_start = ControlCommand(command="start", params={"epochs": 3})
    wrong_type = ControlCommand(command="set_params", params={"patience": "three"})

    async def scenario() -> None:
        async with LoopbackServer() as server:
            async with ControlClient.connect(server.url(CONTROL_PATH)) as client:
                answers = await asyncio.gather(
                    client.request(unknown),
                    client.request(negative_rate),
                    client.request(unknown_param),
                    client.request(params_on_start),
                    client.request(wrong_type),
                    client.request_raw(
                        json.dumps({"command_id": "no-command", "params": {}}), "no-command"
                    ),
                )
                malformed = await client.request_raw('{"command": "start", "command_id": ')
                not_object = await client.request_raw("[1, 2, 3]")
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
            assert [a.data.command_id for a in answers[:5]] == [
                r.command_id
                for r in (unknown, negative_rate, unknown_param, params_on_start, wrong_type)
            ]
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
