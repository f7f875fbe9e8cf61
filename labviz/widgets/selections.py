"""Which samples a click or a lasso selects in the explorer, and how its status line names them.

A confusion cell (:func:`cell_selection`), a reliability bin (:func:`bin_selection`) and the ids
of a lasso (:func:`points_selection`) each become a :class:`Selection`, computed from the shared
:class:`~labviz.widgets.state.ViewState`; the explorer then highlights its ids in every view (or,
when there are none, says so and changes nothing). The arguments are checked here, under the
names the explorer's handlers give them; :func:`check_classes` and :func:`classes_in_view` check a
choice of classes, and :func:`sample_row` finds a hovered sample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from labviz.compute.calibration import ReliabilityCurve
from labviz.core import _validation as v
from labviz.widgets._common import samples
from labviz.widgets.state import ViewState
from labviz.widgets.temperature import ScaledProbabilities


@dataclass(frozen=True)
class Selection:
    """Sample ids to highlight, and what the status line says about them.

    Attributes
    ----------
    ids : ndarray of shape (n_selected,)
        Sample ids, sorted and unique; empty when nothing was selected.
    message : str
        The status line when ``ids`` is not empty.
    empty : str
        The status line when it is (the views are then unchanged).
    """

    ids: NDArray[np.int64]
    message: str
    empty: str


def check_classes(classes: object, n_classes: int) -> tuple[int, ...]:
    """``classes`` as sorted, unique class indices in ``[0, n_classes)``."""
    if isinstance(classes, (str, bytes)) or not isinstance(classes, (Sequence, np.ndarray)):
        raise TypeError(f"`classes` must be a sequence of class indices; "
                        f"got {type(classes).__name__}.")
    out = [v.check_int(k, "classes") for k in classes]
    bad = [k for k in out if not 0 <= k < n_classes]
    if bad:
        raise ValueError(f"`classes` must hold class indices in [0, {n_classes - 1}]; "
                         f"got {bad}.")
    return tuple(sorted(set(out)))


def classes_in_view(state: ViewState, classes: object) -> tuple[tuple[int, ...], str]:
    """``classes`` checked against the left panel's classes (:func:`check_classes`), and what
    the status line says when they would leave no sample in view (else "")."""
    p = state.panels[0].predictions
    ids = check_classes(classes, p.n_classes)
    if not ids:
        return ids, "Empty selection: no classes are selected; the views are unchanged."
    if not np.isin(p.y_true, ids).any():
        names = [p.class_names[k] for k in ids]
        return ids, (f"Empty selection: no samples of the classes {names} in this split; the "
                     "views are unchanged.")
    return ids, ""


def cell_selection(state: ViewState, true_class: int, pred_class: int) -> Selection:
    """The samples of the left panel's confusion cell (``true_class``, ``pred_class``), among
    the classes in view."""
    p = state.panels[0].predictions
    t = v.check_int(true_class, "true_class", minimum=0)
    c = v.check_int(pred_class, "pred_class", minimum=0)
    for name, k in (("true_class", t), ("pred_class", c)):
        if k >= p.n_classes:
            raise ValueError(f"`{name}` must be in [0, {p.n_classes - 1}]; got {k}.")
    mask = state.class_mask(0) & (p.y_true == t) & (p.y_pred == c)
    ids = np.sort(p.ids[mask])
    cell = f"true {p.class_names[t]} → predicted {p.class_names[c]}"
    return Selection(ids, f"Cell {cell}: {samples(len(ids))} highlighted.",
                     f"Empty selection: no samples in the cell {cell}; the views are unchanged.")


def bin_selection(state: ViewState, probabilities: ScaledProbabilities,
                  curves: Mapping[str, ReliabilityCurve], model: str,
                  bin_index: int) -> Selection:
    """The samples of ``model`` that ``curves[model]`` counts in bin ``bin_index`` (b): among the
    samples the diagram describes (the selection, or all samples of the classes in view), those
    whose top-1 confidence at ``state.temperature`` lies in ``(edges[b], edges[b + 1]]`` (the
    first bin also holds 0: right-closed bins, as
    :func:`~labviz.compute.calibration.reliability_curve` makes them)."""
    if not isinstance(model, str):
        raise TypeError(f"`model` must be the name of a curve of the reliability diagram; "
                        f"got {type(model).__name__}.")
    curve = curves[v.check_option(model, "model", list(curves))]
    b = v.check_int(bin_index, "bin_index", minimum=0)
    if b >= curve.n_bins:
        raise ValueError(f"`bin_index` must be in [0, {curve.n_bins - 1}]; got {b}.")
    i = [panel.name for panel in state.panels].index(model)
    p, mask = state.panels[i].predictions, state.selection_mask(i)
    conf = probabilities.confidence(p, state.temperature)
    in_bin = np.searchsorted(curve.edges[1:-1], conf[mask], side="left") == b
    ids = np.sort(p.ids[mask][in_bin])
    span = f"{curve.edges[b]:.2f}–{curve.edges[b + 1]:.2f}"
    accuracy = float(p.correct[mask][in_bin].mean()) if ids.size else float("nan")
    return Selection(ids, f"Bin {span} of {model}: {samples(len(ids))} highlighted, "
                          f"accuracy {accuracy:.2f}.",
                     f"Empty selection: no samples of {model} in the bin {span}; the views are "
                     "unchanged.")


def points_selection(state: ViewState, ids: ArrayLike) -> Selection:
    """The sample ``ids`` of the left panel (a lasso's), sorted and unique."""
    wanted = v.check_sample_ids(np.ravel(v.as_array(ids, "ids")), "ids")
    # a scatter's lasso comes sorted and unique: one comparison pass instead of a sort
    increasing = wanted.size < 2 or bool(np.all(wanted[1:] > wanted[:-1]))
    wanted = wanted.copy() if increasing else np.unique(wanted)  # never the caller's array
    left = state.panels[0]
    if left.rows_of(wanted).size != wanted.size:  # the panel's index is fast; the check names them
        v.check_sample_ids(wanted, "ids", within=left.ids, of=left.name)
    return Selection(wanted, f"Selection of {samples(len(wanted))}.",
                     "Empty selection: no points were selected; the views are unchanged.")


def sample_row(state: ViewState, sample_id: int) -> int:
    """The row of sample ``sample_id`` in the left panel (a hovered point's)."""
    sid = v.check_int(sample_id, "sample_id")
    left = state.panels[0]
    where = left.rows_of(np.array([sid], dtype=np.int64))
    if not where.size:
        raise ValueError(f"`sample_id` must be a sample id of {left.name}; got {sid}.")
    return int(where[0])
