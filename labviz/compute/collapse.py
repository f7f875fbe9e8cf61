"""Representation collapse: where penultimate features sit relative to the class templates.

Label smoothing pulls the features of a class into a tight cluster equidistant from the other
classes' templates (Müller et al. 2019, "When does label smoothing help?"); MaxSup (Zhou et al.
2025, arXiv:2502.15798) keeps intra-class variation instead. This module computes

- the template-plane projection of Müller et al. (:func:`template_projection`,
  :func:`template_plane_frame`),
- the feature-geometry metrics of Kornblith et al. 2021 used by the MaxSup paper
  (:func:`intra_class_variation`, :func:`inter_class_separability`), Papyan et al.'s NC1
  (:func:`nc1`) and the cosines between centred class means (:func:`class_mean_cosine`),
- per-checkpoint and per-group tables of these (:func:`collapse_metrics`, :func:`collapse_table`,
  :func:`collapse_summary`),
- the confidence of misclassified samples (:func:`misclassified_confidence`), the "error
  enhancement" the MaxSup paper compares between label smoothing and MaxSup.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from labviz.core import _validation as v
from labviz.core._inputs import arrays_given, as_predictions
from labviz.core.predictions import Predictions

__all__ = [
    "CollapseMetrics",
    "class_mean_cosine",
    "collapse_metrics",
    "collapse_summary",
    "collapse_table",
    "inter_class_separability",
    "intra_class_variation",
    "misclassified_confidence",
    "nc1",
    "template_plane_frame",
    "template_projection",
]

#: Relative size below which the third template counts as lying on the line through the other two.
COLLINEAR_RTOL = 1e-8

#: ``d_total`` at or below this counts as 0 (all features point the same way): float rounding of
#: ``1 - ||g||^2`` is ~1e-16 per feature, and a ratio of such noise would be meaningless.
D_TOTAL_ATOL = 1e-10

#: Singular values of the centred class means below this times ``n_samples * max|x|`` are rounding
#: noise of the means (float64 sums of n values), not between-class spread.
NC1_NOISE_FACTOR = 8 * np.finfo(np.float64).eps

METRICS: tuple[str, ...] = ("intra", "inter", "nc1")

Labels = Literal["true", "given"]


# ----- template plane -----------------------------------------------------------------------------
def _check_weights(weights: ArrayLike) -> NDArray[np.float64]:
    return v.check_finite_float(weights, "weights", ndim=2, shape_hint="(n_classes, n_features)")


def _check_classes(classes: Sequence[int], n_classes: int) -> tuple[int, int, int]:
    if isinstance(classes, (str, bytes)) or not hasattr(classes, "__len__"):
        raise TypeError(f"`classes` must be a sequence of 3 class indices; got {type(classes).__name__}.")
    if len(classes) != 3:
        raise ValueError(f"`classes` must hold exactly 3 class indices; got {len(classes)}.")
    cls = tuple(v.check_int(c, "classes") for c in classes)
    if len(set(cls)) != 3:
        raise ValueError(f"`classes` must be 3 distinct class indices; got {cls}.")
    if min(cls) < 0 or max(cls) >= n_classes:
        raise ValueError(f"`classes` must be in [0, {n_classes - 1}]; got {cls}.")
    return cls  # type: ignore[return-value]


def _plane_basis(
    weights: NDArray[np.float64], classes: tuple[int, int, int]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Origin (the templates' centroid, shape (d,)) and orthonormal basis (shape (2, d))."""
    tpl = weights[list(classes)]
    size = np.abs(tpl).max()
    # The basis is scale-free: compute it on templates scaled to max-abs 1, so that norms of
    # weights ~1e200 do not overflow (nor ~1e-200 underflow) into a false "collinear".
    w_a, w_b, w_c = tpl / size if size > 0 else tpl
    e1, e2 = w_b - w_a, w_c - w_a
    scale = max(np.linalg.norm(e1), np.linalg.norm(e2))
    n1 = np.linalg.norm(e1)
    u1 = e1 / n1 if n1 > 0 else e1
    r2 = e2 - (e2 @ u1) * u1  # Gram–Schmidt
    n2 = np.linalg.norm(r2)
    if n1 <= COLLINEAR_RTOL * scale or n2 <= COLLINEAR_RTOL * scale or scale == 0:
        raise ValueError(
            f"`weights` rows {classes} must not be collinear (the three templates must span a "
            f"plane); got a distance of {n2 * size:.3g} from the third template to the line through "
            "the other two."
        )
    return tpl[0] / 3 + tpl[1] / 3 + tpl[2] / 3, np.stack([u1, r2 / n2])


