"""Tests for labviz.figures.calibration: figure contents through fig.data / fig.layout."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from labviz import Predictions
from labviz.calibration import (
    expected_calibration_error,
    reliability_curve,
    temperature_scaling_report,
)
from labviz.figures.calibration import (
    DIAGONAL_NAME,
    GAP_COLOR,
    ReliabilityDisplay,
    TemperatureScalingDisplay,
    reliability_figure,
    temperature_scaling_figure,
)
from labviz.figures.style import TEMPLATE, series_color
from labviz.predictions import softmax


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def preds(rng):
    z = rng.normal(size=(300, 4)) * 3
    y = rng.integers(0, 4, 300)
    return [Predictions.from_arrays(y_true=y, logits=z / s, name=f"m{s}") for s in (1, 2, 4)]


def _traces(fig, name_part):
    return [t for t in fig.data if t.name and name_part in t.name]


def test_single_curve_bars_gap_diagonal_and_histogram(preds):
    p = preds[0]
    curve = reliability_curve(p.y_true, p.probs, n_bins=10)
    fig = reliability_figure({"net": curve})
    assert isinstance(fig, go.Figure)
    diag = _traces(fig, DIAGONAL_NAME)
    assert len(diag) == 1 and list(diag[0].x) == [0, 1] and list(diag[0].y) == [0, 1]
    ece = expected_calibration_error(p.y_true, p.probs, n_bins=10)
    (acc,) = _traces(fig, "net (ECE")
    assert acc.type == "bar" and f"{ece:.3f}" in acc.name
    filled = curve.count > 0
    np.testing.assert_allclose(acc.y, curve.accuracy[filled])
    (gap,) = _traces(fig, "Gap")
    # Gap bars go from the accuracy to the mean confidence of each bin.
    base = np.asarray(gap.base, dtype=float)  # plotly stores `base` as an object array
    np.testing.assert_allclose(base, curve.accuracy[filled])
    np.testing.assert_allclose(base + np.asarray(gap.y), curve.confidence[filled])
    assert gap.marker.color == GAP_COLOR
    (hist,) = _traces(fig, "samples")
    assert hist.yaxis == "y2" and hist.xaxis == "x2"
    np.testing.assert_allclose(hist.y, curve.count / curve.count.sum())
    # The two rows share the confidence axis.
    assert fig.layout.xaxis.matches == "x2" and fig.layout.xaxis2.title.text == "Confidence"


def test_counts_are_in_hover_data(preds):
    p = preds[0]
    curve = reliability_curve(p.y_true, p.probs, n_bins=10)
    fig = reliability_figure(curve)
    (acc,) = _traces(fig, "(ECE")
    assert "customdata[0]" in acc.hovertemplate and "n = " in acc.hovertemplate
    np.testing.assert_array_equal(np.asarray(acc.customdata)[:, 0], curve.count[curve.count > 0])
    (hist,) = _traces(fig, "samples")
    np.testing.assert_array_equal(hist.customdata, curve.count)


def test_several_models_overlaid_in_series_colours(preds):
    fig = ReliabilityDisplay.from_predictions(preds, n_bins=8).plot()
    lines = _traces(fig, "(ECE")
    assert [t.name.split(" (")[0] for t in lines] == ["m1", "m2", "m4"]
    assert all(t.type == "scatter" and t.mode == "markers+lines" for t in lines)
    assert [t.line.color for t in lines] == [series_color(i) for i in range(3)]
    assert len(_traces(fig, "samples")) == 3 and fig.layout.barmode == "overlay"
    # Every model keeps its gap segments with it when toggled in the legend.
    gaps = _traces(fig, "gap")
    assert [g.legendgroup for g in gaps] == ["m1", "m2", "m4"]


def test_without_histogram_is_one_row(preds):
    fig = ReliabilityDisplay.from_predictions(preds[0]).plot(show_histogram=False, show_gap=False)
    assert {t.yaxis for t in fig.data} <= {None, "y"}
    assert "yaxis2" not in fig.layout.to_plotly_json()
    assert not _traces(fig, "Gap") and fig.layout.xaxis.title.text == "Confidence"


def test_style_is_applied(preds):
    fig = ReliabilityDisplay.from_predictions(preds[0]).plot()
    assert fig.layout.template == TEMPLATE


def test_display_from_arrays_matches_from_predictions(preds):
    p = preds[1]
    a = ReliabilityDisplay.from_predictions(p, n_bins=6)
    b = ReliabilityDisplay.from_predictions(y_true=p.y_true, probs=p.probs, n_bins=6, names=["m2"])
    np.testing.assert_array_equal(a.curves["m2"].count, b.curves["m2"].count)
    np.testing.assert_allclose(a.curves["m2"].accuracy, b.curves["m2"].accuracy)


def test_display_several_arrays_and_mapping(preds):
    y = preds[0].y_true
    several = ReliabilityDisplay.from_predictions(y_true=y, probs=[p.probs for p in preds])
    assert list(several.curves) == ["model 1", "model 2", "model 3"]
    mapped = ReliabilityDisplay.from_predictions({"x": preds[0], "y": preds[1]}, strategy="quantile")
    assert list(mapped.curves) == ["x", "y"]
    # Equal-mass bins: counts differ by at most the number of tied confidences (none here).
    assert np.ptp(mapped.curves["x"].count) <= 1


def test_display_errors(preds):
    with pytest.raises(TypeError, match="got both"):
        ReliabilityDisplay.from_predictions(preds[0], y_true=preds[0].y_true)
    with pytest.raises(TypeError, match="got neither"):
        ReliabilityDisplay.from_predictions()
    with pytest.raises(ValueError, match="`names` must have 3 entries"):
        ReliabilityDisplay.from_predictions(preds, names=["a"])
    with pytest.raises(ValueError, match="`names` must be unique"):
        ReliabilityDisplay.from_predictions(preds[:2], names=["a", "a"])
    with pytest.raises(TypeError, match="must hold Predictions objects"):
        ReliabilityDisplay.from_predictions([preds[0], "x"])
    with pytest.raises(TypeError, match="must be a ReliabilityCurve or a mapping"):
        reliability_figure([1, 2])
    with pytest.raises(ValueError, match="`kind` must be one of"):
        reliability_figure(reliability_curve(preds[0].y_true, preds[0].probs), kind="pie")


def test_temperature_scaling_before_after(rng):
    z = rng.normal(size=(1500, 5)) * 4
    pz = softmax(z / 2.5)
    y = np.minimum((rng.random(1500)[:, None] > pz.cumsum(1)).sum(1), 4)
    val, test = (z[:750], y[:750]), Predictions.from_arrays(y_true=y[750:], logits=z[750:])
    disp = TemperatureScalingDisplay.from_predictions(val, test, n_bins=10)
    report = temperature_scaling_report(*val, z[750:], y[750:], n_bins=10)
    assert disp.report.temperature == pytest.approx(report.temperature, rel=1e-6)
    fig = disp.plot()
    lines = _traces(fig, "(ECE")
    assert len(lines) == 2 and lines[0].name.startswith("before") and lines[1].name.startswith("after")
    assert "T = " in fig.layout.title.text and f"{report.ece_after:.3f}" in fig.layout.title.text
    with pytest.raises(TypeError, match="must be a TemperatureScalingReport"):
        temperature_scaling_figure("report")
    with pytest.raises(TypeError, match=r"`val` must be a Predictions or a \(logits, y_true\) tuple"):
        TemperatureScalingDisplay.from_predictions(z, test)
