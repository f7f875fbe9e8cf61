"""Tests for labviz.widgets (``explore``), labviz.zoo's series and labviz.widgets.explorer (the linked views).

No browser: controls are set and handlers called from Python, plotly events are fed through the
FigureWidget's own message handler, and the results are read off ``figure.data`` and the
explorer's attributes.
"""

from __future__ import annotations

import base64
import html
import operator
import sys

import numpy as np
import pytest

from labviz import Predictions
from labviz.compute.calibration import reliability_curve
from labviz.compute.confusion import cell_samples, confusion_matrix, per_class_table
from labviz.compute.label_quality import non_uniformity
from labviz.widgets import explore
from labviz.widgets._common import _MODULE_TEXTS, FigureWidget, ModuleText, module_text
from labviz.widgets._deprecated import EXPLORER_ALIASES
from labviz.widgets.explorer import Explorer, time_handlers
from labviz.zoo import Series, list_series, series_for

NOISY = "digits-ce-noise0.4-s0"


def _predictions(rng, n=300, n_classes=4, d=6, name="toy", images=True):
    y = rng.integers(0, n_classes, n)
    means = rng.normal(0, 4, (n_classes, d))
    features = means[y] + rng.normal(0, 1, (n, d))
    logits = rng.normal(0, 1.5, (n, n_classes)) + 2 * np.eye(n_classes)[y]
    y_given = y.copy()
    y_given[:20] = (y[:20] + 1) % n_classes
    return Predictions.from_arrays(
        y_true=y, logits=logits, features=features, y_given=y_given,
        ids=np.arange(1000, 1000 + n), class_names=[f"c{k}" for k in range(n_classes)],
        images=rng.random((n, 8, 8)) if images else None, name=name,
    )


@pytest.fixture
def toy(rng):
    return _predictions(rng)


def _ids(trace):
    return sorted(int(row[0]) for row in (trace.customdata if trace.customdata is not None else ()))


def _highlight(fw):
    assert fw.data[-1].name == "highlight"
    return _ids(fw.data[-1])


def _send_points(fw, event_type, trace_indexes, point_indexes):
    """Feed a plotly.js points event through the FigureWidget, as the browser would."""
    fw._handler_js2py_pointsCallback({"new": {
        "event_type": event_type,
        "points": {"trace_indexes": list(trace_indexes), "point_indexes": list(point_indexes),
                   "xs": [0.0] * len(point_indexes), "ys": [0.0] * len(point_indexes)},
        "selector": None, "device_state": None,
    }})


def _worst_cell(p):
    cm = confusion_matrix(p.y_true, p.y_pred, n_classes=p.n_classes)
    np.fill_diagonal(cm, -1)
    return tuple(int(k) for k in np.unravel_index(int(np.argmax(cm)), cm.shape))


# ----- series -----------------------------------------------------------------------------------
def _entry(name, run, epoch, total, family, alpha=0.0, dataset="fashion-mnist", seed=0):
    return dict(name=name, run=run, epoch=epoch, epochs_total=total, family=family, alpha=alpha,
                dataset=dataset, seed=seed)


def test_list_series_finds_snapshots_and_the_ls_sweep_in_order():
    entries = [
        _entry("n", "n", 60, 60, "noisy"), _entry("n-e05", "n", 5, 60, "noisy"),
        _entry("n-e01", "n", 1, 60, "noisy"),
        _entry("ls0.3", "ls0.3", 40, 40, "ls-sweep", 0.3),
        _entry("ls0.05", "ls0.05", 40, 40, "ls-sweep", 0.05),
        _entry("ce", "ce", 40, 40, "ce"), _entry("ls0.1", "ls0.1", 40, 40, "ls0.1", 0.1),
        _entry("ce-s1", "ce-s1", 40, 40, "ce", seed=1),  # another seed: not in the s0 sweep
        _entry("neg", "neg", 40, 40, "ls-0.1", -0.1),
    ]
    series = list_series(entries)
    assert series == [
        Series("n", "epoch", ("n-e01", "n-e05", "n"), (1.0, 5.0, 60.0)),
        Series("fashion-mnist LS sweep s0", "alpha", ("ce", "ls0.05", "ls0.1", "ls0.3"),
               (0.0, 0.05, 0.1, 0.3)),
    ]
    assert series_for("ls0.1", entries).kind == "alpha"
    assert series_for("n-e05", entries).name == "n"
    assert series_for("neg", entries) is None
    assert series[1].label(1) == "α = 0.05" and series[0].label(2) == "epoch 60"


