"""Properties of the sessions over generated input: hostile peers, and both ends in memory."""

from __future__ import annotations

import functools
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from juniper_cascor_protocol.envelope import (
    KNOWN_ENVELOPES,
    UNKNOWN_COMMAND_CODE,
    UNKNOWN_TYPE_BUDGET,
    Chunker,
    ChunkRejected,
    CommandAnswered,
    CommandReceived,
    CommandResponseEnvelope,
    CommandStatus,
    CommandTimedOut,
    ControlClientSession,
    ControlCommandName,
    ControlServerSession,
    EnvelopeReceived,
    EventEnvelope,
    IncompatibleServerError,
    LateResponse,
    MetricsEnvelope,
    PendingLimitError,
    Reassembler,
    Refusal,
    RequestRejected,
    SeqAnomaly,
    StateEnvelope,
    TopologyEnvelope,
    TrainingConsumerSession,
    TrainingProducerSession,
    UnknownFrame,
)
from juniper_cascor_protocol.envelope.labels import RESERVED_LABELS

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = 1_700_000_000.0

# --- hostile input -------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)
type_names = st.sampled_from([*KNOWN_ENVELOPES, "ping", "pong", "resume_ok"]) | st.text(max_size=20)
chunk_ids = st.sampled_from(["a", "b", "c", "d"]) | st.text(max_size=140)


def frame_text(**fields: Any) -> str:
    return json.dumps(fields)


seq_frames = st.builds(
    lambda type_, seq: frame_text(type=type_, timestamp=1.0, data={}, seq=seq),
    type_names,
    st.integers(min_value=-(2**64), max_value=2**64),
)
initial_metrics = st.builds(
    lambda current, count: frame_text(
        type="initial_metrics", timestamp=1.0, data={"count": count, "current_seq": current}
    ),
    st.integers(min_value=-5, max_value=2**40),
    st.integers(min_value=0, max_value=3),
)
chunks = st.builds(
    lambda chunk_id, index, total, payload, original_type, seq: frame_text(
        type="chunked_message",
        timestamp=1.0,
        data={
            "chunk_id": chunk_id,
            "chunk_index": index,
            "total_chunks": total,
            "original_type": original_type,
            "payload": payload,
        },
        seq=seq,
    ),
    chunk_ids,
    st.integers(min_value=-1, max_value=12),
    st.integers(min_value=0, max_value=12),
    st.text(max_size=400),
    type_names | st.text(min_size=129, max_size=140),
    st.integers(min_value=0, max_value=50),
)
hostile_training = st.one_of(
    st.text(max_size=60),
    st.binary(max_size=30),
    st.builds(json.dumps, json_values),
    st.builds(
        lambda type_, data: frame_text(type=type_, timestamp=1.0, data=data),
        type_names,
        json_values,
    ),
    seq_frames,
    initial_metrics,
    chunks,
    st.just('{"type": "ping", "ts": 1.0}'),
    st.integers(min_value=4097, max_value=6000).map(lambda size: "x" * size),
)

# Bounded key sets: known names, reserved labels and the label budget; refusals and rejections.
MAX_TYPE_KEYS = len(KNOWN_ENVELOPES) + len(RESERVED_LABELS) + UNKNOWN_TYPE_BUDGET
MAX_REFUSED_KEYS = len(Refusal)

IN_FLIGHT, MESSAGE_BYTES, BUFFERED_BYTES, REMEMBERED = 3, 3000, 6000, 16
small_reassembler = functools.partial(
    Reassembler,
    max_messages_in_flight=IN_FLIGHT,
    max_message_bytes=MESSAGE_BYTES,
    max_buffered_bytes=BUFFERED_BYTES,
    max_chunks_per_message=8,
    max_remembered_ids=REMEMBERED,
    max_age_seconds=30.0,
)


@SETTINGS
@given(
    steps=st.lists(
        st.tuples(
            st.one_of(hostile_training, st.integers(min_value=0, max_value=4000)),
            st.floats(min_value=0.0, max_value=20.0),
        ),
        max_size=40,
    )
)
def test_a_training_consumer_never_raises_and_stays_within_its_bounds(
    steps: list[tuple[str | bytes | int, float]],
) -> None:
    producer = TrainingProducerSession(chunker=Chunker(1024))
    consumer = TrainingConsumerSession(max_frame_bytes=4096, reassembler=small_reassembler)
    now = 0.0
    for item, elapsed in steps:
        now += elapsed
        # An int is a valid broadcast of that many payload characters, interleaved with the rest.
        messages: list[str | bytes] = [item] if not isinstance(item, int) else []
        if isinstance(item, int):
            data = {"blob": "y" * item}
            messages += producer.broadcast(StateEnvelope, data, now=NOW, monotonic=now)
        for message in messages:
            consumer.receive(message, now=now)
            assert consumer.in_flight <= IN_FLIGHT
            assert consumer.buffered_bytes <= BUFFERED_BYTES
    stats = consumer.stats()
    assert stats.reassembly.remembered_ids <= REMEMBERED
    assert len(stats.delivered) + len(stats.unknown) <= MAX_TYPE_KEYS
    assert len(stats.refused) <= MAX_REFUSED_KEYS


