"""Zhou et al. (2025), MaxSup: representation collapse and error enhancement (notebook 02)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from labviz import zoo
from labviz.studies._common import FAMILY_LABELS, FASHION, mean_sd, members

if TYPE_CHECKING:
    from labviz.core.predictions import Split


def collapse_family_table(families: Sequence[str], dataset: str = FASHION,
                          splits: Sequence[Split] = ("train", "test")) -> pd.DataFrame:
    """Intra-class variation, inter-class separability and NC1 per checkpoint and split."""
    from labviz.compute.collapse import collapse_metrics

    rows = []
    for family in families:
        for name in members(family, dataset):
            for split in splits:
                m = collapse_metrics(zoo.predictions(name, split, with_images=False))
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
    from labviz.compute.collapse import misclassified_confidence

    rows = []
    for family in families:
        for name in members(family, dataset):
            conf = misclassified_confidence(zoo.predictions(name, "test", with_images=False))
            rows.append({"family": family, "name": name, "seed": zoo.entry(name)["seed"],
                         "n_errors": len(conf),
                         "mean_confidence": float(conf.mean()), "share_above_0.9": float((conf > 0.9).mean())})
    return pd.DataFrame(rows)
