"""The browser tools of ``browser_tools.py``, proved on a plain jupyter-scatter widget.

* Headless Chromium has WebGL with :data:`browser_tools.WEBGL_ARGS` and none with
  :data:`browser_tools.NO_WEBGL_ARGS`.
* In JupyterLab (started as in ``test_browser.py``), a notebook builds a ``jscatter.Scatter`` of
  100,000 seeded random points and shows it; a second cell sets its selection from Python. In the
  page, :func:`browser_tools.widget_states` must report exactly that selection and
  :func:`browser_tools.wait_for_paint` must see the canvas change; a selection set through
  :func:`browser_tools.execute_in_kernel` and a cleared one (seen by screenshots) too. The test
  prints the timings (run cell → first painted frame, run cell → selection painted) and the tab's
  memory. The conversion of widget values to plain JSON is checked on its own, in a blank page.
* In Voilà (started as in ``test_app_browser.py``), the same scatter with a control: the page
  changes the control (:func:`browser_tools.set_widget_state`), the notebook's observer selects
  points, and the page must show that selection in the model and on the canvas.

Skipped only when Chromium is absent; a watchdog bounds each test, and the servers, kernels and
browsers are stopped in ``finally`` blocks. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import numpy as np
import pytest
from browser_tools import (
    JS_PLAIN,
    browser_page,
    execute_in_kernel,
    paint_report,
    run_cell,
    set_widget_state,
    tab_memory,
    wait_for_paint,
    wait_for_screenshot_change,
    watch_paint,
    webgl_support,
    widget_states,
)
from test_browser import (
    BROWSER_MARKS,
    _free_port,
    _hard_timeout,
    _jupyterlab,
    isolated_jupyter_env,
    open_notebook,
    start_server,
)

from labviz.servers import jupyter as server

N_POINTS = 100_000
#: The points are ``default_rng(0).normal(size=(2, N_POINTS))``; the selection is drawn from
#: ``default_rng(1)``, so the test knows it without asking the kernel.
N_SELECTED = 321
SCATTER = "jscatter.widget.JupyterScatter"  # its _model_name is anywidget's "AnyModel"
TEST_TIMEOUT_S = 150
STEP_TIMEOUT_MS = 60_000

pytestmark = BROWSER_MARKS

CELL_IMPORTS = "import numpy as np\nimport jscatter"
CELL_SCATTER = f"""x, y = np.random.default_rng(0).normal(size=(2, {N_POINTS}))
scatter = jscatter.Scatter(x=x, y=y, height=400)
scatter.show()"""
CELL_SELECT = f"""SELECTION = np.sort(np.random.default_rng(1).choice({N_POINTS}, {N_SELECTED}, replace=False))
scatter.selection(SELECTION);  # ";": no second view of the scatter as the cell's result"""


def _expected_selection() -> list[int]:
    return np.sort(np.random.default_rng(1).choice(N_POINTS, N_SELECTED, replace=False)).tolist()


def _write_notebook(path: Path, cells: list[str]) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


JS_CELL_DONE = """index => {
    const panel = window.jupyterapp.shell.currentWidget;
    const cell = panel.content.widgets[index];
    const errors = cell.model.outputs.toJSON().filter(o => o.output_type === 'error')
        .map(o => o.ename + ': ' + o.evalue);
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    return {ran: cell.model.executionCount !== null, errors,
            status: kernel ? kernel.status : 'none'};
}"""


