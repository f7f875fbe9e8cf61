"""Probabilities passed as ``logits`` (``predict_proba``'s output) are kept as given, with a warning
naming ``probs=``: labviz never converts what it was given."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from labviz.compute.calibration import fit_temperature
from labviz.core import _validation as v
from labviz.core.predictions import Predictions

WARNING = r"`logits` look like probabilities.*\[0\.1, 0\.23\] for 10 classes.*`probs=`"


@pytest.fixture
def predict_proba():
    """A fitted scikit-learn classifier's ``predict_proba`` on digits-like data: (labels, probs)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    y = np.arange(60) % 10
    x = rng.normal(size=(60, 8)) + y[:, None]
    model = LogisticRegression(max_iter=2000).fit(x, y)
    return y, model.predict_proba(x)


def test_predict_proba_passed_as_logits_warns_and_is_kept_as_given(predict_proba):
    y, p = predict_proba
    with pytest.warns(UserWarning, match=WARNING):
        pred = Predictions.from_arrays(y_true=y, logits=p)
    np.testing.assert_array_equal(pred.logits, p.astype(np.float32))  # not converted
    assert pred.confidence.max() < 0.24


def test_real_logits_and_probs_do_not_warn(predict_proba):
    y, p = predict_proba
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Predictions.from_arrays(y_true=y, probs=p)
        Predictions.from_arrays(y_true=y, logits=np.log(p))
        # non-negative logits whose rows do not all sum to 1 (a ReLU head, one-hot scores x 2)
        Predictions.from_arrays(y_true=y, logits=2 * np.eye(10)[y])


def test_the_warning_points_at_the_users_line_through_from_path(tmp_path, predict_proba):
    y, p = predict_proba
    np.save(tmp_path / "y_true.npy", y)
    np.save(tmp_path / "logits.npy", p.astype(np.float32))
    with pytest.warns(UserWarning, match=WARNING) as record:
        pred = Predictions.from_path(tmp_path)
    assert record[0].filename == __file__
    assert isinstance(pred.logits, np.memmap)  # checked in place, not copied


def test_every_chunk_is_read_and_one_row_off_clears_it(monkeypatch):
    monkeypatch.setattr(v, "CHUNK_ENTRIES", 8)  # 4 rows of 2 classes per chunk
    p = np.tile(np.float32([[0.25, 0.75]]), (40, 1))
    assert v.looks_like_probabilities(p)
    for bad in ([0.5, 0.6], [1.5, -0.5]):
        q = p.copy()
        q[-1] = bad
        assert not v.looks_like_probabilities(q)


def test_float16_probabilities_are_recognised_within_their_rounding():
    p16 = np.full((5, 3), 1 / 3, dtype=np.float16)  # rows sum to 0.99976
    assert abs(p16.astype(np.float64).sum(axis=1) - 1).max() > v.PROB_SUM_ATOL
    with pytest.warns(UserWarning, match="`probs=`"):
        Predictions.from_arrays(y_true=[0, 1, 2, 0, 1], logits=p16)


def test_functions_taking_logits_warn_naming_the_log(predict_proba):
    y, p = predict_proba
    with pytest.warns(UserWarning, match=r"`logits` look like probabilities.*pass `np\.log\(probs\)` "
                                         r"as `logits` \(softmax gives them back\)\.$"):
        fit_temperature(p, y)
