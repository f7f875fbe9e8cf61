"""Confident learning on a real test set (Northcutt et al. 2021; notebook 05)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from labviz.core.predictions import Predictions


def mean_probs_predictions(predictions: Sequence[Predictions], *, name: str = "") -> Predictions:
    """One Predictions whose probabilities are the mean of several models' on the same samples.

    The logits are :math:`\\log \\bar p` (clipped at the smallest positive float), so
    ``softmax(logits)`` gives back the averaged probabilities :math:`\\bar p`. Labels, ids, class
    names and images come from the first; features and templates are dropped (they differ per model).

    Parameters
    ----------
    predictions : sequence of Predictions
        At least one, all on the same samples (same ids and labels, in the same order).
    name : str
        Defaults to ``"mean of <names>"``.

    Returns
    -------
    Predictions

    Examples
    --------
    >>> a = Predictions.from_arrays(y_true=[0, 1], logits=np.log([[0.8, 0.2], [0.4, 0.6]]))
    >>> b = Predictions.from_arrays(y_true=[0, 1], logits=np.log([[0.6, 0.4], [0.2, 0.8]]))
    >>> mean_probs_predictions([a, b]).probs.round(6).tolist()
    [[0.7, 0.3], [0.3, 0.7]]
    """
    preds = list(predictions)
    if not preds or not all(isinstance(p, Predictions) for p in preds):
        raise TypeError("`predictions` must be a non-empty sequence of Predictions; got "
                        f"{[type(p).__name__ for p in preds]}.")
    first = preds[0]
    for p in preds[1:]:
        if not (np.array_equal(p.ids, first.ids) and np.array_equal(p.y_given, first.y_given)
                and p.n_classes == first.n_classes):
            raise ValueError(f"`predictions` must all hold the same samples and labels; {p.name!r} "
                             f"differs from {first.name!r}.")
    mean = np.mean([p.probs for p in preds], axis=0)
    return Predictions.from_arrays(
        y_true=first.y_true, y_given=first.y_given, ids=first.ids,
        logits=np.log(np.clip(mean, np.finfo(np.float64).tiny, None)),
        class_names=first.class_names, images=first.images,
        name=name or "mean of " + ", ".join(p.name for p in preds))


def flagged_rate_table(errors: Mapping[str, pd.DataFrame], n_samples: int, *,
                       reference: str | None = None) -> pd.DataFrame:
    """How many samples confident learning flags, per source of probabilities.

    Parameters
    ----------
    errors : mapping of str to pandas.DataFrame
        Source name -> :func:`labviz.compute.label_quality.find_label_errors` output (needs column ``id``).
    n_samples : int
        Size of the set that was screened.
    reference : str, optional
        A key of ``errors``; adds ``share_in_reference``, the share of each source's flags that
        the reference flags too (how stable the candidates are across models).

    Returns
    -------
    pandas.DataFrame
        One row per source, in mapping order: ``probabilities``, ``n_samples``, ``n_flagged``,
        ``rate`` (= n_flagged / n_samples) and, with a reference, ``share_in_reference``.

    Examples
    --------
    >>> e = {"a": pd.DataFrame({"id": [1, 2]}), "b": pd.DataFrame({"id": [2]})}
    >>> t = flagged_rate_table(e, 100, reference="b")
    >>> t[["n_flagged", "rate", "share_in_reference"]].values.tolist()
    [[2.0, 0.02, 0.5], [1.0, 0.01, 1.0]]
    """
    from labviz.core import _validation as v

    n_samples = v.check_int(n_samples, "n_samples", minimum=1)
    if not isinstance(errors, Mapping) or not errors:
        raise TypeError(f"`errors` must be a non-empty mapping of name to DataFrame; got "
                        f"{type(errors).__name__}.")
    if reference is not None and reference not in errors:
        raise ValueError(f"`reference` must be a key of `errors` {list(errors)}; got {reference!r}.")
    ref_ids = set(errors[reference]["id"]) if reference is not None else None
    rows = []
    for source, table in errors.items():
        ids = set(table["id"])
        row = {"probabilities": source, "n_samples": n_samples, "n_flagged": len(ids),
               "rate": len(ids) / n_samples}
        if ref_ids is not None:
            row["share_in_reference"] = len(ids & ref_ids) / len(ids) if ids else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def named_classes(table: pd.DataFrame, class_names: Sequence[str],
                  columns: Sequence[str] = ("given", "predicted")) -> pd.DataFrame:
    """A copy of ``table`` with class-index ``columns`` replaced by class names.

    >>> named_classes(pd.DataFrame({"given": [1], "predicted": [0]}), ["cat", "dog"]).values.tolist()
    [['dog', 'cat']]
    """
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"`table` must have columns {list(columns)}; missing {missing}.")
    names = np.asarray(class_names, dtype=object)
    out = table.copy()
    for c in columns:
        out[c] = names[out[c].to_numpy(dtype=np.int64)]
    return out


def within_group_share(errors: pd.DataFrame, classes: Sequence[int]) -> float:
    """Share of flagged samples whose given *and* predicted class both lie in ``classes``.

    >>> within_group_share(pd.DataFrame({"given": [0, 0, 1], "predicted": [2, 1, 3]}), [0, 2])
    0.3333333333333333
    """
    if not {"given", "predicted"} <= set(errors.columns):
        raise ValueError(f"`errors` must have columns ['given', 'predicted']; got {list(errors.columns)}.")
    if len(errors) == 0:
        return float("nan")
    group = np.asarray(list(classes))
    given, predicted = errors["given"].to_numpy(), errors["predicted"].to_numpy()
    inside = np.isin(given, group) & np.isin(predicted, group)
    return float(inside.mean())
