"""Reliability diagrams: per-bin accuracy against confidence, with the gap and a histogram beneath.

Build from predictions with :class:`ReliabilityDisplay` (or :class:`TemperatureScalingDisplay` for a
before/after comparison), or draw curves computed by :mod:`labviz.compute.calibration` with
:func:`reliability_figure`. :class:`CorpDisplay` and :func:`corp_figure` draw CORP (isotonic)
reliability diagrams.

Per-bin uncertainty
-------------------
Each bin's accuracy ``k / n`` (``k`` correct of ``n``) gets a 95% **Wilson score** interval by
default (:func:`binomial_interval`, ``method="wilson"``): with ``z`` the normal quantile,

``(k/n + z^2/(2n) -/+ z sqrt(k/n (1 - k/n) / n + z^2 / (4 n^2))) / (1 + z^2/n)``.

Wilson keeps close to the nominal coverage for small ``n`` and for accuracies near 0 or 1 (Brown,
Cai and DasGupta, 2001), where the Wald interval collapses to a point, and is narrower than the
exact Clopper-Pearson interval (``method="clopper-pearson"``), whose coverage is at least 95%
and often far above. Bins with few samples are also drawn small and faint
(:func:`count_weight`): the weight ``w = clip(log(n) / log(FULL_COUNT), 0, 1)`` sets the marker
opacity ``0.25 + 0.75 w`` and size ``4 + 6 w`` pixels, so a bin of one sample is a faint dot and a
bin of ``FULL_COUNT`` (300) or more is fully drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import math
import tempfile
import weakref
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal, Union

import numpy as np
import plotly.graph_objects as go
from numpy.typing import ArrayLike, NDArray
from plotly.subplots import make_subplots

from labviz.core import _validation as v
from labviz.core._inputs import arrays_given, as_predictions, as_predictions_list
from labviz.compute.calibration import (
    CorpDiagram,
    ReliabilityCurve,
    Strategy,
    TemperatureScalingReport,
    corp_reliability,
    reliability_curve,
    temperature_scaling_report,
)
from labviz.figures.style import apply_style, series_color
from labviz.core.predictions import Predictions

Kind = Literal["auto", "bars", "lines"]
IntervalMethod = Literal["wilson", "clopper-pearson"]
INTERVAL_METHODS: tuple[str, ...] = ("wilson", "clopper-pearson")
PredictionsLike = Union[Predictions, Sequence[Predictions], Mapping[str, Predictions]]

#: From this many probabilities (samples x classes; 512 MB as float64) the calibration figures
#: read the softmax from a float32 memory map of a temporary file (:func:`probs_of`) rather than
#: ``Predictions.probs``, a float64 array held in memory (10 GB at 1.28M x 1,000).
MAPPED_PROBS = 1 << 26

_MAPPED: weakref.WeakKeyDictionary[Predictions, NDArray[np.float32]] = weakref.WeakKeyDictionary()


def probs_of(p: Predictions) -> NDArray[np.floating]:
    """The probabilities the calibration figures read, shape (n_samples, n_classes).

    ``p.probs`` below :data:`MAPPED_PROBS` entries or once it is built. Beyond, the softmax
    written a row chunk at a time (``p.prob_chunks``) as float32 to a temporary ``.npy`` file,
    memory-mapped read-only and kept while ``p`` lives: its pages are the file's, which the
    system can drop, not anonymous memory. The file is unlinked at once (the map keeps it until
    it is closed), so nothing is left on disk.
    """
    if "probs" in p.__dict__ or p.n_samples * p.n_classes < MAPPED_PROBS:
        return p.probs
    if p not in _MAPPED:
        with tempfile.NamedTemporaryFile(prefix="labviz-probs-", suffix=".npy") as f:
            out = np.lib.format.open_memmap(f.name, mode="w+", dtype=np.float32,
                                            shape=p.logits.shape)
            for rows, chunk in p.prob_chunks():
                out[rows] = chunk
            out.flush()
            del out
            _MAPPED[p] = np.load(f.name, mmap_mode="r", allow_pickle=False)
    return _MAPPED[p]

#: Guo et al. draw the gap between accuracy and confidence in red; this is the palette's vermillion.
#: The gap box is hatched on a clear ground: where it lies over an accuracy bar (an under-confident
#: bin) the bar's own colour shows through the hatching, rather than a blend the legend cannot name.
GAP_LINE_COLOR = "#D55E00"
GAP_PATTERN = dict(shape="/", fgcolor=GAP_LINE_COLOR, size=8, solidity=0.25,
                   fillmode="overlay")
#: The ground of an over-confident gap box, which stands on white above its bar: a pale vermillion,
#: so that it reads as miscalibration and not as accuracy (an all-wrong bin has no bar at all).
#: An under-confident box lies over its bar and stays clear.
GAP_FILL = "rgba(213, 94, 0, 0.18)"
CLEAR = "rgba(0, 0, 0, 0)"
#: The accuracy of each bin is also marked by a line across the bin, so that an accuracy of 0 (a
#: bar of no height) is still seen; its thickness in pixels.
ACCURACY_MARK_PX = 3
#: The legend runs in rows beneath the diagram, in a bottom margin sized for it, so it covers no
#: bar and no title; rows are laid out for this width in pixels (the explorer's diagram is 520).
LEGEND_ROW_PX = 480
#: Pixels of one legend row, and of the x-axis ticks and title above the legend.
LEGEND_LINE_PX, AXIS_TITLE_PX = 24, 60


def legend_rows(names: Sequence[str]) -> int:
    """How many rows a horizontal legend of ``names`` takes in :data:`LEGEND_ROW_PX` pixels,
    at about 7 px a character plus 45 px of symbol and gap per entry.

    >>> legend_rows(["Perfectly calibrated", "net (ECE 0.012)"])
    1
    """
    rows, used = 1, 0.0
    for name in names:
        need = 45 + 7 * len(name)
        if used and used + need > LEGEND_ROW_PX:
            rows, used = rows + 1, 0.0
        used += need
    return rows


def _legend_below(fig: go.Figure, height: int) -> None:
    """Lay the legend out in rows beneath the plot and grow the figure by their height."""
    names = [t.name for t in fig.data if t.showlegend is not False and t.name]
    extra = LEGEND_LINE_PX * legend_rows(names)
    fig.update_layout(
        height=height + extra, margin=dict(b=AXIS_TITLE_PX + extra),
        legend=dict(orientation="h", x=0, xanchor="left", yref="container", y=0,
                    yanchor="bottom"))
GAP_NAME = "Gap: mean confidence − accuracy"
#: Bins whose counts differ by at most this share of the largest (and at least one sample) are
#: taken as equal-mass: their histogram would be flat, so their bin edges are drawn instead.
EQUAL_COUNT_TOLERANCE = 0.02
DIAGONAL_NAME = "Perfectly calibrated"

_HOVER = (
    "<b>%{fullData.name}</b><br>bin (%{customdata[1]:.3f}, %{customdata[2]:.3f}]"
    "<br>confidence %{customdata[3]:.3f}<br>accuracy %{customdata[4]:.3f}"
    "<br>gap (acc - conf) %{customdata[5]:+.3f}<br>n = %{customdata[0]:,}<extra></extra>"
)


def _hover_ci(label: str) -> str:
    """Hover with per-bin intervals: customdata[6:8] are the bounds; hovertext ends the count note
    ("samples: few, drawn faint"), so the hover reads "n = 3 samples: few, drawn faint"."""
    return ("<b>%{fullData.name}</b><br>bin (%{customdata[1]:.3f}, %{customdata[2]:.3f}]"
            "<br>confidence %{customdata[3]:.3f}<br>accuracy %{customdata[4]:.3f}"
            f" [%{{customdata[6]:.3f}}, %{{customdata[7]:.3f}}] ({label})"
            "<br>gap (acc - conf) %{customdata[5]:+.3f}<br>n = %{customdata[0]:,} %{hovertext}"
            "<extra></extra>")


#: A bin of this many samples or more is drawn at full size and opacity.
FULL_COUNT = 300
#: Opacity and marker size (pixels) of a one-sample bin and of a bin of ``FULL_COUNT`` or more.
MIN_OPACITY, MAX_OPACITY = 0.25, 1.0
MIN_SIZE, MAX_SIZE = 4.0, 10.0
#: Counts below this are called "few" in the hover text.
FEW_COUNT = 30


# ----- per-bin intervals and count weights --------------------------------------------------------
def binomial_interval(
    k: ArrayLike, n: ArrayLike, *, method: IntervalMethod = "wilson", confidence: float = 0.95
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Confidence interval of a proportion ``k / n``, elementwise.

    * ``"wilson"``: ``(p + z^2/(2n) -/+ z sqrt(p (1 - p) / n + z^2 / (4 n^2))) / (1 + z^2 / n)``
      with ``p = k / n`` and ``z`` the ``(1 + confidence) / 2`` standard normal quantile
      (``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")``).
    * ``"clopper-pearson"``: the exact interval, ``Beta((1 - c)/2; k, n - k + 1)`` and
      ``Beta((1 + c)/2; k + 1, n - k)`` quantiles (0 and 1 at ``k = 0`` and ``k = n``),
      ``proportion_ci(method="exact")``.

    Parameters
    ----------
    k : array-like of shape (m,)
        Successes (correct predictions), integers in ``[0, n]``.
    n : array-like of shape (m,)
        Trials (samples in the bin); where ``n = 0`` both bounds are NaN.
    method : {"wilson", "clopper-pearson"}, default "wilson"
    confidence : float, default 0.95
        In (0, 1).

    Returns
    -------
    low, high : ndarray of shape (m,)

    Examples
    --------
    >>> low, high = binomial_interval([0, 3], [0, 3])
    >>> bool(np.isnan(low[0])), round(float(low[1]), 4), float(high[1])
    (True, 0.4385, 1.0)
    """
    v.check_option(method, "method", INTERVAL_METHODS)
    confidence = v.check_float(confidence, "confidence")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"`confidence` must be in (0, 1); got {confidence!r}.")
    k = np.atleast_1d(np.asarray(k, dtype=np.float64))
    n = np.atleast_1d(np.asarray(n, dtype=np.float64))
    if k.shape != n.shape:
        raise ValueError(f"`k` and `n` must have the same shape; got {k.shape} and {n.shape}.")
    if np.any(n < 0) or np.any(k < 0) or np.any(k > n):
        raise ValueError("`k` must be in [0, n] and `n` >= 0 elementwise; got "
                         f"k={k.tolist()}, n={n.tolist()}.")
    low, high = np.full(k.shape, np.nan), np.full(k.shape, np.nan)
    ok = n > 0
    kk, nn = k[ok], n[ok]
    if method == "wilson":
        z = NormalDist().inv_cdf((1 + confidence) / 2)
        p = kk / nn
        denom = 1 + z**2 / nn
        center = (p + z**2 / (2 * nn)) / denom
        half = z / denom * np.sqrt(p * (1 - p) / nn + z**2 / (4 * nn**2))
        low[ok], high[ok] = np.clip(center - half, 0, 1), np.clip(center + half, 0, 1)
    else:
        from scipy.stats import beta

        alpha = 1 - confidence
        with np.errstate(invalid="ignore"):
            lo = np.where(kk > 0, beta.ppf(alpha / 2, np.maximum(kk, 1), nn - kk + 1), 0.0)
            hi = np.where(kk < nn, beta.ppf(1 - alpha / 2, kk + 1, np.maximum(nn - kk, 1)), 1.0)
        low[ok], high[ok] = lo, hi
    return low, high


