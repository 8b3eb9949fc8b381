"""The public names other packages import from the worker distribution."""

import subprocess
import sys

import numpy as np

import juniper_cascor_protocol.worker as worker
from juniper_cascor_protocol.worker import BinaryFrame, WorkerMessageType


def test_every_public_name_is_importable() -> None:
    for name in worker.__all__:
        assert hasattr(worker, name), name


def test_message_types_in_contract_order() -> None:
    assert [member.value for member in WorkerMessageType] == [
        "register",
        "heartbeat",
        "task_result",
        "registration_ack",
        "result_ack",
        "task_assign",
        "token_refresh",
        "connection_established",
        "error",
    ]


def test_a_frame_round_trips() -> None:
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    decoded = BinaryFrame.decode(BinaryFrame.encode(array))
    assert decoded.dtype == array.dtype
    assert decoded.shape == array.shape
    assert decoded.tobytes() == array.tobytes()


def test_importing_the_worker_package_does_not_import_pydantic() -> None:
    # A fresh interpreter: this test process may have imported Pydantic for other packages.
    code = (
        "import sys, juniper_cascor_protocol.worker as worker\n"
        "assert worker.parse_worker_message({'type': 'heartbeat'})\n"
        "assert 'pydantic' not in sys.modules, 'pydantic was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
