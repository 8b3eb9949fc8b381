"""``/ws/control``: the command names, statuses and request model, and the two envelopes the
server sends there (``command_response`` and ``connection_established``).

A client sends ``{"command": str, "params": {...}, "command_id": str}`` as one JSON text frame;
the server answers with a ``command_response`` envelope echoing ``command`` and ``command_id``.
A request without ``command_id`` (absent or ``null``) is answered without one: the parsers never
invent an id, which the client could not match anyway. A :class:`ControlCommand` built by a
client gets a fresh one when none is given.

:func:`parse_command` and :func:`parse_command_json` read what a peer sent the way
``validate_envelope`` does: strictly (no ``b"start"`` for a string), through the dict's own
storage (a subclass's ``get`` or ``items`` are never called), str subclasses by value, and from
any JSON that :func:`json.loads` reads, however deeply nested.

Unknown command names are *accepted* by the model (forward compatible: a newer client must get
a ``command_response`` with ``status="error"`` and ``code=UNKNOWN_COMMAND_CODE`` from an older
server, not a dropped frame). Use :attr:`ControlCommand.known_name` to dispatch.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Annotated, Any, ClassVar, Final, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from pydantic_core import from_json

from juniper_cascor_protocol.envelope.base import (
    _WIRE_MODEL_CONFIG,
    BaseEnvelope,
    _exact_str,
    _FreeFormDict,
    _json_module_text,
    _pydantic_text,
)
from juniper_cascor_protocol.envelope.errors import describe_validation_error

__all__ = [
    "COMMAND_ID_MAX_LENGTH",
    "COMMAND_NAME_MAX_LENGTH",
    "CONTROL_ENVELOPES",
    "INVALID_COMMAND_CODE",
    "KNOWN_COMMANDS",
    "MALFORMED_JSON_CODE",
    "UNKNOWN_COMMAND_CODE",
    "CommandParseError",
    "CommandResponseData",
    "CommandResponseEnvelope",
    "CommandStatus",
    "ConnectionEstablishedData",
    "ConnectionEstablishedEnvelope",
    "ControlCommand",
    "ControlCommandName",
    "Problem",
    "parse_command",
    "parse_command_json",
]

COMMAND_NAME_MAX_LENGTH = 64
COMMAND_ID_MAX_LENGTH = 128
UNKNOWN_COMMAND_CODE = "unknown_command"
"""``command_response.code`` for a syntactically valid request naming no known command."""
INVALID_COMMAND_CODE = "invalid_command"
"""``command_response.code`` for a request that failed validation."""
MALFORMED_JSON_CODE = "malformed_json"
"""``command_response.code`` for a request whose text is not JSON."""
_MAX_REPORTED_ERRORS = 8


class ControlCommandName(StrEnum):
    """The commands a juniper-cascor server knows (``ControlCommand.command``)."""

    START = "start"
    STOP = "stop"
    PAUSE = "pause"
    RESUME = "resume"
    RESET = "reset"
    SET_PARAMS = "set_params"


KNOWN_COMMANDS: frozenset[str] = frozenset(ControlCommandName)


class CommandStatus(StrEnum):
    """``command_response.data.status``."""

    SUCCESS = "success"
    ERROR = "error"
    TIMEOUT = "timeout"
    QUEUED = "queued"


def _new_command_id() -> str:
    return uuid.uuid4().hex


def _valid_unicode(value: str) -> str:
    # ``json.loads`` reads a lone surrogate escape; such a string could never be echoed back.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text, without lone surrogates") from None
    return value


_CommandName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=COMMAND_NAME_MAX_LENGTH),
    AfterValidator(_valid_unicode),
]
_CommandId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=COMMAND_ID_MAX_LENGTH),
    AfterValidator(_valid_unicode),
]


class ControlCommand(BaseModel):
    """One ``/ws/control`` request. Unknown top-level keys are kept, like the envelopes.

    ``command_id`` is optional on the wire: a request without one (absent or ``null``) is
    parsed with ``command_id=None`` and answered without one. Built by a client, it defaults
    to a fresh uuid4 hex.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(**_WIRE_MODEL_CONFIG, frozen=True)

    command: _CommandName
    params: dict[str, Any] = Field(default_factory=dict)
    command_id: _CommandId | None = Field(default_factory=_new_command_id)

    @property
    def known_name(self) -> ControlCommandName | None:
        """The command as a :class:`ControlCommandName`, or ``None`` if this server lacks it."""
        try:
            return ControlCommandName(self.command)
        except ValueError:
            return None

    def to_wire_dict(self) -> dict[str, Any]:
        """The request as the JSON-compatible dict sent on the wire (no ``None`` id).

        It is ``json.loads(self.to_wire_json())``: the text's values, a key holding a lone
        surrogate included (Pydantic's own JSON mode would replace it with ``"\\ufffd"``).
        """
        return json.loads(self.to_wire_json())  # type: ignore[no-any-return]

    def to_wire_json(self) -> str:
        """The request as the JSON text frame sent on the wire (no ``None`` id).

        A string holding a lone surrogate (``"\\ud800"``, which :func:`json.loads` reads) in
        ``params`` or an unknown key cannot be encoded as UTF-8 (Pydantic fails on such a value
        and writes ``"\\ufffd"`` for such a key): such a request is written by
        :func:`json.dumps`, every non-ASCII character escaped, and reads back equal, as an
        envelope is (the same mechanism, see ``BaseEnvelope.model_dump_json``).
        """
        absent = self._absent()
        text = _pydantic_text(partial(self.model_dump_json, exclude=absent))
        if text is not None:
            return text
        return _json_module_text(self.model_dump(mode="python", exclude=absent))

    def _absent(self) -> set[str] | None:
        return {"command_id"} if self.command_id is None else None


