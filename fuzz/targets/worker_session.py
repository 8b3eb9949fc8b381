"""The receive path of ``WorkerSession``: whatever the server sends, text and binary, over time.

Contract: see :mod:`fuzz._worker_checks`. Records of kind PAUSE run ``tick``; kind CONTROL
makes the worker act as its trainer would (by the payload's first byte: a heartbeat, a result
or a failure for the last task received, or a close), so that the fuzzer reaches the states
those actions lead to; an action the session refuses with its documented ``RuntimeError``
(not registered, closed, no such task) is skipped.
"""

from __future__ import annotations

from fuzz._harness import ContractBreach, instrumented, run
from fuzz._mutators import mutate_records

with instrumented():
    import numpy as np

    from fuzz._wire import Kind, Record, decode_records
    from fuzz._worker_checks import check_outgoing, check_session
    from juniper_cascor_protocol.worker import (
        WEIGHTS,
        SessionState,
        TaskReceived,
        TaskResultMessage,
        WorkerSession,
    )

BYTE_BUDGET = 1 << 12


def _act(session: WorkerSession, record: Record, task_id: str, now: float) -> None:
    action = record.payload[0] % 4 if record.payload else 0
    try:
        if action == 0:
            check_outgoing(session.send_heartbeat(now))
        elif action == 1:
            result = TaskResultMessage(
                task_id=task_id, candidate_id=0, correlation=0.5, success=True, epochs_completed=1
            )
            check_outgoing(session.send_result(result, {WEIGHTS: np.ones(2, np.float32)}))
        elif action == 2:
            check_outgoing(session.send_failure(task_id, "diverged"))
        else:
            check_session(session, session.receive_close(1000 + record.payload[-1], "bye"))
    except RuntimeError:
        pass


def test_one_input(data: bytes) -> None:
    session = WorkerSession("worker-1", now=0.0, byte_budget=BYTE_BUDGET)
    check_session(session, [])
    now = 0.0
    task_id = ""
    for record in decode_records(data):
        now += record.advance
        if record.kind is Kind.PAUSE:
            check_session(session, session.tick(now))
        elif record.kind is Kind.CONTROL:
            _act(session, record, task_id, now)
            check_session(session, [])
        else:
            message = record.payload if record.kind is Kind.BINARY else record.text
            events = session.receive(message, now)
            check_session(session, events)
            for event in events:
                if isinstance(event, TaskReceived):
                    task_id = event.task.task_id
            if session.state is SessionState.CLOSED and session.receive(message, now):
                raise ContractBreach("a closed session reported events")


if __name__ == "__main__":
    run(test_one_input, mutate_records)
