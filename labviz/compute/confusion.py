"""Confusion matrices, per-class metrics, the most confused pairs, and drill-down into one cell.

Conventions follow scikit-learn: rows are the true class, columns the predicted class, and a ratio
whose denominator is zero (a class that never occurs, or is never predicted) is 0, not NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from labviz.core import _validation as v

Normalize = Literal["true", "pred", "all"] | None

_NORMALIZE_OPTIONS = (None, "true", "pred", "all")

__all__ = [
    "ConfusionAccumulator",
    "cell_samples",
    "class_neighbourhood",
    "check_block",
    "class_order",
    "confusion_matrix",
    "find_classes",
    "normalize_confusion",
    "per_class_table",
    "top_confused_pairs",
]


# ----- validation helpers -------------------------------------------------------------------------
def _check_pair(
    y_true: ArrayLike, y_pred: ArrayLike, n_classes: int | None
) -> tuple[NDArray[np.int64], NDArray[np.int64], int]:
    """Validated labels and the number of classes (``max label + 1`` when not given)."""
    if n_classes is not None:
        n_classes = v.check_int(n_classes, "n_classes", minimum=1)
    yt = v.check_labels(y_true, "y_true", n_classes=n_classes, n_classes_arg="n_classes")
    yp = v.check_labels(y_pred, "y_pred", n_classes=n_classes, n_classes_arg="n_classes")
    v.check_same_length(y_true=yt, y_pred=yp)
    if n_classes is None:
        n_classes = int(max(yt.max(), yp.max())) + 1
    return yt, yp, n_classes


def _check_matrix(cm: ArrayLike, name: str, *, counts: bool = False) -> NDArray[np.float64]:
    """A square, non-negative matrix (integer-valued too when ``counts``)."""
    arr = v.check_finite_float(cm, name, ndim=2, shape_hint="(n_classes, n_classes)")
    if arr.shape[0] != arr.shape[1]:
        raise ValueError(f"`{name}` must have shape (n_classes, n_classes); got {arr.shape}.")
    if arr.min() < 0:
        raise ValueError(f"`{name}` must hold non-negative values; got minimum {arr.min():.4g}.")
    if counts and not np.all(arr == np.round(arr)):
        bad = arr[arr != np.round(arr)][0]
        raise ValueError(f"`{name}` must hold integer counts; got non-integer values such as {float(bad)!r}.")
    return arr


def _safe_divide(num: NDArray, den: NDArray) -> NDArray[np.float64]:
    """``num / den`` with 0 where ``den`` is 0 (scikit-learn's ``zero_division=0``)."""
    num, den = np.broadcast_arrays(np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64))
    return np.divide(num, den, out=np.zeros(num.shape), where=den != 0)


def _check_square_size(n_classes: int, given: bool) -> None:
    """Refuse an n_classes x n_classes result that would not fit in memory."""
    v.check_dense_size((n_classes, n_classes), name="n_classes", value=n_classes,
                       what="confusion matrix" + ("" if given else " (n_classes = largest label + 1)"))


