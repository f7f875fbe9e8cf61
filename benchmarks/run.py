"""Run the labviz benchmarks and write results.md and results.json.

Usage::

    .venv/bin/python benchmarks/run.py                 # full run (make bench), < 15 min on 2 cores
    .venv/bin/python benchmarks/run.py --quick --out /tmp/bench   # small sizes, smoke test
    .venv/bin/python benchmarks/run.py --only calibration confusion

Parts: calibration (vs torchmetrics, netcal, scikit-learn), calibration-ci (bootstrap intervals
vs scipy.stats.bootstrap), confusion (vs scikit-learn), projection
(PCA/UMAP cold, warm, cached), projection-scale (PCA and sampled UMAP frames at 100k and 1M:
time, peak RSS, neighbour quality), predictions (from_model vs a bare torch loop), explorer (handler
latency), explorer-browser (what a person waits for in headless Chromium at 100k and
1M points), notebooks (nbclient wall time, cold and warm). Each part's rows carry their goals; a part
that fails is recorded as failed and the others still run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the bench_* modules sit next to this script

import bench_calibration  # noqa: E402
import bench_calibration_ci  # noqa: E402
import bench_confusion  # noqa: E402
import bench_explorer  # noqa: E402
import bench_explorer_browser  # noqa: E402
import bench_notebooks  # noqa: E402
import bench_predictions  # noqa: E402
import bench_projection  # noqa: E402
import bench_projection_scale  # noqa: E402
import report  # noqa: E402
from timing import machine_info  # noqa: E402

PARTS = {
    "calibration": bench_calibration.run,
    "calibration-ci": bench_calibration_ci.run,
    "confusion": bench_confusion.run,
    "projection": bench_projection.run,
    "projection-scale": bench_projection_scale.run,
    "predictions": bench_predictions.run,
    "explorer": bench_explorer.run,
    "explorer-browser": bench_explorer_browser.run,
    "notebooks": bench_notebooks.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test, not numbers")
    parser.add_argument("--out", type=Path, default=HERE,
                        help="folder for results.md and results.json (default: benchmarks/)")
    parser.add_argument("--only", nargs="+", choices=list(PARTS), default=list(PARTS),
                        metavar="PART", help=f"parts to run, among {list(PARTS)}")
    args = parser.parse_args(argv)

    import torch  # imported up front so that machine_info records its thread count

    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    machine = machine_info()
    rows, errors, seconds = [], {}, {}
    for part in args.only:
        print(f"[{part}]", flush=True)
        t = time.perf_counter()
        try:
            rows += PARTS[part](quick=args.quick, log=lambda s: print(s, flush=True))
        except Exception:  # one failing part must not lose the others' numbers
            errors[part] = traceback.format_exc(limit=3).strip().splitlines()[-1]
            traceback.print_exc()
        seconds[part] = time.perf_counter() - t
        print(f"[{part}] {seconds[part]:.1f} s", flush=True)
    machine["load_average_end"] = machine_info()["load_average"]
    results = {
        "started": started, "quick": args.quick, "parts": args.only,
        "elapsed_s": time.perf_counter() - t0, "part_seconds": seconds,
        "machine": machine, "torch_threads": torch.get_num_threads(),
        "rows": rows, "errors": errors,
    }
    json_path, md_path = report.write(args.out, results)
    print(f"wrote {md_path} and {json_path} in {results['elapsed_s']:.0f} s")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
