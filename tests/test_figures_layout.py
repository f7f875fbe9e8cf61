"""Every figure builder lays its figure out within a 1,200 px-wide output, legend in view.

The width is read from the layout (explicit or computed from panel counts; None means plotly
fits the output). A legend shown must sit in the paper area, in plotly's default place right of
the plot (whose margin plotly widens to hold it, within the width), or in a margin reserved for
it: above the plot with a top margin, or at the bottom of the figure with a bottom margin.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from labviz.core.predictions import Predictions
from labviz.figures import calibration as fcal
from labviz.figures import class_board as fboard
from labviz.figures import collapse as fcol
from labviz.figures import confusion as fconf
from labviz.figures import label_quality as flq
from labviz.figures import projection as fproj
from labviz.figures import sweep as fsweep
from labviz.figures import thumbnails as fthumb
from labviz.figures.style import MAX_FIGURE_WIDTH

N, K, D = 240, 4, 8


def _predictions(seed: int) -> Predictions:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, N)
    feats = rng.normal(size=(N, D)) + 2.0 * np.eye(K, D)[y]
    weights = np.eye(K, D) + 0.1 * rng.normal(size=(K, D))
    y_given = np.where(rng.random(N) < 0.1, (y + 1) % K, y)
    return Predictions.from_arrays(
        y_true=y, logits=feats @ weights.T * (1 + seed), features=feats, weights=weights,
        y_given=y_given, images=rng.random((N, 8, 8)), name=f"model {seed}",
        class_names=["T-shirt", "Trouser", "Pullover", "Dress"])


@pytest.fixture(scope="module")
def models() -> dict[str, Predictions]:
    return {f"seed {s}": _predictions(s) for s in range(4)}


def _board() -> pd.DataFrame:
    return pd.DataFrame({
        "loss": ["ce", "ls", "ls", "maxsup"], "alpha": [0.0, 0.05, 0.1, 0.1],
        "ece": [0.05, 0.03, 0.04, 0.02], "accuracy": [0.9, 0.91, 0.9, 0.92], "nc1": [1.0, 0.8, 0.7, 0.6],
        "name": ["ana", "ben", "ana", "cy"], "dataset": ["fashion"] * 4, "epochs": [3] * 4,
        "noise": [0.0] * 4, "seed": [0] * 4})


def _sweep() -> pd.DataFrame:
    return pd.DataFrame({"alpha": [-0.1, 0.0, 0.05, 0.1, 0.2], "accuracy": [0.88, 0.9, 0.91, 0.9, 0.89],
                         "ece": [0.05, 0.04, 0.02, 0.05, 0.09], "intra": [1.2, 1.0, 0.8, 0.7, 0.6],
                         "nc1": [2.0, 1.5, 1.0, 0.8, 0.7]})


Builder = Callable[[dict[str, Predictions]], go.Figure]
BUILDERS: dict[str, Builder] = {
    "reliability, one model": lambda m: fcal.ReliabilityDisplay.from_predictions(m["seed 0"]).plot(),
    "reliability, four models": lambda m: fcal.ReliabilityDisplay.from_predictions(m).plot(),
    "reliability, equal mass": lambda m: fcal.ReliabilityDisplay.from_predictions(
        m, strategy="quantile").plot(title="15 equal-mass bins"),
    "temperature scaling": lambda m: fcal.TemperatureScalingDisplay.from_predictions(
        m["seed 1"], m["seed 2"]).plot(),
    "corp": lambda m: fcal.CorpDisplay.from_predictions(m, n_boot=10).plot(),
    "template plane, four panels": lambda m: fcol.TemplatePlaneDisplay.from_predictions(
        m, classes=[0, 1, 2]).plot(),
    "template plane, seven panels": lambda m: fcol.template_plane_figure(
        [fcol.TemplatePlaneDisplay.from_predictions(m["seed 0"], classes=[0, 1, 2]).frames[0]] * 7),
    "collapse metrics": lambda m: fcol.CollapseMetricsDisplay.from_predictions(
        list(m.values()), group_by=["a", "a", "b", "b"]).plot(),
    "class cosine": lambda m: fcol.ClassCosineDisplay.from_predictions(m["seed 0"]).plot(),
    "misclassified confidence": lambda m: fcol.MisclassifiedConfidenceDisplay.from_predictions(m).plot(),
    "confusion": lambda m: fconf.ConfusionDisplay.from_predictions(m["seed 0"]).plot(title="t"),
    "per class, 60 classes": lambda m: fconf.per_class_figure(pd.DataFrame({
        "name": [f"class {i}" for i in range(60)], "support": [10] * 60,
        "precision": [0.5] * 60, "recall": [0.6] * 60, "f1": [0.55] * 60})),
    "cell thumbnails": lambda m: fconf.ConfusionDisplay.from_predictions(m["seed 0"]).cell_thumbnails(0, 0),
    "loss histogram": lambda m: flq.LossHistogramDisplay.from_predictions(m["seed 0"]).plot(),
    "non-uniformity": lambda m: flq.NonUniformityDisplay.from_predictions(m).plot(),
    "projection": lambda m: fproj.ProjectionDisplay.from_predictions(m["seed 0"]).plot(),
    "side by side": lambda m: fproj.side_by_side_figure(
        fproj.ProjectionDisplay.from_predictions(m["seed 0"]).frame,
        fproj.ProjectionDisplay.from_predictions(m["seed 1"]).frame),
    "class board": lambda m: fboard.board_figure(_board()),
    "image grid, 16 columns": lambda m: fthumb.image_grid_figure(
        m["seed 0"].images[:32], n_cols=16, titles=[str(i) for i in range(32)], title="t"),
    "sweep, three measures": lambda m: fsweep.sweep_figure(_sweep(), title="LS sweep"),
    "sweep, four measures": lambda m: fsweep.sweep_figure(
        _sweep(), metrics=["accuracy", "ece", "intra", "nc1"]),
}


def _legend_shown(fig: go.Figure) -> bool:
    if fig.layout.showlegend is False:
        return False
    entries = [t for t in fig.data if getattr(t, "showlegend", False) is not False and t.name]
    return len(entries) > 1 or any(t.showlegend for t in entries)


def legend_in_view(fig: go.Figure) -> bool:
    """Whether ``fig``'s legend (if shown) lies in the paper area or a margin kept for it."""
    if not _legend_shown(fig):
        return True
    legend, margin = fig.layout.legend, fig.layout.margin
    if legend.x is None and legend.y is None and legend.orientation in (None, "v"):
        return fig.layout.margin.autoexpand is not False  # plotly widens the right margin for it
    x = 1.02 if legend.x is None else legend.x
    y = 1.0 if legend.y is None else legend.y
    if legend.yref == "container":
        return 0 <= y <= 1 and (y > 0.5 or (margin.b or 0) >= 80)
    x_ok = 0 <= x <= 1
    if legend.yanchor == "bottom" and y >= 1:
        return x_ok and (margin.t or 0) >= 60
    return x_ok and 0 <= y <= 1


