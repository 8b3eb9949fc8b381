"""Black-box conformance of the public API to the wire contract (docs/protocol.md#reference).

Written from the contract alone, the way a maintainer of juniper-cascor-client or
juniper-cascor-worker checks an upgrade: only the documented import paths are used, every
binary frame is compared byte-for-byte with one built here with ``struct``, and every limit is
probed at and one past its boundary.
"""

from __future__ import annotations

import json
import math
import re
import struct
import subprocess
import sys
import threading
import types
import typing
import uuid
from collections import OrderedDict, UserDict
from collections.abc import Callable, Iterator
from enum import StrEnum
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from pydantic import BaseModel, TypeAdapter, ValidationError

import juniper_cascor_protocol
from juniper_cascor_protocol import envelope, worker
from juniper_cascor_protocol.envelope import (
    KNOWN_ENVELOPES,
    UNKNOWN_TYPE_BUDGET,
    UNMATCHED_TYPE_LABEL,
    BaseEnvelope,
    CandidateProgressEnvelope,
    CascadeAddEnvelope,
    ChunkedMessageData,
    ChunkedMessageEnvelope,
    CommandResponseData,
    CommandResponseEnvelope,
    ConnectionEstablishedData,
    ConnectionEstablishedEnvelope,
    EventEnvelope,
    InitialMetricsData,
    InitialMetricsEnvelope,
    KnownEnvelope,
    MetricsEnvelope,
    StateEnvelope,
    TopologyEnvelope,
    UnknownEnvelope,
    reset_unknown_label_state,
    validate_envelope,
)
from juniper_cascor_protocol.worker import BinaryFrame, WorkerMessageType

DISTRIBUTIONS = (
    "juniper-cascor-protocol",
    "juniper-cascor-protocol-envelope",
    "juniper-cascor-protocol-worker",
)
MIB = 1024 * 1024
FRAME_LIMIT = 100 * MIB
MAX_NDIM = 10
MAX_DTYPE_LEN = 64

# The error wording consumers match on (docs/protocol.md#error-wording), in the order a parser
# meets them.
TOO_BIG = "Binary frame exceeds maximum size"
SHORT_SHAPE_HEADER = "Binary frame too short for shape header"
BAD_NDIM = "Unreasonable number of dimensions"
SHORT_SHAPE = "Binary frame too short for shape values"
SHORT_DTYPE_HEADER = "Binary frame too short for dtype header"
BAD_DTYPE_LEN = "Unreasonable dtype string length"
SHORT_DTYPE = "Binary frame too short for dtype string"
BAD_UTF8 = "Binary frame dtype string is not valid UTF-8"
BAD_DTYPE = "Invalid dtype string"
SIZE_MISMATCH = "Data size mismatch"
ALL_PREFIXES = (
    TOO_BIG,
    SHORT_SHAPE_HEADER,
    BAD_NDIM,
    SHORT_SHAPE,
    SHORT_DTYPE_HEADER,
    BAD_DTYPE_LEN,
    SHORT_DTYPE,
    BAD_UTF8,
    BAD_DTYPE,
    SIZE_MISMATCH,
)

DOCUMENTED_ENVELOPES: list[tuple[str, type[BaseEnvelope]]] = [
    ("metrics", MetricsEnvelope),
    ("state", StateEnvelope),
    ("topology", TopologyEnvelope),
    ("event", EventEnvelope),
    ("cascade_add", CascadeAddEnvelope),
    ("candidate_progress", CandidateProgressEnvelope),
    ("initial_metrics", InitialMetricsEnvelope),
    ("chunked_message", ChunkedMessageEnvelope),
    ("command_response", CommandResponseEnvelope),
    ("connection_established", ConnectionEstablishedEnvelope),
]
FREE_FORM_TYPES = [name for name, _ in DOCUMENTED_ENVELOPES[:6]]
CONTROL_TYPES = ("command_response", "connection_established")
BROADCAST_TYPES = [name for name, _ in DOCUMENTED_ENVELOPES if name not in CONTROL_TYPES]

# One valid `data` per typed envelope, shaped as the server sends it.
VALID_DATA: dict[str, dict[str, Any]] = {
    "initial_metrics": {
        "metrics": [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25}],
        "count": 2,
        "current_seq": 41,
    },
    "chunked_message": {
        "chunk_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "chunk_index": 0,
        "total_chunks": 3,
        "original_type": "topology",
        "payload": '{"type": "topol',
    },
    "command_response": {
        "command": "start",
        "status": "success",
        "command_id": "cmd-7",
        "result": {"started": True, "epoch": None},
    },
    "connection_established": {"server_version": "1.4.0", "protocol_version": "0.3"},
}


@pytest.fixture(autouse=True)
def _fresh_unknown_labels() -> Iterator[None]:
    """Every test starts (and leaves) a full 16-label budget: the bound is process-wide."""
    reset_unknown_label_state()
    yield
    reset_unknown_label_state()


def _frame(type_: Any, **rest: Any) -> dict[str, Any]:
    return {"type": type_, "timestamp": 1_700_000_000.25, "data": {}, **rest}


# ---------------------------------------------------------------------------------------------
# Distributions and import paths (docs/protocol.md#distributions)
# ---------------------------------------------------------------------------------------------


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )


def _absent(*names: str) -> str:
    """Source that installs a finder making the named top-level modules unimportable."""
    return (
        "import sys\n"
        "class _Absent:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {set(names)!r}:\n"
        "            raise ImportError(name + ' is not installed')\n"
        "sys.meta_path.insert(0, _Absent())\n"
    )


def _lone_namespace(portion: Path) -> str:
    """Source that makes the namespace hold one portion only, as with one wheel installed."""
    return (
        "import sys, types\n"
        "_ns = types.ModuleType('juniper_cascor_protocol')\n"
        f"_ns.__path__ = [{str(portion)!r}]\n"
        "sys.modules['juniper_cascor_protocol'] = _ns\n"
    )


def test_meta_all_starts_with_the_released_names() -> None:
    assert juniper_cascor_protocol.__all__[:3] == [
        "__version__",
        "WorkerMessageType",
        "BinaryFrame",
    ]
    for name in juniper_cascor_protocol.__all__:
        assert hasattr(juniper_cascor_protocol, name), name


def test_meta_reexports_are_the_worker_objects() -> None:
    assert juniper_cascor_protocol.WorkerMessageType is WorkerMessageType
    assert juniper_cascor_protocol.BinaryFrame is BinaryFrame


def test_subpackage_all_lists_the_spec_names() -> None:
    spec_envelope_names = {
        "BaseEnvelope",
        "UnknownEnvelope",
        "InitialMetricsData",
        "ChunkedMessageData",
        "CommandResponseData",
        "ConnectionEstablishedData",
        "KNOWN_ENVELOPES",
        "KnownEnvelope",
        "UNKNOWN_TYPE_BUDGET",
        "UNMATCHED_TYPE_LABEL",
        "reset_unknown_label_state",
        "validate_envelope",
        *(cls.__name__ for _, cls in DOCUMENTED_ENVELOPES),
    }
    assert spec_envelope_names <= set(envelope.__all__)
    assert {"BinaryFrame", "WorkerMessageType"} <= set(worker.__all__)


def test_import_meta_package_does_not_import_pydantic() -> None:
    code = (
        "import sys, juniper_cascor_protocol as p\n"
        "from juniper_cascor_protocol import *\n"
        "assert 'pydantic' not in sys.modules, 'pydantic imported'\n"
        "assert 'pydantic_core' not in sys.modules, 'pydantic_core imported'\n"
        "print(p.__all__[:3])\n"
    )
    done = _run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['__version__', 'WorkerMessageType', 'BinaryFrame']"


def test_meta_and_worker_work_without_pydantic() -> None:
    code = _absent("pydantic", "pydantic_core") + (
        "import juniper_cascor_protocol\n"
        "from juniper_cascor_protocol.worker import BinaryFrame, WorkerMessageType\n"
        "import numpy as np\n"
        "a = np.arange(6, dtype='>i4').reshape(2, 3)\n"
        "b = BinaryFrame.decode(BinaryFrame.encode(a))\n"
        "assert b.dtype == a.dtype and (b == a).all()\n"
        "print(WorkerMessageType.REGISTER.value)\n"
    )
    done = _run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "register"


