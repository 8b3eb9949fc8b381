"""A loopback demo of the three juniper-cascor endpoints: the protocol's sessions on sockets.

Comes with the tool's distribution (``pip install 'juniper-cascor-protocol[cli]'``, which adds
``websockets``). Every rule of each conversation lives in the sans-I/O sessions of
``juniper_cascor_protocol.envelope`` and ``juniper_cascor_protocol.worker``; the demo binds them
to ``websockets``: sockets, tasks and timers only. :func:`run_demo` starts a
:class:`LoopbackServer` on 127.0.0.1, connects training clients, a control client and workers,
moves frames and tensors through every endpoint, checks what arrived, and returns a
:class:`DemoReport`::

    from juniper_cascor_protocol.demo import DemoOptions, run_demo_sync

    report = run_demo_sync(DemoOptions(frames=500, clients=2, tensor_mb=1.0))
    print(report.render())
    assert report.problems == []

The server and the clients are public too, for tests and experiments against real sockets.
"""

from juniper_cascor_protocol.demo.control_client import ControlClient
from juniper_cascor_protocol.demo.control_service import (
    INVALID_PARAMS_CODE,
    ControlService,
    TrainingParams,
)
from juniper_cascor_protocol.demo.options import (
    LOOPBACK_HOST,
    MAX_CLIENTS,
    MAX_DELIVERIES,
    MAX_FRAMES,
    MAX_TENSOR_MB,
    MAX_TIMEOUT_S,
    DemoOptions,
)
from juniper_cascor_protocol.demo.progress import DemoProgress, show_progress
from juniper_cascor_protocol.demo.report import DemoReport
from juniper_cascor_protocol.demo.run import run_demo, run_demo_sync
from juniper_cascor_protocol.demo.server import (
    CONTROL_PATH,
    TRAINING_PATH,
    WORKERS_PATH,
    LoopbackServer,
)
from juniper_cascor_protocol.demo.training_client import TrainingClient, TrainingClientStats
from juniper_cascor_protocol.demo.training_hub import TrainingHub
from juniper_cascor_protocol.demo.worker import DemoWorker, WorkerStats
from juniper_cascor_protocol.demo.worker_hub import (
    DEFAULT_MAX_BYTES_IN_FLIGHT,
    TaskOutcome,
    WorkerHub,
    WorkerTask,
)
from juniper_cascor_protocol.demo.worker_wire import SessionSocket, TensorTraffic
from juniper_cascor_protocol.envelope.control import MALFORMED_JSON_CODE

__all__ = [
    "CONTROL_PATH",
    "DEFAULT_MAX_BYTES_IN_FLIGHT",
    "INVALID_PARAMS_CODE",
    "LOOPBACK_HOST",
    "MALFORMED_JSON_CODE",
    "MAX_CLIENTS",
    "MAX_DELIVERIES",
    "MAX_FRAMES",
    "MAX_TENSOR_MB",
    "MAX_TIMEOUT_S",
    "TRAINING_PATH",
    "WORKERS_PATH",
    "ControlClient",
    "ControlService",
    "DemoOptions",
    "DemoProgress",
    "DemoReport",
    "DemoWorker",
    "LoopbackServer",
    "SessionSocket",
    "TaskOutcome",
    "TensorTraffic",
    "TrainingClient",
    "TrainingClientStats",
    "TrainingHub",
    "TrainingParams",
    "WorkerHub",
    "WorkerStats",
    "WorkerTask",
    "run_demo",
    "run_demo_sync",
    "show_progress",
]
