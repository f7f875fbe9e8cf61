import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from labviz import Predictions, zoo
from labviz.zoo.models import SmallCNN
from labviz.core.predictions import softmax


@pytest.fixture
def arrays(rng):
    n, c, d = 20, 3, 5
    return dict(y_true=rng.integers(0, c, n), logits=rng.normal(size=(n, c)),
                features=rng.normal(size=(n, d)), weights=rng.normal(size=(c, d)))


def test_from_arrays_derives_everything(arrays):
    p = Predictions.from_arrays(**arrays, class_names=["a", "b", "c"])
    np.testing.assert_allclose(p.probs.sum(axis=1), 1.0)
    np.testing.assert_array_equal(p.y_pred, arrays["logits"].argmax(axis=1))
    assert p.ids.tolist() == list(range(20)) and not p.flipped.any()
    assert p.class_names == ("a", "b", "c") and p.features.dtype == np.float32


def test_probs_only_keeps_the_probabilities():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    p = Predictions.from_arrays(y_true=[0, 2], probs=probs)
    np.testing.assert_allclose(p.probs, probs, rtol=1e-6)


def test_subset_by_mask_and_index(arrays):
    p = Predictions.from_arrays(**arrays)
    mask = np.arange(20) % 2 == 0
    assert p.subset(mask).ids.tolist() == list(range(0, 20, 2))
    assert p.subset([3, 1]).ids.tolist() == [3, 1]
    assert p.subset(mask).weights is p.weights


def test_npz_round_trip(arrays, tmp_path):
    p = Predictions.from_arrays(**arrays, y_given=np.zeros(20, int), name="mine")
    path = p.to_npz(tmp_path / "p.npz")
    q = Predictions.from_npz(path)
    np.testing.assert_array_equal(q.logits, p.logits)
    np.testing.assert_array_equal(q.flipped, p.flipped)
    assert q.name == "mine"
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        p.to_npz(path)


def test_npz_with_unknown_arrays(tmp_path):
    np.savez(tmp_path / "x.npz", y_true=[0, 1], logits=[[1.0, 0.0], [0.0, 1.0]], secret=[1])
    with pytest.raises(ValueError, match=r"labviz does not know: \['secret'\]"):
        Predictions.from_npz(tmp_path / "x.npz")


def test_npz_with_pickled_objects_is_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object))
    import zipfile
    with zipfile.ZipFile(tmp_path / "bad.npz", "w") as z:
        z.write(tmp_path / "obj.npy", "y_true.npy")
    with pytest.raises(ValueError, match="not a readable labviz array file"):
        Predictions.from_npz(tmp_path / "bad.npz")


def test_from_model_matches_a_bare_forward(rng):
    torch.manual_seed(0)
    model = SmallCNN(image_size=8)
    x = torch.rand(10, 1, 8, 8)
    y = torch.tensor(rng.integers(0, 10, 10))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)
    p = Predictions.from_model(model, loader, feature_layer="body")
    with torch.no_grad():
        np.testing.assert_allclose(p.logits, model(x).numpy(), atol=1e-6)
        np.testing.assert_allclose(p.features, model.embed(x).numpy(), atol=1e-6)
    np.testing.assert_array_equal(p.weights, model.head.weight.detach().numpy())
    assert model.training  # the model's mode is restored


def test_from_model_unknown_layer():
    model = SmallCNN(image_size=8)
    with pytest.raises(ValueError, match="`feature_layer` must name a module"):
        Predictions.from_model(model, [], feature_layer="fc7")
    with pytest.raises(ValueError, match="`head` must name an nn.Linear"):
        Predictions.from_model(model, [], feature_layer="body", head="body")


def test_zoo_predictions_are_cached_by_sha_and_split():
    cold = time.perf_counter()
    p = zoo.predictions("digits-ce-noise0.4-s0", "train")
    cold = time.perf_counter() - cold
    q = zoo.predictions("digits-ce-noise0.4-s0", "train")
    np.testing.assert_array_equal(p.logits, q.logits)
    assert p.flipped.mean() == pytest.approx(0.4, abs=0.01)
    assert p.images.shape[1:] == (8, 8)
    assert p.weights.shape == (10, 64)
    # The logits are the head applied to the features.
    np.testing.assert_allclose(p.features @ p.weights.T + p.bias, p.logits, atol=1e-4)
    test = zoo.predictions("digits-ce-noise0.4-s0", "test")
    assert not test.flipped.any()
    assert test.accuracy == pytest.approx(zoo.entry("digits-ce-noise0.4-s0")["test_accuracy"], abs=1e-6)


