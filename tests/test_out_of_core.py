"""Memory-mapped predictions through the metrics, the projection and the explorer's numbers:
the values equal the in-memory ones (to the bit, or within the tolerances measured for the
float32 paths), chunked results agree with unchunked ones across chunk boundaries, and the
user's memory maps are neither copied nor changed."""

from __future__ import annotations

import numpy as np
import pytest

from labviz.compute import collapse as cc
from labviz.compute import projection as pr
from labviz.compute.calibration import reliability_curve
from labviz.core._numeric import softmax, softmax_chunks, top_probability
from labviz.core.predictions import Predictions
from labviz.widgets.temperature import ScaledProbabilities

N, C, D = 3000, 20, 48


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A folder of .npy files: logits, labels, float32 and float16 features of clustered ReLU
    features with a decaying spectrum (a clear leading plane: near-equal second and third
    components would leave the plane ill-defined, for any solver)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, C, N)
    centres = rng.normal(0, 1, (C, D))
    scales = np.r_[4.0, 2.0, np.full(D - 2, 0.3)]  # between-class spreads: 16, 4, 0.09, ...
    centres = (centres - centres.mean(axis=0)) / centres.std(axis=0) * scales
    feats = np.maximum(centres[y] + 1.0 + rng.normal(0, 0.5, (N, D)), 0).astype(np.float32)
    logits = (rng.normal(0, 1, (N, C)) + 4 * np.eye(C)[y]).astype(np.float32)
    path = tmp_path_factory.mktemp("preds")
    np.save(path / "y_true.npy", y)
    np.save(path / "logits.npy", logits)
    np.save(path / "features.npy", feats)
    half = tmp_path_factory.mktemp("half")
    for name, arr in (("y_true", y), ("logits", logits), ("features", feats.astype(np.float16))):
        np.save(half / f"{name}.npy", arr)
    return path, half


def test_from_path_keeps_the_memory_maps(folder):
    p = Predictions.from_path(folder[0])
    assert isinstance(p.logits, np.memmap) and isinstance(p.features, np.memmap)
    assert np.shares_memory(p.features, p.features)  # a view of the file, not an array in memory
    assert str(p.features.filename).endswith("features.npy")
    assert Predictions.from_path(folder[1]).features.dtype == np.float16


def test_y_pred_of_a_read_only_memory_map_is_found_without_a_copy(folder, monkeypatch):
    import tracemalloc

    from labviz.core import _validation

    monkeypatch.setattr(_validation, "CHUNK_ENTRIES", 100 * C)  # chunks of 100 rows
    p = Predictions.from_path(folder[0])
    assert not p.logits.flags.writeable  # numpy's argmax copies such an array whole
    tracemalloc.start()
    try:
        pred = p.y_pred
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(pred, np.load(folder[0] / "logits.npy").argmax(axis=1))
    assert peak < p.logits.nbytes / 2, peak  # the (n,) int64 result is 24 KB of the 240 KB


def test_confidence_and_prob_chunks_equal_the_whole_softmax_to_the_bit(folder):
    p = Predictions.from_path(folder[0])
    whole = softmax(np.load(folder[0] / "logits.npy").astype(np.float64))
    np.testing.assert_array_equal(p.confidence, whole.max(axis=1))
    assert "probs" not in p.__dict__  # confidence made no (n, C) matrix
    with pytest.raises(ValueError, match="read-only"):
        p.confidence[0] = 0.0
    # chunks of 7 rows (140 entries): 428 full chunks and a last one of 4 rows
    got = list(softmax_chunks(p.logits, chunk_entries=7 * C))
    assert [r.stop - r.start for r, _ in got][-1] == N % 7
    np.testing.assert_array_equal(np.concatenate([c for _, c in got]), whole)
    np.testing.assert_array_equal(p.probs, whole)


@pytest.mark.parametrize("t", [0.5, 1.0, 2.5])
def test_confidence_at_a_temperature_equals_the_whole_softmax(folder, t):
    p = Predictions.from_path(folder[0])
    z = np.load(folder[0] / "logits.npy").astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    expected = softmax(z / t).max(axis=1)
    np.testing.assert_array_equal(top_probability(p.logits, temperature=t, chunk_entries=999),
                                  expected)
    np.testing.assert_array_equal(ScaledProbabilities().confidence(p, t), expected)
    chunks = np.concatenate([c for _, c in p.prob_chunks(temperature=t)])
    np.testing.assert_array_equal(chunks, softmax(z / t))


