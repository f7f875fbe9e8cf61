"""labviz.studies.non_uniformity: accuracy by non-uniformity decile (notebook 07)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labviz import studies
from labviz.compute.label_quality import non_uniformity


def test_non_uniformity_deciles_and_trend(two_family_zoo):
    d = studies.non_uniformity_deciles(["ce", "ls0.1"], dataset="fake", n_bins=5)
    assert d.groupby("name").size().tolist() == [5] * 4
    _, preds = two_family_zoo
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


def test_score_agreement(two_family_zoo):
    t = studies.score_agreement(["ce"], dataset="fake")
    assert t["name"].tolist() == ["fake-ce-s0", "fake-ce-s1"]
    assert (t["spearman"] > 0.5).all()  # both scores grow as the softmax sharpens
