"""The explorer's finds, drawn: a clicked point's nearest neighbours, and the ranked lists of
regions and error slices, each entry a button that selects its samples.

:class:`FindsView` owns the widgets and draws what :class:`~labviz.widgets.finds.Finds`
computed; a click on a region, a slice or "highlight them" calls back with the entry's number.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as widgets
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from labviz.core.predictions import Predictions
from labviz.figures.projection import ThumbnailURIs
from labviz.widgets._common import message_html

#: Entries listed of the regions and of the error slices.
N_LISTED = 10
#: The hint shown before any point is clicked.
NEIGHBOURS_HINT = ("Click a point of the projection to list its nearest neighbours in feature "
                   "space (cosine on the penultimate features).")


def neighbours_html(p: Predictions, row: int, rows: NDArray[np.intp],
                    similarity: NDArray[np.floating], confidence: NDArray[np.floating],
                    uris: ThumbnailURIs | None) -> str:
    """HTML of sample ``row`` of ``p`` and its neighbours at ``rows`` (nearest first), each with
    its image (where ``uris`` has one), given and predicted labels, ``confidence[row]`` and its
    cosine ``similarity`` to the sample; a wrong prediction in red, a given label unlike the
    sample's in bold."""
    names, own = p.class_names, int(p.y_given[row])

    def describe(k: int) -> str:
        return (f"id {int(p.ids[k])}: given {names[p.y_given[k]]}, true {names[p.y_true[k]]}, "
                f"predicted {names[p.y_pred[k]]}, confidence {confidence[k]:.3f}")

    cells = []
    for k, sim in zip(rows, similarity):
        sample_id = int(p.ids[k])
        img = f'<img src="{uris[sample_id]}" width="64"><br>' if uris is not None else ""
        given = html.escape(names[p.y_given[k]])
        given = f"<b>{given}</b>" if p.y_given[k] != own else given
        wrong = ' class="wrong"' if p.y_true[k] != p.y_pred[k] else ""
        cells.append(
            f'<figure title="{html.escape(describe(k), quote=True)}, cosine {sim:.3f}">{img}'
            f"<figcaption>given {given}<br><span{wrong}>pred "
            f"{html.escape(names[p.y_pred[k]])}</span><br>conf {confidence[k]:.3f}<br>"
            f"cos {sim:.3f}</figcaption></figure>")
    head = html.escape(f"Nearest {len(rows):,} neighbours of {describe(row)}")
    return f'<b>{head}</b><div class="labviz-thumbs">{"".join(cells)}</div>'


def region_label(row: pd.Series) -> str:
    """A button's text for a row of :attr:`~labviz.compute.regions.Regions.table`."""
    side = "over" if row["gap"] > 0 else "under"
    return (f"region {int(row['region'])}: ECE {row['ece']:.3f} [{row['ece_low']:.3f}, "
            f"{row['ece_high']:.3f}], {int(row['size']):,} samples, {side}-confident "
            f"(gap {row['gap']:+.3f})")


def slice_label(row: pd.Series) -> str:
    """A button's text for a row of :func:`~labviz.compute.regions.error_slices`' table."""
    return (f"{row['name']}: error {row['error_rate']:.1%} [{row['error_low']:.1%}, "
            f"{row['error_high']:.1%}] vs {row['overall_error_rate']:.1%} overall, "
            f"{int(row['size']):,} samples")


def _hidden_button() -> widgets.Button:
    return widgets.Button(layout=widgets.Layout(width="auto", display="none"))


class FindsView:
    """The neighbours of the clicked point, and the ranked regions and error slices.

    Attributes
    ----------
    widget : ipywidgets.VBox
        What the page shows.
    neighbours_html : ipywidgets.HTML
        The clicked point's neighbours (or a hint).
    region_buttons, slice_buttons : list of ipywidgets.Button
        One per listed region and slice, in rank order; hidden beyond those listed.
    """

    def __init__(self, *, on_region: Callable[[int], object], on_slice: Callable[[int], object],
                 on_neighbours: Callable[[], object], on_build: Callable[[], object]) -> None:
        self.neighbours_html = widgets.HTML(message_html(NEIGHBOURS_HINT),
                                            layout=widgets.Layout(max_width="1040px"))
        self.highlight_neighbours = widgets.Button(description="highlight them",
                                                   layout=widgets.Layout(display="none"))
        self.highlight_neighbours.on_click(lambda _button: on_neighbours())
        self.build_button = widgets.Button(description="find regions and error slices",
                                           layout=widgets.Layout(width="auto"))
        self.build_button.on_click(lambda _button: on_build())
        self.regions_html = widgets.HTML()
        self.slices_html = widgets.HTML()
        self.region_buttons = [_hidden_button() for _ in range(N_LISTED)]
        self.slice_buttons = [_hidden_button() for _ in range(N_LISTED)]
        for k, button in enumerate(self.region_buttons):
            button.on_click(lambda _button, k=k: on_region(k))
        for k, button in enumerate(self.slice_buttons):
            button.on_click(lambda _button, k=k: on_slice(k))
        lists = widgets.HBox([
            widgets.VBox([self.regions_html, self.build_button, *self.region_buttons]),
            widgets.VBox([self.slices_html, *self.slice_buttons])],
            layout=widgets.Layout(flex_flow="row wrap"))
        self.widget = widgets.VBox([self.neighbours_html, self.highlight_neighbours, lists])

    def draw_neighbours(self, text: str, *, can_highlight: bool) -> None:
        """Show ``text`` (HTML) in the neighbours' place, with "highlight them" when
        ``can_highlight``."""
        self.neighbours_html.value = text
        self.highlight_neighbours.layout.display = None if can_highlight else "none"

    def draw_lists(self, regions: pd.DataFrame | None, slices: pd.DataFrame | None,
                   note: str = "", *, can_build: bool = False) -> None:
        """List the first :data:`N_LISTED` ``regions`` and ``slices`` (None: not computed yet;
        ``note`` says why, and ``can_build`` shows the button that computes them)."""
        computed = regions is not None and slices is not None
        self.build_button.layout.display = None if can_build and not computed else "none"
        if regions is None or slices is None:
            self.regions_html.value = message_html(note) if note else ""
            self.slices_html.value = ""
            for button in (*self.region_buttons, *self.slice_buttons):
                button.layout.display = "none"
            return
        self.regions_html.value = (
            f"<b>Regions of feature space by calibration error</b> (k-means clusters; ECE with "
            f"its 95% interval; {len(regions):,} regions): click one to select it")
        self.slices_html.value = (
            "<b>Error slices</b> (regions whose error rate is above the model's, beyond the 95% "
            "interval): click one to select it" if len(slices) else message_html(
                "No error slices: no region's error rate is above the model's beyond its 95% "
                "interval."))
        for buttons, table, label in ((self.region_buttons, regions, region_label),
                                      (self.slice_buttons, slices, slice_label)):
            for k, button in enumerate(buttons):
                shown = k < len(table)
                button.layout.display = None if shown else "none"
                button.description = label(table.iloc[k]) if shown else ""
                button.tooltip = button.description
