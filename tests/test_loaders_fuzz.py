"""Hostile files: random bytes in each format, damaged valid files and mislabelled contents either
load or raise a ValueError/TypeError naming the file; nothing is ever unpickled."""

import json
import pickle
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

from labviz import Predictions
from labviz.core.loaders import ARRAY_KEYS

FORMATS = ("npz", "folder", "parquet", "safetensors")
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_rng = np.random.default_rng(0)
BASE = {"y_true": _rng.integers(0, 3, 8), "logits": _rng.normal(size=(8, 3)).astype(np.float32),
        "features": _rng.normal(size=(8, 4)).astype(np.float32), "ids": np.arange(8)}
CLASSES = ["cat", "dog", "emu"]


@pytest.fixture(autouse=True, scope="module")
def _no_unpickling():
    """Any call to pickle's loaders while these tests run fails them."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("labviz unpickled a file")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pickle, "load", refuse)
        mp.setattr(pickle, "loads", refuse)
        yield


def write(fmt: str, folder: Path, arrays: dict) -> Path:
    """Write ``arrays`` in format ``fmt`` under ``folder``; return the path to load."""
    if fmt == "npz":
        np.savez(folder / "p.npz", **arrays, class_names=CLASSES)
        return folder / "p.npz"
    if fmt == "folder":
        (folder / "p").mkdir()
        for key, arr in arrays.items():
            np.save(folder / "p" / f"{key}.npy", arr, allow_pickle=arr.dtype.hasobject)
        (folder / "p" / "class_names.json").write_text(json.dumps(CLASSES))
        return folder / "p"
    if fmt == "parquet":
        table = pa.table({k: (list(a) if a.ndim == 2 else a) for k, a in arrays.items()})
        pq.write_table(table.replace_schema_metadata({"class_names": json.dumps(CLASSES)}),
                       folder / "p.parquet")
        return folder / "p.parquet"
    save_file({k: np.ascontiguousarray(a) for k, a in arrays.items()},
              str(folder / "p.safetensors"), metadata={"class_names": json.dumps(CLASSES)})
    return folder / "p.safetensors"


def load_or_refuse(path: Path, mmap: bool = True) -> None:
    """Loading either gives a Predictions or raises ValueError/TypeError naming the file."""
    try:
        p = Predictions.from_path(path, mmap=mmap)
    except (ValueError, TypeError) as exc:
        assert str(path) in str(exc), f"the message does not name {path}: {exc}"
        return
    assert p.n_samples == len(p.y_true) and np.isfinite(p.logits).all()


def _valid_bytes() -> dict[str, dict[str, bytes]]:
    """Each format's valid files, as {file name: bytes} (a folder has several)."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in FORMATS:
            (Path(tmp) / fmt).mkdir()
            path = write(fmt, Path(tmp) / fmt, BASE)
            files = sorted(path.iterdir()) if path.is_dir() else [path]
            out[fmt] = {f.name: f.read_bytes() for f in files}
    return out


VALID = _valid_bytes()


def _place(fmt: str, folder: Path, files: dict[str, bytes]) -> Path:
    target = folder / "p" if fmt == "folder" else folder
    target.mkdir(exist_ok=True)
    for name, data in files.items():
        (target / name).write_bytes(data)
    return target if fmt == "folder" else target / next(iter(files))


def test_valid_files_load():
    for fmt in FORMATS:
        with tempfile.TemporaryDirectory() as tmp:
            p = Predictions.from_path(_place(fmt, Path(tmp), VALID[fmt]))
            np.testing.assert_array_equal(p.logits, BASE["logits"])
            assert p.class_names == tuple(CLASSES)


@FUZZ
@given(fmt=st.sampled_from(FORMATS), data=st.binary(max_size=3000), mmap=st.booleans())
def test_random_bytes_are_refused_naming_the_file(fmt, data, mmap):
    files = dict(VALID[fmt])
    name = "logits.npy" if fmt == "folder" else next(iter(files))
    files[name] = data
    with tempfile.TemporaryDirectory() as tmp:
        load_or_refuse(_place(fmt, Path(tmp), files), mmap)


mutation = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.floats(0, 1), st.integers(1, 255)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), st.floats(0, 1), st.integers(1, 64)),
)


