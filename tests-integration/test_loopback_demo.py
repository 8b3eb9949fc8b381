"""The demo as its command runs it: ``run_demo`` end to end, its options and its report."""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from juniper_cascor_protocol.demo import (
    INVALID_PARAMS_CODE,
    MALFORMED_JSON_CODE,
    DemoOptions,
    LoopbackServer,
    run_demo,
    run_demo_sync,
)
from juniper_cascor_protocol.envelope.control import UNKNOWN_COMMAND_CODE, ControlCommandName
from juniper_cascor_protocol.worker.tensor_names import REQUIRED_TASK_TENSORS, RESULT_TENSORS

# candidate_input and residual_error; weights, bias, norm_output and norm_error.
TENSORS_PER_TASK = len(REQUIRED_TASK_TENSORS) + len(RESULT_TENSORS)


def test_a_clean_run_reports_every_endpoint_and_no_problem() -> None:
    options = DemoOptions(frames=300, clients=2, tensor_mb=0.5)

    report = run_demo_sync(options)

    assert report.problems == []
    assert report.frames_by_type["chunked_message"] >= 2  # the oversized topology
    assert "topology" not in report.frames_by_type  # it never went out in one frame
    assert report.chunked_reassembled == options.clients
    assert report.frames_received == options.clients * report.frames_sent
    assert report.seq_gaps == report.seq_missing == report.seq_duplicates == 0
    assert report.control_responses == {
        "success": len(ControlCommandName),
        UNKNOWN_COMMAND_CODE: 1,
        INVALID_PARAMS_CODE: 1,
        MALFORMED_JSON_CODE: 1,
    }
    assert report.tasks == options.clients
    assert report.tensors_sent == options.clients * TENSORS_PER_TASK
    assert report.tensor_bytes > options.clients * options.tensor_bytes
    summary = json.loads(json.dumps(report.to_json()))
    assert summary["problems"] == []
    assert summary["frames_sent"] == report.frames_sent
    assert summary["frames_per_s"] > 0
    assert summary["tensor_mb_per_s"] > 0
    text = report.render()
    assert "problems: none" in text
    for endpoint in ("/ws/training", "/ws/control", "/ws/v1/workers"):
        assert endpoint in text


def test_a_run_cut_short_by_its_timeout_returns_a_report_with_the_problem(run: Any) -> None:
    # The outer bound fails the test if shutting down after the timeout hangs.
    report = run(run_demo(DemoOptions(frames=1_000_000, clients=1, timeout_s=0.5)), timeout=10)

    assert any("timed out" in problem for problem in report.problems)
    assert "problems (" in report.render()


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("host", "0.0.0.0", "127.0.0.1"),
        ("frames", 0, "between 1 and"),
        ("clients", 65, "between 1 and 64"),
        ("tensor_mb", 64.5, "<= 64"),
        ("tensor_mb", float("nan"), "> 0"),
        ("timeout_s", 0, "> 0"),
        ("port", 70_000, "between 0 and 65535"),
    ],
)
def test_options_out_of_range_are_refused_naming_the_field(
    field: str, value: Any, needle: str
) -> None:
    with pytest.raises(ValueError, match=field) as raised:
        DemoOptions(**{field: value})
    assert needle in str(raised.value)


def test_the_server_binds_loopback_only_and_refuses_unknown_paths(run: Any) -> None:
    async def scenario() -> tuple[str, int]:
        async with LoopbackServer() as server:
            host = server._server.sockets[0].getsockname()[0] if server._server else ""
            try:
                async with connect(server.url("/ws/elsewhere")):
                    pass
            except InvalidStatus as refused:
                return host, refused.response.status_code
            return host, 0

    host, status = run(scenario())
    assert host == "127.0.0.1"
    assert status == 404


def test_run_demo_can_be_awaited_inside_a_running_loop(run: Any) -> None:
    report = run(run_demo(DemoOptions(frames=50, clients=1, tensor_mb=0.1)))

    assert report.problems == []
    assert report.clients == 1
