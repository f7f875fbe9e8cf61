"""labviz.studies.noisy_labels: early learning and the beta mixture (notebook 04)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from labviz import Predictions, studies
from labviz.compute.label_quality import per_sample_loss


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


def test_rank_auc_matches_sklearn_with_ties(rng):
    positive = rng.random(300) < 0.3
    score = np.round(rng.random(300) + positive * 0.3, 1)  # rounded: many ties
    assert studies.rank_auc(positive, score) == pytest.approx(roc_auc_score(positive, score))
    with pytest.raises(ValueError, match="`positive` must hold both classes; got 0 positive and 3 negative"):
        studies.rank_auc(np.zeros(3, bool), np.arange(3.0))


def test_noisy_posterior_is_the_tables_posterior(rng):
    p = _noisy_snapshot(rng, memorised=0.2)
    table = studies.beta_mixture_table({1: p})
    posterior = studies.noisy_posterior(p)
    assert posterior.shape == (p.n_samples,)
    assert studies.rank_auc(p.flipped, posterior) == pytest.approx(table.auc_posterior.iloc[0])
