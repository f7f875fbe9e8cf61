"""The ``labviz`` command: ``report``, ``explore``, ``zoo build|list|verify``, ``cache info|clear|warm``,
``lab``, ``app``, ``figures``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from labviz import Predictions


#: What ``labviz report`` and ``labviz explore`` read (labviz.core.loaders tells it in full).
FORMATS_HELP = """\
PATH holds a classifier's predictions, as arrays named like Predictions.from_arrays's arguments:
  y_true (n_samples,) int, required; logits or probs (n_samples, n_classes), exactly one;
  optional: features (n_samples, n_features), y_given and ids (n_samples,),
  images (n_samples, height, width), weights (n_classes, n_features), bias (n_classes,),
  class_names (n_classes strings) and name (a string).
Formats, chosen by PATH:
  preds.npz          np.savez: one member per key (class_names a string array); uncompressed
                     members are memory-mapped.
  a folder           one KEY.npy per array (memory-mapped); class names in class_names.json
                     (a JSON list) or class_names.txt (one per line); the folder's name is the name.
  preds.parquet/.pq  one row per sample: int columns y_true (y_given, ids), list columns logits
                     or probs (features); class_names (JSON list) and name in the schema
                     metadata. No weights, bias or images.
  preds.safetensors  one tensor per array key; class_names (JSON list) and name in the header's
                     __metadata__; memory-mapped.
Nothing is unpickled. A damaged or mislabelled file is refused with a message naming it (exit 2).
"""


def _load(path: str) -> Predictions | str:
    """The predictions at ``path``, or the loader's message saying why they cannot be read."""
    from labviz import Predictions

    try:
        return Predictions.from_path(path)
    except (ValueError, TypeError, OSError) as exc:  # FileNotFoundError and PermissionError too
        return str(exc) or f"{path}: {type(exc).__name__}"


def _report(args: argparse.Namespace) -> int:
    from labviz.figures.html_report import write_report

    p = _load(args.path)
    if isinstance(p, str):
        print(f"labviz report: error: {p}", file=sys.stderr)
        return 2
    out = write_report(p, args.out, figures_dir=args.figures, progress=not args.no_progress,
                       n_boot=args.n_boot)
    size = out.stat().st_size
    print(f"Report: {out.resolve()} ({size / 1e6:.1f} MB)")
    if args.figures:
        print(f"Figures (PDF and PNG): {Path(args.figures).resolve()}")
    return 0


def _explore(args: argparse.Namespace) -> int:
    from labviz.servers.jupyter import launch_lab, write_explore_notebook

    from labviz.core.loaders import read_predictions

    # A file the notebook could not read is refused before a server starts. Only its structure
    # is read here (headers, keys, memory maps): the notebook's kernel checks the values.
    try:
        read_predictions(args.path)
    except (ValueError, TypeError, OSError) as exc:
        print(f"labviz explore: error: {exc}", file=sys.stderr)
        return 2
    notebook, written = write_explore_notebook(Path(args.path), Path(args.notebooks))
    print(f"{'Wrote' if written else 'Reopening (kept as it is)'} {notebook}")
    return launch_lab(notebook.parent, port=args.port, open_path=notebook.name)


def _zoo(args: argparse.Namespace) -> int:
    from labviz import zoo
    from labviz.zoo import generative

    if args.action == "build":
        entries = zoo.build(args.only or None, dataset=args.dataset, force=args.force, jobs=args.jobs)
        if not args.only and args.dataset in (None, generative.DATASET):
            entries = entries + [generative.build_generator(force=args.force)]  # the inversion prior
        runs = [e for e in entries if e["train_seconds"] is not None]
        total = sum(e["train_seconds"] for e in runs)
        size = sum(e["bytes"] for e in entries)
        print(f"{len(entries)} entries ({len(runs)} runs), {size / 1e6:.1f} MB, "
              f"{total / 60:.1f} min of training in all.")
    elif args.action == "list":
        for e in zoo.read_manifest():
            print(f"{e['name']:<28} {e['dataset']:<14} {e['loss']:<6} alpha={e['alpha']:<5} "
                  f"epoch={e['epoch']:<3} acc={e['test_accuracy']:.4f} ece={e['test_ece']:.4f}")
    elif args.action == "verify":
        bad = zoo.verify() + generative.verify()
        print("all checkpoints match their sha256" if not bad else f"failed: {bad}")
        return 1 if bad else 0
    return 0


def _cache(args: argparse.Namespace) -> int:
    from labviz.core import cache

    if args.action == "info":
        print(json.dumps(cache.cache_info(), indent=1))
    elif args.action == "warm":
        from fnmatch import fnmatchcase

        from labviz import zoo

        names = [n for n in zoo.names() if any(fnmatchcase(n, pattern) for pattern in args.runs)]
        if not names:
            print(f"no zoo checkpoint matches {args.runs}; see `labviz zoo list`")
            return 1
        computed = zoo.warm(names, args.splits, jobs=args.jobs)
        print(f"{computed} activations computed, {len(names) * len(args.splits) - computed} "
              f"already cached, in {cache.cache_dir()}")
    else:
        print(f"removed {cache.clear_cache()} cache entries from {cache.cache_dir()}")
    return 0


def _lab(args: argparse.Namespace) -> int:
    from labviz.servers.jupyter import launch_lab

    return launch_lab(Path(args.notebooks).resolve(), port=args.port)