def template_projection(
    features: ArrayLike, weights: ArrayLike, classes: Sequence[int]
) -> NDArray[np.float64]:
    """Coordinates of features in the plane through three class templates (Müller et al. 2019).

    The templates are the rows ``w_a, w_b, w_c = weights[classes]`` of the last layer. The plane is
    the *affine* plane through them, with

    - origin at their centroid :math:`g = (w_a + w_b + w_c) / 3`,
    - orthonormal basis from Gram–Schmidt: :math:`u_1 = (w_b - w_a)/\\lVert w_b - w_a\\rVert`,
      :math:`u_2 \\propto (w_c - w_a) - ((w_c - w_a)\\cdot u_1) u_1`,

    and a feature :math:`x` gets coordinates :math:`(u_1 \\cdot (x - g),\\ u_2 \\cdot (x - g))`: those of
    its orthogonal projection (its foot) on the plane. So ``w_a -> w_b`` points along +x, ``w_c`` has
    a positive y, and the triangle of templates is centred on (0, 0).

    The bias is ignored: logits are :math:`w_k \\cdot x + b_k`, so a bias shifts the logit of class k
    by a constant but does not move the template :math:`w_k`; the geometry (distances between
    features and templates) is that of the weights alone.

    Because the origin is :math:`g` and not the zero vector, scaling features by :math:`s` scales
    coordinates by :math:`s` *about the projection of the zero vector*:
    ``P(s x) - P(0) = s (P(x) - P(0))`` with ``P(0) = -(u_1 \\cdot g, u_2 \\cdot g)``. Coordinates are
    invariant to adding anything orthogonal to the plane.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Penultimate-layer activations.
    weights : array-like of shape (n_classes, n_features)
        The last layer's weight matrix (rows are class templates).
    classes : sequence of 3 distinct int
        The classes a, b, c whose templates span the plane.

    Returns
    -------
    ndarray of shape (n_samples, 2)

    Examples
    --------
    >>> w = [[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 3.0, 0.0]]
    >>> template_projection(w, w, (0, 1, 2)).round(4).tolist()
    [[-0.6667, -1.0], [1.3333, -1.0], [-0.6667, 2.0]]
    """
    w = _check_weights(weights)
    cls = _check_classes(classes, w.shape[0])
    x = v.check_finite_float(features, "features", ndim=2, shape_hint="(n_samples, n_features)")
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"`features` must have shape (n_samples, {w.shape[1]}) to match `weights`; got {x.shape}."
        )
    origin, basis = _plane_basis(w, cls)
    return (x - origin) @ basis.T


def template_plane_frame(
    predictions: Predictions, classes: Sequence[int], *, only_classes: bool = True
) -> pd.DataFrame:
    """Template-plane coordinates of a :class:`~labviz.Predictions`' samples, one row per sample.

    See :func:`template_projection` for the geometry. The projected templates themselves are in
    ``frame.attrs["templates"]`` (a (3, 2) list of coordinates, in the order of ``classes``), with
    ``frame.attrs["classes"]`` and ``frame.attrs["name"]``, so figures can draw them; the projection
    of the zero feature vector is ``frame.attrs["origin"]`` (a feature moving from there toward a
    projected template raises that class's logit).

    Parameters
    ----------
    predictions : Predictions
        Must hold ``features`` and ``weights``.
    classes : sequence of 3 distinct int
    only_classes : bool
        Keep only the samples whose true label is one of ``classes`` (as Müller et al. do).

    Returns
    -------
    pandas.DataFrame
        Columns ``x``, ``y`` (float), ``label`` (true class, int), ``label_name`` (str),
        ``prediction`` (int), ``correct`` (bool), ``id`` (int).
    """
    predictions = as_predictions(predictions)
    feats, weights = predictions.features, predictions.weights
    if feats is None or weights is None:
        raise ValueError(
            "`predictions` must hold `features` and `weights` for a template plane; got "
            f"features={'None' if feats is None else 'present'}, "
            f"weights={'None' if weights is None else 'present'}."
        )
    cls = _check_classes(classes, predictions.n_classes)
    rows = (np.flatnonzero(np.isin(predictions.y_true, cls)) if only_classes
            else np.arange(predictions.n_samples))
    y, pred = predictions.y_true[rows], predictions.y_pred[rows].astype(np.int64)
    xy = template_projection(feats[rows], weights, cls)
    names = np.asarray(predictions.class_names, dtype=object)
    frame = pd.DataFrame({
        "x": xy[:, 0],
        "y": xy[:, 1],
        "label": y,
        "label_name": names[y],
        "prediction": pred,
        "correct": pred == y,
        "id": predictions.ids[rows],
    })
    tpl = template_projection(weights[list(cls)], weights, cls)
    origin = template_projection(np.zeros((1, weights.shape[1])), weights, cls)[0]
    frame.attrs.update(templates=tpl.tolist(), origin=origin.tolist(), classes=list(cls),
                       name=predictions.name, class_names=list(predictions.class_names))
    return frame


