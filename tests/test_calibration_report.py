"""Tests for labviz.figures.calibration_report: the table against the compute layer, the figure
through fig.data / fig.layout, a real export, and error messages."""

from __future__ import annotations

import importlib
import math
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

import labviz
from labviz import Predictions
from labviz.compute.calibration import calibration_interval, ece_sweep, reliability_curve, smooth_ece
from labviz.figures.calibration import bin_intervals
from labviz.figures.calibration_report import ESTIMATORS, SCORES, CalibrationReportDisplay
from labviz.figures.style import TEMPLATE, series_color

ex = importlib.import_module("labviz.figures.export")
needs_chromium = pytest.mark.skipif(
    not Path(ex.CHROMIUM_PATH).is_file(),
    reason=f"Chromium is not installed at {ex.CHROMIUM_PATH} (apt-get install chromium)",
)

N_BOOT, SEED, N_BINS = 120, 5, 10


@pytest.fixture(scope="module")
def models():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(400, 4)) * 3
    y = rng.integers(0, 4, 400)
    # Dividing the logits by 3 tempers a badly over-confident model: a clear calibration difference.
    return {"sharp": Predictions.from_arrays(y_true=y, logits=z, name="a"),
            "tempered": Predictions.from_arrays(y_true=y, logits=z / 3, name="b")}


@pytest.fixture(scope="module")
def report(models):
    return CalibrationReportDisplay.from_predictions(models, n_boot=N_BOOT, seed=SEED, n_bins=N_BINS)


def _row(table, model, estimator):
    (row,) = table[(table["model"] == model) & (table["estimator"] == estimator)].itertuples()
    return row


def test_table_is_tidy_with_every_estimator(report):
    t = report.table
    assert list(t.columns) == ["model", "estimator", "estimate", "low", "high", "n_bins", "interval"]
    assert len(t) == 2 * len(ESTIMATORS)
    assert list(t["estimator"][:len(ESTIMATORS)]) == list(ESTIMATORS)
    assert list(t["model"].unique()) == ["sharp", "tempered"]


@pytest.mark.parametrize("estimator", [e for e, o in ESTIMATORS.items() if o is not None])
def test_table_numbers_equal_calibration_interval(report, models, estimator):
    options = ESTIMATORS[estimator]
    for name, p in models.items():
        ci = calibration_interval(p.y_true, p.probs, n_bins=N_BINS, n_boot=N_BOOT, seed=SEED,
                                  **options)
        row = _row(report.table, name, estimator)
        assert (row.estimate, row.low, row.high) == (ci.estimate, ci.low, ci.high)
        assert row.low <= row.estimate <= row.high or estimator == "debiased ECE"
        assert "percentile bootstrap (n_boot=120)" in row.interval


def test_estimators_without_interval_have_nan_bounds(report, models):
    for name, p in models.items():
        smooth = _row(report.table, name, "smooth ECE")
        assert smooth.estimate == pytest.approx(smooth_ece(p.y_true, p.probs))
        assert math.isnan(smooth.low) and math.isnan(smooth.high) and smooth.interval.startswith("none")
        sweep, ref = _row(report.table, name, "ECE_sweep"), ece_sweep(p.y_true, p.probs)
        assert sweep.estimate == ref.ece and sweep.n_bins == ref.n_bins
        assert math.isnan(sweep.low) and math.isnan(sweep.high)
    t = report.table
    assert (t.loc[t["estimator"].isin(["ECE (equal-width)", "classwise ECE"]), "n_bins"] == N_BINS).all()
    assert t.loc[t["estimator"].isin(["NLL", "Brier", "smooth ECE"]), "n_bins"].isna().all()


def test_difference_between_models_is_readable(report):
    # Non-overlapping intervals: the sharp model is worse calibrated than the tempered one.
    sharp, tempered = (_row(report.table, m, "ECE (equal-width)") for m in ("sharp", "tempered"))
    assert sharp.low > tempered.high


def test_curves_and_bin_intervals(report, models):
    p = models["tempered"]
    curve = reliability_curve(p.y_true, p.probs, n_bins=N_BINS)
    np.testing.assert_array_equal(report.curves["tempered"].count, curve.count)
    np.testing.assert_allclose(report.intervals["tempered"].low, bin_intervals(curve).low)


