"""The tensor manifest: which binary frames follow a ``task_assign`` or ``task_result``.

On the wire a manifest is ``{name: {"shape": [int, ...], "dtype": str}}``; one binary frame per
entry follows the JSON message, in manifest order. Here it is a ``dict[str, TensorSpec]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from juniper_cascor_protocol.worker._checks import (
    INVALID,
    Path,
    check_int,
    check_object,
    check_str,
    json_type,
    plain_list,
    show,
)
from juniper_cascor_protocol.worker._extra import KeepsExtraKeys
from juniper_cascor_protocol.worker.binary_frame import (
    MAX_NDIM,
    as_frame_array,
    dtype_from_text,
    frame_array,
    text_of_dtype,
)
from juniper_cascor_protocol.worker.field_error import FieldError

__all__ = ["TensorManifest", "TensorSpec", "check_tensors"]

_DIMENSION_LIMIT = 2**32


@dataclass(frozen=True, slots=True)
class TensorSpec(KeepsExtraKeys):
    """One manifest entry: the shape and dtype string of the frame sent under this name.

    ``dtype`` is a dtype string a binary frame accepts (``"float32"``, ``"<f4"``, ...).
    """

    shape: list[int]
    dtype: str


def _is_plain_dtype(text: str) -> bool:
    return dtype_from_text(text) is not None


def check_manifest(value: object, path: Path, errors: list[FieldError]) -> object:
    """Parse a wire manifest, reporting every problem; used by the message parsers."""
    entries = check_object(value, path, errors)
    if entries is INVALID:
        return INVALID
    assert isinstance(entries, dict)
    before = len(errors)
    manifest: dict[str, TensorSpec] = {}
    for name, entry in entries.items():
        spec = _check_spec(entry, (*path, name), errors)
        if isinstance(spec, TensorSpec):
            manifest[name] = spec
    return INVALID if len(errors) > before else manifest


def _check_spec(value: object, path: Path, errors: list[FieldError]) -> object:
    fields = check_object(value, path, errors)
    if fields is INVALID:
        return INVALID
    assert isinstance(fields, dict)
    before = len(errors)
    shape = _check_shape(fields.pop("shape", INVALID), (*path, "shape"), errors)
    dtype = fields.pop("dtype", INVALID)
    if dtype is INVALID:
        errors.append(FieldError((*path, "dtype"), "missing required field"))
    else:
        dtype = check_str(
            dtype,
            (*path, "dtype"),
            errors,
            accept=_is_plain_dtype,
            expectation="expected a plain numeric dtype string such as 'float32' or '<f4'",
        )
    if len(errors) > before:
        return INVALID
    assert isinstance(shape, list)
    assert isinstance(dtype, str)
    spec = TensorSpec(shape, dtype)
    spec._set_extra(fields)
    return spec


def _check_shape(value: object, path: Path, errors: list[FieldError]) -> object:
    if value is INVALID:
        errors.append(FieldError(path, "missing required field"))
        return INVALID
    items = plain_list(value)
    if items is None:
        errors.append(FieldError(path, f"expected an array of integers, got {json_type(value)}"))
        return INVALID
    if len(items) > MAX_NDIM:
        errors.append(FieldError(path, f"at most {MAX_NDIM} dimensions, got {len(items)}"))
        return INVALID
    before = len(errors)
    shape: list[int] = []
    for index, dimension in enumerate(items):
        checked = check_int(dimension, (*path, index), errors, minimum=0)
        if isinstance(checked, int):
            if checked >= _DIMENSION_LIMIT:
                message = f"must be below 2**32 (a frame's u32), got {show(checked)}"
                errors.append(FieldError((*path, index), message))
            shape.append(checked)
    return INVALID if len(errors) > before else shape


class TensorManifest:
    """Build, parse and serialise manifests (``dict[str, TensorSpec]``); a namespace."""

    @staticmethod
    def from_arrays(
        arrays: Mapping[str, NDArray[Any] | np.generic],
    ) -> dict[str, TensorSpec]:
        """The manifest describing ``arrays``, in their order (send the frames in that order).

        Takes what :meth:`BinaryFrame.encode` takes (an ndarray or a numpy scalar) and raises
        what it raises: ``TypeError`` for anything else (a list, a masked array) or a dtype no
        frame carries, ``ValueError`` for too many dimensions or a frame over the size limit.
        """
        manifest: dict[str, TensorSpec] = {}
        for name, value in arrays.items():
            array = frame_array(value)
            manifest[name] = TensorSpec(list(array.shape), text_of_dtype(array.dtype))
        return manifest

    @staticmethod
    def parse(obj: object, path: Path = ()) -> dict[str, TensorSpec] | list[FieldError]:
        """Parse a wire manifest; every problem is reported, with ``path`` prefixed."""
        errors: list[FieldError] = []
        manifest = check_manifest(obj, path, errors)
        if errors:
            return errors
        assert isinstance(manifest, dict)
        return manifest

    @staticmethod
    def to_wire(manifest: Mapping[str, TensorSpec]) -> dict[str, dict[str, Any]]:
        """The JSON-ready manifest: ``{name: {"shape": [...], "dtype": ...}}`` plus kept keys."""
        wire: dict[str, dict[str, Any]] = {}
        for name, spec in manifest.items():
            entry: dict[str, Any] = {"shape": list(spec.shape), "dtype": spec.dtype}
            for key, value in spec.extra.items():
                entry.setdefault(key, value)
            wire[name] = entry
        return wire


def check_tensors(
    manifest: Mapping[str, TensorSpec],
    arrays: Mapping[str, NDArray[Any] | np.generic] | Sequence[NDArray[Any] | np.generic],
    *,
    allow_non_finite: bool = False,
) -> list[FieldError]:
    """Compare received (or about to be sent) arrays with their manifest; ``[]`` if they agree.

    ``arrays`` is either a mapping name → array, checked for missing, unexpected and reordered
    names, or a sequence of arrays in frame order, checked for its length. Each array is
    checked for its shape and dtype and, unless ``allow_non_finite``, for NaN and infinities
    (Cascade-Correlation cannot train on them). Paths start with the tensor name.

    An array is what :meth:`BinaryFrame.encode` takes (an ndarray or a numpy scalar); anything
    else, a masked array included, is reported rather than raised, and so is an array whose
    frame :meth:`BinaryFrame.encode` would refuse (over the size limit, say).
    """
    errors: list[FieldError] = []
    names = list(manifest)
    pairs: list[tuple[str, object]]
    if isinstance(arrays, Mapping):
        given = list(arrays)
        errors += [
            FieldError((name,), "missing: listed in the manifest, no array given")
            for name in names
            if name not in arrays
        ]
        errors += [
            FieldError((name,), "unexpected: not listed in the manifest")
            for name in given
            if name not in manifest
        ]
        in_manifest_order = [name for name in names if name in arrays]
        in_given_order = [name for name in given if name in manifest]
        if in_manifest_order != in_given_order:
            errors.append(
                FieldError(
                    (),
                    f"arrays are in the order {in_given_order}, the manifest lists "
                    f"{in_manifest_order}",
                )
            )
        pairs = [(name, arrays[name]) for name in in_manifest_order]
    else:
        if len(arrays) != len(names):
            errors.append(
                FieldError((), f"expected {len(names)} arrays, one per entry, got {len(arrays)}")
            )
        pairs = list(zip(names, arrays, strict=False))
    for name, array in pairs:
        errors += _check_array(name, manifest[name], array, allow_non_finite=allow_non_finite)
    return errors


def _check_array(
    name: str, spec: TensorSpec, value: object, *, allow_non_finite: bool
) -> list[FieldError]:
    try:
        array = as_frame_array(value)
    except TypeError as exc:
        return [FieldError((name,), str(exc))]
    errors = []
    if tuple(spec.shape) != array.shape:
        errors.append(
            FieldError((name, "shape"), f"expected {list(spec.shape)}, got {list(array.shape)}")
        )
    expected = dtype_from_text(spec.dtype)
    if expected is None:
        message = f"the manifest's dtype {spec.dtype!r} is not a plain numeric dtype string"
        errors.append(FieldError((name, "dtype"), message))
    elif array.dtype != expected:
        errors.append(FieldError((name, "dtype"), f"expected {spec.dtype}, got {array.dtype}"))
    if not errors:
        try:
            frame_array(array)  # what the manifest promises may still be more than a frame takes
        except (TypeError, ValueError) as exc:
            errors.append(FieldError((name,), str(exc)))
    if not allow_non_finite and array.dtype.kind in "fc" and not np.isfinite(array).all():
        nan = int(np.count_nonzero(np.isnan(array)))
        infinite = int(np.count_nonzero(np.isinf(array)))
        errors.append(
            FieldError(
                (name,),
                f"non-finite values: {nan} NaN and {infinite} infinite of {array.size}",
            )
        )
    return errors