@dataclass(frozen=True, eq=False)
class BinIntervals:
    """Per-bin confidence intervals of a reliability curve's accuracy.

    Attributes
    ----------
    low, high : ndarray of shape (n_bins,)
        Bounds of each bin's accuracy; NaN for an empty bin.
    method : {"wilson", "clopper-pearson"}
    confidence : float
    """

    low: NDArray[np.float64]
    high: NDArray[np.float64]
    method: str
    confidence: float

    @property
    def label(self) -> str:
        """E.g. ``"95% Wilson"``."""
        name = "Wilson" if self.method == "wilson" else "Clopper-Pearson"
        return f"{self.confidence:.0%} {name}"


def bin_intervals(curve: ReliabilityCurve, *, method: IntervalMethod = "wilson",
                  confidence: float = 0.95) -> BinIntervals:
    """Confidence interval of each bin's accuracy from its correct / total counts.

    Parameters
    ----------
    curve : ReliabilityCurve
    method : {"wilson", "clopper-pearson"}, default "wilson"
        See :func:`binomial_interval`.
    confidence : float, default 0.95

    Returns
    -------
    BinIntervals
    """
    if not isinstance(curve, ReliabilityCurve):
        raise TypeError(f"`curve` must be a ReliabilityCurve; got {type(curve).__name__}.")
    count = np.asarray(curve.count)
    # accuracy is hits / count, so rounding recovers the integer number of hits.
    hits = np.where(count > 0, np.rint(np.nan_to_num(curve.accuracy) * count), 0)
    low, high = binomial_interval(hits, count, method=method, confidence=confidence)
    return BinIntervals(low=low, high=high, method=method, confidence=float(confidence))


