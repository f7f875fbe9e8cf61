"""Image thumbnails: a data-URI per image, and a gallery figure of many images."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from numpy.typing import ArrayLike

from labviz.core import _validation as v
from labviz.figures.style import MAX_FIGURE_WIDTH, apply_style


def _to_uint8(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image, dtype=np.float64)
    lo, hi = float(img.min()), float(img.max())
    scaled = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    return (255 * scaled).round().astype(np.uint8)


def thumbnail_uri(image: ArrayLike, *, size: int = 56) -> str:
    """A grayscale image as a PNG data URI (for ``<img src=...>`` in widgets and HTML).

    Parameters
    ----------
    image : array-like of shape (height, width)
    size : int
        Output side length in pixels (nearest-neighbour upscaling keeps pixels crisp).
    """
    from PIL import Image

    arr = v.as_array(image, "image")
    if arr.ndim != 2:
        raise ValueError(f"`image` must have shape (height, width); got {arr.shape}.")
    pil = Image.fromarray(_to_uint8(arr), mode="L").resize((size, size), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def image_grid_figure(
    images: ArrayLike,
    *,
    titles: Sequence[str] | None = None,
    n_cols: int = 8,
    title: str = "",
    pad: int = 2,
) -> go.Figure:
    """A gallery of grayscale images tiled into one heatmap-free ``go.Image`` trace.

    Parameters
    ----------
    images : array-like of shape (n_images, height, width)
    titles : sequence of str of length n_images, optional
        Shown under each tile (e.g. "given: Shirt / predicted: T-shirt").
    n_cols : int
    title : str
    pad : int
        White pixels between tiles.
    """
    imgs = v.as_array(images, "images")
    if imgs.ndim != 3 or imgs.shape[0] == 0:
        raise ValueError(f"`images` must have shape (n_images, height, width); got {imgs.shape}.")
    n_cols = v.check_int(n_cols, "n_cols", minimum=1)
    if titles is not None and len(titles) != len(imgs):
        raise ValueError(f"`titles` must have {len(imgs)} entries; got {len(titles)}.")
    n, h, w = imgs.shape
    n_cols = min(n_cols, n)
    n_rows = -(-n // n_cols)
    # Captions sit in a white band under each tile, so rows leave room for them.
    row_gap = max(pad, h // 2) if titles is not None else pad
    mosaic = np.full((n_rows * (h + row_gap) + pad, n_cols * (w + pad) + pad), 255, np.uint8)
    for i, img in enumerate(imgs):
        r, c = divmod(i, n_cols)
        y0, x0 = pad + r * (h + row_gap), pad + c * (w + pad)
        mosaic[y0:y0 + h, x0:x0 + w] = 255 - _to_uint8(img)  # dark strokes on white paper
    rgb = np.repeat(mosaic[:, :, None], 3, axis=2)
    fig = go.Figure(go.Image(z=rgb, hoverinfo="skip"))
    # small images are drawn three times their size, as far as the figure stays within bounds
    scale = min(3 if h <= 32 else 1, (MAX_FIGURE_WIDTH - 40) / (n_cols * (w + pad) + pad))
    if titles is not None:
        for i, text in enumerate(titles):
            r, c = divmod(i, n_cols)
            fig.add_annotation(
                x=pad + c * (w + pad) + w / 2, y=pad + r * (h + row_gap) + h, text=text,
                showarrow=False, yanchor="top", font=dict(size=9),
            )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(
        title=title, width=max(300, round((n_cols * (w + pad) + pad) * scale + 40)),
        height=max(200, round((n_rows * (h + row_gap) + pad) * scale + (90 if title else 40))),
        margin=dict(l=10, r=10, t=50 if title else 10, b=10),
    )
    return apply_style(fig)