def test_worker_alone_imports_without_pydantic() -> None:
    portion = Path(worker.__file__).resolve().parents[1]
    code = (
        _absent("pydantic", "pydantic_core")
        + _lone_namespace(portion)
        + (
            "from juniper_cascor_protocol.worker import BinaryFrame, WorkerMessageType\n"
            "import numpy as np\n"
            "frame = BinaryFrame.encode(np.full(3, 2.5, dtype=np.float32))\n"
            "assert BinaryFrame.decode(frame).sum() == 7.5\n"
            "print(len(WorkerMessageType))\n"
        )
    )
    done = _run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "9"


def test_envelope_alone_imports_without_numpy() -> None:
    portion = Path(envelope.__file__).resolve().parents[1]
    code = (
        _absent("numpy")
        + _lone_namespace(portion)
        + (
            "from juniper_cascor_protocol.envelope import validate_envelope\n"
            "e = validate_envelope({'type': 'metrics', 'timestamp': 1.0, 'data': {'loss': 1}})\n"
            "print(type(e).__name__)\n"
        )
    )
    done = _run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "MetricsEnvelope"


def test_three_distributions_share_one_version() -> None:
    versions = {dist: metadata.version(dist) for dist in DISTRIBUTIONS}
    assert set(versions.values()) == {juniper_cascor_protocol.__version__}, versions


def test_meta_package_pins_both_parts_to_its_own_version() -> None:
    version = metadata.version("juniper-cascor-protocol")
    requirements = {
        Requirement(r).name: Requirement(r)
        for r in metadata.requires("juniper-cascor-protocol") or []
        if "extra ==" not in r
    }
    for part in ("juniper-cascor-protocol-worker", "juniper-cascor-protocol-envelope"):
        assert part in requirements, part
        specifier = requirements[part].specifier
        assert specifier.contains(version), (part, str(specifier))
        # "same version": not even the neighbouring releases satisfy the pin.
        major, minor, patch = (*Version(version).release, 0, 0)[:3]
        for neighbour in (f"{major}.{minor}.{patch + 1}", f"{major}.{minor + 1}.0"):
            assert not specifier.contains(neighbour), (part, str(specifier), neighbour)


def _runtime_requirements(dist: str) -> dict[str, Requirement]:
    reqs = [Requirement(r) for r in metadata.requires(dist) or []]
    return {r.name.lower(): r for r in reqs if r.marker is None or "extra" not in str(r.marker)}


def test_worker_depends_on_numpy_and_never_pydantic() -> None:
    reqs = _runtime_requirements("juniper-cascor-protocol-worker")
    assert "pydantic" not in reqs
    assert reqs["numpy"].specifier.contains("1.24.0")
    assert reqs["numpy"].specifier.contains("2.1.0")
    assert not reqs["numpy"].specifier.contains("1.23.5")


def test_envelope_depends_on_pydantic_and_never_numpy() -> None:
    reqs = _runtime_requirements("juniper-cascor-protocol-envelope")
    assert "numpy" not in reqs
    # The envelope relies on the JSON parser's string cache (new in 2.7, corrupting escaped
    # non-ASCII strings until 2.7.3), so its declared floor is 2.7.3
    # (docs/protocol.md#distributions) and nox tests exactly it.
    assert reqs["pydantic"].specifier.contains("2.7.3"), str(reqs["pydantic"])
    assert reqs["pydantic"].specifier.contains("2.14.0"), str(reqs["pydantic"])
    assert not reqs["pydantic"].specifier.contains("2.7.2")
    assert not reqs["pydantic"].specifier.contains("1.10.0")


@pytest.mark.parametrize("dist", DISTRIBUTIONS)
def test_requires_python_3_11(dist: str) -> None:
    requires_python = SpecifierSet(metadata.metadata(dist)["Requires-Python"])
    assert requires_python.contains("3.11.0")
    assert requires_python.contains("3.13.0")
    assert not requires_python.contains("3.10.12")


# ---------------------------------------------------------------------------------------------
# Envelopes: exports and models (docs/protocol.md#envelopes)
# ---------------------------------------------------------------------------------------------


def test_known_envelopes_are_exactly_the_ten_in_order() -> None:
    assert list(KNOWN_ENVELOPES.items()) == DOCUMENTED_ENVELOPES


def test_every_envelope_is_a_base_envelope() -> None:
    for _, cls in DOCUMENTED_ENVELOPES:
        assert issubclass(cls, BaseEnvelope)
    assert issubclass(UnknownEnvelope, BaseEnvelope)
    assert all(issubclass(cls, BaseModel) for cls in (BaseEnvelope, UnknownEnvelope))


def test_known_envelope_is_the_union_of_the_ten() -> None:
    union: Any = KnownEnvelope
    if typing.get_origin(union) is typing.Annotated:
        union = typing.get_args(union)[0]
    assert set(typing.get_args(union)) == {cls for _, cls in DOCUMENTED_ENVELOPES}


@pytest.mark.parametrize(("type_", "cls"), DOCUMENTED_ENVELOPES)
def test_known_envelope_validates_each_member(type_: str, cls: type[BaseEnvelope]) -> None:
    wire = _frame(type_, data=VALID_DATA.get(type_, {"k": 1}))
    assert type(TypeAdapter(KnownEnvelope).validate_python(wire)) is cls


def test_budget_and_unmatched_label_constants() -> None:
    assert UNKNOWN_TYPE_BUDGET == 16
    assert type(UNKNOWN_TYPE_BUDGET) is int
    assert UNMATCHED_TYPE_LABEL == "_unmatched"


@pytest.mark.parametrize(("type_", "cls"), DOCUMENTED_ENVELOPES)
def test_type_is_a_literal_of_its_class(type_: str, cls: type[BaseEnvelope]) -> None:
    data = VALID_DATA.get(type_, {})
    assert cls.model_validate(_frame(type_, data=data)).type == type_
    other = "state" if type_ != "state" else "metrics"
    with pytest.raises(ValidationError):
        cls.model_validate(_frame(other, data=data))


@pytest.mark.parametrize("type_", FREE_FORM_TYPES)
def test_free_form_data_is_any_dict_defaulting_to_empty(type_: str) -> None:
    cls = KNOWN_ENVELOPES[type_]
    data = {"loss": 0.1, "nested": {"list": [1, "two", None, {"x": True}]}, "n": None}
    env = validate_envelope(_frame(type_, data=data))
    assert type(env) is cls
    assert env.data == data
    no_data = {"type": type_, "timestamp": 5.0}
    assert cls.model_validate(no_data).data == {}
    defaulted = validate_envelope(no_data)
    assert type(defaulted) is cls
    assert defaulted.data == {}


def test_initial_metrics_data_count_required_and_defaults() -> None:
    with pytest.raises(ValidationError, match="count"):
        InitialMetricsData.model_validate({"metrics": [], "current_seq": 3})
    data = InitialMetricsData.model_validate({"count": 0})
    assert data.metrics == []
    assert data.current_seq == 0
    env = validate_envelope(_frame("initial_metrics", data={"count": 4}))
    assert type(env) is InitialMetricsEnvelope
    assert isinstance(env.data, InitialMetricsData)
    assert (env.data.metrics, env.data.count, env.data.current_seq) == ([], 4, 0)


def test_initial_metrics_defaults_are_not_shared() -> None:
    first = InitialMetricsData.model_validate({"count": 1})
    first.metrics.append({"loss": 1.0})
    assert InitialMetricsData.model_validate({"count": 1}).metrics == []


@pytest.mark.parametrize("missing", sorted(VALID_DATA["chunked_message"]))
def test_chunked_message_data_every_field_required(missing: str) -> None:
    data = {k: v for k, v in VALID_DATA["chunked_message"].items() if k != missing}
    with pytest.raises(ValidationError, match=missing):
        ChunkedMessageData.model_validate(data)
    fallback = validate_envelope(_frame("chunked_message", data=data))
    assert type(fallback) is UnknownEnvelope
    assert fallback.type == "chunked_message"


@pytest.mark.parametrize(("field", "ok", "bad"), [("chunk_index", 0, -1), ("total_chunks", 1, 0)])
def test_chunked_message_bounds(field: str, ok: int, bad: int) -> None:
    good = {**VALID_DATA["chunked_message"], field: ok}
    assert getattr(ChunkedMessageData.model_validate(good), field) == ok
    assert type(validate_envelope(_frame("chunked_message", data=good))) is ChunkedMessageEnvelope
    wrong = {**good, field: bad}
    with pytest.raises(ValidationError, match=field):
        ChunkedMessageData.model_validate(wrong)
    fallback = validate_envelope(_frame("chunked_message", data=wrong))
    assert type(fallback) is UnknownEnvelope
    assert fallback.data == wrong


