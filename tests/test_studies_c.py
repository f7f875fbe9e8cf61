"""Tests of the studies functions behind notebooks 04 (noisy labels), 05 (label errors) and 06
(model inversion)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import patch_studies
from sklearn.metrics import roc_auc_score

from labviz import Predictions, studies, zoo
from labviz.inversion import Synthesized
from labviz.label_quality import per_sample_loss
from labviz.models import SmallCNN


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _noisy_snapshot(rng, memorised: float, n: int = 400, c: int = 4, n_flip: int = 120) -> Predictions:
    """Training-split predictions where a share ``memorised`` of the flipped samples is predicted
    as the given label and the rest as the true one."""
    y_true = np.arange(n) % c
    y_given = y_true.copy()
    flip = rng.choice(n, size=n_flip, replace=False)
    y_given[flip] = (y_true[flip] + 1) % c
    target = y_true.copy()
    memo = flip[: int(memorised * n_flip)]
    target[memo] = y_given[memo]
    logits = 5.0 * np.eye(c)[target] + rng.normal(scale=0.5, size=(n, c))
    return Predictions.from_arrays(y_true=y_true, y_given=y_given, logits=logits)


# ----- notebook 04 ------------------------------------------------------------------------------
def test_beta_mixture_table_separates_before_memorisation(rng):
    snaps = {2: _noisy_snapshot(rng, 0.0), 40: _noisy_snapshot(rng, 0.9)}
    table = studies.beta_mixture_table(snaps)
    assert list(table.columns) == ["epoch", "n_flipped", "noisy_weight", "flagged_share",
                                   "auc_posterior", "auc_loss"]
    assert table.epoch.tolist() == [2, 40]
    assert table.n_flipped.tolist() == [120, 120]
    early, late = table.iloc[0], table.iloc[1]
    assert early.auc_loss > 0.99 and early.auc_posterior > 0.95
    assert late.auc_loss < early.auc_loss
    assert 0.2 < early.noisy_weight < 0.4  # 120 of 400 flipped


def test_beta_mixture_table_auc_matches_sklearn(rng):
    p = _noisy_snapshot(rng, 0.3)
    table = studies.beta_mixture_table({1: p}, percentiles=(0.0, 100.0))
    expected = roc_auc_score(p.flipped, per_sample_loss(p.y_given, p.probs))
    assert table.auc_loss.iloc[0] == pytest.approx(expected)


def test_beta_mixture_table_needs_flips(rng):
    clean = Predictions.from_arrays(y_true=[0, 1, 0, 1], logits=np.eye(2)[[0, 1, 0, 1]])
    with pytest.raises(ValueError, match=r"must hold both flipped and clean labels; got 0 flipped of 4"):
        studies.beta_mixture_table({1: clean})
    with pytest.raises(TypeError, match="non-empty mapping of epoch to Predictions; got dict"):
        studies.beta_mixture_table({})


# ----- notebook 05 ------------------------------------------------------------------------------
def test_mean_probs_predictions_averages_probabilities(rng):
    pa = _softmax(rng.normal(size=(6, 3)))
    pb = _softmax(rng.normal(size=(6, 3)))
    y = np.array([0, 1, 2, 0, 1, 2])
    a = Predictions.from_arrays(y_true=y, logits=np.log(pa), features=rng.normal(size=(6, 4)),
                                images=np.zeros((6, 2, 2)), name="a")
    b = Predictions.from_arrays(y_true=y, logits=np.log(pb), name="b")
    m = studies.mean_probs_predictions([a, b])
    np.testing.assert_allclose(m.probs, (pa + pb) / 2, atol=1e-6)
    assert m.features is None and m.images.shape == (6, 2, 2)
    assert m.name == "mean of a, b"
    np.testing.assert_array_equal(m.y_given, y)


def test_mean_probs_predictions_refuses_other_samples():
    a = Predictions.from_arrays(y_true=[0, 1], logits=np.eye(2), name="a")
    b = Predictions.from_arrays(y_true=[1, 0], logits=np.eye(2), name="b")
    with pytest.raises(ValueError, match="must all hold the same samples and labels; 'b' differs from 'a'"):
        studies.mean_probs_predictions([a, b])
    with pytest.raises(TypeError, match="non-empty sequence of Predictions"):
        studies.mean_probs_predictions([])


def test_flagged_rate_table_counts_and_overlap():
    errors = {"s0": pd.DataFrame({"id": [3, 5, 9, 11]}), "s1": pd.DataFrame({"id": [5, 9]}),
              "mean": pd.DataFrame({"id": [5, 9, 11]})}
    t = studies.flagged_rate_table(errors, 200, reference="mean")
    assert t.probabilities.tolist() == ["s0", "s1", "mean"]
    assert t.n_flagged.tolist() == [4, 2, 3]
    assert t.rate.tolist() == pytest.approx([0.02, 0.01, 0.015])
    assert t.share_in_reference.tolist() == pytest.approx([0.75, 1.0, 1.0])
    assert "share_in_reference" not in studies.flagged_rate_table(errors, 200).columns


def test_flagged_rate_table_errors():
    with pytest.raises(ValueError, match="`reference` must be a key of `errors`"):
        studies.flagged_rate_table({"a": pd.DataFrame({"id": [1]})}, 10, reference="b")
    with pytest.raises(ValueError, match="n_samples"):
        studies.flagged_rate_table({"a": pd.DataFrame({"id": [1]})}, 0)


def test_named_classes_and_group_share():
    errors = pd.DataFrame({"given": [6, 0, 1, 6], "predicted": [0, 6, 3, 2], "rank": [1, 2, 3, 4]})
    named = studies.named_classes(errors, [f"c{k}" for k in range(10)])
    assert named.given.tolist() == ["c6", "c0", "c1", "c6"]
    assert named["rank"].tolist() == [1, 2, 3, 4]
    assert errors.given.tolist() == [6, 0, 1, 6]  # a copy, the input is untouched
    assert studies.within_group_share(errors, [0, 2, 4, 6]) == pytest.approx(0.75)
    with pytest.raises(ValueError, match=r"missing \['predicted'\]"):
        studies.named_classes(errors[["given"]], ["a"] * 10)


# ----- notebook 06 ------------------------------------------------------------------------------
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


def test_flipped_drift_table_tracks_nearest_centroid(rng):
    n, c = 300, 3
    y_true = np.arange(n) % c
    y_given = y_true.copy()
    flip = rng.choice(n, size=30, replace=False)
    y_given[flip] = (y_true[flip] + 1) % c
    centres = 10.0 * np.eye(c)

    def snapshot(toward_given: bool) -> Predictions:
        where = np.where(np.isin(np.arange(n), flip) & toward_given, y_given, y_true)
        feats = centres[where] + rng.normal(scale=0.3, size=(n, c))
        return Predictions.from_arrays(y_true=y_true, y_given=y_given, logits=np.zeros((n, c)),
                                       features=feats)

    t = studies.flipped_drift_table({60: snapshot(True), 2: snapshot(False)})
    assert t.epoch.tolist() == [2, 60]
    assert t.nearest_is_true.tolist() == [1.0, 0.0]
    assert t.nearest_is_given.tolist() == [0.0, 1.0]
    no_feats = Predictions.from_arrays(y_true=y_true, y_given=y_given, logits=np.zeros((n, c)))
    with pytest.raises(ValueError, match=r"must be a Predictions with features"):
        studies.flipped_drift_table({1: no_feats})
