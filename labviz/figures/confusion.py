"""Confusion-matrix heatmap, per-class metric bars, and ``ConfusionDisplay`` with cell drill-down."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from numpy.typing import ArrayLike, NDArray

from labviz.core import _validation as v
from labviz.core._inputs import arrays_given, as_predictions
from labviz.compute.confusion import (
    _NORMALIZE_OPTIONS,
    Normalize,
    _check_matrix,
    _check_pair,
    _counts,
    _per_class_from_counts,
    _safe_divide,
    cell_samples,
    check_block,
    class_order,
)
from labviz.figures.style import (
    MAX_FIGURE_WIDTH,
    MODEBAR_PX,
    SEQUENTIAL,
    TITLE_PX,
    apply_style,
    clear_of_modebar,
    series_color,
)
from labviz.figures.thumbnails import image_grid_figure
from labviz.core.predictions import Predictions

__all__ = ["ConfusionDisplay", "confusion_figure", "per_class_figure"]

#: Up to this many classes the cells carry their value as text.
MAX_ANNOTATED_CLASSES = 20
#: Up to this many classes each cell carries its count and shares for the hover (``customdata``);
#: beyond, the heat map holds ``z`` alone, rounded to 3 significant digits, and the hover is
#: built from x, y and z: at 1,000 classes that is 2 MB of figure JSON rather than 40.
MAX_DETAILED_CLASSES = 100

_COMPACT_HOVER = {
    None: "count: %{z:,d}",
    "true": "%{z:.2%} of true class",
    "pred": "%{z:.2%} of predicted class",
    "all": "%{z:.3%} of all samples",
}

_COLORBAR_TITLES = {
    None: "count",
    "true": "fraction of<br>true class",
    "pred": "fraction of<br>predicted class",
    "all": "fraction of<br>all samples",
}


def _unique_labels(names: tuple[str, ...]) -> list[str]:
    """Category axes merge equal labels; keep repeated class names apart by their index."""
    seen = Counter(names)  # names.count per name would be quadratic: 1,000 classes, 1e6 steps
    return [n if seen[n] == 1 else f"{n} ({k})" for k, n in enumerate(names)]


def _check_order(order: ArrayLike | None, n_classes: int) -> NDArray[np.int64]:
    if order is None:
        return np.arange(n_classes, dtype=np.int64)
    arr = v.as_array(order, "order")
    if arr.dtype == bool or arr.dtype.kind not in "iu":
        raise TypeError(f"`order` must hold integer class indices; got {v.describe(arr)}.")
    if arr.ndim != 1 or not np.array_equal(np.sort(arr), np.arange(n_classes)):
        raise ValueError(f"`order` must be a permutation of 0..{n_classes - 1}; got {arr.tolist()!r}.")
    return arr.astype(np.int64)


def _tick_style(n_classes: int) -> tuple[int, int]:
    """(font size, label stride): every label up to 50 classes, every other one up to 100, about
    50 labels beyond."""
    if n_classes <= 20:
        return 12, 1
    if n_classes <= 50:
        return 9, 1
    return 7, 2 if n_classes <= MAX_DETAILED_CLASSES else -(-n_classes // 50)


def _share(block: NDArray[np.int64], normalize: Normalize, rows: NDArray[np.int64],
           cols: NDArray[np.int64], total: int) -> NDArray:
    """``block`` (cells of a confusion matrix) normalised by the whole matrix's row sums
    ``rows``, column sums ``cols`` or ``total``, as :func:`~labviz.compute.confusion.confusion_matrix`
    would normalise them; the counts as int64 for ``normalize=None``."""
    if normalize is None:
        return block.astype(np.int64)
    if normalize == "true":
        return _safe_divide(block, rows[:, None])
    if normalize == "pred":
        return _safe_divide(block, cols[None, :])
    return _safe_divide(block, np.asarray(total))


def _compact(z: NDArray) -> NDArray[np.object_]:
    """``z`` as JSON writes it shortest: Python ints and floats (3 significant digits) in an
    object array, zeros as ``0``. Most cells of a large confusion matrix are empty, and
    plotly writes a numeric array as base64 of its bytes (4 bytes a cell even as float32)."""
    out = np.zeros(z.shape, dtype=object)
    nonzero = z != 0
    values = z[nonzero]
    if values.dtype.kind == "f":
        # dividing by an exact power of ten gives the float nearest the 3-digit decimal
        scale = 10.0 ** (2 - np.floor(np.log10(values)))
        out[nonzero] = (np.round(values * scale) / scale).tolist()
    else:
        out[nonzero] = values.tolist()
    return out


def confusion_figure(
    cm_counts: ArrayLike,
    *,
    class_names: Sequence[str] | None = None,
    normalize: Normalize = "true",
    order: ArrayLike | None = None,
    classes: ArrayLike | None = None,
    title: str = "",
) -> go.Figure:
    """A confusion-matrix heatmap: true class down the rows (class 0 at the top), predicted across.

    Up to 100 classes, hovering a cell shows the two class names, the count and the cell's share
    of its true class and of its predicted class; up to 20 each cell is also labelled with its
    value (blank where the count is 0). Beyond 100 classes the heat map carries no per-cell
    text or custom data: ``z`` holds the values rounded to 3 significant digits and the hover
    shows the class names and ``z``, so 1,000 classes make about 2 MB of figure JSON; zoom into
    a block with ``classes``. Beyond 50 classes only some ticks are labelled.

    Parameters
    ----------
    cm_counts : array-like of shape (n_classes, n_classes)
        Counts from :func:`labviz.compute.confusion.confusion_matrix` (``normalize=None``).
    class_names : sequence of str of length n_classes, optional
    normalize : {"true", "pred", "all", None}
        What the colour shows: the fraction of the true class (rows sum to 1), of the predicted
        class, of all samples, or the raw count.
    order : array-like of shape (n_classes,), optional
        A permutation of the classes for both axes, e.g. :func:`labviz.compute.confusion.class_order`.
    classes : array-like of shape (n_block,), optional
        Draw only these classes (a block, e.g. ``order[100:140]`` or
        :func:`labviz.compute.confusion.class_neighbourhood`), in the sequence of ``order``. The
        cells keep their values in the whole matrix: a share is still of the class's samples.
    title : str

    Returns
    -------
    plotly.graph_objects.Figure
        One ``go.Heatmap``; up to 100 classes its ``customdata[i, j]`` is (count, % of true
        class, % of predicted class) of the displayed cell (i, j).
    """
    v.check_option(normalize, "normalize", _NORMALIZE_OPTIONS)
    cm = _check_matrix(cm_counts, "cm_counts", counts=True).astype(np.int64)
    c = cm.shape[0]
    names = v.check_class_names(class_names, c)
    idx = _check_order(order, c)
    if classes is not None:
        idx = idx[np.isin(idx, check_block(classes, c))]
    rows, cols, total = cm.sum(axis=1)[idx], cm.sum(axis=0)[idx], int(cm.sum())
    cm = cm[np.ix_(idx, idx)]
    unique = _unique_labels(names)
    labels = [unique[k] for k in idx]
    n = len(idx)

    z = _share(cm, normalize, rows, cols, total)
    zmax = 1 if normalize is not None else max(int(cm.max()), 1)
    colorbar = dict(title=dict(text=_COLORBAR_TITLES[normalize]), thickness=14)
    if n > MAX_DETAILED_CLASSES:
        heatmap = go.Heatmap(
            z=z.astype(np.float32), x=labels, y=labels, colorscale=SEQUENTIAL, zmin=0, zmax=zmax,
            colorbar=colorbar, xgap=0, ygap=0,
            hovertemplate=("true: %{y}<br>predicted: %{x}<br>" + _COMPACT_HOVER[normalize]
                           + "<extra></extra>"))
    else:
        custom = np.stack([cm.astype(np.float64), 100 * _share(cm, "true", rows, cols, total),
                           100 * _share(cm, "pred", rows, cols, total)], axis=-1)
        heatmap = go.Heatmap(
            z=z, x=labels, y=labels, customdata=custom,
            colorscale=SEQUENTIAL, zmin=0, zmax=zmax, colorbar=colorbar,
            hovertemplate=(
                "true: %{y}<br>predicted: %{x}<br>count: %{customdata[0]:,d}"
                "<br>%{customdata[1]:.1f}% of true class<br>%{customdata[2]:.1f}% of predicted class"
                "<extra></extra>"
            ),
            xgap=1 if n <= 50 else 0, ygap=1 if n <= 50 else 0,
        )
    if n <= MAX_ANNOTATED_CLASSES:
        fmt = (lambda x: f"{x:,d}") if normalize is None else (lambda x: f"{x:.2f}")
        heatmap.text = [[fmt(z[i, j]) if cm[i, j] else "" for j in range(n)] for i in range(n)]
        heatmap.texttemplate = "%{text}"
        heatmap.textfont = dict(size=11 if n <= 10 else 9)
    fig = go.Figure(heatmap)

    font, stride = _tick_style(n)
    ticks = dict(type="category", tickmode="array", tickvals=labels[::stride],
                 ticktext=labels[::stride], tickfont=dict(size=font), showgrid=False,
                 # automargin lays a large heat map out twice or more: 2.7 s rather than 0.9 s
                 # to paint 1,000 classes in Chromium; its margins are set below instead
                 automargin=n <= MAX_DETAILED_CLASSES)
    # Class names rarely fit side by side under the columns: slant them unless they are short.
    slant = -90 if n > 10 else (-45 if max(len(str(x)) for x in labels) > 3 else 0)
    fig.update_xaxes(title_text="predicted class", tickangle=slant,
                     constrain="domain", **ticks)
    fig.update_yaxes(title_text="true class", autorange="reversed", scaleanchor="x",
                     scaleratio=1, constrain="domain", **ticks)
    side = int(np.clip(28 * n + 160, 420, 900))
    fig.update_layout(title=title, width=side + 120,
                      height=side + (MODEBAR_PX + TITLE_PX - 10 if title else 0))
    fig = apply_style(fig)
    if title:
        clear_of_modebar(fig)
    if n > MAX_DETAILED_CLASSES:
        # room for the longest tick label (about 0.6 em a character) and the axis title
        room = int(np.clip(0.6 * font * max(len(x) for x in labels[::stride]) + 40, 80, 260))
        fig.update_layout(margin=dict(l=room, b=room))
        # set last: a figure deep-copies its traces, 10^6 Python numbers at 1,000 classes
        fig.data[0].z = _compact(z)
    return fig


def per_class_figure(
    table: pd.DataFrame,
    *,
    metrics: Sequence[str] = ("precision", "recall", "f1"),
    title: str = "",
) -> go.Figure:
    """Grouped bars of per-class metrics, one colour per metric, classes along the x axis.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`labviz.compute.confusion.per_class_table` (columns ``name``, ``support`` and the metrics).
    metrics : sequence of str
        Columns of ``table`` to draw, each in [0, 1].
    title : str

    Returns
    -------
    plotly.graph_objects.Figure
        One ``go.Bar`` per metric.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"`table` must be a pandas DataFrame; got {type(table).__name__}.")
    if isinstance(metrics, str):
        raise TypeError(f"`metrics` must be a sequence of column names; got the string {metrics!r}.")
    missing = [m for m in ("name", "support", *metrics) if m not in table.columns]
    if missing or not metrics:
        raise ValueError(f"`table` must have columns `name`, `support` and the metrics "
                         f"{list(metrics)}; missing {missing}.")
    labels = _unique_labels(tuple(str(n) for n in table["name"]))
    support = table["support"].to_numpy()
    fig = go.Figure([
        go.Bar(x=labels, y=table[m].to_numpy(dtype=np.float64), name=m, marker_color=series_color(i),
               customdata=support,
               hovertemplate=f"%{{x}}<br>{m}: %{{y:.3f}}<br>support: %{{customdata:,d}}<extra></extra>")
        for i, m in enumerate(metrics)
    ])
    font, stride = _tick_style(len(labels))
    fig.update_xaxes(type="category", tickmode="array", tickvals=labels[::stride],
                     ticktext=labels[::stride], tickfont=dict(size=font), title_text="class")
    fig.update_yaxes(range=[0, 1.02], title_text="score")
    fig.update_layout(title=title, barmode="group", bargap=0.2,
                      width=int(np.clip(24 * len(labels) * len(metrics) / 2 + 200, 500, MAX_FIGURE_WIDTH)),
                      height=420)
    return apply_style(fig)