def test_damaged_cache_entry_is_rebuilt():
    from labviz.core.cache import cache_dir

    p = zoo.predictions("digits-ce-s0", "val")
    (entry,) = (cache_dir() / "activations").glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:100])
    with pytest.warns(UserWarning, match="Rebuilding a damaged cache entry"):
        q = zoo.predictions("digits-ce-s0", "val")
    np.testing.assert_array_equal(p.logits, q.logits)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(y_true=[0, 1]), TypeError, "Give exactly one of `logits` or `probs`; got neither"),
        (dict(y_true=[0, 1], logits=[[0, 1.0], [1, 0]], probs=[[0, 1.0], [1, 0]]), TypeError, "got both"),
        (dict(y_true=[0, 1], logits=[0.0, 1.0]), ValueError, r"`logits` must have shape \(n_samples, n_classes\); got \(2,\)"),
        (dict(y_true=[0, 1], logits=[[np.nan, 1.0], [1, 0]]), ValueError, "`logits` must be finite; got 1 NaN or inf"),
        (dict(y_true=[0, 1], probs=[[0.5, 0.6], [1, 0]]), ValueError, "`probs` rows must sum to 1; got row 0 summing to 1.1"),
        (dict(y_true=[0, 1], probs=[[2.0, -1.0], [1, 0]]), ValueError, r"`probs` must hold probabilities in \[0, 1\]"),
        (dict(y_true=[0, 3], logits=[[0, 1.0], [1, 0]]), ValueError, r"`y_true` must hold labels in \[0, 1\]; got values in \[0, 3\]"),
        (dict(y_true=[0.5, 1], logits=[[0, 1.0], [1, 0]]), TypeError, "`y_true` must hold integer class labels"),
        (dict(y_true=["a", "b"], logits=[[0, 1.0], [1, 0]]), TypeError, "`y_true` must hold integer class labels"),
        (dict(y_true=[0, 1, 1], logits=[[0, 1.0], [1, 0]]), ValueError, "`y_true` has 3, `logits` has 2"),
        (dict(y_true=[], logits=np.zeros((0, 2))), ValueError, "`logits` must not be empty"),
        (dict(y_true=[0], logits=[[1.0]]), ValueError, "`logits` must have at least 2 classes"),
        (dict(y_true=[0, 1], logits=[[0, 1.0], [1, 0]], class_names=["a"]), ValueError, "`class_names` must have 2 entries"),
        (dict(y_true=[0, 1], logits=[[0, 1.0], [1, 0]], features=[[1.0], [2.0]], weights=[[1.0, 2.0]]), ValueError, r"`weights` must have shape \(2, 1\)"),
        (dict(y_true=[0, 1], logits=[[0, 1.0], [1, 0]], ids=[4, 4]), ValueError, "`ids` must be a 1-D array of unique integer sample ids"),
    ],
)
def test_bad_input_messages(kwargs, error, match):
    with pytest.raises(error, match=match):
        Predictions.from_arrays(**kwargs)


def test_softmax_is_stable():
    p = softmax(np.array([[1000.0, 0.0], [-1000.0, 0.0]]))
    np.testing.assert_allclose(p, [[1, 0], [0, 1]])


# ----- your arrays are kept, not copied -----------------------------------------------------------
def _memmaps(tmp_path, **arrays):
    """Each array saved as tmp_path/<key>.npy and opened again memory-mapped, read-only."""
    for key, arr in arrays.items():
        np.save(tmp_path / f"{key}.npy", arr)
    return {key: np.load(tmp_path / f"{key}.npy", mmap_mode="r") for key in arrays}


def test_arrays_of_the_kept_dtypes_are_stored_as_given(rng):
    z = rng.normal(size=(20, 3)).astype(np.float32)
    feats = rng.normal(size=(20, 5)).astype(np.float32)
    w, b = rng.normal(size=(3, 5)).astype(np.float32), np.zeros(3, dtype=np.float32)
    y, ids = rng.integers(0, 3, 20), np.arange(100, 120)
    p = Predictions.from_arrays(y_true=y, logits=z, features=feats, weights=w, bias=b, ids=ids,
                                y_given=y[::-1].copy())
    assert p.logits is z and p.features is feats and p.weights is w and p.bias is b
    assert p.y_true is y and p.ids is ids


def test_memory_mapped_arrays_stay_memory_mapped(rng, tmp_path):
    m = _memmaps(tmp_path, logits=rng.normal(size=(30, 4)).astype(np.float32),
                 features=rng.normal(size=(30, 6)).astype(np.float16),
                 y_true=rng.integers(0, 4, 30), images=rng.integers(0, 255, (30, 2, 2), dtype=np.uint8))
    p = Predictions.from_arrays(**m)
    for key in m:
        stored = getattr(p, key)
        assert isinstance(stored, np.memmap) and np.shares_memory(stored, m[key]), key
    assert p.features.dtype == np.float16  # kept as float16: half the memory of float32
    np.testing.assert_array_equal(p.y_pred, np.asarray(m["logits"]).argmax(axis=1))


@pytest.mark.parametrize("key, given, why", [
    ("logits", lambda a: a.astype(np.float64), "float64 is rounded to float32"),
    ("logits", lambda a: a.astype(np.float16), "float16 logits are widened"),
    ("logits", np.asfortranarray, "Fortran order is laid out by rows"),
    ("features", lambda a: a[:, ::2], "a strided view is laid out by rows"),
])
def test_other_dtypes_and_layouts_are_copied_to_c_contiguous_float32(rng, key, given, why):
    base = {"logits": rng.normal(size=(20, 4)).astype(np.float32),
            "features": rng.normal(size=(20, 6)).astype(np.float32)}
    arg = given(base[key])
    p = Predictions.from_arrays(y_true=rng.integers(0, 4, 20), **{**base, key: arg})
    stored = getattr(p, key)
    assert stored.dtype == np.float32 and stored.flags.c_contiguous, why
    assert not np.shares_memory(stored, arg), why
    np.testing.assert_array_equal(stored, arg.astype(np.float32))


