"""Tests for labviz.compute.calibration: hand-worked numbers, reference implementations, validation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from labviz.compute import calibration as cal
from labviz.compute.calibration import (
    CalibrationAccumulator,
    apply_temperature,
    brier_score,
    debiased_calibration_error,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    reliability_curve,
    reliability_curve_binary,
    temperature_scaling_report,
)
from labviz.core.predictions import softmax

# Hand-worked example, 3 classes, n_bins=2 (edges 0, 0.5, 1):
#   row                  y  pred  conf  correct  bin
#   [0.4, 0.3, 0.3]      1  0     0.4   no       0
#   [0.5, 0.25, 0.25]    0  0     0.5   yes      0   (0.5 is an inner edge: right-closed -> bin 0)
#   [0.8, 0.1, 0.1]      0  0     0.8   yes      1
#   [0.1, 0.6, 0.3]      2  1     0.6   no       1
# bin 0: conf 0.45, acc 0.5, gap 0.05; bin 1: conf 0.7, acc 0.5, gap 0.2; two samples each.
# l1 = 0.5 * 0.05 + 0.5 * 0.2 = 0.125; l2 = sqrt(0.5 * 0.05^2 + 0.5 * 0.2^2); max = 0.2.
HAND_P = np.array([[0.4, 0.3, 0.3], [0.5, 0.25, 0.25], [0.8, 0.1, 0.1], [0.1, 0.6, 0.3]])
HAND_Y = np.array([1, 0, 0, 2])


def _random_probs(rng, n, c, scale=2.0):
    z = rng.normal(size=(n, c)) * scale
    return z, softmax(z.copy())


def _sample_labels(rng, probs):
    # Inverse-CDF sampling of one label per row, vectorised.
    u = rng.random(len(probs))[:, None]
    return np.minimum((u > probs.cumsum(axis=1)).sum(axis=1), probs.shape[1] - 1)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def data(rng):
    _, p = _random_probs(rng, 2000, 5)
    return rng.integers(0, 5, 2000), p


# ----- hand-worked numbers ----------------------------------------------------------------------
def test_ece_hand_worked_norms():
    assert expected_calibration_error(HAND_Y, HAND_P, n_bins=2) == pytest.approx(0.125, abs=1e-12)
    assert expected_calibration_error(HAND_Y, HAND_P, n_bins=2, norm="l2") == pytest.approx(
        np.sqrt(0.5 * 0.05**2 + 0.5 * 0.2**2), abs=1e-12)
    assert expected_calibration_error(HAND_Y, HAND_P, n_bins=2, norm="max") == pytest.approx(
        0.2, abs=1e-12)


def test_reliability_curve_hand_worked():
    c = reliability_curve(HAND_Y, HAND_P, n_bins=2)
    np.testing.assert_array_equal(c.edges, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(c.count, [2, 2])
    np.testing.assert_allclose(c.confidence, [0.45, 0.7], atol=1e-12)
    np.testing.assert_allclose(c.accuracy, [0.5, 0.5], atol=1e-12)
    assert c.calibration_error("l1") == pytest.approx(0.125, abs=1e-12)


def test_empty_bins_are_nan_with_zero_count():
    c = reliability_curve(HAND_Y, HAND_P, n_bins=10)
    # Confidences 0.4, 0.5, 0.6, 0.8 fill bins 3, 4, 5, 7 (right-closed: 0.5 -> (0.4, 0.5]).
    np.testing.assert_array_equal(np.flatnonzero(c.count), [3, 4, 5, 7])
    assert np.isnan(c.confidence[c.count == 0]).all() and np.isnan(c.accuracy[c.count == 0]).all()


def test_classwise_hand_worked():
    # Class 0: p = 0.8 (y=0) in bin 1, 0.4 (y=0) in bin 0: gaps 0.2 and 0.6 -> 0.4.
    # Class 1: p = 0.2, 0.6, never the label: gaps 0.2 and 0.6 -> 0.4. Mean 0.4.
    # Top-label: confidences 0.8 (right) and 0.6 (wrong), both in bin 1: |0.5 - 0.7| = 0.2.
    y, p = [0, 0], [[0.8, 0.2], [0.4, 0.6]]
    assert expected_calibration_error(y, p, n_bins=2, classwise=True) == pytest.approx(0.4)
    assert expected_calibration_error(y, p, n_bins=2, classwise=True, norm="max") == pytest.approx(0.6)
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.2)


def test_confidence_one_falls_in_last_bin():
    y, p = [0, 0, 1], [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]
    c = reliability_curve(y, p, n_bins=4)
    np.testing.assert_array_equal(c.count, [0, 0, 0, 3])
    # Predictions 0, 1, 1 against labels 0, 0, 1: two right out of three at confidence 1.
    assert expected_calibration_error(y, p, n_bins=4) == pytest.approx(1 / 3, abs=1e-12)


def test_torchmetrics_puts_one_in_phantom_bin_but_labviz_does_not():
    # Why we do not simply call torchmetrics: with one extra bin its max-norm sees conf 1.0 alone.
    from torchmetrics.functional.classification import multiclass_calibration_error

    y = np.array([0, 1])
    p = np.array([[1.0, 0.0], [0.95, 0.05]])
    tm = multiclass_calibration_error(torch.from_numpy(p), torch.from_numpy(y), 2, n_bins=2,
                                      norm="max").item()
    ours = expected_calibration_error(y, p, n_bins=2, norm="max")
    assert tm == pytest.approx(0.95, abs=1e-6)  # bin of 0.95 alone, wrong
    assert ours == pytest.approx(abs(0.5 - 0.975), abs=1e-12)  # both share the last bin


def test_zero_confidence_in_first_bin_binary():
    c = reliability_curve_binary([0, 1, 1], [0.0, 0.5, 1.0], n_bins=2)
    np.testing.assert_array_equal(c.count, [2, 1])
    np.testing.assert_allclose(c.accuracy, [0.5, 1.0])


def test_single_class_in_y_true_is_fine():
    y = [0, 0, 0, 0]
    assert expected_calibration_error(y, HAND_P, n_bins=2, classwise=True) >= 0
    assert np.isfinite(expected_calibration_error(y, HAND_P, n_bins=2))


def test_brier_and_nll_hand_worked():
    # Row 0: (0.2^2 + 0.2^2) = 0.08; row 1: 0.6^2 + 0.6^2 = 0.72; mean 0.4.
    assert brier_score([0, 1], [[0.8, 0.2], [0.6, 0.4]]) == pytest.approx(0.4, abs=1e-12)
    # -(log 0.8 + log 0.4) / 2
    assert negative_log_likelihood([0, 1], [[0.8, 0.2], [0.6, 0.4]]) == pytest.approx(
        -(np.log(0.8) + np.log(0.4)) / 2, abs=1e-12)
    assert np.isfinite(negative_log_likelihood([1], [[1.0, 0.0]]))


def test_debiased_hand_worked():
    # Bin (0.5, 1]: 4 samples, conf 0.9, acc 0.5: 0.4^2 - 0.5 * 0.5 / 3. Bin [0, 0.5] holds one
    # sample (conf 0.5, on the edge): skipped, but it still counts in N = 5.
    y = [0, 0, 1, 1, 0]
    p = [[0.9, 0.1]] * 4 + [[0.5, 0.5]]
    expected = np.sqrt(4 / 5 * (0.4**2 - 0.25 / 3))
    assert debiased_calibration_error(y, p, n_bins=2) == pytest.approx(expected, abs=1e-12)


def test_debiased_is_clipped_at_zero():
    # Perfectly calibrated bin: plug-in 0, minus a positive variance term -> clipped to 0.
    y, p = [0, 1, 0, 1], [[0.5, 0.5]] * 4
    assert debiased_calibration_error(y, p, n_bins=1) == 0.0


# ----- reference implementations ----------------------------------------------------------------
@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_ece_matches_torchmetrics(data, norm):
    from torchmetrics.functional.classification import multiclass_calibration_error

    y, p = data
    assert p.max() < 1.0  # torchmetrics would put 1.0 in a phantom bin
    tm = multiclass_calibration_error(torch.from_numpy(p), torch.from_numpy(y), p.shape[1],
                                      n_bins=15, norm=norm).item()
    assert expected_calibration_error(y, p, n_bins=15, norm=norm) == pytest.approx(tm, abs=1e-6)


@pytest.mark.parametrize(("n_bins", "strategy", "equal_intervals"),
                         [(15, "uniform", True), (7, "uniform", True), (10, "quantile", False)])
def test_ece_matches_netcal(data, n_bins, strategy, equal_intervals):
    from netcal.metrics import ECE

    y, p = data
    # netcal switches to a binary (positive-class) ECE when y holds <= 2 distinct labels.
    assert len(np.unique(y)) > 2
    ref = ECE(bins=n_bins, equal_intervals=equal_intervals, detection=False).measure(p, y)
    ours = expected_calibration_error(y, p, n_bins=n_bins, strategy=strategy)
    assert ours == pytest.approx(ref, abs=1e-6)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_binary_curve_matches_sklearn(rng, strategy):
    from sklearn.calibration import calibration_curve

    q = rng.beta(0.5, 2.0, size=400)  # skewed, so uniform bins near 1 are empty
    y = (rng.random(400) < q).astype(int)
    prob_true, prob_pred = calibration_curve(y, q, n_bins=10, strategy=strategy)
    c = reliability_curve_binary(y, q, n_bins=10, strategy=strategy)
    filled = c.count > 0  # sklearn drops empty bins
    if strategy == "uniform":
        assert not filled.all()
    np.testing.assert_allclose(c.accuracy[filled], prob_true, atol=1e-12)
    np.testing.assert_allclose(c.confidence[filled], prob_pred, atol=1e-12)


def test_top_label_curve_is_binary_curve_of_confidence(data):
    y, p = data
    top = reliability_curve(y, p, n_bins=8)
    binary = reliability_curve_binary((p.argmax(1) == y).astype(int), p.max(1), n_bins=8)
    np.testing.assert_array_equal(top.count, binary.count)
    np.testing.assert_allclose(top.accuracy, binary.accuracy, atol=1e-12)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_classwise_is_mean_of_one_vs_rest(data, strategy, norm):
    y, p = data
    per_class = [reliability_curve_binary((y == k).astype(int), p[:, k], n_bins=6,
                                          strategy=strategy).calibration_error(norm)
                 for k in range(p.shape[1])]
    ours = expected_calibration_error(y, p, n_bins=6, strategy=strategy, norm=norm, classwise=True)
    assert ours == pytest.approx(np.mean(per_class), abs=1e-12)


def test_debiased_matches_torchmetrics_debias(rng):
    from torchmetrics.functional.classification.calibration_error import _ce_compute

    _, p = _random_probs(rng, 3000, 4)
    y = rng.integers(0, 4, 3000)
    counts = reliability_curve(y, p, n_bins=5).count
    # torchmetrics keeps the plug-in term of single-sample bins, Kumar et al. drop them: avoid those.
    assert counts[counts > 0].min() >= 2
    conf, hit = torch.from_numpy(p.max(1)), torch.from_numpy((p.argmax(1) == y).astype(float))
    ref = _ce_compute(conf, hit, 5, norm="l2", debias=True).item()
    assert debiased_calibration_error(y, p, n_bins=5) == pytest.approx(ref, abs=1e-6)


def test_debiased_is_below_plugin_and_closer_to_truth(rng):
    # Labels drawn from the probabilities themselves: true calibration error is 0.
    _, p = _random_probs(rng, 500, 3)
    y = _sample_labels(rng, p)
    plugin = expected_calibration_error(y, p, n_bins=10, norm="l2")
    assert debiased_calibration_error(y, p, n_bins=10) < plugin


def test_brier_and_nll_match_sklearn(data):
    from sklearn.metrics import brier_score_loss, log_loss

    y, p = data
    assert brier_score(y, p) == pytest.approx(
        brier_score_loss(y, p, labels=range(5), scale_by_half=False), abs=1e-12)
    assert negative_log_likelihood(y, p) == pytest.approx(log_loss(y, p, labels=range(5)), abs=1e-12)


def test_float32_and_torch_inputs_give_the_float64_result(data):
    y, p = data
    p32 = p.astype(np.float32)
    p32 /= p32.sum(1, keepdims=True)
    for classwise in (False, True):
        want = expected_calibration_error(y, p32.astype(np.float64), classwise=classwise)
        got = expected_calibration_error(torch.from_numpy(y), torch.from_numpy(p32),
                                         classwise=classwise)
        assert got == pytest.approx(want, abs=1e-12)


def test_uniform_bin_index_matches_searchsorted_on_edges():
    # The ceil() fast path must agree with the documented edges exactly, even at and next to them.
    for n_bins in (1, 3, 10, 15, 100):
        e = np.linspace(0, 1, n_bins + 1)
        x = np.clip(np.concatenate([e, np.nextafter(e, 2), np.nextafter(e, -1)]), 0, 1)
        fast = cal._bin_index(x, e, uniform=True)
        np.testing.assert_array_equal(fast, np.searchsorted(e[1:-1], x, side="left"))
        x32 = x.astype(np.float32)
        np.testing.assert_array_equal(cal._bin_index(x32, e, uniform=True),
                                      np.searchsorted(e[1:-1], x32.astype(np.float64)))


# ----- temperature scaling -----------------------------------------------------------------------
def _overconfident(rng, n, t0=2.5, c=5):
    z = rng.normal(size=(n, c)) * 4.0
    return z, _sample_labels(rng, softmax(z / t0))


def test_fit_temperature_recovers_known_temperature(rng):
    z, y = _overconfident(rng, 4000, t0=2.5)
    assert fit_temperature(z, y) == pytest.approx(2.5, rel=0.1)


def test_fit_temperature_recovers_under_confidence(rng):
    z, y = _overconfident(rng, 4000, t0=0.5)
    assert fit_temperature(z, y) == pytest.approx(0.5, rel=0.1)


def test_fit_temperature_is_the_nll_minimum(rng):
    z, y = _overconfident(rng, 1000)
    t = fit_temperature(z, y)
    nll = [negative_log_likelihood(y, apply_temperature(z, t * f)) for f in (0.98, 1.0, 1.02)]
    assert nll[1] < nll[0] and nll[1] < nll[2]


def test_fit_temperature_warns_at_search_edge():
    z = np.array([[10.0, -10.0], [-10.0, 10.0]])  # separable: NLL falls as T -> 0
    with pytest.warns(RuntimeWarning, match="edge of the searched range"):
        t = fit_temperature(z, [0, 1])
    assert t == pytest.approx(cal.T_MIN, rel=1e-3)


def test_apply_temperature_matches_torch(rng):
    z = rng.normal(size=(20, 4)) * 3
    ref = torch.softmax(torch.from_numpy(z) / 1.7, dim=1).numpy()
    np.testing.assert_allclose(apply_temperature(z, 1.7), ref, atol=1e-12)


def test_temperature_scaling_report_lowers_ece(rng):
    zv, yv = _overconfident(rng, 3000)
    zt, yt = _overconfident(rng, 3000)
    r = temperature_scaling_report(zv, yv, zt, yt, n_bins=10)
    assert r.temperature > 1.5
    assert r.ece_after < r.ece_before / 2
    assert r.nll_after < r.nll_before and r.brier_after < r.brier_before
    assert r.accuracy == pytest.approx(np.mean(zt.argmax(1) == yt))
    p_after = apply_temperature(zt, r.temperature)
    assert r.ece_after == pytest.approx(expected_calibration_error(yt, p_after, n_bins=10), abs=1e-12)
    assert r.nll_after == pytest.approx(negative_log_likelihood(yt, p_after), abs=1e-9)
    assert r.brier_after == pytest.approx(brier_score(yt, p_after), abs=1e-12)
    assert r.curve_after.n_samples == 3000
    frame = r.to_frame()
    assert frame.shape[0] == 1 and frame.loc[0, "temperature"] == r.temperature
    assert "curve_before" not in frame.columns


# ----- accumulator ---------------------------------------------------------------------------------
def test_accumulator_chunked_and_merged_equals_one_shot(data):
    y, p = data
    a = CalibrationAccumulator(5, n_bins=12).update(y[:700], p[:700]).update(y[700:900], p[700:900])
    b = CalibrationAccumulator(5, n_bins=12).update(y[900:], p[900:])
    merged = a.merge(b)
    assert merged.n_samples == len(y) and a.n_samples == 900  # merge leaves its inputs alone
    for norm in ("l1", "l2", "max"):
        for classwise in (False, True):
            want = expected_calibration_error(y, p, n_bins=12, norm=norm, classwise=classwise)
            assert abs(merged.expected_calibration_error(norm=norm, classwise=classwise)
                       - want) < 1e-12
    for classwise in (False, True):
        want = debiased_calibration_error(y, p, n_bins=12, classwise=classwise)
        assert abs(merged.debiased_calibration_error(classwise=classwise) - want) < 1e-12
    got, want = merged.reliability_curve(), reliability_curve(y, p, n_bins=12)
    np.testing.assert_array_equal(got.count, want.count)
    np.testing.assert_array_equal(got.edges, want.edges)
    np.testing.assert_allclose(got.confidence, want.confidence, atol=1e-12)
    np.testing.assert_allclose(got.accuracy, want.accuracy, atol=1e-12)


def test_accumulator_top_label_only(data):
    y, p = data
    acc = CalibrationAccumulator(5, classwise=False).update(y, p)
    assert abs(acc.expected_calibration_error() - expected_calibration_error(y, p)) < 1e-12
    with pytest.raises(ValueError, match="accumulator built with classwise=False"):
        acc.expected_calibration_error(classwise=True)


def test_accumulator_rejects_quantile():
    with pytest.raises(ValueError, match="must be 'uniform' for a CalibrationAccumulator"):
        CalibrationAccumulator(3, strategy="quantile")


def test_accumulator_errors():
    acc = CalibrationAccumulator(3, n_bins=4)
    with pytest.raises(ValueError, match="at least one sample"):
        acc.expected_calibration_error()
    with pytest.raises(ValueError, match=r"`probs` must have shape \(n_samples, 3\); got \(1, 2\)"):
        acc.update([0], [[0.5, 0.5]])
    with pytest.raises(ValueError, match="same \\(n_classes, n_bins, classwise\\)"):
        acc.merge(CalibrationAccumulator(3, n_bins=5))
    with pytest.raises(TypeError, match="must be a CalibrationAccumulator"):
        acc.merge("not an accumulator")
    with pytest.raises(ValueError, match="`n_classes` must be >= 2"):
        CalibrationAccumulator(1)


# ----- validation: one check per message ----------------------------------------------------------
def test_rejects_nan():
    p = HAND_P.copy()
    p[0, 0] = np.nan
    with pytest.raises(ValueError, match="`probs` must be finite; got 1 NaN or inf values"):
        expected_calibration_error(HAND_Y, p)


def test_rejects_rows_not_summing_to_one():
    with pytest.raises(ValueError, match="`probs` rows must sum to 1; got row 1 summing to 0.9"):
        expected_calibration_error([0, 1], [[0.5, 0.5], [0.5, 0.4]])


def test_rejects_logits_as_probs():
    with pytest.raises(ValueError, match=r"must hold probabilities in \[0, 1\].*apply a softmax"):
        expected_calibration_error([0, 1], [[2.0, -1.0], [0.0, 1.0]])


def test_rejects_value_above_one_even_if_row_sums_to_one():
    # The top-label path reads the largest entry off the confidences: it must still catch this.
    with pytest.raises(ValueError, match=r"got values in \[-0.5, 1.5\]"):
        expected_calibration_error([0], [[1.5, -0.5]])


def test_rejects_labels_out_of_range():
    msg = r"`y_true` must hold labels in \[0, 2\]; got values in \[0, 3\]"
    with pytest.raises(ValueError, match=msg):
        expected_calibration_error([1, 0, 3, 2], HAND_P)


def test_rejects_non_integer_labels():
    with pytest.raises(TypeError, match="`y_true` must hold integer class labels"):
        expected_calibration_error([0.5, 0, 1, 2], HAND_P)


def test_rejects_non_numeric_probs():
    with pytest.raises(TypeError, match="`probs` must hold real numbers"):
        expected_calibration_error([0, 1], [["a", "b"], ["c", "d"]])


def test_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="same number of samples; got `y_true` has 3, `probs` has 4"):
        expected_calibration_error([0, 1, 2], HAND_P)


def test_rejects_empty():
    with pytest.raises(ValueError, match="`probs` must not be empty"):
        expected_calibration_error([], np.empty((0, 3)))


def test_rejects_1d_probs():
    msg = r"`probs` must have shape \(n_samples, n_classes\); got \(4,\)"
    with pytest.raises(ValueError, match=msg):
        expected_calibration_error([0, 1, 0, 1], [0.1, 0.9, 0.3, 0.7])


def test_rejects_single_column():
    with pytest.raises(ValueError, match="`probs` must have at least 2 classes"):
        brier_score([0, 0], [[1.0], [1.0]])


def test_rejects_n_bins_below_one():
    with pytest.raises(ValueError, match="`n_bins` must be >= 1; got 0"):
        reliability_curve(HAND_Y, HAND_P, n_bins=0)


def test_rejects_non_integer_n_bins():
    with pytest.raises(TypeError, match="`n_bins` must be an integer; got float 2.5"):
        expected_calibration_error(HAND_Y, HAND_P, n_bins=2.5)


def test_rejects_bad_strategy():
    with pytest.raises(ValueError, match=r"`strategy` must be one of \['uniform', 'quantile'\]"):
        expected_calibration_error(HAND_Y, HAND_P, strategy="equal")


def test_rejects_bad_norm():
    with pytest.raises(ValueError, match=r"`norm` must be one of \['l1', 'l2', 'max'\]; got 'l3'"):
        expected_calibration_error(HAND_Y, HAND_P, norm="l3")


def test_rejects_non_positive_temperature():
    with pytest.raises(ValueError, match="`temperature` must be finite and > 0; got 0.0"):
        apply_temperature([[0.0, 1.0]], 0.0)


def test_rejects_non_numeric_temperature():
    with pytest.raises(TypeError, match="`temperature` must be a real number; got str"):
        apply_temperature([[0.0, 1.0]], "2")


def test_rejects_nan_logits():
    with pytest.raises(ValueError, match="`logits` must be finite"):
        fit_temperature([[0.0, np.inf]], [0])


def test_rejects_prob_pos_out_of_range():
    with pytest.raises(ValueError, match=r"`prob_pos` must hold probabilities in \[0, 1\]"):
        reliability_curve_binary([0, 1], [0.5, 1.5])


def test_report_names_test_arrays_in_messages():
    z = np.zeros((4, 2))
    with pytest.raises(ValueError, match="`test_y` must hold labels in"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            temperature_scaling_report(z, [0, 1, 0, 1], z, [0, 1, 2, 1])
