"""Figures of label-quality signals: loss histograms with a beta mixture, accuracy by score decile,
and a gallery of likely label errors.

Each view is a function taking computed results (from :mod:`labviz.compute.label_quality`) and a
``XxxDisplay`` whose ``from_predictions`` computes them from a :class:`labviz.Predictions`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from numpy.typing import ArrayLike, NDArray

from labviz.core import _validation as v
from labviz.core._inputs import as_predictions, as_predictions_list
from labviz.compute import label_quality as lq
from labviz.figures.style import apply_style, series_color
from labviz.figures.thumbnails import image_grid_figure
from labviz.core.predictions import Predictions

__all__ = [
    "LabelErrorDisplay",
    "LossHistogramDisplay",
    "NonUniformityDisplay",
    "label_error_gallery_figure",
    "loss_histogram_figure",
    "non_uniformity_by_decile_figure",
]

CLEAN_COLOR = series_color(0)
NOISY_COLOR = series_color(3)

_DECILE_COLUMNS = ("bin", "score_min", "score_max", "accuracy", "n")


# ----- loss histogram -----------------------------------------------------------------------------
def loss_histogram_figure(
    losses: ArrayLike,
    flipped: ArrayLike | None = None,
    mixture: lq.BetaMixture | None = None,
    *,
    n_bins: int = 50,
) -> go.Figure:
    """Histogram of per-sample losses, clean and flipped labels overlaid, with a fitted mixture.

    Parameters
    ----------
    losses : array-like of shape (n_samples,)
        E.g. :func:`labviz.compute.label_quality.per_sample_loss` against the given labels.
    flipped : array-like of bool of shape (n_samples,), optional
        Which given labels are wrong (known for synthetic noise); without it one histogram is drawn.
    mixture : BetaMixture, optional
        From :func:`labviz.compute.label_quality.fit_beta_mixture`; its two weighted component densities
        are drawn over its fitted loss range, scaled to counts per bin (the number of losses in that
        range × bin width), so they sit on the histogram; the y-axis is fitted to the histogram, not
        the densities' spikes.
    n_bins : int

    Returns
    -------
    plotly.graph_objects.Figure
    """
    x = v.check_finite_float(losses, "losses", ndim=1)
    n_bins = v.check_int(n_bins, "n_bins", minimum=1)
    if flipped is not None:
        flip = v.as_array(flipped, "flipped")
        if flip.dtype != bool:
            raise TypeError(f"`flipped` must hold booleans; got {v.describe(flip)}.")
        v.check_same_length(losses=x, flipped=flip)
    if mixture is not None and not isinstance(mixture, lq.BetaMixture):
        raise TypeError("`mixture` must be a labviz.compute.label_quality.BetaMixture; got "
                        f"{type(mixture).__name__}.")
    lo, hi = float(x.min()), float(x.max())
    width = (hi - lo) / n_bins if hi > lo else 1.0
    bins = dict(start=lo, end=hi + width * 1e-9, size=width)
    fig = go.Figure()
    if flipped is None:
        fig.add_trace(go.Histogram(x=x, xbins=bins, name=f"all (n={x.size:,})", marker_color=CLEAN_COLOR))
    else:
        for mask, name, color in ((~flip, "clean label", CLEAN_COLOR), (flip, "flipped label", NOISY_COLOR)):
            fig.add_trace(go.Histogram(x=x[mask], xbins=bins, name=f"{name} (n={int(mask.sum()):,})",
                                       marker_color=color, opacity=0.6))
    if mixture is not None:
        g_lo, g_hi = max(lo, mixture.loss_min), min(hi, mixture.loss_max)
        grid = np.linspace(g_lo, g_hi, 200) if g_hi > g_lo else np.array([lo, hi])
        n_fitted = int(np.sum((x >= mixture.loss_min) & (x <= mixture.loss_max)))
        dens = mixture.pdf(grid) * n_fitted * width
        for k, (name, color) in enumerate((("clean component", CLEAN_COLOR),
                                           ("noisy component", NOISY_COLOR))):
            fig.add_trace(go.Scatter(x=grid, y=dens[:, k], mode="lines", name=name,
                                     line=dict(color=color, width=2, dash="dash")))
        fig.add_trace(go.Scatter(x=grid, y=dens.sum(axis=1), mode="lines", name="mixture",
                                 line=dict(color="#000000", width=1.5)))
        # Beta densities can spike at the edges; keep the histogram, not the spike, in view.
        edges = np.linspace(lo, hi, n_bins + 1) if hi > lo else np.array([lo, lo + 1.0])
        subsets = [x] if flipped is None else [x[~flip], x[flip]]
        tallest = max(np.histogram(s, bins=edges)[0].max(initial=0) for s in subsets)
        fig.update_yaxes(range=[0, 1.15 * max(tallest, 1)])
    fig.update_layout(barmode="overlay", width=680, height=400, xaxis_title="loss (given label)",
                      yaxis_title="samples")
    return apply_style(fig)


@dataclass(frozen=True, eq=False)
class LossHistogramDisplay:
    """Per-sample losses against the given labels, which labels are flipped, and a beta mixture."""

    losses: NDArray[np.float64]
    flipped: NDArray[np.bool_] | None
    mixture: lq.BetaMixture | None

    @classmethod
    def from_predictions(
        cls,
        predictions: Predictions,
        *,
        fit_mixture: bool = True,
        percentiles: tuple[float, float] = (0.0, 100.0),
    ) -> LossHistogramDisplay:
        """Losses of ``predictions.probs`` against ``y_given``; ``flipped`` from ``y_given != y_true``.

        ``percentiles`` goes to :func:`labviz.compute.label_quality.fit_beta_mixture` (e.g. (5, 95) as
        Arazo et al., for heavy-tailed losses).
        """
        predictions = as_predictions(predictions)
        losses = lq.per_sample_loss_batched(predictions.y_given, predictions.prob_chunks)
        mixture = lq.fit_beta_mixture(losses, percentiles=percentiles) if fit_mixture else None
        return cls(losses=losses, flipped=predictions.flipped, mixture=mixture)

    def plot(self, *, n_bins: int = 50) -> go.Figure:
        """Draw the loss histogram (and the mixture's components); see :func:`loss_histogram_figure`."""
        return loss_histogram_figure(self.losses, self.flipped, self.mixture, n_bins=n_bins)


# ----- accuracy by decile --------------------------------------------------------------------------
def _check_decile_table(table: pd.DataFrame) -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"`table` must be a pandas DataFrame; got {type(table).__name__}.")
    if not set(_DECILE_COLUMNS) <= set(table.columns):
        raise ValueError(f"`table` must have columns {list(_DECILE_COLUMNS)} (see "
                         f"labviz.compute.label_quality.accuracy_by_decile); got {list(table.columns)}.")


