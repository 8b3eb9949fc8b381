"""The contract both ``/ws/v1/workers`` session targets check after every call.

A session never raises on a peer's input (README "Sessions: /ws/v1/workers"); it returns only
``SessionEvent``s; it holds at most its ``byte_budget`` of tensor frames; everything it writes
is a message the peer can read (a text that parses as a worker message, a binary frame that
decodes); once closed it stays closed and ignores what still arrives.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable

from fuzz._harness import ContractBreach
from juniper_cascor_protocol.worker import (
    BinaryFrame,
    Closed,
    ServerSession,
    SessionEvent,
    SessionState,
    WorkerSession,
    parse_worker_message_json,
)

__all__ = ["check_outgoing", "check_session"]

_EVENT_TYPES = typing.get_args(SessionEvent)


def check_outgoing(messages: Iterable[object]) -> None:
    for message in messages:
        if isinstance(message, str):
            parsed = parse_worker_message_json(message)
            if isinstance(parsed, list):
                raise ContractBreach(f"the session wrote an invalid message {message!r}")
        elif isinstance(message, bytes):
            BinaryFrame.decode(message, copy=False)
        else:
            raise ContractBreach(f"the session wrote {type(message).__name__}")


def check_session(session: WorkerSession | ServerSession, events: Iterable[object]) -> None:
    for event in events:
        if not isinstance(event, _EVENT_TYPES):
            raise ContractBreach(f"not a SessionEvent: {event!r}")
        if isinstance(event, Closed) and session.state is not SessionState.CLOSED:
            raise ContractBreach(f"{event!r} but the session is {session.state}")
    if session.buffered_bytes > session.byte_budget:
        raise ContractBreach(f"{session.buffered_bytes} bytes held > {session.byte_budget}")
    check_outgoing(session.data_to_send())
