"""Live training: configs, runs, the background session, and the widget driven from Python.

Every run here trains a real CNN on scikit-learn's digits (about 1 s each on this machine).
"""

import threading
import time

import numpy as np
import plotly.graph_objects as go
import pytest

import labviz
from labviz.classroom import live_training as lv
from labviz.compute.calibration import expected_calibration_error, reliability_curve
from labviz.compute.collapse import collapse_metrics
from labviz.compute.confusion import confusion_matrix, normalize_confusion

WAIT_S = 120  # generous bound for one digits run on a loaded 2-core machine


# ----- configs -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, message", [
    (dict(dataset="cifar"), ValueError, "`dataset` must be one of"),
    (dict(loss="focal"), ValueError, "`loss` must be one of"),
    (dict(loss="ce", alpha=0.1), ValueError, r"`alpha` must be 0 for loss='ce'"),
    (dict(loss="kd", alpha=0.1), ValueError, r"`alpha` must be 0 for loss='kd'"),
    (dict(loss="ls", alpha=1.0), ValueError, r"`alpha` must be in \[-0.5, 0.9\] for loss='ls'"),
    (dict(loss="ls", alpha=float("nan")), ValueError, "`alpha` must be finite"),
    (dict(loss="ls", alpha="0.1"), TypeError, "`alpha` must be a real number"),
    (dict(noise_rate=0.95), ValueError, r"`noise_rate` must be in \[0, 0.9\]"),
    (dict(epochs=0), ValueError, "`epochs` must be >= 1"),
    (dict(epochs=2.5), TypeError, "`epochs` must be an integer"),
    (dict(seed=-1), ValueError, "`seed` must be >= 0"),
    (dict(teacher="resnet"), ValueError, "`teacher` must be one of"),
    (dict(n_train=500), ValueError, "`n_train` is for Fashion-MNIST"),
    (dict(dataset="fashion-mnist", n_train=50), ValueError, "`n_train` must be >= 100"),
])
def test_config_refuses_bad_knobs(kwargs, error, message):
    with pytest.raises(error, match=message):
        lv.LiveConfig(**kwargs)


def test_config_describes_itself():
    assert lv.LiveConfig(loss="ls", alpha=-0.1).describe() == (
        "LS α=-0.10 · noise 0% · 30 epochs · seed 0 · digits")
    fm = lv.LiveConfig(dataset="fashion-mnist", loss="kd", teacher="ls", noise_rate=0.2, epochs=5)
    assert fm.describe() == ("KD from the LS teacher · noise 20% · 5 epochs · seed 0 · "
                             "Fashion-MNIST (2,000 images)")
    assert lv.LiveConfig().train_size == 1077 and fm.train_size == lv.DEFAULT_FMNIST_TRAIN


def test_estimate_is_linear_in_epochs_and_training_images():
    one, two = (lv.estimate_seconds(lv.LiveConfig(epochs=e)) for e in (1, 2))
    three = lv.estimate_seconds(lv.LiveConfig(epochs=3))
    assert one > 0 and two - one == pytest.approx(three - two)
    per_epoch = two - one
    fm = [lv.estimate_seconds(lv.LiveConfig(dataset="fashion-mnist", n_train=n, epochs=1))
          for n in (1000, 2000)]
    assert fm[1] - fm[0] > 1000 * per_epoch / 1077  # 28x28 images cost more than 8x8 ones


# ----- one run -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ls_run():
    return lv.train_live(lv.LiveConfig(loss="ls", alpha=0.1, epochs=20), run_id=7)


def test_run_measures_its_own_predictions(ls_run):
    p = ls_run.predictions
    assert ls_run.run_id == 7 and p.n_samples == 450 and p.features is not None
    assert ls_run.accuracy == pytest.approx(float((p.logits.argmax(1) == p.y_true).mean()))
    assert ls_run.accuracy > 0.9  # digits are easy: a broken loop would sit near 0.1
    assert ls_run.ece == pytest.approx(expected_calibration_error(p.y_true, p.probs, n_bins=15))
    m = collapse_metrics(p.features, p.y_true)
    assert (ls_run.nc1, ls_run.intra, ls_run.inter) == pytest.approx((m.nc1, m.intra, m.inter))
    assert ls_run.seconds > 0 and ls_run.estimated_seconds > 0
    assert set(ls_run.row()) == set(lv.HISTORY_COLUMNS)


def test_runs_are_deterministic(ls_run):
    again = lv.train_live(ls_run.config)
    np.testing.assert_array_equal(again.predictions.logits, ls_run.predictions.logits)


def test_alpha_changes_the_model(ls_run):
    """LS with a larger α is less confident (Müller et al.): the knob reaches the loss."""
    strong = lv.train_live(lv.LiveConfig(loss="ls", alpha=0.4, epochs=20))
    conf = [r.predictions.probs.max(1).mean() for r in (ls_run, strong)]
    assert conf[1] < conf[0] - 0.05


