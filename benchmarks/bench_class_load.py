"""A class on the classroom app: 30 students at once, against the one-kernel-per-visitor baseline.

``tests/class_load.run_class`` (the load test's driver) serves the app on loopback and lets every
student open it at the same moment and press Train once, with a few students in headless
Chromium and the rest protocol-level clients (the page's own websocket protocol and widget
messages; each sets one α of a sweep). Cases, in one run:

* **baseline**: Voilà on ``notebooks/app.ipynb`` alone, as ``make app`` served it before the
  training service: each visitor's kernel starts when the page opens, and trains by itself; 10
  visitors and 30 (about 500 MB per training kernel: 15 GB of this machine's 24; the driver stops
  a class when less than 2 GB is left).
* **service**: ``labviz app``: the shared training service (one worker per core), the board, and
  Voilà with preheated kernels, a pool the size of the class started before it comes in: 10
  students and 30, with taken kernels replaced after ``labviz app``'s default of ten minutes; 30
  with them replaced after 1 s, Voilà's own default; and 30 on ``labviz app``'s default pool of
  4, where the students past the pool have kernels of their own started.

Recorded per case: open → first view (the Train button visible in a page; the widgets' state
received by a protocol client) at p50, p95 and max; Train → views (the press → the status line
naming the run, which the trainer sets after every view is drawn) at p50 and p95; the server's
process tree at its peak (resident sets, sampled every second) and the largest visitor kernel;
and whether every run reached the board exactly once. Goals (issue 17): every page's first view
under 5 s while the pool has room; a visitor's kernel under 250 MB. The pages render in Chromium
on the server's two cores, where a real class's pages render on the students' machines.
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from pathlib import Path

from timing import Timing, goal, make_row, skipped

from labviz.servers.jupyter import DEFAULT_POOL_SIZE, DEFAULT_REFILL_AFTER

TESTS = Path(__file__).resolve().parents[1] / "tests"
#: (mode, students, pages among them, pool size, seconds before a taken kernel is replaced)
FULL_CASES = (("baseline", 10, 2, 0, None), ("baseline", 30, 3, 0, None),
              ("service", 10, 2, 10, DEFAULT_REFILL_AFTER),
              ("service", 30, 3, 30, DEFAULT_REFILL_AFTER), ("service", 30, 3, 30, 1.0),
              ("service", 30, 3, DEFAULT_POOL_SIZE, DEFAULT_REFILL_AFTER))
QUICK_CASES = (("service", 3, 1, 3, DEFAULT_REFILL_AFTER),)
FIRST_VIEW_LIMIT_S = 5.0
KERNEL_LIMIT_MB = 250.0


def _s(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.1f} s"


def board_check(result: dict) -> str:
    """"30 of 30 runs, each once", or what is wrong: the board against what the students got."""
    rows = result["board_rows"]
    if rows is None:
        return "no board"
    done = sum(len(s.get("latencies_s", [])) for s in result["students"])
    keys = Counter(r["run_key"] for r in rows)
    twice = sum(n > 1 for n in keys.values())
    text = f"{len(keys)} of {done} finished runs" + (", each once" if not twice else "")
    return text + (f"; {twice} twice" if twice else "")


def run(quick: bool = False, log=print) -> list[dict]:
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        return [make_row("class-load", "class on the app", {},
                         labviz=skipped(f"Chromium is not installed at {chromium}"))]
    sys.path.insert(0, str(TESTS))
    from class_load import run_class

    rows = []
    for mode, n, pages, pool, refill in QUICK_CASES if quick else FULL_CASES:
        case = f"{mode}, {n} students" + (f", pool {pool}, refill after {refill:g} s"
                                          if mode == "service" else "")
        params = {"mode": mode, "students": n, "pages": pages, "pool_size": pool,
                  "refill_after": refill, "runs_per_student": 1}
        with tempfile.TemporaryDirectory(prefix="labviz-bench-class-") as tmp:
            try:
                out = run_class(Path(tmp), mode=mode, n_students=n, n_browsers=pages,
                                runs_per_student=1, pool_size=pool,
                                refill_after=refill or DEFAULT_REFILL_AFTER, timeout_s=600)
            except Exception as exc:  # recorded, and the other cases still run
                log(f"  {case}: failed ({exc})")
                rows.append(make_row("class-load", case, params, labviz=skipped(f"failed: {exc}")))
                continue
        first, train, memory = out["first_view_s"], out["train_to_views_s"], out["memory"]
        pages_first = [s["first_view_s"] for s in out["students"]
                       if s.get("kind") == "browser" and "first_view_s" in s]
        load = {"first_view_s": first, "train_to_views_s": train, "memory": memory,
                "pages_first_view_s": pages_first,
                "board": board_check(out) if mode == "service" else "no board (baseline)",
                "errors": out["errors"], "workers": out["workers"], "seconds": out["seconds"]}
        goals = [goal(f"kernel < {KERNEL_LIMIT_MB:.0f} MB", memory["kernel_mb_max"],
                      KERNEL_LIMIT_MB, unit="MB")]
        if mode == "service" and pool >= n:  # a visitor sees the app: the pages' slowest
            goals.insert(0, goal(f"pages' first view < {FIRST_VIEW_LIMIT_S:.0f} s",
                                 max(pages_first, default=None), FIRST_VIEW_LIMIT_S, unit="s"))
        row = make_row("class-load", case, params,
                       labviz=Timing(seconds=first["p95"], reps=n,
                                     all_seconds=[s["first_view_s"] for s in out["students"]
                                                  if "first_view_s" in s]),
                       goals=goals, notes="; ".join(out["errors"][:3]))
        row["load"] = load
        rows.append(row)
        log(f"  {case}: first view p50 {_s(first['p50'])}, p95 {_s(first['p95'])}; Train → views "
            f"p50 {_s(train['p50'])}, p95 {_s(train['p95'])}; peak "
            f"{memory['peak_total_mb'] / 1024:.1f} GB, kernel "
            f"{memory['kernel_mb_max'] or 0:.0f} MB; "
            f"{load['board']}; {len(out['errors'])} errors")
    return rows
