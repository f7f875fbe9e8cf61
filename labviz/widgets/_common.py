"""Small helpers shared by the widgets: status lines, plotly figure widgets and their updates."""

from __future__ import annotations

import hashlib
import html
import importlib
import importlib.util
import json
import sys
import types
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go
import traitlets
from plotly.basedatatypes import BaseTraceType


def message_html(text: str, *, kind: str = "info") -> str:
    """A status line for an ``ipywidgets.HTML``: escaped text, coloured by ``kind``
    ("info", "busy" or "warn")."""
    color = {"info": "#333333", "busy": "#1f5fa8", "warn": "#9a5b00"}[kind]
    return f'<div style="color:{color};padding:2px 4px">{html.escape(text)}</div>'


def samples(n: int) -> str:
    """``"1 sample"``, ``"15,269 samples"``: every count the widgets print has thousands
    separators, as plotly's hover templates (``%{customdata:,}``) write them."""
    return f"{n:,} sample{'s' if n != 1 else ''}"


#: The stand-in module of :func:`shared_esm`.
_SHARED_MODULE = Path(__file__).with_name("shared_module.js")


def shared_esm(source: str, name: str, *, watch: Sequence[str] = (), wait_ms: int = 500,
               trait: str | None = None) -> str:
    """An anywidget module that loads ``source`` (a widget's ES module) once per page, and
    initialises each model at once.

    anywidget (0.9 to 0.11) drops every message from the kernel to a model whose module has not
    initialised it 2 s after the page created it (its ``Runtime`` rejects ``ready`` after
    ``AbortSignal.timeout(2000)``, and ``_handle_comm_msg`` awaits ``ready``), and it imports
    each model's module anew. plotly's module is 5 MB and takes 0.85 s to load in headless
    Chromium here. In Voilà, which creates all of a page's models at once, the explorer's four
    figures would take 3.2 s that way, and the figures or the scatter beside them would never
    hear from the kernel: a clicked cell would not highlight, a lasso would not reach the
    reliability diagram.

    The returned module (``shared_module.js``) imports ``source`` the first time a page needs
    it and initialises every model without waiting more than ``wait_ms`` for it. A model
    initialised before ``source`` has loaded records the changes of its ``watch`` traits and
    replays them, in order, to ``source``'s ``initialize`` when it comes (plotly's model follows
    its ``_py2js_*`` traits there); ``render`` waits for it.

    With ``trait``, the module does not carry ``source``: the widget class's ``trait`` holds the
    model id of a :class:`ModuleText` whose ``text`` is ``source`` (see :func:`module_text`), and
    the module reads it from there. A kernel sends the text to a page once, however many widgets
    load it: twelve copies of plotly's module text take 0.9 s to import in headless Chromium
    here, most of anywidget's 2 s, and make a classroom visitor's page state 75 MB.
    """
    key = f"{name}-{hashlib.sha256(source.encode()).hexdigest()[:16]}"
    module = _SHARED_MODULE.read_text(encoding="utf-8")
    for placeholder, value in (("__KEY__", json.dumps(key)), ("__TRAIT__", json.dumps(trait)),
                               ("__WATCH__", json.dumps(list(watch))),
                               ("__WAIT_MS__", str(int(wait_ms))),
                               # last: it may hold the others
                               ("__SOURCE__", "null" if trait else json.dumps(source))):
        module = module.replace(placeholder, value, 1)
    return module


#: The traits plotly's page model follows in its ``initialize`` (to keep its copy of the figure).
PLOTLY_MODEL_TRAITS = ("_py2js_addTraces", "_py2js_deleteTraces", "_py2js_moveTraces",
                       "_py2js_restyle", "_py2js_relayout", "_py2js_update", "_py2js_animate",
                       "_py2js_removeLayoutProps", "_py2js_removeTraceProps", "_widget_data",
                       "_widget_layout")


class _Deferred(types.ModuleType):
    """The stand-in for a module in ``sys.modules`` that :func:`defer_import` puts there: the
    import system reads its ``__spec__`` (which it serves at once); any other attribute imports
    the module, which then replaces it in ``sys.modules``, and is read from that module."""

    def __init__(self, spec: ModuleSpec) -> None:
        super().__init__(spec.name)
        self.__spec__, self.__loader__ = spec, spec.loader
        # inspect.getmodule, as a traceback is formatted, reads every module's __file__
        self.__file__ = spec.origin

    def __getattr__(self, attr: str) -> object:
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        module = importlib.import_module(name)
        self.__dict__.update(module.__dict__)  # later reads skip this method
        return getattr(module, attr)


def defer_import(name: str) -> None:
    """Make ``import name`` return at once, and run the module's code at the first access to
    one of its attributes; nothing if it is imported already or not installed.

    For optional imports of the libraries the widgets use that cost seconds and serve nothing
    the explorer draws: plotly's renderers import nbformat (whose jsonschema compiles lark
    grammars: 2.5 s) for ``fig.show()`` in a notebook, and jupyter-scatter imports seaborn (1.4 s,
    with scipy.stats) for its density annotations. Whoever uses them gets them whole.
    (``importlib.util.LazyLoader`` would not do: Python 3.11's import reads ``__spec__`` of a
    module found in ``sys.modules``, which runs a lazy module's code.)
    """
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is not None:
        sys.modules[name] = _Deferred(spec)


