"""Tests of the labviz.studies functions behind notebooks 03 (calibration) and 07 (non-uniformity)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import patch_studies

from labviz import Predictions, studies, zoo
from labviz.calibration import debiased_calibration_error, expected_calibration_error
from labviz.label_quality import non_uniformity
from labviz.models import SmallCNN
from labviz.studies import FASHION


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture
def problem(rng):
    """400 samples, 4 classes, informative but imperfect probabilities."""
    y = rng.integers(0, 4, size=400)
    logits = rng.normal(size=(400, 4))
    logits[np.arange(400), y] += 1.5
    return y, _softmax(logits)


@pytest.fixture
def fake_zoo(monkeypatch, rng):
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

    class FakePredictions:
        @staticmethod
        def from_zoo(name, split="test", *, with_images=True):
            return preds[(name, split)]

    patch_studies(monkeypatch, "Predictions", FakePredictions)
    patch_studies(monkeypatch, "members",
                        lambda family, dataset=FASHION: [n for n, e in entries.items()
                                                                 if e["family"] == family])
    monkeypatch.setattr(zoo, "entry", lambda name: entries[name])
    monkeypatch.setattr(zoo, "class_names", lambda dataset: ("a", "b", "c"))
    return entries, preds


# ----- notebook 03: ECE variants ----------------------------------------------------------------
def test_ece_variants_agree_with_the_calibration_module(problem):
    y, p = problem
    t = studies.ece_variants(y, p)
    assert len(t) == 14
    assert t["kind"].tolist() == ["binning"] * 8 + ["measure"] * 5 + ["one bin"]
    row = t.set_index("variant")["value"]
    assert row["L1, quantile, 30 bins"] == pytest.approx(
        expected_calibration_error(y, p, n_bins=30, strategy="quantile"))
    assert row["max (MCE), uniform, 15 bins"] == pytest.approx(
        expected_calibration_error(y, p, n_bins=15, norm="max"))
    assert row["class-wise L1, uniform, 15 bins"] == pytest.approx(
        expected_calibration_error(y, p, n_bins=15, classwise=True))
    assert row["debiased L2, quantile, 15 bins"] == pytest.approx(
        debiased_calibration_error(y, p, n_bins=15, strategy="quantile"))
    conf = p.max(axis=1)
    assert row["L1, 1 bin = |mean confidence − accuracy|"] == pytest.approx(
        abs(conf.mean() - np.mean(p.argmax(axis=1) == y)))


def test_one_signed_miscalibration_makes_l1_ece_independent_of_binning(rng):
    # every prediction correct, confidences below 1: every bin under-confident by (1 - conf_b)
    y = rng.integers(0, 3, size=200)
    top = rng.uniform(0.4, 0.95, size=200)
    probs = np.zeros((200, 3))
    probs[np.arange(200), y] = top
    for k in range(1, 3):
        probs[np.arange(200), (y + k) % 3] = (1 - top) / 2
    t = studies.ece_variants(y, probs)
    binned = t[t["kind"].isin(["binning", "one bin"])]["value"].to_numpy()
    np.testing.assert_allclose(binned, 1 - top.mean(), rtol=1e-12)


def test_ece_variants_table_wide_spread_and_ranking(fake_zoo):
    v = studies.ece_variants_table(["ce", "ls0.1"], dataset="fake")
    assert v.groupby("name").size().tolist() == [14] * 4
    assert list(v.columns[:3]) == ["family", "name", "seed"]
    wide = studies.ece_variants_wide(v)
    assert list(wide.columns) == ["variant", "kind", "CE", "LS α=0.1"]
    assert len(wide) == 14 and " ± " in wide.loc[0, "CE"]
    spread = studies.binning_spread(v)
    assert len(spread) == 4
    one = v[(v.name == "fake-ce-s0") & (v.kind == "binning")]["value"]
    assert spread.loc[0, "range"] == pytest.approx(one.max() - one.min())
    assert spread.loc[0, "relative_range"] == pytest.approx(
        spread.loc[0, "range"] / spread.loc[0, "reference"])
    ranking = studies.family_ranking(v)
    assert len(ranking) == 14
    assert set(ranking["ranking"]) <= {"CE < LS α=0.1", "LS α=0.1 < CE"}


def test_binning_spread_names_a_bad_reference():
    v = pd.DataFrame({"family": "ce", "name": "m", "seed": 0, "kind": "binning",
                      "variant": ["L1, uniform, 15 bins"], "value": [0.1]})
    with pytest.raises(ValueError, match="`reference` must be a binning variant"):
        studies.binning_spread(v, reference="L1, uniform, 7 bins")


def test_family_ranking_orders_best_first():
    v = pd.DataFrame({"variant": "a", "kind": "binning", "family": ["ce", "ce", "ls0.1", "ls0.1"],
                      "value": [0.3, 0.1, 0.15, 0.15]})
    assert studies.family_ranking(v)["ranking"].tolist() == ["LS α=0.1 < CE"]


def test_temperature_scaling_table_reads_the_temperature(fake_zoo):
    t = studies.temperature_scaling_table(["ce", "ls0.1"], dataset="fake")
    assert len(t) == 4
    assert {"temperature", "ece", "ece_ts", "mean_confidence", "gap", "reading"} <= set(t.columns)
    assert ((t["temperature"] > 1) == (t["reading"] == "over-confident")).all()
    np.testing.assert_allclose(t["gap"], t["mean_confidence"] - t["accuracy"])


# ----- notebook 03: noise and fooling images ----------------------------------------------------
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


def test_probe_table_and_summary(fake_zoo, monkeypatch):
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


# ----- notebook 07 -------------------------------------------------------------------------------
def test_non_uniformity_deciles_and_trend(fake_zoo):
    d = studies.non_uniformity_deciles(["ce", "ls0.1"], dataset="fake", n_bins=5)
    assert d.groupby("name").size().tolist() == [5] * 4
    _, preds = fake_zoo
    p = preds[("fake-ce-s0", "test")]
    first = d[d.name == "fake-ce-s0"]
    nu = non_uniformity(p.probs)
    low = np.argsort(nu, kind="stable")[:60]
    assert first["accuracy"].iloc[0] == pytest.approx(p.correct[low].mean())
    trend = studies.decile_trend(d)
    assert len(trend) == 4
    assert trend.loc[0, "accuracy_lowest"] == pytest.approx(first["accuracy"].iloc[0])
    assert trend.loc[0, "error_share_lowest"] == pytest.approx(
        (~p.correct[low]).sum() / (~p.correct).sum())
    assert -1 <= trend["spearman"].min() and trend["spearman"].max() <= 1
    summary = studies.decile_summary(d)
    assert list(summary.columns) == ["decile", "CE score", "CE accuracy", "LS α=0.1 score",
                                     "LS α=0.1 accuracy"]
    assert summary["decile"].tolist() == [1, 2, 3, 4, 5]


def test_decile_trend_falling_accuracy_is_minus_one():
    d = pd.DataFrame({"family": "ce", "name": "m", "seed": 0, "bin": [3, 1, 2],
                      "accuracy": [0.1, 0.9, 0.5], "n": [20, 10, 10]})
    row = studies.decile_trend(d).iloc[0]
    assert (row["accuracy_lowest"], row["accuracy_highest"], row["spearman"]) == (0.9, 0.1, -1.0)
    assert row["error_share_lowest"] == pytest.approx(1 / (1 + 5 + 18))


@pytest.mark.filterwarnings("ignore:An input array is constant")  # ρ is undefined too: NaN
def test_decile_trend_without_errors_has_no_error_share():
    d = pd.DataFrame({"family": "ce", "name": "m", "seed": 0, "bin": [1, 2], "accuracy": 1.0, "n": 5})
    assert np.isnan(studies.decile_trend(d).loc[0, "error_share_lowest"])


def test_score_agreement(fake_zoo):
    t = studies.score_agreement(["ce"], dataset="fake")
    assert t["name"].tolist() == ["fake-ce-s0", "fake-ce-s1"]
    assert (t["spearman"] > 0.5).all()  # both scores grow as the softmax sharpens


def test_same_side_share(problem):
    y, p = problem
    share = studies.same_side_share(y, p, n_bins=10)
    assert 0.0 <= share <= 1.0
    # a one-sided model: always right, confidence below 1 -> every bin under-confident
    probs = np.full((50, 2), 0.3)
    probs[:, 0] = 0.7
    assert studies.same_side_share(np.zeros(50, dtype=int), probs) == 1.0
