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


def test_neighbour_overlap_counts_the_candidates_the_ranking_flags():
    # top 3 by disagreement: samples 0, 1, 2; of the candidates {0, 3, 5} only 0 is among them
    d = np.array([1.0, 0.9, 0.8, 0.1, 0.0, 0.05, 0.0, 0.0, 0.0, 0.0])
    c = np.zeros(10, dtype=bool)
    c[[0, 3, 5]] = True
    o = studies.neighbour_overlap(d, c, n_boot=200)
    assert (o["n_samples"], o["n_candidates"]) == (10, 3)
    assert o["share"] == pytest.approx(1 / 3)
    assert o["chance"] == pytest.approx(0.3)
    assert o["lift"] == pytest.approx(10 / 9)
    assert o["share_low"] <= o["share"] <= o["share_high"]
    assert o["lift_low"] <= o["lift"] <= o["lift_high"]


def test_neighbour_overlap_shares_the_places_at_a_tie():
    # two places: sample 0 takes one, samples 1, 2, 3 tie for the other (1/3 each)
    d = np.array([1.0, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0])
    c = np.array([True, True, False, False, False, False, False, False])
    o = studies.neighbour_overlap(d, c, n_boot=50)
    assert o["share"] == pytest.approx((1 + 1 / 3) / 2)
    assert o["chance"] == pytest.approx(0.25)
    assert o["lift"] == pytest.approx(8 / 3)
    # the sample order does not matter: reversed, the same numbers
    assert studies.neighbour_overlap(d[::-1], c[::-1], n_boot=50)["share"] == pytest.approx(o["share"])


def test_neighbour_overlap_interval_is_seeded_and_exact_for_a_perfect_ranking(rng):
    d = rng.random(400)
    c = d > 0.9  # the ranking flags exactly the candidates
    o = studies.neighbour_overlap(d, c, n_boot=300, seed=3)
    assert o["share"] == o["share_low"] == o["share_high"] == 1.0
    assert o["lift"] == pytest.approx(400 / c.sum())
    assert o == studies.neighbour_overlap(d, c, n_boot=300, seed=3)
    # a ranking blind to the candidates: the share is near chance, the interval wide around it
    blind = studies.neighbour_overlap(rng.random(400), c, n_boot=300)
    assert blind["share_low"] < blind["chance"] < blind["share_high"]
    assert blind["lift_low"] < 1 < blind["lift_high"]


def test_neighbour_overlap_refuses_bad_input():
    d = np.array([0.1, 0.2, 0.3])
    with pytest.raises(TypeError, match="`candidates` must be a boolean mask"):
        studies.neighbour_overlap(d, [1, 0, 0])
    with pytest.raises(ValueError, match="at least one sample and not all 3; got 3"):
        studies.neighbour_overlap(d, [True, True, True])
    with pytest.raises(ValueError, match="at least one sample and not all 3; got 0"):
        studies.neighbour_overlap(d, [False, False, False])
    with pytest.raises(ValueError, match="same number of samples"):
        studies.neighbour_overlap(d, [True, False])
    with pytest.raises(ValueError, match="`disagreement` must be finite"):
        studies.neighbour_overlap([0.1, np.nan, 0.3], [True, False, False])
    with pytest.raises(ValueError, match=r"`confidence` must be in \(0, 1\); got 1.5"):
        studies.neighbour_overlap(d, [True, False, False], confidence=1.5)


def test_top_disagreement_names_what_the_neighbours_say():
    d = np.array([0.2, 1.0, 0.8, 1.0, 0.0])
    y = np.array([0, 1, 2, 0, 1])
    labels = np.array([[0, 0, 1], [2, 2, 0], [1, 0, 2], [1, 2, 2], [1, 1, 1]])
    t = studies.top_disagreement(d, y, labels, n=3)
    assert t["index"].tolist() == [1, 3, 2]  # the tie at 1.0 in sample order
    assert t.given.tolist() == [1, 0, 2]
    assert t.predicted.tolist() == [2, 2, 0]  # sample 2's neighbours tie 1:1:1, the lowest class
    assert t.disagreement.tolist() == [1.0, 1.0, 0.8]
    left = studies.top_disagreement(d, y, labels, exclude=np.array([0, 1, 0, 0, 0], bool), n=2)
    assert left["index"].tolist() == [3, 2]
    with pytest.raises(TypeError, match="`exclude` must be a boolean mask"):
        studies.top_disagreement(d, y, labels, exclude=[0, 1, 0, 0, 0])
    with pytest.raises(TypeError, match="`neighbour_labels` of shape"):
        studies.top_disagreement(d, y, labels[:, 0])
