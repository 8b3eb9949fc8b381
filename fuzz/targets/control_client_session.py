"""The receive path of ``ControlClientSession``: commands issued, and whatever the server sends.

Contract (README "Sessions: /ws/training and /ws/control"): ``receive``, ``expire`` and
``connection_lost`` never raise on what the server sent, and give only ``ControlClientEvent``s;
every request issued ends exactly once, answered (``CommandAnswered``, ``InvalidResponse``),
timed out or abandoned, never twice and never one that is not pending; ``pending`` agrees.
Input records of kind CONTROL issue a command (command ids ``c0``, ``c1``...: the seed corpus
answers them) or, when the payload starts with ``!``, drop the connection.
"""

from __future__ import annotations

import typing

from fuzz._harness import ContractBreach, instrumented, run
from fuzz._mutators import mutate_records

with instrumented():
    from fuzz._wire import Kind, decode_records
    from juniper_cascor_protocol.envelope import (
        KNOWN_COMMANDS,
        CommandAbandoned,
        CommandAnswered,
        CommandTimedOut,
        ControlClientError,
        ControlClientEvent,
        ControlClientSession,
        InvalidResponse,
    )

_EVENT_TYPES = typing.get_args(ControlClientEvent)
_ENDINGS = (CommandAnswered, InvalidResponse, CommandTimedOut)
_COMMANDS = sorted(KNOWN_COMMANDS)


def _settle(events: typing.Iterable[object], pending: dict[str, float]) -> None:
    for event in events:
        if not isinstance(event, (*_EVENT_TYPES, CommandAbandoned)):
            raise ContractBreach(f"not a ControlClientEvent: {event!r}")
        if isinstance(event, (*_ENDINGS, CommandAbandoned)):
            command_id = event.request.command_id
            if pending.pop(command_id, None) is None:
                raise ContractBreach(f"{event!r} ends a request that is not pending")


def test_one_input(data: bytes) -> None:
    session = ControlClientSession(max_pending=4, default_timeout=5.0, max_frame_bytes=2048)
    pending: dict[str, float] = {}
    issued = 0
    now = 0.0
    for record in decode_records(data):
        now += record.advance
        if record.kind is Kind.PAUSE:
            _settle(session.expire(now=now), pending)
        elif record.kind is Kind.CONTROL:
            if record.payload.startswith(b"!"):
                _settle(session.connection_lost(), pending)
            else:
                command = _COMMANDS[record.payload[0] % len(_COMMANDS)] if record.payload else "x"
                try:
                    request = session.issue(command, now=now, command_id=f"c{issued}")
                except ControlClientError:  # documented: too many pending, or incompatible
                    pass
                else:
                    pending[request.command_id] = request.deadline
                issued += 1
        else:
            message = record.payload if record.kind is Kind.BINARY else record.text
            _settle(session.receive(message, now=now), pending)
        if session.pending != len(pending):
            raise ContractBreach(f"{session.pending} pending, {len(pending)} expected")
    _settle(session.connection_lost(), pending)
    if pending:
        raise ContractBreach(f"requests never ended: {sorted(pending)}")


if __name__ == "__main__":
    run(test_one_input, mutate_records)
