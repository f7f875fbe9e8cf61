"""The measurements the notebooks report, computed over the zoo's seeds.

Each function takes zoo names or loss families and returns a tidy ``pandas.DataFrame``; the
notebooks print them and :func:`judge` turns explicit checks into a verdict. Keeping this here, not
in the notebooks, means every number a notebook states is computed by tested code.

A *family* is the manifest's ``family`` field: "ce", "ls0.1", "maxsup0.1", "ls-0.1", "ls-sweep",
"noisy", "student", "kd-ce", "kd-ls".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from labviz import zoo
from labviz.predictions import Predictions

FASHION = "fashion-mnist"

#: Display names of the loss families, in teaching order.
FAMILY_LABELS: dict[str, str] = {
    "ce": "CE", "ls0.1": "LS α=0.1", "maxsup0.1": "MaxSup α=0.1", "ls-0.1": "LS α=−0.1",
    "student": "student alone", "kd-ce": "student of CE teacher", "kd-ls": "student of LS teacher",
}

Status = Literal["reproduced", "partly reproduced", "not reproduced"]


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


def summarize(table: pd.DataFrame, by: str, metrics: Sequence[str], digits: int = 3) -> pd.DataFrame:
    """One row per group of ``by``, each metric as ``"mean ± sd"`` over the group's rows (seeds)."""
    rows = []
    for group, part in table.groupby(by, sort=False):
        row = {by: group, "n": len(part)}
        row.update({m: mean_sd(part[m], digits) for m in metrics})
        rows.append(row)
    return pd.DataFrame(rows)


# ----- calibration -----------------------------------------------------------------------------
def calibration_table(families: Sequence[str], dataset: str = FASHION, *, n_bins: int = 15) -> pd.DataFrame:
    """Per checkpoint: accuracy, ECE, NLL, Brier on the test split, and the same after temperature
    scaling fitted on the validation split (one row per checkpoint)."""
    from labviz.calibration import temperature_scaling_report

    rows = []
    for family in families:
        for name in members(family, dataset):
            val, test = Predictions.from_zoo(name, "val", with_images=False), Predictions.from_zoo(
                name, "test", with_images=False)
            r = temperature_scaling_report(val.logits, val.y_true, test.logits, test.y_true, n_bins=n_bins)
            e = zoo.entry(name)
            rows.append({"family": family, "name": name, "seed": e["seed"], "alpha": e["alpha"],
                         "accuracy": r.accuracy, "ece": r.ece_before, "ece_ts": r.ece_after,
                         "temperature": r.temperature, "nll": r.nll_before, "nll_ts": r.nll_after,
                         "brier": r.brier_before, "brier_ts": r.brier_after})
    return pd.DataFrame(rows)


def table3(calibration: pd.DataFrame, *, baseline: str = "ce", smoothed: str = "ls0.1") -> pd.DataFrame:
    """Müller et al.'s Table 3 layout: baseline ECE, temperature-scaled ECE (T), label smoothing ECE.

    Values are mean ± sd over seeds, from a :func:`calibration_table`.
    """
    base = calibration[calibration.family == baseline]
    ls = calibration[calibration.family == smoothed]
    return pd.DataFrame([{
        "dataset / model": "Fashion-MNIST / small CNN (10k train)",
        "baseline ECE": mean_sd(base.ece),
        "temperature scaling ECE": mean_sd(base.ece_ts),
        "T": mean_sd(base.temperature, 2),
        f"label smoothing ECE (α={ls.alpha.iloc[0]:g})": mean_sd(ls.ece),
        "accuracy CE": mean_sd(base.accuracy),
        "accuracy LS": mean_sd(ls.accuracy),
    }])


# ----- representation collapse -----------------------------------------------------------------
def collapse_family_table(families: Sequence[str], dataset: str = FASHION,
                          splits: Sequence[str] = ("train", "test")) -> pd.DataFrame:
    """Intra-class variation, inter-class separability and NC1 per checkpoint and split."""
    from labviz.collapse import collapse_metrics

    rows = []
    for family in families:
        for name in members(family, dataset):
            for split in splits:
                m = collapse_metrics(Predictions.from_zoo(name, split, with_images=False))
                rows.append({"family": family, "name": name, "seed": zoo.entry(name)["seed"],
                             "split": split, "intra": m.intra, "inter": m.inter, "nc1": m.nc1})
    return pd.DataFrame(rows)


def maxsup_layout(collapse: pd.DataFrame) -> pd.DataFrame:
    """The MaxSup paper's feature-geometry table: rows are methods, columns intra/inter × train/val.

    Our "val" is the held-out test split. Values are mean ± sd over seeds.
    """
    rows = []
    for family, part in collapse.groupby("family", sort=False):
        row = {"method": FAMILY_LABELS.get(family, family)}
        for split in part.split.unique():
            s = part[part.split == split]
            row[f"intra ({split})"] = mean_sd(s.intra)
            row[f"inter ({split})"] = mean_sd(s.inter)
        rows.append(row)
    return pd.DataFrame(rows)


