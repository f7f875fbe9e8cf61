"""Small helpers shared by the widgets: status lines and plotly ``FigureWidget`` updates."""

from __future__ import annotations

import html

import ipywidgets as widgets
import plotly.graph_objects as go


def message_html(text: str, *, kind: str = "info") -> str:
    """A status line for an ``ipywidgets.HTML``: escaped text, coloured by ``kind``
    ("info", "busy" or "warn")."""
    color = {"info": "#333333", "busy": "#1f5fa8", "warn": "#9a5b00"}[kind]
    return f'<div style="color:{color};padding:2px 4px">{html.escape(text)}</div>'


def samples(n: int) -> str:
    """``"1 sample"``, ``"2 samples"``."""
    return f"{n} sample{'s' if n != 1 else ''}"


def replace_figure(fw: go.FigureWidget, fig: go.Figure) -> None:
    """Show ``fig`` in ``fw``: all its traces and its layout, sent to the page as one update.

    The page merges the new layout into the old one: a layout entry that only the old figure set
    (e.g. annotations) stays on screen. Clearing such entries first (setting them to None in the
    same batch) did not remove them in the browser, so callers swap figures that set the same
    layout entries, and messages in empty views are text traces, not annotations.
    """
    with fw.batch_update():
        fw.data = ()
        fw.add_traces(list(fig.data))
        fw.layout = fig.layout


def same_structure(fw: go.FigureWidget, fig: go.Figure) -> bool:
    """Whether ``fig`` has as many traces as ``fw``, of the same types in order (their names,
    such as a legend entry holding an ECE, may differ: updating them in place is cheaper than a
    new widget)."""
    return len(fw.data) == len(fig.data) and all(
        type(a) is type(b) for a, b in zip(fw.data, fig.data))


def trace_props(trace: object) -> dict:
    """A trace's properties, to ``update`` another trace of the same type in place."""
    props = trace.to_plotly_json()
    props.pop("type", None)
    props.pop("uid", None)
    return props


class FigureSlot:
    """A plotly figure's place in a widget layout: ``widget`` (a Box) holds ``figure``.

    :meth:`show` updates ``figure`` trace by trace when the new figure has the same traces, and
    otherwise puts a new ``FigureWidget`` built from it in the box. A FigureWidget built empty and
    filled before a page shows it stays empty in Voilà (which renders a notebook's widgets only
    once its cells have run), so figures are never filled that way here.
    """

    def __init__(self) -> None:
        self.figure = go.FigureWidget()
        self.widget = widgets.Box([self.figure])

    def show(self, fig: go.Figure, *, animate_ms: int | None = None) -> bool:
        """Show ``fig``; True when ``figure`` is a new widget (attach its handlers again)."""
        fw = self.figure
        if same_structure(fw, fig):
            batch = fw.batch_animate(duration=animate_ms) if animate_ms else fw.batch_update()
            with batch:
                for old, new in zip(fw.data, fig.data):
                    old.update(trace_props(new), overwrite=True)
                fw.layout.title.text = fig.layout.title.text
            return False
        self.figure = go.FigureWidget(fig)
        self.widget.children = (self.figure,)
        return True
