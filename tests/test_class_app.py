"""The classroom app end to end: the class's board as a figure and behind the teacher's server,
students' trainers sharing one training service and one board, ``live``/``app`` wiring, and a
student who closes the tab while their run trains.

Real runs here are digits runs of 1 or 2 epochs (well under a second each on a warm worker); the
closed-tab test trains a stub (``SlowTrain``) on a service of its own.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import math
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

from test_training_service import fake_run  # noqa: E402

import labviz  # noqa: E402
from labviz.servers.board_server import PLOTLY_JS, BoardServer  # noqa: E402
from labviz.classroom.class_board import _ANONYMOUS, BOARD_COLUMNS, ClassBoard  # noqa: E402
from labviz.figures.class_board import board_figure  # noqa: E402
from labviz.classroom.live_training import LiveConfig, LiveRun, LiveSession  # noqa: E402
from labviz.classroom.training_service import ServiceSession, TrainingService  # noqa: E402
from labviz.widgets import BOARD_ENV, SERVICE_ENV  # noqa: E402
from labviz.widgets.trainer import LiveTrainer  # noqa: E402

WAIT_S = 60  # bound on any wait
TOKEN = "teacher-token-0123456789abcdef"
STUDENTS_TOKEN = "students-token-0123456789abcdef"
ROUTES = ("/", "/figure.json", "/runs.csv", "/plotly.min.js")


# ----- helpers -----------------------------------------------------------------------------------
def make_run(run_id: int = 1, *, accuracy: float = 0.9, ece: float = 0.05, nc1: float = 0.8,
             **knobs) -> LiveRun:
    """A finished run as the board sees it (config and measurements; no predictions)."""
    return LiveRun(run_id=run_id, config=LiveConfig(**knobs), predictions=None, accuracy=accuracy,
                   ece=ece, nc1=nc1, intra=1.2, inter=3.4, seconds=1.5, estimated_seconds=1.4)


def fill(board: ClassBoard) -> None:
    """Three runs by two students: CE (α 0), LS α 0.1 and LS α 0.3 (its NC1 is NaN)."""
    board.record("s1", make_run(1, loss="ce", accuracy=0.91, ece=0.02, nc1=0.5), run_key="k1",
                 finished_at=100.0)
    board.record("s2", make_run(1, loss="ls", alpha=0.1, accuracy=0.92, ece=0.04, nc1=0.4),
                 run_key="k2", finished_at=101.0)
    board.record("s1", make_run(2, loss="ls", alpha=0.3, accuracy=0.93, ece=0.08, nc1=math.nan),
                 run_key="k3", finished_at=102.0)


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(server: BoardServer, path: str, token: str | None = TOKEN):
    """(status, headers, body) of a GET on the server, a token in the query unless None."""
    query = "" if token is None else "?" + urllib.parse.urlencode({"token": token})
    try:
        with _NO_PROXY.open(f"http://127.0.0.1:{server.port}{path}{query}", timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def trace_values(values) -> np.ndarray:
    """A trace's x or y from plotly JSON: a list, or a base64 typed array."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
    return np.asarray(values, dtype=float)