def test_uuid4_chunk_ids_validate() -> None:
    data = {**VALID_DATA["chunked_message"], "chunk_id": str(uuid.uuid4())}
    env = validate_envelope(_frame("chunked_message", data=data))
    assert type(env) is ChunkedMessageEnvelope
    assert env.data.chunk_id == data["chunk_id"]


def test_command_response_data_required_and_optional_fields() -> None:
    data = CommandResponseData.model_validate({"command": "stop", "status": "queued"})
    assert (data.command, data.status) == ("stop", "queued")
    assert (data.command_id, data.result, data.error, data.code) == (None, None, None, None)
    for missing in ("command", "status"):
        with pytest.raises(ValidationError, match=missing):
            CommandResponseData.model_validate(
                {k: v for k, v in {"command": "stop", "status": "error"}.items() if k != missing}
            )


@pytest.mark.parametrize("status", ["success", "error", "timeout", "queued", "a_future_status"])
def test_command_response_status_is_any_string(status: str) -> None:
    env = validate_envelope(_frame("command_response", data={"command": "x", "status": status}))
    assert type(env) is CommandResponseEnvelope
    assert env.data.status == status


def test_connection_established_data_defaults_empty() -> None:
    data = ConnectionEstablishedData()
    assert (data.server_version, data.protocol_version) == (None, None)
    env = ConnectionEstablishedEnvelope.model_validate(
        {"type": "connection_established", "timestamp": 2.0}
    )
    assert env.data == ConnectionEstablishedData()
    for wire in (
        {"type": "connection_established", "timestamp": 2.0},
        _frame("connection_established", data={}),
    ):
        got = validate_envelope(wire)
        assert type(got) is ConnectionEstablishedEnvelope
        assert got.data == ConnectionEstablishedData()


# ---------------------------------------------------------------------------------------------
# Envelopes: the wire dict round trip (docs/protocol.md#envelopes)
# ---------------------------------------------------------------------------------------------


CONTROL_FRAMES: list[dict[str, Any]] = [
    _frame("command_response", data={"command": "start", "status": "success"}),
    _frame("command_response", data=VALID_DATA["command_response"]),
    _frame(
        "command_response",
        data={
            "command": "set_params",
            "status": "error",
            "command_id": "c-1",
            "error": "learning_rate must be > 0",
            "code": "invalid_params",
        },
    ),
    _frame("connection_established", data={}),
    _frame("connection_established", data=VALID_DATA["connection_established"]),
    _frame("connection_established", data={"server_version": "2.0"}),
]


@pytest.mark.parametrize("wire", CONTROL_FRAMES)
def test_control_frames_round_trip_without_seq(wire: dict[str, Any]) -> None:
    env = validate_envelope(wire)
    assert type(env) is KNOWN_ENVELOPES[wire["type"]]
    dumped = env.model_dump(exclude_none=True)
    assert dumped == wire
    assert "seq" not in dumped
    assert json.loads(env.model_dump_json(exclude_none=True)) == wire


@pytest.mark.parametrize("type_", BROADCAST_TYPES)
def test_broadcast_frames_round_trip_with_seq_and_extras(type_: str) -> None:
    wire = _frame(
        type_,
        data=VALID_DATA.get(type_, {"epoch": 3, "loss": 0.125, "tags": ["a"]}),
        seq=12,
        emitted_at_monotonic=834.5,
        server_id="cascor-a",
        trace={"span": 7},
    )
    env = validate_envelope(wire)
    assert type(env) is KNOWN_ENVELOPES[type_]
    assert (env.seq, env.emitted_at_monotonic) == (12, 834.5)
    assert env.model_dump(exclude_none=True) == wire
    assert json.loads(env.model_dump_json(exclude_none=True)) == wire


def test_unknown_frame_round_trips_with_extras() -> None:
    wire = _frame("training_paused", data={"why": "operator"}, seq=3, extra_key=[1, 2])
    env = validate_envelope(wire)
    assert type(env) is UnknownEnvelope
    assert env.model_dump(exclude_none=True) == wire


_json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
_json = st.recursive(
    _json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)
_json_object = st.dictionaries(st.text(max_size=6), _json, max_size=4)
_opt_text = st.none() | st.text(max_size=10)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


_DATA_STRATEGIES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    **dict.fromkeys(FREE_FORM_TYPES, _json_object),
    "initial_metrics": st.fixed_dictionaries(
        {
            "metrics": st.lists(_json_object, max_size=3),
            "count": st.integers(min_value=0, max_value=10**6),
            "current_seq": st.integers(min_value=0, max_value=2**53),
        }
    ),
    "chunked_message": st.fixed_dictionaries(
        {
            "chunk_id": st.uuids(version=4).map(str),
            "chunk_index": st.integers(min_value=0, max_value=10**4),
            "total_chunks": st.integers(min_value=1, max_value=10**4),
            "original_type": st.sampled_from(BROADCAST_TYPES),
            "payload": st.text(max_size=40),
        }
    ),
    "command_response": st.fixed_dictionaries(
        {
            "command": st.sampled_from(["start", "stop", "pause", "resume", "reset", "set_params"]),
            "status": st.sampled_from(["success", "error", "timeout", "queued"]),
            "command_id": _opt_text,
            "result": st.none() | _json_object,
            "error": _opt_text,
            "code": _opt_text,
        }
    ).map(_drop_none),
    "connection_established": st.fixed_dictionaries(
        {"server_version": _opt_text, "protocol_version": _opt_text}
    ).map(_drop_none),
}
_RESERVED = {"type", "timestamp", "data", "seq", "emitted_at_monotonic"}


@st.composite
def _valid_wire_frames(draw: st.DrawFn) -> dict[str, Any]:
    type_ = draw(st.sampled_from([name for name, _ in DOCUMENTED_ENVELOPES]))
    wire: dict[str, Any] = {
        "type": type_,
        "timestamp": draw(st.floats(min_value=0, max_value=4e9, allow_nan=False)),
        "data": draw(_DATA_STRATEGIES[type_]),
    }
    if type_ in BROADCAST_TYPES:
        if draw(st.booleans()):
            wire["seq"] = draw(st.integers(min_value=0, max_value=2**63 - 1))
        if draw(st.booleans()):
            wire["emitted_at_monotonic"] = draw(
                st.floats(min_value=0, max_value=1e9, allow_nan=False)
            )
    extras = draw(
        st.dictionaries(
            st.text(min_size=1, max_size=8).filter(lambda k: k not in _RESERVED),
            _json.filter(lambda v: v is not None),
            max_size=3,
        )
    )
    return {**wire, **extras}


@settings(max_examples=150, deadline=None)
@given(_valid_wire_frames())
def test_any_valid_frame_is_typed_and_dumps_to_itself(wire: dict[str, Any]) -> None:
    env = validate_envelope(wire)
    assert type(env) is KNOWN_ENVELOPES[wire["type"]]
    assert env.model_dump(exclude_none=True) == wire
    assert type(TypeAdapter(KnownEnvelope).validate_python(wire)) is type(env)


@pytest.mark.parametrize(
    ("type_", "data"),
    [
        ("metrics", {1: "epoch one"}),
        ("candidate_progress", {"ok": 1, (0, 1): "tuple key"}),
        ("command_response", {"command": "start", "status": "success", "result": {0: "x"}}),
    ],
    ids=["metrics", "candidate_progress", "command_response.result"],
)
def test_typed_envelope_data_has_string_keys(type_: str, data: dict[Any, Any]) -> None:
    # `data` (and `result`) is `dict[str, Any]`: a dict with other keys is a payload that fails
    # validation, so it must not come back as a typed envelope breaking its own annotation.
    env = validate_envelope(_frame(type_, data=data))
    if type(env) is not UnknownEnvelope:
        payload = env.data if isinstance(env.data, dict) else env.data.result
        assert payload is not None
        assert all(type(key) is str for key in payload), payload


def test_dict_subclass_is_a_dict() -> None:
    wire = OrderedDict(_frame("metrics", data={"loss": 1.0}))
    assert type(validate_envelope(wire)) is MetricsEnvelope


