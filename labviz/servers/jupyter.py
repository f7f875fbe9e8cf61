"""Launch JupyterLab and the Voilà classroom app safely: bound to 127.0.0.1, token authentication on,
never disabled; the URL is printed only once the server answers.

``lab_config``, ``lab_command`` and ``app_command`` are the whole server configuration labviz
generates; tests check them. ``start_server`` and ``stop_server`` run any of them in a process group
of its own, for ``labviz lab``, ``labviz app`` and the browser tests alike.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbformat import NotebookNode

LOOPBACK = "127.0.0.1"

#: JupyterLab settings (an ``overrides.json``) for every lab that labviz opens: no prompt asking
#: whether to fetch Jupyter news, no news, no update checks.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}


class ServerError(RuntimeError):
    """A server exited or did not answer in time; the message ends with its log's tail."""


def lab_config(token: str, notebook_dir: Path, *, port: int = 8888) -> dict:
    """The Jupyter server configuration that ``labviz lab`` runs with.

    It binds to loopback only, requires ``token``, opens no browser (the URL is printed), and
    fails rather than moving to another port when ``port`` is taken, so the printed URL is right.
    """
    _check_token(token)
    return {
        "ServerApp": {
            "ip": LOOPBACK,
            "port": port,
            "port_retries": 0,
            "open_browser": False,
            "root_dir": str(notebook_dir),
            "allow_remote_access": False,
            "allow_root": True,
        },
        "IdentityProvider": {"token": token},
    }


def write_config(path: Path, config: dict) -> Path:
    """Write ``config`` as JSON readable only by its owner (it holds the token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(config, fh, indent=1)
    return path


def write_lab_settings(folder: Path, settings: dict | None = None) -> Path:
    """Write ``settings`` (default :data:`LAB_SETTINGS`) as ``folder/overrides.json``; return ``folder``,
    to pass as JupyterLab's ``--LabApp.app_settings_dir``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "overrides.json").write_text(json.dumps(LAB_SETTINGS if settings is None else settings,
                                                      indent=1))
    return folder


def lab_command(config_path: Path, settings_dir: Path) -> list[str]:
    """The JupyterLab command line that ``labviz lab`` (``make lab``) runs."""
    return [sys.executable, "-m", "jupyter", "lab", f"--config={config_path}",
            f"--LabApp.app_settings_dir={settings_dir}"]


def log_path(name: str, port: int) -> Path:
    """Where a server that ``labviz`` starts logs: under the environment's prefix, one file per
    server and port (two servers never share a port, so they never share a log)."""
    return Path(sys.prefix) / "etc" / "labviz" / f"{name}-{port}.log"


def launch_lab(notebook_dir: Path, *, port: int = 8888, timeout_s: float = 120,
               open_path: str | None = None) -> int:
    """Run JupyterLab on ``notebook_dir`` until it is stopped; print the URL with its token once the
    server answers, or the log's tail if it never does. With ``open_path`` (a notebook's path
    relative to ``notebook_dir``) the URL opens that notebook."""
    token = secrets.token_hex(24)
    state = Path(sys.prefix) / "etc" / "labviz"
    config_path = write_config(state / "jupyter_server_config.json",
                               lab_config(token, notebook_dir, port=port))
    cmd = lab_command(config_path, write_lab_settings(state / "lab-settings"))
    base = f"http://{LOOPBACK}:{port}"
    page = "lab" if open_path is None else f"lab/tree/{urllib.parse.quote(open_path)}"
    return _serve(cmd, name="JupyterLab", urls={"JupyterLab": f"{base}/{page}?token={token}"},
                  log=log_path("jupyterlab", port), ready=answers(f"{base}/api/status?token={token}"),
                  timeout_s=timeout_s)


