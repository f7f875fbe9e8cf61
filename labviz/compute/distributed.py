"""Calibration and confusion past one machine: mergeable statistics reduced by Dask.

A prediction set too big for one machine's memory (ImageNet-scale: millions of rows times a
thousand classes) is stored as a partitioned Parquet dataset, one row per sample: the true label
``y_true``, the predicted class ``y_pred`` and one probability column per class
(:func:`prob_columns`, written by :func:`write_parquet`). Calibration and confusion need only
*sufficient statistics* that add up across partitions: per-bin sample counts, confidence sums and
hit counts (:class:`labviz.compute.calibration.CalibrationAccumulator`) and confusion counts
(:class:`labviz.compute.confusion.ConfusionAccumulator`). So:

1. Dask's ``map_partitions`` turns every partition into an accumulator, on the worker that holds it;
2. the accumulators are merged in a tree (``split_every`` at a time), also on the workers;
3. one merged accumulator comes back: a few kilobytes whatever the data size.

Its methods return the one-shot functions' types and values: ``acc.expected_calibration_error()``
is a float equal to :func:`labviz.compute.calibration.expected_calibration_error` on the concatenated data
(uniform bins), ``acc.reliability_curve()`` a :class:`labviz.compute.calibration.ReliabilityCurve`, and
``acc.matrix()`` the array :func:`labviz.compute.confusion.confusion_matrix` returns.

Scheduling is Dask's: the functions here call ``.compute()``, which runs on whatever Dask scheduler
is active. On one machine that is Dask's threaded scheduler, or a ``LocalCluster``. On a real
cluster, start ``dask scheduler`` on one host and ``dask worker tcp://<scheduler-host>:8786`` on
each worker host (all with labviz installed, same version), put the Parquet files where every
worker can read them (a shared file system or object storage), and connect a client before calling
the same code::

    from dask.distributed import Client
    import dask.dataframe as dd
    from labviz.compute.distributed import calibration_from_dask, prob_columns

    client = Client("tcp://scheduler-host:8786")      # every .compute() now runs on the cluster
    ddf = dd.read_parquet("s3://bucket/imagenet-val-preds/")
    acc = calibration_from_dask(ddf, label_col="y_true", prob_cols=prob_columns(1000))
    acc.expected_calibration_error(), acc.reliability_curve()

Dask (``dask[dataframe,distributed]``) and pyarrow are imported only when these functions run.
They come with labviz's ``distributed`` extra: ``pip install 'labviz[distributed]'``.
"""

from __future__ import annotations

import importlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from labviz.core import _validation as v
from labviz.compute.calibration import CalibrationAccumulator
from labviz.compute.confusion import ConfusionAccumulator

if TYPE_CHECKING:
    import dask.dataframe as dd
    import pandas as pd

__all__ = ["calibration_from_dask", "confusion_from_dask", "prob_columns", "write_parquet"]

Accumulator = CalibrationAccumulator | ConfusionAccumulator
#: One kind of accumulator, the same throughout a reduction.
Acc = TypeVar("Acc", CalibrationAccumulator, ConfusionAccumulator)


def prob_columns(n_classes: int) -> list[str]:
    """Names of the probability columns :func:`write_parquet` writes: ``p0, p1, ...``.

    Examples
    --------
    >>> prob_columns(3)
    ['p0', 'p1', 'p2']
    """
    n_classes = v.check_int(n_classes, "n_classes", minimum=2)
    return [f"p{k}" for k in range(n_classes)]


