"""The explorer in a real browser: JupyterLab + headless Chromium, driven by Playwright.

The test starts JupyterLab on 127.0.0.1 (a free port, token authentication, the configuration of
``labviz.servers.jupyter.lab_config``) in an isolated temporary folder, opens a copy of the tour notebook
``notebooks/00_tour.ipynb`` (or, while the tour does not exist, a two-cell notebook that calls
``labviz.explore`` on digits checkpoints) in headless Chromium, runs all cells, waits for the
explorer, clicks a diagonal cell of its confusion heatmap and checks that the projection's
``"highlight"`` trace now rings exactly the samples of that cell, in the page itself (the plotly.js
figures' ``.data``), and that the status line names the clicked cell. A screenshot of the
explorer is saved under the test's ``tmp_path``. The tour runs on the Fashion-MNIST checkpoints it
names (the full zoo), from the activation cache the notebook tests filled (conftest.py's
``zoo_cache``) where they ran first, as under ``make test``; from an empty cache, the whole test
takes about 65 s here.

It is skipped only when Chromium is absent (``/usr/bin/chromium``); Playwright drives that system
Chromium and never downloads a browser. A watchdog (``SIGALRM``) bounds the whole test, and the
server, its kernels and the browser are stopped in ``finally`` blocks.

The README's screenshot of the explorer (``docs/explorer.png``, 100,000 points drawn with WebGL)
comes from ``test_explorer_browser.py``; with ``LABVIZ_SCREENSHOT_OUT`` set, this test copies its
own screenshot (the tour's plotly explorer) there instead.

Nothing is written outside ``tmp_path`` otherwise: JupyterLab's settings, workspaces, runtime
files and the browser profile all live there.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from labviz.servers import jupyter as server

ROOT = Path(__file__).resolve().parents[1]
TOUR = ROOT / "notebooks" / "00_tour.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
#: Used while the tour notebook does not exist; digits checkpoints keep it fast.
FALLBACK_SOURCES = ["digits-ce-s0", "digits-ls0.1-s0"]
#: Hard cap on the whole test (server start, kernel start, all cells, the click), in seconds.
TEST_TIMEOUT_S = 360
#: Longest wait for "run all" (the tour takes ~45 s here with an empty cache), in seconds.
NOTEBOOK_TIMEOUT_S = 240
#: Longest wait for any other single step in the page, in milliseconds.
STEP_TIMEOUT_MS = 60_000
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
#: JupyterLab's settings in the tests: those of ``labviz lab`` (no news prompt), no toasts either,
#: and every cell attached to the DOM (windowing would detach the explorer's cell when it scrolls away).
LAB_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {
        **server.LAB_SETTINGS["@jupyterlab/apputils-extension:notification"], "doNotDisturbMode": True},
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
}

#: The marks of every real-browser test module (``pytestmark = BROWSER_MARKS``).
BROWSER_MARKS = [
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason=f"Chromium is not installed at {CHROMIUM}; the real-browser test "
                              "drives that system browser (apt-get install chromium)."),
]
pytestmark = BROWSER_MARKS


# ----- JupyterLab ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind((server.LOOPBACK, 0))
        return s.getsockname()[1]


def _notebook(root: Path, source: Path = TOUR) -> Path:
    """A copy of ``source`` (the tour) in ``root``, or an explorer notebook while there is no tour."""
    import nbformat

    if source.exists():
        nb = nbformat.read(source, as_version=4)
    else:
        nb = nbformat.v4.new_notebook(cells=[
            nbformat.v4.new_code_cell("import labviz"),
            nbformat.v4.new_code_cell(f"labviz.explore({FALLBACK_SOURCES!r})"),
        ])
    # "python3" is the server's own interpreter, so the kernel sees this labviz and no
    # kernel-picker dialog appears (a kernelspec such as "labviz" may not be registered here)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path = root / ("tour.ipynb" if source == TOUR else source.name)
    nbformat.write(nb, path)
    return path


def _get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def isolated_jupyter_env(tmp: Path) -> dict[str, str]:
    """This process's environment with every per-user Jupyter folder moved under ``tmp``, so a
    server started with it reads and writes nothing global."""
    env = dict(os.environ)
    for var, sub in (("JUPYTERLAB_SETTINGS_DIR", "lab-user-settings"),
                     ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces"),
                     ("JUPYTER_RUNTIME_DIR", "jupyter-runtime"),
                     ("JUPYTER_CONFIG_DIR", "jupyter-config"),
                     ("JUPYTER_DATA_DIR", "jupyter-data"),
                     ("IPYTHONDIR", "ipython")):
        env[var] = str(tmp / sub)
    return env


@contextmanager
def _jupyterlab(tmp: Path, source: Path = TOUR) -> Iterator[tuple[str, str, Path]]:
    """Run JupyterLab on a copy of notebook ``source``; yield (base URL, token, notebook path)."""
    root = tmp / "root"
    root.mkdir()
    notebook = _notebook(root, source)
    token = secrets.token_hex(24)
    port = _free_port()
    config = server.write_config(tmp / "jupyter_server_config.json",
                                 server.lab_config(token, root, port=port))
    app_settings = server.write_lab_settings(tmp / "lab-app-settings", LAB_OVERRIDES)
    cmd = server.lab_command(config, app_settings) + ["--LabApp.expose_app_in_browser=True"]
    base = f"http://{server.LOOPBACK}:{port}"
    proc = start_server(cmd, cwd=root, env=isolated_jupyter_env(tmp), log=tmp / "jupyterlab.log",
                        name="JupyterLab", ready=server.answers(f"{base}/api/status?token={token}"))
    try:
        yield base, token, notebook
    finally:
        _stop_jupyterlab(proc, base, token)


def start_server(cmd: list[str], *, cwd: Path, env: dict[str, str], log: Path, name: str,
                 ready: Callable[[], object], timeout_s: float = 120) -> subprocess.Popen:
    """:func:`labviz.servers.jupyter.start_server`, failing the test (not erroring) when the server does not
    come up."""
    try:
        return server.start_server(cmd, ready=ready, log=log, name=name, cwd=cwd, env=env,
                                   timeout_s=timeout_s)
    except server.ServerError as exc:
        pytest.fail(str(exc))


def _stop_jupyterlab(proc: subprocess.Popen, base: str, token: str) -> None:
    # shut kernels down through the API first: they run in their own process groups
    try:
        for kernel in _get_json(f"{base}/api/kernels?token={token}"):
            request = urllib.request.Request(f"{base}/api/kernels/{kernel['id']}?token={token}",
                                             method="DELETE")
            urllib.request.urlopen(request, timeout=10).close()
    except (OSError, ValueError):
        pass  # the server is already gone; its own shutdown stops its kernels
    server.stop_server(proc)


# ----- labviz lab, as a newcomer meets it -------------------------------------------------------
def _launch(args: list[str], tmp_path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "labviz.cli", *args], cwd=ROOT,
                            env=isolated_jupyter_env(tmp_path), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def _printed_url(proc: subprocess.Popen, prefix: str) -> str:
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith(prefix):
            return line.split(" on ", 1)[1].strip()
    pytest.fail("no URL was printed:\n" + "".join(lines))


def test_labviz_lab_prints_a_url_that_answers_at_once_and_asks_no_news_question(tmp_path):
    port = _free_port()
    proc = _launch(["lab", "--port", str(port), "--notebooks", str(tmp_path)], tmp_path)
    try:
        url = _printed_url(proc, "JupyterLab on ")
        assert re.fullmatch(rf"http://127\.0\.0\.1:{port}/lab\?token=[0-9a-f]{{48}}", url)
        with urllib.request.urlopen(url, timeout=5) as page:  # no retry: it must answer already
            assert page.status == 200
        token = url.split("token=")[1]
        settings = f"http://127.0.0.1:{port}/lab/api/settings/@jupyterlab/apputils-extension:notification"
        with urllib.request.urlopen(f"{settings}?token={token}", timeout=5) as response:
            served = json.load(response)
        # overrides.json replaces the schema's defaults ("none", "ask", for fetchNews)
        effective = {k: served["settings"].get(k, p.get("default"))
                     for k, p in served["schema"]["properties"].items()}
        assert effective["fetchNews"] == "false" and effective["checkForUpdates"] is False
        with chromium_page(tmp_path, width=1280, height=800) as page:
            page.goto(url)
            page.wait_for_selector(".jp-Launcher")  # stock JupyterLab asks as the launcher appears
            page.wait_for_timeout(3000)
            assert "official Jupyter news" not in page.inner_text("body")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    with pytest.raises(OSError):  # the CLI stopped its server on the way out
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=2)


# ----- the watchdog -------------------------------------------------------------------------------
class _Timeout(Exception):
    pass


@contextmanager
def _hard_timeout(seconds: int) -> Iterator[None]:
    """Raise in the test after ``seconds``, whatever it waits on; ``finally`` blocks still run."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals only reach the main thread; the page waits still time out on their own
        return

    def expire(signum: int, frame: object) -> None:
        raise _Timeout(f"the browser test took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ----- in the page --------------------------------------------------------------------------------
JS_NOTEBOOK_READY = """async () => {
    const app = window.jupyterapp;
    await app.restored;
    const panel = app.shell.currentWidget;
    await panel.context.ready;
    await panel.sessionContext.ready;
    return panel.sessionContext.session.kernel.name;
}"""

# Not awaited: "run all" resolves only when every cell is done, and we watch the page instead.
JS_RUN_ALL = "() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }"

# Every code cell has run (or one failed) and the kernel is idle: what a person waits for.
JS_CELLS_STATE = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const errors = [];
    let pending = 0;
    for (const cell of panel.content.widgets) {
        const empty = cell.model.sharedModel.getSource().trim() === '';
        if (cell.model.type !== 'code' || empty) continue;  // empty cells never get a count
        if (cell.model.executionCount === null) pending += 1;
        for (const out of cell.model.outputs.toJSON()) {
            if (out.output_type === 'error') errors.push(out.ename + ': ' + out.evalue);
        }
    }
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    return {pending, errors, status: kernel ? kernel.status : 'none'};
}"""

# The explorer is the output holding plotly figures inside ipywidgets boxes; the tour's other
# figures are static outputs, outside any widget.
JS_EXPLORER = """() => Array.from(document.querySelectorAll('.jp-OutputArea-output'))
    .find(out => out.querySelector('.widget-vbox .js-plotly-plot')) || null"""

# The explorer's figures: projections (with a "highlight" trace) and the confusion heatmap.
JS_FIGURES = f"""() => {{
    const root = ({JS_EXPLORER})();
    if (root === null) return null;
    const plots = Array.from(root.querySelectorAll('.js-plotly-plot'));
    const highlights = plots
        .map(gd => (gd.data || []).find(t => t.name === 'highlight'))
        .filter(t => t !== undefined)
        .map(t => ({{x: Array.from(t.x || []), y: Array.from(t.y || [])}}));
    const heatmap = plots.find(gd => (gd.data || []).some(t => t.type === 'heatmap'));
    let confusion = null;
    if (heatmap) {{
        const t = heatmap.data.find(t => t.type === 'heatmap');
        confusion = {{
            labels: Array.from(t.y),
            counts: Array.from(t.customdata, row => Array.from(row, cell => cell[0])),
            // plotly.js resolves the axes into layout ranges; a descending range is reversed
            x_reversed: heatmap.layout.xaxis.range[0] > heatmap.layout.xaxis.range[1],
            y_reversed: heatmap.layout.yaxis.range[0] > heatmap.layout.yaxis.range[1],
        }};
    }}
    const texts = Array.from(root.querySelectorAll('.widget-html-content'), e => e.innerText);
    return {{highlights, confusion, texts}};
}}"""


# The left projection's traces, to check where the rings are drawn.
JS_LEFT_PROJECTION = f"""() => {{
    const root = ({JS_EXPLORER})();
    const gd = Array.from(root.querySelectorAll('.js-plotly-plot'))
        .find(gd => (gd.data || []).some(t => t.name === 'highlight'));
    return gd.data.map(t => ({{name: t.name, x: Array.from(t.x || []), y: Array.from(t.y || [])}}));
}}"""


def _wait_for_notebook(page, timeout_s: float) -> dict:
    """Wait until every cell has run and the explorer is drawn; fail at once if a cell fails."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = page.evaluate(JS_CELLS_STATE)
        if state["errors"]:
            pytest.fail(f"A notebook cell failed: {state['errors']}")
        figures = page.evaluate(JS_FIGURES)
        drawn = figures is not None and figures["confusion"] is not None and figures["highlights"]
        if state["pending"] == 0 and state["status"] == "idle" and drawn:
            return figures
        if time.monotonic() > deadline:
            pytest.fail(f"The notebook did not finish within {timeout_s:.0f} s: {state}; "
                        f"explorer drawn: {bool(drawn)}")
        page.wait_for_timeout(1000)


