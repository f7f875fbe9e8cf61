"""Predictions from files: each format's round trip, memory-mapping, and one message per mistake,
naming the file and the key."""

import json
import pickle
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from safetensors.numpy import save_file

from labviz import Predictions
from labviz.core import loaders

N, K, D = 12, 3, 4


@pytest.fixture
def arrays(rng):
    return {"y_true": rng.integers(0, K, N), "logits": rng.normal(size=(N, K)).astype(np.float32),
            "features": rng.normal(size=(N, D)).astype(np.float32),
            "y_given": rng.integers(0, K, N), "ids": np.arange(100, 100 + N)}


CLASSES = ["cat", "dog", "emu"]


def write_npz(path, arrays, class_names=CLASSES, compressed=False):
    save = np.savez_compressed if compressed else np.savez
    save(path, **arrays, **({} if class_names is None else {"class_names": class_names}))
    return path


def write_folder(path, arrays, class_names=CLASSES):
    path.mkdir()
    for key, arr in arrays.items():
        np.save(path / f"{key}.npy", arr)
    if class_names is not None:
        (path / "class_names.json").write_text(json.dumps(class_names))
    return path


def write_parquet(path, arrays, class_names=CLASSES):
    columns = {k: (list(a) if a.ndim == 2 else a) for k, a in arrays.items()}
    table = pa.table(columns)
    if class_names is not None:
        table = table.replace_schema_metadata({"class_names": json.dumps(class_names)})
    pq.write_table(table, path)
    return path


def write_safetensors(path, arrays, class_names=CLASSES):
    meta = None if class_names is None else {"class_names": json.dumps(class_names)}
    save_file({k: np.ascontiguousarray(a) for k, a in arrays.items()}, str(path), metadata=meta)
    return path


WRITERS = {"p.npz": write_npz, "folder": write_folder, "p.parquet": write_parquet,
           "p.safetensors": write_safetensors}


@pytest.mark.parametrize("where", list(WRITERS))
def test_every_format_round_trips(arrays, tmp_path, where):
    path = WRITERS[where](tmp_path / where, arrays)
    p = Predictions.from_path(path)
    for key, arr in arrays.items():
        np.testing.assert_array_equal(getattr(p, key), arr, err_msg=key)
    assert p.class_names == tuple(CLASSES)
    assert p.name == path.stem


@pytest.mark.parametrize("where", ["p.npz", "folder", "p.safetensors"])
def test_mmap_true_maps_and_false_reads(arrays, tmp_path, where):
    path = WRITERS[where](tmp_path / where, arrays)
    mapped, read = Predictions.from_path(path), Predictions.from_path(path, mmap=False)
    for key in arrays:
        assert isinstance(getattr(mapped, key), np.memmap), key
        assert not isinstance(getattr(read, key), np.memmap), key
        np.testing.assert_array_equal(getattr(read, key), getattr(mapped, key))


def test_compressed_npz_is_read_into_memory(arrays, tmp_path):
    p = Predictions.from_path(write_npz(tmp_path / "p.npz", arrays, compressed=True))
    assert not isinstance(p.logits, np.memmap)
    np.testing.assert_array_equal(p.logits, arrays["logits"])


def test_a_folder_keeps_float16_features_memory_mapped(arrays, tmp_path):
    arrays["features"] = arrays["features"].astype(np.float16)
    p = Predictions.from_path(write_folder(tmp_path / "val", arrays))
    assert p.features.dtype == np.float16 and isinstance(p.features, np.memmap)
    assert p.name == "val"


def test_class_names_from_a_text_file_and_probs(tmp_path, rng):
    probs = rng.dirichlet(np.ones(K), size=N)
    folder = write_folder(tmp_path / "f", {"y_true": rng.integers(0, K, N), "probs": probs},
                          class_names=None)
    (folder / "class_names.txt").write_text("cat\ndog\nemu\n")
    (folder / "README.md").write_text("not an array: ignored")
    p = Predictions.from_path(folder)
    assert p.class_names == ("cat", "dog", "emu")
    np.testing.assert_allclose(p.probs, probs, rtol=1e-6)


def test_parquet_fixed_size_lists_and_metadata(tmp_path, arrays):
    logits = pa.FixedSizeListArray.from_arrays(pa.array(arrays["logits"].ravel()), K)
    table = pa.table({"y_true": arrays["y_true"], "logits": logits})
    pq.write_table(table.replace_schema_metadata({"name": "resnet", "class_names": '["a","b","c"]'}),
                   tmp_path / "p.parquet")
    p = Predictions.from_path(tmp_path / "p.parquet")
    np.testing.assert_array_equal(p.logits, arrays["logits"])
    assert p.name == "resnet" and p.class_names == ("a", "b", "c")


