"""``validate_envelope_json`` on any message text, and ``validate_envelope`` on its JSON.

Contract (README "Validating frames", docs/protocol.md): neither raises on a peer's input; the
text gives the same envelope as ``validate_envelope(json.loads(text))``, whatever buffer type
carries it (``str``, ``bytes``, ``bytearray``, ``memoryview``), and text ``json.loads`` refuses
is ``_malformed_json`` (JSON that is no object ``_not_an_object``); an unknown envelope's
``type`` is a bounded label; and what arrives leaves unchanged: a typed envelope re-sent by
``to_wire_json`` reads back as the same envelope and keeps every value the frame held (an
optional field sent as ``null`` is left out; numbers compare as JSON readers read them, as
doubles).
"""

from __future__ import annotations

import re
from typing import Any

from fuzz._harness import ContractBreach, instrumented, read_as_every_carrier, run
from fuzz._mutators import mutate_json_text

with instrumented():
    from fuzz._wire import json_equal, loads_or_none
    from juniper_cascor_protocol.envelope import (
        BaseEnvelope,
        LabelBudget,
        UnknownEnvelope,
        to_wire_json,
        validate_envelope,
        validate_envelope_json,
    )

_LABEL = re.compile(r"[A-Za-z0-9_]{1,64}")


def same_envelope(left: BaseEnvelope, right: BaseEnvelope) -> bool:
    """The same class and the same wire text (NaN included, which ``==`` would refuse)."""
    return type(left) is type(right) and to_wire_json(left) == to_wire_json(right)


def covers(resent: Any, original: Any) -> bool:
    """``resent`` keeps every value of ``original`` (it may add defaults, drop ``null`` options)."""
    if isinstance(original, dict) and isinstance(resent, dict):
        return all(
            covers(resent[key], value) if key in resent else value is None
            for key, value in original.items()
        )
    numbers = (original, resent)
    if all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers):
        try:
            return float(original) == float(resent) or json_equal(original, resent)
        except OverflowError:  # an integer beyond any double: compared exactly
            return bool(original == resent)
    return json_equal(original, resent)


def check_envelope(raw: str | bytes, envelope: BaseEnvelope) -> None:
    """The contract of one validated message ``raw``; raises ContractBreach."""
    decoded_ok, decoded = loads_or_none(raw)
    if not decoded_ok:
        if not (isinstance(envelope, UnknownEnvelope) and envelope.type == "_malformed_json"):
            raise ContractBreach(f"json.loads refuses the text, validation gave {envelope!r}")
        return
    if not isinstance(decoded, dict):
        if not (isinstance(envelope, UnknownEnvelope) and envelope.type == "_not_an_object"):
            raise ContractBreach(f"the JSON is no object, validation gave {envelope!r}")
        return
    from_dict = validate_envelope(decoded, labels=LabelBudget())
    if not same_envelope(from_dict, envelope):
        raise ContractBreach(f"text gave {envelope!r}, its JSON gave {from_dict!r}")
    if isinstance(envelope, UnknownEnvelope):
        if _LABEL.fullmatch(envelope.type) is None:
            raise ContractBreach(f"unbounded label {envelope.type!r}")
        return
    resent = to_wire_json(envelope)
    again = validate_envelope_json(resent, labels=LabelBudget())
    if not same_envelope(again, envelope):
        raise ContractBreach(f"re-sent as {resent!r}, read back as {again!r}")
    if not covers(loads_or_none(resent)[1], decoded):
        raise ContractBreach(f"values changed on the way out: {resent!r}")


def _validate(raw: str | bytes | bytearray | memoryview) -> BaseEnvelope:
    # A budget of its own per read, so that no read changes the next one's labels.
    return validate_envelope_json(raw, labels=LabelBudget())


def test_one_input(data: bytes) -> None:
    read_as_every_carrier(data, _validate, same_envelope, check_envelope)


if __name__ == "__main__":
    run(test_one_input, mutate_json_text)
