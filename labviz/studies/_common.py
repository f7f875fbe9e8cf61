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
    "tkd-ls": "tiny student of LS teacher", "ce+ts": "CE + temperature scaling",
}


def labelled(table: pd.DataFrame, column: str = "family") -> pd.DataFrame:
    """``table`` with its family codes replaced by display names (:data:`FAMILY_LABELS`), in a
    column named "loss" at the same place, for printing; codes without a name are kept.

    >>> labelled(pd.DataFrame({"family": ["ls0.1", "ls-0.1", "other"], "ece": [0.1, 0.2, 0.3]})).loss.tolist()
    ['LS α=0.1', 'LS α=−0.1', 'other']
    """
    if column not in table.columns:
        raise ValueError(f"`column` must name a column of `table`; got {column!r}, "
                         f"columns {list(table.columns)}.")
    out = table.copy()
    out[column] = out[column].map(lambda f: FAMILY_LABELS.get(f, f))
    out.attrs = dict(table.attrs)
    return out.rename(columns={column: "loss"})


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


#: Columns that hold fitted temperatures, printed with two decimals (T = 1.69, not 1.6883).
_TEMPERATURE_COLUMNS = ("T", "temperature", "fitted T")
#: Columns that hold a smoothing weight α, printed as written (0.05, not 0.0500).
_ALPHA_COLUMNS = ("alpha", "α", "LS α")
#: Said beneath every table that holds a "mean ± sd" cell.
PLUS_MINUS_NOTE = "mean ± sd: ± is one sample standard deviation (ddof=1) over the seeds"


def table_note(table: pd.DataFrame) -> str:
    """The note printed beneath ``table``: ``table.attrs["note"]`` (set by the table's builder),
    then what "±" means when a cell holds one, then what "—" means when a cell is missing.

    >>> table_note(pd.DataFrame({"n": [3], "ECE": ["0.040 ± 0.005"]}))
    'mean ± sd: ± is one sample standard deviation (ddof=1) over the seeds, counted in column n.'
    """
    parts = [str(table.attrs["note"])] if table.attrs.get("note") else []
    cells = [str(c) for c in table.to_numpy().ravel()]
    if any(" ± " in c for c in cells):
        counted = next((c for c in ("n", "seeds", "n_seeds") if c in table.columns), None)
        parts.append(PLUS_MINUS_NOTE + (f", counted in column {counted}" if counted else "") + ".")
    if table.isna().to_numpy().any() and not table.attrs.get("note"):
        parts.append("—: no value for this row.")
    return " ".join(parts)


def _formats(table: pd.DataFrame, digits: int) -> dict[str, str]:
    """Per float column: 2 decimals for temperatures, α as written, none for whole numbers, else
    ``digits``."""
    formats = {}
    for col in table.columns:
        if not pd.api.types.is_float_dtype(table[col]):
            continue
        values = table[col].dropna().to_numpy()
        if str(col) in _TEMPERATURE_COLUMNS:
            formats[col] = "{:.2f}"
        elif str(col) in _ALPHA_COLUMNS:
            formats[col] = "{:g}"
        elif values.size and np.all(values == np.round(values)) and np.all(np.abs(values) < 1e6):
            formats[col] = "{:.0f}"
        else:
            formats[col] = f"{{:.{digits}f}}"
    return formats


def show_table(title: str, table: pd.DataFrame, digits: int = 4) -> None:
    """Print ``TABLE: title`` and display ``table`` (rich in JupyterLab, plain text elsewhere),
    with :func:`table_note` beneath it.

    Missing values show as "—"; floats get ``digits`` decimals, temperatures two, α as written,
    whole numbers none. The notebook tests look for the titles, so every key result a notebook states is
    checked to have been produced.
    """
    print(f"TABLE: {title}")
    note = table_note(table)
    try:
        from IPython.display import display
    except ImportError:  # outside IPython
        print(table.to_string(index=False, na_rep="—"))
        if note:
            print(note)
    else:
        styler = table.style.hide(axis="index").format(_formats(table, digits), na_rep="—")
        if note:
            styler = styler.set_caption(note).set_table_styles(
                [{"selector": "caption", "props": "caption-side: bottom; text-align: left; "
                                                  "font-size: 0.9em; padding-top: 4px;"}])
        display(styler)


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
