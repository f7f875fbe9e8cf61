"""One self-contained HTML report of a classifier's predictions: what ``labviz report`` writes.

:func:`write_report` composes results of the compute layer and figures of this one into a single
HTML file that opens offline: plotly.js is embedded once, and nothing is fetched (no CDN, no
MathJax). Its sections, in order:

1. a summary of the inputs;
2. every calibration estimator with its 95% interval
   (:class:`~labviz.figures.calibration_report.CalibrationReportDisplay`);
3. the reliability diagram over a forest plot of the estimators, and the CORP diagram;
4. the confusion matrix (classes in :func:`~labviz.compute.confusion.class_order`) and its most
   confused pairs, each with a few of its samples' images where the inputs hold images;
5. the per-class table (precision, recall, F1, support);
6. the label-error candidates of cleanlab's confident learning
   (:func:`~labviz.compute.label_quality.find_label_errors`);
7. the collapse metrics (:func:`~labviz.compute.collapse.collapse_metrics`), with features;
8. the template plane of the most confused triple of classes, with features and weights.

A section that the inputs cannot give (no features, say) states why instead of its content.
Tables are HTML tables under a one-line legend; figures carry their data once (plotly's binary
arrays), with no per-point hover text beyond what each figure draws.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import sys
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from labviz.core import _validation as v
from labviz.core._validation import MAX_CELLS
from labviz.core._inputs import as_predictions
from labviz.core.files import atomic_write_bytes
from labviz.core.predictions import Predictions

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from labviz.compute.calibration import CorpDiagram

__all__ = ["SECTIONS", "corp_steps", "most_confused_triple", "write_report"]

#: The report's sections, by anchor, with their headings.
SECTIONS: dict[str, str] = {
    "summary": "Summary",
    "calibration": "Calibration estimators with 95% intervals",
    "diagrams": "Reliability and CORP diagrams",
    "confusion": "Confusion summary and top confused pairs",
    "per-class": "Per-class table",
    "label-errors": "Label-error candidates",
    "collapse": "Collapse metrics",
    "template-plane": "Template plane of the most confused triple",
}
#: Confused pairs listed, label-error candidates listed, and images shown per listed pair.
TOP_PAIRS, TOP_LABEL_ERRORS, IMAGES_PER_PAIR = 20, 50, 4
#: Decimals of the CORP curve and band as drawn (see :func:`corp_steps`).
CORP_DECIMALS = 3
#: From this many probabilities (samples x classes; 512 MB as float64) the label-error candidates
#: come from cleanlab's mini-batch confident learning over row chunks, not the whole matrix.
BATCHED_LABEL_ERRORS = 1 << 26
THUMBNAIL_PX = 48
#: Figures written with ``figures_dir``, in each of these formats.
FIGURE_FORMATS = ("pdf", "png")

_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; color: #222; max-width: 1100px; margin: 0 auto;
       padding: 0 1.5em 3em; }
h1 { margin-bottom: .2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
nav { display: flex; flex-wrap: wrap; gap: .2em 1.2em; } nav a { white-space: nowrap; }
table { border-collapse: collapse; margin: .5em 0 1em; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; color: #555; padding-bottom: .3em; }
th, td { padding: .2em .6em; border-bottom: 1px solid #eee; text-align: right; }
th { background: #f4f4f4; position: sticky; top: 0; }
td.text, th.text { text-align: left; }
.scroll { max-height: 32em; overflow-y: auto; display: inline-block; }
.skipped { color: #8a4b00; background: #fff6e5; padding: .5em .8em; border-left: 3px solid #e0a040; }
.legend { color: #555; }
img.thumb { image-rendering: pixelated; margin-right: 2px; vertical-align: middle; }
"""


@dataclass
class _Section:
    """One section's body (HTML) and its figures, by file stem."""

    body: str
    figures: dict[str, go.Figure] = field(default_factory=dict)