Problem: TypeAlias = tuple[tuple[str | int, ...], str]
"""One problem as a ``(path, message)`` pair; ``()`` is the request itself."""


@dataclass(frozen=True, slots=True)
class CommandParseError:
    """A request that failed validation, with what the server needs to answer it.

    ``command`` and ``command_id`` are copied from the frame when they are valid strings
    within their length limits, so the error response can still be correlated.
    ``label``, ``reason`` and ``problems`` read like the worker side's ``MessageParseError``.
    """

    errors: tuple[str, ...]
    """Each problem as one line, ``"<path>: <message>"``; at most 8."""
    command: str | None = None
    command_id: str | None = None
    code: str = INVALID_COMMAND_CODE
    problems: tuple[Problem, ...] = field(default=(), compare=False)
    """Each problem as a ``(path, message)`` pair; by default each of ``errors`` at ``()``."""

    def __post_init__(self) -> None:
        if not self.problems:
            object.__setattr__(self, "problems", tuple(((), error) for error in self.errors))

    @property
    def label(self) -> str:
        """``code``: ``invalid_command`` or ``malformed_json``, safe to use as a metric label."""
        return self.code

    @property
    def reason(self) -> str:
        """The problems for people, ``"; "``-separated."""
        return "; ".join(self.errors)


_ECHOED: Final = ("command", "command_id")


def _bounded_str(value: object, limit: int) -> str | None:
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        return None
    try:
        return _valid_unicode(value)
    except ValueError:
        return None


def _plain_request(frame: dict[Any, Any]) -> dict[str, Any] | CommandParseError:
    """A plain dict of ``frame``'s own items, keys and echoed strings read by value."""
    plain: dict[str, Any] = {}
    for key_obj, value in list(dict.items(frame)):
        key = _exact_str(key_obj)
        if key is None:
            return CommandParseError(
                ("<frame>: every key must be a string",),
                problems=(((), "every key must be a string"),),
            )
        text = _exact_str(value) if key in _ECHOED else None
        plain[key] = value if text is None else text
    # An absent id stays absent: a generated one would be echoed to a client that never sent it.
    plain.setdefault("command_id", None)
    return plain


