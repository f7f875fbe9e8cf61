"""Argument checks shared by every public function.

Each check raises ``ValueError`` for a bad value or shape and ``TypeError`` for a bad type, with one
message template: "`name` must <expectation>; got <what was seen>." Checks return clean ``numpy``
arrays (contiguous, writable copies are never required), so the compute code behind them can trust
its inputs.

Big arrays (a memory-mapped 1.28M x 2,048 feature matrix) are checked in row chunks of about
:data:`CHUNK_ENTRIES` entries: one read of the array, and temporaries the size of a chunk, never of
the array.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from labviz.core import _scan

#: Rows of a probability matrix may differ from 1 by this much (float32 softmax rounding); more for
#: low-precision dtypes, see :func:`prob_sum_atol`.
PROB_SUM_ATOL = 1e-4

#: The largest dense result (e.g. an n_classes x n_classes matrix) labviz allocates: 800 MB of
#: float64. Beyond it a clear ValueError beats a MemoryError or a machine swapping to a halt.
MAX_CELLS = 10**8

#: Entries per row chunk when a big array is checked or converted (4 MB of float32): its
#: temporaries stay this small whatever the array's size.
CHUNK_ENTRIES = 1 << 20

_INT64_MAX = int(np.iinfo(np.int64).max)
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def describe(x: Any) -> str:
    """What a bad argument was, for error messages: its shape and dtype, or its type."""
    if isinstance(x, np.ndarray):
        return f"array of shape {x.shape} and dtype {x.dtype}"
    return f"{type(x).__name__}"


def _tensor_to_numpy(x: Any, name: str) -> NDArray:
    import torch  # already imported: ``x`` is a tensor

    if x.is_meta:
        raise TypeError(f"`{name}` must hold values; got a torch tensor on the meta device "
                        f"(shape {tuple(x.shape)}, no data).")
    x = x.detach().cpu()
    if x.is_floating_point() and x.dtype not in (torch.float16, torch.float32, torch.float64):
        x = x.float()  # bfloat16 and float8 have no numpy dtype; float32 holds them exactly
    try:
        return x.numpy()
    except (TypeError, RuntimeError) as exc:  # sparse, quantised or complex32 tensors
        raise TypeError(f"`{name}` must be convertible to a numpy array; got a torch tensor "
                        f"of dtype {x.dtype} ({exc}).") from None


def as_array(x: ArrayLike, name: str) -> NDArray:
    """Turn ``x`` into a numpy array, accepting torch tensors, lists and pandas objects.

    A ``np.memmap`` is returned as it is: ``np.asarray`` would turn it into a plain ndarray view,
    losing what says its data lives in a file.
    """
    if x is None:
        raise TypeError(f"`{name}` must be array-like; got None.")
    if isinstance(x, np.memmap):
        return x
    if hasattr(x, "detach") and hasattr(x, "cpu") and hasattr(x, "is_meta"):  # torch, unimported
        x = _tensor_to_numpy(x, name)
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
        raise TypeError(f"`{name}` must hold real numbers; got {describe(arr)}.")
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


def row_chunks(n_rows: int, row_size: int) -> Iterator[slice]:
    """Slices of consecutive rows, each of about :data:`CHUNK_ENTRIES` entries (at least one row).

    >>> [(s.start, s.stop) for s in row_chunks(5, CHUNK_ENTRIES // 2)]
    [(0, 2), (2, 4), (4, 6)]
    """
    step = max(1, CHUNK_ENTRIES // max(row_size, 1))
    for start in range(0, n_rows, step):
        yield slice(start, start + step)


def count_nonfinite(arr: NDArray) -> int:
    """How many NaN or inf entries a real array holds, counted a row chunk at a time."""
    if arr.dtype.kind != "f" or arr.size == 0:
        return 0
    row_size = arr.size // arr.shape[0]
    return sum(int(np.count_nonzero(~np.isfinite(arr[rows])))
               for rows in row_chunks(arr.shape[0], row_size))


@overload
def check_stored_floats(
    x: ArrayLike, name: str, *, ndim: int, shape_hint: str, keep_float16: Literal[False] = ...
) -> NDArray[np.float32]: ...


@overload
def check_stored_floats(
    x: ArrayLike, name: str, *, ndim: int, shape_hint: str, keep_float16: bool
) -> NDArray[np.float32] | NDArray[np.float16]: ...


def check_stored_floats(
    x: ArrayLike, name: str, *, ndim: int, shape_hint: str, keep_float16: bool = False
) -> NDArray[np.float32] | NDArray[np.float16]:
    """A real array with ``ndim`` dimensions, no NaN or inf and every value within float32's range,
    checked in row chunks; returned without a copy where its dtype and layout allow.

    A C-contiguous float32 array (float16 too with ``keep_float16``) is returned as it is: the
    caller's own array, a ``np.memmap`` staying one. Anything else becomes a C-contiguous float32
    copy (float64 is rounded; integers pass through float64 as :func:`check_finite_float` takes
    them). The check reads the array once, a row chunk at a time, and allocates nothing the size
    of the array but that copy.

    >>> x = np.ones((2, 3), dtype=np.float32)
    >>> check_stored_floats(x, "x", ndim=2, shape_hint="(n, d)") is x
    True
    """
    arr = as_array(x, name)
    if arr.dtype == bool or arr.dtype.kind not in "iuf":
        raise TypeError(f"`{name}` must hold real numbers; got {describe(arr)}.")
    if arr.ndim != ndim:
        raise ValueError(f"`{name}` must have shape {shape_hint}; got {arr.shape}.")
    if arr.size == 0:
        raise ValueError(f"`{name}` must not be empty; got shape {arr.shape}.")
    _check_finite_in_float32(arr, name)
    kept = (np.float32, np.float16) if keep_float16 else (np.float32,)
    if arr.dtype in kept and arr.dtype.isnative and arr.flags.c_contiguous:
        return arr
    out = np.empty(arr.shape, dtype=np.float32)
    row_size = arr.size // arr.shape[0]
    for rows in row_chunks(arr.shape[0], row_size):
        chunk = arr[rows]
        out[rows] = chunk if chunk.dtype.kind == "f" else chunk.astype(np.float64)
    return out


def _check_finite_in_float32(arr: NDArray, name: str) -> None:
    """Raise unless every entry of a non-empty real array is finite and fits in float32.

    A chunk's smallest and largest entries settle both questions (NaN propagates through
    ``min``/``max``) without a temporary; only a chunk holding NaN or inf is read again, to count.
    float16 is read as integers: its magnitude bits order as its magnitudes do, with NaN and inf
    above every finite value (and every finite float16 fits in float32). numpy's float16
    ``min``/``max`` are some 70 times slower than that pass.
    """
    row_size = arr.size // arr.shape[0]
    half = arr.dtype.kind == "f" and arr.dtype.itemsize == 2
    n_bad, big = 0, 0.0
    for rows in row_chunks(arr.shape[0], row_size):
        chunk = arr[rows]
        if half:
            if int(np.bitwise_and(chunk.view(f"{arr.dtype.byteorder}u2"), 0x7FFF).max()) >= 0x7C00:
                n_bad += int(np.count_nonzero(~np.isfinite(chunk)))
            continue
        lo, hi = float(chunk.min()), float(chunk.max())
        if math.isfinite(lo) and math.isfinite(hi):
            big = max(big, -lo, hi)
        else:
            n_bad += int(np.count_nonzero(~np.isfinite(chunk)))
    if n_bad:
        raise ValueError(f"`{name}` must be finite; got {n_bad} NaN or inf values.")
    if big > _FLOAT32_MAX:
        raise ValueError(f"`{name}` must fit in float32 (|x| <= {_FLOAT32_MAX:.4g}); got a value "
                         f"of magnitude {big:.4g}.")


def check_float32_range(arr: NDArray, name: str) -> NDArray[np.float32]:
    """``arr`` as float32, refusing values that float32 would turn into inf."""
    big = float(np.abs(arr).max()) if arr.size else 0.0
    if big > _FLOAT32_MAX:
        raise ValueError(f"`{name}` must fit in float32 (|x| <= {_FLOAT32_MAX:.4g}); got a value "
                         f"of magnitude {big:.4g}.")
    return arr.astype(np.float32)


def check_logits(logits: ArrayLike, name: str = "logits") -> NDArray[np.float64]:
    """Logits of shape (n_samples, n_classes) with at least two classes; warns (see
    :func:`warn_if_probabilities`) when they look like probabilities."""
    given = getattr(logits, "dtype", None)
    arr = check_finite_float(logits, name, ndim=2)
    if arr.shape[1] < 2:
        raise ValueError(f"`{name}` must have at least 2 classes (columns); got shape {arr.shape}.")
    # these functions have no `probs` argument: log-probabilities are the logits they want
    warn_if_probabilities(arr, name, given_dtype=given,
                          fix=f"pass `np.log(probs)` as `{name}` (softmax gives them back)")
    return arr


def looks_like_probabilities(arr: NDArray, *, given_dtype: Any = None) -> bool:
    """Whether every row of a finite real matrix is non-negative and sums to 1.

    Rows may sum to 1 within :func:`prob_sum_atol` of ``given_dtype`` (the dtype the caller was
    given, when ``arr`` is a float32 copy of float16 values), else of float32. Read a row chunk at
    a time, and the reading stops at the first chunk with a negative entry or a row summing
    elsewhere: real logits are answered from their first chunk.

    >>> looks_like_probabilities(np.array([[0.25, 0.75], [1.0, 0.0]]))
    True
    >>> looks_like_probabilities(np.array([[2.0, -1.0], [0.0, 1.0]]))
    False
    """
    n_classes = arr.shape[1]
    stored = np.float16 if given_dtype == np.float16 else np.float32
    # The sums are taken in the array's own dtype (a float64 copy of each chunk would be the
    # largest temporary of the check), so their rounding is allowed for on top of the entries'.
    # numpy's sum, not a BLAS product: BLAS threads crowd a busy machine (10x slower here).
    sum_eps = float(np.finfo(arr.dtype).eps) if arr.dtype.kind == "f" else 0.0
    atol = prob_sum_atol(np.dtype(stored), n_classes) + n_classes * sum_eps
    for rows in row_chunks(arr.shape[0], n_classes):
        chunk = arr[rows]
        if chunk.min() < 0 or np.abs(chunk.sum(axis=1) - 1.0).max() > atol:
            return False
    return True


def warn_if_probabilities(arr: NDArray, name: str = "logits", *, given_dtype: Any = None,
                          fix: str = "pass them as `probs=` instead") -> None:
    """Warn (``UserWarning``, at the caller's line outside labviz) when ``arr``, passed as logits,
    looks like probabilities (:func:`looks_like_probabilities`).

    labviz takes what it is given: the values are kept as logits, and softmax would squeeze their
    confidences towards 1 / n_classes. The warning ends with ``fix``: what to pass instead (by
    default ``probs=``, the argument probabilities belong to).
    """
    if not looks_like_probabilities(arr, given_dtype=given_dtype):
        return
    n, k = arr.shape
    top = math.e / (math.e + k - 1)  # softmax of a one-hot row: the most confident it can be
    warnings.warn(
        f"`{name}` look like probabilities: all {n} rows are non-negative and sum to 1. They are "
        f"used as logits, and their softmax squeezes every confidence into "
        f"[{1 / k:.2g}, {top:.2g}] for {k} classes, so calibration and confidence "
        f"are wrong. If they are probabilities (e.g. scikit-learn's `predict_proba`), {fix}.",
        UserWarning, stacklevel=_stacklevel_outside_labviz())


def _stacklevel_outside_labviz() -> int:
    """The ``stacklevel`` of the first frame, above the caller of this one, outside labviz: the
    user's line, however many labviz functions (loaders, constructors) lie between."""
    level, frame = 2, sys._getframe(2)
    while frame is not None and str(frame.f_globals.get("__name__", "")).startswith("labviz."):
        level, frame = level + 1, frame.f_back  # type: ignore[assignment]
    return level


def check_probs(probs: ArrayLike, name: str = "probs") -> NDArray[np.float64]:
    """Probabilities of shape (n_samples, n_classes): in [0, 1], each row summing to 1.

    Logits are never softmaxed silently: rows that do not sum to 1 are an error that says so.
    """
    return check_probs_top(probs, name)[0].astype(np.float64, copy=False)


def check_probs_top(
    probs: ArrayLike, name: str = "probs"
) -> tuple[NDArray[np.floating], NDArray[np.intp], NDArray[np.float64]]:
    """The checks of :func:`check_probs`, returning the probabilities (float32 stays float32),
    the top class of each row and its probability (float64).

    For hot paths on big matrices: no float64 copy (8 GB for 1e6 x 1000), finiteness read off the
    row sums and the largest entry off the top probabilities, all in one compiled pass over big
    matrices (see :mod:`labviz.core._scan`).
    """
    arr = as_array(probs, name)
    if arr.dtype == bool or arr.dtype.kind not in "iuf":
        raise TypeError(f"`{name}` must hold real numbers; got {describe(arr)}.")
    if arr.ndim != 2:
        raise ValueError(f"`{name}` must have shape (n_samples, n_classes); got {arr.shape}.")
    if arr.size == 0:
        raise ValueError(f"`{name}` must not be empty; got shape {arr.shape}.")
    atol = prob_sum_atol(arr.dtype, arr.shape[1])  # of the given dtype, before any upcast
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    sums, pred, conf, lo = _row_stats(arr)
    if not np.isfinite(sums).all():  # a NaN or inf entry makes its row sum non-finite
        n_bad = count_nonfinite(arr)
        if n_bad:
            raise ValueError(f"`{name}` must be finite; got {n_bad} NaN or inf values.")
    if arr.shape[1] < 2:
        raise ValueError(f"`{name}` must have at least 2 classes (columns); got shape {arr.shape}.")
    hi = float(conf.max())
    if lo < 0 or hi > 1:
        raise ValueError(
            f"`{name}` must hold probabilities in [0, 1]; got values in [{lo:.4g}, {hi:.4g}]. "
            "If these are logits, apply a softmax first (or pass them as `logits`)."
        )
    worst = int(np.argmax(np.abs(sums - 1)))
    if abs(sums[worst] - 1) > atol:
        raise ValueError(f"`{name}` rows must sum to 1; got row {worst} summing to {sums[worst]:.6g}.")
    return arr, pred, conf


def _row_stats(
    arr: NDArray[np.floating],
) -> tuple[NDArray[np.float64], NDArray[np.intp], NDArray[np.float64], float]:
    """Row sums, the top class of each row (its first maximum, as ``np.argmax``), the top
    probability and the smallest entry of a float32/float64 matrix.

    A NaN or inf entry makes its row sum non-finite; nothing else is promised about such rows.
    """
    if arr.size >= _scan.MIN_ENTRIES:
        stats = _scan.row_stats(arr)
        if stats is not None:
            return stats
    pred = arr.argmax(axis=1)
    sums = arr @ np.ones(arr.shape[1], dtype=arr.dtype)
    top = arr[np.arange(len(arr)), pred]
    return sums.astype(np.float64), pred, top.astype(np.float64), float(arr.min())


def prob_sum_atol(dtype: np.dtype, n_classes: int) -> float:
    """How far a row of ``n_classes`` probabilities stored as ``dtype`` may sum from 1.

    ``max(PROB_SUM_ATOL, n_classes * eps)``: each entry is rounded to the dtype, so correctly
    rounded float16 rows (eps ~ 1e-3) can be off by more than float32 ones.
    """
    eps = float(np.finfo(dtype).eps) if np.dtype(dtype).kind == "f" else 0.0
    return max(PROB_SUM_ATOL, n_classes * eps)


def check_labels(
    y: ArrayLike, name: str = "y_true", *, n_classes: int | None = None,
    n_classes_arg: str | None = None,
) -> NDArray[np.int64]:
    """Integer class labels of shape (n_samples,), in ``[0, n_classes)`` when ``n_classes`` is given.

    ``n_classes_arg`` names the argument ``n_classes`` came from, when the caller gave it (rather
    than it being read off a probability matrix): a label above it then blames that argument.
    """
    arr = as_array(y, name)
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must have shape (n_samples,); got {arr.shape}.")
    if arr.size == 0:
        raise ValueError(f"`{name}` must not be empty; got shape {arr.shape}.")
    if arr.dtype == bool or arr.dtype.kind not in "iuf":
        raise TypeError(f"`{name}` must hold integer class labels; got {describe(arr)}.")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or not np.all(arr == np.round(arr)):
            raise TypeError(
                f"`{name}` must hold integer class labels; got non-integer floats "
                f"such as {arr[~(np.isfinite(arr) & (arr == np.round(arr)))][0]!r}."
            )
    # Range-check in the given dtype (Python numbers compare exactly): a cast first would wrap
    # 1e20 or 2**63 + 5 around to values the user never passed.
    lo, hi = arr.min().item(), arr.max().item()
    top = n_classes - 1 if n_classes is not None else _INT64_MAX
    if n_classes_arg is not None and n_classes is not None and lo >= 0 and hi > top:
        raise ValueError(f"`{n_classes_arg}` must be greater than the largest label; got "
                         f"{n_classes_arg}={n_classes} and labels up to {_format_label(hi)} "
                         f"in `{name}`.")
    if lo < 0 or hi > top:
        expected = f"[0, {top}]" if n_classes is not None or hi > top else ">= 0"
        raise ValueError(f"`{name}` must hold labels in {expected}; got values in "
                         f"[{_format_label(lo)}, {_format_label(hi)}].")
    return arr.astype(np.int64, copy=False)


def _format_label(x: float | int) -> str:
    """An integer-valued label as an integer (a float beyond 2**53 in exponent form, e.g. 1e+20)."""
    if isinstance(x, float) and abs(x) >= 2**53:
        return f"{x:g}"
    return str(int(x))


def check_sample_ids(
    ids: ArrayLike, name: str = "ids", *, unique: bool = False,
    within: ArrayLike | None = None, of: str = "the data",
) -> NDArray[np.int64]:
    """Sample ids: a 1-D integer array (an empty one of any dtype), as int64.

    ``unique=True`` refuses repeated ids; ``within`` (the known ids, described by ``of`` in the
    message) refuses ids that are not among them. Lengths are the caller's to compare, with
    :func:`check_same_length`.

    >>> check_sample_ids([3, 1], unique=True).tolist()
    [3, 1]
    """
    arr = as_array(ids, name)
    expected = ("a 1-D array of " + ("unique " if unique else "") + "integer sample ids"
                + (f" of {of}" if within is not None else ""))
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be {expected}; got shape {arr.shape}.")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype == bool or arr.dtype.kind not in "iu":
        raise TypeError(f"`{name}` must be {expected}; got {describe(arr)}.")
    out = arr.astype(np.int64, copy=False)
    if unique:  # neighbours in sorted order: no count per id unless some repeat
        ordered = np.sort(out)
        same = ordered[1:] == ordered[:-1]
        if same.any():
            repeated = np.unique(ordered[1:][same])
            raise ValueError(f"`{name}` must be {expected}; got {repeated.size} repeated, "
                             f"e.g. {repeated[:5].tolist()}.")
    if within is not None:
        unknown = np.setdiff1d(out, as_array(within, "within"))
        if unknown.size:
            raise ValueError(f"`{name}` must be {expected}; got {unknown.size} unknown, "
                             f"e.g. {unknown[:5].tolist()}.")
    return out


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


def check_int(
    value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """A Python or numpy integer (not a bool), in ``[minimum, maximum]`` where given."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an integer; got {type(value).__name__} {value!r}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}; got {value}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"`{name}` must be <= {maximum}; got {value}.")
    return int(value)


def check_float(value: Any, name: str) -> float:
    """A finite Python or numpy real number (not a bool), as a float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"`{name}` must be a real number; got {type(value).__name__} {value!r}.")
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite; got {value!r}.")
    return float(value)


def check_bool(value: Any, name: str) -> bool:
    """A Python or numpy bool: strings such as ``"no"`` are refused, not read as True."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be a bool; got {type(value).__name__} {value!r}.")
    return bool(value)


def check_str(value: Any, name: str) -> str:
    """A string (``None`` is refused rather than turned into ``"None"``)."""
    if not isinstance(value, str):
        raise TypeError(f"`{name}` must be a str; got {type(value).__name__} {value!r}.")
    return value


def check_dense_size(shape: tuple[int, ...], *, name: str, value: int, what: str) -> None:
    """Refuse a dense result of ``shape`` above :data:`MAX_CELLS` cells, blaming argument ``name``.

    ``value`` is the argument's value (given, or inferred such as ``largest label + 1``).
    """
    cells = math.prod(shape)
    if cells > MAX_CELLS:
        dims = " x ".join(str(d) for d in shape)
        raise ValueError(f"`{name}` is too large for a dense {what}; got {name}={value}, a {dims} "
                         f"result of {cells:.3g} cells ({cells * 8 / 1e9:.3g} GB as float64), "
                         f"expected at most {MAX_CELLS:.0e} cells.")


def check_classification(
    y_true: ArrayLike, probs: ArrayLike, *, y_name: str = "y_true", p_name: str = "probs"
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Labels and probabilities that belong together: same length, labels within the columns."""
    p = check_probs(probs, p_name)
    y = check_labels(y_true, y_name, n_classes=p.shape[1])
    check_same_length(**{y_name: y, p_name: p})
    return y, p


def check_class_names(class_names: Sequence[str] | None, n_classes: int) -> tuple[str, ...]:
    """Class names as a tuple of ``n_classes`` strings; ``"0", "1", ...`` when not given."""
    if class_names is None:
        return tuple(str(k) for k in range(n_classes))
    if isinstance(class_names, str):
        raise TypeError(f"`class_names` must be a sequence of strings; got the string {class_names!r}.")
    names = tuple(str(c) for c in class_names)
    if len(names) != n_classes:
        raise ValueError(f"`class_names` must have {n_classes} entries (one per class); "
                         f"got {len(names)}.")
    return names
