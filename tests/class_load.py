"""A class of students on the classroom app, simulated on loopback: shared by the load test
(``test_class_load.py``, a small class) and the benchmark (``benchmarks/bench_class_load.py``,
30 students against today's one-kernel-per-visitor baseline).

:func:`run_class` starts the app as a teacher would, then lets every student open it at once and
press **Train** ``runs_per_student`` times, each press after the previous run's views came back:

* ``mode="service"``: ``labviz app`` (the class's training service with ``workers`` processes,
  the board, Voilà with ``pool_size`` preheated kernels), started and left to fill its pool;
* ``mode="baseline"``: Voilà on ``notebooks/app.ipynb`` alone (``labviz.servers.jupyter.app_command``),
  where every visitor's kernel trains by itself, as the app did before the service.

A few students are real pages (headless Chromium through Playwright's async API); the others are
protocol-level clients: they load the page over HTTP, connect to their kernel's websocket as the
page does, read the widgets' state (``request_states``), press the Train button's model (the
``click`` message a page sends) and wait for the status line's model to name the finished run.

Recorded per student: time to first view (opening the page → the Train button visible, or the
widget state received) and every Train → views time (the press → the status line naming the
run); for the class: total resident memory of the server's process tree and of each visitor
kernel, and, in service mode, the board's rows (each finished run exactly once).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from jupyter_server.services.kernels.connection.base import (
    deserialize_msg_from_ws_v1,
    serialize_msg_to_ws_v1,
)
from test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    _free_port,
    _notebook,
    isolated_jupyter_env,
)

from labviz.servers import jupyter as server

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "notebooks" / "app.ipynb"
STATUS = re.compile(r"Showing run (\d+)")
#: A class is stopped (MemoryError) when the machine has less memory than this left.
MIN_FREE_BYTES = 2 * 2**30


# ----- the servers ------------------------------------------------------------------------------------
@contextlib.contextmanager
def serve_class(tmp: Path, *, mode: str, workers: int, pool_size: int,
                refill_after: float = server.DEFAULT_REFILL_AFTER,
                timeout_s: float = 300) -> Iterator[dict]:
    """The app for a class, ready: ``{"students": url, "teacher": url or None, "proc": Popen}``.

    In service mode it returns once the pool's kernels have all run the app (each is idle), as a
    teacher starts it before the class comes in.
    """
    notebook = _notebook(tmp, APP)
    port = _free_port()
    env = isolated_jupyter_env(tmp)
    log = open(tmp / f"{mode}.log", "w")
    if mode == "service":
        cmd = [sys.executable, "-m", "labviz.cli", "app", "--notebook", str(notebook),
               "--port", str(port), "--board-port", str(_free_port()), "--workers", str(workers),
               "--pool-size", str(pool_size), "--refill-after", str(refill_after),
               "--board", str(tmp / "board.sqlite")]
    elif mode == "baseline":
        cmd = server.app_command(notebook, secrets.token_hex(24), port=port)
    else:
        raise ValueError(f"`mode` must be 'service' or 'baseline'; got {mode!r}.")
    base = f"http://{server.LOOPBACK}:{port}"
    if mode == "service":
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdin=subprocess.DEVNULL, text=True,
                                stdout=subprocess.PIPE, stderr=log, start_new_session=True)
    else:
        proc = server.start_server(cmd, ready=server.answers(f"{base}/login"), cwd=tmp, env=env,
                                   log=tmp / "voila.log", name="Voilà", timeout_s=timeout_s)
    try:
        if mode == "service":
            urls = {}
            for line in proc.stdout:
                log.write(line)
                label, _, url = line.strip().partition(" on ")
                if label in ("Students", "Teacher's board"):
                    urls[label] = url
                if len(urls) == 2:
                    break
            assert len(urls) == 2, (tmp / f"{mode}.log").read_text()[-3000:]
            _wait_kernels(proc.pid, pool_size, timeout_s)
            yield {"students": urls["Students"], "teacher": urls["Teacher's board"], "proc": proc}
        else:
            token = next(a for a in cmd if a.startswith("--token=")).split("=", 1)[1]
            yield {"students": f"{base}/?token={token}", "teacher": None, "proc": proc}
    finally:
        server.stop_server(proc)
        log.close()


def _wait_kernels(pid: int, n: int, timeout_s: float) -> None:
    """Wait until ``n`` kernels run under ``pid`` and each has run the app: its trainer has
    connected to the training service (a TCP connection; kernels talk to Voilà over Unix
    sockets) and the kernel has then been idle (under 5% of a core) for 2 s. Idle alone is not
    enough: 30 kernels just started, before Voilà ran the app in any, were idle too. (The Dask
    workers' heartbeats keep the rest of the tree at a few per cent.)"""
    deadline = time.monotonic() + timeout_s
    quiet_since, kernels = None, {}
    while time.monotonic() < deadline:
        # the kernels running now (a kernel may exit), each the same Process object every time,
        # for cpu_percent
        kernels = {proc.pid: kernels.get(proc.pid, proc) for proc in _tree(pid) if _is_kernel(proc)}
        busy = max((_cpu(p) for p in kernels.values()), default=0.0) >= 5.0
        if len(kernels) >= n and not busy and all(_connected(p) for p in kernels.values()):
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 2:
                return
        else:
            quiet_since = None
        time.sleep(0.5)
    raise AssertionError(f"the pool of {n} kernels did not run the app within {timeout_s:.0f} s: "
                         f"{len(kernels)} running, {sum(map(_connected, kernels.values()))} "
                         "connected to the training service")


def _connected(proc) -> bool:
    """Whether ``proc`` holds an established TCP connection."""
    try:
        return any(c.status == "ESTABLISHED" for c in proc.net_connections("tcp"))
    except Exception:
        return False


def _tree(pid: int) -> list:
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _is_kernel(proc) -> bool:
    try:
        return "ipykernel" in " ".join(proc.cmdline())
    except Exception:
        return False


def _cpu(proc) -> float:
    try:
        return proc.cpu_percent(interval=None)
    except Exception:
        return 0.0


def memory_mb(pid: int) -> dict:
    """Resident memory of the server's tree: total, and each visitor kernel's."""
    total, kernels = 0.0, []
    for proc in _tree(pid):
        try:
            rss = proc.memory_info().rss / 2**20
        except Exception:
            continue
        total += rss
        if _is_kernel(proc):
            kernels.append(rss)
    return {"total_mb": total, "kernels_mb": kernels}


# ----- a protocol-level student ------------------------------------------------------------------
#: The kernel websocket protocol JupyterLab's and Voilà's pages speak (binary frames). With the
#: legacy JSON protocol instead, Voilà's server grew to 3 GB and 100% of a core re-encoding one
#: visitor's widget state, and never delivered it.
WS_PROTOCOL = "v1.kernel.websocket.jupyter.org"


def _message(session: str, msg_type: str, content: dict, *,
             metadata: dict | None = None) -> tuple[str, bytes]:
    """A shell message as a page sends it, framed for :data:`WS_PROTOCOL`, and its id."""
    msg_id = uuid.uuid4().hex
    header = {"msg_id": msg_id, "msg_type": msg_type, "username": "student", "session": session,
              "date": datetime.now(timezone.utc).isoformat(), "version": "5.3"}
    parts = [json.dumps(part).encode() for part in (header, {}, metadata or {}, content)]
    return msg_id, serialize_msg_to_ws_v1(parts, "shell")


async def _read(ws, timeout_s: float) -> dict:
    """The next kernel message (its buffers dropped): header, parent_header, content."""
    frame = await asyncio.wait_for(ws.read_message(), timeout_s)
    if frame is None:
        raise ConnectionError("the kernel's websocket closed")
    _, parts = deserialize_msg_from_ws_v1(frame)
    header, parent, _, content = (json.loads(part) for part in parts[:4])
    return {"header": header, "parent_header": parent, "content": content}


async def protocol_student(url: str, runs: int, timeout_s: float, *,
                           alpha: float | None = None) -> dict:
    """One student without a browser: open the app, set α to ``alpha`` (if given) and press
    Train ``runs`` times, each after the previous run's views came back."""
    from tornado.httpclient import AsyncHTTPClient
    from tornado.websocket import websocket_connect

    base, token = url.split("/?token=")
    started = time.perf_counter()
    client = AsyncHTTPClient(force_instance=True)  # the shared one queues past 10 requests
    try:
        page = await client.fetch(url, connect_timeout=timeout_s, request_timeout=timeout_s)
    finally:
        client.close()
    kernel_id = re.search(r'"kernelId"\s*:\s*"([0-9a-f-]{36})"', page.body.decode())[1]
    session = uuid.uuid4().hex
    ws = await websocket_connect(
        f"{base.replace('http://', 'ws://')}/api/kernels/{kernel_id}/channels"
        f"?session_id={session}&token={token}", subprotocols=[WS_PROTOCOL],
        max_message_size=2**30)

    def send(msg_type: str, content: dict, **kwargs) -> str:
        msg_id, frame = _message(session, msg_type, content, **kwargs)
        ws.write_message(frame, binary=True)
        return msg_id

    async def until(matches) -> dict:
        while not matches(msg := await _read(ws, timeout_s)):
            pass
        return msg

    def widget_message(msg: dict, method: str) -> dict | None:
        data = msg["content"].get("data")
        ok = msg["header"]["msg_type"] == "comm_msg" and isinstance(data, dict)
        return data if ok and data.get("method") == method else None

    out: dict = {"kind": "protocol", "alpha": alpha, "latencies_s": []}
    try:
        # ipywidgets' control comm, as a page opens it, then every widget's state
        control = uuid.uuid4().hex
        send("comm_open", {"comm_id": control, "target_name": "jupyter.widget.control",
                           "data": {}}, metadata={"version": "1.0.0"})
        send("comm_msg", {"comm_id": control, "data": {"method": "request_states"}})
        msg = await until(lambda m: widget_message(m, "update_states") is not None)
        states = widget_message(msg, "update_states")["states"]
        out["first_view_s"] = time.perf_counter() - started

        def model(name: str, description: str) -> str:
            return next(mid for mid, s in states.items() if s["model_name"] == name
                        and s["state"].get("description") == description)

        if alpha is not None:
            send("comm_msg", {"comm_id": model("FloatSliderModel", "α"), "data": {
                "method": "update", "state": {"value": alpha}, "buffer_paths": []}})
        train = model("ButtonModel", "Train")
        for k in range(1, runs + 1):
            pressed = time.perf_counter()
            send("comm_msg", {"comm_id": train,
                              "data": {"method": "custom", "content": {"event": "click"}}})

            def showing(m: dict, k: int = k) -> bool:  # the status line names run k: views done
                value = ((widget_message(m, "update") or {}).get("state") or {}).get("value")
                found = STATUS.search(value) if isinstance(value, str) else None
                return found is not None and int(found[1]) == k

            await until(showing)
            out["latencies_s"].append(time.perf_counter() - pressed)
    finally:
        ws.close()
    return out


# ----- a student in a real page -----------------------------------------------------------------------
JS_SHOWING = """k => Array.from(document.querySelectorAll('.widget-html-content'),
                                e => e.innerText).some(t => t.startsWith(`Showing run ${k}:`))"""


async def browser_student(browser, url: str, runs: int, timeout_s: float) -> dict:
    """One student in a headless Chromium page: open the app, press Train ``runs`` times."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1800})
    page = await context.new_page()
    page.set_default_timeout(timeout_s * 1000)
    out: dict = {"kind": "browser", "alpha": None, "latencies_s": []}
    try:
        started = time.perf_counter()
        await page.goto(url)
        train = page.locator("button.widget-button", has_text="Train")
        await train.wait_for(state="visible")
        out["first_view_s"] = time.perf_counter() - started
        for k in range(1, runs + 1):
            pressed = time.perf_counter()
            await train.click()
            await page.wait_for_function(JS_SHOWING, arg=k)
            out["latencies_s"].append(time.perf_counter() - pressed)
    finally:
        await context.close()
    return out


# ----- the class ------------------------------------------------------------------------------------
async def _class(url: str, *, n_students: int, n_browsers: int, runs: int, timeout_s: float,
                 alphas: tuple[float, ...], pid: int, memory: list) -> list[dict]:
    from playwright.async_api import async_playwright

    async def sample_memory() -> None:  # the peak over the class's work, and a guard
        import psutil

        while True:
            memory.append(memory_mb(pid))
            free = psutil.virtual_memory().available
            if free < MIN_FREE_BYTES:
                raise MemoryError(f"the class was stopped with {free / 2**30:.1f} GB of memory "
                                  f"left, under {MIN_FREE_BYTES / 2**30:.1f} GB")
            await asyncio.sleep(1.0)

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                          args=CHROMIUM_ARGS)
        sampler = asyncio.create_task(sample_memory())
        try:
            jobs = [browser_student(browser, url, runs, timeout_s) for _ in range(n_browsers)]
            jobs += [protocol_student(url, runs, timeout_s, alpha=alphas[i % len(alphas)])
                     for i in range(n_students - n_browsers)]
            students = asyncio.ensure_future(asyncio.gather(*jobs, return_exceptions=True))
            await asyncio.wait({students, sampler}, return_when=asyncio.FIRST_COMPLETED)
            if sampler.done():  # it ends only on low memory
                students.cancel()
                raise sampler.exception()
            results = students.result()
        finally:
            sampler.cancel()
            await browser.close()
    return [r if isinstance(r, dict) else {"error": f"{type(r).__name__}: {r}"} for r in results]


def _board_rows(teacher_url: str) -> list[dict]:
    import csv
    import io

    base, token = teacher_url.split("/?token=")
    with urllib.request.urlopen(f"{base}/runs.csv?token={token}", timeout=30) as response:
        return list(csv.DictReader(io.StringIO(response.read().decode())))


def percentile(values: list[float], q: float) -> float | None:
    import numpy as np

    return float(np.percentile(values, q)) if values else None


#: The α each protocol-level student sets in turn: the class's sweep (the pages keep the default).
ALPHAS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4)


def run_class(tmp: Path, *, mode: str = "service", n_students: int = 30, n_browsers: int = 3,
              runs_per_student: int = 1, workers: int | None = None, pool_size: int | None = None,
              refill_after: float = server.DEFAULT_REFILL_AFTER, alphas: tuple[float, ...] = ALPHAS,
              timeout_s: float = 600) -> dict:
    """Serve the app, let a class use it (see the module docstring) and return what was measured:
    ``students`` (per student: kind, ``alpha``, ``first_view_s``, ``latencies_s`` or ``error``),
    ``first_view_s`` and ``train_to_views_s`` summaries (p50, p95, max), ``memory`` (peak total
    and per-kernel MB, sampled every second), and in service mode ``board_rows``."""
    import os

    workers = workers or os.cpu_count() or 1
    pool_size = n_students if pool_size is None else pool_size
    with serve_class(tmp, mode=mode, workers=workers, pool_size=pool_size,
                     refill_after=refill_after) as served:
        pid = served["proc"].pid
        idle = memory_mb(pid)
        memory: list[dict] = []
        started = time.perf_counter()
        students = asyncio.run(_class(served["students"], n_students=n_students,
                                      n_browsers=n_browsers, runs=runs_per_student,
                                      timeout_s=timeout_s, alphas=alphas, pid=pid,
                                      memory=memory))
        seconds = time.perf_counter() - started
        rows = _board_rows(served["teacher"]) if served["teacher"] else None
    first = [s["first_view_s"] for s in students if "first_view_s" in s]
    latencies = [x for s in students for x in s.get("latencies_s", [])]
    peak = max(memory, key=lambda m: m["total_mb"]) if memory else idle
    kernel_peaks = [max(m["kernels_mb"]) for m in memory if m["kernels_mb"]]
    return {
        "mode": mode, "n_students": n_students, "n_browsers": n_browsers,
        "runs_per_student": runs_per_student, "workers": workers, "pool_size": pool_size,
        "refill_after": refill_after,
        "seconds": seconds, "students": students,
        "errors": [s["error"] for s in students if "error" in s],
        "first_view_s": {"p50": percentile(first, 50), "p95": percentile(first, 95),
                         "max": max(first, default=None)},
        "train_to_views_s": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
                             "max": max(latencies, default=None), "n": len(latencies)},
        "memory": {"idle_total_mb": idle["total_mb"], "peak_total_mb": peak["total_mb"],
                   "kernel_mb_max": max(kernel_peaks, default=None),
                   "kernel_mb_mean": (sum(peak["kernels_mb"]) / len(peak["kernels_mb"])
                                      if peak["kernels_mb"] else None),
                   "n_kernels": len(peak["kernels_mb"])},
        "board_rows": rows,
    }
