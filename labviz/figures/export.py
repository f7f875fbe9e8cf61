"""Static export of figures to PNG, SVG or PDF with kaleido and Debian's Chromium.

Export styles a *copy* of the figure with the labviz publication template
(:data:`labviz.figures.style.TEMPLATE`); the caller's figure and ``plotly.io.templates.default``
are left untouched. Chromium is never downloaded: if it is missing, the error says how to install
it. Starting Chromium costs seconds, so :func:`export_many` and :class:`ExportSession` render many
figures with one browser.

>>> import labviz  # doctest: +SKIP
>>> labviz.export(fig, "figure.pdf", width=500, height=350)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine, Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labviz.core import _validation as v
from labviz.core.files import atomic_write_bytes

if TYPE_CHECKING:  # plotly and kaleido are imported lazily: importing labviz stays fast
    import plotly.graph_objects as go

__all__ = ["CHROMIUM_PATH", "FORMATS", "ExportSession", "export", "export_many", "find_chromium"]

#: Debian's Chromium; ``$LABVIZ_CHROMIUM`` overrides it (e.g. on another distribution).
CHROMIUM_PATH = "/usr/bin/chromium"
#: File formats by extension.
FORMATS: tuple[str, ...] = ("png", "svg", "pdf")
#: Seconds allowed to render one figure.
RENDER_TIMEOUT = 120.0


def find_chromium() -> Path:
    """The Chromium executable that kaleido drives.

    ``$LABVIZ_CHROMIUM`` if set, else :data:`CHROMIUM_PATH`. Nothing is ever downloaded.

    Raises
    ------
    FileNotFoundError
        If that file does not exist or is not executable; the message says how to install it.
    """
    path = Path(os.environ.get("LABVIZ_CHROMIUM") or CHROMIUM_PATH)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise FileNotFoundError(
            f"Chromium is needed to export figures, but there is no executable at {path}. "
            "Install Debian's Chromium with `sudo apt-get install chromium` (or point "
            "$LABVIZ_CHROMIUM at a Chromium/Chrome executable). labviz never downloads a browser."
        )
    return path


def _check_format(path: str | os.PathLike) -> tuple[Path, str]:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a str or os.PathLike; got {type(path).__name__}.")
    p = Path(path)
    fmt = p.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"`path` must end in one of {['.' + f for f in FORMATS]}; got {str(p)!r}.")
    return p, fmt


def _check_size(value: Any, name: str) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"`{name}` must be a positive number or None; got {type(value).__name__} {value!r}.")
    if not value > 0:
        raise ValueError(f"`{name}` must be > 0; got {value!r}.")
    return value


def _check_target(path: str | os.PathLike, overwrite: bool) -> tuple[Path, str]:
    p, fmt = _check_format(path)
    if not p.parent.is_dir():
        raise FileNotFoundError(f"`path` must be in an existing folder; {str(p.parent)!r} does not exist.")
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} exists; pass overwrite=True to replace it.")
    return p, fmt


def styled_copy(fig: go.Figure) -> go.Figure:
    """A copy of ``fig`` in the labviz publication template, ready for static export.

    WebGL traces (``scattergl``) become SVG ``scatter`` traces in the copy: vector formats would
    otherwise embed them as a bitmap.
    """
    import plotly.graph_objects as go

    from labviz.figures.style import TEMPLATE

    if not isinstance(fig, go.Figure):
        raise TypeError(f"`fig` must be a plotly.graph_objects.Figure; got {type(fig).__name__}.")
    spec = fig.to_dict()
    has_gl = False
    for trace in spec.get("data", []):
        if trace.get("type") == "scattergl":
            trace["type"], has_gl = "scatter", True
    # The few scattergl-only properties are dropped rather than rejected by the SVG trace.
    copy = go.Figure(spec, skip_invalid=has_gl)
    copy.update_layout(template=TEMPLATE)
    return copy


class ExportSession:
    """One headless Chromium, reused for every figure exported through it.

    Use it as a context manager; the browser starts on entry and stops on exit. It runs its own
    event loop in a thread, so it works the same in scripts and in Jupyter (which already runs a
    loop).

    Examples
    --------
    >>> with ExportSession() as session:  # doctest: +SKIP
    ...     session.export(fig_a, "a.png", scale=2)
    ...     session.export(fig_b, "b.svg")
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._kaleido = None

    def _run(self, coro: Coroutine) -> Any:
        if self._loop is None:
            coro.close()
            raise RuntimeError("ExportSession is not open; use it as `with ExportSession() as s:`.")
        future: Future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result()

    def __enter__(self) -> ExportSession:
        chromium = find_chromium()
        import kaleido

        async def start():
            # mathjax=False: kaleido would otherwise fetch MathJax from a CDN; no labviz figure
            # uses LaTeX, and exports must work offline.
            k = kaleido.Kaleido(path=str(chromium), mathjax=False, timeout=RENDER_TIMEOUT, n=1)
            await k.open()
            return k

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="labviz-export", daemon=True)
        self._thread.start()
        try:
            self._kaleido = self._run(start())
        except BaseException:
            self._stop_loop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if self._kaleido is not None:
                self._run(self._kaleido.close())
        finally:
            self._kaleido = None
            self._stop_loop()

    def _stop_loop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join()
            self._loop.close()
        self._loop = self._thread = None

    def render(self, fig: go.Figure, fmt: str, *, width: float | None = None,
               height: float | None = None, scale: float | None = None) -> bytes:
        """The bytes of ``fig`` (styled with :func:`styled_copy`) as ``fmt`` ("png", "svg", "pdf")."""
        v.check_option(fmt, "fmt", FORMATS)
        copy = styled_copy(fig)
        opts: dict[str, str | float] = {"format": fmt}
        # Without an explicit size, the figure's own layout size wins over kaleido's 700 x 500.
        width = _check_size(width, "width") or copy.layout.width
        height = _check_size(height, "height") or copy.layout.height
        scale = _check_size(scale, "scale")
        opts.update({k: val for k, val in (("width", width), ("height", height), ("scale", scale))
                     if val is not None})
        if self._kaleido is None:
            raise RuntimeError("ExportSession is not open; use it as `with ExportSession() as s:`.")
        return self._run(self._kaleido.calc_fig(copy, opts=opts))

    def export(self, fig: go.Figure, path: str | os.PathLike, *, width: float | None = None,
               height: float | None = None, scale: float | None = None,
               overwrite: bool = False) -> Path:
        """Write ``fig`` to ``path`` with this session's browser; see :func:`export`."""
        p, fmt = _check_target(path, overwrite)
        data = self.render(fig, fmt, width=width, height=height, scale=scale)
        if p.exists() and not overwrite:  # created while we rendered
            raise FileExistsError(f"{p} exists; pass overwrite=True to replace it.")
        atomic_write_bytes(p, data, mode=None)  # an exported figure's bits follow the umask
        return p


