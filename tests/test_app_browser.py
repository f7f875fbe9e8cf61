"""The live trainer in a real browser: the classroom app in Voilà, and notebook 08 in JupyterLab.

The test serves a copy of ``notebooks/app.ipynb`` with the exact command of
``labviz.servers.jupyter.app_command`` (127.0.0.1, a free port, a token) in an isolated temporary folder,
checks that a request without the token is turned away, opens the page in headless Chromium, checks
that no code is shown, changes a control (the loss, to CE), presses **Train**, and waits until the
run has finished and updated the plots: the status line names run 1 with CE, the template plane
and the reliability diagram hold that run's traces. It prints the time from the click to the
updated views and saves a screenshot under ``tmp_path`` (copied to ``LABVIZ_APP_SCREENSHOT_OUT``
when that is set).

The second test opens a copy of ``notebooks/08_live_classroom.ipynb`` in JupyterLab (started as in
``test_browser.py``), runs all its cells (the scripted sweep trains four runs), then presses the
widget's **Train** button in the page and waits for run 5 in the status line and the plots.

Like ``test_browser.py`` they are skipped only when Chromium is absent, never downloads a browser, and
a watchdog bounds the whole test.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from test_browser import (
    BROWSER_MARKS,
    JS_CELLS_STATE,
    JS_RUN_ALL,
    _free_port,
    _hard_timeout,
    _jupyterlab,
    _notebook,
    chromium_page,
    isolated_jupyter_env,
    open_notebook,
    start_server,
)

from labviz.servers import jupyter as server

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "notebooks" / "app.ipynb"
CLASSROOM = ROOT / "notebooks" / "08_live_classroom.ipynb"
TEST_TIMEOUT_S = 300
STEP_TIMEOUT_MS = 120_000

pytestmark = BROWSER_MARKS

# Plotly figures in the page and their trace names; the status line of the live trainer.
JS_STATE = """() => {
    const plots = Array.from(document.querySelectorAll('.js-plotly-plot'));
    const traces = plots.map(gd => (gd.data || []).map(t => t.name || ''));
    // every text a figure shows: trace texts and layout annotations
    const shown = plots.flatMap(gd => [
        ...(gd.data || []).flatMap(t => Array.isArray(t.text) ? t.text.map(String) : []),
        ...((gd.layout || {}).annotations || []).map(a => String(a.text))]);
    const texts = Array.from(document.querySelectorAll('.widget-html-content'), e => e.innerText);
    return {traces, texts, shown};
}"""


JS_EXPLORER_TABLE = """() => Array.from(document.querySelectorAll('.widget-html-content'))
    .some(e => e.textContent.includes('Per class'))"""


JS_STATUS = """() => Array.from(document.querySelectorAll('.widget-html-content'), e => e.innerText)
    .filter(t => t.startsWith('Showing run'))"""


def _start_voila(tmp: Path) -> tuple[subprocess.Popen, str, str]:
    notebook = _notebook(tmp, APP)
    token, port = secrets.token_hex(24), _free_port()
    base = f"http://{server.LOOPBACK}:{port}"

    def ready() -> None:
        # without the token: Voilà answers with its login page, never the app
        with urllib.request.urlopen(f"{base}/", timeout=5) as response:
            assert "/login" in response.url

    proc = start_server(server.app_command(notebook, token, port=port), cwd=tmp,
                        env=isolated_jupyter_env(tmp), log=tmp / "voila.log", name="Voilà",
                        ready=ready)
    return proc, base, token


def _run_app_in_browser(tmp: Path) -> dict:
    proc, base, token = _start_voila(tmp)
    try:
        with chromium_page(tmp, width=1400, height=1800, timeout_ms=STEP_TIMEOUT_MS) as page:
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            page.goto(f"{base}/?token={token}")
            train = page.locator("button.widget-button", has_text="Train")
            train.wait_for(state="visible")
            # the live views are lines of text until a run (the explorer's tab is built when
            # chosen): the page has no plotly figure yet
            page.wait_for_function(f"() => ({JS_STATE})().texts.some("
                                   "t => t.includes('appears here after a run'))")
            before = page.evaluate(JS_STATE)
            content = page.content()

            page.locator("button.widget-toggle-button", has_text="CE").click()
            page.wait_for_function("() => Array.from(document.querySelectorAll("
                                   "'button.widget-toggle-button.mod-active'))"
                                   ".some(b => b.innerText.trim() === 'CE')")
            clicked = time.perf_counter()
            train.click()
            page.wait_for_function(f"() => ({JS_STATUS})().some(t => t.startsWith('Showing run 1'))")
            page.wait_for_function("""() => Array.from(document.querySelectorAll('.js-plotly-plot'))
                .some(gd => (gd.data || []).some(t => t.name === 'templates'))""")
            # the status line changes once Python has sent every view; the page paints them one
            # by one after that, so wait (within the step timeout) until no empty view is left
            page.wait_for_function(f"() => !({JS_STATE})().texts.some(t => t.includes('appears here after a run'))")
            seconds = time.perf_counter() - clicked
            after = page.evaluate(JS_STATE)
            page.mouse.move(1, 1)
            page.wait_for_timeout(800)
            shot = tmp / "app.png"
            page.screenshot(path=str(shot))

            page.locator(".lm-TabBar-tab", has_text="Explorer").click()
            page.wait_for_function(JS_EXPLORER_TABLE)
            explorer = page.evaluate(JS_STATE)
    finally:
        server.stop_server(proc)
    return {"before": before, "after": after, "content": content, "seconds": seconds,
            "screenshot": shot, "explorer": explorer, "requested": requested}


def test_voila_app_trains_a_run_and_updates_the_plots(tmp_path, shared_zoo_cache):
    with _hard_timeout(TEST_TIMEOUT_S):
        seen = _run_app_in_browser(tmp_path)

    assert "import labviz" not in seen["content"]  # Voilà shows outputs only
    # plotly's lab extension stays off the page: its figures are widgets, drawn all the same
    assert not [url for url in seen["requested"] if "labextensions/jupyterlab-plotly" in url]
    assert any("labextensions/anywidget" in url for url in seen["requested"])
    assert sum("appears here after a run" in t for t in seen["before"]["texts"]) == 6
    assert seen["before"]["traces"] == []  # no plotly figure before a run
    # the live views now show the run: nothing of their empty state lingers in the page
    left = seen["after"]["texts"] + seen["after"]["shown"]
    assert not any("appears here after a run" in t for t in left)

    status = next(t for t in seen["after"]["texts"] if t.startswith("Showing run 1"))
    assert re.match(r"Showing run 1: CE · noise 0% · 30 epochs · seed 0 · digits\. Accuracy ", status)
    after_names = {n for names in seen["after"]["traces"] for n in names}
    assert {"templates", "0", "1", "2"} <= after_names  # the template plane of classes 0, 1, 2
    assert any(n.startswith("run 1") for n in after_names)  # the reliability diagram
    print(f"\nVoilà app: Train click → updated plots in {seen['seconds']:.2f} s")

    # the explorer's tab, built when chosen, shows its per-class table and figures
    assert not any("Per class" in t for t in seen["after"]["texts"])
    assert any("Per class" in t for t in seen["explorer"]["texts"])
    assert len(seen["explorer"]["traces"]) > len(seen["after"]["traces"])
    assert seen["screenshot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = os.environ.get("LABVIZ_APP_SCREENSHOT_OUT")
    if out:
        target = Path(out) if Path(out).is_absolute() else ROOT / out
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(seen["screenshot"], target)


def test_live_trainer_in_jupyterlab_trains_on_a_click(tmp_path, shared_zoo_cache):
    with _hard_timeout(TEST_TIMEOUT_S), _jupyterlab(tmp_path, CLASSROOM) as (base, token, notebook), \
            chromium_page(tmp_path, width=1400, height=1800, timeout_ms=STEP_TIMEOUT_MS) as page:
        assert open_notebook(page, base, token, notebook) == "python3"
        page.evaluate(JS_RUN_ALL)
        deadline = time.monotonic() + TEST_TIMEOUT_S / 2
        while True:  # every cell has run (the scripted sweep trained runs 1 to 4)
            state = page.evaluate(JS_CELLS_STATE)
            assert not state["errors"], state["errors"]
            if state["pending"] == 0 and state["status"] == "idle":
                break
            assert time.monotonic() < deadline, f"the notebook did not finish: {state}"
            page.wait_for_timeout(1000)
        assert any(t.startswith("Showing run 4: LS α=-0.10") for t in page.evaluate(JS_STATUS))

        page.locator("button.widget-button", has_text="Train").first.click()
        page.wait_for_function(f"() => ({JS_STATUS})().some(t => t.startsWith('Showing run 5'))")
        status = page.evaluate(JS_STATUS)
        names = {n for names in page.evaluate(JS_STATE)["traces"] for n in names}
    # the controls still hold the sweep's last knobs: LS α = -0.1, classes 3, 5, 8
    assert any(t.startswith("Showing run 5: LS α=-0.10 · noise 0% · 30 epochs") for t in status)
    assert {"templates", "3", "5", "8"} <= names and any(n.startswith("run 5") for n in names)


def test_labviz_app_prints_both_urls_once_its_servers_answer(tmp_path):
    port, board_port = _free_port(), _free_port()
    board = tmp_path / "board.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "labviz.cli", "app", "--port", str(port),
                             "--board-port", str(board_port), "--workers", "1", "--pool-size", "0",
                             "--board", str(board), "--notebook", str(_notebook(tmp_path, APP))],
                            cwd=ROOT, env=isolated_jupyter_env(tmp_path), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Teacher's board on "):
                break
        urls = dict(line.strip().split(" on ", 1) for line in lines
                    if line.startswith(("Students on ", "Teacher's board on ")))
        student = re.fullmatch(rf"http://127\.0\.0\.1:{port}/\?token=([0-9a-f]{{48}})",
                               urls["Students"])
        teacher = re.fullmatch(rf"http://127\.0\.0\.1:{board_port}/\?token=([0-9a-f]{{48}})",
                               urls["Teacher's board"])
        assert student and teacher and student[1] != teacher[1], lines
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as page:
            assert page.status == 200  # no retry: it must answer already
        with urllib.request.urlopen(urls["Teacher's board"], timeout=5) as page:
            assert page.status == 200 and b"class's board" in page.read()
        # the students' token does not open the board
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{board_port}/?token={student[1]}", timeout=5)
        assert refused.value.code == 403
        assert board.exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