def _counts(yt: NDArray[np.int64], yp: NDArray[np.int64], n_classes: int) -> NDArray[np.int64]:
    return np.bincount(yt * n_classes + yp, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _pair_counts(
    a: NDArray[np.int64], b: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """The distinct pairs ``(a[i], b[i])``, sorted, and how often each occurs.

    Costs O(n log n) whatever the labels, unlike a C x C count matrix (8 TB for labels up to 1e6).
    """
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    first = np.ones(len(a), dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    starts = np.flatnonzero(first)
    return a[starts], b[starts], np.diff(np.append(starts, len(a)))


def _counts_of(labels: NDArray[np.int64], classes: NDArray[np.int64]) -> NDArray[np.int64]:
    """How often each of ``classes`` occurs in ``labels`` (0 if never), without a length-C array."""
    values, counts = np.unique(labels, return_counts=True)
    pos = np.minimum(np.searchsorted(values, classes), len(values) - 1)
    return np.where(values[pos] == classes, counts[pos], 0)


# ----- the matrix ---------------------------------------------------------------------------------
def normalize_confusion(cm_counts: ArrayLike, normalize: Normalize) -> NDArray:
    """Normalise a count matrix like :func:`confusion_matrix` does.

    Parameters
    ----------
    cm_counts : array-like of shape (n_classes, n_classes)
        Counts, rows = true class, columns = predicted class.
    normalize : {None, "true", "pred", "all"}
        See :func:`confusion_matrix`. ``None`` returns the counts as int64.

    Returns
    -------
    ndarray of shape (n_classes, n_classes)

    Examples
    --------
    >>> normalize_confusion([[3, 1], [0, 0]], "true").tolist()
    [[0.75, 0.25], [0.0, 0.0]]
    """
    v.check_option(normalize, "normalize", _NORMALIZE_OPTIONS)
    cm = _check_matrix(cm_counts, "cm_counts", counts=True)
    return _normalize(cm, normalize)


def _normalize(cm: NDArray, normalize: Normalize) -> NDArray:
    if normalize is None:
        return cm.astype(np.int64)
    if normalize == "true":
        return _safe_divide(cm, cm.sum(axis=1, keepdims=True))
    if normalize == "pred":
        return _safe_divide(cm, cm.sum(axis=0, keepdims=True))
    return _safe_divide(cm, cm.sum())


def confusion_matrix(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    n_classes: int | None = None,
    normalize: Normalize = None,
) -> NDArray:
    """The confusion matrix: entry ``(i, j)`` counts samples of true class i predicted as j.

    With counts :math:`C_{ij}` and :math:`n` samples, ``normalize`` gives

    - ``None``: :math:`C_{ij}` (int64),
    - ``"true"``: :math:`C_{ij} / \\sum_j C_{ij}` (each row sums to 1; the recall sits on the diagonal),
    - ``"pred"``: :math:`C_{ij} / \\sum_i C_{ij}` (each column sums to 1; the precision on the diagonal),
    - ``"all"``: :math:`C_{ij} / n`.

    A row (or column) with no samples normalises to zeros, not NaN, as in scikit-learn.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True integer labels.
    y_pred : array-like of shape (n_samples,)
        Predicted integer labels.
    n_classes : int, optional
        Defaults to ``max(y_true.max(), y_pred.max()) + 1``. Labels must be below it.
    normalize : {None, "true", "pred", "all"}

    Returns
    -------
    ndarray of shape (n_classes, n_classes)
        int64 counts when ``normalize`` is None, else float64.

    Examples
    --------
    >>> confusion_matrix([0, 0, 1, 1], [0, 1, 1, 1]).tolist()
    [[1, 1], [0, 2]]
    >>> confusion_matrix([0, 0, 1, 1], [0, 1, 1, 1], normalize="pred").tolist()
    [[1.0, 0.3333333333333333], [0.0, 0.6666666666666666]]
    """
    v.check_option(normalize, "normalize", _NORMALIZE_OPTIONS)
    yt, yp, c = _check_pair(y_true, y_pred, n_classes)
    _check_square_size(c, n_classes is not None)
    return _normalize(_counts(yt, yp, c), normalize)


# ----- per-class metrics --------------------------------------------------------------------------
def _per_class_from_counts(cm: NDArray, names: tuple[str, ...]) -> pd.DataFrame:
    return _per_class(np.diag(cm), cm.sum(axis=1), cm.sum(axis=0), names)


def _per_class(tp: NDArray, support: NDArray, predicted: NDArray, names: tuple[str, ...]) -> pd.DataFrame:
    """The per-class table from true positives, support (row sums) and predicted counts (column sums)."""
    tp = tp.astype(np.float64)
    precision = _safe_divide(tp, predicted)
    recall = _safe_divide(tp, support)
    # 2TP / (2TP + FP + FN) equals 2PR / (P + R) and is 0 instead of 0/0.
    f1 = _safe_divide(2 * tp, support + predicted)
    return pd.DataFrame({
        "class": np.arange(len(tp), dtype=np.int64),
        "name": list(names),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support.astype(np.int64),
    })


def per_class_table(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    n_classes: int | None = None,
    class_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Precision, recall, F1 and support of every class, one row per class.

    With :math:`TP_k`, :math:`FP_k`, :math:`FN_k` the true positives, false positives and false
    negatives of class k: precision :math:`= TP/(TP+FP)`, recall :math:`= TP/(TP+FN)`,
    F1 :math:`= 2TP/(2TP+FP+FN)`, support :math:`= TP+FN`. A zero denominator gives 0.0, as
    ``sklearn.metrics.precision_recall_fscore_support(..., zero_division=0)``.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    n_classes : int, optional
        Defaults to the largest label + 1.
    class_names : sequence of str of length n_classes, optional
        Defaults to ``"0", "1", ...``.

    Returns
    -------
    pandas.DataFrame
        n_classes rows; columns ``class`` (int), ``name`` (str), ``precision``, ``recall``, ``f1``
        (float) and ``support`` (int, the number of true samples of the class).

    Examples
    --------
    >>> t = per_class_table([0, 0, 1, 1], [0, 1, 1, 1], class_names=["cat", "dog"])
    >>> t[["name", "precision", "recall", "support"]].values.tolist()
    [['cat', 1.0, 0.5, 2], ['dog', 0.6666666666666666, 1.0, 2]]
    """
    yt, yp, c = _check_pair(y_true, y_pred, n_classes)
    # One row per class: refuse tables that cannot fit (6 columns per row).
    v.check_dense_size((c, 6), name="n_classes", value=c, what="per-class table")
    names = v.check_class_names(class_names, c)
    # Diagonal and marginals only: no C x C matrix, so labels up to 1e6 cost O(C), not 8 TB.
    return _per_class(np.bincount(yt[yt == yp], minlength=c), np.bincount(yt, minlength=c),
                      np.bincount(yp, minlength=c), names)


# ----- confused pairs -----------------------------------------------------------------------------
def top_confused_pairs(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    k: int = 10,
    n_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    symmetric: bool = False,
) -> pd.DataFrame:
    """The ``k`` off-diagonal cells with the most samples, most confused first.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    k : int
        At most this many pairs. Only pairs with at least one confusion are listed, so there may
        be fewer rows.
    n_classes : int, optional
    class_names : sequence of str of length n_classes, optional
    symmetric : bool
        If True, the cells (a, b) and (b, a) are merged into one unordered pair: ``true`` holds
        the smaller class index, ``count`` both directions, and ``rate`` is ``count`` over the
        support of both classes.

    Returns
    -------
    pandas.DataFrame
        Columns ``true``, ``pred`` (int), ``true_name``, ``pred_name`` (str), ``count`` (int) and
        ``rate`` = count / number of true samples of class ``true``. Ranked by count, then rate,
        then class indices; index 0..n_rows-1.

    Examples
    --------
    >>> top_confused_pairs([0, 0, 0, 1, 2, 2], [1, 1, 0, 0, 2, 0], k=2)[["true", "pred", "count"]].values.tolist()
    [[0, 1, 2], [1, 0, 1]]
    """
    k = v.check_int(k, "k", minimum=1)
    symmetric = v.check_bool(symmetric, "symmetric")
    yt, yp, c = _check_pair(y_true, y_pred, n_classes)
    names = None if class_names is None else np.array(v.check_class_names(class_names, c), dtype=object)
    wrong = yt != yp
    # Only the non-empty off-diagonal cells, counted by sorting: memory O(n_samples), not C x C.
    a, b = yt[wrong], yp[wrong]
    if symmetric:
        a, b = np.minimum(a, b), np.maximum(a, b)
    t, p, count = _pair_counts(a, b)
    denom = _counts_of(yt, t) + (_counts_of(yt, p) if symmetric else 0)
    rate = _safe_divide(count, denom)
    rank = np.lexsort((p, t, -rate, -count))[:k]
    t, p = t[rank], p[rank]
    return pd.DataFrame({
        "true": t.astype(np.int64),
        "pred": p.astype(np.int64),
        "true_name": [str(x) for x in t] if names is None else names[t].tolist(),
        "pred_name": [str(x) for x in p] if names is None else names[p].tolist(),
        "count": count[rank].astype(np.int64),
        "rate": rate[rank],
    })


#: Up to this many classes :func:`class_order` flips subtrees with scipy's optimal leaf ordering,
#: whose cost grows as C^4 (scipy issue 11227): 0.03 s at 300 classes, 3 s at 1,000. Beyond it, a
#: greedy pass orients each merge by the similarity where its two halves meet (O(C)), which gave
#: as high a sum of neighbour similarities on planted groups of 2-10 confused classes.
OPTIMAL_ORDERING_MAX_CLASSES = 300


def class_order(cm: ArrayLike) -> NDArray[np.int64]:
    """An ordering of the classes that puts mutually confused classes next to each other.

    The matrix is row-normalised (:math:`N_{ij} = C_{ij} / \\sum_j C_{ij}`), symmetrised
    (:math:`S_{ij} = (N_{ij} + N_{ji}) / 2`, confusion in either direction), and turned into the
    distance :math:`d_{ij} = 1 - S_{ij}`; the classes are then clustered hierarchically (average
    linkage, ``scipy.cluster.hierarchy``) and returned in the dendrogram's leaf order. Up to
    :data:`OPTIMAL_ORDERING_MAX_CLASSES` classes the leaves get scipy's optimal leaf ordering, so
    that neighbouring leaves are as confused as possible; beyond, each merge is oriented greedily
    (of the four ways to join two subtrees, the one whose meeting leaves are most confused), which
    keeps 1,000 classes under 0.1 s. Without any confusion at all the order is the identity.

    Parameters
    ----------
    cm : array-like of shape (n_classes, n_classes)
        Counts or a row-normalised confusion matrix (the result is the same).

    Returns
    -------
    ndarray of shape (n_classes,)
        A permutation of ``0..n_classes-1``; ``cm[np.ix_(order, order)]`` is the reordered matrix.

    Examples
    --------
    >>> class_order(np.eye(3, dtype=int)).tolist()
    [0, 1, 2]
    >>> o = class_order([[5, 0, 4], [0, 9, 0], [3, 0, 6]]).tolist()
    >>> abs(o.index(0) - o.index(2))
    1
    """
    arr = _check_matrix(cm, "cm")
    c = arr.shape[0]
    sim = _normalize(arr, "true")
    sim = (sim + sim.T) / 2
    np.fill_diagonal(sim, 0.0)
    if c < 3 or not sim.any():
        return np.arange(c, dtype=np.int64)
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    dist = 1.0 - sim
    np.fill_diagonal(dist, 0.0)
    optimal = c <= OPTIMAL_ORDERING_MAX_CLASSES
    tree = linkage(squareform(dist, checks=False), method="average", optimal_ordering=optimal)
    return leaves_list(tree).astype(np.int64) if optimal else _greedy_leaves(tree, sim)


def _greedy_leaves(tree: NDArray[np.float64], sim: NDArray[np.float64]) -> NDArray[np.int64]:
    """The leaves of linkage ``tree``, each merge oriented so that the leaves where its two
    subtrees meet are the most similar of the four choices (the first one on ties)."""
    n = len(tree) + 1
    runs: dict[int, list[int]] = {k: [k] for k in range(n)}
    for step, (a, b) in enumerate(tree[:, :2].astype(np.int64)):
        left, right = runs.pop(int(a)), runs.pop(int(b))
        ends = [sim[left[-1], right[0]], sim[left[-1], right[-1]],
                sim[left[0], right[0]], sim[left[0], right[-1]]]
        best = int(np.argmax(ends))
        if best >= 2:
            left.reverse()
        if best % 2:
            right.reverse()
        left.extend(right)
        runs[n + step] = left
    return np.asarray(runs.popitem()[1], dtype=np.int64)


def find_classes(class_names: Sequence[str], query: str) -> NDArray[np.int64]:
    """The classes whose name contains ``query``, ignoring case.

    Parameters
    ----------
    class_names : sequence of str of length n_classes
    query : str
        A (sub)string of a class name; surrounding spaces are ignored.

    Returns
    -------
    ndarray of shape (n_found,)
        The matching class indices, ascending; empty when no name contains ``query``.

    Examples
    --------
    >>> find_classes(["tabby cat", "Persian cat", "dog"], "CAT").tolist()
    [0, 1]
    """
    if not isinstance(query, str):
        raise TypeError(f"`query` must be a string; got {type(query).__name__} {query!r}.")
    needle = query.strip().casefold()
    if not needle:
        raise ValueError(f"`query` must hold part of a class name; got {query!r}.")
    names = v.check_class_names(class_names, len(class_names))
    return np.array([k for k, n in enumerate(names) if needle in n.casefold()], dtype=np.int64)


def class_neighbourhood(order: ArrayLike, classes: ArrayLike, *, radius: int = 10) -> NDArray[np.int64]:
    """``classes`` and their neighbours in ``order``: the classes at most ``radius`` places
    away from one of them, in the order's sequence (a block to zoom into).

    Parameters
    ----------
    order : array-like of shape (n_classes,)
        A permutation of the classes, e.g. :func:`class_order`.
    classes : array-like of shape (n_chosen,)
        Class indices in ``[0, n_classes)``, at least one.
    radius : int
        How many places on either side of each chosen class to keep (0: the classes alone).

    Returns
    -------
    ndarray of shape (n_block,)
        Class indices, as they come in ``order``.

    Examples
    --------
    >>> class_neighbourhood([4, 2, 0, 1, 3], [0], radius=1).tolist()
    [2, 0, 1]
    """
    perm = v.as_array(order, "order")
    if perm.ndim != 1 or perm.dtype.kind not in "iu" or not np.array_equal(
            np.sort(perm), np.arange(len(perm))):
        raise ValueError(f"`order` must be a permutation of 0..n_classes-1; got {v.describe(perm)}.")
    chosen = check_block(classes, len(perm))
    radius = v.check_int(radius, "radius", minimum=0)
    position = np.empty(len(perm), dtype=np.int64)
    position[perm] = np.arange(len(perm))
    near = np.zeros(len(perm) + 1, dtype=np.int64)  # +1 at a window's start, -1 past its end
    starts = np.maximum(position[chosen] - radius, 0)
    ends = np.minimum(position[chosen] + radius + 1, len(perm))
    np.add.at(near, starts, 1)
    np.add.at(near, ends, -1)
    return perm[np.cumsum(near[:-1]) > 0].astype(np.int64)


def check_block(classes: ArrayLike, n_classes: int) -> NDArray[np.int64]:
    """``classes`` as distinct class indices in ``[0, n_classes)``, at least one (ascending).

    Raises ``TypeError`` for non-integers and ``ValueError`` for an empty block, an index out of
    range or a class given twice, naming the argument ``classes``.
    """
    arr = v.as_array(classes, "classes")
    if arr.dtype == bool or (arr.size and arr.dtype.kind not in "iu"):
        raise TypeError(f"`classes` must hold integer class indices; got {v.describe(arr)}.")
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"`classes` must be a non-empty sequence of class indices; got "
                         f"{v.describe(arr)}.")
    arr = arr.astype(np.int64)
    bad = arr[(arr < 0) | (arr >= n_classes)]
    if bad.size:
        raise ValueError(f"`classes` must hold class indices in [0, {n_classes - 1}]; got "
                         f"{bad[:5].tolist()}.")
    unique = np.unique(arr)
    if unique.size != arr.size:
        twice = unique[np.bincount(np.searchsorted(unique, arr)) > 1]
        raise ValueError(f"`classes` must name each class once; got {twice[:5].tolist()} more "
                         "than once.")
    return unique


# ----- drill-down ---------------------------------------------------------------------------------
def _cell_mask(
    y_true: ArrayLike, y_pred: ArrayLike, true_class: int, pred_class: int
) -> tuple[NDArray[np.bool_], int]:
    t = v.check_int(true_class, "true_class", minimum=0)
    p = v.check_int(pred_class, "pred_class", minimum=0)
    yt, yp, _ = _check_pair(y_true, y_pred, None)
    return (yt == t) & (yp == p), len(yt)


def cell_samples(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    true_class: int,
    pred_class: int,
    *,
    ids: ArrayLike | None = None,
) -> NDArray[np.int64]:
    """The samples in one cell of the confusion matrix: true ``true_class``, predicted ``pred_class``.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    true_class, pred_class : int
        Row and column of the cell.
    ids : array-like of shape (n_samples,), optional
        Sample ids; defaults to the positions ``0..n_samples-1``.

    Returns
    -------
    ndarray of shape (n_in_cell,)
        The ids of the samples in the cell, in input order (empty if the cell is empty).

    Examples
    --------
    >>> cell_samples([0, 1, 1, 1], [0, 0, 1, 0], 1, 0, ids=[10, 11, 12, 13]).tolist()
    [11, 13]
    """
    mask, n = _cell_mask(y_true, y_pred, true_class, pred_class)
    if ids is None:
        return np.flatnonzero(mask).astype(np.int64)
    id_arr = v.check_sample_ids(ids, "ids")
    v.check_same_length(y_true=mask, ids=id_arr)
    return id_arr[mask]


# ----- streaming ----------------------------------------------------------------------------------
class ConfusionAccumulator:
    """A confusion matrix built batch by batch, mergeable across workers.

    Parameters
    ----------
    n_classes : int

    Examples
    --------
    >>> acc = ConfusionAccumulator(2).update([0, 1], [0, 0])
    >>> acc.merge(ConfusionAccumulator(2).update([1], [1])).matrix().tolist()
    [[1, 0], [1, 1]]
    """

    def __init__(self, n_classes: int) -> None:
        self.n_classes = v.check_int(n_classes, "n_classes", minimum=1)
        _check_square_size(self.n_classes, True)
        self._counts = np.zeros((self.n_classes, self.n_classes), dtype=np.int64)

    def update(self, y_true: ArrayLike, y_pred: ArrayLike) -> ConfusionAccumulator:
        """Add one batch of labels (arrays, lists or torch tensors of shape (batch,)); return self."""
        yt, yp, c = _check_pair(y_true, y_pred, self.n_classes)
        self._counts += _counts(yt, yp, c)
        return self

    def merge(self, other: ConfusionAccumulator) -> ConfusionAccumulator:
        """A new accumulator holding the counts of both ``self`` and ``other`` (same ``n_classes``).

        Neither input changes, so partial results can be merged in any tree order.
        """
        if not isinstance(other, ConfusionAccumulator):
            raise TypeError(f"`other` must be a ConfusionAccumulator; got {type(other).__name__}.")
        if other.n_classes != self.n_classes:
            raise ValueError(f"`other` must have n_classes={self.n_classes}; got {other.n_classes}.")
        out = ConfusionAccumulator(self.n_classes)
        out._counts = self._counts + other._counts
        return out

    @property
    def n_samples(self) -> int:
        """The number of samples added so far."""
        return int(self._counts.sum())

    def matrix(self, normalize: Normalize = None) -> NDArray:
        """The confusion matrix so far, as :func:`confusion_matrix` would return it (a copy)."""
        v.check_option(normalize, "normalize", _NORMALIZE_OPTIONS)
        return _normalize(self._counts, normalize).copy()

    def __repr__(self) -> str:
        return f"ConfusionAccumulator(n_classes={self.n_classes}, n_samples={self.n_samples})"
