"""The receive path of ``ControlServerSession``: a connection's requests, text and binary.

Contract (README "Sessions: /ws/training and /ws/control"): ``receive`` never raises on what a
client sent and gives one ``ControlServerEvent``; a valid request naming a known command is
``CommandReceived``, and its response echoes its ``command_id``; anything else the server
cannot act on is ``RequestRejected``, whose ``reply`` is an error ``command_response`` with a
known error code, echoing the request's ``command_id`` when it had a usable one.
"""

from __future__ import annotations

import typing

from fuzz._harness import ContractBreach, instrumented, run
from fuzz._mutators import mutate_records

with instrumented():
    from fuzz._wire import Kind, decode_records
    from juniper_cascor_protocol.envelope import (
        INVALID_COMMAND_CODE,
        MALFORMED_JSON_CODE,
        UNKNOWN_COMMAND_CODE,
        CommandReceived,
        CommandResponseEnvelope,
        ControlServerEvent,
        ControlServerSession,
        LabelBudget,
        RequestRejected,
        validate_envelope_json,
    )

_EVENT_TYPES = typing.get_args(ControlServerEvent)
_CODES = {INVALID_COMMAND_CODE, MALFORMED_JSON_CODE, UNKNOWN_COMMAND_CODE}
WALL = 1_700_000_000.0


def _response(text: str) -> CommandResponseEnvelope:
    envelope = validate_envelope_json(text, labels=LabelBudget())
    if not isinstance(envelope, CommandResponseEnvelope):
        raise ContractBreach(f"the server wrote an invalid response: {text!r}")
    return envelope


def test_one_input(data: bytes) -> None:
    session = ControlServerSession(server_version="1.4.0", max_request_bytes=2048)
    now = WALL
    for record in decode_records(data):
        now += record.advance
        if record.kind is Kind.PAUSE:
            validate_envelope_json(session.ping(now=now))
            continue
        message: object = record.payload if record.kind is Kind.BINARY else record.text
        event = session.receive(message, now=now)
        if not isinstance(event, _EVENT_TYPES):
            raise ContractBreach(f"not a ControlServerEvent: {event!r}")
        if isinstance(event, CommandReceived):
            answer = _response(session.respond(event.command, "success", now=now))
            if answer.data.command_id != event.command.command_id:
                raise ContractBreach(f"{answer!r} does not echo {event.command!r}")
        elif isinstance(event, RequestRejected):
            reply = _response(event.reply)
            if reply.data.status != "error" or event.code not in _CODES:
                raise ContractBreach(f"a rejection that is no known error: {event!r}")
            if reply.data.code != event.code or reply.data.command_id != event.command_id:
                raise ContractBreach(f"the reply disagrees with the event: {event!r}")


if __name__ == "__main__":
    run(test_one_input, mutate_records)