def test_file_format_names_a_format_the_suffix_does_not(arrays, tmp_path):
    path = write_safetensors(tmp_path / "p.bin", arrays)
    with pytest.raises(ValueError, match=r"p\.bin must be an \.npz, \.parquet, \.pq or \.safetensors"):
        Predictions.from_path(path)
    assert Predictions.from_path(path, file_format="safetensors").n_samples == N
    with pytest.raises(ValueError, match=r"`file_format` must be one of .*got 'hdf5'"):
        Predictions.from_path(path, file_format="hdf5")


def test_a_missing_path_is_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.npz does not exist"):
        Predictions.from_path(tmp_path / "nothing.npz")


def test_mmap_must_be_a_bool(arrays, tmp_path):
    with pytest.raises(TypeError, match="`mmap` must be a bool; got str 'no'"):
        Predictions.from_path(write_npz(tmp_path / "p.npz", arrays), mmap="no")


# ----- one message per mistake, naming the file and the key -------------------------------------
@pytest.mark.parametrize("where", list(WRITERS))
def test_a_missing_y_true(arrays, tmp_path, where):
    del arrays["y_true"]
    path = WRITERS[where](tmp_path / where, arrays)
    with pytest.raises(ValueError, match=rf"{path.name} must hold a `y_true` array; got \['features'"):
        Predictions.from_path(path)


@pytest.mark.parametrize("where", list(WRITERS))
def test_an_unknown_key(arrays, tmp_path, where):
    arrays["logit"] = arrays.pop("logits")
    path = WRITERS[where](tmp_path / where, arrays)
    with pytest.raises(ValueError, match=rf"{path.name} holds (arrays|\.npy files|columns) labviz does not know: \['logit'\]"):
        Predictions.from_path(path)


@pytest.mark.parametrize("where", list(WRITERS))
def test_lengths_that_disagree(arrays, tmp_path, where):
    arrays["features"] = arrays["features"][:-1]
    if where == "p.parquet":  # a table's columns have one length: the lists' lengths disagree
        arrays["features"] = np.concatenate([arrays["features"], np.zeros((1, D), np.float32)])
        columns = {k: (list(a) if a.ndim == 2 else a) for k, a in arrays.items()}
        columns["features"][-1] = np.zeros(D + 1, np.float32)
        pq.write_table(pa.table(columns), tmp_path / where)
        match = r"p\.parquet: column `features` must hold lists of one length .*row 11 of length 5"
    else:
        WRITERS[where](tmp_path / where, arrays)
        match = rf"{where}: Arguments must have the same number of samples; got `y_true` has 12, `features` has 11"
    with pytest.raises(ValueError, match=match):
        Predictions.from_path(tmp_path / where)


@pytest.mark.parametrize("where", list(WRITERS))
def test_a_wrong_shape(arrays, tmp_path, where):
    arrays["logits"] = arrays["logits"][:, :1]
    path = WRITERS[where](tmp_path / where, arrays)
    with pytest.raises(ValueError, match=rf"{path.name}: `logits` must have at least 2 classes"):
        Predictions.from_path(path)


@pytest.mark.parametrize("where", ["p.npz", "folder", "p.safetensors"])
def test_a_wrong_dtype(arrays, tmp_path, where):
    arrays["y_true"] = arrays["y_true"] + 0.5
    path = WRITERS[where](tmp_path / where, arrays)
    with pytest.raises(TypeError, match=rf"{path.name}: `y_true` must hold integer class labels"):
        Predictions.from_path(path)


def test_text_where_numbers_belong(arrays, tmp_path):
    arrays["logits"] = np.array([["a"] * K] * N)
    path = write_npz(tmp_path / "p.npz", arrays)
    with pytest.raises(TypeError, match=r"p\.npz: `logits` must hold real numbers; got .*<U1"):
        Predictions.from_path(path)
    table = pa.table({"y_true": arrays["y_true"], "logits": [["a"] * K] * N})
    pq.write_table(table, tmp_path / "p.parquet")
    with pytest.raises(TypeError, match=r"p\.parquet: column `logits` must hold lists of numbers; got list<element: string>"):
        Predictions.from_path(tmp_path / "p.parquet")


def test_parquet_nulls_are_refused(tmp_path):
    pq.write_table(pa.table({"y_true": [0, None], "logits": [[1.0, 0.0], [0.0, 1.0]]}), tmp_path / "p.pq")
    with pytest.raises(ValueError, match=r"p\.pq: column `y_true` must have no nulls; got 1"):
        Predictions.from_path(tmp_path / "p.pq")
    pq.write_table(pa.table({"y_true": [0, 1], "logits": [[1.0, None], [0.0, 1.0]]}), tmp_path / "q.pq")
    with pytest.raises(ValueError, match=r"q\.pq: column `logits` must have no null entries"):
        Predictions.from_path(tmp_path / "q.pq")


