"""The explorer's projection panels, one class per way of drawing them.

Each view draws every panel of a :class:`~labviz.widgets.state.ViewState` and reports what the
user does through its callbacks: ``on_select(ids)`` (a lasso or box selection), ``on_clear()``
(a deselection), ``on_hover(sample_id)`` and ``on_point(sample_id)`` (a click on one point of
the left panel: a plotly click, or a jupyter-scatter selection of one point). The explorer picks the view; the other views (the
confusion matrix, the reliability diagram, the samples) never see which one it is.

* :class:`PlotlyProjection`: plotly ``FigureWidget`` panels, rings around highlighted points and
  animated snapshot steps. Good up to a few tens of thousands of points.
* :class:`ScatterProjection`: jupyter-scatter's WebGL scatter (regl-scatterplot), which sends
  its points to the page as binary arrays and draws a million of them interactively; a highlight
  is its selection (the other points fade).
* :class:`DensityProjection`: a density raster (a 2-D histogram) for browsers without WebGL.
  It cannot be lassoed; confusion cells and reliability bins still highlight.

:class:`WebGLProbe` reports from the page whether WebGL is there, and
:func:`projection_view_class` picks the view for a backend, a number of points and the page.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import anywidget
import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import traitlets
from numpy.typing import ArrayLike, NDArray
from plotly.basedatatypes import BaseTraceType
from plotly.callbacks import BoxSelector, InputDeviceState, LassoSelector, Points

from labviz.figures.projection import (
    BOOLEAN_CLASSES,
    WEBGL_THRESHOLD,
    density_figure,
    point_customdata,
    projection_figure,
)
from labviz.figures.style import DIVERGING, SEQUENTIAL, class_color
from labviz.compute.label_quality import non_uniformity
from labviz.widgets._common import FigureSlot, defer_import, shared_esm
from labviz.widgets.state import ViewState

if TYPE_CHECKING:
    from jscatter import Scatter

    from labviz.core.predictions import Predictions

#: Snapshot steps animate for this long (plotly's SVG scatter and jupyter-scatter).
ANIMATION_MS = 400
#: The status line when the page reports no WebGL and the panels become density rasters.
NO_WEBGL_NOTE = ("This browser gives no WebGL (e.g. a remote desktop without a GPU): the "
                 "projections are density rasters (orange: the highlighted samples). Lasso "
                 "selection needs WebGL; confusion cells and reliability bins still select.")

def _non_uniformity(p: Predictions) -> NDArray[np.float64]:
    """:func:`~labviz.compute.label_quality.non_uniformity` of ``p``'s probabilities, shape
    (n_samples,), a row chunk of them at a time (no (n_samples, n_classes) matrix is held)."""
    out = np.empty(p.n_samples, dtype=np.float64)
    for rows, probs in p.prob_chunks():
        out[rows] = non_uniformity(probs)
    return out


_COLOR_TITLES = {"class": "true label", "given": "given label", "non_uniformity": "non-uniformity",
                 "label_disagreement": "label disagreement",
                 "local_gap": "local gap (confidence − accuracy)"}


def score_colors(state: ViewState, i: int
                 ) -> tuple[NDArray[np.float64], tuple[float, float], str, str] | None:
    """The score panel ``i`` is coloured by, in row order, with its colour range, scale and title;
    None for a colouring by category (or a score not computed yet, drawn by class meanwhile).

    The local gap is drawn on a diverging scale symmetric about 0 (over-confident warm,
    under-confident cool); the other scores on the sequential scale over [0, 1]."""
    panel, color = state.panels[i], state.color
    title = _COLOR_TITLES.get(color, color)
    if color == "non_uniformity":
        return _non_uniformity(panel.predictions), (0.0, 1.0), SEQUENTIAL, title
    values = panel.scores.get(color)
    if color == "confidence" and values is None:
        values = panel.frame["confidence"].to_numpy(dtype=np.float64)
    if values is None:
        return None
    if color == "local_gap":
        # symmetric, so that white is 0; in steps of 0.05 so that small moves keep the scale
        m = max(0.05, float(np.ceil(np.abs(values).max() / 0.05)) * 0.05)
        return values, (-m, m), DIVERGING, title
    return values, (0.0, 1.0), SEQUENTIAL, title

#: Colourings by a per-sample score that needs the neighbour index (drawn by class until then).
_SCORES = ("label_disagreement", "local_gap")

#: The callbacks' results are ignored (the explorer's handlers return the ids they selected).
OnSelect = Callable[[NDArray[np.int64]], object]
OnClear = Callable[[], object]
OnHover = Callable[[int], object]


class WebGLProbe(anywidget.AnyWidget):
    """An invisible widget whose ``webgl`` trait the page sets on display: True when a canvas
    gives a WebGL context, False when not; None until a page has shown it."""

    _esm = """
    function render({ model }) {
      let ok = false;
      try {
        const canvas = document.createElement("canvas");
        ok = !!(canvas.getContext("webgl2") || canvas.getContext("webgl"));
      } catch (e) { ok = false; }
      model.set("webgl", ok);
      model.save_changes();
    }
    export default { render };
    """
    webgl = traitlets.Bool(None, allow_none=True).tag(sync=True)


class ProjectionView:
    """The interface of a projection view (see the module docstring)."""

    def __init__(self, *, on_select: OnSelect, on_clear: OnClear, on_hover: OnHover,
                 on_point: OnHover | None = None) -> None:
        self.on_select, self.on_clear, self.on_hover = on_select, on_clear, on_hover
        self.on_point: OnHover = on_point or (lambda _sample_id: None)
        self.widget = widgets.HBox()

    def draw(self, state: ViewState, *, animate: bool = False) -> None:
        """Draw every panel of ``state`` (``animate``: a snapshot step on the same axes)."""
        raise NotImplementedError

    def draw_highlight(self, state: ViewState) -> None:
        """Show ``state``'s highlighted samples (the rest of the drawing is unchanged)."""
        raise NotImplementedError