def write_parquet(
    path: str | os.PathLike,
    *,
    y_true: ArrayLike,
    probs: ArrayLike,
    rows_per_partition: int = 100_000,
    overwrite: bool = False,
) -> list[Path]:
    """Write predictions to a folder of Parquet files, one file (one Dask partition) per row chunk.

    Columns: ``y_true`` and ``y_pred`` (int64, ``y_pred = argmax(probs)``) and the probabilities
    ``p0 ... p{n_classes-1}`` (:func:`prob_columns`) in the dtype given (keep float32 to halve the
    size). Read it back with ``dask.dataframe.read_parquet(path)``.

    Parameters
    ----------
    path : str or path-like
        The folder to create. It must not exist unless ``overwrite=True`` (then it is replaced).
    y_true : array-like of shape (n_samples,)
        True labels in ``[0, n_classes)``.
    probs : array-like of shape (n_samples, n_classes)
        Probabilities; each chunk is validated like :func:`labviz.compute.calibration.expected_calibration_error`
        validates its input, and row numbers in error messages count from the chunk's first row.
    rows_per_partition : int, default 100_000
    overwrite : bool, default False

    Returns
    -------
    list of Path
        The files written, ``part-00000.parquet``, ``part-00001.parquet``, ... in row order.
    """
    pa = _require("pyarrow")
    pq = _require("pyarrow.parquet")

    rows = v.check_int(rows_per_partition, "rows_per_partition", minimum=1)
    p = v.as_array(probs, "probs")
    if p.ndim != 2:
        raise ValueError(f"`probs` must have shape (n_samples, n_classes); got {p.shape}.")
    if p.dtype.kind != "f":
        raise TypeError(f"`probs` must hold floats; got {v.describe(p)}.")
    y = v.check_labels(y_true, "y_true", n_classes=p.shape[1])
    v.check_same_length(y_true=y, probs=p)
    folder = Path(path)
    if folder.exists():
        if not overwrite:
            raise FileExistsError(f"{folder} exists; pass overwrite=True to replace it.")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    names = prob_columns(p.shape[1])
    files = []
    for i, start in enumerate(range(0, len(y), rows)):
        chunk = p[start:start + rows]
        v.check_probs(chunk)  # float64 copy of one chunk only, so memory stays bounded
        columns = {"y_true": y[start:start + rows], "y_pred": chunk.argmax(axis=1).astype(np.int64)}
        columns.update({name: chunk[:, k] for k, name in enumerate(names)})
        file = folder / f"part-{i:05d}.parquet"
        pq.write_table(pa.table(columns), file)
        files.append(file)
    return files


