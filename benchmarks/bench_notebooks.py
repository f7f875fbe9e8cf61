"""Notebooks: wall time of every notebook in notebooks/ run by nbclient, cold and warm.

Cold: a new, empty ``LABVIZ_CACHE_DIR`` (activations and projections are computed). Warm: the same
notebook again with the cache the cold run filled. The kernel inherits this process's environment.
Goal: every notebook under 60 s warm.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from timing import Timing, goal, make_row, restoring_env, skipped

LIMIT_S = 60.0
TIMEOUT_S = 600  # per cell


def _execute(path: Path) -> float:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=TIMEOUT_S,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def run(quick: bool = False, log=print, folder: Path | None = None) -> list[dict]:
    folder = folder or Path(__file__).resolve().parent.parent / "notebooks"
    paths = sorted(p for p in folder.glob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if not paths:
        log(f"  no notebooks in {folder}")
        row = make_row("notebooks", "no notebooks", {}, labviz=skipped(f"no notebooks in {folder}"))
        row["goals"] = [goal(f"< {LIMIT_S:.0f} s warm", None, LIMIT_S, unit="s",
                             why="no notebooks yet")]
        return [row]
    if quick:
        paths = paths[:1]
    rows = []
    with restoring_env("LABVIZ_CACHE_DIR"):
        for path in paths:
            with tempfile.TemporaryDirectory(prefix="labviz-bench-nb-") as cache:
                os.environ["LABVIZ_CACHE_DIR"] = cache
                runs = {}
                for phase in ("cold", "warm"):
                    try:
                        runs[phase] = Timing(seconds=_execute(path), reps=1)
                    except Exception as exc:  # a failing notebook is a result, not a crash
                        runs[phase] = skipped(f"failed: {type(exc).__name__}: {str(exc)[:200]}")
            row = make_row("notebooks", path.name, {"path": str(path)}, labviz=runs["warm"])
            row["cold"], row["warm"] = runs["cold"].to_json(), runs["warm"].to_json()
            row["goals"] = [goal(f"< {LIMIT_S:.0f} s warm", runs["warm"].seconds, LIMIT_S,
                                 unit="s", why=runs["warm"].skip or "")]
            rows.append(row)
            fmt = lambda t: f"{t.seconds:.1f}s" if t.seconds is not None else t.skip  # noqa: E731
            log(f"  {path.name:<40} cold {fmt(runs['cold'])}  warm {fmt(runs['warm'])}")
    return rows
