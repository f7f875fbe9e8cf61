"""labviz.studies.inversion: model inversion scored by an evaluator (notebook 06)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import patch_studies

from labviz import studies, zoo
from labviz.compute.inversion import Synthesized
from labviz.zoo.models import SmallCNN


def test_inversion_grid_puts_one_class_per_column():
    images = np.stack([np.full((8, 8), k / 10, dtype=np.float32) for k in range(6)])
    synth = Synthesized(images=images, target=np.array([0, 0, 1, 1, 2, 2]),
                        confidence=np.ones(6))

    class ConstantModel(torch.nn.Module):  # always predicts class 1
        def forward(self, x):
            return torch.tensor([[0.0, 5.0, 0.0]]).repeat(len(x), 1)

    imgs, captions = studies.inversion_grid(synth, ConstantModel(), ["a", "b", "c"])
    # a 3-column grid: row 0 holds the first inversion of classes 0, 1, 2, row 1 the second
    np.testing.assert_allclose(imgs[:, 0, 0], [0.0, 0.2, 0.4, 0.1, 0.3, 0.5])
    assert captions == ["✗ b", "✓ b", "✗ b"] * 2


def test_inversion_attack_table_pairs_evaluator_by_seed(monkeypatch):
    manifest = {
        "m-ce-s0": {"family": "ce", "alpha": 0.0, "seed": 0, "dataset": "digits"},
        "m-ls-s1": {"family": "ls0.1", "alpha": 0.1, "seed": 1, "dataset": "digits"},
        "m-student-s0": {"family": "student", "alpha": 0.0, "seed": 0, "dataset": "digits"},
        "m-student-s1": {"family": "student", "alpha": 0.0, "seed": 1, "dataset": "digits"},
    }
    torch.manual_seed(0)
    models = {n: SmallCNN(n_classes=3, image_size=8) for n in manifest}
    monkeypatch.setattr(zoo, "entry", lambda n: manifest[n])
    monkeypatch.setattr(zoo, "load", lambda n: (models[n], manifest[n]))
    patch_studies(monkeypatch, "members", lambda fam, ds: [n for n, e in manifest.items()
                                                              if e["family"] == fam])
    images = np.random.default_rng(0).random((6, 8, 8)).astype(np.float32)
    synth = Synthesized(images=images, target=np.array([0, 0, 1, 1, 2, 2]),
                        confidence=np.full(6, 0.5))
    table = studies.inversion_attack_table({"m-ce-s0": synth, "m-ls-s1": synth})
    assert table.evaluator.tolist() == ["m-student-s0", "m-student-s1"]
    assert table.alpha.tolist() == [0.0, 0.1]
    assert table.source_confidence.tolist() == [0.5, 0.5]
    for row in table.itertuples():
        models[row.evaluator].eval()
        with torch.no_grad():
            pred = models[row.evaluator](torch.from_numpy(images).unsqueeze(1)).argmax(1).numpy()
        assert row.attack_accuracy == pytest.approx(np.mean(pred == synth.target))
    del manifest["m-student-s1"]
    with pytest.raises(ValueError, match="has no checkpoint of seed 1 for 'm-ls-s1'"):
        studies.inversion_attack_table({"m-ls-s1": synth})


def test_invert_checkpoints_caches_by_checkpoint(monkeypatch):
    torch.manual_seed(0)
    model = SmallCNN(n_classes=3, image_size=8)
    e = {"dataset": "digits", "sha256": "ab" * 32}
    calls = []

    def load(name):
        calls.append(name)
        return model, e

    monkeypatch.setattr(zoo, "load", load)
    monkeypatch.setattr(zoo, "entry", lambda name: e)
    monkeypatch.setattr(zoo, "class_names", lambda ds: ("a", "b", "c"))
    first = studies.invert_checkpoints(["m"], n_per_class=2, steps=3)["m"]
    again = studies.invert_checkpoints(["m"], n_per_class=2, steps=3)["m"]
    assert calls == ["m"]  # the second call is served from the cache
    assert first.images.shape == (6, 8, 8) and first.target.tolist() == [0, 0, 1, 1, 2, 2]
    np.testing.assert_array_equal(first.images, again.images)
    np.testing.assert_array_equal(first.confidence, again.confidence)
    studies.invert_checkpoints(["m"], n_per_class=2, steps=4)
    assert calls == ["m", "m"]  # other arguments, other entry


def test_inversion_attack_table_adds_the_feature_distance(monkeypatch):
    from labviz.compute.inversion import feature_distance

    manifest = {"m-ce-s0": {"family": "ce", "alpha": 0.0, "seed": 0, "dataset": "digits"},
                "m-student-s0": {"family": "student", "alpha": 0.0, "seed": 0, "dataset": "digits"}}
    torch.manual_seed(0)
    models = {n: SmallCNN(n_classes=3, image_size=8).eval() for n in manifest}
    rng = np.random.default_rng(1)
    reference = (rng.random((30, 8, 8)) * 255).astype(np.uint8), np.arange(30) % 3
    monkeypatch.setattr(zoo, "entry", lambda n: manifest[n])
    monkeypatch.setattr(zoo, "load", lambda n: (models[n], manifest[n]))
    monkeypatch.setattr(zoo, "split_data", lambda ds, split: (*reference, np.arange(30)))
    patch_studies(monkeypatch, "members", lambda fam, ds: [n for n, e in manifest.items() if e["family"] == fam])
    synth = Synthesized(images=rng.random((6, 8, 8)).astype(np.float32), target=np.array([0, 0, 1, 1, 2, 2]),
                        confidence=np.full(6, 0.5))
    table = studies.inversion_attack_table({"m-ce-s0": synth}, with_distance=True)
    expected = feature_distance(models["m-student-s0"], synth.images, synth.target, *reference).mean()
    assert table.feature_distance.iloc[0] == pytest.approx(expected)
    assert "feature_distance" not in studies.inversion_attack_table({"m-ce-s0": synth})


def test_latent_inversions_are_cached_apart_from_pixel_ones(monkeypatch):
    from labviz.zoo import generative

    from labviz.compute import inversion
    torch.manual_seed(0)
    model = SmallCNN(n_classes=3, image_size=8)
    e = {"dataset": "digits", "sha256": "cd" * 32}
    calls = []

    def fake_latent(model, decoder, classes, *, n_per_class, steps, seed):
        calls.append(steps)
        classes = list(classes)
        return Synthesized(images=np.zeros((len(classes) * n_per_class, 8, 8), np.float32),
                           target=np.repeat(classes, n_per_class), confidence=np.full(len(classes) * n_per_class, 0.9))

    monkeypatch.setattr(zoo, "load", lambda name: (model, e))
    monkeypatch.setattr(zoo, "entry", lambda name: e)
    monkeypatch.setattr(zoo, "class_names", lambda ds: ("a", "b", "c"))
    monkeypatch.setattr(generative, "load_generator", lambda name: (None, {"sha256": "ef" * 32}))
    monkeypatch.setattr(inversion, "invert_latent", fake_latent)
    first = studies.invert_checkpoints_latent(["m"], n_per_class=2, steps=5)["m"]
    studies.invert_checkpoints_latent(["m"], n_per_class=2, steps=5)
    assert calls == [5] and first.target.tolist() == [0, 0, 1, 1, 2, 2]
    pixel = studies.invert_checkpoints(["m"], n_per_class=2, steps=5)["m"]  # same arguments, other attack
    assert calls == [5] and not np.array_equal(pixel.confidence, first.confidence)
