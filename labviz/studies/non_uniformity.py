"""Label non-uniformity: samples whose softmax is near uniform are harder (notebook 07)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from labviz import zoo
from labviz.studies._common import FAMILY_LABELS, FASHION, mean_sd, members


def non_uniformity_deciles(families: Sequence[str], dataset: str = FASHION,
                           split: Literal["train", "val", "test"] = "test", *,
                           n_bins: int = 10) -> pd.DataFrame:
    """Accuracy by decile of the non-uniformity score, for every checkpoint of ``families``.

    The score is :func:`labviz.compute.label_quality.non_uniformity` of the softmax (a normalised
    Wasserstein distance to the uniform distribution); bins come from
    :func:`labviz.compute.label_quality.accuracy_by_decile` (bin 1 = least non-uniform).

    Returns
    -------
    pandas.DataFrame
        One row per (checkpoint, bin): ``family``, ``name``, ``seed``, then the columns of
        :func:`~labviz.compute.label_quality.accuracy_by_decile`.
    """
    from labviz.compute.label_quality import accuracy_by_decile, non_uniformity

    parts = []
    for family in families:
        for name in members(family, dataset):
            p = zoo.predictions(name, split, with_images=False)
            part = accuracy_by_decile(non_uniformity(p.probs), p.correct, n_bins=n_bins)
            part.insert(0, "seed", zoo.entry(name)["seed"])
            part.insert(0, "name", name)
            part.insert(0, "family", family)
            parts.append(part)
    return pd.concat(parts, ignore_index=True)


def decile_trend(deciles: pd.DataFrame) -> pd.DataFrame:
    """Per checkpoint: accuracy in the lowest and highest score bins and their rank correlation.

    Parameters
    ----------
    deciles : pandas.DataFrame
        From :func:`non_uniformity_deciles` (columns ``family``, ``name``, ``seed``, ``bin``,
        ``accuracy``, ``n``).

    Returns
    -------
    pandas.DataFrame
        One row per checkpoint: ``family``, ``name``, ``seed``, ``accuracy_lowest``,
        ``accuracy_highest``, ``error_share_lowest`` (the lowest bin's share of all the
        checkpoint's errors; 1 / n_bins if errors were spread evenly) and ``spearman``
        (Spearman's ρ between bin number and accuracy; 1 = accuracy rises with every bin).

    Examples
    --------
    Errors per bin: 5, 3 and 2 of 10 samples each, so the lowest bin holds half of them.

    >>> d = pd.DataFrame({"family": "ce", "name": "m", "seed": 0, "bin": [1, 2, 3],
    ...                   "accuracy": [0.5, 0.7, 0.8], "n": 10})
    >>> t = decile_trend(d)
    >>> t[["accuracy_lowest", "accuracy_highest", "error_share_lowest", "spearman"]].values.round(6).tolist()
    [[0.5, 0.8, 0.5, 1.0]]
    """
    from scipy.stats import spearmanr

    rows = []
    for (family, name, seed), part in deciles.groupby(["family", "name", "seed"], sort=False):
        part = part.sort_values("bin")
        rho = spearmanr(part["bin"], part["accuracy"]).statistic
        errors = (1 - part["accuracy"]) * part["n"]
        rows.append({"family": family, "name": name, "seed": seed,
                     "accuracy_lowest": float(part["accuracy"].iloc[0]),
                     "accuracy_highest": float(part["accuracy"].iloc[-1]),
                     "error_share_lowest": float(errors.iloc[0] / errors.sum()) if errors.sum() else np.nan,
                     "spearman": float(rho)})
    return pd.DataFrame(rows)


def decile_summary(deciles: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """One row per bin; per family the mean score and the accuracy, ``"mean ± sd"`` over seeds."""
    out = pd.DataFrame({"decile": sorted(deciles["bin"].unique())})
    for family, part in deciles.groupby("family", sort=False):
        label = FAMILY_LABELS.get(family, family)
        by_bin = part.groupby("bin")
        out[f"{label} score"] = out["decile"].map(by_bin["score_mean"].agg(lambda s: mean_sd(s, digits)))
        out[f"{label} accuracy"] = out["decile"].map(by_bin["accuracy"].agg(lambda s: mean_sd(s, digits)))
    return out


def score_agreement(families: Sequence[str], dataset: str = FASHION,
                    split: Literal["train", "val", "test"] = "test") -> pd.DataFrame:
    """Spearman's ρ between the non-uniformity score and the top-1 confidence, per checkpoint.

    Near 1 means that, as a ranking of samples, non-uniformity says little that the confidence
    does not.

    Returns
    -------
    pandas.DataFrame
        One row per checkpoint: ``family``, ``name``, ``seed``, ``spearman``.
    """
    from scipy.stats import spearmanr

    from labviz.compute.label_quality import non_uniformity

    rows = []
    for family in families:
        for name in members(family, dataset):
            p = zoo.predictions(name, split, with_images=False)
            rho = spearmanr(non_uniformity(p.probs), p.confidence).statistic
            rows.append({"family": family, "name": name, "seed": zoo.entry(name)["seed"],
                         "spearman": float(rho)})
    return pd.DataFrame(rows)
