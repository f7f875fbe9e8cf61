"""ECE's brittleness to binning, and label smoothing against temperature scaling (notebook 03)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from labviz import zoo
from labviz.studies._common import FAMILY_LABELS, FASHION, mean_sd, members
from labviz.studies.label_smoothing import calibration_table, confidence_gap_table

if TYPE_CHECKING:
    from labviz.compute.calibration import Norm, Strategy

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

    curve = reliability_curve(y_true, probs, n_bins=n_bins, strategy=strategy)
    filled = curve.count > 0
    gap, count = curve.gap[filled], curve.count[filled]
    overall = np.sign(np.sum(gap * count))
    return float(count[gap * overall >= 0].sum() / count.sum())


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
    from labviz.compute.calibration import expected_calibration_error, fit_temperature
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
        for n, subsets in draws.items():
            for k, idx in enumerate(subsets):
                values = [expected_calibration_error(y[idx], probs[idx], n_bins=b, strategy=s)
                          for s, b in ECE_BINNINGS]
                ref = expected_calibration_error(y[idx], probs[idx], n_bins=15)
                rows.append({"family": family, "name": name, "seed": zoo.entry(name)["seed"],
                             "size": n, "draw": k, "ece": ref, "range": max(values) - min(values),
                             "relative_range": (max(values) - min(values)) / ref if ref else np.nan,
                             "same_side": same_side_share(y[idx], probs[idx])})
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
