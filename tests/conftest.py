"""Shared fixtures. Every test gets its own cache folder, so tests never see each other's entries."""

from __future__ import annotations

import numpy as np
import pytest

from labviz import Predictions, zoo
from labviz.studies import FASHION


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LABVIZ_CACHE_DIR", str(tmp_path_factory.mktemp("labviz-cache")))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def patch_studies(monkeypatch, name: str, value) -> None:
    """Replace ``name`` in every ``labviz.studies`` module that holds it (each imported its own)."""
    import sys

    import labviz.studies  # noqa: F401  (loads every study module)

    for modname, module in list(sys.modules.items()):
        if (modname == "labviz.studies" or modname.startswith("labviz.studies.")) and hasattr(module, name):
            monkeypatch.setattr(module, name, value)


def softmax_rows(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture
def two_family_zoo(monkeypatch, rng):
    """Two families of two seeds each, served from synthetic Predictions instead of the zoo."""
    entries, preds = {}, {}
    for family, sharp in (("ce", 3.0), ("ls0.1", 1.0)):
        for seed in (0, 1):
            name = f"fake-{family}-s{seed}"
            entries[name] = {"name": name, "seed": seed, "family": family, "dataset": "fake", "alpha": 0.0,
                             "sha256": f"{name:0>64}"}
            for split in ("val", "test"):
                y = rng.integers(0, 3, size=300)
                z = rng.normal(size=(300, 3))
                z[np.arange(300), y] += 2.0
                preds[(name, split)] = Predictions.from_arrays(y_true=y, logits=sharp * z,
                                                               name=f"{name} [{split}]")

    monkeypatch.setattr(zoo, "predictions", lambda name, split="test", *, with_images=True: preds[(name, split)])
    patch_studies(monkeypatch, "members",
                        lambda family, dataset=FASHION: [n for n, e in entries.items()
                                                                 if e["family"] == family])
    monkeypatch.setattr(zoo, "entry", lambda name: entries[name])
    monkeypatch.setattr(zoo, "class_names", lambda dataset: ("a", "b", "c"))
    return entries, preds
