"""The JSON text frames of ``/ws/v1/workers`` as typed, frozen dataclasses (no Pydantic).

Every message class has ``to_wire()`` (a JSON-ready dict, ``"type"`` included),
``to_wire_json()`` (its text) and ``parse(obj)``, which returns the message or a
:class:`MessageParseError` (the list of *all* :class:`FieldError` s, with a ``label``) and never
raises, whatever ``obj`` is. ``parse_worker_message`` dispatches on ``"type"``.

Rules shared by every message:

* JSON types are what count: ``bool`` is neither an integer nor a number; an integer is
  accepted where a number is expected (and stored as ``float``); numeric fields must be finite.
* Keys a message does not define are kept (see ``extra``) and written back by ``to_wire``, so
  ``to_wire(parse(d)) == d`` for a valid ``d`` — except that an optional field sent as ``null``
  is omitted, like an absent one.
* What arrives leaves unchanged: free-form values (``capabilities``, ``candidate_data``,
  ``training_params``, unknown keys) are kept in JSON's built-in types (a subclass is read by
  value into a copy), ``NaN`` and infinities included, and ``to_wire_json`` writes those as
  Python's :mod:`json` does (``NaN``, ``Infinity``), so
  ``parse_worker_message_json(m.to_wire_json())`` equals ``m``.
  A value that is not JSON (``bytes``, a ``set``...) is refused at its path.
* Constructors do not validate (they are for building messages you trust); ``parse`` does.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, TypeVar, cast

from juniper_cascor_protocol.worker._checks import (
    INVALID,
    Path,
    check_float,
    check_float_list,
    check_int,
    check_json_value,
    check_object,
    check_str,
    exact_str,
    json_type,
    plain_items,
    show,
    string_keyed,
)
from juniper_cascor_protocol.worker._extra import KeepsExtraKeys
from juniper_cascor_protocol.worker.field_error import FieldError
from juniper_cascor_protocol.worker.manifest import TensorManifest, TensorSpec, check_manifest
from juniper_cascor_protocol.worker.message_parse_error import MessageParseError
from juniper_cascor_protocol.worker.message_type import WorkerMessageType

__all__ = [
    "MALFORMED_JSON",
    "RESULT_ACK_STATUSES",
    "WORKER_ID_PATTERN",
    "WORKER_MESSAGES",
    "ConnectionEstablishedMessage",
    "ErrorMessage",
    "HeartbeatMessage",
    "RegisterMessage",
    "RegistrationAckMessage",
    "ResultAckMessage",
    "TaskAssignMessage",
    "TaskResultMessage",
    "TokenRefreshMessage",
    "WorkerMessage",
    "parse_worker_message",
    "parse_worker_message_json",
]

WORKER_ID_PATTERN = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}")
"""What a ``worker_id`` must match entirely (``fullmatch``: no trailing newline slips in)."""

MALFORMED_JSON = "malformed JSON"
"""How the error of :func:`parse_worker_message_json` on text that is not JSON begins."""

RESULT_ACK_STATUSES = ("accepted", "duplicate", "stale", "rejected")
"""The values of ``result_ack.status``; see :class:`ResultAckMessage`."""

Check = Callable[[object, Path, list[FieldError]], object]


# --- field checks -------------------------------------------------------------------------------


def _any_str(value: object, path: Path, errors: list[FieldError]) -> object:
    return check_str(value, path, errors)


def _worker_id(value: object, path: Path, errors: list[FieldError]) -> object:
    return check_str(
        value,
        path,
        errors,
        accept=lambda text: WORKER_ID_PATTERN.fullmatch(text) is not None,
        expectation=(
            "expected 1-64 ASCII letters, digits, '_' or '-', starting with a letter or digit "
            "(^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$)"
        ),
    )


def _status(value: object, path: Path, errors: list[FieldError]) -> object:
    return check_str(
        value,
        path,
        errors,
        accept=RESULT_ACK_STATUSES.__contains__,
        expectation=f"expected one of {', '.join(RESULT_ACK_STATUSES)}",
    )


def _number(value: object, path: Path, errors: list[FieldError]) -> object:
    return check_float(value, path, errors)


def _unit_interval(value: object, path: Path, errors: list[FieldError]) -> object:
    return check_float(value, path, errors, minimum=0.0, maximum=1.0)


def _positive(value: object, path: Path, errors: list[FieldError]) -> object:
    return check_float(value, path, errors, positive=True)


def _any_int(value: object, path: Path, errors: list[FieldError]) -> object:
    return check_int(value, path, errors)


def _count(value: object, path: Path, errors: list[FieldError]) -> object:
    return check_int(value, path, errors, minimum=0)


def _bool(value: object, path: Path, errors: list[FieldError]) -> object:
    if type(value) is bool:
        return value
    errors.append(FieldError(path, f"expected a boolean, got {json_type(value)}"))
    return INVALID


def _copy(value: Any) -> Any:
    """A shallow copy in JSON's own types: any mapping (a ``defaultdict`` too) becomes a
    plain ``dict``, a list or tuple a ``list``; other values are returned as they are."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, list | tuple):
        return list(value)
    return value