def _wait_for_cell(page, index: int, timeout_s: float = 60) -> None:
    """Wait until cell ``index`` has run and the kernel is idle; fail at once if the cell failed."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = page.evaluate(JS_CELL_DONE, index)
        if state["errors"]:
            pytest.fail(f"cell {index} failed: {state['errors']}")
        if state["ran"] and state["status"] == "idle":
            return
        if time.monotonic() > deadline:
            pytest.fail(f"cell {index} did not finish within {timeout_s:.0f} s: {state}")
        page.wait_for_timeout(100)


def _print_memory(label: str, memory: dict) -> None:
    print(f"  {label}: JS heap {memory['js_heap_used_mb']:.0f} MB used"
          f" / {memory['js_heap_total_mb']:.0f} MB; renderer RSS {memory['renderer_rss_max_mb']:.0f} MB"
          f" (all {memory['renderers']} renderers {memory['renderer_rss_mb']:.0f} MB); GPU process"
          f" {memory['gpu_rss_mb']:.0f} MB; browser {memory['browser_rss_mb']:.0f} MB")


# ----- the tests --------------------------------------------------------------------------------
def test_webgl_args_give_webgl_and_no_webgl_args_deny_it(tmp_path):
    seen = {}
    with _hard_timeout(60):
        for webgl in (True, False):
            with browser_page(tmp_path / f"webgl-{webgl}", webgl=webgl) as page:
                page.goto("about:blank")
                seen[webgl] = webgl_support(page)
    assert seen[True]["webgl"] and seen[True]["webgl2"], seen[True]
    assert "SwiftShader" in seen[True]["renderer"]  # software rendering: no GPU needed
    assert seen[False] == {"webgl": False, "webgl2": False, "renderer": None}


JS_VALUES = f"""() => {{
    const plain = {JS_PLAIN};
    const u32 = new Uint32Array([7, 3, 4294967295]);
    const f32 = new Float32Array([0.5, -1, 2, 3, 4, 5]);
    const padded = new Uint8Array(16);  // an int32 array at byte offset 4 of a larger buffer
    new Int32Array(padded.buffer, 4, 2).set([-2, 9]);
    return {{
        selection: plain({{view: new DataView(u32.buffer), dtype: 'uint32', shape: [3]}}),
        points: plain({{view: new DataView(f32.buffer), dtype: 'float32', shape: [3, 2]}}),
        offset: plain({{view: new DataView(padded.buffer, 4, 8), dtype: 'int32', shape: [2]}}),
        int64: plain({{buffer: new BigInt64Array([5n, -6n]), dtype: 'int64', shape: [2]}}),
        typed: plain(new Int16Array([1, -1])),
        child: plain([{{model_id: 'abc', get: () => null}}]),
        nested: plain({{a: [1, null, 'x'], b: undefined}}),
        empty: plain({{view: new DataView(new ArrayBuffer(0)), dtype: 'uint32', shape: [0]}}),
    }};
}}"""


def test_widget_values_become_plain_json(tmp_path):
    with _hard_timeout(60), browser_page(tmp_path, webgl=False) as page:
        page.goto("about:blank")
        values = page.evaluate(JS_VALUES)
    assert values == {
        "selection": [7, 3, 4294967295], "points": [[0.5, -1], [2, 3], [4, 5]],
        "offset": [-2, 9], "int64": [5, -6], "typed": [1, -1], "child": ["IPY_MODEL_abc"],
        "nested": {"a": [1, None, "x"], "b": None}, "empty": []}


def test_jscatter_selection_set_in_python_is_in_the_page_and_painted(tmp_path):
    expected = _expected_selection()
    source = _write_notebook(tmp_path / "scatter.ipynb", [CELL_IMPORTS, CELL_SCATTER, CELL_SELECT])
    with _hard_timeout(TEST_TIMEOUT_S), _jupyterlab(tmp_path, source) as (base, token, notebook), \
            browser_page(tmp_path, webgl=True, width=1280, height=900,
                         timeout_ms=STEP_TIMEOUT_MS) as page:
        assert open_notebook(page, base, token, notebook) == "python3"
        assert webgl_support(page)["webgl"]
        run_cell(page, 0)  # the imports, so that the next timing is the scatter's own
        _wait_for_cell(page, 0)
        before = tab_memory(page)

        # run cell → first frame with points on the (not yet existing) canvas of cell 1
        canvas_css = ".jp-Notebook .jp-Cell:nth-child(2) .jp-OutputArea-output canvas"
        watch_paint(page, canvas_css, name="first", mode="content", timeout_ms=STEP_TIMEOUT_MS)
        started = run_cell(page, 1)
        first = wait_for_paint(page, name="first")
        _wait_for_cell(page, 1)
        states = widget_states(page, SCATTER, ["selection", "dom_element_id"])
        assert len(states) == 1 and states[0]["comm_live"], states
        assert states[0]["selection"] == []
        # the widget's first canvas is its plot (the second one its labels layer)
        canvas = page.locator(f'[id="{states[0]["dom_element_id"]}"] canvas').first
        assert canvas.element_handle().evaluate("(c, sel) => c === document.querySelector(sel)",
                                                canvas_css)
        shown = tab_memory(page)
        unselected = canvas.screenshot()
        n_canvases = page.locator(".jp-OutputArea-output canvas").count()
        # an idle canvas is not reported as painted; this also times the watch's own reads
        watch_paint(page, canvas, name="idle", timeout_ms=1000)
        page.wait_for_timeout(1200)
        idle = paint_report(page, name="idle")
        assert idle["painted_at"] is None and idle["timed_out"] and idle["checks"] > 5, idle

        # a second cell selects points in Python: the model holds them, the canvas changes
        watch_paint(page, canvas, name="select")
        selected = run_cell(page, 2)
        select = wait_for_paint(page, name="select")
        _wait_for_cell(page, 2)
        assert widget_states(page, SCATTER, ["selection"])[0]["selection"] == expected
        assert select["painted_pixels"] > 0 and select["painted_at"] > selected
        # the same view repainted: no second view of the scatter (that would time its rendering)
        assert page.locator(".jp-OutputArea-output canvas").count() == n_canvases
        assert widget_states(page, SCATTER, ["dom_element_id"])[0]["dom_element_id"] \
            == states[0]["dom_element_id"]

        # the same through execute_in_kernel (no cell); then cleared, seen by screenshots
        watch_paint(page, canvas, name="again")
        reply = execute_in_kernel(page, "scatter.selection(SELECTION[::2]);")
        again = wait_for_paint(page, name="again")
        assert reply["status"] == "ok", reply
        assert widget_states(page, SCATTER, ["selection"])[0]["selection"] == expected[::2]
        page.wait_for_timeout(300)  # any transition done: the screenshot baseline holds still
        baseline = canvas.screenshot()
        cleared = execute_in_kernel(page, "scatter.selection(None);")
        shot = wait_for_screenshot_change(page, canvas, baseline=baseline)
        assert widget_states(page, SCATTER, ["selection"])[0]["selection"] == []
        page.wait_for_timeout(300)
        # what changed was the selection: cleared, the canvas is as before it, pixel for pixel
        assert canvas.screenshot() == unselected
        end = tab_memory(page)

    print(f"\njscatter, {N_POINTS:,} points, JupyterLab, headless Chromium (SwiftShader WebGL):")
    print(f"  run cell → first painted frame: {first['painted_at'] - started:.0f} ms"
          f" (last blank frame at {first['last_quiet_at'] - started:.0f} ms)")
    print(f"  run cell → selection of {N_SELECTED} painted: {select['painted_at'] - selected:.0f} ms;"
          f" execute → painted {again['painted_at'] - reply['sent']:.0f} ms"
          f" (execute reply at {reply['replied'] - reply['sent']:.0f} ms)")
    print(f"  paint watch on the idle {idle['size'][0]}×{idle['size'][1]} canvas: one read"
          f" {idle['poll_ms']['median']:.1f} ms (median; max {idle['poll_ms']['max']:.1f} ms), one"
          f" every {idle['check_gap_ms']['median']:.1f} ms (median; max"
          f" {idle['check_gap_ms']['max']:.0f} ms); the selection's paint was seen"
          f" {select['painted_at'] - select['last_quiet_at']:.0f} ms after the last unchanged frame")
    print(f"  screenshots: {shot['shot_ms']['mean']:.0f} ms per capture; clear → changed capture"
          f" {shot['changed_at'] - cleared['sent']:.0f} ms")
    _print_memory("before the scatter", before)
    _print_memory("scatter shown", shown)
    _print_memory("at the end", end)
    assert first["painted_pixels"] > 0


def test_jscatter_in_voila_answers_a_control_with_a_selection(tmp_path):
    source = _write_notebook(tmp_path / "scatter.ipynb", [
        CELL_IMPORTS, CELL_SCATTER,
        "import ipywidgets\nstep = ipywidgets.IntText(0, description='step')\n"
        "step.observe(lambda change: scatter.selection(np.arange(0, len(x), change.new)), 'value')\n"
        "step"])
    token, port = secrets.token_hex(24), _free_port()
    base = f"http://{server.LOOPBACK}:{port}"
    with _hard_timeout(TEST_TIMEOUT_S):
        proc = start_server(server.app_command(source, token, port=port), cwd=tmp_path,
                            env=isolated_jupyter_env(tmp_path), log=tmp_path / "voila.log",
                            name="Voilà", ready=server.answers(f"{base}/login"))
        try:
            with browser_page(tmp_path, webgl=True, timeout_ms=STEP_TIMEOUT_MS) as page:
                page.goto(f"{base}/?token={token}", wait_until="commit")
                watch_paint(page, ".jp-OutputArea-output canvas", name="first", mode="content")
                first = wait_for_paint(page, name="first")
                page.locator(".widget-text input").wait_for()
                scatter, = widget_states(page, SCATTER, ["selection", "dom_element_id"])
                control, = widget_states(page, "IntTextModel", ["value", "description"])
                assert scatter["selection"] == [] and control["value"] == 0
                canvas = page.locator(f'[id="{scatter["dom_element_id"]}"] canvas').first

                watch_paint(page, canvas, name="select")
                sent = set_widget_state(page, control["model_id"], {"value": 1000})
                select = wait_for_paint(page, name="select")  # drawn, so the model has it
                selection = widget_states(page, SCATTER, ["selection"])[0]["selection"]
                with pytest.raises(Exception, match="Voilà's server forwards only comm"):
                    execute_in_kernel(page, "1")
                memory = tab_memory(page)
        finally:
            server.stop_server(proc)
    assert selection == list(range(0, N_POINTS, 1000))
    print(f"\njscatter, {N_POINTS:,} points, Voilà: navigation → first painted frame"
          f" {first['painted_at']:.0f} ms; control changed → selection painted"
          f" {select['painted_at'] - sent:.0f} ms")
    _print_memory("Voilà tab", memory)