# ----- feature-geometry metrics -------------------------------------------------------------------
def _check_features_labels(
    features: ArrayLike, y: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    x = v.check_finite_float(features, "features", ndim=2, shape_hint="(n_samples, n_features)")
    labels = v.check_labels(y, "y")
    v.check_same_length(features=x, y=labels)
    if len(np.unique(labels)) < 2:
        raise ValueError(f"`y` must contain at least 2 classes; got only class {labels[0]}.")
    return x, labels


def _class_means(x: NDArray[np.float64], y: NDArray[np.int64]) -> NDArray[np.float64]:
    """Means of the features of each present class (in label order), shape (K, d)."""
    present, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    sums = np.zeros((len(present), x.shape[1]))
    np.add.at(sums, inverse, x)
    return sums / counts[:, None]


def intra_class_variation(features: ArrayLike, y: ArrayLike) -> float:
    """Average within-class cosine distance :math:`\\bar d_{within}` (Kornblith et al. 2021).

    With :math:`\\hat h_i = h_i / \\lVert h_i \\rVert`, :math:`K` the classes present in ``y`` and
    :math:`n_k` the samples of class k,

    .. math::

        \\bar d_{within} = \\frac1K \\sum_k \\frac{1}{n_k^2} \\sum_{i, j \\in k}
        (1 - \\hat h_i \\cdot \\hat h_j)
        = 1 - \\frac1K \\sum_k \\lVert m_k \\rVert^2,
        \\qquad m_k = \\frac{1}{n_k} \\sum_{i \\in k} \\hat h_i .

    The pairs include :math:`i = j` (each contributing 0), as in Kornblith et al.'s :math:`n_k^2`
    normalisation; this is what makes the closed form exact, with no n × n matrix. Lower means more
    collapsed classes. Range [0, 1] (a class of one sample has variation 0).

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        No row may be all zeros.
    y : array-like of shape (n_samples,)
        Integer labels, at least 2 distinct classes.

    Returns
    -------
    float

    Examples
    --------
    >>> intra_class_variation([[1, 0], [0, 1], [-1, 0], [0, -1]], [0, 0, 1, 1])
    0.5
    """
    x, labels = _check_rows_labels(features, y)
    return _ClassSums.of(x, labels).d_within_total()[0]


def inter_class_separability(features: ArrayLike, y: ArrayLike) -> float:
    """Class separation :math:`R^2 = 1 - \\bar d_{within} / \\bar d_{total}` (Kornblith et al. 2021).

    :math:`\\bar d_{within}` is :func:`intra_class_variation`; the overall average distance is

    .. math::

        \\bar d_{total} = \\frac{1}{K^2} \\sum_{k, l} \\frac{1}{n_k n_l} \\sum_{i \\in k, j \\in l}
        (1 - \\hat h_i \\cdot \\hat h_j) = 1 - \\Big\\lVert \\frac1K \\sum_k m_k \\Big\\rVert^2,

    with the same :math:`\\hat h`, :math:`m_k` and :math:`i = j` convention. Higher means classes are
    better separated relative to their spread; 1 when every class collapses to one direction.
    Returns NaN with a warning when :math:`\\bar d_{total} = 0` (all features point the same way).

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)

    Returns
    -------
    float

    Examples
    --------
    >>> inter_class_separability([[1, 0], [0, 1], [-1, 0], [0, -1]], [0, 0, 1, 1])
    0.5
    """
    x, labels = _check_rows_labels(features, y)
    return _separability(*_ClassSums.of(x, labels).d_within_total())


def _separability(d_within: float, d_total: float) -> float:
    if d_total <= D_TOTAL_ATOL:
        warnings.warn("All features point the same way (d_total = 0); class separation is "
                      "undefined and is NaN.", RuntimeWarning, stacklevel=3)
        return float("nan")
    return 1.0 - d_within / d_total


def nc1(features: ArrayLike, y: ArrayLike) -> float:
    """Neural-collapse NC1 :math:`\\operatorname{tr}(\\Sigma_W \\Sigma_B^{+}) / K` (Papyan et al. 2020).

    On the raw (not normalised) features, with :math:`\\mu_k` the mean of class k, :math:`\\mu_G`
    the mean of all samples, :math:`N` samples and :math:`K` classes present,

    .. math::

        \\Sigma_W = \\frac1N \\sum_k \\sum_{i \\in k} (h_i - \\mu_k)(h_i - \\mu_k)^\\top, \\qquad
        \\Sigma_B = \\frac1K \\sum_k (\\mu_k - \\mu_G)(\\mu_k - \\mu_G)^\\top,

    and :math:`^{+}` is the Moore–Penrose pseudo-inverse. It is computed without any d × d
    matrix: with :math:`M` the (K, d) matrix of centred means, :math:`\\Sigma_B^{+} = K M^{+}
    M^{+\\top}`, so NC1 :math:`= \\lVert X_W M^{+} \\rVert_F^2 / N` where :math:`X_W` holds the
    within-class-centred features. Lower means more collapsed (0 when every class is a point).

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)

    Returns
    -------
    float

    Examples
    --------
    >>> round(nc1([[0.0], [2.0], [4.0], [6.0]], [0, 0, 1, 1]), 12)  # Sigma_W = 1, Sigma_B = 4, K = 2
    0.125
    """
    x, labels = _check_rows_labels(features, y)
    return _streamed_nc1(x, labels, _ClassSums.of(x, labels))


def _scatter_traces(x: NDArray[np.float64], y: NDArray[np.int64]) -> tuple[float, float]:
    """Traces of the within-class and between-class scatter, each class weighted equally."""
    means = _class_means(x, y)
    present, inverse = np.unique(y, return_inverse=True)
    within = float(np.mean([((x[inverse == k] - means[k]) ** 2).sum(axis=1).mean()
                            for k in range(len(present))]))
    between = float(((means - means.mean(axis=0)) ** 2).sum(axis=1).mean())
    return within, between


def plane_tightness(
    features: ArrayLike, y: ArrayLike, weights: ArrayLike, classes: Sequence[int]
) -> float:
    """How tight three classes' clusters are in their template plane (Müller et al. 2019, Fig. 1).

    The samples of ``classes`` are projected onto the plane through their three templates
    (:func:`template_projection`); tightness is the within-class spread relative to the spread of
    the class means there, :math:`\\operatorname{tr} S_W / \\operatorname{tr} S_B` with

    .. math::

        S_W = \\frac13 \\sum_k \\operatorname{cov}(P x_i : y_i = k), \\qquad
        S_B = \\frac13 \\sum_k (\\mu_k - \\bar\\mu)(\\mu_k - \\bar\\mu)^\\top

    on the 2-d coordinates :math:`P x`. Lower is tighter; the ratio does not change when all
    features are scaled, so a loss that shrinks features does not look tighter for that alone.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        True labels; each of ``classes`` must be present.
    weights : array-like of shape (n_classes, n_features)
    classes : sequence of 3 distinct int

    Returns
    -------
    float

    Examples
    --------
    >>> w = [[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]
    >>> x = [[1.1, 0.0], [0.9, 0.0], [0.0, 1.1], [0.0, 0.9], [-1.0, -1.0], [-1.0, -1.0]]
    >>> round(plane_tightness(x, [0, 0, 1, 1, 2, 2], w, (0, 1, 2)), 4)  # (0.02 / 3) / (4 / 3)
    0.005
    """
    x, labels = _check_features_labels(features, y)
    w = _check_weights(weights)
    cls = _check_classes(classes, w.shape[0])
    missing = [k for k in cls if not np.any(labels == k)]
    if missing:
        raise ValueError(f"`y` must contain every class of `classes` {cls}; got none of {missing}.")
    keep = np.isin(labels, cls)
    within, between = _scatter_traces(template_projection(x[keep], w, cls), labels[keep])
    return within / between


def template_span_share(features: ArrayLike, y: ArrayLike, weights: ArrayLike) -> float:
    """Share of the within-class variance that lies in the span of the class templates.

    Logits are :math:`W x + b`, so only the part of a feature in the row space of ``weights`` (the
    span of the templates) reaches the loss; variance in its orthogonal complement is invisible to
    every loss term, and a full-space tightness measure counts it while the template plane does not.
    Returns :math:`\\operatorname{tr} S_W^{span} / \\operatorname{tr} S_W`, with :math:`S_W` the
    within-class scatter (classes weighted equally) and :math:`S_W^{span}` that of the features
    projected onto the span.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    weights : array-like of shape (n_classes, n_features)

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> w = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    >>> x = [[1.0, 0.0, 2.0], [1.0, 0.0, -2.0], [0.0, 2.0, 0.0], [0.0, 0.0, 0.0]]
    >>> template_span_share(x, [0, 0, 1, 1], w)
    0.2
    """
    x, labels = _check_features_labels(features, y)
    w = _check_weights(weights)
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"`weights` must have shape (n_classes, {x.shape[1]}) to match `features`; "
                         f"got {w.shape}.")
    u, sv, _ = np.linalg.svd(w.T, full_matrices=False)
    basis = u[:, sv > sv.max() * max(w.shape) * np.finfo(float).eps]  # (d, rank)
    within, _ = _scatter_traces(x, labels)
    within_span, _ = _scatter_traces(x @ basis, labels)
    return within_span / within if within > 0 else float("nan")


