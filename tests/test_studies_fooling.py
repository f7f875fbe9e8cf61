"""labviz.studies.fooling: confidence on noise and fooling images (notebook 03)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import patch_studies

from labviz import studies, zoo
from labviz.zoo.models import SmallCNN


def _tiny_model():
    torch.manual_seed(0)
    return SmallCNN(n_classes=3, image_size=8)


def test_probe_arrays_shapes_and_probabilities():
    out = studies.probe_arrays(_tiny_model(), n_classes=3, image_size=8, n_noise=5, n_per_class=2,
                               steps=3)
    assert out["noise_probs"].shape == (5, 3)
    assert out["fooling_images"].shape == (6, 8, 8)
    assert out["fooling_target"].tolist() == [0, 0, 1, 1, 2, 2]
    assert out["fooling_probs"].shape == (6, 3)
    np.testing.assert_allclose(out["fooling_probs"].sum(axis=1), 1.0, rtol=1e-6)
    assert 0.0 <= out["fooling_images"].min() and out["fooling_images"].max() <= 1.0


def test_fooling_raises_the_target_probability():
    model = _tiny_model()
    start = studies.probe_arrays(model, n_classes=3, image_size=8, n_noise=1, n_per_class=2, steps=1)
    later = studies.probe_arrays(model, n_classes=3, image_size=8, n_noise=1, n_per_class=2, steps=60)
    rows = np.arange(6)
    assert (later["fooling_probs"][rows, later["fooling_target"]].mean()
            > start["fooling_probs"][rows, start["fooling_target"]].mean())


def test_zoo_probes_are_cached(monkeypatch):
    loads = []

    def fake_load(name):
        loads.append(name)
        return _tiny_model(), {}

    monkeypatch.setattr(zoo, "entry", lambda name: {"sha256": "ab" * 32, "dataset": "fake"})
    monkeypatch.setattr(zoo, "class_names", lambda dataset: ("a", "b", "c"))
    monkeypatch.setattr(zoo, "load", fake_load)
    a = studies.zoo_probes("m", n_noise=4, n_per_class=1, steps=2)
    b = studies.zoo_probes("m", n_noise=4, n_per_class=1, steps=2)
    assert loads == ["m"]
    np.testing.assert_array_equal(a["fooling_probs"], b["fooling_probs"])
    studies.zoo_probes("m", n_noise=4, n_per_class=1, steps=3)  # other settings: a new entry
    assert loads == ["m", "m"]


def test_probe_confidences_by_hand():
    probes = {"noise_probs": np.array([[0.2, 0.8]]),
              "fooling_probs": np.array([[0.99, 0.01], [0.3, 0.7]]),
              "fooling_target": np.array([0, 0])}
    t = studies.probe_confidences(np.array([[0.6, 0.4]]), probes)
    assert t["kind"].tolist() == ["test", "noise", "fooling", "fooling"]
    np.testing.assert_allclose(t["confidence"], [0.6, 0.8, 0.99, 0.7])
    assert t["predicted"].tolist() == [0, 1, 0, 1]
    assert t["target"].tolist() == [-1, -1, 0, 0]


def test_probe_table_and_summary(two_family_zoo, monkeypatch):
    probes = {"noise_probs": np.array([[0.5, 0.25, 0.25], [0.995, 0.004, 0.001]]),
              "fooling_images": np.zeros((2, 8, 8)), "fooling_target": np.array([0, 1]),
              "fooling_probs": np.array([[0.999, 0.0005, 0.0005], [0.9, 0.05, 0.05]])}
    patch_studies(monkeypatch, "zoo_probes", lambda name, **kw: probes)
    t = studies.probe_table(["ce", "ls0.1"], dataset="fake")
    assert len(t) == 4 * 3
    fool = t[(t.name == "fake-ce-s0") & (t.kind == "fooling")].iloc[0]
    assert fool["mean_confidence"] == pytest.approx(0.9495)
    assert fool["share_ge_0.99"] == 0.5 and fool["fooled"] == 0.5
    noise = t[(t.name == "fake-ce-s0") & (t.kind == "noise")].iloc[0]
    assert noise["median_confidence"] == pytest.approx(0.7475) and np.isnan(noise["fooled"])
    s = studies.probe_summary(t)
    assert len(s) == 6 and s["n_seeds"].tolist() == [2] * 6
    assert s.loc[(s.loss == "CE") & (s.images == "fooling"), "share ≥ 0.99"].item() == "0.500 ± 0.000"
