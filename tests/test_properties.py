"""Property tests (hypothesis) for every public compute function.

Modules covered: ``calibration``, ``confusion``, ``projection`` (PCA only, for speed), ``collapse``
and ``label_quality``. Each test states one invariant that must hold for *every* valid input;
hypothesis searches for a counter-example. Inputs are kept small (n <= 40 samples, C <= 6 classes)
so the whole file runs in well under a minute on a busy 2-core machine.

41 property tests. Several assert a few related invariants:

* calibration (10): ECE/RMS/MCE in [0, 1] (top-label and class-wise, both strategies); debiased
  error in [0, 1]; ECE = 0 on data calibrated by construction (any binning); the reliability curve
  of such data has accuracy == confidence; permutation invariance of ECE, debiased error, NLL,
  Brier and the curve; the curve counts every sample once and its own calibration error equals
  ``expected_calibration_error``; NLL >= 0 and Brier in [0, 2]; the accumulator fed in chunks equals
  the one-shot functions; temperature scaling keeps rows normalised and the argmax, and ``T = 1``
  is the plain softmax; ``fit_temperature`` is permutation invariant; the binary curve agrees with
  scikit-learn's ``calibration_curve``.
* confusion (9): the matrix sums to n with the right marginals; normalised rows (with support)
  and columns sum to 1, empty ones are 0, "all" sums to 1; permutation invariance;
  ``normalize_confusion`` equals ``confusion_matrix(normalize=...)``; ``per_class_table`` agrees
  with scikit-learn; ``top_confused_pairs`` lists off-diagonal cells, ranked, at most k;
  ``cell_samples`` returns exactly the cell's count; the accumulator equals the one-shot matrix;
  ``class_order`` is a permutation.
* projection (4): PCA output is finite of shape (n, 2) and deterministic; equivariant to sample
  permutation, invariant to translation and rotation, and scales with the features (up to the
  sign of each axis).
* collapse (11): intra-class variation in [0, 1], separability <= 1, NC1 >= 0; intra and separability
  invariant to per-sample positive scaling and to renaming classes; NC1 invariant to global scaling
  and translation; all metrics permutation invariant; template projection: centroid at the
  origin, templates form a triangle of the right side lengths, ``P(s x) - P(0) = s (P(x) - P(0))``,
  invariance to moving a feature orthogonally to the plane and to rotating features and weights
  together; class-mean cosines symmetric, in [-1, 1], unit diagonal; misclassified confidence.
  Regression tests: intra-class variation and the template plane at extreme scales (the norm
  must not overflow); separability of parallel features and NC1 of coinciding class means are
  NaN with a warning, not a value that depends on float rounding.
* label quality (6): per-sample loss >= 0, equals -log p and averages to the NLL; non-uniformity in
  [0, 1], invariant to permuting classes, 0 at uniform and 1 at one-hot; beta mixture weights sum
  to 1, components ordered, posterior in [0, 1] and invariant to an affine change of the loss
  scale; ``accuracy_by_decile`` bins partition the samples; ``find_label_errors`` returns valid,
  ranked rows; ``label_error_pairs`` counts add up.
  Expected failure: the mixture's normalisation overflows for losses spanning the float range.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from labviz.compute import calibration as cal
from labviz.compute import collapse as co
from labviz.compute import confusion as cf
from labviz.compute import label_quality as lq
from labviz.compute import projection as pj
from labviz.core.predictions import softmax

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])

STRATEGIES = ("uniform", "quantile")
NORMS = ("l1", "l2", "max")


# ----- strategies ---------------------------------------------------------------------------------
@st.composite
def classification(draw, *, max_n: int = 40, max_c: int = 6, min_n: int = 1):
    """Labels (n,) and probabilities (n, C) from softmaxed logits; sometimes float32, sometimes
    with exactly one-hot or exactly uniform rows (the edges of the probability simplex)."""
    n = draw(st.integers(min_n, max_n))
    c = draw(st.integers(2, max_c))
    logits = draw(arrays(np.float64, (n, c), elements=st.floats(-12, 12, allow_subnormal=False)))
    probs = softmax(logits)
    special = draw(st.sampled_from(["none", "onehot", "uniform"]))
    if special == "onehot":
        probs[0] = np.eye(c)[draw(st.integers(0, c - 1))]
    elif special == "uniform":
        probs[0] = 1.0 / c
    if draw(st.booleans()):
        probs = probs.astype(np.float32)
    y = draw(arrays(np.int64, n, elements=st.integers(0, c - 1)))
    return y, probs


@st.composite
def calibrated_by_construction(draw):
    """Top-label data whose every confidence level is exactly as accurate as it is confident.

    Each group of ``m`` samples shares one probability row whose top entry is ``k / m`` (``k``
    correct predictions among the ``m``). Any bin then holds whole groups, so its accuracy
    (sum of k) / (sum of m) equals its mean confidence (sum of m * k/m) / (sum of m): ECE = 0 for
    every binning.
    """
    c = draw(st.integers(2, 5))
    rows, labels = [], []
    for _ in range(draw(st.integers(1, 6))):
        m = draw(st.integers(1, 12))
        # the top entry must stay the argmax: k/m > (1 - k/m) / (c - 1)  <=>  k * c > m
        k = draw(st.integers(m // c + 1, m))
        conf = k / m
        top = draw(st.integers(0, c - 1))
        row = np.full(c, (1 - conf) / (c - 1))
        row[top] = conf
        others = [j for j in range(c) if j != top]
        for i in range(m):
            rows.append(row)
            labels.append(top if i < k else draw(st.sampled_from(others)))
    return np.array(labels), np.array(rows)


def permutations_of(n: int):
    return st.permutations(list(range(n))).map(np.array)


@st.composite
def features_and_labels(draw, *, max_n: int = 30, max_d: int = 5, max_k: int = 4):
    """Features (n, d) with no all-zero row and labels with at least two classes."""
    k = draw(st.integers(2, max_k))
    n = draw(st.integers(k, max_n))
    d = draw(st.integers(1, max_d))
    x = draw(arrays(np.float64, (n, d), elements=st.floats(-10, 10, allow_subnormal=False)))
    x[np.linalg.norm(x, axis=1) < 1e-3, 0] = 1.0
    y = np.concatenate([np.arange(k), draw(arrays(np.int64, n - k, elements=st.integers(0, k - 1)))])
    return x, y


def label_pairs(max_n: int = 40, max_c: int = 6):
    return st.integers(1, max_c).flatmap(lambda c: st.integers(1, max_n).flatmap(lambda n: st.tuples(
        arrays(np.int64, n, elements=st.integers(0, c - 1)),
        arrays(np.int64, n, elements=st.integers(0, c - 1)),
        st.just(c),
    )))


# ----- calibration --------------------------------------------------------------------------------
@FAST
@given(data=classification(), n_bins=st.integers(1, 20), strategy=st.sampled_from(STRATEGIES),
       norm=st.sampled_from(NORMS), classwise=st.booleans())
def test_calibration_error_is_in_unit_interval(data, n_bins, strategy, norm, classwise):
    y, probs = data
    e = cal.expected_calibration_error(y, probs, n_bins=n_bins, strategy=strategy, norm=norm,
                                       classwise=classwise)
    assert 0.0 <= e <= 1.0 + 1e-12
    d = cal.debiased_calibration_error(y, probs, n_bins=n_bins, strategy=strategy, classwise=classwise)
    assert 0.0 <= d <= 1.0 + 1e-12


@FAST
@given(data=calibrated_by_construction(), n_bins=st.integers(1, 25),
       strategy=st.sampled_from(STRATEGIES), norm=st.sampled_from(NORMS))
def test_ece_is_zero_on_data_calibrated_by_construction(data, n_bins, strategy, norm):
    y, probs = data
    e = cal.expected_calibration_error(y, probs, n_bins=n_bins, strategy=strategy, norm=norm)
    assert e == pytest.approx(0.0, abs=1e-12)


@FAST
@given(data=calibrated_by_construction(), n_bins=st.integers(1, 25))
def test_curve_of_calibrated_data_lies_on_the_diagonal(data, n_bins):
    y, probs = data
    curve = cal.reliability_curve(y, probs, n_bins=n_bins)
    filled = curve.count > 0
    np.testing.assert_allclose(curve.accuracy[filled], curve.confidence[filled], atol=1e-12)
    assert np.isnan(curve.accuracy[~filled]).all()


@FAST
@given(data=classification(), seed=st.integers(0, 2**32 - 1), n_bins=st.integers(1, 15),
       strategy=st.sampled_from(STRATEGIES), classwise=st.booleans())
def test_calibration_metrics_are_invariant_to_sample_order(data, seed, n_bins, strategy, classwise):
    y, probs = data
    perm = np.random.default_rng(seed).permutation(len(y))
    opts = dict(n_bins=n_bins, strategy=strategy, classwise=classwise)
    for fn in (cal.expected_calibration_error, cal.debiased_calibration_error):
        assert fn(y[perm], probs[perm], **opts) == pytest.approx(fn(y, probs, **opts), abs=1e-9)
    for fn in (cal.negative_log_likelihood, cal.brier_score):
        assert fn(y[perm], probs[perm]) == pytest.approx(fn(y, probs), rel=1e-9, abs=1e-12)
    a = cal.reliability_curve(y, probs, n_bins=n_bins, strategy=strategy)
    b = cal.reliability_curve(y[perm], probs[perm], n_bins=n_bins, strategy=strategy)
    np.testing.assert_array_equal(a.count, b.count)
    np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-12)
    np.testing.assert_allclose(a.accuracy, b.accuracy, atol=1e-12)


@FAST
@given(data=classification(), n_bins=st.integers(1, 20), strategy=st.sampled_from(STRATEGIES),
       norm=st.sampled_from(NORMS))
def test_curve_counts_every_sample_once_and_matches_ece(data, n_bins, strategy, norm):
    y, probs = data
    curve = cal.reliability_curve(y, probs, n_bins=n_bins, strategy=strategy)
    assert curve.count.sum() == len(y)
    assert curve.n_bins == n_bins and len(curve.edges) == n_bins + 1
    assert np.all(np.diff(curve.edges) >= 0) and curve.edges[0] == 0.0 and curve.edges[-1] == 1.0
    filled = curve.count > 0
    conf = curve.confidence[filled]
    assert np.all((conf >= curve.edges[:-1][filled] - 1e-7) & (conf <= curve.edges[1:][filled] + 1e-7))
    ece = cal.expected_calibration_error(y, probs, n_bins=n_bins, strategy=strategy, norm=norm)
    assert curve.calibration_error(norm) == pytest.approx(ece, abs=1e-9)


@FAST
@given(data=classification())
def test_proper_scores_are_in_range(data):
    y, probs = data
    assert cal.negative_log_likelihood(y, probs) >= 0.0
    assert -1e-9 <= cal.brier_score(y, probs) <= 2.0 + 1e-9


@FAST
@given(data=classification(min_n=2), n_bins=st.integers(1, 15), cut=st.floats(0, 1),
       classwise=st.booleans())
def test_accumulator_in_chunks_equals_one_shot(data, n_bins, cut, classwise):
    y, probs = data
    k = 1 + int(cut * (len(y) - 2))  # both chunks non-empty
    acc = cal.CalibrationAccumulator(probs.shape[1], n_bins=n_bins, classwise=classwise)
    other = cal.CalibrationAccumulator(probs.shape[1], n_bins=n_bins, classwise=classwise)
    merged = acc.update(y[:k], probs[:k]).merge(other.update(y[k:], probs[k:]))
    assert merged.n_samples == len(y)
    assert merged.expected_calibration_error() == pytest.approx(
        cal.expected_calibration_error(y, probs, n_bins=n_bins), abs=1e-9)
    if classwise:
        assert merged.expected_calibration_error(classwise=True) == pytest.approx(
            cal.expected_calibration_error(y, probs, n_bins=n_bins, classwise=True), abs=1e-9)
    np.testing.assert_array_equal(merged.reliability_curve().count,
                                  cal.reliability_curve(y, probs, n_bins=n_bins).count)


@FAST
@given(logits=arrays(np.float64, st.tuples(st.integers(1, 20), st.integers(2, 6)),
                     elements=st.floats(-50, 50, allow_subnormal=False)),
       t=st.floats(0.05, 20))
def test_temperature_keeps_rows_normalised_and_the_argmax(logits, t):
    p = cal.apply_temperature(logits, t)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    # where the top logit is unique, dividing by T > 0 keeps it on top
    top2 = np.sort(logits, axis=1)[:, -2:]
    unique = top2[:, 1] - top2[:, 0] > 1e-9
    np.testing.assert_array_equal(p.argmax(axis=1)[unique], logits.argmax(axis=1)[unique])
    np.testing.assert_allclose(cal.apply_temperature(logits, 1.0), softmax(logits.copy()), atol=1e-15)


@SLOW
@given(data=classification(min_n=2, max_n=25), seed=st.integers(0, 2**32 - 1))
def test_fit_temperature_is_invariant_to_sample_order(data, seed):
    y, probs = data
    logits = np.log(np.clip(probs.astype(np.float64), 1e-30, None))
    perm = np.random.default_rng(seed).permutation(len(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # separable data: T at the range's edge
        a = cal.fit_temperature(logits, y)
        b = cal.fit_temperature(logits[perm], y[perm])
    # exp(log(T_MAX)) may exceed T_MAX by an ulp
    assert cal.T_MIN * (1 - 1e-12) <= a <= cal.T_MAX * (1 + 1e-12)
    assert math.log(a) == pytest.approx(math.log(b), abs=1e-4)


@FAST
@given(q=arrays(np.float64, st.integers(1, 40), elements=st.floats(0, 1)),
       seed=st.integers(0, 2**32 - 1), n_bins=st.integers(1, 12))
def test_binary_curve_agrees_with_sklearn(q, seed, n_bins):
    from sklearn.calibration import calibration_curve

    y = np.random.default_rng(seed).integers(0, 2, len(q))
    curve = cal.reliability_curve_binary(y, q, n_bins=n_bins)
    filled = curve.count > 0
    prob_true, prob_pred = calibration_curve(y, q, n_bins=n_bins)
    np.testing.assert_allclose(curve.accuracy[filled], prob_true, atol=1e-12)
    np.testing.assert_allclose(curve.confidence[filled], prob_pred, atol=1e-12)


# ----- confusion ----------------------------------------------------------------------------------
@FAST
@given(pair=label_pairs())
def test_confusion_matrix_sums_to_n_with_the_right_marginals(pair):
    yt, yp, c = pair
    cm = cf.confusion_matrix(yt, yp, n_classes=c)
    assert cm.shape == (c, c) and cm.dtype == np.int64
    assert cm.sum() == len(yt)
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(yt, minlength=c))
    np.testing.assert_array_equal(cm.sum(axis=0), np.bincount(yp, minlength=c))
    assert np.trace(cm) == np.sum(yt == yp)


@FAST
@given(pair=label_pairs())
def test_normalised_rows_and_columns_sum_to_one_where_supported(pair):
    yt, yp, c = pair
    counts = cf.confusion_matrix(yt, yp, n_classes=c)
    rows = cf.confusion_matrix(yt, yp, n_classes=c, normalize="true")
    support = counts.sum(axis=1) > 0
    np.testing.assert_allclose(rows.sum(axis=1)[support], 1.0, atol=1e-12)
    assert np.all(rows[~support] == 0.0)
    cols = cf.confusion_matrix(yt, yp, n_classes=c, normalize="pred")
    predicted = counts.sum(axis=0) > 0
    np.testing.assert_allclose(cols.sum(axis=0)[predicted], 1.0, atol=1e-12)
    assert np.all(cols[:, ~predicted] == 0.0)
    assert cf.confusion_matrix(yt, yp, n_classes=c, normalize="all").sum() == pytest.approx(1.0)
    for m in (rows, cols):
        assert np.all((m >= 0) & (m <= 1))


@FAST
@given(pair=label_pairs(), seed=st.integers(0, 2**32 - 1),
       normalize=st.sampled_from([None, "true", "pred", "all"]))
def test_confusion_results_are_invariant_to_sample_order(pair, seed, normalize):
    yt, yp, c = pair
    perm = np.random.default_rng(seed).permutation(len(yt))
    np.testing.assert_array_equal(cf.confusion_matrix(yt[perm], yp[perm], n_classes=c, normalize=normalize),
                                  cf.confusion_matrix(yt, yp, n_classes=c, normalize=normalize))
    pd.testing.assert_frame_equal(cf.per_class_table(yt[perm], yp[perm], n_classes=c),
                                  cf.per_class_table(yt, yp, n_classes=c))
    pd.testing.assert_frame_equal(cf.top_confused_pairs(yt[perm], yp[perm], n_classes=c),
                                  cf.top_confused_pairs(yt, yp, n_classes=c))


@FAST
@given(pair=label_pairs(), normalize=st.sampled_from([None, "true", "pred", "all"]))
def test_normalize_confusion_equals_confusion_matrix(pair, normalize):
    yt, yp, c = pair
    counts = cf.confusion_matrix(yt, yp, n_classes=c)
    np.testing.assert_array_equal(cf.normalize_confusion(counts, normalize),
                                  cf.confusion_matrix(yt, yp, n_classes=c, normalize=normalize))


@FAST
@given(pair=label_pairs())
def test_per_class_table_agrees_with_sklearn(pair):
    from sklearn.metrics import precision_recall_fscore_support

    yt, yp, c = pair
    table = cf.per_class_table(yt, yp, n_classes=c)
    p, r, f, s = precision_recall_fscore_support(yt, yp, labels=np.arange(c), zero_division=0)
    np.testing.assert_allclose(table["precision"], p, atol=1e-12)
    np.testing.assert_allclose(table["recall"], r, atol=1e-12)
    np.testing.assert_allclose(table["f1"], f, atol=1e-12)
    np.testing.assert_array_equal(table["support"], s)
    assert table["support"].sum() == len(yt)


@FAST
@given(pair=label_pairs(), k=st.integers(1, 10), symmetric=st.booleans())
def test_top_confused_pairs_are_ranked_off_diagonal_cells(pair, k, symmetric):
    yt, yp, c = pair
    cm = cf.confusion_matrix(yt, yp, n_classes=c)
    top = cf.top_confused_pairs(yt, yp, n_classes=c, k=k, symmetric=symmetric)
    assert len(top) <= k
    assert np.all(top["true"] != top["pred"]) and np.all(top["count"] >= 1)
    assert np.all(np.diff(top["count"].to_numpy()) <= 0)
    for t, p, n in top[["true", "pred", "count"]].itertuples(index=False):
        assert n == (cm[t, p] + cm[p, t] if symmetric else cm[t, p])
    off = cm + cm.T if symmetric else cm
    n_nonzero = np.count_nonzero(np.triu(off, 1)) if symmetric else np.count_nonzero(off - np.diag(np.diag(off)))
    assert len(top) == min(k, n_nonzero)
    assert np.all((top["rate"] > 0) & (top["rate"] <= 1))


@FAST
@given(pair=label_pairs(), data=st.data())
def test_cell_samples_returns_exactly_the_cell(pair, data):
    yt, yp, c = pair
    i, j = data.draw(st.integers(0, c - 1)), data.draw(st.integers(0, c - 1))
    ids = np.arange(len(yt)) * 7 + 3
    got = cf.cell_samples(yt, yp, i, j, ids=ids)
    assert len(got) == cf.confusion_matrix(yt, yp, n_classes=c)[i, j]
    idx = (got - 3) // 7
    assert np.all(yt[idx] == i) and np.all(yp[idx] == j) and np.all(np.diff(got) > 0)


@FAST
@given(pair=label_pairs(), cut=st.floats(0, 1))
def test_confusion_accumulator_equals_one_shot(pair, cut):
    yt, yp, c = pair
    k = int(cut * len(yt))
    acc = cf.ConfusionAccumulator(c)
    if k:
        acc.update(yt[:k], yp[:k])
    if k < len(yt):
        acc = acc.merge(cf.ConfusionAccumulator(c).update(yt[k:], yp[k:]))
    np.testing.assert_array_equal(acc.matrix(), cf.confusion_matrix(yt, yp, n_classes=c))
    assert acc.n_samples == len(yt)


@FAST
@given(cm=st.integers(1, 7).flatmap(lambda c: arrays(np.int64, (c, c), elements=st.integers(0, 50))))
def test_class_order_is_a_permutation(cm):
    order = cf.class_order(cm)
    assert order.dtype == np.int64
    np.testing.assert_array_equal(np.sort(order), np.arange(len(cm)))


# ----- projection (PCA) ---------------------------------------------------------------------------
@st.composite
def well_conditioned_features(draw):
    """Features whose two leading principal axes are unique (distinct, separated singular values),
    so the PCA embedding is defined up to the sign of each axis."""
    n = draw(st.integers(4, 30))
    d = draw(st.integers(2, 5))
    x = draw(arrays(np.float64, (n, d), elements=st.floats(-10, 10, allow_subnormal=False)))
    s = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)
    s = np.append(s, 0.0)
    assume(s[1] > 1e-3 * max(s[0], 1.0))
    assume(s[0] - s[1] > 1e-2 * s[0] and s[1] - s[2] > 1e-2 * s[0])
    return x


def assert_equal_up_to_axis_signs(a: np.ndarray, b: np.ndarray, atol: float) -> None:
    for j in range(a.shape[1]):
        sign = 1.0 if np.abs(a[:, j] - b[:, j]).max() <= np.abs(a[:, j] + b[:, j]).max() else -1.0
        np.testing.assert_allclose(a[:, j], sign * b[:, j], atol=atol)


@FAST
@given(x=arrays(np.float64, st.tuples(st.integers(2, 30), st.integers(2, 5)),
                elements=st.floats(-1e3, 1e3, allow_subnormal=False)))
def test_pca_projection_is_finite_and_deterministic(x):
    emb = pj.project(x)
    assert emb.shape == (len(x), 2) and np.isfinite(emb).all()
    np.testing.assert_array_equal(pj.project(x), emb)


@FAST
@given(x=well_conditioned_features(), seed=st.integers(0, 2**32 - 1))
def test_pca_projection_is_equivariant_to_sample_order(x, seed):
    perm = np.random.default_rng(seed).permutation(len(x))
    assert_equal_up_to_axis_signs(pj.project(x[perm]), pj.project(x)[perm], atol=1e-6)


@FAST
@given(x=well_conditioned_features(), seed=st.integers(0, 2**32 - 1),
       shift=st.floats(-100, 100), scale=st.floats(0.01, 100))
def test_pca_projection_ignores_translation_and_rotation_and_scales(x, seed, shift, scale):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(x.shape[1], x.shape[1])))
    base = pj.project(x)
    tol = 1e-6 * max(1.0, np.abs(base).max())
    assert_equal_up_to_axis_signs(pj.project(x + shift), base, atol=tol)
    assert_equal_up_to_axis_signs(pj.project(x @ q), base, atol=tol)
    assert_equal_up_to_axis_signs(pj.project(scale * x), scale * base, atol=tol * scale)


@SLOW
@given(x=arrays(np.float64, st.tuples(st.integers(2, 20), st.integers(2, 4)),
                elements=st.floats(-10, 10, allow_subnormal=False)))
def test_projection_frame_rows_follow_the_predictions(x):
    from labviz.core.predictions import Predictions

    n = len(x)
    p = Predictions.from_arrays(y_true=np.arange(n) % 2, logits=np.stack([x[:, 0], -x[:, 0]], 1),
                                features=x, ids=np.arange(n) + 100)
    miss = pj.projection_frame(p)
    hit = pj.projection_frame(p)  # second call reads the on-disk cache
    pd.testing.assert_frame_equal(miss, hit)
    assert list(miss.columns) == list(pj.FRAME_COLUMNS)
    np.testing.assert_array_equal(miss["id"], np.arange(n) + 100)
    np.testing.assert_array_equal(miss[["x", "y"]].to_numpy(), pj.project(p.features))


# ----- collapse -----------------------------------------------------------------------------------
@FAST
@given(data=features_and_labels())
def test_collapse_metrics_are_in_range(data):
    x, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # d_total = 0 gives a warned NaN
        m = co.collapse_metrics(x, y)
    assert -1e-12 <= m.intra <= 1 + 1e-12
    assert np.isnan(m.inter) or m.inter <= 1 + 1e-12
    assert m.intra == pytest.approx(co.intra_class_variation(x, y), abs=1e-12)
    means = np.stack([x[y == k].mean(axis=0) for k in np.unique(y)])
    if np.abs(means - x.mean(axis=0)).max() > 1e-6:  # Sigma_B = 0 is tested below
        assert m.nc1 >= 0
        assert m.nc1 == pytest.approx(co.nc1(x, y), rel=1e-9, abs=1e-12)


@FAST
@given(data=features_and_labels(), scales=st.lists(st.floats(1e-3, 1e3), min_size=30, max_size=30),
       seed=st.integers(0, 2**32 - 1))
def test_cosine_metrics_ignore_sample_norms_and_class_names(data, scales, seed):
    x, y = data
    s = np.array(scales[: len(x)])[:, None]
    assert co.intra_class_variation(s * x, y) == pytest.approx(co.intra_class_variation(x, y), abs=1e-9)
    rename = np.random.default_rng(seed).permutation(y.max() + 1) + 3
    assert co.intra_class_variation(x, rename[y]) == pytest.approx(co.intra_class_variation(x, y), abs=1e-12)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    # all features along one direction is the degenerate d_total = 0 case (tested below)
    assume(1 - np.linalg.norm(unit.mean(axis=0)) ** 2 > 1e-6)
    a, b = co.inter_class_separability(s * x, y), co.inter_class_separability(x, y)
    assert a == pytest.approx(b, abs=1e-6)


def test_separability_of_parallel_features_does_not_depend_on_rounding():
    y = np.array([0, 1, 2, 3])
    values = []
    for s in (1.0, 0.001, 0.3, 7.0):
        x = np.ones((4, 2))
        x[2] *= s  # same direction, other norm: cosines are unchanged
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            values.append(co.inter_class_separability(x, y))
    assert all(np.isnan(values)), values


def test_cosine_metrics_ignore_extreme_sample_norms():
    x = np.array([[1.0, 0.2], [0.9, 0.1], [-1.0, 0.3], [-0.8, -0.1]])
    y = np.array([0, 0, 1, 1])
    base = co.intra_class_variation(x, y)
    assert co.intra_class_variation(1e200 * x, y) == pytest.approx(base, abs=1e-12)
    assert co.intra_class_variation(1e-200 * x, y) == pytest.approx(base, abs=1e-12)


def test_template_plane_ignores_extreme_weight_norms():
    w = np.array([[0.0, 0.0, 1.0], [2.0, 0.0, 0.5], [0.0, 3.0, -1.0]])
    x = np.array([[1.0, 1.0, 1.0], [-2.0, 0.5, 0.0]])
    base = co.template_projection(x, w, (0, 1, 2))
    for s in (1e200, 1e-200):  # the norms of w's differences overflow / underflow
        np.testing.assert_allclose(co.template_projection(s * x, s * w, (0, 1, 2)), s * base, rtol=1e-12)


@FAST
@given(data=features_and_labels(), scale=st.floats(1e-2, 1e2), shift=st.floats(-50, 50),
       seed=st.integers(0, 2**32 - 1))
def test_nc1_ignores_global_scale_translation_and_sample_order(data, scale, shift, seed):
    x, y = data
    means = np.stack([x[y == k].mean(axis=0) for k in np.unique(y)])
    sv = np.linalg.svd(means - x.mean(axis=0), compute_uv=False)
    assume(sv[0] > 1e-3)  # NC1 needs Sigma_B != 0 (the degenerate case is tested below)
    # and a well-defined rank: a pseudo-inverse jumps where a singular value crosses its cut-off
    assume(not np.any((sv > 1e-9 * sv[0]) & (sv < 1e-3 * sv[0])))
    base = co.nc1(x, y)
    assert co.nc1(scale * x + shift, y) == pytest.approx(base, rel=1e-6, abs=1e-9)
    perm = np.random.default_rng(seed).permutation(len(y))
    assert co.nc1(x[perm], y[perm]) == pytest.approx(base, rel=1e-9, abs=1e-12)
    assert co.intra_class_variation(x[perm], y[perm]) == pytest.approx(co.intra_class_variation(x, y), abs=1e-12)
    np.testing.assert_allclose(co.class_mean_cosine(x[perm], y[perm]), co.class_mean_cosine(x, y), atol=1e-9)


def test_nc1_is_consistent_when_class_means_coincide():
    y = np.array([0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    xs = [np.full((11, 1), c) for c in (1.0, 0.01, 3.0, 0.3)]
    # a subnormal second feature: pinv of ~1e-304 overflowed, NaN without a warning
    xs.append(np.tile([1.0, 2.58681694e-304], (11, 1)))
    values = []
    for x in xs:
        with pytest.warns(RuntimeWarning, match="class means coincide"):
            values.append(co.nc1(x, y))
    assert all(np.isnan(values)), values


@st.composite
def template_setup(draw):
    """Weights with three non-collinear templates (well away from degenerate), features to match."""
    d = draw(st.integers(2, 6))
    c = draw(st.integers(3, 6))
    w = draw(arrays(np.float64, (c, d), elements=st.floats(-5, 5, allow_subnormal=False)))
    classes = tuple(draw(st.permutations(list(range(c))))[:3])
    wa, wb, wc = w[list(classes)]
    e1, e2 = wb - wa, wc - wa
    area = np.sqrt(max(float(e1 @ e1) * float(e2 @ e2) - float(e1 @ e2) ** 2, 0.0))
    assume(area > 1e-2 * max(float(e1 @ e1), float(e2 @ e2), 1.0))
    n = draw(st.integers(1, 15))
    x = draw(arrays(np.float64, (n, d), elements=st.floats(-10, 10, allow_subnormal=False)))
    return x, w, classes


@FAST
@given(setup=template_setup())
def test_template_plane_is_centred_on_the_templates(setup):
    _, w, classes = setup
    tpl = co.template_projection(w[list(classes)], w, classes)
    np.testing.assert_allclose(tpl.sum(axis=0), 0.0, atol=1e-9)  # origin at the centroid
    np.testing.assert_allclose(co.template_projection(w[list(classes)].mean(axis=0, keepdims=True), w, classes),
                               0.0, atol=1e-9)
    for i, j in ((0, 1), (0, 2), (1, 2)):  # the templates lie in their own plane: sides preserved
        assert np.linalg.norm(tpl[i] - tpl[j]) == pytest.approx(
            np.linalg.norm(w[classes[i]] - w[classes[j]]), rel=1e-9, abs=1e-9)
    assert tpl[1, 1] == pytest.approx(tpl[0, 1], abs=1e-9) and tpl[1, 0] > tpl[0, 0]  # a -> b along +x
    assert tpl[2, 1] > tpl[0, 1]  # c above the line


@FAST
@given(setup=template_setup(), s=st.floats(-20, 20))
def test_template_projection_scales_about_the_projection_of_zero(setup, s):
    # The module docstring: origin at the centroid g, so P(s x) - P(0) = s (P(x) - P(0)).
    x, w, classes = setup
    p0 = co.template_projection(np.zeros((1, w.shape[1])), w, classes)
    lhs = co.template_projection(s * x, w, classes) - p0
    rhs = s * (co.template_projection(x, w, classes) - p0)
    np.testing.assert_allclose(lhs, rhs, atol=1e-8 * max(1.0, abs(s)) * max(1.0, np.abs(x).max()))


@FAST
@given(setup=template_setup(), seed=st.integers(0, 2**32 - 1), t=st.floats(-10, 10))
def test_template_projection_ignores_orthogonal_moves_and_joint_rotations(setup, seed, t):
    x, w, classes = setup
    base = co.template_projection(x, w, classes)
    rng = np.random.default_rng(seed)
    wa, wb, wc = w[list(classes)]
    basis, _ = np.linalg.qr(np.stack([wb - wa, wc - wa], axis=1))
    normal = rng.normal(size=w.shape[1])
    normal -= basis @ (basis.T @ normal)  # orthogonal to the plane (zero when d = 2)
    np.testing.assert_allclose(co.template_projection(x + t * normal, w, classes), base, atol=1e-8)
    q, _ = np.linalg.qr(rng.normal(size=(w.shape[1], w.shape[1])))
    np.testing.assert_allclose(co.template_projection(x @ q, w @ q, classes), base, atol=1e-8)
    perm = rng.permutation(len(x))
    np.testing.assert_allclose(co.template_projection(x[perm], w, classes), base[perm], atol=1e-12)


@FAST
@given(data=features_and_labels())
def test_class_mean_cosines_are_a_valid_similarity_matrix(data):
    x, y = data
    cos = co.class_mean_cosine(x, y)
    assert cos.shape == (y.max() + 1,) * 2
    finite = np.isfinite(cos)
    np.testing.assert_array_equal(finite, finite.T)
    np.testing.assert_allclose(cos[finite], cos.T[finite], atol=1e-12)
    assert np.all((cos[finite] >= -1) & (cos[finite] <= 1))
    diag = np.diag(cos)
    np.testing.assert_allclose(diag[np.isfinite(diag)], 1.0, atol=1e-9)


@FAST
@given(data=classification())
def test_misclassified_confidence_lists_the_errors(data):
    y, probs = data
    got = co.misclassified_confidence(probs, y)
    wrong = probs.argmax(axis=1) != y
    assert len(got) == wrong.sum()
    np.testing.assert_allclose(got, probs[wrong].max(axis=1))
    assert np.all(got >= 1.0 / probs.shape[1] - 1e-6)


# ----- label quality ------------------------------------------------------------------------------
@FAST
@given(data=classification(), seed=st.integers(0, 2**32 - 1))
def test_per_sample_loss_is_the_log_loss_of_each_sample(data, seed):
    y, probs = data
    loss = lq.per_sample_loss(y, probs)
    assert loss.shape == (len(y),) and np.all(loss >= 0) and np.all(loss <= 708.4)
    assert loss.mean() == pytest.approx(cal.negative_log_likelihood(y, probs), rel=1e-9)
    perm = np.random.default_rng(seed).permutation(len(y))
    np.testing.assert_array_equal(lq.per_sample_loss(y[perm], probs[perm]), loss[perm])


@FAST
@given(data=classification(), seed=st.integers(0, 2**32 - 1))
def test_non_uniformity_is_a_class_order_free_score_in_unit_interval(data, seed):
    _, probs = data
    nu = lq.non_uniformity(probs)
    assert nu.shape == (len(probs),) and np.all((nu >= 0) & (nu <= 1))
    cols = np.random.default_rng(seed).permutation(probs.shape[1])
    np.testing.assert_allclose(lq.non_uniformity(probs[:, cols]), nu, atol=1e-12)
    c = probs.shape[1]
    assert lq.non_uniformity(np.full((1, c), 1.0 / c))[0] == pytest.approx(0.0, abs=1e-12)
    assert lq.non_uniformity(np.eye(c))[0] == pytest.approx(1.0)


@SLOW
@given(losses=arrays(np.float64, st.integers(3, 40), elements=st.floats(0, 20, allow_subnormal=False)),
       a=st.floats(0.1, 10), b=st.floats(-5, 5))
def test_beta_mixture_is_a_valid_fit_on_any_loss_scale(losses, a, b):
    assume(np.ptp(losses) > 1e-3)
    m = lq.fit_beta_mixture(losses)
    assert m.weights.sum() == pytest.approx(1.0) and np.all(m.weights >= 0)
    assert np.all(m.alpha > 0) and np.all(m.beta > 0)
    assert m.means[0] <= m.means[1]
    post = m.posterior_noisy(losses)
    assert np.all((post >= 0) & (post <= 1))
    # min-max normalisation makes the fit blind to the loss unit and offset
    np.testing.assert_allclose(lq.fit_beta_mixture(a * losses + b).posterior_noisy(a * losses + b),
                               post, atol=1e-6)


def test_beta_mixture_on_losses_spanning_the_float_range():
    for losses in ([-1e308, 1e308], [-1e308, 0.0, 1e308]):
        try:
            m = lq.fit_beta_mixture(losses)
        except ValueError as exc:  # refusing the input clearly is also fine
            assert "`losses`" in str(exc)
            continue
        assert np.isfinite([m.loss_min, m.loss_max, *m.alpha, *m.beta, *m.weights]).all(), m


@FAST
@given(score=arrays(np.float64, st.integers(1, 40), elements=st.floats(-5, 5)),
       seed=st.integers(0, 2**32 - 1), data=st.data())
def test_accuracy_by_decile_partitions_the_samples(score, seed, data):
    correct = np.random.default_rng(seed).random(len(score)) < 0.5
    n_bins = data.draw(st.integers(1, len(score)))
    t = lq.accuracy_by_decile(score, correct, n_bins=n_bins)
    assert t["n"].sum() == len(score) and len(t) == n_bins
    assert t["n"].max() - t["n"].min() <= 1
    assert np.all((t["accuracy"] >= 0) & (t["accuracy"] <= 1))
    assert (t["accuracy"] * t["n"]).sum() == pytest.approx(correct.sum())
    assert np.all(np.diff(t["score_mean"].to_numpy()) >= -1e-12)
    assert np.all(t["score_max"].to_numpy()[:-1] <= t["score_min"].to_numpy()[1:])


@settings(max_examples=8, deadline=None)
@given(data=classification(min_n=12, max_n=30, max_c=3), seed=st.integers(0, 2**32 - 1))
def test_find_label_errors_returns_valid_ranked_rows(data, seed):
    y, probs = data
    y = y.copy()
    y[: probs.shape[1]] = np.arange(probs.shape[1])  # every class present, as required
    ids = np.random.default_rng(seed).permutation(len(y)) + 1000
    errors = lq.find_label_errors(y, probs, ids=ids)
    assert list(errors.columns) == ["rank", "index", "id", "given", "predicted", "self_confidence"]
    idx = errors["index"].to_numpy()
    assert len(np.unique(idx)) == len(idx) and np.all((idx >= 0) & (idx < len(y)))
    np.testing.assert_array_equal(errors["rank"], np.arange(1, len(idx) + 1))
    np.testing.assert_array_equal(errors["id"], ids[idx])
    np.testing.assert_array_equal(errors["given"], y[idx])
    np.testing.assert_allclose(errors["self_confidence"], probs[idx, y[idx]])
    pairs = lq.label_error_pairs(errors)
    assert pairs["count"].sum() == len(errors)
    assert np.all(np.diff(pairs["count"].to_numpy()) <= 0)
