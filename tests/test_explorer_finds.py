"""The explorer's finds (labviz.widgets.finds): a clicked point's nearest neighbours, colours by
label disagreement and local calibration gap, and the ranked regions and error slices, driven
from Python as a page would (plotly click events, jupyter-scatter's ``selection``, button
clicks). The models' finds are built once per module (they are kept per Predictions)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from labviz import Predictions, explore
from labviz.compute.neighbours import label_disagreement, local_calibration_gap
from labviz.core._numeric import top_probability
from labviz.figures.style import DIVERGING
from labviz.widgets import finds as finds_module
from labviz.widgets.finds import N_NEIGHBOURS, finds_of, regions_of
from labviz.widgets.projection_views import scatter_colors

N, K = 600, 4
#: Fewer bootstrap replicas of the regions' ECE intervals than the explorer's: a build in a test
#: then takes about 0.5 s rather than 2.5 s.
BOOTSTRAPS = 200


def _predictions(seed: int = 0, *, images: bool = True) -> Predictions:
    """Four classes in four clusters of features; class 3 mostly predicted as class 0, an error
    slice."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(K), N // K)
    features = 6 * np.eye(K, 8)[y] + rng.normal(0, 1, (N, 8))
    target = np.where((y == 3) & (rng.random(N) < 0.8), 0, y)
    logits = rng.normal(0, 1, (N, K)) + 3 * np.eye(K)[target]
    y_given = np.where(rng.random(N) < 0.05, (y + 1) % K, y)
    return Predictions.from_arrays(
        y_true=y, logits=logits, features=features, y_given=y_given, ids=np.arange(7, 7 + N),
        class_names=[f"c{k}" for k in range(K)], name="toy",
        images=rng.random((N, 8, 8)) if images else None)


@pytest.fixture(scope="module")
def toy():
    return _predictions()


@pytest.fixture(autouse=True)
def _few_bootstraps(monkeypatch):
    monkeypatch.setattr(finds_module, "REGION_BOOTSTRAPS", BOOTSTRAPS)


