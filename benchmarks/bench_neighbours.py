"""Neighbours, scores and regions at explorer scale (labviz.compute.neighbours and .regions).

Each case runs in a fresh Python process with an empty cache and records:

* ``warmup_s``: a first NNDescent build of 3,000 points, which compiles pynndescent's numba code
  (paid once per process, whatever N; the explorer's background thread pays it).
* the index build (``neighbour_index``, method "auto", 20 neighbours kept): seconds, peak RSS and
  what it added; then the cached reload's seconds.
* exact search, the peer: the seconds of the exact blocked search (``_exact_rows``) of
  ``N_EXACT`` query rows against all N, scaled to N rows (its cost is linear in the rows).
  Those rows' exact neighbours also give the index's recall@10.
* one query (``index.query(i, 10)``): the median over 1,000 random samples; and, for
  comparison, one sample's exact neighbours searched on the spot with no index (median of 20).
* the per-sample scores (``label_disagreement`` and ``local_calibration_gap``, k=10) of all N.
* the regions (``find_regions``, default number, 1,000 bootstrap replicas each) with peak RSS,
  and the error slices.

Cases: 100k x 64 in a normal run; with ``--large``, 1M x 64 and 50k x 2,048 (the comparison of
the two methods on wide features). ``--quick``: 5k x 64. Features: 10 Gaussian clusters,
float32, seeded; labels and logits as ``bench_projection.make_features`` makes them, with 10% of
the given labels flipped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from timing import Timing, goal, make_row, proc_bytes

FULL_CASES = ((100_000, 64),)
LARGE_CASES = ((1_000_000, 64), (50_000, 2048))
QUICK_CASES = ((5_000, 64),)
N_EXACT = 1_000
K = 10
LIMIT_QUERY_S = 0.005
LIMIT_SCORES_S = 10.0


def make_case(n: int, d: int, seed: int = 0) -> dict[str, np.ndarray]:
    """10 Gaussian clusters in ``d`` dimensions (float32), labels, logits, 10% of labels flipped."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    centres = rng.normal(scale=4.0 * np.sqrt(64 / d), size=(10, d)).astype(np.float32)
    feats = centres[y]
    feats += rng.standard_normal((n, d), dtype=np.float32) * np.float32(np.sqrt(64 / d))
    logits = rng.normal(size=(n, 10)).astype(np.float32)
    logits[np.arange(n), y] += 3
    given = np.where(rng.random(n) < 0.1, rng.integers(0, 10, n), y)
    return {"y": y, "given": given, "logits": logits, "features": feats}


def _status(field: str) -> int | None:
    return proc_bytes("/proc/self/status", field)


def _measured(call) -> tuple[object, dict]:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # peak RSS (VmHWM) back to the current RSS
    except OSError:
        pass
    before = _status("VmRSS")
    t = time.perf_counter()
    value = call()
    seconds = time.perf_counter() - t
    peak = _status("VmHWM")
    return value, {"seconds": seconds, "peak_rss": peak,
                   "added": None if (peak is None or before is None) else peak - before}


def child(n: int, d: int) -> dict:
    import gc

    from labviz.compute import neighbours as nb
    from labviz.compute import regions as rg
    from labviz.core.predictions import Predictions

    arrays = make_case(n, d)
    p = Predictions.from_arrays(y_true=arrays["y"], y_given=arrays["given"],
                                logits=arrays["logits"], features=arrays["features"])
    del arrays
    _ = p.confidence, p.y_pred
    gc.collect()
    out: dict = {"load_average_start": os.getloadavg()[0]}
    warm = nb.normalised(make_case(3000, d, seed=1)["features"])
    t = time.perf_counter()
    nb._nndescent_graph(warm, nb.DEFAULT_NEIGHBORS, 0, lambda f: None)
    out["warmup_s"] = time.perf_counter() - t

    index, out["build"] = _measured(lambda: nb.neighbour_index(p))
    out["method"] = index.method
    t = time.perf_counter()
    nb.neighbour_index(p)
    out["cached_s"] = time.perf_counter() - t

    x = nb.normalised(p.features)
    rows = slice(0, min(N_EXACT, n))
    t = time.perf_counter()
    ind, _ = nb._exact_rows(x, rows, K + 1)
    exact_s = time.perf_counter() - t
    out["exact_s"] = exact_s * n / (rows.stop - rows.start)
    one = []
    for i in range(20):  # one sample's exact neighbours, searched on the spot: no index
        t = time.perf_counter()
        nb._exact_rows(x, slice(i, i + 1), K + 1)
        one.append(time.perf_counter() - t)
    out["exact_query_s"] = float(np.median(one))
    del x
    hits = 0
    for i, row in enumerate(ind):
        truth = row[row != i][:K]
        hits += len(set(truth) & set(index.indices[i, :K]))
    out["recall10"] = hits / (K * len(ind))

    samples = np.random.default_rng(1).integers(0, n, 1000)
    times = []
    for i in samples:
        t = time.perf_counter()
        index.query(int(i), K)
        times.append(time.perf_counter() - t)
    out["query_s"] = float(np.median(times))
    out["query_max_s"] = float(np.max(times))

    t = time.perf_counter()
    nb.label_disagreement(p, index, k=K)
    nb.local_calibration_gap(p, index, k=K)
    out["scores_s"] = time.perf_counter() - t

    regions, out["regions"] = _measured(lambda: rg.find_regions(p))
    out["n_regions"] = regions.n_regions
    t = time.perf_counter()
    slices = rg.error_slices(p, regions)
    out["slices_s"] = time.perf_counter() - t
    out["n_slices"] = len(slices)
    out["index_bytes"] = int(index.indices.nbytes + index.similarities.nbytes)
    out["load_average_end"] = os.getloadavg()[0]
    return out