# ----- HTML pieces ---------------------------------------------------------------------------------
def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _skipped(reason: str) -> str:
    return f'<p class="skipped">Not computed: {_esc(reason)}</p>'


def _cell(value: object, fmt: str | None) -> tuple[str, bool]:
    """A table cell's text and whether it is text (left-aligned) rather than a number."""
    import pandas as pd

    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return "–", False
    if isinstance(value, (bool, np.bool_)):
        return ("yes" if value else "no"), True
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = value.item() if isinstance(value, np.generic) else value
        return (format(number, fmt) if fmt else f"{number:,}" if isinstance(number, int)
                else f"{number:.4f}"), False
    return _esc(value), True


def _table(frame: pd.DataFrame, legend: str, *, formats: Mapping[str, str] | None = None,
           raw: Collection[str] = (), scroll: bool = False) -> str:
    """``frame`` as an HTML table under ``legend``; the ``raw`` columns hold HTML already."""
    formats = formats or {}
    columns = list(frame.columns)
    head = "".join(f'<th class="{"text" if c in raw else ""}">{_esc(c)}</th>' for c in columns)
    rows = []
    for record in frame.itertuples(index=False, name=None):
        cells = []
        for column, value in zip(columns, record):
            if column in raw:
                cells.append(f'<td class="text">{value}</td>')
            else:
                text, is_text = _cell(value, formats.get(column))
                cells.append(f'<td class="text">{text}</td>' if is_text else f"<td>{text}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    table = (f"<table><caption>{_esc(legend)}</caption><thead><tr>{head}</tr></thead>"
             f"<tbody>{''.join(rows)}</tbody></table>")
    return f'<div class="scroll">{table}</div>' if scroll else table


def _figure_html(fig: go.Figure) -> str:
    import plotly.io as pio

    height = fig.layout.height
    # plotly.js is in the page's head once; each figure brings only its data and layout.
    return pio.to_html(fig, include_plotlyjs=False, include_mathjax=False, full_html=False,
                       default_height=f"{int(height)}px" if height else "480px",
                       config={"displaylogo": False, "responsive": True})


def _thumbnails(images: NDArray | None, rows: NDArray[np.int64]) -> str:
    from labviz.figures.thumbnails import thumbnail_uri

    if images is None:
        return ""
    size = f'width="{THUMBNAIL_PX}" height="{THUMBNAIL_PX}"'
    return "".join(f'<img class="thumb" alt="sample at position {int(i)}" {size} '
                   f'src="{thumbnail_uri(images[int(i)], size=THUMBNAIL_PX)}">' for i in rows)


# ----- sections ------------------------------------------------------------------------------------
def _summary(p: Predictions) -> _Section:
    import pandas as pd

    n_features = None if p.features is None else p.features.shape[1]
    facts = pd.DataFrame({"": ["samples", "classes", "features", "accuracy (top-1)",
                               "mean confidence", "given labels differing from true",
                               "last-layer weights", "images"],
                          "value": [f"{p.n_samples:,}", f"{p.n_classes:,}",
                                    "none" if n_features is None else f"{n_features:,}",
                                    f"{p.accuracy:.4f}", f"{float(p.confidence.mean()):.4f}",
                                    f"{int(p.flipped.sum()):,}",
                                    "present" if p.weights is not None else "none",
                                    "none" if p.images is None else "x".join(
                                        str(s) for s in p.images.shape[1:])]})
    return _Section(_table(facts, "What the predictions hold.", raw=("",)))


def _calibration(p: Predictions, n_boot: int, shared: dict) -> _Section:
    from labviz.figures.calibration_report import CalibrationReportDisplay

    display = CalibrationReportDisplay.from_predictions({p.name or "model": p}, n_boot=n_boot)
    shared["calibration"] = display
    table = display.table.drop(columns=["model"])
    legend = ("Each estimator of the top-label (or class-wise) calibration error, and the proper "
              "scores, with its 95% percentile-bootstrap interval over samples; lower is better. "
              "Smooth ECE and ECE_sweep are point estimates.")
    return _Section(_table(table, legend, formats={"n_bins": "d"}, raw=()))