def _cell_centre(heatmap, k: int, confusion: dict) -> tuple[float, float]:
    """Page coordinates of the centre of diagonal cell ``k`` of the confusion heatmap."""
    n = len(confusion["labels"])
    # plotly.js draws a heatmap as one <image> spanning exactly the cell grid
    box = heatmap.locator(".hm image").first.bounding_box()
    assert box is not None, "the confusion heatmap has no visible image"
    from_left = n - 1 - k if confusion["x_reversed"] else k
    # screen y grows downwards: an ascending y axis puts class 0 at the bottom
    from_top = k if confusion["y_reversed"] else n - 1 - k
    return (box["x"] + (from_left + 0.5) * box["width"] / n,
            box["y"] + (from_top + 0.5) * box["height"] / n)


@contextmanager
def chromium_page(tmp: Path, *, width: int, height: int, timeout_ms: int = STEP_TIMEOUT_MS,
                  args: list[str] | None = None):
    """A page of the system Chromium, headless (``args``: its flags, by default
    :data:`CHROMIUM_ARGS`), with its profile under ``tmp``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS if args is None else args,
            viewport={"width": width, "height": height})
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(timeout_ms)
            yield page
        finally:
            context.close()


def open_notebook(page, base: str, token: str, notebook: Path) -> str:
    """Open ``notebook`` in JupyterLab at ``base``; return its kernel's name once it is ready."""
    page.goto(f"{base}/lab/tree/{notebook.name}?token={token}")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell"
                           " && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.sessionContext")
    return page.evaluate(JS_NOTEBOOK_READY)


