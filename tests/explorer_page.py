"""The explorer on synthetic predictions in a real page, driven and timed: shared by the browser
test (``test_explorer_browser.py``, 100k points) and the browser benchmark
(``benchmarks/bench_explorer_browser.py``, 100k and 1M points).

:func:`run_explorer` serves a notebook that builds ``n`` seeded synthetic samples (64 features, 10
classes) and calls ``labviz.explore`` on them, in JupyterLab or in Voilà, opens it in headless
Chromium (with or without WebGL) and measures, in the page's own clock:

* ``first_paint_ms``: from running the explorer's cell (JupyterLab; in Voilà, from opening the
  page, which includes starting the kernel and building the data) to the first frame of the WebGL
  canvas with points on it;
* ``click_ms``: from the press on the largest diagonal cell of the confusion heatmap to the first
  frame of the canvas showing the highlight;
* ``lasso_ms``: from releasing a lasso drawn over the canvas to the frame whose reliability
  diagram's title names the selection; ``lasso_move_ms``, the median time between two mouse moves
  of the lasso as the page takes them (each move is sent when the page has taken the one before,
  as Playwright does), and ``lasso_draw_ms``, from the press to the last move taken;
* ``first_parts`` (JupyterLab): when, after running the cell, the cell was done (the kernel's
  reply: ``cell_done_ms``), the scatter began to render ("Drawing n points…" shown:
  ``render_ms``) and its points were drawn (the line gone: ``drawn_ms``);
* memory: the tab's (:func:`browser_tools.tab_memory`) and the kernel's resident set.

It also returns what the page holds afterwards (the scatter's selection, the reliability title)
and the page's uncaught errors (``page_errors``), so that the test can check that the highlight
is exactly the clicked cell's samples.
"""

from __future__ import annotations

import re
import secrets
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
from browser_tools import (
    browser_page,
    paint_report,
    run_cell,
    tab_memory,
    wait_for_paint,
    watch_paint,
    widget_states,
)
from test_browser import (
    JS_CELLS_STATE,
    _cell_centre,
    _free_port,
    _jupyterlab,
    isolated_jupyter_env,
    open_notebook,
    start_server,
)

from labviz.servers import jupyter as server

SCATTER = "jscatter.widget.JupyterScatter"
#: Mouse moves of a lasso drawn as a person draws one (each took 0.7-1.5 s in software WebGL
#: here while every move redrew the points; 0.1-0.2 s now that a lasso redraws none).
LASSO_STEPS = 36
N_CLASSES, N_FEATURES = 10, 64

#: The notebook's first cell: the data (the test rebuilds the same arrays with :func:`synthetic`).
CELL_DATA = """import numpy as np
import labviz

def synthetic(n, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, {c}, n)
    centres = rng.normal(0, 3, ({c}, {d})).astype(np.float32)
    features = centres[y] + rng.normal(0, 1, (n, {d})).astype(np.float32)
    logits = (rng.normal(0, 1.5, (n, {c})) + 3 * np.eye({c})[y]).astype(np.float32)
    return y, logits, features

y, logits, features = synthetic({n})
p = labviz.Predictions.from_arrays(y_true=y, logits=logits, features=features, name="synthetic")
del logits, features"""
CELL_EXPLORE = "ex = labviz.explore(p)\nex"
#: What :func:`run_explorer` calls last: ``after(page, kernel_memory) -> dict``.
After = Callable[..., dict]


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The notebook's data, rebuilt here: (y_true, logits, features)."""
    namespace: dict = {}
    exec(CELL_DATA.split("\ny, logits")[0].format(c=N_CLASSES, d=N_FEATURES, n=n), namespace)
    return namespace["synthetic"](n, seed)


def write_notebook(path: Path, n: int) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(CELL_DATA.format(c=N_CLASSES, d=N_FEATURES, n=n)),
        nbformat.v4.new_code_cell(CELL_EXPLORE)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