def _run_child(n: int, d: int, cache: Path) -> dict:
    env = {**os.environ, "LABVIZ_CACHE_DIR": str(cache), "TQDM_DISABLE": "1"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(n), str(d)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"N={n} d={d} failed: {proc.stderr.strip().splitlines()[-3:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _mb(x: int | None) -> str:
    return "n/a" if x is None else f"{x / 2**20:.0f} MB"


def run(quick: bool = False, log=print, large: bool = False) -> list[dict]:
    cases = QUICK_CASES if quick else FULL_CASES + (LARGE_CASES if large else ())
    rows = []
    with tempfile.TemporaryDirectory(prefix="labviz-bench-neighbours-") as tmp:
        for n, d in cases:
            res = _run_child(n, d, Path(tmp) / f"cache-{n}-{d}")
            build = res["build"]
            labviz = Timing(seconds=build["seconds"], reps=1, all_seconds=[build["seconds"]])
            exact = Timing(seconds=res["exact_s"], reps=1, all_seconds=[res["exact_s"]])
            goals = [goal("one query < 5 ms", res["query_s"], LIMIT_QUERY_S, unit="s"),
                     goal("all scores < 10 s", res["scores_s"], LIMIT_SCORES_S, unit="s")]
            row = make_row("neighbours", f"N={n:.0e} d={d}", {"n_samples": n, "n_features": d,
                                                              "n_neighbors": 20, "k": K},
                           labviz=labviz, peers={"exact (extrapolated)": exact}, goals=goals,
                           notes=f"index method {res['method']}; exact timed on {N_EXACT} rows")
            row.update(res)
            rows.append(row)
            log(f"  N={n:,} d={d}: index ({res['method']}) {build['seconds']:.1f}s peak "
                f"{_mb(build['peak_rss'])} (+{_mb(build['added'])}), {_mb(res['index_bytes'])} "
                f"held; numba warm-up {res['warmup_s']:.1f}s; cached reload "
                f"{res['cached_s']:.2f}s; exact search {res['exact_s']:.1f}s (extrapolated), one "
                f"exact query {res['exact_query_s'] * 1e3:.1f} ms; "
                f"recall@10 {res['recall10']:.3f}; query {res['query_s'] * 1e6:.0f} us (max "
                f"{res['query_max_s'] * 1e6:.0f} us); scores {res['scores_s']:.2f}s; regions "
                f"({res['n_regions']}) {res['regions']['seconds']:.1f}s peak "
                f"{_mb(res['regions']['peak_rss'])} (+{_mb(res['regions']['added'])}); "
                f"slices ({res['n_slices']}) {res['slices_s']:.2f}s; load "
                f"{res['load_average_start']:.1f}-{res['load_average_end']:.1f}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("N", "D"),
                        help="(internal) run one case and print its numbers as JSON")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--large", action="store_true")
    parser.add_argument("--only", nargs=2, type=int, metavar=("N", "D"),
                        help="run one case (outside benchmarks/run.py)")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(int(args.child[0]), int(args.child[1]))))
    elif args.only:
        with tempfile.TemporaryDirectory(prefix="labviz-bench-neighbours-") as tmp:
            print(json.dumps(_run_child(*args.only, Path(tmp) / "cache")))
    else:
        run(quick=args.quick, large=args.large)
    return 0


if __name__ == "__main__":
    sys.exit(main())