class _FigurePanels(ProjectionView):
    """A view of one plotly figure per panel, in ``slots``; ``figures`` are their widgets."""

    def __init__(self, *, on_select: OnSelect, on_clear: OnClear, on_hover: OnHover,
                 on_point: OnHover | None = None) -> None:
        super().__init__(on_select=on_select, on_clear=on_clear, on_hover=on_hover,
                         on_point=on_point)
        self.slots: list[FigureSlot] = []

    @property
    def figures(self) -> list[go.FigureWidget]:
        # every slot here is made without a placeholder, so it always holds a figure
        return [slot.figure for slot in self.slots if slot.figure is not None]

    def _sync_slots(self, state: ViewState) -> None:
        """One figure slot per panel of ``state``."""
        while len(self.slots) < len(state.panels):
            self.slots.append(FigureSlot())
        del self.slots[len(state.panels):]
        self.widget.children = tuple(slot.widget for slot in self.slots)


def _width(state: ViewState) -> int:
    return 560 if len(state.panels) > 1 else 720


# ----- plotly -------------------------------------------------------------------------------------
class PlotlyProjection(_FigurePanels):
    """Plotly panels; ``figures`` holds one ``FigureWidget`` per panel, whose last trace,
    ``"highlight"``, rings the highlighted samples (``customdata[:, 0]`` is the sample id)."""

    def __init__(self, *, on_select: OnSelect, on_clear: OnClear, on_hover: OnHover,
                 on_point: OnHover | None = None) -> None:
        super().__init__(on_select=on_select, on_clear=on_clear, on_hover=on_hover,
                         on_point=on_point)
        self._pending: dict[int, list[int]] = {}  # lasso ids gathered per panel, trace by trace

    def draw(self, state: ViewState, *, animate: bool = False) -> None:
        self._sync_slots(state)
        for i in range(len(state.panels)):
            self._draw_panel(state, i, animate=animate)

    def _figure(self, state: ViewState, i: int) -> go.Figure:
        panel = state.panels[i]
        mask = state.class_mask(i)
        score = score_colors(state, i)
        if score is None:
            fig = projection_figure(panel.frame[mask],
                                    color="class" if state.color in _SCORES else state.color,
                                    title=panel.title)
        else:
            values, limits, scale, name = score
            fig = projection_figure(panel.frame[mask], color=values[mask], color_title=name,
                                    color_range=limits, colorscale=scale, title=panel.title)
        fig.update_xaxes(range=state.ranges[0], autorange=False)
        fig.update_yaxes(range=state.ranges[1], autorange=False)
        # a new view resets the user's zoom; a click or a slider step keeps it
        fig.update_layout(width=_width(state), height=520, dragmode="lasso",
                          uirevision=state.view_key)
        return fig

    def _draw_panel(self, state: ViewState, i: int, *, animate: bool) -> None:
        fig = self._figure(state, i)
        # WebGL traces do not transition in plotly.js
        gl = any(isinstance(t, go.Scattergl) for t in fig.data)
        if self.slots[i].show(fig, animate_ms=ANIMATION_MS if animate and not gl else None):
            for trace in self.figures[i].data:
                trace.on_selection(self._on_selection)
                trace.on_deselect(self._on_deselect)
                trace.on_hover(self._on_hover)
                trace.on_click(self._on_click)
        self._draw_rings(state, i)

    def draw_highlight(self, state: ViewState) -> None:
        for i in range(len(state.panels)):
            self._draw_rings(state, i)

    def _draw_rings(self, state: ViewState, i: int) -> None:
        panel, rows = state.panels[i], state.highlight_rows(i)
        names = dict(enumerate(panel.predictions.class_names))
        fw = self.figures[i]
        with fw.batch_update():
            trace = fw.data[-1]
            trace.x = panel.frame["x"].to_numpy()[rows]
            trace.y = panel.frame["y"].to_numpy()[rows]
            trace.customdata = point_customdata(panel.frame.iloc[rows], names)

    def _panel_of(self, trace: BaseTraceType) -> int:
        for i, fw in enumerate(self.figures):
            if any(t is trace for t in fw.data):
                return i
        return -1

    def _on_selection(self, trace: BaseTraceType, points: Points,
                      selector: BoxSelector | LassoSelector) -> None:
        # plotly calls this once per trace, in trace order; act once, after the last trace
        i = self._panel_of(trace)
        if i < 0:
            return
        pending = self._pending.setdefault(i, [])
        data = trace.customdata
        pending.extend(int(data[k][0]) for k in points.point_inds)
        if points.trace_index == len(self.figures[i].data) - 1:
            self.on_select(np.asarray(self._pending.pop(i), dtype=np.int64))

    def _on_deselect(self, trace: BaseTraceType, points: Points) -> None:
        i = self._panel_of(trace)
        if i >= 0 and points.trace_index == len(self.figures[i].data) - 1:
            self.on_clear()

    def _on_hover(self, trace: BaseTraceType, points: Points, state: InputDeviceState) -> None:
        if points.point_inds and self._panel_of(trace) == 0:
            self.on_hover(int(trace.customdata[points.point_inds[0]][0]))

    def _on_click(self, trace: BaseTraceType, points: Points, state: InputDeviceState) -> None:
        if points.point_inds and self._panel_of(trace) == 0:
            self.on_point(int(trace.customdata[points.point_inds[0]][0]))