# ---------------------------------------------------------------------------------------------
# validate_envelope: fallback rules (docs/protocol.md#envelope-validation)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "not_a_dict",
    [
        None,
        [],
        [("type", "metrics")],
        '{"type": "metrics", "timestamp": 1.0, "data": {}}',
        b'{"type": "metrics"}',
        1,
        1.5,
        ("type", "metrics"),
        types.MappingProxyType({"type": "metrics", "timestamp": 1.0, "data": {}}),
        UserDict({"type": "metrics", "timestamp": 1.0, "data": {}}),
    ],
    ids=lambda v: type(v).__name__,
)
def test_non_dict_is_a_type_error(not_a_dict: Any) -> None:
    with pytest.raises(TypeError):
        validate_envelope(not_a_dict)


def test_unknown_type_keeps_valid_fields() -> None:
    env = validate_envelope(
        _frame("training_paused", data={"a": [1]}, seq=9, emitted_at_monotonic=12.5)
    )
    assert type(env) is UnknownEnvelope
    assert (env.type, env.timestamp, env.data) == ("training_paused", 1_700_000_000.25, {"a": [1]})
    assert (env.seq, env.emitted_at_monotonic) == (9, 12.5)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("absent", 0.0),
        (None, 0.0),
        ("1700000000", 0.0),
        (math.nan, 0.0),
        (math.inf, 0.0),
        (-math.inf, 0.0),
        ([1.0], 0.0),
        ({"t": 1.0}, 0.0),
        (10**400, 0.0),
        (-(10**400), 0.0),
        (12.5, 12.5),
        (7, 7.0),
        (-3.0, -3.0),
    ],
    ids=repr,
)
def test_fallback_timestamp(raw: Any, expected: float) -> None:
    wire = {"type": "custom_kind", "data": {}}
    if raw != "absent":
        wire["timestamp"] = raw
    env = validate_envelope(wire)
    assert type(env) is UnknownEnvelope
    assert type(env.timestamp) is float
    assert env.timestamp == expected


@pytest.mark.parametrize("raw", ["absent", None, [], [1, 2], "text", 3, 2.5, True, (1,)], ids=repr)
def test_fallback_data_not_a_dict_becomes_empty(raw: Any) -> None:
    wire: dict[str, Any] = {"type": "custom_kind", "timestamp": 1.0}
    if raw != "absent":
        wire["data"] = raw
    env = validate_envelope(wire)
    assert type(env) is UnknownEnvelope
    assert env.data == {}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0, 0),
        (5, 5),
        # docs/protocol.md#seq: a reader takes a seq from 0 to 2**63 - 1 only.
        (2**63 - 1, 2**63 - 1),
        (-1, None),
        (2**70, None),
        (True, None),
        (False, None),
        (5.0, None),
        ("5", None),
        (None, None),
        ([5], None),
        (math.nan, None),
    ],
    ids=repr,
)
def test_fallback_seq_only_if_int_in_range_not_bool(raw: Any, expected: int | None) -> None:
    env = validate_envelope(_frame("custom_kind", seq=raw))
    assert type(env) is UnknownEnvelope
    assert env.seq == expected
    assert type(env.seq) is (int if expected is not None else type(None))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0.5, 0.5),
        (0.0, 0.0),
        (-7.25, -7.25),
        (3, 3.0),
        (math.nan, None),
        (math.inf, None),
        (-math.inf, None),
        (10**400, None),
        ("1.5", None),
        (None, None),
        ([1.5], None),
    ],
    ids=repr,
)
def test_fallback_emitted_at_monotonic_only_if_finite(raw: Any, expected: float | None) -> None:
    env = validate_envelope(_frame("custom_kind", emitted_at_monotonic=raw))
    assert type(env) is UnknownEnvelope
    assert env.emitted_at_monotonic == expected
    if env.emitted_at_monotonic is not None:
        assert math.isfinite(env.emitted_at_monotonic)


@pytest.mark.parametrize(
    ("type_", "data"),
    [
        ("initial_metrics", {"metrics": []}),
        ("initial_metrics", {"count": "many"}),
        ("metrics", [1, 2]),
        ("chunked_message", {"chunk_id": "x"}),
        ("command_response", {"command": "start"}),
        ("connection_established", {"server_version": 3}),
    ],
)
def test_known_type_with_bad_payload_falls_back(type_: str, data: Any) -> None:
    wire = _frame(type_, data=data, seq=4)
    env = validate_envelope(wire)
    assert type(env) is UnknownEnvelope
    assert env.type == type_
    assert env.timestamp == wire["timestamp"]
    assert env.data == (data if isinstance(data, dict) else {})
    assert env.seq == 4


def test_known_type_with_bool_seq_never_reports_a_seq() -> None:
    # A bool is not a sequence number; a typed envelope must not turn `true` into seq 1.
    env = validate_envelope(_frame("metrics", data={"loss": 1.0}, seq=True))
    assert env.seq is None


@pytest.mark.parametrize(
    "type_",
    [None, 5, 5.5, True, ["metrics"], {"t": "metrics"}, ("metrics",), b"metrics"],
    ids=repr,
)
def test_non_string_type_falls_back_to_a_string_label(type_: Any) -> None:
    env = validate_envelope(_frame(type_, data={"k": 1}))
    assert type(env) is UnknownEnvelope
    assert isinstance(env.type, str)
    assert env.type
    assert env.type not in KNOWN_ENVELOPES
    assert env.data == {"k": 1}


def test_missing_type_falls_back() -> None:
    env = validate_envelope({"timestamp": 3.0, "data": {"a": 1}})
    assert type(env) is UnknownEnvelope
    assert isinstance(env.type, str)
    assert (env.timestamp, env.data) == (3.0, {"a": 1})


def test_empty_dict_falls_back_to_defaults() -> None:
    env = validate_envelope({})
    assert type(env) is UnknownEnvelope
    assert isinstance(env.type, str)
    assert (env.timestamp, env.data, env.seq, env.emitted_at_monotonic) == (0.0, {}, None, None)


# ---------------------------------------------------------------------------------------------
# validate_envelope: never raises on a dict (docs/protocol.md#envelope-validation)
# ---------------------------------------------------------------------------------------------


class _Hostile:
    """A value whose every dunder a validator might call raises."""

    def _boom(self, *args: object, **kwargs: object) -> Any:
        raise RuntimeError("hostile")

    __eq__ = __hash__ = __str__ = __format__ = _boom
    __float__ = __int__ = __index__ = __bool__ = __len__ = __iter__ = _boom
    __lt__ = __gt__ = __le__ = __ge__ = _boom

    def __repr__(self) -> str:  # kept working so a failure report can print it
        return "<hostile>"


class _HostileKey:
    """Hashable, but comparing or printing it raises: usable as a dict key."""

    def __hash__(self) -> int:
        return id(self)

    def _boom(self, *args: object) -> Any:
        raise RuntimeError("hostile key")

    __eq__ = __str__ = __format__ = _boom

    def __repr__(self) -> str:
        return "<hostile key>"


def _assert_sane(env: object) -> None:
    assert isinstance(env, BaseEnvelope)
    assert isinstance(env.type, str)
    assert isinstance(env.timestamp, float)
    if isinstance(env, UnknownEnvelope):
        assert math.isfinite(env.timestamp)
        assert isinstance(env.data, dict)
        assert env.emitted_at_monotonic is None or math.isfinite(env.emitted_at_monotonic)
    assert env.seq is None or (isinstance(env.seq, int) and not isinstance(env.seq, bool))


def _nested(depth: int, make: Callable[[Any], Any]) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = make(value)
    return value


