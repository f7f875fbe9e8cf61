"""The explorer's other views: controls, confusion matrix, reliability diagram and samples, and
:func:`explorer_layout`, which puts them on one page.

Each view owns its widgets, draws what the explorer computed, and reports clicks through a
callback; none of them knows how the projections are drawn (:mod:`labviz.widgets.projection_views`).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from numpy.typing import NDArray
from plotly.basedatatypes import BaseTraceType
from _plotly_utils.utils import to_typed_array_spec
from plotly.callbacks import InputDeviceState, Points

from labviz.compute.calibration import ReliabilityCurve
from labviz.compute.confusion import (
    class_neighbourhood,
    class_order,
    find_classes,
    top_confused_pairs,
)
from labviz.core.predictions import Predictions
from labviz.figures.calibration import reliability_figure
from labviz.figures.confusion import MAX_ANNOTATED_CLASSES, confusion_figure
from labviz.figures.projection import ThumbnailURIs
from labviz.widgets._common import FigureSlot, message_html, same_structure, samples
from labviz.widgets.finds_view import FindsView

if TYPE_CHECKING:
    from labviz.zoo import Series

#: The "compare" dropdown's entry for a single panel.
NO_COMPARE = "(none)"
#: The status line when the snapshot slider moves on a checkpoint without a series.
NO_SERIES_NOTE = ("{checkpoint} has no epoch snapshots or α sweep: there is nothing to step "
                  "through. The noisy-label runs (e.g. *-ce-noise0.4-s0) have snapshots.")
#: Range of the temperature slider (a log slider, base 2); "Fitted T" may set T outside it.
T_RANGE: tuple[float, float] = (0.25, 4.0)
_COLOR_LABELS = {"non_uniformity": "non-uniformity", "label_disagreement": "label disagreement",
                 "local_gap": "local calibration gap"}
#: The classes list shows up to this many rows at once (it scrolls beyond) ...
MAX_CLASS_ROWS = 10
#: ... and is wide enough for names of up to this many characters (longer ones scroll sideways).
MAX_CLASS_NAME_CHARS = 32
#: Page styles, scoped to the explorer. Chromium paints the chosen options of an unfocused
#: multiple select grey, grey text on grey when every class is chosen; a background image is
#: the one paint it lets a page set there. Thumbnails are captioned figures in a wrapping row.
EXPLORER_CSS = """<style>
.labviz-classes select option { color: #1a1a1a; }
.labviz-classes select option:checked {
  background: linear-gradient(#d6e4f5, #d6e4f5); color: #1a1a1a; }
.labviz-thumbs { display: flex; flex-wrap: wrap; gap: 4px; }
.labviz-thumbs figure { margin: 0; width: 92px; text-align: center; }
.labviz-thumbs figcaption { font-size: 11px; line-height: 1.25; color: #1a1a1a; }
.labviz-thumbs .wrong { color: #b2182b; }
</style>"""


#: The status line's reserved height: one line of message, taken before there is anything to
#: say, so that a first message (a click's) moves nothing below it, not the confusion row under
#: the pointer.
STATUS_HEIGHT = "32px"


def status_line() -> widgets.HTML:
    """The explorer's status line: empty, but as tall as one line of message from the start."""
    return widgets.HTML(layout=widgets.Layout(min_height=STATUS_HEIGHT))


def slider_range_note(temperature: float) -> str:
    """What to add to a note about ``temperature`` when the slider cannot show it (else "")."""
    lo, hi = T_RANGE
    if lo <= temperature <= hi:
        return ""
    return f"; outside the slider's range {lo:g}–{hi:g}, which shows the nearest end"


class Controls:
    """The explorer's controls; ``widgets`` maps a name to its ipywidget.

    ``checkpoint``, ``compare``, ``split``, ``method``, ``color``, ``classes``, ``snapshot``,
    ``play``, ``temperature`` and the ``fitted_temperature`` button; ``series_html`` says what
    the snapshot slider steps through. :meth:`on_change` wires a control to a handler;
    :meth:`show` sets a control's value without running its handler.
    """

    def __init__(self, *, labels: Sequence[str], checkpoint: str, compare: str | None,
                 split: str, splits: Sequence[str], method: str, methods: Sequence[str],
                 color: str, colors: Sequence[str], zoo: bool = True) -> None:
        style = {"description_width": "initial"}

        # Controls that cannot apply are not shown: the split and the snapshots exist for zoo
        # checkpoints only (``zoo``: one is among the sources), "beside it" needs a second source.
        def shown(when: bool, **layout: str) -> widgets.Layout:
            return widgets.Layout(display=None if when else "none", **layout)

        self.widgets: dict[str, widgets.Widget] = {
            "checkpoint": widgets.Dropdown(options=list(labels), value=checkpoint,
                                           description="checkpoint", style=style),
            "compare": widgets.Dropdown(options=[NO_COMPARE, *labels],
                                        value=compare or NO_COMPARE,
                                        description="beside it", style=style,
                                        layout=shown(len(labels) > 1)),
            "split": widgets.Dropdown(options=list(splits), value=split, description="split",
                                      style=style, layout=shown(zoo)),
            "method": widgets.Dropdown(options=list(methods), value=method,
                                       description="projection", style=style),
            "color": widgets.Dropdown(options=[(_COLOR_LABELS.get(k, k), k) for k in colors],
                                      value=color, description="colour by", style=style),
            "classes": widgets.SelectMultiple(options=[], rows=5, description="classes",
                                              style=style),  # sized by show_classes
            "snapshot": widgets.SelectionSlider(options=[("-", 0)], description="snapshot",
                                                continuous_update=False, style=style,
                                                layout=shown(zoo, width="420px")),
            "play": widgets.Play(min=0, max=0, interval=900, description="play",
                                 layout=shown(zoo)),
            "temperature": widgets.FloatLogSlider(
                value=1.0, base=2.0, min=np.log2(T_RANGE[0]), max=np.log2(T_RANGE[1]), step=1 / 16,
                description="temperature T", readout_format=".3f", continuous_update=False,
                style=style, layout=widgets.Layout(width="420px")),
            "fitted_temperature": widgets.Button(description="Fitted T"),
        }
        widgets.jslink((self.widgets["play"], "value"), (self.widgets["snapshot"], "index"))
        self.series_html = widgets.HTML(layout=shown(zoo))
        self._quiet = False  # True while the explorer sets control values itself

    def __getitem__(self, name: str) -> widgets.Widget:
        return self.widgets[name]

    def on_change(self, handlers: Mapping[str, Callable[[Any], object]]) -> None:
        """Call ``handlers[name](new value)`` when the user changes control ``name`` (a handler
        checks the value: a widget's value is not typed)."""
        for name, handler in handlers.items():
            self._observe(name, handler)

    def _observe(self, name: str, handler: Callable[[Any], object]) -> None:
        def observer(change: dict[str, Any]) -> None:
            if not self._quiet:
                handler(change["new"])

        self.widgets[name].observe(observer, names="value")

    @contextmanager
    def quiet(self) -> Iterator[None]:
        """Set controls inside this block without running their handlers."""
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False

    def show(self, name: str, value: object) -> None:
        """Show ``value`` in control ``name`` without running its handler."""
        with self.quiet():
            self.widgets[name].value = value

    def show_classes(self, class_names: Sequence[str], classes: Sequence[int]) -> None:
        """List ``class_names``, choosing ``classes``: every name in full up to
        :data:`MAX_CLASS_NAME_CHARS` characters, and up to :data:`MAX_CLASS_ROWS` rows at once."""
        box = self.widgets["classes"]
        chars = min(max(len(n) for n in class_names), MAX_CLASS_NAME_CHARS)
        with self.quiet():
            box.options = [(n, k) for k, n in enumerate(class_names)]
            box.value = tuple(classes)
            box.rows = min(len(class_names), MAX_CLASS_ROWS)
        # the description ("classes") takes about 60 px; a character of the list about 8 px
        box.layout.width = f"{60 + 8 * chars + 30}px"
        box.add_class("labviz-classes")

    def show_series(self, series: Series | None, index: int | None, checkpoint: str) -> None:
        """Set the snapshot slider and the play button to ``series``, at member ``index``, and
        say what it is; or disable them, and say that ``checkpoint`` has none."""
        slider, play = self.widgets["snapshot"], self.widgets["play"]
        with self.quiet():
            if series is None:
                slider.options, slider.disabled, play.disabled = [("-", 0)], True, True
                play.max = 0
            else:
                slider.options = [(series.label(i), i) for i in range(len(series.members))]
                slider.value = index
                slider.disabled = play.disabled = False
                play.max = len(series.members) - 1
                play.value = index
        if series is None:
            note = f"{checkpoint} has no epoch snapshots or α sweep to step through."
        else:
            what = "epoch snapshots" if series.kind == "epoch" else "label-smoothing sweep"
            note = f"{series.name}: {what}, {len(series.members)} steps."
        self.series_html.value = message_html(note)

    def show_snapshot(self, index: int) -> None:
        """Set the snapshot slider and the play button to member ``index``, without running the
        slider's handler."""
        with self.quiet():
            self.widgets["snapshot"].value = index
            self.widgets["play"].value = index

    def show_fit_source(self, *, zoo_checkpoint: bool) -> None:
        """Say on the "Fitted T" button what T is fitted on: a zoo checkpoint's validation split,
        or the user's predictions themselves."""
        why = ("the validation split of the checkpoint" if zoo_checkpoint else
               "these predictions' own samples: no validation set comes with them, so the "
               "calibration it shows is optimistic")
        self.widgets["fitted_temperature"].tooltip = (
            f"Set T to the temperature minimising the NLL on {why}")


class ConfusionView:
    """The confusion heatmap of the left panel, a search box for class names and the most
    confused pairs; a click on a cell, or on a pair, calls ``on_cell(true_class, pred_class)``.

    Beyond :data:`~labviz.figures.confusion.MAX_ANNOTATED_CLASSES` classes the heat map shows
    them in their clustered order (:func:`~labviz.compute.confusion.class_order`), and a search
    (:meth:`find`) zooms to the classes it finds and their neighbours in that order. Each pair
    shows its first samples' images where the predictions carry images.

    Attributes
    ----------
    search : ipywidgets.Text
        The class-name search; setting its value runs :meth:`find`.
    found : ndarray of shape (n_found,)
        The classes the search found (empty without a search).
    pairs : pandas.DataFrame
        The listed pairs (:func:`~labviz.compute.confusion.top_confused_pairs`).
    pair_buttons : list of ipywidgets.Button
        One per listed pair, in ``pairs``' order; a click selects the pair's cell.
    """

    #: Pairs listed, and images shown per pair.
    N_PAIRS = 10
    PAIR_IMAGES = 6
    #: A search shows each found class with this many neighbours on either side in the order, for
    #: at most MAX_FOUND found classes.
    SEARCH_RADIUS = 8
    MAX_FOUND = 12

    def __init__(self, *, on_cell: Callable[[int, int], object]) -> None:
        self.on_cell = on_cell
        self.slot = FigureSlot()
        self.search = widgets.Text(placeholder="part of a class name", description="find class",
                                   continuous_update=False)
        self.search.observe(lambda change: self._on_search(change["new"]), names="value")
        self.search_html = widgets.HTML()
        self.pairs_html = widgets.HTML()
        self.pair_buttons = [widgets.Button(layout=widgets.Layout(width="auto"))
                             for _ in range(self.N_PAIRS)]
        self._pair_images = [widgets.HTML() for _ in range(self.N_PAIRS)]
        self._pair_rows = [widgets.HBox([b, i]) for b, i in zip(self.pair_buttons,
                                                                self._pair_images)]
        for k, button in enumerate(self.pair_buttons):
            button.on_click(lambda _button, k=k: self._on_pair(k))
        self.widget = widgets.VBox([widgets.HBox([self.search, self.search_html]),
                                    self.slot.widget, self.pairs_html, *self._pair_rows])
        self.found = np.zeros(0, dtype=np.int64)
        self.pairs = pd.DataFrame()
        self._counts = np.zeros((0, 0), dtype=np.int64)
        self._names: tuple[str, ...] = ()
        self._title = ""
        self._order = self._shown = np.zeros(0, dtype=np.int64)
        self._query = ""
        self._searching = False  # True while find() shows its query in the box

    @property
    def figure(self) -> go.FigureWidget:
        """The confusion matrix's figure."""
        return self.slot.figure

    def draw(self, counts: NDArray[np.int64], class_names: Sequence[str], title: str) -> None:
        """Draw ``counts`` (zoomed to the current search, if any); the clustered order is
        computed again only when the counts change (70 ms at 1,000 classes)."""
        if not np.array_equal(counts, self._counts):
            c = len(counts)
            self._order = (class_order(counts) if c > MAX_ANNOTATED_CLASSES
                           else np.arange(c, dtype=np.int64))
        self._counts, self._names, self._title = counts, tuple(class_names), title
        self._redraw()

    def find(self, query: str) -> NDArray[np.int64]:
        """Zoom the heat map to the classes whose name contains ``query`` (ignoring case) and
        their neighbours in the clustered order, and say what was found (``search_html``); an
        empty ``query`` shows every class again.

        Returns
        -------
        ndarray of shape (n_found,)
            The classes found (empty if none: every class is shown, and the view says so).
        """
        if not isinstance(query, str):
            raise TypeError(f"`query` must be a string; got {type(query).__name__} {query!r}.")
        self._searching = True
        try:
            self.search.value = query
        finally:
            self._searching = False
        self._query = query
        self._redraw()
        return self.found

    def _on_search(self, query: str) -> None:
        if not self._searching:
            self.find(query)

    def _redraw(self) -> None:
        block, note = self._search_block()
        self.search_html.value = message_html(note) if note else ""
        self._shown = self._order if block is None else block
        fig = confusion_figure(self._counts, class_names=self._names, normalize="true",
                               order=self._order, classes=block, title=self._title)
        fig.update_layout(width=520, height=500)
        heat = fig.data[0]
        # a widget sends a 2-D array as nested lists (10^6 Python numbers at 1,000 classes:
        # 1.8 s to walk, ~10 MB of JSON); plotly.js reads a typed-array spec, bytes in base64
        heat.z = to_typed_array_spec(np.asarray(heat.z, dtype=np.float32))
        if self.slot.figure is not None and same_structure(self.slot.figure, fig):
            self.slot.replace(fig)  # the axes change with a zoom: traces and layout
        else:
            self.slot.show(fig)
        self.figure.data[0].on_click(self._on_click)

    def _search_block(self) -> tuple[NDArray[np.int64] | None, str]:
        """The classes to zoom to for the current query (None: all), and what to say."""
        query, c = self._query.strip(), len(self._names)
        self.found = np.zeros(0, dtype=np.int64)
        if not query or not c:
            return None, ""
        self.found = find_classes(self._names, query)
        if not self.found.size:
            return None, f"No class name contains {query!r}; showing all {c:,} classes."
        shown = self.found[:self.MAX_FOUND]
        block = class_neighbourhood(self._order, shown, radius=self.SEARCH_RADIUS)
        names = ", ".join(self._names[k] for k in shown)
        more = f" and {len(self.found) - len(shown):,} more" if len(self.found) > len(shown) else ""
        return block, (f"{len(self.found):,} class{'es' if len(self.found) != 1 else ''} match "
                       f"{query!r}: {names}{more}; shown with their neighbours in the clustered "
                       f"order ({len(block):,} classes).")

    def draw_pairs(self, p: Predictions, mask: NDArray[np.bool_],
                   uris: ThumbnailURIs | None) -> None:
        """List the most confused cells among the samples of ``p`` in ``mask``, each with the
        images of its first samples (``uris``: images by sample id, or None)."""
        yt, yp, ids = p.y_true[mask], p.y_pred[mask], p.ids[mask]
        self.pairs = (top_confused_pairs(yt, yp, k=self.N_PAIRS, n_classes=p.n_classes,
                                         class_names=p.class_names)
                      if yt.size else pd.DataFrame(columns=["true", "pred", "count"]))
        self.pairs_html.value = (
            "<b>Most confused pairs</b> (true → predicted: samples); click one to highlight "
            "its samples" if len(self.pairs) else message_html("No confused pairs: every "
                                                               "sample in view is predicted right."))
        for k, row in enumerate(self._pair_rows):
            row.layout.display = None if k < len(self.pairs) else "none"
        for k, (t, c, count) in enumerate(zip(self.pairs["true"], self.pairs["pred"],
                                              self.pairs["count"])):
            self.pair_buttons[k].description = (
                f"{p.class_names[t]} → {p.class_names[c]}: {int(count):,}")
            first = ids[(yt == t) & (yp == c)][:self.PAIR_IMAGES] if uris is not None else ()
            self._pair_images[k].value = "".join(
                f'<img src="{uris[int(i)]}" title="id {int(i)}" width="32" style="margin:1px">'
                for i in first) if uris is not None else ""

    def _on_pair(self, k: int) -> None:
        self.on_cell(int(self.pairs["true"].iloc[k]), int(self.pairs["pred"].iloc[k]))

    def _on_click(self, trace: BaseTraceType, points: Points, state: InputDeviceState) -> None:
        if not points.point_inds:
            return
        labels = list(trace.x)
        # category labels are what plotly reports for a heatmap cell; map them back to classes
        try:
            t, c = labels.index(points.ys[0]), labels.index(points.xs[0])
        except ValueError:
            t, c = points.point_inds[0]
        self.on_cell(int(self._shown[t]), int(self._shown[c]))


class ReliabilityView:
    """The reliability diagram of the selection; a click on a bin calls
    ``on_bin(model, bin_index)``."""

    def __init__(self, *, on_bin: Callable[[str, int], object]) -> None:
        self.on_bin = on_bin
        self.slot = FigureSlot()
        self.widget = self.slot.widget
        self._curves: Mapping[str, ReliabilityCurve] = {}

    @property
    def figure(self) -> go.FigureWidget:
        """The reliability diagram's figure."""
        return self.slot.figure

    def draw(self, curves: Mapping[str, ReliabilityCurve], title: str) -> None:
        """Draw ``curves`` (one per model) under ``title``."""
        self._curves = curves
        fig = reliability_figure(curves, title=title)
        fig.update_layout(width=520, height=500)
        if self.slot.show(fig):
            for trace in self.figure.data:
                trace.on_click(self._on_click)

    def _on_click(self, trace: BaseTraceType, points: Points, state: InputDeviceState) -> None:
        curve = self._curves.get(trace.legendgroup)  # every trace of a curve is in its group
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
        self.on_bin(trace.legendgroup, b)


class SamplesView:
    """The per-class table, the highlighted samples' images and the hovered sample."""

    def __init__(self) -> None:
        self.table_html = widgets.HTML(layout=widgets.Layout(max_height="420px", overflow="auto"))
        self.thumbnails_html = widgets.HTML(layout=widgets.Layout(max_width="520px"))
        self.hover_html = widgets.HTML(layout=widgets.Layout(min_width="140px"))

    def draw_table(self, table: pd.DataFrame, heading: str) -> None:
        """Show the per-class ``table`` under ``heading``."""
        self.table_html.value = (
            f"<b>{html.escape(heading)}</b> (confidence: mean top-1 confidence of the samples "
            "predicted as the class, to compare with its precision)"
            + table.to_html(index=False, float_format=lambda x: f"{x:.3f}", border=0, na_rep="-")
            .replace("<th>", '<th style="padding:1px 6px">')
            .replace("<td>", '<td style="padding:1px 6px">'))

    def draw_thumbnails(self, p: Predictions, n_highlighted: int, rows: NDArray[np.intp],
                        uris: ThumbnailURIs | None, confidence: NDArray[np.floating]) -> None:
        """Images of the samples of ``p`` at ``rows`` (the first of ``n_highlighted``
        highlighted), captioned with their labels and ``confidence`` (of every sample of ``p``,
        shape (n_samples,)), or a hint when nothing is highlighted."""
        if not n_highlighted:
            self.thumbnails_html.value = message_html(
                "Click a confusion cell or a reliability bin, or lasso points, to see their "
                "images.")
            return
        head = f"{samples(n_highlighted)} highlighted"
        if uris is None:  # nothing is shown, so no "first k shown" either
            self.thumbnails_html.value = message_html(
                f"{head}. These predictions carry no images (build them with images=...).")
            return
        if len(rows) < n_highlighted:
            head += f" (first {len(rows):,} shown)"
        self.thumbnails_html.value = (f"<b>{html.escape(head)}</b>"
                                      + thumbnail_grid(p, rows, uris, confidence))

    def show_sample(self, p: Predictions, row: int, confidence: float, temperature: float,
                    uris: ThumbnailURIs | None) -> None:
        """The hovered sample, at ``row`` of ``p``: its image (if any), labels and confidence."""
        uri = None if uris is None else uris[int(p.ids[row])]
        at = "" if temperature == 1.0 else f" (T = {temperature:.3g})"
        text = (f"id {int(p.ids[row])}<br>true {html.escape(p.class_names[p.y_true[row]])}"
                f"<br>predicted {html.escape(p.class_names[p.y_pred[row]])}<br>confidence "
                f"{confidence:.3f}{at}")
        img = f'<img src="{uri}" width="96"><br>' if uri is not None else ""
        self.hover_html.value = img + text


def thumbnail_grid(p: Predictions, rows: NDArray[np.intp], uris: ThumbnailURIs,
                   confidence: NDArray[np.floating]) -> str:
    """HTML of the images of ``p``'s samples at ``rows``, each captioned with its true and
    predicted class and the confidence (``confidence[row]``); a wrong prediction in red.

    The full names are in each image's tooltip; the caption clips names longer than 12
    characters."""
    names, cells = p.class_names, []
    for k in rows:
        sample_id, true, pred = int(p.ids[k]), names[p.y_true[k]], names[p.y_pred[k]]
        wrong = ' class="wrong"' if p.y_true[k] != p.y_pred[k] else ""
        tip = html.escape(f"id {sample_id}: true {true}, predicted {pred}, "
                          f"confidence {confidence[k]:.3f}", quote=True)
        cells.append(
            f'<figure title="{tip}"><img src="{uris[sample_id]}" width="84"><figcaption>'
            f"true {html.escape(_clip(true))}<br><span{wrong}>pred {html.escape(_clip(pred))}"
            f"</span><br>{confidence[k]:.3f}</figcaption></figure>")
    return f'<div class="labviz-thumbs">{"".join(cells)}</div>'


def _clip(name: str, n: int = 12) -> str:
    return name if len(name) <= n else name[:n - 1] + "…"


def explorer_layout(controls: Controls, *, status: widgets.HTML,
                    projection: widgets.Box, confusion: ConfusionView,
                    reliability: ReliabilityView, samples: SamplesView,
                    probe: widgets.Widget, finds: FindsView | None = None) -> widgets.VBox:
    """The explorer's page, top to bottom: the status line, the controls, the projection beside
    the hovered sample, the temperature, the confusion matrix beside the reliability diagram, the
    per-class table beside the highlighted images, the finds (a clicked point's neighbours, the
    regions and the error slices: last, so that what they show moves nothing above) and the
    (invisible) WebGL probe."""
    c = controls

    def row(*children: widgets.Widget) -> widgets.HBox:
        # a row too wide for the output area wraps, rather than hiding what is on its right
        return widgets.HBox(list(children), layout=widgets.Layout(flex_flow="row wrap"))

    page = widgets.VBox([
        status,
        row(c["checkpoint"], c["compare"], c["split"]),
        row(c["method"], c["color"], c["classes"]),
        row(c["play"], c["snapshot"], c.series_html),
        row(projection, samples.hover_html),
        row(c["temperature"], c["fitted_temperature"]),
        row(confusion.widget, reliability.widget),
        row(samples.table_html, samples.thumbnails_html),
        *([finds.widget] if finds is not None else []),
        probe,
        widgets.HTML(EXPLORER_CSS),
    ])
    page.add_class("labviz-explorer")
    return page
