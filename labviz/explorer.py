"""The explorer widget: controls, linked ``FigureWidget`` views and the handlers behind them.

Build it with :func:`labviz.explore`. All state lives in one :class:`Explorer`; each control and
each plotly event calls one public handler (``select_cell``, ``select_points``, ``set_snapshot``,
``set_color``...), which tests and benchmarks can call directly without a browser.

Speed. Projections are computed (or read from the disk cache) when a checkpoint, split, method or
series is chosen, never in a click, selection or slider handler; those only mask arrays, rebuild
small figures (reliability, confusion) and update traces inside ``batch_update()``. The temperature
slider keeps each model's max-subtracted logits, so a move is one softmax of the (n_samples,
n_classes) logits per model plus one reliability curve; accuracy and the confusion matrix do not
depend on T (argmax is invariant) and are not recomputed. Above
``max_points`` samples a projection draws a fixed random subset, and above
``labviz.figures.projection.WEBGL_THRESHOLD`` it uses WebGL (``Scattergl``).
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Sequence
from typing import Literal, Union

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from numpy.typing import ArrayLike, NDArray

from labviz import _validation as v
from labviz import zoo
from labviz._numeric import softmax
from labviz.calibration import ReliabilityCurve, fit_temperature, reliability_curve
from labviz.confusion import confusion_matrix, per_class_table
from labviz.figures.calibration import reliability_figure
from labviz.figures.confusion import confusion_figure
from labviz.figures.projection import (
    ThumbnailURIs,
    hover_thumbnail_uris,
    point_customdata,
    projection_figure,
)
from labviz.label_quality import non_uniformity
from labviz.predictions import Predictions
from labviz.projection import METHODS, aligned_projections, projection_frame
from labviz.widgets import Series, series_for

Source = Union[str, Predictions]
ColorBy = Literal["class", "prediction", "given", "correct", "confidence", "flipped",
                  "non_uniformity"]
COLOR_BY: tuple[str, ...] = ("class", "prediction", "given", "correct", "confidence", "flipped",
                             "non_uniformity")
SPLITS: tuple[str, ...] = ("train", "val", "test")
#: The "compare" dropdown's entry for a single panel.
NO_COMPARE = "(none)"
#: Snapshot steps animate (SVG scatter only; WebGL traces do not transition in plotly.js).
ANIMATION_MS = 400

_COLOR_LABELS = {"non_uniformity": "non-uniformity"}
#: Range of the temperature slider (a log slider, base 2); "Fitted T" may set T outside it.
T_RANGE: tuple[float, float] = (0.25, 4.0)


# ----- small helpers -----------------------------------------------------------------------------
def _ids_array(ids: ArrayLike, name: str = "ids") -> NDArray[np.int64]:
    arr = v.as_array(ids, name).ravel()
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype == bool or arr.dtype.kind not in "iu":
        raise TypeError(f"`{name}` must hold integer sample ids; got {v.describe(arr)}.")
    return np.unique(arr.astype(np.int64))


def _padded(lo: float, hi: float) -> list[float]:
    pad = 0.05 * (hi - lo) if hi > lo else 1.0
    return [lo - pad, hi + pad]


def _trace_props(trace: object) -> dict:
    props = trace.to_plotly_json()
    props.pop("type", None)
    props.pop("uid", None)
    return props


def _same_structure(fw: go.FigureWidget, fig: go.Figure) -> bool:
    return len(fw.data) == len(fig.data) and all(
        type(a) is type(b) and a.name == b.name for a, b in zip(fw.data, fig.data)
    )


def _samples(n: int) -> str:
    return f"{n} sample{'s' if n != 1 else ''}"


def message_html(text: str, *, kind: str = "info") -> str:
    """A status line for an ``ipywidgets.HTML``: escaped text, coloured by ``kind``
    ("info", "busy" or "warn")."""
    color = {"info": "#333333", "busy": "#1f5fa8", "warn": "#9a5b00"}[kind]
    return f'<div style="color:{color};padding:2px 4px">{html.escape(text)}</div>'


def replace_figure(fw: go.FigureWidget, fig: go.Figure) -> None:
    """Show ``fig`` in ``fw``: all its traces and its layout, sent to the page as one update.

    The page merges the new layout into the old one: a layout entry that only the old figure set
    (e.g. annotations) stays on screen. Clearing such entries first (setting them to None in the
    same batch) did not remove them in the browser, so callers swap figures that set the same
    layout entries, and messages in empty views are text traces, not annotations.
    """
    with fw.batch_update():
        fw.data = ()
        fw.add_traces(list(fig.data))
        fw.layout = fig.layout


class Explorer:
    """Linked views of one or two models; see :func:`labviz.explore` for the parameters.

    Attributes
    ----------
    widget : ipywidgets.VBox
        The whole interface (what a notebook displays).
    controls : dict of str to ipywidgets.Widget
        ``checkpoint``, ``compare``, ``split``, ``method``, ``color``, ``classes``, ``snapshot``,
        ``play``, ``temperature``; setting a control's ``value`` runs its handler. And the
        ``fitted_temperature`` button, whose click runs :meth:`use_fitted_temperature`.
    projection_figures : list of plotly.graph_objects.FigureWidget
        One per panel shown (1 or 2). Their last trace, ``"highlight"``, rings the highlighted
        samples; every trace's ``customdata[:, 0]`` is the sample id.
    confusion_figure, reliability_figure : plotly.graph_objects.FigureWidget
    per_class : pandas.DataFrame
        Precision, recall, F1 and support per class of the current selection (or of all samples),
        one block of rows per panel, first column ``model``.
    curves : dict of str to ReliabilityCurve
        The curves drawn in the reliability figure (of ``softmax(logits / temperature)``).
    ece : dict of str to float
        Their top-label L1 ECE, as named in the legend and the status line.
    temperature : float
        The temperature T the probabilities are computed at: ``softmax(logits / T)``; 1 is the
        model's own probabilities. It drives the reliability diagram, the ECEs, the per-class
        table's ``confidence`` column, the bins a reliability click selects and the hover's
        confidence; not the projections' colours (accuracy and confusion do not depend on T).
    highlighted_ids : ndarray of shape (n_highlighted,)
        Sample ids of the current selection (confusion cell, reliability bin or lasso), sorted;
        empty for none.
    status : str
        The message in the status line (empty states, notes).
    series : Series or None
        The epoch snapshots or LS sweep of the shown checkpoint.
    snapshot_index : int or None
    predictions : list of Predictions
        The models in the panels (the series member on the left when stepping a series).
    frames : list of pandas.DataFrame
        Their projections on shared axes (``projection_frame`` rows, aligned).
    """

    def __init__(
        self,
        sources: Source | Sequence[Source],
        *,
        split: str = "test",
        method: str = "pca",
        color: str = "class",
        classes: Sequence[int] | None = None,
        n_bins: int = 15,
        max_points: int = 20_000,
        max_thumbnails: int = 32,
    ) -> None:
        self._sources = self._check_sources(sources)
        v.check_option(split, "split", SPLITS)
        v.check_option(method, "method", METHODS)
        v.check_option(color, "color", COLOR_BY)
        self.n_bins = v.check_int(n_bins, "n_bins", minimum=1)
        self.max_points = v.check_int(max_points, "max_points", minimum=1)
        self.max_thumbnails = v.check_int(max_thumbnails, "max_thumbnails", minimum=1)
        self._split, self._method, self._color = split, method, color
        labels = list(self._sources)
        self._checkpoint = labels[0]
        self._compare = labels[1] if len(labels) > 1 else None

        self._loaded: dict[tuple[str, str], Predictions] = {}
        self._frames: dict[tuple, pd.DataFrame] = {}
        self._thumbs: dict[int, ThumbnailURIs] = {}
        self._pending: dict[int, list[int]] = {}  # lasso ids gathered per panel, trace by trace
        self._quiet = False  # True while handlers set control values themselves

        self.status = ""
        self.highlighted_ids = np.zeros(0, dtype=np.int64)
        self.per_class = pd.DataFrame()
        self.curves: dict[str, ReliabilityCurve] = {}
        self.ece: dict[str, float] = {}
        self.temperature = 1.0
        self._what = ""  # what the selection views describe, e.g. "all 450 samples"
        self._shifted: dict[int, NDArray[np.float64]] = {}  # logits - rowmax, per model
        self._scaled: dict[int, tuple[float, NDArray[np.float64], NDArray[np.float64]]] = {}
        self._fitted: dict[object, float] = {}  # fitted temperature per zoo name or Predictions
        self.series: Series | None = None
        self.snapshot_index: int | None = None
        self.predictions: list[Predictions] = []
        self.frames: list[pd.DataFrame] = []
        self._ranges: tuple[list[float], list[float]] = ([0.0, 1.0], [0.0, 1.0])

        self._build_widgets(labels)
        self._load_view()
        n_classes = self._reference().n_classes
        self._classes = (tuple(range(n_classes)) if classes is None
                         else self._check_classes(classes, n_classes))
        self._set_control("classes", self._classes)
        self._draw_all()

    # ----- validation ---------------------------------------------------------------------------
    @staticmethod
    def _check_sources(sources: object) -> dict[str, Source]:
        if isinstance(sources, (str, Predictions)):
            sources = [sources]
        if not isinstance(sources, Sequence) or len(sources) == 0:
            raise TypeError("`sources` must be a zoo checkpoint name, a labviz.Predictions, or a "
                            f"non-empty sequence of them; got {type(sources).__name__}"
                            + (" (empty)." if isinstance(sources, Sequence) else "."))
        out: dict[str, Source] = {}
        for i, s in enumerate(sources):
            if isinstance(s, str):

                try:
                    zoo.entry(s)
                except ValueError as exc:
                    raise ValueError(f"`sources` must hold zoo checkpoint names or Predictions; "
                                     f"got the unknown name {s!r} at position {i}. ({exc})") from None
                label = s
            elif isinstance(s, Predictions):
                if s.features is None:
                    raise ValueError(f"`sources[{i}]` must hold features (penultimate "
                                     "activations) to be projected; got features=None.")
                label = s.name or f"model {i + 1}"
            else:
                raise TypeError(f"`sources` must hold zoo checkpoint names (str) or "
                                f"labviz.Predictions; got {type(s).__name__} at position {i}.")
            if label in out:
                label = f"{label} #{i + 1}"
            out[label] = s
        return out

    @staticmethod
    def _check_classes(classes: object, n_classes: int) -> tuple[int, ...]:
        if isinstance(classes, (str, bytes)) or not isinstance(classes, (Sequence, np.ndarray)):
            raise TypeError(f"`classes` must be a sequence of class indices; "
                            f"got {type(classes).__name__}.")
        out = [v.check_int(k, "classes") for k in classes]
        bad = [k for k in out if not 0 <= k < n_classes]
        if bad:
            raise ValueError(f"`classes` must hold class indices in [0, {n_classes - 1}]; "
                             f"got {bad}.")
        return tuple(sorted(set(out)))

    def _check_label(self, label: object, name: str) -> str:
        if not isinstance(label, str):
            raise TypeError(f"`{name}` must be the name of one of the sources; "
                            f"got {type(label).__name__}.")
        v.check_option(label, name, list(self._sources))
        return label

    # ----- widgets ------------------------------------------------------------------------------
    def _build_widgets(self, labels: list[str]) -> None:
        style = {"description_width": "initial"}
        c = {
            "checkpoint": widgets.Dropdown(options=labels, value=self._checkpoint,
                                           description="checkpoint", style=style),
            "compare": widgets.Dropdown(options=[NO_COMPARE, *labels],
                                        value=self._compare or NO_COMPARE,
                                        description="beside it", style=style),
            "split": widgets.Dropdown(options=list(SPLITS), value=self._split,
                                      description="split", style=style),
            "method": widgets.Dropdown(options=list(METHODS), value=self._method,
                                       description="projection", style=style),
            "color": widgets.Dropdown(options=[(_COLOR_LABELS.get(k, k), k) for k in COLOR_BY],
                                      value=self._color, description="colour by", style=style),
            "classes": widgets.SelectMultiple(options=[], rows=5, description="classes",
                                              style=style),
            "snapshot": widgets.SelectionSlider(options=[("-", 0)], description="snapshot",
                                                continuous_update=False, style=style,
                                                layout=widgets.Layout(width="420px")),
            "play": widgets.Play(min=0, max=0, interval=900, description="play"),
            "temperature": widgets.FloatLogSlider(
                value=1.0, base=2.0, min=np.log2(T_RANGE[0]), max=np.log2(T_RANGE[1]), step=1 / 16,
                description="temperature T", readout_format=".3f", continuous_update=False,
                style=style, layout=widgets.Layout(width="420px")),
            "fitted_temperature": widgets.Button(description="Fitted T"),
        }
        self.controls = c
        self._wire(c["checkpoint"], lambda new: self.set_checkpoint(new))
        self._wire(c["compare"], lambda new: self.set_compare(None if new == NO_COMPARE else new))
        self._wire(c["split"], lambda new: self.set_split(new))
        self._wire(c["method"], lambda new: self.set_method(new))
        self._wire(c["color"], lambda new: self.set_color(new))
        self._wire(c["classes"], lambda new: self.set_classes(new))
        self._wire(c["snapshot"], lambda new: self.set_snapshot(new))
        widgets.jslink((c["play"], "value"), (c["snapshot"], "index"))
        self._wire(c["temperature"], lambda new: self.set_temperature(new))
        c["fitted_temperature"].on_click(lambda _button: self.use_fitted_temperature())

        self.status_html = widgets.HTML()
        self.series_html = widgets.HTML()
        self.table_html = widgets.HTML(layout=widgets.Layout(max_height="420px", overflow="auto"))
        self.thumbnails_html = widgets.HTML(layout=widgets.Layout(max_width="520px"))
        self.hover_html = widgets.HTML(layout=widgets.Layout(min_width="140px"))
        self.projection_figures: list[go.FigureWidget] = []
        self._panel_box = widgets.HBox()
        self.confusion_figure = go.FigureWidget()
        self.reliability_figure = go.FigureWidget()
        self.widget = widgets.VBox([
            self.status_html,
            widgets.HBox([c["checkpoint"], c["compare"], c["split"]]),
            widgets.HBox([c["method"], c["color"], c["classes"]]),
            widgets.HBox([c["play"], c["snapshot"], self.series_html]),
            widgets.HBox([self._panel_box, self.hover_html]),
            widgets.HBox([c["temperature"], c["fitted_temperature"]]),
            widgets.HBox([self.confusion_figure, self.reliability_figure]),
            widgets.HBox([self.table_html, self.thumbnails_html]),
        ])

    def _wire(self, control: widgets.Widget, handler: Callable[[object], None]) -> None:
        def observer(change: dict) -> None:
            if not self._quiet:
                handler(change["new"])

        control.observe(observer, names="value")

    def _set_control(self, name: str, value: object) -> None:
        """Show ``value`` in a control without running its handler again."""
        control = self.controls[name]
        self._quiet = True
        try:
            if name == "classes":
                control.options = [(n, k) for k, n in enumerate(self._reference().class_names)]
            control.value = value
        finally:
            self._quiet = False

    def _say(self, text: str, *, kind: str = "info") -> None:
        self.status = text
        self.status_html.value = message_html(text, kind=kind) if text else ""

    def _repr_mimebundle_(self, **kwargs: object) -> dict:
        return self.widget._repr_mimebundle_(**kwargs)

    # ----- data ---------------------------------------------------------------------------------
    def _load(self, label: str) -> Predictions:
        """The predictions of source or zoo checkpoint ``label`` on the current split."""
        source = self._sources.get(label, label)
        if isinstance(source, Predictions):
            return source
        key = (source, self._split)
        if key not in self._loaded:
            self._loaded[key] = zoo.predictions(source, self._split)
        return self._loaded[key]

    def _reference(self) -> Predictions:
        return self._load(self._checkpoint)

    def _frame(self, label: str, reference: str) -> pd.DataFrame:
        """Projection of ``label`` on the axes of ``reference`` (Procrustes on shared ids)."""
        key = (label, reference, self._split, self._method)
        if key not in self._frames:
            ref = self._load(reference)
            if label == reference:
                frame = projection_frame(ref, method=self._method)
            else:
                frame = aligned_projections(ref, self._load(label), method=self._method)[1]
            self._frames[key] = frame
        return self._frames[key]

    def _load_view(self) -> None:
        """Load the panels' predictions and projections, and every series member's (precomputed
        here so that the slider handler never projects)."""
        self.series = None
        self.snapshot_index = None
        notes = []
        if isinstance(self._sources[self._checkpoint], str):
            self.series = series_for(self._sources[self._checkpoint])
        if self.series is not None:
            members = self.series.members
            self.snapshot_index = members.index(self._sources[self._checkpoint])
            for m in members:
                self._frame(m, self._checkpoint)
        compare_frame = None
        if self._compare is not None:
            ref, other = self._reference(), self._load(self._compare)
            if other.n_classes != ref.n_classes:
                notes.append(f"{self._compare} has {other.n_classes} classes and "
                             f"{self._checkpoint} {ref.n_classes}; showing one panel.")
                self._compare = None
            else:
                if np.intersect1d(ref.ids, other.ids).size >= 3:
                    compare_frame = self._frame(self._compare, self._checkpoint)
                else:
                    # Procrustes needs shared samples; without them the panels share nothing
                    compare_frame = projection_frame(other, method=self._method)
                    notes.append(f"{self._compare} shares no samples with {self._checkpoint}; "
                                 "its projection is not aligned and shows no highlight.")
        frames = [self._frame(m, self._checkpoint) for m in (self.series.members if self.series
                                                            else (self._checkpoint,))]
        if compare_frame is not None:
            frames.append(compare_frame)
        xs = np.concatenate([f["x"].to_numpy() for f in frames])
        ys = np.concatenate([f["y"].to_numpy() for f in frames])
        self._ranges = (_padded(xs.min(), xs.max()), _padded(ys.min(), ys.max()))
        ref = self._reference()
        self._shown_ids = None
        if ref.n_samples > self.max_points:
            rng = np.random.default_rng(0)
            self._shown_ids = np.sort(rng.choice(ref.ids, self.max_points, replace=False))
        self._panel_labels = [self._checkpoint] + ([self._compare] if compare_frame is not None
                                                   else [])
        self._set_panels(compare_frame)
        self._update_series_controls()
        self._update_temperature_controls()
        self._say(" ".join(notes), kind="warn")

    def _set_panels(self, compare_frame: pd.DataFrame | None) -> None:
        left = (self.series.members[self.snapshot_index] if self.series else self._checkpoint)
        self.predictions = [self._load(left)]
        self.frames = [self._frame(left, self._checkpoint)]
        if compare_frame is not None:
            self.predictions.append(self._load(self._compare))
            self.frames.append(compare_frame)

    def _update_series_controls(self) -> None:
        slider, play = self.controls["snapshot"], self.controls["play"]
        self._quiet = True
        try:
            if self.series is None:
                slider.options, slider.disabled, play.disabled = [("-", 0)], True, True
                play.max = 0
                self.series_html.value = message_html(
                    f"{self._checkpoint} has no epoch snapshots or α sweep to step through.")
            else:
                s = self.series
                slider.options = [(s.label(i), i) for i in range(len(s.members))]
                slider.value = self.snapshot_index
                slider.disabled = play.disabled = False
                play.max = len(s.members) - 1
                play.value = self.snapshot_index
                what = "epoch snapshots" if s.kind == "epoch" else "label-smoothing sweep"
                self.series_html.value = message_html(f"{s.name}: {what}, {len(s.members)} steps.")
        finally:
            self._quiet = False

    def _update_temperature_controls(self) -> None:
        if self._zoo_name() is not None:
            why = "the validation split of the checkpoint"
        else:
            why = ("these predictions' own samples: no validation set comes with them, so the "
                   "calibration it shows is optimistic")
        self.controls["fitted_temperature"].tooltip = (
            f"Set T to the temperature minimising the NLL on {why}")

    def _zoo_name(self) -> str | None:
        """The zoo checkpoint in the left panel, or None for user Predictions."""
        name = self._panel_names()[0]
        source = self._sources.get(name, name)
        return source if isinstance(source, str) else None

    def _scaled_probs(self, p: Predictions) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``softmax(logits / T)`` of ``p`` at the current temperature, shape (n_samples,
        n_classes), and its top-1 confidence, shape (n_samples,).

        One softmax per model and temperature: the max-subtracted logits and the last result are
        kept for the models on screen. At T = 1 this is ``p.probs`` to the bit (the same float64
        operations), so the views at T = 1 are the model's own.
        """
        live = {id(q) for q in self.predictions}
        for cache in (self._shifted, self._scaled):
            for key in [k for k in cache if k not in live]:
                del cache[key]
        key, t = id(p), self.temperature
        hit = self._scaled.get(key)
        if hit is not None and hit[0] == t:
            return hit[1], hit[2]
        if key not in self._shifted:
            z = p.logits.astype(np.float64)
            z -= z.max(axis=1, keepdims=True)
            self._shifted[key] = z
        probs = softmax(self._shifted[key] / t)
        conf = probs.max(axis=1)
        self._scaled[key] = (t, probs, conf)
        return probs, conf

    def _class_mask(self, p: Predictions) -> NDArray[np.bool_]:
        return np.isin(p.y_true, self._classes)

    def _selection_mask(self, p: Predictions) -> NDArray[np.bool_]:
        mask = self._class_mask(p)
        if self.highlighted_ids.size:
            mask &= np.isin(p.ids, self.highlighted_ids)
        return mask

    # ----- drawing ------------------------------------------------------------------------------
    def _draw_all(self) -> None:
        self._sync_panel_widgets()
        for i in range(len(self.frames)):
            self._draw_projection(i)
        self._draw_confusion()
        self._draw_selection_views()
        self._note_single_class()

    def _sync_panel_widgets(self) -> None:
        while len(self.projection_figures) < len(self.frames):
            self.projection_figures.append(go.FigureWidget())
        self._panel_box.children = self.projection_figures[:len(self.frames)]
        del self.projection_figures[len(self.frames):]

    def _projection_figure(self, i: int) -> go.Figure:
        frame, p = self.frames[i], self.predictions[i]
        mask = self._class_mask(p)
        if self._shown_ids is not None:
            mask &= np.isin(frame["id"].to_numpy(), self._shown_ids)
        shown = frame[mask]
        color = non_uniformity(p.probs)[mask] if self._color == "non_uniformity" else self._color
        name = (self.series.members[self.snapshot_index]
                if i == 0 and self.series else self._panel_labels[i])
        title = name + (f" ({self.series.label(self.snapshot_index)})"
                        if i == 0 and self.series else "")
        fig = projection_figure(shown, color=color, color_title="non-uniformity",
                                color_range=(0.0, 1.0), title=title)
        fig.update_xaxes(range=self._ranges[0], autorange=False)
        fig.update_yaxes(range=self._ranges[1], autorange=False)
        fig.update_layout(width=560 if len(self.frames) > 1 else 720, height=520,
                          dragmode="lasso",
                          # a new view resets the user's zoom; a click or a slider step keeps it
                          uirevision=f"{self._checkpoint}|{self._compare}|{self._split}|{self._method}")
        return fig

    def _draw_projection(self, i: int, *, animate: bool = False) -> None:
        fw, fig = self.projection_figures[i], self._projection_figure(i)
        if _same_structure(fw, fig):
            gl = any(isinstance(t, go.Scattergl) for t in fig.data)
            batch = fw.batch_animate(duration=ANIMATION_MS) if animate and not gl else fw.batch_update()
            with batch:
                for old, new in zip(fw.data, fig.data):
                    old.update(_trace_props(new), overwrite=True)
                fw.layout.title.text = fig.layout.title.text
        else:
            replace_figure(fw, fig)
            for trace in fw.data:
                trace.on_selection(self._on_selection)
                trace.on_deselect(self._on_deselect)
                trace.on_hover(self._on_hover)
        self._draw_highlight(i)

    def _draw_highlight(self, i: int) -> None:
        frame, p = self.frames[i], self.predictions[i]
        mask = self._class_mask(p) & np.isin(frame["id"].to_numpy(), self.highlighted_ids)
        if self._shown_ids is not None:
            # rings only on drawn points: a ring over an undrawn sample would be a phantom point
            mask &= np.isin(frame["id"].to_numpy(), self._shown_ids)
        names = dict(enumerate(p.class_names))
        trace = self.projection_figures[i].data[-1]
        with self.projection_figures[i].batch_update():
            trace.x = frame["x"].to_numpy()[mask]
            trace.y = frame["y"].to_numpy()[mask]
            trace.customdata = point_customdata(frame[mask], names)

    def _draw_confusion(self) -> None:
        p = self.predictions[0]
        mask = self._class_mask(p)
        counts = confusion_matrix(p.y_true[mask], p.y_pred[mask], n_classes=p.n_classes)
        name = self.series.members[self.snapshot_index] if self.series else self._checkpoint
        fig = confusion_figure(counts, class_names=p.class_names, normalize="true",
                               title=f"{name}: confusion ({int(mask.sum())} samples)")
        fig.update_layout(width=520, height=500)
        fw = self.confusion_figure
        with fw.batch_update():
            if _same_structure(fw, fig):
                fw.data[0].update(_trace_props(fig.data[0]), overwrite=True)
                fw.layout.title.text = fig.layout.title.text
            else:
                replace_figure(fw, fig)
        fw.data[0].on_click(self._on_cell_click)

    def _draw_selection_views(self) -> None:
        """Reliability diagram, per-class table and thumbnails of the selection (or of all)."""
        curves, tables = {}, []
        for label, p in zip(self._panel_names(), self.predictions):
            m = self._selection_mask(p)
            if not m.any():
                continue
            probs, conf = self._scaled_probs(p)
            every = bool(m.all())  # skip copying all the rows through a full mask
            curves[label] = reliability_curve(p.y_true if every else p.y_true[m],
                                              probs if every else probs[m], n_bins=self.n_bins)
            y_pred = p.y_pred[m]
            t = per_class_table(p.y_true[m], y_pred, n_classes=p.n_classes,
                                class_names=p.class_names)
            predicted = np.bincount(y_pred, minlength=p.n_classes)
            with np.errstate(invalid="ignore", divide="ignore"):
                # top-label calibration per predicted class: compare it with the precision
                mean_conf = np.bincount(y_pred, weights=conf[m], minlength=p.n_classes) / predicted
            t.insert(t.columns.get_loc("precision") + 1, "confidence", mean_conf)
            t.insert(0, "model", label)
            if self.highlighted_ids.size:
                # a selection's table lists the classes it holds or predicts, not ten rows of 0
                t = t[(t["support"] > 0) | (predicted > 0)]
            tables.append(t)
        self.curves = curves
        self.ece = {label: c.calibration_error("l1") for label, c in curves.items()}
        self.per_class = pd.concat(tables, ignore_index=True)
        n = next(iter(curves.values())).n_samples
        what = f"selection of {_samples(n)}" if self.highlighted_ids.size else f"all {_samples(n)}"
        self._what = what
        at = "" if self.temperature == 1.0 else f" at T = {self.temperature:.3g}"
        fig = reliability_figure(curves, title=f"Reliability: {what}{at}")
        fig.update_layout(width=520, height=500)
        fw = self.reliability_figure
        with fw.batch_update():
            if _same_structure(fw, fig):
                for old, new in zip(fw.data, fig.data):
                    old.update(_trace_props(new), overwrite=True)
                fw.layout.title.text = fig.layout.title.text
            else:
                replace_figure(fw, fig)
        for trace in fw.data:
            trace.on_click(self._on_bin_click)
        self.table_html.value = (
            f"<b>Per class, {what}{at}</b> (confidence: mean top-1 confidence of the samples "
            "predicted as the class, to compare with its precision)"
            + self.per_class.to_html(index=False, float_format=lambda x: f"{x:.3f}", border=0,
                                     na_rep="-")
        )
        self._draw_thumbnails()

    def _panel_names(self) -> list[str]:
        names = list(self._panel_labels)
        if self.series is not None:
            names[0] = self.series.members[self.snapshot_index]
        return names

    def _thumbnails(self, p: Predictions) -> ThumbnailURIs | None:
        if p.images is None:
            return None
        if id(p) not in self._thumbs:
            self._thumbs[id(p)] = hover_thumbnail_uris(p, size=48)
        return self._thumbs[id(p)]

    def _draw_thumbnails(self) -> None:
        if not self.highlighted_ids.size:
            self.thumbnails_html.value = message_html(
                "Click a confusion cell or a reliability bin, or lasso points, to see their "
                "images.")
            return
        p = self.predictions[0]
        uris = self._thumbnails(p)
        ids = self.highlighted_ids[:self.max_thumbnails]
        head = (f"{_samples(len(self.highlighted_ids))} highlighted"
                + (f" (first {len(ids)} shown)" if len(ids) < len(self.highlighted_ids) else ""))
        if uris is None:
            self.thumbnails_html.value = message_html(
                f"{head}. These predictions carry no images (build them with images=...).")
            return
        pos = {int(i): k for k, i in enumerate(p.ids)}
        imgs = "".join(
            f'<img src="{uris[i]}" title="id {i}: true {html.escape(p.class_names[p.y_true[pos[i]]])}'
            f', predicted {html.escape(p.class_names[p.y_pred[pos[i]]])}" style="margin:1px">'
            for i in map(int, ids) if i in pos
        )
        self.thumbnails_html.value = f"<b>{html.escape(head)}</b><br>{imgs}"

    def _note_single_class(self) -> None:
        present = np.unique(self.predictions[0].y_true[self._class_mask(self.predictions[0])])
        if len(present) == 1:
            name = self.predictions[0].class_names[present[0]]
            self._say(f"Only one class ({name}) is in view: the confusion matrix and the "
                      "per-class table have a single row, and colours by class show one colour.",
                      kind="warn")

    # ----- handlers: selection ------------------------------------------------------------------
    def select_cell(self, true_class: int, pred_class: int) -> NDArray[np.int64]:
        """Highlight the samples of one confusion cell everywhere (what a heatmap click does).

        Parameters
        ----------
        true_class, pred_class : int
            Row and column of the cell in the confusion matrix of the left panel.

        Returns
        -------
        ndarray of shape (n_in_cell,)
            The highlighted sample ids (empty if the cell is empty; the views are then unchanged
            and the status line says so).
        """
        p = self.predictions[0]
        t = v.check_int(true_class, "true_class", minimum=0)
        c = v.check_int(pred_class, "pred_class", minimum=0)
        for name, k in (("true_class", t), ("pred_class", c)):
            if k >= p.n_classes:
                raise ValueError(f"`{name}` must be in [0, {p.n_classes - 1}]; got {k}.")
        mask = self._class_mask(p) & (p.y_true == t) & (p.y_pred == c)
        ids = np.sort(p.ids[mask])
        cell = f"true {p.class_names[t]} → predicted {p.class_names[c]}"
        return self._select(
            ids, f"Cell {cell}: {_samples(len(ids))} highlighted.",
            empty=f"Empty selection: no samples in the cell {cell}; the views are unchanged.")

    def select_bin(self, model: str, bin_index: int) -> NDArray[np.int64]:
        """Highlight the samples of one reliability bin everywhere (what a click on a bin does).

        The bin's samples are those the diagram counts in it: among the samples it describes
        (the current selection, or all samples of the shown classes), those of ``model`` whose
        top-1 confidence at the current temperature lies in the bin, ``(edges[b], edges[b + 1]]``
        (the first bin also holds 0). Clicking a bin of a selection's diagram therefore narrows
        the selection; :meth:`clear_selection` goes back to all samples.

        Parameters
        ----------
        model : str
            The curve's name: one of ``curves`` (a panel's model).
        bin_index : int
            The bin, in ``[0, n_bins)``.

        Returns
        -------
        ndarray of shape (n_in_bin,)
            The highlighted sample ids, sorted (empty if the bin is empty; the views are then
            unchanged and the status line says so).
        """
        if not isinstance(model, str):
            raise TypeError(f"`model` must be the name of a curve of the reliability diagram; "
                            f"got {type(model).__name__}.")
        v.check_option(model, "model", list(self.curves))
        curve = self.curves[model]
        b = v.check_int(bin_index, "bin_index", minimum=0)
        if b >= curve.n_bins:
            raise ValueError(f"`bin_index` must be in [0, {curve.n_bins - 1}]; got {b}.")
        p = self.predictions[self._panel_names().index(model)]
        mask = self._selection_mask(p)
        _, conf = self._scaled_probs(p)
        # right-closed bins, as reliability_curve bins them
        in_bin = np.searchsorted(curve.edges[1:-1], conf[mask], side="left") == b
        ids = np.sort(p.ids[mask][in_bin])
        span = f"{curve.edges[b]:.2f}–{curve.edges[b + 1]:.2f}"
        accuracy = float(p.correct[mask][in_bin].mean()) if ids.size else float("nan")
        return self._select(
            ids, f"Bin {span} of {model}: {_samples(len(ids))} highlighted, "
                 f"accuracy {accuracy:.2f}.",
            empty=f"Empty selection: no samples of {model} in the bin {span}; the views are "
                  "unchanged.")

    def select_points(self, ids: ArrayLike) -> NDArray[np.int64]:
        """Make ``ids`` the selection (what a lasso or box selection in a projection does).

        The reliability diagram and the per-class table then describe these samples only, and
        every panel rings them. An empty ``ids`` leaves the views unchanged and says so.

        Parameters
        ----------
        ids : array-like of int, shape (n_selected,)
            Sample ids of the left panel's predictions.

        Returns
        -------
        ndarray of shape (n_selected,)
            The selected ids, sorted and unique.
        """
        wanted = _ids_array(ids)
        p = self.predictions[0]
        unknown = np.setdiff1d(wanted, p.ids)
        if unknown.size:
            raise ValueError(f"`ids` must be sample ids of {self._panel_names()[0]}; got "
                             f"{unknown.size} unknown, e.g. {unknown[:5].tolist()}.")
        return self._select(
            wanted, f"Selection of {_samples(len(wanted))}.",
            empty="Empty selection: no points were selected; the views are unchanged.")

    def _select(self, ids: NDArray[np.int64], message: str, *, empty: str) -> NDArray[np.int64]:
        """The one selection path of cells, bins and lassos: highlight ``ids`` (sorted, unique)
        in every view, or say ``empty`` and change nothing when there are none."""
        if not ids.size:
            self._say(empty)
            return ids
        self._highlight(ids)
        self._say(message)
        return ids

    def clear_selection(self) -> None:
        """Drop the selection: the views describe all samples again."""
        self._highlight(np.zeros(0, dtype=np.int64))
        self._say("")

    def _highlight(self, ids: NDArray[np.int64]) -> None:
        self.highlighted_ids = ids
        for i in range(len(self.frames)):
            self._draw_highlight(i)
        self._draw_selection_views()

    def show_thumbnail(self, sample_id: int) -> None:
        """Show the image of one sample next to the projection (what hovering a point does)."""
        sid = v.check_int(sample_id, "sample_id")
        p = self.predictions[0]
        where = np.flatnonzero(p.ids == sid)
        if not where.size:
            raise ValueError(f"`sample_id` must be a sample id of {self._panel_names()[0]}; "
                             f"got {sid}.")
        uris = self._thumbnails(p)
        k = int(where[0])
        conf = self._scaled_probs(p)[1][k]
        at = "" if self.temperature == 1.0 else f" (T = {self.temperature:.3g})"
        text = (f"id {sid}<br>true {html.escape(p.class_names[p.y_true[k]])}<br>predicted "
                f"{html.escape(p.class_names[p.y_pred[k]])}<br>confidence {conf:.3f}{at}")
        img = f'<img src="{uris[sid]}" width="96"><br>' if uris is not None else ""
        self.hover_html.value = img + text

    # ----- handlers: temperature ----------------------------------------------------------------
    def set_temperature(self, temperature: float) -> None:
        """Compute the probabilities as ``softmax(logits / temperature)`` (what the slider does).

        The reliability diagram, the ECEs (status line and legend), the per-class table's
        ``confidence`` column and the hover's confidence follow; the selection is kept. Accuracy
        and the confusion matrix do not depend on T and are not redrawn.

        Parameters
        ----------
        temperature : float
            T > 0; the slider spans ``T_RANGE`` (0.25 to 4), this method takes any T.
        """
        t = v.check_float(temperature, "temperature")
        if t <= 0:
            raise ValueError(f"`temperature` must be > 0; got {t!r}.")
        self._apply_temperature(t)

    def use_fitted_temperature(self) -> float:
        """Set T to the temperature fitted on validation data (what the "Fitted T" button does).

        For a zoo checkpoint in the left panel, :func:`labviz.calibration.fit_temperature` on the
        logits of its "val" split. User Predictions come without a validation set: T is then
        fitted on their own (shown) samples, and the status line says that the calibration it
        shows is optimistic. With two panels the left panel's temperature applies to both. Each
        fit is done once and remembered.

        Returns
        -------
        float
            The fitted temperature (also the new ``temperature``).
        """
        name = self._zoo_name()
        kind = "info"
        if name is not None:
            if name not in self._fitted:
                val = self._loaded.get((name, "val"))
                if val is None:
                    val = zoo.predictions(name, "val", with_images=False)
                self._fitted[name] = fit_temperature(val.logits, val.y_true)
            t = self._fitted[name]
            where = f"fitted on the val split of {name}"
        else:
            p = self.predictions[0]
            if id(p) not in self._fitted:
                self._fitted[id(p)] = fit_temperature(p.logits, p.y_true)
            t = self._fitted[id(p)]
            where = (f"fitted on the shown samples of {self._panel_names()[0]} themselves, as "
                     "they come without a validation set: the calibration at this T is optimistic")
            kind = "warn"
        if len(self.predictions) > 1:
            where += "; applied to both panels"
        lo, hi = T_RANGE
        if not lo <= t <= hi:
            where += f"; outside the slider's range {lo:g}–{hi:g}, which shows the nearest end"
        self._apply_temperature(t, note=f"Fitted T = {t:.3f}, {where}.", kind=kind)
        return t

    def _apply_temperature(self, t: float, *, note: str = "", kind: str = "info") -> None:
        self.temperature = t
        self._set_control("temperature", t)
        self._draw_selection_views()
        eces = ", ".join(f"{label} {e:.3f}" for label, e in self.ece.items())
        self._say(" ".join(x for x in (
            note, f"T = {t:.3f}: ECE {eces} ({self._what}, probabilities softmax(logits / T)); "
                  "accuracy and the confusion matrix do not depend on T.") if x), kind=kind)

    # ----- handlers: controls -------------------------------------------------------------------
    def set_checkpoint(self, label: str) -> None:
        """Show source ``label`` in the left panel (the selection is cleared)."""
        label = self._check_label(label, "checkpoint")
        self._checkpoint = label
        if self._compare == label:
            self._compare = None
        self._set_control("checkpoint", label)
        self._set_control("compare", self._compare or NO_COMPARE)
        self._reload()

    def set_compare(self, label: str | None) -> None:
        """Show source ``label`` beside the left panel, or only one panel with None."""
        if label is not None:
            label = self._check_label(label, "compare")
        self._compare = None if label == self._checkpoint else label
        self._set_control("compare", self._compare or NO_COMPARE)
        self._reload()

    def set_split(self, split: str) -> None:
        """Show zoo checkpoints on another split (the selection is cleared)."""
        v.check_option(split, "split", SPLITS)
        self._split = split
        self._set_control("split", split)
        self._reload()
        if not any(isinstance(s, str) for s in self._sources.values()):
            self._say("The split applies to zoo checkpoints; these Predictions have one set of "
                      "samples.", kind="warn")

    def set_method(self, method: str) -> None:
        """Project with another method (computed once, then cached on disk)."""
        v.check_option(method, "method", METHODS)
        self._method = method
        self._set_control("method", method)
        self._reload(keep_selection=True)

    def set_color(self, color: str) -> None:
        """Colour the projections by something else; the selection is kept."""
        v.check_option(color, "color", COLOR_BY)
        self._color = color
        self._set_control("color", color)
        for i in range(len(self.frames)):
            self._draw_projection(i)
        if color == "flipped" and not any(p.flipped.any() for p in self.predictions):
            self._say(f"No flipped labels on the {self._split} split: labels are noisy only on "
                      "the train split of the noisy runs.")

    def set_classes(self, classes: Sequence[int]) -> None:
        """Show only the samples of these true classes (the selection is cleared)."""
        ids = self._check_classes(classes, self.predictions[0].n_classes)
        if not ids:
            self._say("Empty selection: no classes are selected; the views are unchanged.")
            return
        if not np.isin(self.predictions[0].y_true, ids).any():
            names = [self.predictions[0].class_names[k] for k in ids]
            self._say(f"Empty selection: no samples of the classes {names} in this split; the "
                      "views are unchanged.")
            return
        self._classes = ids
        self._set_control("classes", ids)
        self.highlighted_ids = np.zeros(0, dtype=np.int64)
        self._say("")
        self._draw_all()

    def set_snapshot(self, index: int) -> None:
        """Step the left panel to member ``index`` of the checkpoint's series (epoch or α).

        The projections were aligned to the chosen checkpoint when it was loaded, and the axis
        ranges cover every member, so only trace data changes (animated for SVG scatters).
        """
        if self.series is None:
            self._say(f"{self._checkpoint} has no epoch snapshots or α sweep: there is nothing "
                      "to step through. The noisy-label runs (e.g. *-ce-noise0.4-s0) have "
                      "snapshots.", kind="warn")
            return
        i = v.check_int(index, "index", minimum=0)
        if i >= len(self.series.members):
            raise ValueError(f"`index` must be in [0, {len(self.series.members) - 1}]; got {i}.")
        self.snapshot_index = i
        self._set_control("snapshot", i)
        self._quiet = True
        try:
            self.controls["play"].value = i
        finally:
            self._quiet = False
        member = self.series.members[i]
        self.predictions[0] = self._load(member)
        self.frames[0] = self._frame(member, self._checkpoint)
        self._draw_projection(0, animate=True)
        self._draw_confusion()
        self._draw_selection_views()
        self._say(f"{member}: {self.series.label(i)}, accuracy {self.predictions[0].accuracy:.3f}.")

    def _reload(self, *, keep_selection: bool = False) -> None:
        if not keep_selection:
            self.highlighted_ids = np.zeros(0, dtype=np.int64)
        self._load_view()
        n_classes = self._reference().n_classes
        self._classes = tuple(k for k in self._classes if k < n_classes) or tuple(range(n_classes))
        self._set_control("classes", self._classes)
        self._draw_all()

    # ----- plotly events ------------------------------------------------------------------------
    def _panel_of(self, trace: object) -> int:
        for i, fw in enumerate(self.projection_figures):
            if any(t is trace for t in fw.data):
                return i
        return -1

    def _on_selection(self, trace: object, points: object, selector: object) -> None:
        # plotly calls this once per trace, in trace order; act once, after the last trace
        i = self._panel_of(trace)
        if i < 0:
            return
        pending = self._pending.setdefault(i, [])
        data = trace.customdata
        pending.extend(int(data[k][0]) for k in points.point_inds)
        if points.trace_index == len(self.projection_figures[i].data) - 1:
            ids = self._pending.pop(i)
            self.select_points(ids)

    def _on_deselect(self, trace: object, points: object) -> None:
        i = self._panel_of(trace)
        if i >= 0 and points.trace_index == len(self.projection_figures[i].data) - 1:
            self.clear_selection()

    def _on_hover(self, trace: object, points: object, state: object) -> None:
        if points.point_inds and self._panel_of(trace) == 0:
            self.show_thumbnail(int(trace.customdata[points.point_inds[0]][0]))

    def _on_cell_click(self, trace: object, points: object, state: object) -> None:
        if not points.point_inds:
            return
        labels = list(trace.x)
        # category labels are what plotly reports for a heatmap cell; map them back to classes
        try:
            t, c = labels.index(points.ys[0]), labels.index(points.xs[0])
        except ValueError:
            t, c = points.point_inds[0]
        self.select_cell(int(t), int(c))

    def _on_bin_click(self, trace: object, points: object, state: object) -> None:
        curve = self.curves.get(trace.legendgroup)  # every trace of a curve is in its legend group
        if not points.point_inds or curve is None:
            return
        k = points.point_inds[0]
        row = np.ravel(trace.customdata[k]) if trace.customdata is not None else np.zeros(0)
        if row.size >= 3:
            # the accuracy and gap traces carry each bin's edges (count, low, high, ...)
            b = int(np.argmin(np.abs(curve.edges[:-1] - float(row[1]))))
        else:
            # the histogram's bars sit at the bin centres, inside their bins
            b = int(np.searchsorted(curve.edges[1:-1], float(trace.x[k]), side="left"))
        self.select_bin(trace.legendgroup, b)


