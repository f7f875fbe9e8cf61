"""Scatter plots of 2-D feature projections, and their Display.

Figures take the frames of :func:`labviz.compute.projection.projection_frame` (one row per sample). Every
point carries its sample id as ``customdata[0]``, so a widget can map hovers and clicks to samples.

Hover thumbnails: plotly hover labels are text only and cannot show images. A widget that wants
the image of the hovered point listens to the figure's hover events, reads the id from
``points[0].customdata[0]`` and looks it up in :func:`hover_thumbnail_uris`, a lazy mapping from
sample id to a PNG data URI (usable as ``<img src=...>``, e.g. in an ``ipywidgets.HTML``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from numpy.typing import ArrayLike
from plotly.subplots import make_subplots

from labviz.core import _validation as v
from labviz.core._inputs import arrays_given, as_predictions
from labviz.figures.style import SEQUENTIAL, apply_style, class_color, series_color
from labviz.figures.thumbnails import thumbnail_uri
from labviz.core.predictions import Predictions
from labviz.compute.projection import FRAME_COLUMNS, Method, projection_frame

Color = Literal["class", "prediction", "given", "correct", "confidence", "flipped"]
COLORS: tuple[str, ...] = ("class", "prediction", "given", "correct", "confidence", "flipped")
#: Above this many points, figures use WebGL (``go.Scattergl``).
WEBGL_THRESHOLD = 2000

_CLASS_COLUMN = {"class": "label", "prediction": "prediction", "given": "given"}
# (value, trace name, colour) for boolean colourings; the first entry is drawn first (underneath)
BOOLEAN_CLASSES = {
    "correct": ((True, "correct", series_color(2)), (False, "wrong", series_color(3))),
    "flipped": ((False, "clean label", "#BBBBBB"), (True, "flipped label", series_color(3))),
}
_HOVER = (
    "id %{customdata[0]}<br>label: %{customdata[1]}<br>given: %{customdata[4]}"
    "<br>prediction: %{customdata[2]}<br>confidence: %{customdata[3]:.3f}<extra>%{fullData.name}</extra>"
)
_AXIS_NAMES = {"pca": "PC", "umap": "UMAP ", "tsne": "t-SNE "}
_METHOD_TITLES = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}


# ----- helpers ----------------------------------------------------------------------------------
def _check_frame(frame: object, name: str = "frame") -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"`{name}` must be a pandas DataFrame from projection_frame; "
                        f"got {type(frame).__name__}.")
    missing = [c for c in FRAME_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"`{name}` must have the columns of projection_frame; missing {missing}.")
    if len(frame) == 0:
        raise ValueError(f"`{name}` must not be empty; got 0 rows.")
    return frame


def _class_names(frame: pd.DataFrame, class_names: Sequence[str] | None) -> dict[int, str]:
    """Class index -> name: from ``class_names`` if given, else from the frame."""
    classes = np.unique(frame[["label", "prediction", "given"]].to_numpy())
    if class_names is not None:
        if isinstance(class_names, str):
            raise TypeError(f"`class_names` must be a sequence of strings; got the string "
                            f"{class_names!r}.")
        if len(class_names) <= classes.max():
            raise ValueError(f"`class_names` must have at least {classes.max() + 1} entries "
                             f"(one per class); got {len(class_names)}.")
        return {int(k): str(class_names[k]) for k in classes}
    known = frame.attrs.get("class_names")
    if known is not None and len(known) > classes.max():
        return {int(k): str(known[k]) for k in classes}
    names = dict(zip(frame["label"], frame["label_name"]))
    names.update(zip(frame["prediction"], frame["prediction_name"]))
    return {int(k): str(names.get(k, k)) for k in classes}


def point_customdata(frame: pd.DataFrame, names: dict[int, str]) -> np.ndarray:
    """Per-point hover data of a projection frame, one row per sample.

    Columns: id, label name, prediction name, confidence, given name. The id comes first, always,
    so that a widget can map a click or hover event back to its sample.
    """
    lookup = np.array([names.get(k, str(k)) for k in range(max(names) + 1)], dtype=object)
    return np.column_stack([
        frame["id"].to_numpy(dtype=np.int64).astype(object),
        frame["label_name"].to_numpy(dtype=object),
        frame["prediction_name"].to_numpy(dtype=object),
        frame["confidence"].to_numpy(dtype=np.float64).astype(object),
        lookup[frame["given"].to_numpy(dtype=np.int64)],
    ])


def _marker_size(n: int) -> float:
    return 7.0 if n <= 500 else 5.0 if n <= 5000 else 3.0


def _traces(
    frame: pd.DataFrame, color: str | np.ndarray, names: dict[int, str], scatter: type, size: float,
    color_title: str, color_range: tuple[float, float], colorscale: str = SEQUENTIAL,
) -> list[go.Scatter | go.Scattergl]:
    x, y = frame["x"].to_numpy(), frame["y"].to_numpy()
    custom = point_customdata(frame, names)

    def trace(mask: np.ndarray, name: str, marker: dict, group: str,
              hover: str = _HOVER) -> go.Scatter | go.Scattergl:
        return scatter(
            x=x[mask], y=y[mask], mode="markers", name=name, legendgroup=group,
            marker=dict(size=size, opacity=0.8, **marker),
            customdata=custom[mask], hovertemplate=hover,
        )

    everything = np.ones(len(frame), dtype=bool)
    if isinstance(color, np.ndarray):  # a score per sample, on its own range
        hover = _HOVER.replace("<extra>", f"<br>{color_title}: %{{marker.color:.4g}}<extra>")
        return [trace(everything, color_title, dict(
            color=color, colorscale=colorscale, cmin=color_range[0], cmax=color_range[1],
            colorbar=dict(title=dict(text=color_title), thickness=14),
        ), color_title, hover)]

    if color in _CLASS_COLUMN:
        col = frame[_CLASS_COLUMN[color]].to_numpy()
        return [
            trace(col == k, names[int(k)], dict(color=class_color(k)), f"class {k}")
            for k in np.unique(col)
        ]
    if color in BOOLEAN_CLASSES:
        col = frame[color].to_numpy(dtype=bool)
        return [
            trace(col == value, name, dict(color=c), name)
            for value, name, c in BOOLEAN_CLASSES[color] if (col == value).any()
        ]
    conf = frame["confidence"].to_numpy(dtype=np.float64)
    return [trace(everything, "confidence", dict(
        color=conf, colorscale=SEQUENTIAL, cmin=0.0, cmax=1.0,
        colorbar=dict(title=dict(text="confidence"), thickness=14),
    ), "confidence")]


def _highlight_trace(
    frame: pd.DataFrame, highlight_ids: ArrayLike | None, names: dict[int, str], scatter: type,
    size: float,
) -> go.Scatter | go.Scattergl:
    if highlight_ids is None:
        mask = np.zeros(len(frame), dtype=bool)
    else:
        wanted = v.check_sample_ids(v.as_array(highlight_ids, "highlight_ids").ravel(),
                                    "highlight_ids")
        mask = np.isin(frame["id"].to_numpy(), wanted)
        n_missing = len(np.setdiff1d(wanted, frame["id"].to_numpy()))
        if n_missing:
            warnings.warn(f"{n_missing:,} of the `highlight_ids` are not in the frame; "
                          "they are not drawn.", stacklevel=3)
    return scatter(
        x=frame["x"].to_numpy()[mask], y=frame["y"].to_numpy()[mask], mode="markers",
        name="highlight", showlegend=False,
        marker=dict(symbol="circle-open", size=size + 8, color="#000000", line=dict(width=2)),
        customdata=point_customdata(frame, names)[mask], hovertemplate=_HOVER,
    )


def _check_color_range(color_range: object, values: np.ndarray) -> tuple[float, float]:
    if color_range is None:  # the score's own range; a constant score gets one colour
        lo, hi = float(values.min()), float(values.max())
        return lo, hi if hi > lo else lo + 1.0
    pair = tuple(color_range) if isinstance(color_range, (tuple, list)) else ()
    if len(pair) != 2:
        raise ValueError(f"`color_range` must be a pair (low, high); got {color_range!r}.")
    lo, hi = (v.check_float(x, "color_range") for x in pair)
    if not lo < hi:
        raise ValueError(f"`color_range` must be (low, high) with low < high; got {color_range!r}.")
    return lo, hi


def _axis_titles(frame: pd.DataFrame) -> tuple[str, str]:
    prefix = _AXIS_NAMES.get(frame.attrs.get("method", ""), "dim ")
    return f"{prefix}1", f"{prefix}2"


def _padded_range(values: np.ndarray) -> list[float]:
    lo, hi = float(values.min()), float(values.max())
    pad = 0.05 * (hi - lo) if hi > lo else 1.0
    return [lo - pad, hi + pad]


# ----- figures ----------------------------------------------------------------------------------
def projection_figure(
    frame: pd.DataFrame,
    *,
    color: Color | ArrayLike = "class",
    color_title: str = "value",
    color_range: tuple[float, float] | None = None,
    class_names: Sequence[str] | None = None,
    title: str = "",
    highlight_ids: ArrayLike | None = None,
    colorscale: str = SEQUENTIAL,
) -> go.Figure:
    """Scatter plot of a 2-D projection.

    Parameters
    ----------
    frame : pandas.DataFrame
        From :func:`labviz.compute.projection.projection_frame` (one row per sample).
    color : {"class", "prediction", "given", "correct", "confidence", "flipped"}
        ``"class"`` (true label), ``"prediction"`` and ``"given"``: one trace per class, class k
        in ``class_color(k)``. ``"correct"`` and ``"flipped"``: two traces (``"correct"`` /
        ``"wrong"``, ``"clean label"`` / ``"flipped label"``). ``"confidence"``: one trace on the
        sequential colour scale, fixed to [0, 1] so figures compare.
        Or an array of shape (n_samples,): a score per row of ``frame`` (e.g. a label-quality
        score), drawn on the sequential scale over its own range and shown on hover.
    color_title : str
        Name of such a score (colour bar, trace name and hover); ignored for named colourings.
    color_range : (float, float), optional
        The score's colour-scale limits (default: its own minimum and maximum). Fix them to keep
        colours comparable across figures, e.g. (0, 1) for a score in [0, 1].
    class_names : sequence of str, optional
        Legend and hover names per class; defaults to the names in the frame.
    title : str
    highlight_ids : array-like of int, optional
        Sample ids drawn as black rings in a last trace named ``"highlight"``. The trace is
        always present (empty without ids) so a widget can update its ``x``, ``y`` and
        ``customdata`` in place. Ids not in the frame are skipped with a warning.
    colorscale : str, default :data:`~labviz.figures.style.SEQUENTIAL`
        The scale of a score array, e.g. :data:`~labviz.figures.style.DIVERGING` with a range
        symmetric about 0 for a signed score.

    Returns
    -------
    plotly.graph_objects.Figure
        ``go.Scattergl`` traces above 2000 points, ``go.Scatter`` otherwise. Every trace's
        ``customdata`` rows are ``(id, label name, prediction name, confidence, given name)``;
        the axes have equal scale.
    """
    frame = _check_frame(frame)
    score_range = (0.0, 1.0)  # drawn only for a score array
    if isinstance(color, str):
        v.check_option(color, "color", COLORS)
        legend_title = {"class": "true label", "given": "given label"}.get(color, color)
    else:
        color = v.check_finite_float(color, "color", ndim=1)
        if len(color) != len(frame):
            raise ValueError(f"`color` must hold one value per row of `frame` ({len(frame)}); "
                             f"got {len(color)}.")
        legend_title = v.check_str(color_title, "color_title")
        score_range = _check_color_range(color_range, color)
    names = _class_names(frame, class_names)
    scatter = go.Scattergl if len(frame) > WEBGL_THRESHOLD else go.Scatter
    size = _marker_size(len(frame))
    colorscale = v.check_str(colorscale, "colorscale")
    fig = go.Figure(_traces(frame, color, names, scatter, size, color_title, score_range,
                            colorscale))
    fig.add_trace(_highlight_trace(frame, highlight_ids, names, scatter, size))
    xt, yt = _axis_titles(frame)
    fig.update_xaxes(title_text=xt)
    fig.update_yaxes(title_text=yt, scaleanchor="x", scaleratio=1)
    fig.update_layout(
        title=title, hovermode="closest", width=720, height=600,
        legend=dict(title=dict(text=legend_title), itemsizing="constant"),
    )
    return apply_style(fig)


def density_figure(
    x: ArrayLike,
    y: ArrayLike,
    *,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    highlight: ArrayLike | None = None,
    bins: tuple[int, int] = (240, 200),
    title: str = "",
) -> go.Figure:
    """A projection as a density raster: the number of points per pixel, for browsers that
    cannot draw a WebGL scatter (or for print at any number of points).

    Parameters
    ----------
    x, y : array-like of shape (n_points,)
        Projected coordinates.
    x_range, y_range : (float, float)
        The axes' fixed ranges; points outside them are not counted.
    highlight : array-like of int, optional
        Positions (into ``x`` and ``y``) of highlighted points, drawn as a second raster in
        orange over the grey one; its trace, ``"highlight"``, is always present.
    bins : (int, int)
        Pixels along x and y.
    title : str

    Returns
    -------
    plotly.graph_objects.Figure
        Two ``go.Heatmap`` traces, ``"density"`` (log-scaled grey, log10 of the count) and
        ``"highlight"``; empty pixels are NaN (transparent). ``z`` sums to the points in range.

    Examples
    --------
    >>> fig = density_figure([0.1, 0.2, 0.9], [0.1, 0.1, 0.9], x_range=(0, 1), y_range=(0, 1),
    ...                      bins=(2, 2))
    >>> fig.data[0].customdata.tolist()
    [[2.0, 0.0], [0.0, 1.0]]
    """
    x = v.check_finite_float(x, "x", ndim=1)
    y = v.check_finite_float(y, "y", ndim=1)
    if len(x) != len(y):
        raise ValueError(f"`x` and `y` must have the same length; got {len(x)} and {len(y)}.")
    nx, ny = (v.check_int(b, "bins", minimum=1) for b in bins)
    edges = (np.linspace(*x_range, nx + 1), np.linspace(*y_range, ny + 1))

    def counts(rows: np.ndarray | None) -> np.ndarray:
        xs, ys = (x, y) if rows is None else (x[rows], y[rows])
        return np.histogram2d(ys, xs, bins=(edges[1], edges[0]))[0]

    rows = None if highlight is None else v.as_array(highlight, "highlight").astype(np.intp)
    centres = [(e[:-1] + e[1:]) / 2 for e in edges]
    fig = go.Figure()
    for name, z, scale in (("density", counts(None), "Greys"),
                           ("highlight", counts(rows) if rows is not None else None, "Oranges")):
        if z is None:
            z = np.zeros((ny, nx))
        with np.errstate(divide="ignore"):
            shown = np.where(z > 0, np.log10(np.maximum(z, 1)), np.nan)
        fig.add_trace(go.Heatmap(
            x=centres[0], y=centres[1], z=shown, customdata=z, name=name, colorscale=scale,
            showscale=False, zmin=0.0, zmax=max(float(np.nanmax(shown, initial=0.0)), 1.0),
            hovertemplate="%{customdata:,d} points<extra>" + name + "</extra>",
            reversescale=False))
    fig.update_xaxes(range=list(x_range))
    fig.update_yaxes(range=list(y_range), scaleanchor="x", scaleratio=1)
    fig.update_layout(title=title, width=720, height=600)
    return apply_style(fig)


def side_by_side_figure(
    frame_a: pd.DataFrame,
    frame_b: pd.DataFrame,
    *,
    titles: Sequence[str] | None = None,
    color: Color = "class",
    class_names: Sequence[str] | None = None,
    highlight_ids: ArrayLike | None = None,
    title: str = "",
) -> go.Figure:
    """Two projections next to each other on identical axis ranges (e.g. from
    :func:`labviz.compute.projection.aligned_projections`).

    Parameters
    ----------
    frame_a, frame_b : pandas.DataFrame
        From :func:`~labviz.compute.projection.projection_frame` or
        :func:`~labviz.compute.projection.aligned_projections`.
    titles : pair of str, optional
        Subplot titles; default to the frames' ``attrs["name"]`` (the Predictions' names), else
        "a" and "b".
    color, class_names, highlight_ids
        As in :func:`projection_figure`; the legend is shared (one entry per class) and the
        ``"highlight"`` trace is drawn in both panels.
    title : str

    Returns
    -------
    plotly.graph_objects.Figure
        Traces of a on ``x``/``y``, then those of b on ``x2``/``y2``; both panels have the same
        x and y ranges and equal scale.
    """
    frame_a = _check_frame(frame_a, "frame_a")
    frame_b = _check_frame(frame_b, "frame_b")
    if titles is None:
        titles = (frame_a.attrs.get("name") or "a", frame_b.attrs.get("name") or "b")
    if isinstance(titles, str) or len(titles) != 2:
        raise ValueError(f"`titles` must be a pair of strings; got {titles!r}.")
    fig = make_subplots(rows=1, cols=2, subplot_titles=[str(t) for t in titles],
                        horizontal_spacing=0.06)
    for col, frame in ((1, frame_a), (2, frame_b)):
        panel = projection_figure(frame, color=color, class_names=class_names,
                                  highlight_ids=highlight_ids)
        for tr in panel.data:
            if col == 2:
                # one legend entry per class, and one colour bar
                tr.showlegend = False
                if color == "confidence":
                    tr.marker.showscale = False
            fig.add_trace(tr, row=1, col=col)
        xt, yt = _axis_titles(frame)
        fig.update_xaxes(title_text=xt, row=1, col=col)
        fig.update_yaxes(title_text=yt, row=1, col=col)
    xr = _padded_range(np.concatenate([frame_a["x"].to_numpy(), frame_b["x"].to_numpy()]))
    yr = _padded_range(np.concatenate([frame_a["y"].to_numpy(), frame_b["y"].to_numpy()]))
    fig.update_xaxes(range=xr)
    fig.update_yaxes(range=yr)
    fig.update_layout(yaxis=dict(scaleanchor="x", scaleratio=1),
                      yaxis2=dict(scaleanchor="x2", scaleratio=1))
    fig.update_layout(title=title, hovermode="closest", width=1200, height=600,
                      legend=dict(itemsizing="constant"))
    return apply_style(fig)


# ----- hover thumbnails -------------------------------------------------------------------------
class ThumbnailURIs(Mapping[int, str]):
    """Lazy mapping from sample id to a PNG data URI of that sample's image.

    Each URI is encoded on first access and kept, so building the mapping is free and a widget
    pays only for the points that are actually hovered.
    """

    def __init__(self, images: np.ndarray, ids: np.ndarray, *, size: int = 56) -> None:
        self._images = images
        self._pos = {int(i): p for p, i in enumerate(ids.tolist())}
        self._size = size
        self._done: dict[int, str] = {}

    def __getitem__(self, sample_id: int) -> str:
        key = int(sample_id)
        if key not in self._done:
            self._done[key] = thumbnail_uri(self._images[self._pos[key]], size=self._size)
        return self._done[key]

    def __iter__(self) -> Iterator[int]:
        return iter(self._pos)

    def __len__(self) -> int:
        return len(self._pos)


def hover_thumbnail_uris(predictions: Predictions, *, size: int = 56) -> ThumbnailURIs:
    """Images of ``predictions`` as data URIs, keyed by sample id, built lazily on access.

    Plotly hover labels cannot render images; a widget reads the hovered point's id from
    ``customdata[0]`` and shows ``uris[id]`` in an ``<img>`` next to the figure.

    Parameters
    ----------
    predictions : Predictions
        Must hold ``images``.
    size : int
        Thumbnail side length in pixels.

    Returns
    -------
    ThumbnailURIs
        A read-only ``Mapping[int, str]``; a missing id raises ``KeyError``.
    """
    predictions = as_predictions(predictions)
    if predictions.images is None:
        raise ValueError("`predictions` must hold images for hover thumbnails; got images=None.")
    size = v.check_int(size, "size", minimum=1)
    return ThumbnailURIs(predictions.images, predictions.ids, size=size)


# ----- display ----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ProjectionDisplay:
    """A 2-D projection of a model's features, ready to plot.

    Build it with :meth:`from_predictions`; :meth:`plot` only draws.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per sample, as from :func:`labviz.compute.projection.projection_frame`.
    method : str
    color : str
        The default colouring of :meth:`plot`.
    name : str
    """

    frame: pd.DataFrame
    method: str
    color: str = "class"
    name: str = ""

    @classmethod
    def from_predictions(
        cls,
        predictions: Predictions | None = None,
        *,
        features: ArrayLike | None = None,
        y_true: ArrayLike | None = None,
        logits: ArrayLike | None = None,
        probs: ArrayLike | None = None,
        y_given: ArrayLike | None = None,
        ids: ArrayLike | None = None,
        class_names: Sequence[str] | None = None,
        method: Method = "pca",
        color: Color = "class",
        random_state: int | None = 0,
        n_neighbors: int = 15,
        min_dist: float = 0.1,
        n_epochs: int | None = None,
        perplexity: float = 30.0,
        max_iter: int = 1000,
        cache: bool = True,
    ) -> ProjectionDisplay:
        """Project a :class:`labviz.Predictions`, or plain arrays (``features``, ``y_true`` and
        exactly one of ``logits`` / ``probs``; optional ``y_given``, ``ids``, ``class_names``).

        The projection options are those of :func:`labviz.compute.projection.projection_frame`; ``color``
        is the default colouring of :meth:`plot` (see :func:`projection_figure`).
        """
        given = arrays_given(
            predictions, "predictions",
            dict(features=features, y_true=y_true, logits=logits, probs=probs, y_given=y_given,
                 ids=ids, class_names=class_names),
            required=("features", "y_true"))
        if given is None:
            predictions = as_predictions(predictions)
        else:
            feats, labels = given
            predictions = Predictions.from_arrays(
                features=feats, y_true=labels, logits=logits, probs=probs, y_given=y_given,
                ids=ids, class_names=class_names)
        v.check_option(color, "color", COLORS)
        frame = projection_frame(
            predictions, method=method, random_state=random_state, n_neighbors=n_neighbors,
            min_dist=min_dist, n_epochs=n_epochs, perplexity=perplexity, max_iter=max_iter,
            cache=cache,
        )
        return cls(frame=frame, method=method, color=color, name=predictions.name)

    def plot(
        self,
        *,
        color: Color | None = None,
        title: str | None = None,
        highlight_ids: ArrayLike | None = None,
    ) -> go.Figure:
        """Draw the projection (see :func:`projection_figure`); ``color`` defaults to the one
        given to :meth:`from_predictions`, ``title`` to the predictions' name and method."""
        if title is None:
            method = _METHOD_TITLES.get(self.method, self.method)
            title = f"{self.name} — {method}" if self.name else method
        return projection_figure(self.frame, color=self.color if color is None else color,
                                 title=title, highlight_ids=highlight_ids)
