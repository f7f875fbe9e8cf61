"""Reliability diagrams: per-bin accuracy against confidence, with the gap and a histogram beneath.

Build from predictions with :class:`ReliabilityDisplay` (or :class:`TemperatureScalingDisplay` for a
before/after comparison), or draw curves computed by :mod:`labviz.calibration` with
:func:`reliability_figure`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Union

import numpy as np
import plotly.graph_objects as go
from numpy.typing import ArrayLike
from plotly.subplots import make_subplots

from labviz import _validation as v
from labviz.calibration import (
    ReliabilityCurve,
    Strategy,
    TemperatureScalingReport,
    reliability_curve,
    temperature_scaling_report,
)
from labviz.figures.style import apply_style, series_color
from labviz.predictions import Predictions

Kind = Literal["auto", "bars", "lines"]
PredictionsLike = Union[Predictions, Sequence[Predictions], Mapping[str, Predictions]]

#: Guo et al. draw the gap between accuracy and confidence in red; this is the palette's vermillion.
GAP_COLOR = "rgba(213, 94, 0, 0.35)"
GAP_LINE_COLOR = "#D55E00"
DIAGONAL_NAME = "Perfectly calibrated"

_HOVER = (
    "<b>%{fullData.name}</b><br>bin (%{customdata[1]:.3f}, %{customdata[2]:.3f}]"
    "<br>confidence %{customdata[3]:.3f}<br>accuracy %{customdata[4]:.3f}"
    "<br>gap (acc - conf) %{customdata[5]:+.3f}<br>n = %{customdata[0]:,}<extra></extra>"
)


def _check_curves(curves: Mapping[str, ReliabilityCurve] | ReliabilityCurve
                  ) -> dict[str, ReliabilityCurve]:
    if isinstance(curves, ReliabilityCurve):
        return {"model": curves}
    if not isinstance(curves, Mapping):
        raise TypeError("`curves` must be a ReliabilityCurve or a mapping of names to "
                        f"ReliabilityCurve; got {type(curves).__name__}.")
    if not curves:
        raise ValueError("`curves` must hold at least one curve; got an empty mapping.")
    for name, c in curves.items():
        if not isinstance(c, ReliabilityCurve):
            raise TypeError(f"`curves` must map names to ReliabilityCurve; got "
                            f"{type(c).__name__} for {name!r}.")
    return {str(k): c for k, c in curves.items()}


def _customdata(c: ReliabilityCurve) -> np.ndarray:
    """Per-bin hover data: count, bin low, bin high, confidence, accuracy, gap (one row per bin)."""
    return np.column_stack([c.count, c.edges[:-1], c.edges[1:], c.confidence, c.accuracy, c.gap])


def reliability_figure(
    curves: Mapping[str, ReliabilityCurve] | ReliabilityCurve,
    *,
    kind: Kind = "auto",
    show_gap: bool = True,
    show_histogram: bool = True,
    title: str | None = None,
) -> go.Figure:
    """Reliability diagram of one or several models.

    Top row: per-bin accuracy against confidence, the gap to the ``y = x`` diagonal, and one series
    per model, named with its ECE (L1, from the curve's bins). Bottom row (shared x): the share of
    samples in each bin. Hovering a bin shows its range, count, confidence, accuracy and gap.

    Parameters
    ----------
    curves : ReliabilityCurve or mapping of str to ReliabilityCurve
        One curve, or several keyed by the name shown in the legend.
    kind : {"auto", "bars", "lines"}, default "auto"
        "bars" draws accuracy as bars over the bins with the gap as red bars stacked from accuracy
        up (or down) to the mean confidence, as in Guo et al. (2017); "lines" draws accuracy
        against mean confidence as markers and lines, the gap as a vertical band to the diagonal.
        "auto" uses bars for one curve and lines for several.
    show_gap : bool, default True
    show_histogram : bool, default True
        Add the confidence histogram as a second row.
    title : str, optional

    Returns
    -------
    plotly.graph_objects.Figure
    """
    curves = _check_curves(curves)
    v.check_option(kind, "kind", ("auto", "bars", "lines"))
    if kind == "auto":
        kind = "bars" if len(curves) == 1 else "lines"
    several = len(curves) > 1
    if show_histogram:
        fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25],
                            vertical_spacing=0.04)
        top = dict(row=1, col=1)
    else:
        fig, top = go.Figure(), {}
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name=DIAGONAL_NAME,
                             line=dict(color="#888888", dash="dash", width=1.5),
                             hoverinfo="skip"), **top)
    for i, (name, c) in enumerate(curves.items()):
        color = series_color(i)
        filled = c.count > 0
        label = f"{name} (ECE {c.calibration_error('l1'):.3f})"
        data = _customdata(c)[filled]
        conf, acc = c.confidence[filled], c.accuracy[filled]
        centers, widths = c.centers[filled], np.diff(c.edges)[filled]
        if kind == "bars":
            fig.add_trace(go.Bar(
                x=centers, y=acc, width=widths, name=label, legendgroup=name,
                marker=dict(color=color, line=dict(color="white", width=1)),
                opacity=0.6 if several else 1.0, customdata=data, hovertemplate=_HOVER), **top)
            if show_gap:
                fig.add_trace(go.Bar(
                    x=centers, y=conf - acc, base=acc, width=widths,
                    name="Gap" if not several else f"{name} gap", legendgroup=name,
                    showlegend=not several,
                    marker=dict(color=GAP_COLOR, line=dict(color=GAP_LINE_COLOR, width=1)),
                    customdata=data, hovertemplate=_HOVER), **top)
        else:
            if show_gap:
                # One trace of vertical segments from (conf, acc) to the diagonal at (conf, conf).
                xs = np.column_stack([conf, conf, np.full_like(conf, np.nan)]).ravel()
                ys = np.column_stack([acc, conf, np.full_like(conf, np.nan)]).ravel()
                fig.add_trace(go.Scatter(
                    x=xs, y=ys, mode="lines", name=f"{name} gap", legendgroup=name,
                    showlegend=False, line=dict(color=color, width=5), opacity=0.3,
                    hoverinfo="skip"), **top)
            fig.add_trace(go.Scatter(
                x=conf, y=acc, mode="markers+lines", name=label, legendgroup=name,
                line=dict(color=color, width=2), marker=dict(color=color, size=8),
                customdata=data, hovertemplate=_HOVER), **top)
        if show_histogram:
            n = max(c.n_samples, 1)
            fig.add_trace(go.Bar(
                x=c.centers, y=c.count / n, width=np.diff(c.edges), name=f"{name} samples",
                legendgroup=name, showlegend=False, opacity=0.5 if several else 0.8,
                marker=dict(color=color), customdata=c.count,
                hovertemplate=(f"<b>{name}</b><br>n = %{{customdata:,}}"
                               "<br>share %{y:.1%}<extra></extra>")), row=2, col=1)
    fig.update_layout(
        barmode="overlay", height=620 if show_histogram else 480, title=title,
        legend=dict(x=0.02, y=0.98, xanchor="left", yanchor="top"),
    )
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1], title_text="Accuracy", **top)
    if show_histogram:
        fig.update_yaxes(title_text="Share of samples", rangemode="tozero", row=2, col=1)
        fig.update_xaxes(title_text="Confidence", row=2, col=1)
    else:
        fig.update_xaxes(title_text="Confidence")
    return apply_style(fig)


def temperature_scaling_figure(
    report: TemperatureScalingReport, *, show_histogram: bool = True, title: str | None = None
) -> go.Figure:
    """Reliability curves on test data before and after temperature scaling, overlaid.

    Parameters
    ----------
    report : TemperatureScalingReport
        From :func:`labviz.calibration.temperature_scaling_report`.
    show_histogram : bool, default True
    title : str, optional
        Defaults to the temperature and the ECE before and after.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    if not isinstance(report, TemperatureScalingReport):
        raise TypeError(f"`report` must be a TemperatureScalingReport; got {type(report).__name__}.")
    t = report.temperature
    if title is None:
        title = (f"Temperature scaling: T = {t:.3g}, ECE {report.ece_before:.3f} "
                 f"\u2192 {report.ece_after:.3f}")
    return reliability_figure(
        {"before (T = 1)": report.curve_before, f"after (T = {t:.3g})": report.curve_after},
        kind="lines", show_histogram=show_histogram, title=title,
    )


# ----- displays -------------------------------------------------------------------------------------
def _as_predictions_list(predictions: PredictionsLike) -> tuple[list[Predictions], list[str] | None]:
    if isinstance(predictions, Predictions):
        return [predictions], None
    if isinstance(predictions, Mapping):
        items, keys = list(predictions.values()), [str(k) for k in predictions]
    elif isinstance(predictions, (list, tuple)):
        items, keys = list(predictions), None
    else:
        raise TypeError("`predictions` must be a Predictions, a sequence or a mapping of them; "
                        f"got {type(predictions).__name__}.")
    if not items:
        raise ValueError("`predictions` must hold at least one Predictions; got none.")
    for p in items:
        if not isinstance(p, Predictions):
            raise TypeError(f"`predictions` must hold Predictions objects; got {type(p).__name__}.")
    return items, keys


def _is_several_arrays(probs: object) -> bool:
    return isinstance(probs, (list, tuple)) and len(probs) > 0 and all(
        getattr(x, "ndim", None) == 2 for x in probs)


def _resolve_names(default: list[str], names: Sequence[str] | None) -> list[str]:
    if names is None:
        # Unnamed or repeated default names get a running number, so legends stay distinct.
        out = []
        for i, n in enumerate(default):
            n = n or f"model {i + 1}"
            out.append(n if n not in out else f"{n} #{i + 1}")
        return out
    if isinstance(names, str):
        raise TypeError(f"`names` must be a sequence of strings; got the string {names!r}.")
    names = [str(n) for n in names]
    if len(names) != len(default):
        raise ValueError(f"`names` must have {len(default)} entries (one per model); "
                         f"got {len(names)}.")
    if len(set(names)) != len(names):
        raise ValueError(f"`names` must be unique; got {names}.")
    return names


@dataclass(frozen=True, eq=False)
class ReliabilityDisplay:
    """Reliability curves of one or several models, ready to plot.

    Attributes
    ----------
    curves : dict of str to ReliabilityCurve
        Keyed by model name (the legend).
    """

    curves: Mapping[str, ReliabilityCurve]

    @classmethod
    def from_predictions(
        cls,
        predictions: PredictionsLike | None = None,
        *,
        y_true: ArrayLike | None = None,
        probs: ArrayLike | Sequence[ArrayLike] | Mapping[str, ArrayLike] | None = None,
        n_bins: int = 15,
        strategy: Strategy = "uniform",
        names: Sequence[str] | None = None,
    ) -> ReliabilityDisplay:
        """Top-label reliability curves from predictions or arrays.

        Parameters
        ----------
        predictions : Predictions, sequence of Predictions or mapping of str to Predictions, optional
            One or several models; legend names are the mapping keys, else ``Predictions.name``.
        y_true : array-like of shape (n_samples,), optional
            With ``probs``, instead of ``predictions``.
        probs : array-like of shape (n_samples, n_classes), or a list or mapping of such arrays
            One model's probabilities, or several models' (numpy arrays or tensors) on the same
            ``y_true``.
        n_bins : int, default 15
        strategy : {"uniform", "quantile"}, default "uniform"
        names : sequence of str, optional
            Legend names, one per model.
        """
        if predictions is not None:
            if y_true is not None or probs is not None:
                raise TypeError("Give either `predictions` or `y_true` and `probs`; got both.")
            items, keys = _as_predictions_list(predictions)
            names = _resolve_names(keys or [p.name for p in items], names)
            pairs = [(p.y_true, p.probs) for p in items]
        else:
            if y_true is None or probs is None:
                raise TypeError("Give either `predictions` or both `y_true` and `probs`; got "
                                + ("neither." if y_true is None and probs is None else "one."))
            if isinstance(probs, Mapping):
                default, arrays = [str(k) for k in probs], list(probs.values())
            elif _is_several_arrays(probs):
                default, arrays = [""] * len(probs), list(probs)
            else:
                default, arrays = ["model"], [probs]
            names = _resolve_names(default, names)
            pairs = [(y_true, p) for p in arrays]
        curves = {n: reliability_curve(y, p, n_bins=n_bins, strategy=strategy)
                  for n, (y, p) in zip(names, pairs)}
        return cls(curves=curves)

    def plot(self, *, kind: Kind = "auto", show_gap: bool = True, show_histogram: bool = True,
             title: str | None = None) -> go.Figure:
        """Draw the reliability diagram (see :func:`reliability_figure`)."""
        return reliability_figure(self.curves, kind=kind, show_gap=show_gap,
                                  show_histogram=show_histogram, title=title)


def _logits_and_labels(x: Predictions | tuple, name: str) -> tuple[ArrayLike, ArrayLike]:
    if isinstance(x, Predictions):
        return x.logits, x.y_true
    if isinstance(x, tuple) and len(x) == 2:
        return x
    raise TypeError(f"`{name}` must be a Predictions or a (logits, y_true) tuple; "
                    f"got {type(x).__name__}.")


@dataclass(frozen=True, eq=False)
class TemperatureScalingDisplay:
    """Calibration before and after temperature scaling (fitted on validation, shown on test).

    Attributes
    ----------
    report : TemperatureScalingReport
    """

    report: TemperatureScalingReport

    @classmethod
    def from_predictions(
        cls,
        val: Predictions | tuple[ArrayLike, ArrayLike],
        test: Predictions | tuple[ArrayLike, ArrayLike],
        *,
        n_bins: int = 15,
        strategy: Strategy = "uniform",
    ) -> TemperatureScalingDisplay:
        """Fit the temperature on ``val`` and compare calibration on ``test``.

        Parameters
        ----------
        val, test : Predictions or (logits, y_true) tuple
            Logits of shape (n, n_classes) and labels of shape (n,).
        n_bins : int, default 15
        strategy : {"uniform", "quantile"}, default "uniform"
        """
        zv, yv = _logits_and_labels(val, "val")
        zt, yt = _logits_and_labels(test, "test")
        return cls(report=temperature_scaling_report(zv, yv, zt, yt, n_bins=n_bins,
                                                     strategy=strategy))

    def plot(self, *, show_histogram: bool = True, title: str | None = None) -> go.Figure:
        """Overlay the reliability curves before and after (see :func:`temperature_scaling_figure`)."""
        return temperature_scaling_figure(self.report, show_histogram=show_histogram, title=title)