@dataclass(frozen=True, eq=False)
class ConfusionDisplay:
    """A confusion matrix ready to draw, with the labels behind it for drill-down into cells.

    Build it with :meth:`from_predictions`; draw with :meth:`plot`.

    Attributes
    ----------
    counts : ndarray of shape (n_classes, n_classes)
        int64 counts, rows = true class, columns = predicted class.
    class_names : tuple of str
    normalize : {"true", "pred", "all", None}
    order : ndarray of shape (n_classes,)
        The display order of the classes (identity unless reordered).
    y_true, y_pred : ndarray of shape (n_samples,)
    ids : ndarray of shape (n_samples,)
    images : ndarray of shape (n_samples, height, width) or None
    """

    counts: NDArray[np.int64]
    class_names: tuple[str, ...]
    normalize: Normalize
    order: NDArray[np.int64]
    y_true: NDArray[np.int64]
    y_pred: NDArray[np.int64]
    ids: NDArray[np.int64]
    images: NDArray | None = None

    @property
    def n_classes(self) -> int:
        """Number of classes (rows of ``counts``)."""
        return self.counts.shape[0]

    @classmethod
    def from_predictions(
        cls,
        predictions: Predictions | None = None,
        *,
        y_true: ArrayLike | None = None,
        y_pred: ArrayLike | None = None,
        n_classes: int | None = None,
        class_names: Sequence[str] | None = None,
        normalize: Normalize = "true",
        order: bool | ArrayLike = False,
    ) -> ConfusionDisplay:
        """Count the confusion matrix of a ``Predictions`` or of plain label arrays.

        Parameters
        ----------
        predictions : labviz.Predictions, optional
            Supplies labels, class names, ids and images. Give either this or ``y_true`` and
            ``y_pred``.
        y_true, y_pred : array-like of shape (n_samples,), optional
        n_classes : int, optional
            Only with plain arrays; defaults to the largest label + 1.
        class_names : sequence of str of length n_classes, optional
            Overrides the names carried by ``predictions``.
        normalize : {"true", "pred", "all", None}
        order : bool or array-like of shape (n_classes,)
            True reorders the classes with :func:`labviz.compute.confusion.class_order`; an array gives
            the order explicitly.
        """
        v.check_option(normalize, "normalize", _NORMALIZE_OPTIONS)
        given = arrays_given(predictions, "predictions",
                             {"y_true": y_true, "y_pred": y_pred, "n_classes": n_classes},
                             required=("y_true", "y_pred"))
        names: Sequence[str] | None
        if given is None:
            p = as_predictions(predictions)
            yt, yp, c = p.y_true, p.y_pred, p.n_classes
            names = p.class_names if class_names is None else class_names
            ids, images = p.ids, p.images
        else:
            labels, predicted = given
            yt, yp, c = _check_pair(labels, predicted, n_classes)
            names, ids, images = class_names, np.arange(len(yt), dtype=np.int64), None
        names = v.check_class_names(names, c)
        counts = _counts(yt, yp, c)
        if isinstance(order, (bool, np.bool_)):
            perm = class_order(counts) if order else np.arange(c, dtype=np.int64)
        else:
            perm = _check_order(order, c)
        return cls(counts=counts, class_names=names, normalize=normalize, order=perm,
                   y_true=yt, y_pred=yp, ids=ids, images=images)

    def plot(self, *, title: str = "", classes: ArrayLike | None = None) -> go.Figure:
        """The heatmap (see :func:`confusion_figure`), of the block ``classes`` if given (in
        ``order``'s sequence)."""
        return confusion_figure(self.counts, class_names=self.class_names,
                                normalize=self.normalize, order=self.order, classes=classes,
                                title=title)

    def plot_per_class(self, *, title: str = "") -> go.Figure:
        """Precision, recall and F1 bars per class (see :func:`per_class_figure`)."""
        return per_class_figure(_per_class_from_counts(self.counts, self.class_names), title=title)

    def _check_cell(self, true_class: int, pred_class: int) -> tuple[int, int]:
        t = v.check_int(true_class, "true_class", minimum=0)
        p = v.check_int(pred_class, "pred_class", minimum=0)
        for name, k in (("true_class", t), ("pred_class", p)):
            if k >= self.n_classes:
                raise ValueError(f"`{name}` must be in [0, {self.n_classes - 1}]; got {k}.")
        return t, p

    def cell_ids(self, true_class: int, pred_class: int) -> NDArray[np.int64]:
        """Ids of the samples of true class ``true_class`` predicted as ``pred_class``."""
        t, p = self._check_cell(true_class, pred_class)
        return cell_samples(self.y_true, self.y_pred, t, p, ids=self.ids)

    def cell_thumbnails(self, true_class: int, pred_class: int, *, max_images: int = 32) -> go.Figure:
        """A gallery of the images in one cell (the first ``max_images``, titled by sample id).

        An empty cell gives a figure that says so. Raises ``ValueError`` when there are no images.
        """
        t, p = self._check_cell(true_class, pred_class)
        max_images = v.check_int(max_images, "max_images", minimum=1)
        if self.images is None:
            raise ValueError("`cell_thumbnails` needs images, but these predictions carry none; "
                             "build the Predictions with `images=...`.")
        pos = np.flatnonzero((self.y_true == t) & (self.y_pred == p))
        head = (f"true {self.class_names[t]} → predicted {self.class_names[p]}: "
                f"{len(pos):,} sample{'s' if len(pos) != 1 else ''}")
        if len(pos) == 0:
            fig = go.Figure()
            fig.add_annotation(text="no samples in this cell", showarrow=False,
                               xref="paper", yref="paper", x=0.5, y=0.5)
            fig.update_xaxes(visible=False)
            fig.update_yaxes(visible=False)
            fig.update_layout(title=head, width=400, height=200)
            return apply_style(fig)
        shown = pos[:max_images]
        if len(pos) > len(shown):
            head += f" (first {len(shown):,} shown)"
        return image_grid_figure(self.images[shown], titles=[f"id {i}" for i in self.ids[shown]],
                                 title=head)