def misclassified_confidence_table(families: Sequence[str], dataset: str = FASHION) -> pd.DataFrame:
    """Mean top-1 confidence of misclassified test samples, per checkpoint ("error enhancement")."""
    from labviz.collapse import misclassified_confidence

    rows = []
    for family in families:
        for name in members(family, dataset):
            conf = misclassified_confidence(Predictions.from_zoo(name, "test", with_images=False))
            rows.append({"family": family, "name": name, "seed": zoo.entry(name)["seed"],
                         "n_errors": len(conf),
                         "mean_confidence": float(conf.mean()), "share_above_0.9": float((conf > 0.9).mean())})
    return pd.DataFrame(rows)


# ----- distillation and the LS sweep ------------------------------------------------------------
def distillation_table(dataset: str = FASHION) -> pd.DataFrame:
    """Test accuracy of students (alone, of the CE teacher, of the LS teacher) and of their teachers."""
    rows = []
    for family in ("student", "kd-ce", "kd-ls"):
        for name in members(family, dataset):
            e = zoo.entry(name)
            teacher = zoo.entry(e["teacher"]) if e["teacher"] else None
            rows.append({"family": family, "name": name, "seed": e["seed"],
                         "student_accuracy": e["test_accuracy"],
                         "teacher": e["teacher"] or "—",
                         "teacher_accuracy": teacher["test_accuracy"] if teacher else np.nan,
                         "temperature": e["temperature"]})
    return pd.DataFrame(rows)


def ls_sweep_table(dataset: str = FASHION, seed: int = 0) -> pd.DataFrame:
    """Accuracy, ECE and tightness (intra-class variation, NC1 on the train split) against α."""
    from labviz.collapse import collapse_metrics

    names = [n for n in members("ce", dataset) + members("ls0.1", dataset) + members("ls-sweep", dataset)
             + members("ls-0.1", dataset) if zoo.entry(n)["seed"] == seed]
    rows = []
    for name in names:
        e = zoo.entry(name)
        m = collapse_metrics(Predictions.from_zoo(name, "train", with_images=False))
        rows.append({"alpha": e["alpha"], "name": name, "accuracy": e["test_accuracy"],
                     "ece": e["test_ece"], "intra": m.intra, "nc1": m.nc1})
    return pd.DataFrame(rows).sort_values("alpha").reset_index(drop=True)


# ----- noisy labels ----------------------------------------------------------------------------
def snapshot_predictions(run: str, split: Literal["train", "val", "test"] = "train") -> dict[int, Predictions]:
    """Epoch -> Predictions of every snapshot of a run (the final model included)."""
    return {e["epoch"]: Predictions.from_zoo(e["name"], split, with_images=False)
            for e in zoo.snapshots(run)}


def early_learning_table(run: str) -> pd.DataFrame:
    """:func:`labviz.label_quality.memorization_table` of a run's snapshots, plus test accuracy."""
    from labviz.label_quality import memorization_table

    table = memorization_table(snapshot_predictions(run, "train"))
    acc = {e["epoch"]: e["test_accuracy"] for e in zoo.snapshots(run)}
    table["test_accuracy"] = table.epoch.map(acc)
    return table


def _snapshot_items(snapshots: Mapping[int, Predictions]) -> list[tuple[int, Predictions]]:
    """(epoch, Predictions) pairs in epoch order, checked."""
    if not isinstance(snapshots, Mapping) or not snapshots:
        raise TypeError("`snapshots` must be a non-empty mapping of epoch to Predictions; "
                        f"got {type(snapshots).__name__}.")
    for epoch, p in snapshots.items():
        if not isinstance(p, Predictions):
            raise TypeError(f"`snapshots[{epoch}]` must be a Predictions; got {type(p).__name__}.")
    return sorted(snapshots.items())


# ----- verdicts --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """Whether a paper's claim held here, with the checks that decided it."""

    claim: str
    status: Status
    checks: tuple[tuple[str, bool], ...]

    def __str__(self) -> str:
        lines = [f"VERDICT: {self.status} — {self.claim}"]
        lines += [f"  [{'x' if ok else ' '}] {text}" for text, ok in self.checks]
        return "\n".join(lines)


def judge(claim: str, checks: Mapping[str, bool]) -> Verdict:
    """All checks hold: reproduced; some: partly reproduced; none: not reproduced.

    Each check is a sentence stating a measured comparison, with its numbers.

    >>> print(judge("LS helps", {"ECE 0.02 < 0.05": True, "acc 0.88 > 0.89": False}))
    VERDICT: partly reproduced — LS helps
      [x] ECE 0.02 < 0.05
      [ ] acc 0.88 > 0.89
    """
    if not checks:
        raise ValueError("`checks` must hold at least one check; got none.")
    held = [bool(ok) for ok in checks.values()]
    status: Status = ("reproduced" if all(held) else "partly reproduced" if any(held)
                      else "not reproduced")
    return Verdict(claim=claim, status=status, checks=tuple((k, bool(ok)) for k, ok in checks.items()))


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