def _float64_pca(x):
    x = x.astype(np.float64)
    centred = x - x.mean(axis=0)
    vecs = np.linalg.eigh(centred.T @ centred)[1][:, ::-1][:, :2].T
    vecs *= np.sign(vecs[[0, 1], np.abs(vecs).argmax(axis=1)])[:, None]
    return centred @ vecs.T


@pytest.mark.parametrize("which", [0, 1])
def test_streamed_pca_of_a_memory_map_equals_the_float64_pca(folder, which, monkeypatch):
    monkeypatch.setattr(pr, "_PCA_CHUNK_ENTRIES", 37 * D)  # blocks of 37 rows: 81 of them
    feats = Predictions.from_path(folder[which]).features
    assert pr._pca_streams(feats)
    got = pr.project(feats)
    expected = _float64_pca(np.asarray(feats))
    # measured: 2e-7 of the range for float32 features, the same for float16 ones
    np.testing.assert_allclose(got, expected, atol=1e-4 * np.abs(expected).max())


def test_streamed_pca_matches_scikit_learn_on_large_in_memory_features(folder, monkeypatch):
    from sklearn.decomposition import PCA

    x = np.load(folder[0] / "features.npy")
    monkeypatch.setattr(pr, "PCA_STREAM_FROM", x.size)
    assert pr._pca_streams(x)
    expected = PCA(n_components=2).fit_transform(x.astype(np.float64))
    np.testing.assert_allclose(pr.project(x), expected, atol=1e-4 * np.abs(expected).max())


def test_streamed_pca_holds_blocks_not_a_copy(folder, monkeypatch):
    import tracemalloc

    monkeypatch.setattr(pr, "_PCA_CHUNK_ENTRIES", 100 * D)  # blocks of 100 rows, 19 KB
    feats = Predictions.from_path(folder[0]).features
    pr.project(feats[:200])  # first-call allocations outside the measurement
    tracemalloc.start()
    try:
        pr.project(feats)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # a float32 copy would be feats.nbytes; the finiteness check holds a chunk of bools
    assert peak < 0.75 * feats.nbytes, peak


@pytest.mark.parametrize("which", [0, 1])
def test_collapse_metrics_of_a_memory_map_equal_the_float64_ones(folder, which, monkeypatch):
    monkeypatch.setattr(cc, "_BLOCK_ENTRIES", 53 * D)  # blocks of 53 rows: 57 of them
    p = Predictions.from_path(folder[which])
    before = np.array(p.features)
    got = cc.collapse_metrics(p)
    x64, y = np.asarray(p.features, dtype=np.float64), p.y_true
    monkeypatch.setattr(cc, "_BLOCK_ENTRIES", 1 << 30)  # one block: the unchunked sums
    whole = cc.collapse_metrics(x64, y)
    assert got.intra == pytest.approx(whole.intra, rel=1e-12)
    assert got.inter == pytest.approx(whole.inter, rel=1e-12)
    # float32 products against float64's: measured 1e-9 relative
    assert got.nc1 == pytest.approx(whole.nc1, rel=1e-6)
    np.testing.assert_array_equal(p.features, before)  # read, never written
    assert isinstance(p.features, np.memmap)


def test_collapse_metrics_leave_float64_arrays_unchanged(folder):
    x = np.load(folder[0] / "features.npy").astype(np.float64)
    y = np.load(folder[0] / "y_true.npy")
    copy = x.copy()
    cc.collapse_metrics(x, y)
    np.testing.assert_array_equal(x, copy)


def test_explorer_numbers_of_memory_mapped_predictions(folder):
    from labviz import explore

    p = Predictions.from_path(folder[0])
    ex = explore(p, n_bins=10)
    expected = reliability_curve(p.y_true, p.probs, n_bins=10)
    curve = ex.curves[p.name]
    np.testing.assert_array_equal(curve.count, expected.count)
    np.testing.assert_allclose(curve.confidence, expected.confidence, rtol=1e-12)
    np.testing.assert_allclose(curve.accuracy, expected.accuracy, rtol=1e-12)
    assert isinstance(ex.predictions[0].features, np.memmap)
    np.testing.assert_allclose(ex.frames[0][["x", "y"]].to_numpy(),
                               _float64_pca(np.asarray(p.features)),
                               atol=1e-4 * np.abs(ex.frames[0][["x", "y"]].to_numpy()).max())
