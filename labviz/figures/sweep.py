"""A sweep of one knob (e.g. the label-smoothing α) against what each run measured, one panel per
measure, each panel titled and its axes named for what they hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from labviz.figures.style import MAX_FIGURE_WIDTH, apply_style, series_color

__all__ = ["SWEEP_LABELS", "sweep_figure"]

#: Panel title and y-axis title of the measures of a label-smoothing sweep
#: (:func:`labviz.studies.ls_sweep_table`), with the direction that is better.
SWEEP_LABELS: dict[str, tuple[str, str]] = {
    "accuracy": ("Test accuracy (↑)", "accuracy"),
    "ece": ("Test ECE (↓)", "ECE (L1, 15 bins)"),
    "intra": ("Intra-class variation, train (↓)", "intra-class variation"),
    "nc1": ("NC1, train (↓ more collapsed)", "NC1"),
}
#: Width and height in pixels of one panel; at most three panels share a row (three: 970 px, within
#: the 1,020 px of JupyterLab's output area in a 1,200 px window).
PANEL_WIDTH, PANEL_HEIGHT, MAX_COLS = 290, 300, 3


def _check_table(table: object, x: str, metrics: Sequence[str]) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"`table` must be a pandas DataFrame; got {type(table).__name__}.")
    if isinstance(metrics, str) or len(metrics) == 0:
        raise ValueError(f"`metrics` must be a non-empty sequence of column names; got {metrics!r}.")
    missing = [c for c in (x, *metrics) if c not in table.columns]
    if missing:
        raise ValueError(f"`table` must have the columns {[x, *metrics]}; missing {missing} "
                         f"(it has {list(table.columns)}).")
    wrong = [c for c in (x, *metrics) if not pd.api.types.is_numeric_dtype(table[c])]
    if wrong:
        raise TypeError(f"`table` columns {wrong} must be numeric; got "
                        f"{[str(table[c].dtype) for c in wrong]}.")
    return table.sort_values(x, kind="stable")


def sweep_figure(
    table: pd.DataFrame,
    *,
    x: str = "alpha",
    metrics: Sequence[str] = ("accuracy", "ece", "intra"),
    labels: Mapping[str, tuple[str, str]] | None = None,
    x_title: str = "label smoothing α",
    title: str | None = None,
) -> go.Figure:
    """Each measure of a sweep against the swept knob, one panel each (three to a row).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per run: the knob ``x`` and the ``metrics`` columns (numeric); a ``name`` column,
        if present, names each point in its hover text. E.g. :func:`labviz.studies.ls_sweep_table`.
    x : str, default "alpha"
        Column of the swept knob.
    metrics : sequence of str, default ("accuracy", "ece", "intra")
        Columns to draw, one panel each, in this order.
    labels : mapping of str to (str, str), optional
        ``{column: (panel title, y-axis title)}``; defaults to :data:`SWEEP_LABELS`, and to the
        column name for a column in neither.
    x_title : str, default "label smoothing α"
        Title of every panel's x-axis.
    title : str, optional

    Returns
    -------
    plotly.graph_objects.Figure
        One ``go.Scatter`` (markers and lines) per panel, named by the panel's y-axis title.
    """
    rows = _check_table(table, x, metrics)
    names = {**SWEEP_LABELS, **(labels or {})}
    heads = [names.get(m, (m, m)) for m in metrics]
    n = len(metrics)
    n_rows = -(-n // MAX_COLS)
    n_cols = -(-n // n_rows)
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=[h[0] for h in heads],
                        horizontal_spacing=0.1, vertical_spacing=0.22 if n_rows > 1 else 0.1)
    text = rows["name"].astype(str) if "name" in rows.columns else pd.Series([""] * len(rows))
    for i, (metric, (_, y_title)) in enumerate(zip(metrics, heads)):
        cell = dict(row=i // n_cols + 1, col=i % n_cols + 1)
        fig.add_trace(go.Scatter(
            x=rows[x].to_numpy(np.float64), y=rows[metric].to_numpy(np.float64),
            mode="markers+lines", name=y_title, showlegend=False, text=text,
            marker=dict(color=series_color(0), size=8), line=dict(color=series_color(0), width=2),
            hovertemplate=f"%{{text}}<br>{x_title} %{{x:.3g}}<br>{y_title} %{{y:.4g}}<extra></extra>",
        ), **cell)
        fig.update_xaxes(title_text=x_title, **cell)
        fig.update_yaxes(title_text=y_title, **cell)
    fig.update_layout(title=title, width=min(MAX_FIGURE_WIDTH, PANEL_WIDTH * n_cols + 100),
                      height=PANEL_HEIGHT * n_rows + (110 if title else 80),
                      margin=dict(t=90 if title else 60))
    return apply_style(fig)
