"""Timing helpers shared by the benchmark parts: best-of-k wall times, skips, goals, machine info."""

from __future__ import annotations

import gc
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata


@dataclass
class Timing:
    """Best (minimum) wall time of ``reps`` calls, in seconds; or a skip with its reason."""

    seconds: float | None
    reps: int = 0
    all_seconds: list[float] = field(default_factory=list)
    skip: str | None = None
    value: object = None  # what the call returned (a float or a small summary), for agreement checks

    def to_json(self) -> dict:
        out = asdict(self)
        plain = (int, float, str, dict, type(None))
        out["value"] = self.value if isinstance(self.value, plain) else None
        return out


@contextmanager
def restoring_env(name: str) -> Iterator[None]:
    """Put environment variable ``name`` back as it was on exit, whatever the body set it to."""
    old = os.environ.get(name)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def skipped(reason: str) -> Timing:
    return Timing(seconds=None, skip=reason)


def best_of(fn: Callable[[], object], *, budget: float = 2.0, max_reps: int = 7) -> Timing:
    """Call ``fn`` until ``budget`` seconds are spent or ``max_reps`` calls are made (at least one).

    The minimum is reported: on a shared machine, noise only ever adds time. The garbage collector
    is off while timing (as in ``timeit``), and collected before each call. Objects alive when
    timing starts (imported libraries, inputs) are frozen out of those collections: with torch and
    the peers loaded, each full collection would scan millions of them (0.4 s a call).
    """
    times: list[float] = []
    value = None
    was_enabled = gc.isenabled()
    gc.collect()
    gc.freeze()
    try:
        while True:
            gc.collect()
            gc.disable()
            start = time.perf_counter()
            value = fn()
            times.append(time.perf_counter() - start)
            gc.enable()
            if len(times) >= max_reps or sum(times) + min(times) > budget:
                break
    finally:
        if was_enabled:
            gc.enable()
    return Timing(seconds=min(times), reps=len(times), all_seconds=times, value=value)


def goal(name: str, value: float | None, limit: float, *, unit: str = "×", why: str = "") -> dict:
    """A goal ``value <= limit``; ``status`` is "met", "missed by X×" or "not measured"."""
    if value is None:
        status = "not measured"
    elif value <= limit:
        status = "met"
    else:
        status = f"missed by {value / limit:.2f}×"
    return {"name": name, "value": value, "limit": limit, "unit": unit, "status": status, "why": why}


def proc_bytes(path: str, field: str) -> int | None:
    """A ``field:  N kB`` line of a /proc file (e.g. ``/proc/meminfo``), in bytes; None where the
    file or the field is missing (not Linux)."""
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def mem_available_bytes() -> int | None:
    """``MemAvailable`` from /proc/meminfo (Linux), else None."""
    return proc_bytes("/proc/meminfo", "MemAvailable")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


#: The probe's loop, run as a module's top level (its names are globals, as in a script).
_PROBE = "total = 0\nfor i in range(10_000_000):\n    total += i * i\n"


def speed_probe() -> float:
    """CPU seconds of a fixed pure-Python loop (ten million multiply-adds at a module's top level).

    The 2-core machine the numbers here come from ran it in 1.1 s on some days and 2.0-2.5 s on
    others, with everything else slowed alike: times compare only beside their probe.
    ``python benchmarks/timing.py`` prints it.
    """
    start = time.process_time()
    exec(_PROBE, {})
    return time.process_time() - start


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages, where the platform has them."""
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def machine_info() -> dict:
    """What the numbers were measured on: CPU and its speed, memory, load, library versions."""
    mem = None
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    libs = ["labviz", "numpy", "torch", "scikit-learn", "torchmetrics", "netcal", "umap-learn",
            "numba", "dask", "distributed", "pyarrow", "nbclient", "pandas"]
    return {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_bytes": mem,
        "memory_available_bytes": mem_available_bytes(),
        "load_average": load_average(),
        "speed_probe_s": round(speed_probe(), 2),
        "versions": {name: _version(name) for name in libs},
        "torch_threads": _torch_threads(),
    }


def _torch_threads() -> int | None:
    if "torch" not in sys.modules:
        return None
    return sys.modules["torch"].get_num_threads()


def make_row(
    part: str,
    case: str,
    params: dict,
    *,
    labviz: Timing,
    peers: dict[str, Timing] | None = None,
    bound: Timing | None = None,
    goals: list[dict] | None = None,
    notes: str = "",
) -> dict:
    """One result: raw timings, the ratio to the fastest peer and to the read-once bound, and goals."""
    peers = peers or {}
    ran = {k: t for k, t in peers.items() if t.seconds is not None}
    fastest = min(ran, key=lambda k: ran[k].seconds) if ran else None
    have = labviz.seconds is not None
    ratio_peer = labviz.seconds / ran[fastest].seconds if (fastest and have) else None
    ratio_bound = (labviz.seconds / bound.seconds
                   if (bound is not None and bound.seconds and have) else None)
    return {
        "part": part,
        "case": case,
        "params": params,
        "labviz": labviz.to_json(),
        "peers": {k: t.to_json() for k, t in peers.items()},
        "bound": bound.to_json() if bound is not None else None,
        "fastest_peer": fastest,
        "ratio_to_fastest_peer": ratio_peer,
        "ratio_to_bound": ratio_bound,
        "goals": goals or [],
        "notes": notes,
    }


if __name__ == "__main__":
    print(f"speed probe: {speed_probe():.2f} s of CPU (1.1 s on a fast day here, 2.0-2.5 s on a slow one)")