defer_import("nbformat")  # before plotly's FigureWidget imports its renderers
_PLOTLY_MODULE = str(go.FigureWidget._esm)


class ModuleText(widgets.Widget):
    """A page module's text, held by one model per kernel for all the widgets that load it
    through :func:`shared_esm` (it has no view)."""

    text = traitlets.Unicode().tag(sync=True)


_MODULE_TEXTS: dict[str, ModuleText] = {}


def module_text(source: str) -> str:
    """The model id of this kernel's :class:`ModuleText` holding ``source``, made on first use
    (and again if it was closed)."""
    holder = _MODULE_TEXTS.get(source)
    if holder is None or holder.comm is None:
        holder = _MODULE_TEXTS[source] = ModuleText(text=source)
    return holder.model_id


class FigureWidget(go.FigureWidget):
    """plotly's ``FigureWidget``, with its page module loaded once per page and never past
    anywidget's time limit (see :func:`shared_esm`); the module's text reaches a page once, in
    a :class:`ModuleText` that the ``_labviz_module`` trait names."""

    _labviz_module = traitlets.Unicode().tag(sync=True)
    _esm = shared_esm(_PLOTLY_MODULE, "plotly", watch=PLOTLY_MODEL_TRAITS, trait="_labviz_module")

    @traitlets.default("_labviz_module")
    def _module_text(self) -> str:
        return module_text(_PLOTLY_MODULE)

    @traitlets.observe("_js2py_traceDeltas")
    def _handler_js2py_traceDeltas(self, change: dict[str, Any]) -> None:
        """plotly's handler of the defaults the page computed for each trace, given the deltas
        without the data arrays the page sends back: a heatmap's ``z`` comes back as one typed
        array per row, which plotly's merge cannot take (it raises, and the kernel spent seconds
        formatting the traceback while the page drew its first frame)."""
        new = change["new"]
        if new:
            deltas = [{key: value for key, value in delta.items() if not _typed_arrays(value)}
                      for delta in new["trace_deltas"]]
            change = {**change, "new": {**new, "trace_deltas": deltas}}
        super()._handler_js2py_traceDeltas(change)


def _typed_arrays(value: object) -> bool:
    """Whether ``value`` is a typed array as the page sends one (a dict of ``dtype``, ``shape``
    and ``value``), or a non-empty list of them."""
    def typed(x: object) -> bool:
        return isinstance(x, dict) and {"dtype", "value"} <= x.keys()

    return typed(value) or (isinstance(value, list) and bool(value) and all(map(typed, value)))


def replace_figure(fw: go.FigureWidget, fig: go.Figure) -> None:
    """Show ``fig`` in ``fw``: all its traces and its layout, sent to the page as one update.

    The page merges the new layout into the old one: a layout entry that only the old figure set
    (e.g. annotations) stays on screen. Clearing such entries first (setting them to None in the
    same batch) does not remove them in the browser, so callers swap figures that set the same
    layout entries, and messages in views (such as the trainer's "pick three classes") are text
    traces, not annotations.
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


def trace_props(trace: BaseTraceType) -> dict[str, object]:
    """A trace's properties, to ``update`` another trace of the same type in place."""
    props = trace.to_plotly_json()
    props.pop("type", None)
    props.pop("uid", None)
    return props


class FigureSlot:
    """A plotly figure's place in a widget layout: ``widget`` (a Box) holds ``figure``.

    :meth:`show` updates ``figure`` trace by trace when the new figure has the same traces, and
    otherwise puts a new ``FigureWidget`` built from it in the box; :meth:`replace` swaps in a
    whole figure, traces and layout (:func:`replace_figure`). A FigureWidget built empty and
    filled before a page shows it stays empty in Voilà (which renders a notebook's widgets only
    once its cells have run), so figures are never filled that way here.

    With ``placeholder`` (HTML), the box holds that text and ``figure`` is None until the first
    figure is shown: a page needs no plotly until then (the live trainer's empty views).
    """

    def __init__(self, placeholder: str | None = None) -> None:
        self.figure: go.FigureWidget | None = None if placeholder is not None else FigureWidget()
        self.widget = widgets.Box([widgets.HTML(placeholder) if self.figure is None else self.figure])

    def show(self, fig: go.Figure, *, animate_ms: int | None = None) -> bool:
        """Show ``fig``; True when ``figure`` is a new widget (attach its handlers again)."""
        fw = self.figure
        if fw is not None and same_structure(fw, fig):
            batch = fw.batch_animate(duration=animate_ms) if animate_ms else fw.batch_update()
            with batch:
                for old, new in zip(fw.data, fig.data):
                    old.update(trace_props(new), overwrite=True)
                fw.layout.title.text = fig.layout.title.text
            return False
        self._new(fig)
        return True

    def replace(self, fig: go.Figure) -> None:
        """Show ``fig`` whole, its traces and its layout, in ``figure`` (a new widget built from
        ``fig`` the first time)."""
        if self.figure is None:
            self._new(fig)
        else:
            replace_figure(self.figure, fig)

    def _new(self, fig: go.Figure) -> None:
        self.figure = FigureWidget(fig)
        self.widget.children = (self.figure,)