def wait_until(predicate, what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def train_with(trainer: LiveTrainer, *, alpha: float, epochs: int = 2, name: str | None = None):
    """Set the knobs (and the name box), press Train; return the run id."""
    trainer.controls["loss"].value = "ls"
    trainer.controls["alpha"].value = alpha
    trainer.controls["epochs"].value = epochs
    if name is not None:
        trainer.controls["name"].value = name
    return trainer.train()


def finish(*trainers: LiveTrainer) -> None:
    for t in trainers:
        assert t.wait(WAIT_S), f"{t.student_id}'s run did not finish in {WAIT_S} s"
        assert t.error is None, t.error


def shows(widget, part) -> bool:
    """Whether ``part`` is ``widget`` or among its children, at any depth."""
    return widget is part or any(shows(child, part) for child in getattr(widget, "children", ()))


# ----- the board as a figure ----------------------------------------------------------------------
@pytest.mark.unit
def test_empty_board_figure_has_axes_no_points_and_says_none_yet():
    fig = board_figure(ClassBoard(":memory:").runs())
    assert len(fig.data) == 0
    assert fig.layout.title.text == "The class's runs: none yet (each finished run appears here)"
    assert [fig.layout[f"xaxis{i}"].title.text for i in ("", "2", "3")] == ["α"] * 3


@pytest.mark.unit
def test_board_figure_has_one_trace_per_loss_per_panel():
    board = ClassBoard(":memory:")
    fill(board)
    runs = board.runs()
    fig = board_figure(runs)
    assert fig.layout.title.text == "The class's runs: 3 by 2 students"
    assert len(fig.data) == 6  # CE and LS, three panels each
    assert [t.name for t in fig.data] == ["CE"] * 3 + ["LS"] * 3
    assert [t.showlegend for t in fig.data] == [True, False, False] * 2
    assert [t.xaxis for t in fig.data] == ["x", "x2", "x3"] * 2
    for trace, column in zip(fig.data, ("ece", "accuracy", "nc1") * 2):
        rows = runs[runs["loss"] == trace.legendgroup]
        np.testing.assert_array_equal(np.asarray(trace.x, dtype=float), rows["alpha"].to_numpy())
        np.testing.assert_array_equal(np.asarray(trace.y, dtype=float),
                                      rows[column].to_numpy(dtype=float))
    ls_nc1 = fig.data[5]
    assert list(ls_nc1.x) == [0.1, 0.3] and ls_nc1.y[0] == 0.4 and math.isnan(ls_nc1.y[1])
    assert ls_nc1.text[1] == f"{runs['name'].iloc[2]}: LS on digits, 30 epochs, noise 0%, seed 0"

    one = board_figure(runs[runs["student_id"] == "s2"])
    assert one.layout.title.text == "The class's runs: 1 by 1 student" and len(one.data) == 3
    assert board_figure(runs, title="α sweep").layout.title.text == "α sweep"


@pytest.mark.unit
def test_board_figure_names_missing_columns():
    runs = ClassBoard(":memory:").runs().drop(columns=["ece", "seed"])
    with pytest.raises(ValueError, match=r"missing \['ece', 'seed'\]"):
        board_figure(runs)


# ----- the teacher's server ------------------------------------------------------------------------
@pytest.fixture
def served(tmp_path):
    board = ClassBoard(tmp_path / "board.sqlite")
    fill(board)
    with BoardServer(board, TOKEN) as server:
        yield board, server


def test_board_server_serves_the_page_figure_csv_and_plotly(served):
    board, server = served
    assert server.host == "127.0.0.1" and server.port > 0
    assert server.url() == f"http://127.0.0.1:{server.port}/?token={TOKEN}"

    status, headers, body = fetch(server, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert f'<script src="plotly.min.js?token={TOKEN}"></script>' in body.decode()

    status, headers, body = fetch(server, "/figure.json")
    assert status == 200 and headers["Content-Type"] == "application/json"
    figure = json.loads(body)
    alphas = sorted(float(a) for t in figure["data"] if t["xaxis"] == "x"
                    for a in trace_values(t["x"]))
    assert alphas == [0.0, 0.1, 0.3]
    assert figure["layout"]["title"]["text"] == "The class's runs: 3 by 2 students"

    status, headers, body = fetch(server, "/runs.csv")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert headers["Content-Disposition"] == 'attachment; filename="class-runs.csv"'
    assert body.decode() == board.to_csv()
    assert pd.read_csv(io.StringIO(body.decode()))["run_key"].tolist() == ["k1", "k2", "k3"]

    status, headers, body = fetch(server, "/plotly.min.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert body == PLOTLY_JS.read_bytes() and b"plotly" in body[:500].lower()

    # a run that finishes now is in the next poll's figure
    board.record("s3", make_run(1, loss="maxsup", alpha=0.2), run_key="k4")
    figure = json.loads(fetch(server, "/figure.json")[2])
    assert sorted(float(a) for t in figure["data"] if t["xaxis"] == "x"
                  for a in trace_values(t["x"])) == [0.0, 0.1, 0.2, 0.3]
    assert figure["layout"]["title"]["text"] == "The class's runs: 4 by 3 students"


def test_board_server_refuses_without_the_teachers_token(served):
    _, server = served
    wrong = TOKEN[:-1] + ("0" if TOKEN[-1] != "0" else "1")
    for path in (*ROUTES, "/nope"):
        for token in (wrong, None, STUDENTS_TOKEN, "", TOKEN[:-1], TOKEN + "x"):
            status, _, body = fetch(server, path, token)
            assert status == 403, (path, token, status)
            assert b"teacher's token" in body and b"<script" not in body
    status, _, body = fetch(server, "/nope")
    assert status == 404 and body == b"Not found.\n"
    status, _, _ = fetch(server, "/runs.csv/../")  # not a route either
    assert status == 404


def test_board_server_refuses_bad_arguments(tmp_path):
    board = ClassBoard(tmp_path / "board.sqlite")
    with pytest.raises(ValueError, match="`token` must be at least 16 letters, .*; got a str of 15 "
                                         "characters"):
        BoardServer(board, "x" * 15)
    # a token must go in URLs as it is
    with pytest.raises(ValueError, match="`token` must be at least 16 .*; got a str of 24"):
        BoardServer(board, "teacher+token&0123456789")
    with pytest.raises(ValueError, match="`token` must be at least 16 .*; got an int"):
        BoardServer(board, 1234567890123456789)
    with pytest.raises(TypeError, match="`board` must be a ClassBoard; got str"):
        BoardServer(str(tmp_path / "board.sqlite"), TOKEN)


def test_board_survives_a_restart_of_board_and_server(tmp_path):
    path = tmp_path / "class" / "board.sqlite"
    board = ClassBoard(path)
    fill(board)
    board.join("s1", name="Ada")
    server = BoardServer(board, TOKEN)
    port = server.port
    status, _, before = fetch(server, "/runs.csv")
    assert status == 200
    server.close()
    del board, server

    with BoardServer(ClassBoard(path), TOKEN, port=port) as again:  # the teacher's URL still holds
        status, _, after = fetch(again, "/runs.csv")
    assert status == 200 and after == before
    table = pd.read_csv(io.StringIO(after.decode()))
    assert list(table.columns) == list(BOARD_COLUMNS)
    assert table["run_key"].tolist() == ["k1", "k2", "k3"]
    assert table.loc[table["student_id"] == "s1", "name"].tolist() == ["Ada", "Ada"]


# ----- students on one service and one board ------------------------------------------------------
@pytest.fixture(scope="module")
def service():
    """One worker process training the real ``train_live``, as in class."""
    svc = TrainingService(n_workers=1, warm=False)
    try:
        yield svc
    finally:
        svc.close()


#: A visitor's kernel on the service: the app's trainer, its time estimate and one run, then
#: whether torch was imported (the workers train and time; the visitor only submits and draws).
VISITOR_TORCH = """
import sys
import labviz
from labviz.classroom.live_training import LiveConfig
trainer = labviz.live(service=sys.argv[1])
estimate = trainer.session.estimate_seconds(LiveConfig(epochs=2))
trainer.controls["epochs"].value = 2
trainer.train()
assert trainer.wait(120) and trainer.shown is not None, trainer.status
print(estimate > 0, "torch" in sys.modules)
trainer.session._service.close()
"""


def test_a_visitor_on_the_service_never_imports_torch(service):
    done = subprocess.run([sys.executable, "-c", VISITOR_TORCH, service.address], text=True,
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == ["True", "False"], done.stdout
    # and the estimate is the workers' timing, kept on the scheduler for the next visitor
    assert service.client.get_dataset("labviz-seconds-per-image-cnn-8", default=None) > 0


@pytest.fixture
def students(service, tmp_path):
    board = ClassBoard(tmp_path / "board.sqlite")
    a, b = (LiveTrainer(service=service, board=board, student_id=f"student-{x}") for x in "ab")
    try:
        yield board, a, b
    finally:
        for t in (a, b):
            t.session.close()


def test_two_students_share_one_service_and_one_board(students):
    board, a, b = students
    assert isinstance(a.session, ServiceSession) and a.session is not b.session
    assert shows(a.widget, a.controls["name"])  # the name box is shown
    train_with(a, alpha=0.2)
    train_with(b, alpha=0.3)  # waits behind A's run on the one worker
    finish(a, b)

    runs = board.runs()
    assert len(runs) == 2 and sorted(runs["student_id"]) == ["student-a", "student-b"]
    names = dict(zip(runs["student_id"], runs["name"]))
    assert names["student-a"] != names["student-b"]
    assert all(_ANONYMOUS.fullmatch(n) for n in names.values())
    assert (a.board_name, b.board_name) == (names["student-a"], names["student-b"])
    assert sorted(runs["run_key"]) == ["student-a-1", "student-b-1"]
    assert dict(zip(runs["student_id"], runs["alpha"])) == {"student-a": 0.2, "student-b": 0.3}
    # each session holds its own run only
    assert [(r.run_id, r.config.alpha) for r in a.session.runs] == [(1, 0.2)]
    assert [(r.run_id, r.config.alpha) for r in b.session.runs] == [(1, 0.3)]
    assert html.unescape(a.board_html.value).endswith(
        f"On the class's board as {names['student-a']}: 1 run.</div>")

    # A picks a name: every run of A's shows it
    train_with(a, alpha=0.1, name="Ada")
    finish(a)
    runs = board.runs()
    assert len(runs) == 3 and a.board_name == "Ada"
    assert runs.loc[runs["student_id"] == "student-a", "name"].tolist() == ["Ada", "Ada"]
    assert runs.loc[runs["student_id"] == "student-b", "name"].tolist() == [names["student-b"]]
    assert "On the class's board as Ada: 2 runs." in html.unescape(a.board_html.value)

    # B asks for the same name in other letters: taken, so B's run goes on under B's name
    train_with(b, alpha=0.4, name="ada")
    finish(b)
    runs = board.runs()
    assert len(runs) == 4 and b.board_name == names["student-b"]
    assert runs.loc[runs["student_id"] == "student-b", "name"].tolist() == [names["student-b"]] * 2
    assert runs.loc[runs["student_id"] == "student-a", "name"].tolist() == ["Ada", "Ada"]
    note = html.unescape(b.board_html.value)
    assert f"On the class's board as {names['student-b']}: 2 runs." in note
    assert "`name` must be free in the class; got 'ada', which another student uses." in note
    assert "#9a5b00" in b.board_html.value  # shown as a warning
    assert b.session.runs[-1].config.alpha == 0.4 and len(b.session.runs) == 2

    keys = runs["run_key"].tolist()
    assert sorted(keys) == ["student-a-1", "student-a-2", "student-b-1", "student-b-2"]
    assert len(set(keys)) == len(keys)
    assert board_figure(runs).layout.title.text == "The class's runs: 4 by 2 students"


def test_live_builds_a_trainer_on_a_service_address_and_a_board_path(service, tmp_path):
    path = tmp_path / "class" / "board.sqlite"
    trainer = labviz.live(service=service.address, board=str(path))
    try:
        assert isinstance(trainer.session, ServiceSession)
        assert trainer.session._service is not service  # its own client to the same scheduler
        assert trainer.session._service.address == service.address
        assert isinstance(trainer.board, ClassBoard) and trainer.board.path == path
        train_with(trainer, alpha=0.25, epochs=1)
        finish(trainer)
    finally:
        trainer.session._service.close()
    runs = ClassBoard(path).runs()  # another connection to the same file
    assert runs["run_key"].tolist() == [f"{trainer.student_id}-1"] and runs["alpha"].tolist() == [0.25]


def test_app_trains_on_the_service_and_board_its_environment_names(service, tmp_path, monkeypatch):
    path = tmp_path / "board.sqlite"
    monkeypatch.setenv(SERVICE_ENV, service.address)
    monkeypatch.setenv(BOARD_ENV, str(path))
    page = labviz.app()
    try:
        trainer = page.trainer
        assert isinstance(trainer.session, ServiceSession)
        assert trainer.session._service.address == service.address
        assert isinstance(trainer.board, ClassBoard) and trainer.board.path == path
        assert shows(page, trainer.controls["name"])
        page.children[1].selected_index = 1  # the explorer's tab
        assert page.explorer.predictions[0].name == "digits-ce-s0 [test]"
    finally:
        page.trainer.session._service.close()
    assert path.exists()

    monkeypatch.delenv(SERVICE_ENV)
    monkeypatch.delenv(BOARD_ENV)
    page = labviz.app()
    assert isinstance(page.trainer.session, LiveSession) and page.trainer.board is None
    assert not shows(page, page.trainer.controls["name"])
    assert "board" not in page.trainer.board_html.value  # no invitation to a board there is not


# ----- a student closes the tab while their run trains -------------------------------------------
@dataclasses.dataclass(frozen=True)
class SlowTrain:
    """``train_live``'s signature: ``config.epochs`` batches of ``batch_s`` each, then a fake run.
    Importable (this module) by the workers and by the visitor's process."""

    batch_s: float = 0.02

    def __call__(self, config, *, run_id, on_batch=None, stop=None):
        start = time.perf_counter()
        for done in range(1, config.epochs + 1):
            if stop is not None and stop.is_set():
                raise RuntimeError("stopped")
            time.sleep(self.batch_s)
            if on_batch is not None:
                on_batch(done, config.epochs)
        return fake_run(config, run_id, time.perf_counter() - start)


#: A visitor's kernel: submits a long run, says when it trains, then waits to be killed.
VISITOR = """
import sys, threading
sys.path.insert(0, sys.argv[2])
from test_class_app import SlowTrain
from labviz.classroom.live_training import LiveConfig
from labviz.classroom.training_service import TrainingService
service = TrainingService(sys.argv[1], train=SlowTrain())
started = threading.Event()
session = service.session(on_batch=lambda run_id, done, total: started.set())
session.submit(LiveConfig(epochs=int(sys.argv[3])))
assert started.wait(60), "the run never started"
print(session._token, service.client.id, flush=True)
threading.Event().wait()
"""


@pytest.fixture
def stub_service():
    svc = TrainingService(n_workers=1, train=SlowTrain(), warm=False, progress_step=0.1)
    try:
        yield svc
    finally:
        svc.close()


def scheduler_state(service: TrainingService) -> tuple[list[str], list[str]]:
    """The scheduler's task keys and client ids."""
    return service.client.run_on_scheduler(lambda dask_scheduler: (
        [str(k) for k in dask_scheduler.tasks], list(dask_scheduler.clients)))


def test_a_visitor_killed_mid_run_does_not_block_the_class(stub_service):
    service = stub_service
    ends: queue.SimpleQueue = queue.SimpleQueue()
    other = service.session(on_done=lambda run: ends.put(("done", run.run_id, run.config.seed)),
                            on_cancel=lambda i: ends.put(("cancel", i)),
                            on_error=lambda i, exc: ends.put(("error", i, exc)))
    visitor = subprocess.Popen(
        [sys.executable, "-c", VISITOR, service.address, str(Path(__file__).parent), "200"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # 200 batches: 4 s
    lines: queue.SimpleQueue = queue.SimpleQueue()
    threading.Thread(target=lambda: lines.put(visitor.stdout.readline()), daemon=True).start()
    try:
        try:
            line = lines.get(timeout=WAIT_S)
        except queue.Empty:
            pytest.fail("the visitor's run did not start")
        if not line:  # the visitor ended before its run started
            visitor.wait(10)
            pytest.fail(f"the visitor exited with {visitor.returncode}: {visitor.stderr.read()}")
        token, client_id = line.split()
        tasks, clients = scheduler_state(service)
        assert [k for k in tasks if k.startswith(token)] == [f"{token}-1"] and client_id in clients

        other.submit(LiveConfig(epochs=10, seed=5))  # queued behind the visitor's run
        wait_until(lambda: len(scheduler_state(service)[0]) == 2, "the other run in the queue")
        killed_at = time.monotonic()
        visitor.send_signal(signal.SIGKILL)  # the tab closes: its kernel is gone, no goodbye
        assert visitor.wait(10) == -signal.SIGKILL
    finally:
        if visitor.poll() is None:
            visitor.kill()
            visitor.wait(10)
        visitor.stdout.close()
        visitor.stderr.close()

    try:
        # the scheduler forgets the dead client and its run
        wait_until(lambda: client_id not in scheduler_state(service)[1], "the client to go")
        wait_until(lambda: not any(k.startswith(token) for k in scheduler_state(service)[0]),
                   "the dead visitor's run to go")
        assert ends.get(timeout=WAIT_S) == ("done", 1, 5)  # the queued run trains and finishes
        waited = time.monotonic() - killed_at
        # the worker dropped the orphaned run at its next batch: it did not train its 4 s out
        assert waited < 2.5, waited
        assert other.wait(WAIT_S)
        other.submit(LiveConfig(epochs=5, seed=6))  # and so does a new one
        assert ends.get(timeout=WAIT_S) == ("done", 2, 6)
        assert other.wait(WAIT_S) and [r.run_id for r in other.runs] == [1, 2]
        wait_until(lambda: scheduler_state(service)[0] == [], "no task left on the scheduler")
        assert service.n_workers == 1  # the worker was never harmed
        assert ends.empty()
        print(f"the queued run finished {waited:.1f} s after the visitor was killed")
    finally:
        other.close()
