"""``parse_worker_message_json`` on any message text, and ``parse_worker_message`` on its JSON.

Contract (README "Worker messages and tensor manifests", docs/protocol.md): neither raises on a
peer's input; the text gives what ``parse_worker_message(json.loads(text))`` gives, whatever
buffer type carries it, and text ``json.loads`` refuses is one ``FieldError`` at path ``()``
starting with ``MALFORMED_JSON``; a refusal lists at least one ``FieldError``; a message's
``to_wire()`` is JSON-ready and parses back to the same message (keys a newer peer added
included).
"""

from __future__ import annotations

import json
from typing import Any

from fuzz._harness import ContractBreach, instrumented, read_as_every_carrier, run
from fuzz._mutators import mutate_json_text

with instrumented():
    from fuzz._wire import json_equal, loads_or_none
    from juniper_cascor_protocol.worker import (
        MALFORMED_JSON,
        FieldError,
        parse_worker_message,
        parse_worker_message_json,
    )


def same_result(left: Any, right: Any) -> bool:
    if isinstance(left, list) or isinstance(right, list):
        return bool(left == right)
    return type(left) is type(right) and json_equal(left.to_wire(), right.to_wire())


def check_message(raw: str | bytes, result: Any) -> None:
    decoded_ok, decoded = loads_or_none(raw)
    if not decoded_ok:
        if not (
            isinstance(result, list)
            and len(result) == 1
            and result[0].path == ()
            and str(result[0].message).startswith(MALFORMED_JSON)
        ):
            raise ContractBreach(f"json.loads refuses the text, parsing gave {result!r}")
        return
    from_dict = parse_worker_message(decoded)
    if not same_result(from_dict, result):
        raise ContractBreach(f"text gave {result!r}, its JSON gave {from_dict!r}")
    if isinstance(result, list):
        if not result or not all(isinstance(error, FieldError) for error in result):
            raise ContractBreach(f"a refusal without FieldErrors: {result!r}")
        for error in result:
            str(error)  # every problem can be written to a log
        return
    wire = json.dumps(result.to_wire())
    again = parse_worker_message_json(wire)
    if not same_result(again, result):
        raise ContractBreach(f"re-sent as {wire!r}, read back as {again!r}")


def test_one_input(data: bytes) -> None:
    read_as_every_carrier(data, parse_worker_message_json, same_result, check_message)


if __name__ == "__main__":
    run(test_one_input, mutate_json_text)