NASTY_FRAMES: list[dict[Any, Any]] = [
    {"type": _Hostile(), "timestamp": 1.0, "data": {}},
    _frame("metrics", data={"x": _Hostile()}),
    _frame("metrics", timestamp=_Hostile()),
    _frame("custom_kind", timestamp=_Hostile(), seq=_Hostile(), emitted_at_monotonic=_Hostile()),
    _frame("custom_kind", data=_Hostile()),
    {**_frame("metrics"), _HostileKey(): 1},
    _frame("metrics", data={_HostileKey(): 1}),
    _frame("custom_kind", data={_HostileKey(): _Hostile()}),
    {1: "a", None: "b", (1, 2): "c", 2.5: "d", **_frame("metrics")},
    {1: "metrics", 2: 1.0},
    _frame("metrics", data={1: "non-string key"}),
    _frame("custom_kind", data={1: "non-string key"}),
    _frame("metrics", data={"deep": _nested(100_000, lambda v: {"k": v})}),
    _frame("custom_kind", data={"deep": _nested(100_000, lambda v: [v])}),
    _frame("initial_metrics", data={"metrics": [_nested(100_000, lambda v: {"k": v})], "count": 1}),
    _frame(_nested(10_000, lambda v: [v])),
    _frame("x" * 1_000_000),
    _frame("metrics", timestamp=10**400, seq=10**400, emitted_at_monotonic=10**400),
    _frame("custom_kind", timestamp=10**400, seq=-(10**400), emitted_at_monotonic=-(10**400)),
    _frame("metrics", timestamp=math.nan, seq=math.nan, emitted_at_monotonic=math.inf),
    _frame("metrics", timestamp=True, seq=False, emitted_at_monotonic=True),
    _frame("custom_kind", timestamp=True, seq=False, emitted_at_monotonic=True),
    _frame("initial_metrics", data={"count": 10**400, "current_seq": True, "metrics": None}),
    _frame("chunked_message", data={**VALID_DATA["chunked_message"], "chunk_index": 10**400}),
    _frame("command_response", data={"command": b"\xff", "status": 1, "result": []}),
    _frame("connection_established", data=None),
    _frame("\udcff\x00\n\u202e"),
    _frame(""),
    _frame(UNMATCHED_TYPE_LABEL),
]


@pytest.mark.parametrize("wire", NASTY_FRAMES, ids=range(len(NASTY_FRAMES)))
def test_nasty_dicts_never_raise(wire: dict[Any, Any]) -> None:
    _assert_sane(validate_envelope(wire))


def test_timestamp_bool_is_not_a_timestamp_for_the_fallback() -> None:
    # `timestamp` falls back unless it is a finite number; True is not a unix time.
    env = validate_envelope(_frame("custom_kind", timestamp=True))
    assert env.timestamp == 0.0


_hostile_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**400, -(10**400), 2**64, -(2**63) - 1])
    | st.floats()
    | st.text(max_size=10)
    | st.binary(max_size=5)
    | st.builds(_Hostile)
)
_hostile_key = (
    st.text(max_size=6)
    | st.integers()
    | st.none()
    | st.floats(allow_nan=False)
    | st.builds(_HostileKey)
)
_hostile = st.recursive(
    _hostile_leaf,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner)
        | st.dictionaries(_hostile_key, inner, max_size=3)
    ),
    max_leaves=10,
)
_field = (
    st.sampled_from([name for name, _ in DOCUMENTED_ENVELOPES]) | st.text(max_size=12) | _hostile
)


@st.composite
def _hostile_frames(draw: st.DrawFn) -> dict[Any, Any]:
    wire: dict[Any, Any] = draw(st.dictionaries(_hostile_key, _hostile, max_size=3))
    for key, strategy in (
        ("type", _field),
        ("timestamp", _hostile),
        ("data", _hostile | _json_object),
        ("seq", _hostile),
        ("emitted_at_monotonic", _hostile),
    ):
        if draw(st.integers(0, 3)):
            wire[key] = draw(strategy)
    return wire


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_hostile_frames())
def test_any_dict_never_raises(wire: dict[Any, Any]) -> None:
    _assert_sane(validate_envelope(wire))


# ---------------------------------------------------------------------------------------------
# Unknown-type labels (docs/protocol.md#labels)
# ---------------------------------------------------------------------------------------------


def _label(type_: Any) -> str:
    env = validate_envelope(_frame(type_))
    assert type(env) is UnknownEnvelope
    return env.type


def test_first_sixteen_labels_verbatim_then_unmatched() -> None:
    names = [f"kind_{i}" for i in range(UNKNOWN_TYPE_BUDGET + 4)]
    labels = [_label(name) for name in names]
    assert labels[:16] == names[:16]
    assert labels[16:] == [UNMATCHED_TYPE_LABEL] * 4
    # Seen labels stay verbatim; a refused one stays refused.
    assert [_label(name) for name in reversed(names[:16])] == list(reversed(names[:16]))
    assert _label(names[17]) == UNMATCHED_TYPE_LABEL
    assert _label("brand_new") == UNMATCHED_TYPE_LABEL


def test_repeating_a_label_does_not_spend_budget() -> None:
    for _ in range(50):
        assert _label("kind_same") == "kind_same"
    names = [f"kind_{i}" for i in range(UNKNOWN_TYPE_BUDGET - 1)]
    assert [_label(name) for name in names] == names
    assert _label("one_too_many") == UNMATCHED_TYPE_LABEL


def test_reset_restores_the_budget() -> None:
    for i in range(UNKNOWN_TYPE_BUDGET):
        _label(f"kind_{i}")
    assert _label("late") == UNMATCHED_TYPE_LABEL
    reset_unknown_label_state()
    assert _label("late") == "late"
    fresh = [f"other_{i}" for i in range(UNKNOWN_TYPE_BUDGET - 1)]
    assert [_label(name) for name in fresh] == fresh
    assert _label("kind_0") == UNMATCHED_TYPE_LABEL


def test_labels_are_bounded_in_length() -> None:
    lengths = {len(_label(c * n)) for c, n in (("a", 1_000), ("b", 10_000), ("c", 1_000_000))}
    assert len(lengths) == 1, lengths
    assert lengths.pop() < 1_000


@pytest.mark.parametrize(
    "raw",
    ["line\nbreak", "nul\x00byte", "tab\there", "bell\x07", "rtl\u202eoverride", "\udcff"],
    ids=repr,
)
def test_labels_are_printable(raw: str) -> None:
    label = _label(raw)
    assert label
    assert label.isprintable(), repr(label)
    label.encode("utf-8")  # a metrics backend must be able to encode it


def test_label_budget_is_thread_safe() -> None:
    threads_n, per_thread = 8, 8
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible to provoke races
    try:
        for _ in range(10):
            reset_unknown_label_state()
            barrier = threading.Barrier(threads_n)
            results: list[list[tuple[str, str]]] = [[] for _ in range(threads_n)]

            def work(t: int, out: list[tuple[str, str]], barrier: threading.Barrier) -> None:
                barrier.wait()
                for i in range(per_thread):
                    name = f"t{t}_k{i}"
                    out.append((name, _label(name)))

            pool = [
                threading.Thread(target=work, args=(t, results[t], barrier))
                for t in range(threads_n)
            ]
            for thread in pool:
                thread.start()
            for thread in pool:
                thread.join()
            pairs = [pair for out in results for pair in out]
            assert len(pairs) == threads_n * per_thread
            verbatim = {name for name, label in pairs if label == name}
            assert all(label in (name, UNMATCHED_TYPE_LABEL) for name, label in pairs)
            assert len(verbatim) == UNKNOWN_TYPE_BUDGET
            for name, label in pairs:
                assert _label(name) == label
    finally:
        sys.setswitchinterval(previous)


# ---------------------------------------------------------------------------------------------
# WorkerMessageType (docs/protocol.md#worker-messages)
# ---------------------------------------------------------------------------------------------


def test_worker_message_type_members_in_order() -> None:
    assert [(m.name, m.value) for m in WorkerMessageType] == [
        ("REGISTER", "register"),
        ("HEARTBEAT", "heartbeat"),
        ("TASK_RESULT", "task_result"),
        ("REGISTRATION_ACK", "registration_ack"),
        ("RESULT_ACK", "result_ack"),
        ("TASK_ASSIGN", "task_assign"),
        ("TOKEN_REFRESH", "token_refresh"),
        ("CONNECTION_ESTABLISHED", "connection_established"),
        ("ERROR", "error"),
    ]


def test_worker_message_type_is_a_str_enum() -> None:
    assert issubclass(WorkerMessageType, StrEnum)
    for member in WorkerMessageType:
        assert member == member.value
        assert str(member) == member.value
        assert f"{member}" == member.value
        assert WorkerMessageType(member.value) is member
    assert json.dumps({"type": WorkerMessageType.TASK_ASSIGN}) == '{"type": "task_assign"}'
    assert json.loads('{"type": "heartbeat"}')["type"] == WorkerMessageType.HEARTBEAT
    with pytest.raises(ValueError, match="nope"):
        WorkerMessageType("nope")


