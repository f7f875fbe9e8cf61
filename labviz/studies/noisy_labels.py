"""Early learning, then memorisation of noisy labels; a beta mixture on the loss (notebook 04)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd

from labviz import zoo
from labviz.core.predictions import Predictions


def snapshot_predictions(run: str, split: Literal["train", "val", "test"] = "train") -> dict[int, Predictions]:
    """Epoch -> Predictions of every snapshot of a run (the final model included)."""
    return {e["epoch"]: zoo.predictions(e["name"], split, with_images=False)
            for e in zoo.snapshots(run)}


def early_learning_table(run: str) -> pd.DataFrame:
    """:func:`labviz.compute.label_quality.memorization_table` of a run's snapshots, plus test accuracy."""
    from labviz.compute.label_quality import memorization_table

    table = memorization_table(snapshot_predictions(run, "train"))
    acc = {e["epoch"]: e["test_accuracy"] for e in zoo.snapshots(run)}
    table["test_accuracy"] = table.epoch.map(acc)
    return table


def _snapshot_items(snapshots: Mapping[int, Predictions]) -> list[tuple[int, Predictions]]:
    """(epoch, Predictions) pairs in epoch order, checked."""
    if not isinstance(snapshots, Mapping) or not snapshots:
        raise TypeError("`snapshots` must be a non-empty mapping of epoch to Predictions; "
                        f"got {type(snapshots).__name__}.")
    for epoch, p in snapshots.items():
        if not isinstance(p, Predictions):
            raise TypeError(f"`snapshots[{epoch}]` must be a Predictions; got {type(p).__name__}.")
    return sorted(snapshots.items())


def beta_mixture_table(snapshots: Mapping[int, Predictions], *,
                       percentiles: tuple[float, float] = (5.0, 95.0)) -> pd.DataFrame:
    """Per epoch: a two-beta mixture on the per-sample loss, and how well it finds flipped labels.

    For each snapshot the loss against the *given* labels is
    :func:`labviz.compute.label_quality.per_sample_loss`, the mixture is
    :func:`labviz.compute.label_quality.fit_beta_mixture` (Arazo et al. 2019), and its posterior of the
    noisy component is scored against the known flips with the ROC AUC (1 = perfect ranking,
    0.5 = chance). The loss itself is scored too: any detector monotone in the loss has that AUC.

    Parameters
    ----------
    snapshots : mapping of int to Predictions
        Epoch -> training-split predictions of a noisy-label run (both flipped and clean labels).
    percentiles : (float, float)
        Passed to :func:`~labviz.compute.label_quality.fit_beta_mixture`; (5, 95) as Arazo et al.

    Returns
    -------
    pandas.DataFrame
        One row per epoch, in order: ``epoch``, ``n_flipped``, ``noisy_weight`` (the noisy
        component's mixing proportion), ``flagged_share`` (share with posterior > 0.5),
        ``auc_posterior`` and ``auc_loss``.
    """
    from sklearn.metrics import roc_auc_score

    from labviz.compute.label_quality import fit_beta_mixture, per_sample_loss

    rows = []
    for epoch, p in _snapshot_items(snapshots):
        flipped = p.flipped
        if flipped.all() or not flipped.any():
            raise ValueError(f"`snapshots[{epoch}]` must hold both flipped and clean labels; got "
                             f"{int(flipped.sum())} flipped of {p.n_samples}.")
        losses = per_sample_loss(p.y_given, p.probs)
        mixture = fit_beta_mixture(losses, percentiles=percentiles)
        posterior = mixture.posterior_noisy(losses)  # noisy_posterior's steps, keeping the mixture
        rows.append({"epoch": int(epoch), "n_flipped": int(flipped.sum()),
                     "noisy_weight": float(mixture.weights[1]),
                     "flagged_share": float(np.mean(posterior > 0.5)),
                     "auc_posterior": float(roc_auc_score(flipped, posterior)),
                     "auc_loss": float(roc_auc_score(flipped, losses))})
    return pd.DataFrame(rows)


def flipped_drift_table(snapshots: Mapping[int, Predictions]) -> pd.DataFrame:
    """Per epoch: which class centroid the flipped samples' features sit nearest to.

    Centroids are the mean penultimate features of the *clean* samples of each class (their given
    label is their true one). A flipped sample drifting from its true class toward its given class
    shows as ``nearest_is_given`` rising and ``nearest_is_true`` falling.

    Parameters
    ----------
    snapshots : mapping of int to Predictions
        Epoch -> training-split predictions with features, every class among the clean samples.

    Returns
    -------
    pandas.DataFrame
        One row per epoch, in order: ``epoch``, ``nearest_is_true``, ``nearest_is_given`` (shares
        of flipped samples whose nearest centroid, in Euclidean distance, is that class).

    Examples
    --------
    >>> p = Predictions.from_arrays(y_true=[0, 1, 0], y_given=[0, 1, 1], logits=np.zeros((3, 2)),
    ...                             features=[[0.0, 0.0], [4.0, 0.0], [3.0, 0.0]])
    >>> flipped_drift_table({5: p}).to_dict("records")
    [{'epoch': 5, 'nearest_is_true': 0.0, 'nearest_is_given': 1.0}]
    """
    rows = []
    for epoch, p in _snapshot_items(snapshots):
        if p.features is None:
            raise ValueError(f"`snapshots[{epoch}]` must be a Predictions with features.")
        flipped = p.flipped
        clean_y, feats = p.y_true[~flipped], p.features.astype(np.float64)
        if not flipped.any() or len(np.unique(clean_y)) < p.n_classes:
            raise ValueError(f"`snapshots[{epoch}]` must hold flipped samples and clean samples of "
                             f"every class; got {int(flipped.sum())} flipped.")
        centroids = np.stack([feats[~flipped][clean_y == k].mean(axis=0) for k in range(p.n_classes)])
        dist = ((feats[flipped][:, None, :] - centroids[None]) ** 2).sum(axis=2)
        nearest = dist.argmin(axis=1)
        rows.append({"epoch": int(epoch),
                     "nearest_is_true": float(np.mean(nearest == p.y_true[flipped])),
                     "nearest_is_given": float(np.mean(nearest == p.y_given[flipped]))})
    return pd.DataFrame(rows)


def noisy_posterior(predictions: Predictions, *,
                    percentiles: tuple[float, float] = (5.0, 95.0)) -> np.ndarray:
    """Per sample, the posterior of the noisy component of a two-beta mixture fitted to the loss
    against the given labels (as in :func:`beta_mixture_table`), shape (n_samples,)."""
    from labviz.compute.label_quality import fit_beta_mixture, per_sample_loss

    losses = per_sample_loss(predictions.y_given, predictions.probs)
    return fit_beta_mixture(losses, percentiles=percentiles).posterior_noisy(losses)


def rank_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of ``score`` for the boolean ``positive``, from ranks (ties count one half).

    >>> rank_auc(np.array([True, False, True, False]), np.array([0.9, 0.1, 0.4, 0.4]))
    0.875
    """
    from scipy.stats import rankdata

    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"`positive` must hold both classes; got {n_pos} positive and {n_neg} negative.")
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
