"""Producer-side builders: stamping, the seq rule and the exact wire form."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from juniper_cascor_protocol.envelope.base import BaseEnvelope
from juniper_cascor_protocol.envelope.builders import (
    BroadcastBuilder,
    ControlBuilder,
    command_response,
    connection_established,
    to_wire_dict,
    to_wire_json,
)
from juniper_cascor_protocol.envelope.chunking import MIN_FRAME_BYTES, STAMP_HEADROOM, Chunker
from juniper_cascor_protocol.envelope.control import (
    CommandResponseEnvelope,
    CommandStatus,
    ConnectionEstablishedEnvelope,
    ControlCommand,
    ControlCommandName,
)
from juniper_cascor_protocol.envelope.sequence import MAX_SEQ, SequenceCounter
from juniper_cascor_protocol.envelope.training import (
    CandidateProgressEnvelope,
    CascadeAddEnvelope,
    ChunkedMessageEnvelope,
    EventEnvelope,
    InitialMetricsEnvelope,
    MetricsEnvelope,
    StateEnvelope,
    TopologyEnvelope,
)
from juniper_cascor_protocol.envelope.validate import (
    KNOWN_ENVELOPES,
    validate_envelope,
    validate_envelope_json,
)

BROADCAST_METHODS: dict[str, type[BaseEnvelope]] = {
    "metrics": MetricsEnvelope,
    "state": StateEnvelope,
    "topology": TopologyEnvelope,
    "event": EventEnvelope,
    "cascade_add": CascadeAddEnvelope,
    "candidate_progress": CandidateProgressEnvelope,
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=6)


def ticking(start: float) -> Callable[[], float]:
    values = itertools.count(start)
    return lambda: next(values)


def assert_exact_wire_form(envelope: BaseEnvelope) -> None:
    """The wire JSON is the exclude_none dump, and it validates back to the same envelope."""
    wire = to_wire_json(envelope)
    assert json.loads(wire) == envelope.model_dump(exclude_none=True) == to_wire_dict(envelope)
    for back in (validate_envelope_json(wire), validate_envelope(json.loads(wire))):
        assert type(back) is type(envelope)
        assert back == envelope


@pytest.mark.parametrize(("method", "envelope_type"), list(BROADCAST_METHODS.items()))
def test_each_broadcast_builder_stamps_time_seq_and_monotonic(
    method: str, envelope_type: type[BaseEnvelope]
) -> None:
    builder = BroadcastBuilder(
        SequenceCounter(start=7), clock=lambda: 1700000000.25, monotonic=lambda: 12.5
    )
    envelope = getattr(builder, method)({"epoch": 3})
    assert type(envelope) is envelope_type
    assert to_wire_dict(envelope) == {
        "type": method,
        "timestamp": 1700000000.25,
        "data": {"epoch": 3},
        "seq": 7,
        "emitted_at_monotonic": 12.5,
    }
    assert builder.counter.current == 7
    assert_exact_wire_form(envelope)


def test_broadcasts_take_consecutive_seq_from_a_shared_counter() -> None:
    counter = SequenceCounter()
    first = BroadcastBuilder(counter, monotonic=ticking(100.0))
    second = BroadcastBuilder(counter)
    frames = [first.metrics(), second.state(), first.event(), second.topology()]
    assert [frame.seq for frame in frames] == [1, 2, 3, 4]
    assert [frames[0].emitted_at_monotonic, frames[2].emitted_at_monotonic] == [100.0, 101.0]


def test_data_defaults_to_an_empty_object() -> None:
    assert BroadcastBuilder(clock=lambda: 1.0).cascade_add().data == {}


def test_initial_metrics_carries_current_seq_without_consuming_one() -> None:
    builder = BroadcastBuilder(clock=lambda: 5.0, monotonic=lambda: 6.0)
    for _ in range(3):
        builder.metrics({})
    initial = builder.initial_metrics([{"loss": 1.0}, {"loss": 0.5}])
    assert to_wire_dict(initial) == {
        "type": "initial_metrics",
        "timestamp": 5.0,
        "data": {"metrics": [{"loss": 1.0}, {"loss": 0.5}], "count": 2, "current_seq": 3},
        "seq": 3,
        "emitted_at_monotonic": 6.0,
    }
    assert builder.counter.current == 3
    assert builder.metrics({}).seq == 4
    assert_exact_wire_form(initial)


def test_initial_metrics_count_can_differ_from_the_metrics_sent() -> None:
    initial = BroadcastBuilder().initial_metrics([{"loss": 1.0}], count=250)
    assert (initial.data.count, len(initial.data.metrics)) == (250, 1)


def test_frames_of_a_small_draft_is_one_stamped_frame() -> None:
    builder = BroadcastBuilder(clock=lambda: 2.0, monotonic=lambda: 3.0)
    draft = builder.draft(EventEnvelope, {"kind": "phase"})
    assert draft.seq is None
    assert draft.emitted_at_monotonic is None
    [frame] = builder.frames(draft)
    assert to_wire_dict(frame) == {
        "type": "event",
        "timestamp": 2.0,
        "data": {"kind": "phase"},
        "seq": 1,
        "emitted_at_monotonic": 3.0,
    }
    assert builder.wire_frames(builder.draft(EventEnvelope)) == [
        '{"type":"event","timestamp":2.0,"data":{},"seq":2,"emitted_at_monotonic":3.0}'
    ]


def test_frames_of_a_large_draft_are_chunks_each_with_its_own_seq() -> None:
    budget = 700
    builder = BroadcastBuilder(chunker=Chunker(budget), clock=lambda: 2.0)
    builder.metrics()
    draft = builder.draft(TopologyEnvelope, {"weights": [0.125] * 500})
    frames = builder.frames(draft)
    assert len(frames) > 1
    assert all(isinstance(frame, ChunkedMessageEnvelope) for frame in frames)
    assert [frame.seq for frame in frames] == list(range(2, 2 + len(frames)))
    wires = builder.wire_frames(builder.draft(TopologyEnvelope, {"weights": [0.125] * 500}))
    assert all(len(wire.encode()) <= budget for wire in wires)
    payload = "".join(json.loads(wire)["data"]["payload"] for wire in wires)
    # The original inside the chunks carries no seq: seq is per wire frame.
    assert "seq" not in json.loads(payload)


def test_chunked_initial_metrics_consume_no_seq() -> None:
    builder = BroadcastBuilder(chunker=Chunker(600))
    builder.metrics()
    frames = builder.frames(builder.initial_metrics_draft([{"loss": 0.5}] * 50))
    assert len(frames) > 1
    assert all(frame.seq is None and frame.emitted_at_monotonic is not None for frame in frames)
    assert builder.counter.current == 1


def test_stamp_of_an_initial_metrics_draft_takes_no_number() -> None:
    builder = BroadcastBuilder(monotonic=lambda: 4.0)
    builder.metrics()
    stamped = builder.stamp(builder.initial_metrics_draft([{"loss": 0.5}]))
    assert (stamped.seq, stamped.data.current_seq, stamped.emitted_at_monotonic) == (1, 1, 4.0)
    assert builder.counter.current == 1
    assert builder.metrics().seq == 2


def test_stamp_of_an_initial_metrics_chunk_takes_no_number() -> None:
    builder = BroadcastBuilder(chunker=Chunker(600), monotonic=lambda: 4.0)
    builder.metrics()
    chunks = builder.chunker.split(builder.initial_metrics_draft([{"loss": 0.5}] * 50))
    assert len(chunks) > 1
    stamped = [builder.stamp(chunk) for chunk in chunks]
    assert all((f.seq, f.emitted_at_monotonic) == (None, 4.0) for f in stamped)
    assert builder.counter.current == 1


def test_stamp_numbers_the_chunks_of_a_broadcast() -> None:
    builder = BroadcastBuilder(chunker=Chunker(600))
    chunks = builder.chunker.split(builder.draft(TopologyEnvelope, {"w": [0.5] * 300}))
    assert [builder.stamp(chunk).seq for chunk in chunks] == list(range(1, len(chunks) + 1))


def stamped_frames() -> list[BaseEnvelope]:
    builder = BroadcastBuilder(chunker=Chunker(600))
    big_initial = builder.initial_metrics_draft([{"loss": 0.5}] * 50)
    return [
        builder.metrics(),
        builder.initial_metrics(),
        builder.frames(builder.draft(TopologyEnvelope, {"w": [0.5] * 300}))[0],
        builder.frames(big_initial)[0],  # a unicast chunk: emitted_at_monotonic, no seq
        MetricsEnvelope(timestamp=1.0, emitted_at_monotonic=2.0),
    ]


STAMPING_PATHS = ["stamp", "frames", "wire_frames"]


@pytest.mark.parametrize("path", STAMPING_PATHS)
@pytest.mark.parametrize("frame", stamped_frames(), ids=lambda f: f"{f.type}-{f.seq}")
def test_every_stamping_path_refuses_a_stamped_frame(path: str, frame: BaseEnvelope) -> None:
    builder = BroadcastBuilder(SequenceCounter(10))
    with pytest.raises(ValueError, match=r"(stamp|frames)\(\) takes an unstamped envelope"):
        getattr(builder, path)(frame)
    assert builder.counter.current == 9  # no number spent


@pytest.mark.parametrize("path", STAMPING_PATHS)
@pytest.mark.parametrize(
    "frame",
    [
        command_response("start", "success", command_id="c1"),
        connection_established("1.0"),
        Chunker(600).chunk(command_response("start", "success", result={"s": "x" * 900}))[0],
    ],
    ids=["command_response", "connection_established", "chunk-of-command_response"],
)
def test_every_stamping_path_refuses_a_control_frame(path: str, frame: BaseEnvelope) -> None:
    builder = BroadcastBuilder(chunker=Chunker(600))
    with pytest.raises(ValueError, match=r"is a /ws/control frame and never carries seq"):
        getattr(builder, path)(frame)
    assert builder.counter.current == 0


@pytest.mark.parametrize("path", STAMPING_PATHS)
def test_an_initial_metrics_without_current_seq_is_refused(path: str) -> None:
    frame = validate_envelope({"type": "initial_metrics", "timestamp": 1.0, "data": {}})
    builder = BroadcastBuilder()
    with pytest.raises(ValueError, match=r"must be an InitialMetricsEnvelope"):
        getattr(builder, path)(frame)
    assert builder.counter.current == 0


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.sampled_from(range(7)), max_size=30))
def test_every_path_keeps_broadcast_numbers_consecutive(steps: list[int]) -> None:
    """Whatever mix of paths builds the stream, broadcast frames number 1, 2, 3... without a
    hole and every unicast frame carries the number last broadcast, taking none itself."""
    builder = BroadcastBuilder(chunker=Chunker(600))
    small, big = {"loss": 0.5}, {"w": [0.5] * 200}
    initial_small, initial_big = [small], [small] * 40
    build: list[Callable[[], list[BaseEnvelope]]] = [
        lambda: [builder.metrics(small)],
        lambda: [builder.stamp(builder.draft(StateEnvelope, small))],
        lambda: builder.frames(builder.draft(TopologyEnvelope, big)),
        lambda: [
            builder.stamp(c) for c in builder.chunker.split(builder.draft(EventEnvelope, big))
        ],
        lambda: [builder.initial_metrics(initial_small)],
        lambda: [builder.stamp(builder.initial_metrics_draft(initial_big))],
        lambda: builder.frames(builder.initial_metrics_draft(initial_big)),
    ]
    broadcast: list[int] = []
    for step in steps:
        before = builder.counter.current
        for frame in build[step]():
            unicast = step >= 4
            if unicast:
                expected = None if isinstance(frame, ChunkedMessageEnvelope) else before
                assert frame.seq == expected
            else:
                assert frame.seq is not None
                broadcast.append(frame.seq)
            assert frame.emitted_at_monotonic is not None
    assert broadcast == list(range(1, len(broadcast) + 1))
    assert builder.counter.current == len(broadcast)


def test_a_chunker_without_room_for_the_stamp_is_refused() -> None:
    with pytest.raises(
        ValueError, match=rf"chunker.headroom must be >= STAMP_HEADROOM \({STAMP_HEADROOM}\)"
    ):
        BroadcastBuilder(chunker=Chunker(1000, headroom=STAMP_HEADROOM - 1))


@settings(max_examples=40, deadline=None)
@given(
    behind_max=st.integers(0, 50),
    extra_budget=st.integers(0, 400),
    data=json_objects,
    monotonic=st.floats(allow_nan=False, allow_infinity=False),
)
def test_stamped_frames_never_exceed_the_chunker_budget(
    behind_max: int, extra_budget: int, data: dict[str, Any], monotonic: float
) -> None:
    """Even with the widest seq a counter hands out, every wire frame is within budget."""
    budget = STAMP_HEADROOM + MIN_FRAME_BYTES + extra_budget
    builder = BroadcastBuilder(
        SequenceCounter(MAX_SEQ - 60 - behind_max),
        chunker=Chunker(budget),
        monotonic=lambda: monotonic,
    )
    for draft in (
        builder.draft(TopologyEnvelope, {"padding": '\u00e9"' * 300, **data}),
        builder.draft(MetricsEnvelope, data),
        builder.initial_metrics_draft([data] * 5),
    ):
        assert all(len(wire.encode()) <= budget for wire in builder.wire_frames(draft))


@settings(max_examples=60, deadline=None)
@given(
    method=st.sampled_from(sorted(BROADCAST_METHODS)),
    data=json_objects,
    timestamp=st.floats(0, 4e9, allow_nan=False),
    start=st.integers(0, 2**62),
)
def test_any_broadcast_round_trips_exactly(
    method: str, data: dict[str, Any], timestamp: float, start: int
) -> None:
    builder = BroadcastBuilder(SequenceCounter(start), clock=lambda: timestamp)
    envelope = getattr(builder, method)(data)
    assert envelope.seq == start
    assert_exact_wire_form(envelope)


class TestControlFrames:
    def test_command_response_has_no_seq_and_round_trips(self) -> None:
        builder = ControlBuilder(clock=lambda: 9.0)
        response = builder.command_response(
            "set_params", CommandStatus.SUCCESS, command_id="c1", result={"lr": 0.1}
        )
        assert to_wire_dict(response) == {
            "type": "command_response",
            "timestamp": 9.0,
            "data": {
                "command": "set_params",
                "status": "success",
                "command_id": "c1",
                "result": {"lr": 0.1},
            },
        }
        assert_exact_wire_form(response)

    @pytest.mark.parametrize("status", list(CommandStatus))
    def test_every_status_and_name_builds(self, status: CommandStatus) -> None:
        for name in ControlCommandName:
            response = command_response(name, status)
            assert (response.data.command, response.data.status) == (name.value, status.value)
            assert type(response.data.status) is str
            assert_exact_wire_form(response)

    def test_status_may_be_given_as_its_string(self) -> None:
        assert command_response("stop", "queued").data.status == "queued"

    def test_unknown_status_rejected_naming_the_allowed_values(self) -> None:
        with pytest.raises(ValueError, match=r"status must be one of success, error, timeout"):
            command_response("stop", "done")

    def test_response_to_a_request_echoes_its_command_and_id(self) -> None:
        request = ControlCommand(command="pause")
        response = command_response(request, CommandStatus.TIMEOUT, error="no answer", code="T1")
        assert response.data.command == "pause"
        assert response.data.command_id == request.command_id
        assert (response.data.error, response.data.code) == ("no answer", "T1")
        overridden = command_response(request, "success", command_id="other")
        assert overridden.data.command_id == "other"

    def test_connection_established(self) -> None:
        frame = ControlBuilder(clock=lambda: 4.0).connection_established("1.2.0", "0.3")
        assert to_wire_dict(frame) == {
            "type": "connection_established",
            "timestamp": 4.0,
            "data": {"server_version": "1.2.0", "protocol_version": "0.3"},
        }
        assert_exact_wire_form(frame)
        bare = connection_established()
        assert isinstance(bare, ConnectionEstablishedEnvelope)
        assert to_wire_dict(bare)["data"] == {}
        assert set(to_wire_dict(bare)) == {"type", "timestamp", "data"}

    def test_control_frames_never_carry_seq(self) -> None:
        for frame in (command_response("start", "success"), connection_established("1")):
            assert isinstance(frame, CommandResponseEnvelope | ConnectionEstablishedEnvelope)
            assert {"seq", "emitted_at_monotonic"}.isdisjoint(to_wire_dict(frame))


def test_to_wire_dict_matches_the_decoded_text_for_non_json_native_data() -> None:
    envelope = MetricsEnvelope(timestamp=1.0, data={"pair": (1, 2), "none": None})
    assert to_wire_dict(envelope) == json.loads(to_wire_json(envelope))
    assert to_wire_dict(envelope)["data"] == {"pair": [1, 2], "none": None}


def test_builders_cover_every_broadcast_type_of_the_spec() -> None:
    control = {"command_response", "connection_established"}
    chunk_and_initial = {"initial_metrics", "chunked_message"}
    assert set(BROADCAST_METHODS) == set(KNOWN_ENVELOPES) - control - chunk_and_initial
    assert isinstance(BroadcastBuilder().initial_metrics(), InitialMetricsEnvelope)
