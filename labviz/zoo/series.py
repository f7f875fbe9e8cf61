"""Series of zoo checkpoints to step through with a slider: snapshots of one run, and LS sweeps.

Zoo entries that share a ``run`` and differ in ``epoch`` are the snapshots of one training run (the
noisy-label runs: ``digits-ce-noise0.4-s0-e01`` ... ``digits-ce-noise0.4-s0``). The label-smoothing
sweep of a dataset and seed is its ``family == "ls-sweep"`` entries plus its ``ce`` (alpha 0) and
``ls0.1`` runs, ordered by alpha. The explorer's slider steps through the series of the chosen
checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from labviz.zoo.store import Entry, read_manifest

__all__ = ["Series", "SeriesKind", "list_series", "series_for"]

SeriesKind = Literal["epoch", "alpha"]

#: Families that join an LS sweep next to the ``ls-sweep`` entries (alpha 0 and alpha 0.1).
_SWEEP_COMPANIONS = ("ce", "ls0.1")


@dataclass(frozen=True)
class Series:
    """An ordered set of zoo checkpoints to step through with a slider.

    Attributes
    ----------
    name : str
        The run name for epoch snapshots (e.g. ``"digits-ce-noise0.4-s0"``), else
        ``"<dataset> LS sweep s<seed>"``.
    kind : {"epoch", "alpha"}
    members : tuple of str
        Checkpoint names, ordered by ``values``.
    values : tuple of float
        The epoch or the label-smoothing alpha of each member, ascending.
    """

    name: str
    kind: SeriesKind
    members: tuple[str, ...]
    values: tuple[float, ...]

    def label(self, index: int) -> str:
        """Slider text of member ``index``, e.g. ``"epoch 5"`` or ``"α = 0.1"``."""
        value = self.values[index]
        return f"epoch {int(value)}" if self.kind == "epoch" else f"α = {value:g}"


def list_series(entries: Sequence[Entry] | None = None) -> list[Series]:
    """Every snapshot series and LS sweep in a zoo manifest.

    Parameters
    ----------
    entries : sequence of dict, optional
        Manifest entries (as from :func:`labviz.zoo.read_manifest`); defaults to the zoo's.

    Returns
    -------
    list of Series
        Epoch series first (sorted by run name), then alpha sweeps (by dataset and seed). Only
        groups with at least two members are listed.

    Examples
    --------
    >>> e = [dict(name="r", run="r", epoch=9), dict(name="r-e01", run="r", epoch=1)]
    >>> [(s.kind, s.members, s.values) for s in list_series(e)]
    [('epoch', ('r-e01', 'r'), (1.0, 9.0))]
    """
    if entries is None:
        entries = read_manifest()
    if isinstance(entries, (str, bytes)) or not isinstance(entries, Sequence):
        raise TypeError(f"`entries` must be a sequence of manifest entries (dicts); "
                        f"got {type(entries).__name__}.")
    runs: dict[str, list[Entry]] = {}
    for e in entries:
        runs.setdefault(e.get("run") or e["name"], []).append(e)
    out = [
        _series(run, "epoch", members, "epoch")
        for run, members in sorted(runs.items()) if len(members) > 1
    ]
    finals = [e for e in entries if e.get("epoch") == e.get("epochs_total", e.get("epoch"))]
    sweeps: dict[tuple[str, int], list[Entry]] = {}
    for e in finals:
        if e.get("family") == "ls-sweep":
            sweeps.setdefault((e.get("dataset", ""), e.get("seed", 0)), []).append(e)
    for (dataset, seed), members in sorted(sweeps.items()):
        members = members + [
            e for e in finals if e.get("family") in _SWEEP_COMPANIONS
            and e.get("dataset", "") == dataset and e.get("seed", 0) == seed
        ]
        out.append(_series(f"{dataset} LS sweep s{seed}", "alpha", members, "alpha"))
    return out


def _series(name: str, kind: SeriesKind, members: list[Entry], key: str) -> Series:
    members = sorted(members, key=lambda e: (float(e[key]), e["name"]))
    return Series(name=name, kind=kind, members=tuple(e["name"] for e in members),
                  values=tuple(float(e[key]) for e in members))


def series_for(name: str, entries: Sequence[Entry] | None = None) -> Series | None:
    """The series checkpoint ``name`` belongs to (its epoch snapshots first, else its LS sweep),
    or None when it has neither.

    Examples
    --------
    >>> e = [dict(name="r", run="r", epoch=9), dict(name="r-e01", run="r", epoch=1)]
    >>> series_for("r-e01", e).name, series_for("other", e)
    ('r', None)
    """
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a checkpoint name (str); got {type(name).__name__}.")
    for s in list_series(entries):
        if name in s.members:
            return s
    return None
