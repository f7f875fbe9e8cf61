"""Tests of the studies functions added for notebooks 01 and 02 (helper B)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import patch_studies

from labviz import studies, zoo
from labviz.predictions import Predictions
from labviz.studies import FASHION

# Two checkpoints of one family on three test samples, with hand-worked confidences.
# "a": probabilities (0.8, 0.2), (0.6, 0.4), (0.3, 0.7) on labels 0, 0, 0 -> 2/3 correct,
#      mean confidence (0.8 + 0.6 + 0.7) / 3 = 0.7, gap 0.7 - 2/3 = 1/30 (over-confident).
# "b": probabilities (0.55, 0.45) x 3 on labels 0, 0, 0 -> all correct, mean confidence 0.55,
#      gap -0.45 (under-confident).
PROBS = {
    "fam-a-s0": [[0.8, 0.2], [0.6, 0.4], [0.3, 0.7]],
    "fam-b-s1": [[0.55, 0.45]] * 3,
}
SEEDS = {"fam-a-s0": 0, "fam-b-s1": 1}


@pytest.fixture
def fake_zoo(monkeypatch):
    def from_zoo(name, split="test", *, with_images=True):
        logits = np.log(np.asarray(PROBS[name]))
        return Predictions.from_arrays(y_true=[0, 0, 0], logits=logits, name=f"{name} [{split}]")

    patch_studies(monkeypatch, "members", lambda family, dataset=FASHION: list(PROBS))
    monkeypatch.setattr(Predictions, "from_zoo", staticmethod(from_zoo))
    monkeypatch.setattr(zoo, "entry", lambda name: {"seed": SEEDS[name]})


def test_confidence_gap_table_hand_worked(fake_zoo):
    table = studies.confidence_gap_table(["fam"])
    assert list(table.columns) == ["family", "name", "seed", "accuracy", "mean_confidence", "gap"]
    assert table.name.tolist() == ["fam-a-s0", "fam-b-s1"]
    assert table.seed.tolist() == [0, 1]
    np.testing.assert_allclose(table.accuracy, [2 / 3, 1.0])  # logits are float32: atol 1e-6
    np.testing.assert_allclose(table.mean_confidence, [0.7, 0.55], atol=1e-6)
    np.testing.assert_allclose(table.gap, [0.7 - 2 / 3, -0.45], atol=1e-6)


def test_confidence_gap_table_one_row_per_checkpoint_per_family(fake_zoo):
    table = studies.confidence_gap_table(["x", "y"])
    assert table.family.tolist() == ["x", "x", "y", "y"]


def test_confidence_gap_table_unknown_family_is_refused():
    with pytest.raises(ValueError, match="`family` must name a zoo family"):
        studies.confidence_gap_table(["no-such-family"])