def test_safetensors_without_a_numpy_dtype_are_refused(arrays, tmp_path):
    import torch
    from safetensors.torch import save_file as save_torch

    save_torch({"y_true": torch.tensor(arrays["y_true"]),
                "logits": torch.tensor(arrays["logits"]).bfloat16()}, str(tmp_path / "p.safetensors"))
    with pytest.raises(TypeError, match=r"p\.safetensors: `logits` has the type BF16, which numpy has no dtype for"):
        Predictions.from_path(tmp_path / "p.safetensors")


@pytest.mark.parametrize("where", ["folder", "p.npz"])
def test_truncated_arrays(arrays, tmp_path, where):
    if where == "folder":
        path = write_folder(tmp_path / where, arrays)
        target = path / "logits.npy"
        target.write_bytes(target.read_bytes()[:-5])
        match = r"logits\.npy is truncated or mislabelled: its header declares shape \(12, 3\) of float32 \(144 bytes of data\), but it holds 139"
    else:
        path = write_npz(tmp_path / where, arrays)
        path.write_bytes(path.read_bytes()[:-40])
        match = r"p\.npz is not a readable labviz array file"
    with pytest.raises(ValueError, match=match):
        Predictions.from_path(path)


@pytest.mark.parametrize("where", ["folder", "p.npz"])
def test_object_arrays_are_refused_and_never_unpickled(arrays, tmp_path, where, monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("labviz unpickled a file")

    arrays["ids"] = np.array([{"x": i} for i in range(N)], dtype=object)
    path = WRITERS[where](tmp_path / where, arrays)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    with pytest.raises(ValueError, match=r"ids.npy.* holds Python objects \(object\), which labviz never unpickles"):
        Predictions.from_path(path)


def test_an_npz_member_that_is_a_pickle_is_refused(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "p.npz", "w") as archive:
        archive.writestr("y_true.npy", pickle.dumps([0, 1]))
    with pytest.raises(ValueError, match=r"p\.npz is not a readable labviz array file: its member 'y_true.npy' is not a readable \.npy array"):
        Predictions.from_path(tmp_path / "p.npz")


def test_class_names_files(arrays, tmp_path):
    folder = write_folder(tmp_path / "f", arrays)
    (folder / "class_names.txt").write_text("a\nb\nc\n")
    with pytest.raises(ValueError, match="holds both class_names.json and class_names.txt"):
        Predictions.from_path(folder)
    (folder / "class_names.txt").unlink()
    (folder / "class_names.json").write_text('{"cat": 0}')
    with pytest.raises(TypeError, match=r"f: `class_names` must be a list of strings; got dict"):
        Predictions.from_path(folder)
    (folder / "class_names.json").write_text('["cat", ')
    with pytest.raises(ValueError, match=r"class_names\.json is not readable JSON class names"):
        Predictions.from_path(folder)
    (folder / "class_names.json").write_text('["cat", "dog"]')
    with pytest.raises(ValueError, match=r"f: `class_names` must have 3 entries"):
        Predictions.from_path(folder)


def test_npz_text_keys_of_the_wrong_kind(arrays, tmp_path):
    np.savez(tmp_path / "p.npz", **arrays, class_names=np.arange(K))
    with pytest.raises(TypeError, match=r"p\.npz: `class_names` must be a 1-D array of strings; got an array of shape \(3,\) and dtype int64"):
        Predictions.from_path(tmp_path / "p.npz")


def test_parquet_without_pyarrow_says_how_to_install_it(arrays, tmp_path, monkeypatch):
    path = write_parquet(tmp_path / "p.parquet", arrays)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match=r"Reading Parquet needs pyarrow: pip install 'labviz\[distributed\]'"):
        Predictions.from_path(path)


def test_a_file_of_one_format_named_as_another(arrays, tmp_path):
    write_parquet(tmp_path / "p.parquet", arrays)
    (tmp_path / "p.parquet").rename(tmp_path / "p.npz")
    with pytest.raises(ValueError, match=r"p\.npz is not a readable labviz array file"):
        Predictions.from_path(tmp_path / "p.npz")
    with pytest.raises(ValueError, match=r"p\.npz is not a readable safetensors file"):
        Predictions.from_path(tmp_path / "p.npz", file_format="safetensors")
    with pytest.raises(ValueError, match=r"must be a folder of \.npy files for file_format='npy'"):
        Predictions.from_path(tmp_path / "p.npz", file_format="npy")


def test_read_predictions_leaves_values_unchecked(tmp_path, arrays):
    arrays["logits"][0, 0] = np.nan
    files = loaders.read_predictions(write_folder(tmp_path / "f", arrays))
    assert np.isnan(files.arrays["logits"][0, 0]) and files.class_names == CLASSES
    with pytest.raises(ValueError, match=r"f: `logits` must be finite; got 1 NaN or inf values"):
        Predictions.from_path(tmp_path / "f")
