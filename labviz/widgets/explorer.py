"""The explorer: linked views of one or two models, built by :func:`labviz.explore`.

:class:`Explorer` is the mediator. It owns the one selection state the views share
(:class:`~labviz.widgets.state.ViewState`) and the handlers (``select_cell``, ``select_points``,
``select_bin``, ``set_snapshot``, ``set_color``...), which tests and benchmarks can call without
a browser. A handler changes the state, then asks each view to draw it; a view reports a click or
a lasso through a callback, which is a handler. The views are the controls, a projection view
(:mod:`labviz.widgets.projection_views`: plotly, WebGL or a density raster), the confusion
matrix, the reliability diagram and the samples (:mod:`labviz.widgets.views`). What is not
mediation lives beside it: the models and their cached projections in
:mod:`labviz.widgets.explorer_data`, which samples a click or a lasso selects in
:mod:`labviz.widgets.selections`, the numbers of the selection views in
:mod:`labviz.widgets.summary`, the probabilities at a temperature in
:mod:`labviz.widgets.temperature` and the background projection in
:mod:`labviz.widgets.background`.

Every sample is drawn. Up to :data:`PLOTLY_MAX_POINTS` samples the projections are plotly
figures; above, jupyter-scatter's WebGL scatter draws them (``backend="auto"``). Where the page
reports no WebGL (:class:`~labviz.widgets.projection_views.WebGLProbe`), WebGL panels become
density rasters and the status line says so.

Speed. Projections are computed (or read from the disk cache) when a checkpoint, split, method or
series is chosen, never in a click, selection or slider handler; those only mask arrays, rebuild
small figures (reliability, confusion) and update the panels' highlight. From
:data:`BACKGROUND_FROM` samples a UMAP or t-SNE projection is computed in a background thread
with its progress in the status line, while the current projection stays usable. A move of the
temperature slider is one softmax of the (n_samples, n_classes) logits per model plus one
reliability curve; accuracy and the confusion matrix do not depend on T (argmax is invariant) and
are not recomputed.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from numpy.typing import ArrayLike, NDArray

from labviz.compute.calibration import ReliabilityCurve
from labviz.compute.confusion import confusion_matrix
from labviz.compute.projection import METHODS, Method
from labviz.core import _validation as v
from labviz.core.predictions import Predictions, Split
from labviz.widgets._common import message_html, samples
from labviz.widgets._deprecated import EXPLORER_ALIASES, add_deprecated_aliases
from labviz.widgets.background import BackgroundProjection
from labviz.widgets.explorer_data import ExplorerData, Source, check_sources
from labviz.widgets.finds import Finds
from labviz.widgets.projection_views import (
    NO_WEBGL_NOTE,
    PlotlyProjection,
    ProjectionView,
    WebGLProbe,
    projection_view_class,
)
from labviz.widgets.selections import (
    Selection,
    bin_selection,
    cell_selection,
    check_classes,
    classes_in_view,
    points_selection,
    sample_row,
)
from labviz.widgets.state import COLOR_BY, ColorBy, ViewState
from labviz.widgets.summary import no_flipped_note, single_class_note, summarize_selection
from labviz.widgets.temperature import ScaledProbabilities
from labviz.widgets.views import (
    NO_COMPARE,
    NO_SERIES_NOTE,
    T_RANGE,
    ConfusionView,
    Controls,
    ReliabilityView,
    SamplesView,
    explorer_layout,
    slider_range_note,
    status_line,
)

if TYPE_CHECKING:
    from labviz.zoo import Series

Backend = Literal["auto", "plotly", "webgl"]
BACKENDS: tuple[str, ...] = ("auto", "plotly", "webgl")
SPLITS: tuple[str, ...] = ("train", "val", "test")
#: ``backend="auto"`` draws up to this many samples per panel with plotly, more with WebGL.
PLOTLY_MAX_POINTS = 20_000
#: From this many samples, UMAP and t-SNE are computed in a background thread.
BACKGROUND_FROM = 20_000

__all__ = ["BACKENDS", "COLOR_BY", "NO_COMPARE", "PLOTLY_MAX_POINTS", "SPLITS", "T_RANGE",
           "Backend", "ColorBy", "Explorer", "Source", "time_handlers"]


class Explorer:
    """Linked views of one or two models; see :func:`labviz.explore` for the parameters.

    Attributes
    ----------
    widget : ipywidgets.VBox
        The whole interface (what a notebook displays).
    controls : dict of str to ipywidgets.Widget
        The controls by name; setting a control's ``value`` (or a click on the
        ``fitted_temperature`` button) runs its handler. ``controls_view`` holds them.
    state : ViewState
        What the views draw: panels, classes in view, the selection (``state.highlighted_ids``),
        colouring, axes, and the temperature T of ``softmax(logits / T)`` (``state.temperature``).
    projection : ProjectionView
        The projection panels: plotly figures, WebGL scatters or density rasters (``backend``),
        set when the first view is loaded.
    confusion, reliability, samples : ConfusionView, ReliabilityView, SamplesView
        The other views (``confusion.figure``, ``reliability.figure``, ``samples.table_html``...).
    data : ExplorerData
        The sources and the caches of their predictions, projections and fitted temperatures.
    curves, ece, per_class : dict, dict, pandas.DataFrame
        What the selection views show (see :class:`~labviz.widgets.summary.SelectionSummary`).
    status : str
        The message in the status line (empty states, notes).
    series, snapshot_index : Series or None, int or None
        The epoch snapshots or LS sweep of the shown checkpoint, and the member on the left.
    webgl : bool or None
        Whether the page has WebGL, as its probe reported (None before a page showed it).
    finds : Finds
        A clicked point's neighbours, score colourings, regions and error slices.
    """

    projection: ProjectionView

    def __init__(self, sources: Source | Sequence[Source], *, split: Split | None = None,
                 method: Method = "pca", color: ColorBy = "class",
                 classes: Sequence[int] | None = None, n_bins: int = 15,
                 backend: Backend = "auto", max_thumbnails: int = 32) -> None:
        self.data = ExplorerData(check_sources(sources))
        self._split: Split = "test" if split is None else self.data.check_split(split, SPLITS)
        self._method: Method = v.check_option(method, "method", METHODS)
        self.state = ViewState()
        self.state.color = v.check_option(color, "color", COLOR_BY)
        self.backend: Backend = v.check_option(backend, "backend", BACKENDS)
        self.n_bins = v.check_int(n_bins, "n_bins", minimum=1)
        self.max_thumbnails = v.check_int(max_thumbnails, "max_thumbnails", minimum=1)
        labels = list(self.data.sources)
        self._checkpoint, self._compare = labels[0], (labels[1] if len(labels) > 1 else None)
        self._probabilities = ScaledProbabilities()
        self._background = BackgroundProjection()
        self.status = ""
        self.per_class = pd.DataFrame()
        self.curves: dict[str, ReliabilityCurve] = {}
        self.ece: dict[str, float] = {}
        self.series: Series | None = None
        self.snapshot_index: int | None = None
        self.webgl: bool | None = None
        self._build_widgets(labels)
        if classes is not None:
            n_classes = self.data.predictions(self._checkpoint, self._split).n_classes
            self.state.classes = check_classes(classes, n_classes)
        deferred = self._in_background(method)
        if deferred:
            self._method = "pca"  # shown at once; the slow projection arrives in the background
        self._reload(keep_selection=True)
        if deferred:
            self._start_background(method)

    def _build_widgets(self, labels: list[str]) -> None:
        cv = Controls(labels=labels, checkpoint=self._checkpoint, compare=self._compare,
                      split=self._split, splits=SPLITS, method=self._method, methods=METHODS,
                      color=self.state.color, colors=COLOR_BY, zoo=self.data.has_splits)
        self.controls_view, self.controls = cv, cv.widgets
        cv.on_change({
            "checkpoint": self.set_checkpoint, "split": self.set_split, "method": self.set_method,
            "compare": lambda new: self.set_compare(None if new == NO_COMPARE else new),
            "color": self.set_color, "classes": self.set_classes, "snapshot": self.set_snapshot,
            "temperature": self.set_temperature})
        cv["fitted_temperature"].on_click(lambda _button: self.use_fitted_temperature())
        self.status_html = status_line()
        self.confusion = ConfusionView(on_cell=self.select_cell)
        self.reliability = ReliabilityView(on_bin=self.select_bin)
        self.samples = SamplesView()
        self.finds = Finds(self.state, self._probabilities, select=self._select, say=self._say,
                           thumbnails=self.data.thumbnails, projection=lambda: self.projection)
        self.probe = WebGLProbe()
        self.probe.observe(lambda change: self._on_webgl(change["new"]), "webgl")
        self._projection_box = widgets.Box()
        self.widget = explorer_layout(cv, status=self.status_html, projection=self._projection_box,
                                      confusion=self.confusion, reliability=self.reliability,
                                      samples=self.samples, probe=self.probe, finds=self.finds.view)

    @property
    def predictions(self) -> list[Predictions]:
        """The models in the panels (the series member on the left when stepping a series)."""
        return [p.predictions for p in self.state.panels]

    @property
    def frames(self) -> list[pd.DataFrame]:
        """Their projections on shared axes (``projection_frame`` rows, aligned)."""
        return [p.frame for p in self.state.panels]

    @property
    def projection_figures(self) -> list[go.FigureWidget]:
        """The plotly panels (empty for the other views): each trace's ``customdata[:, 0]`` is the
        sample id, and the last trace, ``"highlight"``, rings the highlighted samples."""
        return self.projection.figures if isinstance(self.projection, PlotlyProjection) else []

    def _say(self, text: str, kind: str = "info") -> None:
        self.status = text
        self.status_html.value = message_html(text, kind=kind) if text else ""

    def _repr_mimebundle_(self, **kwargs: object) -> dict[str, object]:
        return self.widget._repr_mimebundle_(**kwargs)

    # ----- loading a view -----------------------------------------------------------------------
    def _in_background(self, method: Method) -> bool:
        """Whether a ``method`` projection of the checkpoint is computed in the background."""
        return (method != "pca"
                and self.data.n_samples(self._checkpoint, self._split) >= BACKGROUND_FROM)

    def _use_projection_view(self) -> bool:
        """Put the projection view the panels and the page call for in place; True if new."""
        kind = projection_view_class(backend=self.backend, webgl=self.webgl,
                                     n_samples=max(p.n_samples for p in self.predictions),
                                     plotly_max_points=PLOTLY_MAX_POINTS)
        if type(getattr(self, "projection", None)) is kind:  # (none before the first view)
            return False
        self.projection = kind(on_select=self.select_points, on_clear=self.clear_selection,
                               on_hover=self.show_thumbnail, on_point=self.finds.show_neighbours)
        self._projection_box.children = (self.projection.widget,)
        return True

    def _on_webgl(self, available: bool | None) -> None:
        self.webgl = available
        if available is False and self.state.panels and self._use_projection_view():
            self.projection.draw(self.state)
            self._say(NO_WEBGL_NOTE, "warn")

    def _reload(self, *, keep_selection: bool = False) -> None:
        """Load the panels of the chosen models (every series member's projection too: the slider
        never projects) and draw them, with the classes in view they have (else all)."""
        self._background.new_view()
        view = self.data.load_view(self._checkpoint, self._compare, self._split, self._method)
        self.series, self.snapshot_index = view.series, view.snapshot_index
        self._compare = view.compare
        state, left = self.state, view.panels[0]
        state.panels, state.ranges, state.view_key = view.panels, view.ranges, view.key
        state.set_highlight(state.highlighted_ids if keep_selection
                            else np.zeros(0, dtype=np.int64))
        n = left.predictions.n_classes
        state.classes = tuple(k for k in state.classes if k < n) or tuple(range(n))
        self._use_projection_view()
        self.controls_view.show_series(self.series, self.snapshot_index, self._checkpoint)
        self.controls_view.show_fit_source(zoo_checkpoint=bool(self.data.zoo_name(left.name)))
        self.controls_view.show_classes(left.predictions.class_names, state.classes)
        self._say(view.notes, "warn")
        self._draw_all()

    def _start_background(self, method: Method) -> None:
        """Compute the ``method`` projections in a thread; show them when they are done."""
        checkpoint, compare, split = self._checkpoint, self._compare, self._split

        def show() -> None:
            self._method = method
            self.controls_view.show("method", method)
            self._reload(keep_selection=True)

        self._background.start(
            lambda progress: self.data.load_view(checkpoint, compare, split, method, progress),
            method=method, n_samples=self.data.n_samples(checkpoint, split), shown=self._method,
            on_done=show, say=self._say)

    def wait_projection(self, timeout: float | None = None) -> bool:
        """Wait for a background projection; True when none is running."""
        return self._background.wait(timeout)

    # ----- drawing ------------------------------------------------------------------------------
    def _draw_all(self, *, animate: bool = False) -> None:
        """Draw every view (``animate``: a snapshot step, on the same axes)."""
        self.finds.draw_projection(animate=animate)  # with the score coloured by
        self.finds.draw_lists()
        panel, mask = self.state.panels[0], self.state.class_mask(0)
        p = panel.predictions
        counts = confusion_matrix(p.y_true[mask], p.y_pred[mask], n_classes=p.n_classes)
        self.confusion.draw(counts, p.class_names,
                            f"{panel.name}: confusion ({samples(int(mask.sum()))})")
        self.confusion.draw_pairs(p, mask, self.data.thumbnails(p))
        self._draw_selection_views()
        if note := single_class_note(self.state):
            self._say(note, "warn")

    def _draw_selection_views(self) -> None:
        """Reliability diagram, per-class table and thumbnails of the selection (or of all)."""
        self._probabilities.keep_only(self.predictions)
        self._summary = summary = summarize_selection(self.state, self._probabilities,
                                                      n_bins=self.n_bins)
        self.curves, self.ece, self.per_class = summary.curves, summary.ece, summary.per_class
        self.reliability.draw(self.curves, f"Reliability: {summary.heading}")
        self.samples.draw_table(self.per_class, f"Per class, {summary.heading}")
        panel, ids = self.state.panels[0], self.state.highlighted_ids
        self.samples.draw_thumbnails(
            panel.predictions, len(ids), panel.rows_of(ids[:self.max_thumbnails]),
            self.data.thumbnails(panel.predictions),
            self._probabilities.confidence(panel.predictions, self.state.temperature))

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
        return self._select(cell_selection(self.state, true_class, pred_class))

    def select_bin(self, model: str, bin_index: int) -> NDArray[np.int64]:
        """Highlight the samples the diagram counts in one bin, at the current temperature (what
        a click on a bin does; :func:`~labviz.widgets.selections.bin_selection`). A bin of a
        selection's diagram narrows the selection; :meth:`clear_selection` goes back to all.

        Parameters
        ----------
        model, bin_index : str, int
            The curve's name (one of ``curves``: a panel's model), and the bin, in ``[0, n_bins)``.

        Returns
        -------
        ndarray of shape (n_in_bin,)
            The highlighted sample ids, sorted (empty if the bin is empty: the views are then
            unchanged and the status line says so).
        """
        return self._select(bin_selection(self.state, self._probabilities, self.curves, model,
                                          bin_index))

    def select_points(self, ids: ArrayLike) -> NDArray[np.int64]:
        """Make ``ids`` the selection (what a lasso or box selection in a projection does).

        The reliability diagram and the per-class table then describe these samples only, and
        every panel rings them; an empty ``ids`` leaves the views unchanged, and says so.

        Parameters
        ----------
        ids : array-like of int, shape (n_selected,)
            Sample ids of the left panel's predictions.

        Returns
        -------
        ndarray of shape (n_selected,)
            The selected ids, sorted and unique.
        """
        return self._select(points_selection(self.state, ids))

    def _select(self, selection: Selection) -> NDArray[np.int64]:
        """The one selection path of cells, bins and lassos: highlight the selection's ids in
        every view, or say so and change nothing when there are none."""
        if selection.ids.size:
            self._highlight(selection.ids)
        self._say(selection.message if selection.ids.size else selection.empty)
        return selection.ids

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
        row, p = sample_row(self.state, sample_id), self.predictions[0]
        conf = self._probabilities.confidence(p, self.state.temperature)
        self.samples.show_sample(p, row, float(conf[row]), self.state.temperature,
                                 self.data.thumbnails(p))

    # ----- handlers: temperature ----------------------------------------------------------------
    def set_temperature(self, temperature: float) -> None:
        """Compute the probabilities as ``softmax(logits / temperature)`` (what the slider does).

        The reliability diagram, the ECEs, the per-class table's ``confidence`` and the hover
        follow; the selection is kept. Accuracy and the confusion matrix do not depend on T.

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

        T minimises the NLL on the "val" split of the zoo checkpoint in the left panel; user
        Predictions come without one, so T is fitted on their own samples and the status line
        says the calibration it shows is optimistic. It applies to both panels; each fit is
        done once.

        Returns
        -------
        float
            The fitted temperature (also the new ``state.temperature``).
        """
        left = self.state.panels[0]
        t, where = self.data.fitted_temperature(left.name, left.predictions)
        where += "; applied to both panels" if len(self.state.panels) > 1 else ""
        where += slider_range_note(t)
        self._apply_temperature(t, note=f"Fitted T = {t:.3f}, {where}.",
                                kind="info" if self.data.zoo_name(left.name) else "warn")
        return t

    def _apply_temperature(self, t: float, *, note: str = "", kind: str = "info") -> None:
        self.state.temperature = t
        self.controls_view.show("temperature", t)
        self._draw_selection_views()
        self.finds.on_temperature()
        self._say(" ".join(x for x in (note, self._summary.temperature_note()) if x), kind)

    # ----- handlers: controls -------------------------------------------------------------------
    def set_checkpoint(self, label: str) -> None:
        """Show source ``label`` in the left panel (the selection is cleared)."""
        self._checkpoint = self.data.check_label(label, "checkpoint")
        self.controls_view.show("checkpoint", label)
        self.set_compare(self._compare)  # none, if it was this one

    def set_compare(self, label: str | None) -> None:
        """Show source ``label`` beside the left panel (None: none); the selection is cleared."""
        if label is not None:
            label = self.data.check_label(label, "compare")
        self._compare = None if label == self._checkpoint else label
        self.controls_view.show("compare", self._compare or NO_COMPARE)
        self._reload()

    def set_split(self, split: Split) -> None:
        """Show zoo checkpoints on another split (the selection is cleared). Only zoo checkpoints
        have splits: with none among the sources, this raises ValueError."""
        self._split = self.data.check_split(split, SPLITS)
        self.controls_view.show("split", split)
        self._reload()

    def set_method(self, method: Method) -> None:
        """Project with another method (computed once, then cached on disk). From
        :data:`BACKGROUND_FROM` samples, UMAP and t-SNE are computed in a background thread
        (:meth:`wait_projection` waits for it) while the current projection stays usable."""
        v.check_option(method, "method", METHODS)
        self.controls_view.show("method", method)
        if self._in_background(method):
            self._start_background(method)
            return
        self._method = method
        self._reload(keep_selection=True)

    def set_color(self, color: ColorBy) -> None:
        """Colour the projections by something else; the selection is kept."""
        self.state.color = v.check_option(color, "color", COLOR_BY)
        self.controls_view.show("color", color)
        self.finds.draw_projection()  # a score not computed yet: by class until it is built
        if note := no_flipped_note(color, self.predictions, self._split):
            self._say(note)

    def set_classes(self, classes: Sequence[int]) -> None:
        """Show only the samples of these true classes (the selection is cleared)."""
        ids, empty = classes_in_view(self.state, classes)
        if empty:
            self._say(empty)
            return
        self.state.classes = ids
        self.controls_view.show("classes", ids)
        self.state.set_highlight(np.zeros(0, dtype=np.int64))
        self._say("")
        self._draw_all()

    def set_snapshot(self, index: int) -> None:
        """Step the left panel to member ``index`` of the checkpoint's series (epoch or α). The
        members were projected and aligned, on axes covering them all, when the checkpoint was
        loaded: only trace data changes (animated for SVG scatters)."""
        if self.series is None:
            self._say(NO_SERIES_NOTE.format(checkpoint=self._checkpoint), "warn")
            return
        left = self.data.member_panel(self.series, index, self._checkpoint, self._split,
                                      self._method)  # checks index
        self.state.panels[0], self.snapshot_index = left, int(index)
        self.controls_view.show_snapshot(self.snapshot_index)
        self._draw_all(animate=True)
        self._say(f"{left.name}: {self.series.label(self.snapshot_index)}, "
                  f"accuracy {left.predictions.accuracy:.3f}.")


# ex.highlighted_ids and the like: second names of attributes, deprecated (removed in 0.3)
add_deprecated_aliases(Explorer, EXPLORER_ALIASES)


def time_handlers(explorer: Explorer, *, repeat: int = 5) -> pd.DataFrame:
    """Deprecated (removed in labviz 0.3): ``benchmarks/bench_explorer.py`` times the handlers.

    Wall time of each interaction handler of ``explorer`` on the Python side: ``select_cell`` (the
    largest off-diagonal cell), ``select_points`` (half the samples), ``clear_selection``,
    ``set_color`` and, where they apply, ``show_thumbnail`` and ``set_snapshot``, each ``repeat``
    times. Columns ``handler``, ``n_points``, ``median_ms``, ``max_ms``; one row per handler.
    """
    warnings.warn("`labviz.widgets.explorer.time_handlers` is deprecated and will be removed in "
                  "labviz 0.3; time the handlers with benchmarks/bench_explorer.py.",
                  DeprecationWarning, stacklevel=2)
    if not isinstance(explorer, Explorer):
        raise TypeError(f"`explorer` must be an Explorer; got {type(explorer).__name__}.")
    repeat = v.check_int(repeat, "repeat", minimum=1)
    p = explorer.predictions[0]
    cm = confusion_matrix(p.y_true, p.y_pred, n_classes=p.n_classes)
    np.fill_diagonal(cm, -1)
    t, c = np.unravel_index(int(np.argmax(cm)), cm.shape)
    half = p.ids[: max(1, p.n_samples // 2)]
    color, back = explorer.state.color, explorer.snapshot_index

    def recolor() -> None:  # there and back: two interactions
        explorer.set_color("correct")
        explorer.set_color(color)

    def step_series() -> None:
        explorer.set_snapshot(0)
        explorer.set_snapshot(back or 0)

    steps: list[tuple[str, int, Callable[[], object]]] = [  # (handler, calls per step, step)
        ("select_cell", 1, lambda: explorer.select_cell(int(t), int(c))),
        ("select_points", 1, lambda: explorer.select_points(half)),
        ("clear_selection", 1, explorer.clear_selection),
        ("set_color", 2, recolor),
    ]
    if p.images is not None:
        steps.append(("show_thumbnail", 1, lambda: explorer.show_thumbnail(int(p.ids[0]))))
    if explorer.series is not None and back is not None:
        steps.append(("set_snapshot", 2, step_series))
    rows = []
    for name, calls, step in steps:
        seconds = []
        for _ in range(repeat):
            start = time.perf_counter()
            step()
            seconds.append((time.perf_counter() - start) / calls)
        rows.append({"handler": name, "n_points": p.n_samples,
                     "median_ms": 1e3 * float(np.median(seconds)), "max_ms": 1e3 * max(seconds)})
    return pd.DataFrame(rows, columns=["handler", "n_points", "median_ms", "max_ms"])
