"""The receive path of ``ServerSession``: whatever a worker sends, text and binary, over time.

Contract: see :mod:`fuzz._worker_checks`. Records of kind PAUSE run ``tick``; kind CONTROL
makes the server assign a task (ids ``t0``, ``t1``...: the seed corpus answers them) whenever
``can_assign``, or close the connection when the payload starts with ``!``.
"""

from __future__ import annotations

from fuzz._harness import ContractBreach, instrumented, run
from fuzz._mutators import mutate_records

with instrumented():
    import numpy as np

    from fuzz._wire import Kind, decode_records
    from fuzz._worker_checks import check_outgoing, check_session
    from juniper_cascor_protocol.worker import (
        CANDIDATE_INPUT,
        RESIDUAL_ERROR,
        ServerSession,
        SessionState,
    )

BYTE_BUDGET = 1 << 12
TENSORS = {CANDIDATE_INPUT: np.ones((2, 2), np.float32), RESIDUAL_ERROR: np.zeros(2, np.float32)}


def test_one_input(data: bytes) -> None:
    session = ServerSession(
        now=0.0, server_version="0.13.0", heartbeat_interval=5.0, byte_budget=BYTE_BUDGET
    )
    check_session(session, [])
    now = 0.0
    assigned = 0
    for record in decode_records(data):
        now += record.advance
        if record.kind is Kind.PAUSE:
            check_session(session, session.tick(now))
        elif record.kind is Kind.CONTROL:
            if record.payload.startswith(b"!"):
                check_session(session, session.close(4010, "done"))
            elif session.can_assign:
                check_outgoing(session.send_task(f"t{assigned}", TENSORS, now=now))
                assigned += 1
            check_session(session, [])
        else:
            message = record.payload if record.kind is Kind.BINARY else record.text
            events = session.receive(message, now)
            check_session(session, events)
            if session.state is SessionState.CLOSED and session.receive(message, now):
                raise ContractBreach("a closed session reported events")


if __name__ == "__main__":
    run(test_one_input, mutate_records)