def _manifest_to_wire(value: Any) -> Any:
    return TensorManifest.to_wire(value)


def _rule(
    check: Check, *, to_wire: Callable[[Any], Any] = _copy, finite: bool = False
) -> dict[str, Any]:
    """``finite``: a numeric field (a number or an array of numbers), never sent non-finite."""
    return {"check": check, "to_wire": to_wire, "finite": finite}


_MANIFEST = _rule(check_manifest, to_wire=_manifest_to_wire)


class _Field:
    """How one dataclass field is read from and written to the wire."""

    __slots__ = ("check", "finite", "name", "nullable", "optional", "to_wire", "written_as_null")

    def __init__(self, spec: dataclasses.Field[Any]) -> None:
        self.name = spec.name
        self.check: Check = spec.metadata["check"]
        self.to_wire: Callable[[Any], Any] = spec.metadata["to_wire"]
        self.finite: bool = spec.metadata["finite"]
        # Absent allowed only with a default; null allowed where the default is None or the
        # type says so (a required "str | None" field must be present but may be null).
        self.optional = (
            spec.default is not dataclasses.MISSING
            or spec.default_factory is not dataclasses.MISSING
        )
        self.nullable = spec.default is None or spec.metadata.get("nullable", False)
        # Written even when None (as null), like the peers that always send the field.
        self.written_as_null = spec.metadata.get("written_as_null", False)


# --- the messages -------------------------------------------------------------------------------


