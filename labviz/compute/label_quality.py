"""Label-quality signals: per-sample loss, non-uniformity, a two-beta loss mixture, label errors.

Every score here flags *candidates* for a wrong label; none confirms one. Scores computed from the
model that was trained on the very labels under scrutiny are optimistic (it memorises flips);
:func:`find_label_errors` in particular needs out-of-sample probabilities (cross-validation or a
held-out model).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from labviz.core import _validation as v
from labviz.core.predictions import Predictions

__all__ = [
    "BetaMixture",
    "accuracy_by_decile",
    "find_label_errors",
    "find_label_errors_batched",
    "fit_beta_mixture",
    "label_error_pairs",
    "memorization_table",
    "non_uniformity",
    "per_sample_loss",
    "per_sample_loss_batched",
]

#: A source of probabilities a row chunk at a time: called, it returns ``(rows, probs)`` pairs
#: (a slice of the samples and their probabilities, shape (rows, n_classes)) covering every
#: sample in order, e.g. :meth:`labviz.core.predictions.Predictions.prob_chunks`.
ChunkSource = Callable[[], Iterable[tuple[slice, NDArray[np.floating]]]]

#: Probabilities are clipped at this before the log, so a zero probability gives a large finite loss.
TINY = np.finfo(np.float64).tiny

#: Normalised losses are kept in [EPS, 1 - EPS], where beta densities are finite (Arazo et al.).
EPS = 1e-4

#: EM stops when no beta-mixture parameter moves by more than this, relative to its value.
EM_TOL = 1e-6


def per_sample_loss(y: ArrayLike, probs: ArrayLike) -> NDArray[np.float64]:
    """Cross-entropy of each sample against its (given) label: :math:`-\\log \\max(p_{i, y_i}, tiny)`.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        The labels to score against, usually the given (possibly noisy) training labels.
    probs : array-like of shape (n_samples, n_classes)

    Returns
    -------
    ndarray of shape (n_samples,)
        Non-negative; at most :math:`-\\log(tiny) \\approx 708.4`.

    Examples
    --------
    >>> per_sample_loss([0, 1], [[0.5, 0.5], [1.0, 0.0]]).round(4).tolist()
    [0.6931, 708.3964]
    """
    labels, p = v.check_classification(y, probs, y_name="y")
    return -np.log(np.clip(p[np.arange(len(labels)), labels], TINY, None))


def per_sample_loss_batched(y: ArrayLike, prob_chunks: ChunkSource) -> NDArray[np.float64]:
    """:func:`per_sample_loss` from probabilities streamed a row chunk at a time.

    Equal to ``per_sample_loss(y, probs)`` to the bit on the same float64 probabilities, without
    holding them whole (10 GB at 1.28M x 1,000 in float64).

    Parameters
    ----------
    y : array-like of shape (n_samples,)
    prob_chunks : callable
        Called once; returns ``(rows, probs)`` pairs covering every sample in order (e.g.
        ``Predictions.prob_chunks``).

    Returns
    -------
    ndarray of shape (n_samples,)

    Examples
    --------
    >>> chunks = lambda: [(slice(0, 1), np.array([[0.5, 0.5]])), (slice(1, 2), np.array([[1.0, 0.0]]))]
    >>> per_sample_loss_batched([0, 1], chunks).round(4).tolist()
    [0.6931, 708.3964]
    """
    labels = v.check_labels(y, "y")
    out = np.empty(len(labels))
    seen = 0
    for rows, chunk in _checked_chunks(prob_chunks, len(labels)):
        own = labels[rows]
        if own.size and own.max() >= chunk.shape[1]:
            raise ValueError(f"`y` must be below the number of classes ({chunk.shape[1]}); got "
                             f"{int(own.max())}.")
        out[rows] = -np.log(np.clip(chunk[np.arange(len(own)), own].astype(np.float64), TINY, None))
        seen = rows.stop
    _check_covered(seen, len(labels))
    return out


def _checked_chunks(prob_chunks: ChunkSource, n: int
                    ) -> Iterable[tuple[slice, NDArray[np.floating]]]:
    """The chunks of ``prob_chunks()``, each checked to follow the previous one and to hold
    probabilities (:func:`labviz.core._validation.check_probs_top`, no float64 copy)."""
    if not callable(prob_chunks):
        raise TypeError(f"`prob_chunks` must be callable (e.g. Predictions.prob_chunks); got "
                        f"{type(prob_chunks).__name__}.")
    start = 0
    for rows, chunk in prob_chunks():
        if not isinstance(rows, slice) or rows.start != start or not start < rows.stop <= n:
            raise ValueError(f"`prob_chunks` must give consecutive row slices from {start} within "
                             f"{n} samples; got {rows!r}.")
        p = v.check_probs_top(chunk, "prob_chunks")[0]
        if len(p) != rows.stop - start:
            raise ValueError(f"`prob_chunks` must give {rows.stop - start} rows for {rows!r}; got "
                             f"{len(p)}.")
        start = rows.stop
        yield rows, p


def _check_covered(seen: int, n: int) -> None:
    if seen != n:
        raise ValueError(f"`prob_chunks` must cover all {n} samples; got {seen}.")


def non_uniformity(probs: ArrayLike) -> NDArray[np.float64]:
    """How far each softmax vector is from uniform: a normalised Wasserstein-1 distance.

    Classes have no order, so each probability vector is first sorted in decreasing order,
    :math:`p_{(1)} \\ge \\dots \\ge p_{(C)}`, and placed on the support :math:`1, \\dots, C`; the score
    is the W1 distance to the uniform distribution on that support, divided by its maximum
    :math:`(C-1)/2` (reached by a one-hot vector):

    .. math::

        \\mathrm{NU}(p) = \\frac{2}{C-1} \\sum_{j=1}^{C-1} \\Big(\\sum_{i \\le j} p_{(i)} - \\frac jC\\Big)
        = \\frac{2}{C-1} \\Big(\\frac{C+1}{2} - \\sum_{i=1}^{C} i\\, p_{(i)}\\Big).

    (The CDF of the sorted vector never falls below the uniform one, so no absolute value is
    needed.) 0 for the uniform vector, 1 for a one-hot vector, permutation-invariant. Unlike total
    variation it distinguishes "two classes tied" (0.5 for C = 3) from "spread over all".

    Parameters
    ----------
    probs : array-like of shape (n_samples, n_classes)

    Returns
    -------
    ndarray of shape (n_samples,)
        Values in [0, 1].

    Examples
    --------
    >>> non_uniformity([[1/3, 1/3, 1/3], [0.0, 1.0, 0.0], [0.5, 0.0, 0.5]]).round(12).tolist()
    [0.0, 1.0, 0.5]
    """
    p = v.check_probs(probs)
    c = p.shape[1]
    sorted_desc = -np.sort(-p, axis=1)
    expected_rank = sorted_desc @ np.arange(1, c + 1) / sorted_desc.sum(axis=1)
    return np.clip(((c + 1) / 2 - expected_rank) * 2 / (c - 1), 0.0, 1.0)


# ----- two-component beta mixture on losses (Arazo et al. 2019) -----------------------------------
@dataclass(frozen=True, eq=False)
class BetaMixture:
    """A two-component beta mixture fitted to per-sample losses by :func:`fit_beta_mixture`.

    Component 0 has the lower mean loss ("clean"), component 1 the higher ("noisy").

    Attributes
    ----------
    alpha, beta : ndarray of shape (2,)
        Beta shape parameters of each component, on the normalised loss scale.
    weights : ndarray of shape (2,)
        Mixing proportions, summing to 1.
    loss_min, loss_max : float
        The min-max normalisation: :math:`u = (\\ell - \\ell_{min}) / (\\ell_{max} - \\ell_{min})`,
        clipped to [EPS, 1 - EPS].
    """

    alpha: NDArray[np.float64]
    beta: NDArray[np.float64]
    weights: NDArray[np.float64]
    loss_min: float
    loss_max: float

    @property
    def means(self) -> NDArray[np.float64]:
        """Mean of each component on the normalised scale, :math:`\\alpha / (\\alpha + \\beta)`."""
        return self.alpha / (self.alpha + self.beta)

    def normalize(self, losses: ArrayLike) -> NDArray[np.float64]:
        """Losses mapped to the fitted (EPS, 1 - EPS) scale, shape (n_samples,)."""
        x = v.check_finite_float(losses, "losses", ndim=1)
        return _normalize(x, self.loss_min, self.loss_max)

    def pdf(self, losses: ArrayLike) -> NDArray[np.float64]:
        """Weighted density of each component on the *loss* scale, shape (n_samples, 2).

        :math:`w_k \\operatorname{Beta}(u; \\alpha_k, \\beta_k) / (\\ell_{max} - \\ell_{min})`; the two
        columns sum to the mixture density of the losses.
        """
        u = self.normalize(losses)
        return _weighted_pdf(u, self.alpha, self.beta, self.weights) / (self.loss_max - self.loss_min)

    def posterior_noisy(self, losses: ArrayLike) -> NDArray[np.float64]:
        """Posterior probability that each loss comes from the noisy component (1), shape (n_samples,)."""
        dens = _weighted_pdf(self.normalize(losses), self.alpha, self.beta, self.weights)
        total = dens.sum(axis=1)
        return np.divide(dens[:, 1], total, out=np.full(len(total), 0.5), where=total > 0)


def _normalize(x: NDArray[np.float64], lo: float, hi: float) -> NDArray[np.float64]:
    return np.clip((x - lo) / (hi - lo), EPS, 1 - EPS)


def _weighted_pdf(u: NDArray, alpha: NDArray, beta: NDArray, weights: NDArray) -> NDArray[np.float64]:
    from scipy import stats

    return weights * stats.beta.pdf(u[:, None], alpha, beta)


def _moments_to_beta(mean: NDArray, var: NDArray) -> tuple[NDArray, NDArray]:
    """Method of moments; a variance too large for a beta is capped so both shapes stay positive."""
    var = np.clip(var, 1e-12, mean * (1 - mean) * (1 - 1e-6))
    common = mean * (1 - mean) / var - 1
    return mean * common, (1 - mean) * common


def fit_beta_mixture(
    losses: ArrayLike, *, n_iter: int = 100, percentiles: tuple[float, float] = (0.0, 100.0)
) -> BetaMixture:
    """Fit a two-component beta mixture to per-sample losses by EM (Arazo et al. 2019).

    Losses are min-max normalised to [EPS, 1 - EPS]: :math:`u = (\\ell - \\ell_{min}) /
    (\\ell_{max} - \\ell_{min})`, clipped. Losses are heavy-tailed, so like Arazo et al. (who use
    ``percentiles=(5, 95)``) you can take :math:`\\ell_{min}, \\ell_{max}` as percentiles instead;
    the losses outside them are then left out of the fit (and clipped when scored). EM starts from Arazo et al.'s fixed
    initialisation, :math:`\\alpha = (1, 2)`, :math:`\\beta = (2, 1)`, equal weights (so the fit is
    deterministic), and alternates

    - E-step: responsibilities :math:`r_{ik} \\propto w_k \\operatorname{Beta}(u_i; \\alpha_k, \\beta_k)`,
    - M-step: weighted method of moments, with :math:`\\bar u_k = \\sum_i r_{ik} u_i / \\sum_i r_{ik}`,
      :math:`s_k^2 = \\sum_i r_{ik} (u_i - \\bar u_k)^2 / \\sum_i r_{ik}`,
      :math:`\\alpha_k = \\bar u_k (\\bar u_k (1 - \\bar u_k) / s_k^2 - 1)`,
      :math:`\\beta_k = \\alpha_k (1 - \\bar u_k) / \\bar u_k`, :math:`w_k = \\frac1n \\sum_i r_{ik}`,

    until no parameter moves by more than ``EM_TOL`` (relative) or ``n_iter`` iterations. Arazo et
    al. stop after 10 iterations, which can leave the weights far from converged. Components are
    then ordered by mean, so component 1 (higher loss) is "noisy". The posterior is plain Bayes; it
    is not forced to be monotone in the loss (a very flat clean component can win again at the
    extremes).

    Parameters
    ----------
    losses : array-like of shape (n_samples,)
        E.g. :func:`per_sample_loss` on the training labels; not all equal.
    n_iter : int
        Maximum number of EM iterations.
    percentiles : (float, float)
        Percentiles of ``losses`` taken as the normalisation's min and max; (0, 100) is plain
        min-max.

    Returns
    -------
    BetaMixture

    Examples
    --------
    >>> m = fit_beta_mixture([0.1, 0.2, 0.15, 0.12, 0.18, 2.0, 2.2, 2.1])
    >>> m.posterior_noisy([0.1, 2.1]).round(3).tolist()
    [0.0, 1.0]
    """
    x = v.check_finite_float(losses, "losses", ndim=1)
    n_iter = v.check_int(n_iter, "n_iter", minimum=1)
    p_lo, p_hi = _check_percentiles(percentiles)
    # Python floats: an overflowing difference becomes inf quietly, and is then refused here rather
    # than turning the percentiles' interpolation and the normalisation into NaN.
    span = float(x.max()) - float(x.min())
    if not np.isfinite(span):
        raise ValueError(f"`losses` must span a finite range (max - min within float64); got "
                         f"values in [{x.min():.4g}, {x.max():.4g}].")
    lo, hi = (float(q) for q in np.percentile(x, [p_lo, p_hi]))
    if hi <= lo:
        raise ValueError(f"`losses` must not all be equal (between the percentiles); got every value "
                         f"equal to {lo:.6g}.")
    u = _normalize(x[(x >= lo) & (x <= hi)], lo, hi)
    alpha, beta, weights = np.array([1.0, 2.0]), np.array([2.0, 1.0]), np.array([0.5, 0.5])
    for _ in range(n_iter):
        dens = _weighted_pdf(u, alpha, beta, weights)
        total = dens.sum(axis=1, keepdims=True)
        resp = np.divide(dens, total, out=np.full_like(dens, 0.5), where=total > 0)
        mass = resp.sum(axis=0) + 1e-12
        mean = np.clip(resp.T @ u / mass, EPS, 1 - EPS)  # an emptied component stays a valid beta
        var = np.sum(resp * (u[:, None] - mean) ** 2, axis=0) / mass
        new = (*_moments_to_beta(mean, var), mass / mass.sum())
        old = (alpha, beta, weights)
        moved = max(np.max(np.abs(a - b) / b) for a, b in zip(new, old, strict=True))
        alpha, beta, weights = new
        if moved < EM_TOL:
            break
    order = np.argsort(alpha / (alpha + beta), kind="stable")
    return BetaMixture(alpha=alpha[order], beta=beta[order], weights=weights[order],
                       loss_min=lo, loss_max=hi)


def _check_percentiles(percentiles: tuple[float, float]) -> tuple[float, float]:
    try:
        p_lo, p_hi = (float(p) for p in percentiles)
    except (TypeError, ValueError):
        raise TypeError(f"`percentiles` must be a pair of numbers; got {percentiles!r}.") from None
    if not 0 <= p_lo < p_hi <= 100:
        raise ValueError(f"`percentiles` must satisfy 0 <= low < high <= 100; got ({p_lo:g}, {p_hi:g}).")
    return p_lo, p_hi


# ----- label errors (cleanlab) --------------------------------------------------------------------
def find_label_errors(
    y_given: ArrayLike,
    probs: ArrayLike,
    *,
    ids: ArrayLike | None = None,
    filter_by: str = "prune_by_noise_rate",
) -> pd.DataFrame:
    """Likely label errors, ranked, with cleanlab's confident learning.

    Wraps ``cleanlab.filter.find_label_issues(labels, pred_probs,
    return_indices_ranked_by="self_confidence")``. A flagged sample is a *candidate* for a wrong
    label, not a confirmed one: look at it. ``probs`` must be **out-of-sample** (from
    cross-validation, or a model that never trained on these samples); in-sample probabilities of a
    model that memorised its labels hide the errors.

    Parameters
    ----------
    y_given : array-like of shape (n_samples,)
        The labels under scrutiny.
    probs : array-like of shape (n_samples, n_classes)
        Out-of-sample predicted probabilities.
    ids : array-like of shape (n_samples,), optional
        Sample ids reported in the ``id`` column; default ``0..n_samples-1``.
    filter_by : str
        cleanlab's ``filter_by`` ("prune_by_noise_rate", "prune_by_class", "both",
        "confident_learning", "predicted_neq_given", "low_normalized_margin", "low_self_confidence").

    Returns
    -------
    pandas.DataFrame
        One row per flagged sample, most likely error first: ``rank`` (1 = most likely), ``index``
        (position in the inputs), ``id``, ``given``, ``predicted`` (argmax of ``probs``) and
        ``self_confidence`` (:math:`p_{i, given_i}`).
    """
    v.check_option(filter_by, "filter_by", (
        "prune_by_noise_rate", "prune_by_class", "both", "confident_learning",
        "predicted_neq_given", "low_normalized_margin", "low_self_confidence",
    ))
    labels, p = v.check_classification(y_given, probs, y_name="y_given")
    if ids is None:
        id_arr = np.arange(len(labels), dtype=np.int64)
    else:
        id_arr = v.check_sample_ids(ids, "ids")
        v.check_same_length(y_given=labels, ids=id_arr)
    _check_every_class(labels, p.shape[1])
    from cleanlab.filter import find_label_issues

    idx = np.asarray(find_label_issues(labels, p, return_indices_ranked_by="self_confidence",
                                       filter_by=filter_by, n_jobs=1), dtype=np.int64)
    return pd.DataFrame({
        "rank": np.arange(1, len(idx) + 1, dtype=np.int64),
        "index": idx,
        "id": id_arr[idx],
        "given": labels[idx],
        "predicted": p[idx].argmax(axis=1).astype(np.int64),
        "self_confidence": p[idx, labels[idx]],
    })


def find_label_errors_batched(
    y_given: ArrayLike, prob_chunks: ChunkSource, *, ids: ArrayLike | None = None
) -> pd.DataFrame:
    """Likely label errors, ranked, from probabilities streamed a row chunk at a time.

    cleanlab's mini-batch confident learning
    (``cleanlab.experimental.label_issues_batched.LabelInspector``): one pass over the chunks
    estimates each class's confident threshold, a second scores every label (self-confidence) and
    counts the issues; the lowest-scored labels are flagged, and then (as
    ``find_label_issues_batched`` does) those whose given label is the argmax are dropped, row
    chunk by row chunk. cleanlab documents it as approximating ``find_label_errors(...,
    filter_by="low_self_confidence")`` (its issue count may differ by one through rounding). Memory
    is a chunk of probabilities (each cast to float32, as cleanlab's batches may be) and a few
    numbers per sample, never the (n_samples, n_classes) matrix.

    Parameters
    ----------
    y_given : array-like of shape (n_samples,)
        The labels under scrutiny; every class must occur.
    prob_chunks : callable
        Called twice; each call returns ``(rows, probs)`` pairs covering every sample in order,
        e.g. ``Predictions.prob_chunks``. Out-of-sample probabilities, as for
        :func:`find_label_errors`.
    ids : array-like of shape (n_samples,), optional
        Sample ids reported in the ``id`` column; default ``0..n_samples-1``.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`find_label_errors`, most likely error first.
    """
    from cleanlab.experimental.label_issues_batched import LabelInspector

    labels = v.check_labels(y_given, "y_given")
    n = len(labels)
    id_arr = np.arange(n, dtype=np.int64) if ids is None else v.check_sample_ids(ids, "ids")
    v.check_same_length(y_given=labels, ids=id_arr)
    inspector: LabelInspector | None = None
    seen = 0
    for rows, p in _checked_chunks(prob_chunks, n):
        if inspector is None:
            _check_every_class(labels, p.shape[1])
            inspector = LabelInspector(num_class=p.shape[1], n_jobs=1, verbose=False)
        inspector.update_confident_thresholds(labels[rows], p.astype(np.float32, copy=False))
        seen = rows.stop
    _check_covered(seen, n)
    assert inspector is not None
    predicted = np.empty(n, dtype=np.int64)
    own = np.empty(n)
    given_is_top = np.empty(n, dtype=bool)
    for rows, p in _checked_chunks(prob_chunks, n):
        chunk = p.astype(np.float32, copy=False)
        given = labels[rows]
        inspector.score_label_quality(given, chunk)
        at = (np.arange(len(given)), given)
        own[rows] = chunk[at]
        predicted[rows] = chunk.argmax(axis=1)
        # find_label_issues_batched's last step (cleanlab.count._reduce_issues), a chunk at a
        # time: a label whose probability, nudged up by 1e-6, is the row's largest is not flagged.
        nudged = chunk.copy()
        nudged[at] += 1e-6
        given_is_top[rows] = nudged.argmax(axis=1) == given
    idx = np.asarray(inspector.get_label_issues(), dtype=np.int64)
    idx = idx[~given_is_top[idx]]
    return pd.DataFrame({
        "rank": np.arange(1, len(idx) + 1, dtype=np.int64),
        "index": idx,
        "id": id_arr[idx],
        "given": labels[idx],
        "predicted": predicted[idx],
        "self_confidence": own[idx],
    })


def _check_every_class(labels: NDArray[np.int64], n_classes: int) -> None:
    if labels.size and labels.max() >= n_classes:
        raise ValueError(f"`y_given` must be below the number of classes ({n_classes}); got "
                         f"{int(labels.max())}.")
    missing = np.setdiff1d(np.arange(n_classes), labels)
    if missing.size:
        raise ValueError(f"`y_given` must contain every class (one per column of `probs`); "
                         f"got no samples of classes {missing.tolist()}.")


def label_error_pairs(errors: pd.DataFrame) -> pd.DataFrame:
    """Flagged label errors counted by (given, predicted) pair, most frequent first.

    Parameters
    ----------
    errors : pandas.DataFrame
        With columns ``given`` and ``predicted``, e.g. from :func:`find_label_errors`.

    Returns
    -------
    pandas.DataFrame
        Columns ``given``, ``predicted``, ``count``; ties ordered by (given, predicted).

    Examples
    --------
    >>> df = pd.DataFrame({"given": [1, 1, 2], "predicted": [0, 0, 0]})
    >>> label_error_pairs(df).to_dict("records")
    [{'given': 1, 'predicted': 0, 'count': 2}, {'given': 2, 'predicted': 0, 'count': 1}]
    """
    if not isinstance(errors, pd.DataFrame):
        raise TypeError(f"`errors` must be a pandas DataFrame; got {type(errors).__name__}.")
    if not {"given", "predicted"} <= set(errors.columns):
        raise ValueError(f"`errors` must have columns ['given', 'predicted']; got {list(errors.columns)}.")
    counts = errors.groupby(["given", "predicted"]).size().rename("count").reset_index()
    counts["count"] = counts["count"].astype(np.int64)
    return counts.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)


# ----- score deciles -------------------------------------------------------------------------------
def accuracy_by_decile(score: ArrayLike, correct: ArrayLike, *, n_bins: int = 10) -> pd.DataFrame:
    """Accuracy within equal-count bins (deciles by default) of a per-sample score.

    Samples are ranked by score (ties in sample order, a stable sort) and the i-th of n goes to
    bin ``floor(i * n_bins / n)``, so bins differ in size by at most one and tied scores may
    straddle a boundary.

    Parameters
    ----------
    score : array-like of shape (n_samples,)
        E.g. :func:`non_uniformity` or the confidence.
    correct : array-like of shape (n_samples,)
        Booleans (or 0/1): whether each prediction is right.
    n_bins : int
        At most n_samples.

    Returns
    -------
    pandas.DataFrame
        One row per bin, lowest scores first: ``bin`` (1..n_bins), ``score_min``, ``score_max``,
        ``score_mean``, ``accuracy`` (float), ``n`` (int).

    Examples
    --------
    >>> t = accuracy_by_decile([0.1, 0.2, 0.9, 0.8], [False, True, True, True], n_bins=2)
    >>> t[["bin", "accuracy", "n"]].to_dict("records")
    [{'bin': 1, 'accuracy': 0.5, 'n': 2}, {'bin': 2, 'accuracy': 1.0, 'n': 2}]
    """
    s = v.check_finite_float(score, "score", ndim=1)
    ok = v.as_array(correct, "correct")
    if ok.ndim != 1:
        raise ValueError(f"`correct` must have shape (n_samples,); got {ok.shape}.")
    if ok.dtype != bool and not (ok.dtype.kind in "iuf" and np.isin(ok, (0, 1)).all()):
        raise TypeError(f"`correct` must hold booleans (or 0/1); got {v.describe(ok)}.")
    v.check_same_length(score=s, correct=ok)
    n_bins = v.check_int(n_bins, "n_bins", minimum=1)
    if n_bins > len(s):
        raise ValueError(f"`n_bins` must be at most the number of samples ({len(s)}); got {n_bins}.")
    order = np.argsort(s, kind="stable")
    bins = np.empty(len(s), dtype=np.int64)
    bins[order] = np.arange(len(s)) * n_bins // len(s)
    frame = pd.DataFrame({"bin": bins + 1, "score": s, "correct": ok.astype(np.float64)})
    out = frame.groupby("bin").agg(score_min=("score", "min"), score_max=("score", "max"),
                                   score_mean=("score", "mean"), accuracy=("correct", "mean"),
                                   n=("correct", "size")).reset_index()
    out["n"] = out["n"].astype(np.int64)
    return out


# ----- early learning, then memorisation -----------------------------------------------------------
def memorization_table(snapshots: Mapping[int, Predictions]) -> pd.DataFrame:
    """What a noisy-label run predicts for its flipped training samples, epoch by epoch.

    Early learning (Liu et al. 2020) shows as flipped samples predicted as their *true* label in
    early epochs; memorisation as the same samples predicted as their *given* (wrong) label later.

    Parameters
    ----------
    snapshots : mapping of int to Predictions
        Epoch -> predictions on the *training* split (so ``y_given`` holds the noisy labels), all on
        the same samples.

    Returns
    -------
    pandas.DataFrame
        One row per epoch, in order: ``epoch``, ``n_flipped``, ``flipped_as_true``,
        ``flipped_as_given``, ``flipped_as_other`` (shares of the flipped samples, summing to 1) and
        ``clean_accuracy`` (accuracy on the samples whose label was not flipped).

    Examples
    --------
    >>> p = Predictions.from_arrays(y_true=[0, 1, 1], y_given=[1, 1, 1],
    ...                             logits=[[2.0, 0.0], [0.0, 2.0], [0.0, 2.0]])
    >>> memorization_table({1: p})[["epoch", "flipped_as_true", "clean_accuracy"]].to_dict("records")
    [{'epoch': 1, 'flipped_as_true': 1.0, 'clean_accuracy': 1.0}]
    """
    if not isinstance(snapshots, Mapping) or not snapshots:
        raise TypeError("`snapshots` must be a non-empty mapping of epoch to Predictions; "
                        f"got {type(snapshots).__name__}.")
    rows = []
    reference = None
    for epoch in sorted(snapshots):
        p = snapshots[epoch]
        if not isinstance(p, Predictions):
            raise TypeError(f"`snapshots[{epoch}]` must be a Predictions; got {type(p).__name__}.")
        if reference is None:
            reference = p.ids
        elif not np.array_equal(reference, p.ids):
            raise ValueError(f"`snapshots` must all hold the same samples; epoch {epoch} differs.")
        flipped = p.flipped
        if not flipped.any():
            raise ValueError(f"`snapshots[{epoch}]` has no flipped labels; pass training-split "
                             "predictions of a noisy-label run.")
        pred = p.y_pred[flipped]
        as_true = float(np.mean(pred == p.y_true[flipped]))
        as_given = float(np.mean(pred == p.y_given[flipped]))
        rows.append({
            "epoch": int(epoch), "n_flipped": int(flipped.sum()), "flipped_as_true": as_true,
            "flipped_as_given": as_given, "flipped_as_other": 1.0 - as_true - as_given,
            "clean_accuracy": float(np.mean(p.correct[~flipped])),
        })
    return pd.DataFrame(rows)