def count_weight(count: ArrayLike) -> NDArray[np.float64]:
    """How fully a bin of ``count`` samples is drawn: ``clip(log(count) / log(FULL_COUNT), 0, 1)``.

    0 for one sample (or none), 1 from :data:`FULL_COUNT` samples on; increasing in between, on a
    log scale. Opacity is ``MIN_OPACITY + (MAX_OPACITY - MIN_OPACITY) w``, size likewise.

    >>> count_weight([1, 300, 3000]).tolist()
    [0.0, 1.0, 1.0]
    """
    c = np.maximum(np.asarray(count, dtype=np.float64), 1.0)
    return np.clip(np.log(c) / math.log(FULL_COUNT), 0.0, 1.0)


def count_opacity(count: ArrayLike) -> NDArray[np.float64]:
    """Marker opacity of a bin of ``count`` samples (see :func:`count_weight`)."""
    return MIN_OPACITY + (MAX_OPACITY - MIN_OPACITY) * count_weight(count)


def count_size(count: ArrayLike) -> NDArray[np.float64]:
    """Marker size in pixels of a bin of ``count`` samples (see :func:`count_weight`)."""
    return MIN_SIZE + (MAX_SIZE - MIN_SIZE) * count_weight(count)


def _count_words(count: int) -> str:
    text = "sample" if count == 1 else "samples"
    if count < FEW_COUNT:
        return text + ": few, drawn faint"
    if count < FULL_COUNT:
        return text + ": drawn lighter"
    return text


