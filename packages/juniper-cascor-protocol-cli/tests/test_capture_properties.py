"""`validate` never crashes on what a capture holds, and counts every line it was given once."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from juniper_cascor_protocol.capture import audit_capture
from juniper_cascor_protocol.capture_file import format_record

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
frames = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["metrics", "state", "initial_metrics", "chunked_message"])
        | st.text(max_size=12)
        | json_values,
        "timestamp": json_values,
        "data": json_values,
        "seq": st.integers(min_value=-5, max_value=50) | json_values,
    },
)
requests = st.fixed_dictionaries(
    {"command": st.sampled_from(["start", "stop", "set_params"]) | json_values},
    optional={"command_id": json_values, "params": json_values, "type": st.just("command")},
)
plain = st.one_of(
    st.binary(max_size=64).filter(lambda raw: b"\n" not in raw),
    frames.map(lambda frame: json.dumps(frame).encode()),
    requests.map(lambda request: json.dumps(request).encode()),
    json_values.map(lambda value: json.dumps(value).encode()),
)
records = st.builds(
    lambda message, received_at: format_record(
        message, received_at=received_at, endpoint="/ws/training"
    ).encode(),
    plain.map(lambda raw: raw.decode("utf-8", "replace")) | st.binary(max_size=16),
    st.floats(min_value=0, max_value=2e9),
)
lines = plain | records


@settings(max_examples=150, deadline=None)
@given(st.lists(lines, max_size=20))
def test_audit_never_raises_and_accounts_for_every_non_blank_line(capture: list[bytes]) -> None:
    report = audit_capture(line + b"\n" for line in capture)
    non_blank = sum(1 for line in capture if line.strip())
    # frames is the sum of the per-type, request, unknown and invalid counts: none is lost.
    assert report.frames == non_blank
    assert len(report.invalid) == min(report.invalid_count, report.max_listed)
    assert sum(report.invalid_per_type.values()) == report.invalid_count
    json.dumps(report.to_json())  # the --json output always serialises