# ----- notebook 01 -----
def confidence_gap_table(families: Sequence[str], dataset: str = FASHION,
                         split: Literal["train", "val", "test"] = "test") -> pd.DataFrame:
    """Accuracy against mean top-1 confidence, per checkpoint: over- or under-confidence.

    ``gap = mean_confidence - accuracy``: positive means over-confident on average, negative
    under-confident (as label smoothing can make an already well-calibrated small net).

    Parameters
    ----------
    families : sequence of str
        Zoo families (manifest ``family``), e.g. ``["ce", "ls0.1"]``.
    dataset : str
    split : {"train", "val", "test"}

    Returns
    -------
    pandas.DataFrame
        One row per checkpoint: ``family``, ``name``, ``seed`` (int), ``accuracy``,
        ``mean_confidence``, ``gap`` (float).
    """
    rows = []
    for family in families:
        for name in members(family, dataset):
            p = Predictions.from_zoo(name, split, with_images=False)
            acc, conf = p.accuracy, float(p.confidence.mean())
            rows.append({"family": family, "name": name, "seed": zoo.entry(name)["seed"],
                         "accuracy": acc, "mean_confidence": conf, "gap": conf - acc})
    return pd.DataFrame(rows)


# ----- notebook 04 -----------------------------------------------------------------------------
def beta_mixture_table(snapshots: Mapping[int, Predictions], *,
                       percentiles: tuple[float, float] = (5.0, 95.0)) -> pd.DataFrame:
    """Per epoch: a two-beta mixture on the per-sample loss, and how well it finds flipped labels.

    For each snapshot the loss against the *given* labels is
    :func:`labviz.label_quality.per_sample_loss`, the mixture is
    :func:`labviz.label_quality.fit_beta_mixture` (Arazo et al. 2019), and its posterior of the
    noisy component is scored against the known flips with the ROC AUC (1 = perfect ranking,
    0.5 = chance). The loss itself is scored too: any detector monotone in the loss has that AUC.

    Parameters
    ----------
    snapshots : mapping of int to Predictions
        Epoch -> training-split predictions of a noisy-label run (both flipped and clean labels).
    percentiles : (float, float)
        Passed to :func:`~labviz.label_quality.fit_beta_mixture`; (5, 95) as Arazo et al.

    Returns
    -------
    pandas.DataFrame
        One row per epoch, in order: ``epoch``, ``n_flipped``, ``noisy_weight`` (the noisy
        component's mixing proportion), ``flagged_share`` (share with posterior > 0.5),
        ``auc_posterior`` and ``auc_loss``.
    """
    from sklearn.metrics import roc_auc_score

    from labviz.label_quality import fit_beta_mixture, per_sample_loss

    rows = []
    for epoch, p in _snapshot_items(snapshots):
        flipped = p.flipped
        if flipped.all() or not flipped.any():
            raise ValueError(f"`snapshots[{epoch}]` must hold both flipped and clean labels; got "
                             f"{int(flipped.sum())} flipped of {p.n_samples}.")
        losses = per_sample_loss(p.y_given, p.probs)
        mixture = fit_beta_mixture(losses, percentiles=percentiles)
        posterior = mixture.posterior_noisy(losses)
        rows.append({"epoch": int(epoch), "n_flipped": int(flipped.sum()),
                     "noisy_weight": float(mixture.weights[1]),
                     "flagged_share": float(np.mean(posterior > 0.5)),
                     "auc_posterior": float(roc_auc_score(flipped, posterior)),
                     "auc_loss": float(roc_auc_score(flipped, losses))})
    return pd.DataFrame(rows)


# ----- notebook 05 -----------------------------------------------------------------------------
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
        Source name -> :func:`labviz.label_quality.find_label_errors` output (needs column ``id``).
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
    from labviz import _validation as v

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


# ----- notebook 06 -----------------------------------------------------------------------------
from typing import TYPE_CHECKING  # noqa: E402  (appended section; keeps torch out of import time)

if TYPE_CHECKING:
    from torch import nn

    from labviz.inversion import Synthesized


def invert_checkpoints(names: Sequence[str], *, n_per_class: int = 4, steps: int = 300,
                       seed: int = 0) -> dict[str, Synthesized]:
    """Name -> :func:`labviz.inversion.invert` of every class of zoo checkpoint ``name``.

    Inversions take seconds per model, so they are cached on disk (namespace ``"inversions"``),
    keyed by the checkpoint's sha256 and the arguments.

    Returns
    -------
    dict of str to labviz.inversion.Synthesized
    """
    from labviz.cache import cache_key, cached_arrays
    from labviz.inversion import Synthesized, invert

    def build(name: str) -> dict[str, np.ndarray]:
        model, e = zoo.load(name)
        s = invert(model, range(len(zoo.class_names(e["dataset"]))), n_per_class=n_per_class,
                   image_size=model.config["image_size"], steps=steps, seed=seed)
        return {"images": s.images, "target": s.target, "confidence": s.confidence}

    out = {}
    for name in names:
        key = cache_key(sha256=zoo.entry(name)["sha256"], n_per_class=n_per_class, steps=steps,
                        seed=seed, version=_INVERSION_CACHE_VERSION)
        a = cached_arrays("inversions", key, lambda name=name: build(name),
                          required=("images", "target", "confidence"))
        out[name] = Synthesized(images=a["images"], target=a["target"], confidence=a["confidence"])
    return out


#: Bump when :func:`labviz.inversion.invert` changes, so cached inversions are recomputed.
_INVERSION_CACHE_VERSION = 2