def wrong_logit_spread(logits: ArrayLike, y: ArrayLike) -> float:
    """How unequal the wrong classes' logits are, relative to the margin of the true class.

    Per sample, the standard deviation of the K − 1 wrong-class logits divided by the gap between
    the true logit and their mean; the median over samples whose gap is positive. Müller et al.
    describe label smoothing as making the wrong classes equidistant, which erases how much a
    sample resembles each of them: a small value. Scale-free in the logits.

    Examples
    --------
    >>> round(wrong_logit_spread([[4.0, 1.0, 1.0], [0.0, 5.0, 1.0]], [0, 1]), 4)  # median(0, 0.5 / 4.5)
    0.0556
    """
    z = v.check_finite_float(logits, "logits", ndim=2, shape_hint="(n_samples, n_classes)")
    labels = v.check_labels(y, "y", n_classes=z.shape[1])
    v.check_same_length(logits=z, y=labels)
    rows = np.arange(len(labels))
    true = z[rows, labels]
    wrong = np.delete(z, labels + rows * z.shape[1]).reshape(len(labels), z.shape[1] - 1)
    gap = true - wrong.mean(axis=1)
    ok = gap > 0
    if not ok.any():
        return float("nan")
    return float(np.median(wrong[ok].std(axis=1) / gap[ok]))


