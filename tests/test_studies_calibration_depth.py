"""labviz.studies.calibration_depth.binning_by_size on a fake zoo."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import patch_studies

from labviz import Predictions, studies, zoo
from labviz.calibration import expected_calibration_error, fit_temperature
from labviz.predictions import softmax


@pytest.fixture
def fake_zoo(monkeypatch, rng):
    preds = {}
    for s in (0, 1):
        for split in ("val", "test"):
            y = rng.integers(0, 3, size=500)
            z = rng.normal(size=(500, 3))
            z[np.arange(500), y] += 1.5
            preds[(f"ce-s{s}", split)] = Predictions.from_arrays(y_true=y, logits=3 * z)
    patch_studies(monkeypatch, "Predictions", type("P", (), {"from_zoo": staticmethod(
        lambda name, split="test", with_images=True: preds[(name, split)])}))
    patch_studies(monkeypatch, "members", lambda family, dataset="fake": ["ce-s0", "ce-s1"])
    monkeypatch.setattr(zoo, "entry", lambda name: {"seed": int(name[-1])})
    return preds


def test_binning_by_size_scores_the_same_subsets_for_every_model(fake_zoo):
    t = studies.binning_by_size(["ce"], "fake", sizes=(50, 500), n_draws=3)
    assert set(t.family) == {"ce", "ce+ts"}
    counts = t.groupby(["family", "name", "size"]).size()
    assert (counts.xs(50, level="size") == 3).all() and (counts.xs(500, level="size") == 1).all()
    full = t[(t["size"] == 500) & (t.family == "ce") & (t.name == "ce-s0")].iloc[0]
    p = fake_zoo[("ce-s0", "test")]
    values = [expected_calibration_error(p.y_true, p.probs, n_bins=b, strategy=s) for s, b in studies.ECE_BINNINGS]
    assert full.ece == pytest.approx(expected_calibration_error(p.y_true, p.probs, n_bins=15))
    assert full.range == pytest.approx(max(values) - min(values))
    assert full.relative_range == pytest.approx(full.range / full.ece)
    val = fake_zoo[("ce-s0", "val")]
    scaled = softmax(p.logits / fit_temperature(val.logits, val.y_true))
    ts = t[(t["size"] == 500) & (t.family == "ce+ts") & (t.name == "ce-s0")].iloc[0]
    assert ts.ece == pytest.approx(expected_calibration_error(p.y_true, scaled, n_bins=15))
    assert ts.ece < full.ece  # temperature scaling an over-sharp model calibrates it
    # seeded: a second call draws the same subsets
    again = studies.binning_by_size(["ce"], "fake", sizes=(50, 500), n_draws=3)
    np.testing.assert_array_equal(again.relative_range, t.relative_range)


def test_binning_by_size_refuses_bad_sizes(fake_zoo):
    with pytest.raises(ValueError, match="`sizes` must not exceed the 500 test images; got 600"):
        studies.binning_by_size(["ce"], "fake", sizes=(600,))
    with pytest.raises(ValueError, match="`sizes` must be integers of at least 2; got \\[1\\]"):
        studies.binning_by_size(["ce"], "fake", sizes=(1,))
