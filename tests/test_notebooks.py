"""Every notebook runs top to bottom headless and prints its key tables and verdicts.

The notebooks live in git without outputs; this executes them with nbclient in a fresh kernel and
checks what they print. The README's table of verdicts must agree with what the notebooks measure.
Each notebook is one test, so that ``pytest -n 2`` runs two notebooks at a time.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from labviz.core.files import atomic_write_bytes

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


#: The tables each notebook must print (``TABLE: <title>``) and whether it states verdicts.
EXPECTED: dict[str, tuple[list[str], bool]] = {
    "00_tour": (["per-class metrics", "top confused pairs"], False),
    "01_when_does_label_smoothing_help": (["cluster tightness", "Table 3 layout", "distillation", "LS sweep"], True),
    "02_maxsup_and_collapse": (["MaxSup feature geometry", "within-class variance in and outside the templates' span",
                                "misclassified confidence"], True),
    "03_calibration_in_depth": (["calibration estimators with 95% intervals", "ECE variants",
                                 "ECE binning spread by evaluation-set size", "temperature scaling",
                                 "miscalibration mass by region class", "worst regions by seed",
                                 "miscalibration concentration, CE against LS α=0.1",
                                 "confidence on noise and fooling images"], True),
    "04_noisy_labels_early_learning": (["early learning", "beta mixture"], True),
    "05_label_errors_in_fashion_mnist": (["likely label errors", "label error pairs", "flagged rate",
                                          "neighbour overlap"], True),
    "06_negative_label_smoothing_and_inversion": (["inversion attack accuracy (latent)",
                                                  "inversion attack accuracy (pixel)"], True),
    "07_label_non_uniformity": (["accuracy by non-uniformity decile"], True),
    "08_live_classroom": (["live α sweep", "confidence against α", "class board"], False),
}

VERDICT = re.compile(r"VERDICT: (reproduced|partly reproduced|not reproduced|opposite|inconclusive) — ")
STATUS = re.compile(r"partly reproduced|not reproduced|(?<![a-z] )reproduced|opposite|inconclusive")


def _stdout(nb: nbformat.NotebookNode) -> str:
    return "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []) if out.get("output_type") == "stream")


@pytest.mark.unit
def test_every_notebook_is_expected_and_stored_without_outputs():
    assert {nb.stem for nb in NOTEBOOKS} == set(EXPECTED)
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        assert not any(c.get("outputs") or c.get("execution_count") for c in cells
                       if c["cell_type"] == "code"), path.name


#: The notebooks that take longest, in the order they run first: ``pytest -n 2`` hands each worker
#: two tests to start with, so one worker runs 03 then 06, and the other 01 then 02 (which reuses
#: 01's activations from the shared cache, conftest.py's ``zoo_cache``); the short rest go to
#: whichever worker frees up first.
LONGEST_FIRST = ("03_calibration_in_depth", "06_negative_label_smoothing_and_inversion",
                 "01_when_does_label_smoothing_help", "02_maxsup_and_collapse")
SCHEDULED = sorted(NOTEBOOKS, key=lambda p: (LONGEST_FIRST + (p.stem,)).index(p.stem))


#: The tables of verdicts: the README's short one and the docs' with every effect.
VERDICT_TABLES = (ROOT / "README.md", ROOT / "docs" / "notebooks.md")


def _stated_verdicts(path: Path) -> dict[str, str]:
    """Notebook stem -> the verdict word(s) in the column "verdicts at this scale" of ``path``."""
    rows, column = {}, None
    for line in path.read_text().splitlines():
        if not line.startswith("|"):
            column = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if column is None and "verdicts at this scale" in cells:
            column = cells.index("verdicts at this scale")
        m = re.match(r"\[?`?(\d\d_[a-z_]+)", cells[0])
        if m and column is not None:
            rows[m.group(1)] = cells[column].lower()
    return rows


@pytest.mark.unit
def test_the_readme_and_the_docs_state_the_same_verdicts_for_every_notebook():
    readme, docs = (_stated_verdicts(table) for table in VERDICT_TABLES)
    assert set(readme) == set(docs) == {p.stem for p in NOTEBOOKS}
    for stem, stated in readme.items():
        assert set(STATUS.findall(stated)) == set(STATUS.findall(docs[stem])), stem


def _share_niceness(client: NotebookClient) -> None:
    """Give a kernel started by a test under ``nice`` (``make test``'s background tests) that
    niceness. A kernel is a session of its own, and on Linux with autogroup scheduling a session
    is a scheduling group of its own, which its niceness alone does not lower against the other
    sessions: the group's niceness, ``/proc/<pid>/autogroup``, does."""
    niceness = os.nice(0)
    process = getattr(client.km.provisioner, "process", None)
    group = Path(f"/proc/{getattr(process, 'pid', 0)}/autogroup")
    if niceness > 0 and group.exists():
        group.write_text(str(niceness))


@pytest.mark.parametrize("path", SCHEDULED, ids=[p.stem for p in SCHEDULED])
def test_notebook_runs_prints_its_results_and_the_readme_states_its_verdicts(path, shared_zoo_cache):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.on_notebook_start = lambda notebook: _share_niceness(client)
    client.execute()
    # for the docs build (which starts once every notebook is there) and the browser test of the
    # executed notebook: written whole, then renamed into place
    atomic_write_bytes(shared_zoo_cache / "executed" / path.name, nbformat.writes(nb).encode(),
                       mode=None)
    out = _stdout(nb)
    tables, has_verdict = EXPECTED[path.stem]
    for title in tables:
        assert f"TABLE: {title}" in out, f"{path.name} did not print table {title!r}"
    if has_verdict:
        assert VERDICT.search(out), f"{path.name} printed no verdict"
        measured = set(VERDICT.findall(out))
        for table in VERDICT_TABLES:
            stated = _stated_verdicts(table).get(path.stem, "")
            assert stated, f"{table.name} has no row for {path.stem}"
            assert set(STATUS.findall(stated)) == measured, (table.name, path.stem, measured, stated)


def test_app_notebook_is_stored_without_outputs_and_builds_the_app(shared_zoo_cache):
    """``make app`` serves notebooks/app.ipynb with Voilà; here it runs headless, as Voilà runs it."""
    path = ROOT / "notebooks" / "app.ipynb"
    nb = nbformat.read(path, as_version=4)
    assert not any(c.get("outputs") or c.get("execution_count") for c in nb.cells
                   if c.cell_type == "code")
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
