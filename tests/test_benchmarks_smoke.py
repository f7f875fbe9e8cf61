"""benchmarks/run.py --quick runs its calibration part and writes results.md and results.json.

Checks the files and their structure, never the timings.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"

# the calibration part's peers; looked up, not imported: importing them takes seconds in every
# process that collects this file
pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(peer) is None for peer in ("torchmetrics", "netcal")),
    reason="the benchmarks' peers torchmetrics and netcal are not installed")


@pytest.fixture(scope="module")
def quick_calibration(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run([sys.executable, str(RUN), "--quick", "--only", "calibration",
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def test_quick_run_writes_both_files(quick_calibration):
    assert (quick_calibration / "results.md").is_file()
    assert (quick_calibration / "results.json").is_file()


def test_json_holds_raw_numbers_and_machine_info(quick_calibration):
    results = json.loads((quick_calibration / "results.json").read_text())
    assert results["quick"] is True and results["parts"] == ["calibration"]
    assert results["errors"] == {}
    machine = results["machine"]
    assert {"cpu_count", "cpu_model", "versions", "load_average", "speed_probe_s"} <= set(machine)
    assert machine["speed_probe_s"] > 0
    rows = results["rows"]
    tasks = {r["case"].split()[0] for r in rows}
    assert tasks == {"ece", "curve", "curve-binary", "top-of-rows"}
    for r in rows:
        assert r["part"] == "calibration"
        assert r["labviz"]["seconds"] > 0 and r["labviz"]["reps"] >= 1
        assert r["bound"]["seconds"] > 0
        assert r["ratio_to_bound"] == pytest.approx(r["labviz"]["seconds"] / r["bound"]["seconds"])
        want = [] if r["case"].startswith("top-of-rows") else ["≤ fastest peer", "≤ 3× read-once bound"]
        assert [g["name"] for g in r["goals"]] == want
        for g in r["goals"]:
            assert g["status"] == "met" or g["status"].startswith("missed by ")
    ece = [r for r in rows if r["case"].startswith("ece")]
    assert {"torchmetrics", "netcal"} == set(ece[0]["peers"])
    # every peer computed the same ECE as labviz on the same inputs (float32 rounding aside)
    for r in ece:
        for peer in r["peers"].values():
            assert peer["value"]["abs_diff_to_labviz"] < 1e-5


def test_markdown_has_a_table_with_goal_columns(quick_calibration):
    text = (quick_calibration / "results.md").read_text()
    assert "## Calibration" in text
    assert "| case | labviz | netcal | numpy argmax | sklearn | torch max(dim=1) | torchmetrics | vs fastest peer | " \
           "vs read-once bound | goals |" in text
    assert "ece N=1e+04 C=100" in text
    assert "Goals:" in text and ("met" in text or "missed by" in text)


def test_quick_calibration_ci_part_runs(tmp_path):
    proc = subprocess.run([sys.executable, str(RUN), "--quick", "--only", "calibration-ci",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["errors"] == {} and results["parts"] == ["calibration-ci"]
    rows = results["rows"]
    assert {r["case"].split()[0] for r in rows} == {"ece-ci"}
    for r in rows:
        assert r["labviz"]["seconds"] > 0
        ci = r["labviz"]["value"]
        assert ci["low"] <= ci["estimate"] <= ci["high"]
    assert "## Calibration-ci" in (tmp_path / "results.md").read_text()


@pytest.mark.unit
def test_merge_keeps_the_other_parts_and_replaces_the_parts_run_again():
    sys.path.insert(0, str(RUN.parent))
    from run import merged

    def results(parts, started, quick=False):
        return {"started": started, "quick": quick, "parts": parts,
                "part_started": dict.fromkeys(parts, started),
                "part_seconds": dict.fromkeys(parts, 1.0),
                "rows": [{"part": p, "case": f"{p} {started}"} for p in parts],
                "errors": {parts[-1]: "boom"}}

    old = results(["calibration", "class-load"], "monday")
    new = results(["class-load"], "friday")
    out = merged(old, new)
    assert out["parts"] == ["calibration", "class-load"]
    assert out["part_started"] == {"calibration": "monday", "class-load": "friday"}
    assert [r["case"] for r in out["rows"]] == ["calibration monday", "class-load friday"]
    assert out["errors"] == {"class-load": "boom"}  # monday's failure of class-load is gone
    with pytest.raises(ValueError, match="cannot merge a quick run into results of a full one"):
        merged(old, results(["class-load"], "friday", quick=True))