# ----- jupyter-scatter ----------------------------------------------------------------------------
def scatter_colors(state: ViewState, i: int
                   ) -> tuple[pd.Series, dict[str, str] | str, tuple[float, float] | None]:
    """What jupyter-scatter colours panel ``i`` by: the values (categorical or float), the colour
    map (a dict of category to colour, or a colour-scale name) and the norm of a float score."""
    panel, color = state.panels[i], state.color
    p = panel.predictions
    names = list(p.class_names)
    columns = {"class": "label", "prediction": "prediction", "given": "given"}
    if color in columns:
        codes = panel.frame[columns[color]].to_numpy()
        values = pd.Categorical.from_codes(codes, categories=names)
        return pd.Series(values), {n: class_color(k) for k, n in enumerate(names)}, None
    if color in BOOLEAN_CLASSES:
        entries = BOOLEAN_CLASSES[color]
        flags = panel.frame[color].to_numpy(dtype=bool)
        labels = [name for _, name, _ in entries]
        codes = np.where(flags == entries[0][0], 0, 1).astype(np.int8)
        values = pd.Categorical.from_codes(codes, categories=labels)
        return pd.Series(values), {name: c for _, name, c in entries}, None
    score = score_colors(state, i)
    if score is None:  # a score not computed yet: by class meanwhile
        codes = panel.frame["label"].to_numpy()
        values = pd.Categorical.from_codes(codes, categories=names)
        return pd.Series(values), {n: class_color(k) for k, n in enumerate(names)}, None
    values, limits, scale, _ = score
    # matplotlib's names, which jupyter-scatter reads: "viridis", "RdBu_r"
    return pd.Series(values), scale if scale == DIVERGING else scale.lower(), limits