def inversion_attack_table(inversions: Mapping[str, Synthesized], *,
                           evaluator_family: str = "student") -> pd.DataFrame:
    """Evaluator accuracy on each checkpoint's inversions (Struppek et al. 2024's attack accuracy).

    Each inverted checkpoint of seed s is judged by the ``evaluator_family`` checkpoint of the same
    seed (a separately trained model), with :func:`labviz.inversion.attack_accuracy`.

    Parameters
    ----------
    inversions : mapping of str to Synthesized
        Zoo name -> inversions, e.g. from :func:`invert_checkpoints`.
    evaluator_family : str
        A zoo family with one checkpoint per seed of the inverted ones.

    Returns
    -------
    pandas.DataFrame
        One row per inverted checkpoint: ``family``, ``alpha``, ``seed``, ``name``, ``evaluator``,
        ``attack_accuracy`` (share of inversions the evaluator assigns to their target) and
        ``source_confidence`` (mean probability of the target under the inverted model).
    """
    from labviz.inversion import attack_accuracy

    entries = {name: zoo.entry(name) for name in inversions}
    datasets = {e["dataset"] for e in entries.values()}
    evaluators: dict[tuple[str, int], str] = {}
    for dataset in datasets:
        for name in members(evaluator_family, dataset):
            evaluators[(dataset, zoo.entry(name)["seed"])] = name
    rows = []
    for name, synth in inversions.items():
        e = entries[name]
        key = (e["dataset"], e["seed"])
        if key not in evaluators:
            raise ValueError(f"`evaluator_family` {evaluator_family!r} has no checkpoint of seed "
                             f"{e['seed']} for {name!r}.")
        evaluator, _ = zoo.load(evaluators[key])
        rows.append({"family": e["family"], "alpha": e["alpha"], "seed": e["seed"], "name": name,
                     "evaluator": evaluators[key],
                     "attack_accuracy": attack_accuracy(evaluator, synth),
                     "source_confidence": float(np.mean(synth.confidence))})
    return pd.DataFrame(rows)