class WorkerMessage(KeepsExtraKeys):
    """Base of the message dataclasses: ``TYPE``, ``to_wire``, ``to_wire_json`` and ``parse``."""

    __slots__ = ()

    TYPE: ClassVar[WorkerMessageType]
    _FIELDS: ClassVar[tuple[_Field, ...]]
    _KNOWN_KEYS: ClassVar[frozenset[str]]

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict of this message, ``"type"`` first, kept unknown keys last."""
        wire: dict[str, Any] = {"type": self.TYPE.value}
        for spec in self._FIELDS:
            value = getattr(self, spec.name)
            if value is None and spec.optional and not spec.written_as_null:
                continue
            wire[spec.name] = spec.to_wire(value)
        for key, value in self.extra.items():
            wire.setdefault(key, value)
        return wire

    def to_wire_json(self) -> str:
        """The text frame of this message: ``json.dumps(self.to_wire())``, ASCII only.

        ``NaN`` and infinities in free-form values are written as :mod:`json` writes them
        (``NaN``, ``Infinity``, ``-Infinity``), as they arrived; a numeric field never is.

        Raises:
            ValueError: a numeric field (``correlation``, ``timestamp``...) is not finite; the
                message names the field, e.g. ``task_result: correlation: must be a finite
                number, got nan``.
        """
        for spec in self._FIELDS:
            if spec.finite:
                _require_finite(self.TYPE, spec.name, getattr(self, spec.name))
        return json.dumps(self.to_wire())

    @classmethod
    def parse(cls, obj: object) -> Self | MessageParseError:
        """The message ``obj`` (a decoded JSON object) holds, or every problem found in it.

        A ``dict`` subclass is read as stored (its own methods are never called) and ``str``
        subclasses by value, so no input makes ``parse`` raise.
        """
        items = plain_items(obj)
        if items is None:
            return _not_an_object(obj)
        members, key_errors = string_keyed(items, ())
        return cls._parse_members(members, key_errors)

    @classmethod
    def _parse_members(
        cls, obj: dict[str, object], key_errors: list[FieldError]
    ) -> Self | MessageParseError:
        """:meth:`parse` of a plain dict with string keys; ``key_errors`` for the other keys."""
        errors: list[FieldError] = []
        if "type" not in obj:
            errors.append(FieldError(("type",), "missing required field"))
        elif exact_str(obj["type"]) != cls.TYPE.value:
            wrong = f"expected {cls.TYPE.value!r} for {cls.__name__}, got {show(obj['type'])}"
            errors.append(FieldError(("type",), wrong))
        values: dict[str, Any] = {}
        for spec in cls._FIELDS:
            if spec.name not in obj:
                if not spec.optional:
                    errors.append(FieldError((spec.name,), "missing required field"))
                continue
            value = obj[spec.name]
            if value is None and spec.nullable:
                values[spec.name] = None
                continue
            checked = spec.check(value, (spec.name,), errors)
            if checked is not INVALID:
                values[spec.name] = checked
        errors += key_errors
        extra: dict[str, Any] = {}
        for key, value in obj.items():
            if key not in cls._KNOWN_KEYS:
                extra[key] = check_json_value(value, (key,), errors)
        if errors:
            return MessageParseError(errors, "invalid_message")
        construct: Callable[..., Self] = cls  # the dataclass __init__ of the subclass
        message = construct(**values)
        message._set_extra(extra)
        return message


def _require_finite(message_type: WorkerMessageType, name: str, value: object) -> None:
    """Refuse a numeric field holding ``NaN`` or an infinity: no reader would accept it."""
    array = isinstance(value, list | tuple)  # to_wire writes a tuple as an array too
    numbers: list[object] = list(cast(list[object], value)) if array else [value]
    for index, number in enumerate(numbers):
        if isinstance(number, float) and not math.isfinite(number):
            path: Path = (name, index) if array else (name,)
            problem = FieldError(path, f"must be a finite number, got {number!r}")
            raise ValueError(f"{message_type.value}: {problem}")


MessageT = TypeVar("MessageT", bound=WorkerMessage)

WORKER_MESSAGES: dict[WorkerMessageType, type[WorkerMessage]] = {}
"""Message class of every ``WorkerMessageType``, in the order of the enum."""


def _message(message_type: WorkerMessageType) -> Callable[[type[MessageT]], type[MessageT]]:
    def register(cls: type[MessageT]) -> type[MessageT]:
        cls.TYPE = message_type
        all_fields: tuple[dataclasses.Field[Any], ...] = dataclasses.fields(cls)  # type: ignore[arg-type]
        specs = [spec for spec in all_fields if "check" in spec.metadata]
        cls._FIELDS = tuple(_Field(spec) for spec in specs)
        cls._KNOWN_KEYS = frozenset(["type", *(spec.name for spec in specs)])
        WORKER_MESSAGES[message_type] = cls
        return cls

    return register


@_message(WorkerMessageType.CONNECTION_ESTABLISHED)
@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionEstablishedMessage(WorkerMessage):
    """Server → worker, first frame after the WebSocket opens.

    Both fields are optional strings, like the ``/ws/training`` envelope of the same name:
    ``server_version`` (of juniper-cascor) and ``protocol_version`` (of this protocol).
    """

    server_version: str | None = field(default=None, metadata=_rule(_any_str))
    protocol_version: str | None = field(default=None, metadata=_rule(_any_str))


@_message(WorkerMessageType.REGISTER)
@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterMessage(WorkerMessage):
    """Worker → server: ``worker_id`` (see ``WORKER_ID_PATTERN``) and free-form capabilities."""

    worker_id: str = field(metadata=_rule(_worker_id))
    capabilities: dict[str, Any] = field(metadata=_rule(check_object))


@_message(WorkerMessageType.REGISTRATION_ACK)
@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrationAckMessage(WorkerMessage):
    """Server → worker, accepting a ``register``.

    ``worker_id``: the id registered (optional; matches ``WORKER_ID_PATTERN`` when present).
    ``heartbeat_interval``: seconds between the heartbeats the server expects (optional, > 0).
    """

    worker_id: str | None = field(default=None, metadata=_rule(_worker_id))
    heartbeat_interval: float | None = field(default=None, metadata=_rule(_positive, finite=True))


@_message(WorkerMessageType.HEARTBEAT)
@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatMessage(WorkerMessage):
    """Either direction: ``worker_id`` and ``timestamp`` (Unix seconds, finite)."""

    worker_id: str = field(metadata=_rule(_worker_id))
    timestamp: float = field(metadata=_rule(_number, finite=True))


@_message(WorkerMessageType.TASK_ASSIGN)
@dataclass(frozen=True, slots=True, kw_only=True)
class TaskAssignMessage(WorkerMessage):
    """Server → worker: train one candidate; one binary frame per manifest entry follows.

    ``candidate_index`` is >= 0; ``candidate_data`` and ``training_params`` are free-form.
    """

    task_id: str = field(metadata=_rule(_any_str))
    round_id: str = field(metadata=_rule(_any_str))
    candidate_index: int = field(metadata=_rule(_count))
    candidate_data: dict[str, Any] = field(metadata=_rule(check_object))
    training_params: dict[str, Any] = field(metadata=_rule(check_object))
    tensor_manifest: dict[str, TensorSpec] = field(metadata=_MANIFEST)


@_message(WorkerMessageType.TASK_RESULT)
@dataclass(frozen=True, slots=True, kw_only=True)
class TaskResultMessage(WorkerMessage):
    """Worker → server: a trained candidate; one binary frame per manifest entry follows.

    Required, as juniper-cascor requires them: ``task_id``, ``candidate_id``, ``correlation``
    (in [0, 1]), ``success`` and ``epochs_completed`` (>= 0). The rest is optional:
    ``all_correlations``, ``numerator`` and ``denominator`` are finite. An absent
    ``error_message`` is written as null and an absent ``tensor_manifest`` (no frames follow)
    as ``{}``, as juniper-cascor-worker always sends both.
    """

    task_id: str = field(metadata=_rule(_any_str))
    candidate_id: int = field(metadata=_rule(_any_int))
    correlation: float = field(metadata=_rule(_unit_interval, finite=True))
    success: bool = field(metadata=_rule(_bool))
    epochs_completed: int = field(metadata=_rule(_count))
    candidate_uuid: str | None = field(default=None, metadata=_rule(_any_str))
    activation_name: str | None = field(default=None, metadata=_rule(_any_str))
    all_correlations: list[float] | None = field(
        default=None, metadata=_rule(check_float_list, finite=True)
    )
    numerator: float | None = field(default=None, metadata=_rule(_number, finite=True))
    denominator: float | None = field(default=None, metadata=_rule(_number, finite=True))
    best_corr_idx: int | None = field(default=None, metadata=_rule(_any_int))
    error_message: str | None = field(
        default=None, metadata={**_rule(_any_str), "written_as_null": True}
    )
    tensor_manifest: dict[str, TensorSpec] = field(default_factory=dict, metadata=_MANIFEST)


@_message(WorkerMessageType.RESULT_ACK)
@dataclass(frozen=True, slots=True, kw_only=True)
class ResultAckMessage(WorkerMessage):
    """Server → worker, answering a ``task_result``.

    ``status`` is one of ``RESULT_ACK_STATUSES``: ``accepted`` (the result is used),
    ``duplicate`` (a result for this task was already received), ``stale`` (the round is
    over) or ``rejected`` (the result is invalid). ``reason``: optional human-readable text.
    """

    task_id: str = field(metadata=_rule(_any_str))
    status: str = field(metadata=_rule(_status))
    reason: str | None = field(default=None, metadata=_rule(_any_str))


@_message(WorkerMessageType.TOKEN_REFRESH)
@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRefreshMessage(WorkerMessage):
    """Server → worker: use ``token`` from now on (hidden from ``repr``).

    ``expires_at``: when it expires, Unix seconds (optional, finite).
    """

    token: str = field(repr=False, metadata=_rule(_any_str))
    expires_at: float | None = field(default=None, metadata=_rule(_number, finite=True))


@_message(WorkerMessageType.ERROR)
@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorMessage(WorkerMessage):
    """Either direction: ``error`` text, optional ``details``, ``timestamp`` (Unix seconds)."""

    error: str = field(metadata=_rule(_any_str))
    details: str | None = field(default=None, metadata=_rule(_any_str))
    timestamp: float = field(metadata=_rule(_number, finite=True))


# Keep the registry in enum order, whatever the order of the class definitions above.
WORKER_MESSAGES = {member: WORKER_MESSAGES[member] for member in WorkerMessageType}

_BY_TYPE: dict[str, type[WorkerMessage]] = {str(key): cls for key, cls in WORKER_MESSAGES.items()}
_KNOWN_TYPES = ", ".join(_BY_TYPE)


def parse_worker_message(obj: object) -> WorkerMessage | MessageParseError:
    """Parse any worker message, dispatching on its ``"type"``; never raises.

    A refused message is a :class:`MessageParseError` labelled ``not_an_object``,
    ``unknown_type`` (``"type"`` missing, not a string or not a worker message type) or
    ``invalid_message`` (a known type with bad fields).

    Like :meth:`WorkerMessage.parse`, it reads a ``dict`` subclass as stored and ``str``
    subclasses by value: no method of the input runs.
    """
    items = plain_items(obj)
    if items is None:
        return _not_an_object(obj)
    members, key_errors = string_keyed(items, ())
    if "type" not in members:
        return _unknown_type("missing required field")
    message_type = exact_str(members["type"])
    if message_type is None:
        return _unknown_type(f"expected a string, got {json_type(members['type'])}")
    message_class = _BY_TYPE.get(message_type)
    if message_class is None:
        return _unknown_type(
            f"unknown worker message type {show(message_type)}; expected one of {_KNOWN_TYPES}"
        )
    return message_class._parse_members(members, key_errors)


def parse_worker_message_json(
    raw: str | bytes | bytearray | memoryview,
) -> WorkerMessage | MessageParseError:
    """Parse the text of one WebSocket message straight into a worker message; never raises.

    The result is that of ``parse_worker_message(json.loads(raw))``; text :func:`json.loads`
    refuses gives one ``FieldError`` at path ``()``, labelled ``malformed_json``, whose message
    starts with :data:`MALFORMED_JSON` and says why (not JSON, not UTF-8, nested too deeply, an
    integer longer than the interpreter converts). JSON that is not an object gives the error
    ``parse_worker_message`` gives (``expected a JSON object, got array``).

    Raises:
        TypeError: ``raw`` is not ``str``, ``bytes``, ``bytearray`` or ``memoryview`` (a bug in
            the caller, not bad input from a peer).
    """
    text: str | bytes | bytearray
    kind = type(raw)
    if kind is str or kind is bytes or kind is bytearray:
        text = cast(str | bytes | bytearray, raw)
    elif kind is memoryview:
        text = cast(memoryview, raw).tobytes()
    elif issubclass(kind, str):  # read by value: json.loads would call its methods
        text = str.__str__(cast(str, raw))
    elif issubclass(kind, bytes | bytearray):
        text = bytes(memoryview(cast(bytes | bytearray, raw)))
    else:
        raise TypeError(
            "parse_worker_message_json: raw must be str, bytes, bytearray or memoryview, "
            f"got {kind.__name__}"
        )
    try:
        decoded = json.loads(text)
    except RecursionError:
        return _malformed("nested too deeply to parse")
    except UnicodeDecodeError as exc:
        return _malformed(f"not valid {exc.encoding}: {exc.reason} at byte {exc.start}")
    except json.JSONDecodeError as exc:
        return _malformed(f"{exc.msg} at line {exc.lineno} column {exc.colno} (char {exc.pos})")
    except ValueError as exc:  # an integer past sys.get_int_max_str_digits(), say
        return _malformed(str(exc))
    return parse_worker_message(decoded)


def _malformed(why: str) -> MessageParseError:
    return MessageParseError([FieldError((), f"{MALFORMED_JSON}: {why}")], "malformed_json")


def _not_an_object(obj: object) -> MessageParseError:
    error = FieldError((), f"expected a JSON object, got {json_type(obj)}")
    return MessageParseError([error], "not_an_object")


def _unknown_type(message: str) -> MessageParseError:
    return MessageParseError([FieldError(("type",), message)], "unknown_type")
