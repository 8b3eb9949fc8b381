"""Checks of decoded-JSON values shared by the message and manifest parsers.

Each check appends :class:`FieldError` s to ``errors`` and returns the accepted value, or
``INVALID``; none of them raises, whatever the input (huge ints, NaN, bools, unhashable keys).
JSON types are what count: ``bool`` is neither an integer nor a number, an integer is a number.

A value is read through its exact built-in type, never through its own methods: the type is
told by ``type(value)`` (``isinstance`` may consult a ``__class__`` property), a subclass of
``str``, ``int``, ``float``, ``list`` or ``dict`` is read with the base class's methods
(``dict.items(value)``, ``str.__str__(value)`` ...) and what is kept is a plain copy, so an
override of ``__getitem__``, ``__iter__``, ``__eq__``, ``__hash__`` or ``__repr__`` never runs.

A free-form value (an object field such as ``capabilities``, a key a message does not define) is
kept as it is if it holds built-in JSON types only, as :func:`json.loads` gives it, else as a
copy in those types, however deep (:func:`check_json_value`): what is not a JSON value
(``bytes``, a ``set``, any other object) is refused at its path, so whatever parses can be
written again. ``NaN`` and infinities are JSON values here, as :func:`json.loads` reads
them; only the numeric fields must be finite.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Final, TypeAlias, cast

from juniper_cascor_protocol.worker.field_error import FieldError

__all__ = [
    "INVALID",
    "Path",
    "check_float",
    "check_float_list",
    "check_int",
    "check_json_value",
    "check_object",
    "check_str",
    "exact_str",
    "json_type",
    "plain_items",
    "plain_list",
    "show",
    "string_keyed",
]

Path = tuple[str | int, ...]
INVALID: Final = object()
"""Returned by a check that failed (``None`` is a valid value for nullable fields)."""

_SHOW_LIMIT = 60

MAX_NESTING: Final = 500
"""How deep a free-form value may nest, arrays and objects within one another; deeper, or a
value that contains itself, is refused. :func:`json.dumps` writes only as deep as the stack
lets it (about the recursion limit, 1000): half of that keeps every parsed message writable."""


def json_type(value: object) -> str:
    """The JSON name of ``value``'s type, for messages ("boolean", "array", ...)."""
    if value is None:
        return "null"
    kind = type(value)
    for base, name in _JSON_NAMES:
        if issubclass(kind, base):
            return name
    return kind.__name__


_JSON_NAMES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)


def exact_str(value: object) -> str | None:
    """``value`` as an exact ``str`` if it is a string (a subclass is read by value), or None."""
    kind = type(value)
    if kind is str:
        return cast(str, value)
    if issubclass(kind, str):
        return str.__str__(cast(str, value))
    return None


def _exact_int(value: object) -> int | None:
    """``value`` as an exact ``int`` if it is a JSON integer (not a bool), or None."""
    kind = type(value)
    if kind is int:
        return cast(int, value)
    if issubclass(kind, int) and kind is not bool:
        return int.__int__(cast(int, value))
    return None


def _exact_float(value: object) -> float | None:
    kind = type(value)
    if kind is float:
        return cast(float, value)
    if issubclass(kind, float):
        return float.__float__(cast(float, value))
    return None


def plain_items(value: object) -> list[tuple[object, object]] | None:
    """The items of a dict as stored, if ``value`` is one, read without calling its methods."""
    if not issubclass(type(value), dict):
        return None
    return list(dict.items(cast(dict[object, object], value)))


def plain_list(value: object) -> list[object] | None:
    """A list copy of a list or tuple, read without calling its methods, or None."""
    kind = type(value)
    if issubclass(kind, list):
        return list.copy(cast(list[object], value))
    if issubclass(kind, tuple):
        return list(tuple.__iter__(cast(tuple[object, ...], value)))
    return None


def show(value: object) -> str:
    """A short ``repr`` of a peer's value: never echo megabytes into an error message."""
    number = _exact_int(value)
    if number is not None and number.bit_length() > 128:
        # str() of a huge int is slow, and refused past sys.get_int_max_str_digits().
        return f"an integer of about {int(number.bit_length() * math.log10(2)) + 1} digits"
    text = exact_str(value)
    if text is not None:
        shown = repr(text[: _SHOW_LIMIT + 1])
    elif number is not None:
        shown = repr(number)
    elif (real := _exact_float(value)) is not None:
        shown = repr(real)
    elif value is None or type(value) is bool:
        shown = repr(value)
    else:
        shown = json_type(value)
    return shown if len(shown) <= _SHOW_LIMIT else shown[: _SHOW_LIMIT - 3] + "..."


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
    text = exact_str(value)
    if text is None:
        return _fail(errors, path, f"expected a string, got {json_type(value)}")
    if accept is not None and not accept(text):
        return _fail(errors, path, f"{expectation}, got {show(text)}")
    return text


def check_int(
    value: object, path: Path, errors: list[FieldError], *, minimum: int | None = None
) -> object:
    """An integer (not a bool, not a float), at least ``minimum`` if given."""
    number = _exact_int(value)
    if number is None:
        return _fail(errors, path, f"expected an integer, got {json_type(value)}")
    if minimum is not None and number < minimum:
        return _fail(errors, path, f"must be >= {minimum}, got {show(number)}")
    return number


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
    number = _exact_float(value)
    if number is None:
        integer = _exact_int(value)
        if integer is None:
            return _fail(errors, path, f"expected a number, got {json_type(value)}")
        try:
            number = float(integer)
        except OverflowError:
            return _fail(errors, path, f"number out of range for a float: {show(integer)}")
    if not math.isfinite(number):
        return _fail(errors, path, f"must be a finite number, got {number!r}")
    if minimum is not None and maximum is not None and not minimum <= number <= maximum:
        return _fail(errors, path, f"must be in [{minimum:g}, {maximum:g}], got {number!r}")
    if positive and number <= 0:
        return _fail(errors, path, f"must be > 0, got {number!r}")
    return number