def explore_notebook(data_path: Path) -> NotebookNode:
    """The notebook ``labviz explore`` writes: it loads ``data_path`` (made absolute) with
    ``labviz.Predictions.from_path`` and shows ``labviz.explore`` of it. Its metadata records the
    path under ``labviz.source``.

    Returns
    -------
    nbformat.NotebookNode
    """
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    source = str(Path(data_path).resolve())
    nb = new_notebook(cells=[
        new_markdown_cell(f"# Exploring `{Path(source).name}`\n\nWritten by `labviz explore "
                          f"{source}`; yours to edit: `labviz explore` reopens it as it is and "
                          "never writes over it. `labviz report` writes the same views as one "
                          "HTML file."),
        new_code_cell(f"import labviz\n\np = labviz.Predictions.from_path({source!r})\np"),
        new_code_cell("labviz.explore(p)"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"},
                 "labviz": {"source": source}})
    nbformat.validate(nb)
    return nb


def write_explore_notebook(data_path: Path, folder: Path) -> tuple[Path, bool]:
    """Write :func:`explore_notebook` of ``data_path`` into ``folder`` (created if missing).

    The notebook is named for the data (``val.npz`` -> ``val.ipynb``). A notebook already there
    that loads the same data is kept as it is (the user may have edited it) and returned; one that
    loads something else, or was not written by labviz, is left alone and the next free name
    (``val-2.ipynb``, ...) is taken.

    Returns
    -------
    (pathlib.Path, bool)
        The notebook, and whether it was written now (False: an existing one is reopened).
    """
    import nbformat

    from labviz.core.files import atomic_write_bytes

    nb = explore_notebook(data_path)
    source = Path(nb.metadata["labviz"]["source"])
    name = source.name if source.is_dir() else source.stem
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name) or "predictions"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, 1000):
        path = folder / (f"{stem}.ipynb" if i == 1 else f"{stem}-{i}.ipynb")
        if not path.exists():
            atomic_write_bytes(path, nbformat.writes(nb).encode("utf-8"), mode=None)
            return path, True
        try:
            existing = nbformat.read(path, as_version=4)
        except Exception:  # not a notebook we can read: someone else's file, left alone
            continue
        if existing.metadata.get("labviz", {}).get("source") == nb.metadata["labviz"]["source"]:
            return path, False
    raise FileExistsError(f"{folder} holds 999 notebooks named {stem}-N.ipynb; pass another "
                          "folder with --notebooks.")


def _check_token(token: str) -> None:
    if not token or len(token) < 16:
        raise ValueError(f"`token` must be at least 16 characters; got {len(token or '')}.")


#: Kernels Voilà starts ahead and runs the app in (preheated), so that a visitor who comes while
#: one is free sees the app at once; a new one is started for each taken. Each holds a visitor's
#: app without torch (the training runs in the service's workers).
DEFAULT_POOL_SIZE = 4
#: Seconds after a preheated kernel is taken before Voilà starts its replacement: ten minutes, once
#: a class has come in. Voilà's own 1 s had ten students' replacements start with their first
#: runs, which then took 23 s from Train to views instead of 8 s (benchmarks/bench_class_load.py).
#: A visitor who finds the pool empty meanwhile gets a kernel started for them.
DEFAULT_REFILL_AFTER = 600.0
ALL_INTERFACES = "0.0.0.0"
#: Visitors' kernels talk to Voilà over Unix sockets, not TCP ports: a pool of 30 kernels started
#: at once over TCP lost one to a port that another took between being picked and being bound
#: ("Address already in use"), and the pool never filled. (No port on any interface, either.)
KERNEL_TRANSPORT = ("--KernelManager.transport=ipc",) if os.name == "posix" else ()

#: Lab extensions left off the app's pages. plotly's (4.8 MB of script, to render figures shown
#: as static output) has nothing to render there: the app's figures are widgets, which bring
#: plotly's module themselves. Every page fetched and ran it, before its first view.
PAGE_EXTENSIONS_OFF = ("jupyterlab-plotly",)


