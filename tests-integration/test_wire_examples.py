"""Every example of the wire-examples corpus (``docs/wire-examples/``) through this implementation.

The corpus is data an implementer in any language can run; its format is described in
``docs/wire-examples/README.md``. Here each example is fed to the Python implementation the way a
peer's frame would be, and the result must be the example's expected verdict. The worked hex
example of ``docs/protocol.md`` is checked against the encoder and the corpus too.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from juniper_cascor_protocol.envelope import (
    KNOWN_ENVELOPES,
    UNMATCHED_TYPE_LABEL,
    BaseEnvelope,
    ChunkedMessageEnvelope,
    CommandParseError,
    CommandResponseEnvelope,
    ControlBuilder,
    ControlCommand,
    ControlCommandName,
    Reassembler,
    ReassemblyResult,
    ReassemblyStatus,
    SeqEvent,
    SeqObservation,
    SequenceTracker,
    UnknownEnvelope,
    parse_command_json,
    to_wire_dict,
    validate_envelope,
    validate_envelope_json,
)
from juniper_cascor_protocol.envelope.control import (
    INVALID_COMMAND_CODE,
    MALFORMED_JSON_CODE,
    UNKNOWN_COMMAND_CODE,
)
from juniper_cascor_protocol.envelope.labels import RESERVED_LABELS
from juniper_cascor_protocol.worker import (
    DECODE_ERROR_PREFIXES,
    PARSE_ERROR_LABELS,
    WORKER_MESSAGES,
    BinaryFrame,
    MessageParseError,
    WorkerMessage,
    WorkerMessageType,
    parse_worker_message,
    parse_worker_message_json,
)

DOCS = Path(__file__).resolve().parent.parent / "docs"
CORPUS = DOCS / "wire-examples"
PROTOCOL = DOCS / "protocol.md"
FILES = {
    "training.json": "/ws/training",
    "control.json": "/ws/control",
    "workers.json": "/ws/v1/workers",
    "binary-frames.json": "/ws/v1/workers",
}
DIRECTIONS = {
    "server-to-client",
    "client-to-server",
    "server-to-worker",
    "worker-to-server",
    "either",
}
WORKED_EXAMPLE = "float32-2x3"
NON_FINITE_BY_NAME = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

Example = dict[str, Any]


def _load(file_name: str) -> list[Example]:
    document = json.loads((CORPUS / file_name).read_text(encoding="utf-8"))
    examples: list[Example] = document["examples"]
    return examples


CORPUS_BY_FILE = {name: _load(name) for name in FILES}
TRAINING = CORPUS_BY_FILE["training.json"]
CONTROL = CORPUS_BY_FILE["control.json"]
WORKERS = CORPUS_BY_FILE["workers.json"]
FRAMES = CORPUS_BY_FILE["binary-frames.json"]
ALL_EXAMPLES = [example for examples in CORPUS_BY_FILE.values() for example in examples]

ENVELOPE_TEXTS = [
    e for e in TRAINING + CONTROL if "text" in e and e["direction"] != "client-to-server"
]
SESSIONS = [e for e in TRAINING if "texts" in e]
REQUESTS = [e for e in CONTROL if e["direction"] == "client-to-server"]


def _ids(examples: list[Example]) -> list[str]:
    return [example["name"] for example in examples]


# --- the corpus itself -------------------------------------------------------------------------


def test_every_example_is_well_formed() -> None:
    for file_name, examples in CORPUS_BY_FILE.items():
        for example in examples:
            where = f"{file_name}: {example.get('name')}"
            assert isinstance(example["name"], str), where
            assert example["name"], where
            assert example["endpoint"] == FILES[file_name], where
            assert example["direction"] in DIRECTIONS, where
            assert isinstance(example["summary"], str), where
            assert example["summary"], where
            assert sum(key in example for key in ("text", "texts", "hex")) == 1, where
            assert isinstance(example["expect"]["verdict"], str), where


def test_example_names_are_unique_across_the_corpus() -> None:
    names = _ids(ALL_EXAMPLES)
    assert len(names) == len(set(names))


def test_the_corpus_covers_every_type_command_code_and_error_prefix() -> None:
    typed = {e["expect"]["type"] for e in ENVELOPE_TEXTS if e["expect"]["verdict"] == "typed"}
    assert typed == set(KNOWN_ENVELOPES)
    labels = {e["expect"]["label"] for e in ENVELOPE_TEXTS if e["expect"]["verdict"] == "unknown"}
    # "_unmatched" depends on how many labels the process has admitted before, not on a frame.
    assert RESERVED_LABELS - {UNMATCHED_TYPE_LABEL} <= labels
    commands = {e["expect"]["command"] for e in REQUESTS if e["expect"]["verdict"] == "command"}
    assert commands == set(ControlCommandName)
    codes = {e["expect"]["code"] for e in REQUESTS if e["expect"]["verdict"] == "rejected"}
    assert codes == {UNKNOWN_COMMAND_CODE, INVALID_COMMAND_CODE, MALFORMED_JSON_CODE}
    messages = {e["expect"]["type"] for e in WORKERS if e["expect"]["verdict"] == "message"}
    assert messages == set(WorkerMessageType)
    refusals = {e["expect"]["label"] for e in WORKERS if e["expect"]["verdict"] == "errors"}
    assert refusals == PARSE_ERROR_LABELS
    prefixes = {e["expect"]["error_prefix"] for e in FRAMES if e["expect"]["verdict"] == "error"}
    assert prefixes == set(DECODE_ERROR_PREFIXES)


def test_the_protocol_document_links_the_corpus() -> None:
    text = PROTOCOL.read_text(encoding="utf-8")
    for file_name in [*FILES, "README.md"]:
        assert f"wire-examples/{file_name}" in text, file_name


def test_every_file_the_protocol_document_links_exists() -> None:
    text = PROTOCOL.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(((?!#|https?:)[^)#]+)(?:#[^)]*)?\)", text)
    assert targets
    assert [target for target in targets if not (DOCS / target).exists()] == []


def _anchors(markdown: str) -> set[str]:
    """The anchors of a Markdown document: heading slugs as GitHub makes them, and ``<a id>``."""
    slugs = set(re.findall(r'<a id="([^"]+)"></a>', markdown))
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (heading := re.match(r"#{1,6} (.+)", line)):
            text = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower())
            slugs.add(text.replace(" ", "-"))
    return slugs


def test_every_link_to_a_section_of_the_protocol_document_resolves() -> None:
    """Code and documents cite sections of the protocol document by anchor: each must exist."""
    text = PROTOCOL.read_text(encoding="utf-8")
    anchors = _anchors(text)
    cited = {(PROTOCOL.name, anchor) for anchor in re.findall(r"\]\(#([\w-]+)\)", text)}
    root = DOCS.parent
    sources = (
        "*.md",
        "docs/**/*.md",
        "packages/*/README.md",
        "packages/**/*.py",
        "tests-integration/*.py",
        "benchmarks/*.py",
    )
    for path in (path for pattern in sources for path in root.glob(pattern)):
        for anchor in re.findall(r"protocol\.md#([\w-]+)", path.read_text(encoding="utf-8")):
            cited.add((str(path.relative_to(root)), anchor))
    assert sorted(cite for cite in cited if cite[1] not in anchors) == []


# --- envelopes ---------------------------------------------------------------------------------


def _same_json(left: object, right: object) -> bool:
    """JSON values equal, numbers by value and NaN equal to NaN (it travels in free-form data)."""
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_same_json(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_same_json, left, right))
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left):
        return math.isnan(right)
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right))
    return (numbers or type(left) is type(right)) and left == right


def _check_envelope(envelope: BaseEnvelope, expect: dict[str, Any], wire: object) -> None:
    """``envelope`` is the verdict ``expect``; a typed one dumps back to ``wire`` if given."""
    if expect["verdict"] == "typed":
        assert type(envelope) is KNOWN_ENVELOPES[expect["type"]]
        if "dumps_as" in expect:
            assert to_wire_dict(envelope) == expect["dumps_as"]
        elif wire is not None:
            assert _same_json(to_wire_dict(envelope), wire), to_wire_dict(envelope)  # key for key
    else:
        assert expect["verdict"] == "unknown"
        assert type(envelope) is UnknownEnvelope
        assert envelope.type == expect["label"]
    for field in ("timestamp", "data", "seq", "emitted_at_monotonic"):
        if field in expect:
            assert getattr(envelope, field) == expect[field], field
    for key, value in expect.get("extra", {}).items():
        assert (envelope.model_extra or {})[key] == value, key


@pytest.mark.usefixtures("fresh_labels")
@pytest.mark.parametrize("example", ENVELOPE_TEXTS, ids=_ids(ENVELOPE_TEXTS))
def test_envelope_example(example: Example) -> None:
    text: str = example["text"]
    try:
        decoded: object = json.loads(text)
    except ValueError:
        decoded = None
    envelope = validate_envelope_json(text)
    _check_envelope(envelope, example["expect"], decoded)
    if isinstance(decoded, dict):
        # The dict entry point gives the same verdict as the JSON one.
        _check_envelope(validate_envelope(decoded), example["expect"], decoded)


def _seq_event(observation: SeqObservation) -> str:
    if observation.event is SeqEvent.GAP:
        return f"gap:{observation.missing_first}-{observation.missing_last}"
    return observation.event.value


def _reassembly(outcome: ReassemblyResult) -> str:
    if outcome.status is ReassemblyStatus.REJECTED:
        assert outcome.reason is not None
        return f"rejected:{outcome.reason.value}"
    return outcome.status.value


@pytest.mark.usefixtures("fresh_labels")
@pytest.mark.parametrize("example", SESSIONS, ids=_ids(SESSIONS))
def test_session_example(example: Example) -> None:
    """One connection's frames, in order, through a tracker and a reassembler as a client does."""
    tracker = SequenceTracker()
    reassembler = Reassembler()
    seq_events: list[str] = []
    reassembly: list[str] = []
    delivered: list[BaseEnvelope] = []
    for text in example["texts"]:
        frame = validate_envelope_json(text)
        seq_events.append(_seq_event(tracker.observe(frame)))
        outcome = reassembler.feed(frame)
        reassembly.append(_reassembly(outcome))
        if outcome.status in (ReassemblyStatus.PASSTHROUGH, ReassemblyStatus.COMPLETE):
            assert outcome.envelope is not None
            delivered.append(outcome.envelope)
    expect = example["expect"]
    assert expect["verdict"] == "session"
    assert seq_events == expect["seq_events"]
    assert reassembly == expect["reassembly"]
    assert [envelope.type for envelope in delivered] == [
        verdict.get("type", verdict.get("label")) for verdict in expect["delivered"]
    ]
    for envelope, verdict in zip(delivered, expect["delivered"], strict=True):
        _check_envelope(envelope, verdict, None)
    if "original" in example:
        chunks = [validate_envelope_json(text) for text in example["texts"]]
        pieces = sorted(
            (chunk.data.chunk_index, chunk.data.payload)
            for chunk in chunks
            if isinstance(chunk, ChunkedMessageEnvelope)
        )
        assert len(pieces) == len(chunks)
        assert "".join(payload for _, payload in pieces) == example["original"]