# --- producer and consumer in memory --------------------------------------------------------

broadcasts = st.one_of(
    st.builds(lambda epoch: (MetricsEnvelope, {"epoch": epoch}), st.integers(0, 10**6)),
    st.builds(lambda size: (TopologyEnvelope, {"weights": [0.5] * size}), st.integers(0, 900)),
    st.builds(lambda text: (EventEnvelope, {"note": text}), st.text(max_size=300)),
)
# ("send", broadcast) while connected; ("away", broadcasts) sent while the consumer is away,
# after which it reconnects; ("idle", seconds) for time passing without traffic.
operations = st.one_of(
    st.tuples(st.just("send"), broadcasts),
    st.tuples(st.just("away"), st.lists(broadcasts, max_size=4)),
    st.tuples(st.just("idle"), st.floats(min_value=0.0, max_value=100.0)),
)


_ON_CONNECT = frozenset({"connection_established", "initial_metrics"})


@SETTINGS
@given(steps=st.lists(operations, max_size=25), recent=st.integers(0, 40))
def test_a_producer_and_a_consumer_agree(steps: list[tuple[str, Any]], recent: int) -> None:
    producer = TrainingProducerSession(chunker=Chunker(1024), recent_metrics=recent)
    consumer = TrainingConsumerSession()
    now = 0.0
    expected: list[tuple[str, dict[str, Any]]] = []
    delivered: list[tuple[str, dict[str, Any]]] = []
    missed = 0

    def deliver(texts: list[str]) -> None:
        for text in texts:
            for event in consumer.receive(text, now=now):
                assert not isinstance(event, SeqAnomaly | UnknownFrame | ChunkRejected), event
                if isinstance(event, EnvelopeReceived) and event.envelope.type not in _ON_CONNECT:
                    delivered.append((event.envelope.type, event.envelope.data))

    def broadcast(envelope: tuple[type[Any], dict[str, Any]]) -> list[str]:
        envelope_type, data = envelope
        return producer.broadcast(envelope_type, data, now=NOW, monotonic=now)

    deliver(producer.subscribe(now=NOW, monotonic=now))
    for kind, argument in steps:
        if kind == "send":
            texts = broadcast(argument)
            expected.append((argument[0].model_fields["type"].default, argument[1]))
            deliver(texts)
        elif kind == "away":
            missed += sum(len(broadcast(envelope)) for envelope in argument)
            deliver(producer.subscribe(now=NOW, monotonic=now))
        else:
            now += argument
            consumer.expire(now=now)
    stats = consumer.stats()
    assert (stats.seq.gaps, stats.seq.duplicates, stats.seq.resets) == (0, 0, 0)
    assert stats.missed_while_away == missed
    assert stats.seq.last_seq == producer.current_seq
    assert consumer.in_flight == 0
    assert delivered == expected


# --- control client against hostile frames -------------------------------------------------

ids = st.sampled_from(["c-1", "c-2", "c-3", "c-4", "c-5", "x"]) | st.text(max_size=10)
versions = st.sampled_from(["0.3", "0.9", "1.0", "0.3.1", ""]) | st.text(max_size=12) | json_scalars
responses = st.builds(
    lambda command_id, status, data: frame_text(
        type="command_response",
        timestamp=1.0,
        data={"command": "start", "status": status, "command_id": command_id, **data},
    ),
    ids | st.none(),
    st.sampled_from(list(CommandStatus)) | st.text(max_size=5),
    st.dictionaries(st.sampled_from(["result", "error", "code"]), json_values, max_size=2),
)
loose_responses = st.builds(
    lambda command_id, extra: frame_text(
        **{**extra, "type": "command_response", "command_id": command_id}
    ),
    ids,
    st.dictionaries(st.text(max_size=6), json_values, max_size=3),
)
greetings = st.builds(
    lambda version, server: frame_text(
        type="connection_established",
        timestamp=1.0,
        data={"protocol_version": version, "server_version": server},
    ),
    versions,
    json_scalars,
)
hostile_control = st.one_of(
    st.text(max_size=60),
    st.binary(max_size=30),
    st.builds(json.dumps, json_values),
    responses,
    loose_responses,
    greetings,
    st.just('{"type": "ping", "ts": 1.0}'),
    st.integers(min_value=4097, max_value=6000).map(lambda size: "x" * size),
)
client_steps = st.one_of(
    st.tuples(st.just("issue"), st.floats(min_value=0.001, max_value=20.0)),
    st.tuples(st.just("receive"), hostile_control),
    st.tuples(st.just("wait"), st.floats(min_value=0.0, max_value=20.0)),
    st.tuples(st.just("lost"), st.none()),
)
PENDING, REMEMBERED_IDS = 4, 3


