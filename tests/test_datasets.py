import gzip
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from labviz.zoo import datasets


def _write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_fashion(tmp_path, rng):
    for prefix, n in (("train", 6), ("t10k", 4)):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return tmp_path


def test_digits_is_the_bundled_set():
    d = datasets.digits()
    assert d.images.shape == (1797, 8, 8)
    assert d.images.dtype == np.uint8 and d.images.max() == 255
    assert np.bincount(d.labels).tolist()[:3] == [178, 182, 177]
    assert d.class_names == tuple("0123456789")


def test_fashion_mnist_reads_idx_from_env_folder(tiny_fashion, monkeypatch):
    monkeypatch.setenv("LABVIZ_FASHION_MNIST_DIR", str(tiny_fashion))
    train, test = datasets.fashion_mnist("train"), datasets.fashion_mnist("test")
    assert train.images.shape == (6, 28, 28) and test.images.shape == (4, 28, 28)
    assert test.labels.tolist() == [0, 1, 2, 3]
    assert train.class_names[6] == "Shirt"


def test_fashion_mnist_missing_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("LABVIZ_FASHION_MNIST_DIR", str(tmp_path))
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        datasets.fashion_mnist("train")


def test_fashion_mnist_rejects_bad_split():
    with pytest.raises(ValueError, match="`split` must be one of"):
        datasets.fashion_mnist("validation")


def test_truncated_idx_file_is_reported(tiny_fashion, monkeypatch):
    path = tiny_fashion / "t10k-images-idx3-ubyte.gz"
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    with gzip.open(path, "wb") as fh:
        fh.write(raw[:-100])
    monkeypatch.setenv("LABVIZ_FASHION_MNIST_DIR", str(tiny_fashion))
    with pytest.raises(ValueError, match="truncated"):
        datasets.fashion_mnist("test")


def test_foreign_file_is_not_idx(tiny_fashion, monkeypatch):
    with gzip.open(tiny_fashion / "t10k-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(b"PK\x03\x04 not an idx file")
    monkeypatch.setenv("LABVIZ_FASHION_MNIST_DIR", str(tiny_fashion))
    with pytest.raises(ValueError, match="bad magic number"):
        datasets.fashion_mnist("test")


@pytest.mark.skipif(datasets.fashion_mnist_dir() is None, reason="Fashion-MNIST is not installed")
def test_real_fashion_mnist_has_the_published_sizes():
    train, test = datasets.fashion_mnist("train"), datasets.fashion_mnist("test")
    assert train.images.shape == (60_000, 28, 28) and test.images.shape == (10_000, 28, 28)
    # Fashion-MNIST is balanced: 6,000 and 1,000 images per class.
    assert set(np.bincount(train.labels)) == {6000} and set(np.bincount(test.labels)) == {1000}


@pytest.mark.service
def test_digits_come_from_the_cache_without_scikit_learn_once_loaded(tmp_path):
    from sklearn.datasets import load_digits

    env = {**os.environ, "LABVIZ_CACHE_DIR": str(tmp_path)}
    probe = ("import sys; from labviz import datasets; d = datasets.digits(); "
             "print(d.images.sum(), d.labels.sum(), 'sklearn' in sys.modules)")
    first, second = (subprocess.run([sys.executable, "-c", probe], env=env, text=True,
                                    capture_output=True, timeout=120, check=True).stdout.split()
                     for _ in range(2))
    bunch = load_digits()
    expected = [str(np.round(bunch.images * (255 / 16)).astype(np.uint8).sum()),
                str(bunch.target.sum())]
    assert first == [*expected, "True"]
    assert second == [*expected, "False"]


def test_digits_of_an_unexpected_size_are_refused(tmp_path, monkeypatch):
    from labviz.core import cache

    monkeypatch.setenv("LABVIZ_CACHE_DIR", str(tmp_path))
    cache.atomic_write_npz(tmp_path / "datasets" / "sklearn-digits.npz",
                           {"images": np.zeros((5, 8, 8), np.uint8), "labels": np.zeros(5, np.int64)})
    with pytest.raises(ValueError, match="hold 5 images.*DIGITS_SIZE = 1797"):
        datasets.digits()