def corp_steps(d: CorpDiagram, *, decimals: int = CORP_DECIMALS) -> CorpDiagram:
    """``d`` with its curve and band rounded to ``decimals`` and only the points where one of them
    changes kept (the step curve and band drawn are unchanged, up to the rounding).

    A CORP diagram has a point per distinct confidence (50,000 at ImageNet's validation set),
    but its curve and band are step functions of far fewer steps. A merged point's ``count`` is
    that of the confidences it stands for.

    Parameters
    ----------
    d : CorpDiagram
    decimals : int
        3 moves no line by more than 0.0005, under a pixel of a 500-pixel-high plot.

    Returns
    -------
    CorpDiagram

    Examples
    --------
    >>> from labviz.compute.calibration import corp_reliability
    >>> d = corp_reliability([1, 0, 1, 1], [[0.2, 0.8], [0.3, 0.7], [0.4, 0.6], [0.1, 0.9]],
    ...                      n_boot=10)
    >>> len(d.confidence), len(corp_steps(d).confidence) <= 4, int(corp_steps(d).count.sum())
    (4, True, 4)
    """
    decimals = v.check_int(decimals, "decimals", minimum=0)
    values = np.round(np.column_stack([d.calibrated, d.band_low, d.band_high]), decimals)
    starts = np.flatnonzero(np.r_[True, np.any(values[1:] != values[:-1], axis=1)])
    # The last confidence is kept too, so that the curve still reaches it.
    keep = np.unique(np.r_[starts, len(values) - 1]) if len(values) else starts
    runs = np.searchsorted(keep, np.arange(len(values)), side="right") - 1
    return replace(d, confidence=d.confidence[keep], calibrated=values[keep, 0],
                   band_low=values[keep, 1], band_high=values[keep, 2],
                   count=np.bincount(runs, weights=d.count, minlength=len(keep)).astype(np.int64))


