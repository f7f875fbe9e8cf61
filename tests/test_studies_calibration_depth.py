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