def class_mean_cosine(
    features: ArrayLike, y: ArrayLike, *, n_classes: int | None = None
) -> NDArray[np.float64]:
    """Cosine similarities between globally centred class means (Papyan et al.'s NC2 view).

    Entry (k, l) is :math:`\\cos(\\mu_k - \\mu_G, \\mu_l - \\mu_G)` on the raw features, with
    :math:`\\mu_G` the mean of all samples. Under neural collapse the off-diagonal entries approach
    :math:`-1/(K-1)` (a simplex). Rows and columns of classes absent from ``y`` are NaN.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    n_classes : int, optional
        Defaults to ``y.max() + 1``.

    Returns
    -------
    ndarray of shape (n_classes, n_classes)

    Examples
    --------
    >>> class_mean_cosine([[1.0, 0.0], [0.0, 1.0]], [0, 1]).round(6).tolist()
    [[1.0, -1.0], [-1.0, 1.0]]
    """
    if n_classes is not None:
        n_classes = v.check_int(n_classes, "n_classes", minimum=2)
    x, labels = _check_features_labels(features, y)
    if n_classes is not None:
        v.check_labels(labels, "y", n_classes=n_classes, n_classes_arg="n_classes")
    k = int(labels.max()) + 1 if n_classes is None else n_classes
    v.check_dense_size((k, k), name="n_classes", value=k, what="class-mean cosine matrix"
                       + (" (n_classes = largest label + 1)" if n_classes is None else ""))
    v.check_dense_size((k, x.shape[1]), name="n_classes", value=k, what="matrix of class means")
    centred = np.full((k, x.shape[1]), np.nan)
    centred[np.unique(labels)] = _class_means(x, labels) - x.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    return np.clip(unit @ unit.T, -1.0, 1.0)


# ----- per checkpoint ------------------------------------------------------------------------------
@dataclass(frozen=True)
class CollapseMetrics:
    """Feature-geometry summary of one checkpoint on one split.

    Attributes
    ----------
    intra : float
        :func:`intra_class_variation` (lower = more collapsed).
    inter : float
        :func:`inter_class_separability`, :math:`R^2` (higher = better separated).
    nc1 : float
        :func:`nc1` (lower = more collapsed).
    """

    intra: float
    inter: float
    nc1: float


def _features_and_labels(
    source: Predictions | ArrayLike, y: ArrayLike | None, labels: Labels, name: str = "features"
) -> tuple[ArrayLike, ArrayLike]:
    """The features and labels of a Predictions, or the features array ``source`` and ``y``."""
    v.check_option(labels, "labels", ("true", "given"))
    given = arrays_given(source, name, {"y": y}, alternative="array")
    if given is not None:
        features, labels_given = given
        return features, labels_given
    p = as_predictions(source, name)
    if p.features is None:
        raise ValueError(f"`{name}` must hold features when it is a Predictions; got none in "
                         f"{p.name!r}. Build it with `Predictions.from_arrays(..., features=h)`, "
                         "`h` the penultimate activations of shape (n_samples, n_features).")
    return p.features, (p.y_true if labels == "true" else p.y_given)


