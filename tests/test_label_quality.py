"""Tests of labviz.compute.label_quality and labviz.figures.label_quality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from scipy import stats
from sklearn.metrics import log_loss, roc_auc_score

from labviz import Predictions
from labviz.compute import label_quality as lq
from labviz.figures import label_quality as fl
from labviz.figures.style import series_color


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture
def noisy_problem(rng):
    """An easy 3-class problem with 15 planted flips and out-of-sample-like probabilities.

    Probabilities come from the true class (as a held-out model would give), so a flipped given
    label gets a low self-confidence.
    """
    n, c = 300, 3
    y_true = np.arange(n) % c
    logits = 4.0 * np.eye(c)[y_true] + rng.normal(size=(n, c))
    y_given = y_true.copy()
    flip = rng.choice(n, size=15, replace=False)
    y_given[flip] = (y_true[flip] + 1 + rng.integers(0, 2, size=15)) % c
    return y_true, y_given, _softmax(logits), flip


# ----- per-sample loss and non-uniformity ---------------------------------------------------------
def test_per_sample_loss_by_hand_and_against_sklearn(rng):
    np.testing.assert_allclose(lq.per_sample_loss([1, 0], [[0.25, 0.75], [0.5, 0.5]]),
                               [-np.log(0.75), np.log(2)])
    probs = _softmax(rng.normal(size=(30, 4)))
    y = rng.integers(0, 4, size=30)
    assert lq.per_sample_loss(y, probs).mean() == pytest.approx(log_loss(y, probs, labels=range(4)))


def test_per_sample_loss_rejects_labels_beyond_the_columns():
    with pytest.raises(ValueError, match=r"`y` must hold labels in \[0, 1\]; got values in \[0, 2\]"):
        lq.per_sample_loss([0, 2], [[0.5, 0.5], [0.5, 0.5]])


def test_non_uniformity_is_zero_for_uniform_and_one_for_one_hot():
    c = 10
    out = lq.non_uniformity(np.vstack([np.full(c, 1 / c), np.eye(c)[3]]))
    np.testing.assert_allclose(out, [0.0, 1.0], atol=1e-12)


def test_non_uniformity_is_normalised_sorted_w1_and_permutation_invariant(rng):
    c = 5
    probs = _softmax(2 * rng.normal(size=(25, c)))
    support = np.arange(c)
    expected = [stats.wasserstein_distance(support, support, np.sort(p)[::-1], np.full(c, 1 / c))
                / ((c - 1) / 2) for p in probs]
    got = lq.non_uniformity(probs)
    np.testing.assert_allclose(got, expected, atol=1e-12)
    np.testing.assert_allclose(lq.non_uniformity(probs[:, rng.permutation(c)]), got, atol=1e-12)
    assert ((got > 0) & (got < 1)).all()


def test_non_uniformity_rejects_logits():
    with pytest.raises(ValueError, match="`probs` must hold probabilities in"):
        lq.non_uniformity([[2.0, -1.0]])


# ----- beta mixture -------------------------------------------------------------------------------
def test_beta_mixture_separates_planted_components(rng):
    clean = rng.beta(2, 8, size=700)
    noisy = rng.beta(8, 2, size=300)
    losses = 3.0 * np.concatenate([clean, noisy]) + 0.1
    is_noisy = np.r_[np.zeros(700), np.ones(300)]
    mix = lq.fit_beta_mixture(losses)
    assert mix.means[1] > mix.means[0]
    assert mix.weights.sum() == pytest.approx(1) and mix.weights[1] == pytest.approx(0.3, abs=0.05)
    posterior = mix.posterior_noisy(losses)
    assert ((posterior >= 0) & (posterior <= 1)).all()
    assert roc_auc_score(is_noisy, posterior) > 0.9
    # The component densities on the loss scale integrate to the mixing weights.
    grid = np.linspace(losses.min(), losses.max(), 4001)
    np.testing.assert_allclose(np.trapezoid(mix.pdf(grid), grid, axis=0), mix.weights, atol=0.02)


def test_beta_mixture_on_real_losses_flags_flipped_labels(noisy_problem):
    _, y_given, probs, flip = noisy_problem
    losses = lq.per_sample_loss(y_given, probs)
    posterior = lq.fit_beta_mixture(losses).posterior_noisy(losses)
    assert roc_auc_score(np.isin(np.arange(len(losses)), flip), posterior) > 0.9


def test_fit_beta_mixture_rejects_constant_losses():
    with pytest.raises(ValueError, match=r"`losses` must not all be equal \(between the percentiles\)"):
        lq.fit_beta_mixture([0.5, 0.5])


def test_beta_mixture_percentiles_resist_a_heavy_tail(rng):
    clean, noisy = rng.beta(2, 8, size=700), rng.beta(8, 2, size=300)
    losses = np.concatenate([clean, noisy, [40.0, 60.0, 80.0]])  # a few huge losses
    is_noisy = np.r_[np.zeros(700), np.ones(303)]
    trimmed = lq.fit_beta_mixture(losses, percentiles=(0, 99))
    assert trimmed.loss_max == pytest.approx(np.percentile(losses, 99))
    assert trimmed.weights[1] == pytest.approx(0.3, abs=0.05)
    assert roc_auc_score(is_noisy, trimmed.posterior_noisy(losses)) > 0.9
    # Plain min-max squeezes every real loss into the bottom 1.5% of the scale.
    assert lq.fit_beta_mixture(losses).normalize(losses)[:1000].max() < 0.015


@pytest.mark.parametrize("percentiles, exc, match", [
    ("ab", TypeError, "`percentiles` must be a pair of numbers; got 'ab'"),
    ((50, 10), ValueError, r"`percentiles` must satisfy 0 <= low < high <= 100; got \(50, 10\)"),
])
def test_fit_beta_mixture_rejects_bad_percentiles(percentiles, exc, match):
    with pytest.raises(exc, match=match):
        lq.fit_beta_mixture([0.1, 0.5, 0.9], percentiles=percentiles)


def test_fit_beta_mixture_rejects_zero_iterations():
    with pytest.raises(ValueError, match="`n_iter` must be >= 1; got 0"):
        lq.fit_beta_mixture([0.1, 0.5], n_iter=0)


# ----- cleanlab label errors ----------------------------------------------------------------------
def test_find_label_errors_recovers_planted_flips(noisy_problem):
    y_true, y_given, probs, flip = noisy_problem
    errors = lq.find_label_errors(y_given, probs, ids=np.arange(len(y_given)) + 1000)
    assert list(errors.columns) == ["rank", "index", "id", "given", "predicted", "self_confidence"]
    found = set(errors["index"])
    assert len(found & set(flip)) >= 13 and len(found - set(flip)) <= 5
    assert errors["rank"].tolist() == list(range(1, len(errors) + 1))
    assert errors["self_confidence"].is_monotonic_increasing
    np.testing.assert_array_equal(errors["id"], errors["index"] + 1000)
    np.testing.assert_array_equal(errors["given"], y_given[errors["index"]])
    np.testing.assert_allclose(errors["self_confidence"],
                               probs[errors["index"], y_given[errors["index"]]])


def test_find_label_errors_rejects_bad_inputs(noisy_problem):
    _, y_given, probs, _ = noisy_problem
    with pytest.raises(ValueError, match=r"`filter_by` must be one of \['prune_by_noise_rate'"):
        lq.find_label_errors(y_given, probs, filter_by="magic")
    with pytest.raises(TypeError, match="`ids` must be a 1-D array of integer sample ids"):
        lq.find_label_errors(y_given, probs, ids=np.zeros(len(y_given)))
    with pytest.raises(ValueError, match=r"`y_given` must contain every class .*classes \[2\]"):
        lq.find_label_errors([0, 1, 0, 1], np.full((4, 3), 1 / 3))


def test_label_error_pairs_counts_by_pair():
    errors = pd.DataFrame({"given": [2, 1, 1, 2, 1], "predicted": [0, 0, 0, 0, 2]})
    assert lq.label_error_pairs(errors).values.tolist() == [[1, 0, 2], [2, 0, 2], [1, 2, 1]]
    with pytest.raises(TypeError, match="`errors` must be a pandas DataFrame; got list"):
        lq.label_error_pairs([])
    with pytest.raises(ValueError, match=r"`errors` must have columns \['given', 'predicted'\]"):
        lq.label_error_pairs(pd.DataFrame({"given": [1]}))


# ----- accuracy by decile -------------------------------------------------------------------------
def test_accuracy_by_decile_has_equal_count_bins_in_score_order(rng):
    score = rng.permutation(25) / 25
    correct = score >= 0.5
    table = lq.accuracy_by_decile(score, correct)
    assert table["bin"].tolist() == list(range(1, 11))
    assert table["n"].tolist() == [3, 2, 3, 2, 3, 2, 3, 2, 3, 2]  # floor(i * 10 / 25)
    assert (table["score_max"].to_numpy()[:-1] < table["score_min"].to_numpy()[1:]).all()
    assert table["accuracy"].tolist()[:4] == [0, 0, 0, 0] and table["accuracy"].tolist()[-4:] == [1, 1, 1, 1]
    assert (table["accuracy"] * table["n"]).sum() == correct.sum()


@pytest.mark.parametrize("score, correct, kwargs, exc, match", [
    ([0.1, 0.2], [[True, False]], {}, ValueError, r"`correct` must have shape \(n_samples,\); got \(1, 2\)"),
    ([0.1, 0.2], [0.5, 1.0], {}, TypeError, "`correct` must hold booleans"),
    ([0.1, 0.2], [True, False], {}, ValueError,
     r"`n_bins` must be at most the number of samples \(2\); got 10"),
    ([0.1, 0.2], [True], {"n_bins": 1}, ValueError, "Arguments must have the same number of samples"),
])
def test_accuracy_by_decile_rejects_bad_inputs(score, correct, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        lq.accuracy_by_decile(score, correct, **kwargs)


# ----- figures ------------------------------------------------------------------------------------
def _predictions(noisy_problem, rng, with_images=True):
    y_true, y_given, probs, _ = noisy_problem
    images = rng.uniform(size=(len(y_true), 6, 6)) if with_images else None
    return Predictions.from_arrays(y_true=y_true, y_given=y_given, probs=probs, images=images,
                                   class_names=["ant", "bee", "cat"], name="m")


def test_loss_histogram_figure_splits_clean_and_flipped_with_mixture(noisy_problem, rng):
    p = _predictions(noisy_problem, rng)
    display = fl.LossHistogramDisplay.from_predictions(p)
    fig = display.plot(n_bins=20)
    hists = [t for t in fig.data if isinstance(t, go.Histogram)]
    assert [t.name for t in hists] == [f"clean label (n={(~p.flipped).sum()})",
                                       f"flipped label (n={p.flipped.sum()})"]
    np.testing.assert_allclose(hists[1].x, display.losses[p.flipped])
    lines = {t.name: t for t in fig.data if isinstance(t, go.Scatter)}
    assert set(lines) == {"clean component", "noisy component", "mixture"}
    width = (display.losses.max() - display.losses.min()) / 20
    np.testing.assert_allclose(lines["mixture"].y,
                               display.mixture.pdf(lines["mixture"].x).sum(axis=1) * p.n_samples * width)
    assert hists[0].marker.color == series_color(0) and fig.layout.barmode == "overlay"
    tallest = np.histogram(display.losses[~p.flipped], bins=np.linspace(
        display.losses.min(), display.losses.max(), 21))[0].max()
    assert fig.layout.yaxis.range == (0, pytest.approx(1.15 * tallest))


def test_loss_histogram_figure_without_labels_or_mixture(rng):
    fig = fl.loss_histogram_figure(rng.exponential(size=50))
    assert len(fig.data) == 1 and fig.data[0].name == "all (n=50)"


def test_loss_histogram_figure_rejects_bad_inputs():
    with pytest.raises(TypeError, match="`flipped` must hold booleans"):
        fl.loss_histogram_figure([0.1, 0.2], [0, 1])
    with pytest.raises(TypeError, match="`mixture` must be a labviz.compute.label_quality.BetaMixture; got dict"):
        fl.loss_histogram_figure([0.1, 0.2], mixture={})
    with pytest.raises(TypeError, match="`predictions` must be a labviz.Predictions; got list"):
        fl.LossHistogramDisplay.from_predictions([0.1])


def test_non_uniformity_by_decile_figure(noisy_problem, rng):
    p = _predictions(noisy_problem, rng)
    fig = fl.NonUniformityDisplay.from_predictions([p]).plot()
    expected = lq.accuracy_by_decile(lq.non_uniformity(p.probs), p.correct)
    assert len(fig.data) == 1 and list(fig.data[0].x) == list(range(1, 11))
    np.testing.assert_allclose(fig.data[0].y, expected["accuracy"])
    two = fl.non_uniformity_by_decile_figure({"a": expected, "b": expected})
    assert [t.marker.color for t in two.data] == [series_color(0), series_color(1)]


def test_non_uniformity_by_decile_figure_rejects_bad_tables():
    with pytest.raises(TypeError, match="`table` must be a pandas DataFrame; got list"):
        fl.non_uniformity_by_decile_figure([1])
    with pytest.raises(ValueError, match=r"`table` must have columns \['bin'"):
        fl.non_uniformity_by_decile_figure(pd.DataFrame({"bin": [1]}))
    with pytest.raises(ValueError, match="`table` must not be empty; got 0 tables"):
        fl.non_uniformity_by_decile_figure({})


def test_label_error_gallery_shows_top_errors_with_captions(noisy_problem, rng):
    p = _predictions(noisy_problem, rng)
    display = fl.LabelErrorDisplay.from_predictions(p)
    fig = display.plot(max_images=4, n_cols=2)
    assert isinstance(fig.data[0], go.Image)
    top = display.errors.head(4)
    names = np.array(p.class_names)
    assert [a.text for a in fig.layout.annotations] == [
        f"{names[g]} → {names[q]}" for g, q in zip(top["given"], top["predicted"], strict=True)]
    # 2 x 2 tiles of 6 px, 2 px apart; each row leaves 6 // 2 px under its tiles for the captions.
    assert fig.data[0].z.shape[:2] == (2 + 2 * (6 + 3), 2 + 2 * 8)


def test_label_error_gallery_with_nothing_flagged_says_so(rng):
    errors = pd.DataFrame({"index": [], "given": [], "predicted": []})
    fig = fl.label_error_gallery_figure(rng.uniform(size=(3, 4, 4)), errors)
    assert fig.layout.annotations[0].text == "No label errors flagged."


@pytest.mark.parametrize("images, errors, exc, match", [
    (np.zeros((3, 4, 4)), [1], TypeError, "`errors` must be a pandas DataFrame; got list"),
    (np.zeros((3, 4, 4)), pd.DataFrame({"index": [0]}), ValueError,
     r"`errors` must have columns \['index', 'given', 'predicted'\]"),
    (np.zeros((3, 4)), pd.DataFrame({"index": [0], "given": [0], "predicted": [1]}), ValueError,
     r"`images` must have shape \(n_samples, height, width\); got \(3, 4\)"),
    (np.zeros((3, 4, 4)), pd.DataFrame({"index": [5], "given": [0], "predicted": [1]}), ValueError,
     r"`errors` index values must be below the number of images \(3\); got 5"),
])
def test_label_error_gallery_rejects_bad_inputs(images, errors, exc, match):
    with pytest.raises(exc, match=match):
        fl.label_error_gallery_figure(images, errors)


def test_label_error_display_needs_images_to_plot(noisy_problem, rng):
    display = fl.LabelErrorDisplay.from_predictions(_predictions(noisy_problem, rng, with_images=False))
    with pytest.raises(ValueError, match="`images` must be present to draw a gallery"):
        display.plot()