def test_zoo_noisy_run_is_a_series_of_snapshots():
    s = series_for(NOISY)
    assert s.kind == "epoch" and s.members[-1] == NOISY
    assert s.members[0] == f"{NOISY}-e01" and list(s.values) == sorted(s.values)
    assert series_for("digits-ce-s0") is None


def test_list_series_rejects_a_non_sequence():
    with pytest.raises(TypeError, match="`entries` must be a sequence"):
        list_series("manifest.json")


# ----- construction -----------------------------------------------------------------------------
def test_explore_synthetic_predictions_draws_every_view(toy):
    ex = explore(toy)
    assert isinstance(ex, Explorer) and len(ex.projection_figures) == 1
    fw = ex.projection_figures[0]
    assert [t.name for t in fw.data] == ["c0", "c1", "c2", "c3", "highlight"]
    assert sum(len(t.x) for t in fw.data[:-1]) == toy.n_samples and _highlight(fw) == []
    heat = ex.confusion.figure.data[0]
    np.testing.assert_array_equal(
        np.asarray(heat.customdata)[:, :, 0], confusion_matrix(toy.y_true, toy.y_pred))
    assert ex.curves["toy"].n_samples == toy.n_samples
    assert ex.per_class["support"].sum() == toy.n_samples
    assert "Click a confusion cell" in ex.samples.thumbnails_html.value
    assert "application/vnd.jupyter.widget-view+json" in ex._repr_mimebundle_()
    assert ex.widget is not None and ex.status == ""


def test_explore_digits_zoo_checkpoint():
    ex = explore("digits-ce-s0")
    p = ex.predictions[0]
    assert p.name == "digits-ce-s0 [test]" and p.n_samples == 450
    assert sum(len(t.x) for t in ex.projection_figures[0].data[:-1]) == 450
    assert ex.confusion.figure.data[0].type == "heatmap"


# ----- confusion cell -> projection and thumbnails ----------------------------------------------
def test_select_cell_highlights_exactly_the_cell_and_fills_thumbnails(toy):
    ex = explore(toy, max_thumbnails=5)
    t, c = _worst_cell(toy)
    expected = cell_samples(toy.y_true, toy.y_pred, t, c, ids=toy.ids)
    assert len(expected) > 5
    got = ex.select_cell(t, c)
    assert sorted(got.tolist()) == sorted(expected.tolist())
    assert _highlight(ex.projection_figures[0]) == sorted(expected.tolist())
    np.testing.assert_array_equal(ex.state.highlighted_ids, np.sort(expected))
    assert ex.samples.thumbnails_html.value.count("<img") == 5
    assert f"{len(expected)} samples highlighted (first 5 shown)" in ex.samples.thumbnails_html.value
    # the cell is also the selection the other views describe
    assert ex.curves["toy"].n_samples == len(expected)


def test_heatmap_click_event_selects_the_cell(toy):
    ex = explore(toy)
    t, c = _worst_cell(toy)
    heat = ex.confusion.figure.data[0]
    fw = ex.confusion.figure
    fw._handler_js2py_pointsCallback({"new": {
        "event_type": "plotly_click",
        "points": {"trace_indexes": [0], "point_indexes": [[t, c]],
                   "xs": [heat.x[c]], "ys": [heat.y[t]]},
        "selector": None, "device_state": None,
    }})
    assert ex.state.highlighted_ids.tolist() == sorted(
        cell_samples(toy.y_true, toy.y_pred, t, c, ids=toy.ids).tolist())


def test_images_missing_gives_a_message_not_an_error(rng):
    p = _predictions(rng, images=False)
    ex = explore(p)
    ex.select_cell(*_worst_cell(p))
    assert "carry no images" in ex.samples.thumbnails_html.value


