"""Run the labviz benchmarks and write results.md and results.json.

Usage::

    .venv/bin/python benchmarks/run.py                 # full run (make bench), < 15 min on 2 cores
    .venv/bin/python benchmarks/run.py --quick --out /tmp/bench   # small sizes, smoke test
    .venv/bin/python benchmarks/run.py --only calibration confusion
    .venv/bin/python benchmarks/run.py --only class-load --merge   # replace one part's rows
    .venv/bin/python benchmarks/run.py --only explore-scale html-report --large --merge

Parts: calibration (vs torchmetrics, netcal, scikit-learn), calibration-ci (bootstrap intervals
vs scipy.stats.bootstrap), calibration-report (every estimator with its interval at 50,000 x 1,000,
time and peak RSS), confusion (vs scikit-learn), confusion-scale (the 1,000-class heat map's
clustered order, build, JSON size and paint in headless Chromium at 50,000 and 1.28M samples,
beside scikit-learn's ConfusionMatrixDisplay), projection
(PCA/UMAP cold, warm, cached), projection-scale (PCA and sampled UMAP frames at 100k and 1M:
time, peak RSS, neighbour quality), predictions (from_model vs a bare torch loop), explorer (handler
latency), explorer-browser (what a person waits for in headless Chromium at 100k and
1M points), finds-browser (a clicked point's neighbours listed and a region's highlight
painted, in headless Chromium at 100k and 1M, with the index's build), explore-scale (explore()
at 50,000 x 1,000 x 2,048 and the metrics, PCA and explorer of a 1.28M memory-mapped training
set: time and peak memory, PCA beside scikit-learn's),
html-report (``labviz report`` at 50,000 x 1,000 x 2,048: wall time, peak RSS, the HTML's size
and its first figure painted in Chromium), label-errors (labviz's label-error candidates at
50,000 x 1,000, in memory and streamed, beside cleanlab called directly), neighbours (the
cosine neighbour index, one query, the per-sample scores, regions and error slices at 100k x 64,
beside exact search; ``--large`` adds 1M x 64 and 50k x 2,048), notebooks (nbclient wall
time, cold and
warm), class-load (30 students on the classroom
app against one kernel per visitor). ``--large`` adds the cases of the 1.28M-sample ImageNet
training set that write and read tens of GB and take minutes each (explore-scale's memory-mapped
training set, html-report's report on it, confusion-scale's in-page pair click at 1.28M, and
neighbours' 1M case); the
1.28M confusion matrix and figure are in every run. Each part's rows carry their goals; a part that fails is
recorded as failed and the others still run. With ``--merge``, the other parts' rows already in
``--out`` are kept, with the time each part was run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import json
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the bench_* modules sit next to this script

import bench_calibration  # noqa: E402
import bench_calibration_ci  # noqa: E402
import bench_calibration_report  # noqa: E402
import bench_class_load  # noqa: E402
import bench_confusion  # noqa: E402
import bench_confusion_scale  # noqa: E402
import bench_explorer  # noqa: E402
import bench_explore_scale  # noqa: E402
import bench_explorer_browser  # noqa: E402
import bench_finds_browser  # noqa: E402
import bench_html_report  # noqa: E402
import bench_label_errors  # noqa: E402
import bench_neighbours  # noqa: E402
import bench_notebooks  # noqa: E402
import bench_predictions  # noqa: E402
import bench_projection  # noqa: E402
import bench_projection_scale  # noqa: E402
import report  # noqa: E402
from timing import load_average, machine_info  # noqa: E402

PARTS = {
    "calibration": bench_calibration.run,
    "calibration-ci": bench_calibration_ci.run,
    "calibration-report": bench_calibration_report.run,
    "confusion": bench_confusion.run,
    "confusion-scale": bench_confusion_scale.run,
    "projection": bench_projection.run,
    "projection-scale": bench_projection_scale.run,
    "predictions": bench_predictions.run,
    "explorer": bench_explorer.run,
    "explorer-browser": bench_explorer_browser.run,
    "finds-browser": bench_finds_browser.run,
    "explore-scale": bench_explore_scale.run,
    "html-report": bench_html_report.run,
    "label-errors": bench_label_errors.run,
    "neighbours": bench_neighbours.run,
    "notebooks": bench_notebooks.run,
    "class-load": bench_class_load.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test, not numbers")
    parser.add_argument("--out", type=Path, default=HERE,
                        help="folder for results.md and results.json (default: benchmarks/)")
    parser.add_argument("--only", nargs="+", choices=list(PARTS), default=list(PARTS),
                        metavar="PART", help=f"parts to run, among {list(PARTS)}")
    parser.add_argument("--merge", action="store_true",
                        help="keep the other parts' rows of the results already in --out")
    parser.add_argument("--large", action="store_true",
                        help="add the 1.28M-sample cases (tens of GB on /tmp, tens of minutes)")
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
            run = PARTS[part]
            kw = {"large": args.large} if "large" in inspect.signature(run).parameters else {}
            rows += run(quick=args.quick, log=lambda s: print(s, flush=True), **kw)
        except Exception:  # one failing part must not lose the others' numbers
            errors[part] = traceback.format_exc(limit=3).strip().splitlines()[-1]
            traceback.print_exc()
        seconds[part] = time.perf_counter() - t
        print(f"[{part}] {seconds[part]:.1f} s", flush=True)
    machine["load_average_end"] = load_average()
    results = {
        "started": started, "quick": args.quick, "large": args.large, "parts": args.only,
        "part_started": dict.fromkeys(args.only, started),
        "elapsed_s": time.perf_counter() - t0, "part_seconds": seconds,
        "machine": machine, "torch_threads": torch.get_num_threads(),
        "rows": rows, "errors": errors,
    }
    if args.merge and (args.out / "results.json").is_file():
        results = merged(json.loads((args.out / "results.json").read_text()), results)
    json_path, md_path = report.write(args.out, results)
    print(f"wrote {md_path} and {json_path} in {results['elapsed_s']:.0f} s")
    return 1 if errors else 0


def merged(old: dict, new: dict) -> dict:
    """``new``'s parts, with ``old``'s rows, errors and times for the parts ``new`` did not run."""
    if old.get("quick") != new["quick"]:
        kinds = ["quick" if r.get("quick") else "full" for r in (new, old)]
        raise ValueError(f"cannot merge a {kinds[0]} run into results of a {kinds[1]} one")
    kept = [part for part in old["parts"] if part not in new["parts"]]
    first = old.get("part_started") or dict.fromkeys(old["parts"], old["started"])
    return {
        **new, "parts": [*kept, *new["parts"]],
        "part_started": {**{part: first[part] for part in kept}, **new["part_started"]},
        "part_seconds": {**{part: old["part_seconds"].get(part) for part in kept},
                         **new["part_seconds"]},
        "rows": [r for r in old["rows"] if r["part"] in kept] + new["rows"],
        "errors": {**{p: e for p, e in old.get("errors", {}).items() if p in kept},
                   **new["errors"]},
    }


if __name__ == "__main__":
    sys.exit(main())