def non_uniformity_by_decile_figure(
    table: pd.DataFrame | Mapping[str, pd.DataFrame], *, score_name: str = "non-uniformity"
) -> go.Figure:
    """Accuracy in each decile of a per-sample score (grouped bars for several models).

    Parameters
    ----------
    table : DataFrame or mapping of str to DataFrame
        From :func:`labviz.compute.label_quality.accuracy_by_decile`; a mapping draws one series per model.
    score_name : str
        For the axis title.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    tables = dict(table) if isinstance(table, Mapping) else {"": table}
    if not tables:
        raise ValueError("`table` must not be empty; got 0 tables.")
    fig = go.Figure()
    for i, (name, t) in enumerate(tables.items()):
        _check_decile_table(t)
        fig.add_trace(go.Bar(
            x=t["bin"], y=t["accuracy"], name=str(name) or "accuracy", marker_color=series_color(i),
            customdata=np.column_stack([t["score_min"], t["score_max"], t["n"]]),
            hovertemplate="bin %{x}: accuracy %{y:.3f}<br>score %{customdata[0]:.3g}–"
                          "%{customdata[1]:.3g} (n=%{customdata[2]})<extra>%{fullData.name}</extra>",
        ))
    fig.update_layout(barmode="group", width=640, height=400, showlegend=len(tables) > 1,
                      xaxis_title=f"{score_name} decile (low → high)", yaxis_title="accuracy")
    fig.update_xaxes(dtick=1)
    fig.update_yaxes(range=[0, 1.02])
    return apply_style(fig)


@dataclass(frozen=True)
class NonUniformityDisplay:
    """Accuracy by non-uniformity decile, per model."""

    tables: dict[str, pd.DataFrame]

    @classmethod
    def from_predictions(
        cls, predictions: Predictions | Sequence[Predictions] | Mapping[str, Predictions], *,
        n_bins: int = 10,
    ) -> NonUniformityDisplay:
        """Accuracy by non-uniformity decile of each model, named by a mapping's keys, else by
        ``Predictions.name`` (``#i`` when empty)."""
        preds, keys = as_predictions_list(predictions)
        names = keys or [p.name or f"#{i}" for i, p in enumerate(preds)]
        return cls(tables={
            name: lq.accuracy_by_decile(lq.non_uniformity(p.probs), p.correct, n_bins=n_bins)
            for name, p in zip(names, preds)
        })

    def plot(self) -> go.Figure:
        """Draw accuracy by non-uniformity decile; see :func:`non_uniformity_by_decile_figure`."""
        return non_uniformity_by_decile_figure(self.tables)


# ----- label-error gallery ------------------------------------------------------------------------
def label_error_gallery_figure(
    images: ArrayLike,
    errors: pd.DataFrame,
    *,
    class_names: Sequence[str] | None = None,
    max_images: int = 32,
    n_cols: int = 8,
    title: str = "Likely label errors (candidates, not confirmed)",
) -> go.Figure:
    """The images of the top-ranked likely label errors, captioned "given → predicted".

    Parameters
    ----------
    images : array-like of shape (n_samples, height, width)
        All samples' images, indexed by ``errors["index"]``.
    errors : pandas.DataFrame
        From :func:`labviz.compute.label_quality.find_label_errors` (columns ``index``, ``given``,
        ``predicted``), in rank order.
    class_names : sequence of str, optional
    max_images, n_cols : int
    title : str

    Returns
    -------
    plotly.graph_objects.Figure
        Built by :func:`labviz.figures.thumbnails.image_grid_figure`; a figure with a note when
        nothing is flagged.
    """
    if not isinstance(errors, pd.DataFrame):
        raise TypeError(f"`errors` must be a pandas DataFrame; got {type(errors).__name__}.")
    if not {"index", "given", "predicted"} <= set(errors.columns):
        raise ValueError("`errors` must have columns ['index', 'given', 'predicted'] (see "
                         f"labviz.compute.label_quality.find_label_errors); got {list(errors.columns)}.")
    max_images = v.check_int(max_images, "max_images", minimum=1)
    imgs = v.as_array(images, "images")
    if imgs.ndim != 3:
        raise ValueError(f"`images` must have shape (n_samples, height, width); got {imgs.shape}.")
    top = errors.head(max_images)
    if len(top) and int(top["index"].max()) >= len(imgs):
        raise ValueError(f"`errors` index values must be below the number of images ({len(imgs)}); "
                         f"got {int(top['index'].max())}.")
    if len(top) == 0:
        fig = go.Figure()
        fig.add_annotation(text="No label errors flagged.", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        fig.update_layout(title=title, width=400, height=200)
        return apply_style(fig)

    def name(k: int) -> str:
        return str(class_names[k]) if class_names is not None else str(k)

    titles = [f"{name(g)} → {name(p)}" for g, p in zip(top["given"], top["predicted"], strict=True)]
    return image_grid_figure(imgs[top["index"].to_numpy()], titles=titles, n_cols=n_cols, title=title)


@dataclass(frozen=True, eq=False)
class LabelErrorDisplay:
    """Ranked likely label errors of one Predictions and the images of the top ones."""

    errors: pd.DataFrame
    images: NDArray | None
    class_names: tuple[str, ...]

    @classmethod
    def from_predictions(
        cls, predictions: Predictions, *, filter_by: str = "prune_by_noise_rate"
    ) -> LabelErrorDisplay:
        """Run :func:`labviz.compute.label_quality.find_label_errors` on ``y_given`` and ``probs``.

        The Predictions' probabilities must be out-of-sample for its samples (e.g. a model trained
        on another fold); otherwise errors the model memorised go unflagged.
        """
        predictions = as_predictions(predictions)
        errors = lq.find_label_errors(predictions.y_given, predictions.probs, ids=predictions.ids,
                                      filter_by=filter_by)
        return cls(errors=errors, images=predictions.images, class_names=predictions.class_names)

    def plot(self, *, max_images: int = 32, n_cols: int = 8) -> go.Figure:
        """Draw the candidates' images in a grid of ``n_cols`` columns, at most ``max_images``."""
        if self.images is None:
            raise ValueError("`images` must be present to draw a gallery; got None (build the "
                             "Predictions with images).")
        return label_error_gallery_figure(self.images, self.errors, class_names=self.class_names,
                                          max_images=max_images, n_cols=n_cols)
