"""Notebook 01, executed, as a teacher's laptop shows it: JupyterLab in a 1,200 px-wide Chromium.

The notebook runs headless first, and is saved with its outputs: as the notebook tests ran it and
left it in the shared cache (conftest.py's ``zoo_cache``), or, run on its own, here. JupyterLab then opens it with its
side panels closed, and every plotly figure among the outputs must draw, be no wider than its
output area and keep its legend inside that area: nothing a student needs is cut off or left to
a sideways scroll. Screenshots of the page and of each figure as shown are saved under the test's
``tmp_path`` (the page's copied to ``LABVIZ_SCREENSHOT_OUT`` when that is set), to be looked at.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from test_browser import BROWSER_MARKS, ROOT, _hard_timeout, _jupyterlab, chromium_page, open_notebook

NOTEBOOK = ROOT / "notebooks" / "01_when_does_label_smoothing_help.ipynb"
WIDTH, HEIGHT = 1200, 900
PLOTLY_MIME = "application/vnd.plotly.v1+json"
TEST_TIMEOUT_S = 420

pytestmark = BROWSER_MARKS

#: The plotly figures among the outputs (JupyterLab's plotly renderer makes the output itself the
#: plot's container).
PLOTS = ".jp-OutputArea-output.js-plotly-plot, .jp-OutputArea-output .js-plotly-plot"

#: Each drawn plotly figure: its width, and its output area's and legend's right edges, in px.
JS_FIGURES = """() => [...document.querySelectorAll(PLOTS)]
    .map(plot => {
        const area = plot.closest('.jp-OutputArea-output').getBoundingClientRect();  // or itself
        const svg = plot.querySelector('.main-svg').getBoundingClientRect();
        const legend = plot.querySelector('.legend');
        const title = plot.querySelector('.gtitle');
        return {title: title ? title.textContent : '', width: svg.width, left: svg.left,
                area_left: area.left, area_right: area.right, area_width: area.width,
                legend_right: legend ? legend.getBoundingClientRect().right : null};
    })""".replace("PLOTS", repr(PLOTS))


def _executed_copy(tmp: Path, cache: Path) -> tuple[Path, int]:
    """Notebook 01 run headless and saved with its outputs (as the notebook tests saved it in the
    shared cache, else run here); the number of plotly figures it shows."""
    done = cache / "executed" / NOTEBOOK.name
    if done.is_file():
        nb = nbformat.read(done, as_version=4)
    else:
        nb = nbformat.read(NOTEBOOK, as_version=4)
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    figures = sum(PLOTLY_MIME in out.get("data", {}) for cell in nb.cells if cell.cell_type == "code"
                  for out in cell.get("outputs", []))
    path = tmp / "executed" / NOTEBOOK.name
    path.parent.mkdir()
    nbformat.write(nb, path)
    return path, figures


def _trust(notebook: Path, data_dir: Path) -> None:
    """Sign ``notebook`` in the server's own notary (its data folder), as running it there would:
    JupyterLab draws the plotly outputs of trusted notebooks only."""
    from nbformat.sign import NotebookNotary

    nb = nbformat.read(notebook, as_version=4)
    NotebookNotary(data_dir=str(data_dir)).sign(nb)
    nbformat.write(nb, notebook)


def test_notebook_01_executed_fits_a_1200_px_window(tmp_path, shared_zoo_cache):
    with _hard_timeout(TEST_TIMEOUT_S):
        executed, n_figures = _executed_copy(tmp_path, shared_zoo_cache)
        assert n_figures >= 4  # the template planes, the sweep, the reliability diagrams
        shot = tmp_path / "notebook-01-1200px.png"
        with _jupyterlab(tmp_path, executed) as (base, token, notebook), \
                chromium_page(tmp_path, width=WIDTH, height=HEIGHT) as page:
            _trust(notebook, tmp_path / "jupyter-data")
            open_notebook(page, base, token, notebook)
            page.evaluate("() => { window.jupyterapp.shell.collapseLeft();"
                          " window.jupyterapp.shell.collapseRight(); }")
            page.wait_for_function(
                f"n => [...document.querySelectorAll('{PLOTS}')]"
                ".filter(plot => plot.querySelector('.main-svg')).length >= n",
                arg=n_figures, timeout=120_000)
            page.wait_for_timeout(1000)  # plotly's resize after the panels closed
            figures = page.evaluate(JS_FIGURES)
            page.screenshot(path=str(shot))
            for k, plot in enumerate(page.locator(PLOTS).all()):  # each figure as it is shown
                plot.scroll_into_view_if_needed()
                plot.screenshot(path=str(tmp_path / f"notebook-01-figure-{k}.png"))
    if os.environ.get("LABVIZ_SCREENSHOT_OUT"):
        shutil.copyfile(shot, Path(os.environ["LABVIZ_SCREENSHOT_OUT"]))
    print("\n" + "\n".join(f"  {f['width']:.0f} px in a {f['area_width']:.0f} px output: {f['title'][:60]}"
                           for f in figures))
    assert len(figures) == n_figures
    too_wide = [f for f in figures if f["left"] + f["width"] > f["area_right"] + 1]
    assert not too_wide, too_wide
    legend_out = [f for f in figures
                  if f["legend_right"] is not None and f["legend_right"] > f["area_right"] + 1]
    assert not legend_out, legend_out
