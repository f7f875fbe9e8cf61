"""The labviz look: one colour per class everywhere, and a publication template applied explicitly.

Nothing here is registered with ``plotly.io.templates``: importing labviz changes no global setting.
"""

from __future__ import annotations

import plotly.graph_objects as go

#: Paul Tol's "muted" scheme, safe for the common forms of colour blindness. Class k always gets
#: ``CLASS_COLORS[k % 10]``, in every labviz figure.
CLASS_COLORS: tuple[str, ...] = (
    "#332288", "#88CCEE", "#44AA99", "#117733", "#999933",
    "#DDCC77", "#CC6677", "#882255", "#AA4499", "#777777",
)
#: Colours for series that are not classes (models, losses), from Okabe and Ito's palette.
SERIES_COLORS: tuple[str, ...] = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
)
#: Sequential scale for heatmaps and continuous colouring (viridis is perceptually uniform).
SEQUENTIAL = "Viridis"
#: Diverging scale for a signed score centred at zero (e.g. a local calibration gap): negative
#: cool (blue), positive warm (red), white at zero when the range is symmetric.
DIVERGING = "RdBu_r"
#: The widest a labviz figure is laid out, in pixels, legend included: a JupyterLab output area
#: is about 950-1,220 px wide, so wider figures would hide their right side.
MAX_FIGURE_WIDTH = 1200


#: Height in pixels of the band plotly's toolbar (the modebar) takes at the top right of a
#: figure while the pointer is over it; a title kept below it is never covered.
MODEBAR_PX = 32
#: Height in pixels of a one-line title at the template's 16 px, with its padding.
TITLE_PX = 28


def clear_of_modebar(fig: go.Figure) -> go.Figure:
    """Set ``fig``'s title on the plot's top edge, under a top margin that holds it and, above
    it, plotly's toolbar (:data:`MODEBAR_PX`), so the toolbar shown on hover does not cover a
    long title; returns ``fig``, changed in place."""
    fig.update_layout(margin=dict(t=MODEBAR_PX + TITLE_PX),
                      title=dict(yref="paper", y=1, yanchor="bottom", pad=dict(b=6)))
    return fig


def class_color(k: int) -> str:
    """The fixed colour of class ``k``.

    >>> class_color(0) == class_color(10)
    True
    """
    return CLASS_COLORS[int(k) % len(CLASS_COLORS)]


def series_color(i: int) -> str:
    """The colour of the ``i``-th series (model, loss) in a comparison."""
    return SERIES_COLORS[int(i) % len(SERIES_COLORS)]


def _template() -> go.layout.Template:
    axis = dict(
        showgrid=True, gridcolor="#E5E5E5", gridwidth=1, zeroline=False,
        showline=True, linecolor="#444444", linewidth=1, ticks="outside", tickcolor="#444444",
        title=dict(font=dict(size=14)), tickfont=dict(size=12),
    )
    return go.layout.Template(
        layout=dict(
            font=dict(family="Arial, Helvetica, sans-serif", size=13, color="#222222"),
            paper_bgcolor="white",
            plot_bgcolor="white",
            colorway=list(SERIES_COLORS),
            xaxis=axis,
            yaxis=axis,
            legend=dict(bgcolor="rgba(255,255,255,0)", borderwidth=0, font=dict(size=12),
                        itemsizing="constant"),
            margin=dict(l=60, r=20, t=50, b=55),
            title=dict(font=dict(size=16), x=0.02, xref="container", xanchor="left"),
            hoverlabel=dict(font=dict(size=12)),
        )
    )


#: The labviz publication template. Apply it with :func:`apply_style`; it is never the global default.
TEMPLATE: go.layout.Template = _template()


def apply_style(fig: go.Figure) -> go.Figure:
    """Apply the labviz template to ``fig`` in place and return it."""
    fig.update_layout(template=TEMPLATE)
    return fig