# ----- many classes: search, zoom and the most confused pairs -------------------------------------
def _many_classes(rng, n_classes=60, n=1200):
    p = _predictions(rng, n=n, n_classes=n_classes)
    names = [("Tabby cat", "Persian CAT", "dog")[k] if k < 3 else f"class {k}"
             for k in range(n_classes)]
    return Predictions.from_arrays(y_true=p.y_true, logits=p.logits, features=p.features,
                                   ids=p.ids, images=p.images, class_names=names, name="many")


def test_search_zooms_to_the_found_classes_and_names_them(rng):
    p = _many_classes(rng)
    ex = explore(p)
    view = ex.confusion
    assert len(view.figure.data[0].x) == 60
    found = view.find("cat")
    assert found.tolist() == [0, 1]
    assert "2 classes match 'cat': Tabby cat, Persian CAT" in html.unescape(view.search_html.value)
    heat = view.figure.data[0]
    assert {"Tabby cat", "Persian CAT"} <= set(heat.x) and len(heat.x) <= 2 * (2 * 8 + 1)
    # a click on the zoomed map selects the clicked classes, whatever their places
    row, col = list(heat.y).index("Tabby cat"), list(heat.x).index("Persian CAT")
    view.figure._handler_js2py_pointsCallback({"new": {
        "event_type": "plotly_click",
        "points": {"trace_indexes": [0], "point_indexes": [[row, col]],
                   "xs": [heat.x[col]], "ys": [heat.y[row]]},
        "selector": None, "device_state": None}})
    expected = np.sort(p.ids[(p.y_true == 0) & (p.y_pred == 1)])
    assert ex.state.highlighted_ids.tolist() == expected.tolist()
    view.search.value = "zebra"  # the text box runs the same search
    assert view.found.size == 0
    assert "No class name contains 'zebra'" in html.unescape(view.search_html.value)
    assert len(view.figure.data[0].x) == 60
    view.find("")
    assert view.search_html.value == "" and len(view.figure.data[0].x) == 60


def test_pair_click_highlights_exactly_the_pairs_samples(rng):
    p = _many_classes(rng)
    ex = explore(p, max_thumbnails=50)
    view = ex.confusion
    pairs = view.pairs
    assert len(pairs) == view.N_PAIRS and pairs["count"].is_monotonic_decreasing
    t, c = int(pairs["true"].iloc[1]), int(pairs["pred"].iloc[1])
    assert view.pair_buttons[1].description.startswith(f"{p.class_names[t]} → {p.class_names[c]}")
    assert view._pair_images[1].value.count("<img") == min(view.PAIR_IMAGES, pairs["count"].iloc[1])
    view.pair_buttons[1].click()
    expected = cell_samples(p.y_true, p.y_pred, t, c, ids=p.ids)
    assert ex.state.highlighted_ids.tolist() == sorted(expected.tolist())
    assert _highlight(ex.projection_figures[0]) == sorted(expected.tolist())
    assert ex.status == f"Cell true {p.class_names[t]} → predicted {p.class_names[c]}: " \
                        f"{len(expected)} sample{'s' if len(expected) != 1 else ''} highlighted."


# ----- projection selection -> reliability and per-class table ----------------------------------
def test_select_points_updates_reliability_and_table_for_the_selection_only(toy):
    ex = explore(toy, n_bins=10)
    chosen = toy.ids[toy.confidence < np.median(toy.confidence)][:80]
    ex.select_points(chosen)
    pos = np.isin(toy.ids, chosen)
    expected = reliability_curve(toy.y_true[pos], toy.probs[pos], n_bins=10)
    curve = ex.curves["toy"]
    np.testing.assert_array_equal(curve.count, expected.count)
    # the histogram trace of the diagram holds the selection's share per bin
    hist = [t for t in ex.reliability.figure.data if t.name == "toy samples"][0]
    np.testing.assert_allclose(hist.y, expected.count / 80)
    assert "80 samples" in ex.reliability.figure.layout.title.text
    table = per_class_table(toy.y_true[pos], toy.y_pred[pos], n_classes=4,
                            class_names=toy.class_names)
    # the table lists the classes the selection holds or predicts
    shown = (table["support"] > 0) | np.isin(table["class"], toy.y_pred[pos])
    assert ex.per_class["class"].tolist() == table["class"][shown].tolist()
    np.testing.assert_array_equal(ex.per_class["support"], table["support"][shown])
    np.testing.assert_allclose(ex.per_class["recall"], table["recall"][shown])
    np.testing.assert_allclose(ex.per_class["precision"], table["precision"][shown])
    assert ex.per_class["model"].unique().tolist() == ["toy"]
    assert "Per class, selection of 80 samples" in ex.samples.table_html.value
    assert _highlight(ex.projection_figures[0]) == sorted(chosen.tolist())


