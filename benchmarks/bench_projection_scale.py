"""Projections at explorer scale: PCA and UMAP frames of 100k and 1M samples x 64 features.

Each case runs ``labviz.compute.projection.projection_frame`` (empty on-disk cache, as the explorer's first
build) in a fresh Python process and records:

* seconds of the call. PCA's is the process's first call (it imports scikit-learn). UMAP's comes
  after a small warm-up projection that compiled umap's and pynndescent's numba code (about 20 s
  in every new process, reported as ``warmup_s``), because compilation does not grow with N.
* peak RSS of the process during the call (``VmHWM`` reset just before it; the process already
  holds the Predictions: features, logits and probabilities), and how much the call added.
* the frame's memory (``memory_usage(deep=True)``) and the time to build a frame from an
  embedding (best of 3).
* quality: on 2,000 held-out samples (not in UMAP's fitted sample), the fraction of each one's 10
  nearest neighbours in feature space (exact, among all N) found among its 10 nearest in 2-D
  (``recall10``), and the fraction of its 10 nearest 2-D neighbours in its own cluster
  (``same_cluster10``). The clusters are isotropic Gaussians, so within a cluster there is no
  structure a 2-D map could keep and ``recall10`` is near 0 for every method; ``same_cluster10``
  is the telling figure here.

At 100k a full UMAP (every sample fitted) runs too, as the peer of the sampled one. Goals: the
PCA frame at 1M under 30 s (the explorer's build budget at 1M), every process under 2 GB, and the
sampled UMAP's cluster agreement at least 0.95 of the full UMAP's.

Features are synthetic: 10 Gaussian clusters in 64 dimensions, float32, seeded
(``np.random.default_rng(0)``, as in ``bench_projection``).
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
from bench_projection import make_features
from timing import Timing, goal, make_row, proc_bytes, skipped

HERE = Path(__file__).resolve().parent
FULL_SIZES = (100_000, 1_000_000)
QUICK_SIZES = (5_000,)
FULL_SAMPLE = 20_000  # labviz.compute.projection.DEFAULT_SAMPLE_SIZE
QUICK_SAMPLE = 2_000
#: Full UMAP as the peer, where it is feasible (70 s at 100k on 2 cores).
REFERENCE_UP_TO = 100_000
N_QUERIES = 2_000
K = 10
LIMIT_PCA_S = 30.0
LIMIT_RSS = 2 * 2**30
MIN_RELATIVE_AGREEMENT = 0.95


# ----- child process: one projection ------------------------------------------------------------
def _status(field: str) -> int | None:
    return proc_bytes("/proc/self/status", field)


def _reset_peak() -> bool:
    """Reset the peak RSS (``VmHWM``) to the current RSS; False where Linux does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak() -> int:
    hwm = _status("VmHWM")
    if hwm is not None:
        return hwm
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _measured(call) -> tuple[object, dict]:
    # the peak so far is mostly Predictions.from_arrays' validation, not the projection's
    earlier = _peak()
    before, reset = _status("VmRSS"), _reset_peak()
    t = time.perf_counter()
    value = call()
    seconds = time.perf_counter() - t
    peak = _peak()
    return value, {"seconds": seconds, "rss_before": before, "peak_rss": peak,
                   "peak_is_since_start": not reset, "peak_before_call": earlier,
                   "added": None if before is None else peak - before}


def child(method: str, n: int, sample_size: int, out: Path, reference: bool) -> dict:
    import gc

    from labviz.core.predictions import Predictions
    from labviz.compute.projection import _frame, project, projection_frame

    arrays = make_features(n)
    p = Predictions.from_arrays(y_true=arrays["y"], logits=arrays["logits"],
                                features=arrays["features"])
    del arrays
    _ = p.probs  # the explorer computes them anyway: part of the baseline, not of the call
    gc.collect()
    result: dict = {}
    if method == "umap":
        # the numba code of the path the timed call takes (pynndescent's index from 4096 on)
        warm_sample = min(sample_size, 4096)
        warm = make_features(warm_sample + 1000, seed=1)
        t = time.perf_counter()
        project(warm["features"], method="umap", sample_size=warm_sample, n_epochs=5)
        result["warmup_s"] = time.perf_counter() - t
        del warm
        gc.collect()
    frame, result["call"] = _measured(
        lambda: projection_frame(p, method=method, sample_size=sample_size))
    result["frame_bytes"] = int(frame.memory_usage(deep=True).sum())
    emb = frame[["x", "y"]].to_numpy()
    builds = []
    for _ in range(3):
        t = time.perf_counter()
        _frame(p, emb)
        builds.append(time.perf_counter() - t)
    result["frame_build_s"] = min(builds)
    np.save(out, emb)
    if reference:
        del frame
        gc.collect()
        ref, result["reference"] = _measured(
            lambda: project(p.features, method="umap", sample_size=None))
        np.save(out.with_name(out.stem + "-full.npy"), ref)
    return result


def _run_child(method: str, n: int, sample_size: int, out: Path, reference: bool,
               cache: Path) -> dict:
    env = {**os.environ, "LABVIZ_CACHE_DIR": str(cache), "TQDM_DISABLE": "1"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", method, str(n),
           str(sample_size), str(out)] + (["--reference"] if reference else [])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{method} N={n} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----- quality ----------------------------------------------------------------------------------