def collapse_metrics(
    features: Predictions | ArrayLike, y: ArrayLike | None = None, *, labels: Labels = "true"
) -> CollapseMetrics:
    """Intra-class variation, class separation :math:`R^2` and NC1 of one set of features.

    The features are read a row block at a time (16 MB of float64), twice: one pass sums each
    class's features and unit vectors, one adds up NC1. A memory map (a training set's
    1.28M x 2,048 features) is neither copied nor read whole, and what is held is (n_classes,
    n_features) sums. NC1's products are float32 for float32 and float16 features (within 3e-9
    of float64's, relative), float64 otherwise; :func:`intra_class_variation`,
    :func:`inter_class_separability` and :func:`nc1` compute the same way, so their values are
    these.

    Parameters
    ----------
    features : Predictions or array-like of shape (n_samples, n_features)
        A :class:`~labviz.Predictions` with features, or the features themselves.
    y : array-like of shape (n_samples,), optional
        Labels; required with a features array, not allowed with a Predictions.
    labels : {"true", "given"}
        With a Predictions: group samples by their true labels or by the (possibly noisy) given ones.

    Returns
    -------
    CollapseMetrics

    Examples
    --------
    >>> m = collapse_metrics([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]], [0, 0, 1, 1])
    >>> round(m.intra, 6), round(m.inter, 6), round(m.nc1, 6)
    (0.25, 0.333333, 1.0)
    """
    x, yy = _features_and_labels(features, y, labels)
    x, yy = _check_rows_labels(x, yy)
    sums = _ClassSums.of(x, yy)
    d_within, d_total = sums.d_within_total()
    return CollapseMetrics(intra=d_within, inter=_separability(d_within, d_total),
                           nc1=_streamed_nc1(x, yy, sums))


# ----- the same metrics a row block at a time ---------------------------------------------------
#: Entries per row block of :func:`collapse_metrics`: a float64 block of 2**21 entries is 16 MB.
_BLOCK_ENTRIES = 1 << 21


