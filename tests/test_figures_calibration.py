"""Tests for labviz.figures.calibration: figure contents through fig.data / fig.layout."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from labviz import Predictions
from labviz.compute.calibration import (
    ReliabilityCurve,
    corp_reliability,
    expected_calibration_error,
    reliability_curve,
    temperature_scaling_report,
)
from labviz.figures.calibration import (
    DIAGONAL_NAME,
    FULL_COUNT,
    CLEAR,
    GAP_FILL,
    GAP_LINE_COLOR,
    MAX_OPACITY,
    MIN_OPACITY,
    BinIntervals,
    CorpDisplay,
    ReliabilityDisplay,
    TemperatureScalingDisplay,
    bin_intervals,
    binomial_interval,
    corp_figure,
    count_note,
    count_opacity,
    count_size,
    reliability_figure,
    temperature_scaling_figure,
)
from labviz.figures.style import TEMPLATE, series_color
from labviz.core.predictions import softmax


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
    # hatched; clear where it lies over its bar (under-confident), so the bar keeps its colour,
    # and on a pale red ground where it stands on white (over-confident)
    over = curve.confidence[filled] > curve.accuracy[filled]
    assert list(gap.marker.color) == [GAP_FILL if o else CLEAR for o in over]
    assert gap.marker.pattern.shape == "/"
    assert gap.marker.pattern.fgcolor == GAP_LINE_COLOR and gap.showlegend is not False
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
    with pytest.raises(TypeError, match=r"`predictions` must be a labviz.Predictions \(or a sequence "
                                        r"or mapping of them\), or None with the arrays `y_true` and "
                                        r"`probs`; got Predictions and `y_true`\."):
        ReliabilityDisplay.from_predictions(preds[0], y_true=preds[0].y_true)
    with pytest.raises(TypeError, match="got None and none of the arrays"):
        ReliabilityDisplay.from_predictions()
    with pytest.raises(TypeError, match="got None and `probs` without `y_true`"):
        ReliabilityDisplay.from_predictions(probs=preds[0].probs)
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
    with pytest.raises(TypeError, match=r"`val` must be a labviz.Predictions, or a \(logits, y_true\) tuple; got ndarray"):
        TemperatureScalingDisplay.from_predictions(z, test)


# ----- per-bin intervals and fading -----------------------------------------------------------------
def _scipy_ci(k, n, method):
    from scipy.stats import binomtest

    ci = binomtest(int(k), int(n)).proportion_ci(0.95, method=method)
    return ci.low, ci.high


def _hits(curve):
    filled = curve.count > 0
    return np.rint(curve.accuracy[filled] * curve.count[filled]).astype(int), curve.count[filled]


@pytest.mark.parametrize("kind", ["bars", "lines"])
def test_error_bars_are_wilson_intervals_of_each_bin(preds, kind):
    p = preds[0]
    curve = reliability_curve(p.y_true, p.probs, n_bins=10)
    fig = reliability_figure(curve, kind=kind)
    (acc,) = _traces(fig, "(ECE")
    k, n = _hits(curve)
    expected = np.array([_scipy_ci(a, b, "wilson") for a, b in zip(k, n)])
    y = np.asarray(acc.y, dtype=float)
    assert acc.error_y.type == "data" and acc.error_y.symmetric is False
    np.testing.assert_allclose(y - np.asarray(acc.error_y.arrayminus), expected[:, 0], atol=1e-12)
    np.testing.assert_allclose(y + np.asarray(acc.error_y.array), expected[:, 1], atol=1e-12)
    data = np.asarray(acc.customdata, dtype=float)
    np.testing.assert_array_equal(data[:, 0], n)  # the count stays first
    np.testing.assert_allclose(data[:, 6:8], expected, atol=1e-12)
    assert "95% Wilson" in acc.hovertemplate


def test_wilson_by_hand_and_at_the_extremes():
    # k = 3 of n = 10, z = 1.959964: centre (0.3 + z^2/20) / (1 + z^2/10), hand-worked.
    z = 1.959963984540054
    centre = (0.3 + z**2 / 20) / (1 + z**2 / 10)
    half = z / (1 + z**2 / 10) * np.sqrt(0.3 * 0.7 / 10 + z**2 / 400)
    low, high = binomial_interval([3, 0, 5, 0], [10, 4, 5, 0])
    assert low[0] == pytest.approx(centre - half) and high[0] == pytest.approx(centre + half)
    assert low[0] == pytest.approx(0.10779126740630824)  # scipy's Wilson, method="wilson"
    assert low[1] == pytest.approx(0.0, abs=1e-15) and high[2] == pytest.approx(1.0)
    for i, (k, n) in enumerate([(3, 10), (0, 4), (5, 5)]):
        assert (low[i], high[i]) == pytest.approx(_scipy_ci(k, n, "wilson"), abs=1e-12)
    assert np.isnan(low[3]) and np.isnan(high[3])  # empty bin


def test_clopper_pearson_option(preds):
    p = preds[1]
    disp = ReliabilityDisplay.from_predictions(p, n_bins=8, ci="clopper-pearson")
    iv = disp.intervals["m2"]
    assert isinstance(iv, BinIntervals) and iv.method == "clopper-pearson"
    k, n = _hits(disp.curves["m2"])
    filled = disp.curves["m2"].count > 0
    expected = np.array([_scipy_ci(a, b, "exact") for a, b in zip(k, n)])
    np.testing.assert_allclose(np.column_stack([iv.low, iv.high])[filled], expected, atol=1e-10)
    (acc,) = _traces(disp.plot(), "(ECE")
    np.testing.assert_allclose(np.asarray(acc.customdata, dtype=float)[:, 6:8], expected,
                               atol=1e-10)
    assert "95% Clopper-Pearson" in acc.hovertemplate
    # Exact intervals contain the Wilson ones' centre and are wider on small bins.
    w = bin_intervals(disp.curves["m2"])
    assert np.all((iv.high - iv.low)[filled] >= (w.high - w.low)[filled] - 1e-12)


def _crafted_curve(counts, hits):
    counts, hits = np.asarray(counts), np.asarray(hits, dtype=float)
    edges = np.linspace(0, 1, len(counts) + 1)
    with np.errstate(invalid="ignore"):
        acc = np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)
    conf = np.where(counts > 0, (edges[:-1] + edges[1:]) / 2, np.nan)
    return ReliabilityCurve(edges=edges, confidence=conf, accuracy=acc, count=counts)


def test_points_fade_and_shrink_with_few_samples():
    # The LS-like case: a bin at confidence ~0.17 with accuracy 1.0 on 3 samples.
    curve = _crafted_curve([0, 3, 1, 30, 300, 5000], [0, 3, 0, 20, 200, 4000])
    fig = reliability_figure({"a": curve, "b": curve}, kind="lines")
    (acc,) = _traces(fig, "a (ECE")
    count = np.asarray(acc.customdata, dtype=float)[:, 0]
    np.testing.assert_array_equal(count, [3, 1, 30, 300, 5000])
    opacity, size = np.asarray(acc.marker.opacity), np.asarray(acc.marker.size)
    order = np.argsort(count)
    # Monotone in the count: strictly below FULL_COUNT, constant (full) from it on.
    assert np.all(np.diff(opacity[order][:4]) > 0) and np.all(np.diff(size[order][:4]) > 0)
    assert np.all(np.diff(opacity[order]) >= 0) and np.all(np.diff(size[order]) >= 0)
    assert opacity[1] == pytest.approx(MIN_OPACITY) and opacity[3] == opacity[4] == MAX_OPACITY
    assert opacity[0] < 0.5 and size[0] < size[3]
    assert opacity[0] == pytest.approx(0.25 + 0.75 * np.log(3) / np.log(FULL_COUNT))
    np.testing.assert_allclose(count_opacity(count), opacity)
    np.testing.assert_allclose(count_size(count), size)
    # The hover reads "n = 3 samples: few, drawn faint".
    assert "n = %{customdata[0]:,} %{hovertext}" in acc.hovertemplate
    assert acc.hovertext[0] == "samples: few, drawn faint"
    assert acc.hovertext[1] == "sample: few, drawn faint"
    assert acc.hovertext[2] == "samples: drawn lighter" and acc.hovertext[3] == "samples"
    assert count_note(3) == "n = 3 samples: few, drawn faint"
    assert count_note(100) == "n = 100 samples: drawn lighter" and count_note(300) == "n = 300 samples"
    # Bars fade too (their width is the bin's, so it does not shrink).
    (bars,) = _traces(reliability_figure(curve, kind="bars"), "(ECE")
    np.testing.assert_allclose(np.asarray(bars.marker.opacity), opacity)


def test_fade_and_ci_can_be_turned_off(preds):
    disp = ReliabilityDisplay.from_predictions(preds, n_bins=8)
    fig = disp.plot(show_ci=False, fade=False)
    lines = _traces(fig, "(ECE")
    assert all(t.error_y.array is None for t in lines)
    assert all(np.all(np.asarray(t.marker.opacity) == 1) for t in lines)
    assert ReliabilityDisplay.from_predictions(preds[0], ci=None).intervals is None
    # Without stored intervals the figure still draws the default Wilson ones.
    (acc,) = _traces(ReliabilityDisplay.from_predictions(preds[0], ci=None).plot(), "(ECE")
    assert acc.error_y.array is not None


def test_interval_errors(preds):
    curve = reliability_curve(preds[0].y_true, preds[0].probs)
    with pytest.raises(ValueError, match=r"`method` must be one of \['wilson', 'clopper-pearson'\]"):
        binomial_interval([1], [2], method="wald")
    with pytest.raises(ValueError, match=r"`confidence` must be in \(0, 1\); got 1.5"):
        binomial_interval([1], [2], confidence=1.5)
    with pytest.raises(ValueError, match=r"`k` must be in \[0, n\]"):
        binomial_interval([3], [2])
    with pytest.raises(ValueError, match="`ci` must be one of"):
        ReliabilityDisplay.from_predictions(preds[0], ci="wald")
    with pytest.raises(TypeError, match="`curve` must be a ReliabilityCurve; got str"):
        bin_intervals("curve")
    with pytest.raises(TypeError, match="`intervals` must be a BinIntervals, a mapping"):
        reliability_figure(curve, intervals="wilson")
    with pytest.raises(ValueError, match="`intervals` must hold a BinIntervals for every curve"):
        reliability_figure({"a": curve, "b": curve}, intervals={"a": bin_intervals(curve)})
    with pytest.raises(ValueError, match="`intervals` for 'model' must have 15 bins"):
        other = reliability_curve(preds[0].y_true, preds[0].probs, n_bins=5)
        reliability_figure(curve, intervals=bin_intervals(other))
    with pytest.raises(TypeError, match="`show_ci` must be a bool"):
        reliability_figure(curve, show_ci="no")
    with pytest.raises(TypeError, match="`fade` must be a bool"):
        reliability_figure(curve, fade=1)


# ----- CORP -------------------------------------------------------------------------------------------
def test_corp_figure_draws_the_corp_arrays(preds):
    p = preds[1]
    d = corp_reliability(p.y_true, p.probs, n_boot=50, seed=3)
    fig = corp_figure({"net": d})
    assert len(_traces(fig, DIAGONAL_NAME)) == 1
    (curve,) = [t for t in fig.data if t.name and t.name.startswith("net (MCB")]
    np.testing.assert_allclose(curve.x, d.confidence)
    np.testing.assert_allclose(curve.y, d.calibrated)
    assert curve.line.shape == "hv"
    assert curve.name == f"net (MCB {d.mcb:.3f}, DSC {d.dsc:.3f}, UNC {d.unc:.3f})"
    assert f"Brier {d.score:.4f} = MCB {d.mcb:.4f} - DSC {d.dsc:.4f} + UNC {d.unc:.4f}" in \
        curve.hovertemplate
    np.testing.assert_array_equal(np.asarray(curve.customdata)[:, 0], d.count)
    (high,) = _traces(fig, "band (high)")
    (low,) = [t for t in fig.data if t.name == "net 95% band"]
    np.testing.assert_allclose(high.y, d.band_high)
    np.testing.assert_allclose(low.y, d.band_low)
    assert low.fill == "tonexty" and fig.data.index(low) == fig.data.index(high) + 1
    assert fig.layout.template == TEMPLATE


def test_corp_display_matches_corp_reliability(preds):
    disp = CorpDisplay.from_predictions({"a": preds[0], "b": preds[2]}, n_boot=40, seed=1)
    assert list(disp.diagrams) == ["a", "b"]
    ref = corp_reliability(preds[2].y_true, preds[2].probs, n_boot=40, seed=1)
    np.testing.assert_allclose(disp.diagrams["b"].band_low, ref.band_low)
    assert disp.diagrams["b"].mcb == pytest.approx(ref.mcb)
    fig = disp.plot(title="CORP")
    curves = [t for t in fig.data if t.name and "(MCB" in t.name]
    assert [t.line.color for t in curves] == [series_color(0), series_color(1)]
    assert fig.layout.title.text == "CORP"
    seq = CorpDisplay.from_predictions(preds, n_boot=10)
    assert list(seq.diagrams) == ["m1", "m2", "m4"]


def test_corp_errors(preds):
    with pytest.raises(TypeError, match="`diagrams` must be a CorpDiagram or a mapping"):
        corp_figure([1])
    with pytest.raises(ValueError, match="`diagrams` must hold at least one diagram"):
        corp_figure({})
    with pytest.raises(TypeError, match="`diagrams` must map names to CorpDiagram; got int for 'x'"):
        corp_figure({"x": 1})
    with pytest.raises(TypeError, match=r"`predictions` must be a labviz.Predictions \(or a sequence or mapping of them\); got str"):
        CorpDisplay.from_predictions("preds")
    with pytest.raises(ValueError, match="`n_boot` must be >= 1; got 0"):
        CorpDisplay.from_predictions(preds[0], n_boot=0)


def test_equal_mass_bins_draw_their_edges_not_a_flat_histogram(preds):
    fig = ReliabilityDisplay.from_predictions(preds, n_bins=6, strategy="quantile").plot()
    # every quantile bin holds the same share: bars of it would be four equal blocks
    assert not _traces(fig, "samples")
    edges = _traces(fig, "bin edges")
    assert [t.y[0] for t in edges] == ["m1", "m2", "m4"] and all(t.yaxis == "y2" for t in edges)
    curve = reliability_curve(preds[0].y_true, preds[0].probs, n_bins=6, strategy="quantile")
    np.testing.assert_allclose(edges[0].x, curve.edges)
    assert fig.layout.yaxis2.title.text == "Bin edges"
    assert fig.layout.xaxis2.title.text == "Confidence"


def test_equal_width_histograms_of_several_models_are_outlines(preds):
    fig = ReliabilityDisplay.from_predictions(preds, n_bins=8).plot()
    hists = _traces(fig, "samples")
    assert [h.marker.color for h in hists] == ["rgba(0, 0, 0, 0)"] * 3
    assert [h.marker.line.color for h in hists] == [series_color(i) for i in range(3)]
    (one,) = _traces(ReliabilityDisplay.from_predictions(preds[0], n_bins=8).plot(), "samples")
    assert one.marker.color == series_color(0)


def test_is_equal_mass_tells_quantile_from_uniform_bins(preds):
    from labviz.figures.calibration import is_equal_mass

    p = preds[0]
    assert is_equal_mass(reliability_curve(p.y_true, p.probs, n_bins=7, strategy="quantile"))
    assert not is_equal_mass(reliability_curve(p.y_true, p.probs, n_bins=7))


def test_legend_sits_below_the_plot_in_a_margin_made_for_it(preds):
    fig = ReliabilityDisplay.from_predictions(preds, n_bins=8).plot(title="t")
    legend = fig.layout.legend
    assert legend.orientation == "h" and legend.yref == "container" and legend.y == 0
    assert fig.layout.margin.b >= 60 + 24 and fig.layout.height > 620


def test_an_all_wrong_selection_shows_its_gap_not_a_calibrated_look():
    # every sample wrong: accuracy 0 in every bin, so the accuracy bars have no height; the
    # diagram must still show accuracy at 0 and the gap as miscalibration up to the confidence
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=400)
    y_true = (probs.argmax(axis=1) + 1) % 4
    curve = reliability_curve(y_true, probs, n_bins=10)
    filled = curve.count > 0
    fig = reliability_figure({"net": curve})
    (acc,) = _traces(fig, "net (ECE")
    assert np.all(np.asarray(acc.y) == 0)
    (marks,) = _traces(fig, "net accuracy")
    assert marks.mode == "markers" and marks.marker.symbol == "line-ew"
    np.testing.assert_allclose(marks.y, 0.0)
    np.testing.assert_allclose(marks.x, curve.centers[filled])
    assert marks.marker.line.width >= 2 and marks.marker.line.color == acc.marker.color
    assert marks.cliponaxis is False  # a line at 0 is drawn whole, not half under the axis
    (gap,) = _traces(fig, "Gap")
    assert list(gap.marker.color) == [GAP_FILL] * int(filled.sum())  # every bin over-confident
    assert marks.legendgroup == acc.legendgroup == gap.legendgroup == "net"