# ----- validation ---------------------------------------------------------------------------------
def _require(module: str) -> ModuleType:
    """``module``, imported; or an ImportError that names the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"labviz.compute.distributed needs {module.split('.')[0]!r}, which is not "
                          "installed; install labviz's distributed extra: "
                          "pip install 'labviz[distributed]'.") from exc


def _check_frame(ddf: object, needed: Sequence[str]) -> None:
    dd = _require("dask.dataframe")

    if not isinstance(ddf, dd.DataFrame):
        raise TypeError(f"`ddf` must be a dask.dataframe.DataFrame; got {type(ddf).__name__}.")
    missing = [c for c in needed if c not in ddf.columns]
    if missing:
        raise ValueError(f"`ddf` must have the columns {missing}; got columns {list(ddf.columns)}.")


def _check_columns(cols: object, name: str) -> list[str]:
    if isinstance(cols, str) or not isinstance(cols, Sequence):
        raise TypeError(f"`{name}` must be a sequence of column names; got {type(cols).__name__}.")
    cols = list(cols)
    if len(cols) < 2 or not all(isinstance(c, str) for c in cols):
        raise ValueError(f"`{name}` must name at least 2 columns (one per class), as strings; "
                         f"got {cols!r}.")
    return cols


def _check_name(col: object, name: str) -> str:
    if not isinstance(col, str):
        raise TypeError(f"`{name}` must be a column name (str); got {type(col).__name__}.")
    return col


def _check_split_every(split_every: int) -> int:
    return v.check_int(split_every, "split_every", minimum=2)


# ----- per partition (runs on the workers) --------------------------------------------------------
def _calibration_partition(
    part: pd.DataFrame, label_col: str, prob_cols: list[str], n_bins: int, classwise: bool
) -> pd.Series:
    import pandas as pd

    acc = CalibrationAccumulator(len(prob_cols), n_bins=n_bins, classwise=classwise)
    if len(part):  # filters can leave partitions empty; an empty accumulator merges as zero
        acc.update(part[label_col].to_numpy(), part[prob_cols].to_numpy())
    # A one-element object Series: a pandas object, as map_partitions expects.
    return pd.Series([acc], dtype=object)


def _confusion_partition(part: pd.DataFrame, label_col: str, pred_col: str,
                         n_classes: int) -> pd.Series:
    import pandas as pd

    acc = ConfusionAccumulator(n_classes)
    if len(part):
        acc.update(part[label_col].to_numpy(), part[pred_col].to_numpy())
    return pd.Series([acc], dtype=object)


def _empty_like(acc: Acc) -> Acc:
    if isinstance(acc, ConfusionAccumulator):
        return ConfusionAccumulator(acc.n_classes)
    return CalibrationAccumulator(acc.n_classes, n_bins=acc.n_bins, classwise=acc.classwise)


def _merge_all(*parts: pd.Series | Acc) -> Acc:
    """Merge accumulators (bare or in the one-element Series of a partition) into a new one.

    Starts from an empty accumulator so that no task mutates its inputs, which Dask may hold for
    other tasks.
    """
    accs: list[Acc] = [p.iloc[0] if hasattr(p, "iloc") else p for p in parts]
    out = _empty_like(accs[0])
    for acc in accs:
        out = out.merge(acc)
    return out


def _map_and_merge(mapped: dd.Series, split_every: int, kind: type[Acc]) -> Acc:
    """Tree-reduce the per-partition accumulators (of class ``kind``) on the active scheduler;
    return the merged one."""
    dask = _require("dask")

    merge = dask.delayed(_merge_all, pure=True)
    level = mapped.to_delayed()  # one Delayed per partition, with the column selection pushed down
    while len(level) > 1:
        level = [merge(*level[i:i + split_every]) for i in range(0, len(level), split_every)]
    merged = merge(level[0]).compute()
    if not isinstance(merged, kind):  # the partitions' function builds one kind only
        raise TypeError(f"The reduction must give a {kind.__name__}; got {type(merged).__name__}.")
    return merged


# ----- public -------------------------------------------------------------------------------------
def calibration_from_dask(
    ddf: dd.DataFrame,
    *,
    label_col: str = "y_true",
    prob_cols: Sequence[str],
    n_bins: int = 15,
    classwise: bool = False,
    split_every: int = 8,
) -> CalibrationAccumulator:
    """Per-bin calibration statistics of a Dask DataFrame of predictions (uniform bins).

    Each partition becomes a :class:`~labviz.compute.calibration.CalibrationAccumulator`
    (``map_partitions``); they are merged in a tree on the workers and the merged one is returned.
    Its ``expected_calibration_error(norm=...)``, ``debiased_calibration_error()`` and
    ``reliability_curve()`` equal the one-shot functions with ``strategy="uniform"`` on all rows,
    up to float rounding of the per-bin sums (about 1e-15 relative).

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        One row per sample, e.g. ``dask.dataframe.read_parquet(folder)`` of :func:`write_parquet`.
    label_col : str, default "y_true"
        Column of true labels in ``[0, n_classes)``.
    prob_cols : sequence of str, length n_classes
        Probability columns, in class order (rows sum to 1), e.g. ``prob_columns(n_classes)``.
    n_bins : int, default 15
    classwise : bool, default False
        Also gather per-class one-vs-rest statistics (for ``classwise=True`` errors); this reads
        every probability rather than the top one per row.
    split_every : int, default 8
        How many accumulators one merge task combines.

    Returns
    -------
    CalibrationAccumulator
        Holding all rows of ``ddf``.
    """
    _check_name(label_col, "label_col")
    prob_cols = _check_columns(prob_cols, "prob_cols")
    _check_frame(ddf, [label_col, *prob_cols])
    split_every = _check_split_every(split_every)
    # Validates n_bins and classwise before any task is scheduled.
    CalibrationAccumulator(len(prob_cols), n_bins=n_bins, classwise=classwise)
    import pandas as pd

    mapped = ddf[[label_col, *prob_cols]].map_partitions(
        _calibration_partition, label_col, prob_cols, n_bins, bool(classwise),
        meta=pd.Series(dtype=object),
    )
    return _map_and_merge(mapped, split_every, CalibrationAccumulator)


def confusion_from_dask(
    ddf: dd.DataFrame,
    *,
    n_classes: int,
    label_col: str = "y_true",
    pred_col: str = "y_pred",
    split_every: int = 8,
) -> ConfusionAccumulator:
    """Confusion counts of a Dask DataFrame of predictions, as a merged accumulator.

    ``confusion_from_dask(ddf, n_classes=c).matrix(normalize)`` equals
    ``labviz.compute.confusion.confusion_matrix(y_true, y_pred, n_classes=c, normalize=normalize)`` on all
    rows (counts are exact integers).

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        One row per sample.
    n_classes : int
        Labels and predictions must lie in ``[0, n_classes)``.
    label_col : str, default "y_true"
    pred_col : str, default "y_pred"
    split_every : int, default 8

    Returns
    -------
    ConfusionAccumulator
        Holding all rows of ``ddf``.
    """
    n_classes = v.check_int(n_classes, "n_classes", minimum=1)
    _check_name(label_col, "label_col")
    _check_name(pred_col, "pred_col")
    _check_frame(ddf, [label_col, pred_col])
    split_every = _check_split_every(split_every)
    import pandas as pd

    mapped = ddf[[label_col, pred_col]].map_partitions(
        _confusion_partition, label_col, pred_col, n_classes, meta=pd.Series(dtype=object),
    )
    return _map_and_merge(mapped, split_every, ConfusionAccumulator)