def export(
    fig: go.Figure,
    path: str | os.PathLike,
    *,
    width: float | None = None,
    height: float | None = None,
    scale: float | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``fig`` as a static PNG, SVG or PDF file, chosen by the extension of ``path``.

    The labviz template is applied to a copy; ``fig`` itself is not changed. Starts Chromium for
    this one figure: to export several, use :func:`export_many` or :class:`ExportSession`.

    Parameters
    ----------
    fig : plotly.graph_objects.Figure
    path : str or os.PathLike
        Ends in ``.png``, ``.svg`` or ``.pdf``; its folder must exist.
    width, height : float, optional
        Size in CSS pixels; default the figure's ``layout.width``/``height``, else 700 x 500.
    scale : float, optional
        Multiplies the pixel size of a PNG (a 400 x 300 figure at ``scale=2`` is 800 x 600 pixels).
    overwrite : bool, default False
        An existing file is kept (``FileExistsError``) unless this is True.

    Returns
    -------
    pathlib.Path
        The written file. It is written atomically: a reader never sees half of it.

    Raises
    ------
    ValueError
        For an unknown extension or a non-positive size.
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    FileNotFoundError
        If Chromium is missing (the message says how to install it) or the folder does not exist.
    """
    return export_many([(fig, path)], width=width, height=height, scale=scale, overwrite=overwrite)[0]


def export_many(
    items: Iterable[tuple[go.Figure, str | os.PathLike]],
    *,
    width: float | None = None,
    height: float | None = None,
    scale: float | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Export several figures with one Chromium; see :func:`export` for the arguments.

    Every path is checked before the browser starts, so a bad extension, an existing file or two
    items writing the same file fail fast with nothing written.

    Parameters
    ----------
    items : iterable of (Figure, path) pairs

    Returns
    -------
    list of pathlib.Path
        The written files, in the order of ``items``.
    """
    import plotly.graph_objects as go

    pairs = list(items)
    seen: set[Path] = set()
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise TypeError(f"`items[{i}]` must be a (figure, path) pair; got {type(pair).__name__}.")
        fig, path = pair
        if not isinstance(fig, go.Figure):
            raise TypeError(f"`items[{i}]` figure must be a plotly.graph_objects.Figure; "
                            f"got {type(fig).__name__}.")
        p, _ = _check_target(path, overwrite)
        if p.resolve() in seen:
            raise ValueError(f"`items` must write each file once; got {str(p)!r} twice.")
        seen.add(p.resolve())
    for value, name in ((width, "width"), (height, "height"), (scale, "scale")):
        _check_size(value, name)
    if not pairs:
        return []
    with ExportSession() as session:
        return [session.export(fig, path, width=width, height=height, scale=scale, overwrite=overwrite)
                for fig, path in pairs]