def test_lasso_event_over_several_traces_is_one_selection(toy):
    ex = explore(toy)
    fw = ex.projection_figures[0]
    traces = [0, 0, 2, 3]
    points = [0, 4, 1, 2]
    expected = sorted(int(fw.data[t].customdata[k][0]) for t, k in zip(traces, points))
    _send_points(fw, "plotly_selected", traces, points)
    assert ex.state.highlighted_ids.tolist() == expected
    assert ex.curves["toy"].n_samples == 4
    _send_points(fw, "plotly_deselect", [], [])
    assert ex.state.highlighted_ids.size == 0 and ex.curves["toy"].n_samples == toy.n_samples


def test_hover_event_shows_the_thumbnail(toy):
    ex = explore(toy)
    fw = ex.projection_figures[0]
    _send_points(fw, "plotly_hover", [1], [3])
    sid = int(fw.data[1].customdata[3][0])
    assert f"id {sid}" in ex.samples.hover_html.value and "<img" in ex.samples.hover_html.value


def test_empty_selection_says_so_and_leaves_figures_unchanged(toy):
    ex = explore(toy)
    ex.select_cell(*_worst_cell(toy))
    before = [f.to_json() for f in (*ex.projection_figures, ex.reliability.figure,
                                     ex.confusion.figure)]
    highlighted, table = ex.state.highlighted_ids.copy(), ex.per_class.copy()
    ex.select_points([])
    assert ex.status.startswith("Empty selection")
    assert "Empty selection" in ex.status_html.value
    after = [f.to_json() for f in (*ex.projection_figures, ex.reliability.figure,
                                    ex.confusion.figure)]
    assert after == before
    np.testing.assert_array_equal(ex.state.highlighted_ids, highlighted)
    assert ex.per_class.equals(table)


def test_empty_confusion_cell_is_an_empty_selection(rng):
    y = np.array([0, 0, 0, 1, 1, 1])
    p = Predictions.from_arrays(y_true=y, logits=3.0 * np.eye(2)[y],
                                features=rng.normal(size=(6, 3)), name="perfect")
    ex = explore(p)
    ex.select_cell(0, 0)
    assert ex.select_cell(0, 1).size == 0
    assert ex.status == ("Empty selection: no samples in the cell true 0 → predicted 1; "
                         "the views are unchanged.")
    assert ex.state.highlighted_ids.tolist() == [0, 1, 2]


def test_single_class_predictions_show_a_message(rng):
    n = 40
    p = Predictions.from_arrays(y_true=np.zeros(n, int), logits=rng.normal(size=(n, 3)),
                                features=rng.normal(size=(n, 4)), name="one")
    ex = explore(p)
    assert "Only one class" in ex.status
    assert ex.per_class["support"].tolist() == [n, 0, 0]


def test_class_subset_filters_every_view(toy):
    ex = explore(toy)
    ex.controls["classes"].value = (1, 2)
    keep = np.isin(toy.y_true, [1, 2])
    fw = ex.projection_figures[0]
    assert sum(len(t.x) for t in fw.data[:-1]) == keep.sum()
    counts = np.asarray(ex.confusion.figure.data[0].customdata)[:, :, 0]
    assert counts.sum() == keep.sum() and counts[[0, 3]].sum() == 0
    assert ex.curves["toy"].n_samples == keep.sum()
    ex.set_classes([1])
    assert "Only one class (c1)" in ex.status