# --- control requests --------------------------------------------------------------------------


@pytest.mark.parametrize("example", REQUESTS, ids=_ids(REQUESTS))
def test_control_request_example(example: Example) -> None:
    expect = example["expect"]
    request = parse_command_json(example["text"])
    if expect["verdict"] == "command":
        assert isinstance(request, ControlCommand)
        assert request.known_name is not None
        assert request.command == expect["command"]
        assert request.command_id == expect["command_id"]
        assert request.params == expect["params"]
        assert (request.model_extra or {}) == expect.get("extra", {})
        answer = ControlBuilder(clock=lambda: 1700000000.0).command_response(request, "success")
        assert answer.data.command_id == expect["command_id"]  # echoed, never invented
        return
    assert expect["verdict"] == "rejected"
    if isinstance(request, ControlCommand):
        assert request.known_name is None  # a valid request is rejected only for its name
    response = ControlBuilder(clock=lambda: 1700000000.0).rejection(request)
    assert response.data.status == "error"
    assert response.data.code == expect["code"]
    assert response.data.command_id == expect["command_id"]
    if "command" in expect:
        assert response.data.command == expect["command"]
    assert response.data.error
    pieces = response.data.error.split("; ")
    for prefix in expect.get("error_prefixes", []):
        assert any(piece.startswith(prefix) for piece in pieces), (prefix, pieces)
    if isinstance(request, CommandParseError):
        assert request.code == expect["code"]
    # The answer is itself a valid /ws/control frame.
    wire = response.model_dump_json(exclude_none=True)
    assert isinstance(validate_envelope_json(wire), CommandResponseEnvelope)


