"""Shared helpers of the studies: zoo families, mean ± sd summaries, printed tables."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from labviz import zoo

FASHION = "fashion-mnist"


#: Display names of the loss families, in teaching order.
FAMILY_LABELS: dict[str, str] = {
    "ce": "CE", "ls0.1": "LS α=0.1", "maxsup0.1": "MaxSup α=0.1", "ls-0.1": "LS α=−0.1",
    "student": "student alone", "kd-ce": "student of CE teacher", "kd-ls": "student of LS teacher",
    "nls-sched": "LS α=−0.1 scheduled, unfloored", "nls-sched-floor": "LS α=−0.1 scheduled",
    "tstudent": "tiny student alone", "tkd-ce": "tiny student of CE teacher",
    "tkd-ls": "tiny student of LS teacher",
}


def members(family: str, dataset: str = FASHION) -> list[str]:
    """Names of the final checkpoints (not snapshots) of one family, by seed."""
    found = [e for e in zoo.read_manifest()
             if e["family"] == family and e["dataset"] == dataset and e["epoch"] == e["epochs_total"]]
    if not found:
        raise ValueError(f"`family` must name a zoo family of {dataset!r}; got {family!r}.")
    return [e["name"] for e in sorted(found, key=lambda e: (e["alpha"], e["seed"]))]


def mean_sd(values: Sequence[float], digits: int = 3) -> str:
    """``"mean ± sd"`` (sample sd, ddof=1) of ``values``, ignoring NaN; just the value when there
    is one, and "—" when there is none.

    >>> mean_sd([0.1, 0.2, 0.3]), mean_sd([float("nan")])
    ('0.200 ± 0.100', '—')
    """
    arr = np.asarray(values, dtype=float)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return "—"
    if arr.size == 1:
        return f"{arr[0]:.{digits}f}"
    return f"{arr.mean():.{digits}f} ± {arr.std(ddof=1):.{digits}f}"


def summarize(table: pd.DataFrame, by: str | Sequence[str], metrics: Sequence[str],
              digits: int = 3) -> pd.DataFrame:
    """One row per group of ``by`` (a column or several), each metric as ``"mean ± sd"`` over the
    group's rows (seeds)."""
    keys = [by] if isinstance(by, str) else list(by)
    rows = []
    for group, part in table.groupby(keys, sort=False):
        row = dict(zip(keys, group, strict=True))
        row["n"] = len(part)
        row.update({m: mean_sd(part[m], digits) for m in metrics})
        rows.append(row)
    return pd.DataFrame(rows)


def show_table(title: str, table: pd.DataFrame) -> None:
    """Print ``TABLE: title`` and display ``table`` (rich in JupyterLab, plain text elsewhere).

    The notebook tests look for these titles, so every key result a notebook states is checked to
    have been produced.
    """
    print(f"TABLE: {title}")
    try:
        from IPython.display import display
    except ImportError:  # outside IPython
        print(table.to_string(index=False))
    else:
        display(table.style.hide(axis="index").format(precision=4))


def by_seed(table: pd.DataFrame, column: str, **where: object) -> dict[int, float]:
    """Seed -> ``column`` of the rows of ``table`` that match every ``where`` (e.g. family="ce").

    >>> t = pd.DataFrame({"family": ["ce", "ce", "ls"], "seed": [0, 1, 0], "ece": [0.1, 0.2, 0.3]})
    >>> by_seed(t, "ece", family="ce")
    {0: 0.1, 1: 0.2}
    """
    rows = table
    for key, value in where.items():
        rows = rows[rows[key] == value]
    if rows.seed.duplicated().any():
        raise ValueError(f"`where` must pick one row per seed; got seeds {rows.seed.tolist()}.")
    return {int(s): float(x) for s, x in zip(rows.seed, rows[column], strict=True)}