# ----- colour by ---------------------------------------------------------------------------------
def test_colour_by_control_redraws_traces_and_keeps_the_highlight(toy):
    ex = explore(toy)
    ids = ex.select_cell(*_worst_cell(toy))
    ex.controls["color"].value = "correct"
    # other traces: a new figure widget (ex.projection_figures names the current one)
    fw = ex.projection_figures[0]
    assert [t.name for t in fw.data] == ["correct", "wrong", "highlight"]
    assert len(fw.data[1].x) == int((~toy.correct).sum())
    assert _highlight(fw) == sorted(ids.tolist())
    ex.set_color("non_uniformity")
    fw = ex.projection_figures[0]
    assert [t.name for t in fw.data] == ["non-uniformity", "highlight"]
    np.testing.assert_allclose(fw.data[0].marker.color, non_uniformity(toy.probs))
    ex.set_color("flipped")
    assert len(ex.projection_figures[0].data[1].x) == 20  # the 20 flipped labels of the fixture


# ----- snapshot slider ---------------------------------------------------------------------------
def test_snapshot_slider_moves_points_on_fixed_axes():
    ex = explore(NOISY)
    s = ex.series
    assert s is not None and ex.snapshot_index == len(s.members) - 1
    assert not ex.controls["snapshot"].disabled
    fw = ex.projection_figures[0]
    x_final, y_final = np.array(fw.data[0].x), np.array(fw.data[0].y)
    ranges = (fw.layout.xaxis.range, fw.layout.yaxis.range)
    ids = ex.select_cell(*_worst_cell(ex.predictions[0]))
    ex.controls["snapshot"].value = 0  # the slider's handler
    assert ex.snapshot_index == 0 and ex.predictions[0].name.startswith(f"{NOISY}-e01")
    x0, y0 = np.array(fw.data[0].x), np.array(fw.data[0].y)
    assert x0.shape == x_final.shape and not np.allclose(x0, x_final)
    assert not np.allclose(y0, y_final)
    assert (fw.layout.xaxis.range, fw.layout.yaxis.range) == ranges
    assert "epoch 1" in fw.layout.title.text
    # the highlight follows the samples to their epoch-1 positions
    assert _highlight(fw) == sorted(ids.tolist())
    # every member's points lie inside the fixed ranges
    for i in range(len(s.members)):
        ex.set_snapshot(i)
        for t in fw.data[:-1]:
            assert ranges[0][0] <= min(t.x) and max(t.x) <= ranges[0][1]
            assert ranges[1][0] <= min(t.y) and max(t.y) <= ranges[1][1]
    np.testing.assert_allclose(fw.data[0].x, x_final)


def test_checkpoint_without_snapshots_shows_a_message(toy):
    ex = explore(toy)
    assert ex.series is None and ex.controls["snapshot"].disabled
    assert "no epoch snapshots" in ex.controls_view.series_html.value
    before = ex.projection_figures[0].to_json()
    ex.set_snapshot(2)
    assert "no epoch snapshots or α sweep" in ex.status
    assert ex.projection_figures[0].to_json() == before


def test_set_snapshot_out_of_range_is_an_error():
    ex = explore(NOISY)
    with pytest.raises(ValueError, match=r"`index` must be in \[0, 5\]; got 9"):
        ex.set_snapshot(9)


# ----- side by side -----------------------------------------------------------------------------
def test_two_checkpoints_side_by_side_share_the_highlight():
    ex = explore(["digits-ce-s0", "digits-ls0.1-s0"])
    assert len(ex.projection_figures) == 2
    left, right = ex.projection_figures
    assert left.layout.xaxis.range == right.layout.xaxis.range
    ids = ex.select_cell(*_worst_cell(ex.predictions[0]))
    assert ids.size and _highlight(left) == _highlight(right) == sorted(ids.tolist())
    # a lasso in the right panel is the selection of both
    _send_points(right, "plotly_selected", [0, 1], [0, 1])
    chosen = sorted(int(right.data[t].customdata[k][0]) for t, k in ((0, 0), (1, 1)))
    assert _highlight(left) == _highlight(right) == chosen
    assert set(ex.curves) == {"digits-ce-s0", "digits-ls0.1-s0"}
    assert ex.per_class.groupby("model")["support"].sum().tolist() == [2, 2]
    ex.controls["compare"].value = "(none)"
    assert len(ex.projection_figures) == 1 and ex.state.highlighted_ids.size == 0