def parse_command(frame: object) -> ControlCommand | CommandParseError:
    """Validate an already-decoded request, strictly; never raises, whatever ``frame`` is.

    ``command_id`` is ``None`` when the request has none (absent or ``null``).
    """
    request: object = frame
    try:
        if isinstance(frame, dict):
            plain = _plain_request(frame)
            if isinstance(plain, CommandParseError):
                return plain
            request = plain
        return ControlCommand.model_validate(request, strict=True)
    except ValidationError as error:
        messages = describe_validation_error(error, limit=_MAX_REPORTED_ERRORS)
        problems = _problems_of(error)
        if not isinstance(request, dict):
            return CommandParseError(messages, problems=problems)
        return CommandParseError(
            messages,
            command=_bounded_str(request.get("command"), COMMAND_NAME_MAX_LENGTH),
            command_id=_bounded_str(request.get("command_id"), COMMAND_ID_MAX_LENGTH),
            problems=problems,
        )
    except Exception as unreadable:  # a frame whose contents run code of their own and fail
        why = f"unreadable ({type(unreadable).__name__})"
        return CommandParseError((f"<frame>: {why}",), problems=(((), why),))


def _problems_of(error: ValidationError) -> tuple[Problem, ...]:
    """The ``(path, message)`` pairs of the problems ``describe_validation_error`` describes."""
    details = error.errors(include_url=False, include_input=False, include_context=False)
    return tuple((tuple(item["loc"]), item["msg"]) for item in details[:_MAX_REPORTED_ERRORS])


def parse_command_json(
    raw: str | bytes | bytearray | memoryview,
) -> ControlCommand | CommandParseError:
    """Validate a request straight from the JSON text frame; never raises on wire input.

    Gives the same result as ``parse_command(json.loads(raw))``: text that is not JSON (or
    nests too deeply even for :func:`json.loads`) is a ``CommandParseError`` with
    ``code=MALFORMED_JSON_CODE``.

    Raises:
        TypeError: ``raw`` is not ``str``, ``bytes``, ``bytearray`` or ``memoryview``.
    """
    if isinstance(raw, memoryview):
        raw = raw.tobytes()  # Pydantic's parser takes str, bytes and bytearray only
    elif not isinstance(raw, str | bytes | bytearray):
        raise TypeError(
            "parse_command_json: raw must be str, bytes, bytearray or memoryview, "
            f"got {type(raw).__name__}"
        )
    try:
        frame: object = from_json(raw)
    except Exception:
        # Pydantic's parser refused the text (not JSON, nested deeper than its limit, a lone
        # surrogate escape); the standard parser decides, as for the envelopes.
        try:
            frame = json.loads(raw)
        except Exception as not_json:  # ValueError for bad JSON, RecursionError for too deep
            return CommandParseError(
                (f"request is not valid JSON: {not_json}",), code=MALFORMED_JSON_CODE
            )
    return parse_command(frame)


class CommandResponseData(BaseModel):
    """The answer to a ``/ws/control`` command, correlated by ``command_id``."""

    model_config: ClassVar[ConfigDict] = _WIRE_MODEL_CONFIG

    command: str
    status: str
    command_id: str | None = None
    result: _FreeFormDict | None = None
    error: str | None = None
    code: str | None = None


class CommandResponseEnvelope(BaseEnvelope):
    """The server's answer to one request: :class:`CommandResponseData`."""

    type: Literal["command_response"] = "command_response"
    data: CommandResponseData  # type: ignore[assignment]


class ConnectionEstablishedData(BaseModel):
    """The greeting's versions; either may be absent (``None``) when the server sends none."""

    model_config: ClassVar[ConfigDict] = _WIRE_MODEL_CONFIG

    server_version: str | None = None
    protocol_version: str | None = None


class ConnectionEstablishedEnvelope(BaseEnvelope):
    """The first frame of a ``/ws/control`` or ``/ws/training`` connection, from the server."""

    type: Literal["connection_established"] = "connection_established"
    data: ConnectionEstablishedData = Field(  # type: ignore[assignment]
        default_factory=ConnectionEstablishedData
    )


CONTROL_ENVELOPES: tuple[type[BaseEnvelope], ...] = (
    CommandResponseEnvelope,
    ConnectionEstablishedEnvelope,
)
"""The envelope classes the server sends on ``/ws/control``."""