def _figures(args: argparse.Namespace) -> int:
    from labviz.report import INDEX_FILE, build_figures

    for r in build_figures(args.out, dataset=args.dataset, fmt=args.format):
        detail = r.note if r.status == "skipped" else f"{r.seconds:.1f} s" if r.status == "written" else ""
        print(f"{r.status:<9} {r.file or r.stem:<24} {detail}")
    print(f"Contact sheet: {Path(args.out) / INDEX_FILE}")
    return 0


def _app(args: argparse.Namespace) -> int:
    from labviz.servers.jupyter import launch_app

    return launch_app(Path(args.notebook).resolve(), port=args.port, board_port=args.board_port,
                      lan=args.lan, workers=args.workers, pool_size=args.pool_size,
                      refill_after=args.refill_after,
                      board_path=None if args.board is None else Path(args.board).resolve())


def main(argv: list[str] | None = None) -> int:
    """Run the ``labviz`` command with ``argv`` (default: ``sys.argv[1:]``); return its exit status."""
    parser = argparse.ArgumentParser(prog="labviz", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    r = sub.add_parser("report", help="one self-contained HTML report of your predictions "
                                      "(opens offline)", epilog=FORMATS_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Calibration estimators with 95% intervals, reliability and "
                                   "CORP diagrams, confusion and its top pairs,\nthe per-class "
                                   "table, label-error candidates, collapse metrics and the "
                                   "template plane\nof the most confused triple, in one HTML file "
                                   "that opens offline.")
    r.add_argument("path", metavar="PATH", help="predictions: .npz, a folder of .npy, .parquet or "
                                                ".safetensors (see below)")
    r.add_argument("--out", default="report.html", help="the HTML file (default: report.html)")
    r.add_argument("--figures", metavar="DIR", help="also write each figure there as PDF and PNG")
    r.add_argument("--n-boot", type=int, default=1000,
                   help="bootstrap replicas of each interval (default 1000)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    r.set_defaults(func=_report)

    e = sub.add_parser("explore", help="JupyterLab on a notebook that loads your predictions and "
                                       "shows the explorer", epilog=FORMATS_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Writes NOTEBOOKS/<name of PATH>.ipynb, which loads PATH and "
                                   "shows labviz.explore,\nthen serves it like `labviz lab`: on "
                                   "127.0.0.1 with a token, the URL printed once the server\n"
                                   "answers, no browser opened. A notebook there that loads PATH "
                                   "is reopened as it is;\none that loads another file, or is not "
                                   "labviz's, is left alone and a new name taken.")
    e.add_argument("path", metavar="PATH", help="predictions: .npz, a folder of .npy, .parquet or "
                                                ".safetensors (see below)")
    e.add_argument("--notebooks", default="labviz-explore",
                   help="folder for the notebook (default: ./labviz-explore)")
    e.add_argument("--port", type=int, default=8888)
    e.set_defaults(func=_explore)

    z = sub.add_parser("zoo", help="build, list or verify the checkpoint zoo")
    z.add_argument("action", choices=["build", "list", "verify"])
    z.add_argument("--dataset", choices=["fashion-mnist", "digits"])
    z.add_argument("--only", nargs="*", help="run names to (re)build")
    z.add_argument("--force", action="store_true", help="retrain even up-to-date entries")
    z.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs trained in parallel")
    z.set_defaults(func=_zoo)

    c = sub.add_parser("cache", help="inspect, clear or warm the activation/projection cache")
    c.add_argument("action", choices=["info", "clear", "warm"])
    c.add_argument("runs", nargs="*", default=["*"],
                   help="warm: zoo checkpoints, by name or pattern (fmnist-ce-s*); default all")
    c.add_argument("--splits", nargs="+", default=["val", "test"], choices=["train", "val", "test"])
    c.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="warm: processes at once")
    c.set_defaults(func=_cache)

    lab = sub.add_parser("lab", help="JupyterLab on the notebooks, on 127.0.0.1 with a token")
    lab.add_argument("--notebooks", default="notebooks")
    lab.add_argument("--port", type=int, default=8888)
    lab.set_defaults(func=_lab)

    from labviz.servers.jupyter import DEFAULT_POOL_SIZE, DEFAULT_REFILL_AFTER

    app = sub.add_parser("app", help="the classroom app (live training + explorer) with Voilà, "
                                     "a shared training service and the class's board, on "
                                     "127.0.0.1 with a token for students and one for the teacher")
    app.add_argument("--notebook", default="notebooks/app.ipynb")
    app.add_argument("--port", type=int, default=8866, help="the students' app")
    app.add_argument("--board-port", type=int, default=8867, help="the teacher's board")
    app.add_argument("--workers", type=int, default=None,
                     help="training worker processes (default: one per core)")
    app.add_argument("--pool-size", type=int, default=DEFAULT_POOL_SIZE,
                     help=f"preheated visitor kernels (default {DEFAULT_POOL_SIZE}; 0: none)")
    app.add_argument("--refill-after", type=float, default=DEFAULT_REFILL_AFTER, metavar="SECONDS",
                     help="start a taken kernel's replacement this long after "
                          f"(default {DEFAULT_REFILL_AFTER:g})")
    app.add_argument("--board", default=None, help="the board's SQLite file (kept across restarts)")
    app.add_argument("--lan", action="store_true",
                     help="listen on every interface, for students on the local network "
                          "(prints a warning)")
    app.set_defaults(func=_app)

    f = sub.add_parser("figures", help="write the notebooks' headline figures as static files")
    f.add_argument("--out", required=True, help="output folder; index.md and figures.json go there too")
    f.add_argument("--dataset", choices=["fashion-mnist", "digits"], default="fashion-mnist")
    f.add_argument("--format", choices=["png", "svg", "pdf"], default="png")
    f.set_defaults(func=_figures)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
