"""Argument checks shared by every public function.

Each check raises ``ValueError`` for a bad value or shape and ``TypeError`` for a bad type, with one
message template: "`name` must <expectation>; got <what was seen>." Checks return clean ``numpy``
arrays (contiguous, writable copies are never required), so the compute code behind them can trust
its inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Rows of a probability matrix may differ from 1 by this much (float32 softmax rounding).
PROB_SUM_ATOL = 1e-4


def _describe(x: Any) -> str:
    if isinstance(x, np.ndarray):
        return f"array of shape {x.shape} and dtype {x.dtype}"
    return f"{type(x).__name__}"


def as_array(x: ArrayLike, name: str) -> NDArray:
    """Turn ``x`` into a numpy array, accepting torch tensors, lists and pandas objects."""
    if x is None:
        raise TypeError(f"`{name}` must be array-like; got None.")
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"`{name}` must be array-like; got {type(x).__name__} ({exc}).") from None
    return arr


def check_finite_float(
    x: ArrayLike, name: str, *, ndim: int | None = None, shape_hint: str = ""
) -> NDArray[np.float64]:
    """A real-valued array with no NaN or inf, as float64, with ``ndim`` dimensions if given."""
    arr = as_array(x, name)
    if arr.dtype == bool or arr.dtype.kind not in "iuf":
        raise TypeError(f"`{name}` must hold real numbers; got {_describe(arr)}.")
    if ndim is not None and arr.ndim != ndim:
        hint = shape_hint or ("(n_samples,)" if ndim == 1 else "(n_samples, n_classes)")
        raise ValueError(f"`{name}` must have shape {hint}; got {arr.shape}.")
    if arr.size == 0:
        raise ValueError(f"`{name}` must not be empty; got shape {arr.shape}.")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        n_bad = int(arr.size - np.isfinite(arr).sum())
        raise ValueError(f"`{name}` must be finite; got {n_bad} NaN or inf values.")
    return arr


def check_logits(logits: ArrayLike, name: str = "logits") -> NDArray[np.float64]:
    """Logits of shape (n_samples, n_classes) with at least two classes."""
    arr = check_finite_float(logits, name, ndim=2)
    if arr.shape[1] < 2:
        raise ValueError(f"`{name}` must have at least 2 classes (columns); got shape {arr.shape}.")
    return arr


def check_probs(probs: ArrayLike, name: str = "probs") -> NDArray[np.float64]:
    """Probabilities of shape (n_samples, n_classes): in [0, 1], each row summing to 1.

    Logits are never softmaxed silently: rows that do not sum to 1 are an error that says so.
    """
    arr = check_finite_float(probs, name, ndim=2)
    if arr.shape[1] < 2:
        raise ValueError(f"`{name}` must have at least 2 classes (columns); got shape {arr.shape}.")
    lo, hi = arr.min(), arr.max()
    if lo < 0 or hi > 1:
        raise ValueError(
            f"`{name}` must hold probabilities in [0, 1]; got values in [{lo:.4g}, {hi:.4g}]. "
            "If these are logits, apply a softmax first (or pass them as `logits`)."
        )
    sums = arr.sum(axis=1)
    worst = int(np.argmax(np.abs(sums - 1)))
    if abs(sums[worst] - 1) > PROB_SUM_ATOL:
        raise ValueError(
            f"`{name}` rows must sum to 1; got row {worst} summing to {sums[worst]:.6g}."
        )
    return arr


def check_labels(
    y: ArrayLike, name: str = "y_true", *, n_classes: int | None = None
) -> NDArray[np.int64]:
    """Integer class labels of shape (n_samples,), in ``[0, n_classes)`` when ``n_classes`` is given."""
    arr = as_array(y, name)
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must have shape (n_samples,); got {arr.shape}.")
    if arr.size == 0:
        raise ValueError(f"`{name}` must not be empty; got shape {arr.shape}.")
    if arr.dtype == bool or arr.dtype.kind not in "iuf":
        raise TypeError(f"`{name}` must hold integer class labels; got {_describe(arr)}.")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or not np.all(arr == np.round(arr)):
            raise TypeError(
                f"`{name}` must hold integer class labels; got non-integer floats "
                f"such as {arr[~(np.isfinite(arr) & (arr == np.round(arr)))][0]!r}."
            )
    arr = arr.astype(np.int64, copy=False)
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or (n_classes is not None and hi >= n_classes):
        expected = f"[0, {n_classes - 1}]" if n_classes is not None else ">= 0"
        raise ValueError(f"`{name}` must hold labels in {expected}; got values in [{lo}, {hi}].")
    return arr


def check_same_length(**arrays: Sequence | NDArray) -> int:
    """All arrays have the same first dimension; return it."""
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        seen = ", ".join(f"`{k}` has {v}" for k, v in lengths.items())
        raise ValueError(f"Arguments must have the same number of samples; got {seen}.")
    return next(iter(lengths.values()))


def check_option(value: Any, name: str, options: Sequence[Any]) -> Any:
    """``value`` is one of ``options`` (plotly-express style message)."""
    if value not in options:
        raise ValueError(f"`{name}` must be one of {list(options)}; got {value!r}.")
    return value


def check_int(value: Any, name: str, *, minimum: int | None = None) -> int:
    """A Python or numpy integer (not a bool), at least ``minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an integer; got {type(value).__name__} {value!r}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}; got {value}.")
    return int(value)


def check_classification(
    y_true: ArrayLike, probs: ArrayLike, *, y_name: str = "y_true", p_name: str = "probs"
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Labels and probabilities that belong together: same length, labels within the columns."""
    p = check_probs(probs, p_name)
    y = check_labels(y_true, y_name, n_classes=p.shape[1])
    check_same_length(**{y_name: y, p_name: p})
    return y, p
