"""Tests for labviz.compute.projection (compute) and labviz.figures.projection (figures, Display)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from sklearn.decomposition import PCA

import labviz.figures.projection as figproj
import labviz.compute.projection as proj
from labviz import Predictions
from labviz.figures.projection import (
    ProjectionDisplay,
    hover_thumbnail_uris,
    projection_figure,
    side_by_side_figure,
)
from labviz.figures.style import class_color
from labviz.figures.thumbnails import thumbnail_uri
from labviz.compute.projection import (
    FRAME_COLUMNS,
    aligned_projections,
    project,
    projection_frame,
)


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    # never touch the user's cache; every test starts with an empty one
    monkeypatch.setenv("LABVIZ_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _predictions(rng, n=120, n_classes=3, d=8, name="toy", n_flipped=10):
    y = rng.integers(0, n_classes, n)
    means = rng.normal(0, 4, (n_classes, d))
    features = means[y] + rng.normal(0, 1, (n, d))
    logits = rng.normal(0, 1, (n, n_classes)) + 2 * np.eye(n_classes)[y]
    y_given = y.copy()
    flip = rng.choice(n, n_flipped, replace=False)
    y_given[flip] = (y[flip] + 1) % n_classes
    ids = rng.permutation(10 * n)[:n]
    images = rng.random((n, 6, 6))
    return Predictions.from_arrays(
        y_true=y, logits=logits, features=features, y_given=y_given, ids=ids,
        class_names=[f"c{k}" for k in range(n_classes)], images=images, name=name,
    )


@pytest.fixture
def preds():
    return _predictions(np.random.default_rng(0))


# ----- project ----------------------------------------------------------------------------------
def test_pca_equals_sklearn_pca(preds):
    expected = PCA(n_components=2).fit_transform(preds.features)
    np.testing.assert_allclose(project(preds.features), expected, atol=1e-9)


def test_tsne_small_is_finite_and_deterministic():
    x = np.random.default_rng(0).normal(size=(60, 5))
    a = project(x, method="tsne", perplexity=10, max_iter=250, random_state=3)
    b = project(x, method="tsne", perplexity=10, max_iter=250, random_state=3)
    assert a.shape == (60, 2) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)


def test_umap_on_digits_is_finite_and_deterministic():
    from sklearn.datasets import load_digits

    x = load_digits().data[:300]
    a = project(x, method="umap", n_neighbors=10, n_epochs=30, random_state=1)
    b = project(x, method="umap", n_neighbors=10, n_epochs=30, random_state=1)
    assert a.shape == (300, 2) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)


# ----- projection_frame -------------------------------------------------------------------------
def test_frame_columns_dtypes_and_rows(preds):
    frame = projection_frame(preds, cache=False)
    assert tuple(frame.columns) == FRAME_COLUMNS
    for col in ("label", "prediction", "given", "id"):
        assert frame[col].dtype == np.int64, col
    for col in ("x", "y", "confidence"):
        assert frame[col].dtype == np.float64, col
    assert frame["correct"].dtype == bool and frame["flipped"].dtype == bool
    assert pd.api.types.is_string_dtype(frame["label_name"])
    np.testing.assert_array_equal(frame["id"], preds.ids)
    np.testing.assert_array_equal(frame["label"], preds.y_true)
    np.testing.assert_array_equal(frame["given"], preds.y_given)
    np.testing.assert_array_equal(frame["prediction"], preds.y_pred)
    np.testing.assert_array_equal(frame["flipped"], preds.flipped)
    assert frame["flipped"].sum() == 10
    np.testing.assert_allclose(frame["confidence"], preds.confidence)
    assert frame["label_name"].tolist() == [f"c{k}" for k in preds.y_true]
    assert frame["prediction_name"].tolist() == [f"c{k}" for k in preds.y_pred]
    np.testing.assert_allclose(frame[["x", "y"]].to_numpy(), project(preds.features))
    assert frame.attrs["method"] == "pca" and frame.attrs["name"] == "toy"


def test_cache_hit_skips_recomputation(preds, monkeypatch, _cache_dir):
    calls = []
    real = proj.project

    def counting(*args, **kwargs):
        calls.append(kwargs["method"])
        return real(*args, **kwargs)

    monkeypatch.setattr(proj, "project", counting)
    first = projection_frame(preds)
    second = projection_frame(preds)
    assert len(calls) == 1
    pd.testing.assert_frame_equal(first, second)
    assert len(list((_cache_dir / "projections").glob("*.npz"))) == 1
    # a different seed or different features is a different entry
    projection_frame(preds, random_state=1)
    assert len(calls) == 2
    shifted = Predictions.from_arrays(y_true=preds.y_true, logits=preds.logits,
                                      features=preds.features + 1.0)
    projection_frame(shifted)
    assert len(calls) == 3


def test_cache_false_always_recomputes(preds, monkeypatch, _cache_dir):
    calls = []
    real = proj.project
    monkeypatch.setattr(proj, "project", lambda *a, **k: calls.append(1) or real(*a, **k))
    projection_frame(preds, cache=False)
    projection_frame(preds, cache=False)
    assert len(calls) == 2
    assert not (_cache_dir / "projections").exists()


# ----- large inputs: streamed PCA, sampled UMAP, progress, lean frames --------------------------
def _clusters(n=600, d=8, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    centres = rng.normal(0, 6, (n_classes, d))
    return (centres[y] + rng.normal(0, 1, (n, d))).astype(np.float32), y


_UMAP_SMALL = dict(method="umap", n_neighbors=10, n_epochs=20, sample_size=200, random_state=0)


def test_pca_of_float32_features_matches_float64_pca_to_float32_precision():
    x, _ = _clusters(n=1000)
    expected = PCA(n_components=2).fit_transform(x.astype(np.float64))
    got = project(x)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, atol=1e-5 * np.abs(expected).max())
    np.testing.assert_allclose(project(x.astype(np.float64)), expected, atol=1e-12)


def test_pca_reads_float32_features_without_a_float64_copy(monkeypatch):
    import tracemalloc

    x, _ = _clusters(n=20_000, d=64)  # 5 MB of float32; a float64 copy would take 10 MB
    project(x[:100])  # imports and first-call allocations outside the measurement
    tracemalloc.start()
    try:
        project(x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < x.nbytes, peak  # the (20000, 2) float64 result is 0.3 MB


def test_sampled_umap_is_deterministic_and_places_points_near_their_cluster():
    x, y = _clusters()
    a = project(x, **_UMAP_SMALL)
    b = project(x, **_UMAP_SMALL)
    assert a.shape == (600, 2) and a.dtype == np.float64 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(project(x, **{**_UMAP_SMALL, "random_state": 1}), a)
    sample = proj._sample_indices(600, 200, 0)
    placed = np.setdiff1d(np.arange(600), sample)
    # a placed point is a weighted mean of sample positions: inside their bounding box ...
    lo, hi = a[sample].min(axis=0), a[sample].max(axis=0)
    assert ((a[placed] >= lo - 1e-9) & (a[placed] <= hi + 1e-9)).all()
    # ... and next to its own cluster's sample points
    from sklearn.neighbors import NearestNeighbors

    nearest = NearestNeighbors(n_neighbors=1).fit(a[sample]).kneighbors(
        a[placed], return_distance=False)[:, 0]
    assert (y[sample][nearest] == y[placed]).mean() > 0.95



# building a pynndescent index compiles numba code for about 20 s
def test_sampled_umap_from_4096_samples_places_points_with_the_index_of_the_fit():
    x, y = _clusters(n=6000)
    opts = {**_UMAP_SMALL, "sample_size": 4096, "n_epochs": 10}
    a = project(x, **opts)
    np.testing.assert_array_equal(project(x, **opts), a)
    sample = proj._sample_indices(6000, 4096, 0)
    placed = np.setdiff1d(np.arange(6000), sample)
    from sklearn.neighbors import NearestNeighbors

    nearest = NearestNeighbors(n_neighbors=1).fit(a[sample]).kneighbors(
        a[placed], return_distance=False)[:, 0]
    assert (y[sample][nearest] == y[placed]).mean() > 0.95

def test_sample_size_at_or_above_n_samples_fits_every_sample(monkeypatch, _cache_dir):
    x, y = _clusters(n=300)
    full = project(x, **{**_UMAP_SMALL, "sample_size": None})
    np.testing.assert_array_equal(project(x, **{**_UMAP_SMALL, "sample_size": 300}), full)
    # the same result is one cache entry, whatever sample size above n asked for it
    calls = []
    real = proj.project
    monkeypatch.setattr(proj, "project", lambda *a, **k: calls.append(k) or real(*a, **k))
    p = Predictions.from_arrays(y_true=y, logits=np.eye(3)[y], features=x)
    projection_frame(p, **{**_UMAP_SMALL, "sample_size": 1000})
    projection_frame(p, **{**_UMAP_SMALL, "sample_size": None})
    assert len(calls) == 1 and calls[0]["sample_size"] is None


def test_sampled_umap_frame_is_cached_by_sample_size(monkeypatch, _cache_dir):
    x, y = _clusters()
    p = Predictions.from_arrays(y_true=y, logits=np.eye(3)[y], features=x)
    calls = []
    real = proj.project

    def counting(*args, **kwargs):
        calls.append(kwargs["sample_size"])
        return real(*args, **kwargs)

    monkeypatch.setattr(proj, "project", counting)
    first = projection_frame(p, **_UMAP_SMALL)
    second = projection_frame(p, **_UMAP_SMALL)
    assert calls == [200]
    pd.testing.assert_frame_equal(first, second)
    np.testing.assert_array_equal(first[["x", "y"]].to_numpy(), real(x, **_UMAP_SMALL))
    projection_frame(p, **{**_UMAP_SMALL, "sample_size": 300})
    assert calls == [200, 300]
    assert len(list((_cache_dir / "projections").glob("*.npz"))) == 2


def _recorded(call):
    seen = []
    call(seen.append)
    assert seen, "progress was never called"
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert all(0.0 <= f <= 1.0 for f in seen) and all(np.diff(seen) >= 0), seen
    return seen


def test_progress_runs_from_0_to_1_for_every_method(monkeypatch):
    x, y = _clusters()
    monkeypatch.setattr(proj, "_CHUNK", 100)
    assert _recorded(lambda cb: project(x, progress=cb)) == [0.0, 1.0]  # PCA is one step
    umap_steps = _recorded(lambda cb: project(x, **_UMAP_SMALL, progress=cb))
    assert len(set(umap_steps)) > 4  # sample graph, fit, then each chunk placed
    _recorded(lambda cb: project(x[:60], method="tsne", perplexity=10, max_iter=250, progress=cb))
    _recorded(lambda cb: project(x[:100], method="umap", n_neighbors=10, n_epochs=10, progress=cb))


def test_progress_of_a_frame_ends_at_1_also_when_cached(preds):
    computed = _recorded(lambda cb: projection_frame(preds, progress=cb))
    cached = _recorded(lambda cb: projection_frame(preds, progress=cb))
    assert computed == cached == [0.0, 1.0]


def test_sampled_umap_shows_a_progress_bar(capsys):
    x, _ = _clusters()
    project(x, **_UMAP_SMALL)
    assert "UMAP: fit 200 of 600 samples, place the rest" in capsys.readouterr().err


def test_name_columns_are_categorical_with_the_class_names(preds):
    frame = projection_frame(preds, cache=False)
    for col, classes in (("label_name", preds.y_true), ("prediction_name", preds.y_pred)):
        assert isinstance(frame[col].dtype, pd.CategoricalDtype), col
        assert list(frame[col].cat.categories) == ["c0", "c1", "c2"]
        assert frame[col].tolist() == [f"c{k}" for k in classes]
    # repeated class names are one category
    p = Predictions.from_arrays(y_true=[0, 1, 2], logits=np.eye(3), features=np.eye(3),
                                class_names=["cat", "dog", "cat"])
    frame = projection_frame(p, cache=False)
    assert frame["label_name"].tolist() == ["cat", "dog", "cat"]
    assert list(frame["label_name"].cat.categories) == ["cat", "dog"]


# ----- alignment --------------------------------------------------------------------------------
def test_fit_similarity_recovers_hand_worked_transform():
    square = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    rot90 = np.array([[0.0, 1.0], [-1.0, 0.0]])
    target = 2.0 * square @ rot90 + np.array([1.0, -1.0])
    r, s, t = proj._fit_similarity(square, target)
    np.testing.assert_allclose(r, rot90, atol=1e-12)
    assert s == pytest.approx(2.0)
    np.testing.assert_allclose(t, [1.0, -1.0], atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_fit_similarity_rotation_is_scipys_orthogonal_procrustes(seed):
    from scipy.linalg import orthogonal_procrustes

    rng = np.random.default_rng(seed)
    source, target = rng.normal(size=(50, 2)), rng.normal(size=(50, 2))
    rot, scale, shift = proj._fit_similarity(source, target)
    s0, t0 = source - source.mean(axis=0), target - target.mean(axis=0)
    ref_rot, ref_sv = orthogonal_procrustes(s0, t0)
    np.testing.assert_allclose(rot, ref_rot, atol=1e-12)
    assert scale == pytest.approx(ref_sv / (s0**2).sum(), rel=1e-12)


def test_procrustes_maps_rotated_copy_back_using_shared_ids():
    rng = np.random.default_rng(0)
    # 2-D features: PCA is then a rigid map, so b's aligned points must land exactly on a's axes,
    # even for b's samples that a lacks (the fit only sees the shared ids 30..119)
    base = rng.normal(size=(150, 2)) * [3.0, 1.0]
    y = rng.integers(0, 3, 150)
    logits = np.eye(3)[y]
    angle = 0.7
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pa = Predictions.from_arrays(y_true=y[:120], logits=logits[:120], features=base[:120],
                                 ids=np.arange(120))
    order = rng.permutation(np.arange(30, 150))
    pb = Predictions.from_arrays(y_true=y[order], logits=logits[order],
                                 features=2.5 * base[order] @ rot + [4.0, -2.0], ids=order)
    fa, fb = aligned_projections(pa, pb, alignment="procrustes")
    pca_a = PCA(n_components=2).fit(base[:120])
    pd.testing.assert_frame_equal(fa, projection_frame(pa), check_like=False)
    # features are stored as float32, hence the tolerance
    np.testing.assert_allclose(fb[["x", "y"]].to_numpy(), pca_a.transform(base[order]), atol=1e-5)
    np.testing.assert_array_equal(fb["id"], order)
    assert fb.attrs["alignment"] == "procrustes"


def test_shared_pca_fits_one_pca_on_both_sets(preds):
    other = _predictions(np.random.default_rng(1), n=80)
    fa, fb = aligned_projections(preds, other, alignment="shared_pca")
    pca = PCA(n_components=2).fit(np.vstack([preds.features, other.features]))
    np.testing.assert_allclose(fa[["x", "y"]].to_numpy(), pca.transform(preds.features), atol=1e-8)
    np.testing.assert_allclose(fb[["x", "y"]].to_numpy(), pca.transform(other.features), atol=1e-8)
    assert len(fb) == 80 and fb.attrs["alignment"] == "shared_pca"


# ----- validation (one test per message) ---------------------------------------------------------
_X = np.random.default_rng(0).normal(size=(10, 3))
_NO_FEATURES = Predictions.from_arrays(y_true=[0, 1], logits=[[1.0, 0.0], [0.0, 1.0]])


def _with(features, ids=None):
    n = len(features)
    return Predictions.from_arrays(y_true=np.arange(n) % 2, logits=np.eye(2)[np.arange(n) % 2],
                                   features=features, ids=ids)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: project(np.ones(10)), ValueError,
         r"`features` must have shape \(n_samples, n_features\); got \(10,\)\."),
        (lambda: project(np.ones((0, 3))), ValueError, r"`features` must not be empty"),
        (lambda: project(np.where(_X > 1, np.nan, _X)), ValueError, r"`features` must be finite"),
        (lambda: project(_X.astype(str)), TypeError, r"`features` must hold real numbers"),
        (lambda: project(np.ones((1, 3))), ValueError,
         r"`features` must have at least 2 samples \(rows\) and 2 features \(columns\); got \(1, 3\)"),
        (lambda: project(_X, method="lda"), ValueError,
         r"`method` must be one of \['pca', 'umap', 'tsne'\]; got 'lda'\."),
        (lambda: project(_X, random_state=1.5), TypeError, r"`random_state` must be an integer"),
        (lambda: project(_X, method="umap", n_neighbors=10), ValueError,
         r"`n_neighbors` must be less than the number of samples for method='umap'; "
         r"got n_neighbors=10 with 10 samples\."),
        (lambda: project(_X, method="umap", n_neighbors=1), ValueError,
         r"`n_neighbors` must be >= 2; got 1\."),
        (lambda: project(_X, method="umap", n_neighbors=3, min_dist=1.5), ValueError,
         r"`min_dist` must be in \[0, 1\]; got 1\.5\."),
        (lambda: project(_X, method="umap", n_neighbors=3, min_dist="0.1"), TypeError,
         r"`min_dist` must be a number"),
        (lambda: project(_X, method="umap", n_neighbors=3, n_epochs=0), ValueError,
         r"`n_epochs` must be >= 1"),
        (lambda: project(_X, method="umap", n_neighbors=3, sample_size=2.5), TypeError,
         r"`sample_size` must be an integer; got float 2\.5\."),
        (lambda: project(_X, method="umap", n_neighbors=3, sample_size=3), ValueError,
         r"`sample_size` must be greater than `n_neighbors` for method='umap' .*; "
         r"got sample_size=3 with n_neighbors=3\."),
        (lambda: project(_X, progress=0.5), TypeError,
         r"`progress` must be a callable taking the fraction done \(a float in \[0, 1\]\) or "
         r"None; got float\."),
        (lambda: projection_frame(_with(_X), progress="bar"), TypeError,
         r"`progress` must be a callable .* got str\."),
        (lambda: project(np.where(_X > 1, np.nan, _X).astype(np.float32)), ValueError,
         rf"`features` must be finite; got {int((_X > 1).sum())} NaN or inf values\."),
        (lambda: project(_X, method="tsne"), ValueError,
         r"`perplexity` must be less than the number of samples for method='tsne'; "
         r"got perplexity=30\.0 with 10 samples\."),
        (lambda: project(_X, method="tsne", perplexity=0.0), ValueError,
         r"`perplexity` must be a positive number; got 0\.0\."),
        (lambda: project(_X, method="tsne", perplexity=None), TypeError,
         r"`perplexity` must be a number"),
        (lambda: project(_X, method="tsne", perplexity=5, max_iter=100), ValueError,
         r"`max_iter` must be >= 250; got 100\."),
        (lambda: projection_frame(_X), TypeError,
         r"`predictions` must be a labviz\.Predictions; got ndarray\."),
        (lambda: projection_frame(_NO_FEATURES), ValueError,
         r"`predictions` must hold features \(penultimate activations\)"),
        (lambda: projection_frame(_with(_X), cache="yes"), TypeError, r"`cache` must be a bool"),
        (lambda: aligned_projections(_with(_X), _with(_X), alignment="cca"), ValueError,
         r"`alignment` must be one of \['procrustes', 'shared_pca'\]"),
        (lambda: aligned_projections(_with(_X), _with(_X), method="tsne", alignment="shared_pca"),
         ValueError, r"`method` must be 'pca' when alignment='shared_pca'; got 'tsne'\."),
        (lambda: aligned_projections(_with(_X), _with(_X[:, :2]), alignment="shared_pca"),
         ValueError, r"must have the same number of features for alignment='shared_pca'; got 3 and 2"),
        (lambda: aligned_projections(_with(_X), _with(_X, ids=np.arange(8, 18))), ValueError,
         r"must share at least 3 sample ids for alignment='procrustes'; got 2 shared ids\."),
        (lambda: aligned_projections(_NO_FEATURES, _with(_X)), ValueError,
         r"`predictions_a` must hold features"),
    ],
)
def test_compute_validation(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ----- figures ----------------------------------------------------------------------------------
@pytest.fixture
def frame(preds):
    return projection_frame(preds, cache=False)


def test_one_trace_per_class_in_class_colours(frame):
    fig = projection_figure(frame, title="toy")
    *classes, highlight = fig.data
    assert [t.name for t in classes] == ["c0", "c1", "c2"]
    assert [t.marker.color for t in classes] == [class_color(k) for k in range(3)]
    assert all(isinstance(t, go.Scatter) for t in fig.data)
    for k, t in enumerate(classes):
        rows = frame[frame["label"] == k]
        np.testing.assert_array_equal(np.asarray(t.x), rows["x"])
        # customdata[0] is the id: a widget maps clicks back to samples with it
        assert [row[0] for row in t.customdata] == rows["id"].tolist()
        assert "%{customdata[0]}" in t.hovertemplate
    assert highlight.name == "highlight" and len(highlight.x) == 0
    assert fig.layout.yaxis.scaleanchor == "x"
    assert fig.layout.title.text == "toy"
    assert fig.layout.template.layout.plot_bgcolor == "white"  # apply_style ran


def test_prediction_colouring_groups_by_predicted_class(frame):
    fig = projection_figure(frame, color="prediction")
    sizes = [len(t.x) for t in fig.data[:-1]]
    assert sizes == np.bincount(frame["prediction"]).tolist()


def test_boolean_and_continuous_colourings(frame):
    fig = projection_figure(frame, color="correct")
    assert [t.name for t in fig.data[:-1]] == ["correct", "wrong"]
    assert [len(t.x) for t in fig.data[:-1]] == [frame["correct"].sum(), (~frame["correct"]).sum()]
    fig = projection_figure(frame, color="flipped")
    assert [(t.name, len(t.x)) for t in fig.data[:-1]] == [("clean label", 110), ("flipped label", 10)]
    fig = projection_figure(frame, color="confidence")
    (trace, _) = fig.data
    np.testing.assert_allclose(trace.marker.color, frame["confidence"])
    assert (trace.marker.cmin, trace.marker.cmax) == (0.0, 1.0)


def test_colouring_by_a_score_per_sample(frame):
    score = np.linspace(-2.0, 3.0, len(frame))
    fig = projection_figure(frame, color=score, color_title="loss")
    (trace, highlight) = fig.data
    np.testing.assert_allclose(trace.marker.color, score)
    assert (trace.marker.cmin, trace.marker.cmax) == (-2.0, 3.0)
    assert trace.name == "loss" and trace.marker.colorbar.title.text == "loss"
    assert "loss: %{marker.color" in trace.hovertemplate and "%{customdata[0]}" in trace.hovertemplate
    assert fig.layout.legend.title.text == "loss" and highlight.name == "highlight"
    fixed = projection_figure(frame, color=score / 10 + 0.5, color_range=(0, 1)).data[0].marker
    assert (fixed.cmin, fixed.cmax) == (0.0, 1.0)
    flat = projection_figure(frame, color=np.full(len(frame), 0.25)).data[0].marker
    assert (flat.cmin, flat.cmax) == (0.25, 1.25)


def test_webgl_above_2000_points():
    rng = np.random.default_rng(0)
    big = projection_frame(_with(rng.normal(size=(2001, 2))), cache=False)
    assert all(isinstance(t, go.Scattergl) for t in projection_figure(big).data)
    small = big.iloc[:2000]
    assert all(isinstance(t, go.Scatter) for t in projection_figure(small).data)


def test_highlight_trace_is_last_and_rings_the_given_ids(frame):
    ids = frame["id"].to_numpy()[[3, 7]]
    fig = projection_figure(frame, highlight_ids=ids)
    highlight = fig.data[-1]
    assert highlight.name == "highlight" and highlight.marker.symbol == "circle-open"
    assert sorted(row[0] for row in highlight.customdata) == sorted(ids.tolist())
    np.testing.assert_allclose(sorted(highlight.x), sorted(frame["x"].to_numpy()[[3, 7]]))
    with pytest.warns(UserWarning, match=r"1 of the `highlight_ids` are not in the frame"):
        fig = projection_figure(frame, highlight_ids=[ids[0], -5])
    assert len(fig.data[-1].x) == 1


def test_side_by_side_has_identical_ranges(preds):
    other = _predictions(np.random.default_rng(1), n=80, name="other")
    fa, fb = aligned_projections(preds, other, alignment="shared_pca")
    fig = side_by_side_figure(fa, fb)
    assert list(fig.layout.xaxis.range) == list(fig.layout.xaxis2.range)
    assert list(fig.layout.yaxis.range) == list(fig.layout.yaxis2.range)
    lo, hi = fig.layout.xaxis.range
    assert lo < min(fa["x"].min(), fb["x"].min()) and hi > max(fa["x"].max(), fb["x"].max())
    assert fig.layout.yaxis2.scaleanchor == "x2"
    right = [t for t in fig.data if t.xaxis == "x2"]
    assert sum(len(t.x) for t in right) == 80
    assert not any(t.showlegend for t in right)  # the legend lists each class once
    assert [a.text for a in fig.layout.annotations] == ["toy", "other"]


def test_hover_thumbnails_are_lazy_and_keyed_by_id(preds, monkeypatch):
    calls = []
    monkeypatch.setattr(figproj, "thumbnail_uri",
                        lambda img, size: calls.append(size) or thumbnail_uri(img, size=size))
    uris = hover_thumbnail_uris(preds, size=20)
    assert len(uris) == preds.n_samples and calls == []
    sid = int(preds.ids[5])
    assert uris[sid] == thumbnail_uri(preds.images[5], size=20)
    assert uris[sid].startswith("data:image/png;base64,")
    uris[sid]
    assert calls == [20]  # memoised: the second access encodes nothing


def test_display_from_predictions_and_from_arrays_agree(preds):
    display = ProjectionDisplay.from_predictions(preds, color="correct", cache=False)
    fig = display.plot()
    assert [t.name for t in fig.data] == ["correct", "wrong", "highlight"]
    assert fig.layout.title.text == "toy — PCA"
    from_arrays = ProjectionDisplay.from_predictions(
        features=preds.features, y_true=preds.y_true, logits=preds.logits,
        y_given=preds.y_given, ids=preds.ids, class_names=preds.class_names, cache=False,
    )
    pd.testing.assert_frame_equal(display.frame, from_arrays.frame)
    assert [t.name for t in from_arrays.plot().data[:-1]] == ["c0", "c1", "c2"]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda f, p: projection_figure(f.to_numpy()), TypeError,
         r"`frame` must be a pandas DataFrame from projection_frame; got ndarray\."),
        (lambda f, p: projection_figure(f.drop(columns="id")), ValueError,
         r"`frame` must have the columns of projection_frame; missing \['id'\]\."),
        (lambda f, p: projection_figure(f.iloc[:0]), ValueError,
         r"`frame` must not be empty; got 0 rows\."),
        (lambda f, p: projection_figure(f, color="loss"), ValueError,
         r"`color` must be one of \['class', 'prediction', 'given', 'correct', 'confidence', "
         r"'flipped'\]; got 'loss'\."),
        (lambda f, p: projection_figure(f, color=np.ones(3)), ValueError,
         r"`color` must hold one value per row of `frame` \(120\); got 3\."),
        (lambda f, p: projection_figure(f, color=np.full(120, np.nan)), ValueError,
         r"`color` must be finite; got 120 NaN or inf values\."),
        (lambda f, p: projection_figure(f, color=np.ones(120), color_range=(1, 0)), ValueError,
         r"`color_range` must be \(low, high\) with low < high; got \(1, 0\)\."),
        (lambda f, p: projection_figure(f, color=np.ones(120), color_range=(0, 1, 2)), ValueError,
         r"`color_range` must be a pair \(low, high\); got \(0, 1, 2\)\."),
        (lambda f, p: projection_figure(f, class_names=["a", "b"]), ValueError,
         r"`class_names` must have at least 3 entries \(one per class\); got 2\."),
        (lambda f, p: projection_figure(f, class_names="abc"), TypeError,
         r"`class_names` must be a sequence of strings; got the string 'abc'\."),
        (lambda f, p: projection_figure(f, highlight_ids=[0.5]), TypeError,
         r"`highlight_ids` must be a 1-D array of integer sample ids"),
        (lambda f, p: side_by_side_figure(f, f, titles=("only one",)), ValueError,
         r"`titles` must be a pair of strings"),
        (lambda f, p: hover_thumbnail_uris(_with(_X)), ValueError,
         r"`predictions` must hold images for hover thumbnails; got images=None\."),
        (lambda f, p: ProjectionDisplay.from_predictions(p, features=_X), TypeError,
         r"`predictions` must be a labviz.Predictions, or None with the arrays `features` and "
         r"`y_true`; got Predictions and `features`\."),
        (lambda f, p: ProjectionDisplay.from_predictions(), TypeError,
         r"`predictions` must be a labviz.Predictions, or None with the arrays .*; got None and "
         r"none of the arrays\."),
    ],
)
def test_figure_validation(frame, preds, call, error, match):
    with pytest.raises(error, match=match):
        call(frame, preds)
