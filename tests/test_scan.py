"""The compiled row scan agrees with numpy, and hands anything outside [+0, inf) back to numpy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from labviz.core import _scan
from labviz.core import _validation as v
from labviz.compute.calibration import expected_calibration_error, reliability_curve


def numpy_stats(p):
    pred = p.argmax(axis=1)
    return p.sum(axis=1, dtype=np.float64), pred, p[np.arange(len(p)), pred].astype(np.float64), p.min()


def assert_same(p):
    sums, pred, top, lo = _scan.row_stats(p)
    want_sums, want_pred, want_top, want_lo = numpy_stats(p)
    np.testing.assert_array_equal(pred, want_pred)
    np.testing.assert_array_equal(top, want_top)
    np.testing.assert_allclose(sums, want_sums, rtol=1e-6)
    assert lo == want_lo


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 2), (7, 10), (300, 3), (50, 1000)])
def test_matches_numpy(dtype, shape):
    rng = np.random.default_rng(0)
    assert_same(rng.dirichlet(np.ones(shape[1]), size=shape[0]).astype(dtype))


def test_ties_give_the_first_maximum_as_argmax():
    p = np.array([[0.25, 0.25, 0.25, 0.25], [0.1, 0.45, 0.45, 0.0], [0.0, 0.0, 0.5, 0.5]])
    sums, pred, top, lo = _scan.row_stats(p)
    assert pred.tolist() == [0, 1, 2] and top.tolist() == [0.25, 0.45, 0.5] and lo == 0.0


def test_subnormal_and_zero_entries_order_as_values():
    tiny = np.finfo(np.float32).smallest_subnormal
    p = np.array([[tiny, 0.0, 2 * tiny], [0.0, 0.0, 0.0]], dtype=np.float32)
    assert_same(p)


@pytest.mark.parametrize("bad", [-0.0, -1e-9, np.nan, -np.nan, np.inf, -np.inf])
def test_entries_outside_nonnegative_finite_are_handed_back(bad):
    p = np.full((4, 3), 1 / 3)
    p[2, 1] = bad
    assert _scan.row_stats(p) is None


@pytest.mark.parametrize("layout", ["fortran", "reversed", "read-only", "strided"])
def test_any_memory_layout(layout):
    rng = np.random.default_rng(1)
    base = rng.dirichlet(np.ones(5), size=40).astype(np.float32)
    p = {"fortran": np.asfortranarray(base), "reversed": base[::-1], "strided": base[::2]}.get(
        layout, base)
    if layout == "read-only":
        p.setflags(write=False)
    assert_same(p)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=12),
                  elements=st.floats(0, 2.0**100, width=32, allow_subnormal=True)))
def test_property_matches_numpy_on_nonnegative_floats(p):
    assert_same(p)


def test_big_matrices_take_the_compiled_path_and_give_numpys_answers(monkeypatch):
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(10), size=_scan.MIN_ENTRIES // 10 + 1).astype(np.float32)
    y = rng.integers(0, 10, len(p))
    calls = []
    fused = _scan.top_label_bins
    monkeypatch.setattr(_scan, "top_label_bins", lambda *a: calls.append("bins") or fused(*a))
    compiled = (expected_calibration_error(y, p), reliability_curve(y, p).accuracy)
    assert calls == ["bins", "bins"]
    monkeypatch.setattr(_scan, "top_label_bins", lambda *a: None)  # both kernels decline:
    monkeypatch.setattr(_scan, "row_stats", lambda a: None)  # numpy all the way
    assert expected_calibration_error(y, p) == pytest.approx(compiled[0], abs=1e-12)
    np.testing.assert_allclose(reliability_curve(y, p).accuracy, compiled[1], atol=1e-12)


@pytest.mark.parametrize("bad, message", [
    (np.nan, "must be finite; got 1 NaN or inf"),
    (-0.5, r"must hold probabilities in \[0, 1\]; got values in \[-0.5"),
    (0.5, r"rows must sum to 1; got row 3 summing to 1.25"),
])
def test_big_bad_matrices_get_the_same_errors(bad, message):
    p = np.full((_scan.MIN_ENTRIES // 4 + 1, 4), 0.25, dtype=np.float32)
    p[3, 2] = bad
    with pytest.raises(ValueError, match=message):
        v.check_probs_top(p)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_bins", [1, 2, 15, 100])
def test_fused_binning_matches_the_numpy_path(dtype, n_bins):
    from labviz.compute import calibration as cal

    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.full(10, 0.3), size=_scan.MIN_ENTRIES // 10 + 7).astype(dtype)
    # ties and confidences on bin edges (0.5, 0.2 and 1.0 are edges of 2, 15 and 100 bins)
    p[:10] = [0.5, 0.5] + [0.0] * 8
    p[10:20] = [0.2] * 5 + [0.0] * 5
    p[20:30] = [1.0] + [0.0] * 9
    y = rng.integers(0, 10, len(p))
    fused, edges = cal._scanned_top_label_stats(y, p, n_bins)
    conf, hit, _ = cal._check_top_label(y, p)
    want, want_edges = cal._top_label_stats(conf, hit, n_bins, "uniform")
    np.testing.assert_array_equal(edges, want_edges)
    np.testing.assert_array_equal(fused.count, want.count)
    np.testing.assert_array_equal(fused.hit_sum, want.hit_sum)
    np.testing.assert_allclose(fused.conf_sum, want.conf_sum, rtol=1e-12)


@pytest.mark.parametrize("case", ["nan", "negative", "above one", "row sum", "label", "length",
                                  "minus zero"])
def test_fused_binning_hands_anything_doubtful_to_the_numpy_path(case):
    from labviz.compute import calibration as cal

    p = np.full((_scan.MIN_ENTRIES // 4 + 1, 4), 0.25)
    y = np.zeros(len(p), dtype=np.int64)
    if case == "nan":
        p[5, 1] = np.nan
    elif case == "negative":
        p[5, :2] = -0.25, 0.75
    elif case == "above one":
        p[5] = 1.5, -0.5, 0.0, 0.0
    elif case == "row sum":
        p[5, 0] = 0.5
    elif case == "label":
        y[3] = 4
    elif case == "length":
        y = y[:-1]
    else:
        p[5] = 0.5, 0.5, 0.0, -0.0
    assert cal._scanned_top_label_stats(y, p, 15) is None
