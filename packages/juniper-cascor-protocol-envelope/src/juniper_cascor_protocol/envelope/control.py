"""``/ws/control``: the command names, statuses and request model, and the two envelopes the
server sends there (``command_response`` and ``connection_established``) (SPEC §4).

A client sends ``{"command": str, "params": {...}, "command_id": str}`` as one JSON text frame;
the server answers with a ``command_response`` envelope echoing ``command`` and ``command_id``.

Unknown command names are *accepted* by the model (forward compatible: a newer client must get
a ``command_response`` with ``status="error"`` and ``code=UNKNOWN_COMMAND_CODE`` from an older
server, not a dropped frame). Use :attr:`ControlCommand.known_name` to dispatch.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import from_json

from juniper_cascor_protocol.envelope.base import BaseEnvelope, _FreeFormDict
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


class ControlCommand(BaseModel):
    """One ``/ws/control`` request. Unknown top-level keys are kept, like the envelopes."""

    model_config = ConfigDict(extra="allow", frozen=True)

    command: str = Field(min_length=1, max_length=COMMAND_NAME_MAX_LENGTH)
    params: dict[str, Any] = Field(default_factory=dict)
    command_id: str = Field(
        default_factory=_new_command_id, min_length=1, max_length=COMMAND_ID_MAX_LENGTH
    )

    @property
    def known_name(self) -> ControlCommandName | None:
        """The command as a :class:`ControlCommandName`, or ``None`` if this server lacks it."""
        try:
            return ControlCommandName(self.command)
        except ValueError:
            return None

    def to_wire_dict(self) -> dict[str, Any]:
        """The request as the JSON-compatible dict sent on the wire."""
        return self.model_dump(mode="json")

    def to_wire_json(self) -> str:
        """The request as the JSON text frame sent on the wire."""
        return self.model_dump_json()


@dataclass(frozen=True, slots=True)
class CommandParseError:
    """A request that failed validation, with what the server needs to answer it.

    ``command`` and ``command_id`` are copied from the frame when they are strings within
    their length limits, so the error response can still be correlated.
    """

    errors: tuple[str, ...]
    command: str | None = None
    command_id: str | None = None
    code: str = INVALID_COMMAND_CODE


def _bounded_str(value: object, limit: int) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


def _failure(error: ValidationError, frame: object) -> CommandParseError:
    messages = describe_validation_error(error, limit=_MAX_REPORTED_ERRORS)
    command = command_id = None
    if isinstance(frame, dict):
        command = _bounded_str(frame.get("command"), COMMAND_NAME_MAX_LENGTH)
        command_id = _bounded_str(frame.get("command_id"), COMMAND_ID_MAX_LENGTH)
    return CommandParseError(messages, command=command, command_id=command_id)


def parse_command(frame: object) -> ControlCommand | CommandParseError:
    """Validate an already-decoded request; never raises, whatever ``frame`` is."""
    try:
        return ControlCommand.model_validate(frame)
    except ValidationError as error:
        return _failure(error, frame)


def parse_command_json(raw: str | bytes | bytearray) -> ControlCommand | CommandParseError:
    """Validate a request straight from the JSON text frame; never raises on wire input."""
    try:
        return ControlCommand.model_validate_json(raw)
    except ValidationError as error:
        # Decode again only on failure, to recover ``command``/``command_id`` for the response.
        try:
            frame: object = from_json(raw)
        except (ValueError, TypeError) as not_json:  # TypeError: a str with lone surrogates
            return CommandParseError(
                (f"request is not valid JSON: {not_json}",), code=MALFORMED_JSON_CODE
            )
        return _failure(error, frame)


class CommandResponseData(BaseModel):
    """The answer to a ``/ws/control`` command, correlated by ``command_id``."""

    model_config = ConfigDict(extra="allow")

    command: str
    status: str
    command_id: str | None = None
    result: _FreeFormDict | None = None
    error: str | None = None
    code: str | None = None


class CommandResponseEnvelope(BaseEnvelope):
    type: Literal["command_response"] = "command_response"
    data: CommandResponseData  # type: ignore[assignment]


class ConnectionEstablishedData(BaseModel):
    model_config = ConfigDict(extra="allow")

    server_version: str | None = None
    protocol_version: str | None = None


class ConnectionEstablishedEnvelope(BaseEnvelope):
    type: Literal["connection_established"] = "connection_established"
    data: ConnectionEstablishedData = Field(  # type: ignore[assignment]
        default_factory=ConnectionEstablishedData
    )


CONTROL_ENVELOPES: tuple[type[BaseEnvelope], ...] = (
    CommandResponseEnvelope,
    ConnectionEstablishedEnvelope,
)
"""The envelope classes the server sends on ``/ws/control``."""