def test_noise_and_kd_runs_train():
    noisy = lv.train_live(lv.LiveConfig(noise_rate=0.4, epochs=3))
    kd = lv.train_live(lv.LiveConfig(loss="kd", teacher="ls", epochs=3))
    assert noisy.predictions.n_samples == kd.predictions.n_samples == 450
    assert kd.predictions.features.shape[1] != noisy.predictions.features.shape[1]  # the student net


def test_stop_event_cancels_between_batches():
    from labviz.zoo.training import TrainingCancelled

    stop, seen = threading.Event(), []

    def on_batch(done, total):
        seen.append(done)
        if done == 5:
            stop.set()

    with pytest.raises(TrainingCancelled, match="stopped in epoch 1 of 30"):
        lv.train_live(lv.LiveConfig(), on_batch=on_batch, stop=stop)
    assert seen == [1, 2, 3, 4, 5]


# ----- the session -------------------------------------------------------------------------------
def test_session_supersedes_and_keeps_whole_runs_only():
    events = []
    session = lv.LiveSession(on_done=lambda r: events.append(("done", r.run_id)),
                             on_cancel=lambda i: events.append(("cancel", i)))
    first = session.start(lv.LiveConfig(epochs=30))
    second = session.start(lv.LiveConfig(loss="ls", alpha=0.2, epochs=3))
    assert session.wait(WAIT_S)
    assert events == [("cancel", first), ("done", second)]
    assert session.history()["run"].tolist() == [second]
    assert session.history()["alpha"].tolist() == [0.2]
    with pytest.raises(ValueError, match=r"`run_id` must be one of the finished runs \[2\]"):
        session.get(first)


def test_session_reports_errors_through_its_callback(monkeypatch):
    errors = []
    session = lv.LiveSession(on_error=lambda i, e: errors.append((i, str(e))))

    def broken(config, **kw):
        raise RuntimeError("disk full")

    monkeypatch.setattr(lv, "train_live", broken)
    session.start(lv.LiveConfig())
    assert session.wait(WAIT_S)
    assert errors == [(1, "disk full")] and session.runs == []


# ----- the widget --------------------------------------------------------------------------------
def _wait(trainer):
    assert trainer.wait(WAIT_S), "the run did not finish"


@pytest.fixture(scope="module")
def trained():
    """A widget after two runs made through its controls: LS α=0.1, then CE."""
    t = labviz.live(classes=(3, 5, 8))
    t.controls["loss"].value = "ls"
    t.controls["alpha"].value = 0.1
    t.controls["epochs"].value = 20
    t.train()
    _wait(t)
    t.controls["loss"].value = "ce"
    t.train()
    _wait(t)
    return t


def _widgets_in(widget):
    """``widget`` and every widget below it in the layout."""
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _widgets_in(child)


def test_views_are_text_until_a_run_draws_them(trained):
    fresh = labviz.live()
    assert fresh.figures == {}  # a page before any run needs no plotly
    assert not any(isinstance(w, go.FigureWidget) for w in _widgets_in(fresh.widget))
    empty = [w for w in _widgets_in(fresh.widget)
             if "appears here after a run" in str(getattr(w, "value", ""))]
    assert len(empty) == 6
    # after a run, each view's place holds its figure widget and no text
    drawn = [w for w in _widgets_in(trained.widget) if isinstance(w, go.FigureWidget)]
    assert sorted(map(id, drawn)) == sorted(map(id, trained.figures.values()))
    assert sorted(trained.figures) == ["compare_plane", "compare_reliability", "confusion",
                                       "metrics", "plane", "reliability"]
    assert not any("appears here after a run" in str(getattr(w, "value", ""))
                   for w in _widgets_in(trained.widget))


def test_widget_full_run_fills_history_and_views(trained):
    t = trained
    history = t.session.history()
    assert history["run"].tolist() == [1, 2]
    assert history["loss"].tolist() == ["LS", "CE"] and history["alpha"].tolist() == [0.1, 0.0]
    run = t.shown
    assert run.run_id == 2 and t.status.startswith("Showing run 2: CE")
    assert history["accuracy"].iloc[1] == pytest.approx(run.accuracy)
    p = run.predictions

    confusion = t.figures["confusion"].data[0]
    want = normalize_confusion(confusion_matrix(p.y_true, p.y_pred, n_classes=10), "true")
    np.testing.assert_allclose(np.asarray(confusion.z, dtype=float), want)

    curve = reliability_curve(p.y_true, p.probs, n_bins=15)
    series = [tr for tr in t.figures["reliability"].data if tr.name and tr.name.startswith("run 2")]
    assert series and f"{curve.calibration_error():.3f}" in series[0].name

    drawn = sum(len(tr.x) for tr in t.figures["plane"].data if tr.name != "templates")
    assert drawn == int(np.isin(p.y_true, [3, 5, 8]).sum())

    bars = [tr for tr in t.figures["metrics"].data if tr.type == "bar"]
    assert len(bars) == 2 * 3  # two runs x three metrics
    assert "<td>LS</td>" in t.history_html.value and "<td>CE</td>" in t.history_html.value
    assert t.controls["cancel"].disabled and t.progress.layout.visibility == "hidden"
    assert t.last_latency is not None and t.last_latency >= run.seconds