#: What :func:`scatter_module` changes in jupyter-scatter's page module (regl-scatterplot's code in
#: it): each text is found once and replaced. The objects it calls are in ``scatter_lasso.js``.
SCATTER_PATCHES: tuple[tuple[str, str], ...] = (
    # the mouse moves of a lasso redraw nothing (regl-scatterplot redraws every point on each)
    ("    if (mouseDown) {\n      draw = true;\n    }\n  };\n  const blurHandler",
     "    if (mouseDown && !lassoActive) {\n      draw = true;\n    }\n  };\n  const blurHandler"),
    # the lasso's path is drawn on a 2-D canvas over the scatter instead, as it grows
    ("        extendLasso(pointNorm(currMousePos));\n",
     "        extendLasso(pointNorm(currMousePos));\n"
     "        labvizLassoTrace.extend(element, currMousePos);\n"),
    ("      startLasso(point);\n",
     "      startLasso(point);\n      labvizLassoTrace.start(element, currMousePos);\n"),
    ("  const clear = () => {\n    lassoPos = [];\n",
     "  const clear = () => {\n    labvizLassoTrace.clear(element);\n    lassoPos = [];\n"),
    # "Drawing n points…" over the scatter from its render until its first frame
    ("  render() {\n    if (!window.jupyterScatter) {\n",
     "  render() {\n    this.labvizNote = (this.model.get(\"points\") || []).length > 0\n"
     "      ? labvizDrawing.show(this.el, this.model.get(\"points\").length) : null;\n"
     "    if (!window.jupyterScatter) {\n"),
    ("        this.scatterplot.draw(this.points, options).then(() => {\n",
     "        this.scatterplot.draw(this.points, options).then(() => {\n"
     "          if (this.labvizNote) labvizDrawing.hide(this.labvizNote);\n"),
    # a selection made on the page redraws the points once the kernel has answered it
    ("      pubSub.publish(\"select\", { points: selectedPoints });\n    }\n    draw = true;\n"
     "  };\n  const lassoSelect",
     "      pubSub.publish(\"select\", { points: selectedPoints });\n    }\n"
     "    labvizHeldDraw.request(canvas, !preventEvent, () => { draw = true; });\n"
     "  };\n  const lassoSelect"),
    # each frame is timed, from its draw to the next animation frame (the GPU's work is done
    # out of the page's thread): from a frame of 50 ms a scatter is slow (scatter_lasso.js)
    ("  const cancelFrameListener = renderer.onFrame(() => {\n    isViewChanged = camera.tick();\n",
     "  const cancelFrameListener = renderer.onFrame(() => {\n    labvizSlowFrames.tick(canvas);\n"
     "    isViewChanged = camera.tick();\n"),
    ("    }, canvas);\n    const renderView = {\n",
     "    }, canvas);\n    labvizSlowFrames.drew(canvas);\n    const renderView = {\n"),
    # on a slow scatter a hover draws its ring on a 2-D canvas, and redraws no point
    ("    if (needsRedraw) {\n      draw = true;\n"
     "      drawReticleOnce = showReticleOnce;\n    }\n",
     "    if (needsRedraw && !labvizHoverRing.show(canvas,\n"
     "        () => (hoveredPoint >= 0 ? getScreenPosition(hoveredPoint) : null))) {\n"
     "      draw = true;\n      drawReticleOnce = showReticleOnce;\n    }\n"),
    ("      if (!mouseDown && (showReticle || drawReticleOnce)) {\n",
     "      if (!mouseDown && (showReticle || drawReticleOnce)\n"
     "          && !labvizSlowFrames.slow(canvas)) {\n"),
    ("      if (hoveredPoint >= 0) {\n        drawHoveredPoint();\n",
     "      if (hoveredPoint >= 0 && !labvizSlowFrames.slow(canvas)) {\n"
     "        drawHoveredPoint();\n"),
    ("    pubSub.publish(\"draw\", renderView);\n  });\n",
     "    pubSub.publish(\"draw\", renderView);\n    labvizHoverRing.refresh(canvas);\n  });\n"),
    ("  customEventHandler(event) {\n",
     "  customEventHandler(event) {\n"
     "    if (event.type === \"labviz-answered\") {\n"
     "      labvizHeldDraw.release(this.canvas);\n      return;\n    }\n"),
)
_SCATTER_PROLOGUE = Path(__file__).with_name("scatter_lasso.js")