def count_note(count: int) -> str:
    """Hover text for a bin's count, e.g. ``"n = 3 samples: few, drawn faint"``.

    Below :data:`FEW_COUNT` (30) samples a bin is "few, drawn faint"; below :data:`FULL_COUNT`
    (300) "drawn lighter"; from there on drawn fully, with no note.
    """
    count = int(count)
    return f"n = {count:,} {_count_words(count)}"


def _check_named(items: object, kind: type, arg: str, what: str) -> dict:
    """``items`` (one ``kind`` or a non-empty mapping of names to ``kind``) as a dict by name."""
    if isinstance(items, kind):
        return {"model": items}
    if not isinstance(items, Mapping):
        raise TypeError(f"`{arg}` must be a {kind.__name__} or a mapping of names to "
                        f"{kind.__name__}; got {type(items).__name__}.")
    if not items:
        raise ValueError(f"`{arg}` must hold at least one {what}; got an empty mapping.")
    for name, item in items.items():
        if not isinstance(item, kind):
            raise TypeError(f"`{arg}` must map names to {kind.__name__}; got "
                            f"{type(item).__name__} for {name!r}.")
    return {str(k): v for k, v in items.items()}


def _check_curves(curves: Mapping[str, ReliabilityCurve] | ReliabilityCurve
                  ) -> dict[str, ReliabilityCurve]:
    return _check_named(curves, ReliabilityCurve, "curves", "curve")


def _customdata(c: ReliabilityCurve) -> np.ndarray:
    """Per-bin hover data: count, bin low, bin high, confidence, accuracy, gap (one row per bin)."""
    return np.column_stack([c.count, c.edges[:-1], c.edges[1:], c.confidence, c.accuracy, c.gap])


def _check_intervals(intervals: Mapping[str, BinIntervals] | BinIntervals | None,
                     curves: dict[str, ReliabilityCurve], show_ci: bool
                     ) -> dict[str, BinIntervals | None]:
    if not v.check_bool(show_ci, "show_ci"):
        return {name: None for name in curves}
    if intervals is None:
        return {name: bin_intervals(c) for name, c in curves.items()}
    if isinstance(intervals, BinIntervals):
        if len(curves) != 1:
            raise ValueError(f"`intervals` must be a mapping with one entry per curve when there are "
                             f"{len(curves)} curves; got one BinIntervals.")
        intervals = {next(iter(curves)): intervals}
    if not isinstance(intervals, Mapping):
        raise TypeError("`intervals` must be a BinIntervals, a mapping of names to BinIntervals or "
                        f"None; got {type(intervals).__name__}.")
    out: dict[str, BinIntervals | None] = {}
    for name, c in curves.items():
        iv = intervals.get(name)
        if not isinstance(iv, BinIntervals):
            raise ValueError(f"`intervals` must hold a BinIntervals for every curve; got "
                             f"{type(iv).__name__} for {name!r}.")
        if iv.low.shape != c.count.shape:
            raise ValueError(f"`intervals` for {name!r} must have {c.n_bins} bins (as its curve); "
                             f"got {len(iv.low)}.")
        out[name] = iv
    return out