def test_widget_compares_any_two_runs(trained):
    t = trained
    assert (t.controls["compare_a"].value, t.controls["compare_b"].value) == (1, 2)
    titles = [a.text for a in t.figures["compare_plane"].layout.annotations]
    assert any(s.startswith("run 1: LS") for s in titles) and any(s.startswith("run 2: CE") for s in titles)
    names = {tr.name for tr in t.figures["compare_reliability"].data if tr.name}
    assert any(n.startswith("run 1: LS") for n in names) and any(n.startswith("run 2: CE") for n in names)
    t.controls["compare_b"].value = 1
    assert "run 1: LS" in " ".join(a.text for a in t.figures["compare_plane"].layout.annotations)
    t.controls["compare_b"].value = 2


def test_any_finished_run_can_be_shown_again(trained):
    t = trained
    first = t.session.get(1)
    t.show(first)
    assert t.shown is first and t.status.startswith("Showing run 1: LS α=0.10")
    assert "Confusion, run 1" in t.figures["confusion"].layout.title.text
    t.show(t.session.get(2))
    assert t.status.startswith("Showing run 2: CE")


def test_class_triple_redraws_the_shown_run_only(trained):
    t = trained
    shown = t.shown
    t.controls["class_c"].value = 9
    p = shown.predictions
    drawn = sum(len(tr.x) for tr in t.figures["plane"].data if tr.name != "templates")
    assert drawn == int(np.isin(p.y_true, [3, 5, 9]).sum()) and t.shown is shown
    t.controls["class_c"].value = 3  # duplicate classes: a message, not an error
    assert "three different classes" in t.figures["plane"].data[0].text[0]
    t.controls["class_c"].value = 8


def test_controls_changed_mid_run_never_mix_views():
    t = labviz.live()
    t.controls["loss"].value, t.controls["alpha"].value = "ls", 0.1
    started = threading.Event()
    t.session.on_batch = lambda run_id, done, total: started.set()
    t.train()
    assert started.wait(WAIT_S)
    t.controls["alpha"].value = 0.4  # the next run's knob, not this one's
    t.controls["noise"].value = 0.5
    _wait(t)
    run = t.shown
    assert run.config.alpha == 0.1 and run.config.noise_rate == 0.0
    assert "LS α=0.10 · noise 0%" in t.status
    curve = reliability_curve(run.predictions.y_true, run.predictions.probs, n_bins=15)
    series = [tr for tr in t.figures["reliability"].data if tr.name and tr.name.startswith("run 1")]
    assert f"{curve.calibration_error():.3f}" in series[0].name
    assert t.config().alpha == 0.4 and t.config().noise_rate == 0.5


def test_cancel_mid_run_leaves_a_consistent_state(trained):
    t = trained
    before = {k: t.figures[k].to_json() for k in ("plane", "reliability", "confusion")}
    history = t.session.history().copy()
    halfway = threading.Event()
    t.session.on_batch = lambda run_id, done, total: (
        t._on_batch(run_id, done, total), done >= total // 3 and halfway.set())
    t.controls["epochs"].value = 30
    run_id = t.train()
    assert halfway.wait(WAIT_S) and t.session.running
    assert 0 < t.progress.value < 1 and t.progress.layout.visibility == "visible"
    assert t.cancel()
    _wait(t)
    time.sleep(0.05)
    assert t.status == f"Run {run_id} cancelled; still showing run 2."
    assert t.shown.run_id == 2 and t.session.history().equals(history)
    assert t.progress.layout.visibility == "hidden" and t.controls["cancel"].disabled
    assert {k: t.figures[k].to_json() for k in before} == before
    assert not t.cancel()  # nothing left to cancel


def test_live_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"`classes` must be 3 class indices in \[0, 9\]"):
        labviz.live(classes=(0, 1))
    with pytest.raises(ValueError, match="`dataset` must be one of"):
        labviz.live(dataset="mnist")
    t = labviz.live()
    with pytest.raises(TypeError, match="`run` must be a LiveRun"):
        t.show("run 1")


def test_app_holds_the_trainer_and_the_explorer():
    page = labviz.app()
    assert isinstance(page.trainer, labviz.widgets.trainer.LiveTrainer)
    tabs = page.children[1]
    assert page.explorer is None  # built when its tab is first chosen
    tabs.selected_index = 1
    explorer = page.explorer
    assert explorer.predictions[0].name == "digits-ce-s0 [test]"
    assert tabs.children[1].children == (explorer.widget,)
    tabs.selected_index = 0
    tabs.selected_index = 1
    assert page.explorer is explorer  # once
    assert [page.children[1].get_title(i) for i in range(2)] == ["Live training", "Explorer"]


def test_app_checks_its_explorer_sources_before_the_tab_is_chosen():
    with pytest.raises(ValueError, match="`name` must be a zoo checkpoint; got 'nope'"):
        labviz.app(explore_sources=["digits-ce-s0", "nope"])
    with pytest.raises(TypeError, match="`explore_sources` must hold zoo checkpoint names or "
                                        "Predictions; got int"):
        labviz.app(explore_sources=[3])