def test_predictions_side_by_side_are_aligned(toy):
    other = Predictions.from_arrays(
        y_true=toy.y_true, logits=toy.logits, features=-2 * toy.features + 1, ids=toy.ids,
        class_names=toy.class_names, name="mirror")
    ex = explore([toy, other])
    a, b = ex.frames
    # float32 features: PCA and the Procrustes fit agree to float32 precision
    np.testing.assert_allclose(a[["x", "y"]], b[["x", "y"]], atol=1e-5)


# ----- bad input ---------------------------------------------------------------------------------
def test_unknown_checkpoint_name_is_a_value_error():
    with pytest.raises(ValueError, match="unknown name 'digits-nope' at position 0"):
        explore("digits-nope")


@pytest.mark.parametrize("bad", [3, [], ["digits-ce-s0", 1.5], {"a": 1}])
def test_wrong_source_type_is_a_type_error(bad):
    with pytest.raises(TypeError, match="`sources` must"):
        explore(bad)


def test_predictions_without_features_are_rejected(rng):
    p = Predictions.from_arrays(y_true=[0, 1, 1], logits=rng.normal(size=(3, 2)))
    with pytest.raises(ValueError, match=r"`sources\[0\]` must hold features"):
        explore(p)


def test_bad_options_and_handler_arguments(toy):
    with pytest.raises(ValueError, match="`color` must be one of"):
        explore(toy, color="rainbow")
    with pytest.raises(ValueError, match="`split` must be one of"):
        explore(toy, split="dev")
    with pytest.raises(ValueError, match="`method` must be one of"):
        explore(toy, method="lda")
    with pytest.raises(ValueError, match=r"`classes` must hold class indices in \[0, 3\]; got \[7\]"):
        explore(toy, classes=[1, 7])
    ex = explore(toy)
    with pytest.raises(ValueError, match=r"`pred_class` must be in \[0, 3\]; got 4"):
        ex.select_cell(0, 4)
    with pytest.raises(TypeError, match="`true_class` must be an integer"):
        ex.select_cell("0", 1)
    with pytest.raises(ValueError,
                       match="`ids` must be a 1-D array of integer sample ids of toy; got 1 unknown"):
        ex.select_points([1000, 5])
    with pytest.raises(TypeError, match=r"`ids` must be a 1-D array of integer sample ids; "
                                        r"got array of shape \(1,\) and dtype float64"):
        ex.select_points([0.5])
    with pytest.raises(ValueError, match="`checkpoint` must be one of"):
        ex.set_checkpoint("other")


def test_deprecated_attribute_names_read_their_home_and_warn(toy):
    ex = explore(toy)
    ex.select_cell(*_worst_cell(toy))
    assert "highlighted_ids" in EXPLORER_ALIASES and "confusion_figure" in EXPLORER_ALIASES
    for old, path in EXPLORER_ALIASES.items():
        with pytest.warns(DeprecationWarning,
                          match=rf"`Explorer\.{old}` is deprecated .* use `Explorer\.{path}`"):
            value = getattr(ex, old)
        assert value is operator.attrgetter(path)(ex)
    with pytest.raises(AttributeError):
        ex.highlighted_ids = np.zeros(0, dtype=np.int64)


def test_time_handlers_is_deprecated_and_reports_every_handler(toy):
    ex = explore(toy)
    with pytest.warns(DeprecationWarning, match=r"time_handlers` is deprecated .* removed in labviz 0.3"):
        table = time_handlers(ex, repeat=1)
    assert table["handler"].tolist() == ["select_cell", "select_points", "clear_selection",
                                         "set_color", "show_thumbnail"]
    assert (table["n_points"] == toy.n_samples).all() and (table["median_ms"] > 0).all()
    assert ex.state.highlighted_ids.size == 0 and ex.state.color == "class"


def test_side_by_side_without_shared_samples_says_so(rng, toy):
    other = _predictions(rng, name="strangers")
    other = Predictions.from_arrays(y_true=other.y_true, logits=other.logits,
                                    features=other.features, ids=other.ids + 10_000,
                                    class_names=other.class_names, name="strangers")
    ex = explore([toy, other])
    assert len(ex.projection_figures) == 2 and "shares no samples" in ex.status
    ex.select_cell(*_worst_cell(toy))
    assert _highlight(ex.projection_figures[1]) == []


