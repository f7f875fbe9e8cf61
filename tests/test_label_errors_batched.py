"""find_label_errors_batched and per_sample_loss_batched: probabilities a row chunk at a time."""

import numpy as np
import pytest
from cleanlab.experimental.label_issues_batched import find_label_issues_batched
from cleanlab.filter import find_label_issues

from labviz.compute import label_quality as lq
from labviz.core.predictions import Predictions


def _noisy(n: int, c: int, seed: int = 0) -> Predictions:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c)).astype(np.float32)
    logits[np.arange(n), y] += 2.5
    given = np.where(rng.random(n) < 0.1, rng.integers(0, c, n), y)
    return Predictions.from_arrays(y_true=y, y_given=given, logits=logits)


def _chunks(p: np.ndarray, step: int) -> lq.ChunkSource:
    return lambda: ((slice(s, min(s + step, len(p))), p[s:s + step]) for s in range(0, len(p), step))


def test_batched_flags_what_cleanlab_flags():
    pred = _noisy(3000, 10)
    probs = pred.probs.astype(np.float32)
    errors = lq.find_label_errors_batched(pred.y_given, _chunks(probs, 777), ids=pred.ids)
    whole = find_label_issues(pred.y_given, probs, filter_by="low_self_confidence",
                              return_indices_ranked_by="self_confidence")
    batched = find_label_issues_batched(pred.y_given, probs, batch_size=777)
    assert len(errors) > 100
    # the same flagged samples in the same order as cleanlab's whole-matrix ranking here
    np.testing.assert_array_equal(errors["index"].to_numpy(), whole)
    np.testing.assert_array_equal(np.sort(errors["index"].to_numpy()), batched)
    idx = errors["index"].to_numpy()
    np.testing.assert_array_equal(errors["predicted"], probs[idx].argmax(axis=1))
    np.testing.assert_allclose(errors["self_confidence"], probs[idx, pred.y_given[idx]])
    assert (errors["given"].to_numpy() != errors["predicted"].to_numpy()).all()


def test_batched_matches_cleanlab_batched_across_chunkings():
    pred = _noisy(4000, 40, seed=1)
    probs = pred.probs.astype(np.float32)
    mine = lq.find_label_errors_batched(pred.y_given, pred.prob_chunks)
    theirs = find_label_issues_batched(pred.y_given, probs, batch_size=1000)
    np.testing.assert_array_equal(np.sort(mine["index"].to_numpy()), theirs)


def test_per_sample_loss_batched_equals_whole():
    pred = _noisy(500, 7, seed=2)
    np.testing.assert_array_equal(lq.per_sample_loss_batched(pred.y_given, _chunks(pred.probs, 64)),
                                  lq.per_sample_loss(pred.y_given, pred.probs))


def test_chunks_must_cover_the_samples():
    pred = _noisy(300, 5)
    short = lambda: iter([(slice(0, 100), pred.probs[:100])])  # noqa: E731
    with pytest.raises(ValueError, match="cover all 300"):
        lq.per_sample_loss_batched(pred.y_given, short)
    gap = lambda: iter([(slice(10, 300), pred.probs[10:])])  # noqa: E731
    with pytest.raises(ValueError, match="consecutive row slices from 0"):
        lq.find_label_errors_batched(pred.y_given, gap)
    with pytest.raises(TypeError, match="callable"):
        lq.find_label_errors_batched(pred.y_given, pred.probs)
    with pytest.raises(ValueError, match="every class"):
        lq.find_label_errors_batched(np.zeros(300, dtype=int), pred.prob_chunks)


def test_report_section_streams_above_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    from labviz.figures import html_report

    pred = _noisy(2000, 10, seed=3)
    monkeypatch.setattr(html_report, "BATCHED_LABEL_ERRORS", 1)
    monkeypatch.setattr(Predictions, "probs", property(lambda self: pytest.fail("whole probs")))
    html = html_report._label_errors(pred).body
    assert "mini-batch" in html
    flagged = len(lq.find_label_errors_batched(pred.y_given, pred.prob_chunks))
    assert f"flags {flagged:,} of 2,000" in html
