"""Execute the notebooks the docs render, once, where no executed copy exists yet.

``make test`` writes executed copies (tests/test_notebooks.py, to
``$LABVIZ_TEST_ZOO_CACHE/executed``); the docs render those and execute nothing. ``make docs``
runs this first: each notebook without a copy in the folder, or changed since its copy, is
executed with nbclient in a fresh kernel, on the activation cache (``LABVIZ_CACHE_DIR``, by default
``~/.cache/labviz``), and written there. After ``make test`` it does nothing.

Usage: ``python docs/execute_notebooks.py FOLDER``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def execute_missing(folder: Path) -> list[Path]:
    """Execute every notebook of ``notebooks/`` with no copy in ``folder``, or one older than the
    notebook; return the copies written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for path in NOTEBOOKS:
        target = folder / path.name
        if target.exists() and target.stat().st_mtime >= path.stat().st_mtime:
            continue
        start = time.perf_counter()
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        partial = target.with_suffix(".ipynb.partial")
        nbformat.write(nb, partial)
        partial.replace(target)  # a copy is whole or absent
        print(f"executed {path.name} in {time.perf_counter() - start:.0f} s", flush=True)
        written.append(target)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    execute_missing(Path(sys.argv[1]))