def _add_curve_traces(
    fig: go.Figure, name: str, c: ReliabilityCurve, iv: BinIntervals | None, color: str, *,
    kind: str, several: bool, show_gap: bool, fade: bool, cell: dict,
) -> None:
    """The accuracy (bars or markers), its per-bin intervals and the gap of one curve."""
    filled = c.count > 0
    label = f"{name} (ECE {c.calibration_error('l1'):.3f})"
    data = _customdata(c)[filled]
    conf, acc = c.confidence[filled], c.accuracy[filled]
    centers, widths = c.centers[filled], np.diff(c.edges)[filled]
    count = c.count[filled]
    opacity = count_opacity(count) if fade else np.ones(len(count))
    size = count_size(count) if fade else np.full(len(count), 8.0)
    extra: dict = {"customdata": data, "hovertemplate": _HOVER}
    if iv is not None:
        low, high = iv.low[filled], iv.high[filled]
        extra = dict(
            customdata=np.column_stack([data, low, high]),
            hovertext=[_count_words(int(n)) for n in count],
            hovertemplate=_hover_ci(iv.label),
            error_y=dict(type="data", symmetric=False, array=high - acc, arrayminus=acc - low,
                         color=color if kind == "lines" else "#444444", thickness=1.2, width=3),
        )
    if kind == "bars":
        fig.add_trace(go.Bar(
            x=centers, y=acc, width=widths, name=label, legendgroup=name,
            marker=dict(color=color, line=dict(color="white", width=1), opacity=opacity),
            opacity=0.6 if several else 1.0, **extra), **cell)
        if show_gap:
            fig.add_trace(go.Bar(
                x=centers, y=conf - acc, base=acc, width=widths,
                name=GAP_NAME if not several else f"{name} gap", legendgroup=name,
                showlegend=not several,
                marker=dict(color=np.where(conf > acc, GAP_FILL, CLEAR).tolist(),
                            pattern=GAP_PATTERN, line=dict(color=GAP_LINE_COLOR, width=1)),
                customdata=data, hovertemplate=_HOVER), **cell)
        fig.add_trace(_accuracy_marks(name, centers, acc, data, color, opacity), **cell)
    else:
        if show_gap:
            # One trace of vertical segments from (conf, acc) to the diagonal at (conf, conf).
            xs = np.column_stack([conf, conf, np.full_like(conf, np.nan)]).ravel()
            ys = np.column_stack([acc, conf, np.full_like(conf, np.nan)]).ravel()
            fig.add_trace(go.Scatter(
                x=xs, y=ys, mode="lines", name=f"{name} gap", legendgroup=name,
                showlegend=False, line=dict(color=color, width=5), opacity=0.3,
                hoverinfo="skip"), **cell)
        fig.add_trace(go.Scatter(
            x=conf, y=acc, mode="markers+lines", name=label, legendgroup=name,
            line=dict(color=color, width=2), marker=dict(color=color, size=size, opacity=opacity),
            **extra), **cell)


def _accuracy_marks(name: str, centers: NDArray[np.float64], acc: NDArray[np.float64],
                    data: np.ndarray, color: str, opacity: NDArray[np.float64]) -> go.Scatter:
    """A line across each bin at its accuracy, in the curve's colour: the top of its bar, and
    the one mark of a bin whose accuracy is 0. Hovering or clicking it is hovering or clicking
    the bin (same ``customdata``)."""
    return go.Scatter(
        x=centers, y=acc, mode="markers", name=f"{name} accuracy", legendgroup=name,
        showlegend=False, cliponaxis=False, customdata=data, hovertemplate=_HOVER,
        marker=dict(symbol="line-ew", size=22, opacity=opacity,
                    line=dict(color=color, width=ACCURACY_MARK_PX)))