def app_command(notebook: Path, token: str, *, port: int = 8866, host: str = LOOPBACK,
                pool_size: int = 0, refill_after: float = DEFAULT_REFILL_AFTER) -> list[str]:
    """The Voilà command line that ``labviz app`` (``make app``) runs.

    Voilà executes ``notebook`` in a fresh kernel for each visitor and shows only its outputs (no
    code cells); with ``pool_size`` > 0 it keeps that many kernels with the notebook already run,
    and starts a new one ``refill_after`` seconds after one is taken. It runs through
    :mod:`labviz.servers.voila_pool`, so that a visitor who finds no ready kernel in the pool has one
    started at once, rather than waiting for a replacement's ``refill_after``. The server binds to
    ``host`` (loopback unless asked), requires ``token``, opens no browser and fails rather than
    moving to another port; its kernels use :data:`KERNEL_TRANSPORT`, and its pages load no
    extension of :data:`PAGE_EXTENSIONS_OFF`.
    """
    _check_token(token)
    if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 0:
        raise ValueError(f"`pool_size` must be an int >= 0; got {pool_size!r}.")
    if (isinstance(refill_after, bool) or not isinstance(refill_after, (int, float))
            or not 0 <= refill_after < math.inf):
        raise ValueError(f"`refill_after` must be a number of seconds >= 0; got {refill_after!r}.")
    preheat = ["--preheat_kernel=True", f"--pool_size={pool_size}",
               f"--VoilaKernelManager.fill_delay={float(refill_after)}"] if pool_size else []
    return [sys.executable, "-m", "labviz.servers.voila_pool", str(notebook), f"--Voila.ip={host}",
            f"--port={port}", "--Voila.port_retries=0", "--no-browser", f"--token={token}",
            "--strip_sources=True", "--theme=light", *KERNEL_TRANSPORT, *preheat,
            *(f"--VoilaConfiguration.extension_denylist={name}" for name in PAGE_EXTENSIONS_OFF)]


def default_board_path() -> Path:
    """Where ``labviz app`` keeps the class's board unless told: under the environment's prefix."""
    return Path(sys.prefix) / "var" / "labviz" / "class-board.sqlite"


