"""How far a zoo rebuild drifts on a CPU unlike the one that built the zoo.

Torch picks its float kernels by CPU: ATen's vectorised paths (``ATEN_CPU_CAPABILITY``: AVX-512,
AVX2 or the scalar default), oneDNN's convolutions (``ONEDNN_MAX_CPU_ISA``) and MKL's BLAS
(``MKL_ENABLE_INSTRUCTIONS``). Each environment below caps them as a CPU of another kind would,
retrains zoo runs in a fresh process under it and compares each rebuild with the shipped checkpoint
(:func:`labviz.zoo.rebuild_drift`). The tolerances of ``tests/test_zoo.py`` are sized from these
numbers. Usage::

    .venv/bin/python benchmarks/drift.py                    # digits runs, every environment
    .venv/bin/python benchmarks/drift.py --runs fmnist-ce-s0 --envs native avx2-cpu
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent

ENVS: dict[str, dict[str, str]] = {
    "native": {},
    "aten-avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "aten-default": {"ATEN_CPU_CAPABILITY": "default"},
    # an AVX2-only CPU (such as AMD Zen 2 or 3): every kernel family capped at AVX2
    "avx2-cpu": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                 "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    # a baseline x86-64 CPU: scalar ATen, SSE4 oneDNN and MKL
    "sse4-cpu": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
                 "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
}
DIGITS_RUNS = ["digits-ce-s0", "digits-ls0.1-s0", "digits-maxsup0.1-s0", "digits-ls-0.1-s0",
               "digits-student-s0", "digits-kd-ce-s0", "digits-kd-ls-s0"]


def _worker(runs: list[str]) -> None:
    import torch

    from labviz import zoo

    for name in runs:
        row = asdict(zoo.rebuild_drift(name))
        row["capability"] = torch.backends.cpu.get_cpu_capability()
        print(json.dumps(row), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=DIGITS_RUNS)
    parser.add_argument("--envs", nargs="+", choices=list(ENVS), default=list(ENVS))
    parser.add_argument("--out", type=Path, default=HERE / "drift.json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.runs)
        return 0
    rows = json.loads(args.out.read_text()) if args.out.exists() else []
    for env_name in args.envs:
        env = {**os.environ, **ENVS[env_name]}
        out = subprocess.run([sys.executable, __file__, "--worker", "--runs", *args.runs],
                             env=env, check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            row = {"env": env_name, **ENVS[env_name], **json.loads(line)}
            rows = [r for r in rows if (r["env"], r["name"]) != (env_name, row["name"])] + [row]
            print(f"{env_name:<13} {row['name']:<22} identical={row['bit_identical']!s:<5} "
                  f"max|dw|={row['max_weight_diff']:.2e} changed={row['prediction_changes']:>3}"
                  f"/{row['test_samples']} dacc={row['accuracy_diff']:+.5f} "
                  f"dece={row['ece_diff']:+.6f} max|dconf|={row['max_confidence_diff']:.2e}",
                  flush=True)
        args.out.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