def test_plotly_module_text_is_held_once_per_kernel_not_per_figure():
    a, b = FigureWidget(), FigureWidget()
    ref = a.get_state()["_labviz_module"]
    assert b.get_state()["_labviz_module"] == ref
    (holder,) = [h for h in _MODULE_TEXTS.values() if h.model_id == ref]
    assert isinstance(holder, ModuleText) and len(holder.text) > 1_000_000
    assert len(str(a.get_state())) < 100_000  # a figure's state names the text, not holds it
    holder.close()  # e.g. Widget.close_all(): the next figure gets a new holder
    c = FigureWidget()
    assert c.get_state()["_labviz_module"] not in (ref, "")
    assert module_text(holder.text) == c.get_state()["_labviz_module"]


def test_defer_import_runs_the_module_at_its_first_attribute(tmp_path, monkeypatch):
    from labviz.widgets._common import defer_import

    marker = tmp_path / "ran"
    (tmp_path / "labviz_deferred_probe.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nVALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "labviz_deferred_probe", raising=False)
    defer_import("labviz_deferred_probe")
    import labviz_deferred_probe  # noqa: F401  (returns the stand-in, the code not run)

    assert not marker.exists()
    assert labviz_deferred_probe.VALUE == 42
    assert marker.exists()
    assert sys.modules["labviz_deferred_probe"] is not labviz_deferred_probe
    assert sys.modules["labviz_deferred_probe"].VALUE == 42
    defer_import("labviz_no_such_module_here")
    assert "labviz_no_such_module_here" not in sys.modules


def test_a_deferred_module_is_not_imported_by_formatting_a_traceback(tmp_path, monkeypatch):
    import inspect

    from labviz.widgets._common import defer_import

    marker = tmp_path / "ran"
    (tmp_path / "labviz_deferred_probe2.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "labviz_deferred_probe2", raising=False)
    defer_import("labviz_deferred_probe2")
    inspect.getmodule(test_a_deferred_module_is_not_imported_by_formatting_a_traceback)  # reads every __file__
    assert not marker.exists()
    assert sys.modules["labviz_deferred_probe2"].__file__ == str(tmp_path / "labviz_deferred_probe2.py")


def test_the_heat_maps_defaults_from_the_page_arrive_without_its_echoed_rows(rng):
    # the page sends back the defaults it computed for the heatmap, with its z as one typed array
    # per row; plotly's own handler raised on those rows (ValueError or AssertionError)
    from labviz.widgets.views import ConfusionView

    c = 4
    counts = confusion_matrix(np.arange(40) % c, np.arange(40) % c, n_classes=c)
    view = ConfusionView(on_cell=lambda t, p: None)
    view.draw(counts, [f"class {k}" for k in range(c)], "toy")
    fw = view.figure
    rows = [{"dtype": "float32", "shape": [c], "value": memoryview(np.ones(c, np.float32).tobytes())}
            for _ in range(c)]
    fw._last_trace_edit_id = 3
    fw._js2py_traceDeltas = {"trace_edit_id": 3, "trace_deltas": [
        {"uid": fw.data[0].uid, "z": rows, "zauto": False, "xgap": 0}]}
    assert fw.data[0].z["dtype"] == "f4"  # the figure's own z kept
    assert fw.data[0]._prop_defaults["xgap"] == 0 and "z" not in fw.data[0]._prop_defaults


def test_confusion_heat_map_is_sent_as_float32_bytes(rng):
    from labviz.widgets.views import ConfusionView

    c = 60
    y = rng.integers(0, c, 2_000)
    counts = confusion_matrix(y, np.where(rng.random(2_000) < 0.7, y, (y + 1) % c), n_classes=c)
    view = ConfusionView(on_cell=lambda t, p: None)
    view.draw(counts, [f"class {k}" for k in range(c)], "toy")
    z = view.figure.data[0].z
    assert z["dtype"] == "f4"  # plotly.js reads typed arrays, not nested lists
    values = np.frombuffer(base64.b64decode(z["bdata"]), dtype=np.float32).reshape(c, c)
    order = view._order
    expected = counts[np.ix_(order, order)] / counts[order].sum(axis=1, keepdims=True)
    np.testing.assert_allclose(values, expected, rtol=1e-6)
