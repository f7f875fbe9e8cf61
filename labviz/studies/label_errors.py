"""Confident learning on a real test set (Northcutt et al. 2021; notebook 05), and a second,
independent signal beside it: labels that disagree with their neighbours' in feature space."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from labviz.core import _validation as v
from labviz.core._bootstrap import BLOCK, chunk_counts, percentile_interval
from labviz.core.predictions import Predictions


def mean_probs_predictions(predictions: Sequence[Predictions], *, name: str = "") -> Predictions:
    """One Predictions whose probabilities are the mean of several models' on the same samples.

    The logits are :math:`\\log \\bar p` (clipped at the smallest positive float), so
    ``softmax(logits)`` gives back the averaged probabilities :math:`\\bar p`. Labels, ids, class
    names and images come from the first; features and templates are dropped (they differ per model).

    Parameters
    ----------
    predictions : sequence of Predictions
        At least one, all on the same samples (same ids and labels, in the same order).
    name : str
        Defaults to ``"mean of <names>"``.

    Returns
    -------
    Predictions

    Examples
    --------
    >>> a = Predictions.from_arrays(y_true=[0, 1], logits=np.log([[0.8, 0.2], [0.4, 0.6]]))
    >>> b = Predictions.from_arrays(y_true=[0, 1], logits=np.log([[0.6, 0.4], [0.2, 0.8]]))
    >>> mean_probs_predictions([a, b]).probs.round(6).tolist()
    [[0.7, 0.3], [0.3, 0.7]]
    """
    preds = list(predictions)
    if not preds or not all(isinstance(p, Predictions) for p in preds):
        raise TypeError("`predictions` must be a non-empty sequence of Predictions; got "
                        f"{[type(p).__name__ for p in preds]}.")
    first = preds[0]
    for p in preds[1:]:
        if not (np.array_equal(p.ids, first.ids) and np.array_equal(p.y_given, first.y_given)
                and p.n_classes == first.n_classes):
            raise ValueError(f"`predictions` must all hold the same samples and labels; {p.name!r} "
                             f"differs from {first.name!r}.")
    mean = np.mean([p.probs for p in preds], axis=0)
    return Predictions.from_arrays(
        y_true=first.y_true, y_given=first.y_given, ids=first.ids,
        logits=np.log(np.clip(mean, np.finfo(np.float64).tiny, None)),
        class_names=first.class_names, images=first.images,
        name=name or "mean of " + ", ".join(p.name for p in preds))


def flagged_rate_table(errors: Mapping[str, pd.DataFrame], n_samples: int, *,
                       reference: str | None = None) -> pd.DataFrame:
    """How many samples confident learning flags, per source of probabilities.

    Parameters
    ----------
    errors : mapping of str to pandas.DataFrame
        Source name -> :func:`labviz.compute.label_quality.find_label_errors` output (needs column ``id``).
    n_samples : int
        Size of the set that was screened.
    reference : str, optional
        A key of ``errors``; adds ``share_in_reference``, the share of each source's flags that
        the reference flags too (how stable the candidates are across models).

    Returns
    -------
    pandas.DataFrame
        One row per source, in mapping order: ``probabilities``, ``n_samples``, ``n_flagged``,
        ``rate`` (= n_flagged / n_samples) and, with a reference, ``share_in_reference``.

    Examples
    --------
    >>> e = {"a": pd.DataFrame({"id": [1, 2]}), "b": pd.DataFrame({"id": [2]})}
    >>> t = flagged_rate_table(e, 100, reference="b")
    >>> t[["n_flagged", "rate", "share_in_reference"]].values.tolist()
    [[2.0, 0.02, 0.5], [1.0, 0.01, 1.0]]
    """
    n_samples = v.check_int(n_samples, "n_samples", minimum=1)
    if not isinstance(errors, Mapping) or not errors:
        raise TypeError(f"`errors` must be a non-empty mapping of name to DataFrame; got "
                        f"{type(errors).__name__}.")
    if reference is not None and reference not in errors:
        raise ValueError(f"`reference` must be a key of `errors` {list(errors)}; got {reference!r}.")
    ref_ids = set(errors[reference]["id"]) if reference is not None else None
    rows = []
    for source, table in errors.items():
        ids = set(table["id"])
        row = {"probabilities": source, "n_samples": n_samples, "n_flagged": len(ids),
               "rate": len(ids) / n_samples}
        if ref_ids is not None:
            row["share_in_reference"] = len(ids & ref_ids) / len(ids) if ids else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def named_classes(table: pd.DataFrame, class_names: Sequence[str],
                  columns: Sequence[str] = ("given", "predicted")) -> pd.DataFrame:
    """A copy of ``table`` with class-index ``columns`` replaced by class names.

    >>> named_classes(pd.DataFrame({"given": [1], "predicted": [0]}), ["cat", "dog"]).values.tolist()
    [['dog', 'cat']]
    """
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"`table` must have columns {list(columns)}; missing {missing}.")
    names = np.asarray(class_names, dtype=object)
    out = table.copy()
    for c in columns:
        out[c] = names[out[c].to_numpy(dtype=np.int64)]
    return out


def within_group_share(errors: pd.DataFrame, classes: Sequence[int]) -> float:
    """Share of flagged samples whose given *and* predicted class both lie in ``classes``.

    >>> within_group_share(pd.DataFrame({"given": [0, 0, 1], "predicted": [2, 1, 3]}), [0, 2])
    0.3333333333333333
    """
    if not {"given", "predicted"} <= set(errors.columns):
        raise ValueError(f"`errors` must have columns ['given', 'predicted']; got {list(errors.columns)}.")
    if len(errors) == 0:
        return float("nan")
    group = np.asarray(list(classes))
    given, predicted = errors["given"].to_numpy(), errors["predicted"].to_numpy()
    inside = np.isin(given, group) & np.isin(predicted, group)
    return float(inside.mean())


def _top_weights(scores: NDArray[np.float64], n_top: int) -> NDArray[np.float64]:
    """Each sample's share of a place among the ``n_top`` highest ``scores``: 1 above the cut, 0
    below it, and the places left at the cut shared evenly by the samples tied there (what a
    random tie break flags on average). Sums to ``n_top``."""
    if n_top == 0:
        return np.zeros(len(scores))
    cut = np.partition(scores, len(scores) - n_top)[len(scores) - n_top]
    above, tied = scores > cut, scores == cut
    weights = above.astype(np.float64)
    weights[tied] = (n_top - int(above.sum())) / int(tied.sum())
    return weights


def neighbour_overlap(
    disagreement: ArrayLike,
    candidates: ArrayLike,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, float]:
    """How many of confident learning's candidates the neighbours' disagreement flags too.

    The disagreement ranking flags as many samples as there are candidates, highest
    disagreement first; samples tied at the cut share the places left evenly (each counts
    ``places / tied``: the overlap a random tie break gives on average, so the result does not
    depend on the samples' order). Then

    * ``share``: the flagged weight among the candidates over the number of candidates, the share
      of the candidates the ranking also flags;
    * ``chance``: the flagged weight over all samples, the share a ranking blind to the labels
      would flag of any set (the flagged rate, ``n_candidates / n_samples`` on the full set);
    * ``lift = share / chance``: how many times more often than chance.

    The intervals are percentile bootstraps over the samples (``n_boot`` resamples drawn with
    replacement, seeded), both lists held fixed: they say how much the numbers move with which
    samples are drawn, not how much another model, another ``k`` or rerunning confident learning
    would move them. Resamples that draw no candidate are left out (their share is undefined).

    Parameters
    ----------
    disagreement : array-like of shape (n_samples,)
        Finite scores, higher = more suspect, e.g.
        :func:`labviz.compute.neighbours.label_disagreement`.
    candidates : array-like of bool, shape (n_samples,)
        True for confident learning's candidates (e.g. ``np.isin(ids, errors["id"])`` of
        :func:`labviz.compute.label_quality.find_label_errors`); at least one, not all.
    n_boot : int, default 1000
    seed : int, default 0
    confidence : float, default 0.95
        In (0, 1).

    Returns
    -------
    dict of str to float
        ``n_samples``, ``n_candidates``, ``share``, ``share_low``, ``share_high``, ``chance``,
        ``lift``, ``lift_low``, ``lift_high``.

    Examples
    --------
    >>> d = np.array([1.0, 0.9, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    >>> c = np.array([True, False, True, False, False, False, False, False, False, False])
    >>> o = neighbour_overlap(d, c, n_boot=200)
    >>> o["share"], o["chance"], o["lift"]
    (0.5, 0.2, 2.5)
    """
    scores = v.check_finite_float(disagreement, "disagreement", ndim=1)
    cand = v.as_array(candidates, "candidates")
    if cand.dtype != bool or cand.ndim != 1:
        raise TypeError(f"`candidates` must be a boolean mask of shape (n_samples,); got "
                        f"{v.describe(cand)}.")
    n = v.check_same_length(disagreement=scores, candidates=cand)
    n_cand = int(cand.sum())
    if not 0 < n_cand < n:
        raise ValueError(f"`candidates` must flag at least one sample and not all {n}; got "
                         f"{n_cand}.")
    n_boot = v.check_int(n_boot, "n_boot", minimum=2)
    seed = v.check_int(seed, "seed", minimum=0)
    confidence = v.check_float(confidence, "confidence")
    if not 0 < confidence < 1:
        raise ValueError(f"`confidence` must be in (0, 1); got {confidence}.")

    weights = _top_weights(scores, n_cand)
    # The samples neither flagged nor candidates add nothing to any sum, and the draws are
    # exchangeable: the first chunks' counts stand for these samples' and the rest go undrawn.
    relevant = np.flatnonzero(cand | (weights > 0))
    # per sample: flagged weight if a candidate, is a candidate, flagged weight
    columns = np.stack([weights * cand, cand.astype(np.float64), weights], axis=1)[relevant]
    sums = np.zeros((n_boot, 3))
    rng = np.random.default_rng(seed)
    step = max(1, min(len(relevant), BLOCK // n_boot))
    for rows, counts in chunk_counts(n, n_boot, step, rng):
        if rows.start >= len(relevant):
            break
        block = columns[rows]
        sums += counts[:, :len(block)] @ block
    drawn = sums[:, 1] > 0
    share_r = sums[drawn, 0] / sums[drawn, 1]
    chance_r = sums[drawn, 2] / n
    lift_r = np.divide(share_r, chance_r, out=np.full_like(share_r, np.nan), where=chance_r > 0)
    share = float(weights[cand].sum() / n_cand)
    chance = n_cand / n
    share_low, share_high = percentile_interval(share_r, confidence)
    lift_low, lift_high = percentile_interval(lift_r[np.isfinite(lift_r)], confidence)
    return {"n_samples": float(n), "n_candidates": float(n_cand), "share": share,
            "share_low": share_low, "share_high": share_high, "chance": chance,
            "lift": share / chance, "lift_low": lift_low, "lift_high": lift_high}


def top_disagreement(
    disagreement: ArrayLike,
    y_given: ArrayLike,
    neighbour_labels: ArrayLike,
    *,
    exclude: ArrayLike | None = None,
    n: int = 32,
) -> pd.DataFrame:
    """The ``n`` samples whose neighbours disagree most with their label, and what the
    neighbours say instead, in the columns :func:`~labviz.figures.label_quality.label_error_gallery_figure`
    reads.

    Parameters
    ----------
    disagreement : array-like of shape (n_samples,)
        Higher = more suspect (:func:`labviz.compute.neighbours.label_disagreement`).
    y_given : array-like of int, shape (n_samples,)
    neighbour_labels : array-like of int, shape (n_samples, k)
        Each sample's neighbours' given labels, e.g. ``y_given[index.indices[:, :k]]``; only the
        rows returned are read.
    exclude : array-like of bool, shape (n_samples,), optional
        Samples to leave out (e.g. confident learning's candidates, to see what only the
        neighbours find).
    n : int, default 32

    Returns
    -------
    pandas.DataFrame
        At most ``n`` rows, highest disagreement first (ties in sample order): ``index``
        (position), ``given``, ``predicted`` (the neighbours' most common label, the lowest class
        on a tie) and ``disagreement``.

    Examples
    --------
    >>> t = top_disagreement([0.0, 1.0, 0.5], [0, 1, 1], [[0, 0], [0, 0], [1, 2]], n=2)
    >>> t.values.tolist()
    [[1.0, 1.0, 0.0, 1.0], [2.0, 1.0, 1.0, 0.5]]
    """
    scores = v.check_finite_float(disagreement, "disagreement", ndim=1)
    y = v.as_array(y_given, "y_given")
    labels = v.as_array(neighbour_labels, "neighbour_labels")
    if labels.ndim != 2 or labels.dtype.kind not in "iu" or y.dtype.kind not in "iu":
        raise TypeError(f"`y_given` must be integer labels of shape (n_samples,) and "
                        f"`neighbour_labels` of shape (n_samples, k); got {v.describe(y)} and "
                        f"{v.describe(labels)}.")
    v.check_same_length(disagreement=scores, y_given=y, neighbour_labels=labels)
    n = v.check_int(n, "n", minimum=1)
    keep = np.ones(len(scores), dtype=bool)
    if exclude is not None:
        ex = v.as_array(exclude, "exclude")
        if ex.dtype != bool or ex.shape != scores.shape:
            raise TypeError(f"`exclude` must be a boolean mask of shape {scores.shape}; got "
                            f"{v.describe(ex)}.")
        keep = ~ex
    pos = np.flatnonzero(keep)
    rows = pos[np.argsort(-scores[pos], kind="stable")[:n]]
    n_classes = int(max(labels[rows].max(initial=0), y.max())) + 1
    majority = [int(np.bincount(labels[r], minlength=n_classes).argmax()) for r in rows]
    return pd.DataFrame({"index": rows.astype(np.int64), "given": y[rows].astype(np.int64),
                         "predicted": np.asarray(majority, dtype=np.int64),
                         "disagreement": scores[rows]})
