"""The base of the wire dataclasses: keys a newer peer sent that this version does not know."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Self, SupportsIndex

__all__ = ["KeepsExtraKeys"]

_NONE: Mapping[str, Any] = MappingProxyType({})


def _restore(cls: type[KeepsExtraKeys], extra: dict[str, Any] | None) -> KeepsExtraKeys:
    """An empty instance of ``cls`` holding ``extra``; pickle then sets its fields."""
    instance = cls.__new__(cls)
    if extra:
        object.__setattr__(instance, "_extra", extra)
    return instance


class KeepsExtraKeys:
    """Holds the unknown keys of a parsed object so that ``to_wire`` gives them back.

    They live in a slot rather than a dataclass field: they are not part of the wire schema, do
    not take part in ``==``, and are not constructor arguments (use :meth:`with_extra`).

    ``copy.copy``, ``copy.deepcopy`` and ``pickle`` keep them (see :meth:`__reduce_ex__`);
    ``dataclasses.replace`` builds a new object from its fields only, so chain
    ``.with_extra(original.extra)`` to keep them.
    """

    __slots__ = ("_extra",)

    # Read by Pydantic when a JSON Schema is generated from these dataclasses outside this
    # wheel: a plain dict, so nothing here imports Pydantic. Extra keys are allowed on the wire.
    __pydantic_config__: ClassVar[dict[str, Any]] = {"extra": "ignore"}

    @property
    def extra(self) -> Mapping[str, Any]:
        """Unknown keys received with this object (read-only; empty unless parsed or set)."""
        return MappingProxyType(getattr(self, "_extra", _NONE))

    def with_extra(self, extra: Mapping[str, Any]) -> Self:
        """A copy of this object that ``to_wire`` writes with ``extra``'s keys added.

        Keys that are fields of the object are ignored in ``to_wire``: fields win.
        """
        duplicate = copy.copy(self)
        object.__setattr__(duplicate, "_extra", dict(extra))
        return duplicate

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[Any, ...]:
        """Copy and pickle the kept keys with the fields.

        A frozen slotted dataclass pickles its own fields only (its generated ``__getstate__``
        overrides any of a base class), so the slot of this base would be lost. The object is
        rebuilt by :func:`_restore` with its kept keys, then its fields are set from the
        dataclass's own state, after the object is registered: reference cycles through a
        field copy and pickle as before.
        """
        extra = getattr(self, "_extra", None)
        return _restore, (type(self), extra), self.__getstate__()

    def _set_extra(self, extra: dict[str, Any]) -> None:
        if extra:
            object.__setattr__(self, "_extra", extra)