def _neighbours(points: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """The k nearest other points of each query (exact), as indices into ``points``."""
    from sklearn.neighbors import NearestNeighbors

    idx = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(
        points[queries], return_distance=False)
    keep = idx != queries[:, None]
    return np.stack([row[mask][:k] for row, mask in zip(idx, keep)])


def quality(emb: np.ndarray, queries: np.ndarray, feature_nn: np.ndarray,
            labels: np.ndarray) -> dict:
    """``recall10`` and ``same_cluster10`` of an embedding (see the module docstring)."""
    emb_nn = _neighbours(np.ascontiguousarray(emb, dtype=np.float64), queries, K)
    hits = (emb_nn[:, :, None] == feature_nn[:, None, :]).any(axis=2).sum(axis=1)
    return {"recall10": float(hits.mean() / K),
            "same_cluster10": float((labels[emb_nn] == labels[queries][:, None]).mean()),
            "n_queries": len(queries)}


# ----- rows -------------------------------------------------------------------------------------
def _gb(x: int | None) -> str:
    return "n/a" if x is None else f"{x / 2**30:.2f} GB"


def run(quick: bool = False, log=print) -> list[dict]:
    from labviz.compute.projection import _sample_indices

    sizes, sample_size = (QUICK_SIZES, QUICK_SAMPLE) if quick else (FULL_SIZES, FULL_SAMPLE)
    rows = []
    with tempfile.TemporaryDirectory(prefix="labviz-bench-scale-") as tmp:
        tmp = Path(tmp)
        for n in sizes:
            arrays = make_features(n)
            feats, labels = arrays["features"], arrays["y"]
            del arrays
            held_out = np.setdiff1d(np.arange(n), _sample_indices(n, sample_size, 0))
            queries = np.sort(np.random.default_rng(123).choice(
                held_out, min(N_QUERIES, len(held_out)), replace=False))
            feature_nn = _neighbours(feats, queries, K)
            del feats
            for method in ("pca", "umap"):
                reference = method == "umap" and n <= REFERENCE_UP_TO and not quick
                out = tmp / f"{method}-{n}.npy"
                res = _run_child(method, n, sample_size, out, reference, tmp / f"cache-{method}-{n}")
                call = res["call"]
                q = quality(np.load(out), queries, feature_nn, labels)
                labviz = Timing(seconds=call["seconds"], reps=1, all_seconds=[call["seconds"]])
                goals = [goal("peak RSS < 2 GB", call["peak_rss"], LIMIT_RSS, unit="bytes",
                              why="no peak RSS on this platform")]
                peers, ref = {}, None
                if method == "pca" and n >= 1_000_000:
                    goals.insert(0, goal(f"< {LIMIT_PCA_S:.0f} s", call["seconds"], LIMIT_PCA_S,
                                         unit="s"))
                if method == "umap":
                    if reference:
                        ref = {**res["reference"],
                               "quality": quality(np.load(tmp / f"{method}-{n}-full.npy"),
                                                  queries, feature_nn, labels)}
                        peers["umap full"] = Timing(seconds=ref["seconds"], reps=1,
                                                    all_seconds=[ref["seconds"]])
                        wanted = MIN_RELATIVE_AGREEMENT * ref["quality"]["same_cluster10"]
                        # a goal is value <= limit: the shortfall of agreement against the full fit
                        goals.append(goal(f"cluster agreement ≥ {MIN_RELATIVE_AGREEMENT}× full "
                                          "UMAP's", wanted / max(q["same_cluster10"], 1e-12), 1.0))
                    else:
                        peers["umap full"] = skipped("a full UMAP is not feasible at this size"
                                                     if not quick else "quick mode")
                sampled = method == "umap" and n > sample_size
                note = (f"fit on {sample_size:,} samples, the rest placed by 10-NN" if sampled
                        else "all samples")
                row = make_row("projection-scale", f"{method} N={n:.0e}",
                               {"method": method, "n_samples": n, "n_features": 64,
                                "sample_size": sample_size if method == "umap" else None},
                               labviz=labviz, peers=peers, goals=goals, notes=note)
                row.update({"peak_rss_bytes": call["peak_rss"], "rss_before_bytes":
                            call["rss_before"], "rss_added_bytes": call["added"],
                            "peak_is_since_start": call["peak_is_since_start"],
                            "peak_rss_before_call_bytes": call["peak_before_call"],
                            "quality": q, "frame_bytes": res["frame_bytes"],
                            "frame_build_s": res["frame_build_s"],
                            "warmup_s": res.get("warmup_s"), "reference": ref})
                rows.append(row)
                warm = f", warm-up {res['warmup_s']:.1f}s" if "warmup_s" in res else ""
                log(f"  {row['case']:<12} {call['seconds']:7.2f}s  peak {_gb(call['peak_rss'])} "
                    f"(+{_gb(call['added'])})  recall10 {q['recall10']:.4f}  same-cluster "
                    f"{q['same_cluster10']:.4f}  frame {res['frame_bytes'] / 2**20:.0f} MB in "
                    f"{res['frame_build_s']:.2f}s{warm}")
                if ref is not None:
                    rq = ref["quality"]
                    log(f"  {'  full UMAP':<12} {ref['seconds']:7.2f}s  peak "
                        f"{_gb(ref['peak_rss'])} (+{_gb(ref['added'])})  recall10 "
                        f"{rq['recall10']:.4f}  same-cluster {rq['same_cluster10']:.4f}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=4, metavar=("METHOD", "N", "SAMPLE_SIZE", "OUT"),
                        help="(internal) run one case and print its numbers as JSON")
    parser.add_argument("--reference", action="store_true", help="(internal) also a full UMAP")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.child:
        method, n, sample_size, out = args.child
        print(json.dumps(child(method, int(n), int(sample_size), Path(out), args.reference)))
    else:
        run(quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
