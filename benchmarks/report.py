"""Write results.json (raw numbers + machine info) and results.md (readable tables with goals)."""

from __future__ import annotations

import json
import math
from pathlib import Path

#: Why a goal can be missed, shown under the table when it is (the measured factor is in the table).
WHY_MISSED = {
    ("calibration", "≤ 3× read-once bound"): (
        "labviz validates its input while it bins: one compiled pass (`labviz.core._scan`) reads each "
        "row once for its sum (which catches NaN/inf), its minimum and its top class, and bins the "
        "top probability on the spot (equal-width bins; quantile bins need the confidences first "
        "and take a second pass over N values). At C=10 finding the top of 10-wide rows is "
        "several times the bound in every implementation: the `top-of-rows` rows time only that "
        "step for numpy's argmax, torch's max(dim=1) and the scan (which also sums and takes the "
        "minimum; they carry no goal). The label check and per-sample binning add N-long work "
        "that does not shrink with C. `curve-binary` reads only N floats, so its bound is one "
        "pass over N numbers while any binning makes several (scikit-learn takes about 3× "
        "labviz's time)."),
    ("calibration", "≤ fastest peer"): (
        "compare the absolute times: cases under a few ms are dominated by fixed per-call costs "
        "and by load from other processes."),
    ("confusion", "≤ fastest peer"): "not analysed per case; compare the absolute times.",
    ("predictions", "≤ 1.2× bare loop"): (
        "from_model also records the penultimate features (a forward hook and a copy per batch) "
        "and validates every array."),
    ("explorer", "< 300 ms"): "not analysed per case; see which handler and size miss.",
}


def _fmt_s(x: float | None) -> str:
    if x is None:
        return "—"
    if x < 1e-3:
        return f"{x * 1e6:.0f} µs"
    if x < 1:
        return f"{x * 1e3:.1f} ms"
    return f"{x:.2f} s"


def _fmt_ratio(x: float | None) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}×"


def _timing_cell(t: dict | None) -> str:
    if t is None:
        return "—"
    if t.get("skip"):
        return f"skipped: {t['skip']}"
    return f"{_fmt_s(t['seconds'])} (best of {t['reps']})"


def _load_cells(r: dict) -> list[str]:
    """The class-load table's cells of one case (``bench_class_load``)."""
    load, p = r["load"], r["params"]
    first, train, mem = load["first_view_s"], load["train_to_views_s"], load["memory"]
    errors = f"; **{len(load['errors'])} errors**" if load["errors"] else ""
    kernel = mem["kernel_mb_max"]
    return [f"{p['pages']} + {p['students'] - p['pages']}",
            " / ".join(_fmt_s(first[k]) for k in ("p50", "p95", "max")),
            ", ".join(_fmt_s(x) for x in sorted(load.get("pages_first_view_s", []))) or "—",
            " / ".join(_fmt_s(train[k]) for k in ("p50", "p95")) + errors,
            f"{mem['peak_total_mb'] / 1024:.1f} GB, {mem['n_kernels']} kernels",
            "—" if kernel is None else f"{kernel:.0f} MB", load["board"],
            _goals_cell(r["goals"])]


def _fmt_bytes(x: float) -> str:
    return f"{x / 2**30:.2f} GB" if x >= 2**30 else f"{x / 2**20:.0f} MB"


def _rss_cell(r: dict) -> str:
    """Peak RSS of the call and how much it added to the RSS before it (rows that measure it)."""
    if not r.get("peak_rss_bytes"):
        return "—"
    added = r.get("rss_added_bytes")
    return _fmt_bytes(r["peak_rss_bytes"]) + ("" if added is None else f" (+{_fmt_bytes(added)})")


