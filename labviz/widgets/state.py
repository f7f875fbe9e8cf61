"""The one selection state the explorer's views share.

:class:`ViewState` holds what every view draws from: the panels (a model's predictions and its
projection), the classes in view, the highlighted samples (a confusion cell, a reliability bin or
a lasso: one selection, whatever made it), the colouring and the projections' common axes. The
explorer changes it through its handlers; views only read it. Masks and row lookups are computed
once per change and kept, so that a view redraw at a million samples is a few array gathers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from labviz.core.predictions import Predictions

#: What the projections' colour can show.
ColorBy = Literal["class", "prediction", "given", "correct", "confidence", "flipped",
                  "non_uniformity", "label_disagreement", "local_gap"]
COLOR_BY: tuple[str, ...] = ("class", "prediction", "given", "correct", "confidence", "flipped",
                             "non_uniformity", "label_disagreement", "local_gap")
#: A projection's x or y range, (low, high).
Range = tuple[float, float]

_NO_IDS = np.zeros(0, dtype=np.int64)


@dataclass(eq=False)
class Panel:
    """One projection panel: a model's predictions and their 2-D projection.

    Attributes
    ----------
    name : str
        The model shown (a zoo checkpoint, a series member or a user ``Predictions``'s label).
    title : str
        The panel's title (the name, and the series step when there is one).
    predictions : Predictions
    frame : pandas.DataFrame
        ``labviz.compute.projection.projection_frame`` rows of ``predictions``, in the same order.
    scores : dict of str to ndarray of shape (n_samples,)
        Per-sample scores to colour by, in row order, by colouring name (``"confidence"`` at the
        explorer's temperature, ``"label_disagreement"``, ``"local_gap"``); written by
        :meth:`labviz.widgets.finds.Finds.attach`, absent until computed.
    """

    name: str
    title: str
    predictions: Predictions
    frame: pd.DataFrame
    scores: dict[str, NDArray[np.float64]] = field(default_factory=dict, repr=False)
    _sorted: tuple[NDArray[np.int64], NDArray[np.intp]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if len(self.frame) != self.predictions.n_samples:
            raise ValueError(f"`frame` must have one row per sample of `predictions` "
                             f"({self.predictions.n_samples}); got {len(self.frame)} rows.")

    @property
    def ids(self) -> NDArray[np.int64]:
        """The sample ids of the panel's rows, in row order."""
        return self.frame["id"].to_numpy()

    def rows_of(self, ids: NDArray[np.int64]) -> NDArray[np.intp]:
        """Rows (positions in ``frame`` and ``predictions``) of the sample ``ids`` that this panel
        holds, ascending; ids it does not hold are skipped. O(k log n) after a first sort."""
        if self._sorted is None:
            order = np.argsort(self.ids, kind="stable")
            self._sorted = (self.ids[order], order)
        sorted_ids, order = self._sorted
        if not ids.size or not sorted_ids.size:
            return np.zeros(0, dtype=np.intp)
        at = np.minimum(np.searchsorted(sorted_ids, ids), sorted_ids.size - 1)
        return np.sort(order[at[sorted_ids[at] == ids]])


class ViewState:
    """What the explorer's views draw from; see the module docstring.

    Attributes
    ----------
    panels : list of Panel
        One or two (the left one first).
    classes : tuple of int
        The true classes in view.
    highlighted_ids : ndarray of shape (n_highlighted,)
        The selection's sample ids, sorted and unique; empty for none.
    temperature : float
        Probabilities are ``softmax(logits / temperature)``.
    color : {"class", "prediction", "given", "correct", "confidence", "flipped", "non_uniformity", \
             "label_disagreement", "local_gap"}
        What the projections' colour shows.
    ranges : tuple of two (low, high) pairs
        The projections' fixed x and y ranges (they cover every series member).
    view_key : str
        Changes when a new view is loaded (checkpoint, split, method); a zoom survives other
        changes.
    """

    def __init__(self) -> None:
        self.panels: list[Panel] = []
        self.classes: tuple[int, ...] = ()
        self.highlighted_ids: NDArray[np.int64] = _NO_IDS
        self.temperature = 1.0
        self.color: ColorBy = "class"
        self.ranges: tuple[Range, Range] = ((0.0, 1.0), (0.0, 1.0))
        self.view_key = ""
        self._class_masks: dict[int, tuple[tuple[int, ...], Panel, NDArray[np.bool_]]] = {}
        self._highlight_rows: dict[int, tuple[Panel, NDArray[np.intp]]] = {}

    def set_highlight(self, ids: NDArray[np.int64]) -> None:
        """Highlight the samples ``ids`` in every panel."""
        self.highlighted_ids = ids
        self._highlight_rows.clear()

    def class_mask(self, i: int) -> NDArray[np.bool_]:
        """Which samples of panel ``i`` belong to the classes in view."""
        panel = self.panels[i]
        hit = self._class_masks.get(i)
        if hit is None or hit[0] != self.classes or hit[1] is not panel:
            hit = (self.classes, panel, np.isin(panel.predictions.y_true, self.classes))
            self._class_masks[i] = hit
        return hit[2]

    def highlight_rows(self, i: int) -> NDArray[np.intp]:
        """Rows of panel ``i`` that are highlighted and in view, ascending."""
        panel = self.panels[i]
        hit = self._highlight_rows.get(i)
        if hit is None or hit[0] is not panel:
            rows = panel.rows_of(self.highlighted_ids)
            hit = (panel, rows[self.class_mask(i)[rows]])
            self._highlight_rows[i] = hit
        return hit[1]

    def selection_mask(self, i: int) -> NDArray[np.bool_]:
        """The samples of panel ``i`` the selection views describe: the highlighted ones in view,
        or all those in view when nothing is highlighted."""
        if not self.highlighted_ids.size:
            return self.class_mask(i)
        mask = np.zeros(self.panels[i].predictions.n_samples, dtype=bool)
        mask[self.highlight_rows(i)] = True
        return mask