@pytest.mark.parametrize("name", list(BUILDERS))
def test_figure_fits_a_1200_px_output_with_its_legend_in_view(models, name):
    fig = BUILDERS[name](models)
    assert isinstance(fig, go.Figure)
    width = fig.layout.width
    assert width is None or 0 < width <= MAX_FIGURE_WIDTH, f"{name}: {width} px wide"
    assert legend_in_view(fig), f"{name}: legend {fig.layout.legend.to_plotly_json()} out of view"


def test_template_plane_of_four_panels_is_a_two_by_two_grid(models):
    fig = BUILDERS["template plane, four panels"](models)
    layout = fig.layout.to_plotly_json()
    assert {k for k in layout if k.startswith("xaxis")} == {"xaxis", "xaxis2", "xaxis3", "xaxis4"}
    assert layout["xaxis"]["domain"] == layout["xaxis3"]["domain"]  # column 1, rows 1 and 2
    assert layout["yaxis"]["domain"][0] > layout["yaxis3"]["domain"][1]
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.y > 1


def test_panel_grid_keeps_at_most_three_columns():
    assert [fcol.panel_grid(n) for n in range(1, 10)] == [
        (1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (2, 3), (3, 3), (3, 3), (3, 3)]


def test_legend_check_fails_for_a_legend_off_the_figure():
    fig = go.Figure([go.Scatter(x=[0], y=[0], name="a"), go.Scatter(x=[1], y=[1], name="b")])
    assert legend_in_view(fig)
    assert not legend_in_view(fig.update_layout(legend=dict(x=1.3, y=0.5)))
    assert not legend_in_view(fig.update_layout(legend=dict(x=0, y=1.02, yanchor="bottom"),
                                                margin=dict(t=20)))


def test_sweep_panels_are_titled_and_their_axes_named():
    fig = fsweep.sweep_figure(_sweep())
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["Test accuracy (↑)", "Test ECE (↓)", "Intra-class variation, train (↓)"]
    assert not any("variable=" in t for t in titles)
    assert [fig.layout[f"yaxis{s}"].title.text for s in ("", "2", "3")] == [
        "accuracy", "ECE (L1, 15 bins)", "intra-class variation"]
    assert fig.layout.xaxis.title.text == "label smoothing α"
    np.testing.assert_allclose(fig.data[1].y, _sweep()["ece"])


def test_sweep_figure_rejects_a_missing_column():
    with pytest.raises(ValueError, match=r"missing \['brier'\]"):
        fsweep.sweep_figure(_sweep(), metrics=["accuracy", "brier"])
    with pytest.raises(TypeError, match="`table` must be a pandas DataFrame; got dict"):
        fsweep.sweep_figure({"alpha": [0.0]})  # type: ignore[arg-type]


@pytest.mark.parametrize("n_classes", [4, 150])
def test_a_confusion_title_sits_below_plotlys_toolbar(n_classes):
    # the toolbar (modebar) appears on hover at the top right, MODEBAR_PX tall: a long title
    # kept on the plot's top edge, under a margin that holds both, is never covered by it
    from labviz.figures.style import MODEBAR_PX, TITLE_PX

    counts = np.random.default_rng(0).integers(0, 50, (n_classes, n_classes))
    fig = fconf.confusion_figure(counts, title="toy: confusion (1,000,000 samples)")
    title = fig.layout.title
    assert title.yref == "paper" and title.y == 1 and title.yanchor == "bottom"
    assert fig.layout.margin.t >= MODEBAR_PX + TITLE_PX
    untitled = fconf.confusion_figure(counts)
    assert untitled.layout.margin.t is None  # the template's margin: no title, nothing to clear
