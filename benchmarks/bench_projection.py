"""Projections: PCA and UMAP through ``labviz.compute.projection.projection_frame``, cold, warm and cached.

* cold: the first call in a fresh Python process with an empty cache (so UMAP pays numba's JIT
  compilation; numba's own on-disk cache, if warm from an earlier run, is not cleared). The import
  time of labviz + the method's library is reported separately. UMAP's cold run is timed at the
  smallest size only: compilation does not grow with N, and 70k points take minutes per fit.
* warm: the same call (cache miss) in this process, after a small warm-up fit compiled the code.
* cached: the call again, now reloading the embedding from labviz's on-disk cache.

Features are synthetic: 10 Gaussian clusters in 64 dimensions (the zoo CNN's feature width),
float32, seeded, so that the timing does not depend on which checkpoints exist.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

from timing import Timing, best_of, make_row, restoring_env, skipped

FULL_SIZES = (10_000, 70_000)
QUICK_SIZES = (2_000,)
N_FEATURES = 64
#: UMAP epochs: umap-learn's default is 500 up to 10k points and 200 above; 70k points at 200
#: epochs take minutes on 2 cores, so the 70k case runs with fewer (reported in the table).
UMAP_EPOCHS = {10_000: None, 70_000: 100, 2_000: 50}

_COLD_SCRIPT = textwrap.dedent("""
    import json, sys, time
    t0 = time.perf_counter()
    import numpy as np
    from labviz.core.predictions import Predictions
    from labviz.compute.projection import projection_frame
    method, n_epochs = sys.argv[2], (None if sys.argv[3] == "None" else int(sys.argv[3]))
    if method == "umap":
        import umap  # noqa: F401
    else:
        import sklearn.decomposition  # noqa: F401
    t1 = time.perf_counter()
    d = np.load(sys.argv[1])
    p = Predictions.from_arrays(y_true=d["y"], logits=d["logits"], features=d["features"])
    t2 = time.perf_counter()
    projection_frame(p, method=method, n_epochs=n_epochs, cache=True)
    t3 = time.perf_counter()
    print(json.dumps({"import_s": t1 - t0, "first_call_s": t3 - t2}))
""")


def make_features(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    centres = rng.normal(scale=4.0, size=(10, N_FEATURES))
    feats = (centres[y] + rng.normal(size=(n, N_FEATURES))).astype(np.float32)
    logits = rng.normal(size=(n, 10)).astype(np.float32)
    logits[np.arange(n), y] += 3
    return {"y": y, "logits": logits, "features": feats}


def _cold(path: Path, method: str, n_epochs: int | None, cache: Path) -> dict:
    env = {**os.environ, "LABVIZ_CACHE_DIR": str(cache)}
    out = subprocess.run([sys.executable, "-c", _COLD_SCRIPT, str(path), method, str(n_epochs)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool = False, log=print) -> list[dict]:
    from labviz.core.predictions import Predictions
    from labviz.compute.projection import projection_frame

    sizes = QUICK_SIZES if quick else FULL_SIZES
    rows = []
    with restoring_env("LABVIZ_CACHE_DIR"), \
            tempfile.TemporaryDirectory(prefix="labviz-bench-proj-") as tmp:
        tmp = Path(tmp)
        # Warm-up: compile umap/pynndescent numba code once, on a smaller set.
        # Above 4096 points UMAP takes its NN-descent path, which the warm-up must compile too.
        warm = make_features(5_000 if max(sizes) > 4096 else 1_000, seed=1)
        os.environ["LABVIZ_CACHE_DIR"] = str(tmp / "warmup")
        projection_frame(Predictions.from_arrays(y_true=warm["y"], logits=warm["logits"],
                                                 features=warm["features"]),
                         method="umap", n_epochs=10, cache=False)
        for n in sizes:
            arrays = make_features(n)
            path = tmp / f"features-{n}.npz"
            np.savez(path, **arrays)
            pred = Predictions.from_arrays(y_true=arrays["y"], logits=arrays["logits"],
                                           features=arrays["features"])
            for method in ("pca", "umap"):
                epochs = UMAP_EPOCHS[n] if method == "umap" else None
                once = method == "umap" and n > min(sizes)
                cold = None if once else _cold(path, method, epochs, tmp / f"cold-{method}-{n}")
                os.environ["LABVIZ_CACHE_DIR"] = str(tmp / f"warm-{method}-{n}")

                def call():
                    return projection_frame(pred, method=method, n_epochs=epochs, cache=True)

                miss = best_of(call, max_reps=1)  # empty cache: computes and stores
                hit = best_of(call, budget=1.0, max_reps=7)
                miss.value = hit.value = None
                if cold is None:  # saves minutes: JIT compilation does not grow with N
                    cold_t = skipped(f"timed warm only; the JIT cost is the cold - warm "
                                     f"difference at N={min(sizes)}")
                    cold = {"import_s": None}
                else:
                    cold_t = Timing(seconds=cold["first_call_s"], reps=1,
                                    all_seconds=[cold["first_call_s"]])
                note = ""
                if method == "umap":
                    note = (f"n_epochs={epochs}" if epochs is not None else
                            "n_epochs=umap default") + ", seeded (single-threaded)"
                row = make_row("projection", f"{method} N={n}",
                               {"method": method, "n_samples": n, "n_features": N_FEATURES,
                                "n_epochs": epochs},
                               labviz=miss, notes=note)
                row.update({
                    "cold": cold_t.to_json(), "cold_import_s": cold["import_s"],
                    "warm": miss.to_json(), "cached": hit.to_json(),
                    "cold_over_warm": (cold_t.seconds / miss.seconds
                                       if cold_t.seconds is not None else None),
                    "cached_over_warm": hit.seconds / miss.seconds,
                })
                rows.append(row)
                cold_txt = ("n/a" if cold_t.seconds is None else
                            f"{cold_t.seconds:8.3f}s (+import {cold['import_s']:.2f}s)")
                log(f"  {row['case']:<16} cold {cold_txt}  warm {miss.seconds:8.3f}s  "
                    f"cached {hit.seconds:.4f}s  {note}")
    return rows
