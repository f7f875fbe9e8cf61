"""Calibration report: every calibration estimator with its confidence interval, for several models.

:class:`CalibrationReportDisplay` holds a tidy table (one row per model x estimator) and each
model's reliability curve with per-bin intervals; :meth:`CalibrationReportDisplay.plot` draws the
reliability diagrams side by side above a forest plot of the estimators, so that overlapping or
separate intervals show whether two models' calibration differs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from labviz.core import _validation as v
from labviz.compute.calibration import (
    IntervalSpec,
    ReliabilityCurve,
    calibration_intervals,
    ece_sweep,
    reliability_curve,
    smooth_ece,
)
from labviz.core._inputs import as_predictions_list
from labviz.figures.calibration import (
    BinIntervals,
    _add_curve_traces,
    _diagonal,
    _resolve_names,
    bin_intervals,
    probs_of,
)
from labviz.figures.style import apply_style, series_color
from labviz.core.predictions import Predictions

if TYPE_CHECKING:
    import pandas as pd

ModelsLike = Union[Mapping[str, Predictions], Sequence[Predictions]]

#: Estimators of the report, in table and plot order, with the ``calibration_interval`` options
#: of those that have a bootstrap interval (None: no interval).
ESTIMATORS: dict[str, IntervalSpec | None] = {
    "ECE (equal-width)": IntervalSpec(metric="ece", strategy="uniform"),
    "ECE (equal-mass)": IntervalSpec(metric="ece", strategy="quantile"),
    "classwise ECE": IntervalSpec(metric="ece", strategy="uniform", classwise=True),
    "debiased ECE": IntervalSpec(metric="debiased_ece", strategy="uniform"),
    "smooth ECE": None,
    "ECE_sweep": None,
    "NLL": IntervalSpec(metric="nll"),
    "Brier": IntervalSpec(metric="brier"),
}
#: Proper scores live on another scale than calibration errors: they get their own forest panel.
SCORES: tuple[str, ...] = ("NLL", "Brier")
COLUMNS: tuple[str, ...] = ("model", "estimator", "estimate", "low", "high", "n_bins", "interval")

_FOREST_HOVER = ("<b>%{fullData.name}</b><br>%{hovertext}<br>estimate %{x:.4f}"
                 "<br>%{customdata[2]}<extra></extra>")


def _rows(name: str, p: Predictions, *, n_boot: int, seed: int, n_bins: int) -> list[dict]:
    # One call for every interval: the probabilities are validated once and the resampled
    # indices drawn once, giving what one calibration_interval call per estimator gives.
    specs = [IntervalSpec(**options, n_bins=n_bins) for options in ESTIMATORS.values()
             if options is not None]
    probs = probs_of(p)
    intervals = iter(calibration_intervals(p.y_true, probs, specs, n_boot=n_boot, seed=seed))
    rows = []
    for estimator, options in ESTIMATORS.items():
        if options is not None:
            ci = next(intervals)
            binned = options.get("metric") not in ("nll", "brier")
            rows.append(dict(estimate=ci.estimate, low=ci.low, high=ci.high,
                             n_bins=n_bins if binned else None,
                             interval=f"{ci.confidence:.0%} percentile bootstrap "
                                      f"(n_boot={ci.n_boot})"))
        elif estimator == "smooth ECE":
            rows.append(dict(estimate=smooth_ece(p.y_true, probs), low=math.nan, high=math.nan,
                             n_bins=None, interval="none (no bins; not bootstrapped)"))
        else:
            sweep = ece_sweep(p.y_true, probs)
            rows.append(dict(estimate=sweep.ece, low=math.nan, high=math.nan,
                             n_bins=sweep.n_bins,
                             interval="none (the bin count is chosen from the data)"))
        rows[-1].update(model=name, estimator=estimator)
    return rows


@dataclass(frozen=True, eq=False)
class CalibrationReportDisplay:
    """Calibration estimators with confidence intervals for several models, ready to plot.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per model x estimator, columns ``model``, ``estimator``, ``estimate``, ``low``,
        ``high`` (the 95% interval; NaN where the estimator has none: smooth ECE and ECE_sweep),
        ``n_bins`` (bins used, ECE_sweep's chosen count; missing for NLL, Brier and smooth ECE)
        and ``interval`` (how the interval was made).
    curves : dict of str to ReliabilityCurve
        Each model's equal-width top-label reliability curve.
    intervals : dict of str to BinIntervals
        The 95% Wilson interval of each bin's accuracy.
    """

    table: pd.DataFrame
    curves: Mapping[str, ReliabilityCurve]
    intervals: Mapping[str, BinIntervals]

    @classmethod
    def from_predictions(
        cls,
        models: ModelsLike,
        *,
        n_boot: int = 1000,
        seed: int = 0,
        n_bins: int = 15,
        names: Sequence[str] | None = None,
    ) -> CalibrationReportDisplay:
        """Compute every estimator with its interval for each model.

        Bootstrap intervals are those of :func:`labviz.compute.calibration.calibration_interval`
        (the same ``seed`` for every estimator and model), computed together by
        :func:`~labviz.compute.calibration.calibration_intervals`; smooth ECE
        (:func:`~labviz.compute.calibration.smooth_ece`) and ECE_sweep
        (:func:`~labviz.compute.calibration.ece_sweep`) are point estimates.

        Parameters
        ----------
        models : mapping of str to Predictions, or sequence of Predictions
            Names are the mapping keys, else ``Predictions.name``.
        n_boot : int, default 1000
        seed : int, default 0
        n_bins : int, default 15
            Bins of the binned estimators and of the reliability curves.
        names : sequence of str, optional
            Model names, one per model.
        """
        import pandas as pd

        items, keys = as_predictions_list(models, "models")
        names = _resolve_names(keys or [p.name for p in items], names)
        n_boot = v.check_int(n_boot, "n_boot", minimum=1)
        seed = v.check_int(seed, "seed", minimum=0)
        n_bins = v.check_int(n_bins, "n_bins", minimum=1)
        rows = [r for n, p in zip(names, items)
                for r in _rows(n, p, n_boot=n_boot, seed=seed, n_bins=n_bins)]
        table = pd.DataFrame(rows, columns=list(COLUMNS))
        table["n_bins"] = table["n_bins"].astype("Int64")
        curves = {n: reliability_curve(p.y_true, probs_of(p), n_bins=n_bins)
                  for n, p in zip(names, items)}
        return cls(table=table, curves=curves,
                   intervals={n: bin_intervals(c) for n, c in curves.items()})

    def plot(self, *, title: str | None = None) -> go.Figure:
        """Reliability diagrams (one per model, with per-bin intervals, faded by count) above a
        forest plot of the calibration errors and one of the proper scores, with their intervals.

        Returns
        -------
        plotly.graph_objects.Figure
        """
        names = list(self.curves)
        n = len(names)
        errors = [e for e in ESTIMATORS if e not in SCORES]
        fig = make_subplots(
            rows=3, cols=n, row_heights=[0.46, 0.36, 0.18], vertical_spacing=0.09,
            specs=[[{}] * n, [{"colspan": n}] + [None] * (n - 1),
                   [{"colspan": n}] + [None] * (n - 1)],
            subplot_titles=[*names, "Calibration errors (95% CI; hollow: no interval)",
                            "Proper scores (95% CI)"],
        )
        for i, name in enumerate(names):
            cell = dict(row=1, col=i + 1)
            fig.add_trace(_diagonal(showlegend=i == 0), **cell)
            _add_curve_traces(fig, name, self.curves[name], self.intervals[name],
                              series_color(i), kind="lines", several=False, show_gap=True,
                              fade=True, cell=cell)
            fig.update_xaxes(range=[0, 1], title_text="Confidence", **cell)
            fig.update_yaxes(range=[0, 1], title_text="Accuracy" if i == 0 else None, **cell)
        for row, group in ((2, errors), (3, list(SCORES))):
            self._add_forest(fig, names, group, row)
        # The left margin holds the estimator names of the forest panels.
        fig.update_layout(height=560 + 60 * len(ESTIMATORS), title=title,
                          margin=dict(l=140, r=20, t=60 if title is None else 90, b=90),
                          legend=dict(orientation="h", x=0, y=-0.06, xanchor="left",
                                      yanchor="top"))
        return apply_style(fig)

    def _add_forest(self, fig: go.Figure, names: list[str], group: list[str], row: int) -> None:
        import pandas as pd

        t = self.table
        step = 0.7 / max(len(names), 1)
        for i, name in enumerate(names):
            sub = t[(t["model"] == name)].set_index("estimator").loc[group]
            est = sub["estimate"].to_numpy(dtype=float)
            low, high = sub["low"].to_numpy(dtype=float), sub["high"].to_numpy(dtype=float)
            has_ci = ~np.isnan(low)
            # Estimator j sits at y = -j, top to bottom; the models are spread around it.
            y = -np.arange(len(group)) + (i - (len(names) - 1) / 2) * step
            hover = [e if pd.isna(b) else f"{e} ({int(b)} bins)"
                     for e, b in zip(group, sub["n_bins"])]
            bounds = [f"CI [{lo:.4f}, {hi:.4f}]" if ok else "no interval"
                      for lo, hi, ok in zip(low, high, has_ci)]
            fig.add_trace(go.Scatter(
                x=est, y=y, mode="markers", name=f"{name} estimators", legendgroup=name,
                showlegend=False,
                marker=dict(color=series_color(i), size=9,
                            symbol=np.where(has_ci, "circle", "diamond-open").tolist()),
                error_x=dict(type="data", symmetric=False, thickness=1.5, width=4,
                             array=np.where(has_ci, high - est, 0.0),
                             arrayminus=np.where(has_ci, est - low, 0.0)),
                customdata=np.column_stack([low, high, bounds]).tolist(),
                hovertext=hover, hovertemplate=_FOREST_HOVER), row=row, col=1)
        fig.update_yaxes(tickvals=-np.arange(len(group)), ticktext=group, showgrid=False,
                         range=[-len(group) + 0.5, 0.5], row=row, col=1)
        fig.update_xaxes(title_text="Estimate" if row == 3 else None, rangemode="tozero",
                         row=row, col=1)