def inversion_grid(synthesized: Synthesized, evaluator: nn.Module,
                   class_names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Inversions laid out one class per column, each captioned with the evaluator's guess.

    Images are reordered so that a grid with ``n_cols = number of target classes`` shows class k
    in column k (the i-th inversion of each class in row i). Captions read ``"✓ Bag"`` when the
    evaluator predicts the target, else ``"✗ <predicted>"``.

    Returns
    -------
    images : ndarray of shape (n_images, height, width)
    captions : list of str, length n_images
    """
    from labviz.inversion import predict_probs

    target = np.asarray(synthesized.target)
    order = np.lexsort((target, _rank_within(target)))
    pred = predict_probs(evaluator, synthesized.images).argmax(axis=1)
    captions = [("✓ " if pred[i] == target[i] else "✗ ") + str(class_names[pred[i]]) for i in order]
    return np.asarray(synthesized.images)[order], captions


def _rank_within(labels: np.ndarray) -> np.ndarray:
    """0 for each label's first occurrence, 1 for its second, ..."""
    rank = np.zeros(len(labels), dtype=np.int64)
    seen: dict[int, int] = {}
    for i, y in enumerate(labels.tolist()):
        rank[i] = seen.get(y, 0)
        seen[y] = rank[i] + 1
    return rank


# ----- notebook 03 -----------------------------------------------------------------------------
#: The binning choices notebook 03 varies for the top-label L1 ECE: (strategy, n_bins).
ECE_BINNINGS: tuple[tuple[str, int], ...] = tuple(
    (s, b) for s in ("uniform", "quantile") for b in (5, 10, 15, 30))


def ece_variants(y_true: np.ndarray, probs: np.ndarray) -> pd.DataFrame:
    """One model's calibration error under the common estimator choices, one row per variant.

    ``kind="binning"`` rows are the top-label L1 ECE for each binning of :data:`ECE_BINNINGS`
    (same estimand, different bins). ``kind="measure"`` rows change the estimand, all on 15 bins:
    the L2 (RMS) and max (MCE) norms, the class-wise L1 ECE, and the debiased L2 error of Kumar et
    al. (2019) with uniform and quantile bins. The last row (``kind="one bin"``) is the L1 ECE
    with a single bin, :math:`|\\bar c - \\mathrm{acc}|`: when every bin's gap has the same sign,
    every L1 ECE equals it, whatever the bins. See :mod:`labviz.calibration` for the formulas.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    probs : array-like of shape (n_samples, n_classes)

    Returns
    -------
    pandas.DataFrame
        14 rows: ``variant`` (str), ``kind`` ("binning", "measure" or "one bin"), ``strategy``,
        ``n_bins``, ``norm``, ``classwise``, ``debiased`` and ``value`` (float).

    Examples
    --------
    With 5 bins the two samples fall in different bins: ECE = (0.1 + 0.7) / 2; with one bin
    it is |0.8 − 0.5|.

    >>> t = ece_variants([0, 1], [[0.9, 0.1], [0.7, 0.3]])
    >>> len(t), t.variant[0], round(float(t.value[0]), 6), t.variant[13], round(float(t.value[13]), 6)
    (14, 'L1, uniform, 5 bins', 0.4, 'L1, 1 bin = |mean confidence − accuracy|', 0.3)
    """
    from labviz.calibration import debiased_calibration_error, expected_calibration_error

    rows = []
    for strategy, n_bins in ECE_BINNINGS:
        rows.append({"variant": f"L1, {strategy}, {n_bins} bins", "kind": "binning",
                     "strategy": strategy, "n_bins": n_bins, "norm": "l1", "classwise": False,
                     "debiased": False, "value": expected_calibration_error(
                         y_true, probs, n_bins=n_bins, strategy=strategy)})
    for norm, label in (("l2", "L2 (RMS)"), ("max", "max (MCE)")):
        rows.append({"variant": f"{label}, uniform, 15 bins", "kind": "measure", "strategy": "uniform",
                     "n_bins": 15, "norm": norm, "classwise": False, "debiased": False,
                     "value": expected_calibration_error(y_true, probs, n_bins=15, norm=norm)})
    rows.append({"variant": "class-wise L1, uniform, 15 bins", "kind": "measure", "strategy": "uniform",
                 "n_bins": 15, "norm": "l1", "classwise": True, "debiased": False,
                 "value": expected_calibration_error(y_true, probs, n_bins=15, classwise=True)})
    for strategy in ("uniform", "quantile"):
        rows.append({"variant": f"debiased L2, {strategy}, 15 bins", "kind": "measure",
                     "strategy": strategy, "n_bins": 15, "norm": "l2", "classwise": False,
                     "debiased": True, "value": debiased_calibration_error(
                         y_true, probs, n_bins=15, strategy=strategy)})
    rows.append({"variant": "L1, 1 bin = |mean confidence − accuracy|", "kind": "one bin",
                 "strategy": "uniform", "n_bins": 1, "norm": "l1", "classwise": False,
                 "debiased": False, "value": expected_calibration_error(y_true, probs, n_bins=1)})
    return pd.DataFrame(rows)


def ece_variants_table(families: Sequence[str], dataset: str = FASHION,
                       split: Literal["train", "val", "test"] = "test") -> pd.DataFrame:
    """:func:`ece_variants` of every checkpoint of ``families``, stacked (long format).

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`ece_variants`, preceded by ``family``, ``name`` and ``seed``.
    """
    parts = []
    for family in families:
        for name in members(family, dataset):
            p = Predictions.from_zoo(name, split, with_images=False)
            part = ece_variants(p.y_true, p.probs)
            part.insert(0, "seed", zoo.entry(name)["seed"])
            part.insert(0, "name", name)
            part.insert(0, "family", family)
            parts.append(part)
    return pd.concat(parts, ignore_index=True)


def ece_variants_wide(variants: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """One row per variant, one column per family: ``"mean ± sd"`` over seeds.

    Parameters
    ----------
    variants : pandas.DataFrame
        From :func:`ece_variants_table`.
    digits : int

    Returns
    -------
    pandas.DataFrame
        Columns ``variant``, ``kind``, then one per family named by :data:`FAMILY_LABELS`.
    """
    out = variants[["variant", "kind"]].drop_duplicates().reset_index(drop=True)
    for family, part in variants.groupby("family", sort=False):
        col = part.groupby("variant", sort=False)["value"].agg(lambda s: mean_sd(s, digits))
        out[FAMILY_LABELS.get(family, family)] = out["variant"].map(col)
    return out


def binning_spread(variants: pd.DataFrame, *, reference: str = "L1, uniform, 15 bins") -> pd.DataFrame:
    """How far the binning choice moves the top-label L1 ECE, per checkpoint.

    Parameters
    ----------
    variants : pandas.DataFrame
        From :func:`ece_variants_table` (its ``kind == "binning"`` rows are used).
    reference : str
        The variant the spread is compared to (the usual 15 equal-width bins).

    Returns
    -------
    pandas.DataFrame
        One row per checkpoint: ``family``, ``name``, ``seed``, ``reference`` (its ECE), ``min``,
        ``max``, ``range`` (= max − min) and ``relative_range`` (= range / reference).

    Examples
    --------
    >>> v = pd.DataFrame({"family": "ce", "name": "m", "seed": 0, "kind": "binning",
    ...                   "variant": ["L1, uniform, 15 bins", "L1, quantile, 5 bins"],
    ...                   "value": [0.10, 0.05]})
    >>> binning_spread(v)[["range", "relative_range"]].values.round(6).tolist()
    [[0.05, 0.5]]
    """
    rows = []
    binned = variants[variants["kind"] == "binning"]
    for (family, name, seed), part in binned.groupby(["family", "name", "seed"], sort=False):
        values = part.set_index("variant")["value"]
        if reference not in values.index:
            raise ValueError(f"`reference` must be a binning variant, one of {list(values.index)}; "
                             f"got {reference!r}.")
        ref, lo, hi = float(values[reference]), float(values.min()), float(values.max())
        rows.append({"family": family, "name": name, "seed": seed, "reference": ref, "min": lo,
                     "max": hi, "range": hi - lo, "relative_range": (hi - lo) / ref if ref else np.nan})
    return pd.DataFrame(rows)


def family_ranking(variants: pd.DataFrame) -> pd.DataFrame:
    """The order of the families by mean calibration error (over seeds), under each variant.

    Returns
    -------
    pandas.DataFrame
        One row per variant: ``variant``, ``kind`` and ``ranking``, e.g. ``"CE < LS α=0.1"``
        (best calibrated first).

    Examples
    --------
    >>> v = pd.DataFrame({"variant": "a", "kind": "binning", "family": ["ce", "ls0.1"],
    ...                   "value": [0.2, 0.1]})
    >>> family_ranking(v)["ranking"].tolist()
    ['LS α=0.1 < CE']
    """
    rows = []
    for (variant, kind), part in variants.groupby(["variant", "kind"], sort=False):
        means = part.groupby("family", sort=False)["value"].mean().sort_values(kind="stable")
        rows.append({"variant": variant, "kind": kind,
                     "ranking": " < ".join(FAMILY_LABELS.get(f, f) for f in means.index)})
    return pd.DataFrame(rows)


def same_side_share(y_true: np.ndarray, probs: np.ndarray, *, n_bins: int = 15,
                    strategy: Literal["uniform", "quantile"] = "uniform") -> float:
    """Share of samples in reliability bins on the same side of the diagonal as the overall gap.

    1.0 means the miscalibration is one-sided (every non-empty bin over-confident, or every one
    under-confident); then every L1 ECE equals ``|mean confidence − accuracy|``, whatever the bins.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    probs : array-like of shape (n_samples, n_classes)
    n_bins : int
    strategy : {"uniform", "quantile"}

    Returns
    -------
    float

    Examples
    --------
    Bin (0.5, 0.75] is over-confident by 0.7, bin (0.75, 1] under-confident by 0.1; overall
    over-confident, so half of the samples are on the overall side.

    >>> same_side_share([0, 1], [[0.9, 0.1], [0.7, 0.3]], n_bins=4)
    0.5
    """
    from labviz.calibration import reliability_curve

    curve = reliability_curve(y_true, probs, n_bins=n_bins, strategy=strategy)
    filled = curve.count > 0
    gap, count = curve.gap[filled], curve.count[filled]
    overall = np.sign(np.sum(gap * count))
    return float(count[gap * overall >= 0].sum() / count.sum())


def temperature_scaling_table(families: Sequence[str], dataset: str = FASHION) -> pd.DataFrame:
    """:func:`calibration_table` plus the test mean confidence and what the fitted T says.

    ``T > 1`` (the fit softens the logits) means the model was over-confident on the validation
    split, ``T < 1`` under-confident.

    Returns
    -------
    pandas.DataFrame
        One row per checkpoint: the columns of :func:`calibration_table`, then
        ``mean_confidence``, ``gap`` (= mean_confidence − accuracy, test) and ``reading``
        ("over-confident" or "under-confident").
    """
    table = calibration_table(families, dataset)
    gaps = confidence_gap_table(families, dataset, "test").set_index("name")
    table["mean_confidence"] = table["name"].map(gaps["mean_confidence"])
    table["gap"] = table["name"].map(gaps["gap"])
    table["reading"] = np.where(table["temperature"] > 1, "over-confident", "under-confident")
    return table


#: Version of the cached probe arrays of :func:`zoo_probes`; bump when the recipe changes.
_PROBES_VERSION = 1


def probe_arrays(model: nn.Module, *, n_classes: int, image_size: int = 28, n_noise: int = 200,
                 n_per_class: int = 4, steps: int = 100, seed: int = 0) -> dict[str, np.ndarray]:
    """A model's probabilities on uniform-noise images and on gradient-ascent fooling images.

    The probes of Nguyen et al. (2015), "Deep Neural Networks are Easily Fooled":
    :func:`labviz.inversion.noise_images` and :func:`labviz.inversion.fooling_images` (no image
    prior) for every class.

    Returns
    -------
    dict of str to ndarray
        ``noise_probs`` (n_noise, n_classes), ``fooling_images`` (n_classes * n_per_class,
        image_size, image_size), ``fooling_target`` (n_classes * n_per_class,) and
        ``fooling_probs`` (n_classes * n_per_class, n_classes).
    """
    from labviz.inversion import fooling_images, noise_images, predict_probs

    fooled = fooling_images(model, range(n_classes), n_per_class=n_per_class,
                            image_size=image_size, steps=steps, seed=seed)
    return {"noise_probs": predict_probs(model, noise_images(n_noise, image_size=image_size, seed=seed)),
            "fooling_images": fooled.images, "fooling_target": fooled.target,
            "fooling_probs": predict_probs(model, fooled.images)}


def zoo_probes(name: str, *, n_noise: int = 200, n_per_class: int = 4, steps: int = 100,
               seed: int = 0) -> dict[str, np.ndarray]:
    """:func:`probe_arrays` of zoo checkpoint ``name``, cached on disk by its sha256 and the settings."""
    from labviz.cache import cache_key, cached_arrays

    e = zoo.entry(name)
    n_classes = len(zoo.class_names(e["dataset"]))

    def build() -> dict[str, np.ndarray]:
        model, _ = zoo.load(name)
        image_size = int(model.config["image_size"])
        return probe_arrays(model, n_classes=n_classes, image_size=image_size, n_noise=n_noise,
                            n_per_class=n_per_class, steps=steps, seed=seed)

    key = cache_key(sha256=e["sha256"], n_noise=n_noise, n_per_class=n_per_class, steps=steps,
                    seed=seed, version=_PROBES_VERSION)
    return cached_arrays("probes", key, build,
                         required=("noise_probs", "fooling_images", "fooling_target", "fooling_probs"))


def probe_confidences(test_probs: np.ndarray, probes: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Top-1 confidence on real test images, noise and fooling images, one row per image.

    Parameters
    ----------
    test_probs : array-like of shape (n_test, n_classes)
    probes : mapping
        From :func:`probe_arrays` or :func:`zoo_probes`.

    Returns
    -------
    pandas.DataFrame
        Columns ``kind`` ("test", "noise", "fooling"), ``confidence`` (top-1 probability),
        ``predicted`` (int) and ``target`` (the fooling image's target class; -1 otherwise).
    """
    parts = []
    for kind, p in (("test", test_probs), ("noise", probes["noise_probs"]),
                    ("fooling", probes["fooling_probs"])):
        p = np.asarray(p, dtype=np.float64)
        target = np.asarray(probes["fooling_target"]) if kind == "fooling" else np.full(len(p), -1)
        parts.append(pd.DataFrame({"kind": kind, "confidence": p.max(axis=1),
                                   "predicted": p.argmax(axis=1).astype(np.int64),
                                   "target": target.astype(np.int64)}))
    return pd.concat(parts, ignore_index=True)


def probe_table(families: Sequence[str], dataset: str = FASHION, *, n_noise: int = 200,
                n_per_class: int = 4, steps: int = 100, seed: int = 0) -> pd.DataFrame:
    """Confidence statistics on test, noise and fooling images, per checkpoint and kind of image.

    Returns
    -------
    pandas.DataFrame
        One row per (checkpoint, kind): ``family``, ``name``, ``seed``, ``kind``, ``n``,
        ``mean_confidence``, ``median_confidence``, ``share_ge_0.99`` (share of images with
        top-1 confidence ≥ 0.99), ``fooled`` (fooling images only: share predicted as their
        target; NaN for the other kinds) and ``top_class_share`` (share of the images predicted
        as the most frequent class).
    """
    rows = []
    for family in families:
        for name in members(family, dataset):
            test = Predictions.from_zoo(name, "test", with_images=False)
            conf = probe_confidences(test.probs, zoo_probes(
                name, n_noise=n_noise, n_per_class=n_per_class, steps=steps, seed=seed))
            for kind, part in conf.groupby("kind", sort=False):
                c = part["confidence"].to_numpy()
                fooled = (float(np.mean(part["predicted"] == part["target"])) if kind == "fooling"
                          else np.nan)
                rows.append({"family": family, "name": name, "seed": zoo.entry(name)["seed"],
                             "kind": kind, "n": len(c), "mean_confidence": float(c.mean()),
                             "median_confidence": float(np.median(c)),
                             "share_ge_0.99": float(np.mean(c >= 0.99)), "fooled": fooled,
                             "top_class_share": float(part["predicted"].value_counts().iloc[0] / len(c))})
    return pd.DataFrame(rows)


def probe_summary(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """:func:`probe_table` as ``"mean ± sd"`` over seeds, one row per (family, kind)."""
    rows = []
    for (family, kind), part in table.groupby(["family", "kind"], sort=False):
        rows.append({"loss": FAMILY_LABELS.get(family, family), "images": kind, "n_seeds": len(part),
                     "mean confidence": mean_sd(part["mean_confidence"], digits),
                     "median confidence": mean_sd(part["median_confidence"], digits),
                     "share ≥ 0.99": mean_sd(part["share_ge_0.99"], digits)})
    return pd.DataFrame(rows)


# ----- notebook 07 -----------------------------------------------------------------------------
def non_uniformity_deciles(families: Sequence[str], dataset: str = FASHION,
                           split: Literal["train", "val", "test"] = "test", *,
                           n_bins: int = 10) -> pd.DataFrame:
    """Accuracy by decile of the non-uniformity score, for every checkpoint of ``families``.

    The score is :func:`labviz.label_quality.non_uniformity` of the softmax (a normalised
    Wasserstein distance to the uniform distribution); bins come from
    :func:`labviz.label_quality.accuracy_by_decile` (bin 1 = least non-uniform).

    Returns
    -------
    pandas.DataFrame
        One row per (checkpoint, bin): ``family``, ``name``, ``seed``, then the columns of
        :func:`~labviz.label_quality.accuracy_by_decile`.
    """
    from labviz.label_quality import accuracy_by_decile, non_uniformity

    parts = []
    for family in families:
        for name in members(family, dataset):
            p = Predictions.from_zoo(name, split, with_images=False)
            part = accuracy_by_decile(non_uniformity(p.probs), p.correct, n_bins=n_bins)
            part.insert(0, "seed", zoo.entry(name)["seed"])
            part.insert(0, "name", name)
            part.insert(0, "family", family)
            parts.append(part)
    return pd.concat(parts, ignore_index=True)


def decile_trend(deciles: pd.DataFrame) -> pd.DataFrame:
    """Per checkpoint: accuracy in the lowest and highest score bins and their rank correlation.

    Parameters
    ----------
    deciles : pandas.DataFrame
        From :func:`non_uniformity_deciles` (columns ``family``, ``name``, ``seed``, ``bin``,
        ``accuracy``, ``n``).

    Returns
    -------
    pandas.DataFrame
        One row per checkpoint: ``family``, ``name``, ``seed``, ``accuracy_lowest``,
        ``accuracy_highest``, ``error_share_lowest`` (the lowest bin's share of all the
        checkpoint's errors; 1 / n_bins if errors were spread evenly) and ``spearman``
        (Spearman's ρ between bin number and accuracy; 1 = accuracy rises with every bin).

    Examples
    --------
    Errors per bin: 5, 3 and 2 of 10 samples each, so the lowest bin holds half of them.

    >>> d = pd.DataFrame({"family": "ce", "name": "m", "seed": 0, "bin": [1, 2, 3],
    ...                   "accuracy": [0.5, 0.7, 0.8], "n": 10})
    >>> t = decile_trend(d)
    >>> t[["accuracy_lowest", "accuracy_highest", "error_share_lowest", "spearman"]].values.round(6).tolist()
    [[0.5, 0.8, 0.5, 1.0]]
    """
    from scipy.stats import spearmanr

    rows = []
    for (family, name, seed), part in deciles.groupby(["family", "name", "seed"], sort=False):
        part = part.sort_values("bin")
        rho = spearmanr(part["bin"], part["accuracy"]).statistic
        errors = (1 - part["accuracy"]) * part["n"]
        rows.append({"family": family, "name": name, "seed": seed,
                     "accuracy_lowest": float(part["accuracy"].iloc[0]),
                     "accuracy_highest": float(part["accuracy"].iloc[-1]),
                     "error_share_lowest": float(errors.iloc[0] / errors.sum()) if errors.sum() else np.nan,
                     "spearman": float(rho)})
    return pd.DataFrame(rows)


def decile_summary(deciles: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """One row per bin; per family the mean score and the accuracy, ``"mean ± sd"`` over seeds."""
    out = pd.DataFrame({"decile": sorted(deciles["bin"].unique())})
    for family, part in deciles.groupby("family", sort=False):
        label = FAMILY_LABELS.get(family, family)
        by_bin = part.groupby("bin")
        out[f"{label} score"] = out["decile"].map(by_bin["score_mean"].agg(lambda s: mean_sd(s, digits)))
        out[f"{label} accuracy"] = out["decile"].map(by_bin["accuracy"].agg(lambda s: mean_sd(s, digits)))
    return out


def score_agreement(families: Sequence[str], dataset: str = FASHION,
                    split: Literal["train", "val", "test"] = "test") -> pd.DataFrame:
    """Spearman's ρ between the non-uniformity score and the top-1 confidence, per checkpoint.

    Near 1 means that, as a ranking of samples, non-uniformity says little that the confidence
    does not.

    Returns
    -------
    pandas.DataFrame
        One row per checkpoint: ``family``, ``name``, ``seed``, ``spearman``.
    """
    from scipy.stats import spearmanr

    from labviz.label_quality import non_uniformity

    rows = []
    for family in families:
        for name in members(family, dataset):
            p = Predictions.from_zoo(name, split, with_images=False)
            rho = spearmanr(non_uniformity(p.probs), p.confidence).statistic
            rows.append({"family": family, "name": name, "seed": zoo.entry(name)["seed"],
                         "spearman": float(rho)})
    return pd.DataFrame(rows)


# ----- notebook 04 (continued) -------------------------------------------------------------------
def flipped_drift_table(snapshots: Mapping[int, Predictions]) -> pd.DataFrame:
    """Per epoch: which class centroid the flipped samples' features sit nearest to.

    Centroids are the mean penultimate features of the *clean* samples of each class (their given
    label is their true one). A flipped sample drifting from its true class toward its given class
    shows as ``nearest_is_given`` rising and ``nearest_is_true`` falling.

    Parameters
    ----------
    snapshots : mapping of int to Predictions
        Epoch -> training-split predictions with features, every class among the clean samples.

    Returns
    -------
    pandas.DataFrame
        One row per epoch, in order: ``epoch``, ``nearest_is_true``, ``nearest_is_given`` (shares
        of flipped samples whose nearest centroid, in Euclidean distance, is that class).

    Examples
    --------
    >>> p = Predictions.from_arrays(y_true=[0, 1, 0], y_given=[0, 1, 1], logits=np.zeros((3, 2)),
    ...                             features=[[0.0, 0.0], [4.0, 0.0], [3.0, 0.0]])
    >>> flipped_drift_table({5: p}).to_dict("records")
    [{'epoch': 5, 'nearest_is_true': 0.0, 'nearest_is_given': 1.0}]
    """
    rows = []
    for epoch, p in _snapshot_items(snapshots):
        if p.features is None:
            raise ValueError(f"`snapshots[{epoch}]` must be a Predictions with features.")
        flipped = p.flipped
        clean_y, feats = p.y_true[~flipped], p.features.astype(np.float64)
        if not flipped.any() or len(np.unique(clean_y)) < p.n_classes:
            raise ValueError(f"`snapshots[{epoch}]` must hold flipped samples and clean samples of "
                             f"every class; got {int(flipped.sum())} flipped.")
        centroids = np.stack([feats[~flipped][clean_y == k].mean(axis=0) for k in range(p.n_classes)])
        dist = ((feats[flipped][:, None, :] - centroids[None]) ** 2).sum(axis=2)
        nearest = dist.argmin(axis=1)
        rows.append({"epoch": int(epoch),
                     "nearest_is_true": float(np.mean(nearest == p.y_true[flipped])),
                     "nearest_is_given": float(np.mean(nearest == p.y_given[flipped]))})
    return pd.DataFrame(rows)
