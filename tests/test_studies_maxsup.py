"""labviz.studies.maxsup and the shared helpers of labviz.studies._common, on a fake zoo."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import patch_studies

from labviz import Predictions, studies, zoo
from labviz.compute.collapse import collapse_metrics, misclassified_confidence


@pytest.fixture
def fake_zoo(monkeypatch, rng):
    """Two families, two seeds each, train and test splits with features."""
    preds, entries = {}, {}
    w = rng.normal(size=(4, 6))
    for family, spread in (("ce", 1.0), ("maxsup0.1", 0.5)):
        for seed in (0, 1):
            name = f"{family}-s{seed}"
            entries[name] = {"seed": seed, "family": family}
            for split in ("train", "test"):
                y = rng.integers(0, 4, size=200)
                feats = w[y] * 2 + spread * rng.normal(size=(200, 6))
                preds[(name, split)] = Predictions.from_arrays(y_true=y, logits=feats @ w.T, features=feats,
                                                               weights=w)
    monkeypatch.setattr(zoo, "predictions", lambda name, split="test", with_images=True: preds[(name, split)])
    patch_studies(monkeypatch, "members", lambda family, dataset="fake": sorted(
        n for n, e in entries.items() if e["family"] == family))
    monkeypatch.setattr(zoo, "entry", lambda name: entries[name])
    return preds


def test_collapse_family_table_is_collapse_metrics_per_checkpoint_and_split(fake_zoo):
    t = studies.collapse_family_table(["ce", "maxsup0.1"], dataset="fake")
    assert len(t) == 8 and set(t.split) == {"train", "test"}
    row = t[(t.name == "ce-s1") & (t.split == "test")].iloc[0]
    m = collapse_metrics(fake_zoo[("ce-s1", "test")])
    assert (row.intra, row.inter, row.nc1) == pytest.approx((m.intra, m.inter, m.nc1))


def test_maxsup_layout_gives_mean_and_sd_per_method_and_split(fake_zoo):
    t = studies.collapse_family_table(["ce", "maxsup0.1"], dataset="fake")
    layout = studies.maxsup_layout(t).set_index("method")
    assert list(layout.index) == ["CE", "MaxSup α=0.1"]
    part = t[(t.family == "ce") & (t.split == "train")]
    assert layout.at["CE", "intra (train)"] == studies.mean_sd(part.intra)


def test_misclassified_confidence_table_summarises_the_errors(fake_zoo):
    t = studies.misclassified_confidence_table(["ce"], dataset="fake").set_index("name")
    conf = misclassified_confidence(fake_zoo[("ce-s0", "test")])
    assert t.at["ce-s0", "n_errors"] == len(conf)
    assert t.at["ce-s0", "mean_confidence"] == pytest.approx(conf.mean())
    assert t.at["ce-s0", "share_above_0.9"] == pytest.approx((conf > 0.9).mean())


def test_summarize_and_by_seed():
    t = pd.DataFrame({"family": ["a", "a", "b"], "split": ["x", "x", "x"], "seed": [0, 1, 0],
                      "v": [1.0, 3.0, 5.0]})
    s = studies.summarize(t, ["family", "split"], ["v"], digits=1)
    assert s.to_dict("records") == [{"family": "a", "split": "x", "n": 2, "v": "2.0 ± 1.4"},
                                    {"family": "b", "split": "x", "n": 1, "v": "5.0"}]
    assert studies.by_seed(t, "v", family="a") == {0: 1.0, 1: 3.0}
    with pytest.raises(ValueError, match="`where` must pick one row per seed; got seeds \\[0, 1, 0\\]"):
        studies.by_seed(t, "v", split="x")
