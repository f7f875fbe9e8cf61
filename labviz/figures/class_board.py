"""The class's board as a figure: every finished run of every student, α against what it measured.

Three panels share the α axis: test ECE, test accuracy and NC1 (train-time collapse). Each run is a
point coloured by its loss, so a class that spreads its runs over α builds an α sweep together;
hovering a point names the student and the run's other knobs.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from labviz.figures.style import apply_style, series_color

#: Panels of :func:`board_figure`: (column of the board, panel title).
BOARD_PANELS = (("ece", "test ECE (↓)"), ("accuracy", "test accuracy (↑)"), ("nc1", "NC1 (↓ more collapsed)"))
#: Losses in legend order, each with a fixed colour; others follow in order of appearance.
LOSS_ORDER = ("ce", "ls", "maxsup", "kd")
LOSS_NAMES = {"ce": "CE", "ls": "LS", "maxsup": "MaxSup", "kd": "KD"}


def board_figure(runs: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """α against test ECE, accuracy and NC1 for every run on the board, coloured by loss.

    Parameters
    ----------
    runs : pandas.DataFrame
        :meth:`labviz.classroom.class_board.ClassBoard.runs`: columns ``loss``, ``alpha``, ``ece``,
        ``accuracy``, ``nc1``, ``name``, ``dataset``, ``epochs``, ``noise`` and ``seed`` at least.
    title : str, optional
        Default: how many runs by how many students.

    Returns
    -------
    plotly.graph_objects.Figure
        An empty board has the axes and a note in the title.
    """
    missing = {"loss", "alpha", "name", "dataset", "epochs", "noise", "seed",
               *(c for c, _ in BOARD_PANELS)} - set(runs.columns)
    if missing:
        raise ValueError(f"`runs` must have the class board's columns; missing {sorted(missing)}.")
    losses = [loss for loss in LOSS_ORDER if (runs["loss"] == loss).any()]
    losses += [loss for loss in pd.unique(runs["loss"]) if loss not in losses]
    fig = make_subplots(rows=1, cols=len(BOARD_PANELS), shared_xaxes=True,
                        subplot_titles=[t for _, t in BOARD_PANELS], horizontal_spacing=0.07)
    hover = "%{text}<br>α %{x:.2f}, %{y:.4f}<extra></extra>"
    for i, loss in enumerate(losses):
        rows = runs[runs["loss"] == loss]
        color = series_color(LOSS_ORDER.index(loss) if loss in LOSS_ORDER else len(LOSS_ORDER) + i)
        text = [f"{r.name}: {LOSS_NAMES.get(loss, loss)} on {r.dataset}, {r.epochs} epochs, "
                f"noise {r.noise:.0%}, seed {r.seed}" for r in rows.itertuples()]
        for col, (column, _) in enumerate(BOARD_PANELS, start=1):
            fig.add_trace(go.Scatter(
                x=rows["alpha"], y=rows[column].astype(float), mode="markers",
                name=LOSS_NAMES.get(loss, str(loss)), legendgroup=str(loss), showlegend=col == 1,
                marker=dict(color=color, size=9, opacity=0.8, line=dict(width=0.5, color="white")),
                text=text, hovertemplate=hover), row=1, col=col)
    n_students = runs["name"].nunique()
    if title is None:
        title = ("The class's runs: none yet (each finished run appears here)" if runs.empty else
                 f"The class's runs: {len(runs):,} by {n_students:,} student"
                 f"{'s' if n_students != 1 else ''}")
    for col in range(1, len(BOARD_PANELS) + 1):
        fig.update_xaxes(title_text="α", row=1, col=col)
    # the top margin keeps the title clear of the panel titles beneath it
    fig.update_layout(title=title, width=1200, height=440, margin=dict(t=80), uirevision="board",
                      legend=dict(title="loss"))
    return apply_style(fig)