# ---------------------------------------------------------------------------------------------
# BinaryFrame: a reference implementation of the layout, written from docs/protocol.md#binary-frame
# ---------------------------------------------------------------------------------------------


def ref_frame(shape: tuple[int, ...], dtype: str | bytes, payload: bytes) -> bytes:
    dtype_bytes = dtype.encode("utf-8") if isinstance(dtype, str) else dtype
    return (
        struct.pack(f"<I{len(shape)}I", len(shape), *shape)
        + struct.pack("<I", len(dtype_bytes))
        + dtype_bytes
        + payload
    )


def ref_encode(array: np.ndarray) -> bytes:
    return ref_frame(array.shape, str(array.dtype), array.tobytes(order="C"))


def ref_decode(frame: bytes) -> np.ndarray:
    (ndim,) = struct.unpack_from("<I", frame, 0)
    shape = struct.unpack_from(f"<{ndim}I", frame, 4)
    offset = 4 + 4 * ndim
    (dtype_len,) = struct.unpack_from("<I", frame, offset)
    offset += 4
    dtype = np.dtype(frame[offset : offset + dtype_len].decode("utf-8"))
    payload = frame[offset + dtype_len :]
    flat = np.frombuffer(payload, dtype=dtype) if payload else np.empty(0, dtype=dtype)
    return flat.reshape(shape)


def assert_bit_exact(got: np.ndarray, want: np.ndarray) -> None:
    assert type(got) is np.ndarray
    assert got.dtype == want.dtype
    assert got.dtype.str == want.dtype.str  # byte order included
    assert got.shape == want.shape
    assert got.tobytes() == want.tobytes()


def _header_len(ndim: int, dtype: str) -> int:
    return 4 + 4 * ndim + 4 + len(dtype.encode("utf-8"))


PLAIN_DTYPES: list[np.dtype[Any]] = [np.dtype(code) for code in ("?", "i1", "u1")] + [
    np.dtype(order + code)
    for code in ("i2", "i4", "i8", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16")
    for order in "<>"
]


def _random_array(dtype: np.dtype[Any], shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    size = math.prod(shape)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=size).astype(bool).reshape(shape)
    # Raw random bits: every NaN payload, -0.0 and subnormal must survive too.
    return np.frombuffer(rng.bytes(size * dtype.itemsize), dtype=dtype).reshape(shape).copy()


def test_big_endian_float32_frame_byte_for_byte() -> None:
    array = np.array([1.5, -2.0, 3.25], dtype=">f4")
    expected = (
        struct.pack("<I", 1)
        + struct.pack("<I", 3)
        + struct.pack("<I", 3)
        + b">f4"
        + struct.pack(">3f", 1.5, -2.0, 3.25)
    )
    assert BinaryFrame.encode(array) == expected
    decoded = BinaryFrame.decode(expected)
    assert decoded.dtype.str == ">f4"
    assert decoded.tolist() == [1.5, -2.0, 3.25]


def test_native_float32_frame_byte_for_byte() -> None:
    array = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=np.float32)
    expected = (
        struct.pack("<3I", 2, 3, 2)
        + struct.pack("<I", 7)
        + b"float32"
        + struct.pack("<6f", 1, 2, 3, 4, 5, 6)
    )
    assert BinaryFrame.encode(array) == expected


@pytest.mark.parametrize(
    ("dtype_string", "packed", "want_dtype"),
    [
        ("<f8", struct.pack("<2d", 0.1, -1e300), np.dtype("<f8")),
        (">f8", struct.pack(">2d", 0.1, -1e300), np.dtype(">f8")),
        (">f4", struct.pack(">2f", 0.5, -8.0), np.dtype(">f4")),
        ("<i2", struct.pack("<2h", -300, 7), np.dtype("<i2")),
        (">u4", struct.pack(">2I", 2**32 - 1, 1), np.dtype(">u4")),
        ("|u1", bytes([0, 255]), np.dtype("u1")),
        ("=i4", struct.pack("=2i", -1, 2), np.dtype("=i4")),
        ("float64", struct.pack("<2d", 2.5, -0.0), np.dtype("<f8")),
        ("int64", struct.pack("<2q", -(2**63), 2**63 - 1), np.dtype("<i8")),
        ("bool", bytes([1, 0]), np.dtype(bool)),
        ("float16", struct.pack("<2e", 1.5, -2.0), np.dtype("<f2")),
        ("complex64", struct.pack("<4f", 1, 2, 3, 4), np.dtype("<c8")),
        (">c16", struct.pack(">4d", 1, 2, 3, 4), np.dtype(">c16")),
    ],
)
def test_frames_from_another_implementation_decode(
    dtype_string: str, packed: bytes, want_dtype: np.dtype[Any]
) -> None:
    decoded = BinaryFrame.decode(ref_frame((2,), dtype_string, packed))
    assert decoded.dtype == want_dtype
    assert decoded.dtype.str == want_dtype.str
    assert decoded.shape == (2,)
    assert decoded.tobytes() == packed


@pytest.mark.parametrize("dtype", PLAIN_DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(), (0,), (7,), (2, 3), (3, 0, 2), (1,) * MAX_NDIM], ids=str)
def test_plain_dtypes_round_trip_bit_exact(dtype: np.dtype[Any], shape: tuple[int, ...]) -> None:
    array = _random_array(dtype, shape)
    frame = BinaryFrame.encode(array)
    assert type(frame) is bytes
    assert frame == ref_encode(array)
    assert_bit_exact(BinaryFrame.decode(frame), array)
    assert_bit_exact(ref_decode(frame), array)


def test_zero_d_array_frame_byte_for_byte() -> None:
    array = np.array(3.5, dtype=np.float32)
    expected = struct.pack("<I", 0) + struct.pack("<I", 7) + b"float32" + struct.pack("<f", 3.5)
    assert BinaryFrame.encode(array) == expected
    decoded = BinaryFrame.decode(expected)
    assert decoded.shape == ()
    assert decoded.ndim == 0
    assert decoded[()] == np.float32(3.5)


def test_empty_array_frame_byte_for_byte() -> None:
    array = np.empty((4, 0), dtype=np.int16)
    expected = struct.pack("<3I", 2, 4, 0) + struct.pack("<I", 5) + b"int16"
    assert BinaryFrame.encode(array) == expected
    decoded = BinaryFrame.decode(expected)
    assert decoded.shape == (4, 0)
    assert decoded.dtype == np.int16


def _layouts() -> list[tuple[str, np.ndarray]]:
    base = np.arange(60, dtype=np.float64).reshape(3, 4, 5)
    return [
        ("fortran", np.asfortranarray(base)),
        ("transposed", base.T),
        ("strided", base[:, ::2, 1::2]),
        ("reversed", base[::-1, :, ::-1]),
        ("broadcast", np.broadcast_to(np.arange(5.0), (3, 4, 5))),
        ("big-endian-fortran", np.asfortranarray(base.astype(">i8"))),
        ("bool-strided", (base > 20)[::2]),
        ("complex-transposed", (base + 1j * base).astype(np.complex64).transpose(2, 0, 1)),
    ]


@pytest.mark.parametrize(("name", "array"), _layouts(), ids=[n for n, _ in _layouts()])
def test_non_contiguous_input_is_sent_in_c_order(name: str, array: np.ndarray) -> None:
    frame = BinaryFrame.encode(array)
    assert frame == ref_encode(array), name
    decoded = BinaryFrame.decode(frame)
    assert_bit_exact(decoded, np.array(array, order="C"))
    assert np.array_equal(decoded, array)


def test_encode_does_not_change_its_input() -> None:
    array = np.asfortranarray(np.arange(12, dtype=">u2").reshape(3, 4))
    before = array.copy(order="K")
    flags = (array.flags.f_contiguous, array.flags.writeable)
    BinaryFrame.encode(array)
    assert_bit_exact(array, before)
    assert (array.flags.f_contiguous, array.flags.writeable) == flags


_plain_dtype_strategy = st.sampled_from(PLAIN_DTYPES)


@st.composite
def _arrays_in_any_layout(draw: st.DrawFn) -> np.ndarray:
    dtype = draw(_plain_dtype_strategy)
    array = draw(
        hnp.arrays(
            dtype=dtype,
            shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4),
        )
    )
    layout = draw(st.sampled_from(["c", "f", "t", "rev"]))
    if layout == "f":
        return np.asfortranarray(array)
    if layout == "t":
        return array.T
    if layout == "rev" and array.ndim:
        return array[::-1]
    return array


