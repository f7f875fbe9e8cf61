"""A small class on the classroom app, end to end on loopback (``class_load.run_class``): four
students open ``labviz app`` at once, one in headless Chromium and three at the protocol level,
each setting their own α and pressing Train twice, on a pool of two preheated kernels whose
replacements are ten minutes away (``labviz app``'s default).

Checked: every student sees the app and gets both runs' views back; the board holds every
submitted run exactly once, under the student who sent it, with the α that student set; the two
students who find the pool's ready kernels taken have kernels of their own started at once,
rather than waiting ten minutes for a replacement (Voilà alone gave them those replacements, past
this class's timeout). One class run serves both tests. (How long all this takes is the
benchmark's business: ``benchmarks/bench_class_load.py``, 30 students.)
"""

from __future__ import annotations

from collections import Counter

import pytest
from class_load import run_class
from test_browser import BROWSER_MARKS

pytestmark = BROWSER_MARKS

ALPHAS = (0.0, 0.2, 0.4)
N_STUDENTS, POOL_SIZE, RUNS = 4, 2, 2


@pytest.fixture(scope="module")
def small_class(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return run_class(tmp_path_factory.mktemp("class"), n_students=N_STUDENTS, n_browsers=1,
                     runs_per_student=RUNS, workers=2, pool_size=POOL_SIZE, refill_after=600,
                     alphas=ALPHAS, timeout_s=240)


def test_a_small_class_gets_its_views_and_every_run_on_the_board_exactly_once(small_class):
    out = small_class
    assert out["errors"] == []
    assert Counter(s["kind"] for s in out["students"]) == {"browser": 1, "protocol": 3}
    for student in out["students"]:
        assert student["first_view_s"] > 0 and len(student["latencies_s"]) == RUNS

    rows = out["board_rows"]
    runs_of = {}
    for row in rows:
        runs_of.setdefault(row["student_id"], []).append(row)
    assert len(rows) == N_STUDENTS * RUNS and len(runs_of) == N_STUDENTS
    for student_id, runs in runs_of.items():
        assert sorted(r["run_key"] for r in runs) == [f"{student_id}-1", f"{student_id}-2"]
        assert len({r["alpha"] for r in runs}) == 1  # one student's two runs, same settings
    # the browser keeps the default α (0.1); each protocol student set one of ALPHAS
    assert sorted(float(runs[0]["alpha"]) for runs in runs_of.values()) == [0.0, 0.1, 0.2, 0.4]


def test_students_past_the_pool_get_kernels_of_their_own_at_once(small_class):
    # twice as many students as ready kernels, and the pool's replacements 600 s away: every
    # student was served within the class's 240 s timeout, so none waited for a replacement
    out = small_class
    assert out["pool_size"] == POOL_SIZE < N_STUDENTS and out["refill_after"] == 600
    assert out["errors"] == []
    assert len(out["students"]) == N_STUDENTS
    assert all(s["first_view_s"] < 240 for s in out["students"])
