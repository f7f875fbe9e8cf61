"""labviz.classroom.class_board: one row per run, idempotent, atomic across crashes and concurrent writers."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest

from labviz.classroom.class_board import ANIMALS, BOARD_COLUMNS, ClassBoard
from labviz.classroom.live_training import LiveConfig, LiveRun

WRITER = """
import sys
from labviz.classroom.class_board import ClassBoard
from labviz.classroom.live_training import LiveConfig, LiveRun
board = ClassBoard(sys.argv[1])
for i in range(int(sys.argv[3])):
    run = LiveRun(run_id=i + 1, config=LiveConfig(seed=i), predictions=None, accuracy=0.9, ece=0.05,
                  nc1=1.0, intra=1.0, inter=2.0, seconds=1.0, estimated_seconds=1.0)
    board.record(f"{sys.argv[2]}-{i % 3}", run, run_key=f"{sys.argv[2]}-run-{i}")
"""


def make_run(run_id: int = 1, *, accuracy: float = 0.9, seconds: float = 1.5, **knobs) -> LiveRun:
    """A finished run as the board sees it (the board reads the config and the measurements)."""
    return LiveRun(run_id=run_id, config=LiveConfig(**knobs), predictions=None, accuracy=accuracy,
                   ece=0.05, nc1=0.8, intra=1.2, inter=3.4, seconds=seconds, estimated_seconds=1.4)


@pytest.fixture
def board(tmp_path):
    return ClassBoard(tmp_path / "class" / "board.sqlite")


def test_a_run_becomes_one_row_with_its_knobs_and_results(board):
    run = make_run(loss="ls", alpha=0.1, noise_rate=0.2, epochs=20, seed=3)
    assert board.record("s1", run, run_key="k1", finished_at=1_800_000_000.25) is True
    table = board.runs()
    assert list(table.columns) == list(BOARD_COLUMNS) and len(table) == 1
    row = table.iloc[0]
    assert (row.run_key, row.student_id, row.dataset, row.loss) == ("k1", "s1", "digits", "ls")
    assert (row.alpha, row.noise, row.epochs, row.seed) == (0.1, 0.2, 20, 3)
    assert pd.isna(row.teacher) and pd.isna(row.n_train)  # not KD, not Fashion-MNIST
    assert (row.accuracy, row.ece, row.nc1, row.intra, row.inter, row.seconds) == (
        0.9, 0.05, 0.8, 1.2, 3.4, 1.5)
    assert row.finished_at == pd.Timestamp("2027-01-15T08:00:00.25Z")
    kd = make_run(2, loss="kd", teacher="ls", dataset="fashion-mnist", n_train=1000)
    board.record("s1", kd, run_key="k2", finished_at=1_800_000_001)
    assert board.runs().iloc[1][["teacher", "n_train"]].tolist() == ["ls", 1000]


def test_recording_the_same_run_twice_keeps_one_row(board):
    run = make_run()
    assert board.record("s1", run, run_key="abc") is True
    assert board.record("s1", run, run_key="abc") is False
    assert board.record("s1", make_run(accuracy=0.1), run_key="abc") is False  # the key decides
    # without a key, the run's content is its key: the same run once, another run again
    assert board.record("s2", run) is True and board.record("s2", run) is False
    assert board.record("s2", make_run(seconds=1.6)) is True
    assert board.runs()["student_id"].tolist() == ["s1", "s2", "s2"]
    assert board.runs()["accuracy"].iloc[0] == 0.9


def test_nan_measurements_come_back_as_nan(board):
    board.record("s1", make_run(accuracy=float("nan")), run_key="k")
    assert np.isnan(board.runs()["accuracy"].iloc[0])


def test_the_board_survives_a_reopen(board):
    for i in range(3):
        board.record(f"s{i % 2}", make_run(i + 1, seed=i), run_key=f"k{i}", finished_at=100.0 + i)
    board.join("s0", name="Ada")
    again = ClassBoard(board.path)
    pd.testing.assert_frame_equal(again.runs(), board.runs())
    assert again.runs()["name"].tolist()[::2] == ["Ada", "Ada"]
    assert again.join("s0") == "Ada"  # a known student keeps their name


@pytest.mark.service
def test_a_writer_killed_mid_transaction_leaves_nothing_half_written(board):
    board.record("s1", make_run(), run_key="kept")
    code = ("import os, signal, sys\n"
            "from labviz.classroom.class_board import ClassBoard\n"
            "board = ClassBoard(sys.argv[1])\n"
            "with board._transaction() as db:\n"
            "    db.execute(\"INSERT INTO students VALUES ('s9', 'Zed', 1)\")\n"
            "    db.execute(\"DELETE FROM runs\")\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    result = subprocess.run([sys.executable, "-c", code, str(board.path)], timeout=60)
    assert result.returncode == -9
    reopened = ClassBoard(board.path)
    assert reopened.runs()["run_key"].tolist() == ["kept"]
    assert reopened.join("s9") != "Zed"  # s9 was never written: it joins now, anonymously


@pytest.mark.service
def test_concurrent_writers_from_threads_and_processes_lose_nothing(board):
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(board.path), f"p{k}", "25"])
               for k in range(2)]

    def record_many(t: int) -> None:
        for i in range(25):
            board.record(f"t{t}-{i % 3}", make_run(i + 1, seed=i), run_key=f"t{t}-run-{i}")

    threads = [threading.Thread(target=record_many, args=(t,)) for t in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [w.wait(60) for w in writers] == [0, 0]
    table = board.runs()
    assert len(table) == 5 * 25 and table["run_key"].is_unique
    names = table.drop_duplicates("student_id")["name"]
    assert len(names) == 5 * 3 and names.str.lower().is_unique  # 15 students, 15 names


# ----- names -----------------------------------------------------------------------------------
def test_students_are_anonymous_unless_they_choose_a_name(board):
    name = board.join("s1")
    animal, number = name.split("-")
    assert animal in ANIMALS and number == "1"
    assert board.join("s1") == name
    # two students with the same animal get the next free number
    twin = next(f"x{i}" for i in range(1000) if f"x{i}" != "s1" and
                ANIMALS[int.from_bytes(hashlib.sha256(f"x{i}".encode()).digest()[:4], "big")
                        % len(ANIMALS)] == animal)
    assert board.join(twin) == f"{animal}-2"
    assert board.join("s1", name="Ada Lovelace") == "Ada Lovelace"
    assert board.join("s3") is not None
    board.record("s1", make_run(), run_key="k")
    assert board.runs()["name"].tolist() == ["Ada Lovelace"]


@pytest.mark.parametrize("name, error, message", [
    ("", ValueError, "`name` must be 1 to 24 letters"),
    (" Ada", ValueError, "`name` must be 1 to 24 letters, digits, spaces, '-', '_' or '.', starting "
                        "with a letter or digit; got ' Ada'."),
    ("Ada ", ValueError, "`name` must be 1 to 24 letters"),
    ("x" * 25, ValueError, "`name` must be 1 to 24 letters"),
    ("<b>Ada</b>", ValueError, "`name` must be 1 to 24 letters"),
    ("Otter-3", ValueError, r"`name` must not look like an anonymous name \(animal-number\); got 'Otter-3'."),
    (7, TypeError, "`name` must be a str; got int."),
])
def test_chosen_names_are_checked(board, name, error, message):
    with pytest.raises(error, match=message):
        board.join("s1", name=name)
    assert board.runs().empty


def test_a_chosen_name_must_be_free(board):
    board.join("s1", name="Zoë")
    assert board.join("s1", name="Zoë") == "Zoë"  # one's own name again is fine
    with pytest.raises(ValueError, match="`name` must be free in the class; got 'zoë', which another"):
        board.join("s2", name="zoë")


# ----- reading ---------------------------------------------------------------------------------
def test_a_student_sees_only_their_own_runs(board):
    for i, student in enumerate(["s1", "s2", "s1", "s3"]):
        board.record(student, make_run(i + 1, seed=i), run_key=f"k{i}", finished_at=10.0 + i)
    mine = board.student_runs("s1")
    assert mine["run_key"].tolist() == ["k0", "k2"] and set(mine["student_id"]) == {"s1"}
    nobody = board.student_runs("s9")
    assert nobody.empty and list(nobody.columns) == list(BOARD_COLUMNS)
    assert nobody.dtypes.to_dict() == mine.dtypes.to_dict()  # fixed types, rows or none


def test_csv_export_as_text_and_to_a_file(board, tmp_path):
    board.record("s1", make_run(loss="ls", alpha=0.1), run_key="k1", finished_at=1_800_000_000.5)
    board.record("s2", make_run(2), run_key="k2", finished_at=1_800_000_060)
    text = board.to_csv()
    assert text.splitlines()[0] == ",".join(BOARD_COLUMNS)
    assert re.search(r",2027-01-15T08:00:00\.500000Z$", text.splitlines()[1])
    back = pd.read_csv(io.StringIO(text))
    assert back["run_key"].tolist() == ["k1", "k2"] and back["alpha"].tolist() == [0.1, 0.0]
    path = tmp_path / "export" / "board.csv"
    assert board.to_csv(path) == text and path.read_text() == text


# ----- validation --------------------------------------------------------------------------------
@pytest.mark.parametrize("call, error, message", [
    (lambda b: b.record("s1", {"accuracy": 0.9}), TypeError, "`run` must be a LiveRun; got dict."),
    (lambda b: b.record(17, make_run()), TypeError, "`student_id` must be a str; got int."),
    (lambda b: b.record("", make_run()), ValueError, "`student_id` must be 1 to 128 characters"),
    (lambda b: b.record("s1", make_run(), run_key=" k"), ValueError,
     "`run_key` must be 1 to 128 characters without surrounding spaces; got ' k'."),
    (lambda b: b.record("s1", make_run(), finished_at="now"), TypeError, "`finished_at` must be a real"),
    (lambda b: b.student_runs(None), TypeError, "`student_id` must be a str; got NoneType."),
    (lambda b: b.to_csv(3), TypeError, "`path` must be a str, path-like or None; got int."),
])
def test_bad_arguments_are_refused(board, call, error, message):
    with pytest.raises(error, match=message):
        call(board)
    assert board.runs().empty


def test_board_refuses_bad_construction(tmp_path):
    with pytest.raises(TypeError, match="`path` must be a str or path-like; got int."):
        ClassBoard(3)
    with pytest.raises(ValueError, match="`timeout` must be > 0; got 0"):
        ClassBoard(tmp_path / "b.sqlite", timeout=0)
