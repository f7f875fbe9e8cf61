"""Figures of representation collapse: template planes, collapse metrics, class-mean cosines and
the confidence of misclassified samples.

Each view is a function taking computed results and a ``XxxDisplay`` whose ``from_predictions``
computes them from :class:`labviz.Predictions`; nothing here computes metrics itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from numpy.typing import ArrayLike, NDArray
from plotly.subplots import make_subplots

from labviz.core import _validation as v
from labviz.core._inputs import as_predictions, as_predictions_list
from labviz.compute import collapse as cc
from labviz.figures.style import apply_style, class_color, series_color
from labviz.core.predictions import Predictions

__all__ = [
    "ClassCosineDisplay",
    "CollapseMetricsDisplay",
    "MisclassifiedConfidenceDisplay",
    "TemplatePlaneDisplay",
    "class_cosine_figure",
    "collapse_metrics_figure",
    "misclassified_confidence_figure",
    "template_plane_figure",
]

#: Above this many points in a figure, scatter traces use WebGL.
WEBGL_THRESHOLD = 3000

METRIC_TITLES = {
    "intra": "Intra-class variation ↓",
    "inter": "Class separation R² ↑",
    "nc1": "NC1 ↓",
}

_FRAME_COLUMNS = ("x", "y", "label", "label_name", "prediction", "correct", "id")


# ----- template plane -----------------------------------------------------------------------------
def _as_frames(
    panels: Sequence[pd.DataFrame | Predictions] | pd.DataFrame | Predictions,
    classes: Sequence[int] | None,
) -> list[pd.DataFrame]:
    if isinstance(panels, (pd.DataFrame, Predictions)):
        panels = [panels]
    if isinstance(panels, (str, bytes)) or not isinstance(panels, Sequence):
        raise TypeError("`panels` must be a sequence of DataFrames or labviz.Predictions; got "
                        f"{type(panels).__name__}.")
    if len(panels) == 0:
        raise ValueError("`panels` must not be empty; got 0 panels.")
    frames = []
    for panel in panels:
        if isinstance(panel, Predictions):
            if classes is None:
                raise TypeError("Give `classes` to project a labviz.Predictions onto a template plane.")
            frames.append(cc.template_plane_frame(panel, classes))
        elif isinstance(panel, pd.DataFrame):
            missing = [c for c in _FRAME_COLUMNS if c not in panel.columns]
            if missing:
                raise ValueError(f"`panels` frames must have columns {list(_FRAME_COLUMNS)} (see "
                                 f"labviz.compute.collapse.template_plane_frame); got {list(panel.columns)}.")
            frames.append(panel)
        else:
            raise TypeError("`panels` must hold DataFrames or labviz.Predictions; got "
                            f"{type(panel).__name__}.")
    return frames


#: Width (and height) in pixels of one template-plane panel; at most :data:`MAX_PANEL_COLS` sit
#: side by side, so the figure stays within a 1,200 px output.
PANEL_PX = 360
MAX_PANEL_COLS = 3
#: Heights in pixels reserved above the panels: the legend's row, and the panel titles below it.
LEGEND_PX, TITLE_PX = 40, 30


def panel_grid(n: int) -> tuple[int, int]:
    """Rows and columns for ``n`` panels: one row up to :data:`MAX_PANEL_COLS`, else the fewest
    rows of at most that many columns, filled as evenly as possible (4 panels: 2 x 2).

    >>> [panel_grid(n) for n in (1, 3, 4, 5, 7)]
    [(1, 1), (1, 3), (2, 2), (2, 3), (3, 3)]
    """
    rows = -(-n // MAX_PANEL_COLS)
    return rows, -(-n // rows)


def _axis_ref(axis: str, i: int) -> str:
    return axis if i == 1 else f"{axis}{i}"


def template_plane_figure(
    panels: Sequence[pd.DataFrame | Predictions] | pd.DataFrame | Predictions,
    classes: Sequence[int] | None = None,
    *,
    titles: Sequence[str] | None = None,
    marker_size: float = 4,
) -> go.Figure:
    """Side-by-side template planes (Müller et al. 2019), e.g. CE train, CE test, LS train, LS test.

    Points are coloured by true class (``class_color``). The templates are drawn as directions:
    arrows from the projection of the zero feature vector toward each projected template, the
    way a feature must move to raise that class's logit. Their common length is set to a third of
    the points' extent, because the weights are much shorter than the features; their relative
    lengths are kept. Axes have equal scale in every panel, so distances read truly. Hover shows
    the sample id, its prediction and whether it is correct.

    Parameters
    ----------
    panels : sequence of DataFrame or Predictions
        Frames from :func:`labviz.compute.collapse.template_plane_frame` (templates are drawn when the
        frame's ``attrs["templates"]`` is present) or Predictions, projected here.
    classes : sequence of 3 int, optional
        Required when a panel is a Predictions.
    titles : sequence of str, optional
        One per panel; defaults to each frame's ``attrs["name"]``.
    marker_size : float

    Returns
    -------
    plotly.graph_objects.Figure
    """
    frames = _as_frames(panels, classes)
    if titles is None:
        titles = [str(f.attrs.get("name", "")) for f in frames]
    elif isinstance(titles, str) or len(titles) != len(frames):
        raise ValueError(f"`titles` must have {len(frames)} entries (one per panel); got "
                         f"{1 if isinstance(titles, str) else len(titles)}.")
    n = len(frames)
    rows, cols = panel_grid(n)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(titles),
                        horizontal_spacing=0.08, vertical_spacing=0.1)
    scatter = go.Scattergl if sum(len(f) for f in frames) > WEBGL_THRESHOLD else go.Scatter
    seen: set[str] = set()
    for i, frame in enumerate(frames, start=1):
        cell = dict(row=(i - 1) // cols + 1, col=(i - 1) % cols + 1)
        for label, group in frame.groupby("label", sort=True):
            key = f"class {label}"
            fig.add_trace(scatter(
                x=group["x"], y=group["y"], mode="markers",
                name=str(group["label_name"].iloc[0]), legendgroup=key, showlegend=key not in seen,
                marker=dict(color=class_color(label), size=marker_size, opacity=0.6),
                customdata=np.column_stack([group["id"], group["prediction"], group["correct"]]),
                hovertemplate="id %{customdata[0]}<br>predicted %{customdata[1]}"
                              "<br>correct %{customdata[2]}<extra>%{fullData.name}</extra>",
            ), **cell)
            seen.add(key)
        templates = frame.attrs.get("templates")
        if templates is not None:
            arrows = _template_arrows(frame, templates)
            arrows.showlegend = "templates" not in seen
            fig.add_trace(arrows, **cell)
            seen.add("templates")
        fig.update_yaxes(scaleanchor=_axis_ref("x", i), scaleratio=1, **cell)
    # The legend runs along the top, above the panel titles, so it never widens the figure.
    top = LEGEND_PX + TITLE_PX
    fig.update_layout(width=PANEL_PX * cols + 80, height=PANEL_PX * rows + top + 55,
                      margin=dict(t=top, b=55),
                      legend=dict(itemsizing="constant", orientation="h", x=0, xanchor="left",
                                  y=1 + TITLE_PX / (PANEL_PX * rows), yanchor="bottom"))
    return apply_style(fig)


#: Length of the longest template arrow, as a share of the largest distance of a point from the
#: projected origin.
ARROW_SHARE = 1 / 3


def _template_arrows(frame: pd.DataFrame, templates: Sequence[Sequence[float]]) -> go.Scatter:
    """One trace of three arrows, from the projected origin toward each projected template."""
    tpl = np.asarray(templates, dtype=np.float64)
    origin = np.asarray(frame.attrs.get("origin", tpl.mean(axis=0)), dtype=np.float64)
    direction = tpl - origin
    longest = np.linalg.norm(direction, axis=1).max()
    reach = np.hypot(frame["x"] - origin[0], frame["y"] - origin[1]).max() if len(frame) else 1.0
    tips = origin + direction * (ARROW_SHARE * reach / longest if longest > 0 else 0.0)
    tpl_classes = frame.attrs.get("classes", [None] * len(tpl))
    names = frame.attrs.get("class_names")
    labels = [str(names[k]) if names is not None and k is not None else str(k) for k in tpl_classes]
    x, y, text, size, where = [], [], [], [], []
    for tip, step, label in zip(tips, direction, labels, strict=True):
        x += [origin[0], tip[0], None]
        y += [origin[1], tip[1], None]
        text += ["", f"w: {label}", ""]
        size += [0, 14, 0]
        # the label sits beyond the tip, on the side the arrow points to
        side = "right" if step[0] > 0.3 * np.hypot(*step) else "left" if step[0] < -0.3 * np.hypot(*step) else "center"
        where += ["middle center", f"{'top' if step[1] >= 0 else 'bottom'} {side}", "middle center"]
    return go.Scatter(
        x=x, y=y, mode="lines+markers+text", text=text, textposition=where,
        name="templates", legendgroup="templates",
        line=dict(color="#000000", width=2),
        marker=dict(symbol="arrow", angleref="previous", size=size, color="#000000"),
        hovertemplate="direction of template %{text}<extra></extra>",
    )


@dataclass(frozen=True)
class TemplatePlaneDisplay:
    """Template-plane projections of one or more Predictions, ready to plot.

    Attributes
    ----------
    frames : tuple of DataFrame
        From :func:`labviz.compute.collapse.template_plane_frame`, one per panel.
    classes : tuple of 3 int
    titles : tuple of str
    """

    frames: tuple[pd.DataFrame, ...]
    classes: tuple[int, int, int]
    titles: tuple[str, ...]

    @classmethod
    def from_predictions(
        cls,
        predictions: Predictions | Sequence[Predictions] | Mapping[str, Predictions],
        *,
        classes: Sequence[int],
        titles: Sequence[str] | None = None,
        only_classes: bool = True,
    ) -> TemplatePlaneDisplay:
        """Project each Predictions (with features and weights) onto its own template plane;
        titles default to a mapping's keys, else the Predictions' names.

        Build Predictions from plain arrays with ``labviz.Predictions.from_arrays(y_true=...,
        logits=..., features=..., weights=...)``.
        """
        preds, keys = as_predictions_list(predictions)
        frames = tuple(cc.template_plane_frame(p, classes, only_classes=only_classes) for p in preds)
        names = tuple(titles if titles is not None else keys or [p.name for p in preds])
        return cls(frames=frames, classes=tuple(frames[0].attrs["classes"]), titles=names)

    def plot(self, *, marker_size: float = 4) -> go.Figure:
        """Draw the template planes, one panel per frame; see :func:`template_plane_figure`."""
        return template_plane_figure(list(self.frames), self.classes, titles=self.titles,
                                     marker_size=marker_size)


# ----- collapse metrics across checkpoints --------------------------------------------------------
def collapse_metrics_figure(table: pd.DataFrame) -> go.Figure:
    """Bars of each collapse metric per group (mean ± sd over its checkpoints, e.g. seeds).

    One panel per metric: intra-class variation and NC1 (↓: lower means more collapsed) and class
    separation R² (↑: higher means better separated). Each group (e.g. loss family) is a bar with a
    ±1 sd error bar (none for a group of one), and its checkpoints are overlaid as small black dots.

    Parameters
    ----------
    table : pandas.DataFrame
        Per-checkpoint rows from :func:`labviz.compute.collapse.collapse_table`.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    summary = cc.collapse_summary(table)
    groups = list(pd.unique(summary["group"]))
    fig = make_subplots(rows=1, cols=len(cc.METRICS),
                        subplot_titles=[METRIC_TITLES[m] for m in cc.METRICS], horizontal_spacing=0.08)
    for col, metric in enumerate(cc.METRICS, start=1):
        rows = summary[summary["metric"] == metric].set_index("group")
        for i, group in enumerate(groups):
            mean, sd = float(rows.at[group, "mean"]), float(rows.at[group, "sd"])
            fig.add_trace(go.Bar(
                x=[str(group)], y=[mean], name=str(group), legendgroup=str(group),
                showlegend=col == 1, marker_color=series_color(i),
                error_y=dict(type="data", array=[0.0 if np.isnan(sd) else sd], visible=True),
                hovertemplate=f"{group}<br>mean %{{y:.4g}} ± {sd:.3g} (n={int(rows.at[group, 'n']):,})"
                              "<extra></extra>",
            ), row=1, col=col)
        fig.add_trace(go.Scatter(
            x=table["group"].astype(str), y=table[metric], mode="markers", showlegend=False,
            name="checkpoints", marker=dict(color="#000000", size=5), text=table["name"],
            hovertemplate="%{text}: %{y:.4g}<extra></extra>",
        ), row=1, col=col)
    fig.update_layout(barmode="group", width=max(760, 300 * len(cc.METRICS)), height=400,
                      showlegend=len(groups) > 1)
    return apply_style(fig)


@dataclass(frozen=True)
class CollapseMetricsDisplay:
    """Collapse metrics of several checkpoints (one row each, as :func:`collapse_table`)."""

    table: pd.DataFrame

    @classmethod
    def from_predictions(
        cls,
        predictions: Sequence[Predictions],
        *,
        group_by: Sequence[str] | None = None,
        labels: cc.Labels = "true",
    ) -> CollapseMetricsDisplay:
        """Compute the metrics of each Predictions; ``group_by`` as in :func:`collapse_table`."""
        return cls(table=cc.collapse_table(predictions, group_by=group_by, labels=labels))

    def plot(self) -> go.Figure:
        """Draw the metrics per model; see :func:`collapse_metrics_figure`."""
        return collapse_metrics_figure(self.table)


# ----- class-mean cosines -------------------------------------------------------------------------
def class_cosine_figure(
    matrix: ArrayLike, class_names: Sequence[str] | None = None, *, title: str = ""
) -> go.Figure:
    """Heatmap of the cosines between centred class means (diverging, 0 in white).

    Parameters
    ----------
    matrix : array-like of shape (n_classes, n_classes)
        From :func:`labviz.compute.collapse.class_mean_cosine`; NaN (absent class) cells stay blank.
    class_names : sequence of str, optional
    title : str

    Returns
    -------
    plotly.graph_objects.Figure
    """
    m = v.as_array(matrix, "matrix")
    if m.dtype.kind not in "iuf":
        raise TypeError(f"`matrix` must hold real numbers; got {v.describe(m)}.")
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(f"`matrix` must have shape (n_classes, n_classes); got {m.shape}.")
    k = m.shape[0]
    if class_names is None:
        names = [str(i) for i in range(k)]
    else:
        names = [str(c) for c in class_names]
        if len(names) != k:
            raise ValueError(f"`class_names` must have {k} entries (one per class); got {len(names)}.")
    fig = go.Figure(go.Heatmap(
        z=m.astype(np.float64), x=names, y=names, colorscale="RdBu_r", zmid=0, zmin=-1, zmax=1,
        texttemplate="%{z:.2f}" if k <= 20 else None, colorbar=dict(title="cos"),
        hovertemplate="%{y} · %{x}: %{z:.3f}<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", scaleratio=1)
    fig.update_layout(title=title, width=560, height=520)
    return apply_style(fig)


@dataclass(frozen=True)
class ClassCosineDisplay:
    """Cosines between centred class means of one Predictions' features."""

    matrix: NDArray[np.float64]
    class_names: tuple[str, ...]
    name: str = ""

    @classmethod
    def from_predictions(cls, predictions: Predictions, *, labels: cc.Labels = "true") -> ClassCosineDisplay:
        """From one Predictions with features; class means by the true labels (or ``labels="given"``)."""
        predictions = as_predictions(predictions)
        feats, y = cc._features_and_labels(predictions, None, labels, "predictions")
        matrix = cc.class_mean_cosine(feats, y, n_classes=predictions.n_classes)
        return cls(matrix=matrix, class_names=predictions.class_names, name=predictions.name)

    def plot(self) -> go.Figure:
        """Draw the cosine matrix as a heatmap; see :func:`class_cosine_figure`."""
        return class_cosine_figure(self.matrix, self.class_names, title=self.name)


# ----- confidence of misclassified samples --------------------------------------------------------
def _check_confidences(confidences: Mapping[str, ArrayLike]) -> dict[str, NDArray[np.float64]]:
    if not isinstance(confidences, Mapping):
        raise TypeError("`confidences` must be a mapping {name: confidences}; got "
                        f"{type(confidences).__name__}.")
    if len(confidences) == 0:
        raise ValueError("`confidences` must not be empty; got 0 series.")
    out = {}
    for name, values in confidences.items():
        arr = v.as_array(values, "confidences")
        if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iuf"):
            raise ValueError(f"`confidences[{name!r}]` must be a 1-D array of probabilities; got "
                             f"{v.describe(arr)}.")
        arr = arr.astype(np.float64)
        if arr.size and (not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1):
            raise ValueError(f"`confidences[{name!r}]` must hold probabilities in [0, 1].")
        out[str(name)] = arr
    return out


def misclassified_confidence_figure(
    confidences: Mapping[str, ArrayLike], *, n_bins: int = 20
) -> go.Figure:
    """Overlaid histograms of the top-1 confidence of misclassified samples, one per model.

    Each histogram is normalised to fractions of that model's errors, so models with different
    error counts compare; the legend gives each count and mean.

    Parameters
    ----------
    confidences : mapping of str to array-like of shape (n_misclassified,)
        From :func:`labviz.compute.collapse.misclassified_confidence`, e.g. ``{"LS": ..., "MaxSup": ...}``.
    n_bins : int
        Bins over [0, 1].

    Returns
    -------
    plotly.graph_objects.Figure
    """
    series = _check_confidences(confidences)
    n_bins = v.check_int(n_bins, "n_bins", minimum=1)
    fig = go.Figure()
    for i, (name, conf) in enumerate(series.items()):
        mean = f", mean {conf.mean():.2f}" if conf.size else ""
        fig.add_trace(go.Histogram(
            x=conf, name=f"{name} (n={conf.size:,}{mean})", histnorm="probability",
            xbins=dict(start=0.0, end=1.0, size=1.0 / n_bins), marker_color=series_color(i),
            opacity=0.55,
        ))
    fig.update_layout(barmode="overlay", width=640, height=400,
                      xaxis_title="top-1 confidence of misclassified samples",
                      yaxis_title="fraction of errors")
    fig.update_xaxes(range=[0, 1])
    return apply_style(fig)


@dataclass(frozen=True)
class MisclassifiedConfidenceDisplay:
    """Top-1 confidences of the misclassified samples of several models."""

    confidences: dict[str, NDArray[np.float64]]

    @classmethod
    def from_predictions(
        cls, predictions: Mapping[str, Predictions] | Sequence[Predictions] | Predictions
    ) -> MisclassifiedConfidenceDisplay:
        """From ``{name: Predictions}`` or Predictions (named by ``.name``)."""
        preds, keys = as_predictions_list(predictions)
        names = keys or [p.name or f"#{i}" for i, p in enumerate(preds)]
        return cls(confidences={k: cc.misclassified_confidence(p) for k, p in zip(names, preds)})

    def plot(self, *, n_bins: int = 20) -> go.Figure:
        """Draw the histograms of misclassified confidence; see :func:`misclassified_confidence_figure`."""
        return misclassified_confidence_figure(self.confidences, n_bins=n_bins)