# ----- in the page ----------------------------------------------------------------------------------
CANVAS = ".labviz-explorer canvas"
#: The scatter holds still this many frames (about half a second) before the first click, as it
#: would before a person clicks: jupyter-scatter finishes its first draw asynchronously.
SETTLE_FRAMES = 30

# The confusion heatmap's labels and counts, and whether its axes are reversed.
JS_CONFUSION = """() => {
    const root = document.querySelector('.labviz-explorer');
    if (!root) return null;
    const gd = Array.from(root.querySelectorAll('.js-plotly-plot'))
        .find(gd => (gd.data || []).some(t => t.type === 'heatmap'));
    if (!gd) return null;
    const t = gd.data.find(t => t.type === 'heatmap');
    return {labels: Array.from(t.y),
            counts: Array.from(t.customdata, row => Array.from(row, cell => cell[0])),
            x_reversed: gd.layout.xaxis.range[0] > gd.layout.xaxis.range[1],
            y_reversed: gd.layout.yaxis.range[0] > gd.layout.yaxis.range[1]};
}"""

JS_TEXTS = """() => {
    const root = document.querySelector('.labviz-explorer');
    if (!root) return {titles: [], texts: []};
    return {titles: Array.from(root.querySelectorAll('.gtitle'), e => e.textContent),
            texts: Array.from(root.querySelectorAll('.widget-html-content'), e => e.innerText)};
}"""

# Page times of the last pointer press and release anywhere (the user's actions), and of the
# mouse moves with the button down since that press (a drag's: the event's own time stamp).
JS_RECORD_POINTER = """() => {
    if (window.__lvPointer) return;
    window.__lvPointer = {down: null, up: null, moves: []};
    document.addEventListener('pointerdown', () => {
        window.__lvPointer.down = performance.now();
        window.__lvPointer.moves = [];
    }, true);
    document.addEventListener('pointerup', () => { window.__lvPointer.up = performance.now(); },
                              true);
    window.addEventListener('mousemove', e => {
        if (e.buttons & 1) window.__lvPointer.moves.push(e.timeStamp);
    }, true);
}"""

# The parts of a first paint in JupyterLab, in page times: the explorer's cell done (its
# execution count set, from the kernel's reply), and the scatter's "Drawing n points…" line
# appearing (its render began) and going (drawn).
JS_WATCH_FIRST_PARTS = """index => {
    const w = window.__lvFirstParts = {cell_done: null, render: null, drawn: null};
    const cell = window.jupyterapp.shell.currentWidget.content.widgets[index];
    cell.model.stateChanged.connect((_, change) => {
        if (change.name === 'executionCount' && change.newValue !== null && w.cell_done === null) {
            w.cell_done = performance.now();
        }
    });
    const observer = new MutationObserver(() => {
        const note = document.querySelector('.labviz-explorer .labviz-drawing');
        if (note && w.render === null) w.render = performance.now();
        if (!note && w.render !== null && w.drawn === null) {
            w.drawn = performance.now();
            observer.disconnect();
        }
    });
    observer.observe(document.body, {childList: true, subtree: true});
}"""

# Watch, on every frame, for the reliability diagram's title to change to one containing `text`;
# record the page time it appears.
JS_WATCH_TITLE = """text => {
    const reliability = () => {
        const root = document.querySelector('.labviz-explorer');
        const titles = root ? Array.from(root.querySelectorAll('.gtitle'), e => e.textContent) : [];
        return titles.find(t => t.startsWith('Reliability')) || '';
    };
    const before = reliability();
    window.__lvTitle = {text, before, seenAt: null};
    const check = () => {
        const now = reliability();
        if (now !== before && now.includes(text)) { window.__lvTitle.seenAt = performance.now(); return; }
        requestAnimationFrame(check);
    };
    requestAnimationFrame(check);
}"""


