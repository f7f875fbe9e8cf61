"""A small class on the classroom app, end to end on loopback (``class_load.run_class``): four
students open ``labviz app`` at once, one in headless Chromium and three at the protocol level,
each setting their own α and pressing Train twice; and a class larger than its pool.

Checked: every student sees the app and gets both runs' views back; the board holds every
submitted run exactly once, under the student who sent it, with the α that student set; students
who find the pool's ready kernels taken have kernels of their own started, rather than waiting
for a replacement ten minutes away. (How long all this takes is the benchmark's business:
``benchmarks/bench_class_load.py``, 30 students.)
"""

from __future__ import annotations

from collections import Counter

from class_load import run_class
from test_browser import BROWSER_MARKS

pytestmark = BROWSER_MARKS

ALPHAS = (0.0, 0.2, 0.4)


def test_a_small_class_gets_its_views_and_every_run_on_the_board_exactly_once(tmp_path):
    out = run_class(tmp_path, n_students=4, n_browsers=1, runs_per_student=2, workers=2,
                    pool_size=4, alphas=ALPHAS, timeout_s=240)
    assert out["errors"] == []
    assert Counter(s["kind"] for s in out["students"]) == {"browser": 1, "protocol": 3}
    for student in out["students"]:
        assert student["first_view_s"] > 0 and len(student["latencies_s"]) == 2

    rows = out["board_rows"]
    runs_of = {}
    for row in rows:
        runs_of.setdefault(row["student_id"], []).append(row)
    assert len(rows) == 8 and len(runs_of) == 4
    for student_id, runs in runs_of.items():
        assert sorted(r["run_key"] for r in runs) == [f"{student_id}-1", f"{student_id}-2"]
        assert len({r["alpha"] for r in runs}) == 1  # one student's two runs, same settings
    # the browser keeps the default α (0.1); each protocol student set one of ALPHAS
    assert sorted(float(runs[0]["alpha"]) for runs in runs_of.values()) == [0.0, 0.1, 0.2, 0.4]


def test_students_past_the_pool_get_kernels_of_their_own_at_once(tmp_path):
    # a pool of 2 with its replacements 600 s away (labviz app's default): Voilà alone gave
    # students 3 and 4 those replacements, and they waited ten minutes, past this timeout
    out = run_class(tmp_path, n_students=4, n_browsers=0, runs_per_student=1, workers=2,
                    pool_size=2, refill_after=600, alphas=ALPHAS, timeout_s=150)
    assert out["errors"] == []
    assert all(s["first_view_s"] > 0 and len(s["latencies_s"]) == 1 for s in out["students"])
    assert len(out["board_rows"]) == 4
