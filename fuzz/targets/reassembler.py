"""The ``Reassembler`` fed a connection's frames, as validated envelopes, over time.

Contract (README "Client: reassemble and watch seq", "Limits"): ``feed`` and ``expire`` never
raise; buffered bytes, messages in flight and remembered ids stay within their caps after every
call; every outcome is consistent (``COMPLETE`` carries the rebuilt envelope, ``REJECTED`` a
reason, ``PASSTHROUGH`` the envelope fed); a rebuilt envelope agrees with the chunks'
``original_type`` when either names a known type. The caps here are small so that the fuzzer
reaches them.
"""

from __future__ import annotations

from fuzz._harness import ContractBreach, instrumented, run
from fuzz._mutators import mutate_records

with instrumented():
    from fuzz._wire import Kind, decode_records
    from juniper_cascor_protocol.envelope import (
        KNOWN_ENVELOPES,
        ChunkedMessageEnvelope,
        LabelBudget,
        Reassembler,
        ReassemblyStatus,
        UnknownEnvelope,
        validate_envelope_json,
    )

MAX_BUFFERED_BYTES = 8192
MAX_MESSAGE_BYTES = 4096
MAX_IN_FLIGHT = 3
MAX_REMEMBERED = 4


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_input(data: bytes) -> None:
    clock = _Clock()
    reassembler = Reassembler(
        max_chunks_per_message=8,
        max_message_bytes=MAX_MESSAGE_BYTES,
        max_buffered_bytes=MAX_BUFFERED_BYTES,
        max_messages_in_flight=MAX_IN_FLIGHT,
        max_age_seconds=5.0,
        max_remembered_ids=MAX_REMEMBERED,
        max_header_chars=64,
        clock=clock,
    )
    labels = LabelBudget()
    for record in decode_records(data):
        clock.now += record.advance
        if record.kind is Kind.PAUSE:
            reassembler.expire()
        else:
            envelope = validate_envelope_json(record.payload, labels=labels)
            outcome = reassembler.feed(envelope)
            if outcome.status is ReassemblyStatus.PASSTHROUGH:
                if outcome.envelope is not envelope or isinstance(envelope, ChunkedMessageEnvelope):
                    raise ContractBreach(f"passthrough of {envelope!r} gave {outcome!r}")
            elif outcome.status is ReassemblyStatus.REJECTED:
                if outcome.reason is None:
                    raise ContractBreach(f"a rejection without a reason: {outcome!r}")
            elif outcome.status is ReassemblyStatus.COMPLETE:
                rebuilt = outcome.envelope
                if rebuilt is None or not isinstance(envelope, ChunkedMessageEnvelope):
                    raise ContractBreach(f"complete without an envelope: {outcome!r}")
                original_type = envelope.data.original_type
                reserved = isinstance(rebuilt, UnknownEnvelope) and rebuilt.type.startswith("_")
                if (original_type in KNOWN_ENVELOPES or rebuilt.type in KNOWN_ENVELOPES) and not (
                    rebuilt.type == original_type or reserved
                ):
                    raise ContractBreach(
                        f"chunks of {original_type!r} delivered a {rebuilt.type!r} envelope"
                    )
        stats = reassembler.stats()
        if reassembler.buffered_bytes > MAX_BUFFERED_BYTES:
            raise ContractBreach(f"{reassembler.buffered_bytes} bytes buffered")
        if reassembler.in_flight > MAX_IN_FLIGHT:
            raise ContractBreach(f"{reassembler.in_flight} messages in flight")
        if stats.remembered_ids > MAX_REMEMBERED:
            raise ContractBreach(f"{stats.remembered_ids} ids remembered")
        if (stats.in_flight, stats.buffered_bytes) != (
            reassembler.in_flight,
            reassembler.buffered_bytes,
        ):
            raise ContractBreach(f"stats disagree with the reassembler: {stats!r}")


if __name__ == "__main__":
    run(test_one_input, mutate_records)
