"""The zoo's fixed data splits: which images each checkpoint trains, is validated and tested on.

Fashion-MNIST models train on a fixed 10,000-image subset of the official training set and hold
out 5,000 more as the validation split (temperature scaling fits there); "test" is the official
10,000-image test set. The small subset and 40 epochs without regularisation make the CE baseline
over-confident, which the calibration story needs. Digits models use a fixed 720-image test+val
hold-out of scikit-learn's 1,797 digits.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from labviz.zoo.datasets import (
    DIGITS_CLASSES,
    DIGITS_SIZE,
    FASHION_MNIST_CLASSES,
    Dataset,
    digits,
    fashion_mnist,
)

if TYPE_CHECKING:
    from labviz.core.predictions import Split

__all__ = ["DATA_SEED", "class_names", "images_for", "source", "split_data", "split_indices"]

DATA_SEED = 12345  # fixes the train/val/test index split of every dataset

#: The arrays that splits index: Fashion-MNIST's official "train" or "test" set, or "all" digits.
SourcePart = Literal["train", "test", "all"]


def _check_dataset(dataset: str) -> None:
    if dataset not in ("fashion-mnist", "digits"):
        raise ValueError(f"`dataset` must be 'fashion-mnist' or 'digits'; got {dataset!r}.")


def _part(dataset: str, split: str) -> SourcePart:
    if dataset == "digits":
        return "all"
    return "test" if split == "test" else "train"


@lru_cache(maxsize=4)
def source(dataset: str, part: SourcePart) -> Dataset:
    """The source arrays of ``dataset`` that its splits index (loaded once per process).

    Parameters
    ----------
    dataset : {"fashion-mnist", "digits"}
    part : {"train", "test", "all"}
        Fashion-MNIST's official "train" or "test" set; "all" of scikit-learn's digits.
    """
    _check_dataset(dataset)
    if dataset == "digits":
        return digits()
    if part == "all":
        raise ValueError("`part` must be 'train' or 'test' for Fashion-MNIST; got 'all'.")
    return fashion_mnist(part)


@lru_cache(maxsize=8)
def split_indices(dataset: str) -> dict[str, NDArray[np.int64]]:
    """The fixed indices of the train, val and test splits into their source arrays."""
    _check_dataset(dataset)
    rng = np.random.default_rng(DATA_SEED)
    if dataset == "fashion-mnist":
        perm = rng.permutation(60_000)
        return {"train": perm[:10_000], "val": perm[10_000:15_000], "test": np.arange(10_000)}
    perm = rng.permutation(DIGITS_SIZE)  # known without loading the images
    return {"test": perm[:450], "val": perm[450:720], "train": perm[720:]}


def split_data(dataset: str, split: Split
               ) -> tuple[NDArray[np.uint8], NDArray[np.int64], NDArray[np.int64]]:
    """Images, clean labels and ids (indices into the source) of one split."""
    src = source(dataset, _part(dataset, split))
    ids = split_indices(dataset)[split]
    return src.images[ids], src.labels[ids], ids


def class_names(dataset: str) -> tuple[str, ...]:
    """The class names of ``dataset``, without loading its images."""
    return FASHION_MNIST_CLASSES if dataset == "fashion-mnist" else DIGITS_CLASSES


def images_for(entry: dict[str, Any], split: Split, ids: NDArray[np.int64]
               ) -> NDArray[np.uint8] | None:
    """The input images of ``ids`` in ``split``, or None if the dataset is not on this machine."""
    dataset = entry["dataset"]
    try:
        src = source(dataset, _part(dataset, split))
    except FileNotFoundError:
        return None
    return src.images[ids]