def _goals_cell(goals: list[dict]) -> str:
    return "; ".join(f"{g['name']}: **{g['status']}**" if g["status"] != "met"
                     else f"{g['name']}: met" for g in goals) or "—"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _section(part: str, rows: list[dict]) -> list[str]:
    lines = [f"## {part.capitalize()}", ""]
    if part == "projection":
        lines += _table(
            ["case", "cold (fresh process)", "import", "warm (cache miss)", "cached reload",
             "cold / warm", "cached / warm", "notes"],
            [[r["case"], _timing_cell(r["cold"]), _fmt_s(r["cold_import_s"]),
              _fmt_s(r["warm"]["seconds"]), _fmt_s(r["cached"]["seconds"]),
              _fmt_ratio(r["cold_over_warm"]), _fmt_ratio(r["cached_over_warm"]), r["notes"]]
             for r in rows])
    elif part == "class-load":
        lines += _table(
            ["case", "pages + protocol clients", "open → first view p50 / p95 / max",
             "pages: first view", "Train → views p50 / p95", "server tree at peak",
             "largest visitor kernel", "board", "goals"],
            [[r["case"], *_load_cells(r)] if "load" in r
             else [r["case"], _timing_cell(r["labviz"]), *["—"] * 6, _goals_cell(r["goals"])]
             for r in rows])
    elif part == "notebooks":
        lines += _table(["notebook", "cold (empty cache)", "warm", "goals"],
                        [[r["case"], _timing_cell(r.get("cold")), _timing_cell(r.get("warm")
                                                                               or r["labviz"]),
                          _goals_cell(r["goals"])] for r in rows])
    else:
        peer_names = sorted({k for r in rows for k in r["peers"]})
        header = ["case", "labviz", *peer_names, "vs fastest peer"]
        has_bound = any(r["bound"] for r in rows)
        if has_bound:
            header.append("vs read-once bound")
        has_rss = any(r.get("peak_rss_bytes") for r in rows)
        if has_rss:
            header.append("labviz peak RSS (added)")
        header.append("goals")
        body = []
        for r in rows:
            cells = [r["case"], _timing_cell(r["labviz"])]
            cells += [_timing_cell(r["peers"].get(k)) for k in peer_names]
            fastest = f" ({r['fastest_peer']})" if r["fastest_peer"] and len(peer_names) > 1 else ""
            cells.append(_fmt_ratio(r["ratio_to_fastest_peer"]) + fastest)
            if has_bound:
                cells.append(_fmt_ratio(r["ratio_to_bound"]))
            if has_rss:
                cells.append(_rss_cell(r))
            cells.append(_goals_cell(r["goals"]))
            body.append(cells)
        lines += _table(header, body)
    missed = sorted({g["name"] for r in rows for g in r["goals"]
                     if g["status"].startswith("missed")})
    for name in missed:
        why = WHY_MISSED.get((part, name))
        if why:
            lines += ["", f"*Where “{name}” is missed:* {why}"]
    for r in rows:
        for g in r["goals"]:
            if g["status"] == "not measured" and g.get("why"):
                lines += ["", f"*{r['case']}: “{g['name']}” not measured:* {g['why']}"]
    return lines + [""]


def write(out_dir: Path, results: dict) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.md`` into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "results.json", out_dir / "results.md"
    json_path.write_text(json.dumps(results, indent=1, default=str) + "\n")

    rows = results["rows"]
    goals = [g for r in rows for g in r["goals"]]
    n_met = sum(g["status"] == "met" for g in goals)
    n_missed = sum(g["status"].startswith("missed") for g in goals)
    m = results["machine"]
    mem = m.get("memory_bytes")
    ram = f", {mem / 2**30:.0f} GB RAM" if mem else ""
    mode = "quick mode: small sizes, a smoke test only" if results["quick"] else "full run"
    starts = results.get("part_started") or {}
    if len(set(starts.values())) <= 1:
        when = f"Run {results['started']} ({mode}), {results['elapsed_s']:.0f} s in all."
    else:  # merged (run.py --merge): the machine line is the latest run's
        parts_at: dict[str, list[str]] = {}
        for part, at in starts.items():
            parts_at.setdefault(at, []).append(part)
        when = ("Parts run at different times: " + "; ".join(
            f"{', '.join(parts)} at {at}" for at, parts in parts_at.items())
            + f". The latest run ({mode}) took {results['elapsed_s']:.0f} s.")
    lines = [
        "# labviz benchmarks",
        "",
        f"{when} Raw numbers and machine details: `results.json`.",
        "",
        f"Machine: {m['cpu_model']}, {m['cpu_count']} CPUs{ram}; load average at start "
        f"{m['load_average']}, at end {m.get('load_average_end')}; speed probe "
        f"{m.get('speed_probe_s')} s (`benchmarks/timing.py`); torch threads "
        f"{m.get('torch_threads')}. Times are wall-clock, best of k repetitions "
        "(`time.perf_counter`, k adaptive to size); absolute times on a shared machine are noisy, "
        "so the tables lead with ratios measured side by side in the same run on the same inputs.",
        "",
        f"Goals: {n_met} met, {n_missed} missed, {len(goals) - n_met - n_missed} not measured.",
        "",
    ]
    for part in results["parts"]:
        part_rows = [r for r in rows if r["part"] == part]
        if part_rows:
            lines += _section(part, part_rows)
    for part, err in results.get("errors", {}).items():
        lines += [f"## {part.capitalize()}", "", f"Failed: `{err}`", ""]
    md_path.write_text("\n".join(lines))
    return json_path, md_path
