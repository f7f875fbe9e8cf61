"""The class's board: every finished live run of every student, in one SQLite file.

One row per run: who ran it (a student id and a display name), its knobs (dataset, loss, α, teacher,
noise, epochs, seed, training images), its measurements (accuracy, ECE, NC1, intra, inter, seconds),
when it finished, and a unique run key. Recording a run whose key is on the board already changes
nothing, so a retried write or a reloaded page never makes a duplicate.

Every write is one SQLite transaction in WAL mode: a crash, a reload or a restart keeps either the
whole row or none of it, and kernels (threads or processes) can write at the same time, each waiting
its turn. Students are anonymous by default ("otter-3"); a chosen name is checked first
(:data:`NAME_PATTERN`) and must be free. The board reads as a pandas DataFrame (all runs, or one
student's own) and exports CSV.

>>> board = ClassBoard(":memory:")
>>> board.join("s-17")
'gecko-1'
>>> board.join("s-17", name="Ada")
'Ada'
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from labviz.core import _validation as v
from labviz.classroom.live_training import LiveRun

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BOARD_COLUMNS", "ClassBoard"]

#: Columns of :meth:`ClassBoard.runs`, in order. ``teacher`` is set for KD runs only, ``n_train``
#: for Fashion-MNIST runs only; ``finished_at`` is a UTC timestamp.
BOARD_COLUMNS = ("run_key", "student_id", "name", "dataset", "loss", "alpha", "teacher", "noise",
                 "epochs", "seed", "n_train", "accuracy", "ece", "nc1", "intra", "inter", "seconds",
                 "finished_at")
#: Anonymous names are one of these and a number: "otter-3".
ANIMALS = ("otter", "heron", "lynx", "badger", "falcon", "gecko", "ibis", "koala", "lemur", "marten",
           "newt", "orca", "panda", "quail", "raven", "seal", "tapir", "vole", "wombat", "yak")
#: A chosen name: 1 to 24 letters, digits, spaces, "-", "_" or ".", starting with a letter or digit.
NAME_PATTERN = re.compile(r"[^\W_][\w .-]{0,23}")
_ANONYMOUS = re.compile(rf"(?:{'|'.join(ANIMALS)})-\d+", re.IGNORECASE)
MAX_ID_LENGTH = 128

_SCHEMA = """
CREATE TABLE IF NOT EXISTS students (
    student_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    chosen INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_key TEXT PRIMARY KEY,
    student_id TEXT NOT NULL REFERENCES students (student_id),
    dataset TEXT NOT NULL, loss TEXT NOT NULL, alpha REAL NOT NULL, teacher TEXT,
    noise REAL NOT NULL, epochs INTEGER NOT NULL, seed INTEGER NOT NULL, n_train INTEGER,
    -- measurements may be NaN (e.g. NC1 of a collapsed run), which SQLite stores as NULL
    accuracy REAL, ece REAL, nc1 REAL, intra REAL, inter REAL, seconds REAL NOT NULL,
    finished_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_student ON runs (student_id);
"""
#: The same dtypes whatever the rows (an empty board too); ``n_train`` is missing for digits.
_DTYPES = {**dict.fromkeys(("run_key", "student_id", "name", "dataset", "loss", "teacher"), "str"),
           **dict.fromkeys(("alpha", "noise", "accuracy", "ece", "nc1", "intra", "inter", "seconds"),
                           "float64"),
           "epochs": "int64", "seed": "int64", "n_train": "Int64", "finished_at": "datetime64[us, UTC]"}
_RUN_FIELDS = BOARD_COLUMNS[3:]  # what a runs row holds beside its key, student and name


class ClassBoard:
    """The class's runs in a SQLite file; safe to use from several threads and processes.

    Every call opens its own connection, so one board object can serve every kernel thread, and any
    number of processes may open the same file.

    Parameters
    ----------
    path : str or path-like
        The database file, created with its folder if missing; ``":memory:"`` for a board that lives
        only as long as this object (tests, doctests).
    timeout : float, default 10
        Seconds a write waits for another writer to finish before it raises
        ``sqlite3.OperationalError``.
    """

    def __init__(self, path: str | os.PathLike, *, timeout: float = 10.0) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"`path` must be a str or path-like; got {type(path).__name__}.")
        self.timeout = v.check_float(timeout, "timeout")
        if self.timeout <= 0:
            raise ValueError(f"`timeout` must be > 0; got {timeout!r}.")
        self._memory: sqlite3.Connection | None = None
        self._memory_lock = threading.Lock()
        if str(path) == ":memory:":
            self.path: Path | str = ":memory:"
            self._memory = self._open()  # one connection holds the whole board
        else:
            self.path = Path(path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            if self._memory is None:
                db.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            db.executescript(_SCHEMA)

    def __repr__(self) -> str:
        return f"ClassBoard({str(self.path)!r})"

    # ----- connections --------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are the explicit BEGIN IMMEDIATE of _transaction.
        db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None,
                             check_same_thread=self.path != ":memory:")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if self._memory is not None:
            with self._memory_lock:  # one connection: one transaction at a time
                yield self._memory
            return
        db = self._open()
        try:
            yield db
        finally:
            db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write. IMMEDIATE takes the write lock first, so what it reads (free names,
        existing keys) still holds when it writes."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # ----- writing ------------------------------------------------------------------------------
    def join(self, student_id: str, *, name: str | None = None) -> str:
        """Put a student on the board (or change their name); return their display name.

        Parameters
        ----------
        student_id : str
            Any stable id of the student's browser or login; never shown to others.
        name : str, optional
            A chosen display name (:data:`NAME_PATTERN`, free in the class, not an anonymous-looking
            "animal-number"). Without it a new student gets an anonymous name, and a known one keeps
            theirs.

        Returns
        -------
        str
        """
        student_id = _check_id(student_id, "student_id")
        if name is not None:
            name = _check_name(name)
        with self._transaction() as db:
            row = db.execute("SELECT name FROM students WHERE student_id = ?", (student_id,)).fetchone()
            if name is None:
                if row is not None:
                    return row[0]
                name, chosen = _free_anonymous_name(db, student_id), 0
            else:
                chosen = 1
                owner = db.execute("SELECT student_id FROM students WHERE name = ?", (name,)).fetchone()
                if owner is not None and owner[0] != student_id:
                    raise ValueError(f"`name` must be free in the class; got {name!r}, which "
                                     "another student uses.")
            db.execute("INSERT INTO students (student_id, name, chosen) VALUES (?, ?, ?) "
                       "ON CONFLICT (student_id) DO UPDATE SET name = excluded.name, chosen = 1",
                       (student_id, name, chosen))
        return name

    def record(self, student_id: str, run: LiveRun, *, run_key: str | None = None,
               finished_at: float | None = None) -> bool:
        """Add a finished run to the board, once.

        Parameters
        ----------
        student_id : str
            Whose run it is; a student not on the board yet joins with an anonymous name.
        run : LiveRun
        run_key : str, optional
            The run's unique key (e.g. the training service's task key). By default a hash of the
            student id and everything the run holds (config, measurements, its run id and seconds).
        finished_at : float, optional
            Unix time the run finished; default now.

        Returns
        -------
        bool
            True if the row was added, False if a run with this key was on the board already.
        """
        student_id = _check_id(student_id, "student_id")
        if not isinstance(run, LiveRun):
            raise TypeError(f"`run` must be a LiveRun; got {type(run).__name__}.")
        row = _run_row(run)
        key = _default_key(student_id, run, row) if run_key is None else _check_id(run_key, "run_key")
        when = time.time() if finished_at is None else v.check_float(finished_at, "finished_at")
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM students WHERE student_id = ?", (student_id,)).fetchone() is None:
                db.execute("INSERT INTO students (student_id, name, chosen) VALUES (?, ?, 0)",
                           (student_id, _free_anonymous_name(db, student_id)))
            cursor = db.execute(
                f"INSERT INTO runs (run_key, student_id, {', '.join(_RUN_FIELDS)}) "
                f"VALUES ({', '.join('?' * (len(_RUN_FIELDS) + 2))}) ON CONFLICT (run_key) DO NOTHING",
                (key, student_id, *[row[f] for f in _RUN_FIELDS[:-1]], when))
            return cursor.rowcount == 1

    # ----- reading ------------------------------------------------------------------------------
    def runs(self) -> pd.DataFrame:
        """Every run on the board, one row each (columns :data:`BOARD_COLUMNS`), oldest first."""
        return self._frame("", ())

    def student_runs(self, student_id: str) -> pd.DataFrame:
        """One student's own runs (columns :data:`BOARD_COLUMNS`), oldest first; empty if none."""
        return self._frame("WHERE r.student_id = ?", (_check_id(student_id, "student_id"),))

    def to_csv(self, path: str | os.PathLike | None = None) -> str:
        """The whole board as CSV text (columns :data:`BOARD_COLUMNS`, ISO 8601 times); written
        atomically to ``path`` as well if given."""
        if path is not None and not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"`path` must be a str, path-like or None; got {type(path).__name__}.")
        text = self.runs().to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
        if path is not None:
            from labviz.core.files import atomic_write_bytes

            atomic_write_bytes(Path(path), text.encode())
        return text

    def _frame(self, where: str, params: tuple) -> pd.DataFrame:
        import pandas as pd

        columns = ", ".join(f"s.{c}" if c == "name" else f"r.{c}" for c in BOARD_COLUMNS)
        with self._connect() as db:
            rows = db.execute(f"SELECT {columns} FROM runs r JOIN students s USING (student_id) "
                              f"{where} ORDER BY r.finished_at, r.run_key", params).fetchall()
        table = pd.DataFrame(rows, columns=list(BOARD_COLUMNS))
        table["finished_at"] = pd.to_datetime(table["finished_at"].astype(float), unit="s", utc=True)
        return table.astype(_DTYPES)


