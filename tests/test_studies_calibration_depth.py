"""labviz.studies.calibration_depth: ECE variants, binning spread, temperature scaling (notebook 03)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import patch_studies, softmax_rows

from labviz import Predictions, studies, zoo
from labviz.compute.calibration import (
    debiased_calibration_error,
    expected_calibration_error,
    fit_temperature,
)
from labviz.core.predictions import softmax


@pytest.fixture
def problem(rng):
    """400 samples, 4 classes, informative but imperfect probabilities."""
    y = rng.integers(0, 4, size=400)
    logits = rng.normal(size=(400, 4))
    logits[np.arange(400), y] += 1.5
    return y, softmax_rows(logits)


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


def test_ece_variants_table_wide_spread_and_ranking(two_family_zoo):
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


def test_temperature_scaling_table_reads_the_temperature(two_family_zoo):
    t = studies.temperature_scaling_table(["ce", "ls0.1"], dataset="fake")
    assert len(t) == 4
    assert {"temperature", "ece", "ece_ts", "mean_confidence", "gap", "reading"} <= set(t.columns)
    assert ((t["temperature"] > 1) == (t["reading"] == "over-confident")).all()
    np.testing.assert_allclose(t["gap"], t["mean_confidence"] - t["accuracy"])


def test_same_side_share(problem):
    y, p = problem
    share = studies.same_side_share(y, p, n_bins=10)
    assert 0.0 <= share <= 1.0
    # a one-sided model: always right, confidence below 1 -> every bin under-confident
    probs = np.full((50, 2), 0.3)
    probs[:, 0] = 0.7
    assert studies.same_side_share(np.zeros(50, dtype=int), probs) == 1.0


@pytest.fixture
def ce_zoo(monkeypatch, rng):
    preds = {}
    for s in (0, 1):
        for split in ("val", "test"):
            y = rng.integers(0, 3, size=500)
            z = rng.normal(size=(500, 3))
            z[np.arange(500), y] += 1.5
            preds[(f"ce-s{s}", split)] = Predictions.from_arrays(y_true=y, logits=3 * z)
    monkeypatch.setattr(zoo, "predictions", lambda name, split="test", with_images=True: preds[(name, split)])
    patch_studies(monkeypatch, "members", lambda family, dataset="fake": ["ce-s0", "ce-s1"])
    monkeypatch.setattr(zoo, "entry", lambda name: {"seed": int(name[-1])})
    return preds


def test_binning_by_size_scores_the_same_subsets_for_every_model(ce_zoo):
    t = studies.binning_by_size(["ce"], "fake", sizes=(50, 500), n_draws=3)
    assert set(t.family) == {"ce", "ce+ts"}
    counts = t.groupby(["family", "name", "size"]).size()
    assert (counts.xs(50, level="size") == 3).all() and (counts.xs(500, level="size") == 1).all()
    full = t[(t["size"] == 500) & (t.family == "ce") & (t.name == "ce-s0")].iloc[0]
    p = ce_zoo[("ce-s0", "test")]
    values = [expected_calibration_error(p.y_true, p.probs, n_bins=b, strategy=s) for s, b in studies.ECE_BINNINGS]
    assert full.ece == pytest.approx(expected_calibration_error(p.y_true, p.probs, n_bins=15))
    assert full.range == pytest.approx(max(values) - min(values))
    assert full.relative_range == pytest.approx(full.range / full.ece)
    val = ce_zoo[("ce-s0", "val")]
    scaled = softmax(p.logits / fit_temperature(val.logits, val.y_true))
    ts = t[(t["size"] == 500) & (t.family == "ce+ts") & (t.name == "ce-s0")].iloc[0]
    assert ts.ece == pytest.approx(expected_calibration_error(p.y_true, scaled, n_bins=15))
    assert ts.ece < full.ece  # temperature scaling an over-sharp model calibrates it
    # seeded: a second call draws the same subsets
    again = studies.binning_by_size(["ce"], "fake", sizes=(50, 500), n_draws=3)
    np.testing.assert_array_equal(again.relative_range, t.relative_range)


def test_binning_by_size_refuses_bad_sizes(ce_zoo):
    with pytest.raises(ValueError, match="`sizes` must not exceed the 500 test images; got 600"):
        studies.binning_by_size(["ce"], "fake", sizes=(600,))
    with pytest.raises(ValueError, match="`sizes` must be integers of at least 2; got \\[1\\]"):
        studies.binning_by_size(["ce"], "fake", sizes=(1,))


def _report():
    nan = float("nan")
    return pd.DataFrame({
        "model": ["CE", "CE", "CE", "LS", "LS", "LS"],
        "estimator": ["ECE (equal-width)", "smooth ECE", "NLL"] * 2,
        "estimate": [0.04, 0.03, 0.35, 0.07, 0.06, 0.40],
        "low": [0.035, nan, 0.33, 0.065, nan, 0.38], "high": [0.045, nan, 0.37, 0.075, nan, 0.42],
        "n_bins": [15, None, None, 15, None, None],
        "interval": ["95% percentile bootstrap (n_boot=1000)", "none (no bins; not bootstrapped)",
                     "95% percentile bootstrap (n_boot=1000)"] * 2})


def test_estimator_table_is_one_row_per_estimator_and_says_the_interval_once():
    out = studies.estimator_table(_report(), digits=3)
    assert list(out.columns) == ["estimator", "bins", "CE", "LS"]
    assert out.estimator.tolist() == ["ECE (equal-width)", "smooth ECE", "NLL"]
    assert out.CE.tolist() == ["0.040 [0.035, 0.045]", "0.030 [—]", "0.350 [0.330, 0.370]"]
    assert out.bins.tolist() == ["15", "—", "—"]
    note = out.attrs["note"]
    assert note.count("percentile bootstrap") == 1
    assert "—: no interval for smooth ECE (no bins; not bootstrapped)" in note
    assert not any("bootstrap" in c for c in out.to_numpy().ravel())
    swept = _report().assign(n_bins=[15, 9, None, 15, 12, None])
    assert studies.estimator_table(swept).bins.tolist() == ["15", "9, 12", "—"]


def test_estimator_table_names_missing_columns():
    with pytest.raises(ValueError, match="`report` must have the columns of a calibration report; "
                                         ".*missing \\['interval'\\]"):
        studies.estimator_table(_report().drop(columns="interval"))


# ----- where the miscalibration lives -------------------------------------------------------------
def test_gap_table_by_hand():
    from labviz.studies.calibration_depth import _gap_table

    # region 0: d = 0.2, 0.4 (over-confident); region 1: d = -0.1, -0.1, -0.1, 0.1 (under); overall
    # Σd = 0.6 - 0.2 = 0.4 > 0, so the model is over-confident and region 0 carries 0.6 / 0.4 of it
    d = np.array([0.2, 0.4, -0.1, -0.1, -0.1, 0.1])
    labels = np.array([0, 0, 1, 1, 1, 1])
    y = np.array([1, 1, 0, 0, 2, 2])
    t = _gap_table(d, labels, y, ("a", "b", "c"), 0.95)
    assert t.attrs == {"direction": 1, "gap": pytest.approx(0.4 / 6)}
    assert t["region"].tolist() == [0, 1]
    assert t["classes"].tolist() == ["b", "a and c"]
    assert t["majority"].tolist() == ["b", "a"]
    assert t["majority_share"].tolist() == [1.0, 0.5]
    assert t["size"].tolist() == [2, 4]
    np.testing.assert_allclose(t["sample_share"], [2 / 6, 4 / 6])
    np.testing.assert_allclose(t["gap"], [0.3, -0.05])
    np.testing.assert_allclose(t["mass_share"], [1.5, -0.5])
    # t interval of region 1: sd = 0.1, t(0.975, 3) = 3.182446 -> half width 0.159122
    assert t.loc[1, "gap_low"] == pytest.approx(-0.05 - 3.182446 * 0.1 / 2, abs=1e-6)
    assert t.loc[1, "gap_high"] == pytest.approx(-0.05 + 3.182446 * 0.1 / 2, abs=1e-6)
    # region 0: sd = 0.141421, t(0.975, 1) = 12.7062 -> half width 1.27062: zero inside
    assert t["side"].tolist() == [0, 0]


def test_gap_table_sides_follow_the_models_direction():
    from labviz.studies.calibration_depth import _gap_table

    # an under-confident model (Σd < 0): a tight negative region is on its side (+1), a tight
    # positive one on the other side (-1)
    d = np.array([-0.30, -0.31, -0.29, -0.30, 0.10, 0.11, 0.09, 0.10])
    t = _gap_table(d, np.repeat([0, 1], 4), np.zeros(8, dtype=int), ("a",), 0.95)
    assert t.attrs["direction"] == -1
    assert t.set_index("region")["side"].to_dict() == {0: 1, 1: -1}
    assert t["region"].tolist() == [0, 1]  # the model's-side mass first


def test_region_gaps_finds_the_miscalibrated_cluster():
    # two well-separated clusters of features; the model is right everywhere with confidence
    # exp(3)/(exp(3)+2) = 0.9094 in cluster 0 (under-confident by 0.0906), and wrong in half of
    # cluster 1 with the same confidence (over-confident by 0.4094)
    rng = np.random.default_rng(0)
    n = 200
    feats = np.concatenate([rng.normal([5, 0, 0], 0.1, (n, 3)), rng.normal([0, 5, 0], 0.1, (n, 3))])
    y = np.zeros(2 * n, dtype=int)
    y[n:] = 1
    pred = y.copy()
    pred[n::2] = 2
    logits = np.zeros((2 * n, 3))
    logits[np.arange(2 * n), pred] = 3.0
    p = Predictions.from_arrays(y_true=y, logits=logits, features=feats)
    t = studies.region_gaps(p, n_regions=2, cache=False)
    conf = np.exp(3) / (np.exp(3) + 2)
    assert t.attrs["direction"] == 1
    assert t["classes"].tolist() == ["b", "a"] or t["classes"].tolist() == ["1", "0"]
    np.testing.assert_allclose(t["gap"], [conf - 0.5, conf - 1.0])
    np.testing.assert_allclose(t["mass_share"], [(conf - 0.5) / (2 * conf - 1.5),
                                                 (conf - 1.0) / (2 * conf - 1.5)])
    assert t["side"].tolist() == [1, -1]
    c = studies.concentration(t)
    assert c["worst_mass_share"] == pytest.approx(t.loc[0, "mass_share"])
    assert (c["worst_sample_share"], c["side_share"], c["other_side_share"]) == (0.5, 0.5, 0.5)


def test_region_gaps_and_concentration_name_bad_arguments():
    p = Predictions.from_arrays(y_true=[0, 1, 0], logits=3 * np.eye(2)[[0, 1, 1]],
                                features=np.eye(3))
    with pytest.raises(ValueError, match="`confidence` must be in"):
        studies.region_gaps(p, confidence=1.5, cache=False)
    with pytest.raises(ValueError, match="`worst` must be in"):
        studies.concentration(pd.DataFrame(), worst=0)
    with pytest.raises(ValueError, match="`gaps` must be a non-empty"):
        studies.concentration(pd.DataFrame({"size": []}))


def test_concentration_counts_the_worst_tenth_rounded_up():
    # 11 regions: ceil(1.1) = 2 worst; the other side's mass makes the share exceed 1
    g = pd.DataFrame({"size": 10, "sample_share": 1 / 11,
                      "mass_share": [0.6, 0.5] + [0.0] * 8 + [-0.1], "side": [1, 1] + [0] * 8 + [-1]})
    c = studies.concentration(g)
    assert c["worst_mass_share"] == pytest.approx(1.1)
    assert c["worst_sample_share"] == pytest.approx(2 / 11)
    assert c["other_side_share"] == pytest.approx(1 / 11)


def test_concentration_effects_are_paired_t_intervals():
    summary = pd.DataFrame({"family": ["ce"] * 3 + ["ls0.1"] * 3, "seed": [0, 1, 2] * 2,
                            "worst_mass_share": [0.4, 0.5, 0.6, 0.2, 0.2, 0.3],
                            "worst_sample_share": 0.1, "side_share": 1.0, "other_side_share": 0.0})
    e = studies.concentration_effects(summary).set_index("measure")
    row = e.loc["share of the mass in the worst 10% of regions"]
    # differences 0.2, 0.3, 0.3: mean 0.26667, sd 0.057735, t(0.975, 2) = 4.302653
    assert row["effect"] == pytest.approx(0.8 / 3)
    assert row["high"] - row["effect"] == pytest.approx(4.302653 * 0.057735 / np.sqrt(3), abs=1e-5)
    assert row["n"] == 3 and row["CE"] == "0.5000 ± 0.1000"
    with pytest.raises(ValueError, match="`baseline` must be a family"):
        studies.concentration_effects(summary, baseline="maxsup0.1")


def test_miscalibration_regions_and_where_it_lives(two_family_zoo, monkeypatch, rng):
    _, preds = two_family_zoo
    for key, p in list(preds.items()):  # give every fake model features: one cluster per class
        feats = np.eye(3)[p.y_true] * 5 + rng.normal(0, 0.1, (p.n_samples, 3))
        preds[key] = Predictions.from_arrays(y_true=p.y_true, logits=p.logits, features=feats,
                                             class_names=("a", "b", "c"))
    regions, summary = studies.miscalibration_regions(["ce", "ls0.1"], "fake", cache=False)
    assert summary["n_regions"].tolist() == [2] * 4  # 300 samples -> clip(0, 2, 64) = 2 regions
    assert regions.groupby("name")["worst"].sum().tolist() == [1] * 4
    np.testing.assert_allclose(regions.groupby("name")["mass_share"].sum(), 1.0)
    lives = studies.where_it_lives(regions)
    assert set(lives["family"]) == {"ce", "ls0.1"}
    assert (lives.groupby("family")["seeds"].sum() == 2).all()


def test_binned_scores_equal_the_public_estimators_to_the_bit(problem):
    from labviz.compute.calibration import _check_top_label
    from labviz.studies.calibration_depth import _binned_scores

    y, p = problem
    conf, hit, _ = _check_top_label(y, p)
    idx = np.random.default_rng(1).choice(len(y), size=150, replace=False)
    values, ref, same_side = _binned_scores(conf[idx], hit[idx])
    assert values == [expected_calibration_error(y[idx], p[idx], n_bins=b, strategy=s)
                      for s, b in studies.ECE_BINNINGS]
    assert ref == expected_calibration_error(y[idx], p[idx], n_bins=15)
    assert same_side == studies.same_side_share(y[idx], p[idx])


def test_ece_difference_is_the_difference_of_the_public_estimator(problem, rng):
    y, p = problem
    a = Predictions.from_arrays(y_true=y, probs=p)
    b = Predictions.from_arrays(y_true=y, probs=softmax_rows(np.log(p) / 2))
    diff = studies.ece_difference(a, b)
    for idx in (np.arange(len(y)), rng.integers(0, len(y), size=len(y))):
        assert diff(idx) == (expected_calibration_error(y[idx], a.probs[idx])
                             - expected_calibration_error(y[idx], b.probs[idx]))
    with pytest.raises(ValueError, match="`a` and `b` must hold the same samples"):
        studies.ece_difference(a, Predictions.from_arrays(y_true=y[:10], probs=p[:10]))


def test_mass_by_class_fills_missing_classes_with_zero():
    r = pd.DataFrame({"family": ["ce", "ce", "ce", "ls0.1", "ls0.1"], "seed": [0, 0, 1, 0, 1],
                      "majority": ["Shirt", "Bag", "Shirt", "Bag", "Bag"],
                      "mass_share": [0.6, 0.4, 1.0, 1.0, 1.0], "sample_share": [0.5, 0.5, 1, 1, 1]})
    t = studies.mass_by_class(r).set_index("class")
    # CE: Shirt 0.6 and 1.0 -> 0.8 ± 0.283; Bag 0.4 and 0 (no Bag region on seed 1) -> 0.2 ± 0.283
    assert t.index.tolist() == ["Shirt", "Bag"]
    assert t.loc["Shirt", "CE mass"] == "0.800 ± 0.283" and t.loc["Bag", "CE mass"] == "0.200 ± 0.283"
    assert t.loc["Shirt", "LS α=0.1 mass"] == "0.000 ± 0.000" and t.loc["Bag", "LS α=0.1 samples"] == 1.0