def reliability_figure(
    curves: Mapping[str, ReliabilityCurve] | ReliabilityCurve,
    *,
    kind: Kind = "auto",
    show_gap: bool = True,
    show_histogram: bool = True,
    title: str | None = None,
    intervals: Mapping[str, BinIntervals] | BinIntervals | None = None,
    show_ci: bool = True,
    fade: bool = True,
) -> go.Figure:
    """Reliability diagram of one or several models.

    Top row: per-bin accuracy against confidence with its confidence interval as error bars, the
    gap to the ``y = x`` diagonal, and one series per model, named with its ECE (L1, from the
    curve's bins). Bins with few samples are drawn faint (and, as markers, small): see
    :func:`count_weight`. Bottom row (shared x): the share of samples in each bin, filled for one
    model and outlined for several. Equal-mass bins (:func:`is_equal_mass`, e.g.
    ``strategy="quantile"``) all hold the same share, so for them the bottom row shows each
    model's bin edges as ticks instead: closely spaced edges mark where confidences crowd.
    Hovering a bin shows its range, count, confidence, accuracy with its interval, and gap.

    Parameters
    ----------
    curves : ReliabilityCurve or mapping of str to ReliabilityCurve
        One curve, or several keyed by the name shown in the legend.
    kind : {"auto", "bars", "lines"}, default "auto"
        "bars" draws accuracy as bars over the bins, each topped by a line at its accuracy (the
        one mark of a bin whose accuracy is 0), with the gap as hatched red boxes from accuracy
        up (on a pale red ground) or down (over the bar, clear) to the mean confidence, as in
        Guo et al. (2017); "lines" draws accuracy
        against mean confidence as markers and lines, the gap as a vertical band to the diagonal.
        "auto" uses bars for one curve and lines for several.
    show_gap : bool, default True
    show_histogram : bool, default True
        Add the confidence histogram (or, for equal-mass bins, the bin edges) as a second row.
    title : str, optional
    intervals : BinIntervals or mapping of str to BinIntervals, optional
        Per-bin intervals (from :func:`bin_intervals`), keyed like ``curves``; default the 95%
        Wilson interval of each bin.
    show_ci : bool, default True
        Draw the per-bin intervals as error bars.
    fade : bool, default True
        Fade (and, as markers, shrink) each bin by its count; False draws every bin alike.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    curves = _check_curves(curves)
    v.check_option(kind, "kind", ("auto", "bars", "lines"))
    fade = v.check_bool(fade, "fade")
    ivs = _check_intervals(intervals, curves, show_ci)
    if kind == "auto":
        kind = "bars" if len(curves) == 1 else "lines"
    several = len(curves) > 1
    equal_mass = all(is_equal_mass(c) for c in curves.values())
    if show_histogram:
        fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25],
                            vertical_spacing=0.04)
        top = dict(row=1, col=1)
    else:
        fig, top = go.Figure(), {}
    fig.add_trace(_diagonal(), **top)
    for i, (name, c) in enumerate(curves.items()):
        color = series_color(i)
        _add_curve_traces(fig, name, c, ivs[name], color, kind=kind, several=several,
                          show_gap=show_gap, fade=fade, cell=top)
        if show_histogram:
            fig.add_trace(_bin_edges(name, c, color) if equal_mass
                          else _histogram(name, c, color, several), row=2, col=1)
    fig.update_layout(
        barmode="overlay", title=title)
    _legend_below(fig, 620 if show_histogram else 480)
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1], title_text="Accuracy", **top)
    if show_histogram and equal_mass:
        fig.update_yaxes(title_text="Bin edges", type="category", showgrid=False, row=2, col=1)
    elif show_histogram:
        fig.update_yaxes(title_text="Share of samples", rangemode="tozero", row=2, col=1)
    if show_histogram:
        fig.update_xaxes(title_text="Confidence", row=2, col=1)
    else:
        fig.update_xaxes(title_text="Confidence")
    return apply_style(fig)


def _diagonal(showlegend: bool = True) -> go.Scatter:
    return go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name=DIAGONAL_NAME,
                      line=dict(color="#888888", dash="dash", width=1.5), hoverinfo="skip",
                      legendgroup="diagonal", showlegend=showlegend)


def is_equal_mass(curve: ReliabilityCurve) -> bool:
    """Whether every non-empty bin of ``curve`` holds (about) the same number of samples.

    True for equal-mass (quantile) bins: their counts differ by at most one sample or
    :data:`EQUAL_COUNT_TOLERANCE` of the largest, so a histogram of them is flat.

    >>> is_equal_mass(ReliabilityCurve(np.array([0, .5, .9, 1]), np.full(3, .8), np.full(3, .7),
    ...                                np.array([50, 51, 50])))
    True
    """
    count = curve.count[curve.count > 0]
    if len(count) < 2:
        return False
    return bool(count.max() - count.min() <= max(1.0, EQUAL_COUNT_TOLERANCE * count.max()))


def _histogram(name: str, c: ReliabilityCurve, color: str, several: bool) -> go.Bar:
    """Share of samples per bin: filled for one model; for several, outlines in each model's
    colour, which stay apart where translucent fills would blend into one block."""
    n = max(c.n_samples, 1)
    marker = (dict(color="rgba(0, 0, 0, 0)", line=dict(color=color, width=2)) if several
              else dict(color=color, line=dict(color="white", width=1)))
    return go.Bar(
        x=c.centers, y=c.count / n, width=np.diff(c.edges), name=f"{name} samples",
        legendgroup=name, showlegend=False, opacity=1.0 if several else 0.8,
        marker=marker, customdata=c.count,
        hovertemplate=(f"<b>{name}</b><br>n = %{{customdata:,}}"
                       "<br>share %{y:.1%}<extra></extra>"))


def _bin_edges(name: str, c: ReliabilityCurve, color: str) -> go.Scatter:
    """Equal-mass bins as a row of ticks at their edges: every bin holds the same share, so the
    spacing of the edges, not a bar height, shows where the confidences lie (close: many)."""
    per_bin = int(round(c.n_samples / max(int((c.count > 0).sum()), 1)))
    return go.Scatter(
        x=c.edges, y=[name] * len(c.edges), mode="markers", name=f"{name} bin edges",
        legendgroup=name, showlegend=False,
        marker=dict(symbol="line-ns-open", size=14, color=color, line=dict(width=2, color=color)),
        hovertemplate=(f"<b>{name}</b><br>bin edge %{{x:.3f}}<br>equal-mass bins: about "
                       f"{per_bin:,} samples each<extra></extra>"))


def temperature_scaling_figure(
    report: TemperatureScalingReport, *, show_histogram: bool = True, title: str | None = None
) -> go.Figure:
    """Reliability curves on test data before and after temperature scaling, overlaid.

    Parameters
    ----------
    report : TemperatureScalingReport
        From :func:`labviz.compute.calibration.temperature_scaling_report`.
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
    intervals : dict of str to BinIntervals, optional
        Per-bin intervals of each curve's accuracy, keyed like ``curves``; None draws the 95%
        Wilson intervals (or none, with ``plot(show_ci=False)``).
    """

    curves: Mapping[str, ReliabilityCurve]
    intervals: Mapping[str, BinIntervals] | None = None

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
        ci: IntervalMethod | None = "wilson",
        confidence: float = 0.95,
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
        ci : {"wilson", "clopper-pearson"} or None, default "wilson"
            Interval of each bin's accuracy (see :func:`binomial_interval`); None for none.
        confidence : float, default 0.95
            Coverage of the per-bin intervals.
        """
        if ci is not None:
            v.check_option(ci, "ci", INTERVAL_METHODS)
        pairs: list[tuple[ArrayLike, ArrayLike]]
        given = arrays_given(predictions, "predictions", {"y_true": y_true, "probs": probs},
                             several=True)
        if given is None:
            items, keys = as_predictions_list(predictions)
            names = _resolve_names(keys or [p.name for p in items], names)
            pairs = [(p.y_true, probs_of(p)) for p in items]
        else:
            labels, scores = given
            arrays: list[ArrayLike]
            if isinstance(scores, Mapping):
                default, arrays = [str(k) for k in scores], list(scores.values())
            elif _is_several_arrays(scores):
                default, arrays = [""] * len(scores), list(scores)
            else:
                default, arrays = ["model"], [scores]
            names = _resolve_names(default, names)
            pairs = [(labels, p) for p in arrays]
        curves = {n: reliability_curve(y, p, n_bins=n_bins, strategy=strategy)
                  for n, (y, p) in zip(names, pairs)}
        intervals = None if ci is None else {
            n: bin_intervals(c, method=ci, confidence=confidence) for n, c in curves.items()}
        return cls(curves=curves, intervals=intervals)

    def plot(self, *, kind: Kind = "auto", show_gap: bool = True, show_histogram: bool = True,
             title: str | None = None, show_ci: bool = True, fade: bool = True) -> go.Figure:
        """Draw the reliability diagram (see :func:`reliability_figure`).

        ``show_ci`` draws the per-bin intervals held in :attr:`intervals` (the 95% Wilson ones
        if there are none); ``fade`` fades bins by their count.
        """
        return reliability_figure(self.curves, kind=kind, show_gap=show_gap,
                                  show_histogram=show_histogram, title=title,
                                  intervals=self.intervals, show_ci=show_ci, fade=fade)