# ----- helpers --------------------------------------------------------------------------------------
def _check_id(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"`{name}` must be a str; got {type(value).__name__}.")
    if not value or len(value) > MAX_ID_LENGTH or value != value.strip():
        raise ValueError(f"`{name}` must be 1 to {MAX_ID_LENGTH} characters without surrounding "
                         f"spaces; got {value[:MAX_ID_LENGTH + 1]!r}.")
    return value


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a str; got {type(name).__name__}.")
    if not NAME_PATTERN.fullmatch(name) or name != name.strip():
        raise ValueError("`name` must be 1 to 24 letters, digits, spaces, '-', '_' or '.', starting "
                         f"with a letter or digit; got {name[:40]!r}.")
    if _ANONYMOUS.fullmatch(name):
        raise ValueError(f"`name` must not look like an anonymous name (animal-number); got {name!r}.")
    return name


def _free_anonymous_name(db: sqlite3.Connection, student_id: str) -> str:
    """The student's animal (from a hash of their id) with the lowest free number."""
    digest = hashlib.sha256(student_id.encode()).digest()
    animal = ANIMALS[int.from_bytes(digest[:4], "big") % len(ANIMALS)]
    taken = {row[0].lower() for row in db.execute("SELECT name FROM students WHERE name LIKE ?",
                                                  (f"{animal}-%",))}
    number = 1
    while f"{animal}-{number}" in taken:
        number += 1
    return f"{animal}-{number}"


def _run_row(run: LiveRun) -> dict:
    c = run.config
    return {"dataset": c.dataset, "loss": c.loss, "alpha": float(c.alpha),
            "teacher": c.teacher if c.loss == "kd" else None, "noise": float(c.noise_rate),
            "epochs": int(c.epochs), "seed": int(c.seed),
            "n_train": c.train_size if c.dataset == "fashion-mnist" else None,
            "accuracy": float(run.accuracy), "ece": float(run.ece), "nc1": float(run.nc1),
            "intra": float(run.intra), "inter": float(run.inter), "seconds": float(run.seconds)}


def _default_key(student_id: str, run: LiveRun, row: dict) -> str:
    text = json.dumps({"student": student_id, "run": run.run_id, **row}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
