"""Render the notebooks from executed copies, offline, without executing them again.

``make test`` executes every notebook once and writes the executed copies to a folder
(tests/test_notebooks.py); ``make docs`` names that folder in ``LABVIZ_EXECUTED_NOTEBOOKS``. At the
start of a build this extension writes each copy into ``docs/notebooks/`` (generated, not in git),
prepared for a page that makes no request off the machine:

* plotly figures, which the kernel emits as ``application/vnd.plotly.v1+json`` only, become
  ``text/html`` drawn by the installed plotly's ``plotly.min.js``, shipped in ``_static`` and
  loaded only by the pages that hold a figure;
* ipywidgets views, which need a live kernel (and a CDN's widget manager), become a short note
  saying where they run; the notebook's saved widget state is dropped.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import nbformat
import plotly.io as pio
from sphinx.application import Sphinx
from sphinx.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PLOTLY_JSON = "application/vnd.plotly.v1+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PLOTLY_JS = "plotly.min.js"
#: Marks a page that holds a plotly figure (see :func:`add_plotly_js`).
FIGURE_MARK = 'class="labviz-plotly"'
WIDGET_NOTE = ('<p class="labviz-widget-note"><em>An interactive widget: it runs in a live kernel. '
               'Open this notebook in JupyterLab (<code>make lab</code>) to use it.</em></p>')


def _figure_html(spec: dict[str, Any], div_id: str) -> str:
    # A fixed id (plotly's default is random) keeps an unchanged notebook's page unchanged, so
    # that Sphinx does not rewrite it.
    html = pio.to_html(spec, include_plotlyjs=False, include_mathjax=False, full_html=False,
                       config={"responsive": True}, div_id=div_id, validate=False)
    return f'<div {FIGURE_MARK}>{html}</div>'


def prepare(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """Turn the plotly and widget outputs of notebook ``nb`` (file stem ``name``) into offline
    HTML, in place; return ``nb``."""
    nb.metadata.pop("widgets", None)
    figures = 0
    for cell in nb.cells:
        cell.get("metadata", {}).pop("execution", None)  # kernel timestamps
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = out.get("data", {})
            if PLOTLY_JSON in data:
                figures += 1
                out["data"] = {"text/html": _figure_html(data[PLOTLY_JSON], f"{name}-figure-{figures}")}
            elif WIDGET_VIEW in data:
                out["data"] = {"text/html": WIDGET_NOTE}
    return nb


def copy_notebooks(app: Sphinx) -> None:
    """Write the prepared executed copies into ``<srcdir>/notebooks``, rewriting only changed ones."""
    given = os.environ.get("LABVIZ_EXECUTED_NOTEBOOKS")
    if not given:
        raise ConfigError("LABVIZ_EXECUTED_NOTEBOOKS is not set: it names the folder of executed "
                          "notebooks to render; build the docs with `make docs`.")
    folder = Path(given)
    missing = [p.name for p in SOURCES if not (folder / p.name).exists()]
    if missing:
        raise ConfigError(f"no executed copy of {', '.join(missing)} in {folder}: `make docs` "
                          "executes the missing notebooks before building.")
    out = Path(app.srcdir) / "notebooks"
    out.mkdir(exist_ok=True)
    for path in SOURCES:
        executed, target = folder / path.name, out / path.name
        if target.exists() and target.stat().st_mtime >= executed.stat().st_mtime:
            continue  # prepared from this copy already
        nb = prepare(nbformat.read(executed, as_version=4), path.stem)
        text = json.dumps(nb, ensure_ascii=False, indent=1) + "\n"
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
        else:
            target.touch()  # unchanged: Sphinx keeps its page


def add_plotly_js(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any],
                  doctree: Any) -> None:
    """Load ``plotly.min.js`` on the pages that draw a plotly figure, and only there."""
    if FIGURE_MARK in context.get("body", ""):
        app.add_js_file(PLOTLY_JS, priority=100)


def ship_plotly_js(app: Sphinx, exception: Exception | None) -> None:
    """Copy the installed plotly's ``plotly.min.js`` into the site's ``_static``."""
    if exception is None and app.builder.format == "html":
        source = Path(pio.__file__).resolve().parents[1] / "package_data" / PLOTLY_JS
        shutil.copyfile(source, Path(app.outdir) / "_static" / PLOTLY_JS)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", copy_notebooks)
    app.connect("html-page-context", add_plotly_js)
    app.connect("build-finished", ship_plotly_js)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
