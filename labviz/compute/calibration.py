"""Calibration: reliability curves, calibration errors, proper scores and temperature scaling.

Binning convention (used by every function here and by :class:`CalibrationAccumulator`)
-----------------------------------------------------------------------------------------
``n_bins`` bins with edges ``e_0 < e_1 < ... < e_{n_bins}``. Bins are **right-closed**: bin ``i``
holds the confidences in ``(e_i, e_{i+1}]``, and a confidence of exactly ``e_0`` (0 for uniform
bins) also goes to the first bin. So a confidence of exactly 1.0 falls in the **last** bin (not in a
phantom extra bin, as in torchmetrics) and a confidence sitting on an inner edge goes to the bin
below it, as in :func:`sklearn.calibration.calibration_curve`.

* ``strategy="uniform"``: equal-width edges ``np.linspace(0, 1, n_bins + 1)``.
* ``strategy="quantile"``: equal-mass edges, the ``np.quantile`` of the confidences at
  ``linspace(0, 1, n_bins + 1)``, with the outer edges set to 0 and 1 (which changes no
  assignment). Ties can make some bins empty.

Calibration errors
------------------
With ``n_b`` samples in bin ``b`` (``N`` in all), ``conf_b`` their mean confidence and ``acc_b``
their accuracy (fraction correct), and the sums over non-empty bins:

* ``norm="l1"`` (ECE): ``sum_b (n_b / N) |acc_b - conf_b|``
* ``norm="l2"`` (RMS calibration error): ``sqrt(sum_b (n_b / N) (acc_b - conf_b)^2)``
* ``norm="max"`` (MCE): ``max_b |acc_b - conf_b|``

These are the definitions of torchmetrics' ``multiclass_calibration_error`` and netcal's ``ECE``
(up to the edge convention above). *Top-label* calibration uses the top probability as the
confidence and "the top class is the true class" as correctness. *Class-wise* calibration
(``classwise=True``) computes, for each class ``k``, the calibration error of ``probs[:, k]`` as a
predictor of ``y_true == k`` (one-vs-rest), and averages it over the classes.

Uncertainty and other estimators
--------------------------------
:func:`calibration_interval` gives a percentile bootstrap confidence interval of any of these
metrics (and of the NLL and Brier score), :func:`calibration_intervals` those of several metrics
from one set of draws. :func:`ece_sweep` (Roelofs et al., 2022) picks the
number of equal-mass bins, :func:`smooth_ece` (Blasiok and Nakkiran, 2024) needs no bins, and
:func:`corp_reliability` (Dimitriadis, Gneiting and Jordan, 2021) fits the reliability curve by
isotonic regression, with its score decomposition and bootstrap bands.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Literal, TypedDict

import numpy as np
from numpy.typing import ArrayLike, NDArray

from labviz.core import _bootstrap
from labviz.core import _scan
from labviz.core import _validation as v
from labviz.core._numeric import softmax

if TYPE_CHECKING:
    import pandas as pd

Strategy = Literal["uniform", "quantile"]
Norm = Literal["l1", "l2", "max"]

STRATEGIES: tuple[str, ...] = ("uniform", "quantile")
NORMS: tuple[str, ...] = ("l1", "l2", "max")

#: :func:`fit_temperature` searches ``T`` in ``[T_MIN, T_MAX]`` (on a log scale).
T_MIN, T_MAX = 1e-2, 1e2

#: Largest accepted ``n_bins`` (more bins than this cannot be filled by any realistic data set).
MAX_BINS = 10**6

# Class-wise binning works on (rows x n_classes) blocks of at most this many entries, to bound memory.
_BLOCK = 1 << 22


# ----- validation ---------------------------------------------------------------------------------
def _check_inputs(
    y_true: ArrayLike, probs: ArrayLike
) -> tuple[NDArray[np.int64], NDArray[np.floating]]:
    p, _, _ = v.check_probs_top(probs)
    y = v.check_labels(y_true, "y_true", n_classes=p.shape[1])
    v.check_same_length(y_true=y, probs=p)
    return y, p


def _check_top_label(
    y_true: ArrayLike, probs: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.bool_], int]:
    """Validated top-label confidence, correctness and the number of classes."""
    p, pred, conf = v.check_probs_top(probs)
    y = v.check_labels(y_true, "y_true", n_classes=p.shape[1])
    v.check_same_length(y_true=y, probs=p)
    return conf, pred == y, p.shape[1]


def _check_binning(n_bins: int, strategy: str) -> int:
    n_bins = v.check_int(n_bins, "n_bins", minimum=1, maximum=MAX_BINS)
    v.check_option(strategy, "strategy", STRATEGIES)
    return n_bins


def _check_temperature(temperature: float) -> float:
    if isinstance(temperature, (bool, np.bool_)) or not isinstance(
        temperature, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"`temperature` must be a real number; got {type(temperature).__name__}.")
    t = float(temperature)
    if not math.isfinite(t) or t <= 0:
        raise ValueError(f"`temperature` must be finite and > 0; got {t!r}.")
    return t


# ----- binning and per-bin statistics ----------------------------------------------------------
def _uniform_edges(n_bins: int) -> NDArray[np.float64]:
    return np.linspace(0.0, 1.0, n_bins + 1)


def _quantile_edges(values: NDArray, n_bins: int) -> NDArray[np.float64]:
    """Equal-mass edges of ``values`` (shape (n,)), or of each column of a (n, k) block along axis 0:
    shape (n_bins + 1,) or (n_bins + 1, k)."""
    edges = np.quantile(values, np.linspace(0.0, 1.0, n_bins + 1), axis=0)
    edges[0], edges[-1] = 0.0, 1.0
    return edges


def _bin_index(values: NDArray, edges: NDArray[np.float64], *, uniform: bool) -> NDArray[np.intp]:
    """Right-closed bin of each value: bin i is (e_i, e_{i+1}], values <= e_1 go to bin 0."""
    n_bins = len(edges) - 1
    if not uniform:
        # Searching only the inner edges gives 0 for values <= e_1 and n_bins - 1 above e_{n-1}.
        return np.searchsorted(edges[1:-1], values, side="left")
    # Equal widths: ceil(x n) - 1 is the bin up to one ulp of rounding, which two comparisons
    # with the actual edges fix. About twice as fast as searchsorted at 1e6 samples.
    idx = np.ceil(values * n_bins).astype(np.intp)
    idx -= 1
    np.clip(idx, 0, n_bins - 1, out=idx)
    idx -= values <= edges[idx]
    np.maximum(idx, 0, out=idx)
    idx += values > edges[idx + 1]
    return idx


@dataclass(frozen=True)
class _BinStats:
    """Sufficient statistics per bin: arrays of shape (..., n_bins)."""

    count: NDArray[np.float64]
    conf_sum: NDArray[np.float64]
    hit_sum: NDArray[np.float64]


def _weighted_bincount(idx: NDArray[np.intp], weights: NDArray, size: int) -> NDArray[np.float64]:
    """``np.bincount`` with weights, which is float64 (numpy's stubs say int)."""
    return np.bincount(idx, weights=weights, minlength=size).astype(np.float64, copy=False)


def _stats_1d(idx: NDArray[np.intp], conf: NDArray, hit: NDArray, n_bins: int) -> _BinStats:
    return _BinStats(
        count=np.bincount(idx, minlength=n_bins).astype(np.float64),
        conf_sum=_weighted_bincount(idx, conf, n_bins),
        hit_sum=_weighted_bincount(idx, hit, n_bins),
    )


@dataclass(frozen=True, eq=False)
class _ClasswiseCells:
    """Every sample's one-vs-rest cells (class ``k``, equal-width bin ``b``: cell ``k n_bins + b``),
    kept as the bootstrap needs them.

    A row's entries above the first bin (``p > edges[1]``: at most ``n_bins - 1`` per row, since a
    row sums to 1) are kept one by one in ``high``; every other entry is in bin 0, where only its
    column's sum matters (``low``) and the bin's count is what the other bins leave. Each sample's
    own class puts it in one positive cell (``hits``). So a weighting of the samples (all ones, or
    a bootstrap replica's draw counts) gives every cell's statistics in O(entries kept), plus the
    weighted column sums of bin 0 (:func:`labviz.core._bootstrap.weighted_column_sums`).
    """

    high: _bootstrap.Cells
    hits: _bootstrap.Cells
    low: NDArray[np.float64]  # (n_classes,) sum of each column's entries in bin 0
    upper: np.float64  # the first bin's upper edge
    n_classes: int
    n_bins: int


def _classwise_cells(y: NDArray[np.int64], p: NDArray, edges: NDArray[np.float64]) -> _ClasswiseCells:
    """One pass over blocks of rows of ``p`` (bounded temporaries) gathering :class:`_ClasswiseCells`."""
    n, n_classes = p.shape
    n_bins = len(edges) - 1
    upper = np.float64(edges[1])  # a float64 scalar: float32 entries are compared in float64
    rows, cells, values = [], [], []
    low = np.zeros(n_classes)
    step = max(1, _BLOCK // n_classes)
    for start in range(0, n, step):
        block = p[start:start + step]
        high = block > upper
        r, k = np.nonzero(high)
        v = block[r, k]
        rows.append(r + start)
        cells.append(k * n_bins + _bin_index(v, edges, uniform=True))
        values.append(v)
        low += np.where(high, 0, block).sum(axis=0, dtype=np.float64)
    own = p[np.arange(n), y]
    size = n_classes * n_bins
    return _ClasswiseCells(
        high=_bootstrap.Cells.group(np.concatenate(rows), np.concatenate(cells),
                                    np.concatenate(values), size, n),
        hits=_bootstrap.Cells.group(np.arange(n), y * n_bins + _bin_index(own, edges, uniform=True),
                                    None, size, n),
        low=low, upper=upper, n_classes=n_classes, n_bins=n_bins)


def _classwise_weighted_stats(
    cells: _ClasswiseCells, weights: NDArray, low: NDArray[np.float64]
) -> _BinStats:
    """Cell statistics of weighted samples, shape (n_replicas, n_classes, n_bins).

    Parameters
    ----------
    weights : ndarray of shape (n_replicas, n_samples)
    low : ndarray of shape (n_replicas, n_classes)
        The weighted column sums of the entries in bin 0.
    """
    shape = (len(weights), cells.n_classes, cells.n_bins)
    count, conf_sum = cells.high.sums(weights)
    hit_sum, _ = cells.hits.sums(weights, values=False)
    assert conf_sum is not None
    count, conf_sum = count.reshape(shape), conf_sum.reshape(shape)
    count[..., 0] = weights.sum(axis=1, dtype=np.float64)[:, None] - count[..., 1:].sum(axis=-1)
    conf_sum[..., 0] = low
    return _BinStats(count, conf_sum, hit_sum.reshape(shape))


def _stats_classwise_uniform(y: NDArray[np.int64], p: NDArray, edges: NDArray) -> _BinStats:
    """Per-class one-vs-rest statistics on shared edges, shape (n_classes, n_bins)."""
    cells = _classwise_cells(y, p, edges)
    stats = _classwise_weighted_stats(cells, np.ones((1, len(y))), cells.low[None])
    return _BinStats(stats.count[0], stats.conf_sum[0], stats.hit_sum[0])


def _stats_classwise_quantile(y: NDArray[np.int64], p: NDArray, n_bins: int) -> _BinStats:
    """Per-class statistics, each class on its own equal-mass edges, shape (n_classes, n_bins).

    Works on blocks of columns (at most ``_BLOCK`` entries, as float64): one ``np.quantile`` per
    block gives every column's edges (one call per class cost 26 s for 100_000 classes), then one
    ``np.searchsorted`` per column (exact, and faster in our measurements than a vectorised
    lockstep binary search over all columns) and three ``np.bincount`` per block.
    """
    n, n_classes = p.shape
    width = max(1, _BLOCK // n)
    blocks = []
    for start in range(0, n_classes, width):
        cols = np.ascontiguousarray(p[:, start:start + width].T, dtype=np.float64)  # (w, n)
        w = len(cols)
        inner = np.ascontiguousarray(_quantile_edges(cols.T, n_bins)[1:-1].T)  # (w, n_bins - 1)
        idx = np.empty(cols.shape, dtype=np.intp)
        for j in range(w):
            # Searching only the inner edges gives 0 for values <= e_1 and n_bins - 1 above e_{n-1}.
            idx[j] = np.searchsorted(inner[j], cols[j], side="left")
        idx += np.arange(w)[:, None] * n_bins
        size = w * n_bins
        mine = np.flatnonzero((y >= start) & (y < start + w))  # samples whose class is in the block
        blocks.append(_BinStats(
            count=np.bincount(idx.ravel(), minlength=size).astype(np.float64),
            conf_sum=_weighted_bincount(idx.ravel(), cols.ravel(), size),
            hit_sum=np.bincount(idx[y[mine] - start, mine], minlength=size).astype(np.float64),
        ))
    shape = (n_classes, n_bins)
    return _BinStats(*(np.concatenate([getattr(b, f.name) for b in blocks]).reshape(shape)
                       for f in fields(_BinStats)))


def _ce_from_stats(stats: _BinStats, norm: str) -> NDArray[np.float64]:
    """Calibration error along the last axis (bins) of the statistics; empty bins are skipped."""
    count = stats.count
    filled = count > 0
    safe = np.where(filled, count, 1.0)
    gap = np.abs(stats.hit_sum - stats.conf_sum) / safe
    if norm == "max":
        return np.where(filled, gap, 0.0).max(axis=-1)
    weight = count / count.sum(axis=-1, keepdims=True)
    if norm == "l1":
        return (weight * gap).sum(axis=-1)
    return np.sqrt((weight * gap**2).sum(axis=-1))


def _debiased_from_stats(stats: _BinStats) -> NDArray[np.float64]:
    """Kumar et al.'s debiased L2 calibration error along the last axis (see the public function)."""
    count = stats.count
    usable = count >= 2
    safe = np.where(usable, count, 2.0)
    acc = stats.hit_sum / safe
    conf = stats.conf_sum / safe
    per_bin = np.where(usable, (acc - conf) ** 2 - acc * (1 - acc) / (safe - 1), 0.0)
    squared = (count / count.sum(axis=-1, keepdims=True) * per_bin).sum(axis=-1)
    return np.sqrt(np.maximum(squared, 0.0))


def _curve_from_stats(stats: _BinStats, edges: NDArray) -> ReliabilityCurve:
    count = stats.count
    filled = count > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.where(filled, stats.conf_sum / count, np.nan)
        acc = np.where(filled, stats.hit_sum / count, np.nan)
    return ReliabilityCurve(edges=np.asarray(edges, dtype=np.float64), confidence=conf,
                            accuracy=acc, count=count.astype(np.int64))


def _top_label_stats(
    conf: NDArray[np.float64], hit: NDArray[np.bool_], n_bins: int, strategy: str
) -> tuple[_BinStats, NDArray[np.float64]]:
    uniform = strategy == "uniform"
    edges = _uniform_edges(n_bins) if uniform else _quantile_edges(conf, n_bins)
    return _stats_1d(_bin_index(conf, edges, uniform=uniform), conf, hit, n_bins), edges


def _checked_top_label_stats(
    y_true: ArrayLike, probs: ArrayLike, n_bins: int, strategy: str
) -> tuple[_BinStats, NDArray[np.float64]]:
    """Validate and bin in one go: the statistics of :func:`_top_label_stats` and the edges."""
    if strategy == "uniform":
        fast = _scanned_top_label_stats(y_true, probs, n_bins)
        if fast is not None:
            return fast
    conf, hit, _ = _check_top_label(y_true, probs)
    return _top_label_stats(conf, hit, n_bins, strategy)


def _scanned_top_label_stats(
    y_true: ArrayLike, probs: ArrayLike, n_bins: int
) -> tuple[_BinStats, NDArray[np.float64]] | None:
    """Equal-width top-label statistics of a big, valid float matrix in one compiled read
    (:func:`labviz.core._scan.top_label_bins`); None for anything else, which then takes the numpy
    path and gets its error messages there."""
    if not (isinstance(probs, np.ndarray) and probs.ndim == 2 and probs.shape[1] >= 2
            and probs.dtype in (np.float32, np.float64) and probs.size >= _scan.MIN_ENTRIES):
        return None
    try:
        y = v.check_labels(y_true, "y_true", n_classes=probs.shape[1])
        v.check_same_length(y_true=y, probs=probs)
    except (TypeError, ValueError):
        return None  # the numpy path words the error, after checking probs first
    edges = _uniform_edges(n_bins)
    scan = _scan.top_label_bins(probs, y, edges)
    if scan is None:
        return None
    count, conf_sum, hit_sum, lo, hi, worst_sum = scan
    if lo < 0 or hi > 1 or abs(worst_sum - 1) > v.prob_sum_atol(probs.dtype, probs.shape[1]):
        return None
    return _BinStats(count=count, conf_sum=conf_sum, hit_sum=hit_sum), edges


def _classwise_stats(y: NDArray[np.int64], p: NDArray, n_bins: int, strategy: str) -> _BinStats:
    v.check_dense_size((p.shape[1], n_bins), name="n_bins", value=n_bins,
                       what="table of per-class bins (n_classes x n_bins)")
    if strategy == "uniform":
        return _stats_classwise_uniform(y, p, _uniform_edges(n_bins))
    return _stats_classwise_quantile(y, p, n_bins)


# ----- public results ------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ReliabilityCurve:
    """Per-bin accuracy against confidence.

    Attributes
    ----------
    edges : ndarray of shape (n_bins + 1,)
        Bin edges; bin ``i`` is ``(edges[i], edges[i + 1]]`` (see the module docstring).
    confidence : ndarray of shape (n_bins,)
        Mean confidence of the samples in each bin; NaN for an empty bin.
    accuracy : ndarray of shape (n_bins,)
        Fraction of correct predictions (or of positives) in each bin; NaN for an empty bin.
    count : ndarray of shape (n_bins,)
        Number of samples in each bin (0 for an empty bin).
    """

    edges: NDArray[np.float64]
    confidence: NDArray[np.float64]
    accuracy: NDArray[np.float64]
    count: NDArray[np.int64]

    @property
    def n_bins(self) -> int:
        """Number of bins, empty ones included."""
        return len(self.count)

    @property
    def n_samples(self) -> int:
        """Number of samples over all bins."""
        return int(self.count.sum())

    @property
    def centers(self) -> NDArray[np.float64]:
        """Bin mid-points, shape (n_bins,)."""
        return (self.edges[:-1] + self.edges[1:]) / 2

    @property
    def gap(self) -> NDArray[np.float64]:
        """``accuracy - confidence`` per bin (negative: over-confident); NaN for empty bins."""
        return self.accuracy - self.confidence

    def calibration_error(self, norm: Norm = "l1") -> float:
        """The calibration error of the binned data (formulas in the module docstring).

        >>> curve = reliability_curve([0, 1], [[0.9, 0.1], [0.7, 0.3]], n_bins=2)
        >>> round(curve.calibration_error("l1"), 6)
        0.3
        """
        v.check_option(norm, "norm", NORMS)
        conf = np.nan_to_num(self.confidence) * self.count
        acc = np.nan_to_num(self.accuracy) * self.count
        return float(_ce_from_stats(_BinStats(self.count.astype(np.float64), conf, acc), norm))


@dataclass(frozen=True, eq=False)
class TemperatureScalingReport:
    """Calibration of a model on test data before and after temperature scaling.

    ``temperature`` is fitted on validation logits by :func:`fit_temperature`. Accuracy does not
    change (dividing logits by ``T > 0`` keeps their argmax). ECEs are top-label, L1.
    """

    temperature: float
    accuracy: float
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float
    brier_before: float
    brier_after: float
    curve_before: ReliabilityCurve
    curve_after: ReliabilityCurve

    def to_frame(self) -> pd.DataFrame:
        """The scalar fields as a one-row DataFrame."""
        import pandas as pd

        return pd.DataFrame([{f.name: getattr(self, f.name) for f in fields(self)
                              if not f.name.startswith("curve_")}])


# ----- one-shot functions --------------------------------------------------------------------------
def reliability_curve(
    y_true: ArrayLike, probs: ArrayLike, *, n_bins: int = 15, strategy: Strategy = "uniform"
) -> ReliabilityCurve:
    """Top-label reliability curve: per-bin mean confidence, accuracy and count.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels in ``[0, n_classes)``.
    probs : array-like of shape (n_samples, n_classes)
        Predicted probabilities; rows sum to 1.
    n_bins : int, default 15
    strategy : {"uniform", "quantile"}, default "uniform"
        Equal-width or equal-mass bins (see the module docstring for the edge convention).

    Returns
    -------
    ReliabilityCurve

    Examples
    --------
    >>> c = reliability_curve([0, 1, 1], [[0.9, 0.1], [0.7, 0.3], [0.4, 0.6]], n_bins=2)
    >>> c.count.tolist(), c.accuracy.tolist()
    ([0, 3], [nan, 0.6666666666666666])
    """
    n_bins = _check_binning(n_bins, strategy)
    return _curve_from_stats(*_checked_top_label_stats(y_true, probs, n_bins, strategy))


def reliability_curve_binary(
    y_true: ArrayLike, prob_pos: ArrayLike, *, n_bins: int = 15, strategy: Strategy = "uniform"
) -> ReliabilityCurve:
    """Reliability curve of a binary classifier's positive-class probability.

    The same as :func:`sklearn.calibration.calibration_curve` (whose ``prob_true`` and
    ``prob_pred`` are this curve's ``accuracy`` and ``confidence`` on its non-empty bins), with
    empty bins kept as NaN. ``accuracy`` here is the fraction of positives (``y_true == 1``).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Labels in {0, 1}.
    prob_pos : array-like of shape (n_samples,)
        Probability of class 1, in [0, 1].
    n_bins : int, default 15
    strategy : {"uniform", "quantile"}, default "uniform"

    Examples
    --------
    0.5 sits on the inner edge, so it goes to the first bin, (0, 0.5]; 1.0 goes to the last one.

    >>> c = reliability_curve_binary([0, 1, 1, 1], [0.25, 0.5, 0.75, 1.0], n_bins=2)
    >>> c.confidence.tolist(), c.accuracy.tolist(), c.count.tolist()
    ([0.375, 0.875], [0.5, 1.0], [2, 2])
    """
    q = v.check_finite_float(prob_pos, "prob_pos", ndim=1)
    if q.min() < 0 or q.max() > 1:
        raise ValueError(f"`prob_pos` must hold probabilities in [0, 1]; got values in "
                         f"[{q.min():.4g}, {q.max():.4g}].")
    y = v.check_labels(y_true, "y_true", n_classes=2)
    v.check_same_length(y_true=y, prob_pos=q)
    n_bins = _check_binning(n_bins, strategy)
    return _curve_from_stats(*_top_label_stats(q, y == 1, n_bins, strategy))


def expected_calibration_error(
    y_true: ArrayLike,
    probs: ArrayLike,
    *,
    n_bins: int = 15,
    strategy: Strategy = "uniform",
    norm: Norm = "l1",
    classwise: bool = False,
) -> float:
    """Binned calibration error (ECE for ``norm="l1"``), top-label or class-wise.

    ``sum_b (n_b / N) |acc_b - conf_b|`` for ``"l1"``, its root-mean-square version for ``"l2"``
    and ``max_b |acc_b - conf_b|`` for ``"max"`` (details in the module docstring). With
    ``classwise=True`` the error of each class's one-vs-rest probability is averaged over classes.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    probs : array-like of shape (n_samples, n_classes)
        Predicted probabilities; rows sum to 1.
    n_bins : int, default 15
    strategy : {"uniform", "quantile"}, default "uniform"
    norm : {"l1", "l2", "max"}, default "l1"
    classwise : bool, default False

    Returns
    -------
    float

    Examples
    --------
    Two samples, both in bin (0.5, 1]: mean confidence 0.8, accuracy 1/2, so ECE = 0.3.

    >>> round(expected_calibration_error([0, 1], [[0.9, 0.1], [0.7, 0.3]], n_bins=2), 6)
    0.3
    """
    n_bins = _check_binning(n_bins, strategy)
    v.check_option(norm, "norm", NORMS)
    if v.check_bool(classwise, "classwise"):
        y, p = _check_inputs(y_true, probs)
        return float(_ce_from_stats(_classwise_stats(y, p, n_bins, strategy), norm).mean())
    stats, _ = _checked_top_label_stats(y_true, probs, n_bins, strategy)
    return float(_ce_from_stats(stats, norm))


def debiased_calibration_error(
    y_true: ArrayLike,
    probs: ArrayLike,
    *,
    n_bins: int = 15,
    strategy: Strategy = "uniform",
    classwise: bool = False,
) -> float:
    """Debiased L2 calibration error (Kumar, Liang and Ma, 2019, "Verified uncertainty calibration").

    The plug-in ``(acc_b - conf_b)^2`` overestimates the squared gap by the variance of ``acc_b``.
    The debiased estimator subtracts its unbiased estimate, skipping bins with fewer than 2 samples:

    ``E^2 = sum_{b: n_b >= 2} (n_b / N) [(acc_b - conf_b)^2 - acc_b (1 - acc_b) / (n_b - 1)]``

    and returns ``sqrt(max(E^2, 0))``. With ``classwise=True`` the per-class estimates are averaged.
    Kumar et al. recommend equal-mass bins (``strategy="quantile"``).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    probs : array-like of shape (n_samples, n_classes)
    n_bins : int, default 15
    strategy : {"uniform", "quantile"}, default "uniform"
    classwise : bool, default False

    Returns
    -------
    float

    Examples
    --------
    One bin of four samples with mean confidence 0.9 and accuracy 1/2:
    E^2 = 0.4^2 - 0.5 * 0.5 / 3 = 0.16 - 0.08333.

    >>> probs = [[0.9, 0.1]] * 4
    >>> round(debiased_calibration_error([0, 0, 1, 1], probs, n_bins=1) ** 2, 6)
    0.076667
    """
    n_bins = _check_binning(n_bins, strategy)
    if v.check_bool(classwise, "classwise"):
        y, p = _check_inputs(y_true, probs)
        return float(_debiased_from_stats(_classwise_stats(y, p, n_bins, strategy)).mean())
    stats, _ = _checked_top_label_stats(y_true, probs, n_bins, strategy)
    return float(_debiased_from_stats(stats))


def _per_sample_nll(y: NDArray[np.int64], p: NDArray) -> NDArray[np.float64]:
    """``-log p[i, y_i]`` of each sample, shape (n_samples,); probabilities clipped below at the
    smallest positive float64."""
    p_true = p[np.arange(len(y)), y].astype(np.float64)
    return -np.log(np.maximum(p_true, np.finfo(np.float64).tiny))


def _per_sample_brier(y: NDArray[np.int64], p: NDArray) -> NDArray[np.float64]:
    """``sum_k (p[i, k] - [y_i == k])^2`` of each sample, shape (n_samples,).

    As ``sum_k p_k^2 - 2 p_y + 1``: one pass over ``p`` and no (n_samples, n_classes) temporary
    (neither a one-hot matrix nor ``p * p``).
    """
    sq = np.einsum("ij,ij->i", p, p, dtype=np.float64)
    return sq - 2 * p[np.arange(len(y)), y].astype(np.float64) + 1


def negative_log_likelihood(y_true: ArrayLike, probs: ArrayLike) -> float:
    """Mean negative log-likelihood of the true labels, ``-mean_i log probs[i, y_i]``.

    Probabilities are clipped below at the smallest positive float64, so a zero gives about 708
    instead of infinity.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    probs : array-like of shape (n_samples, n_classes)

    Examples
    --------
    >>> round(negative_log_likelihood([0, 1], [[0.5, 0.5], [0.5, 0.5]]), 6)
    0.693147
    """
    y, p = _check_inputs(y_true, probs)
    return float(_per_sample_nll(y, p).mean())


def brier_score(y_true: ArrayLike, probs: ArrayLike) -> float:
    """Multiclass Brier score: ``mean_i sum_k (probs[i, k] - [y_i == k])^2``, in [0, 2].

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    probs : array-like of shape (n_samples, n_classes)

    Examples
    --------
    (0.2^2 + 0.2^2 + (0.6^2 + 0.6^2)) / 2 = 0.4

    >>> round(brier_score([0, 1], [[0.8, 0.2], [0.6, 0.4]]), 6)
    0.4
    """
    y, p = _check_inputs(y_true, probs)
    return float(_per_sample_brier(y, p).mean())


def apply_temperature(logits: ArrayLike, temperature: float) -> NDArray[np.float64]:
    """Temperature-scaled probabilities ``softmax(logits / T)``, shape (n_samples, n_classes).

    Examples
    --------
    >>> apply_temperature([[0.0, 2.0 * np.log(3.0)]], 2.0).round(6).tolist()
    [[0.25, 0.75]]
    """
    z = v.check_logits(logits)
    t = _check_temperature(temperature)
    return softmax(_shift_to_max(z) / t)


def _shift_to_max(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """``z - rowmax(z)``, <= 0, so dividing by any T > 0 cannot overflow to +inf (``z / T`` can:
    [1e308, -1e308] / 0.5). A difference beyond the float range becomes -inf, whose exp is the
    correct 0."""
    with np.errstate(over="ignore"):
        return z - z.max(axis=1, keepdims=True)


def _nll_at(beta: float, z0: NDArray, true_minus_max: NDArray) -> float:
    # With z0 = z - rowmax(z) <= 0 and beta = 1/T > 0: log-sum-exp(beta z) - beta z_y
    # = log sum exp(beta z0) - beta (z_y - rowmax(z)), overflow-free for every beta.
    return float(np.log(np.exp(beta * z0).sum(axis=1)).mean() - beta * true_minus_max.mean())


def fit_temperature(logits: ArrayLike, y_true: ArrayLike) -> float:
    """Temperature minimising the NLL of held-out (validation) logits (Guo et al., 2017).

    ``T* = argmin_T -mean_i log softmax(z_i / T)[y_i]``, searched by bounded Brent minimisation of
    ``log T`` over ``[log T_MIN, log T_MAX] = [log 0.01, log 100]``. The NLL is convex in ``1/T``,
    hence unimodal in ``log T``, so the search finds the global minimum in that range. A warning
    says when the minimum sits at an end of the range (e.g. perfectly separated logits, for which
    the NLL keeps falling as ``T -> 0``).

    Parameters
    ----------
    logits : array-like of shape (n_samples, n_classes)
        Held-out logits (not probabilities).
    y_true : array-like of shape (n_samples,)

    Returns
    -------
    float
        The temperature; divide logits by it (:func:`apply_temperature`).

    Examples
    --------
    At ``T = 1`` these logits give class 1 a probability of 9/10, at ``T = 2`` of 3/4, which is its
    frequency among the labels, so the NLL is smallest at ``T = 2``:

    >>> z = [[0.0, 2.0 * np.log(3.0)], [0.0, 2.0 * np.log(3.0)], [0.0, 2.0 * np.log(3.0)],
    ...      [0.0, 2.0 * np.log(3.0)]]
    >>> round(fit_temperature(z, [1, 1, 1, 0]), 4)
    2.0
    """
    from scipy.optimize import minimize_scalar

    z = v.check_logits(logits)
    y = v.check_labels(y_true, "y_true", n_classes=z.shape[1])
    v.check_same_length(y_true=y, logits=z)
    z0 = _shift_to_max(z)
    true_minus_max = z0[np.arange(len(y)), y]
    lo, hi = math.log(T_MIN), math.log(T_MAX)
    res = minimize_scalar(lambda log_t: _nll_at(math.exp(-log_t), z0, true_minus_max),
                          bounds=(lo, hi), method="bounded", options={"xatol": 1e-7})
    log_t = float(res.x)
    # Separable logits make the NLL underflow to a flat 0 near T_MIN, where Brent may stop anywhere:
    # compare with the ends of the range explicitly.
    for end, t_end in ((lo, T_MIN), (hi, T_MAX)):
        if abs(log_t - end) < 1e-4 or _nll_at(math.exp(-end), z0, true_minus_max) <= res.fun:
            warnings.warn(f"fit_temperature: the NLL is smallest at the edge of the searched range "
                          f"[{T_MIN}, {T_MAX}] (T = {t_end:.4g}); the logits may be "
                          "perfectly separated or uninformative.", RuntimeWarning, stacklevel=2)
            return float(t_end)  # exactly, not exp(log(100)) = 100.00000000000004
    return float(min(max(math.exp(log_t), T_MIN), T_MAX))


def temperature_scaling_report(
    val_logits: ArrayLike,
    val_y: ArrayLike,
    test_logits: ArrayLike,
    test_y: ArrayLike,
    *,
    n_bins: int = 15,
    strategy: Strategy = "uniform",
) -> TemperatureScalingReport:
    """Fit ``T`` on validation logits and compare test calibration before and after scaling.

    Parameters
    ----------
    val_logits : array-like of shape (n_val, n_classes)
    val_y : array-like of shape (n_val,)
    test_logits : array-like of shape (n_test, n_classes)
    test_y : array-like of shape (n_test,)
    n_bins : int, default 15
    strategy : {"uniform", "quantile"}, default "uniform"
        Binning of the ECE and of the reliability curves.

    Returns
    -------
    TemperatureScalingReport

    Examples
    --------
    >>> z = np.array([[0.0, 2.0 * np.log(3.0)]] * 4)
    >>> r = temperature_scaling_report(z, [1, 1, 1, 0], z, [1, 1, 1, 0], n_bins=5)
    >>> round(r.temperature, 4), round(r.ece_before, 4), round(r.ece_after, 4)
    (2.0, 0.15, 0.0)
    """
    n_bins = _check_binning(n_bins, strategy)
    temperature = fit_temperature(val_logits, val_y)
    zt = v.check_logits(test_logits, "test_logits")
    yt = v.check_labels(test_y, "test_y", n_classes=zt.shape[1])
    v.check_same_length(test_y=yt, test_logits=zt)
    z0 = _shift_to_max(zt)
    true_minus_max = z0[np.arange(len(yt)), yt]
    before = _scaled_scores(z0, true_minus_max, yt, 1.0, n_bins, strategy)
    after = _scaled_scores(z0, true_minus_max, yt, temperature, n_bins, strategy)
    return TemperatureScalingReport(
        temperature=temperature, accuracy=float(np.mean(zt.argmax(axis=1) == yt)),
        ece_before=before.ece, ece_after=after.ece, nll_before=before.nll, nll_after=after.nll,
        brier_before=before.brier, brier_after=after.brier,
        curve_before=before.curve, curve_after=after.curve,
    )


@dataclass(frozen=True)
class _Scores:
    ece: float
    nll: float
    brier: float
    curve: ReliabilityCurve


def _scaled_scores(
    z0: NDArray[np.float64], true_minus_max: NDArray[np.float64], y: NDArray[np.int64],
    t: float, n_bins: int, strategy: str,
) -> _Scores:
    """Top-label ECE, NLL, Brier score and reliability curve of ``softmax(z0 / t)``."""
    p = softmax(z0 / t)
    pred = p.argmax(axis=1)
    stats, edges = _top_label_stats(p[np.arange(len(y)), pred], pred == y, n_bins, strategy)
    # The NLL from the logits (log-softmax), so that extreme logits do not round it to infinity.
    return _Scores(ece=float(_ce_from_stats(stats, "l1")), nll=_nll_at(1.0 / t, z0, true_minus_max),
                   brier=float(_per_sample_brier(y, p).mean()),
                   curve=_curve_from_stats(stats, edges))


# ----- mergeable statistics -------------------------------------------------------------------------
class CalibrationAccumulator:
    """Mergeable per-bin sufficient statistics, for data too big for one array (uniform bins only).

    Keeps, per bin, the number of samples, the sum of confidences and the number of correct
    predictions (top-label, and per class one-vs-rest when ``classwise=True``). Feed chunks with
    :meth:`update`, combine accumulators from several workers with :meth:`merge`; the results equal
    the one-shot functions on the concatenated data (up to float rounding of the sums).

    Quantile (equal-mass) bins are not supported: their edges depend on all confidences at once,
    so statistics gathered on different edges cannot be added up.

    Parameters
    ----------
    n_classes : int
    n_bins : int, default 15
    strategy : {"uniform"}, default "uniform"
        Only "uniform"; "quantile" raises ``ValueError``.
    classwise : bool, default True
        Also keep per-class statistics (costs a pass over every probability, not just the top one).

    Examples
    --------
    >>> acc = CalibrationAccumulator(2, n_bins=2)
    >>> acc = acc.update([0], [[0.9, 0.1]]).update([1], [[0.7, 0.3]])
    >>> acc.n_samples, round(acc.expected_calibration_error(), 6)
    (2, 0.3)
    """

    def __init__(self, n_classes: int, *, n_bins: int = 15, strategy: Strategy = "uniform",
                 classwise: bool = True) -> None:
        self.n_classes = v.check_int(n_classes, "n_classes", minimum=2)
        self.n_bins = _check_binning(n_bins, strategy)
        if strategy != "uniform":
            raise ValueError(
                "`strategy` must be 'uniform' for a CalibrationAccumulator; got 'quantile'. "
                "Equal-mass bin edges depend on all confidences at once, so per-chunk statistics "
                "cannot be merged; call expected_calibration_error(..., strategy='quantile') "
                "on the full arrays instead."
            )
        self.classwise = v.check_bool(classwise, "classwise")
        if self.classwise:
            v.check_dense_size((self.n_classes, self.n_bins), name="n_classes", value=self.n_classes,
                               what="table of per-class bins (n_classes x n_bins)")
        self.edges = _uniform_edges(self.n_bins)
        self.n_samples = 0
        self._top = _BinStats(*(np.zeros(self.n_bins) for _ in range(3)))
        shape = (self.n_classes, self.n_bins) if self.classwise else (0, self.n_bins)
        self._cls = _BinStats(*(np.zeros(shape) for _ in range(3)))

    def __repr__(self) -> str:
        return (f"CalibrationAccumulator(n_classes={self.n_classes}, n_bins={self.n_bins}, "
                f"classwise={self.classwise}, n_samples={self.n_samples})")

    def update(self, y_true: ArrayLike, probs: ArrayLike) -> CalibrationAccumulator:
        """Add a chunk of samples (in place) and return the accumulator.

        Parameters
        ----------
        y_true : array-like of shape (n_chunk,)
        probs : array-like of shape (n_chunk, n_classes)
        """
        if self.classwise:
            y, p = _check_inputs(y_true, probs)
            n_classes = p.shape[1]
            pred = p.argmax(axis=1)
            conf, hit = p[np.arange(len(y)), pred].astype(np.float64), pred == y
        else:
            conf, hit, n_classes = _check_top_label(y_true, probs)
        if n_classes != self.n_classes:
            raise ValueError(f"`probs` must have shape (n_samples, {self.n_classes}); "
                             f"got {len(conf), n_classes}.")
        self._top = _add(self._top, _top_label_stats(conf, hit, self.n_bins, "uniform")[0])
        if self.classwise:
            self._cls = _add(self._cls, _stats_classwise_uniform(y, p, self.edges))
        self.n_samples += len(conf)
        return self

    def merge(self, other: CalibrationAccumulator) -> CalibrationAccumulator:
        """A new accumulator holding the statistics of both ``self`` and ``other``."""
        if not isinstance(other, CalibrationAccumulator):
            raise TypeError(f"`other` must be a CalibrationAccumulator; got {type(other).__name__}.")
        mine = (self.n_classes, self.n_bins, self.classwise)
        theirs = (other.n_classes, other.n_bins, other.classwise)
        if mine != theirs:
            raise ValueError(f"`other` must have the same (n_classes, n_bins, classwise); "
                             f"got {theirs}, expected {mine}.")
        out = CalibrationAccumulator(self.n_classes, n_bins=self.n_bins, classwise=self.classwise)
        out._top, out._cls = _add(self._top, other._top), _add(self._cls, other._cls)
        out.n_samples = self.n_samples + other.n_samples
        return out

    def _stats(self, classwise: bool) -> _BinStats:
        if self.n_samples == 0:
            raise ValueError("The accumulator must hold at least one sample; got none "
                             "(call update first).")
        if v.check_bool(classwise, "classwise") and not self.classwise:
            raise ValueError("`classwise` must be False for an accumulator built with "
                             "classwise=False; got True.")
        return self._cls if classwise else self._top

    def expected_calibration_error(self, *, norm: Norm = "l1", classwise: bool = False) -> float:
        """As :func:`expected_calibration_error` with ``strategy="uniform"`` on all samples."""
        v.check_option(norm, "norm", NORMS)
        return float(np.mean(_ce_from_stats(self._stats(classwise), norm)))

    def debiased_calibration_error(self, *, classwise: bool = False) -> float:
        """As :func:`debiased_calibration_error` with ``strategy="uniform"`` on all samples."""
        return float(np.mean(_debiased_from_stats(self._stats(classwise))))

    def reliability_curve(self) -> ReliabilityCurve:
        """As :func:`reliability_curve` with ``strategy="uniform"`` on all samples."""
        return _curve_from_stats(self._stats(False), self.edges)


def _add(a: _BinStats, b: _BinStats) -> _BinStats:
    return _BinStats(a.count + b.count, a.conf_sum + b.conf_sum, a.hit_sum + b.hit_sum)


# ----- bootstrap confidence intervals ---------------------------------------------------------------
Metric = Literal["ece", "debiased_ece", "nll", "brier"]
METRICS: tuple[str, ...] = ("ece", "debiased_ece", "nll", "brier")

#: Largest accepted ``n_boot``.
MAX_BOOT = 10**7

# Index resampling draws at most this many indices at once, to bound memory.
_BOOT_BLOCK = 1 << 22
# Draw counts of at most this many (replica, sample) pairs are held at once (a byte each): the
# class-wise statistics take one pass over the probabilities per such block of replicas.
_COUNT_BLOCK = 1 << 26
# Replica statistics (replicas x classes x bins, or replicas x samples for equal-mass bins) are
# built this many numbers at a time.
_STATS_BLOCK = 1 << 20

#: Class-wise equal-width intervals with more (replica, sample) pairs than this read the
#: probabilities once, drawing each chunk's counts (see :func:`_streamed_classwise_replicas`).
STREAM_CLASSWISE = _COUNT_BLOCK


@dataclass(frozen=True)
class Interval:
    """A metric on all samples and its percentile bootstrap confidence interval.

    Attributes
    ----------
    estimate : float
        The metric on the given samples (not the mean of the replicas).
    low, high : float
        The ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the replicas.
    n_boot : int
        Number of bootstrap replicas.
    confidence : float
        Nominal coverage, e.g. 0.95.
    """

    estimate: float
    low: float
    high: float
    n_boot: int
    confidence: float


class IntervalSpec(TypedDict, total=False):
    """The metric of one interval of :func:`calibration_intervals`: the keywords of
    :func:`calibration_interval` that choose it, with the same defaults."""

    metric: Metric
    n_bins: int
    strategy: Strategy
    norm: Norm
    classwise: bool


@dataclass(frozen=True)
class _Spec:
    """A checked :class:`IntervalSpec`."""

    metric: str
    n_bins: int
    strategy: str
    norm: str
    classwise: bool

    def score(self) -> Callable[[_BinStats], NDArray[np.float64]]:
        """The binned metric along the last axis (bins) of the statistics."""
        if self.metric == "debiased_ece":
            return _debiased_from_stats
        norm = self.norm
        return lambda stats: _ce_from_stats(stats, norm)


def _check_spec(metric: str, n_bins: int, strategy: str, norm: str, classwise: bool) -> _Spec:
    v.check_option(metric, "metric", METRICS)
    n_bins = _check_binning(n_bins, strategy)
    v.check_option(norm, "norm", NORMS)
    classwise = v.check_bool(classwise, "classwise")
    if norm != "l1" and metric != "ece":
        raise ValueError(f"`norm` must be 'l1' unless metric='ece'; got norm={norm!r} with "
                         f"metric={metric!r}.")
    if classwise and metric in ("nll", "brier"):
        raise ValueError(f"`classwise` must be False for metric={metric!r}; got True.")
    return _Spec(metric, n_bins, strategy, norm, classwise)


def _check_level(value: float, name: str) -> float:
    level = v.check_float(value, name)
    if not 0.0 < level < 1.0:
        raise ValueError(f"`{name}` must be in (0, 1); got {level!r}.")
    return level


def calibration_interval(
    y_true: ArrayLike,
    probs: ArrayLike,
    *,
    metric: Metric = "ece",
    n_bins: int = 15,
    strategy: Strategy = "uniform",
    norm: Norm = "l1",
    classwise: bool = False,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap confidence interval of a calibration metric.

    The samples are resampled with replacement ``n_boot`` times; the interval is
    ``[q_{(1 - confidence) / 2}, q_{(1 + confidence) / 2}]`` of the metric over the replicas
    (linear interpolation, as ``scipy.stats.bootstrap(..., method="percentile")``).

    * ``metric="ece"``: :func:`expected_calibration_error` with ``n_bins``, ``strategy``, ``norm``
      and ``classwise``; ``"debiased_ece"``: :func:`debiased_calibration_error` with ``n_bins``,
      ``strategy`` and ``classwise``; ``"nll"`` and ``"brier"``: :func:`negative_log_likelihood`
      and :func:`brier_score` (the binning options are ignored).
    * Top-label ECEs on equal-width bins (the default) take a fast path: each sample is reduced
      once to its cell (bin, correct or not), the replica's cell counts are drawn from their exact
      multinomial law and each cell's confidence sum exactly (cells of at most
      ``_bootstrap.EXACT_CELL`` samples) or from its normal limit with exact mean and variance
      (see :mod:`labviz.core._bootstrap`). A replica costs O(n_bins), so 1,000 replicas at
      10^6 samples cost little more than the ECE itself.
    * Every other case resamples the indices, drawn as ``scipy.stats.bootstrap`` draws them
      (``rng.integers(0, n, (n_boot, n))`` while ``n_boot * n <= 2**22``, in batches of
      ``2**22 // n`` replicas beyond), and computes the metric on each replica: the same
      replicas as ``scipy.stats.bootstrap`` up to float rounding. How, by case:

      - NLL and Brier score: the mean of the per-sample losses at the drawn indices.
      - Top-label, equal-mass bins: from how many times each sample is drawn, over the
        confidences sorted once: the replica's quantile edges and bin sums are cumulative sums
        along that order, O(n_samples) per replica.
      - Class-wise, equal-width bins: a replica's statistics per (class, bin) cell are sums of
        the samples' draw counts. The few entries above the first bin (at most ``n_bins - 1`` per
        row) are summed one by one; the first bin of every class needs the count-weighted sum of
        its column, which one streamed matrix product per block of replicas gives (float32 beyond
        2**30 multiply-adds: a relative error of about 2e-6 in those sums, see
        :func:`labviz.core._bootstrap.weighted_column_sums`). 1,000 replicas of 50,000 x 1,000
        probabilities take a few seconds, and nothing of shape (replicas, samples, classes) is
        held.
        Beyond ``STREAM_CLASSWISE`` (2**26) replicas x samples, where those draw counts would
        be held a block of replicas at a time and the probabilities read once per block, the
        rows are read once instead: each chunk's counts for every replica are drawn on the spot
        (the same multinomial law, other random numbers; see
        :func:`labviz.core._bootstrap.chunk_counts`), so memory is three (n_boot, n_classes,
        n_bins) tables and a chunk, and ``probs`` may be a float32 memory map.
      - Class-wise, equal-mass bins: each replica's rows are gathered and binned again,
        O(n_samples x n_classes) per replica (each class's edges move with the replica).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    probs : array-like of shape (n_samples, n_classes)
        Predicted probabilities; rows sum to 1.
    metric : {"ece", "debiased_ece", "nll", "brier"}, default "ece"
    n_bins : int, default 15
    strategy : {"uniform", "quantile"}, default "uniform"
        Equal-mass edges are recomputed on every replica.
    norm : {"l1", "l2", "max"}, default "l1"
        Only for ``metric="ece"``.
    classwise : bool, default False
        Only for ``metric="ece"`` and ``"debiased_ece"``.
    n_boot : int, default 1000
    confidence : float, default 0.95
        In (0, 1).
    seed : int, default 0
        Seed of the ``numpy.random.default_rng`` that draws the replicas: the same seed gives the
        same interval.

    Returns
    -------
    Interval

    See Also
    --------
    calibration_intervals : several metrics' intervals from one validation and one set of draws.

    Examples
    --------
    Every replica of four identical samples is the same, so the interval is a point:

    >>> ci = calibration_interval([0, 0, 0, 0], [[0.75, 0.25]] * 4, n_bins=2, n_boot=50)
    >>> ci.estimate, ci.low, ci.high
    (0.25, 0.25, 0.25)
    """
    spec = _check_spec(metric, n_bins, strategy, norm, classwise)
    n_boot = v.check_int(n_boot, "n_boot", minimum=1, maximum=MAX_BOOT)
    confidence = _check_level(confidence, "confidence")
    seed = v.check_int(seed, "seed", minimum=0)
    return _intervals(y_true, probs, [spec], n_boot=n_boot, confidence=confidence, seed=seed)[0]


_SPEC_KEYS: tuple[str, ...] = ("metric", "n_bins", "strategy", "norm", "classwise")


def calibration_intervals(
    y_true: ArrayLike,
    probs: ArrayLike,
    specs: Sequence[IntervalSpec],
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[Interval]:
    """Percentile bootstrap confidence intervals of several calibration metrics at once.

    The same intervals as ``[calibration_interval(y_true, probs, **spec, n_boot=n_boot,
    confidence=confidence, seed=seed) for spec in specs]``, for less: the inputs are validated
    once, and the metrics that resample indices (all but the top-label equal-width ECEs, see
    :func:`calibration_interval`) share one set of draws, which separate calls with one seed
    would draw alike.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    probs : array-like of shape (n_samples, n_classes)
        Predicted probabilities; rows sum to 1.
    specs : sequence of dict
        One :class:`IntervalSpec` per interval: a dict with any of the keys ``metric``,
        ``n_bins``, ``strategy``, ``norm`` and ``classwise`` of :func:`calibration_interval`
        (same meanings and defaults).
    n_boot : int, default 1000
    confidence : float, default 0.95
        In (0, 1).
    seed : int, default 0

    Returns
    -------
    list of Interval
        One per spec, in order.

    Examples
    --------
    >>> cis = calibration_intervals([0, 0, 0, 0], [[0.75, 0.25]] * 4,
    ...                             [{"n_bins": 2}, {"metric": "brier"}], n_boot=50)
    >>> [(ci.estimate, ci.low, ci.high) for ci in cis]
    [(0.25, 0.25, 0.25), (0.125, 0.125, 0.125)]
    """
    if isinstance(specs, (str, Mapping)) or not isinstance(specs, Sequence):
        raise TypeError(f"`specs` must be a sequence of dicts (one per interval); got "
                        f"{type(specs).__name__}.")
    checked = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, Mapping):
            raise TypeError(f"`specs[{i}]` must be a dict of calibration_interval options; got "
                            f"{type(spec).__name__}.")
        unknown = sorted(set(spec) - set(_SPEC_KEYS))
        if unknown:
            raise ValueError(f"`specs[{i}]` must hold only the keys {list(_SPEC_KEYS)}; got "
                             f"{unknown}.")
        checked.append(_check_spec(spec.get("metric", "ece"), spec.get("n_bins", 15),
                                   spec.get("strategy", "uniform"), spec.get("norm", "l1"),
                                   spec.get("classwise", False)))
    n_boot = v.check_int(n_boot, "n_boot", minimum=1, maximum=MAX_BOOT)
    confidence = _check_level(confidence, "confidence")
    seed = v.check_int(seed, "seed", minimum=0)
    return _intervals(y_true, probs, checked, n_boot=n_boot, confidence=confidence, seed=seed)


def _intervals(y_true: ArrayLike, probs: ArrayLike, specs: list[_Spec], *, n_boot: int,
               confidence: float, seed: int) -> list[Interval]:
    p, pred, conf = v.check_probs_top(probs)
    y = v.check_labels(y_true, "y_true", n_classes=p.shape[1])
    v.check_same_length(y_true=y, probs=p)
    hit = pred == y
    results: dict[int, tuple[float, NDArray[np.float64]]] = {}
    resampled = []
    for i, spec in enumerate(specs):
        if spec.metric in ("ece", "debiased_ece") and not spec.classwise and spec.strategy == "uniform":
            results[i] = _uniform_top_label_replicas(conf, hit, spec.n_bins, spec.score(), n_boot,
                                                     np.random.default_rng(seed))
        else:
            resampled.append(i)
    streamed = [i for i in resampled if _streams(specs[i], len(y), n_boot)]
    by_bins: dict[int, list[int]] = {}
    for i in streamed:
        by_bins.setdefault(specs[i].n_bins, []).append(i)
    for n_bins, members in by_bins.items():
        # One pass over the probabilities for the specs that share the bins; its own draws.
        rng = np.random.default_rng([seed, n_bins])
        drawn = _streamed_classwise_replicas(y, p, n_bins, [specs[i].score() for i in members],
                                             n_boot, rng)
        results.update(zip(members, drawn))
    resampled = [i for i in resampled if i not in streamed]
    if resampled:
        drawn = _index_replicas(y, p, conf, hit, [specs[i] for i in resampled], n_boot,
                                np.random.default_rng(seed))
        results.update(zip(resampled, drawn))
    out = []
    for i in range(len(specs)):
        estimate, replicas = results[i]
        low, high = _bootstrap.percentile_interval(replicas, confidence)
        out.append(Interval(estimate=estimate, low=low, high=high, n_boot=n_boot,
                            confidence=confidence))
    return out


def _streams(spec: _Spec, n: int, n_boot: int) -> bool:
    """Whether a class-wise equal-width spec takes :func:`_streamed_classwise_replicas`: when the
    draw counts of all replicas (n_boot x n) pass :data:`STREAM_CLASSWISE`, where the shared
    counts would be held in blocks and the probabilities read once per block."""
    return (spec.classwise and spec.strategy == "uniform"
            and spec.metric in ("ece", "debiased_ece") and n * n_boot > STREAM_CLASSWISE)


def _uniform_top_label_replicas(
    conf: NDArray[np.float64], hit: NDArray[np.bool_], n_bins: int,
    score: Callable[[_BinStats], NDArray[np.float64]], n_boot: int, rng: np.random.Generator,
) -> tuple[float, NDArray[np.float64]]:
    """The estimate and ``n_boot`` replicas of ``score`` on equal-width top-label bins, drawn per
    (bin, correct) cell by :func:`labviz.core._bootstrap.cell_replicas`."""
    edges = _uniform_edges(n_bins)
    idx = _bin_index(conf, edges, uniform=True)
    estimate = float(score(_stats_1d(idx, conf, hit, n_bins)))
    cell = 2 * idx + hit  # cell 2b: wrong in bin b, 2b + 1: correct in bin b
    lo, hi = np.repeat(edges[:-1], 2), np.repeat(edges[1:], 2)
    step = max(1, _BOOT_BLOCK // (2 * n_bins))  # bounds the (replicas, cells) arrays
    out = []
    for start in range(0, n_boot, step):
        counts, sums = _bootstrap.cell_replicas(cell, conf, lo, hi, min(step, n_boot - start), rng)
        counts = counts.reshape(-1, n_bins, 2)
        stats = _BinStats(count=counts.sum(axis=-1), conf_sum=sums.reshape(-1, n_bins, 2).sum(axis=-1),
                          hit_sum=counts[..., 1])
        out.append(score(stats))
    return estimate, np.concatenate(out)


class _EqualMassReplicas:
    """Top-label statistics on each replica's own equal-mass bins, from its draw counts."""

    classwise = False

    def __init__(self, conf: NDArray[np.float64], hit: NDArray[np.bool_], n_bins: int) -> None:
        self.order = np.argsort(conf, kind="stable")
        self.conf = conf[self.order]
        self.hit = hit[self.order].astype(np.float64)
        self.n_bins = n_bins
        self.estimate = _top_label_stats(conf, hit, n_bins, "quantile")[0]

    def blocks(self, counts: NDArray[np.unsignedinteger]) -> Iterator[_BinStats]:
        """Statistics of shape (replicas, n_bins): compiled (two passes over the sorted
        confidences per replica) for many replicas, else by numpy a few replicas at a time."""
        inner = _quantile_positions(len(self.conf), np.linspace(0.0, 1.0, self.n_bins + 1)[1:-1])
        fast = _bootstrap.equal_mass_sums(self.conf, self.hit, self.order, counts, *inner)
        if fast is not None:
            yield _BinStats(*fast)
            return
        step = max(1, _STATS_BLOCK // len(self.conf))
        for start in range(0, len(counts), step):
            w = counts[start:start + step][:, self.order]
            yield _equal_mass_stats(self.conf, self.hit, w, self.n_bins)


def _equal_mass_stats(
    s: NDArray[np.float64], h: NDArray[np.float64], w: NDArray[np.unsignedinteger], n_bins: int
) -> _BinStats:
    """Statistics of shape (replicas, n_bins) on each replica's equal-mass bins.

    ``s`` holds the sorted confidences, ``h`` their correctness and ``w`` (replicas, n) how many
    times each is drawn, in the same order. A replica's sorted values are ``s[j]`` repeated
    ``w[:, j]`` times, so its ``t``-th smallest value is ``s[j]`` for the first ``j`` whose
    cumulative count exceeds ``t``: its ``np.quantile`` edges follow from the cumulative counts
    (:func:`_quantile_positions`, :func:`_lerp`, as ``np.quantile`` rounds), and, bins being
    right-closed, the samples at or below an edge ``e`` are those of ``s[:searchsorted(s, e,
    "right")]``, so each bin's sums are differences of cumulative sums.
    """
    reps, n = w.shape
    rows = np.arange(reps)[:, None]
    zero = np.zeros((reps, 1))
    weight = w.astype(np.float64)  # numpy's cumsum of small integers is faster from float64
    total = np.cumsum(weight, axis=1)
    count = np.concatenate([zero, total], axis=1)
    conf_sum = np.concatenate([zero, np.cumsum(weight * s, axis=1)], axis=1)
    weight *= h
    hit_sum = np.concatenate([zero, np.cumsum(weight, axis=1)], axis=1)
    prev, nxt, gamma = _quantile_positions(n, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
    # Row r's cumulative counts lie in [0, n]: shifted by r (n + 1), all rows sort as one array.
    shift = rows * (n + 1)
    flat = (total + shift).ravel()

    def value_at(t: NDArray[np.intp]) -> NDArray[np.float64]:
        j = np.searchsorted(flat, (t[None, :] + shift).ravel(), side="right").reshape(reps, -1)
        return s[j - rows * n]

    inner = _lerp(value_at(prev), value_at(nxt), gamma)
    cut = np.searchsorted(s, inner.ravel(), side="right").reshape(reps, -1)
    cut = np.concatenate([np.zeros((reps, 1), dtype=np.intp), cut, np.full((reps, 1), n)], axis=1)
    return _BinStats(count=np.diff(count[rows, cut]), conf_sum=np.diff(conf_sum[rows, cut]),
                     hit_sum=np.diff(hit_sum[rows, cut]))


class _ClasswiseReplicas:
    """Class-wise statistics on equal-width bins, from the replicas' draw counts."""

    classwise = True

    def __init__(self, y: NDArray[np.int64], p: NDArray, n_bins: int) -> None:
        v.check_dense_size((p.shape[1], n_bins), name="n_bins", value=n_bins,
                           what="table of per-class bins (n_classes x n_bins)")
        self.p = p
        self.cells = _classwise_cells(y, p, _uniform_edges(n_bins))
        stats = _classwise_weighted_stats(self.cells, np.ones((1, len(y))), self.cells.low[None])
        self.estimate = _BinStats(stats.count[0], stats.conf_sum[0], stats.hit_sum[0])

    def blocks(self, counts: NDArray[np.unsignedinteger]) -> Iterator[_BinStats]:
        """Statistics of shape (replicas, n_classes, n_bins), a few replicas at a time."""
        low = _bootstrap.weighted_column_sums(self.p, self.cells.upper, counts)
        step = max(1, _STATS_BLOCK // (self.cells.n_classes * self.cells.n_bins))
        for start in range(0, len(counts), step):
            sub = slice(start, start + step)
            yield _classwise_weighted_stats(self.cells, counts[sub], low[sub])


def _streamed_classwise_replicas(
    y: NDArray[np.int64], p: NDArray, n_bins: int,
    scores: list[Callable[[_BinStats], NDArray[np.float64]]], n_boot: int, rng: np.random.Generator,
) -> list[tuple[float, NDArray[np.float64]]]:
    """The estimate and ``n_boot`` replicas of each class-wise score on equal-width bins, in one
    pass over row chunks of ``p``.

    Each chunk's draw counts for every replica come from :func:`labviz.core._bootstrap.chunk_counts`
    (the multinomial bootstrap's law, other random numbers than :func:`_index_replicas`'), so the
    probabilities are read once whatever ``n_boot``: per chunk, the entries above the first bin
    and each sample's own class go through :class:`labviz.core._bootstrap.Cells` (exact float64
    sums), the first bin's column sums through one float32 product of the chunk's counts (n_boot,
    rows) with its entries in bin 0 (rows, n_classes), summed over chunks in float64 (a relative
    error of order 1e-6 in those sums, as :func:`labviz.core._bootstrap.weighted_column_sums`).
    Memory: three (n_boot + 1, n_classes, n_bins) float64 tables and a chunk, never a
    (samples, classes) float64 matrix; ``p`` may be a float32 memory map.
    """
    n, n_classes = p.shape
    v.check_dense_size((n_classes, n_bins), name="n_bins", value=n_bins,
                       what="table of per-class bins (n_classes x n_bins)")
    edges = _uniform_edges(n_bins)
    upper = np.float64(edges[1])
    size = n_classes * n_bins
    # Row n_boot weighs every sample once: the estimate, from the same sums.
    count, conf_sum, hit_sum = (np.zeros((n_boot + 1, size)) for _ in range(3))
    low = np.zeros((n_boot + 1, n_classes))
    total = np.zeros(n_boot + 1)
    # Chunks of at most _BLOCK entries of p and _BLOCK draw counts.
    step = max(1, min(_BLOCK // n_classes, _BLOCK // n_boot))
    for rows, drawn in _bootstrap.chunk_counts(n, n_boot, step, rng):
        block = p[rows]
        m = len(block)
        weights = np.vstack([drawn, np.ones((1, m), dtype=drawn.dtype)])
        high = block > upper
        r, k = np.nonzero(high)
        values = block[r, k]
        own = block[np.arange(m), y[rows]]
        # Summed into the tables in place: a (replicas, cells) temporary per chunk would cost
        # n_boot x n_classes x n_bins per chunk, more than the chunk itself.
        _bootstrap.Cells.group(r, k * n_bins + _bin_index(values, edges, uniform=True), values,
                               size, m).add_sums(weights, count, conf_sum)
        _bootstrap.Cells.group(np.arange(m), y[rows] * n_bins + _bin_index(own, edges, uniform=True),
                               None, size, m).add_sums(weights, hit_sum)
        in_low = np.where(high, 0, block)
        low[:n_boot] += drawn.astype(np.float32) @ in_low.astype(np.float32, copy=False)
        low[n_boot] += in_low.sum(axis=0, dtype=np.float64)
        total += weights.sum(axis=1, dtype=np.float64)
    shape = (n_boot + 1, n_classes, n_bins)
    count, conf_sum, hit_sum = count.reshape(shape), conf_sum.reshape(shape), hit_sum.reshape(shape)
    count[..., 0] = total[:, None] - count[..., 1:].sum(axis=-1)
    conf_sum[..., 0] = low
    out = []
    for score in scores:
        values = np.concatenate([score(_BinStats(count[b], conf_sum[b], hit_sum[b])).mean(axis=-1)
                                 for b in _row_blocks(n_boot + 1, _STATS_BLOCK // size)])
        out.append((float(values[n_boot]), values[:n_boot]))
    return out


def _row_blocks(n: int, step: int) -> list[slice]:
    step = max(1, step)
    return [slice(start, start + step) for start in range(0, n, step)]


def _mean_at(losses: NDArray[np.float64]) -> Callable[[NDArray[np.int64]], NDArray[np.float64]]:
    """Replicas of the mean loss from a batch of resampled indices."""
    return lambda idx: losses[idx].mean(axis=-1)


def _rebinned_classwise(
    y: NDArray[np.int64], p: NDArray, spec: _Spec
) -> Callable[[NDArray[np.int64]], NDArray[np.float64]]:
    """Replicas of a class-wise metric from a batch of resampled indices, each replica's rows
    gathered and binned again."""
    score = spec.score()

    def replicas(idx: NDArray[np.int64]) -> NDArray[np.float64]:
        return np.array([float(score(_classwise_stats(y[r], p[r], spec.n_bins, spec.strategy)).mean())
                         for r in idx])

    return replicas


def _index_replicas(
    y: NDArray[np.int64], p: NDArray, conf: NDArray[np.float64], hit: NDArray[np.bool_],
    specs: list[_Spec], n_boot: int, rng: np.random.Generator,
) -> list[tuple[float, NDArray[np.float64]]]:
    """The estimate and ``n_boot`` replicas of each spec, all from one set of index draws
    (:func:`labviz.core._bootstrap.index_batches`).

    NLL, Brier and class-wise equal-mass replicas are computed batch by batch from the indices;
    the others from the draw counts (:func:`labviz.core._bootstrap.draw_counts`), held for up to
    ``_COUNT_BLOCK`` (replica, sample) pairs at a time and shared by the specs with the same
    binning.
    """
    n = len(y)
    estimates: dict[int, float] = {}
    parts: list[list[NDArray[np.float64]]] = [[] for _ in specs]
    per_batch: list[tuple[int, Callable[[NDArray[np.int64]], NDArray[np.float64]]]] = []
    binned: dict[tuple[bool, int], list[tuple[int, Callable[[_BinStats], NDArray[np.float64]]]]] = {}
    for j, spec in enumerate(specs):
        if spec.metric in ("nll", "brier"):
            losses = _per_sample_nll(y, p) if spec.metric == "nll" else _per_sample_brier(y, p)
            estimates[j] = float(losses.mean())
            per_batch.append((j, _mean_at(losses)))
        elif spec.classwise and spec.strategy == "quantile":
            estimates[j] = float(spec.score()(_classwise_stats(y, p, spec.n_bins, "quantile")).mean())
            per_batch.append((j, _rebinned_classwise(y, p, spec)))
        else:
            binned.setdefault((spec.classwise, spec.n_bins), []).append((j, spec.score()))

    groups: list[tuple[_EqualMassReplicas | _ClasswiseReplicas, list]] = []
    for (classwise, n_bins), members in binned.items():
        group = (_ClasswiseReplicas(y, p, n_bins) if classwise
                 else _EqualMassReplicas(conf, hit, n_bins))
        for j, score in members:
            estimates[j] = float(np.mean(score(group.estimate)))
        groups.append((group, members))

    batch = max(1, _BOOT_BLOCK // n)
    held = _COUNT_BLOCK // n
    if any(g.classwise for g, _ in groups):  # also bounds the (replicas, classes) column sums
        held = min(held, _COUNT_BLOCK // 8 // p.shape[1])
    held = min(max(batch, held // batch * batch), n_boot)
    counts: NDArray[np.unsignedinteger] = np.empty((held if groups else 0, n), dtype=np.uint8)
    filled = drawn = 0
    for idx in _bootstrap.index_batches(n, n_boot, rng, _BOOT_BLOCK):
        drawn += len(idx)
        for j, replicas in per_batch:
            parts[j].append(np.asarray(replicas(idx), dtype=np.float64))
        if not groups:
            continue
        counts = _bootstrap.draw_counts(idx, n, counts, filled)
        filled += len(idx)
        if filled + min(batch, n_boot - drawn) > held or drawn == n_boot:
            for group, members in groups:
                for stats in group.blocks(counts[:filled]):
                    for j, score in members:
                        values = score(stats)
                        parts[j].append(values.mean(axis=-1) if group.classwise else values)
            filled = 0
    return [(estimates[j], np.concatenate(parts[j])) for j in range(len(specs))]


# ----- ECE sweep -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ECESweep:
    """Result of :func:`ece_sweep`.

    Attributes
    ----------
    n_bins : int
        The chosen number of equal-mass bins.
    ece : float
        The calibration error on ``n_bins`` equal-mass bins.
    max_bins : int
        The largest number of bins the sweep could reach.
    """

    n_bins: int
    ece: float
    max_bins: int


def _quantile_positions(
    n: int, q: NDArray[np.float64]
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]:
    """``np.quantile``'s (linear method) neighbouring order statistics of ``n`` values at ``q``,
    and the weight of the second: positions ``prev``, ``nxt`` and ``gamma``."""
    virtual = (n - 1) * q
    prev = np.floor(virtual).astype(np.intp)
    nxt = np.minimum(prev + 1, n - 1)
    prev = np.minimum(prev, n - 1)
    return prev, nxt, virtual - prev


def _lerp(a: NDArray[np.float64], b: NDArray[np.float64], gamma: NDArray[np.float64]
          ) -> NDArray[np.float64]:
    """``np.quantile``'s interpolation between order statistics ``a <= b``, rounded as it rounds."""
    diff = b - a
    return np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)


def _sorted_quantile(s: NDArray[np.float64], q: NDArray[np.float64]) -> NDArray[np.float64]:
    """``np.quantile(s, q)`` (linear method, same rounding) of an already sorted ``s``, in O(len(q))
    instead of a partition of ``s`` per call."""
    prev, nxt, gamma = _quantile_positions(len(s), q)
    return _lerp(s[prev], s[nxt], gamma)


def ece_sweep(
    y_true: ArrayLike, probs: ArrayLike, *, norm: Norm = "l1", max_bins: int | None = None
) -> ECESweep:
    """ECE_sweep (Roelofs, Cain, Shlens and Mozer, 2022, "Mitigating bias in calibration error
    estimation"): the top-label calibration error on as many equal-mass bins as keep the
    reliability curve monotone.

    The sweep tries ``b = 1, 2, ..., max_bins`` equal-mass bins (``strategy="quantile"``, the
    module's edge convention) and stops at the first ``b`` whose bin accuracies
    ``acc_1, ..., acc_b`` (over non-empty bins) are not non-decreasing; it returns ``b* = b - 1``
    (or ``max_bins`` if every ``b`` is monotone) and
    ``expected_calibration_error(..., n_bins=b*, strategy="quantile", norm=norm)``. Each step
    costs O(b log n_samples) after one sort.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    probs : array-like of shape (n_samples, n_classes)
    norm : {"l1", "l2", "max"}, default "l1"
    max_bins : int, optional
        Largest number of bins tried; default (and at most) ``n_samples``.

    Returns
    -------
    ECESweep

    Examples
    --------
    Confidences 0.6, 0.7, 0.8, 0.9 with outcomes wrong, right, wrong, right: two bins give
    accuracies (1/2, 1/2), monotone; three give (0, 1, 1/2), not. So b* = 2, and
    ``ECE = (|0.5 - 0.65| + |0.5 - 0.85|) / 2 = 0.25``.

    >>> probs = [[0.6, 0.4], [0.7, 0.3], [0.8, 0.2], [0.9, 0.1]]
    >>> r = ece_sweep([1, 0, 1, 0], probs)
    >>> r.n_bins, round(r.ece, 6)
    (2, 0.25)
    """
    v.check_option(norm, "norm", NORMS)
    conf, hit, _ = _check_top_label(y_true, probs)
    n = len(conf)
    if max_bins is not None:
        max_bins = v.check_int(max_bins, "max_bins", minimum=1, maximum=MAX_BINS)
    tried = n if max_bins is None else min(max_bins, n)
    order = np.argsort(conf, kind="stable")
    s = conf[order]
    conf_cum = np.concatenate(([0.0], np.cumsum(s)))
    hit_cum = np.concatenate(([0], np.cumsum(hit[order])))

    def stats(b: int) -> _BinStats:
        inner = _sorted_quantile(s, np.linspace(0.0, 1.0, b + 1))[1:-1]
        # Right-closed bins: the samples <= inner edge j sit in bins < j.
        cut = np.concatenate(([0], np.searchsorted(s, inner, side="right"), [n]))
        return _BinStats(count=np.diff(cut).astype(np.float64), conf_sum=np.diff(conf_cum[cut]),
                         hit_sum=np.diff(hit_cum[cut]).astype(np.float64))

    best = 1
    for b in range(2, tried + 1):
        if not _is_monotone(stats(b)):
            break
        best = b
    return ECESweep(n_bins=best, ece=float(_ce_from_stats(stats(best), norm)), max_bins=tried)


def _is_monotone(stats: _BinStats) -> bool:
    filled = stats.count > 0
    acc = stats.hit_sum[filled] / stats.count[filled]
    return bool(np.all(np.diff(acc) >= 0))


# ----- smooth ECE ------------------------------------------------------------------------------------
def smooth_ece(y_true: ArrayLike, probs: ArrayLike) -> float:
    """Top-label smooth ECE (Blasiok and Nakkiran, ICLR 2024, "Smooth ECE"), through ``relplot``.

    ``smECE_sigma = integral |r_sigma(t)| delta_sigma(t) dt / integral delta_sigma(t) dt``, with
    ``r_sigma`` the kernel-smoothed residual ``conf - correct`` and ``delta_sigma`` the smoothed
    density of the confidences (reflected Gaussian kernel of bandwidth ``sigma``), at the
    bandwidth where ``smECE_sigma = sigma``: ``relplot.smECE(conf, correct)`` on the top-label
    confidence and correctness. No bins; continuous in the predictions.

    ``relplot`` is imported on the first call (it imports scikit-learn, matplotlib and seaborn,
    about 2 s).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    probs : array-like of shape (n_samples, n_classes)

    Returns
    -------
    float

    Examples
    --------
    >>> smooth_ece([0, 1], [[1.0, 0.0], [0.0, 1.0]])
    0.0
    """
    conf, hit, _ = _check_top_label(y_true, probs)
    import relplot

    return float(relplot.smECE(conf, hit.astype(np.float64)))


# ----- CORP reliability diagram ----------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class CorpDiagram:
    """CORP reliability diagram of top-label confidence, with its Brier score decomposition.

    Attributes
    ----------
    confidence : ndarray of shape (n_points,)
        The distinct top-label confidences, increasing.
    calibrated : ndarray of shape (n_points,)
        The isotonic (PAV) fit of correctness on confidence at those points: the CORP curve, a
        non-decreasing step function.
    band_low, band_high : ndarray of shape (n_points,)
        Pointwise bootstrap band of the fit (see :func:`corp_reliability`).
    count : ndarray of shape (n_points,)
        Number of samples at each confidence.
    score : float
        Mean Brier score ``S = mean_i (conf_i - correct_i)^2`` of the top-label confidence.
    mcb, dsc, unc : float
        Miscalibration ``S - S_rc``, discrimination ``S_mg - S_rc`` and uncertainty ``S_mg``, with
        ``S_rc`` the score of the recalibrated (fitted) confidences and ``S_mg`` that of the
        constant accuracy, so ``score = mcb - dsc + unc``.
    n_boot : int
    band_level : float
    """

    confidence: NDArray[np.float64]
    calibrated: NDArray[np.float64]
    band_low: NDArray[np.float64]
    band_high: NDArray[np.float64]
    count: NDArray[np.int64]
    score: float
    mcb: float
    dsc: float
    unc: float
    n_boot: int
    band_level: float


def corp_reliability(
    y_true: ArrayLike,
    probs: ArrayLike,
    *,
    n_boot: int = 1000,
    band_level: float = 0.95,
    seed: int = 0,
    null: Literal["fitted", "forecast"] = "fitted",
) -> CorpDiagram:
    """CORP reliability diagram (Dimitriadis, Gneiting and Jordan, PNAS 2021) of top-label
    confidence: isotonic regression of correctness on confidence, its Brier score decomposition
    and bootstrap bands.

    The fit is ``sklearn.isotonic.IsotonicRegression(increasing=True, out_of_bounds="clip")``.
    With the Brier score ``S(x, y) = mean (x - y)^2``:

    ``MCB = S(conf, correct) - S(fit, correct)``, ``DSC = S(mean(correct), correct) -
    S(fit, correct)``, ``UNC = S(mean(correct), correct)``, and ``S = MCB - DSC + UNC``.

    Bands: ``n_boot`` times, outcomes are redrawn as ``Bernoulli(p_i)`` under the hypothesis of
    calibration, with ``p_i`` the fitted (recalibrated, hence calibrated) value at sample ``i``
    (``null="fitted"``, a band around the CORP curve) or its confidence itself
    (``null="forecast"``, a consistency band around the diagonal); the isotonic fit is redone
    (the same pool-adjacent-violators algorithm, ``sklearn.isotonic.isotonic_regression``, on
    the distinct confidences), and the pointwise ``(1 -/+ band_level) / 2`` quantiles are taken.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    probs : array-like of shape (n_samples, n_classes)
    n_boot : int, default 1000
    band_level : float, default 0.95
    seed : int, default 0
    null : {"fitted", "forecast"}, default "fitted"

    Returns
    -------
    CorpDiagram

    Examples
    --------
    Correctness 0, 1, 0, 1 at confidences 0.6, 0.7, 0.8, 0.9: PAV pools the middle two, so the
    fit is (0, 1/2, 1/2, 1) and S_rc = 2 * 0.25 / 4 = 0.125.

    >>> d = corp_reliability([1, 0, 1, 0], [[0.6, 0.4], [0.7, 0.3], [0.8, 0.2], [0.9, 0.1]],
    ...                      n_boot=20)
    >>> d.calibrated.tolist(), round(d.score, 6), round(d.mcb, 6)
    ([0.0, 0.5, 0.5, 1.0], 0.275, 0.15)
    """
    from sklearn.isotonic import IsotonicRegression, isotonic_regression

    conf, hit, _ = _check_top_label(y_true, probs)
    n_boot = v.check_int(n_boot, "n_boot", minimum=1, maximum=MAX_BOOT)
    band_level = _check_level(band_level, "band_level")
    rng = np.random.default_rng(v.check_int(seed, "seed", minimum=0))
    v.check_option(null, "null", ("fitted", "forecast"))
    y = hit.astype(np.float64)
    points, inverse, count = np.unique(conf, return_inverse=True, return_counts=True)
    v.check_dense_size((n_boot, len(points)), name="n_boot", value=n_boot,
                       what="table of band refits (n_boot x distinct confidences)")

    iso = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(conf, y)
    calibrated = iso.predict(points)
    score = float(np.mean((conf - y) ** 2))
    s_rc = float(np.mean((calibrated[inverse] - y) ** 2))
    unc = float(np.mean((y.mean() - y) ** 2))

    source = calibrated if null == "fitted" else points
    refits = np.empty((n_boot, len(points)))
    for r in range(n_boot):
        # Drawing each sample's outcome is drawing, per distinct confidence, a binomial count.
        hits = rng.binomial(count, source)
        refits[r] = isotonic_regression(hits / count, sample_weight=count, increasing=True)
    alpha = (1.0 - band_level) / 2
    band_low, band_high = np.quantile(refits, [alpha, 1.0 - alpha], axis=0)
    return CorpDiagram(confidence=points, calibrated=calibrated, band_low=band_low,
                       band_high=band_high, count=count.astype(np.int64), score=score,
                       mcb=score - s_rc, dsc=unc - s_rc, unc=unc, n_boot=n_boot,
                       band_level=band_level)


def mean_confidence_per_class(
    y_pred: ArrayLike, confidence: ArrayLike, *, n_classes: int
) -> NDArray[np.float64]:
    """Mean top-1 confidence of the samples predicted as each class.

    Top-label calibration class by class: entry ``k`` is to be compared with the precision of
    class ``k`` (the accuracy of the samples predicted as ``k``, see
    :func:`labviz.compute.confusion.per_class_table`). With :math:`P_k = \\{i : \\hat y_i = k\\}`,
    entry ``k`` is :math:`\\sum_{i \\in P_k} c_i / |P_k|`, and NaN when no sample is predicted as
    ``k``.

    Parameters
    ----------
    y_pred : array-like of shape (n_samples,)
        Predicted classes, in ``[0, n_classes)``.
    confidence : array-like of shape (n_samples,)
        Each sample's top-1 confidence, e.g. ``probs.max(axis=1)``.
    n_classes : int

    Returns
    -------
    ndarray of shape (n_classes,)

    Examples
    --------
    >>> mean_confidence_per_class([0, 0, 2], [0.75, 0.25, 0.5], n_classes=3).tolist()
    [0.5, nan, 0.5]
    """
    c = v.check_int(n_classes, "n_classes", minimum=1)
    yp = v.check_labels(y_pred, "y_pred", n_classes=c, n_classes_arg="n_classes")
    conf = v.check_finite_float(confidence, "confidence", ndim=1)
    v.check_same_length(y_pred=yp, confidence=conf)
    with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 is NaN: nothing predicted
        return np.bincount(yp, weights=conf, minlength=c) / np.bincount(yp, minlength=c)
