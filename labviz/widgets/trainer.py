"""The live-training widget: students turn the knobs, train a CNN in seconds, and watch the
views change.

See :func:`labviz.live` (in :mod:`labviz.widgets`). The compute (training, measuring, the
background session) is in :mod:`labviz.classroom.live_training`; this module only wires controls
to it and draws its results.

Views never mix runs: every view is drawn from one finished
:class:`~labviz.classroom.live_training.LiveRun`, the one the status line names, under one lock. A
control changed during training changes the *next* run, never the views of the shown one; the
class triple is a view setting and redraws the shown run's template plane.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence

import ipywidgets as widgets
import plotly.graph_objects as go

from labviz.classroom import live_training as lv
from labviz.compute.calibration import reliability_curve
from labviz.classroom.class_board import ClassBoard
from labviz.compute.confusion import confusion_matrix
from labviz.zoo.datasets import fashion_mnist_dir
from labviz.figures.calibration import reliability_figure
from labviz.figures.collapse import collapse_metrics_figure, template_plane_figure
from labviz.figures.confusion import confusion_figure
from labviz.classroom.training_service import TrainingService
from labviz.widgets._common import FigureSlot, message_html
from labviz.zoo import class_names

#: Size of each of the four views, in pixels.
VIEW_SIZE = (470, 420)
#: The progress bar moves in steps of this share of a run (fewer messages to the page).
PROGRESS_STEP = 0.02


class LiveTrainer:
    """Controls, a background training session, four views of the shown run, history and comparison.

    Attributes
    ----------
    widget : ipywidgets.VBox
        The whole interface.
    session : LiveSession or ServiceSession
        The runs: ``session.runs`` and ``session.history()``. Trained in this process
        (:class:`~labviz.classroom.live_training.LiveSession`), or, given a ``service``, by the
        class's shared pool of workers (:class:`~labviz.classroom.training_service.ServiceSession`).
    board : labviz.classroom.class_board.ClassBoard or None
        The class's board: every finished run goes on it (key ``"<student_id>-<run_id>"``), under
        the name in the ``name`` box if it is free, else an anonymous one.
    student_id : str
        This trainer's student on the board (a random id unless given).
    board_name : str or None
        The name the board shows for them, once a run is on it.
    controls : dict of str to ipywidgets.Widget
        ``dataset``, ``n_train``, ``loss``, ``alpha``, ``teacher``, ``noise``, ``epochs``, ``seed``,
        ``class_a``, ``class_b``, ``class_c``, ``train``, ``cancel``, ``compare_a``, ``compare_b``
        and ``name`` (shown with a board).
    shown : LiveRun or None
        The run the views show.
    figures : dict of str to plotly.graph_objects.FigureWidget
        The views drawn so far: ``plane``, ``reliability``, ``confusion``, ``metrics``,
        ``compare_plane`` and ``compare_reliability``. Until its first figure, a view is a line
        of text, so a page needs no plotly (a 5 MB module) before a run: what counts when a
        class opens the app at once.
    last_latency : float or None
        Seconds from the last :meth:`train` call to its views being drawn.
    error : BaseException or None
        The exception of the last run that failed (the status line shows its message).
    """

    def __init__(self, *, dataset: lv.LiveDataset = "digits", classes: Sequence[int] = (0, 1, 2),
                 service: TrainingService | None = None, board: ClassBoard | None = None,
                 student_id: str | None = None) -> None:
        lv.LiveConfig(dataset=dataset)  # validates the dataset name
        if service is not None and not isinstance(service, TrainingService):
            raise TypeError(f"`service` must be a TrainingService or None; got "
                            f"{type(service).__name__}.")
        if board is not None and not isinstance(board, ClassBoard):
            raise TypeError(f"`board` must be a ClassBoard or None; got {type(board).__name__}.")
        self.session = (
            lv.LiveSession(on_batch=self._on_batch, on_done=self._on_done,
                           on_cancel=self._on_cancel, on_error=self._on_error)
            if service is None else
            service.session(on_batch=self._on_batch, on_done=self._on_done,
                            on_cancel=self._on_cancel, on_error=self._on_error))
        self.board = board
        self.student_id = uuid.uuid4().hex if student_id is None else student_id
        self.board_name: str | None = None
        self.shown: lv.LiveRun | None = None
        self.last_latency: float | None = None
        self.error: BaseException | None = None
        self._clicked: dict[int, float] = {}
        self._draw_lock = threading.RLock()
        self._progress_shown = -1.0
        self._quiet = False
        self._build_controls(dataset, classes)
        self._views = {key: FigureSlot(_placeholder_html(f"{text}<br>appears here after a run."))
                       for key, text in (
            ("plane", "The template plane of the shown run"),
            ("reliability", "Its reliability diagram"),
            ("confusion", "Its confusion matrix"),
            ("metrics", "The collapse metrics of every run"),
            ("compare_plane", "Template planes of runs A and B"),
            ("compare_reliability", "Reliability of runs A and B"))}
        self.status_html = widgets.HTML(message_html("No run yet: choose the knobs and press Train."))
        self.estimate_html = widgets.HTML()
        self.progress = widgets.FloatProgress(value=0, min=0, max=1, description="",
                                              layout=widgets.Layout(width="260px", visibility="hidden"))
        self.history_html = widgets.HTML(message_html("Finished runs will be listed here."))
        self.compare_html = widgets.HTML(message_html("Train two runs, then pick them here."))
        self.board_html = widgets.HTML("" if board is None else message_html(
            "Your finished runs go on the class's board, under an anonymous name unless you "
            "choose one here."))
        self.widget = self._layout()
        self._sync_controls()

    # ----- construction ------------------------------------------------------------------------
    def _build_controls(self, dataset: str, classes: Sequence[int]) -> None:
        datasets = [("digits (8×8 images)", "digits")]
        if fashion_mnist_dir() is not None:
            datasets.append(("Fashion-MNIST subset (28×28)", "fashion-mnist"))
        style = {"description_width": "90px"}
        c = {
            "dataset": widgets.Dropdown(options=datasets, value=dataset, description="data",
                                        style=style),
            "n_train": widgets.Dropdown(options=[("1,000 images", 1000), ("2,000 images", 2000),
                                                 ("5,000 images", 5000), ("10,000 images", 10000)],
                                        value=lv.DEFAULT_FMNIST_TRAIN, description="train on",
                                        style=style),
            "loss": widgets.ToggleButtons(options=[("CE", "ce"), ("LS", "ls"), ("MaxSup", "maxsup"),
                                                   ("KD", "kd")], value="ls", description="loss",
                                          style={**style, "button_width": "70px"}),
            "alpha": widgets.FloatSlider(value=0.1, min=lv.ALPHA_RANGE[0], max=lv.ALPHA_RANGE[1],
                                         step=0.05, description="α", readout_format=".2f",
                                         style=style),
            "teacher": widgets.Dropdown(options=[("CE teacher", "ce"), ("LS α=0.1 teacher", "ls")],
                                        value="ce", description="teacher", style=style),
            "noise": widgets.FloatSlider(value=0.0, min=0.0, max=0.8, step=0.1,
                                         description="label noise", readout_format=".0%",
                                         style=style),
            "epochs": widgets.IntSlider(value=30, min=1, max=60, description="epochs", style=style),
            "seed": widgets.BoundedIntText(value=0, min=0, max=10**6, description="seed",
                                           style=style, layout=widgets.Layout(width="180px")),
            "train": widgets.Button(description="Train", button_style="primary", icon="play"),
            "cancel": widgets.Button(description="Cancel", icon="stop", disabled=True),
            "compare_a": widgets.Dropdown(options=[], description="run A", style=style),
            "compare_b": widgets.Dropdown(options=[], description="run B", style=style),
            "name": widgets.Text(value="", placeholder="anonymous", description="your name",
                                 style=style, layout=widgets.Layout(width="260px")),
        }
        names = [(n, k) for k, n in enumerate(class_names(dataset))]
        for key, k in zip(("class_a", "class_b", "class_c"), classes):
            c[key] = widgets.Dropdown(options=names, value=int(k), description="" if key != "class_a"
                                      else "plane", style=style,
                                      layout=widgets.Layout(width="200px" if key == "class_a"
                                                            else "110px"))
        self.controls = c
        for key in ("dataset", "n_train", "loss", "alpha", "teacher", "noise", "epochs", "seed"):
            c[key].observe(lambda _: self._sync_controls(), names="value")
        for key in ("class_a", "class_b", "class_c"):
            c[key].observe(lambda _: self._redraw_planes(), names="value")
        for key in ("compare_a", "compare_b"):
            c[key].observe(lambda _: self._draw_compare(), names="value")
        c["train"].on_click(lambda _: self.train())
        c["cancel"].on_click(lambda _: self.cancel())

    def _layout(self) -> widgets.VBox:
        c, f = self.controls, {key: slot.widget for key, slot in self._views.items()}
        knobs = widgets.VBox([
            widgets.HBox([c["dataset"], c["n_train"]]),
            c["loss"],
            widgets.HBox([c["alpha"], c["teacher"]]),
            widgets.HBox([c["noise"], c["epochs"], c["seed"]]),
            widgets.HBox([c["class_a"], c["class_b"], c["class_c"]]),
            widgets.HBox([c["train"], c["cancel"], self.progress, self.estimate_html]),
        ])
        if self.board is not None:
            knobs.children += (widgets.HBox([c["name"], self.board_html]),)
        this_run = widgets.VBox([widgets.HBox([f["plane"], f["reliability"]]),
                                 widgets.HBox([f["confusion"], f["metrics"]])])
        history = widgets.VBox([self.history_html])
        compare = widgets.VBox([widgets.HBox([c["compare_a"], c["compare_b"]]), self.compare_html,
                                f["compare_plane"], f["compare_reliability"]])
        tabs = widgets.Tab(children=[this_run, history, compare])
        for i, title in enumerate(("This run", "History", "Compare two runs")):
            tabs.set_title(i, title)
        self.tabs = tabs
        return widgets.VBox([knobs, self.status_html, tabs])

    def _repr_mimebundle_(self, **kwargs: object) -> dict:
        return self.widget._repr_mimebundle_(**kwargs)

    # ----- controls ----------------------------------------------------------------------------
    def config(self) -> lv.LiveConfig:
        """The run the controls describe."""
        c = self.controls
        loss, dataset = c["loss"].value, c["dataset"].value
        return lv.LiveConfig(
            dataset=dataset, loss=loss,
            alpha=round(float(c["alpha"].value), 4) if loss in lv.ALPHA_LOSSES else 0.0,
            noise_rate=round(float(c["noise"].value), 4), epochs=int(c["epochs"].value),
            seed=int(c["seed"].value), teacher=c["teacher"].value,
            n_train=int(c["n_train"].value) if dataset == "fashion-mnist" else None)

    def _sync_controls(self) -> None:
        """Enable the controls that matter for the current loss and dataset; show the estimate."""
        c = self.controls
        c["alpha"].disabled = c["loss"].value not in lv.ALPHA_LOSSES
        c["teacher"].disabled = c["loss"].value != "kd"
        c["n_train"].disabled = c["dataset"].value != "fashion-mnist"
        try:
            config = self.config()
            seconds = self.session.estimate_seconds(config)
        except (ValueError, TypeError) as exc:
            self.estimate_html.value = message_html(str(exc), kind="warn")
            return
        self.estimate_html.value = message_html(
            f"estimated {_duration(seconds)} on this machine ({config.train_size:,} training images)")

    def classes(self) -> tuple[int, int, int]:
        """The three classes chosen for the template plane."""
        c = self.controls
        return int(c["class_a"].value), int(c["class_b"].value), int(c["class_c"].value)

    # ----- actions -----------------------------------------------------------------------------
    def train(self) -> int:
        """Start a run with the current controls (superseding one in progress); return its id."""
        config = self.config()
        clicked = time.perf_counter()
        run_id = self.session.start(config)
        self._clicked[run_id] = clicked
        self._progress_shown = -1.0
        self.progress.value = 0.0
        self.progress.layout.visibility = "visible"
        self.controls["cancel"].disabled = False
        self._say(f"Training run {run_id}: {config.describe()}. "
                  + (f"Still showing run {self.shown.run_id}." if self.shown else ""), "busy")
        return run_id

    def cancel(self) -> bool:
        """Stop the run in progress; the views keep showing the last finished run."""
        return self.session.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current run has ended and its views are drawn; True if idle."""
        return self.session.wait(timeout)

    # ----- session callbacks (training thread) ---------------------------------------------------
    def _on_batch(self, run_id: int, done: int, total: int) -> None:
        if run_id != self.session.current_id:  # a superseded run's last batch
            return
        share = done / total
        if share - self._progress_shown >= PROGRESS_STEP or done == total:
            self._progress_shown = share
            self.progress.value = share

    def _on_done(self, run: lv.LiveRun) -> None:
        with self._draw_lock:
            self.show(run)
            self._finish(run.run_id)
            clicked = self._clicked.pop(run.run_id, None)
            self.last_latency = None if clicked is None else time.perf_counter() - clicked
            if self.last_latency is not None:
                self._say(f"{self.status} Views updated {self.last_latency:.1f} s after Train.")
            newer = self.session.current_id
            if newer != run.run_id:
                self._say(f"{self.status} Training run {newer}.", "busy")
        self._record(run)

    def _record(self, run: lv.LiveRun) -> None:
        """Put a finished run on the class's board, under the name in the name box if it is free."""
        if self.board is None:
            return
        note, kind = "", "info"
        name = self.controls["name"].value.strip() or None
        try:
            self.board_name = self.board.join(self.student_id, name=name)
        except ValueError as exc:  # a name taken or not allowed: keep the one the board has
            note, kind = f" {exc}", "warn"
            self.board_name = self.board.join(self.student_id)
        try:
            self.board.record(self.student_id, run, run_key=f"{self.student_id}-{run.run_id}")
            n = len(self.board.student_runs(self.student_id))
        except sqlite3.Error as exc:  # the views are drawn; the board only misses this run
            self.board_html.value = message_html(f"Run {run.run_id} could not go on the class's "
                                                 f"board: {exc}", kind="warn")
            return
        self.board_html.value = message_html(
            f"On the class's board as {self.board_name}: {n:,} run{'s' if n != 1 else ''}.{note}",
            kind=kind)

    def _on_cancel(self, run_id: int) -> None:
        self._clicked.pop(run_id, None)
        if run_id != self.session.current_id:  # superseded by a newer run, which reports itself
            return
        with self._draw_lock:
            self._finish(run_id)
            still = f"still showing run {self.shown.run_id}" if self.shown else "nothing shown yet"
            self._say(f"Run {run_id} cancelled; {still}.", "warn")

    def _on_error(self, run_id: int, exc: BaseException) -> None:
        self.error = exc
        with self._draw_lock:
            self._finish(run_id)
            self._say(f"Run {run_id} failed: {exc}", "warn")

    def _finish(self, run_id: int) -> None:
        """Hide the progress bar once the latest run has ended (callbacks run in its thread)."""
        if run_id == self.session.current_id:
            self.progress.layout.visibility = "hidden"
            self.controls["cancel"].disabled = True

    def _say(self, text: str, kind: str = "info") -> None:
        self.status = text
        self.status_html.value = message_html(text, kind=kind)

    # ----- drawing -----------------------------------------------------------------------------
    def show(self, run: lv.LiveRun) -> None:
        """Draw ``run`` in the four views, name it in the status line, and refresh the history and
        comparison. Any finished run of the session can be shown again."""
        if not isinstance(run, lv.LiveRun):
            raise TypeError(f"`run` must be a LiveRun; got {type(run).__name__}.")
        p = run.predictions
        counts = confusion_matrix(p.y_true, p.y_pred, n_classes=p.n_classes)
        title = f"run {run.run_id}"
        figs = {
            "plane": self._plane_figure([run]),
            "reliability": reliability_figure({title: reliability_curve(p.y_true, p.probs, n_bins=15)},
                                              title=f"Reliability, {title} (test)", show_ci=False,
                                              fade=False),
            "confusion": confusion_figure(counts, class_names=p.class_names, normalize="true",
                                          title=f"Confusion, {title} (test)"),
            "metrics": self._metrics_figure(run),
        }
        with self._draw_lock:
            for key, fig in figs.items():
                wide = key == "metrics"  # three panels with titles
                fig.update_layout(width=VIEW_SIZE[0] + (150 if wide else 0), height=VIEW_SIZE[1])
                self._views[key].replace(fig)
            self.shown = run
            self._draw_history()
            # last, so that a status naming this run means every view shows it
            self._say(f"Showing run {run.run_id}: {run.config.describe()}. Accuracy "
                      f"{run.accuracy:.1%}, ECE {run.ece:.3f}; trained and measured in "
                      f"{run.seconds:.1f} s (estimated {run.estimated_seconds:.1f} s).")

    @property
    def figures(self) -> dict[str, go.FigureWidget]:
        """The views drawn so far, by key (see the class's attributes)."""
        return {key: slot.figure for key, slot in self._views.items() if slot.figure is not None}

    def _plane_figure(self, runs: Sequence[lv.LiveRun]) -> go.Figure:
        classes = self.classes()
        if len(set(classes)) < 3:
            return _message_figure("Pick three different classes for the template plane.")
        return template_plane_figure([r.predictions for r in runs], classes,
                                     titles=[f"run {r.run_id}: {_short(r.config)}" for r in runs])

    def _metrics_figure(self, run: lv.LiveRun) -> go.Figure:
        """The collapse metrics of every finished run, the shown one named in the title."""
        import pandas as pd

        runs = [r for r in self.session.runs if r.run_id <= run.run_id] or [run]
        table = pd.DataFrame({"name": [f"run {r.run_id}" for r in runs],
                              "group": [f"{r.run_id}: {_short(r.config)}" for r in runs],
                              "intra": [r.intra for r in runs], "inter": [r.inter for r in runs],
                              "nc1": [r.nc1 for r in runs]})
        fig = collapse_metrics_figure(table)
        fig.update_layout(title=f"Collapse metrics, runs 1–{run.run_id} (test)", showlegend=False)
        return fig

    def _redraw_planes(self) -> None:
        with self._draw_lock:
            if self.shown is not None:
                fig = self._plane_figure([self.shown])
                fig.update_layout(width=VIEW_SIZE[0], height=VIEW_SIZE[1])
                self._views["plane"].replace(fig)
            self._draw_compare()

    def _draw_history(self) -> None:
        table = self.session.history()
        if table.empty:
            return
        shown = table.copy()
        shown["noise"] = shown["noise"].map(lambda x: f"{x:.0%}")
        shown["accuracy"] = shown["accuracy"].map(lambda x: f"{x:.1%}")
        shown["seconds"] = shown["seconds"].map(lambda x: f"{x:.1f}")
        self.history_html.value = shown.to_html(index=False, border=0, float_format=lambda x: f"{x:.3f}")
        # After each run, Compare shows the last two (both the same run after the first one).
        options = [(f"run {r.run_id}: {_short(r.config)}", r.run_id) for r in self.session.runs]
        a, b = self.controls["compare_a"], self.controls["compare_b"]
        self._quiet = True
        try:
            a.options, b.options = options, options
            a.value, b.value = options[max(0, len(options) - 2)][1], options[-1][1]
        finally:
            self._quiet = False
        self._draw_compare()

    def _draw_compare(self) -> None:
        a, b = self.controls["compare_a"].value, self.controls["compare_b"].value
        if self._quiet or a is None or b is None:
            return
        import pandas as pd

        with self._draw_lock:
            runs = [self.session.get(a), self.session.get(b)]
            rows = pd.DataFrame([r.row() for r in runs]).set_index("run")
            self.compare_html.value = rows[["loss", "alpha", "noise", "epochs", "seed", "accuracy",
                                            "ece", "nc1", "intra", "inter"]].to_html(
                border=0, float_format=lambda x: f"{x:.3f}")
            plane = self._plane_figure(runs)
            plane.update_layout(width=2 * VIEW_SIZE[0], height=VIEW_SIZE[1])
            self._views["compare_plane"].replace(plane)
            curves = {f"run {r.run_id}: {_short(r.config)}": reliability_curve(
                r.predictions.y_true, r.predictions.probs, n_bins=15) for r in runs}
            rel = reliability_figure(curves, title="Reliability (test)", show_ci=False, fade=False)
            rel.update_layout(width=VIEW_SIZE[0] + 120, height=VIEW_SIZE[1])
            self._views["compare_reliability"].replace(rel)