def _diagrams(p: Predictions, n_boot: int, shared: dict) -> _Section:
    from labviz.figures.calibration import CorpDisplay

    report = shared["calibration"].plot(title="Reliability diagram and calibration estimators")
    # The band's refits form an n_boot x (distinct confidences) table, which the compute layer
    # holds to MAX_CELLS: past that (over 100,000 distinct confidences), fewer refits.
    corp_boot = min(n_boot, MAX_CELLS // max(np.unique(p.confidence).size, 1))
    text = ('<p class="legend">Top: accuracy against confidence in 15 equal-width bins (bars: '
            "95% Wilson intervals, faded where bins are small), above each estimator with its "
            "interval. Below: the CORP diagram, an isotonic regression of correctness on "
            "confidence that needs no binning, with its bootstrap band (drawn to 0.001"
            + (f"; {corp_boot} refits, as n_boot x distinct confidences is held to "
               f"{MAX_CELLS:.0e}" if corp_boot < n_boot else "") + ").</p>")
    figs = {"reliability": report}
    if corp_boot < 1:
        return _Section(text + _figure_html(report) + _skipped(
            f"the CORP band needs at most {MAX_CELLS:.0e} distinct confidences; got more."), figs)
    corp = CorpDisplay.from_predictions({p.name or "model": p}, n_boot=corp_boot)
    corp = replace(corp, diagrams={k: corp_steps(d) for k, d in corp.diagrams.items()})
    figs["corp"] = corp.plot(title="CORP reliability diagram (isotonic fit, 95% band)")
    return _Section(text + "".join(_figure_html(f) for f in figs.values()), figs)


def _pairs_with_images(p: Predictions, pairs: pd.DataFrame) -> pd.DataFrame:
    out = pairs[["true_name", "pred_name", "count", "rate"]].rename(
        columns={"true_name": "true class", "pred_name": "predicted as",
                 "rate": "share of true class"})
    if p.images is not None:
        y_pred = p.y_pred
        out["samples"] = [
            _thumbnails(p.images, np.flatnonzero((p.y_true == t) & (y_pred == q))[:IMAGES_PER_PAIR])
            for t, q in zip(pairs["true"], pairs["pred"])]
    return out


def _confusion(p: Predictions, shared: dict) -> _Section:
    from labviz.compute.confusion import top_confused_pairs
    from labviz.figures.confusion import ConfusionDisplay

    pairs = top_confused_pairs(p.y_true, p.y_pred, k=TOP_PAIRS, n_classes=p.n_classes,
                               class_names=p.class_names)
    shared["pairs"] = pairs
    n_wrong = int((~p.correct).sum())
    fig = ConfusionDisplay.from_predictions(p, order=True).plot(
        title="Confusion matrix: share of each true class")
    text = (f'<p class="legend">{n_wrong:,} of {p.n_samples:,} samples misclassified '
            f"({1 - p.accuracy:.2%}). The matrix orders the classes so that those confused with "
            "each other sit together.</p>")
    if pairs.empty:
        table = _skipped("no sample is misclassified, so no pair is confused.")
    else:
        legend = (f"The {len(pairs)} most frequent (true, predicted) confusions: their count and "
                  "share of the true class" + (f", and up to {IMAGES_PER_PAIR} of their samples."
                                               if p.images is not None else "."))
        table = _table(_pairs_with_images(p, pairs), legend,
                       formats={"share of true class": ".1%"},
                       raw=("samples",))
    return _Section(text + table + _figure_html(fig), {"confusion": fig})


def _per_class(p: Predictions) -> _Section:
    from labviz.compute.confusion import per_class_table

    table = per_class_table(p.y_true, p.y_pred, n_classes=p.n_classes, class_names=p.class_names)
    table = table.sort_values(["f1", "class"], kind="stable").reset_index(drop=True)
    legend = ("Precision, recall and F1 of every class with its support (true samples), lowest "
              "F1 first.")
    return _Section(_table(table, legend, scroll=len(table) > 30))


def _label_errors(p: Predictions) -> _Section:
    from labviz.compute.label_quality import find_label_errors, find_label_errors_batched

    batched = p.n_samples * p.n_classes >= BATCHED_LABEL_ERRORS
    try:
        errors = (find_label_errors_batched(p.y_given, p.prob_chunks, ids=p.ids) if batched
                  else find_label_errors(p.y_given, p.probs, ids=p.ids))
    except ValueError as exc:
        return _Section(_skipped(str(exc)))
    names = np.asarray(p.class_names, dtype=object)
    top = errors.head(TOP_LABEL_ERRORS)
    shown = top[["rank", "id"]].assign(
        **{"given label": names[top["given"].to_numpy()],
           "predicted": names[top["predicted"].to_numpy()],
           "p(given label)": top["self_confidence"].to_numpy()})
    if p.images is not None:
        shown["image"] = [_thumbnails(p.images, np.array([i])) for i in top["index"]]
    text = (f'<p class="legend">cleanlab\'s confident learning flags {len(errors):,} of '
            f"{p.n_samples:,} given labels ({len(errors) / max(p.n_samples, 1):.2%}) as likely "
            "wrong" + (" (its mini-batch form, low self-confidence against per-class "
                       "thresholds, a row chunk at a time)" if batched else "") +
            ". These are candidates to look at, not confirmed errors; with probabilities of "
            "a model trained on these very samples, the errors it memorised go unflagged.</p>")
    if errors.empty:
        return _Section(text)
    legend = (f"The {len(shown)} most likely label errors, lowest probability of the given label "
              "first.")
    return _Section(text + _table(shown, legend, formats={"id": "d", "p(given label)": ".3g"},
                                  raw=("image",), scroll=len(shown) > 30))


def _collapse(p: Predictions) -> _Section:
    import pandas as pd

    from labviz.compute.collapse import collapse_metrics

    if p.features is None:
        return _Section(_skipped("the predictions hold no `features` (penultimate-layer "
                                 "activations); add a `features` array to the file."))
    m = collapse_metrics(p)
    table = pd.DataFrame({"metric": ["intra-class variation", "class separation R²", "NC1"],
                          "value": [m.intra, m.inter, m.nc1],
                          "reads": ["lower: tighter classes", "higher: better separated",
                                    "lower: more collapsed"]})
    return _Section(_table(table, "Feature-geometry summary on the true labels (Kornblith et al. "
                                  "2021; Papyan et al. 2020).", raw=("metric", "reads")))


def most_confused_triple(pairs: pd.DataFrame, n_classes: int) -> tuple[int, int, int]:
    """Three classes: the most confused pair and the class most confused with either of them.

    Parameters
    ----------
    pairs : pandas.DataFrame
        From :func:`labviz.compute.confusion.top_confused_pairs`, most confused first.
    n_classes : int
        At least 3.

    Returns
    -------
    tuple of 3 int
        Where fewer classes are confused, the lowest unused class indices complete it.

    Examples
    --------
    >>> import pandas as pd
    >>> most_confused_triple(pd.DataFrame({"true": [3, 5, 1], "pred": [4, 2, 3]}), 6)
    (3, 4, 1)
    """
    n_classes = v.check_int(n_classes, "n_classes", minimum=3)
    chosen: list[int] = []
    if len(pairs):
        chosen = [int(pairs["true"].iloc[0]), int(pairs["pred"].iloc[0])]
        for t, q in zip(pairs["true"].iloc[1:], pairs["pred"].iloc[1:]):
            if (t in chosen) != (q in chosen):  # pairs ranked by count: the first touching one
                chosen.append(int(q if t in chosen else t))
                break
    chosen += [k for k in range(n_classes) if k not in chosen][:3 - len(chosen)]
    return chosen[0], chosen[1], chosen[2]


def _template_plane(p: Predictions, shared: dict) -> _Section:
    from labviz.figures.collapse import TemplatePlaneDisplay

    missing = [name for name in ("features", "weights") if getattr(p, name) is None]
    if missing:
        return _Section(_skipped(f"the predictions hold no {' or '.join(map(repr, missing))}; "
                                 "the plane runs through three rows of the last layer's `weights` "
                                 "and projects the `features` onto it."))
    if p.n_classes < 3:
        return _Section(_skipped(f"a template plane needs 3 classes; got {p.n_classes}."))
    from labviz.compute.confusion import top_confused_pairs

    # Symmetric pairs: a triple of classes confused in either direction.
    pairs = top_confused_pairs(p.y_true, p.y_pred, k=200, n_classes=p.n_classes, symmetric=True)
    triple = most_confused_triple(pairs, p.n_classes)
    names = [p.class_names[k] for k in triple]
    fig = TemplatePlaneDisplay.from_predictions(p, classes=triple,
                                                titles=[", ".join(names)]).plot()
    a, b, c = triple
    linked = bool(((pairs["true"].isin([a, b]) & (pairs["pred"] == c))
                   | (pairs["pred"].isin([a, b]) & (pairs["true"] == c))).any())
    why = ("the most confused pair and the class most confused with either" if linked
           else "the most confused pair, and the first class not in it: no other class is "
           "confused with them" if len(pairs) else "the first three: no class is confused")
    text = (f'<p class="legend">The samples of classes {", ".join(map(_esc, names))} ({why}), '
            "projected onto the plane "
            "through their three class templates (Müller et al. 2019). Tight clusters near their "
            "own template mean collapsed features.</p>")
    return _Section(text + _figure_html(fig), {"template_plane": fig})


# ----- the page ------------------------------------------------------------------------------------
def _page(p: Predictions, sections: Mapping[str, _Section]) -> str:
    from plotly.offline import get_plotlyjs

    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    nav = "".join(f'<a href="#{key}">{_esc(title)}</a>' for key, title in SECTIONS.items())
    body = "".join(f'<section id="{key}"><h2>{_esc(SECTIONS[key])}</h2>{s.body}</section>'
                   for key, s in sections.items())
    title = f"labviz report: {p.name}" if p.name else "labviz report"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{_esc(title)}</title><style>{_CSS}</style>"
            f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>'
            f"<header><h1>{_esc(title)}</h1><p class=\"legend\">Written by labviz on "
            f"{_esc(when)}. Self-contained: opens offline.</p><nav>{nav}</nav></header>"
            f"{body}</body></html>\n")


