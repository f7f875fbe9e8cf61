"""The notebook widgets: ``labviz.explore`` (linked views of trained models), ``labviz.live`` (train
models live in class) and ``labviz.app`` (both in one page, served by ``make app``).

This module is light on purpose (``import labviz`` stays fast): plotly, ipywidgets and pandas load
only when a function here builds its widget class (:class:`labviz.explorer.Explorer`,
:class:`labviz.live_widget.LiveTrainer`), which holds the widget, its state and the handlers.

Series. Zoo entries that share a ``run`` and differ in ``epoch`` are the snapshots of one training
run (the noisy-label runs: ``digits-ce-noise0.4-s0-e01`` ... ``digits-ce-noise0.4-s0``). The
label-smoothing sweep of a dataset and seed is its ``family == "ls-sweep"`` entries plus its
``ce`` (alpha 0) and ``ls0.1`` runs, ordered by alpha. :func:`list_series` reads both from the
manifest; the explorer's slider steps through the series of the chosen checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import ipywidgets

    from labviz.explorer import ColorBy, Explorer, Source
    from labviz.live_widget import LiveTrainer
    from labviz.predictions import Split

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


def list_series(entries: Sequence[dict] | None = None) -> list[Series]:
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
        from labviz.zoo import read_manifest

        entries = read_manifest()
    if isinstance(entries, (str, bytes)) or not isinstance(entries, Sequence):
        raise TypeError(f"`entries` must be a sequence of manifest entries (dicts); "
                        f"got {type(entries).__name__}.")
    runs: dict[str, list[dict]] = {}
    for e in entries:
        runs.setdefault(e.get("run") or e["name"], []).append(e)
    out = [
        _series(run, "epoch", members, "epoch")
        for run, members in sorted(runs.items()) if len(members) > 1
    ]
    finals = [e for e in entries if e.get("epoch") == e.get("epochs_total", e.get("epoch"))]
    sweeps: dict[tuple[str, int], list[dict]] = {}
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


def _series(name: str, kind: SeriesKind, members: list[dict], key: str) -> Series:
    members = sorted(members, key=lambda e: (float(e[key]), e["name"]))
    return Series(name=name, kind=kind, members=tuple(e["name"] for e in members),
                  values=tuple(float(e[key]) for e in members))


def series_for(name: str, entries: Sequence[dict] | None = None) -> Series | None:
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


def explore(
    sources: Source | Sequence[Source],
    *,
    split: Split = "test",
    method: str = "pca",
    color: ColorBy = "class",
    classes: Sequence[int] | None = None,
    n_bins: int = 15,
    max_points: int = 20_000,
    max_thumbnails: int = 32,
) -> Explorer:
    """Explore one or two models in linked views: confusion, projection, reliability, per class.

    Clicking a confusion cell highlights its samples in every projection and shows their images;
    a lasso or box selection in a projection updates the reliability diagram and the per-class
    table for that selection; a slider steps through a checkpoint's epoch snapshots or its LS
    sweep on fixed, aligned axes; with two checkpoints, the projections sit side by side (aligned
    by Procrustes on shared sample ids) and share the highlight.

    Parameters
    ----------
    sources : str, Predictions, or a sequence of them
        Zoo checkpoint names (see :func:`labviz.zoo.names`) and/or :class:`labviz.Predictions`
        holding ``features`` (your own model). The first is shown, the second (if any) beside it;
        the others can be picked in the controls.
    split : {"train", "val", "test"}
        The split of zoo checkpoints (``Predictions`` objects have one set of samples).
    method : {"pca", "umap", "tsne"}
        Projection method; projections are cached on disk, so only the first use is slow.
    color : {"class", "prediction", "given", "correct", "confidence", "flipped", "non_uniformity"}
        What the projection's colour shows.
    classes : sequence of int, optional
        Show only samples of these true classes (default: all).
    n_bins : int
        Bins of the reliability diagram.
    max_points : int
        Above this many samples a projection draws (and rings) a fixed random subset of them;
        the selection, the confusion matrix and every statistic still use all samples.
    max_thumbnails : int
        At most this many images of a highlighted set are shown.

    Returns
    -------
    Explorer
        Displays itself in a notebook; its handlers (``select_cell``, ``select_points``,
        ``set_snapshot``...) can also be called directly.
    """
    from labviz.explorer import Explorer

    return Explorer(sources, split=split, method=method, color=color, classes=classes,
                    n_bins=n_bins, max_points=max_points, max_thumbnails=max_thumbnails)


def live(*, dataset: str = "digits", classes: Sequence[int] = (0, 1, 2)) -> LiveTrainer:
    """Train small CNNs live on real data and watch the labels reshape them.

    Pick a loss (cross-entropy, label smoothing, MaxSup or knowledge distillation), α (negative
    too), label noise, epochs and seed, and press **Train**: the run trains in the background (a
    progress bar shows; **Cancel** stops it; pressing **Train** again supersedes it), then the
    template plane, reliability diagram, confusion matrix and collapse metrics show the new model.
    Every finished run joins the history table (α, accuracy, ECE, NC1, intra, inter), so a class
    builds its own α sweep, and any two runs can be compared side by side.

    Parameters
    ----------
    dataset : {"digits", "fashion-mnist"}
        The dataset selected at start. Digits (1,077 training images of 8×8) train in about 1.5 s on
        a laptop CPU; Fashion-MNIST trains on a subset, with a time estimate shown before the run.
    classes : sequence of 3 int
        The class triple of the template plane (changeable in the widget).

    Returns
    -------
    LiveTrainer
        Displays itself in a notebook; ``.session.history()`` holds the runs, and ``train()``,
        ``cancel()`` and ``wait()`` drive it from code.
    """
    from labviz.live_widget import LiveTrainer

    classes = tuple(classes)
    if len(classes) != 3 or any(isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < 10
                                for k in classes):
        raise ValueError(f"`classes` must be 3 class indices in [0, 9]; got {classes!r}.")
    return LiveTrainer(dataset=dataset, classes=classes)


#: The zoo checkpoints :func:`app` explores: digits, so the page is up in seconds on any machine.
APP_SOURCES = ("digits-ce-s0", "digits-ls0.1-s0")


def app(*, explore_sources: Sequence[Source] = APP_SOURCES) -> ipywidgets.VBox:
    """The classroom app: live training and the explorer in two tabs, under a short guide.

    ``make app`` serves this through Voilà (``notebooks/app.ipynb``): a page with no code, for
    students who have never used Jupyter.

    Parameters
    ----------
    explore_sources : sequence of str or Predictions
        What the explorer tab shows (see :func:`explore`).

    Returns
    -------
    ipywidgets.VBox
        Its ``.trainer`` and ``.explorer`` attributes are the two parts.
    """
    import ipywidgets

    trainer = live()
    explorer = explore(list(explore_sources))
    guide = ipywidgets.HTML(
        "<h2>labviz: how labels shape a classifier</h2>"
        "<p><b>Live training</b>: choose a loss and its α, press <b>Train</b>, and watch the "
        "template plane, the reliability diagram, the confusion matrix and the collapse metrics "
        "change. Every run is kept in <i>History</i>; <i>Compare two runs</i> puts any two side "
        "by side. <b>Explorer</b>: click a confusion cell to find its images, drag a lasso over "
        "points to see their calibration.</p>")
    tabs = ipywidgets.Tab(children=[trainer.widget, explorer.widget])
    tabs.set_title(0, "Live training")
    tabs.set_title(1, "Explorer")
    page = ipywidgets.VBox([guide, tabs])
    page.trainer, page.explorer = trainer, explorer
    return page
