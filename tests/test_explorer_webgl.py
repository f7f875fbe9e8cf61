"""The explorer's WebGL and density projection views (labviz.widgets.projection_views), without a
browser: handlers are called, and what the page would do is done to the widgets' traits (a lasso
sets jupyter-scatter's ``selection``, a hover its ``hovering``, the probe its ``webgl``); the
results are read off the traits and the explorer's attributes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labviz import Predictions, explore
from labviz.compute.confusion import cell_samples
from labviz.compute.label_quality import non_uniformity
from labviz.widgets import explorer as explorer_module
from labviz.widgets.projection_views import (
    DensityProjection,
    PlotlyProjection,
    ScatterProjection,
    scatter_colors,
)

NOISY = "digits-ce-noise0.4-s0"


def _predictions(rng, n=300, n_classes=4, d=6, name="toy"):
    y = rng.integers(0, n_classes, n)
    features = rng.normal(0, 4, (n_classes, d))[y] + rng.normal(0, 1, (n, d))
    logits = rng.normal(0, 1.5, (n, n_classes)) + 2 * np.eye(n_classes)[y]
    return Predictions.from_arrays(y_true=y, logits=logits, features=features,
                                   ids=np.arange(1000, 1000 + n), name=name,
                                   class_names=[f"c{k}" for k in range(n_classes)])


@pytest.fixture
def toy(rng):
    return _predictions(rng)


def _scatter(ex, i=0):
    assert isinstance(ex.projection, ScatterProjection)
    return ex.projection.scatters[i].widget


def _selected_ids(ex, i=0):
    rows = np.asarray(_scatter(ex, i).selection, dtype=np.int64)
    return sorted(ex.frames[i]["id"].to_numpy()[rows].tolist())


def test_webgl_view_draws_every_point_and_a_cell_click_selects_all_of_its_samples(toy):
    ex = explore(toy, backend="webgl")
    w = _scatter(ex)
    assert ex.projection_figures == []
    assert w.points.shape[0] == toy.n_samples  # every sample, none subsampled
    assert w.filter is None  # all classes in view
    t, c = 0, 1
    cell = cell_samples(toy.y_true, toy.y_pred, t, c, ids=toy.ids)
    assert cell.size > 0
    ex.select_cell(t, c)
    assert _selected_ids(ex) == sorted(cell.tolist())
    assert ex.curves["toy"].n_samples == cell.size


def test_a_lasso_in_the_page_feeds_the_reliability_diagram_and_the_table(toy):
    ex = explore(toy, backend="webgl")
    rows = np.arange(0, 120, 2)
    _scatter(ex).selection = rows.astype(np.uint32)  # what the page sends after a lasso
    expected = toy.ids[rows]
    assert ex.state.highlighted_ids.tolist() == sorted(expected.tolist())
    assert ex.curves["toy"].n_samples == rows.size
    assert int(ex.per_class["support"].sum()) == rows.size
    assert ex.status == f"Selection of {rows.size} samples."
    _scatter(ex).selection = np.zeros(0, dtype=np.uint32)  # a click on empty space
    assert ex.state.highlighted_ids.size == 0 and ex.curves["toy"].n_samples == toy.n_samples


def test_the_page_echoing_a_highlight_does_not_replace_the_cell_selection(toy):
    ex = explore(toy, backend="webgl")
    ex.select_cell(1, 1)
    status, ids = ex.status, ex.state.highlighted_ids.copy()
    w = _scatter(ex)
    w.selection = np.asarray(w.selection)[::-1].copy()  # the same rows, sent back by the page
    assert ex.status == status and ex.state.highlighted_ids.tolist() == ids.tolist()


def test_a_lasso_is_not_sent_back_to_the_page_that_drew_it(toy, monkeypatch):
    ex = explore(toy, backend="webgl")
    scatter, sent = ex.projection.scatters[0], []
    monkeypatch.setattr(scatter, "selection", lambda rows=None: sent.append(rows))
    rows = np.arange(3, 90, 3)
    _scatter(ex).selection = rows[::-1].astype(np.uint32)  # the page's lasso, in its order
    assert ex.state.highlighted_ids.tolist() == toy.ids[rows].tolist()
    assert sent == []  # the page shows it already
    ex.select_cell(0, 0)  # a highlight the page does not show is sent
    assert len(sent) == 1 and sent[0].tolist() == ex.state.highlight_rows(0).tolist()
    _scatter(ex).selection = rows.astype(np.uint32)  # the same lasso again: selected again
    assert ex.state.highlighted_ids.tolist() == toy.ids[rows].tolist() and len(sent) == 1
    # the page tells its selection at once, not on a timer behind the frame that draws it
    assert _scatter(ex).regl_scatterplot_options == {"syncEvents": True}


def test_the_kernel_says_when_it_has_answered_a_selection_made_on_the_page(toy, monkeypatch):
    ex = explore(toy, backend="webgl")
    w, events = _scatter(ex), []
    monkeypatch.setattr(w, "send", lambda content, buffers=None: events.append(content["type"]))
    monkeypatch.setattr(ex.finds, "show_neighbours", lambda sample_id: events.append("listed"))
    ex.projection.on_point = ex.finds.show_neighbours
    w.selection = np.asarray([5], dtype=np.uint32)  # a click on a point
    # after its answer (the neighbours, then the selection's views) the page may draw the points
    assert events == ["listed", "labviz-answered"]
    assert ex.curves["toy"].n_samples == 1
    monkeypatch.setattr(ex, "select_points", lambda ids: 1 / 0)
    ex.projection.on_select = ex.select_points
    with pytest.raises(ZeroDivisionError):
        w.selection = np.arange(0, 40, 2).astype(np.uint32)  # a lasso whose answer failed
    assert events[-1] == "labviz-answered"  # the page is not left waiting


def test_the_scatter_page_module_lassoes_without_redrawing_the_points():
    import jscatter

    from labviz.widgets.projection_views import SCATTER_PATCHES, scatter_module

    # the module as installed (an explorer in this process replaces the class's own)
    source = Path(jscatter.__file__).with_name("bundle.js").read_text(encoding="utf-8")
    changed = scatter_module(source)
    for old, new in SCATTER_PATCHES:
        assert changed.count(new) == 1
    assert "if (mouseDown && !lassoActive) {" in changed
    assert changed.index("const labvizLassoTrace") < changed.index("var createLasso")
    # a selection made on the page holds the redraw of a large scatter until the kernel answers
    assert "labvizHeldDraw.request(canvas, !preventEvent" in changed
    assert 'event.type === "labviz-answered"' in changed
    with pytest.warns(RuntimeWarning, match="a lasso, a hover and a selection redraw every point"):
        assert scatter_module("export default {};") == "export default {};"


def test_a_sorted_lasso_is_kept_and_an_unsorted_one_sorted(toy):
    from labviz.widgets.selections import points_selection

    ex = explore(toy, backend="webgl")
    ids = toy.ids[[4, 9, 30]]
    kept = points_selection(ex.state, ids)
    assert kept.ids.tolist() == ids.tolist() and kept.ids is not ids
    assert points_selection(ex.state, ids[[2, 0, 2, 1]]).ids.tolist() == ids.tolist()


def test_hover_shows_the_sample_and_classes_filter_the_points(toy):
    ex = explore(toy, backend="webgl")
    w = _scatter(ex)
    w.hovering = 5
    assert f"id {toy.ids[5]}" in ex.samples.hover_html.value
    ex.set_classes([0, 2])
    expected = np.flatnonzero(np.isin(toy.y_true, [0, 2]))
    assert np.asarray(w.filter).tolist() == expected.tolist()
    ex.select_cell(0, 0)  # highlights stay within the classes in view
    assert set(np.asarray(w.selection).tolist()) <= set(expected.tolist())


@pytest.mark.parametrize("color", ["class", "prediction", "correct", "flipped", "confidence",
                                   "non_uniformity"])
def test_colour_by_sends_the_values_of_every_sample(toy, color):
    ex = explore(toy, backend="webgl")
    ex.set_color(color)
    values, cmap, norm = scatter_colors(ex.state, 0)
    assert len(values) == toy.n_samples
    if color == "class":
        assert list(values.astype(str)) == [f"c{k}" for k in toy.y_true]
        assert set(cmap) == {f"c{k}" for k in range(4)}
    elif color == "correct":
        assert (values.astype(str) == "correct").tolist() == toy.correct.tolist()
    elif color == "confidence":
        np.testing.assert_allclose(values, toy.confidence)
        assert norm == (0.0, 1.0)
    elif color == "non_uniformity":
        np.testing.assert_allclose(values, non_uniformity(toy.probs))
    # the widget's colour channel (the points' third column) carries one value per point
    assert np.asarray(_scatter(ex).points).shape == (toy.n_samples, 4)


def test_auto_backend_switches_to_webgl_above_the_plotly_limit(rng, monkeypatch):
    small = _predictions(rng, n=200)
    assert isinstance(explore(small).projection, PlotlyProjection)
    monkeypatch.setattr(explorer_module, "PLOTLY_MAX_POINTS", 150)
    assert isinstance(explore(small).projection, ScatterProjection)
    assert isinstance(explore(small, backend="plotly").projection, PlotlyProjection)


def test_without_webgl_the_panels_become_density_rasters_and_the_status_says_so(toy):
    ex = explore(toy, backend="webgl")
    ex.probe.webgl = False  # what the probe reports from a page without WebGL
    assert isinstance(ex.projection, DensityProjection)
    assert "no WebGL" in ex.status
    fw = ex.projection.figures[0]
    assert [t.name for t in fw.data] == ["density", "highlight"]
    assert np.nansum(fw.data[0].customdata) == toy.n_samples  # every point counted
    ids = ex.select_cell(2, 2)
    assert np.nansum(fw.data[1].customdata) == ids.size
    assert ex.curves["toy"].n_samples == ids.size


def test_plotly_below_the_webgl_threshold_keeps_drawing_without_webgl(toy):
    ex = explore(toy)  # 300 points: an SVG scatter, which needs no WebGL
    ex.probe.webgl = False
    assert isinstance(ex.projection, PlotlyProjection)


def test_a_slow_projection_runs_in_the_background_and_arrives(toy, monkeypatch):
    monkeypatch.setattr(explorer_module, "BACKGROUND_FROM", 100)
    ex = explore(toy, method="tsne", backend="webgl")
    # opened on PCA at once; t-SNE arrives when the thread is done
    assert ex.frames[0].attrs["method"] == "pca" or ex.wait_projection(0)
    assert ex.wait_projection(120)
    assert ex.frames[0].attrs["method"] == "tsne"
    assert ex.controls["method"].value == "tsne"
    assert "ready" in ex.status
    ex.select_cell(0, 0)
    ex.set_method("pca")  # PCA is never deferred
    assert ex.frames[0].attrs["method"] == "pca" and ex.state.highlighted_ids.size > 0


def test_webgl_snapshot_steps_move_the_points_on_fixed_axes():
    ex = explore(NOISY, split="train", backend="webgl")
    w = _scatter(ex)
    domain = (list(w.x_scale_domain), list(w.y_scale_domain))
    before = np.asarray(w.points)[:, :2].copy()
    ex.set_snapshot(0)
    assert (list(w.x_scale_domain), list(w.y_scale_domain)) == domain
    assert not np.allclose(np.asarray(w.points)[:, :2], before)
    assert "epoch" in ex.projection.titles[0].value