def scatter_module(source: str) -> str:
    """jupyter-scatter's page module ``source`` changed so that fewer frames redraw every point:

    * a lasso redraws no point while it is drawn (its path is drawn on a 2-D canvas over the
      scatter; the points inside it are selected on release, as before);
    * once a frame of the scatter took 50 ms (software WebGL: 100k points already), a hover
      draws its ring and reticle on that 2-D canvas too, and a selection made on the page (a
      click, a lasso) redraws the points once the kernel has answered it (the
      "labviz-answered" message of :meth:`ScatterProjection._on_selection`), or after 2 s;
    * "Drawing n points…" shows over the scatter until its first frame.

    In software WebGL a million points take 1.4-1.9 s of CPU a frame, and the page paints
    nothing else meanwhile (``labviz/widgets/scatter_lasso.js`` says more). Where one of
    :data:`SCATTER_PATCHES` is not found exactly once (another jupyter-scatter version),
    ``source`` is returned unchanged, with a warning: everything works, and those frames redraw
    every point.
    """
    missing = [old for old, _ in SCATTER_PATCHES if source.count(old) != 1]
    if missing:
        warnings.warn(f"labviz: this jupyter-scatter's page module differs from the one labviz "
                      f"changes ({len(missing)} of {len(SCATTER_PATCHES)} places not found): a "
                      "lasso, a hover and a selection redraw every point.", RuntimeWarning,
                      stacklevel=2)
        return source
    for old, new in SCATTER_PATCHES:
        source = source.replace(old, new, 1)
    return _SCATTER_PROLOGUE.read_text(encoding="utf-8") + "\n" + source


def _share_module(widget_class: type[anywidget.AnyWidget]) -> None:
    """Give jupyter-scatter's anywidget class (which ``jscatter.Scatter`` builds itself) its page
    module changed by :func:`scatter_module`, in the module of
    :func:`~labviz.widgets._common.shared_esm`, once: loaded once per page, and never past
    anywidget's time limit. Its module has no ``initialize``, so nothing is replayed."""
    if not getattr(widget_class, "_labviz_shared_esm", False):
        widget_class._esm = shared_esm(scatter_module(str(widget_class._esm)),
                                       widget_class.__name__)
        widget_class._labviz_shared_esm = True