@settings(max_examples=200, deadline=None)
@given(_arrays_in_any_layout())
def test_any_plain_array_round_trips(array: np.ndarray) -> None:
    frame = BinaryFrame.encode(array)
    assert frame == ref_encode(array)
    assert_bit_exact(BinaryFrame.decode(frame), np.array(array, order="C"))


# ---------------------------------------------------------------------------------------------
# BinaryFrame.decode: input types and ownership (docs/protocol.md#binary-frame)
# ---------------------------------------------------------------------------------------------

SAMPLE = np.arange(12, dtype=np.float32).reshape(3, 4)
SAMPLE_FRAME = ref_encode(SAMPLE)


@pytest.mark.parametrize(
    "wrap",
    [bytes, bytearray, memoryview, lambda b: memoryview(bytearray(b))],
    ids=["bytes", "bytearray", "memoryview", "memoryview-of-bytearray"],
)
def test_decode_accepts_bytes_like(wrap: Callable[[bytes], Any]) -> None:
    assert_bit_exact(BinaryFrame.decode(wrap(SAMPLE_FRAME)), SAMPLE)


def test_decode_from_bytes_is_writable_and_owned() -> None:
    decoded = BinaryFrame.decode(SAMPLE_FRAME)
    assert decoded.flags.writeable
    assert decoded.flags.c_contiguous
    assert decoded.flags.aligned
    decoded[0, 0] = 99.0
    assert BinaryFrame.decode(SAMPLE_FRAME)[0, 0] == 0.0


def test_decode_from_bytearray_does_not_alias_it() -> None:
    buffer = bytearray(SAMPLE_FRAME)
    decoded = BinaryFrame.decode(buffer)
    assert decoded.flags.writeable
    buffer[-4:] = struct.pack("<f", -1.0)
    assert decoded[2, 3] == 11.0
    decoded[2, 3] = 42.0
    assert bytes(buffer[-4:]) == struct.pack("<f", -1.0)


def test_decode_from_memoryview_keeps_no_reference_to_it() -> None:
    view = memoryview(bytearray(SAMPLE_FRAME))
    decoded = BinaryFrame.decode(view)
    view.release()  # raises BufferError if the result still exported the buffer
    assert decoded.flags.writeable
    assert_bit_exact(decoded, SAMPLE)


def test_decode_a_slice_of_a_larger_buffer() -> None:
    buffer = bytearray(b"junk" + SAMPLE_FRAME + b"tail")
    view = memoryview(buffer)[4 : 4 + len(SAMPLE_FRAME)]
    assert_bit_exact(BinaryFrame.decode(view), SAMPLE)


@pytest.mark.parametrize("dtype", ["float64", "complex128", "int64"])
def test_decode_unaligned_payload_gives_aligned_array(dtype: str) -> None:
    array = np.arange(5).astype(dtype)
    frame = ref_encode(array)
    assert _header_len(1, dtype) % 8 != 0  # the payload starts unaligned in the frame
    decoded = BinaryFrame.decode(memoryview(bytearray(b"x" + frame))[1:])
    assert decoded.flags.aligned
    assert_bit_exact(decoded, array)


def test_zero_d_and_empty_decodes_are_writable() -> None:
    scalar = BinaryFrame.decode(ref_encode(np.array(7, dtype=np.int32)))
    scalar[()] = 8
    assert scalar[()] == 8
    empty = BinaryFrame.decode(ref_encode(np.empty((0, 3), dtype=np.float32)))
    assert empty.flags.writeable
    assert empty.shape == (0, 3)


# ---------------------------------------------------------------------------------------------
# BinaryFrame.decode: malformed frames and limits (docs/protocol.md#binary-frame,
# docs/protocol.md#error-wording)
# ---------------------------------------------------------------------------------------------


def _raises_with(prefix: str, data: bytes | bytearray | memoryview) -> ValueError:
    with pytest.raises(ValueError, match="^" + re.escape(prefix)) as info:
        BinaryFrame.decode(data)
    return info.value


def test_shape_header_boundary() -> None:
    for n in range(4):
        _raises_with(SHORT_SHAPE_HEADER, b"\x00" * n)
    # Four bytes of ndim=0 pass the header and reach the dtype header.
    _raises_with(SHORT_DTYPE_HEADER, struct.pack("<I", 0))


def test_ndim_boundary() -> None:
    at_limit = ref_frame((1,) * MAX_NDIM, "uint8", b"\x05")
    assert BinaryFrame.decode(at_limit).shape == (1,) * MAX_NDIM
    _raises_with(BAD_NDIM, ref_frame((1,) * (MAX_NDIM + 1), "uint8", b"\x05"))
    _raises_with(BAD_NDIM, struct.pack("<I", MAX_NDIM + 1))
    _raises_with(BAD_NDIM, struct.pack("<I", 2**32 - 1) + b"\x00" * 64)


def test_shape_values_boundary() -> None:
    header = struct.pack("<I", 3)
    for n in range(3):
        _raises_with(SHORT_SHAPE, header + struct.pack(f"<{n}I", *range(1, n + 1)))
    _raises_with(SHORT_SHAPE, header + struct.pack("<2I", 1, 1) + b"\x01\x00\x00")
    _raises_with(SHORT_DTYPE_HEADER, header + struct.pack("<3I", 1, 1, 1))


def test_dtype_header_boundary() -> None:
    shape = struct.pack("<2I", 1, 4)
    for n in range(4):
        _raises_with(SHORT_DTYPE_HEADER, shape + b"\x05\x00\x00"[:n])
    _raises_with(SHORT_DTYPE, shape + struct.pack("<I", 5))


def test_dtype_length_boundary() -> None:
    # 64 bytes pass the length check and then fail as a dtype; 65 are refused by length.
    _raises_with(BAD_DTYPE, ref_frame((1,), "x" * MAX_DTYPE_LEN, b"\x00"))
    _raises_with(BAD_DTYPE_LEN, ref_frame((1,), "x" * (MAX_DTYPE_LEN + 1), b"\x00"))
    _raises_with(BAD_DTYPE_LEN, ref_frame((1,), "float32" + " " * 58, b"\x00" * 4))
    error = str(
        _raises_with(BAD_DTYPE_LEN, struct.pack("<2I", 1, 1) + struct.pack("<I", 2**32 - 1))
    )
    assert SHORT_DTYPE not in error


def test_dtype_string_boundary() -> None:
    whole = ref_frame((2,), "float32", b"\x00" * 8)
    dtype_start = _header_len(1, "float32") - 7
    for cut in range(dtype_start, dtype_start + 7):
        _raises_with(SHORT_DTYPE, whole[:cut])
    assert BinaryFrame.decode(whole).shape == (2,)


@pytest.mark.parametrize(
    "raw", [b"\xff", b"float\xff32", b"\xc3", b"\xed\xa0\x80", b"\xc0\xae"], ids=repr
)
def test_dtype_string_not_utf8(raw: bytes) -> None:
    _raises_with(BAD_UTF8, ref_frame((1,), raw, b"\x00"))


@pytest.mark.parametrize(
    "dtype_string",
    [
        "",
        "nosuchtype",
        "float33",
        "flöat32",
        "float32\x00",
        " ",
        "[('a', '<i4')]",
        "object",
        "O",
        "|O",
        "x" * MAX_DTYPE_LEN,
    ],
    ids=repr,
)
def test_invalid_dtype_string(dtype_string: str) -> None:
    _raises_with(BAD_DTYPE, ref_frame((1,), dtype_string, b"\x00" * 8))


@pytest.mark.parametrize(
    ("shape", "dtype", "payload_len"),
    [
        ((3,), "float32", 11),
        ((3,), "float32", 13),
        ((3,), "float32", 0),
        ((2, 2), "int64", 31),
        ((2, 2), "int64", 33),
        ((), "float64", 4),
        ((), "float64", 9),
        ((0,), "float64", 1),
        ((2**32 - 1,) * 2, "uint8", 8),
        ((2**32 - 1,) * MAX_NDIM, "complex128", 16),
    ],
)
def test_data_size_mismatch(shape: tuple[int, ...], dtype: str, payload_len: int) -> None:
    _raises_with(SIZE_MISMATCH, ref_frame(shape, dtype, b"\x01" * payload_len))