def mutate(data: bytes, ops) -> bytes:
    buf = bytearray(data)
    for op in ops:
        at = min(int(op[1] * len(buf)), max(len(buf) - 1, 0))
        if op[0] == "truncate":
            del buf[at:]
        elif op[0] == "flip" and buf:
            buf[at] ^= op[2]
        elif op[0] == "insert":
            buf[at:at] = op[2]
        elif op[0] == "delete":
            del buf[at:at + op[2]]
    return bytes(buf)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fmt=st.sampled_from(FORMATS), which=st.integers(0, 10), ops=st.lists(mutation, min_size=1, max_size=4),
       mmap=st.booleans())
def test_damaged_valid_files_load_or_are_refused_naming_the_file(fmt, which, ops, mmap):
    files = dict(VALID[fmt])
    name = sorted(files)[which % len(files)]
    files[name] = mutate(files[name], ops)
    with tempfile.TemporaryDirectory() as tmp:
        load_or_refuse(_place(fmt, Path(tmp), files), mmap)


DTYPES = ["f2", "f4", "f8", ">f4", "i1", "i4", "i8", "u1", "u8", "?", "c8", "U3", "M8[s]",
          [("a", "f4"), ("b", "i4")]]
RESHAPES = ["transpose", "add axis", "drop a row", "ravel", "empty", "one column"]
change = st.one_of(
    st.tuples(st.just("drop"), st.sampled_from(sorted(BASE))),
    st.tuples(st.just("rename"), st.sampled_from(sorted(BASE)),
              st.sampled_from(list(ARRAY_KEYS) + ["logit", "x", "class_names", "name", "weights"])),
    st.tuples(st.just("dtype"), st.sampled_from(sorted(BASE)), st.sampled_from(range(len(DTYPES)))),
    st.tuples(st.just("shape"), st.sampled_from(sorted(BASE)), st.sampled_from(RESHAPES)),
    st.tuples(st.just("value"), st.sampled_from(sorted(BASE)),
              st.sampled_from([np.nan, np.inf, -1.0, 1e39, 3.0, 2**40])),
)


def apply(arrays: dict, op) -> None:
    """One change to the arrays: drop or rename a key, change its dtype, shape or a value."""
    kind, key = op[0], op[1]
    if key not in arrays:
        return
    arr = arrays[key]
    if kind == "drop":
        del arrays[key]
    elif kind == "rename":
        arrays[op[2]] = arrays.pop(key)
    elif kind == "dtype":
        dtype = DTYPES[op[2]]
        arrays[key] = np.zeros(arr.shape, dtype=dtype) if isinstance(dtype, list) else arr.astype(dtype)
    elif kind == "value":
        if arr.size:
            out = arr.astype(np.float64)
            out.flat[-1] = op[2]
            arrays[key] = out
    else:
        arrays[key] = {"transpose": lambda a: a.T.copy(), "add axis": lambda a: a[..., None],
                       "drop a row": lambda a: a[:-1], "ravel": np.ravel, "empty": lambda a: a[:0],
                       "one column": lambda a: a.reshape(len(a), -1)[:, :1]}[op[2]](arr)


@FUZZ
@given(fmt=st.sampled_from(FORMATS), changes=st.lists(change, min_size=1, max_size=3), mmap=st.booleans())
def test_mislabelled_contents_load_or_are_refused_naming_the_file(fmt, changes, mmap):
    arrays = dict(BASE)
    try:
        with warnings.catch_warnings():  # casts of NaN to int, of complex to real...
            warnings.simplefilter("ignore")
            for op in changes:
                apply(arrays, op)
    except Exception:  # noqa: BLE001 - a cast numpy refuses (structured to float, datetime to text)
        assume(False)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = write(fmt, Path(tmp), arrays)
        except Exception:  # noqa: BLE001 - a format that cannot hold these arrays: nothing to load
            assume(False)
        load_or_refuse(path, mmap)


@FUZZ
@given(fmt=st.sampled_from(["npz", "folder"]), key=st.sampled_from(sorted(BASE)))
def test_object_arrays_are_refused_without_unpickling(fmt, key):
    arrays = dict(BASE)
    arrays[key] = np.array([{"row": i} for i in range(8)], dtype=object)
    with tempfile.TemporaryDirectory() as tmp:
        path = write(fmt, Path(tmp), arrays)
        with pytest.raises(ValueError, match=f"{key}.npy.* holds Python objects") as info:
            Predictions.from_path(path)
        assert str(path) in str(info.value)