def _row_blocks(n: int, d: int) -> list[slice]:
    step = max(1, _BLOCK_ENTRIES // d)
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def _check_rows_labels(features: ArrayLike, y: ArrayLike) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """:func:`_check_features_labels` without the float64 copy: float16, float32 and float64
    features are checked a row chunk at a time and returned as they are (a memory map stays
    one); other real dtypes become float64."""
    arr = v.as_array(features, "features")
    if not (arr.dtype in (np.float16, np.float32, np.float64) and arr.ndim == 2 and arr.size):
        return _check_features_labels(arr, y)
    if arr.dtype == np.float16 and arr.dtype.isnative and arr.flags.c_contiguous:
        # read as integers, in place: numpy's float16 isfinite is some 70 times slower
        v.check_stored_floats(arr, "features", ndim=2, shape_hint="(n_samples, n_features)",
                              keep_float16=True)
    elif n_bad := v.count_nonfinite(arr):
        raise ValueError(f"`features` must be finite; got {n_bad} NaN or inf values.")
    labels = v.check_labels(y, "y")
    v.check_same_length(features=arr, y=labels)
    if len(np.unique(labels)) < 2:
        raise ValueError(f"`y` must contain at least 2 classes; got only class {labels[0]}.")
    return arr, labels


def _add_by_class(out: NDArray[np.float64], rows: NDArray[np.float64],
                  y: NDArray[np.intp]) -> None:
    """``out[k] += rows[y == k].sum(axis=0)`` for every class ``k`` of the block (sorted once,
    summed with ``np.add.reduceat``: ``np.add.at`` is some 20 times slower)."""
    order = np.argsort(y, kind="stable")
    ys = y[order]
    starts = np.flatnonzero(np.r_[True, ys[1:] != ys[:-1]])
    out[ys[starts]] += np.add.reduceat(rows[order], starts, axis=0)


@dataclass(frozen=True)
class _ClassSums:
    """Per-class sums of the features and of their unit vectors, from one pass over row blocks.

    Attributes
    ----------
    inverse : ndarray of shape (n_samples,)
        Each sample's place among the present classes.
    counts : ndarray of shape (K,)
    sums, unit_sums : ndarray of shape (K, n_features)
    largest : float
        The largest ``|x|`` (the scale of the means' rounding noise, for NC1).
    n_zero : int
        How many rows are all zeros (they have no unit vector: their ``unit_sums`` share is 0).
    """

    inverse: NDArray[np.intp]
    counts: NDArray[np.int64]
    sums: NDArray[np.float64]
    unit_sums: NDArray[np.float64]
    largest: float
    n_zero: int

    @classmethod
    def of(cls, x: NDArray[Any], y: NDArray[np.int64]) -> _ClassSums:
        present, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
        k, (n, d) = len(present), x.shape
        sums, unit_sums, largest, n_zero = np.zeros((k, d)), np.zeros((k, d)), 0.0, 0
        for rows in _row_blocks(n, d):
            block = np.array(x[rows], dtype=np.float64)  # a copy: it is scaled in place
            size = np.abs(block).max(axis=1)
            n_zero += int(np.sum(size == 0))
            largest = max(largest, float(size.max()))
            _add_by_class(sums, block, inverse[rows])
            # scale rows to max-abs 1 first: the norm of a row ~1e200 overflows
            block /= np.where(size == 0, 1.0, size)[:, None]
            block /= np.maximum(np.linalg.norm(block, axis=1), np.finfo(np.float64).tiny)[:, None]
            _add_by_class(unit_sums, block, inverse[rows])
        return cls(inverse=inverse, counts=counts, sums=sums, unit_sums=unit_sums,
                   largest=largest, n_zero=n_zero)

    def d_within_total(self) -> tuple[float, float]:
        """:math:`\\bar d_{within}` and :math:`\\bar d_{total}` (see :func:`intra_class_variation`
        and :func:`inter_class_separability`) from the sums; a ValueError if a row is all zeros."""
        if self.n_zero:
            raise ValueError("`features` must have no all-zero rows (their cosine similarity is "
                             f"undefined); got {self.n_zero}.")
        m = self.unit_sums / self.counts[:, None]
        g = m.mean(axis=0)
        return 1.0 - float(np.mean(np.sum(m * m, axis=1))), 1.0 - float(g @ g)


def _streamed_nc1(x: NDArray[Any], y: NDArray[np.int64], sums: _ClassSums) -> float:
    """:func:`nc1` a row block at a time: ``||X_W M^+||_F^2 / N`` as ``||X_W V / s||_F^2 / N``
    (``M = U diag(s) V^T``; ``U``'s columns are orthonormal), one product per block of
    within-class-centred rows, summed in float64. The products are float32 for float32 and
    float16 features (as labviz keeps them; half the time of float64's) and float64 otherwise;
    float32's NC1 differs from float64's by 3e-10 to 3e-9 of its value (measured on ReLU
    features of 64 to 2,048 dimensions and 10 to 1,000 classes; the tests hold 1e-6)."""
    n = len(y)
    means = sums.sums / sums.counts[:, None]
    centred = means - sums.sums.sum(axis=0) / n
    # The pseudo-inverse by hand, to cut singular values both relative to the largest (1e-10 on M's
    # is 1e-20 on Sigma_B's) and absolutely, at the rounding noise of the means: pinv's relative
    # cut alone keeps noise when all class means coincide (Sigma_B = 0), giving any value.
    _, sv, vt = np.linalg.svd(centred, full_matrices=False)
    noise = NC1_NOISE_FACTOR * n * sums.largest
    keep = sv > max(1e-10 * sv[0], noise)
    if not keep.any():
        warnings.warn("The class means coincide (Sigma_B = 0); NC1 is undefined and is NaN.",
                      RuntimeWarning, stacklevel=3)
        return float("nan")
    dtype: type[np.floating] = np.float32 if x.dtype in (np.float16, np.float32) else np.float64
    basis: NDArray[np.floating] = np.ascontiguousarray((vt[keep].T / sv[keep]), dtype=dtype)
    means_d: NDArray[np.floating] = means.astype(dtype)
    total = 0.0
    for rows in _row_blocks(n, x.shape[1]):
        within = np.asarray(x[rows], dtype=dtype) - means_d[sums.inverse[rows]]
        total += float(np.sum(np.square(within @ basis, dtype=np.float64)))
    return total / n


def collapse_table(
    predictions: Sequence[Predictions],
    *,
    group_by: Sequence[str] | Callable[[Predictions], str] | None = None,
    labels: Labels = "true",
) -> pd.DataFrame:
    """:func:`collapse_metrics` of several checkpoints, one row per checkpoint.

    Parameters
    ----------
    predictions : sequence of Predictions
        Each with features (e.g. every seed of every loss family, on one split).
    group_by : sequence of str, callable or None
        The group of each checkpoint (e.g. its loss family): one string per checkpoint, or a
        function of the Predictions returning one. ``None`` puts each checkpoint in its own group,
        named after it.
    labels : {"true", "given"}

    Returns
    -------
    pandas.DataFrame
        Columns ``name``, ``group`` (str), ``intra``, ``inter``, ``nc1`` (float). Aggregate with
        :func:`collapse_summary`.
    """
    if isinstance(predictions, Predictions) or not isinstance(predictions, Sequence):
        raise TypeError("`predictions` must be a sequence of labviz.Predictions; got "
                        f"{type(predictions).__name__}.")
    if len(predictions) == 0:
        raise ValueError("`predictions` must not be empty; got 0 checkpoints.")
    for p in predictions:
        if not isinstance(p, Predictions):
            raise TypeError(f"`predictions` must hold labviz.Predictions; got {type(p).__name__}.")
    names = [p.name or f"#{i}" for i, p in enumerate(predictions)]
    if group_by is None:
        groups = names
    elif callable(group_by):
        groups = [str(group_by(p)) for p in predictions]
    else:
        if isinstance(group_by, str) or len(group_by) != len(predictions):
            raise ValueError(f"`group_by` must give one group per checkpoint ({len(predictions)}); "
                             f"got {1 if isinstance(group_by, str) else len(group_by)}.")
        groups = [str(g) for g in group_by]
    rows = [vars(collapse_metrics(p, labels=labels)) for p in predictions]
    return pd.DataFrame({"name": names, "group": groups, **{m: [r[m] for r in rows] for m in METRICS}})


def collapse_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample standard deviation (ddof=1) of each metric per group, in long form.

    Parameters
    ----------
    table : pandas.DataFrame
        As returned by :func:`collapse_table`.

    Returns
    -------
    pandas.DataFrame
        One row per (group, metric): columns ``group``, ``metric``, ``mean``, ``sd`` (NaN for a group
        of one checkpoint), ``n``. Groups keep their order of first appearance.

    Examples
    --------
    >>> t = pd.DataFrame({"name": ["a", "b"], "group": ["ls", "ls"], "intra": [0.1, 0.3],
    ...                   "inter": [0.5, 0.5], "nc1": [1.0, 1.0]})
    >>> collapse_summary(t).round(4).to_dict("records")[0]
    {'group': 'ls', 'metric': 'intra', 'mean': 0.2, 'sd': 0.1414, 'n': 2}
    """
    _check_table(table, ("group", *METRICS))
    long = table.melt(id_vars="group", value_vars=list(METRICS), var_name="metric")
    out = (long.groupby(["group", "metric"], sort=False)["value"]
           .agg(mean="mean", sd="std", n="count").reset_index())
    out["n"] = out["n"].astype(np.int64)
    order = {g: i for i, g in enumerate(pd.unique(table["group"]))}
    out = out.sort_values(["group", "metric"], key=lambda s: s.map(order) if s.name == "group"
                          else s.map({m: i for i, m in enumerate(METRICS)}), kind="stable")
    return out.reset_index(drop=True)


def _check_table(table: pd.DataFrame, columns: Sequence[str]) -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"`table` must be a pandas DataFrame; got {type(table).__name__}.")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"`table` must have columns {list(columns)}; got {list(table.columns)}.")


# ----- error enhancement ---------------------------------------------------------------------------
def misclassified_confidence(
    probs: Predictions | ArrayLike, y_true: ArrayLike | None = None
) -> NDArray[np.float64]:
    """Top-1 confidence of the misclassified samples ("error enhancement", MaxSup paper).

    Label smoothing only penalises the logit of the true class, so on a misclassified sample it
    can leave (even raise) the confidence of the wrong top-1 class; MaxSup penalises the top-1
    logit itself. Comparing these distributions between losses shows that difference.

    Parameters
    ----------
    probs : Predictions or array-like of shape (n_samples, n_classes)
        A :class:`~labviz.Predictions` (its ``y_true`` is used), or probabilities.
    y_true : array-like of shape (n_samples,), optional
        Required with probabilities, not allowed with a Predictions.

    Returns
    -------
    ndarray of shape (n_misclassified,)
        :math:`\\max_k p_{ik}` for every i with :math:`\\arg\\max_k p_{ik} \\ne y_i`, in sample order.

    Examples
    --------
    >>> misclassified_confidence([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]], [0, 0, 1]).tolist()
    [0.7, 0.6]
    """
    given = arrays_given(probs, "probs", {"y_true": y_true}, alternative="array")
    if given is None:
        source = as_predictions(probs, "probs")
        p, y = source.probs, source.y_true
    else:
        scores, labels = given
        y, p = v.check_classification(labels, scores)
    wrong = p.argmax(axis=1) != y
    return p[wrong].max(axis=1)