def _logits_and_labels(
    x: Predictions | tuple[ArrayLike, ArrayLike], name: str
) -> tuple[ArrayLike, ArrayLike]:
    given = arrays_given(x, name, {}, required=("logits", "y_true"), alternative="pair")
    if given is None:
        p = as_predictions(x, name)
        return p.logits, p.y_true
    logits, y_true = given
    return logits, y_true


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


# ----- CORP reliability diagrams --------------------------------------------------------------------
_CORP_HOVER = (
    "<b>%{fullData.name}</b><br>confidence %{x:.3f}<br>CEP (isotonic fit) %{y:.3f}"
    "<br>band [%{customdata[1]:.3f}, %{customdata[2]:.3f}]<br>n = %{customdata[0]:,}<extra></extra>"
)


def _check_diagrams(diagrams: Mapping[str, CorpDiagram] | CorpDiagram) -> dict[str, CorpDiagram]:
    return _check_named(diagrams, CorpDiagram, "diagrams", "diagram")


def _fill(color: str, alpha: float) -> str:
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"


def corp_label(name: str, d: CorpDiagram) -> str:
    """Legend name with the score decomposition, e.g. ``"net (MCB 0.012, DSC 0.080, UNC 0.190)"``."""
    return f"{name} (MCB {d.mcb:.3f}, DSC {d.dsc:.3f}, UNC {d.unc:.3f})"