# ----- timing (for benchmarks/) -------------------------------------------------------------------
def time_handlers(explorer: Explorer, *, repeat: int = 5) -> pd.DataFrame:
    """Wall time of each interaction handler of ``explorer`` (Python side: compute, figure
    rebuilds and trace updates; the browser's redraw is not included).

    Runs ``select_cell`` (the largest off-diagonal cell), ``select_points`` (half the samples),
    ``clear_selection``, ``set_color`` ("correct" then back), ``show_thumbnail`` and, when the
    checkpoint has a series, ``set_snapshot`` (first member, then back), each ``repeat`` times.

    Returns
    -------
    pandas.DataFrame
        Columns ``handler``, ``n_points``, ``median_ms``, ``max_ms``; one row per handler.
    """
    if not isinstance(explorer, Explorer):
        raise TypeError(f"`explorer` must be an Explorer; got {type(explorer).__name__}.")
    repeat = v.check_int(repeat, "repeat", minimum=1)
    p = explorer.predictions[0]
    cm = confusion_matrix(p.y_true, p.y_pred, n_classes=p.n_classes)
    np.fill_diagonal(cm, -1)
    t, c = np.unravel_index(int(np.argmax(cm)), cm.shape)
    half = p.ids[: max(1, p.n_samples // 2)]
    color = explorer._color
    steps: list[tuple[str, Callable[[], object]]] = [
        ("select_cell", lambda: explorer.select_cell(int(t), int(c))),
        ("select_points", lambda: explorer.select_points(half)),
        ("clear_selection", explorer.clear_selection),
        ("set_color", lambda: (explorer.set_color("correct"), explorer.set_color(color))),
        ("show_thumbnail", lambda: explorer.show_thumbnail(int(p.ids[0]))),
    ]
    if explorer.series is not None:
        back = explorer.snapshot_index
        steps.append(("set_snapshot", lambda: (explorer.set_snapshot(0),
                                               explorer.set_snapshot(back))))
    rows = []
    for name, step in steps:
        if name == "show_thumbnail" and p.images is None:
            continue
        seconds = []
        for _ in range(repeat):
            start = time.perf_counter()
            step()
            seconds.append(time.perf_counter() - start)
        # the two-call steps (there and back) count as two interactions
        per_call = np.array(seconds) / (2 if name in ("set_color", "set_snapshot") else 1)
        rows.append({"handler": name, "n_points": p.n_samples,
                     "median_ms": 1e3 * float(np.median(per_call)),
                     "max_ms": 1e3 * float(per_call.max())})
    return pd.DataFrame(rows, columns=["handler", "n_points", "median_ms", "max_ms"])