def check_float_list(value: object, path: Path, errors: list[FieldError]) -> object:
    """A list of finite numbers; every bad element is reported at its index."""
    items = plain_list(value)
    if items is None:
        return _fail(errors, path, f"expected an array of numbers, got {json_type(value)}")
    before = len(errors)
    numbers = [check_float(item, (*path, index), errors) for index, item in enumerate(items)]
    return INVALID if len(errors) > before else numbers


def check_object(value: object, path: Path, errors: list[FieldError]) -> object:
    """A JSON object: a dict whose keys are all strings, as a new dict; its values as
    :func:`check_json_value` keeps them."""
    if plain_items(value) is None:
        return _fail(errors, path, f"expected an object, got {json_type(value)}")
    if _is_plain(value):
        return dict(cast(dict[str, object], value))
    return _plain_copy(value, path, errors)


_Pending: TypeAlias = tuple[object, Path, int, list[object] | dict[str, object], int | str]
"""A value to copy, its path and depth, the container its copy goes into and where."""


def check_json_value(value: object, path: Path, errors: list[FieldError]) -> object:
    """A JSON value: ``value`` itself if it holds built-in JSON types only (what
    :func:`json.loads` gives), else a copy in plain ``dict``, ``list``, ``str``, ``int`` and
    ``float``, subclasses read by value and a tuple copied as a list (``json.dumps`` writes it so).

    What is not a JSON value, an object key that is not a string, and nesting deeper than
    :data:`MAX_NESTING` are reported at their paths, each of them. Iterative, so no depth of
    input exhausts the stack.
    """
    return value if _is_plain(value) else _plain_copy(value, path, errors)


def _plain_copy(value: object, path: Path, errors: list[FieldError]) -> object:
    """:func:`check_json_value` of a value that is not plain: a copy, or INVALID."""
    before = len(errors)
    root: list[object] = [None]
    pending: list[_Pending] = [(value, path, 0, root, 0)]
    while pending:
        item, here, depth, parent, slot = pending.pop()
        copy, children = _plain_node(item, here, depth, errors)
        parent[slot] = copy  # type: ignore[index]
        pending += reversed(children)  # popped in order: problems are reported in order
    return INVALID if len(errors) > before else root[0]


_PLAIN_SCALARS: Final = frozenset({str, int, float, bool, type(None)})


def _is_plain(value: object) -> bool:
    """Whether ``value`` holds built-in JSON types only, string keys, at most MAX_NESTING deep.

    The fast test for what :func:`json.loads` gives (no copy, no path built), one level of
    containers at a time: a value that contains itself fails on depth.
    """
    kind = type(value)
    if kind is not dict and kind is not list:
        return kind in _PLAIN_SCALARS
    level: list[object] = [value]
    for _ in range(MAX_NESTING):
        nested: list[object] = []
        for container in level:
            items: Iterable[object]
            if type(container) is dict:
                members = cast(dict[object, object], container)
                for key in members:
                    if type(key) is not str:
                        return False
                items = members.values()
            else:
                items = cast(list[object], container)
            for item in items:
                kind = type(item)
                if kind is dict or kind is list:
                    nested.append(item)
                elif kind not in _PLAIN_SCALARS:
                    return False
        if not nested:
            return True
        level = nested
    return False


def _plain_node(
    value: object, path: Path, depth: int, errors: list[FieldError]
) -> tuple[object, list[_Pending]]:
    """The copy of one value (an empty container to fill) and what remains to copy into it."""
    kind = type(value)
    if value is None or kind is bool or kind is str or kind is int or kind is float:
        return value, []
    scalar = _exact_scalar(value)
    if scalar is not None:
        return scalar, []
    items = plain_items(value)
    elements = plain_list(value) if items is None else None
    if items is None and elements is None:
        return _fail(errors, path, f"expected a JSON value, got {json_type(value)}"), []
    if depth >= MAX_NESTING:
        return _fail(errors, path, f"nested deeper than {MAX_NESTING} arrays and objects"), []
    if items is not None:
        members, key_errors = string_keyed(items, path)
        errors += key_errors
        obj: dict[str, object] = dict.fromkeys(members)
        return obj, [(item, (*path, name), depth + 1, obj, name) for name, item in members.items()]
    assert elements is not None
    array: list[object] = [None] * len(elements)
    return array, [
        (item, (*path, index), depth + 1, array, index) for index, item in enumerate(elements)
    ]


def _exact_scalar(value: object) -> str | int | float | None:
    """A ``str``, ``int`` or ``float`` subclass's value as the exact type, else ``None``."""
    text = exact_str(value)
    if text is not None:
        return text
    number = _exact_int(value)
    if number is not None:
        return number
    return _exact_float(value)


def string_keyed(
    items: list[tuple[object, object]], path: Path
) -> tuple[dict[str, object], list[FieldError]]:
    """A plain dict of the items whose keys are strings, and an error for every other key.

    A ``str`` subclass key is read by value; if two keys then read alike, the later value
    wins, as with a name repeated in a JSON object.
    """
    members: dict[str, object] = {}
    key_errors: list[FieldError] = []
    for key, value in items:
        name = exact_str(key)
        if name is None:
            message = f"object keys must be strings, got {json_type(key)}"
            key_errors.append(FieldError((*path, show(key)), message))
        else:
            members[name] = value
    return members, key_errors
