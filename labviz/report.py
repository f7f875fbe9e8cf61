"""The headline figures of every notebook, rebuilt from the zoo as static files: ``labviz figures``.

Each ``*_figure`` function here takes zoo checkpoint names and returns a
``plotly.graph_objects.Figure``, so a notebook shows exactly what the command writes (for example
``report.early_learning_figure("fmnist-ce-noise0.4-s0")``). :func:`build_figures` writes them all
into one folder with an ``index.md`` contact sheet, and is idempotent: a figure whose file exists
and whose inputs (checkpoint sha256s, parameters, format) are unchanged is not rendered again. The
key of every written file is kept in ``figures.json`` next to ``index.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from labviz.core import _validation as v
from labviz.core.files import atomic_write_bytes
from labviz import zoo

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "FigureResult",
    "FigureSpec",
    "build_figures",
    "confusion_heatmap_figure",
    "early_learning_figure",
    "headline_figures",
    "inversions_figure",
    "label_errors_figure",
    "maxsup_metrics_figure",
    "reliability_overlay_figure",
    "template_planes_figure",
]

Dataset = Literal["fashion-mnist", "digits"]
Format = Literal["png", "svg", "pdf"]
Split = Literal["train", "val", "test"]

DATASETS: tuple[str, ...] = ("fashion-mnist", "digits")
FORMATS: tuple[str, ...] = ("png", "svg", "pdf")
INDEX_FILE = "index.md"
STATE_FILE = "figures.json"
#: Bump when a figure's drawing or data changes, so that every output is rebuilt once.
REPORT_VERSION = 2
#: PNGs are written at twice their CSS size, enough for print at column width.
PNG_SCALE = 2

_PREFIX = {"fashion-mnist": "fmnist", "digits": "digits"}
#: Three classes per dataset for the template planes: two that look alike and one that does not,
#: as in Müller et al. (2019).
_PLANE_CLASSES = {"fashion-mnist": (2, 4, 9), "digits": (4, 9, 0)}
_ALPHA_FAMILIES = (("ls-0.1", "α = −0.1"), ("ce", "α = 0 (CE)"), ("ls0.1", "α = 0.1"))


def _label(name: str) -> str:
    """A short legend label for a checkpoint: its loss family, and its seed if not 0."""
    from labviz.studies import FAMILY_LABELS

    e = zoo.entry(name)
    label = FAMILY_LABELS.get(e["family"], e["family"] or name)
    return label if e["seed"] == 0 else f"{label}, seed {e['seed']}"


def _check_names(names: Sequence[str], name: str = "names") -> list[str]:
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise TypeError(f"`{name}` must be a sequence of zoo names; got {type(names).__name__}.")
    if len(names) == 0:
        raise ValueError(f"`{name}` must not be empty; got 0 names.")
    return [str(n) for n in names]


# ----- the figures, from zoo names ----------------------------------------------------------------
def template_planes_figure(
    names: Sequence[str],
    *,
    classes: Sequence[int] = (0, 1, 2),
    splits: Sequence[Split] = ("train", "test"),
) -> go.Figure:
    """Template planes (Müller et al. 2019) of each checkpoint on each split, side by side.

    Parameters
    ----------
    names : sequence of str
        Zoo checkpoints, e.g. ``["fmnist-ce-s0", "fmnist-ls0.1-s0"]`` for CE against label smoothing.
    classes : sequence of 3 int
    splits : sequence of {"train", "val", "test"}

    Returns
    -------
    plotly.graph_objects.Figure
        One panel per (checkpoint, split), in that order.
    """
    from labviz.figures.collapse import TemplatePlaneDisplay

    names = _check_names(names)
    for s in splits:
        v.check_option(s, "splits", ("train", "val", "test"))
    preds = [zoo.predictions(n, s, with_images=False) for n in names for s in splits]
    titles = [f"{_label(n)}, {s}" for n in names for s in splits]
    return TemplatePlaneDisplay.from_predictions(preds, classes=classes, titles=titles).plot()


def reliability_overlay_figure(names: Sequence[str], *, split: Split = "test", n_bins: int = 15) -> go.Figure:
    """Reliability curves of several checkpoints overlaid, each named with its ECE.

    Parameters
    ----------
    names : sequence of str
        Zoo checkpoints, e.g. one per loss family.
    split : {"train", "val", "test"}
    n_bins : int
    """
    from labviz.figures.calibration import ReliabilityDisplay

    names = _check_names(names)
    preds = {_label(n): zoo.predictions(n, split, with_images=False) for n in names}
    return ReliabilityDisplay.from_predictions(preds, n_bins=n_bins).plot(
        title=f"Reliability on the {split} split")


def maxsup_metrics_figure(families: Mapping[str, Sequence[str]], *, split: Split = "test") -> go.Figure:
    """Collapse metrics (intra-class variation, class separation R², NC1) per loss family, with
    mean ± sd error bars over the family's checkpoints (seeds), as in the MaxSup paper.

    Parameters
    ----------
    families : mapping of str to sequence of str
        Group label (e.g. "MaxSup α=0.1") to its zoo checkpoints (e.g. one per seed).
    split : {"train", "val", "test"}
    """
    from labviz.compute.collapse import collapse_table
    from labviz.figures.collapse import collapse_metrics_figure

    if not isinstance(families, Mapping) or not families:
        raise TypeError("`families` must be a non-empty mapping of group label to zoo names; got "
                        f"{type(families).__name__}.")
    preds, groups = [], []
    for group, names in families.items():
        for n in _check_names(names, f"families[{group!r}]"):
            preds.append(zoo.predictions(n, split, with_images=False))
            groups.append(str(group))
    fig = collapse_metrics_figure(collapse_table(preds, group_by=groups))
    return fig.update_layout(title=f"Feature collapse on the {split} split (mean ± sd over seeds)")


def early_learning_figure(run: str) -> go.Figure:
    """Early learning, then memorisation, of a noisy-label run over its epoch snapshots.

    Lines: the share of *flipped* training samples predicted as their true label and as their
    given (wrong) label, and the test accuracy, per epoch (Liu et al. 2020).

    Parameters
    ----------
    run : str
        A zoo run with snapshots, e.g. ``"fmnist-ce-noise0.4-s0"``.
    """
    import plotly.graph_objects as go

    from labviz.figures.style import apply_style, series_color
    from labviz.studies import early_learning_table

    table = early_learning_table(run)
    lines = (("flipped_as_true", "flipped samples predicted as true label", "solid"),
             ("flipped_as_given", "flipped samples predicted as given label", "solid"),
             ("test_accuracy", "test accuracy", "dash"))
    fig = go.Figure()
    for i, (column, name, dash) in enumerate(lines):
        fig.add_trace(go.Scatter(
            x=table["epoch"], y=table[column], mode="lines+markers", name=name,
            line=dict(color=series_color(i), dash=dash, width=2), marker=dict(size=7),
            hovertemplate="epoch %{x}<br>%{y:.1%}<extra>" + name + "</extra>"))
    # Log epochs spread the early snapshots out; ticks only at the snapshots, no minor-tick clutter.
    fig.update_xaxes(title_text="epoch", type="log", tickmode="array", tickvals=list(table["epoch"]))
    fig.update_yaxes(title_text="share", range=[0, 1], tickformat=".0%")
    fig.update_layout(title=f"Early learning, then memorisation: {run}", width=640, height=420,
                      legend=dict(x=0.98, y=0.5, xanchor="right", yanchor="middle"))
    return apply_style(fig)


def label_errors_figure(name: str, *, split: Split = "test", max_images: int = 32) -> go.Figure:
    """Gallery of the likely label errors that cleanlab finds in ``split`` with ``name``'s probs.

    Use a split the checkpoint did not train on (the default, "test"): only then are its
    probabilities out-of-sample, as confident learning requires.
    """
    from labviz.figures.label_quality import LabelErrorDisplay

    display = LabelErrorDisplay.from_predictions(zoo.predictions(name, split))
    fig = display.plot(max_images=max_images)
    return fig.update_layout(title=f"Likely label errors, {split} split ({name})")


def inversions_figure(names: Sequence[str], *, labels: Sequence[str] | None = None, steps: int = 300,
                      seed: int = 0) -> go.Figure:
    """Model inversions (one per class) of each checkpoint, one row per checkpoint.

    Parameters
    ----------
    names : sequence of str
        Zoo checkpoints, e.g. LS with α = −0.1, CE, LS with α = 0.1.
    labels : sequence of str, optional
        Row labels; default each checkpoint's family.
    steps, seed : int
        Passed to :func:`labviz.compute.inversion.invert`.
    """
    import numpy as np

    from labviz.figures.thumbnails import image_grid_figure
    from labviz.studies import invert_checkpoints

    names = _check_names(names)
    labels = [_label(n) for n in names] if labels is None else [str(x) for x in labels]
    if len(labels) != len(names):
        raise ValueError(f"`labels` must have {len(names)} entries (one per name); got {len(labels)}.")
    # Cached on disk by checkpoint sha256 and settings, shared with notebook 06.
    inversions = invert_checkpoints(names, n_per_class=1, steps=steps, seed=seed)
    images, titles = [], []
    for n in names:
        inv = inversions[n]
        class_names = zoo.class_names(zoo.entry(n)["dataset"])
        n_classes = len(class_names)
        # Tiny inputs (8 x 8 digits) are repeated up to >= 24 pixels so the captions fit under them.
        factor = -(-24 // inv.images.shape[1])
        images.append(np.kron(inv.images, np.ones((factor, factor), dtype=inv.images.dtype)))
        titles += [f"{class_names[k]}: {p:.2f}" for k, p in zip(inv.target, inv.confidence, strict=True)]
    return image_grid_figure(np.concatenate(images), titles=titles, n_cols=n_classes,
                             title="Model inversions, rows top to bottom: " + ", ".join(labels)
                                   + " (class: source-model confidence)")


def confusion_heatmap_figure(name: str, *, split: Split = "test") -> go.Figure:
    """The row-normalised confusion matrix of checkpoint ``name`` on ``split``."""
    from labviz.figures.confusion import ConfusionDisplay

    p = zoo.predictions(name, split, with_images=False)
    return ConfusionDisplay.from_predictions(p).plot(title=f"Confusion: {_label(name)} ({split})")


# ----- the set of headline figures -----------------------------------------------------------------
@dataclass(frozen=True)
class FigureSpec:
    """One headline figure: what to call its file, how to build it, and what it depends on.

    Attributes
    ----------
    stem : str
        File name without extension.
    caption : str
        One line for the contact sheet.
    checkpoints : tuple of str
        The zoo entries it is computed from (their sha256s are part of its key).
    params : dict
        JSON-serialisable parameters (also part of its key).
    build : callable returning a Figure, or None when the figure is skipped
    skip_reason : str
        Why it is skipped (shown in the contact sheet), empty otherwise.
    """

    stem: str
    caption: str
    checkpoints: tuple[str, ...]
    params: dict = field(default_factory=dict)
    build: Callable[[], go.Figure] | None = None
    skip_reason: str = ""


def _run_names(dataset: str, family: str) -> list[str]:

    return [r.name for r in zoo.recipes() if r.dataset == dataset and r.family == family]


def headline_figures(dataset: Dataset = "fashion-mnist") -> list[FigureSpec]:
    """The headline figure of every notebook for ``dataset``, in notebook order.

    A figure whose checkpoints are not in the zoo's manifest (yet) comes back with a
    ``skip_reason`` and no ``build``.
    """

    v.check_option(dataset, "dataset", DATASETS)
    p = _PREFIX[dataset]
    ce, ls, maxsup, neg = f"{p}-ce-s0", f"{p}-ls0.1-s0", f"{p}-maxsup0.1-s0", f"{p}-ls-0.1-s0"
    noisy = f"{p}-ce-noise0.4-s0"
    classes = _PLANE_CLASSES[dataset]
    family_labels = (("ce", "CE"), ("ls0.1", "LS α=0.1"), ("maxsup0.1", "MaxSup α=0.1"),
                     ("ls-0.1", "LS α=−0.1"))
    families = {label: _run_names(dataset, fam) for fam, label in family_labels}
    alpha_names = [f"{p}-{fam}-s0" for fam, _ in _ALPHA_FAMILIES]
    known = {e["name"]: e for e in zoo.read_manifest()}
    snapshots = sorted((e for e in known.values() if e["run"] == noisy), key=lambda e: e["epoch"])

    specs = [
        FigureSpec("template-planes", "Template planes of three classes (two alike, one not), CE vs "
                   "label smoothing, on the train and test splits.", (ce, ls),
                   {"classes": list(classes), "splits": ["train", "test"]},
                   lambda: template_planes_figure([ce, ls], classes=classes)),
        FigureSpec("reliability", "Reliability diagrams on the test split, one curve per loss, with ECE.",
                   (ce, ls, maxsup, neg), {"split": "test", "n_bins": 15},
                   lambda: reliability_overlay_figure([ce, ls, maxsup, neg])),
        FigureSpec("maxsup-metrics", "Collapse metrics per loss (mean ± sd over seeds, test split): "
                   "intra-class variation, class separation R², NC1.",
                   tuple(n for names in families.values() for n in names), {"split": "test"},
                   lambda: maxsup_metrics_figure(families)),
        FigureSpec("early-learning", "Noisy labels (40 % flipped): share of flipped training samples "
                   "predicted as their true vs given label per epoch, and test accuracy.",
                   tuple(e["name"] for e in snapshots) or (noisy,), {"run": noisy},
                   lambda: early_learning_figure(noisy)),
        FigureSpec("label-errors", "Likely label errors in the test split, found by cleanlab on the "
                   "CE model's out-of-sample probabilities (candidates, not confirmed).", (ce,),
                   {"split": "test", "max_images": 32}, lambda: label_errors_figure(ce)),
        FigureSpec("inversions", "Model inversions of each class for label-smoothing "
                   "α ∈ {−0.1, 0, 0.1}.",
                   tuple(alpha_names), {"steps": 300, "seed": 0},
                   lambda: inversions_figure(alpha_names, labels=[a for _, a in _ALPHA_FAMILIES])),
        FigureSpec("confusion-ce", "Confusion matrix of the CE model on the test split (row-normalised).",
                   (ce,), {"split": "test"}, lambda: confusion_heatmap_figure(ce)),
        FigureSpec("confusion-ls", "Confusion matrix of the label-smoothing model on the test split.",
                   (ls,), {"split": "test"}, lambda: confusion_heatmap_figure(ls)),
    ]
    out = []
    for spec in specs:
        missing = [n for n in spec.checkpoints if n not in known]
        if missing:
            spec = FigureSpec(spec.stem, spec.caption, spec.checkpoints, spec.params, None,
                              f"skipped: checkpoints not in the zoo yet: {', '.join(missing)}")
        out.append(spec)
    return out


# ----- writing them --------------------------------------------------------------------------------
@dataclass(frozen=True)
class FigureResult:
    """What :func:`build_figures` did with one figure.

    Attributes
    ----------
    stem, caption : str
    file : str
        File name inside the output folder ("" when skipped).
    checkpoints : tuple of str
    status : {"written", "unchanged", "skipped"}
    seconds : float
        Time to compute and export it (0 when unchanged or skipped).
    note : str
        The skip reason, if any.
    """

    stem: str
    caption: str
    file: str
    checkpoints: tuple[str, ...]
    status: Literal["written", "unchanged", "skipped"]
    seconds: float = 0.0
    note: str = ""


def figure_key(spec: FigureSpec, fmt: str) -> str:
    """A key that changes when the figure's inputs do: checkpoint sha256s, parameters, format."""
    from labviz import __version__

    parts = {
        "report_version": REPORT_VERSION, "labviz": __version__, "stem": spec.stem,
        "params": spec.params, "format": fmt, "scale": PNG_SCALE if fmt == "png" else 1,
        "checkpoints": {n: zoo.entry(n)["sha256"] for n in spec.checkpoints},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def _read_state(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    try:
        state = json.loads(path.read_text())
        files = state["files"]
        if not isinstance(files, dict):
            raise TypeError
    except (json.JSONDecodeError, KeyError, TypeError):
        raise ValueError(f"{path} is not a labviz figures record; delete it to rebuild every "
                         "figure.") from None
    return files


def _write_if_changed(path: Path, text: str) -> None:
    # Rewriting identical content would bump the mtime and break the "nothing changes" contract.
    data = text.encode()
    if path.exists() and path.read_bytes() == data:
        return
    atomic_write_bytes(path, data, mode=None)  # a report's bits follow the umask


def _index_text(results: Sequence[FigureResult], dataset: str, fmt: str) -> str:
    lines = [f"# labviz figures: {dataset}", "",
             f"Regenerated by `labviz figures --dataset {dataset} --format {fmt}` from the checkpoint "
             "zoo. Each figure lists the checkpoints it came from.", ""]
    for r in results:
        lines.append(f"## {r.stem}")
        lines.append("")
        if r.status == "skipped":
            lines += [f"*{r.caption}* — {r.note}", ""]
            continue
        lines.append(f"[{r.file}]({r.file})" if fmt == "pdf" else f"![{r.stem}]({r.file})")
        lines.append("")
        lines.append(f"`{r.file}`: {r.caption}")
        lines.append("Checkpoints: " + ", ".join(f"`{n}`" for n in r.checkpoints))
        lines.append("")
    return "\n".join(lines)


def build_figures(
    out: str | os.PathLike,
    *,
    dataset: Dataset = "fashion-mnist",
    fmt: Format = "png",
    progress: bool = True,
) -> list[FigureResult]:
    """Write every headline figure of ``dataset`` into folder ``out``, with ``index.md``.

    Idempotent: a figure is rendered only if its file is missing or its key (checkpoint sha256s,
    parameters, format; see :func:`figure_key`) changed. Chromium starts once, and only if a
    figure needs writing. A file in ``out`` with a figure's name that this command did not write
    (it is not in ``figures.json``) is never overwritten.

    Parameters
    ----------
    out : str or os.PathLike
        The output folder (created if missing).
    dataset : {"fashion-mnist", "digits"}
    fmt : {"png", "svg", "pdf"}
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    list of FigureResult
        One per headline figure, in index order.
    """
    from tqdm.auto import tqdm

    from labviz.figures.export import ExportSession

    v.check_option(dataset, "dataset", DATASETS)
    v.check_option(fmt, "fmt", FORMATS)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    state_path = folder / STATE_FILE
    state = _read_state(state_path)
    specs = headline_figures(dataset)
    for spec in specs:
        target = folder / f"{spec.stem}.{fmt}"
        if spec.build is not None and target.exists() and target.name not in state:
            raise FileExistsError(f"{target} exists but was not written by `labviz figures` (it is "
                                  f"not in {state_path.name}); move it away or choose another folder.")

    results: list[FigureResult] = []
    with ExitStack() as stack:
        session: ExportSession | None = None  # Chromium starts only once a figure needs writing
        for spec in tqdm(specs, desc="figures", unit="fig", disable=not progress):
            if spec.build is None:
                results.append(FigureResult(spec.stem, spec.caption, "", spec.checkpoints, "skipped",
                                            note=spec.skip_reason))
                continue
            file = f"{spec.stem}.{fmt}"
            key = figure_key(spec, fmt)
            if (folder / file).exists() and state.get(file, {}).get("key") == key:
                results.append(FigureResult(spec.stem, spec.caption, file, spec.checkpoints, "unchanged"))
                continue
            start = time.perf_counter()
            fig = spec.build()
            if session is None:
                session = stack.enter_context(ExportSession())
            session.export(fig, folder / file, scale=PNG_SCALE if fmt == "png" else None, overwrite=True)
            state[file] = {"key": key, "caption": spec.caption, "checkpoints": list(spec.checkpoints)}
            # Recorded after every figure, so an interrupted run keeps what it finished.
            _write_if_changed(state_path, json.dumps({"version": REPORT_VERSION, "files": state},
                                                     indent=1, sort_keys=True) + "\n")
            results.append(FigureResult(spec.stem, spec.caption, file, spec.checkpoints, "written",
                                        seconds=time.perf_counter() - start))
    _write_if_changed(state_path, json.dumps({"version": REPORT_VERSION, "files": state},
                                             indent=1, sort_keys=True) + "\n")
    _write_if_changed(folder / INDEX_FILE, _index_text(results, dataset, fmt))
    return results