def _run_explorer_in_browser(tmp: Path) -> dict:
    """Open the notebook, run it, click a diagonal confusion cell; return what the page showed."""
    with _jupyterlab(tmp) as (base, token, notebook), \
            chromium_page(tmp, width=1500, height=2300) as page:
        kernel = open_notebook(page, base, token, notebook)
        page.evaluate("() => { window.jupyterapp.shell.collapseLeft();"
                      " window.jupyterapp.shell.collapseRight(); }")
        page.evaluate(JS_RUN_ALL)
        before = _wait_for_notebook(page, NOTEBOOK_TIMEOUT_S)

        confusion = before["confusion"]
        n = len(confusion["labels"])
        diagonal = [confusion["counts"][k][k] for k in range(n)]
        row = max(range(n), key=diagonal.__getitem__)
        explorer = page.locator(".jp-OutputArea-output:has(.widget-vbox .js-plotly-plot)").first
        heatmap = explorer.locator(".js-plotly-plot:has(.hm)").first
        heatmap.scroll_into_view_if_needed()
        x, y = _cell_centre(heatmap, row, confusion)
        # plotly.js reports a click on the point it hovers, so hover first
        page.mouse.move(x, y)
        page.wait_for_timeout(300)
        page.mouse.click(x, y)
        # the handler rings the cell in every panel, then names it in the status line
        page.wait_for_function(f"""() => {{ const f = ({JS_FIGURES})();
            return f.highlights.every(h => h.x.length > 0)
                && f.texts.some(t => t.includes('→')); }}""")
        after = page.evaluate(JS_FIGURES)
        left = page.evaluate(JS_LEFT_PROJECTION)
        page.mouse.move(1, 1)  # away from the figure: no hover label or mode bar in the picture
        page.wait_for_timeout(800)  # let plotly.js finish redrawing

        screenshot = tmp / "explorer.png"
        explorer.screenshot(path=str(screenshot))
    return {"kernel": kernel, "before": before, "after": after, "left": left, "row": row,
            "cell_count": diagonal[row], "labels": confusion["labels"], "screenshot": screenshot}


