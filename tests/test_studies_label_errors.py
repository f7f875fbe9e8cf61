"""labviz.studies.label_errors: confident learning on the real test set (notebook 05)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import softmax_rows

from labviz import Predictions, studies


def test_mean_probs_predictions_averages_probabilities(rng):
    pa = softmax_rows(rng.normal(size=(6, 3)))
    pb = softmax_rows(rng.normal(size=(6, 3)))
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
