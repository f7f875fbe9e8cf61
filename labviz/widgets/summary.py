"""What the explorer's selection views show, computed from its shared state.

:func:`summarize_selection` describes, for each panel of a
:class:`~labviz.widgets.state.ViewState`, the selected samples (or all samples of the classes in
view when nothing is selected) at the current temperature: their reliability curve and its ECE,
and the per-class table (precision, recall, F1, support and the mean top-1 confidence of the
samples predicted as each class); :func:`single_class_note` says when a single class is in view.
The numbers come from the compute layer (:mod:`labviz.compute.calibration`,
:mod:`labviz.compute.confusion`); the views (:mod:`labviz.widgets.views`) only draw them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from labviz.compute.calibration import (
    ReliabilityCurve,
    mean_confidence_per_class,
    reliability_curve_binary,
)
from labviz.compute.confusion import per_class_table
from labviz.core.predictions import Predictions
from labviz.widgets._common import samples
from labviz.widgets.state import ViewState
from labviz.widgets.temperature import ScaledProbabilities


@dataclass(frozen=True)
class SelectionSummary:
    """The selection views' numbers.

    Attributes
    ----------
    curves : dict of str to ReliabilityCurve
        One per panel holding selected samples, by the panel's name.
    ece : dict of str to float
        Their top-label L1 ECE.
    per_class : pandas.DataFrame
        :func:`~labviz.compute.confusion.per_class_table` of each of those panels, with a
        ``confidence`` column after ``precision`` and a first column ``model``; for a selection,
        only the classes it holds or predicts.
    description : str
        What the numbers describe: ``"selection of 80 samples"`` or ``"all 450 samples"``.
    temperature : float
        The temperature of the probabilities they are computed from.
    """

    curves: dict[str, ReliabilityCurve]
    ece: dict[str, float]
    per_class: pd.DataFrame
    description: str
    temperature: float

    @property
    def heading(self) -> str:
        """``description``, and the temperature unless it is 1: ``"all 450 samples at T = 2"``."""
        t = self.temperature
        return self.description + ("" if t == 1.0 else f" at T = {t:.3g}")

    def temperature_note(self) -> str:
        """The ECEs at ``temperature``, for the status line when T changes."""
        eces = ", ".join(f"{name} {e:.3f}" for name, e in self.ece.items())
        return (f"T = {self.temperature:.3f}: ECE {eces} ({self.description}, probabilities "
                "softmax(logits / T)); accuracy and the confusion matrix do not depend on T.")


def summarize_selection(state: ViewState, probabilities: ScaledProbabilities, *,
                        n_bins: int) -> SelectionSummary:
    """The reliability curves (``n_bins`` bins), ECEs and per-class tables of the samples the
    selection views describe (:meth:`ViewState.selection_mask`), at ``state.temperature``."""
    curves: dict[str, ReliabilityCurve] = {}
    tables = []
    selected = bool(state.highlighted_ids.size)
    for i, panel in enumerate(state.panels):
        p, mask = panel.predictions, state.selection_mask(i)
        if not mask.any():
            continue
        conf = probabilities.confidence(p, state.temperature)
        rows = slice(None) if mask.all() else mask  # a full mask: views, no copy of every row
        y_true, y_pred = p.y_true[rows], p.y_pred[rows]
        # top-label: the top-1 confidence against "the top class is the true one" (argmax does
        # not depend on T), the curve reliability_curve(y_true, probs) gives, with no probs held
        curves[panel.name] = reliability_curve_binary((y_pred == y_true).astype(np.int64),
                                                      conf[rows], n_bins=n_bins)
        table = per_class_table(y_true, y_pred, n_classes=p.n_classes, class_names=p.class_names)
        # top-label calibration per predicted class, next to the precision it compares with
        table.insert(list(table.columns).index("precision") + 1, "confidence",
                     mean_confidence_per_class(y_pred, conf[rows], n_classes=p.n_classes))
        table.insert(0, "model", panel.name)
        if selected:
            # a selection's table lists the classes it holds or predicts, not ten rows of 0
            predicted = np.bincount(y_pred, minlength=p.n_classes)
            table = table[(table["support"] > 0) | (predicted > 0)]
        tables.append(table)
    n = next(iter(curves.values())).n_samples
    return SelectionSummary(
        curves=curves, ece={name: c.calibration_error("l1") for name, c in curves.items()},
        per_class=pd.concat(tables, ignore_index=True),
        description=f"selection of {samples(n)}" if selected else f"all {samples(n)}",
        temperature=state.temperature)


def single_class_note(state: ViewState) -> str:
    """What the status line says when only one class of the left panel is in view (else "")."""
    p = state.panels[0].predictions
    present = np.unique(p.y_true[state.class_mask(0)])
    if len(present) != 1:
        return ""
    return (f"Only one class ({p.class_names[present[0]]}) is in view: the confusion matrix and "
            "the per-class table have a single row, and colours by class show one colour.")


def no_flipped_note(color: str, models: Sequence[Predictions], split: str) -> str:
    """What the status line says when the projections are coloured by ``"flipped"`` but no
    label of ``models`` is flipped (else "")."""
    if color != "flipped" or any(p.flipped.any() for p in models):
        return ""
    return (f"No flipped labels on the {split} split: labels are noisy only on the train split "
            "of the noisy runs.")
