"""Müller, Kornblith and Hinton (2019), *When does label smoothing help?* (notebook 01)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from labviz import zoo
from labviz.studies._common import FASHION, mean_sd, members

if TYPE_CHECKING:
    from labviz.core.predictions import Split


def calibration_table(families: Sequence[str], dataset: str = FASHION, *, n_bins: int = 15) -> pd.DataFrame:
    """Per checkpoint: accuracy, ECE, NLL, Brier on the test split, and the same after temperature
    scaling fitted on the validation split (one row per checkpoint)."""
    from labviz.compute.calibration import temperature_scaling_report

    rows = []
    for family in families:
        for name in members(family, dataset):
            val, test = zoo.predictions(name, "val", with_images=False), zoo.predictions(
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
    from labviz.compute.collapse import collapse_metrics

    names = [n for n in members("ce", dataset) + members("ls0.1", dataset) + members("ls-sweep", dataset)
             + members("ls-0.1", dataset) if zoo.entry(n)["seed"] == seed]
    rows = []
    for name in names:
        e = zoo.entry(name)
        m = collapse_metrics(zoo.predictions(name, "train", with_images=False))
        rows.append({"alpha": e["alpha"], "name": name, "accuracy": e["test_accuracy"],
                     "ece": e["test_ece"], "intra": m.intra, "nc1": m.nc1})
    return pd.DataFrame(rows).sort_values("alpha").reset_index(drop=True)


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
            p = zoo.predictions(name, split, with_images=False)
            acc, conf = p.accuracy, float(p.confidence.mean())
            rows.append({"family": family, "name": name, "seed": zoo.entry(name)["seed"],
                         "accuracy": acc, "mean_confidence": conf, "gap": conf - acc})
    return pd.DataFrame(rows)


#: Müller et al. show a triple of classes that resemble each other and one that does not; ours, on
#: Fashion-MNIST: T-shirt/top, Pullover, Shirt; and Trouser, Sneaker, Bag.
TRIPLES: dict[str, tuple[int, int, int]] = {"close": (0, 2, 6), "far": (1, 7, 8)}


def tightness_table(families: Sequence[str], dataset: str = FASHION, *,
                    triples: Mapping[str, tuple[int, int, int]] = TRIPLES,
                    splits: Sequence[Split] = ("train", "test")) -> pd.DataFrame:
    """Cluster tightness measured where Müller et al. measure it, and in the full feature space.

    Per checkpoint and split:

    - ``plane_<triple>``: :func:`labviz.compute.collapse.plane_tightness`, the within-class spread over the
      spread of the class means in the template plane of each triple (lower = tighter);
    - ``intra``: :func:`labviz.compute.collapse.intra_class_variation`, the cosine measure over all feature
      dimensions (Kornblith et al. 2021, the MaxSup paper's);
    - ``span_share``: :func:`labviz.compute.collapse.template_span_share`, the share of within-class
      variance in the span of the templates, the only part the logits see;
    - ``wrong_spread``: :func:`labviz.compute.collapse.wrong_logit_spread`, how unequal the wrong classes'
      logits are (Müller's "erased similarities": lower = more equidistant).
    """
    from labviz.compute.collapse import (
        intra_class_variation,
        plane_tightness,
        template_span_share,
        wrong_logit_spread,
    )

    rows = []
    for family in families:
        for name in members(family, dataset):
            for split in splits:
                p = zoo.predictions(name, split, with_images=False)
                feats, weights = p.features, p.weights
                if feats is None or weights is None:  # every zoo checkpoint carries both
                    raise ValueError(f"{name} ({split}) must give features and weights; got "
                                     f"features={feats is not None}, weights={weights is not None}.")
                row = {"family": family, "name": name, "seed": zoo.entry(name)["seed"], "split": split}
                for label, classes in triples.items():
                    row[f"plane_{label}"] = plane_tightness(feats, p.y_true, weights, classes)
                row.update(intra=intra_class_variation(feats, p.y_true),
                           span_share=template_span_share(feats, p.y_true, weights),
                           wrong_spread=wrong_logit_spread(p.logits, p.y_true))
                rows.append(row)
    return pd.DataFrame(rows)


def ls_grid(dataset: str = FASHION,
            alphas: Sequence[float] = zoo.LS_GRID_ALPHAS) -> dict[int, dict[float, str]]:
    """Seed -> α -> zoo name of the final label-smoothing checkpoints of the main architecture,
    for the seeds that have every α of ``alphas`` (whatever their manifest family)."""
    found: dict[int, dict[float, str]] = {}
    for e in zoo.read_manifest():
        if (e["dataset"] == dataset and e["loss"] == "ls" and e["arch"] == "cnn" and e["noise_rate"] == 0
                and e["epoch"] == e["epochs_total"] and e["alpha"] in alphas):
            found.setdefault(e["seed"], {})[e["alpha"]] = e["name"]
    return {s: dict(sorted(by_alpha.items())) for s, by_alpha in sorted(found.items())
            if len(by_alpha) == len(set(alphas))}


def tuned_ls_table(dataset: str = FASHION, alphas: Sequence[float] = zoo.LS_GRID_ALPHAS, *,
                   n_bins: int = 15) -> pd.DataFrame:
    """Müller et al.'s Table 3 per seed, with α chosen on validation data as the paper tuned it.

    For every seed with a CE checkpoint and an LS checkpoint at every α of ``alphas``: the LS α with
    the lowest *validation* ECE is chosen (the test split is not looked at), then the test ECE of
    CE, of CE with temperature scaling (T fitted on validation) and of the chosen LS are reported.

    Returns
    -------
    pandas.DataFrame
        One row per seed: ``seed``, ``alpha`` (chosen), ``ls_name``, ``ece_ce``, ``ece_ce_ts``,
        ``temperature``, ``ece_ls``, ``val_ece_ls`` (of the chosen α), ``accuracy_ce``,
        ``accuracy_ls``, and ``val_ece_by_alpha`` (a dict, α -> validation ECE).
    """
    from labviz.compute.calibration import (
        expected_calibration_error,
        temperature_scaling_report,
    )

    ce = {zoo.entry(n)["seed"]: n for n in members("ce", dataset)}
    rows = []
    for seed, by_alpha in ls_grid(dataset, alphas).items():
        if seed not in ce:
            continue
        val_ece = {}
        for alpha, name in by_alpha.items():
            val = zoo.predictions(name, "val", with_images=False)
            val_ece[alpha] = expected_calibration_error(val.y_true, val.probs, n_bins=n_bins)
        alpha = min(val_ece, key=lambda a: val_ece[a])
        val, test = (zoo.predictions(ce[seed], s, with_images=False) for s in ("val", "test"))
        r = temperature_scaling_report(val.logits, val.y_true, test.logits, test.y_true, n_bins=n_bins)
        ls = zoo.predictions(by_alpha[alpha], "test", with_images=False)
        rows.append({"seed": seed, "alpha": alpha, "ls_name": by_alpha[alpha], "ece_ce": r.ece_before,
                     "ece_ce_ts": r.ece_after, "temperature": r.temperature,
                     "ece_ls": expected_calibration_error(ls.y_true, ls.probs, n_bins=n_bins),
                     "val_ece_ls": val_ece[alpha], "accuracy_ce": r.accuracy, "accuracy_ls": ls.accuracy,
                     "val_ece_by_alpha": val_ece})
    return pd.DataFrame(rows)


def transfer_distillation_table(dataset: str = FASHION) -> pd.DataFrame:
    """Accuracy of the transfer-set students: alone, and distilled from a CE or an LS teacher.

    One row per student checkpoint of the families "tstudent", "tkd-ce" and "tkd-ls" (see
    :mod:`labviz.zoo`: a weak student trained on a small labelled transfer set, ten paired seeds,
    T ∈ {1, 2, 4, 8}): ``family``, ``teacher_kind`` ("none", "ce" or "ls"), ``temperature`` (NaN
    alone), ``seed``, ``name``, ``val_accuracy`` and ``test_accuracy``, and the teacher's
    ``teacher_test_accuracy``.
    """
    rows = []
    for family, kind in (("tstudent", "none"), ("tkd-ce", "ce"), ("tkd-ls", "ls")):
        for name in members(family, dataset):
            e = zoo.entry(name)
            teacher = zoo.entry(e["teacher"]) if e["teacher"] else None
            rows.append({"family": family, "teacher_kind": kind,
                         "temperature": e["temperature"] if e["temperature"] is not None else np.nan,
                         "seed": e["seed"], "name": name, "val_accuracy": e["val_accuracy"],
                         "test_accuracy": e["test_accuracy"],
                         "teacher_test_accuracy": teacher["test_accuracy"] if teacher else np.nan})
    return pd.DataFrame(rows)


def distillation_summary(distillation: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """:func:`transfer_distillation_table` per student kind and temperature, ready to read.

    One row for the student alone, then one per teacher and T: ``student`` (a display name),
    ``T`` ("—" for the student alone, who has no teacher to soften), ``n`` (seeds), and the
    validation and test accuracy as ``"mean ± sd"`` over the seeds.

    >>> t = pd.DataFrame({"teacher_kind": ["none", "none", "ce", "ce"], "temperature": [np.nan, np.nan, 2.0, 2.0],
    ...                   "seed": [0, 1, 0, 1], "val_accuracy": [0.7, 0.8, 0.8, 0.9],
    ...                   "test_accuracy": [0.7, 0.8, 0.8, 0.9]})
    >>> distillation_summary(t, digits=2).to_dict("records")[1]
    {'student': 'distilled from the CE teacher', 'T': '2', 'n': 2, 'val accuracy': '0.85 ± 0.07', 'test accuracy': '0.85 ± 0.07'}
    """
    names = {"none": "alone (no teacher)", "ce": "distilled from the CE teacher",
             "ls": "distilled from the LS α=0.1 teacher"}
    rows = []
    for (kind, temperature), part in distillation.groupby(["teacher_kind", "temperature"], dropna=False,
                                                          sort=False):
        rows.append({"student": names.get(str(kind), str(kind)),
                     "T": "—" if pd.isna(temperature) else f"{temperature:g}", "n": len(part),
                     "val accuracy": mean_sd(part.val_accuracy, digits),
                     "test accuracy": mean_sd(part.test_accuracy, digits)})
    out = pd.DataFrame(rows)
    out.attrs["note"] = ("T: the distillation temperature; —: the student alone learns from the labels "
                         "only, with no teacher to soften.")
    return out


def soft_target_table(teachers: Sequence[str], temperatures: Sequence[float] = (1.0, 2.0, 4.0, 8.0), *,
                      n_images: int | None = None) -> pd.DataFrame:
    """What a teacher hands its student at each temperature: its mass on the wrong classes, and
    how uniform that mass is.

    On the first ``n_images`` training images (the transfer set; all by default), per teacher and
    T: ``wrong_mass``, the mean of ``1 − p_T(y | x)`` with ``p_T = softmax(z / T)``, and
    ``wrong_uniformity``, the mean normalised entropy of the wrong classes' renormalised
    probabilities (1 = spread evenly over the K − 1 wrong classes, 0 = on one of them). Müller et
    al.'s explanation of worse LS students is that LS makes the wrong classes equidistant, so the
    soft targets carry less information about which classes a sample resembles: a uniformity
    near 1.
    """
    rows = []
    for name in teachers:
        p = zoo.predictions(name, "train", with_images=False)
        z, y = p.logits.astype(np.float64), p.y_true
        if n_images is not None:
            z, y = z[:n_images], y[:n_images]
        k = z.shape[1]
        wrong = np.ones_like(z, dtype=bool)
        wrong[np.arange(len(y)), y] = False
        for t in temperatures:
            scaled = z / t
            scaled -= scaled.max(axis=1, keepdims=True)
            probs = np.exp(scaled)
            probs /= probs.sum(axis=1, keepdims=True)
            q = probs[wrong].reshape(len(y), k - 1)
            mass = q.sum(axis=1)
            share = q / mass[:, None]
            entropy = -(share * np.log(np.clip(share, 1e-300, None))).sum(axis=1) / np.log(k - 1)
            rows.append({"teacher": name, "family": zoo.entry(name)["family"], "seed": zoo.entry(name)["seed"],
                         "temperature": float(t), "wrong_mass": float(mass.mean()),
                         "wrong_uniformity": float(entropy.mean())})
    return pd.DataFrame(rows)
