"""labviz.compute.neighbours and labviz.compute.regions: the neighbour index against brute force,
the scores, regions and error slices on hand-worked cases, and bad inputs.

Only the exact index is tested here: NNDescent compiles numba code for tens of seconds in every
process (its recall and speed are in benchmarks/bench_neighbours.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats  # noqa: F401  (loaded at collection, as sklearn.cluster: not in the first test)
import sklearn.cluster  # noqa: F401
from sklearn.neighbors import NearestNeighbors

import labviz
from labviz.compute import neighbours as nb
from labviz.compute import regions as rg
from labviz.core.predictions import Predictions


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _blobs(sizes, dim=8, seed=0):
    """Well-separated blobs: blob b lies along axis b, with a small spread."""
    gen = np.random.default_rng(seed)
    parts = []
    for b, size in enumerate(sizes):
        centre = np.zeros(dim, dtype=np.float32)
        centre[b] = 10.0
        parts.append(centre + gen.normal(scale=0.3, size=(size, dim)).astype(np.float32))
    return np.concatenate(parts)


def _predictions(features, y_true, y_pred, confidence, y_given=None, n_classes=3):
    """Predictions whose top class is ``y_pred`` with probability ``confidence``."""
    n = len(y_true)
    rest = (1 - np.asarray(confidence)) / (n_classes - 1)
    probs = np.repeat(rest[:, None], n_classes, axis=1)
    probs[np.arange(n), y_pred] = confidence
    return Predictions.from_arrays(y_true=y_true, probs=probs, features=features,
                                   y_given=y_given,
                                   class_names=[f"c{i}" for i in range(n_classes)])


# ----- the index --------------------------------------------------------------------------------
def test_exact_index_equals_brute_force_cosine(rng):
    x = rng.normal(size=(300, 8)).astype(np.float32)
    index = nb.neighbour_index(x, n_neighbors=7, cache=False)
    dist, ref = NearestNeighbors(n_neighbors=8, metric="cosine", algorithm="brute").fit(
        x).kneighbors(x)
    assert index.method == "exact"
    np.testing.assert_array_equal(index.indices, ref[:, 1:])
    np.testing.assert_allclose(index.similarities, 1 - dist[:, 1:], atol=1e-5)


def test_query_is_the_row_without_the_sample_itself(rng):
    x = rng.normal(size=(50, 4))
    x[7] = x[3]  # a duplicate: its twin is its nearest neighbour, itself is never listed
    index = nb.neighbour_index(x, n_neighbors=5, cache=False)
    ind, sim = index.query(3, 3)
    assert ind.shape == sim.shape == (3,)
    assert ind[0] == 7 and 3 not in ind
    assert sim[0] == pytest.approx(1.0, abs=1e-6)
    assert np.all(np.diff(sim) <= 0)
    assert not np.any(index.indices == np.arange(50)[:, None])


def test_zero_rows_have_similarity_zero():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    index = nb.neighbour_index(x, n_neighbors=3, cache=False)
    assert np.isfinite(index.similarities).all()
    assert index.similarities[0].tolist() == [0.0, 0.0, 0.0]


def test_memory_mapped_features_give_the_same_index(rng, tmp_path):
    x = rng.normal(size=(200, 6)).astype(np.float32)
    path = tmp_path / "f.npy"
    np.save(path, x)
    mapped = nb.neighbour_index(np.load(path, mmap_mode="r"), n_neighbors=4, cache=False)
    np.testing.assert_array_equal(mapped.indices,
                                  nb.neighbour_index(x, n_neighbors=4, cache=False).indices)


def test_index_is_cached_and_reports_progress(rng, monkeypatch):
    x = rng.normal(size=(100, 4)).astype(np.float32)
    calls, seen = [], []
    real = nb._exact_graph
    monkeypatch.setattr(nb, "_exact_graph", lambda *a: calls.append(1) or real(*a))
    first = nb.neighbour_index(x, n_neighbors=3, progress=seen.append)
    second = nb.neighbour_index(x, n_neighbors=3)
    assert len(calls) == 1
    np.testing.assert_array_equal(first.indices, second.indices)
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)


def test_predictions_are_indexed_by_their_features(rng):
    x = rng.normal(size=(40, 5)).astype(np.float32)
    p = Predictions.from_arrays(y_true=np.zeros(40, int), logits=np.zeros((40, 2)), features=x)
    np.testing.assert_array_equal(nb.neighbour_index(p, n_neighbors=3, cache=False).indices,
                                  nb.neighbour_index(x, n_neighbors=3, cache=False).indices)


# ----- scores -----------------------------------------------------------------------------------
def test_label_disagreement_on_two_blobs():
    x = _blobs([5, 5])
    given = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])  # one sample of blob 0 is labelled 1
    index = nb.neighbour_index(x, n_neighbors=4, cache=False)
    got = nb.label_disagreement(None, index, k=4, y_given=given)
    np.testing.assert_allclose(got, [0.25] * 4 + [1.0] + [0.0] * 5)


def test_local_calibration_gap_on_two_blobs():
    x = _blobs([5, 5])
    conf = np.array([0.9] * 5 + [0.8] * 5)
    correct = np.array([True] * 5 + [True] + [False] * 4)
    index = nb.neighbour_index(x, n_neighbors=4, cache=False)
    got = nb.local_calibration_gap(None, index, k=4, confidence=conf, correct=correct)
    # blob 0: confidence 0.9, all right; blob 1: 0.8, its first sample alone right
    np.testing.assert_allclose(got, [-0.1] * 5 + [0.8] + [0.8 - 0.25] * 4)


def test_scores_of_predictions_equal_those_of_their_arrays():
    x = _blobs([6, 6])
    y = np.array([0] * 6 + [1] * 6)
    pred = np.array([0, 0, 0, 1, 0, 0, 1, 1, 0, 1, 1, 1])
    conf = np.linspace(0.5, 0.95, 12)
    given = y.copy()
    given[[2, 9]] = 2
    p = _predictions(x, y, pred, conf, y_given=given)
    index = nb.neighbour_index(p, n_neighbors=5, cache=False)
    np.testing.assert_allclose(nb.label_disagreement(p, index, k=5),
                               nb.label_disagreement(None, index, k=5, y_given=given))
    np.testing.assert_allclose(
        nb.local_calibration_gap(p, index, k=5),
        nb.local_calibration_gap(None, index, k=5, confidence=p.confidence,
                                 correct=pred == y))


# ----- regions and slices -----------------------------------------------------------------------
def test_regions_of_two_blobs_rank_the_over_confident_one_first():
    x = _blobs([40, 40])
    y = np.zeros(80, dtype=int)
    pred = np.zeros(80, dtype=int)
    pred[40:60] = 1  # blob 1: half wrong at confidence 0.9 (ECE 0.4); blob 0: all right (0.1)
    p = _predictions(x, y, pred, np.full(80, 0.9))
    regions = rg.find_regions(p, n_regions=2, n_boot=200, cache=False)
    first, second = regions.table.iloc[0], regions.table.iloc[1]
    assert list(regions.table.columns) == list(rg.REGION_COLUMNS)
    np.testing.assert_array_equal(np.sort(regions.members(int(first["region"]))),
                                  np.arange(40, 80))
    assert regions.labels[0] == second["region"]
    assert (regions.labels[:40] == regions.labels[0]).all()
    assert first["ece"] == pytest.approx(0.4) and first["gap"] == pytest.approx(0.4)
    assert first["ece_low"] < 0.4 < first["ece_high"]
    assert second["ece"] == pytest.approx(0.1)
    assert second["ece_low"] == pytest.approx(0.1) and second["ece_high"] == pytest.approx(0.1)
    assert second["gap"] == pytest.approx(-0.1) and second["size"] == 40


def test_region_ece_and_interval_are_calibration_interval_s():
    from labviz.compute.calibration import calibration_interval

    x = _blobs([60, 60])
    gen = np.random.default_rng(3)
    y = gen.integers(0, 3, 120)
    pred = np.where(gen.random(120) < 0.7, y, (y + 1) % 3)
    p = _predictions(x, y, pred, gen.uniform(0.4, 1.0, 120))
    labels = rg.cluster_features(x, n_regions=2, cache=False)
    table = rg.region_table(p, labels, n_boot=300, seed=5).set_index("region")
    for r in (0, 1):
        members = np.flatnonzero(labels == r)
        ci = calibration_interval(y[members], p.probs[members], n_boot=300, seed=5)
        got = table.loc[r]
        assert (got["ece"], got["ece_low"], got["ece_high"]) == pytest.approx(
            (ci.estimate, ci.low, ci.high))


def test_regions_are_cached(monkeypatch):
    x = _blobs([30, 30])
    calls = []
    real = rg._assign
    monkeypatch.setattr(rg, "_assign", lambda *a: calls.append(1) or real(*a))
    a = rg.cluster_features(x, n_regions=2)
    b = rg.cluster_features(x, n_regions=2)
    assert len(calls) == 1
    np.testing.assert_array_equal(a, b)


def test_error_slices_find_the_planted_cluster_only():
    x = _blobs([200, 200, 200])
    y = np.repeat([0, 1, 2], 200)
    pred = y.copy()
    pred[200:320] = 2  # blob 1: 60% predicted as class 2
    pred[[0, 450]] = 1  # the other blobs: one error each
    p = _predictions(x, y, pred, np.full(600, 0.8))
    regions = rg.find_regions(p, n_regions=3, n_boot=50, cache=False)
    slices = rg.error_slices(p, regions)
    assert list(slices.columns) == list(rg.SLICE_COLUMNS)
    assert len(slices) == 1
    s = slices.iloc[0]
    assert s["name"] == "c1 → c2" and s["size"] == 200
    assert s["error_rate"] == pytest.approx(0.6)
    assert s["overall_error_rate"] == pytest.approx(122 / 600)
    assert s["error_low"] > s["overall_error_rate"]
    np.testing.assert_array_equal(regions.members(int(s["region"])), np.arange(200, 400))


def test_default_number_of_regions():
    assert [rg.default_n_regions(n) for n in (10, 1_000, 10_000, 10**6)] == [2, 2, 20, 64]


# ----- bad inputs -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small():
    x = _blobs([6, 6])
    return x, nb.neighbour_index(x, n_neighbors=3, cache=False)


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda x, i: nb.neighbour_index(x[0], cache=False), ValueError,
     r"`features` must have shape \(n_samples, n_features\); got \(8,\)"),
    (lambda x, i: nb.neighbour_index(np.where(x > 9, np.nan, x), cache=False), ValueError,
     r"`features` must be finite; got \d+ NaN"),
    (lambda x, i: nb.neighbour_index(x, n_neighbors=12, cache=False), ValueError,
     r"`n_neighbors` must be less than the number of samples \(12\); got 12"),
    (lambda x, i: nb.neighbour_index(x, method="annoy", cache=False), ValueError,
     r"`method` must be one of \['auto', 'exact', 'nndescent'\]; got 'annoy'"),
    (lambda x, i: nb.neighbour_index(x, progress=1, cache=False), TypeError,
     r"`progress` must be a callable"),
    (lambda x, i: nb.neighbour_index(
        Predictions.from_arrays(y_true=[0, 1], logits=[[2, 0], [0, 2]]), cache=False), ValueError,
     r"`predictions` must hold features"),
    (lambda x, i: i.query(12), ValueError, r"`i` must be <= 11; got 12"),
    (lambda x, i: i.query(0, 4), ValueError,
     r"`k` must be at most the index's n_neighbors=3; got 4"),
    (lambda x, i: nb.label_disagreement(None, "index", y_given=np.zeros(12, int)), TypeError,
     r"`index` must be a NeighbourIndex"),
    (lambda x, i: nb.label_disagreement(None, i, y_given=np.zeros(5, int)), ValueError,
     r"`index` must index the same samples; got an index of 12 samples for 5"),
    (lambda x, i: nb.label_disagreement(None, i), TypeError, r"`predictions` must be"),
    (lambda x, i: nb.local_calibration_gap(None, i, confidence=np.full(12, 1.5),
                                           correct=np.ones(12, bool)), ValueError,
     r"`confidence` must lie in \[0, 1\]; got values in \[1.5, 1.5\]"),
    (lambda x, i: nb.local_calibration_gap(None, i, confidence=np.full(12, 0.5),
                                           correct=np.full(12, 2)), ValueError,
     r"`correct` must be a \(n_samples,\) array of bools or 0/1"),
    (lambda x, i: rg.cluster_features(x, n_regions=0, cache=False), ValueError,
     r"`n_regions` must be >= 1; got 0"),
    (lambda x, i: rg.cluster_features(x, n_regions=13, cache=False), ValueError,
     r"`n_regions` must be <= 12; got 13"),
])
def test_bad_inputs_raise_naming_the_argument(small, call, error, match):
    x, index = small
    with pytest.raises(error, match=match):
        call(x, index)


def test_region_inputs_are_checked():
    x = _blobs([6, 6])
    p = _predictions(x, np.zeros(12, int), np.zeros(12, int), np.full(12, 0.9))
    with pytest.raises(ValueError, match=r"`regions` must label every sample; got 5 labels for 12"):
        rg.error_slices(p, np.zeros(5, int))
    with pytest.raises(ValueError, match=r"`confidence` must be in \(0, 1\); got 1.5"):
        rg.error_slices(p, np.zeros(12, int), confidence=1.5)
    with pytest.raises(ValueError, match=r"`labels` must hold labels in >= 0"):
        rg.region_table(p, np.full(12, -1))


def test_the_package_exposes_both_modules():
    assert labviz.neighbours is nb and labviz.regions is rg
    assert labviz.compute.neighbours is nb