def _export(figures: Mapping[str, go.Figure], folder: Path) -> list[Path]:
    from labviz.figures.export import ExportSession

    folder.mkdir(parents=True, exist_ok=True)
    with ExportSession() as session:
        return [session.export(fig, folder / f"{stem}.{fmt}", overwrite=True)
                for stem, fig in figures.items() for fmt in FIGURE_FORMATS]


def write_report(
    predictions: Predictions,
    out: str | os.PathLike[str],
    *,
    figures_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    n_boot: int = 1000,
) -> Path:
    """Write one self-contained HTML report of ``predictions`` to ``out``.

    See the module's docstring for its sections. The page embeds plotly.js (about 4.8 MB) once
    and fetches nothing, so it opens offline. It is written atomically (a reader never sees half
    of it); an existing file is replaced.

    Parameters
    ----------
    predictions : Predictions
        E.g. from :meth:`labviz.Predictions.from_path`, which reads ``.npz``, a folder of ``.npy``
        files, Parquet or safetensors holding ``y_true`` of shape (n_samples,), ``logits`` or
        ``probs`` of shape (n_samples, n_classes), and optionally ``features`` (n_samples,
        n_features), ``weights`` (n_classes, n_features), ``bias`` (n_classes,), ``y_given``,
        ``ids`` (n_samples,), ``images`` (n_samples, height, width), ``class_names`` and
        ``name`` (see :mod:`labviz.core.loaders`). Without ``features`` the collapse metrics, and
        without ``features`` and ``weights`` the template plane, say so instead.
    out : str or path-like
        The HTML file; its folder is created if missing.
    figures_dir : str or path-like, optional
        Also write each figure there as PDF and PNG (:mod:`labviz.figures.export`: kaleido and
        Chromium), replacing files of the same names.
    progress : bool, default True
        A progress bar on stderr, one step per section.
    n_boot : int, default 1000
        Bootstrap replicas of the calibration intervals and of the CORP band.

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    from tqdm.auto import tqdm

    p = as_predictions(predictions)
    progress = v.check_bool(progress, "progress")
    n_boot = v.check_int(n_boot, "n_boot", minimum=1)
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"`out` must be an HTML file's path; got the folder {str(out)!r}.")
    shared: dict = {}
    steps: dict[str, Callable[[], _Section]] = {
        "summary": lambda: _summary(p),
        "calibration": lambda: _calibration(p, n_boot, shared),
        "diagrams": lambda: _diagrams(p, n_boot, shared),
        "confusion": lambda: _confusion(p, shared),
        "per-class": lambda: _per_class(p),
        "label-errors": lambda: _label_errors(p),
        "collapse": lambda: _collapse(p),
        "template-plane": lambda: _template_plane(p, shared),
    }
    sections: dict[str, _Section] = {}
    total = len(steps) + 1 + (figures_dir is not None)
    with tqdm(total=total, desc="labviz report", unit="section", file=sys.stderr,
              disable=not progress, leave=True) as bar:
        for key, step in steps.items():
            bar.set_postfix_str(SECTIONS[key])
            sections[key] = step()
            bar.update()
        bar.set_postfix_str("writing the HTML")
        atomic_write_bytes(out, _page(p, sections).encode("utf-8"), mode=None)
        bar.update()
        if figures_dir is not None:
            bar.set_postfix_str("exporting figures (PDF, PNG)")
            _export({k: f for s in sections.values() for k, f in s.figures.items()},
                    Path(figures_dir))
            bar.update()
    return out
