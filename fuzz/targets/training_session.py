"""The receive path of ``TrainingConsumerSession``: a connection's messages, text and binary.

Contract (README "Sessions: /ws/training and /ws/control"): ``receive`` and ``expire`` never
raise on what the server sent; every event is one of ``TrainingEvent``; a heartbeat is answered
with the pong text; the reassembler's buffers stay within its caps; ``stats()`` counts every
message and keeps its unknown labels bounded (the session's label budget plus the reserved
labels).
"""

from __future__ import annotations

import functools
import typing

from fuzz._harness import ContractBreach, instrumented, run
from fuzz._mutators import mutate_records

with instrumented():
    from fuzz._wire import Kind, decode_records
    from juniper_cascor_protocol.envelope import (
        UNKNOWN_TYPE_BUDGET,
        PingReceived,
        Reassembler,
        TrainingConsumerSession,
        TrainingEvent,
    )

MAX_BUFFERED_BYTES = 8192
MAX_IN_FLIGHT = 3
# A session's own budget of peer labels, plus the library's reserved ones.
MAX_UNKNOWN_LABELS = UNKNOWN_TYPE_BUDGET + 8
_EVENT_TYPES = typing.get_args(TrainingEvent)
_PONG = '{"type":"pong"}'


def test_one_input(data: bytes) -> None:
    session = TrainingConsumerSession(
        max_frame_bytes=2048,
        reassembler=functools.partial(
            Reassembler,
            max_chunks_per_message=8,
            max_message_bytes=4096,
            max_buffered_bytes=MAX_BUFFERED_BYTES,
            max_messages_in_flight=MAX_IN_FLIGHT,
            max_age_seconds=5.0,
            max_remembered_ids=4,
            max_header_chars=64,
        ),
    )
    now = 0.0
    received = 0
    for record in decode_records(data):
        now += record.advance
        events: list[typing.Any]
        if record.kind is Kind.PAUSE:
            events = list(session.expire(now=now))
        else:
            message: object = {
                Kind.TEXT: record.text,
                Kind.BINARY: record.payload,
                Kind.CONTROL: bytearray(record.payload),
            }[record.kind]
            events = session.receive(message, now=now)
            received += 1
        for event in events:
            if not isinstance(event, _EVENT_TYPES):
                raise ContractBreach(f"not a TrainingEvent: {event!r}")
            if isinstance(event, PingReceived) and event.reply != _PONG:
                raise ContractBreach(f"a heartbeat answered with {event.reply!r}")
        if session.buffered_bytes > MAX_BUFFERED_BYTES or session.in_flight > MAX_IN_FLIGHT:
            raise ContractBreach(
                f"{session.buffered_bytes} bytes in {session.in_flight} messages buffered"
            )
    stats = session.stats()
    if stats.messages != received:
        raise ContractBreach(f"{received} messages received, {stats.messages} counted")
    if len(stats.unknown) > MAX_UNKNOWN_LABELS:
        raise ContractBreach(f"{len(stats.unknown)} unknown labels counted")


if __name__ == "__main__":
    run(test_one_input, mutate_records)
