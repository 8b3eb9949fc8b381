"""Checks of decoded-JSON values shared by the message and manifest parsers.

Each check appends :class:`FieldError` s to ``errors`` and returns the accepted value, or
``INVALID``; none of them raises, whatever the input (huge ints, NaN, bools, unhashable keys).
JSON types are what count: ``bool`` is neither an integer nor a number, an integer is a number.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

from juniper_cascor_protocol.worker.field_error import FieldError

__all__ = [
    "INVALID",
    "Path",
    "check_float",
    "check_float_list",
    "check_int",
    "check_object",
    "check_str",
    "json_type",
    "show",
]

Path = tuple[str | int, ...]
INVALID: Final = object()
"""Returned by a check that failed (``None`` is a valid value for nullable fields)."""

_SHOW_LIMIT = 60


def json_type(value: object) -> str:
    """The JSON name of ``value``'s type, for messages ("boolean", "array", ...)."""
    if value is None:
        return "null"
    for kind, name in _JSON_NAMES:
        if isinstance(value, kind):
            return name
    return type(value).__name__


_JSON_NAMES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)


def show(value: object) -> str:
    """A short ``repr`` of a peer's value: never echo megabytes into an error message."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        # str() of a huge int is slow, and refused past sys.get_int_max_str_digits().
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    if isinstance(value, str):
        text = repr(value[: _SHOW_LIMIT + 1])
    elif isinstance(value, int | float | None):
        text = repr(value)
    else:
        text = json_type(value)
    return text if len(text) <= _SHOW_LIMIT else text[: _SHOW_LIMIT - 3] + "..."


def _fail(errors: list[FieldError], path: Path, message: str) -> object:
    errors.append(FieldError(path, message))
    return INVALID


def check_str(
    value: object,
    path: Path,
    errors: list[FieldError],
    *,
    accept: Callable[[str], bool] | None = None,
    expectation: str = "",
) -> object:
    """A string; if ``accept`` is given it must return True, else ``expectation`` is reported."""
    if not isinstance(value, str):
        return _fail(errors, path, f"expected a string, got {json_type(value)}")
    if accept is not None and not accept(value):
        return _fail(errors, path, f"{expectation}, got {show(value)}")
    return value


def check_int(
    value: object, path: Path, errors: list[FieldError], *, minimum: int | None = None
) -> object:
    """An integer (not a bool, not a float), at least ``minimum`` if given."""
    if isinstance(value, bool) or not isinstance(value, int):
        return _fail(errors, path, f"expected an integer, got {json_type(value)}")
    if minimum is not None and value < minimum:
        return _fail(errors, path, f"must be >= {minimum}, got {show(value)}")
    return value


def check_float(
    value: object,
    path: Path,
    errors: list[FieldError],
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
) -> object:
    """A finite number (an integer is accepted and converted), optionally bounded."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _fail(errors, path, f"expected a number, got {json_type(value)}")
    try:
        number = float(value)
    except OverflowError:
        return _fail(errors, path, f"number out of range for a float: {show(value)}")
    if not math.isfinite(number):
        return _fail(errors, path, f"must be a finite number, got {number!r}")
    if minimum is not None and maximum is not None and not minimum <= number <= maximum:
        return _fail(errors, path, f"must be in [{minimum:g}, {maximum:g}], got {number!r}")
    if positive and number <= 0:
        return _fail(errors, path, f"must be > 0, got {number!r}")
    return number


def check_float_list(value: object, path: Path, errors: list[FieldError]) -> object:
    """A list of finite numbers; every bad element is reported at its index."""
    if not isinstance(value, list | tuple):
        return _fail(errors, path, f"expected an array of numbers, got {json_type(value)}")
    before = len(errors)
    numbers = [check_float(item, (*path, index), errors) for index, item in enumerate(value)]
    return INVALID if len(errors) > before else numbers


def check_object(value: object, path: Path, errors: list[FieldError]) -> object:
    """A JSON object: a dict whose keys are all strings; returns a shallow copy."""
    if not isinstance(value, dict):
        return _fail(errors, path, f"expected an object, got {json_type(value)}")
    bad_keys = [key for key in value if not isinstance(key, str)]
    for key in bad_keys:
        _fail(errors, (*path, show(key)), f"object keys must be strings, got {json_type(key)}")
    return INVALID if bad_keys else dict(value)
