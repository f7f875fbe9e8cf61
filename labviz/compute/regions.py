"""Regions of feature space ranked by calibration error, and error slices.

API (what the explorer calls)
-----------------------------
* :func:`find_regions` ``(predictions, *, n_regions=None, random_state=0, n_bins=15,
  n_boot=1000, confidence=0.95, cache=True, progress=None) -> Regions``: clusters of the
  features, with ``Regions.labels`` (n_samples,) the region of every sample and
  ``Regions.table`` one row per region, ranked by ECE (largest first). ``Regions.members(r)``
  gives region ``r``'s sample positions.
* :func:`error_slices` ``(predictions, regions, *, confidence=0.95) -> pandas.DataFrame``: the
  regions whose error rate is above the model's overall error rate with a 95% Wilson interval
  that excludes the overall rate, ranked, named by their majority true and predicted classes.
* :func:`cluster_features` ``(predictions, *, n_regions=None, random_state=0, cache=True,
  progress=None) -> ndarray (n_samples,)``: the clustering alone (cached).

The clustering
--------------
scikit-learn's ``MiniBatchKMeans`` on L2-normalised features (k-means on the unit sphere ranks
like cosine similarity, the neighbours' metric in :mod:`labviz.compute.neighbours`), with a
fixed seed, fitted on a seeded random sample of at most :data:`FIT_SAMPLE` rows (and
:data:`FIT_ENTRIES` entries); every sample is
then assigned to its nearest centre, a row chunk at a time, so memory-mapped features are read
in chunks and nothing larger than the sample is copied. Why k-means: it is fast at 1M points
on 2 cores, deterministic with a seed, needs no neighbour graph, and every sample gets a region
(density clustering, e.g. HDBSCAN, leaves noise points and takes minutes at this size).

The number of regions, when not given, is :func:`default_n_regions`:
``clip(n_samples // 500, 2, 64)``: regions of about 500 samples or more, so that each region's
ECE has a bootstrap interval narrow enough to rank by (the ECE's standard error shrinks as
``1 / sqrt(size)``), and at most 64, a list a person reads through.

Per region (columns of :attr:`Regions.table`): ``region``, ``size``, ``ece`` with ``ece_low``
and ``ece_high`` (top-label ECE on ``n_bins`` equal-width bins, the estimator of
:func:`labviz.compute.calibration.expected_calibration_error`, and the percentile bootstrap
interval of :func:`labviz.compute.calibration.calibration_interval`, drawn per (bin, correct)
cell), ``confidence`` (mean), ``accuracy``, ``gap`` (``confidence - accuracy``: > 0
over-confident), ``error_rate``.

Measured (2 shared cores, ``benchmarks/bench_neighbours.py``; default number of regions, 1,000
bootstrap replicas each): 1M x 64, 64 regions in 1.9-2.2 s, +42 MB peak RSS (load 1-4); 100k x 64,
1.4 s, +29 MB (load 3.5); 50k x 2,048, 11 s, +336 MB (load 1.3). The error slices take under
0.1 s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from labviz.compute.calibration import (
    _ce_from_stats,
    _uniform_top_label_replicas,
)
from labviz.compute.neighbours import features_digest, features_of, normalised
from labviz.core import _bootstrap
from labviz.core import _validation as v
from labviz.core._inputs import as_predictions
from labviz.core.cache import cache_key, cached_arrays
from labviz.core.predictions import Predictions

#: Called with the fraction done, a float in [0, 1], from the thread that computes.
Progress = Callable[[float], None]

#: k-means is fitted on a seeded sample of at most this many rows ...
FIT_SAMPLE = 100_000
#: ... and at most this many entries (rows x features; 2**25 float32 entries are 128 MB): 16,384
#: rows of 2,048 features.
FIT_ENTRIES = 1 << 25
#: Without ``n_regions``, regions hold about this many samples or more ...
MIN_REGION_SIZE = 500
#: ... and there are at most this many.
MAX_REGIONS = 64
#: Columns of :attr:`Regions.table`, in order.
REGION_COLUMNS: tuple[str, ...] = ("region", "size", "ece", "ece_low", "ece_high", "confidence",
                                   "accuracy", "gap", "error_rate")
#: Columns of :func:`error_slices`' table, in order.
SLICE_COLUMNS: tuple[str, ...] = ("region", "name", "size", "error_rate", "error_low",
                                  "error_high", "overall_error_rate", "true_class", "true_name",
                                  "predicted_class", "predicted_name")
_CACHE_VERSION = 1
#: Entries per row chunk when assigning samples to regions: 2**22 float32 entries are 16 MB.
_CHUNK_ENTRIES = 1 << 22


def default_n_regions(n_samples: int) -> int:
    """``clip(n_samples // 500, 2, 64)``: the number of regions when none is given.

    Examples
    --------
    >>> default_n_regions(10_000), default_n_regions(1_000_000)
    (20, 64)
    """
    return int(np.clip(n_samples // MIN_REGION_SIZE, 2, MAX_REGIONS))


@dataclass(frozen=True, eq=False)
class Regions:
    """Clusters of the features and their calibration.

    Attributes
    ----------
    labels : ndarray of shape (n_samples,), int32
        The region of each sample, in ``[0, n_regions)``.
    table : pandas.DataFrame
        One row per region (columns :data:`REGION_COLUMNS`), ranked by ECE, largest first.
    """

    labels: NDArray[np.int32]
    table: pd.DataFrame

    @property
    def n_regions(self) -> int:
        """Number of regions (rows of :attr:`table`)."""
        return len(self.table)

    def members(self, region: int) -> NDArray[np.intp]:
        """The sample positions in ``region``, ascending: shape (size,)."""
        region = v.check_int(region, "region", minimum=0, maximum=self.n_regions - 1)
        return np.flatnonzero(self.labels == region)


def _check_progress(progress: object) -> Progress | None:
    if progress is not None and not callable(progress):
        raise TypeError(f"`progress` must be a callable taking the fraction done (a float in "
                        f"[0, 1]) or None; got {type(progress).__name__}.")
    return progress


def _assign(feats: NDArray, centres: NDArray[np.float32]) -> NDArray[np.int32]:
    """The nearest centre (largest dot product with the normalised row) of every row, by chunks."""
    out = np.empty(feats.shape[0], dtype=np.int32)
    step = max(1, _CHUNK_ENTRIES // max(feats.shape[1], len(centres)))
    for start in range(0, feats.shape[0], step):
        out[start:start + step] = (normalised(feats[start:start + step]) @ centres.T).argmax(1)
    return out


def cluster_features(
    predictions: Predictions | NDArray,
    *,
    n_regions: int | None = None,
    random_state: int = 0,
    cache: bool = True,
    progress: Progress | None = None,
) -> NDArray[np.int32]:
    """The region of every sample: MiniBatchKMeans on L2-normalised features (see module doc).

    Parameters
    ----------
    predictions : Predictions or array-like of shape (n_samples, n_features)
        A Predictions with features, or the features.
    n_regions : int or None
        Number of clusters, in ``[1, n_samples]``; None: :func:`default_n_regions`.
    random_state : int, default 0
        Seed of the fitting sample and of k-means.
    cache : bool, default True
        Keep the labels on disk (namespace ``"regions"``), keyed by a sha256 of the feature
        bytes, ``n_regions`` and ``random_state``.
    progress : callable or None
        Called with the fraction done (a float in [0, 1]) from the thread that computes.

    Returns
    -------
    ndarray of shape (n_samples,), int32
        Values in ``[0, n_regions)``; clusters that k-means leaves empty keep their number.
    """
    name = "predictions" if isinstance(predictions, Predictions) else "features"
    feats = features_of(predictions, name)
    n = feats.shape[0]
    k = (default_n_regions(n) if n_regions is None
         else v.check_int(n_regions, "n_regions", minimum=1, maximum=n))
    seed = v.check_int(random_state, "random_state", minimum=0)
    cache = v.check_bool(cache, "cache")
    progress = _check_progress(progress)
    report = progress if progress is not None else (lambda fraction: None)

    def build() -> dict[str, np.ndarray]:
        from sklearn.cluster import MiniBatchKMeans

        rng = np.random.default_rng(seed)
        size = max(k, min(FIT_SAMPLE, FIT_ENTRIES // feats.shape[1]))
        rows = np.sort(rng.choice(n, size, replace=False)) if n > size else slice(None)
        sample = normalised(feats[rows])
        report(0.1)
        from threadpoolctl import threadpool_limits

        km = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096)
        # one OpenMP thread: on 2 shared cores k-means' two threads wait on each other (measured
        # at 100k x 64, 64 clusters: 3.4 s against 13.2 s; at 600 x 8: 0.05 s against 3.7 s),
        # and the explorer's kernel keeps the other core
        with threadpool_limits(1):
            km.fit(sample)
        report(0.6)
        centres = km.cluster_centers_.astype(np.float32)
        return {"labels": _assign(feats, centres)}

    report(0.0)
    if cache:
        key = cache_key(features=features_digest(feats), n_regions=k, random_state=seed,
                        version=_CACHE_VERSION, method="minibatch-kmeans-cosine")
        labels = cached_arrays("regions", key, build, required=("labels",))["labels"]
    else:
        labels = build()["labels"]
    report(1.0)
    return np.asarray(labels, dtype=np.int32)


def _check_labels(labels: object, n: int, name: str = "regions") -> NDArray[np.int32]:
    lab: NDArray[np.integer] = (labels.labels if isinstance(labels, Regions)
                                else v.check_labels(labels, name))  # type: ignore[arg-type]
    if len(lab) != n:
        raise ValueError(f"`{name}` must label every sample; got {len(lab)} labels for {n} "
                         "samples.")
    return np.asarray(lab, dtype=np.int32)


def region_table(
    predictions: Predictions,
    labels: NDArray[np.integer],
    *,
    n_bins: int = 15,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per region: size, ECE with its bootstrap interval, confidence, accuracy, gap.

    Parameters
    ----------
    predictions : Predictions
    labels : array-like of shape (n_samples,)
        The region of each sample (e.g. from :func:`cluster_features`).
    n_bins : int, default 15
        Equal-width bins of the top-label ECE.
    n_boot : int, default 1000
        Bootstrap replicas per region.
    confidence : float, default 0.95
        Coverage of the intervals, in (0, 1).
    seed : int, default 0

    Returns
    -------
    pandas.DataFrame
        Columns :data:`REGION_COLUMNS`, ranked by ``ece`` (largest first); empty regions are
        left out. A region's ``ece``, ``ece_low`` and ``ece_high`` are those of
        ``calibration_interval(y_true[members], probs[members], n_bins=n_bins, n_boot=n_boot,
        confidence=confidence, seed=seed)``, computed from the confidences and correctness
        alone (no probability matrix is sliced).
    """
    p = as_predictions(predictions)
    lab = _check_labels(labels, p.n_samples, "labels")
    n_bins = v.check_int(n_bins, "n_bins", minimum=1)
    n_boot = v.check_int(n_boot, "n_boot", minimum=1)
    level = v.check_float(confidence, "confidence")
    if not 0 < level < 1:
        raise ValueError(f"`confidence` must be in (0, 1); got {level!r}.")
    seed = v.check_int(seed, "seed", minimum=0)
    conf = np.asarray(p.confidence, dtype=np.float64)
    hit = p.correct
    order = np.argsort(lab, kind="stable")
    bounds = np.searchsorted(lab[order], np.arange(int(lab.max()) + 2))
    rows = []
    for r in range(int(lab.max()) + 1):
        members = order[bounds[r]:bounds[r + 1]]
        if not len(members):
            continue
        c, h = conf[members], hit[members]
        estimate, replicas = _uniform_top_label_replicas(
            c, h, n_bins, lambda stats: _ce_from_stats(stats, "l1"), n_boot,
            np.random.default_rng(seed))
        low, high = _bootstrap.percentile_interval(replicas, level)
        mean_conf, acc = float(c.mean()), float(h.mean())
        rows.append((r, len(members), estimate, low, high, mean_conf, acc, mean_conf - acc,
                     1.0 - acc))
    table = pd.DataFrame(rows, columns=list(REGION_COLUMNS))
    return table.sort_values(["ece", "region"], ascending=[False, True], kind="stable",
                             ignore_index=True)


def find_regions(
    predictions: Predictions,
    *,
    n_regions: int | None = None,
    random_state: int = 0,
    n_bins: int = 15,
    n_boot: int = 1000,
    confidence: float = 0.95,
    cache: bool = True,
    progress: Progress | None = None,
) -> Regions:
    """Clusters of the features (:func:`cluster_features`) and their table (:func:`region_table`).

    Parameters
    ----------
    predictions : Predictions
        With features.
    n_regions, random_state, cache, progress
        As :func:`cluster_features`.
    n_bins, n_boot, confidence
        As :func:`region_table` (whose seed is ``random_state``).

    Returns
    -------
    Regions
    """
    p = as_predictions(predictions)
    labels = cluster_features(p, n_regions=n_regions, random_state=random_state, cache=cache,
                              progress=progress)
    table = region_table(p, labels, n_bins=n_bins, n_boot=n_boot, confidence=confidence,
                         seed=random_state)
    return Regions(labels=labels, table=table)


def _majority(values: NDArray[np.int64], n_classes: int) -> int:
    return int(np.bincount(values, minlength=n_classes).argmax())


def error_slices(
    predictions: Predictions,
    regions: Regions | NDArray[np.integer],
    *,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Regions whose error rate is above the model's overall one, beyond their Wilson interval.

    A region of ``m`` samples with ``e`` errors is a slice when the lower end of the Wilson
    score interval of ``e / m`` (``scipy.stats.binomtest(e, m).proportion_ci(confidence,
    method="wilson")``) is above the overall error rate of all samples (taken as known: it
    rests on all ``n`` samples). Wilson rather than a bootstrap: exact enough for a proportion,
    no draws, and sane for small or error-free regions.

    Parameters
    ----------
    predictions : Predictions
    regions : Regions or array-like of shape (n_samples,)
        The regions, or the region of each sample.
    confidence : float, default 0.95
        Coverage of the intervals, in (0, 1).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SLICE_COLUMNS`, one row per slice, ranked by ``error_low`` (the error
        rate the region has at least, at that confidence), largest first. ``name`` reads
        ``"<true> → <predicted>"`` from the majority true and predicted classes of the region.
    """
    from scipy.stats import binomtest

    p = as_predictions(predictions)
    lab = _check_labels(regions, p.n_samples)
    level = v.check_float(confidence, "confidence")
    if not 0 < level < 1:
        raise ValueError(f"`confidence` must be in (0, 1); got {level!r}.")
    wrong = ~p.correct
    overall = float(wrong.mean())
    names = tuple(p.class_names)
    y_true, y_pred = p.y_true, p.y_pred
    order = np.argsort(lab, kind="stable")
    bounds = np.searchsorted(lab[order], np.arange(int(lab.max()) + 2))
    rows = []
    for r in range(int(lab.max()) + 1):
        members = order[bounds[r]:bounds[r + 1]]
        m = len(members)
        if not m:
            continue
        e = int(wrong[members].sum())
        ci = binomtest(e, m).proportion_ci(confidence_level=level, method="wilson")
        if ci.low <= overall:
            continue
        t = _majority(y_true[members], p.n_classes)
        q = _majority(y_pred[members], p.n_classes)
        rows.append((r, f"{names[t]} → {names[q]}", m, e / m, float(ci.low), float(ci.high),
                     overall, t, names[t], q, names[q]))
    table = pd.DataFrame(rows, columns=list(SLICE_COLUMNS))
    return table.sort_values(["error_low", "region"], ascending=[False, True], kind="stable",
                             ignore_index=True)