# --- worker messages ---------------------------------------------------------------------------


def _without_nulls(message: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in message.items() if value is not None}


@pytest.mark.parametrize("example", WORKERS, ids=_ids(WORKERS))
def test_worker_message_example(example: Example) -> None:
    expect = example["expect"]
    parsed = parse_worker_message_json(example["text"])
    try:
        decoded: object = json.loads(example["text"])
    except ValueError:
        decoded = None
    else:
        # The dict entry point gives the same verdict as the text one.
        assert parse_worker_message(decoded) == parsed
    if expect["verdict"] == "message":
        assert isinstance(parsed, WorkerMessage), parsed
        assert isinstance(decoded, dict)
        assert type(parsed) is WORKER_MESSAGES[WorkerMessageType(expect["type"])]
        if "dumps_as" in expect:
            assert parsed.to_wire() == expect["dumps_as"]
        else:
            # Sent back as received, kept keys included; an optional null is an absent field.
            assert _without_nulls(parsed.to_wire()) == _without_nulls(decoded)
        assert dict(parsed.extra) == expect.get("extra", {})
        return
    assert expect["verdict"] == "errors"
    assert isinstance(parsed, MessageParseError), parsed
    assert parsed.label == expect["label"]
    paths = sorted((list(error.path) for error in parsed), key=repr)
    assert paths == sorted(expect["paths"], key=repr), [str(error) for error in parsed]


