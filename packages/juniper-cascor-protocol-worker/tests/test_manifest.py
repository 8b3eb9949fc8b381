"""TensorManifest and check_tensors: describing arrays and checking received ones."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from juniper_cascor_protocol.worker import (
    BinaryFrame,
    FieldError,
    TaskAssignMessage,
    TensorManifest,
    TensorSpec,
    check_tensors,
    parse_worker_message,
)


def arrays() -> dict[str, NDArray[Any]]:
    return {
        "weights": np.arange(12, dtype=np.float32).reshape(4, 3),
        "bias": np.array(0.5, dtype=">f8"),
        "mask": np.array([True, False]),
    }


NOT_AN_ARRAY = "expected a numpy.ndarray or a numpy scalar, got "
CONVERT_IT = (
    "; convert it with numpy.asarray(value, dtype=...) so the dtype on the wire is your choice"
)


def test_from_arrays_describes_each_array_in_order() -> None:
    manifest = TensorManifest.from_arrays(arrays())
    assert manifest == {
        "weights": TensorSpec([4, 3], "float32"),
        "bias": TensorSpec([], ">f8"),
        "mask": TensorSpec([2], "bool"),
    }
    assert list(manifest) == ["weights", "bias", "mask"]
    assert TensorManifest.to_wire(manifest) == {
        "weights": {"shape": [4, 3], "dtype": "float32"},
        "bias": {"shape": [], "dtype": ">f8"},
        "mask": {"shape": [2], "dtype": "bool"},
    }


@pytest.mark.parametrize("dtype", [object, "U2", "M8[s]", np.longdouble], ids=str)
def test_from_arrays_refuses_what_a_frame_cannot_carry(dtype: Any) -> None:
    with pytest.raises(TypeError, match="Cannot encode an array of dtype"):
        TensorManifest.from_arrays({"x": np.zeros(2, dtype=dtype)})


def test_parse_round_trips_and_keeps_unknown_entry_keys() -> None:
    wire = {
        "w": {"shape": [2, 0], "dtype": "<i4", "note": "empty"},
        "s": {"shape": [], "dtype": "complex64"},
    }
    manifest = TensorManifest.parse(wire)
    assert isinstance(manifest, dict)
    assert manifest["w"] == TensorSpec([2, 0], "<i4")
    assert dict(manifest["w"].extra) == {"note": "empty"}
    assert TensorManifest.to_wire(manifest) == wire


def test_parse_prefixes_the_given_path() -> None:
    assert TensorManifest.parse({"w": {"shape": [-1], "dtype": "f4"}}, ("inputs",)) == [
        FieldError(("inputs", "w", "shape", 0), "must be >= 0, got -1")
    ]
    assert TensorManifest.parse([]) == [FieldError((), "expected an object, got array")]


def test_matching_arrays_pass() -> None:
    manifest = TensorManifest.from_arrays(arrays())
    assert check_tensors(manifest, arrays()) == []
    assert check_tensors(manifest, list(arrays().values())) == []


def test_other_spellings_of_the_same_dtype_match() -> None:
    manifest = {"w": TensorSpec([2], "<f4"), "b": TensorSpec([1], "|b1")}
    assert check_tensors(manifest, {"w": np.zeros(2, np.float32), "b": np.ones(1, bool)}) == []


def test_missing_unexpected_and_reordered_names_are_reported() -> None:
    manifest = TensorManifest.from_arrays(arrays())
    given = arrays()
    assert check_tensors(manifest, {"mask": given["mask"], "extra": given["bias"]}) == [
        FieldError(("weights",), "missing: listed in the manifest, no array given"),
        FieldError(("bias",), "missing: listed in the manifest, no array given"),
        FieldError(("extra",), "unexpected: not listed in the manifest"),
    ]
    reordered = {"bias": given["bias"], "weights": given["weights"], "mask": given["mask"]}
    assert check_tensors(manifest, reordered) == [
        FieldError(
            (),
            "arrays are in the order ['bias', 'weights', 'mask'], the manifest lists "
            "['weights', 'bias', 'mask']",
        )
    ]


def test_a_sequence_of_the_wrong_length_is_reported() -> None:
    manifest = TensorManifest.from_arrays(arrays())
    assert check_tensors(manifest, [arrays()["weights"]]) == [
        FieldError((), "expected 3 arrays, one per entry, got 1")
    ]


def test_shape_and_dtype_mismatches_are_reported_per_tensor() -> None:
    manifest = TensorManifest.from_arrays(arrays())
    given = arrays()
    given["weights"] = given["weights"].T
    given["bias"] = given["bias"].astype("<f8")
    given["mask"] = [True, False]  # type: ignore[assignment]
    assert check_tensors(manifest, given) == [
        FieldError(("weights", "shape"), "expected [4, 3], got [3, 4]"),
        FieldError(("bias", "dtype"), "expected >f8, got float64"),
        FieldError(("mask",), NOT_AN_ARRAY + "list" + CONVERT_IT),
    ]


def test_a_manifest_dtype_outside_the_plain_set_is_reported() -> None:
    manifest = {"x": TensorSpec([1], "object")}
    assert check_tensors(manifest, {"x": np.zeros(1)}) == [
        FieldError(
            ("x", "dtype"), "the manifest's dtype 'object' is not a plain numeric dtype string"
        )
    ]


@pytest.mark.parametrize(
    ("values", "counts"),
    [
        (np.array([np.nan, 1.0, np.inf, -np.inf], np.float32), "1 NaN and 2 infinite of 4"),
        (np.array([complex(np.nan, 0), 1j], np.complex64), "1 NaN and 0 infinite of 2"),
        (np.array(np.inf, np.float16), "0 NaN and 1 infinite of 1"),
    ],
    ids=["float32", "complex64", "zero-d float16"],
)
def test_non_finite_values_are_reported_unless_allowed(values: NDArray[Any], counts: str) -> None:
    manifest = TensorManifest.from_arrays({"x": values})
    assert check_tensors(manifest, {"x": values}) == [
        FieldError(("x",), f"non-finite values: {counts}")
    ]
    assert check_tensors(manifest, {"x": values}, allow_non_finite=True) == []


def test_integer_and_empty_arrays_are_never_non_finite() -> None:
    given = {"i": np.array([2**62], np.int64), "e": np.zeros((0, 3), np.float64)}
    assert check_tensors(TensorManifest.from_arrays(given), given) == []


def test_task_assign_with_its_frames_end_to_end() -> None:
    sent = arrays()
    message = TaskAssignMessage(
        task_id="t1",
        round_id="r1",
        candidate_index=0,
        candidate_data={},
        training_params={"epochs": 5},
        tensor_manifest=TensorManifest.from_arrays(sent),
    )
    frames = [BinaryFrame.encode(array) for array in sent.values()]

    received = parse_worker_message(message.to_wire())
    assert isinstance(received, TaskAssignMessage)
    tensors = dict(zip(received.tensor_manifest, map(BinaryFrame.decode, frames), strict=True))
    assert check_tensors(received.tensor_manifest, tensors) == []
    for name, array in sent.items():
        assert tensors[name].tobytes() == array.tobytes()


# --- the encoders, from_arrays and check_tensors take the same values --------------------------


class Tagged(np.ndarray):
    """An ndarray subclass: sent as its base array."""


TAKEN: dict[str, Any] = {
    "numpy scalar": np.float32(1.5),
    "zero-d array": np.array(7, np.int16),
    "ndarray subclass": np.arange(3.0).view(Tagged),
    "Fortran order": np.asfortranarray(np.ones((2, 3), ">f8")),
}


@pytest.mark.parametrize("name", list(TAKEN))
def test_what_a_frame_takes_is_described_and_checked(name: str) -> None:
    value = TAKEN[name]
    decoded = BinaryFrame.decode(BinaryFrame.encode(value))
    manifest = TensorManifest.from_arrays({name: value})
    assert manifest == {name: TensorSpec(list(decoded.shape), str(decoded.dtype))}
    assert check_tensors(manifest, {name: value}) == []
    assert check_tensors(manifest, [value]) == []
    assert check_tensors(manifest, {name: decoded}) == []


def test_a_non_finite_numpy_scalar_is_reported() -> None:
    manifest = {"x": TensorSpec([], "float64")}
    assert check_tensors(manifest, {"x": np.float64("nan")}) == [
        FieldError(("x",), "non-finite values: 1 NaN and 0 infinite of 1")
    ]


REFUSED: dict[str, tuple[object, str]] = {
    "list": ([1.0], NOT_AN_ARRAY + "list" + CONVERT_IT),
    "float": (1.0, NOT_AN_ARRAY + "float" + CONVERT_IT),
    "str": ("1.0", NOT_AN_ARRAY + "str" + CONVERT_IT),
    "None": (None, NOT_AN_ARRAY + "NoneType" + CONVERT_IT),
    "masked array": (
        np.ma.masked_array([1.0], mask=[True]),
        "Cannot encode a masked array: the mask would be lost; send .filled(...)",
    ),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_what_a_frame_refuses_is_a_type_error_or_a_reported_problem(name: str) -> None:
    value, message = REFUSED[name]
    with pytest.raises(TypeError) as by_encode:
        BinaryFrame.encode(value)  # type: ignore[arg-type]
    with pytest.raises(TypeError) as by_manifest:
        TensorManifest.from_arrays({name: value})  # type: ignore[dict-item]
    assert str(by_encode.value) == str(by_manifest.value) == message
    manifest = {name: TensorSpec([1], "float64")}
    assert check_tensors(manifest, {name: value}) == [FieldError((name,), message)]  # type: ignore[dict-item]


def test_limits_of_a_frame_hold_for_the_manifest_too() -> None:
    too_deep = np.zeros((1,) * 11)
    with pytest.raises(ValueError, match="at most 10") as by_encode:
        BinaryFrame.encode(too_deep)
    with pytest.raises(ValueError, match="at most 10") as by_manifest:
        TensorManifest.from_arrays({"x": too_deep})
    assert str(by_manifest.value) == str(by_encode.value)
    manifest = {"x": TensorSpec([1] * 11, "float64")}
    assert check_tensors(manifest, {"x": too_deep}) == [FieldError(("x",), str(by_encode.value))]
