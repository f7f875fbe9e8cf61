"""Real image datasets that work offline: Fashion-MNIST (IDX files) and scikit-learn's digits.

Fashion-MNIST is read from ``$LABVIZ_FASHION_MNIST_DIR`` if set, else from Debian's package
``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``). Both ``*.gz`` and uncompressed IDX
files work. ``digits()`` needs nothing but scikit-learn and always works.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from labviz.core._validation import check_option

DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
DIGITS_CLASSES = tuple(str(k) for k in range(10))
#: How many images scikit-learn's bundled digits hold: the zoo's digits splits follow from it,
#: so that they can be known without loading the images.
DIGITS_SIZE = 1797

_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images with integer labels.

    Attributes
    ----------
    images : ndarray of shape (n_samples, height, width), uint8
    labels : ndarray of shape (n_samples,), int64
    class_names : tuple of str
    name : str
    """

    images: NDArray[np.uint8]
    labels: NDArray[np.int64]
    class_names: tuple[str, ...]
    name: str

    def __len__(self) -> int:
        return len(self.labels)


def _read_idx(path: Path) -> NDArray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path} could not be read as an IDX file ({exc}).") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (bad magic number {raw[:4]!r}).")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path} is truncated: header says {dims}, got {body.size} bytes of data.")
    return body.reshape(dims)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def _idx_path(folder: Path, stem: str) -> Path:
    path = _find(folder, stem)
    if path is None:  # removed after fashion_mnist_dir() found it
        raise FileNotFoundError(f"{folder} holds no {stem} or {stem}.gz.")
    return path


def fashion_mnist_dir() -> Path | None:
    """The folder holding Fashion-MNIST's IDX files, or None if none is found."""
    candidates = [os.environ.get("LABVIZ_FASHION_MNIST_DIR"), DEBIAN_FASHION_MNIST_DIR]
    for folder in candidates:
        if folder and all(_find(Path(folder), s) for pair in _FASHION_FILES.values() for s in pair):
            return Path(folder)
    return None


def fashion_mnist(split: Literal["train", "test"] = "train") -> Dataset:
    """The real Fashion-MNIST images (60,000 train, 10,000 test; 28×28, 10 classes).

    Parameters
    ----------
    split : {"train", "test"}

    Returns
    -------
    Dataset
        ``images`` of shape (n, 28, 28) uint8, ``labels`` of shape (n,), the 10 class names.

    Raises
    ------
    FileNotFoundError
        If neither ``$LABVIZ_FASHION_MNIST_DIR`` nor Debian's folder has the files; the message says
        how to get them.
    """
    check_option(split, "split", tuple(_FASHION_FILES))
    folder = fashion_mnist_dir()
    if folder is None:
        raise FileNotFoundError(
            "Fashion-MNIST was not found. Either install Debian's package "
            "(`sudo apt-get install dataset-fashion-mnist`, files in "
            f"{DEBIAN_FASHION_MNIST_DIR}), or download the four IDX files "
            "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
            "t10k-labels-idx1-ubyte.gz) from https://github.com/zalandoresearch/fashion-mnist and "
            "set LABVIZ_FASHION_MNIST_DIR to their folder."
        )
    img_stem, lab_stem = _FASHION_FILES[split]
    images = _read_idx(_idx_path(folder, img_stem))
    labels = _read_idx(_idx_path(folder, lab_stem)).astype(np.int64)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"Fashion-MNIST files in {folder} disagree: images {images.shape}, "
                         f"labels {labels.shape}.")
    return Dataset(images=images, labels=labels, class_names=FASHION_MNIST_CLASSES,
                   name=f"fashion-mnist/{split}")


def digits() -> Dataset:
    """scikit-learn's bundled handwritten digits (1,797 images of 8×8, 10 classes).

    Pixel values 0..16 are rescaled to 0..255 so both datasets share one dtype and range. The
    arrays are kept in labviz's cache (namespace ``datasets``) once loaded, so that later calls,
    such as each classroom visitor's explorer, need no scikit-learn (80 MB of a kernel's memory).

    >>> d = digits()
    >>> d.images.shape, d.images.dtype.name, d.class_names[:3]
    ((1797, 8, 8), 'uint8', ('0', '1', '2'))
    """
    from labviz.core.cache import cached_arrays

    arrays = cached_arrays("datasets", "sklearn-digits", _load_digits,
                           required=("images", "labels"))
    if len(arrays["labels"]) != DIGITS_SIZE:
        raise ValueError(f"scikit-learn's digits hold {len(arrays['labels'])} images; labviz's "
                         f"digits splits expect DIGITS_SIZE = {DIGITS_SIZE}.")
    return Dataset(images=arrays["images"], labels=arrays["labels"],
                   class_names=DIGITS_CLASSES, name="digits")


def _load_digits() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return {"images": np.round(bunch.images * (255 / 16)).astype(np.uint8),
            "labels": bunch.target.astype(np.int64)}
