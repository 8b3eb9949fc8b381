"""``parse_command_json`` on any request text, and ``parse_command`` on its JSON.

Contract (README "Server and client: /ws/control", docs/protocol.md): neither raises on a
peer's input; the text gives what ``parse_command(json.loads(text))`` gives, and text
``json.loads`` refuses is a ``CommandParseError`` coded ``malformed_json``; an error echoes a
``command`` and ``command_id`` only within their limits (64 and 128 characters) and only as
valid Unicode; a valid request re-sent by ``to_wire_json`` reads back as the same request.
"""

from __future__ import annotations

from fuzz._harness import ContractBreach, instrumented, read_as_every_carrier, run
from fuzz._mutators import mutate_json_text

with instrumented():
    from fuzz._wire import json_equal, loads_or_none
    from juniper_cascor_protocol.envelope import (
        MALFORMED_JSON_CODE,
        CommandParseError,
        ControlCommand,
        parse_command,
        parse_command_json,
    )

_ECHO_LIMITS = {"command": 64, "command_id": 128}


def same_request(
    left: ControlCommand | CommandParseError, right: ControlCommand | CommandParseError
) -> bool:
    if isinstance(left, ControlCommand) and isinstance(right, ControlCommand):
        return json_equal(left.to_wire_dict(), right.to_wire_dict())
    return left == right


def check_request(raw: str | bytes, request: ControlCommand | CommandParseError) -> None:
    decoded_ok, decoded = loads_or_none(raw)
    if not decoded_ok:
        if not (isinstance(request, CommandParseError) and request.code == MALFORMED_JSON_CODE):
            raise ContractBreach(f"json.loads refuses the text, parsing gave {request!r}")
        return
    from_dict = parse_command(decoded)
    if not same_request(from_dict, request):
        raise ContractBreach(f"text gave {request!r}, its JSON gave {from_dict!r}")
    if isinstance(request, CommandParseError):
        if not request.errors:
            raise ContractBreach("a CommandParseError names no problem")
        for field, limit in _ECHO_LIMITS.items():
            echoed = getattr(request, field)
            if echoed is None:
                continue
            if len(echoed) > limit:
                raise ContractBreach(f"{field} echoed beyond {limit} characters: {echoed!r}")
            try:
                echoed.encode("utf-8")
            except UnicodeEncodeError:
                raise ContractBreach(f"{field} echoed with a lone surrogate") from None
        return
    resent = request.to_wire_json()
    again = parse_command_json(resent)
    if not same_request(again, request):
        raise ContractBreach(f"re-sent as {resent!r}, read back as {again!r}")


def test_one_input(data: bytes) -> None:
    read_as_every_carrier(data, parse_command_json, same_request, check_request)


if __name__ == "__main__":
    run(test_one_input, mutate_json_text)