def _wait_idle(page, timeout_s: float, *, pending: int = 0) -> None:
    """Wait until at most ``pending`` code cells are unrun and the kernel is idle."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = page.evaluate(JS_CELLS_STATE)
        if state["errors"]:
            raise AssertionError(f"a notebook cell failed: {state['errors']}")
        if state["pending"] <= pending and state["status"] == "idle":
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the notebook did not finish within {timeout_s:.0f} s: {state}")
        page.wait_for_timeout(100)


def _kernel_rss_mb(tmp: Path, server_pid: int | None = None) -> float:
    """Resident memory of the kernels of this run, in MB (:func:`kernel_memory`)."""
    return kernel_memory(tmp, server_pid)["rss_mb"]


def _wait_hoverable(page, timeout_s: float) -> None:
    """Wait until hovering the scatter reports a point: jupyter-scatter finishes its first draw
    (points, then their search index) asynchronously after the first frame."""
    canvas = page.locator(CANVAS).first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    deadline = time.monotonic() + timeout_s
    grid = [(fx, fy) for fy in np.linspace(0.15, 0.85, 8) for fx in np.linspace(0.15, 0.85, 8)]
    while time.monotonic() < deadline:
        for fx, fy in grid:
            page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
            page.wait_for_timeout(30)
            if widget_states(page, SCATTER, ["hovering"])[0]["hovering"] is not None:
                page.mouse.move(1, 1)
                return
        page.wait_for_timeout(500)
    raise AssertionError(f"hovering the scatter reported no point within {timeout_s:.0f} s")


def _explore_in_page(page, tmp: Path, *, errors: list[str], lasso: bool, started: float | None,
                     timeout_s: float, server_pid: int | None = None,
                     lasso_steps: int = LASSO_STEPS, after: After | None = None) -> dict:
    """With the explorer's cell running (or the Voilà page loading): time the first paint, a
    cell click and a lasso of ``lasso_steps`` mouse moves. ``errors`` collects the page's
    uncaught errors meanwhile."""
    out: dict = {"page_errors": errors}
    if started is not None:
        first = wait_for_paint(page, name="first", timeout_ms=int(timeout_s * 1000))
        out["first_paint_ms"] = first["painted_at"] - started
        out["settled_ms"] = first["settled_at"] - started
    page.wait_for_function(f"() => ({JS_CONFUSION})() !== null", timeout=timeout_s * 1000)
    page.wait_for_function(f"() => ({JS_TEXTS})().titles.some(t => t.startsWith('Reliability'))",
                           timeout=timeout_s * 1000)
    page.wait_for_timeout(500)  # let the page finish its first layout
    out["memory_shown"] = tab_memory(page)
    out["kernel_rss_mb"] = _kernel_rss_mb(tmp, server_pid)
    page.evaluate(JS_RECORD_POINTER)

    _wait_hoverable(page, timeout_s)
    confusion = page.evaluate(JS_CONFUSION)
    n = len(confusion["labels"])
    row = max(range(n), key=lambda k: confusion["counts"][k][k])
    heatmap = page.locator(".labviz-explorer .js-plotly-plot:has(.hm)").first
    heatmap.scroll_into_view_if_needed()
    x, y = _cell_centre(heatmap, row, confusion)
    page.mouse.move(x, y)  # plotly.js reports a click on the point it hovers
    page.wait_for_timeout(300)
    heatmap_y = heatmap.bounding_box()["y"]
    canvas = page.locator(CANVAS).first
    watch_paint(page, canvas, name="click", min_pixels=20, timeout_ms=int(timeout_s * 1000))
    page.mouse.click(x, y)
    painted = wait_for_paint(page, name="click", timeout_ms=int(timeout_s * 1000))
    out["click_ms"] = painted["painted_at"] - page.evaluate("() => window.__lvPointer.down")
    page.wait_for_function(f"() => ({JS_TEXTS})().texts.some(t => t.includes('→'))")
    out["cell"] = (row, row)
    out["cell_label"] = confusion["labels"][row]
    out["cell_count"] = confusion["counts"][row][row]
    out["selection_after_click"] = widget_states(page, SCATTER, ["selection"])[0]["selection"]
    out["texts_after_click"] = page.evaluate(JS_TEXTS)
    # what the status line's first message did to the page below it (a second click's target)
    out["heatmap_moved_px"] = heatmap.bounding_box()["y"] - heatmap_y

    if lasso:
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        cx, cy = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5
        r = 0.2 * min(box["width"], box["height"])
        page.evaluate(JS_WATCH_TITLE, "selection of")
        page.mouse.move(cx + r, cy)
        page.mouse.down()
        # most of a circle: a release where the press was would be a click on one point
        for k in range(1, lasso_steps + 1):
            a = 2 * np.pi * k / (lasso_steps + 4)
            page.mouse.move(cx + r * np.cos(a), cy + r * np.sin(a))
        moves = page.evaluate("() => window.__lvPointer.moves")
        out["lasso_move_ms"] = float(np.median(np.diff(moves))) if len(moves) > 1 else None
        out["lasso_draw_ms"] = moves[-1] - page.evaluate("() => window.__lvPointer.down")
        page.mouse.up()
        page.wait_for_function("() => window.__lvTitle.seenAt !== null",
                               timeout=timeout_s * 1000)
        seen = page.evaluate("() => window.__lvTitle.seenAt")
        out["lasso_ms"] = seen - page.evaluate("() => window.__lvPointer.up")
        texts = page.evaluate(JS_TEXTS)
        out["reliability_title_after_lasso"] = next(
            t for t in texts["titles"] if t.startswith("Reliability"))
        out["selection_after_lasso"] = len(
            widget_states(page, SCATTER, ["selection"])[0]["selection"])
    if after is not None:
        out.update(after(page, lambda: kernel_memory(tmp, server_pid)))
    out["memory_after"] = tab_memory(page)
    out["kernel_rss_after_mb"] = _kernel_rss_mb(tmp, server_pid)
    return out


def run_explorer(tmp: Path, n: int, *, where: str = "lab", webgl: bool = True, lasso: bool = True,
                 lasso_steps: int = LASSO_STEPS, screenshot: Path | None = None,
                 timeout_s: float = 240, after: After | None = None) -> dict:
    """Serve the explorer on ``n`` synthetic samples in JupyterLab (``where="lab"``) or Voilà
    (``"voila"``), drive it in headless Chromium and return the timings and the page's state
    (see the module docstring). Without WebGL, only the page's texts are returned. ``after``,
    if given, is called last with the page and a function returning the kernel's memory
    (:func:`kernel_memory`), and what it returns is added (e.g. :func:`click_region`)."""
    source = write_notebook(tmp / f"explore-{n}.ipynb", n)
    errors: list[str] = []
    if where == "lab":
        with _jupyterlab(tmp, source) as (base, token, notebook), \
                browser_page(tmp, webgl=webgl, width=1500, height=2300,
                             timeout_ms=int(timeout_s * 1000)) as page:
            page.on("pageerror", lambda error: errors.append(str(error)))
            open_notebook(page, base, token, notebook)
            page.evaluate("() => { window.jupyterapp.shell.collapseLeft();"
                          " window.jupyterapp.shell.collapseRight(); }")
            run_cell(page, 0)
            _wait_idle(page, timeout_s, pending=1)
            if not webgl:
                run_cell(page, 1)
                _wait_idle(page, timeout_s)
                page.wait_for_function(f"() => ({JS_CONFUSION})() !== null")
                # the page's probe reports the missing WebGL once it is shown; then the rasters
                page.wait_for_function(f"() => ({JS_TEXTS})().titles.some(t => t.includes("
                                       "'density'))", timeout=timeout_s * 1000)
                return {"texts": page.evaluate(JS_TEXTS),
                        "canvases": page.locator(CANVAS).count(),
                        "heatmaps": page.locator(".labviz-explorer .js-plotly-plot .hm").count()}
            watch_paint(page, CANVAS, name="first", mode="content", settle_frames=SETTLE_FRAMES,
                        timeout_ms=int(timeout_s * 1000))
            page.evaluate(JS_WATCH_FIRST_PARTS, 1)
            started = run_cell(page, 1)
            out = _explore_in_page(page, tmp, errors=errors, lasso=lasso, started=started,
                                   timeout_s=timeout_s, lasso_steps=lasso_steps, after=after)
            parts = page.evaluate("() => window.__lvFirstParts")
            out["first_parts"] = {f"{k}_ms": None if t is None else t - started
                                  for k, t in parts.items()}
            _wait_idle(page, timeout_s)
            if screenshot is not None:
                page.mouse.move(1, 1)
                page.wait_for_timeout(800)
                page.locator(".labviz-explorer").first.screenshot(path=str(screenshot))
        return out
    token, port = secrets.token_hex(24), _free_port()
    base = f"http://{server.LOOPBACK}:{port}"

    def ready() -> None:
        with urllib.request.urlopen(f"{base}/login", timeout=5):
            pass

    proc = start_server(server.app_command(source, token, port=port), cwd=tmp,
                        env=isolated_jupyter_env(tmp), log=tmp / "voila.log", name="Voilà",
                        ready=ready)
    try:
        with browser_page(tmp, webgl=webgl, width=1500, height=2300,
                          timeout_ms=int(timeout_s * 1000)) as page:
            page.on("pageerror", lambda error: errors.append(str(error)))
            # the page's clock starts at the navigation: time 0 is opening the page
            page.goto(f"{base}/?token={token}", wait_until="commit")
            watch_paint(page, CANVAS, name="first", mode="content", settle_frames=SETTLE_FRAMES,
                        timeout_ms=int(timeout_s * 1000))
            return _explore_in_page(page, tmp, errors=errors, lasso=lasso, started=0.0,
                                    timeout_s=timeout_s, server_pid=proc.pid,
                                    lasso_steps=lasso_steps, after=after)
    finally:
        server.stop_server(proc)


def selection_label(title: str) -> int:
    """The sample count a reliability title names ("Reliability: selection of 1,234 samples")."""
    match = re.search(r"selection of (\d[\d,]*) sample", title)
    if match is None:
        raise AssertionError(f"the reliability title names no selection: {title!r}")
    return int(match.group(1).replace(",", ""))


# ----- the finds: a clicked point's neighbours, a region's samples --------------------------------
#: Region buttons of the finds' list: "region 12: ECE 0.041 [0.031, 0.052], 15,321 samples, ...".
REGION_BUTTON = re.compile(r"^region (\d+): ECE ")

# Watch, on every frame, for a text of the explorer (an HTML widget's) starting with `prefix` that
# was not there when armed; record the page time of the first frame that holds it, and the text.
# (textContent, not innerText: reading innerText every frame would force a layout every frame.)
JS_WATCH_TEXT = """([name, prefix]) => {
    const texts = () => {
        const root = document.querySelector('.labviz-explorer');
        return root ? Array.from(root.querySelectorAll('.widget-html-content'),
                                 e => e.textContent.trim()) : [];
    };
    const before = new Set(texts().filter(t => t.startsWith(prefix)));
    const w = {seenAt: null, text: null};
    (window.__lvText = window.__lvText || {})[name] = w;
    const check = () => {
        const hit = texts().find(t => t.startsWith(prefix) && !before.has(t));
        if (hit !== undefined) { w.seenAt = performance.now(); w.text = hit; return; }
        requestAnimationFrame(check);
    };
    requestAnimationFrame(check);
}"""


def kernel_memory(tmp: Path, server_pid: int | None = None) -> dict:
    """The resident set (``rss_mb``) and its peak over the process's life (``peak_mb``, Linux's
    VmHWM) of this run's kernels, in MB: the children of the server ``server_pid`` (Voilà keeps
    their connection files elsewhere), or those whose connection files are under ``tmp``."""
    import psutil

    if server_pid is not None:
        procs = psutil.Process(server_pid).children(recursive=True)
    else:
        procs = [p for p in psutil.process_iter(["cmdline"])
                 if str(tmp) in " ".join(p.info["cmdline"] or [])]
    rss = peak = 0.0
    for proc in procs:
        try:
            if "ipykernel" not in " ".join(proc.cmdline()):
                continue
            rss += proc.memory_info().rss / 2**20
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except (psutil.NoSuchProcess, OSError):
            continue
        hwm = re.search(r"VmHWM:\s+(\d+) kB", status)
        peak += int(hwm.group(1)) / 1024 if hwm else 0.0
    return {"rss_mb": rss, "peak_mb": peak}


def _status_text(page) -> str:
    """The status line's text (the explorer's first HTML widget)."""
    return page.evaluate("""() => {
        const el = document.querySelector('.labviz-explorer .widget-html-content');
        return el ? el.innerText : ''; }""")


def hover_point(page, timeout_s: float, avoid: tuple[int, ...] = ()) -> tuple[float, float, int]:
    """A page position over a point of the scatter and the point's row: the first of a grid of
    positions where hovering reports a point not in ``avoid``."""
    canvas = page.locator(CANVAS).first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    grid = [(fx, fy) for fy in np.linspace(0.2, 0.8, 7) for fx in np.linspace(0.2, 0.8, 7)]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for fx, fy in grid:
            x, y = box["x"] + fx * box["width"], box["y"] + fy * box["height"]
            page.mouse.move(x, y)
            page.wait_for_timeout(50)
            row = widget_states(page, SCATTER, ["hovering"])[0]["hovering"]
            if row is not None and row >= 0 and row not in avoid:
                return x, y, int(row)
        page.wait_for_timeout(500)
    raise AssertionError(f"hovering the scatter reported no new point within {timeout_s:.0f} s")


def click_point(page, *, timeout_s: float, avoid: tuple[int, ...] = (),
                hover_ms: int = 1000) -> dict:
    """Click a point of the scatter (one not in ``avoid``), ``hover_ms`` after the pointer
    reached it (as a person's click follows a pause: the hover's own work is done then), and
    wait for the finds to list its neighbours.

    Returns
    -------
    dict
        ``row`` (the clicked point's row), ``list_ms`` (page time from the press to the first
        frame holding the new list: a click before the neighbour index exists waits for its
        build), ``list_text`` (the list's text) and ``status`` (the status line then).
    """
    x, y, row = hover_point(page, timeout_s, avoid)
    page.wait_for_timeout(hover_ms)
    page.evaluate(JS_RECORD_POINTER)
    page.evaluate(JS_WATCH_TEXT, ["neighbours", "Nearest "])
    page.mouse.click(x, y)
    page.wait_for_function("() => window.__lvText.neighbours.seenAt !== null",
                           timeout=timeout_s * 1000, polling=100)
    seen = page.evaluate("() => window.__lvText.neighbours")
    return {"row": row, "list_ms": seen["seenAt"] - page.evaluate("() => window.__lvPointer.down"),
            "list_text": seen["text"], "status": _status_text(page)}


def show_regions(page, *, timeout_s: float) -> dict:
    """Click "find regions and error slices" and wait for the regions' list.

    Returns
    -------
    dict
        ``regions_ms``: page time from the press to the list's first region button shown.
    """
    page.evaluate(JS_RECORD_POINTER)
    button = page.get_by_role("button", name="find regions and error slices")
    button.scroll_into_view_if_needed()
    button.click()
    page.get_by_role("button", name=REGION_BUTTON).first.wait_for(state="visible",
                                                                  timeout=timeout_s * 1000)
    shown = page.evaluate("() => performance.now()")
    return {"regions_ms": shown - page.evaluate("() => window.__lvPointer.down")}


def _hold_still(page, canvas, timeout_s: float, quiet_ms: int = 400) -> None:
    """Wait until ``canvas`` shows no change for ``quiet_ms``: a watch armed on a canvas still
    drawing (an animation, a hover ring going) would time that, not the action after it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        watch_paint(page, canvas, name="still", timeout_ms=quiet_ms + 1000)
        page.wait_for_timeout(quiet_ms)
        report = paint_report(page, name="still")
        page.evaluate("() => { window.__labvizPaint.still.stopped = true; }")
        if report["painted_at"] is None:
            return
    raise AssertionError(f"the scatter kept changing for {timeout_s:.0f} s")


def click_region(page, *, rank: int = 0, timeout_s: float) -> dict:
    """Click the region ranked ``rank`` in the finds' list (which must be shown) and wait for the
    scatter to paint its highlight and the reliability diagram to name it.

    Returns
    -------
    dict
        ``region`` (its number, from the button), ``region_ms`` (page time from the press to the
        first frame of the canvas showing the highlight), ``region_reliability_ms`` (to the frame
        whose reliability title names the selection), ``selection_after_region`` (the scatter's
        selected rows), ``reliability_title_after_region`` and ``status_after_region``.
    """
    button = page.get_by_role("button", name=REGION_BUTTON).nth(rank)
    match = REGION_BUTTON.match(button.inner_text().strip())
    assert match is not None, button.inner_text()
    region = int(match.group(1))
    canvas = page.locator(CANVAS).first
    page.evaluate(JS_RECORD_POINTER)
    button.hover()  # off the scatter: its hovered point's ring goes before the watch starts
    _hold_still(page, canvas, timeout_s)
    watch_paint(page, canvas, name="region", min_pixels=20, timeout_ms=int(timeout_s * 1000))
    page.evaluate(JS_WATCH_TITLE, "selection of")
    button.click()
    painted = wait_for_paint(page, name="region", timeout_ms=int(timeout_s * 1000))
    down = page.evaluate("() => window.__lvPointer.down")
    page.wait_for_function("() => window.__lvTitle.seenAt !== null", timeout=timeout_s * 1000)
    titled = page.evaluate("() => window.__lvTitle.seenAt")
    page.wait_for_function(
        "text => (document.querySelector('.labviz-explorer .widget-html-content') || {})"
        ".innerText.startsWith(text)", arg=f"Region {region}:", timeout=timeout_s * 1000)
    title = next(t for t in page.evaluate(JS_TEXTS)["titles"] if t.startswith("Reliability"))
    return {"region": region, "region_ms": painted["painted_at"] - down,
            "region_reliability_ms": titled - down,
            "selection_after_region": widget_states(page, SCATTER, ["selection"])[0]["selection"],
            "reliability_title_after_region": title, "status_after_region": _status_text(page)}


# Watch, on every frame, for the finds' first region button to be shown (hidden ones have no
# text; no layout is read, which would force one every frame); record the page time.
JS_WATCH_REGIONS = """() => {
    const w = window.__lvRegions = {seenAt: null};
    const check = () => {
        const shown = Array.from(document.querySelectorAll('.labviz-explorer button')).some(
            b => /^region \\d+: ECE /.test(b.textContent.trim()));
        if (shown) { w.seenAt = performance.now(); return; }
        requestAnimationFrame(check);
    };
    requestAnimationFrame(check);
}"""


def watch_regions(page) -> None:
    """Start watching for the regions' list (:func:`regions_seen_at` reads the time it showed)."""
    page.evaluate(JS_WATCH_REGIONS)


def regions_seen_at(page) -> float | None:
    """The page time the regions' list was first shown since :func:`watch_regions` (None: not
    yet)."""
    return page.evaluate("() => window.__lvRegions.seenAt")
