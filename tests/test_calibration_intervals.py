"""Tests for the bootstrap intervals, ECE_sweep, smooth ECE and CORP in labviz.compute.calibration."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.polynomial import Polynomial
from scipy import stats

from labviz.compute import calibration as cal
from labviz.compute.calibration import (
    Interval,
    calibration_interval,
    corp_reliability,
    ece_sweep,
    expected_calibration_error,
    smooth_ece,
)
from labviz.core.predictions import softmax

HAND_P = np.array([[0.4, 0.3, 0.3], [0.5, 0.25, 0.25], [0.8, 0.1, 0.1], [0.1, 0.6, 0.3]])
HAND_Y = np.array([1, 0, 0, 2])

# A miscalibrated two-class model with a known population ECE: top-label confidence c ~ U(1/2, 1),
# correct with probability c + GAP(c). The gap changes sign at 0.75, so bins partly cancel.
GAP = 20 * Polynomial.fromroots([0.5, 0.75, 1.0])


def _population_ece(n_bins: int = 15) -> float:
    """sum_b P(bin b) |E[acc - conf | bin b]| = sum_b |integral_b GAP| / (1/2), exactly."""
    antiderivative = GAP.integ()
    edges = np.linspace(0, 1, n_bins + 1)
    return sum(abs(antiderivative(b) - antiderivative(max(a, 0.5))) / 0.5
               for a, b in zip(edges[:-1], edges[1:]) if b > 0.5)


def _draw_model(rng, n):
    c = rng.uniform(0.5, 1.0, n)
    correct = rng.random(n) < c + GAP(c)
    top = rng.integers(0, 2, n)
    p = np.empty((n, 2))
    p[np.arange(n), top], p[np.arange(n), 1 - top] = c, 1 - c
    return np.where(correct, top, 1 - top), p


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def data(rng):
    p = softmax(rng.normal(size=(300, 4)) * 2.0)
    u = rng.random(len(p))[:, None]
    y = np.minimum((u > p.cumsum(axis=1)).sum(axis=1), 3)  # labels drawn from the probabilities
    return y, p


def _scipy_ci(y, p, fn, n_boot, seed):
    res = stats.bootstrap((np.arange(len(y)),), lambda i: fn(y[i], p[i]), vectorized=False,
                          n_resamples=n_boot, method="percentile", rng=np.random.default_rng(seed))
    return res


# ----- agreement with scipy.stats.bootstrap --------------------------------------------------------
@pytest.mark.parametrize("metric, options, fn", [
    ("ece", {"strategy": "quantile"},
     lambda y, p: expected_calibration_error(y, p, strategy="quantile")),
    ("ece", {"classwise": True, "norm": "l2"},
     lambda y, p: expected_calibration_error(y, p, classwise=True, norm="l2")),
    ("debiased_ece", {"strategy": "quantile"},
     lambda y, p: cal.debiased_calibration_error(y, p, strategy="quantile")),
    ("nll", {}, cal.negative_log_likelihood),
    ("brier", {}, cal.brier_score),
])
def test_index_resampling_is_scipys_bootstrap_draw_for_draw(data, metric, options, fn):
    # Off the equal-width top-label path, the indices are drawn exactly as scipy draws them
    # (rng.integers(0, n, (n_boot, n)) in one batch), so the intervals agree to rounding.
    y, p = data
    ci = calibration_interval(y, p, metric=metric, n_boot=60, seed=3, **options)
    ref = _scipy_ci(y, p, fn, 60, 3)
    assert ci.low == pytest.approx(ref.confidence_interval.low, abs=1e-12)
    assert ci.high == pytest.approx(ref.confidence_interval.high, abs=1e-12)
    assert ci.estimate == pytest.approx(fn(y, p), abs=1e-12)


@pytest.mark.parametrize("metric, norm", [("ece", "l1"), ("ece", "l2"), ("ece", "max"),
                                          ("debiased_ece", "l1")])
def test_fast_path_agrees_with_scipy_within_monte_carlo_error(rng, metric, norm):
    # The fast path draws cell counts and confidence sums, not indices, so it agrees with scipy only
    # in law. With B replicas each, the 2.5% quantile of a near-normal bootstrap law of sd s has a
    # Monte-Carlo sd of sqrt(0.025 * 0.975 / B) / phi(1.96) * s = 2.67 s / sqrt(B); the difference
    # of two independent estimates has sqrt(2) times that: 0.084 s at B = 2000. We allow 4 of
    # those (0.34 s), and 0.1 s for the sd itself (its Monte-Carlo sd is s / sqrt(2B) = 0.016 s).
    y, p = _draw_model(rng, 800)
    fn = {"ece": lambda yy, pp: expected_calibration_error(yy, pp, norm=norm),
          "debiased_ece": cal.debiased_calibration_error}[metric]
    n_boot = 2000
    ref = _scipy_ci(y, p, fn, n_boot, 1)
    s = float(np.std(ref.bootstrap_distribution))
    ci = calibration_interval(y, p, metric=metric, norm=norm, n_boot=n_boot, seed=2)
    assert ci.estimate == pytest.approx(fn(y, p), abs=1e-12)
    assert abs(ci.low - ref.confidence_interval.low) < 0.34 * s
    assert abs(ci.high - ref.confidence_interval.high) < 0.34 * s
    width_sd = (ci.high - ci.low) / (2 * 1.96)  # the interval's width in units of a normal sd
    assert abs(width_sd - s) < 0.1 * s


def test_fast_path_is_used_for_small_cells_too(rng):
    # 3 samples per bin on average: every cell takes the exact (pick-by-pick) branch, so the
    # replicas can only hold sums of actual confidences; compare with scipy as above.
    y, p = _draw_model(rng, 45)
    ref = _scipy_ci(y, p, lambda yy, pp: expected_calibration_error(yy, pp), 2000, 1)
    s = float(np.std(ref.bootstrap_distribution))
    ci = calibration_interval(y, p, n_boot=2000, seed=2)
    assert abs(ci.low - ref.confidence_interval.low) < 0.34 * s
    assert abs(ci.high - ref.confidence_interval.high) < 0.34 * s


# ----- coverage ------------------------------------------------------------------------------------
def test_coverage_of_the_population_ece():
    # 200 data sets of 2,000 samples from the model above, 200 replicas each (about 0.3 s). The
    # binomial sd of the coverage over 200 repetitions is sqrt(0.95 * 0.05 / 200) = 1.5%; we allow
    # 3 sd below 95% plus 2% for the percentile method's known finite-sample under-coverage of a
    # biased plug-in estimator, and 3 sd above. Measured with these seeds: 0.935 (0.93 over 400).
    truth = _population_ece()
    assert truth == pytest.approx(0.0774320987654, abs=1e-12)
    rng = np.random.default_rng(0)
    covered = 0
    for rep in range(200):
        y, p = _draw_model(rng, 2000)
        ci = calibration_interval(y, p, n_boot=200, seed=rep)
        covered += ci.low <= truth <= ci.high
    assert 0.88 <= covered / 200 <= 0.99


# ----- behaviour -----------------------------------------------------------------------------------
def test_interval_is_seeded_and_holds_the_estimate(data):
    y, p = data
    a = calibration_interval(y, p, n_boot=300, seed=5)
    assert a == calibration_interval(y, p, n_boot=300, seed=5)
    assert a != calibration_interval(y, p, n_boot=300, seed=6)
    assert isinstance(a, Interval) and a.n_boot == 300 and a.confidence == 0.95
    assert a.low <= a.estimate <= a.high
    assert a.estimate == pytest.approx(expected_calibration_error(y, p), abs=1e-12)


def test_wider_confidence_gives_a_wider_interval(data):
    y, p = data
    narrow = calibration_interval(y, p, n_boot=500, confidence=0.5)
    wide = calibration_interval(y, p, n_boot=500, confidence=0.99)
    assert wide.low < narrow.low < narrow.high < wide.high


def test_fast_path_interval_shrinks_like_one_over_root_n(rng):
    y, p = _draw_model(rng, 40_000)
    small = calibration_interval(y[:2500], p[:2500], n_boot=400)
    big = calibration_interval(y, p, n_boot=400)
    ratio = (small.high - small.low) / (big.high - big.low)
    assert 2.5 < ratio < 6.0  # sqrt(16) = 4


def test_float32_and_lists_are_accepted(data):
    y, p = data
    a = calibration_interval(y, p.astype(np.float32), n_boot=100)
    b = calibration_interval(y.tolist(), p.astype(np.float32).tolist(), n_boot=100)
    assert a.low == pytest.approx(b.low) and a.high == pytest.approx(b.high)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"metric": "auc"}, ValueError, r"`metric` must be one of \['ece', 'debiased_ece', 'nll', "
                                    r"'brier'\]; got 'auc'"),
    ({"n_boot": 0}, ValueError, r"`n_boot` must be >= 1; got 0"),
    ({"n_boot": 10.5}, TypeError, r"`n_boot` must be an integer; got float 10.5"),
    ({"confidence": 1.0}, ValueError, r"`confidence` must be in \(0, 1\); got 1.0"),
    ({"confidence": float("nan")}, ValueError, r"`confidence` must be finite; got nan"),
    ({"confidence": "95%"}, TypeError, r"`confidence` must be a real number"),
    ({"seed": -1}, ValueError, r"`seed` must be >= 0; got -1"),
    ({"norm": "l2", "metric": "nll"}, ValueError, r"`norm` must be 'l1' unless metric='ece'"),
    ({"classwise": True, "metric": "brier"}, ValueError, r"`classwise` must be False for "
                                                          r"metric='brier'; got True"),
    ({"n_bins": 0}, ValueError, r"`n_bins` must be >= 1; got 0"),
    ({"strategy": "kmeans"}, ValueError, r"`strategy` must be one of"),
])
def test_bad_options_name_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        calibration_interval(HAND_Y, HAND_P, **kwargs)


@pytest.mark.parametrize("metric", ["ece", "nll"])
def test_bad_inputs_reuse_the_module_validation(metric):
    bad = HAND_P.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"`probs` must be finite; got 1 NaN or inf values"):
        calibration_interval(HAND_Y, bad, metric=metric)
    unnormalised = HAND_P.copy()
    unnormalised[0, 0] += 0.5
    with pytest.raises(ValueError, match=r"`probs` rows must sum to 1; got row 0 summing to 1.5"):
        calibration_interval(HAND_Y, unnormalised, metric=metric)
    with pytest.raises(ValueError, match=r"`probs` must have shape \(n_samples, n_classes\); got \(4,\)"):
        calibration_interval(HAND_Y, HAND_P[:, 0], metric=metric)
    with pytest.raises(ValueError, match=r"same number of samples; got `y_true` has 3, `probs` has 4"):
        calibration_interval(HAND_Y[:3], HAND_P, metric=metric)


# ----- ECE sweep -----------------------------------------------------------------------------------
def test_ece_sweep_hand_worked():
    # Confidences 0.6, 0.7, 0.8, 0.9 with correctness 1, 1, 0, 1: two bins give accuracies (1, 1/2),
    # already decreasing, so b* = 1 and the ECE is |3/4 - 0.75| = 0.
    probs = [[0.6, 0.4], [0.7, 0.3], [0.8, 0.2], [0.9, 0.1]]
    r = ece_sweep([0, 0, 1, 0], probs)
    assert (r.n_bins, r.max_bins) == (1, 4)
    assert r.ece == pytest.approx(0.0, abs=1e-12)
    # All wrong, then all right: monotone for every b up to n.
    r = ece_sweep([1, 1, 0, 0], probs)
    assert (r.n_bins, r.max_bins) == (4, 4)
    assert r.ece == pytest.approx((0.6 + 0.7 + 0.2 + 0.1) / 4)
    assert ece_sweep([1, 1, 0, 0], probs, max_bins=3).n_bins == 3


@pytest.mark.parametrize("seed", range(6))
def test_ece_sweep_stops_before_the_first_non_monotone_curve(seed):
    y, p = _draw_model(np.random.default_rng(seed), 400)
    r = ece_sweep(y, p)

    def monotone(b):
        curve = cal.reliability_curve(y, p, n_bins=b, strategy="quantile")
        acc = curve.accuracy[curve.count > 0]
        return bool(np.all(np.diff(acc) >= 0))

    assert all(monotone(b) for b in range(1, r.n_bins + 1))
    assert r.n_bins == r.max_bins or not monotone(r.n_bins + 1)
    assert r.ece == pytest.approx(expected_calibration_error(y, p, n_bins=r.n_bins,
                                                             strategy="quantile"), abs=1e-12)
    l2 = ece_sweep(y, p, norm="l2")
    assert l2.n_bins == r.n_bins
    assert l2.ece == pytest.approx(expected_calibration_error(y, p, n_bins=r.n_bins,
                                                              strategy="quantile", norm="l2"))


def test_sorted_quantile_is_numpys_bit_for_bit(rng):
    s = np.sort(np.concatenate([rng.random(997), np.full(50, 0.5)]))
    for b in (1, 2, 3, 7, 15, 100, 997, 2000):
        q = np.linspace(0, 1, b + 1)
        np.testing.assert_array_equal(cal._sorted_quantile(s, q), np.quantile(s, q))


def test_ece_sweep_validates():
    with pytest.raises(ValueError, match=r"`max_bins` must be >= 1; got 0"):
        ece_sweep(HAND_Y, HAND_P, max_bins=0)
    with pytest.raises(ValueError, match=r"`norm` must be one of"):
        ece_sweep(HAND_Y, HAND_P, norm="l3")


# ----- smooth ECE ----------------------------------------------------------------------------------
def test_smooth_ece_is_relplots_on_top_label_confidence(data):
    relplot = pytest.importorskip("relplot")
    y, p = data
    conf, correct = relplot.multiclass_logits_to_confidences(p, y, probs=True)
    assert smooth_ece(y, p) == pytest.approx(relplot.smECE(conf, correct), abs=1e-12)


def test_smooth_ece_validates():
    with pytest.raises(ValueError, match=r"`y_true` must hold labels in \[0, 2\]; got values in \[0, 3\]"):
        smooth_ece([0, 1, 2, 3], HAND_P)


# ----- CORP ----------------------------------------------------------------------------------------
def test_corp_curve_is_sklearns_isotonic_fit(data):
    from sklearn.isotonic import IsotonicRegression

    y, p = data
    d = corp_reliability(y, p, n_boot=50)
    conf, correct = p.max(axis=1), (p.argmax(axis=1) == y).astype(float)
    iso = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(conf, correct)
    np.testing.assert_array_equal(d.confidence, np.unique(conf))
    np.testing.assert_allclose(d.calibrated, iso.predict(d.confidence), atol=1e-12)
    assert d.count.sum() == len(y)
    assert np.all(np.diff(d.calibrated) >= 0)


def test_corp_decomposition_identity_and_signs(data):
    y, p = data
    d = corp_reliability(y, p, n_boot=20)
    correct = (p.argmax(axis=1) == y).astype(float)
    assert d.score == pytest.approx(np.mean((p.max(axis=1) - correct) ** 2))
    assert d.score == pytest.approx(d.mcb - d.dsc + d.unc, abs=1e-12)
    assert d.unc == pytest.approx(correct.mean() * (1 - correct.mean()))
    assert d.mcb >= 0 and d.dsc >= 0  # the identity and the constant are both isotonic fits


def test_corp_band_refit_is_isotonic_regression_on_redrawn_outcomes(data):
    # Drawing per-sample Bernoulli outcomes and refitting IsotonicRegression gives the same law as
    # the binomial-per-point refit used inside: check the refit step itself on one redraw.
    from sklearn.isotonic import IsotonicRegression, isotonic_regression

    y, p = data
    conf = np.round(p.max(axis=1), 2)  # ties, so that pooling by distinct confidence matters
    rng = np.random.default_rng(0)
    redrawn = (rng.random(len(conf)) < conf).astype(float)
    points, inverse, count = np.unique(conf, return_inverse=True, return_counts=True)
    hits = np.bincount(inverse, weights=redrawn)
    pooled = isotonic_regression(hits / count, sample_weight=count, increasing=True)
    iso = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(conf, redrawn)
    np.testing.assert_allclose(pooled, iso.predict(points), atol=1e-12)


def test_corp_bands_are_seeded_and_surround_the_fit(data):
    y, p = data
    a = corp_reliability(y, p, n_boot=200, seed=1)
    b = corp_reliability(y, p, n_boot=200, seed=1)
    np.testing.assert_array_equal(a.band_low, b.band_low)
    assert np.all(a.band_low <= a.band_high)
    inside = (a.band_low <= a.calibrated + 1e-12) & (a.calibrated <= a.band_high + 1e-12)
    assert inside.mean() > 0.9
    forecast = corp_reliability(y, p, n_boot=200, seed=1, null="forecast")
    # A consistency band is about the diagonal: it holds the confidences themselves mostly.
    near = (forecast.band_low <= forecast.confidence) & (forecast.confidence <= forecast.band_high)
    assert near.mean() > 0.8


def test_corp_validates():
    with pytest.raises(ValueError, match=r"`band_level` must be in \(0, 1\); got 0.0"):
        corp_reliability(HAND_Y, HAND_P, band_level=0.0)
    with pytest.raises(ValueError, match=r"`null` must be one of \['fitted', 'forecast'\]; got 'x'"):
        corp_reliability(HAND_Y, HAND_P, null="x")
    with pytest.raises(ValueError, match=r"`n_boot` must be >= 1; got 0"):
        corp_reliability(HAND_Y, HAND_P, n_boot=0)