class ScatterProjection(ProjectionView):
    """jupyter-scatter panels; ``scatters`` holds one ``jscatter.Scatter`` per panel.

    A panel's points are the rows of its projection frame, all of them: the classes out of view
    are filtered (``filter``), and the highlighted rows are its ``selection``. Its lasso is on
    (a drag draws one), and a lasso's points come back through the ``selection`` trait.
    """

    def __init__(self, *, on_select: OnSelect, on_clear: OnClear, on_hover: OnHover,
                 on_point: OnHover | None = None) -> None:
        super().__init__(on_select=on_select, on_clear=on_clear, on_hover=on_hover,
                         on_point=on_point)
        defer_import("seaborn")  # jupyter-scatter's density annotations, which we do not draw
        import jscatter  # lazy: its import takes most of a second

        _share_module(jscatter.widget.JupyterScatter)
        self._jscatter = jscatter
        self.scatters: list[Scatter] = []
        self._key: tuple[str, int] | None = None
        self._frames: list[pd.DataFrame] = []
        # the rows each scatter's page selection holds, sorted (None: not known yet)
        self._shown: list[NDArray[np.intp] | None] = []
        self._state: ViewState | None = None
        self.titles = [widgets.HTML() for _ in range(2)]

    def draw(self, state: ViewState, *, animate: bool = False) -> None:
        self._state = state
        key = (state.view_key, len(state.panels))
        if key != self._key:
            self.scatters = [self._new_scatter(state, i) for i in range(len(state.panels))]
            self._frames = [p.frame for p in state.panels]
            self._shown = [None] * len(state.panels)
            self.widget.children = tuple(
                widgets.VBox([self.titles[i], s.widget]) for i, s in enumerate(self.scatters))
            self._key = key
        else:
            for i, s in enumerate(self.scatters):
                frame = state.panels[i].frame
                if frame is not self._frames[i]:  # a snapshot step: new points, same axes
                    s.xy(frame["x"].to_numpy(), frame["y"].to_numpy(),
                         x_scale=state.ranges[0], y_scale=state.ranges[1], animate=animate)
                    self._frames[i] = frame
                self._color(s, state, i)
        for i, s in enumerate(self.scatters):
            self.titles[i].value = f"<b>{html.escape(state.panels[i].title)}</b>"
            mask = state.class_mask(i)
            s.filter(None if mask.all() else np.flatnonzero(mask))
        self.draw_highlight(state)

    def _new_scatter(self, state: ViewState, i: int) -> Scatter:
        frame = state.panels[i].frame
        s = self._jscatter.Scatter(
            frame["x"].to_numpy(), frame["y"].to_numpy(),
            x_scale=state.ranges[0], y_scale=state.ranges[1],
            height=500, width=_width(state) - 40, axes=True, axes_grid=False,
            # jupyter-scatter draws the y axis on the right: a legend there would stand
            # between the points and the axis' labels
            legend=True, legend_position="top-left", lasso_initiator=False,
            opacity_unselected=0.25, transition_points_duration=ANIMATION_MS,
            tooltip=False,
        )
        s.mouse(mode="lasso")
        # regl-scatterplot tells its selection on a timer, which waits behind the frame that
        # draws it (1.4-2.4 s at 1M points in software WebGL): told at once, the kernel computes
        # the reliability diagram while the page draws
        s.options(regl_scatterplot_options={"syncEvents": True})
        self._color(s, state, i)
        s.widget.observe(lambda change, i=i: self._on_selection(i, change["new"]), "selection")
        if i == 0:
            s.widget.observe(lambda change: self._on_hovering(change["new"]), "hovering")
        return s

    def _color(self, scatter: Scatter, state: ViewState, i: int) -> None:
        values, cmap, norm = scatter_colors(state, i)
        title = _COLOR_TITLES.get(state.color, state.color)  # the legend's, else "Color"
        if norm is None and state.color in _SCORES:
            title = _COLOR_TITLES["class"]  # the score is not computed yet
        if norm is None:
            scatter.color(by=values, map=cmap, labeling={"variable": title})
        else:
            scatter.color(by=values.to_numpy(), map=cmap, norm=norm,
                          labeling={"minValue": f"{norm[0]:g}", "maxValue": f"{norm[1]:g}",
                                    "variable": title})

    def draw_highlight(self, state: ViewState) -> None:
        self._state = state
        for i, s in enumerate(self.scatters):
            rows = state.highlight_rows(i)
            shown = self._shown[i]
            if shown is not None and np.array_equal(rows, shown):
                # the page shows it already (its own lasso): sending it back would cost the page
                # another pass over the selection and a redraw of every point (1-2 s at 1M
                # points in software WebGL), and 4 bytes a point on the wire
                continue
            self._shown[i] = rows
            s.selection(rows if rows.size else None)

    def _on_selection(self, i: int, selected: ArrayLike | None) -> None:
        state = self._state
        if state is None:  # (the scatters come from a draw, which sets the state first)
            return
        rows = (np.zeros(0, dtype=np.intp) if selected is None
                else np.sort(np.asarray(selected, dtype=np.intp)))
        shown = self._shown[i]
        if shown is not None and np.array_equal(rows, shown):
            return  # the page echoing the highlight this view set
        self._shown[i] = rows
        try:
            if rows.size:
                ids = np.sort(state.panels[i].ids[rows])
                if rows.size == 1 and i == 0:  # a click on one point: its neighbours listed first
                    self.on_point(int(ids[0]))
                self.on_select(ids)
            else:
                self.on_clear()
        finally:
            # after the answer's messages: a slow scatter redraws its points only now
            # (scatter_lasso.js's labvizHeldDraw)
            self.scatters[i].widget.send({"type": "labviz-answered"})

    def _on_hovering(self, row: int | None) -> None:
        if self._state is not None and row is not None and row >= 0:
            self.on_hover(int(self._state.panels[0].ids[row]))


