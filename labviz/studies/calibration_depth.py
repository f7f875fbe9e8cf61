"""ECE's brittleness to binning, and label smoothing against temperature scaling (notebook 03)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from labviz import zoo
from labviz.core import _validation as v
from labviz.studies._common import FAMILY_LABELS, FASHION, mean_sd, members
from labviz.studies.label_smoothing import calibration_table, confidence_gap_table

if TYPE_CHECKING:
    from labviz.compute.calibration import Norm, ReliabilityCurve, Strategy

_STRATEGIES: tuple[Strategy, ...] = ("uniform", "quantile")
#: The binning choices notebook 03 varies for the top-label L1 ECE: (strategy, n_bins).
ECE_BINNINGS: tuple[tuple[Strategy, int], ...] = tuple(
    (s, b) for s in _STRATEGIES for b in (5, 10, 15, 30))
#: The other norms of the calibration error, with their names in tables.
_NORMS: tuple[tuple[Norm, str], ...] = (("l2", "L2 (RMS)"), ("max", "max (MCE)"))


def ece_variants(y_true: np.ndarray, probs: np.ndarray) -> pd.DataFrame:
    """One model's calibration error under the common estimator choices, one row per variant.

    ``kind="binning"`` rows are the top-label L1 ECE for each binning of :data:`ECE_BINNINGS`
    (same estimand, different bins). ``kind="measure"`` rows change the estimand, all on 15 bins:
    the L2 (RMS) and max (MCE) norms, the class-wise L1 ECE, and the debiased L2 error of Kumar et
    al. (2019) with uniform and quantile bins. The last row (``kind="one bin"``) is the L1 ECE
    with a single bin, :math:`|\\bar c - \\mathrm{acc}|`: when every bin's gap has the same sign,
    every L1 ECE equals it, whatever the bins. See :mod:`labviz.compute.calibration` for the formulas.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    probs : array-like of shape (n_samples, n_classes)

    Returns
    -------
    pandas.DataFrame
        14 rows: ``variant`` (str), ``kind`` ("binning", "measure" or "one bin"), ``strategy``,
        ``n_bins``, ``norm``, ``classwise``, ``debiased`` and ``value`` (float).

    Examples
    --------
    With 5 bins the two samples fall in different bins: ECE = (0.1 + 0.7) / 2; with one bin
    it is ``|0.8 − 0.5|``.

    >>> t = ece_variants([0, 1], [[0.9, 0.1], [0.7, 0.3]])
    >>> len(t), t.variant[0], round(float(t.value[0]), 6), t.variant[13], round(float(t.value[13]), 6)
    (14, 'L1, uniform, 5 bins', 0.4, 'L1, 1 bin = |mean confidence − accuracy|', 0.3)
    """
    from labviz.compute.calibration import (
        debiased_calibration_error,
        expected_calibration_error,
    )

    rows = []
    for strategy, n_bins in ECE_BINNINGS:
        rows.append({"variant": f"L1, {strategy}, {n_bins} bins", "kind": "binning",
                     "strategy": strategy, "n_bins": n_bins, "norm": "l1", "classwise": False,
                     "debiased": False, "value": expected_calibration_error(
                         y_true, probs, n_bins=n_bins, strategy=strategy)})
    for norm, label in _NORMS:
        rows.append({"variant": f"{label}, uniform, 15 bins", "kind": "measure", "strategy": "uniform",
                     "n_bins": 15, "norm": norm, "classwise": False, "debiased": False,
                     "value": expected_calibration_error(y_true, probs, n_bins=15, norm=norm)})
    rows.append({"variant": "class-wise L1, uniform, 15 bins", "kind": "measure", "strategy": "uniform",
                 "n_bins": 15, "norm": "l1", "classwise": True, "debiased": False,
                 "value": expected_calibration_error(y_true, probs, n_bins=15, classwise=True)})
    for strategy in _STRATEGIES:
        rows.append({"variant": f"debiased L2, {strategy}, 15 bins", "kind": "measure",
                     "strategy": strategy, "n_bins": 15, "norm": "l2", "classwise": False,
                     "debiased": True, "value": debiased_calibration_error(
                         y_true, probs, n_bins=15, strategy=strategy)})
    rows.append({"variant": "L1, 1 bin = |mean confidence − accuracy|", "kind": "one bin",
                 "strategy": "uniform", "n_bins": 1, "norm": "l1", "classwise": False,
                 "debiased": False, "value": expected_calibration_error(y_true, probs, n_bins=1)})
    return pd.DataFrame(rows)


def ece_variants_table(families: Sequence[str], dataset: str = FASHION,
                       split: Literal["train", "val", "test"] = "test") -> pd.DataFrame:
    """:func:`ece_variants` of every checkpoint of ``families``, stacked (long format).

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`ece_variants`, preceded by ``family``, ``name`` and ``seed``.
    """
    parts = []
    for family in families:
        for name in members(family, dataset):
            p = zoo.predictions(name, split, with_images=False)
            part = ece_variants(p.y_true, p.probs)
            part.insert(0, "seed", zoo.entry(name)["seed"])
            part.insert(0, "name", name)
            part.insert(0, "family", family)
            parts.append(part)
    return pd.concat(parts, ignore_index=True)


def ece_variants_wide(variants: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """One row per variant, one column per family: ``"mean ± sd"`` over seeds.

    Parameters
    ----------
    variants : pandas.DataFrame
        From :func:`ece_variants_table`.
    digits : int

    Returns
    -------
    pandas.DataFrame
        Columns ``variant``, ``kind``, then one per family named by :data:`FAMILY_LABELS`.
    """
    out = variants[["variant", "kind"]].drop_duplicates().reset_index(drop=True)
    for family, part in variants.groupby("family", sort=False):
        col = part.groupby("variant", sort=False)["value"].agg(lambda s: mean_sd(s, digits))
        out[FAMILY_LABELS.get(family, family)] = out["variant"].map(col)
    return out


def binning_spread(variants: pd.DataFrame, *, reference: str = "L1, uniform, 15 bins") -> pd.DataFrame:
    """How far the binning choice moves the top-label L1 ECE, per checkpoint.

    Parameters
    ----------
    variants : pandas.DataFrame
        From :func:`ece_variants_table` (its ``kind == "binning"`` rows are used).
    reference : str
        The variant the spread is compared to (the usual 15 equal-width bins).

    Returns
    -------
    pandas.DataFrame
        One row per checkpoint: ``family``, ``name``, ``seed``, ``reference`` (its ECE), ``min``,
        ``max``, ``range`` (= max − min) and ``relative_range`` (= range / reference).

    Examples
    --------
    >>> v = pd.DataFrame({"family": "ce", "name": "m", "seed": 0, "kind": "binning",
    ...                   "variant": ["L1, uniform, 15 bins", "L1, quantile, 5 bins"],
    ...                   "value": [0.10, 0.05]})
    >>> binning_spread(v)[["range", "relative_range"]].values.round(6).tolist()
    [[0.05, 0.5]]
    """
    rows = []
    binned = variants[variants["kind"] == "binning"]
    for (family, name, seed), part in binned.groupby(["family", "name", "seed"], sort=False):
        values = part.set_index("variant")["value"]
        if reference not in values.index:
            raise ValueError(f"`reference` must be a binning variant, one of {list(values.index)}; "
                             f"got {reference!r}.")
        ref, lo, hi = float(values[reference]), float(values.min()), float(values.max())
        rows.append({"family": family, "name": name, "seed": seed, "reference": ref, "min": lo,
                     "max": hi, "range": hi - lo, "relative_range": (hi - lo) / ref if ref else np.nan})
    return pd.DataFrame(rows)


def family_ranking(variants: pd.DataFrame) -> pd.DataFrame:
    """The order of the families by mean calibration error (over seeds), under each variant.

    Returns
    -------
    pandas.DataFrame
        One row per variant: ``variant``, ``kind`` and ``ranking``, e.g. ``"CE < LS α=0.1"``
        (best calibrated first).

    Examples
    --------
    >>> v = pd.DataFrame({"variant": "a", "kind": "binning", "family": ["ce", "ls0.1"],
    ...                   "value": [0.2, 0.1]})
    >>> family_ranking(v)["ranking"].tolist()
    ['LS α=0.1 < CE']
    """
    rows = []
    for (variant, kind), part in variants.groupby(["variant", "kind"], sort=False):
        means = part.groupby("family", sort=False)["value"].mean().sort_values(kind="stable")
        rows.append({"variant": variant, "kind": kind,
                     "ranking": " < ".join(FAMILY_LABELS.get(f, f) for f in means.index)})
    return pd.DataFrame(rows)


def same_side_share(y_true: np.ndarray, probs: np.ndarray, *, n_bins: int = 15,
                    strategy: Literal["uniform", "quantile"] = "uniform") -> float:
    """Share of samples in reliability bins on the same side of the diagonal as the overall gap.

    1.0 means the miscalibration is one-sided (every non-empty bin over-confident, or every one
    under-confident); then every L1 ECE equals ``|mean confidence − accuracy|``, whatever the bins.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    probs : array-like of shape (n_samples, n_classes)
    n_bins : int
    strategy : {"uniform", "quantile"}

    Returns
    -------
    float

    Examples
    --------
    Bin (0.5, 0.75] is over-confident by 0.7, bin (0.75, 1] under-confident by 0.1; overall
    over-confident, so half of the samples are on the overall side.

    >>> same_side_share([0, 1], [[0.9, 0.1], [0.7, 0.3]], n_bins=4)
    0.5
    """
    from labviz.compute.calibration import reliability_curve

    return _same_side(reliability_curve(y_true, probs, n_bins=n_bins, strategy=strategy))


def _same_side(curve: ReliabilityCurve) -> float:
    """:func:`same_side_share` of a reliability curve."""
    filled = curve.count > 0
    gap, count = curve.gap[filled], curve.count[filled]
    overall = np.sign(np.sum(gap * count))
    return float(count[gap * overall >= 0].sum() / count.sum())


def _binned_scores(conf: np.ndarray, hit: np.ndarray) -> tuple[list[float], float, float]:
    """The L1 ECE of every binning of :data:`ECE_BINNINGS`, the 15-bin equal-width ECE and the
    :func:`same_side_share` (15 equal-width bins), from top-label confidences and correctness.

    The numbers of :func:`expected_calibration_error` and :func:`same_side_share` on the matching
    ``(y_true, probs)``, to the bit (the same statistics, computed from the same confidences), with
    the probabilities checked and their top label found once per model rather than ten times per
    subset.
    """
    from labviz.compute.calibration import (
        _bin_index,
        _ce_from_stats,
        _curve_from_stats,
        _stats_1d,
        _top_label_stats,
    )

    # every equal-mass edge in one np.quantile call (one partition of the confidences); each
    # level's value is the one a call for its binning alone gives
    levels = {b: np.linspace(0.0, 1.0, b + 1) for s, b in ECE_BINNINGS if s == "quantile"}
    quantiles = np.quantile(conf, np.concatenate(list(levels.values())))
    starts = np.cumsum([0] + [len(q) for q in levels.values()])
    edges_of = {}
    for (b, _), start in zip(levels.items(), starts, strict=False):
        edges = quantiles[start:start + b + 1].copy()
        edges[0], edges[-1] = 0.0, 1.0
        edges_of[b] = edges
    values = []
    for s, b in ECE_BINNINGS:
        stats = (_top_label_stats(conf, hit, b, s)[0] if s == "uniform" else
                 _stats_1d(_bin_index(conf, edges_of[b], uniform=False), conf, hit, b))
        values.append(float(_ce_from_stats(stats, "l1")))
    stats, edges = _top_label_stats(conf, hit, 15, "uniform")
    return values, float(_ce_from_stats(stats, "l1")), _same_side(_curve_from_stats(stats, edges))


def ece_difference(a: object, b: object, *, n_bins: int = 15) -> Callable[[np.ndarray], float]:
    """The statistic of a paired bootstrap over the same test images: ``idx -> ECE(a) − ECE(b)``
    on the samples ``idx``, for :func:`~labviz.studies.verdicts.bootstrap_effect`.

    Each value equals ``expected_calibration_error(a.y_true[idx], a.probs[idx], n_bins=n_bins)
    − expected_calibration_error(b.y_true[idx], b.probs[idx], n_bins=n_bins)`` (top-label L1,
    equal-width bins), to the bit for matrices of under ``2**18`` entries (above, that function
    bins in a compiled pass whose sums may differ in the last bits). The probabilities are checked
    and their top labels found once, here, rather than on every replica.

    Parameters
    ----------
    a, b : Predictions
        Two models' predictions of the same samples, in the same order.
    n_bins : int, default 15

    Returns
    -------
    callable
        Taking an integer array of sample positions (repeats allowed), returning a float.

    Examples
    --------
    One bin (0.5, 1] holds every sample. On both samples: ECE(a) = ``|0.8 − 1/2|``, ECE(b) =
    ``|0.6 − 1|``; on sample 0 twice: ``|0.9 − 1|`` and ``|0.6 − 1|``.

    >>> from labviz import Predictions
    >>> a = Predictions.from_arrays(y_true=[0, 1], probs=[[0.9, 0.1], [0.7, 0.3]])
    >>> b = Predictions.from_arrays(y_true=[0, 1], probs=[[0.6, 0.4], [0.4, 0.6]])
    >>> f = ece_difference(a, b, n_bins=2)
    >>> round(f(np.array([0, 1])), 6), round(f(np.array([0, 0])), 6)
    (-0.1, -0.3)
    """
    from labviz.compute.calibration import _ce_from_stats, _check_top_label, _top_label_stats
    from labviz.core._inputs import as_predictions

    n_bins = v.check_int(n_bins, "n_bins", minimum=1)
    pa, pb = as_predictions(a, "a"), as_predictions(b, "b")
    if pa.n_samples != pb.n_samples:
        raise ValueError(f"`a` and `b` must hold the same samples; got {pa.n_samples} and "
                         f"{pb.n_samples} of them.")
    conf_a, hit_a, _ = _check_top_label(pa.y_true, pa.probs)
    conf_b, hit_b, _ = _check_top_label(pb.y_true, pb.probs)

    def statistic(idx: np.ndarray) -> float:
        ece_a = _ce_from_stats(_top_label_stats(conf_a[idx], hit_a[idx], n_bins, "uniform")[0], "l1")
        ece_b = _ce_from_stats(_top_label_stats(conf_b[idx], hit_b[idx], n_bins, "uniform")[0], "l1")
        return float(ece_a) - float(ece_b)

    return statistic


def temperature_scaling_table(families: Sequence[str], dataset: str = FASHION) -> pd.DataFrame:
    """:func:`calibration_table` plus the test mean confidence and what the fitted T says.

    ``T > 1`` (the fit softens the logits) means the model was over-confident on the validation
    split, ``T < 1`` under-confident.

    Returns
    -------
    pandas.DataFrame
        One row per checkpoint: the columns of :func:`calibration_table`, then
        ``mean_confidence``, ``gap`` (= mean_confidence − accuracy, test) and ``reading``
        ("over-confident" or "under-confident").
    """
    table = calibration_table(families, dataset)
    gaps = confidence_gap_table(families, dataset, "test").set_index("name")
    table["mean_confidence"] = table["name"].map(gaps["mean_confidence"])
    table["gap"] = table["name"].map(gaps["gap"])
    table["reading"] = np.where(table["temperature"] > 1, "over-confident", "under-confident")
    return table


#: Evaluation-set sizes of :func:`binning_by_size`: from a small slice to the whole test set.
EVAL_SIZES: tuple[int, ...] = (100, 300, 1_000, 10_000)


def binning_by_size(families: Sequence[str], dataset: str = FASHION, *,
                    sizes: Sequence[int] = EVAL_SIZES, n_draws: int = 20, seed: int = 0,
                    temperature_scaled: Sequence[str] = ("ce",)) -> pd.DataFrame:
    """How far the binning moves the top-label L1 ECE, against the size of the evaluation set.

    For every checkpoint of ``families`` and every size n, ``n_draws`` random subsets of n test
    images (without replacement; seeded, the same subsets for every checkpoint) are scored with
    the 8 binnings of :data:`ECE_BINNINGS`. A subset as large as the test set is drawn once. The
    families of ``temperature_scaled`` are also scored after temperature scaling fitted on the
    validation split (family ``"<family>+ts"``): a calibrated model's reliability curve crosses the
    diagonal, which a one-sided miscalibration never does, and only then can bins cancel.

    Returns
    -------
    pandas.DataFrame
        One row per checkpoint, size and draw: ``family``, ``name``, ``seed``, ``size``, ``draw``,
        ``ece`` (15 equal-width bins), ``range`` (max − min over the binnings),
        ``relative_range`` (= range / ece) and ``same_side`` (:func:`same_side_share`).
    """
    from labviz.compute.calibration import _check_top_label, fit_temperature
    from labviz.core.predictions import softmax

    sizes = [int(n) for n in sizes]
    if not sizes or min(sizes) < 2:
        raise ValueError(f"`sizes` must be integers of at least 2; got {sizes}.")
    models = []
    for family in families:
        for name in members(family, dataset):
            test = zoo.predictions(name, "test", with_images=False)
            models.append((family, name, test.y_true, test.probs))
            if family in temperature_scaled:
                val = zoo.predictions(name, "val", with_images=False)
                t = fit_temperature(val.logits, val.y_true)
                models.append((f"{family}+ts", name, test.y_true, softmax(test.logits / t)))
    n_test = len(models[0][2])
    if max(sizes) > n_test:
        raise ValueError(f"`sizes` must not exceed the {n_test} test images; got {max(sizes)}.")
    rng = np.random.default_rng(seed)
    draws = {n: [np.arange(n_test)] if n == n_test else
             [rng.choice(n_test, size=n, replace=False) for _ in range(n_draws)] for n in sizes}
    rows = []
    for family, name, y, probs in models:
        seed_ = zoo.entry(name)["seed"]  # reads the manifest: once per model, not per subset
        conf, hit, _ = _check_top_label(y, probs)
        for n, subsets in draws.items():
            for k, idx in enumerate(subsets):
                values, ref, same_side = _binned_scores(conf[idx], hit[idx])
                rows.append({"family": family, "name": name, "seed": seed_,
                             "size": n, "draw": k, "ece": ref, "range": max(values) - min(values),
                             "relative_range": (max(values) - min(values)) / ref if ref else np.nan,
                             "same_side": same_side})
    return pd.DataFrame(rows)


def estimator_table(report: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """A calibration report's long table (one row per model and estimator) laid out for reading:
    one row per estimator, one column per model, each cell ``"estimate [low, high]"``.

    How the intervals were made is said once, in ``attrs["note"]`` (which
    :func:`~labviz.studies._common.show_table` prints beneath the table), not on every row; an
    estimator without an interval shows "—" in place of it, and the note says why.

    Parameters
    ----------
    report : pandas.DataFrame
        Columns ``model``, ``estimator``, ``estimate``, ``low``, ``high``, ``n_bins`` and
        ``interval`` (the text saying how the interval was made), as
        ``CalibrationReportDisplay.table`` holds them.
    digits : int, default 4

    Returns
    -------
    pandas.DataFrame
        Columns ``estimator``, ``bins`` and one per model, in the report's order.

    Examples
    --------
    >>> t = pd.DataFrame({"model": ["CE", "CE"], "estimator": ["ECE", "smooth ECE"],
    ...                   "estimate": [0.04, 0.03], "low": [0.03, float("nan")],
    ...                   "high": [0.05, float("nan")], "n_bins": [15, None],
    ...                   "interval": ["95% bootstrap", "none (no bins)"]})
    >>> out = estimator_table(t, digits=2)
    >>> out.to_dict("records")
    [{'estimator': 'ECE', 'bins': '15', 'CE': '0.04 [0.03, 0.05]'}, {'estimator': 'smooth ECE', 'bins': '—', 'CE': '0.03 [—]'}]
    >>> out.attrs["note"]
    'Each cell: estimate [95% interval]. Intervals: 95% bootstrap. —: no interval for smooth ECE (no bins). Bins —: not a binned estimator.'
    """
    missing = {"model", "estimator", "estimate", "low", "high", "n_bins", "interval"} - set(report.columns)
    if missing:
        raise ValueError(f"`report` must have the columns of a calibration report; got {list(report.columns)},"
                         f" missing {sorted(missing)}.")

    def cell(row: pd.Series) -> str:
        interval = ("—" if pd.isna(row.low) or pd.isna(row.high)
                    else f"{row.low:.{digits}f}, {row.high:.{digits}f}")
        return f"{row.estimate:.{digits}f} [{interval}]"

    estimators = list(dict.fromkeys(report.estimator))
    models = list(dict.fromkeys(report.model))
    out = pd.DataFrame({"estimator": estimators})
    # One count when every model shares it; else each model's, in the models' column order.
    bins = report.groupby("estimator", sort=False).n_bins.agg(
        lambda s: "—" if s.isna().all() else f"{s.iloc[0]:g}" if s.nunique() == 1
        else ", ".join("—" if pd.isna(b) else f"{b:g}" for b in s))
    out["bins"] = out.estimator.map(bins)
    for model in models:
        part = report[report.model == model].set_index("estimator")
        out[model] = out.estimator.map(part.apply(cell, axis=1))
    has_ci = report.low.notna() & report.high.notna()
    how = "; ".join(dict.fromkeys(report.interval[has_ci]))
    why_not = "; ".join(f"{e} ({t.removeprefix('none (').removesuffix(')')})"
                        for e, t in dict.fromkeys(zip(report.estimator[~has_ci], report.interval[~has_ci],
                                                      strict=True)))
    out.attrs["note"] = ("Each cell: estimate [95% interval]." + (f" Intervals: {how}." if how else "")
                         + (f" —: no interval for {why_not}." if why_not else "")
                         + (" Bins —: not a binned estimator." if (out.bins == "—").any() else ""))
    return out


# ----- where the miscalibration lives: regions of the feature space -------------------------------
#: The concentration measure, fixed before looking: the share of a model's miscalibration mass
#: carried by its worst ``WORST_REGIONS`` of regions (at least one region).
WORST_REGIONS = 0.10
#: A true class names a region when it holds at least this share of the region's samples.
NAMING_SHARE = 0.25
#: Columns of :func:`region_gaps`, in order.
REGION_GAP_COLUMNS: tuple[str, ...] = (
    "region", "classes", "majority", "majority_share", "size", "sample_share", "gap", "gap_low", "gap_high",
    "side", "mass_share")


def _region_classes(y: np.ndarray, class_names: Sequence[str]) -> tuple[str, str, float]:
    """The classes holding at least :data:`NAMING_SHARE` of ``y`` (most frequent first, joined
    with " and "), the majority class and its share."""
    counts = np.bincount(y, minlength=len(class_names))
    order = np.argsort(-counts, kind="stable")
    shares = counts[order] / counts.sum()
    named = [class_names[c] for c, s in zip(order, shares, strict=True) if s >= NAMING_SHARE]
    return " and ".join(named or [class_names[order[0]]]), class_names[order[0]], float(shares[0])


def region_gaps(predictions: object, *, n_regions: int | None = None, random_state: int = 0,
                confidence: float = 0.95, cache: bool = True) -> pd.DataFrame:
    """A model's regions of the feature space with their *signed* calibration gap.

    The regions are :func:`labviz.compute.regions.cluster_features`' (k-means of the
    L2-normalised penultimate features; ``n_samples // 500`` of them, clipped to 2..64). Per
    region, the gap is the mean over its samples of ``d_i = confidence_i − correct_i`` (> 0:
    over-confident there), with a Student t interval on that mean (the ``d_i`` are bounded and a
    region holds hundreds of them). The model's *direction* ``s`` is the sign of its overall gap
    (+1 over-confident, −1 under-confident); its *miscalibration mass* is ``s · Σ_i d_i``, and a
    region's share of it is ``s · Σ_{i in region} d_i / (s · Σ_i d_i)``: negative for a region
    miscalibrated the other way, and the shares sum to 1.

    Parameters
    ----------
    predictions : Predictions
        With features, shape (n_samples, n_features).
    n_regions : int or None
        None: ``clip(n_samples // 500, 2, 64)``.
    random_state : int, default 0
        Seed of the clustering.
    confidence : float, default 0.95
        Coverage of the gap intervals, in (0, 1).
    cache : bool, default True
        Keep the region labels on disk (:func:`~labviz.compute.regions.cluster_features`).

    Returns
    -------
    pandas.DataFrame
        One row per non-empty region, columns :data:`REGION_GAP_COLUMNS`, the largest share of the
        mass first: ``classes`` names the region by its true classes (those holding at least
        :data:`NAMING_SHARE` of it, most frequent first), ``majority`` is its most frequent true
        class and ``majority_share`` that class's share of it, ``sample_share`` its share of the samples, ``gap`` with
        ``gap_low`` and ``gap_high`` the signed gap and its interval (NaN for a one-sample
        region), ``side`` +1 when the interval excludes zero on the model's side, −1 when on the
        other side, else 0. ``attrs["direction"]`` is ``s`` and ``attrs["gap"]`` the overall gap.
    """
    from labviz.compute.regions import cluster_features
    from labviz.core._inputs import as_predictions

    p = as_predictions(predictions)
    level = float(confidence)
    if not 0 < level < 1:
        raise ValueError(f"`confidence` must be in (0, 1); got {confidence!r}.")
    labels = cluster_features(p, n_regions=n_regions, random_state=random_state, cache=cache)
    return _gap_table(np.asarray(p.confidence, dtype=np.float64) - p.correct, labels, p.y_true,
                      p.class_names, level)


def _gap_table(d: np.ndarray, labels: np.ndarray, y_true: np.ndarray,
               class_names: Sequence[str], level: float) -> pd.DataFrame:
    """:func:`region_gaps`' table from ``d = confidence − correct`` and the region labels."""
    from scipy import stats

    total = float(d.sum())
    direction = 1.0 if total >= 0 else -1.0
    rows = []
    for r in np.unique(labels):
        members_ = labels == r
        dr, m = d[members_], int(members_.sum())
        gap = float(dr.mean())
        half = (float(stats.t.ppf((1 + level) / 2, m - 1) * dr.std(ddof=1) / np.sqrt(m))
                if m > 1 else np.nan)
        low, high = gap - half, gap + half
        side = (0 if m < 2 else 1 if direction * low > 0 and direction * high > 0
                else -1 if direction * low < 0 and direction * high < 0 else 0)
        classes, majority, majority_share = _region_classes(y_true[members_], class_names)
        rows.append((int(r), classes, majority, majority_share, m, m / len(d), gap, low, high, side,
                     float(dr.sum()) / total if total else np.nan))
    table = pd.DataFrame(rows, columns=list(REGION_GAP_COLUMNS))
    table = table.sort_values(["mass_share", "region"], ascending=[False, True], kind="stable",
                              ignore_index=True)
    table.attrs.update(direction=int(direction), gap=total / len(d))
    return table


def concentration(gaps: pd.DataFrame, *, worst: float = WORST_REGIONS) -> dict[str, float]:
    """How concentrated a model's miscalibration is, from its :func:`region_gaps` table.

    Parameters
    ----------
    gaps : pandas.DataFrame
        From :func:`region_gaps` (largest share of the mass first).
    worst : float, default 0.10
        The share of the regions that are "worst": ``ceil(worst · n_regions)``, at least 1.

    Returns
    -------
    dict
        ``worst_mass_share`` (the measure: the share of the miscalibration mass carried by the
        worst regions; 1 if they carry all of it, about their sample share if it is spread evenly,
        above 1 when other regions are miscalibrated the other way), ``worst_sample_share`` (their
        share of the samples), ``side_share`` (share of the samples in regions whose interval
        excludes zero on the model's side) and ``other_side_share`` (... on the other side).

    Examples
    --------
    Ten regions of 100 samples; the model is over-confident by 0.3 in one region and 0.1 in
    another, and well calibrated elsewhere: the worst region (ceil(10% of 10) = 1) carries 3/4
    of the mass while holding a tenth of the samples.

    >>> g = pd.DataFrame({"size": [100] * 10, "sample_share": [0.1] * 10,
    ...                   "mass_share": [0.75, 0.25] + [0.0] * 8, "side": [1, 1] + [0] * 8})
    >>> {k: round(v, 4) for k, v in concentration(g).items()}
    {'worst_mass_share': 0.75, 'worst_sample_share': 0.1, 'side_share': 0.2, 'other_side_share': 0.0}
    """
    if not 0 < worst <= 1:
        raise ValueError(f"`worst` must be in (0, 1]; got {worst!r}.")
    missing = {"size", "sample_share", "mass_share", "side"} - set(gaps.columns)
    if missing or gaps.empty:
        raise ValueError(f"`gaps` must be a non-empty region_gaps table; got columns "
                         f"{list(gaps.columns)} and {len(gaps)} rows.")
    top = gaps.nlargest(max(1, int(np.ceil(worst * len(gaps) - 1e-9))), "mass_share", keep="first")
    share = gaps["sample_share"]
    return {"worst_mass_share": float(top["mass_share"].sum()),
            "worst_sample_share": float(top["sample_share"].sum()),
            "side_share": float(share[gaps["side"] == 1].sum()),
            "other_side_share": float(share[gaps["side"] == -1].sum())}


def miscalibration_regions(families: Sequence[str] = ("ce", "ls0.1"), dataset: str = FASHION, *,
                           worst: float = WORST_REGIONS, random_state: int = 0,
                           cache: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`region_gaps` and :func:`concentration` of every checkpoint of ``families`` (test).

    ``random_state`` and ``cache`` are :func:`region_gaps`'; ``worst`` is :func:`concentration`'s.

    Returns
    -------
    regions : pandas.DataFrame
        The :func:`region_gaps` rows of every checkpoint, preceded by ``family``, ``name`` and
        ``seed``, with ``rank`` (0 = the largest share of the model's mass) and ``worst`` (True for
        the model's worst ``ceil(worst · n_regions)`` regions).
    summary : pandas.DataFrame
        One row per checkpoint: ``family``, ``name``, ``seed``, ``gap`` (overall), ``direction``,
        ``n_regions`` and the keys of :func:`concentration`.
    """
    parts, rows = [], []
    for family in families:
        for name in members(family, dataset):
            p = zoo.predictions(name, "test", with_images=False)
            gaps = region_gaps(p, random_state=random_state, cache=cache)
            seed = zoo.entry(name)["seed"]
            n_worst = max(1, int(np.ceil(worst * len(gaps) - 1e-9)))
            part = gaps.assign(rank=np.arange(len(gaps)), worst=np.arange(len(gaps)) < n_worst)
            for col, value in (("seed", seed), ("name", name), ("family", family)):
                part.insert(0, col, value)
            parts.append(part)
            rows.append({"family": family, "name": name, "seed": seed, "gap": gaps.attrs["gap"],
                         "direction": gaps.attrs["direction"], "n_regions": len(gaps),
                         **concentration(gaps, worst=worst)})
    return pd.concat(parts, ignore_index=True), pd.DataFrame(rows)


def where_it_lives(regions: pd.DataFrame, *, top: int = 3, digits: int = 3) -> pd.DataFrame:
    """The classes that name each family's worst regions, and how often, over its seeds.

    Parameters
    ----------
    regions : pandas.DataFrame
        The first table of :func:`miscalibration_regions`.
    top : int, default 3
        Names kept per family, the most frequent first.

    Returns
    -------
    pandas.DataFrame
        One row per family and name: ``family``, ``classes``, ``seeds`` (how many of the family's
        seeds have a worst region of that name, of ``n``), ``n``, then over those regions
        ``gap`` and ``mass_share`` (each region's share of its model's mass) as mean ± sd, and
        ``sample_share`` (mean).

    Examples
    --------
    >>> r = pd.DataFrame({"family": "ce", "seed": [0, 1, 1], "worst": [True, True, False],
    ...                   "classes": ["Shirt", "Shirt", "Bag"], "gap": [0.1, 0.2, 0.0],
    ...                   "mass_share": [0.5, 0.7, 0.0], "sample_share": [0.1, 0.1, 0.9]})
    >>> where_it_lives(r).to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
    [{'family': 'ce', 'classes': 'Shirt', 'seeds': 2, 'n': 2, 'gap': '0.150 ± 0.071',
      'mass_share': '0.600 ± 0.141', 'sample_share': 0.1}]
    """
    rows = []
    for family, part in regions.groupby("family", sort=False):
        named = [(classes, g) for classes, g in part[part["worst"]].groupby("classes", sort=False)]
        # the names found on the most seeds first; among those, the most mass
        named.sort(key=lambda item: (-item[1]["seed"].nunique(), -item[1]["mass_share"].sum()))
        for classes, g in named[:top]:
            rows.append({"family": family, "classes": classes, "seeds": int(g["seed"].nunique()),
                         "n": int(part["seed"].nunique()), "gap": mean_sd(g["gap"], digits),
                         "mass_share": mean_sd(g["mass_share"], digits),
                         "sample_share": float(g["sample_share"].mean())})
    return pd.DataFrame(rows)


def mass_by_class(regions: pd.DataFrame, *, digits: int = 3) -> pd.DataFrame:
    """Each family's miscalibration mass by the majority true class of its regions.

    For every checkpoint, the mass shares of its regions (:func:`region_gaps`) are summed by the
    regions' majority class (0 for a class that is the majority of none); the table gives the
    mean ± sd over the family's seeds, and the mean share of the samples in those regions.

    Parameters
    ----------
    regions : pandas.DataFrame
        The first table of :func:`miscalibration_regions`.

    Returns
    -------
    pandas.DataFrame
        One row per class: ``class``, then per family ``"<label> mass"`` (mean ± sd) and
        ``"<label> samples"`` (mean), the first family's largest mass first.

    Examples
    --------
    >>> r = pd.DataFrame({"family": "ce", "seed": [0, 0, 1], "majority": ["Shirt", "Bag", "Shirt"],
    ...                   "mass_share": [0.8, 0.2, 1.0], "sample_share": [0.5, 0.5, 1.0]})
    >>> mass_by_class(r).to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
    [{'class': 'Shirt', 'CE mass': '0.900 ± 0.141', 'CE samples': 0.75},
     {'class': 'Bag', 'CE mass': '0.100 ± 0.141', 'CE samples': 0.25}]
    """
    classes = list(dict.fromkeys(regions["majority"]))
    out = pd.DataFrame({"class": classes})
    order = None
    for family, part in regions.groupby("family", sort=False):
        label = FAMILY_LABELS.get(family, family)
        sums = (part.groupby(["seed", "majority"])[["mass_share", "sample_share"]].sum()
                .unstack("majority", fill_value=0.0))
        mass = sums["mass_share"].reindex(columns=classes, fill_value=0.0)
        out[f"{label} mass"] = [mean_sd(mass[c], digits) for c in classes]
        out[f"{label} samples"] = sums["sample_share"].reindex(columns=classes, fill_value=0.0).mean().to_numpy()
        if order is None:
            order = np.argsort(-mass.mean().to_numpy(), kind="stable")
    return out.iloc[order if order is not None else slice(None)].reset_index(drop=True)


#: The :func:`concentration` keys :func:`concentration_effects` compares, with their names.
CONCENTRATION_MEASURES: tuple[tuple[str, str], ...] = (
    ("worst_mass_share", "share of the mass in the worst 10% of regions"),
    ("worst_sample_share", "share of the samples in those regions"),
    ("side_share", "share of samples in regions miscalibrated the model's way (95% interval)"),
    ("other_side_share", "share of samples in regions miscalibrated the other way (95% interval)"),
)


def concentration_effects(summary: pd.DataFrame, *, treated: str = "ce", baseline: str = "ls0.1",
                          digits: int = 4) -> pd.DataFrame:
    """``treated − baseline`` for every concentration measure, paired by seed, with a 95% t interval.

    The effect and its interval are :func:`~labviz.studies.verdicts.paired_effect`'s (Student's
    t on the mean of the per-seed differences), printed as measurements, not verdicts.

    Parameters
    ----------
    summary : pandas.DataFrame
        The second table of :func:`miscalibration_regions`.
    treated, baseline : str
        Families of ``summary``.

    Returns
    -------
    pandas.DataFrame
        One row per measure of :data:`CONCENTRATION_MEASURES`: ``measure``, the two families'
        values as mean ± sd (columns named by :data:`FAMILY_LABELS`), ``n`` (paired seeds),
        ``effect`` (mean difference), ``low`` and ``high``.
    """
    from labviz.studies._common import by_seed
    from labviz.studies.verdicts import paired_effect

    for family, arg in ((treated, "treated"), (baseline, "baseline")):
        if family not in set(summary["family"]):
            raise ValueError(f"`{arg}` must be a family of `summary`, one of "
                             f"{sorted(set(summary['family']))}; got {family!r}.")
    rows = []
    for key, text in CONCENTRATION_MEASURES:
        t, b = by_seed(summary, key, family=treated), by_seed(summary, key, family=baseline)
        e = paired_effect("", b, t, paper_says="higher", measure=key, paper="")
        rows.append({"measure": text, FAMILY_LABELS.get(treated, treated): mean_sd(list(t.values()), digits),
                     FAMILY_LABELS.get(baseline, baseline): mean_sd(list(b.values()), digits),
                     "n": len(e.seeds), "effect": e.mean, "low": e.low, "high": e.high})
    out = pd.DataFrame(rows)
    out.attrs["note"] = (f"effect: {FAMILY_LABELS.get(treated, treated)} − "
                         f"{FAMILY_LABELS.get(baseline, baseline)}, paired by seed; low, high: its "
                         "95% Student t interval over the n seeds.")
    return out
