"""A zoo checkpoint's activations on a split, as :class:`~labviz.core.predictions.Predictions`.

Activations (logits, penultimate features, the head's weights) are computed once per checkpoint and
split and cached on disk, keyed by the checkpoint's sha256.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from labviz.core import _validation as v
from labviz.core.cache import Arrays, cached_arrays, entry_path
from labviz.core.predictions import Predictions, Split
from labviz.zoo.splits import class_names, images_for, split_data
from labviz.zoo.store import entry, load_checkpoint, zoo_dir

__all__ = ["compute_activations", "predictions", "warm"]


def _trained_rows(name: str, trained: NDArray[np.int64], ids: NDArray[np.int64]) -> int:
    """How many leading rows of the train split (ids ``ids``) checkpoint ``name`` trained on.

    A checkpoint trains on the whole split or on a transfer set, its first ``train_size`` images;
    anything else means the split differs from the one it was built on.
    """
    n = len(trained)
    if n > len(ids) or not np.array_equal(trained, ids[:n]):
        raise ValueError(f"{name} was trained on other indices than the current train split "
                         f"(or its first {n} images).")
    return n


def predictions(name: str, split: Split = "test", *, with_images: bool = True) -> Predictions:
    """Predictions of zoo checkpoint ``name`` on ``split`` ("train", "val" or "test").

    Activations are cached on disk, keyed by the checkpoint's sha256 and the split, so a second
    call reloads them without running the model. On the "train" split, ``y_given`` holds the
    labels the checkpoint was trained with (noisy for the noisy-label runs).
    """
    v.check_option(split, "split", ("train", "val", "test"))
    e = entry(name)
    arrays = _cached(name, split)
    images = images_for(e, split, arrays["ids"]) if with_images else None
    return Predictions.from_arrays(
        y_true=arrays["y_true"], logits=arrays["logits"], features=arrays["features"],
        y_given=arrays["y_given"], ids=arrays["ids"], weights=arrays["weights"],
        bias=arrays.get("bias"), images=images,
        class_names=class_names(e["dataset"]), name=f"{name} [{split}]",
    )


def compute_activations(name: str, split: Split) -> dict[str, NDArray[np.generic]]:
    """Run checkpoint ``name`` on ``split``: logits, features, labels, ids, and the head's weights.

    On the "train" split these are the images the checkpoint was trained on, with ``y_given`` the
    labels it was given: the whole split, or for a transfer-set run only its first ``train_size``
    images.
    """
    import torch

    from labviz.zoo.training import images_to_tensor

    e = entry(name)
    model, _, tensors = load_checkpoint(zoo_dir() / e["file"], sha256=e["sha256"])
    images, y_true, ids = split_data(e["dataset"], split)
    y_given = y_true
    if split == "train":
        n = _trained_rows(name, tensors["labels.train_index"].numpy(), ids)
        images, y_true, ids = images[:n], y_true[:n], ids[:n]
        y_given = tensors["labels.train_given"].numpy()
    feats, logits = [], []
    with torch.inference_mode():
        for xb in images_to_tensor(images).split(256):  # fits the CPU caches: 1.7x faster than 2,048
            h = model.embed(xb)
            feats.append(h)
            logits.append(model.head(h))
    return {
        "logits": torch.cat(logits).numpy(), "features": torch.cat(feats).numpy(),
        "y_true": y_true, "y_given": y_given, "ids": ids,
        "weights": model.head.weight.detach().numpy(), "bias": model.head.bias.detach().numpy(),
    }


def _key(name: str, split: Split) -> str:
    return f"{entry(name)['sha256'][:32]}-{split}"


def _cached(name: str, split: Split) -> Arrays:
    return cached_arrays("activations", _key(name, split), lambda: compute_activations(name, split),
                         required=("logits", "y_true", "y_given", "ids", "features", "weights"))


def _cache_one(name: str, split: Split) -> str:
    _cached(name, split)
    return f"{name} [{split}]"


def warm(names: Sequence[str], splits: Sequence[Split] = ("val", "test"), *, jobs: int = 1,
         progress: bool = True) -> int:
    """Cache the activations of checkpoints ``names`` on ``splits`` ahead of use, ``jobs`` at once.

    Before a class: the notebooks then read every activation from the cache (notebook 01 in about
    10 s rather than 100 s). Each checkpoint and split is computed once, by one process; those
    already cached are skipped. Returns the number computed.
    """
    from concurrent.futures import ProcessPoolExecutor

    from tqdm.auto import tqdm

    jobs = v.check_int(jobs, "jobs", minimum=1)
    for split in splits:
        v.check_option(split, "split", ("train", "val", "test"))
    todo = [(n, s) for n in dict.fromkeys(names) for s in splits
            if not entry_path("activations", _key(n, s)).exists()]
    with tqdm(total=len(todo), desc="activations", unit="run", disable=not progress) as bar:
        if jobs == 1:
            for n, s in todo:
                bar.set_postfix_str(_cache_one(n, s))
                bar.update(1)
        else:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                for done in pool.map(_cache_one, *zip(*todo, strict=True)) if todo else ():
                    bar.set_postfix_str(done)
                    bar.update(1)
    return len(todo)