# ----- density raster -----------------------------------------------------------------------------
class DensityProjection(_FigurePanels):
    """Density rasters of the panels (plotly heatmaps); ``figures`` holds one per panel."""

    def draw(self, state: ViewState, *, animate: bool = False) -> None:
        self._sync_slots(state)
        for i in range(len(state.panels)):
            self._draw_panel(state, i)

    def draw_highlight(self, state: ViewState) -> None:
        self.draw(state)

    def _draw_panel(self, state: ViewState, i: int) -> None:
        panel, mask = state.panels[i], state.class_mask(i)
        rows = np.flatnonzero(mask)
        # positions of the highlighted rows among the rows in view
        highlight = np.searchsorted(rows, state.highlight_rows(i))
        fig = density_figure(
            panel.frame["x"].to_numpy()[rows], panel.frame["y"].to_numpy()[rows],
            x_range=state.ranges[0], y_range=state.ranges[1],
            highlight=highlight, title=f"{panel.title} (density: no WebGL in this browser)")
        fig.update_layout(width=_width(state), height=520, uirevision=state.view_key)
        self.slots[i].show(fig)


# ----- choosing a view ----------------------------------------------------------------------------
def projection_view_class(*, backend: str, n_samples: int, webgl: bool | None,
                          plotly_max_points: int) -> type[ProjectionView]:
    """The view that draws panels of up to ``n_samples`` points with ``backend`` ("auto": plotly
    up to ``plotly_max_points``, WebGL above), where the page reported ``webgl`` (None: not yet).
    Without WebGL, what would need it is a density raster (plotly above
    :data:`~labviz.figures.projection.WEBGL_THRESHOLD` points draws with WebGL too)."""
    plotly = backend == "plotly" or (backend == "auto" and n_samples <= plotly_max_points)
    if webgl is False and (not plotly or n_samples > WEBGL_THRESHOLD):
        return DensityProjection
    return PlotlyProjection if plotly else ScatterProjection