@SETTINGS
@given(steps=st.lists(client_steps, max_size=40))
def test_a_control_client_never_raises_on_frames_and_stays_within_its_bounds(
    steps: list[tuple[str, Any]],
) -> None:
    counter = iter(range(1, 10**6))
    client = ControlClientSession(
        max_pending=PENDING,
        max_remembered_ids=REMEMBERED_IDS,
        max_frame_bytes=4096,
        command_id_factory=lambda: f"c-{next(counter)}",
    )
    now = 0.0
    for kind, argument in steps:
        if kind == "issue":
            try:
                client.issue("start", now=now, timeout=argument)
            except PendingLimitError:
                assert client.pending == PENDING
            except IncompatibleServerError:
                assert client.state == "incompatible"
        elif kind == "receive":
            client.receive(argument, now=now)
        elif kind == "wait":
            now += argument
            client.expire(now=now)
        else:
            client.connection_lost()
        stats = client.stats()
        assert client.pending == stats.pending <= PENDING
        assert stats.remembered_ids <= REMEMBERED_IDS
        assert len(stats.refused) <= MAX_REFUSED_KEYS
        assert len(stats.unknown_frames) <= MAX_TYPE_KEYS
    stats = client.stats()
    closed = stats.answered + stats.invalid_responses + stats.timed_out + stats.abandoned
    assert stats.issued == closed + stats.pending


# --- control client and server in memory ----------------------------------------------------

commands = st.tuples(
    st.sampled_from([*ControlCommandName, "checkpoint", "x" * 64]),
    st.floats(min_value=0.5, max_value=10.0),  # the timeout
)


@SETTINGS
@given(
    requests=st.lists(commands, min_size=1, max_size=12),
    order=st.randoms(use_true_random=False),
    arrivals=st.lists(st.floats(min_value=0.0, max_value=12.0), min_size=12, max_size=12),
)
def test_a_control_client_and_server_agree(
    requests: list[tuple[str, float]], order: Any, arrivals: list[float]
) -> None:
    client = ControlClientSession()
    server = ControlServerSession()
    (greeted,) = client.receive(server.greeting(now=0.0), now=0.0)
    assert client.state == "open", greeted
    issued = [client.issue(name, now=0.0, timeout=timeout) for name, timeout in requests]
    replies: dict[str, str] = {}
    for request in issued:
        outcome = server.receive(request.text, now=0.0)
        if isinstance(outcome, CommandReceived):
            replies[request.command_id] = server.respond(outcome.command, "success", now=0.0)
        else:
            assert isinstance(outcome, RequestRejected)
            assert outcome.code == UNKNOWN_COMMAND_CODE
            replies[request.command_id] = outcome.reply
    answered_in = [request.command_id for request in issued]
    order.shuffle(answered_in)
    times = sorted(arrivals[: len(answered_in)])  # one connection: arrivals in time order
    outcomes: dict[str, list[str]] = {request.command_id: [] for request in issued}
    by_id = {request.command_id: request for request in issued}
    for command_id, now in zip(answered_in, times, strict=True):
        for event in client.receive(replies[command_id], now=now):
            if isinstance(event, CommandAnswered):
                assert event.response.data.command_id == event.request.command_id
                expected_status = (
                    "error" if event.request.command not in set(ControlCommandName) else "success"
                )
                assert event.response.data.status == expected_status
                outcomes[event.request.command_id].append("answered")
            elif isinstance(event, CommandTimedOut):
                outcomes[event.request.command_id].append("timed_out")
            else:
                assert isinstance(event, LateResponse), event
                late_id = event.response.data.command_id
                assert late_id is not None
                outcomes[late_id].append("late")
        expected = ["answered"] if now < by_id[command_id].deadline else ["timed_out", "late"]
        assert outcomes[command_id] == expected, (command_id, now)
    assert client.pending == 0


@SETTINGS
@given(
    message=hostile_control
    | st.builds(
        json.dumps,
        st.dictionaries(
            st.sampled_from(["command", "params", "command_id", "type"]), json_values, max_size=4
        ),
    )
)
def test_a_control_server_never_raises_and_answers_every_bad_request(message: str | bytes) -> None:
    outcome = ControlServerSession(max_request_bytes=4096).receive(message, now=2.0)
    if isinstance(outcome, RequestRejected):
        response = CommandResponseEnvelope.model_validate_json(outcome.reply)
        assert response.data.status == "error"
        assert response.data.code == outcome.code
    elif isinstance(outcome, CommandReceived):
        assert outcome.command.command == outcome.name.value