def _expected_truncation_prefix(cut: int, ndim: int, dtype_len: int) -> str:
    if cut < 4:
        return SHORT_SHAPE_HEADER
    if cut < 4 + 4 * ndim:
        return SHORT_SHAPE
    if cut < 8 + 4 * ndim:
        return SHORT_DTYPE_HEADER
    if cut < 8 + 4 * ndim + dtype_len:
        return SHORT_DTYPE
    return SIZE_MISMATCH


@pytest.mark.parametrize(
    "array",
    [
        np.arange(6, dtype=">f8").reshape(2, 3),
        np.array(1.25, dtype=np.float16),
        np.ones((1, 2, 1), dtype=np.complex64),
    ],
    ids=["2d", "0d", "3d"],
)
def test_every_truncation_names_the_missing_part(array: np.ndarray) -> None:
    frame = ref_encode(array)
    dtype_len = len(str(array.dtype))
    for cut in range(len(frame)):
        _raises_with(_expected_truncation_prefix(cut, array.ndim, dtype_len), frame[:cut])
    _raises_with(SIZE_MISMATCH, frame + b"\x00")
    assert_bit_exact(BinaryFrame.decode(frame), array)


def test_frame_size_limit_at_and_past_the_boundary() -> None:
    # The largest legal frame: a uint8 vector filling 100 MiB exactly, header included.
    buffer = bytearray(FRAME_LIMIT + 1)
    header = ref_frame((FRAME_LIMIT - _header_len(1, "uint8"),), "uint8", b"")
    buffer[: len(header)] = header
    buffer[FRAME_LIMIT - 1] = 0xAB
    decoded = BinaryFrame.decode(memoryview(buffer)[:FRAME_LIMIT])
    assert decoded.shape == (FRAME_LIMIT - len(header),)
    assert decoded[-1] == 0xAB
    del decoded
    # One byte more, otherwise self-consistent: only the size limit can refuse it.
    over = ref_frame((FRAME_LIMIT + 1 - _header_len(1, "uint8"),), "uint8", b"")
    buffer[: len(over)] = over
    for data in (buffer, memoryview(buffer), bytes(buffer)):
        _raises_with(TOO_BIG, data)


def test_size_limit_is_checked_before_parsing() -> None:
    _raises_with(TOO_BIG, bytes(FRAME_LIMIT + 1))


_INTERESTING_DTYPES = [
    "float32",
    "<f8",
    ">i2",
    "bool",
    "S0",
    "V0",
    "U0",
    "S3",
    "U2",
    "V4",
    "M8",
    "M8[ns]",
    "m8[s]",
    "datetime64[ns]",
    "i4, f8",
    "3f4",
    "(2,3)f4",
    "(0,)f4",
    "f4,",
    "a",
    "c",
    "O",
    "object",
    "float128",
    "g",
    "p",
    "str",
    "int",
    "void",
    "T",
    "f4" * 32,
    "{'names': ['a'], 'formats': ['i4']}",
]


def _assert_decode_outcome(data: bytes) -> None:
    """Any input: an ndarray, or a ValueError with an established prefix — nothing else."""
    try:
        result = BinaryFrame.decode(data)
    except ValueError as error:
        message = str(error)
    else:
        assert type(result) is np.ndarray
        return
    assert message.startswith(ALL_PREFIXES), message


@pytest.mark.parametrize("dtype_string", _INTERESTING_DTYPES, ids=repr)
def test_odd_dtypes_decode_or_raise_value_error(dtype_string: str) -> None:
    shapes = [(), (2,), (0,), (2**32 - 1,), (2**32 - 1, 2**32 - 1), (0, 2**32 - 1)]
    for shape in shapes:
        for payload_len in (0, 1, 8, 24):
            _assert_decode_outcome(ref_frame(shape, dtype_string, b"\x01" * payload_len))


@st.composite
def _frame_like_bytes(draw: st.DrawFn) -> bytes:
    ndim = draw(st.integers(0, MAX_NDIM + 2))
    dims = st.integers(0, 3) | st.integers(0, 2**32 - 1)
    shape = tuple(draw(st.lists(dims, min_size=ndim, max_size=ndim)))
    dtype = draw(
        st.sampled_from(_INTERESTING_DTYPES).map(str.encode)
        | st.text(max_size=10).map(str.encode)
        | st.binary(max_size=10)
    )
    payload = draw(st.binary(max_size=48))
    frame = ref_frame(shape, dtype, payload)
    if draw(st.booleans()):
        frame = frame[: draw(st.integers(0, len(frame)))]
    return frame


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=96) | _frame_like_bytes())
def test_any_bytes_decode_or_raise_value_error(data: bytes) -> None:
    _assert_decode_outcome(data)


# ---------------------------------------------------------------------------------------------
# BinaryFrame.encode: refusals (docs/protocol.md#binary-frame)
# ---------------------------------------------------------------------------------------------


def _refused(array: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        BinaryFrame.encode(array)


@pytest.mark.parametrize(
    "array",
    [
        np.array([1, "a", None], dtype=object),
        np.array([1.0, 2.0], dtype=object),
        np.empty(0, dtype=object),
        np.array(None, dtype=object),
    ],
    ids=["mixed", "floats-as-objects", "empty", "0d"],
)
def test_encode_refuses_object_arrays(array: np.ndarray) -> None:
    _refused(array)


@pytest.mark.parametrize(
    "dtype",
    [
        np.dtype([("a", "<i4"), ("b", "<f8")]),
        np.dtype([("a", "<i4")]),
        np.dtype({"names": ["x"], "formats": ["<f4"], "offsets": [4], "itemsize": 12}),
        np.dtype([("inner", [("v", "u1")])]),
        np.dtype([("sub", "<f4", (2,))]),
    ],
    ids=["two-fields", "one-field", "padded", "nested", "subarray-field"],
)
def test_encode_refuses_structured_arrays(dtype: np.dtype[Any]) -> None:
    _refused(np.zeros(3, dtype=dtype))
    _refused(np.zeros((), dtype=dtype))


@pytest.mark.parametrize(
    "dtype", ["U3", "S3", "V4", "M8[ns]", "m8[s]", "M8", np.dtype("f4").newbyteorder(">")]
)
def test_other_dtypes_are_refused_or_round_trip(dtype: Any) -> None:
    # Never silent garbage: either a clear refusal or a bit-exact round trip.
    array = np.zeros(3, dtype=dtype)
    try:
        frame = BinaryFrame.encode(array)
    except (ValueError, TypeError):
        return
    assert frame == ref_encode(array)
    assert_bit_exact(BinaryFrame.decode(frame), array)


def test_encode_ndim_boundary() -> None:
    at_limit = np.zeros((1,) * MAX_NDIM, dtype=np.uint8)
    assert BinaryFrame.encode(at_limit) == ref_encode(at_limit)
    _refused(np.zeros((1,) * (MAX_NDIM + 1), dtype=np.uint8))
    _refused(np.zeros((0,) * (MAX_NDIM + 1), dtype=np.uint8))


def test_encode_dimension_boundary() -> None:
    largest = np.empty((2**32 - 1, 0), dtype=np.float32)
    frame = BinaryFrame.encode(largest)
    assert frame == ref_encode(largest)
    assert BinaryFrame.decode(frame).shape == (2**32 - 1, 0)
    _refused(np.empty((2**32, 0), dtype=np.float32))
    _refused(np.empty((0, 2**40), dtype=np.uint8))
    # A real (stride-0) array with a dimension of 2**32 and no memory behind it.
    _refused(np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), shape=(2**32,), strides=(0,)))


def test_encode_frame_size_boundary() -> None:
    header = _header_len(1, "uint8")
    fits = np.broadcast_to(np.array(7, dtype=np.uint8), (FRAME_LIMIT - header,))
    frame = BinaryFrame.encode(fits)
    assert len(frame) == FRAME_LIMIT
    assert frame[:header] == ref_frame(fits.shape, "uint8", b"")
    assert frame[-1] == 7
    del frame
    _refused(np.broadcast_to(np.array(7, dtype=np.uint8), (FRAME_LIMIT - header + 1,)))
    _refused(np.broadcast_to(np.array(0.5), (FRAME_LIMIT // 8, 2)))


def test_encode_refusal_names_the_limit() -> None:
    with pytest.raises((ValueError, TypeError)) as info:
        BinaryFrame.encode(np.zeros((1,) * (MAX_NDIM + 1), dtype=np.uint8))
    assert str(MAX_NDIM) in str(info.value)