@pytest.fixture(scope="module")
def built(toy, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:  # (before the per-test cache folder exists)
        patch.setenv("LABVIZ_CACHE_DIR", str(tmp_path_factory.mktemp("finds-cache")))
        patch.setattr(finds_module, "REGION_BOOTSTRAPS", BOOTSTRAPS)
        ex = explore(toy)
        ex.finds.build()
        assert ex.finds.wait(120)
    assert finds_of(toy) is not None
    return toy


def _brute_force(p: Predictions, row: int, k: int) -> list[int]:
    x = p.features / np.linalg.norm(p.features, axis=1, keepdims=True)
    sim = x @ x[row]
    sim[row] = -np.inf
    return p.ids[np.argsort(-sim, kind="stable")[:k]].tolist()


def _click(fw, trace_index, point_index):
    fw._handler_js2py_pointsCallback({"new": {
        "event_type": "plotly_click",
        "points": {"trace_indexes": [trace_index], "point_indexes": [point_index],
                   "xs": [0.0], "ys": [0.0]},
        "selector": None, "device_state": None}})


# ----- neighbours -------------------------------------------------------------------------------
def test_a_click_on_a_point_lists_its_nearest_neighbours_in_feature_space(built):
    ex = explore(built)
    trace = ex.projection_figures[0].data[0]
    sample_id = int(trace.customdata[3][0])
    _click(ex.projection_figures[0], 0, 3)
    row = int(np.flatnonzero(built.ids == sample_id)[0])
    expected = _brute_force(built, row, N_NEIGHBOURS)
    assert ex.finds.neighbours.tolist() == expected
    text = ex.finds.view.neighbours_html.value
    assert f"Nearest {N_NEIGHBOURS} neighbours of id {sample_id}" in text
    assert text.count("<img") == N_NEIGHBOURS == text.count("<figcaption>given ")
    first = expected[0]
    assert f"id {first}: given c{built.y_given[first - 7]}" in text  # label, prediction, confidence
    # "highlight them" selects the point and its neighbours through the selection path
    ex.finds.view.highlight_neighbours.click()
    assert ex.state.highlighted_ids.tolist() == sorted([sample_id, *expected])
    assert ex.curves["toy"].n_samples == N_NEIGHBOURS + 1


def test_a_click_in_the_webgl_scatter_lists_neighbours_too(built):
    ex = explore(built, backend="webgl")
    ex.projection.scatters[0].widget.selection = [42]  # a click on one point selects it
    assert ex.state.highlighted_ids.tolist() == [int(built.ids[42])]
    assert ex.finds.neighbours.tolist() == _brute_force(built, 42, N_NEIGHBOURS)


def test_before_the_index_exists_a_click_says_so_and_lists_them_when_built():
    p = _predictions(seed=1, images=False)
    ex = explore(p)
    assert ex.finds.show_neighbours(int(p.ids[5])).size == 0
    assert "once the neighbour index is built" in ex.finds.view.neighbours_html.value
    assert ex.finds.wait(120)
    assert ex.finds.neighbours.tolist() == _brute_force(p, 5, N_NEIGHBOURS)
    assert "<img" not in ex.finds.view.neighbours_html.value  # no images: labels only
    assert ex.status.startswith(f"Neighbours, regions and error slices of {N} samples ready "
                                "(index ")


# ----- colours ----------------------------------------------------------------------------------
def test_colour_by_label_disagreement_is_the_share_of_neighbours_disagreeing(built):
    ex = explore(built)
    ex.set_color("label_disagreement")
    (trace, _highlight) = ex.projection_figures[0].data
    found = finds_of(built)
    expected = label_disagreement(built, found.index, k=N_NEIGHBOURS)
    ids = np.asarray(trace.customdata)[:, 0].astype(int)
    np.testing.assert_allclose(np.asarray(trace.marker.color), expected[ids - 7])
    assert (trace.marker.cmin, trace.marker.cmax) == (0.0, 1.0)


def test_colour_by_local_gap_is_diverging_at_zero_and_follows_the_temperature(built):
    ex = explore(built)
    ex.set_color("local_gap")
    fw, found = ex.projection_figures[0], finds_of(built)
    trace = fw.data[0]
    ids = np.asarray(trace.customdata)[:, 0].astype(int)
    gap = local_calibration_gap(built, found.index, k=N_NEIGHBOURS)
    np.testing.assert_allclose(np.asarray(trace.marker.color), gap[ids - 7])
    assert trace.marker.cmin == -trace.marker.cmax > -1
    assert np.abs(gap).max() <= trace.marker.cmax
    # over-confident (positive) warm, under-confident cool
    scale = [c for _, c in trace.marker.colorscale]
    assert scale[0] == "rgb(5,48,97)" and scale[-1] == "rgb(103,0,31)"  # RdBu reversed
    ex.set_temperature(2.0)
    conf = top_probability(built.logits, temperature=2.0)
    at_t = local_calibration_gap(None, found.index, k=N_NEIGHBOURS, confidence=conf,
                                 correct=built.correct)
    np.testing.assert_allclose(np.asarray(fw.data[0].marker.color), at_t[ids - 7])
    assert not np.allclose(at_t, gap)


def test_the_webgl_scatter_colours_the_local_gap_on_the_diverging_map(built):
    ex = explore(built, backend="webgl")
    ex.set_color("local_gap")
    values, cmap, norm = scatter_colors(ex.state, 0)
    assert cmap == DIVERGING and norm is not None and norm[0] == -norm[1]
    found = finds_of(built)
    np.testing.assert_allclose(values.to_numpy(),
                               local_calibration_gap(built, found.index, k=N_NEIGHBOURS))


def test_a_score_colour_waits_for_its_build_drawing_by_class_meanwhile():
    p = _predictions(seed=2)
    ex = explore(p)
    ex.set_color("label_disagreement")
    # by class until the index exists: one trace per class, and the highlight
    assert len(ex.projection_figures[0].data) in (K + 1, 2)
    assert ex.finds.wait(120)
    (trace, _highlight) = ex.projection_figures[0].data
    assert trace.name == "label disagreement"


# ----- regions and error slices -----------------------------------------------------------------
def test_regions_are_listed_by_ece_and_a_click_selects_exactly_one(built):
    ex = explore(built)
    found = finds_of(built)
    table = found.regions.table
    shown = [b for b in ex.finds.view.region_buttons if b.layout.display is None]
    assert len(shown) == min(len(table), 10)
    assert shown[0].description.startswith(f"region {int(table['region'].iloc[0])}: ECE "
                                           f"{table['ece'].iloc[0]:.3f}")
    shown[0].click()
    members = np.flatnonzero(found.regions.labels == table["region"].iloc[0])
    assert ex.state.highlighted_ids.tolist() == built.ids[members].tolist()
    assert ex.curves["toy"].n_samples == members.size  # the reliability diagram follows
    assert ex.per_class["support"].sum() == members.size  # and the per-class table
    assert ex.status.startswith(f"Region {int(table['region'].iloc[0])}: {members.size} samples "
                                "highlighted, ECE ")


def test_an_error_slice_is_named_and_a_click_selects_its_samples(built):
    ex = explore(built)
    found = finds_of(built)
    assert len(found.slices) >= 1  # class 3, mostly predicted as class 0
    top = found.slices.iloc[0]
    button = ex.finds.view.slice_buttons[0]
    assert button.description.startswith(f"{top['name']}: error ")
    button.click()
    members = np.flatnonzero(found.regions.labels == top["region"])
    assert np.isin(np.flatnonzero(built.y_true == 3), members).mean() > 0.9
    assert ex.state.highlighted_ids.tolist() == built.ids[members].tolist()
    assert ex.status.startswith(f"Error slice {top['name']}")


def test_region_handlers_check_their_arguments(built):
    ex = explore(built)
    with pytest.raises(ValueError, match="rank"):
        ex.finds.select_region(99)
    p = _predictions(seed=3)
    fresh = explore(p)
    with pytest.raises(ValueError, match="not computed yet"):
        fresh.finds.select_region(0)
    assert "computed in the background" in fresh.finds.view.regions_html.value
    assert fresh.finds.view.build_button.layout.display is None
    assert ex.finds.view.build_button.layout.display == "none"  # built: the lists instead


def test_the_build_button_computes_the_regions_in_the_background_without_the_index():
    p = _predictions(seed=4, images=False)
    ex = explore(p)
    assert regions_of(p) is None and ex.status == ""  # nothing is computed until asked
    ex.finds.view.build_button.click()
    assert ex.finds.wait(120) and regions_of(p) is not None
    assert finds_of(p) is None  # the index waits for a click on a point or a score colour
    assert ex.finds.view.region_buttons[0].layout.display is None
    assert ex.finds.view.build_button.layout.display == "none"
    assert ex.status.startswith(f"Regions and error slices of {N} samples ready (regions ")
    ex.finds.view.region_buttons[0].click()
    table = regions_of(p).regions.table
    assert ex.state.highlighted_ids.size == table["size"].iloc[0]


def _held_index(monkeypatch) -> threading.Event:
    """Hold every neighbour index's build until the returned event is set."""
    release, build = threading.Event(), finds_module.neighbour_index

    def held(*args, **kwargs):
        assert release.wait(30)
        return build(*args, **kwargs)

    monkeypatch.setattr(finds_module, "neighbour_index", held)
    return release


def test_a_click_lists_the_regions_before_the_index_is_built(monkeypatch):
    p = _predictions(seed=5, images=False)
    ex = explore(p)
    release = _held_index(monkeypatch)
    ex.finds.show_neighbours(int(p.ids[3]))
    shown = ex.finds.view.region_buttons[0]
    for _ in range(200):  # the regions take well under a second here
        if shown.layout.display is None:
            break
        threading.Event().wait(0.05)
    assert shown.layout.display is None and finds_of(p) is None
    assert "once the neighbour index is built" in ex.finds.view.neighbours_html.value
    release.set()
    assert ex.finds.wait(120)
    assert ex.finds.neighbours.tolist() == _brute_force(p, 3, N_NEIGHBOURS)


def test_a_click_during_a_regions_build_gets_its_neighbours_when_the_index_follows(monkeypatch):
    p = _predictions(seed=6, images=False)
    ex = explore(p)
    release, find = threading.Event(), finds_module.find_regions

    def held(*args, **kwargs):
        assert release.wait(30)
        return find(*args, **kwargs)

    monkeypatch.setattr(finds_module, "find_regions", held)
    ex.finds.view.build_button.click()  # the regions alone
    ex.finds.show_neighbours(int(p.ids[8]))  # asks for the index meanwhile
    release.set()
    assert ex.finds.wait(120)
    assert finds_of(p) is not None
    assert ex.finds.neighbours.tolist() == _brute_force(p, 8, N_NEIGHBOURS)


def test_the_temperature_slider_recolours_a_projection_coloured_by_confidence(toy):
    ex = explore(toy)
    ex.set_color("confidence")
    ex.controls["temperature"].value = 2.0  # the slider
    trace = ex.projection_figures[0].data[0]
    ids = np.asarray(trace.customdata)[:, 0].astype(int)
    expected = top_probability(toy.logits, temperature=2.0)[ids - 7]
    np.testing.assert_allclose(np.asarray(trace.marker.color), expected)
    assert not np.allclose(expected, toy.confidence[ids - 7])
