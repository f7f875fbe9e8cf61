"""The ``labviz`` command: ``zoo build|list|verify``, ``cache info|clear|warm``, ``lab``, ``app``, ``figures``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


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
    parser = argparse.ArgumentParser(prog="labviz", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

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