# --- binary frames -----------------------------------------------------------------------------


def _frame_bytes(example: Example) -> bytes:
    return bytes.fromhex(example["hex"]) + bytes(example.get("append_zero_bytes", 0))


def _number(value: Any) -> Any:
    return NON_FINITE_BY_NAME[value] if isinstance(value, str) else value


def _values(value: Any, complex_pairs: bool) -> Any:
    """The corpus's JSON values as Python numbers: special floats by name, complex as pairs."""
    if not isinstance(value, list):
        return _number(value)
    if complex_pairs and len(value) == 2 and not any(isinstance(v, list) for v in value):
        return complex(_number(value[0]), _number(value[1]))
    return [_values(item, complex_pairs) for item in value]


def _expected_array(expect: dict[str, Any]) -> NDArray[Any]:
    dtype = np.dtype(expect["dtype"])
    values = _values(expect["values"], complex_pairs=dtype.kind == "c")
    return np.array(values, dtype=dtype).reshape(expect["shape"])


@pytest.mark.parametrize("example", FRAMES, ids=_ids(FRAMES))
def test_binary_frame_example(example: Example) -> None:
    expect = example["expect"]
    frame = _frame_bytes(example)
    if expect["verdict"] == "error":
        for copy in (True, False):
            with pytest.raises(ValueError, match=f"^{re.escape(expect['error_prefix'])}"):
                BinaryFrame.decode(frame, copy=copy)
        return
    assert expect["verdict"] == "array"
    expected = _expected_array(expect)
    for copy in (True, False):
        decoded = BinaryFrame.decode(frame, copy=copy)
        assert str(decoded.dtype) == expect["dtype"]
        assert list(decoded.shape) == expect["shape"]
        assert decoded.tobytes() == expected.tobytes()  # bit for bit: NaN, -0.0 and order too
    if expect["canonical"]:
        assert BinaryFrame.encode(expected) == frame


def _worked_example() -> tuple[str, int]:
    """The hex bytes of the worked example in the protocol document and the size it states."""
    text = PROTOCOL.read_text(encoding="utf-8")
    block = re.search(
        rf"encodes to these (\d+) bytes.*?<!-- worked-example: {WORKED_EXAMPLE} -->\s*"
        r"```text\n(.*?)```",
        text,
        re.DOTALL,
    )
    assert block is not None, "the worked example is missing from docs/protocol.md"
    lines = (line.split("#", 1)[0] for line in block.group(2).splitlines())
    return "".join("".join(line.split()) for line in lines), int(block.group(1))


def test_the_worked_example_is_what_the_encoder_writes() -> None:
    documented = np.arange(6, dtype=np.float32).reshape(2, 3)
    worked, stated_size = _worked_example()
    assert worked == BinaryFrame.encode(documented).hex()
    assert stated_size == len(bytes.fromhex(worked))
    (entry,) = [example for example in FRAMES if example["name"] == WORKED_EXAMPLE]
    assert worked == entry["hex"]
    decoded = BinaryFrame.decode(bytes.fromhex(worked))
    assert decoded.dtype == documented.dtype
    assert decoded.tobytes() == documented.tobytes()
    assert decoded.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
