"""Input validation shared by every metric.

Each helper raises ``ValueError`` naming the argument, what was expected and what was
received, so that a metric never silently broadcasts, casts or averages bad input.
Torch tensors are accepted everywhere and converted once, here, to numpy (metrics are
evaluation code and run on CPU; see the module docstrings).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = [
    "to_numpy",
    "check_same_shape",
    "check_ndim",
    "check_nonempty",
    "check_numeric",
    "check_no_nan",
    "check_finite",
    "check_range",
    "check_binary",
    "check_integer_labels",
    "check_positive",
    "check_choice",
    "describe",
]


def describe(x: Any) -> str:
    """A short description of ``x`` for error messages (type, shape, dtype)."""
    if isinstance(x, np.ndarray):
        return f"array of shape {tuple(x.shape)} and dtype {x.dtype}"
    if type(x).__module__.startswith("torch"):
        return f"tensor of shape {tuple(x.shape)} and dtype {x.dtype}"
    if isinstance(x, (list, tuple)):
        return f"{type(x).__name__} of length {len(x)}"
    return f"{type(x).__name__} {x!r}"


def to_numpy(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as a numpy array (torch tensors are detached and copied to CPU).

    Raises:
        ValueError: ``x`` is None, a string, or not convertible to a numeric array.
    """
    if x is None:
        raise ValueError(f"{name}: expected an array or tensor, got None")
    if isinstance(x, (str, bytes)):
        raise ValueError(f"{name}: expected an array or tensor, got {describe(x)}")
    if type(x).__module__.startswith("torch"):
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        x = x.numpy()
    try:
        array = np.asarray(x)
    except Exception as error:  # ragged lists and the like
        raise ValueError(f"{name}: could not convert {describe(x)} to an array ({error})") from error
    if array.dtype == object:
        raise ValueError(f"{name}: expected a numeric array, got an object array (ragged input?) "
                         f"from {describe(x)}")
    return array


def check_numeric(x: np.ndarray, name: str, *, allow_bool: bool = True) -> None:
    """Reject non-numeric dtypes (strings, objects, complex)."""
    kinds = "biuf" if allow_bool else "iuf"
    if x.dtype.kind not in kinds:
        expected = "a bool, integer or float" if allow_bool else "an integer or float"
        raise ValueError(f"{name}: expected {expected} array, got dtype {x.dtype}")


def check_nonempty(x: np.ndarray, name: str) -> None:
    if x.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {tuple(x.shape)}")


def check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Two arrays must have exactly the same shape: metrics never broadcast."""
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape (no broadcasting), "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}")


def check_ndim(x: np.ndarray, name: str, ndims: int | Sequence[int], layout: str) -> None:
    allowed = (ndims,) if isinstance(ndims, int) else tuple(ndims)
    if x.ndim not in allowed:
        raise ValueError(f"{name}: expected shape {layout}, got shape {tuple(x.shape)}")


def check_no_nan(x: np.ndarray, name: str) -> None:
    if x.dtype.kind == "f" and np.isnan(x).any():
        count = int(np.isnan(x).sum())
        raise ValueError(f"{name}: contains {count} NaN value(s) out of {x.size}")


def check_finite(x: np.ndarray, name: str) -> None:
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        count = int((~np.isfinite(x)).sum())
        raise ValueError(f"{name}: contains {count} non-finite value(s) (NaN or inf) out of {x.size}")


def check_range(x: np.ndarray, name: str, low: float, high: float) -> None:
    """Every value must lie in the closed interval [low, high]."""
    if x.size == 0:
        return
    lo, hi = x.min(), x.max()
    if lo < low or hi > high:
        raise ValueError(f"{name}: values must lie in [{low}, {high}], got values in [{lo}, {hi}]")


def check_binary(x: np.ndarray, name: str, *, extra: Sequence[int] = ()) -> None:
    """A mask: bool, or numbers in {0, 1} (plus ``extra`` values such as a void label)."""
    if x.dtype == bool:
        return
    check_numeric(x, name)
    allowed = np.array([0, 1, *extra])
    bad = ~np.isin(x, allowed)
    if bad.any():
        shown = np.unique(x[bad])[:5]
        raise ValueError(f"{name}: expected a binary mask (bool or values in {allowed.tolist()}), "
                         f"got other values such as {shown.tolist()}")


def check_integer_labels(x: np.ndarray, name: str) -> None:
    """A label map: an integer dtype, or floats holding whole numbers."""
    if x.dtype.kind in "iu":
        return
    if x.dtype.kind == "b":
        return
    if x.dtype.kind == "f":
        check_no_nan(x, name)
        if np.all(np.mod(x, 1) == 0):
            return
        raise ValueError(f"{name}: expected integer labels, got non-integral floats (dtype {x.dtype})")
    raise ValueError(f"{name}: expected an integer label array, got dtype {x.dtype}")


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: expected a number, got {describe(value)}") from error
    if not np.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: expected a finite number {bound}, got {value!r}")
    return number


def check_choice(value: Any, name: str, choices: Sequence[Any]) -> None:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {list(choices)}, got {value!r}")


def prediction(x: Any, name: str) -> np.ndarray:
    """Common path for a prediction: to numpy, numeric, non-empty, no NaN."""
    array = to_numpy(x, name)
    check_numeric(array, name)
    check_nonempty(array, name)
    check_no_nan(array, name)
    return array