def _add_corp_traces(fig: go.Figure, name: str, d: CorpDiagram, color: str, cell: dict) -> None:
    band = f"{d.band_level:.0%} band"
    data = np.column_stack([d.count, d.band_low, d.band_high])
    # The band: its upper edge (invisible), then the lower edge filled up to it.
    fig.add_trace(go.Scatter(
        x=d.confidence, y=d.band_high, mode="lines", line=dict(width=0, shape="hv", color=color),
        name=f"{name} {band} (high)", legendgroup=name, showlegend=False, hoverinfo="skip"),
        **cell)
    fig.add_trace(go.Scatter(
        x=d.confidence, y=d.band_low, mode="lines", line=dict(width=0, shape="hv", color=color),
        fill="tonexty", fillcolor=_fill(color, 0.2), name=f"{name} {band}", legendgroup=name,
        showlegend=False, hoverinfo="skip"), **cell)
    fig.add_trace(go.Scatter(
        x=d.confidence, y=d.calibrated, mode="lines", line=dict(color=color, width=2, shape="hv"),
        name=corp_label(name, d), legendgroup=name, customdata=data,
        hovertemplate=_CORP_HOVER.replace("<extra>", f"<br>Brier {d.score:.4f} = MCB {d.mcb:.4f} "
                                          f"- DSC {d.dsc:.4f} + UNC {d.unc:.4f}<extra>")),
        **cell)


def corp_figure(diagrams: Mapping[str, CorpDiagram] | CorpDiagram, *,
                title: str | None = None) -> go.Figure:
    """CORP reliability diagram of one or several models.

    Per model: the isotonic (PAV) fit of correctness on top-label confidence as a step curve, its
    bootstrap band as a shaded area, and the Brier score decomposition ``S = MCB - DSC + UNC``
    in the legend name and the hover text; plus the ``y = x`` diagonal.

    Parameters
    ----------
    diagrams : CorpDiagram or mapping of str to CorpDiagram
        From :func:`labviz.compute.calibration.corp_reliability`, keyed by the legend name.
    title : str, optional

    Returns
    -------
    plotly.graph_objects.Figure
    """
    diagrams = _check_diagrams(diagrams)
    fig = go.Figure()
    fig.add_trace(_diagonal())
    for i, (name, d) in enumerate(diagrams.items()):
        _add_corp_traces(fig, name, d, series_color(i), {})
    fig.update_layout(height=520, title=title,
                      legend=dict(x=0.02, y=0.98, xanchor="left", yanchor="top"))
    fig.update_xaxes(range=[0, 1], title_text="Confidence")
    fig.update_yaxes(range=[0, 1], title_text="Conditional event probability (CEP)")
    return apply_style(fig)


@dataclass(frozen=True, eq=False)
class CorpDisplay:
    """CORP reliability diagrams of one or several models, ready to plot.

    Attributes
    ----------
    diagrams : dict of str to CorpDiagram
        Keyed by model name (the legend).
    """

    diagrams: Mapping[str, CorpDiagram]

    @classmethod
    def from_predictions(
        cls,
        predictions: PredictionsLike,
        *,
        n_boot: int = 1000,
        band_level: float = 0.95,
        seed: int = 0,
        null: Literal["fitted", "forecast"] = "fitted",
        names: Sequence[str] | None = None,
    ) -> CorpDisplay:
        """CORP diagrams (:func:`labviz.compute.calibration.corp_reliability`) of each model.

        Parameters
        ----------
        predictions : Predictions, sequence of Predictions or mapping of str to Predictions
        n_boot : int, default 1000
            Bootstrap refits for the band.
        band_level : float, default 0.95
        seed : int, default 0
            The same seed for every model.
        null : {"fitted", "forecast"}, default "fitted"
            "fitted": a band around the CORP curve; "forecast": a consistency band around the
            diagonal.
        names : sequence of str, optional
        """
        items, keys = as_predictions_list(predictions)
        names = _resolve_names(keys or [p.name for p in items], names)
        return cls(diagrams={n: corp_reliability(p.y_true, probs_of(p), n_boot=n_boot,
                                                 band_level=band_level, seed=seed, null=null)
                             for n, p in zip(names, items)})

    def plot(self, *, title: str | None = None) -> go.Figure:
        """Draw the CORP diagrams (see :func:`corp_figure`)."""
        return corp_figure(self.diagrams, title=title)