def test_plot_has_reliability_panels_with_cis_and_a_forest(report):
    fig = report.plot(title="Report")
    assert isinstance(fig, go.Figure) and fig.layout.template == TEMPLATE
    assert fig.layout.title.text == "Report"
    titles = [a.text for a in fig.layout.annotations]
    assert titles[:2] == ["sharp", "tempered"] and any("Calibration errors" in t for t in titles)
    for i, name in enumerate(["sharp", "tempered"]):
        (acc,) = [t for t in fig.data if t.name and t.name.startswith(f"{name} (ECE")]
        assert acc.xaxis == ("x" if i == 0 else "x2") and acc.line.color == series_color(i)
        iv, curve = report.intervals[name], report.curves[name]
        filled = curve.count > 0
        y = np.asarray(acc.y, dtype=float)
        np.testing.assert_allclose(y - np.asarray(acc.error_y.arrayminus), iv.low[filled])
        np.testing.assert_allclose(y + np.asarray(acc.error_y.array), iv.high[filled])
        opacity = np.asarray(acc.marker.opacity)
        order = np.argsort(curve.count[filled], kind="stable")
        assert np.all(np.diff(opacity[order]) >= 0)
        assert "n = %{customdata[0]:,}" in acc.hovertemplate
    forests = [t for t in fig.data if t.name and t.name.endswith("estimators")]
    assert len(forests) == 4  # two models x (errors, scores)
    errors = [e for e in ESTIMATORS if e not in SCORES]
    for trace in forests:
        model = trace.name.removesuffix(" estimators")
        group = errors if len(trace.x) == len(errors) else list(SCORES)
        sub = report.table[report.table["model"] == model].set_index("estimator").loc[group]
        np.testing.assert_allclose(trace.x, sub["estimate"])
        has_ci = ~sub["low"].isna().to_numpy()
        x = np.asarray(trace.x, dtype=float)
        np.testing.assert_allclose((x + np.asarray(trace.error_x.array))[has_ci], sub["high"][has_ci])
        np.testing.assert_allclose((x - np.asarray(trace.error_x.arrayminus))[has_ci], sub["low"][has_ci])
        assert [s == "circle" for s in trace.marker.symbol] == has_ci.tolist()
    # The forest's y ticks name the estimators.
    ticks = [list(ax.ticktext) for ax in (fig.layout.yaxis3, fig.layout.yaxis4)]
    assert ticks == [errors, list(SCORES)]


def test_sequence_of_predictions_uses_their_names(models):
    disp = CalibrationReportDisplay.from_predictions(list(models.values()), n_boot=20, n_bins=5)
    assert list(disp.curves) == ["a", "b"] and set(disp.table["model"]) == {"a", "b"}


def test_errors_name_the_argument(models):
    p = models["sharp"]
    with pytest.raises(TypeError, match=r"`models` must be a labviz.Predictions \(or a sequence or mapping of them\); got str"):
        CalibrationReportDisplay.from_predictions("models")
    with pytest.raises(ValueError, match="`models` must hold at least one Predictions; got none"):
        CalibrationReportDisplay.from_predictions({})
    with pytest.raises(TypeError, match="`models` must hold Predictions objects; got int"):
        CalibrationReportDisplay.from_predictions([p, 3])
    with pytest.raises(ValueError, match="`n_bins` must be >= 1; got 0"):
        CalibrationReportDisplay.from_predictions([p], n_bins=0)
    with pytest.raises(TypeError, match="`n_boot` must be an integer; got str"):
        CalibrationReportDisplay.from_predictions([p], n_boot="10")
    with pytest.raises(ValueError, match="`seed` must be >= 0; got -1"):
        CalibrationReportDisplay.from_predictions([p], seed=-1)


@needs_chromium
@pytest.mark.service
def test_report_exports_to_png_svg_and_pdf(report, tmp_path):
    fig = report.plot()
    before = fig.to_dict()
    paths = labviz.export_many([(fig, tmp_path / f"report.{fmt}") for fmt in ("png", "svg", "pdf")],
                               width=800, height=1000, scale=1)
    png, svg, pdf = paths
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", data[16:24]) == (800, 1000)
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg") and "ECE_sweep" in svg.read_text()
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 1000
    assert fig.to_dict() == before


def test_large_predictions_are_read_from_a_float32_map(monkeypatch: pytest.MonkeyPatch) -> None:
    # Beyond MAPPED_PROBS the report reads a float32 memory map of the softmax, never the float64
    # Predictions.probs: every estimate is the float64 one to float32 rounding (1e-6 here).
    import labviz.figures.calibration as fc

    rng = np.random.default_rng(8)
    logits = (rng.normal(size=(600, 12)) * 3).astype(np.float32)
    y = rng.integers(0, 12, 600)
    small = CalibrationReportDisplay.from_predictions(
        [Predictions.from_arrays(y_true=y, logits=logits)], n_boot=50)
    monkeypatch.setattr(fc, "MAPPED_PROBS", 1)
    p = Predictions.from_arrays(y_true=y, logits=logits)
    mapped = fc.probs_of(p)
    assert isinstance(mapped, np.memmap) and mapped.dtype == np.float32
    assert not mapped.flags.writeable and fc.probs_of(p) is mapped
    large = CalibrationReportDisplay.from_predictions([p], n_boot=50)
    assert "probs" not in p.__dict__
    np.testing.assert_allclose(large.table["estimate"], small.table["estimate"], rtol=0, atol=1e-6)