def _placeholder_html(text: str) -> str:
    """An empty view: ``text`` (HTML), grey and centred in a box of half a view's height."""
    width, height = VIEW_SIZE[0], VIEW_SIZE[1] // 2
    return (f'<div style="width:{width}px;height:{height}px;display:flex;align-items:center;'
            f'justify-content:center;text-align:center;color:#777777;font-size:14px">{text}</div>')


def _message_figure(text: str) -> go.Figure:
    """A view holding only ``text``. A text trace, not a layout annotation: replacing a figure in
    the page drops its traces, but layout entries the next figure does not set would linger."""
    fig = go.Figure(go.Scatter(x=[0], y=[0], mode="text", text=[text], hoverinfo="skip",
                               textfont=dict(color="#777777", size=14), showlegend=False))
    fig.update_layout(width=VIEW_SIZE[0], height=VIEW_SIZE[1], plot_bgcolor="white")
    return fig


def _short(config: lv.LiveConfig) -> str:
    loss = lv.LOSS_NAMES[config.loss]
    if config.loss in lv.ALPHA_LOSSES:
        loss += f" α={config.alpha:g}"
    if config.loss == "kd":
        loss += f"←{lv.LOSS_NAMES[config.teacher]}"
    if config.noise_rate:
        loss += f", noise {config.noise_rate:.0%}"
    return loss


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"≈ {max(seconds, 0.1):.1f} s"
    return f"≈ {seconds / 60:.1f} min"
