"""The documentation site, opened from disk in a real Chromium: its notebook pages draw their plotly
figures, and no page makes a request off the machine.

It checks the site ``make docs`` built (docs/_build/html); ``make test`` builds it before the
browser tests run. Every request the pages make is recorded; only ``file:`` (and in-page ``data:``
and ``blob:``) URLs may load, anything else is aborted and fails the test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_browser import chromium_page

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "docs" / "_build" / "html"
#: The notebook page opened: the tour draws one figure of every kind of view.
NOTEBOOK_PAGE = SITE / "notebooks" / "00_tour.html"
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")

#: Per plotly figure on the page: whether plotly drew it, its size, the marks its svg holds
#: (points, bars, heatmap and image layers) and, for WebGL traces (drawn on a canvas), its
#: canvases' area.
JS_FIGURES = """() => [...document.querySelectorAll('.labviz-plotly')].map(box => {
    const plot = box.querySelector('.js-plotly-plot');
    const svg = plot && plot.querySelector('svg.main-svg');
    const size = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
    const types = plot && Array.isArray(plot._fullData) ? plot._fullData.map(d => d.type) : [];
    return {
        types, width: size.width, height: size.height,
        marks: plot ? plot.querySelectorAll('.point, g.trace.bars path, .heatmaplayer image, .imagelayer image').length : 0,
        canvas: plot ? [...plot.querySelectorAll('canvas')].reduce((a, c) => a + c.width * c.height, 0) : 0,
    };
})"""
JS_ALL_DRAWN = """() => [...document.querySelectorAll('.labviz-plotly')].every(box => {
    const plot = box.querySelector('.js-plotly-plot');
    return plot && Array.isArray(plot._fullData) && plot._fullData.length > 0;
})"""


def _site_page(path: Path) -> str:
    if not (SITE / "index.html").exists():
        pytest.fail(f"the docs are not built ({SITE / 'index.html'} is missing): run `make docs` first")
    assert path.exists(), f"{path} is missing from the built site"
    return path.as_uri()


def _record_requests(page: Any) -> tuple[list[str], list[str]]:
    """Record every request of ``page``'s browser and abort those that would leave the machine;
    return the lists, filled as pages load, of those requests and of the page's errors."""
    leaked: list[str] = []
    errors: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith(LOCAL_SCHEMES):
            r.continue_()
        else:
            leaked.append(r.request.url)
            r.abort()

    page.context.route("**/*", route)
    page.on("request", lambda req: None if req.url.startswith(LOCAL_SCHEMES) else leaked.append(req.url))
    page.on("websocket", lambda ws: leaked.append(ws.url))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return leaked, errors


def test_docs_index_and_notebook_page_render_offline_with_interactive_figures(tmp_path: Path) -> None:
    index, notebook = _site_page(SITE / "index.html"), _site_page(NOTEBOOK_PAGE)
    with chromium_page(tmp_path, width=1280, height=900) as page:
        leaked, errors = _record_requests(page)
        page.goto(index, wait_until="load")
        page.wait_for_timeout(500)  # late requests (fonts, deferred scripts) are recorded too
        assert sorted(set(leaked)) == [], "the index requested off the machine"
        assert errors == [], errors
        assert "labviz" in page.title()
        assert page.locator("a[href='getting-started.html']").count() > 0

        page.goto(notebook, wait_until="load")
        page.wait_for_function(JS_ALL_DRAWN)
        figures = page.evaluate(JS_FIGURES)
        page.wait_for_timeout(500)
    assert sorted(set(leaked)) == [], "the notebook page requested off the machine"
    assert errors == [], errors
    assert len(figures) >= 5, figures  # the tour's confusion matrix, thumbnails, projections, ...
    for k, fig in enumerate(figures):
        assert fig["types"] and fig["width"] > 100 and fig["height"] > 100, (k, fig)
        webgl_only = all(kind.endswith("gl") for kind in fig["types"])
        assert fig["canvas"] > 0 if webgl_only else fig["marks"] > 0, (k, fig)
    assert sum(fig["marks"] for fig in figures) > 100, figures
