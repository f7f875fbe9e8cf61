"""The explorer: linked views of one or two models, built by :func:`labviz.explore`.

:class:`Explorer` owns the data (sources, loaded predictions, projections), the one selection
state the views share (:class:`~labviz.widgets.state.ViewState`) and the handlers
(``select_cell``, ``select_points``, ``select_bin``, ``set_snapshot``, ``set_color``...), which
tests and benchmarks can call without a browser. It composes the views: the controls, a
projection view (:mod:`labviz.widgets.projection_views`: plotly, WebGL or a density raster), the
confusion matrix, the reliability diagram and the samples. A handler changes the state, then asks
each view to draw it; a view reports a click or a lasso through a callback, which is a handler.

Every sample is drawn. Up to :data:`PLOTLY_MAX_POINTS` samples the projections are plotly
figures; above, jupyter-scatter's WebGL scatter draws them (``backend="auto"``). Where the page
reports no WebGL (:class:`~labviz.widgets.projection_views.WebGLProbe`), WebGL panels become
density rasters and the status line says so.

Speed. Projections are computed (or read from the disk cache) when a checkpoint, split, method or
series is chosen, never in a click, selection or slider handler; those only mask arrays, rebuild
small figures (reliability, confusion) and update the panels' highlight. Above
:data:`BACKGROUND_FROM` samples a UMAP or t-SNE projection is computed in a background thread
with its progress in the status line, while the current projection stays usable. The temperature
slider keeps each model's max-subtracted logits, so a move is one softmax of the (n_samples,
n_classes) logits per model plus one reliability curve; accuracy and the confusion matrix do not
depend on T (argmax is invariant) and are not recomputed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Literal, Union

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from numpy.typing import ArrayLike, NDArray

from labviz.core import _validation as v
from labviz import zoo
from labviz.core._numeric import softmax
from labviz.compute.calibration import ReliabilityCurve, fit_temperature, reliability_curve
from labviz.compute.confusion import confusion_matrix, per_class_table
from labviz.figures.projection import (
    WEBGL_THRESHOLD,
    ThumbnailURIs,
    hover_thumbnail_uris,
)
from labviz.core.predictions import Predictions
from labviz.compute.projection import METHODS, aligned_projections, projection_frame
from labviz.widgets._common import message_html, samples
from labviz.widgets.projection_views import (
    DensityProjection,
    PlotlyProjection,
    ProjectionView,
    ScatterProjection,
    WebGLProbe,
)
from labviz.widgets.state import Panel, ViewState
from labviz.widgets.views import (
    NO_COMPARE,
    T_RANGE,
    ConfusionView,
    Controls,
    ReliabilityView,
    SamplesView,
)

Source = Union[str, Predictions]
ColorBy = Literal["class", "prediction", "given", "correct", "confidence", "flipped",
                  "non_uniformity"]
COLOR_BY: tuple[str, ...] = ("class", "prediction", "given", "correct", "confidence", "flipped",
                             "non_uniformity")
Backend = Literal["auto", "plotly", "webgl"]
BACKENDS: tuple[str, ...] = ("auto", "plotly", "webgl")
SPLITS: tuple[str, ...] = ("train", "val", "test")
#: ``backend="auto"`` draws up to this many samples per panel with plotly, more with WebGL.
PLOTLY_MAX_POINTS = 20_000
#: From this many samples, UMAP and t-SNE are computed in a background thread.
BACKGROUND_FROM = 20_000

__all__ = ["BACKENDS", "COLOR_BY", "NO_COMPARE", "PLOTLY_MAX_POINTS", "SPLITS", "T_RANGE",
           "Explorer", "time_handlers"]


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


def check_sources(sources: object, name: str = "sources") -> dict[str, Source]:
    """``sources`` (one source or a non-empty sequence: zoo checkpoint names and Predictions with
    features) by label, or a ValueError or TypeError naming the argument ``name``."""
    if isinstance(sources, (str, Predictions)):
        sources = [sources]
    if not isinstance(sources, Sequence) or len(sources) == 0:
        raise TypeError(f"`{name}` must be a zoo checkpoint name, a labviz.Predictions, or a "
                        f"non-empty sequence of them; got {type(sources).__name__}"
                        + (" (empty)." if isinstance(sources, Sequence) else "."))
    out: dict[str, Source] = {}
    for i, s in enumerate(sources):
        if isinstance(s, str):
            try:
                zoo.entry(s)
            except ValueError as exc:
                raise ValueError(f"`{name}` must hold zoo checkpoint names or Predictions; "
                                 f"got the unknown name {s!r} at position {i}. ({exc})") from None
            label = s
        elif isinstance(s, Predictions):
            if s.features is None:
                raise ValueError(f"`{name}[{i}]` must hold features (penultimate "
                                 "activations) to be projected; got features=None.")
            label = s.name or f"model {i + 1}"
        else:
            raise TypeError(f"`{name}` must hold zoo checkpoint names or Predictions; got "
                            f"{type(s).__name__} at position {i}.")
        if label in out:
            label = f"{label} #{i + 1}"
        out[label] = s
    return out


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
    state : ViewState
        What the views draw: panels, classes in view, highlighted samples, colouring, axes.
    projection : ProjectionView
        The projection panels: a ``PlotlyProjection``, ``ScatterProjection`` or
        ``DensityProjection`` (see ``backend``).
    projection_figures : list of plotly.graph_objects.FigureWidget
        The plotly panels (empty for the other views). Their last trace, ``"highlight"``, rings
        the highlighted samples; every trace's ``customdata[:, 0]`` is the sample id.
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
    webgl : bool or None
        Whether the page has WebGL, as its probe reported (None before a page showed it).
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
        backend: str = "auto",
        max_thumbnails: int = 32,
    ) -> None:
        self._sources = check_sources(sources)
        v.check_option(split, "split", SPLITS)
        v.check_option(method, "method", METHODS)
        v.check_option(color, "color", COLOR_BY)
        v.check_option(backend, "backend", BACKENDS)
        self.n_bins = v.check_int(n_bins, "n_bins", minimum=1)
        self.max_thumbnails = v.check_int(max_thumbnails, "max_thumbnails", minimum=1)
        self.backend = backend
        labels = list(self._sources)
        self._split, self._method = split, method
        self._checkpoint = labels[0]
        self._compare = labels[1] if len(labels) > 1 else None

        self._loaded: dict[tuple[str, str], Predictions] = {}
        self._frames: dict[tuple, pd.DataFrame] = {}
        self._thumbs: dict[int, ThumbnailURIs] = {}
        self._shifted: dict[int, NDArray[np.float64]] = {}  # logits - rowmax, per model
        self._scaled: dict[int, tuple[float, NDArray[np.float64], NDArray[np.float64]]] = {}
        self._fitted: dict[object, float] = {}  # fitted temperature per zoo name or Predictions
        self._worker: threading.Thread | None = None  # a background projection
        self._generation = 0  # bumped by every new view, so a stale background result is dropped

        self.state = ViewState()
        self.state.color = color
        self.status = ""
        self.per_class = pd.DataFrame()
        self.curves: dict[str, ReliabilityCurve] = {}
        self.ece: dict[str, float] = {}
        self._what = ""  # what the selection views describe, e.g. "all 450 samples"
        self.series: zoo.Series | None = None
        self.snapshot_index: int | None = None
        self.webgl: bool | None = None

        self._build_widgets(labels)
        if method != "pca" and self._n_reference() >= BACKGROUND_FROM:
            # open on PCA at once; the slow projection arrives in the background
            self._method = "pca"
            self._load_view()
            self._start_background(method)
        else:
            self._load_view()
        n_classes = self._reference().n_classes
        self.state.classes = (tuple(range(n_classes)) if classes is None
                              else self._check_classes(classes, n_classes))
        self.controls_view.show_classes(self._reference().class_names, self.state.classes)
        self._draw_all()

    # ----- validation ---------------------------------------------------------------------------
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
        cv = Controls(labels=labels, checkpoint=self._checkpoint, compare=self._compare,
                      split=self._split, splits=SPLITS, method=self._method, methods=METHODS,
                      color=self.state.color, colors=COLOR_BY)
        self.controls_view, self.controls = cv, cv.widgets
        cv.on_change("checkpoint", self.set_checkpoint)
        cv.on_change("compare", lambda new: self.set_compare(None if new == NO_COMPARE else new))
        cv.on_change("split", self.set_split)
        cv.on_change("method", self.set_method)
        cv.on_change("color", self.set_color)
        cv.on_change("classes", self.set_classes)
        cv.on_change("snapshot", self.set_snapshot)
        cv.on_change("temperature", self.set_temperature)
        cv["fitted_temperature"].on_click(lambda _button: self.use_fitted_temperature())

        self.status_html = widgets.HTML()
        self.series_html = widgets.HTML()
        self.confusion = ConfusionView(on_cell=self.select_cell)
        self.reliability = ReliabilityView(on_bin=self.select_bin)
        self.samples = SamplesView()
        self.probe = WebGLProbe()
        self.probe.observe(lambda change: self._on_webgl(change["new"]), "webgl")
        self.projection: ProjectionView | None = None
        self._projection_box = widgets.Box()
        self.widget = widgets.VBox([
            self.status_html,
            widgets.HBox([cv["checkpoint"], cv["compare"], cv["split"]]),
            widgets.HBox([cv["method"], cv["color"], cv["classes"]]),
            widgets.HBox([cv["play"], cv["snapshot"], self.series_html]),
            widgets.HBox([self._projection_box, self.samples.hover_html]),
            widgets.HBox([cv["temperature"], cv["fitted_temperature"]]),
            widgets.HBox([self.confusion.widget, self.reliability.widget]),
            widgets.HBox([self.samples.table_html, self.samples.thumbnails_html]),
            self.probe,
        ])
        self.widget.add_class("labviz-explorer")

    # views' widgets, under the names the explorer has always had
    @property
    def confusion_figure(self) -> go.FigureWidget:
        return self.confusion.figure

    @property
    def reliability_figure(self) -> go.FigureWidget:
        return self.reliability.figure

    @property
    def table_html(self) -> widgets.HTML:
        return self.samples.table_html

    @property
    def thumbnails_html(self) -> widgets.HTML:
        return self.samples.thumbnails_html

    @property
    def hover_html(self) -> widgets.HTML:
        return self.samples.hover_html

    @property
    def projection_figures(self) -> list[go.FigureWidget]:
        return self.projection.figures if isinstance(self.projection, PlotlyProjection) else []

    @property
    def highlighted_ids(self) -> NDArray[np.int64]:
        return self.state.highlighted_ids

    @property
    def temperature(self) -> float:
        return self.state.temperature

    @property
    def predictions(self) -> list[Predictions]:
        return [p.predictions for p in self.state.panels]

    @property
    def frames(self) -> list[pd.DataFrame]:
        return [p.frame for p in self.state.panels]

    @property
    def _color(self) -> str:
        return self.state.color

    @property
    def _classes(self) -> tuple[int, ...]:
        return self.state.classes

    def _say(self, text: str, *, kind: str = "info") -> None:
        self.status = text
        self.status_html.value = message_html(text, kind=kind) if text else ""

    def _repr_mimebundle_(self, **kwargs: object) -> dict:
        return self.widget._repr_mimebundle_(**kwargs)

    # ----- the projection view ------------------------------------------------------------------
    def _projection_class(self) -> type[ProjectionView]:
        n = max(p.predictions.n_samples for p in self.state.panels)
        plotly = (self.backend == "plotly"
                  or (self.backend == "auto" and n <= PLOTLY_MAX_POINTS))
        if self.webgl is False and (not plotly or n > WEBGL_THRESHOLD):
            return DensityProjection  # plotly above WEBGL_THRESHOLD draws with WebGL too
        return PlotlyProjection if plotly else ScatterProjection

    def _use_projection_view(self) -> None:
        kind = self._projection_class()
        if type(self.projection) is not kind:
            self.projection = kind(on_select=self.select_points, on_clear=self.clear_selection,
                                   on_hover=self.show_thumbnail)
            self._projection_box.children = (self.projection.widget,)

    def _on_webgl(self, available: bool | None) -> None:
        self.webgl = available
        if available is False and self.state.panels:
            before = type(self.projection)
            self._use_projection_view()
            if type(self.projection) is not before:
                self.projection.draw(self.state)
                self._say("This browser gives no WebGL (e.g. a remote desktop without a GPU): "
                          "the projections are density rasters (orange: the highlighted "
                          "samples). Lasso selection needs WebGL; confusion cells and "
                          "reliability bins still select.", kind="warn")

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

    def _n_reference(self) -> int:
        source = self._sources[self._checkpoint]
        return source.n_samples if isinstance(source, Predictions) else self._reference().n_samples

    def _frame(self, label: str, reference: str, method: str | None = None,
               progress: Callable[[float], None] | None = None) -> pd.DataFrame:
        """Projection of ``label`` on the axes of ``reference`` (Procrustes on shared ids)."""
        method = method or self._method
        key = (label, reference, self._split, method)
        if key not in self._frames:
            ref = self._load(reference)
            if label == reference:
                frame = projection_frame(ref, method=method, progress=progress)
            else:
                frame = aligned_projections(ref, self._load(label), method=method)[1]
            self._frames[key] = frame
        return self._frames[key]

    def _panel_frames(self, method: str | None = None,
                      progress: Callable[[float], None] | None = None,
                      ) -> tuple[list[pd.DataFrame], list[str]]:
        """Every frame the view needs (series members, then the compare panel) and notes;
        ``progress`` follows the reference projection, which the others are aligned to."""
        names = list(self.series.members) if self.series else [self._checkpoint]
        self._frame(self._checkpoint, self._checkpoint, method, progress)
        frames = [self._frame(m, self._checkpoint, method) for m in names]
        notes = []
        if self._compare is not None:
            ref, other = self._reference(), self._load(self._compare)
            if other.n_classes != ref.n_classes:
                notes.append(f"{self._compare} has {other.n_classes} classes and "
                             f"{self._checkpoint} {ref.n_classes}; showing one panel.")
                self._compare = None
            elif np.intersect1d(ref.ids, other.ids).size >= 3:
                frames.append(self._frame(self._compare, self._checkpoint, method))
            else:
                # Procrustes needs shared samples; without them the panels share nothing
                frames.append(projection_frame(other, method=method or self._method))
                notes.append(f"{self._compare} shares no samples with {self._checkpoint}; "
                             "its projection is not aligned and shows no highlight.")
        return frames, notes

    def _load_view(self) -> None:
        """Load the panels' predictions and projections, and every series member's (precomputed
        here so that the slider handler never projects)."""
        self._generation += 1
        self.series = None
        self.snapshot_index = None
        if isinstance(self._sources[self._checkpoint], str):
            self.series = zoo.series_for(self._sources[self._checkpoint])
        if self.series is not None:
            self.snapshot_index = self.series.members.index(self._sources[self._checkpoint])
        frames, notes = self._panel_frames()
        xs = np.concatenate([f["x"].to_numpy() for f in frames])
        ys = np.concatenate([f["y"].to_numpy() for f in frames])
        state = self.state
        state.ranges = (_padded(xs.min(), xs.max()), _padded(ys.min(), ys.max()))
        state.view_key = f"{self._checkpoint}|{self._compare}|{self._split}|{self._method}"
        left = self.series.members[self.snapshot_index] if self.series else self._checkpoint
        state.panels = [Panel(left, self._title(left), self._load(left),
                              self._frame(left, self._checkpoint))]
        if self._compare is not None:
            compare = self._load(self._compare)
            state.panels.append(Panel(self._compare, self._compare, compare, frames[-1]))
        state.set_highlight(state.highlighted_ids)
        self._use_projection_view()
        self._update_series_controls()
        self._update_temperature_controls()
        self._say(" ".join(notes), kind="warn")

    def _title(self, name: str) -> str:
        if self.series is None or name != self.series.members[self.snapshot_index]:
            return name
        return f"{name} ({self.series.label(self.snapshot_index)})"

    def _start_background(self, method: str) -> None:
        """Compute the ``method`` projections in a thread; show them when they are done."""
        generation, n = self._generation, self._n_reference()
        shown = self._method.upper()
        said = [-1]

        def progress(done: float) -> None:
            percent = int(100 * done)
            if percent >= said[0] + 5 and generation == self._generation:
                said[0] = percent
                self._say(f"Computing the {method.upper()} projection of {samples(n)} in the "
                          f"background: {percent}% (it is cached on disk afterwards); {shown} is "
                          "shown meanwhile.", kind="busy")

        progress(0.0)

        def work() -> None:
            try:
                self._panel_frames(method, progress)
            except Exception as exc:  # shown, never lost in the thread
                self._say(f"The {method} projection failed: {exc}", kind="warn")
                return
            if generation == self._generation:
                self._method = method
                self.controls_view.show("method", method)
                self._reload(keep_selection=True)
                self._say(f"{method.upper()} projection of {samples(n)} ready.")

        self._worker = threading.Thread(target=work, daemon=True, name="labviz-projection")
        self._worker.start()

    def wait_projection(self, timeout: float | None = None) -> bool:
        """Wait for a background projection; True when none is running any more."""
        if self._worker is not None:
            self._worker.join(timeout)
        return self._worker is None or not self._worker.is_alive()

    def _update_series_controls(self) -> None:
        self.controls_view.show_series(self.series, self.snapshot_index)
        if self.series is None:
            self.series_html.value = message_html(
                f"{self._checkpoint} has no epoch snapshots or α sweep to step through.")
        else:
            s = self.series
            what = "epoch snapshots" if s.kind == "epoch" else "label-smoothing sweep"
            self.series_html.value = message_html(f"{s.name}: {what}, {len(s.members)} steps.")

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

    def _panel_names(self) -> list[str]:
        return [p.name for p in self.state.panels]

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
        key, t = id(p), self.state.temperature
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

    # ----- drawing ------------------------------------------------------------------------------
    def _draw_all(self) -> None:
        self.projection.draw(self.state)
        self._draw_confusion()
        self._draw_selection_views()
        self._note_single_class()

    def _draw_confusion(self) -> None:
        panel = self.state.panels[0]
        p, mask = panel.predictions, self.state.class_mask(0)
        counts = confusion_matrix(p.y_true[mask], p.y_pred[mask], n_classes=p.n_classes)
        self.confusion.draw(counts, p.class_names,
                            f"{panel.name}: confusion ({int(mask.sum())} samples)")

    def _draw_selection_views(self) -> None:
        """Reliability diagram, per-class table and thumbnails of the selection (or of all)."""
        curves, tables = {}, []
        selected = bool(self.highlighted_ids.size)
        for i, panel in enumerate(self.state.panels):
            p, m = panel.predictions, self.state.selection_mask(i)
            if not m.any():
                continue
            probs, conf = self._scaled_probs(p)
            every = bool(m.all())  # skip copying all the rows through a full mask
            curves[panel.name] = reliability_curve(p.y_true if every else p.y_true[m],
                                                   probs if every else probs[m],
                                                   n_bins=self.n_bins)
            y_pred = p.y_pred if every else p.y_pred[m]
            t = per_class_table(p.y_true if every else p.y_true[m], y_pred, n_classes=p.n_classes,
                                class_names=p.class_names)
            predicted = np.bincount(y_pred, minlength=p.n_classes)
            with np.errstate(invalid="ignore", divide="ignore"):
                # top-label calibration per predicted class: compare it with the precision
                mean_conf = np.bincount(y_pred, weights=conf if every else conf[m],
                                        minlength=p.n_classes) / predicted
            t.insert(t.columns.get_loc("precision") + 1, "confidence", mean_conf)
            t.insert(0, "model", panel.name)
            if selected:
                # a selection's table lists the classes it holds or predicts, not ten rows of 0
                t = t[(t["support"] > 0) | (predicted > 0)]
            tables.append(t)
        self.curves = curves
        self.ece = {label: c.calibration_error("l1") for label, c in curves.items()}
        self.per_class = pd.concat(tables, ignore_index=True)
        n = next(iter(curves.values())).n_samples
        what = f"selection of {samples(n)}" if selected else f"all {samples(n)}"
        self._what = what
        t = self.state.temperature
        at = "" if t == 1.0 else f" at T = {t:.3g}"
        self.reliability.draw(curves, f"Reliability: {what}{at}")
        self.samples.draw_table(self.per_class, f"Per class, {what}{at}")
        self._draw_thumbnails()

    def _thumbnails(self, p: Predictions) -> ThumbnailURIs | None:
        if p.images is None:
            return None
        if id(p) not in self._thumbs:
            self._thumbs[id(p)] = hover_thumbnail_uris(p, size=48)
        return self._thumbs[id(p)]

    def _draw_thumbnails(self) -> None:
        panel, ids = self.state.panels[0], self.highlighted_ids
        rows = panel.rows_of(ids[:self.max_thumbnails])
        self.samples.draw_thumbnails(panel.predictions, len(ids), rows,
                                     self._thumbnails(panel.predictions))

    def _note_single_class(self) -> None:
        p = self.predictions[0]
        present = np.unique(p.y_true[self.state.class_mask(0)])
        if len(present) == 1:
            self._say(f"Only one class ({p.class_names[present[0]]}) is in view: the confusion "
                      "matrix and the per-class table have a single row, and colours by class "
                      "show one colour.", kind="warn")

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
        mask = self.state.class_mask(0) & (p.y_true == t) & (p.y_pred == c)
        ids = np.sort(p.ids[mask])
        cell = f"true {p.class_names[t]} → predicted {p.class_names[c]}"
        return self._select(
            ids, f"Cell {cell}: {samples(len(ids))} highlighted.",
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
        i = self._panel_names().index(model)
        p, mask = self.predictions[i], self.state.selection_mask(i)
        _, conf = self._scaled_probs(p)
        # right-closed bins, as reliability_curve bins them
        in_bin = np.searchsorted(curve.edges[1:-1], conf[mask], side="left") == b
        ids = np.sort(p.ids[mask][in_bin])
        span = f"{curve.edges[b]:.2f}–{curve.edges[b + 1]:.2f}"
        accuracy = float(p.correct[mask][in_bin].mean()) if ids.size else float("nan")
        return self._select(
            ids, f"Bin {span} of {model}: {samples(len(ids))} highlighted, "
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
        if self.state.panels[0].rows_of(wanted).size != wanted.size:
            unknown = np.setdiff1d(wanted, p.ids)
            raise ValueError(f"`ids` must be sample ids of {self._panel_names()[0]}; got "
                             f"{unknown.size} unknown, e.g. {unknown[:5].tolist()}.")
        return self._select(
            wanted, f"Selection of {samples(len(wanted))}.",
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
        self.state.set_highlight(ids)
        self.projection.draw_highlight(self.state)
        self._draw_selection_views()

    def show_thumbnail(self, sample_id: int) -> None:
        """Show the image of one sample next to the projection (what hovering a point does)."""
        sid = v.check_int(sample_id, "sample_id")
        p = self.predictions[0]
        where = self.state.panels[0].rows_of(np.array([sid], dtype=np.int64))
        if not where.size:
            raise ValueError(f"`sample_id` must be a sample id of {self._panel_names()[0]}; "
                             f"got {sid}.")
        uris, k = self._thumbnails(p), int(where[0])
        self.samples.show_sample(p, k, float(self._scaled_probs(p)[1][k]), self.temperature,
                                 None if uris is None else uris[sid])

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

        For a zoo checkpoint in the left panel, :func:`labviz.compute.calibration.fit_temperature` on the
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
        self.state.temperature = t
        self.controls_view.show("temperature", t)
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
        self.controls_view.show("checkpoint", label)
        self.controls_view.show("compare", self._compare or NO_COMPARE)
        self._reload()

    def set_compare(self, label: str | None) -> None:
        """Show source ``label`` beside the left panel, or only one panel with None."""
        if label is not None:
            label = self._check_label(label, "compare")
        self._compare = None if label == self._checkpoint else label
        self.controls_view.show("compare", self._compare or NO_COMPARE)
        self._reload()

    def set_split(self, split: str) -> None:
        """Show zoo checkpoints on another split (the selection is cleared)."""
        v.check_option(split, "split", SPLITS)
        self._split = split
        self.controls_view.show("split", split)
        self._reload()
        if not any(isinstance(s, str) for s in self._sources.values()):
            self._say("The split applies to zoo checkpoints; these Predictions have one set of "
                      "samples.", kind="warn")

    def set_method(self, method: str) -> None:
        """Project with another method (computed once, then cached on disk).

        From :data:`BACKGROUND_FROM` samples, UMAP and t-SNE are computed in a background thread
        (the status line says so, and :meth:`wait_projection` waits for it); the views stay
        usable on the current projection and switch when it is done.
        """
        v.check_option(method, "method", METHODS)
        self.controls_view.show("method", method)
        if method != "pca" and self._n_reference() >= BACKGROUND_FROM:
            self._start_background(method)
            return
        self._method = method
        self._reload(keep_selection=True)

    def set_color(self, color: str) -> None:
        """Colour the projections by something else; the selection is kept."""
        v.check_option(color, "color", COLOR_BY)
        self.state.color = color
        self.controls_view.show("color", color)
        self.projection.draw(self.state)
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
        self.state.classes = ids
        self.controls_view.show("classes", ids)
        self.state.set_highlight(np.zeros(0, dtype=np.int64))
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
        with self.controls_view.quiet():
            self.controls["snapshot"].value = i
            self.controls["play"].value = i
        member = self.series.members[i]
        self.state.panels[0] = Panel(member, self._title(member), self._load(member),
                                     self._frame(member, self._checkpoint))
        self.projection.draw(self.state, animate=True)
        self._draw_confusion()
        self._draw_selection_views()
        self._say(f"{member}: {self.series.label(i)}, accuracy {self.predictions[0].accuracy:.3f}.")

    def _reload(self, *, keep_selection: bool = False) -> None:
        if not keep_selection:
            self.state.set_highlight(np.zeros(0, dtype=np.int64))
        self._load_view()
        n_classes = self._reference().n_classes
        self.state.classes = (tuple(k for k in self.state.classes if k < n_classes)
                              or tuple(range(n_classes)))
        self.controls_view.show_classes(self._reference().class_names, self.state.classes)
        self._draw_all()


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