def lan_address() -> str:
    """This machine's address on its local network (no packet is sent), or loopback."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # picks the interface a LAN packet would leave by
            return probe.getsockname()[0]
        except OSError:
            return LOOPBACK


def lan_warning(address: str) -> str:
    """What ``labviz app --lan`` prints before it serves."""
    return (f"WARNING: --lan: the app and the board listen on every network interface of this "
            f"machine; on the local network they are at {address}. Anyone who can reach this "
            "machine and has the students' URL can use the app and train on this machine; anyone "
            "with the teacher's URL can open the class's board and download every student's "
            "runs. Give the students only their URL, keep the teacher's, and stop the server "
            "(Ctrl-C) after class.")


def launch_app(notebook: Path, *, port: int = 8866, board_port: int = 8867, lan: bool = False,
               workers: int | None = None, pool_size: int = DEFAULT_POOL_SIZE,
               refill_after: float = DEFAULT_REFILL_AFTER, board_path: Path | None = None,
               timeout_s: float = 120) -> int:
    """Serve the classroom app for a class until it is stopped.

    Starts the class's training service (a Dask ``LocalCluster``: ``workers`` single-threaded
    processes, default one per core), its board (SQLite at ``board_path``, default
    :func:`default_board_path`; it survives restarts) with the teacher's page on ``board_port``,
    and Voilà on ``port`` with ``pool_size`` preheated kernels, whose apps train on the service
    and record to the board. Students and teacher get different tokens; both URLs are printed
    once the servers answer. Everything binds to loopback, unless ``lan`` (then a warning naming
    the address and what the tokens give is printed first); the training service always does.
    """
    from labviz.servers.board_server import BoardServer
    from labviz.classroom.class_board import ClassBoard
    from labviz.classroom.training_service import TrainingService
    from labviz.widgets import BOARD_ENV, SERVICE_ENV

    host = ALL_INTERFACES if lan else LOOPBACK
    shown_host = lan_address() if lan else LOOPBACK
    if lan:
        print(lan_warning(shown_host), file=sys.stderr, flush=True)
    student_token, teacher_token = secrets.token_hex(24), secrets.token_hex(24)
    board_path = default_board_path() if board_path is None else Path(board_path)
    print("Starting the class's training service ...", flush=True)
    with TrainingService(n_workers=workers) as service, \
            BoardServer(ClassBoard(board_path), teacher_token, host=host, port=board_port) as board:
        n = service.n_workers
        print(f"Training service: {n} worker process{'es' if n != 1 else ''} at {service.address}; "
              f"the class's board: {board_path}", flush=True)
        env = {**os.environ, SERVICE_ENV: service.address, BOARD_ENV: str(board_path)}
        base = f"http://{LOOPBACK}:{port}"
        # the login page answers without starting a kernel; the app's own page would run the notebook
        return _serve(app_command(notebook, student_token, port=port, host=host, pool_size=pool_size,
                                  refill_after=refill_after),
                      name="labviz classroom app", env=env,
                      urls={"Students": f"http://{shown_host}:{port}/?token={student_token}",
                            "Teacher's board": board.url(shown_host)},
                      log=log_path("voila", port),
                      ready=answers(f"{base}/login"), timeout_s=timeout_s)


def _serve(cmd: list[str], *, name: str, urls: dict[str, str], log: Path,
           ready: Callable[[], object], timeout_s: float, env: dict[str, str] | None = None) -> int:
    print(f"Starting {name} (log: {log}) ...", flush=True)
    try:
        proc = start_server(cmd, ready=ready, log=log, name=name, env=env, timeout_s=timeout_s)
    except ServerError as exc:
        print(exc, file=sys.stderr)
        return 1
    for label, url in urls.items():
        print(f"{label} on {url}", flush=True)
    print("Ctrl-C stops it.", flush=True)

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # the server has a session of its own, so a terminal's Ctrl-C or a SIGTERM reaches only us
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        stop_server(proc)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


# ----- running a server -------------------------------------------------------------------------
def answers(url: str) -> Callable[[], None]:
    """A readiness check for :func:`start_server`: ``url`` answers with a success status."""
    def check() -> None:
        with urllib.request.urlopen(url, timeout=5):
            pass
    return check


def log_tail(log: Path, n_chars: int = 3000) -> str:
    """The last ``n_chars`` characters of ``log``, or a note that it is missing."""
    try:
        return log.read_text(errors="replace")[-n_chars:]
    except OSError as exc:
        return f"(no log at {log}: {exc})"


def start_server(cmd: list[str], *, ready: Callable[[], object], log: Path, name: str,
                 cwd: Path | None = None, env: dict[str, str] | None = None,
                 timeout_s: float = 120) -> subprocess.Popen:
    """Start ``cmd`` in a process group of its own, logging to ``log``, and return it once
    ``ready()`` stops raising URL or connection errors.

    Raises :class:`ServerError` with the log's tail if the server exits or does not get there
    within ``timeout_s``; any other error from ``ready()`` (it answered wrongly) is re-raised. Either
    way the server is stopped first.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:  # the child keeps its own copy of the file descriptor
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            if proc.poll() is not None:
                raise ServerError(f"{name} exited with code {proc.returncode}; "
                                  f"the end of its log ({log}):\n{log_tail(log)}")
            try:
                ready()
                return proc
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise ServerError(f"{name} did not answer within {timeout_s:.0f} s; "
                                      f"the end of its log ({log}):\n{log_tail(log)}") from None
                time.sleep(0.25)
    except BaseException:
        stop_server(proc)
        raise


def stop_server(proc: subprocess.Popen) -> None:
    """Stop a server started by :func:`start_server` and everything it started."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
