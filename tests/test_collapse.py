"""Tests of labviz.compute.collapse and labviz.figures.collapse."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from labviz import Predictions
from labviz.compute import collapse as cc
from labviz.figures import collapse as fc
from labviz.figures.style import class_color, series_color

TRIANGLE = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 3.0, 0.0]])


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def weights(rng):
    return rng.normal(size=(5, 6))


def _predictions(rng, n=120, d=6, c=5, name="model", noise=0.3):
    """Features near their class template, so most predictions are right."""
    w = rng.normal(size=(c, d))
    y = rng.integers(0, c, size=n)
    feats = w[y] * 2 + noise * rng.normal(size=(n, d))
    y_given = y.copy()
    y_given[:10] = (y[:10] + 1) % c
    return Predictions.from_arrays(y_true=y, y_given=y_given, logits=feats @ w.T, features=feats,
                                   weights=w, name=name)


def _plane_normal_component(weights, classes, rng):
    """A random vector orthogonal to the plane through the three templates."""
    wa, wb, wc = weights[list(classes)]
    q, _ = np.linalg.qr(np.stack([wb - wa, wc - wa]).T)
    z = rng.normal(size=weights.shape[1])
    return z - q @ (q.T @ z)


# ----- template projection ------------------------------------------------------------------------
def test_templates_project_to_their_triangle_centred_on_zero():
    # By hand: centroid (2/3, 1, 0); u1 = e_x, u2 = e_y.
    xy = cc.template_projection(TRIANGLE, TRIANGLE, (0, 1, 2))
    np.testing.assert_allclose(xy, [[-2 / 3, -1], [4 / 3, -1], [-2 / 3, 2]])


def test_projected_templates_keep_side_lengths_and_orientation(weights):
    cls = (3, 0, 4)
    xy = cc.template_projection(weights[list(cls)], weights, cls)
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        assert np.linalg.norm(xy[i] - xy[j]) == pytest.approx(
            np.linalg.norm(weights[cls[i]] - weights[cls[j]]))
    np.testing.assert_allclose(xy.mean(axis=0), 0, atol=1e-12)
    assert xy[1, 0] > xy[0, 0] and xy[1, 1] == pytest.approx(xy[0, 1])  # a -> b along +x
    assert xy[2, 1] > xy[0, 1]


def test_points_in_the_plane_are_recovered_as_affine_combinations(weights, rng):
    cls = (1, 2, 3)
    lam = rng.normal(size=(20, 2))
    wa, wb, wc = weights[list(cls)]
    in_plane = wa + lam[:, :1] * (wb - wa) + lam[:, 1:] * (wc - wa)
    tpl = cc.template_projection(weights[list(cls)], weights, cls)
    expected = tpl[0] + lam[:, :1] * (tpl[1] - tpl[0]) + lam[:, 1:] * (tpl[2] - tpl[0])
    np.testing.assert_allclose(cc.template_projection(in_plane, weights, cls), expected, atol=1e-10)


def test_off_plane_feature_projects_like_its_foot(weights, rng):
    cls = (0, 1, 2)
    foot = weights[0] + 0.3 * (weights[1] - weights[0]) - 0.7 * (weights[2] - weights[0])
    off = foot + 5 * _plane_normal_component(weights, cls, rng)
    np.testing.assert_allclose(cc.template_projection(off[None], weights, cls),
                               cc.template_projection(foot[None], weights, cls), atol=1e-10)


def test_scaling_scales_coordinates_about_the_projected_origin(weights, rng):
    # The origin is the templates' centroid, so scaling is about P(0), not about (0, 0).
    x = rng.normal(size=(7, 6))
    p0 = cc.template_projection(np.zeros((1, 6)), weights, (0, 1, 2))
    px = cc.template_projection(x, weights, (0, 1, 2))
    psx = cc.template_projection(2.5 * x, weights, (0, 1, 2))
    np.testing.assert_allclose(psx - p0, 2.5 * (px - p0), atol=1e-10)
    assert not np.allclose(psx, 2.5 * px)


def test_bias_does_not_change_the_plane(rng):
    p = _predictions(rng)
    with_bias = Predictions.from_arrays(y_true=p.y_true, logits=p.logits, features=p.features,
                                        weights=p.weights, bias=np.arange(5.0))
    a = cc.template_plane_frame(p, (0, 1, 2))
    b = cc.template_plane_frame(with_bias, (0, 1, 2))
    np.testing.assert_array_equal(a[["x", "y"]], b[["x", "y"]])


def test_template_plane_frame_keeps_the_three_classes(rng):
    p = _predictions(rng)
    frame = cc.template_plane_frame(p, (0, 2, 4))
    assert list(frame.columns) == ["x", "y", "label", "label_name", "prediction", "correct", "id"]
    keep = np.isin(p.y_true, (0, 2, 4))
    assert len(frame) == keep.sum()
    np.testing.assert_array_equal(frame["id"], p.ids[keep])
    np.testing.assert_array_equal(frame["correct"], p.correct[keep])
    np.testing.assert_allclose(frame[["x", "y"]],
                               cc.template_projection(p.features[keep], p.weights, (0, 2, 4)),
                               rtol=1e-6)
    np.testing.assert_allclose(frame.attrs["templates"],
                               cc.template_projection(p.weights[[0, 2, 4]], p.weights, (0, 2, 4)))
    zero = np.zeros((1, p.features.shape[1]))
    np.testing.assert_allclose(frame.attrs["origin"], cc.template_projection(zero, p.weights, (0, 2, 4))[0])
    assert len(cc.template_plane_frame(p, (0, 2, 4), only_classes=False)) == p.n_samples


@pytest.mark.parametrize("classes, exc, match", [
    ("abc", TypeError, "`classes` must be a sequence of 3 class indices"),
    ((0, 1), ValueError, "`classes` must hold exactly 3 class indices; got 2"),
    ((0, 1, 1), ValueError, r"`classes` must be 3 distinct class indices; got \(0, 1, 1\)"),
    ((0, 1, 5), ValueError, r"`classes` must be in \[0, 4\]; got \(0, 1, 5\)"),
    ((0, 1, 2.0), TypeError, "`classes` must be an integer"),
])
def test_template_projection_rejects_bad_classes(weights, classes, exc, match):
    with pytest.raises(exc, match=match):
        cc.template_projection(np.zeros((2, 6)), weights, classes)


def test_template_projection_rejects_collinear_templates():
    w = np.array([[0.0, 0.0], [1.0, 1.0], [3.0, 3.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match=r"`weights` rows \(0, 1, 2\) must not be collinear"):
        cc.template_projection(np.zeros((1, 2)), w, (0, 1, 2))


def test_template_projection_rejects_feature_dimension_mismatch(weights):
    with pytest.raises(ValueError, match=r"`features` must have shape \(n_samples, 6\) to match "
                                         r"`weights`; got \(2, 4\)"):
        cc.template_projection(np.zeros((2, 4)), weights, (0, 1, 2))


def test_template_plane_frame_rejects_non_predictions(weights):
    with pytest.raises(TypeError, match="`predictions` must be a labviz.Predictions; got ndarray"):
        cc.template_plane_frame(weights, (0, 1, 2))


def test_template_plane_frame_needs_features_and_weights():
    p = Predictions.from_arrays(y_true=[0, 1, 2], logits=np.eye(3))
    with pytest.raises(ValueError, match="`predictions` must hold `features` and `weights`"):
        cc.template_plane_frame(p, (0, 1, 2))


# ----- Kornblith metrics against brute force ------------------------------------------------------
def _brute_force_d(features, y):
    h = features / np.linalg.norm(features, axis=1, keepdims=True)
    dist = 1 - h @ h.T
    classes = np.unique(y)
    within = np.mean([dist[np.ix_(y == k, y == k)].mean() for k in classes])
    total = np.mean([dist[np.ix_(y == k, y == l)].mean() for k in classes for l in classes])
    return within, total


def test_intra_and_inter_match_brute_force_on_imbalanced_labels(rng):
    x = rng.normal(size=(60, 5)) + 0.5
    y = rng.choice([0, 2, 7], size=60, p=[0.6, 0.3, 0.1])  # gaps in labels, unequal sizes
    within, total = _brute_force_d(x, y)
    assert cc.intra_class_variation(x, y) == pytest.approx(within, rel=1e-12)
    assert cc.inter_class_separability(x, y) == pytest.approx(1 - within / total, rel=1e-12)


def test_metrics_ignore_feature_norms(rng):
    x = rng.normal(size=(40, 4))
    y = rng.integers(0, 3, size=40)
    scaled = x * rng.uniform(0.1, 10, size=(40, 1))
    assert cc.intra_class_variation(scaled, y) == pytest.approx(cc.intra_class_variation(x, y))


def test_collapsed_classes_have_zero_variation_and_full_separation(rng):
    means = rng.normal(size=(4, 6))
    y = np.repeat(np.arange(4), 5)
    x = means[y] * rng.uniform(0.5, 2, size=(20, 1))  # same direction per class
    assert cc.intra_class_variation(x, y) == pytest.approx(0, abs=1e-12)
    assert cc.inter_class_separability(x, y) == pytest.approx(1)
    assert cc.nc1(means[y], y) == pytest.approx(0, abs=1e-20)


def test_separability_warns_and_is_nan_when_all_features_align():
    with pytest.warns(RuntimeWarning, match="All features point the same way"):
        r2 = cc.inter_class_separability([[1.0, 0], [2.0, 0], [3.0, 0]], [0, 1, 1])
    assert np.isnan(r2)


def test_metrics_reject_a_single_class():
    with pytest.raises(ValueError, match="`y` must contain at least 2 classes; got only class 3"):
        cc.intra_class_variation([[1.0], [2.0]], [3, 3])


def test_metrics_reject_zero_feature_rows():
    with pytest.raises(ValueError, match="`features` must have no all-zero rows .*got 1"):
        cc.inter_class_separability([[1.0, 0], [0, 0], [0, 1]], [0, 1, 1])


# ----- NC1 and class-mean cosines -----------------------------------------------------------------
@pytest.mark.parametrize("d", [2, 8])  # d < K - 1 (full-rank Sigma_B) and d > K (rank K - 1)
def test_nc1_matches_the_direct_formula(rng, d):
    k, n = 4, 50
    y = np.concatenate([np.arange(k), rng.integers(0, k, size=n - k)])
    x = rng.normal(size=(n, d)) + rng.normal(size=(k, d))[y] * 3
    mu_g = x.mean(axis=0)
    means = np.stack([x[y == c].mean(axis=0) for c in range(k)])
    sigma_w = sum(np.outer(r, r) for r in x - means[y]) / n
    sigma_b = sum(np.outer(r, r) for r in means - mu_g) / k
    expected = np.trace(sigma_w @ np.linalg.pinv(sigma_b, rtol=1e-12)) / k
    assert cc.nc1(x, y) == pytest.approx(expected, rel=1e-8)


def test_class_mean_cosine_of_a_simplex_is_minus_one_over_k_minus_one(rng):
    k = 4
    y = np.repeat(np.arange(k), 3)
    x = np.eye(k)[y] + 10  # class means are a shifted simplex: centring removes the shift
    cos = cc.class_mean_cosine(x, y)
    np.testing.assert_allclose(cos, np.where(np.eye(k, dtype=bool), 1.0, -1 / (k - 1)), atol=1e-12)


def test_class_mean_cosine_marks_absent_classes_nan(rng):
    x = rng.normal(size=(9, 3))
    y = np.array([0, 0, 0, 2, 2, 2, 3, 3, 3])
    cos = cc.class_mean_cosine(x, y, n_classes=5)
    assert cos.shape == (5, 5)
    assert np.isnan(cos[1]).all() and np.isnan(cos[:, 4]).all()
    centred = np.stack([x[y == c].mean(0) for c in (0, 2, 3)]) - x.mean(0)
    unit = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    np.testing.assert_allclose(cos[np.ix_([0, 2, 3], [0, 2, 3])], unit @ unit.T)


def test_class_mean_cosine_rejects_labels_beyond_n_classes(rng):
    with pytest.raises(ValueError, match=r"`n_classes` must be greater than the largest label; got n_classes=2 and labels up to 2 in `y`"):
        cc.class_mean_cosine(rng.normal(size=(3, 2)), [0, 1, 2], n_classes=2)


# ----- per checkpoint and per group ---------------------------------------------------------------
def test_collapse_metrics_of_predictions_equal_those_of_its_arrays(rng):
    p = _predictions(rng)
    m = cc.collapse_metrics(p)
    assert m == cc.CollapseMetrics(
        intra=cc.intra_class_variation(p.features, p.y_true),
        inter=cc.inter_class_separability(p.features, p.y_true),
        nc1=cc.nc1(p.features, p.y_true),
    )
    assert cc.collapse_metrics(p, labels="given").nc1 == pytest.approx(cc.nc1(p.features, p.y_given))
    assert cc.collapse_metrics(p, labels="given").nc1 != pytest.approx(m.nc1)


@pytest.mark.parametrize("args, kwargs, exc, match", [
    ((np.ones((2, 2)),), {}, TypeError,
     r"`features` must be a labviz.Predictions, or an array given with `y`; got ndarray without `y`\."),
    (("P", [0, 1]), {}, TypeError, r"`features` must be .*; got Predictions and `y`\."),
    (("P",), {"labels": "noisy"}, ValueError, r"`labels` must be one of \['true', 'given'\]"),
    (("P_nofeat",), {}, ValueError, "`features` must hold features when it is a Predictions; got none in 'bare'"),
])
def test_collapse_metrics_rejects_bad_inputs(rng, args, kwargs, exc, match):
    objs = {"P": _predictions(rng),
            "P_nofeat": Predictions.from_arrays(y_true=[0, 1], logits=np.eye(2), name="bare")}
    args = tuple(objs.get(a, a) if isinstance(a, str) else a for a in args)
    with pytest.raises(exc, match=match):
        cc.collapse_metrics(*args, **kwargs)


def test_collapse_table_and_summary(rng):
    preds = [_predictions(rng, name=f"ls-seed{s}") for s in range(3)]
    preds += [_predictions(rng, noise=1.5, name=f"ce-seed{s}") for s in range(2)]
    table = cc.collapse_table(preds, group_by=lambda p: p.name.split("-")[0])
    assert list(table.columns) == ["name", "group", "intra", "inter", "nc1"]
    assert table["group"].tolist() == ["ls", "ls", "ls", "ce", "ce"]
    assert table.loc[4, "nc1"] == pytest.approx(cc.nc1(preds[4].features, preds[4].y_true))
    summary = cc.collapse_summary(table)
    assert summary[["group", "metric"]].values.tolist() == [
        ["ls", "intra"], ["ls", "inter"], ["ls", "nc1"], ["ce", "intra"], ["ce", "inter"], ["ce", "nc1"]]
    ls = table["intra"][:3]
    row = summary.iloc[0]
    assert (row["mean"], row["sd"], row["n"]) == (pytest.approx(ls.mean()),
                                                  pytest.approx(np.std(ls, ddof=1)), 3)
    # Noisier features are less collapsed.
    assert summary.iloc[3]["mean"] > summary.iloc[0]["mean"]


def test_collapse_table_groups_default_to_names_and_accept_a_sequence(rng):
    preds = [_predictions(rng, name="a"), _predictions(rng, name="")]
    assert cc.collapse_table(preds)["group"].tolist() == ["a", "#1"]
    assert cc.collapse_table(preds, group_by=["g", "g"])["group"].tolist() == ["g", "g"]


@pytest.mark.parametrize("preds, kwargs, exc, match", [
    ("single", {}, TypeError, "`predictions` must be a sequence of labviz.Predictions; got Predictions"),
    ([], {}, ValueError, "`predictions` must not be empty"),
    (["x"], {}, TypeError, "`predictions` must hold labviz.Predictions; got str"),
    ("pair", {"group_by": ["a"]}, ValueError, r"`group_by` must give one group per checkpoint \(2\); got 1"),
])
def test_collapse_table_rejects_bad_inputs(rng, preds, kwargs, exc, match):
    p = _predictions(rng)
    preds = {"single": p, "pair": [p, p]}.get(preds, preds) if isinstance(preds, str) else preds
    with pytest.raises(exc, match=match):
        cc.collapse_table(preds, **kwargs)


def test_collapse_summary_rejects_bad_tables():
    with pytest.raises(TypeError, match="`table` must be a pandas DataFrame; got dict"):
        cc.collapse_summary({"group": []})
    with pytest.raises(ValueError, match=r"`table` must have columns \['group', 'intra', 'inter', 'nc1'\]"):
        cc.collapse_summary(pd.DataFrame({"group": ["a"]}))


def test_misclassified_confidence_from_predictions_and_arrays(rng):
    p = _predictions(rng, noise=2.0)
    conf = cc.misclassified_confidence(p)
    assert len(conf) == (~p.correct).sum() > 0
    np.testing.assert_allclose(conf, p.confidence[~p.correct])
    np.testing.assert_allclose(cc.misclassified_confidence(p.probs, p.y_true), conf)


def test_misclassified_confidence_labels_must_match_the_input(rng):
    p = _predictions(rng)
    with pytest.raises(TypeError, match=r"`probs` must be a labviz.Predictions, or an array given "
                                        r"with `y_true`; got Predictions and `y_true`\."):
        cc.misclassified_confidence(p, p.y_true)
    with pytest.raises(TypeError, match=r"`probs` must be .*; got ndarray without `y_true`\."):
        cc.misclassified_confidence(p.probs)


# ----- figures ------------------------------------------------------------------------------------
def test_template_plane_figure_panels_colours_templates_and_equal_axes(rng):
    train, test = _predictions(rng, name="train"), _predictions(rng, name="test")
    display = fc.TemplatePlaneDisplay.from_predictions([train, test], classes=(0, 1, 2))
    fig = display.plot()
    assert isinstance(fig, go.Figure)
    assert [a.text for a in fig.layout.annotations] == ["train", "test"]
    points = [t for t in fig.data if t.name != "templates"]
    frame0 = display.frames[0]
    first_panel = [t for t in points if t.xaxis == "x"]
    assert [t.marker.color for t in first_panel] == [class_color(k) for k in sorted(frame0["label"].unique())]
    assert sum(len(t.x) for t in first_panel) == len(frame0)
    arrows = [t for t in fig.data if t.name == "templates"]
    assert len(arrows) == 2 and arrows[0].marker.symbol == "arrow"
    # three arrows from the projected origin toward the projected templates, labelled at the tip
    xy = np.column_stack([arrows[0].x, arrows[0].y]).astype(float)
    origin, tpl = np.asarray(frame0.attrs["origin"]), np.asarray(frame0.attrs["templates"])
    np.testing.assert_allclose(xy[0::3], np.repeat(origin[None], 3, axis=0))
    steps, wanted = xy[1::3] - origin, tpl - origin
    scale = steps[:, 0] / wanted[:, 0]
    np.testing.assert_allclose(steps, wanted * scale[0], rtol=1e-9)  # same directions, one scale
    reach = np.hypot(frame0.x - origin[0], frame0.y - origin[1]).max()
    assert np.linalg.norm(steps, axis=1).max() == pytest.approx(fc.ARROW_SHARE * reach)
    assert [t for t in arrows[0].text if t] == [f"w: {frame0.attrs['class_names'][k]}" for k in (0, 1, 2)]
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.yaxis2.scaleanchor == "x2"
    assert sum(t.showlegend is not False for t in fig.data) == 4  # 3 classes + templates, once each
    assert fig.layout.template.layout.paper_bgcolor == "white"


def test_template_plane_figure_uses_webgl_for_many_points(rng):
    n = fc.WEBGL_THRESHOLD + 1
    frame = pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n), "label": 0,
                          "label_name": "a", "prediction": 0, "correct": True, "id": np.arange(n)})
    fig = fc.template_plane_figure([frame], titles=["big"])
    assert isinstance(fig.data[0], go.Scattergl) and len(fig.data) == 1  # no attrs: no templates


@pytest.mark.parametrize("panels, kwargs, exc, match", [
    ("nope", {}, TypeError, "`panels` must be a sequence of DataFrames or labviz.Predictions; got str"),
    ([], {}, ValueError, "`panels` must not be empty"),
    (["P"], {}, TypeError, "Give `classes` to project a labviz.Predictions"),
    ([pd.DataFrame({"x": [1]})], {}, ValueError, "`panels` frames must have columns"),
    ([1], {}, TypeError, "`panels` must hold DataFrames or labviz.Predictions; got int"),
    (["P"], {"classes": (0, 1, 2), "titles": ["a", "b"]}, ValueError,
     r"`titles` must have 1 entries \(one per panel\); got 2"),
])
def test_template_plane_figure_rejects_bad_inputs(rng, panels, kwargs, exc, match):
    if isinstance(panels, list):
        panels = [_predictions(rng) if isinstance(p, str) else p for p in panels]
    with pytest.raises(exc, match=match):
        fc.template_plane_figure(panels, **kwargs)


def test_collapse_metrics_figure_bars_are_group_means_with_sd(rng):
    table = pd.DataFrame({"name": list("abcd"), "group": ["ce", "ce", "ls", "ls"],
                          "intra": [0.4, 0.6, 0.1, 0.3], "inter": [0.2, 0.2, 0.5, 0.7],
                          "nc1": [2.0, 2.0, 0.5, 0.5]})
    fig = fc.CollapseMetricsDisplay(table).plot()
    bars = [t for t in fig.data if isinstance(t, go.Bar)]
    assert len(bars) == 6
    intra = {b.name: b for b in bars if b.xaxis == "x"}
    assert intra["ce"].y[0] == pytest.approx(0.5) and intra["ls"].y[0] == pytest.approx(0.2)
    assert intra["ls"].error_y.array[0] == pytest.approx(np.std([0.1, 0.3], ddof=1))
    assert intra["ce"].marker.color == series_color(0) and intra["ls"].marker.color == series_color(1)
    dots = [t for t in fig.data if isinstance(t, go.Scatter)]
    assert len(dots) == 3 and list(dots[0].y) == [0.4, 0.6, 0.1, 0.3]


def test_collapse_metrics_display_from_predictions(rng):
    preds = [_predictions(rng, name=f"m{i}") for i in range(2)]
    display = fc.CollapseMetricsDisplay.from_predictions(preds, group_by=["g", "g"])
    assert display.table["group"].tolist() == ["g", "g"]
    bar = display.plot().data[0]
    assert bar.y[0] == pytest.approx(display.table["intra"].mean())


def test_class_cosine_figure_heatmap(rng):
    p = _predictions(rng)
    display = fc.ClassCosineDisplay.from_predictions(p)
    fig = display.plot()
    heat = fig.data[0]
    np.testing.assert_allclose(np.asarray(heat.z, dtype=float),
                               cc.class_mean_cosine(p.features, p.y_true, n_classes=5))
    assert list(heat.x) == list(p.class_names) and heat.zmid == 0
    assert fig.layout.yaxis.autorange == "reversed"


@pytest.mark.parametrize("matrix, names, exc, match", [
    ([["a", "b"], ["c", "d"]], None, TypeError, "`matrix` must hold real numbers"),
    (np.zeros((2, 3)), None, ValueError, r"`matrix` must have shape \(n_classes, n_classes\); got \(2, 3\)"),
    (np.zeros((2, 2)), ["a"], ValueError, r"`class_names` must have 2 entries \(one per class\); got 1"),
])
def test_class_cosine_figure_rejects_bad_inputs(matrix, names, exc, match):
    with pytest.raises(exc, match=match):
        fc.class_cosine_figure(matrix, names)


def test_misclassified_confidence_figure_overlays_one_histogram_per_model(rng):
    preds = {"LS": _predictions(rng, noise=2.0), "MaxSup": _predictions(rng, noise=2.0)}
    display = fc.MisclassifiedConfidenceDisplay.from_predictions(preds)
    fig = display.plot(n_bins=10)
    assert [t.name.split(" ")[0] for t in fig.data] == ["LS", "MaxSup"]
    assert fig.layout.barmode == "overlay" and fig.data[0].histnorm == "probability"
    np.testing.assert_allclose(fig.data[1].x, cc.misclassified_confidence(preds["MaxSup"]))
    assert fig.data[1].marker.color == series_color(1) and fig.data[0].xbins.size == 0.1
    # A model without errors still gets a (empty) series.
    empty = fc.misclassified_confidence_figure({"perfect": []})
    assert empty.data[0].name == "perfect (n=0)"


@pytest.mark.parametrize("conf, exc, match", [
    ([0.5], TypeError, r"`confidences` must be a mapping \{name: confidences\}; got list"),
    ({}, ValueError, "`confidences` must not be empty"),
    ({"a": [[0.5]]}, ValueError, r"`confidences\['a'\]` must be a 1-D array of probabilities"),
    ({"a": [1.5]}, ValueError, r"`confidences\['a'\]` must hold probabilities in \[0, 1\]"),
])
def test_misclassified_confidence_figure_rejects_bad_inputs(conf, exc, match):
    with pytest.raises(exc, match=match):
        fc.misclassified_confidence_figure(conf)


# ----- tightness where Müller measures it ---------------------------------------------------------
def test_plane_tightness_is_within_over_between_spread_in_the_plane(rng, weights):
    cls = (0, 1, 2)
    y = np.repeat(cls, 50)
    x = weights[y] * 3.0 + rng.normal(scale=0.2, size=(150, weights.shape[1]))
    xy = cc.template_projection(x, weights, cls)
    means = np.stack([xy[y == k].mean(axis=0) for k in cls])
    within = np.mean([((xy[y == k] - means[i]) ** 2).sum(axis=1).mean() for i, k in enumerate(cls)])
    between = ((means - means.mean(axis=0)) ** 2).sum(axis=1).mean()
    assert cc.plane_tightness(x, y, weights, cls) == pytest.approx(within / between)
    # scale-free, and blind to what lies off the plane
    assert cc.plane_tightness(5 * x, y, weights, cls) == pytest.approx(within / between)
    # samples of other classes are left out
    x_more = np.vstack([x, rng.normal(size=(20, weights.shape[1]))])
    y_more = np.concatenate([y, np.full(20, 3)])
    assert cc.plane_tightness(x_more, y_more, weights, cls) == pytest.approx(within / between)
    with pytest.raises(ValueError, match="`y` must contain every class of `classes` \\(0, 1, 4\\); got none of \\[4\\]"):
        cc.plane_tightness(x, y, weights, (0, 1, 4))


def test_template_span_share_splits_within_class_variance(rng):
    w = np.zeros((3, 6))
    w[[0, 1, 2], [0, 1, 2]] = 1.0  # templates span the first three axes
    y = np.repeat([0, 1, 2], 40)
    noise = rng.normal(size=(120, 6)) * np.array([1, 1, 1, 2, 2, 2])  # 4x the variance off the span
    share = cc.template_span_share(noise + w[y] * 5, y, w)
    assert share == pytest.approx(1 / 5, abs=0.05)
    assert cc.template_span_share(w[y] * 5 + noise * np.array([1, 1, 1, 0, 0, 0]), y, w) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="`weights` must have shape \\(n_classes, 6\\)"):
        cc.template_span_share(noise, y, w[:, :5])


def test_wrong_logit_spread_is_zero_for_equidistant_wrong_classes_and_scale_free(rng):
    y = rng.integers(0, 4, size=30)
    z = np.zeros((30, 4))
    z[np.arange(30), y] = 3.0
    assert cc.wrong_logit_spread(z, y) == 0.0
    z2 = z + rng.normal(scale=0.3, size=z.shape)
    assert cc.wrong_logit_spread(7 * z2, y) == pytest.approx(cc.wrong_logit_spread(z2, y))
    assert cc.wrong_logit_spread(z2, y) > 0.05
