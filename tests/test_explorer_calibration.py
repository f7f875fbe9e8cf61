"""Tests for the explorer's calibration interactions: clicking a reliability bin, the temperature
slider and the "Fitted T" button (labviz.widgets.explorer). No browser: handlers are called, controls set
and plotly click events fed through the FigureWidget, as in tests/test_widgets.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from labviz import Predictions, zoo
from labviz.core._numeric import softmax
from labviz.compute.calibration import expected_calibration_error, fit_temperature, reliability_curve
from labviz.widgets.explorer import T_RANGE
from labviz.widgets import explore

N_BINS = 10


@pytest.fixture
def toy(rng):
    n, k = 400, 4
    y = rng.integers(0, k, n)
    means = rng.normal(0, 4, (k, 5))
    logits = rng.normal(0, 1.5, (n, k)) + 2.5 * np.eye(k)[y]
    return Predictions.from_arrays(
        y_true=y, logits=logits, features=means[y] + rng.normal(0, 1, (n, 5)),
        ids=np.arange(500, 500 + n), class_names=[f"c{j}" for j in range(k)],
        images=rng.random((n, 8, 8)), name="toy")


def _highlight(fw):
    assert fw.data[-1].name == "highlight"
    data = fw.data[-1].customdata
    return sorted(int(row[0]) for row in (data if data is not None else ()))


def _bin_of(conf, n_bins=N_BINS):
    edges = np.linspace(0, 1, n_bins + 1)
    return np.searchsorted(edges[1:-1], conf, side="left")


def _accuracy_trace(fw, name):
    return next(t for t in fw.data if t.name.startswith(f"{name} (ECE"))


def _click(fw, trace_index, point_index):
    trace = fw.data[trace_index]
    fw._handler_js2py_pointsCallback({"new": {
        "event_type": "plotly_click",
        "points": {"trace_indexes": [trace_index], "point_indexes": [point_index],
                   "xs": [trace.x[point_index]], "ys": [trace.y[point_index]]},
        "selector": None, "device_state": None,
    }})


def _fullest_bin(conf):
    return int(np.argmax(np.bincount(_bin_of(conf), minlength=N_BINS)))


# ----- bin click ---------------------------------------------------------------------------------
def test_select_bin_highlights_exactly_the_bin_and_names_it(toy):
    ex = explore(toy, n_bins=N_BINS, max_thumbnails=4)
    conf = toy.probs.max(axis=1)
    b = _fullest_bin(conf)
    in_bin = _bin_of(conf) == b
    expected = np.sort(toy.ids[in_bin])
    assert ex.curves["toy"].count[b] == len(expected)  # the diagram counts the same samples
    got = ex.select_bin("toy", b)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(ex.state.highlighted_ids, expected)
    assert _highlight(ex.projection_figures[0]) == expected.tolist()
    assert ex.samples.thumbnails_html.value.count("<img") == 4
    acc = toy.correct[in_bin].mean()
    assert ex.status == (f"Bin {b / N_BINS:.2f}–{(b + 1) / N_BINS:.2f} of toy: "
                         f"{len(expected)} samples highlighted, accuracy {acc:.2f}.")
    assert ex.curves["toy"].n_samples == len(expected)


def test_clicking_a_bin_of_the_diagram_selects_it(toy):
    ex = explore(toy, n_bins=N_BINS)
    fw = ex.reliability.figure
    conf = toy.probs.max(axis=1)
    b = _fullest_bin(conf)
    filled = np.flatnonzero(ex.curves["toy"].count > 0)
    acc_index = next(i for i, t in enumerate(fw.data) if t.name.startswith("toy (ECE"))
    _click(fw, acc_index, int(np.flatnonzero(filled == b)[0]))
    np.testing.assert_array_equal(ex.state.highlighted_ids, np.sort(toy.ids[_bin_of(conf) == b]))
    # the histogram bar of a bin selects the same samples (after going back to all samples)
    ex.clear_selection()
    hist_index = next(i for i, t in enumerate(fw.data) if t.name == "toy samples")
    _click(fw, hist_index, b)
    np.testing.assert_array_equal(ex.state.highlighted_ids, np.sort(toy.ids[_bin_of(conf) == b]))
    # the diagonal is not a bin
    before = ex.state.highlighted_ids.copy()
    _click(fw, 0, 0)
    np.testing.assert_array_equal(ex.state.highlighted_ids, before)


def test_bin_of_a_selection_narrows_it_and_uses_the_current_temperature(toy):
    ex = explore(toy, n_bins=N_BINS)
    cell = ex.select_cell(1, 1)
    ex.set_temperature(2.0)
    conf = softmax(toy.logits.astype(np.float64) / 2.0).max(axis=1)
    pos = np.isin(toy.ids, cell)
    b = _fullest_bin(conf[pos])
    got = ex.select_bin("toy", b)
    np.testing.assert_array_equal(got, np.sort(toy.ids[pos & (_bin_of(conf) == b)]))


def test_bin_click_of_the_right_panel_selects_that_models_bin(toy):
    other = Predictions.from_arrays(y_true=toy.y_true, logits=3 * toy.logits,
                                    features=toy.features, ids=toy.ids,
                                    class_names=toy.class_names, name="sharp")
    ex = explore([toy, other], n_bins=N_BINS)
    conf = other.probs.max(axis=1)
    got = ex.select_bin("sharp", N_BINS - 1)
    expected = np.sort(toy.ids[_bin_of(conf) == N_BINS - 1])
    np.testing.assert_array_equal(got, expected)
    assert _highlight(ex.projection_figures[0]) == _highlight(ex.projection_figures[1])
    assert ex.status.startswith("Bin 0.90–1.00 of sharp:")


def test_empty_bin_and_bad_arguments(toy):
    ex = explore(toy, n_bins=N_BINS)
    empty = int(np.flatnonzero(ex.curves["toy"].count == 0)[0])
    ex.select_cell(0, 0)
    before = ex.state.highlighted_ids.copy()
    assert ex.select_bin("toy", empty).size == 0
    assert ex.status.startswith("Empty selection: no samples of toy in the bin")
    np.testing.assert_array_equal(ex.state.highlighted_ids, before)
    with pytest.raises(ValueError, match="`model` must be one of"):
        ex.select_bin("nope", 0)
    with pytest.raises(ValueError, match=r"`bin_index` must be in \[0, 9\]; got 10"):
        ex.select_bin("toy", 10)


# ----- temperature slider ------------------------------------------------------------------------
def test_slider_rescales_the_reliability_curve_ece_and_table_not_the_confusion(toy):
    ex = explore(toy, n_bins=N_BINS)
    confusion = ex.confusion.figure.to_json()
    t = 2.5
    ex.controls["temperature"].value = t  # the slider's handler
    assert ex.state.temperature == pytest.approx(t)
    t = ex.state.temperature
    probs = softmax(toy.logits.astype(np.float64) / t)
    expected = reliability_curve(toy.y_true, probs, n_bins=N_BINS)
    curve = ex.curves["toy"]
    np.testing.assert_array_equal(curve.count, expected.count)
    np.testing.assert_allclose(curve.accuracy, expected.accuracy)
    np.testing.assert_allclose(curve.confidence, expected.confidence)
    # the drawn accuracy bars are those of the rescaled curve
    filled = expected.count > 0
    bars = _accuracy_trace(ex.reliability.figure, "toy")
    np.testing.assert_allclose(bars.y, expected.accuracy[filled])
    ece = expected_calibration_error(toy.y_true, probs, n_bins=N_BINS)
    assert ex.ece["toy"] == pytest.approx(ece, abs=1e-12)
    assert f"ECE toy {ece:.3f}" in ex.status and f"T = {t:.3f}" in ex.status
    assert f"ECE {ece:.3f}" in bars.name
    # the table's confidence column: mean top-1 confidence per predicted class
    conf, pred = probs.max(axis=1), toy.y_pred
    np.testing.assert_allclose(
        ex.per_class["confidence"],
        [conf[pred == k].mean() for k in range(toy.n_classes)])
    # argmax is invariant: confusion matrix and recalls stay
    assert ex.confusion.figure.to_json() == confusion


def test_temperature_one_reproduces_the_original_views(toy):
    ex = explore(toy, n_bins=N_BINS)
    before = (ex.reliability.figure.to_json(), ex.confusion.figure.to_json(),
              ex.per_class.copy())
    original = reliability_curve(toy.y_true, toy.probs, n_bins=N_BINS)
    np.testing.assert_array_equal(ex.curves["toy"].confidence, original.confidence)
    ex.set_temperature(0.5)
    assert ex.reliability.figure.to_json() != before[0]
    ex.set_temperature(1.0)
    assert ex.reliability.figure.to_json() == before[0]
    assert ex.confusion.figure.to_json() == before[1]
    assert ex.per_class.equals(before[2])
    np.testing.assert_array_equal(ex.curves["toy"].accuracy, original.accuracy)


def test_temperature_keeps_the_selection(toy):
    ex = explore(toy, n_bins=N_BINS)
    ids = ex.select_cell(2, 2)
    ex.set_temperature(0.7)
    np.testing.assert_array_equal(ex.state.highlighted_ids, ids)
    pos = np.isin(toy.ids, ids)
    probs = softmax(toy.logits.astype(np.float64)[pos] / 0.7)
    ece = expected_calibration_error(toy.y_true[pos], probs, n_bins=N_BINS)
    assert ex.ece["toy"] == pytest.approx(ece, abs=1e-12)
    assert f"selection of {len(ids)} samples" in ex.status


def test_bad_temperature(toy):
    ex = explore(toy)
    with pytest.raises(ValueError, match=r"`temperature` must be > 0; got -1.0"):
        ex.set_temperature(-1)
    with pytest.raises(TypeError, match="`temperature` must be a real number"):
        ex.set_temperature("2")


# ----- fitted T button ---------------------------------------------------------------------------
def test_fitted_t_button_uses_the_zoo_validation_split():
    name = "digits-ce-s0"
    ex = explore(name, n_bins=N_BINS)
    val = zoo.predictions(name, "val", with_images=False)
    expected = fit_temperature(val.logits, val.y_true)
    assert "validation split" in ex.controls["fitted_temperature"].tooltip
    ex.controls["fitted_temperature"].click()
    assert ex.state.temperature == pytest.approx(expected)
    if T_RANGE[0] <= expected <= T_RANGE[1]:
        assert ex.controls["temperature"].value == pytest.approx(expected)
    assert f"Fitted T = {expected:.3f}, fitted on the val split of {name}" in ex.status
    p = ex.predictions[0]
    ece = expected_calibration_error(
        p.y_true, softmax(p.logits.astype(np.float64) / expected), n_bins=N_BINS)
    assert ex.ece[name] == pytest.approx(ece, abs=1e-12)


def test_fitted_t_without_a_validation_set_fits_the_shown_samples_and_says_so(toy):
    ex = explore(toy)
    assert "no validation set" in ex.controls["fitted_temperature"].tooltip
    t = ex.use_fitted_temperature()
    assert t == pytest.approx(fit_temperature(toy.logits, toy.y_true))
    assert ex.controls["temperature"].value == pytest.approx(t)
    assert "shown samples of toy themselves" in ex.status and "optimistic" in ex.status
