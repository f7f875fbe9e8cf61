"""``explore()`` and the compute views at ImageNet scale: 50,000 in memory, 1.28M memory-mapped.

Synthetic ResNet-50-like predictions: :func:`bench_calibration_report.make_imagenet_like` logits
(1,000 classes, 76% top-1, over-confident) and 2,048-d non-negative (ReLU) features clustered by
the predicted class, whose class means span a 32-d subspace with a decaying spectrum
(:func:`make_features`).

* ``explore 50k``: ``labviz.explore(p)`` on ``Predictions.from_arrays`` of 50,000 x 1,000 float32
  logits and 50,000 x 2,048 float32 features, in a fresh process with an empty projection cache:
  the first call a user makes, its imports included (``imports_s`` says how long those took,
  measured in a separate fresh process). Peak RSS is the process's own (``VmHWM``), inputs
  included. Goals: < 10 s and < 2 GB.
* ``PCA 50k``: the explorer's PCA (``labviz.compute.projection.project``: the streamed solver at
  this size) beside scikit-learn's ``PCA`` (randomized, on a centred copy) and ``IncrementalPCA``
  (batches of 10,240 rows), each in its own process, time and peak RSS added; ``max_diff`` is
  each peer's largest coordinate difference from labviz's, relative to the range.
* ``train 1.28M`` (``--large``; the quick run's 20,000 always): 1,281,167 x 1,000 float32 logits and 1,281,167 x 2,048 features written in
  chunks to ``.npy`` files under ``/tmp`` (float32 when the disk has room for them, float16
  otherwise; the row says which), then, in one fresh process, step after step with the peak
  reset before each: ``Predictions.from_path`` (memory-mapped; its validation reads every
  value), top-label and class-wise ECE (``CalibrationAccumulator`` over ``prob_chunks``),
  ``confusion_matrix``, ``collapse_metrics``, the PCA frame (``projection_frame``, which caches
  it) and ``explore(p)`` (which then reads the cached frame). Pages of a memory-mapped file
  count in RSS while they are resident, though the kernel may drop them at any time; so each
  step also reports its peak anonymous memory (``RssAnon``, sampled every 20 ms), what the
  process itself allocated. The files are deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from bench_calibration_report import make_imagenet_like
from bench_projection_scale import _peak, _reset_peak, _status
from timing import Timing, goal, make_row, skipped

HERE = Path(__file__).resolve().parent
PART = "explore-scale"
FULL = dict(n=50_000, c=1_000, d=2_048, train=1_281_167)
QUICK = dict(n=3_000, c=100, d=128, train=20_000)
LIMIT_S = 10.0
LIMIT_RSS = 2 * 2**30
#: Rows written per chunk of the memory-mapped training set.
WRITE_ROWS = 32_768


def make_features(y_pred: np.ndarray, d: int, *, seed: int = 1, dtype: type = np.float32,
                  out: np.ndarray | None = None) -> np.ndarray:
    """ReLU features: the mean of the predicted class plus unit Gaussian noise, clipped at 0.

    Class means are ``max(L B + 1, 0)`` with ``L`` (n_classes, 32) Gaussian scaled by
    ``4 * 0.85**k`` and ``B`` a random orthonormal (32, d) basis times ``sqrt(d)``: a decaying
    spectrum, as penultimate features have. Written into ``out`` (e.g. a memory map) in chunks.
    """
    n, c = len(y_pred), int(y_pred.max()) + 1
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((max(c, 1_000), 32)) * (4.0 * 0.85 ** np.arange(32))
    basis = np.linalg.qr(rng.standard_normal((d, 32)))[0].T * np.sqrt(d)
    means = np.maximum(latent @ basis + 1.0, 0).astype(np.float32)
    f = np.empty((n, d), dtype=dtype) if out is None else out
    for s in range(0, n, WRITE_ROWS):
        block = rng.standard_normal((min(WRITE_ROWS, n - s), d), dtype=np.float32)
        block += means[y_pred[s:s + WRITE_ROWS]]
        np.maximum(block, 0, out=block)
        f[s:s + WRITE_ROWS] = block
    return f


# ----- child processes ----------------------------------------------------------------------------
class _AnonPeak:
    """The largest ``RssAnon`` seen, sampled every 20 ms in a thread while the block runs."""

    def __enter__(self) -> _AnonPeak:
        self.peak, self._stop = _status("RssAnon") or 0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _status("RssAnon") or 0)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status("RssAnon") or 0)


def _step(call) -> tuple[object, dict]:
    before = _status("VmRSS")
    _reset_peak()
    with _AnonPeak() as anon:
        t = time.perf_counter()
        value = call()
        seconds = time.perf_counter() - t
    return value, {"seconds": seconds, "peak_rss": _peak(), "rss_before": before,
                   "peak_anon": anon.peak}


def child_explore(n: int, c: int, d: int) -> dict:
    import labviz

    y, z = make_imagenet_like(n, c)
    f = make_features(z.argmax(axis=1), d)
    p = labviz.Predictions.from_arrays(y_true=y, logits=z, features=f)
    del y, z, f
    ex, out = _step(lambda: labviz.explore(p))
    out["view"] = type(ex.projection).__name__
    return out


def child_imports() -> dict:
    t = time.perf_counter()
    import jscatter  # noqa: F401  (the WebGL view above 20,000 points)

    import labviz.widgets.explorer  # noqa: F401

    return {"seconds": time.perf_counter() - t}


def child_pca(n: int, c: int, d: int, which: str, out_path: str) -> dict:
    y, z = make_imagenet_like(n, c)
    f = make_features(z.argmax(axis=1), d)
    del y, z
    if which == "labviz":
        from labviz.compute.projection import project

        call = lambda: project(f)  # noqa: E731
    elif which == "sklearn PCA":
        from sklearn.decomposition import PCA

        call = lambda: PCA(n_components=2, random_state=0).fit_transform(f)  # noqa: E731
    else:
        from sklearn.decomposition import IncrementalPCA

        call = lambda: IncrementalPCA(n_components=2, batch_size=5 * d).fit(f).transform(f)  # noqa: E731
    emb, out = _step(call)
    np.save(out_path, np.asarray(emb, dtype=np.float64))
    return out


def child_train(folder: str) -> dict:
    import labviz
    from labviz.compute.calibration import CalibrationAccumulator
    from labviz.compute.collapse import collapse_metrics
    from labviz.compute.confusion import confusion_matrix
    from labviz.compute.projection import projection_frame

    steps: dict[str, dict] = {}
    p, steps["from_path"] = _step(lambda: labviz.Predictions.from_path(folder))

    def ece() -> tuple[float, float]:
        acc = CalibrationAccumulator(p.n_classes, n_bins=15)
        for rows, probs in p.prob_chunks():
            acc.update(p.y_true[rows], probs)
        return (acc.expected_calibration_error(),
                acc.expected_calibration_error(classwise=True))

    value, steps["ECE (top-label and class-wise)"] = _step(ece)
    steps["ECE (top-label and class-wise)"]["value"] = list(value)
    cm, steps["confusion_matrix"] = _step(
        lambda: confusion_matrix(p.y_true, p.y_pred, n_classes=p.n_classes))
    m, steps["collapse_metrics"] = _step(lambda: collapse_metrics(p))
    steps["collapse_metrics"]["value"] = [m.intra, m.inter, m.nc1]
    _, steps["PCA frame"] = _step(lambda: projection_frame(p))
    _, steps["explore (cached PCA frame)"] = _step(lambda: labviz.explore(p))
    steps["features_dtype"] = str(p.features.dtype)
    return steps


def _child(args: list[str], cache: Path) -> dict:
    env = {**os.environ, "LABVIZ_CACHE_DIR": str(cache), "TQDM_DISABLE": "1"}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", *args],
                          env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {proc.stderr.strip().splitlines()[-3:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----- the training set on disk -----------------------------------------------------------------
def write_train(folder: Path, n: int, c: int, d: int, log=print) -> str:
    """Write y_true, logits and features ``.npy`` files in chunks; the features' dtype."""
    need = n * (c + d) * 4 + n * 8
    free = shutil.disk_usage(folder).free
    dtype = np.float32 if free > 1.2 * need else np.float16
    log(f"  writing {n:,} rows to {folder} ({free / 2**30:.0f} GB free; features {dtype.__name__})")
    y = np.lib.format.open_memmap(folder / "y_true.npy", "w+", np.int64, (n,))
    z = np.lib.format.open_memmap(folder / "logits.npy", "w+", np.float32, (n, c))
    step = 65_536
    for i, s in enumerate(range(0, n, step)):
        yy, zz = make_imagenet_like(min(step, n - s), c, seed=1000 + i)
        y[s:s + step], z[s:s + step] = yy, zz
    f = np.lib.format.open_memmap(folder / "features.npy", "w+", dtype, (n, d))
    make_features(np.asarray(z.argmax(axis=1)), d, out=f)
    for arr in (y, z, f):
        arr.flush()
    del y, z, f
    return np.dtype(dtype).name


