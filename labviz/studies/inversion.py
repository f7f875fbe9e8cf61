"""Label smoothing and model inversion (Struppek et al. 2024; notebook 06)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from labviz import zoo
from labviz.studies._common import members

if TYPE_CHECKING:
    from torch import nn

    from labviz.compute.inversion import Synthesized


def invert_checkpoints(names: Sequence[str], *, n_per_class: int = 4, steps: int = 300,
                       seed: int = 0) -> dict[str, Synthesized]:
    """Name -> :func:`labviz.compute.inversion.invert` of every class of zoo checkpoint ``name``.

    Inversions take seconds per model, so they are cached on disk (namespace ``"inversions"``),
    keyed by the checkpoint's sha256 and the arguments.

    Returns
    -------
    dict of str to labviz.compute.inversion.Synthesized
    """
    from labviz.compute.inversion import invert

    def build(name: str) -> dict[str, np.ndarray]:
        model, e = zoo.load(name)
        s = invert(model, range(len(zoo.class_names(e["dataset"]))), n_per_class=n_per_class,
                   image_size=model.config["image_size"], steps=steps, seed=seed)
        return {"images": s.images, "target": s.target, "confidence": s.confidence}

    return _cached_inversions(names, build, n_per_class=n_per_class, steps=steps, seed=seed,
                              version=_INVERSION_CACHE_VERSION)


def _cached_inversions(names: Sequence[str], build: Callable[[str], dict[str, np.ndarray]],
                       **key: object) -> dict[str, Synthesized]:
    """Name -> inversions of every class, from the disk cache keyed by the checkpoint's sha256 and
    ``key`` (which tells the attacks apart)."""
    from labviz.core.cache import cache_key, cached_arrays
    from labviz.compute.inversion import Synthesized

    out = {}
    for name in names:
        a = cached_arrays("inversions", cache_key(sha256=zoo.entry(name)["sha256"], **key),
                          lambda: build(name), required=("images", "target", "confidence"))
        out[name] = Synthesized(images=a["images"], target=a["target"], confidence=a["confidence"])
    return out


def invert_checkpoints_latent(names: Sequence[str], *, generator: str = "fmnist-vae-s0",
                              n_per_class: int = 4, steps: int = 100,
                              seed: int = 0) -> dict[str, Synthesized]:
    """Name -> :func:`labviz.compute.inversion.invert_latent` of every class of zoo checkpoint ``name``:
    the PPA-style attack through the latent space of the shipped generator (Poincaré loss), the
    attack Struppek et al. (2024) use. Cached on disk (namespace ``"inversions"``), keyed by the
    checkpoint's and the generator's sha256 and the arguments."""
    from labviz.zoo import generative
    from labviz.compute.inversion import invert_latent

    decoder, g = generative.load_generator(generator)

    def build(name: str) -> dict[str, np.ndarray]:
        model, e = zoo.load(name)
        s = invert_latent(model, decoder, range(len(zoo.class_names(e["dataset"]))),
                          n_per_class=n_per_class, steps=steps, seed=seed)
        return {"images": s.images, "target": s.target, "confidence": s.confidence}

    return _cached_inversions(names, build, attack="latent", generator=g["sha256"],
                              n_per_class=n_per_class, steps=steps, seed=seed, version=1)


#: Bump when :func:`labviz.compute.inversion.invert` changes, so cached inversions are recomputed.
_INVERSION_CACHE_VERSION = 2


def inversion_attack_table(inversions: Mapping[str, Synthesized], *,
                           evaluator_family: str = "student",
                           with_distance: bool = False) -> pd.DataFrame:
    """Evaluator accuracy on each checkpoint's inversions (Struppek et al. 2024's attack accuracy).

    Each inverted checkpoint of seed s is judged by the ``evaluator_family`` checkpoint of the same
    seed (a separately trained model), with :func:`labviz.compute.inversion.attack_accuracy`.

    Parameters
    ----------
    inversions : mapping of str to Synthesized
        Zoo name -> inversions, e.g. from :func:`invert_checkpoints`.
    evaluator_family : str
        A zoo family with one checkpoint per seed of the inverted ones.

    Returns
    -------
    pandas.DataFrame
        One row per inverted checkpoint: ``family``, ``alpha``, ``seed``, ``name``, ``evaluator``,
        ``attack_accuracy`` (share of inversions the evaluator assigns to their target) and
        ``source_confidence`` (mean probability of the target under the inverted model); with
        ``with_distance``, also ``feature_distance``: the mean over inversions of
        :func:`labviz.compute.inversion.feature_distance`, the distance in the evaluator's penultimate
        features to the nearest training image of the target class (lower = closer to real class
        members, so more leaked).
    """
    from labviz.compute.inversion import attack_accuracy, feature_distance

    entries = {name: zoo.entry(name) for name in inversions}
    datasets = {e["dataset"] for e in entries.values()}
    evaluators: dict[tuple[str, int], str] = {}
    for dataset in datasets:
        for name in members(evaluator_family, dataset):
            evaluators[(dataset, zoo.entry(name)["seed"])] = name
    rows = []
    for name, synth in inversions.items():
        e = entries[name]
        key = (e["dataset"], e["seed"])
        if key not in evaluators:
            raise ValueError(f"`evaluator_family` {evaluator_family!r} has no checkpoint of seed "
                             f"{e['seed']} for {name!r}.")
        evaluator, _ = zoo.load(evaluators[key])
        row = {"family": e["family"], "alpha": e["alpha"], "seed": e["seed"], "name": name,
               "evaluator": evaluators[key], "attack_accuracy": attack_accuracy(evaluator, synth),
               "source_confidence": float(np.mean(synth.confidence))}
        if with_distance:
            images, labels, _ = zoo.split_data(e["dataset"], "train")
            row["feature_distance"] = float(np.mean(feature_distance(
                evaluator, synth.images, synth.target, images, labels)))
        rows.append(row)
    return pd.DataFrame(rows)


def inversion_grid(synthesized: Synthesized, evaluator: nn.Module,
                   class_names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Inversions laid out one class per column, each captioned with the evaluator's guess.

    Images are reordered so that a grid with ``n_cols = number of target classes`` shows class k
    in column k (the i-th inversion of each class in row i). Captions read ``"✓ Bag"`` when the
    evaluator predicts the target, else ``"✗ <predicted>"``.

    Returns
    -------
    images : ndarray of shape (n_images, height, width)
    captions : list of str, length n_images
    """
    from labviz.compute.inversion import predict_probs

    target = np.asarray(synthesized.target)
    order = np.lexsort((target, _rank_within(target)))
    pred = predict_probs(evaluator, synthesized.images).argmax(axis=1)
    captions = [("✓ " if pred[i] == target[i] else "✗ ") + str(class_names[pred[i]]) for i in order]
    return np.asarray(synthesized.images)[order], captions


def _rank_within(labels: np.ndarray) -> np.ndarray:
    """0 for each label's first occurrence, 1 for its second, ..."""
    rank = np.zeros(len(labels), dtype=np.int64)
    seen: dict[int, int] = {}
    for i, y in enumerate(labels.tolist()):
        rank[i] = seen.get(y, 0)
        seen[y] = rank[i] + 1
    return rank
