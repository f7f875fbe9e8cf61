"""Nguyen et al. (2015), *Deep neural networks are easily fooled*: confidence on noise and fooling images (notebook 03)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from labviz import zoo
from labviz.studies._common import FAMILY_LABELS, FASHION, mean_sd, members

if TYPE_CHECKING:
    from torch import nn



#: Version of the cached probe arrays of :func:`zoo_probes`; bump when the recipe changes.
_PROBES_VERSION = 1


def probe_arrays(model: nn.Module, *, n_classes: int, image_size: int = 28, n_noise: int = 200,
                 n_per_class: int = 4, steps: int = 100, seed: int = 0) -> dict[str, np.ndarray]:
    """A model's probabilities on uniform-noise images and on gradient-ascent fooling images.

    The probes of Nguyen et al. (2015), "Deep Neural Networks are Easily Fooled":
    :func:`labviz.compute.inversion.noise_images` and :func:`labviz.compute.inversion.fooling_images` (no image
    prior) for every class.

    Returns
    -------
    dict of str to ndarray
        ``noise_probs`` (n_noise, n_classes), ``fooling_images`` (n_classes * n_per_class,
        image_size, image_size), ``fooling_target`` (n_classes * n_per_class,) and
        ``fooling_probs`` (n_classes * n_per_class, n_classes).
    """
    from labviz.compute.inversion import fooling_images, noise_images, predict_probs

    fooled = fooling_images(model, range(n_classes), n_per_class=n_per_class,
                            image_size=image_size, steps=steps, seed=seed)
    return {"noise_probs": predict_probs(model, noise_images(n_noise, image_size=image_size, seed=seed)),
            "fooling_images": fooled.images, "fooling_target": fooled.target,
            "fooling_probs": predict_probs(model, fooled.images)}


def zoo_probes(name: str, *, n_noise: int = 200, n_per_class: int = 4, steps: int = 100,
               seed: int = 0) -> dict[str, np.ndarray]:
    """:func:`probe_arrays` of zoo checkpoint ``name``, cached on disk by its sha256 and the settings."""
    from labviz.core.cache import cache_key, cached_arrays

    e = zoo.entry(name)
    n_classes = len(zoo.class_names(e["dataset"]))

    def build() -> dict[str, np.ndarray]:
        model, _ = zoo.load(name)
        image_size = int(model.config["image_size"])
        return probe_arrays(model, n_classes=n_classes, image_size=image_size, n_noise=n_noise,
                            n_per_class=n_per_class, steps=steps, seed=seed)

    key = cache_key(sha256=e["sha256"], n_noise=n_noise, n_per_class=n_per_class, steps=steps,
                    seed=seed, version=_PROBES_VERSION)
    return cached_arrays("probes", key, build,
                         required=("noise_probs", "fooling_images", "fooling_target", "fooling_probs"))


def probe_confidences(test_probs: np.ndarray, probes: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Top-1 confidence on real test images, noise and fooling images, one row per image.

    Parameters
    ----------
    test_probs : array-like of shape (n_test, n_classes)
    probes : mapping
        From :func:`probe_arrays` or :func:`zoo_probes`.

    Returns
    -------
    pandas.DataFrame
        Columns ``kind`` ("test", "noise", "fooling"), ``confidence`` (top-1 probability),
        ``predicted`` (int) and ``target`` (the fooling image's target class; -1 otherwise).
    """
    parts = []
    for kind, p in (("test", test_probs), ("noise", probes["noise_probs"]),
                    ("fooling", probes["fooling_probs"])):
        p = np.asarray(p, dtype=np.float64)
        target = np.asarray(probes["fooling_target"]) if kind == "fooling" else np.full(len(p), -1)
        parts.append(pd.DataFrame({"kind": kind, "confidence": p.max(axis=1),
                                   "predicted": p.argmax(axis=1).astype(np.int64),
                                   "target": target.astype(np.int64)}))
    return pd.concat(parts, ignore_index=True)


def probe_table(families: Sequence[str], dataset: str = FASHION, *, n_noise: int = 200,
                n_per_class: int = 4, steps: int = 100, seed: int = 0) -> pd.DataFrame:
    """Confidence statistics on test, noise and fooling images, per checkpoint and kind of image.

    Returns
    -------
    pandas.DataFrame
        One row per (checkpoint, kind): ``family``, ``name``, ``seed``, ``kind``, ``n``,
        ``mean_confidence``, ``median_confidence``, ``share_ge_0.99`` (share of images with
        top-1 confidence ≥ 0.99), ``fooled`` (fooling images only: share predicted as their
        target; NaN for the other kinds) and ``top_class_share`` (share of the images predicted
        as the most frequent class).
    """
    rows = []
    for family in families:
        for name in members(family, dataset):
            test = zoo.predictions(name, "test", with_images=False)
            conf = probe_confidences(test.probs, zoo_probes(
                name, n_noise=n_noise, n_per_class=n_per_class, steps=steps, seed=seed))
            for kind, part in conf.groupby("kind", sort=False):
                c = part["confidence"].to_numpy()
                fooled = (float(np.mean(part["predicted"] == part["target"])) if kind == "fooling"
                          else np.nan)
                rows.append({"family": family, "name": name, "seed": zoo.entry(name)["seed"],
                             "kind": kind, "n": len(c), "mean_confidence": float(c.mean()),
                             "median_confidence": float(np.median(c)),
                             "share_ge_0.99": float(np.mean(c >= 0.99)), "fooled": fooled,
                             "top_class_share": float(part["predicted"].value_counts().iloc[0] / len(c))})
    return pd.DataFrame(rows)


def probe_summary(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """:func:`probe_table` as ``"mean ± sd"`` over seeds, one row per (family, kind)."""
    rows = []
    for (family, kind), part in table.groupby(["family", "kind"], sort=False):
        rows.append({"loss": FAMILY_LABELS.get(family, family), "images": kind, "n_seeds": len(part),
                     "mean confidence": mean_sd(part["mean_confidence"], digits),
                     "median confidence": mean_sd(part["median_confidence"], digits),
                     "share ≥ 0.99": mean_sd(part["share_ge_0.99"], digits)})
    return pd.DataFrame(rows)