# ----- the part -----------------------------------------------------------------------------------
def _t(seconds: float | None) -> Timing:
    return Timing(seconds=seconds, reps=1, all_seconds=[] if seconds is None else [seconds])


def run(quick: bool = False, log=print, large: bool = False) -> list[dict]:
    size = QUICK if quick else FULL
    n, c, d = size["n"], size["c"], size["d"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="labviz-bench-explore-") as tmp:
        tmp = Path(tmp)
        imports = _child(["imports"], tmp / "cache-imports")["seconds"]
        res = _child(["explore", str(n), str(c), str(d)], tmp / "cache-explore")
        log(f"  explore {n:,}: {res['seconds']:.1f} s, peak {res['peak_rss'] / 2**30:.2f} GB")
        rows.append(make_row(
            PART, f"explore {n:,} x {c:,} x {d:,}", {"n": n, "c": c, "d": d, **res,
                                                     "imports_s": imports},
            labviz=_t(res["seconds"]),
            goals=[goal(f"< {LIMIT_S:.0f} s", res["seconds"], LIMIT_S),
                   goal("peak RSS < 2 GB", res["peak_rss"], LIMIT_RSS, unit="bytes")],
            notes=f"first call in a fresh process, imports included ({imports:.1f} s of them in "
                  f"a fresh process alone); {res['view']} panels"))
        pca, embs = {}, {}
        for which in ("labviz", "sklearn PCA", "sklearn IncrementalPCA"):
            out = tmp / f"pca-{len(pca)}.npy"
            pca[which] = _child(["pca", str(n), str(c), str(d), which, str(out)], tmp / "c")
            embs[which] = np.load(out)
        scale = np.abs(embs["labviz"]).max()
        diffs = {k: float(np.abs(np.abs(e) - np.abs(embs["labviz"])).max() / scale)
                 for k, e in embs.items() if k != "labviz"}
        peers = {k: Timing(seconds=pca[k]["seconds"], reps=1, value=diffs[k]) for k in diffs}
        rows.append(make_row(
            PART, f"PCA {n:,} x {d:,}", {"n": n, "d": d, "calls": pca, "max_diff": diffs},
            labviz=_t(pca["labviz"]["seconds"]), peers=peers,
            notes="peak RSS (inputs included) " + ", ".join(
                f"{k} {v['peak_rss'] / 2**30:.2f} GB" for k, v in pca.items())
                  + "; max_diff: |coordinates| (signs aside) against labviz's, of the range"))
        if not (large or quick):
            log("  train 1.28M: not run (run.py --large)")
            return rows
        train = tmp / "train"
        train.mkdir()
        try:
            dtype = write_train(train, size["train"], c, d, log)
            steps = _child(["train", str(train)], tmp / "cache-train")
        finally:
            shutil.rmtree(train, ignore_errors=True)
        for name, st in steps.items():
            if not isinstance(st, dict):
                continue
            log(f"  train {name}: {st['seconds']:.1f} s, peak RSS {st['peak_rss'] / 2**30:.2f} GB, "
                f"anonymous {st['peak_anon'] / 2**30:.2f} GB")
            rows.append(make_row(
                PART, f"train {size['train']:,}: {name}",
                {"n": size["train"], "c": c, "d": d, "features": dtype, **st},
                labviz=_t(st["seconds"]),
                goals=[goal("peak anonymous memory < 2 GB", st["peak_anon"], LIMIT_RSS,
                            unit="bytes")],
                notes=f"memory-mapped .npy ({dtype} features); peak RSS {st['peak_rss'] / 2**30:.2f}"
                      f" GB with file pages, anonymous {st['peak_anon'] / 2**30:.2f} GB"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs="+")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--large", action="store_true", help="also the 1.28M training set")
    args = parser.parse_args(argv)
    if args.child:
        kind, rest = args.child[0], args.child[1:]
        if kind == "imports":
            out = child_imports()
        elif kind == "explore":
            out = child_explore(*map(int, rest))
        elif kind == "pca":
            out = child_pca(int(rest[0]), int(rest[1]), int(rest[2]), rest[3], rest[4])
        else:
            out = child_train(rest[0])
        print(json.dumps(out))
        return 0
    for row in run(quick=args.quick, large=args.large):
        print(json.dumps({k: row[k] for k in ("case", "labviz", "goals", "notes")}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
