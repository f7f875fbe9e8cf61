"""The explorer's finds in a real browser: what a person waits for, at 100k and 1M points.

The page is the one of ``bench_explorer_browser.py`` (``tests/explorer_page.py``: JupyterLab, or
Voilà at 1M, serving a notebook that builds ``n`` seeded synthetic samples with 64 features and
calls ``labviz.explore``; headless Chromium with WebGL on SwiftShader). Once the explorer is
painted, timed in the page's own clock:

* press on a point of the scatter → the first frame holding its neighbours' list. The first
  click waits for the neighbour index and the regions to be built (NNDescent at these sizes,
  plus numba's compilation in a new kernel), or read from the disk cache where an earlier case
  of the same size built them (Voilà after JupyterLab), and → the frame showing the regions'
  list, which is built first and shown while the index is built; then :data:`WARM_CLICKS` clicks
  on other points, the index built (the median is reported, every click in ``all_seconds``);
* press on the top region of the list → the first frame of the scatter showing its highlight
  (and → the reliability diagram naming it), twice (ranks 0 and 1);
* the kernel's resident set before the first click and after the build, and its peak (VmHWM);
  the build's own times, as the status line reports them.

Each case starts from an empty ``LABVIZ_CACHE_DIR`` per size (shared by the cases of that size)
and records the machine's load (``os.getloadavg``) before and after. Goals (issue 28): a point's
neighbours listed under 500 ms at 1M once the index exists; a region's highlight painted under
1 s at 1M. Run the 1M cases alone (``flock /tmp/work/browser1m.lock``): two 1M pages at once
share 2 cores.

Usage::

    flock /tmp/work/browser1m.lock .venv/bin/python benchmarks/run.py --only finds-browser --merge
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

from timing import Timing, goal, make_row, restoring_env, skipped

TESTS = Path(__file__).resolve().parents[1] / "tests"
FULL_CASES = (("lab", 100_000), ("lab", 1_000_000), ("voila", 1_000_000))
QUICK_CASES = (("lab", 30_000),)  # above the 20k plotly draws: the WebGL scatter
#: Clicks on points once the index exists.
WARM_CLICKS = 3
LIST_LIMIT_S = {1_000_000: 0.5}
REGION_LIMIT_S = {1_000_000: 1.0}
#: A first click at 1M waits minutes for the index (NNDescent and numba's compilation).
TIMEOUT_S = {1_000_000: 1800.0}


def _timing(ms: list[float]) -> Timing:
    """The best of ``ms`` (as the results table says), every one in ``all_seconds``."""
    if not ms:
        return Timing(seconds=None, skip="not measured")
    return Timing(seconds=min(ms) / 1000, reps=len(ms), all_seconds=[m / 1000 for m in ms])


def _median_goal(ms: list[float], limit_s: float) -> dict:
    """A goal on the median of ``ms`` (what a person usually waits), not on the best."""
    return goal(f"median < {limit_s * 1000:.0f} ms", statistics.median(ms) / 1000, limit_s,
                unit="s")


def _ms(values) -> str:
    return ", ".join(f"{v:.0f}" for v in values)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def finds_flow(page, kernel_memory, *, timeout_s: float) -> dict:
    """What :func:`explorer_page.run_explorer` runs last: clicks on points and on regions."""
    from explorer_page import click_point, click_region, regions_seen_at, watch_regions

    out: dict = {"kernel_before": kernel_memory(), "load_first_click": _load()}
    watch_regions(page)
    first = click_point(page, timeout_s=timeout_s)
    seen_at = regions_seen_at(page)
    first["regions_ms"] = None if seen_at is None else seen_at - page.evaluate(
        "() => window.__lvPointer.down")
    out["first_click"] = first
    out["kernel_built"] = kernel_memory()
    rows, warm = [first["row"]], []
    out["load_warm_clicks"] = _load()
    for _ in range(WARM_CLICKS):
        seen = click_point(page, timeout_s=timeout_s, avoid=tuple(rows))
        rows.append(seen["row"])
        warm.append(seen)
    out["warm_clicks"] = warm
    out["load_regions"] = _load()
    out["regions"] = [click_region(page, rank=rank, timeout_s=timeout_s) for rank in (0, 1)]
    for region in out["regions"]:
        region["selected"] = len(region.pop("selection_after_region"))
    return out


def build_seconds(status: str) -> dict[str, float]:
    """The build times the status line reports ("... ready (index 231 s, regions 2.1 s) ...")."""
    return {name: float(value) for name, value in
            re.findall(r"(index|regions) (\d[\d,.]*) s", status.replace(",", ""))}


def run(quick: bool = False, log=print) -> list[dict]:
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        return [make_row("finds-browser", "finds in the browser", {},
                         labviz=skipped(f"Chromium is not installed at {chromium}"))]
    sys.path.insert(0, str(TESTS))
    from explorer_page import run_explorer

    rows: list[dict] = []
    caches: dict[int, tempfile.TemporaryDirectory] = {}
    try:
        for where, n in QUICK_CASES if quick else FULL_CASES:
            rows += _case(where, n, caches, run_explorer, log)
    finally:
        for cache in caches.values():
            cache.cleanup()
    return rows


def _case(where: str, n: int, caches: dict, run_explorer, log) -> list[dict]:
    params = {"n_samples": n, "server": where, "n_features": 64, "method": "pca",
              "browser": "headless Chromium, WebGL on SwiftShader"}
    cold = n not in caches
    if cold:
        caches[n] = tempfile.TemporaryDirectory(prefix=f"labviz-bench-finds-cache-{n}-")
    timeout_s = TIMEOUT_S.get(n, 600.0)
    load_start = _load()
    with tempfile.TemporaryDirectory(prefix="labviz-bench-finds-") as tmp, \
            restoring_env("LABVIZ_CACHE_DIR"):
        os.environ["LABVIZ_CACHE_DIR"] = caches[n].name  # the kernel inherits it
        try:
            seen = run_explorer(Path(tmp), n, where=where, lasso=False, timeout_s=timeout_s,
                                after=lambda page, memory: finds_flow(page, memory,
                                                                      timeout_s=timeout_s))
        except Exception as exc:  # recorded, and the other cases still run
            log(f"  {where} N={n}: failed ({exc})")
            return [make_row("finds-browser", f"{where} N={n}", params,
                             labviz=skipped(f"failed: {exc}"))]
    params = {**params, "load_start": load_start, "load_end": _load(),
              "load_first_click": seen["load_first_click"],
              "load_warm_clicks": seen["load_warm_clicks"], "load_regions": seen["load_regions"]}
    first, warm = seen["first_click"], seen["warm_clicks"]
    built = build_seconds(first["status"])
    how = "built" if cold else "read from the disk cache"
    first_row = make_row(
        "finds-browser", f"first point click → neighbours listed, index {how} N={n} ({where})",
        {**params, "build_s": built}, labviz=_timing([first["list_ms"]]),
        notes=f"status then: {first['status']}")
    regions_first = make_row(
        "finds-browser", f"first point click → regions listed (before the index) N={n} ({where})",
        params, labviz=_timing([] if first["regions_ms"] is None else [first["regions_ms"]]))
    warm_ms = [c["list_ms"] for c in warm]
    warm_row = make_row(
        "finds-browser", f"point click → neighbours listed N={n} ({where})", params,
        labviz=_timing(warm_ms),
        notes=f"{len(warm)} clicks on other points, the index built: {_ms(warm_ms)} ms")
    if n in LIST_LIMIT_S:
        warm_row["goals"] = [_median_goal(warm_ms, LIST_LIMIT_S[n])]
    regions = seen["regions"]
    region_ms = [r["region_ms"] for r in regions]
    region_row = make_row(
        "finds-browser", f"region click → highlight painted N={n} ({where})",
        {**params, "selected": [r["selected"] for r in regions],
         "to_reliability_ms": [round(r["region_reliability_ms"]) for r in regions]},
        labviz=_timing(region_ms),
        notes=f"the regions ranked 0 and 1: {_ms(region_ms)} ms (their reliability diagram: "
              f"{_ms(r['region_reliability_ms'] for r in regions)} ms)")
    if n in REGION_LIMIT_S:
        region_row["goals"] = [_median_goal(region_ms, REGION_LIMIT_S[n])]
    before, after = seen["kernel_before"], seen["kernel_built"]
    memory = (f"kernel {before['rss_mb']:.0f} MB before the first click, {after['rss_mb']:.0f} MB "
              f"after the build (+{after['rss_mb'] - before['rss_mb']:.0f} MB); peak "
              f"{before['peak_mb']:.0f} → {after['peak_mb']:.0f} MB")
    mem_row = make_row(
        "finds-browser", f"finds build: kernel memory N={n} ({where})",
        {**params, "kernel_before": before, "kernel_built": after, "build_s": built},
        labviz=skipped(memory))  # not a time: the skip text is what the results table shows
    log(f"  {where} N={n} (load {load_start}): first click {first['list_ms'] / 1000:.1f} s "
        f"(index {how}; {built}; regions listed {(first['regions_ms'] or 0) / 1000:.1f} s), "
        f"then clicks "
        f"{_ms(c['list_ms'] for c in warm)} ms, regions "
        f"{_ms(r['region_ms'] for r in regions)} ms ({memory})")
    return [first_row, regions_first, warm_row, region_row, mem_row]