# ----- the test -----------------------------------------------------------------------------------
def test_clicking_a_confusion_cell_highlights_its_samples_in_the_projection(tmp_path,
                                                                         shared_zoo_cache):
    with _hard_timeout(TEST_TIMEOUT_S):
        seen = _run_explorer_in_browser(tmp_path)

    assert seen["kernel"] == "python3"
    before, after = seen["before"]["highlights"], seen["after"]["highlights"]
    # nothing is ringed until a cell is clicked; then every panel rings the cell's samples
    assert [len(h["x"]) for h in before] == [0] * len(before)
    assert len(after) == len(before) >= 1
    assert after[0] != before[0]
    n_cell = seen["cell_count"]
    assert n_cell > 0
    assert len(after[0]["x"]) == len(after[0]["y"]) == n_cell
    assert all(len(h["x"]) > 0 for h in after[1:])  # the panels share the highlight

    # the rings sit on points of the clicked class (a diagonal cell holds only that class)
    name = seen["labels"][seen["row"]]
    traces = {t["name"]: set(zip(t["x"], t["y"])) for t in seen["left"]}
    assert set(zip(after[0]["x"], after[0]["y"])) <= traces[name]

    # the status line names the clicked cell: the chosen diagonal one, so the click landed there
    status = "\n".join(seen["after"]["texts"])
    match = re.search(r"Cell true (.+?) → predicted (.+?): (\d[\d,]*) samples? highlighted", status)
    assert match is not None, status
    assert match.groups() == (name, name, f"{n_cell:,}")

    shot = seen["screenshot"]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = os.environ.get("LABVIZ_SCREENSHOT_OUT")
    if out:
        target = Path(out) if Path(out).is_absolute() else ROOT / out
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)