def test_int32_labels_become_int64():
    p = Predictions.from_arrays(y_true=np.array([0, 1], dtype=np.int32), logits=np.eye(2, dtype=np.float32))
    assert p.y_true.dtype == np.int64 and p.y_given.dtype == np.int64


def test_probs_are_logged_a_chunk_at_a_time_as_a_whole_would_be(monkeypatch):
    from labviz.core import _validation as v

    probs = np.random.default_rng(1).dirichlet(np.ones(3), size=50).astype(np.float32)
    whole = np.log(np.clip(probs.astype(np.float64), np.finfo(np.float64).tiny, None)).astype(np.float32)
    monkeypatch.setattr(v, "CHUNK_ENTRIES", 9)  # 3 rows a chunk
    p = Predictions.from_arrays(y_true=np.zeros(50, int), probs=probs)
    np.testing.assert_array_equal(p.logits, whole)


#: Rows of 16 columns: about three row chunks of the checks.
DEEP_ROWS = 3 * (1 << 20) // 16


@pytest.mark.parametrize("key", ["logits", "features", "probs"])
@pytest.mark.parametrize("bad, message", [
    (np.nan, "must be finite; got 1 NaN or inf values"),
    (-np.inf, "must be finite; got 1 NaN or inf values"),
])
def test_a_bad_value_in_the_last_row_of_a_memmap_is_caught(tmp_path, key, bad, message):
    arrays = {"y_true": np.zeros(DEEP_ROWS, dtype=np.int64),
              "logits": np.zeros((DEEP_ROWS, 16), dtype=np.float32)}
    if key == "probs":
        arrays["probs"] = np.full((DEEP_ROWS, 16), 1 / 16, dtype=np.float32)
        del arrays["logits"]
    elif key == "features":
        arrays["features"] = np.zeros((DEEP_ROWS, 16), dtype=np.float32)
    arrays[key][-1, -1] = bad
    with pytest.raises(ValueError, match=f"`{key}` {message}"):
        Predictions.from_arrays(**_memmaps(tmp_path, **arrays))


def test_a_float32_overflow_in_the_last_row_of_a_float64_memmap_is_caught(tmp_path):
    z = np.zeros((DEEP_ROWS, 16))
    z[-1, 3] = -1e39
    m = _memmaps(tmp_path, logits=z, y_true=np.zeros(DEEP_ROWS, dtype=np.int64))
    with pytest.raises(ValueError, match=r"`logits` must fit in float32 .*magnitude 1e\+39"):
        Predictions.from_arrays(**m)


def test_checking_a_memmap_holds_no_full_size_temporary(tmp_path):
    import tracemalloc

    n = DEEP_ROWS // 4  # 64 columns: three row chunks, and 1-D arrays small beside the matrices
    m = _memmaps(tmp_path, logits=np.zeros((n, 64), dtype=np.float32),
                 features=np.ones((n, 64), dtype=np.float16), y_true=np.zeros(n, dtype=np.int64),
                 ids=np.arange(n))
    tracemalloc.start()
    try:
        Predictions.from_arrays(**m)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < m["logits"].nbytes / 4, f"peak {peak / 2**20:.1f} MB"


def test_from_path_memory_maps_what_to_npz_wrote(arrays, tmp_path):
    p = Predictions.from_arrays(**arrays, name="mine")
    path = p.to_npz(tmp_path / "p.npz")
    q = Predictions.from_path(path)
    assert isinstance(q.logits, np.memmap) and isinstance(q.features, np.memmap)
    np.testing.assert_array_equal(q.features, p.features)
    assert q.name == "mine" and q.class_names == p.class_names
    assert not isinstance(Predictions.from_npz(path).logits, np.memmap)  # read into memory


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(st.sampled_from([np.dtype("<f2"), np.dtype(">f2")]), st.tuples(st.integers(1, 6), st.integers(1, 5)),
                  elements=st.floats(width=16, allow_nan=True, allow_infinity=True)))
def test_float16_features_are_refused_exactly_when_some_entry_is_not_finite(feats):
    n_bad = int(np.count_nonzero(~np.isfinite(feats)))
    kwargs = dict(y_true=np.zeros(len(feats), dtype=np.int64), logits=np.zeros((len(feats), 2), np.float32))
    if n_bad:
        with pytest.raises(ValueError, match=f"`features` must be finite; got {n_bad} NaN or inf values"):
            Predictions.from_arrays(**kwargs, features=feats)
    else:
        stored = Predictions.from_arrays(**kwargs, features=feats).features
        np.testing.assert_array_equal(stored, feats)
        assert stored.dtype.isnative and stored.dtype.kind == "f"
