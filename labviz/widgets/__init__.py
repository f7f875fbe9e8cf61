"""The widgets layer: ``labviz.explore`` (linked views of trained models), ``labviz.live`` (train
models live in class) and ``labviz.app`` (both in one page, served by ``make app``).

This package's ``__init__`` is light on purpose (``import labviz`` stays fast): plotly, ipywidgets
and pandas load only when a function here builds its widget. The modules:

* :mod:`labviz.widgets.explorer`: :class:`~labviz.widgets.explorer.Explorer`, the mediator: it
  owns the one selection state and the handlers, and composes the views;
* :mod:`labviz.widgets.state`: that shared state (panels, classes, highlighted samples);
* :mod:`labviz.widgets.explorer_data`: the explorer's models and the caches of their predictions,
  projections, thumbnails and fitted temperatures;
* :mod:`labviz.widgets.summary`: the numbers of the selection views (reliability curves, ECEs,
  per-class table);
* :mod:`labviz.widgets.temperature`: the probabilities at the temperature the slider sets;
* :mod:`labviz.widgets.background`: a slow projection computed in a thread;
* :mod:`labviz.widgets.projection_views`: the projection panels, one class per scatter backend
  (plotly, WebGL through jupyter-scatter, a density raster where WebGL is missing);
* :mod:`labviz.widgets.views`: the confusion, reliability, samples and controls views;
* :mod:`labviz.widgets.trainer`: :class:`~labviz.widgets.trainer.LiveTrainer`, live training;
* :mod:`labviz.widgets._common`: small helpers of figure widgets and status lines.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ipywidgets

    from labviz.classroom.class_board import ClassBoard
    from labviz.classroom.live_training import LiveDataset
    from labviz.classroom.training_service import TrainingService
    from labviz.compute.projection import Method
    from labviz.core.predictions import Split
    from labviz.widgets.explorer import Backend, Explorer
    from labviz.widgets.explorer_data import Source
    from labviz.widgets.state import ColorBy
    from labviz.widgets.trainer import LiveTrainer


def explore(
    sources: Source | Sequence[Source],
    *,
    split: Split | None = None,
    method: Method = "pca",
    color: ColorBy = "class",
    classes: Sequence[int] | None = None,
    n_bins: int = 15,
    backend: Backend = "auto",
    max_thumbnails: int = 32,
) -> Explorer:
    """Explore one or two models in linked views: confusion, projection, reliability, per class.

    Clicking a confusion cell highlights its samples in every projection and shows their images;
    a lasso or box selection in a projection updates the reliability diagram and the per-class
    table for that selection; a slider steps through a checkpoint's epoch snapshots or its LS
    sweep on fixed, aligned axes; with two checkpoints, the projections sit side by side (aligned
    by Procrustes on shared sample ids) and share the highlight. Clicking a point lists its
    nearest neighbours in feature space; regions of feature space ranked by calibration error,
    and error slices, are listed, and a click on one selects its samples
    (:mod:`labviz.widgets.finds`, built in the background on first need).

    Parameters
    ----------
    sources : str, Predictions, or a sequence of them
        Zoo checkpoint names (see :func:`labviz.zoo.names`) and/or :class:`labviz.Predictions`
        holding ``features`` (your own model). The first is shown, the second (if any) beside it;
        the others can be picked in the controls.
    split : {"train", "val", "test"}, optional
        The split of zoo checkpoints; default "test". Only zoo checkpoints have splits (a
        ``Predictions`` holds one set of samples): with none among ``sources``, giving a split
        raises ValueError, and the explorer shows no split control.
    method : {"pca", "umap", "tsne"}
        Projection method; projections are cached on disk, so only the first use is slow.
    color : {"class", "prediction", "given", "correct", "confidence", "flipped", "non_uniformity", \
             "label_disagreement", "local_gap"}
        What the projection's colour shows. ``"label_disagreement"``: the share of a sample's
        10 nearest neighbours (cosine, penultimate features) whose given label differs from its
        own; ``"local_gap"``: mean confidence minus accuracy among them, on a diverging scale
        centred at 0 (over-confident warm, under-confident cool). Both need the neighbour index,
        built in the background (the projection is coloured by class until it is ready).
    classes : sequence of int, optional
        Show only samples of these true classes (default: all).
    n_bins : int
        Bins of the reliability diagram.
    backend : {"auto", "plotly", "webgl"}
        How the projections are drawn; every sample is drawn whichever it is. ``"auto"`` draws
        up to :data:`~labviz.widgets.explorer.PLOTLY_MAX_POINTS` samples with plotly (rings
        around highlighted points, images in the hover) and more with jupyter-scatter's WebGL
        scatter, which moves its points as binary arrays and stays interactive at a million.
        Where the browser has no WebGL, the WebGL panels turn into density rasters and the status
        line says so.
    max_thumbnails : int
        At most this many images of a highlighted set are shown.

    Returns
    -------
    Explorer
        Displays itself in a notebook; its handlers (``select_cell``, ``select_points``,
        ``set_snapshot``...) can also be called directly.
    """
    from labviz.widgets.explorer import Explorer

    return Explorer(sources, split=split, method=method, color=color, classes=classes,
                    n_bins=n_bins, backend=backend, max_thumbnails=max_thumbnails)


def live(*, dataset: LiveDataset = "digits", classes: Sequence[int] = (0, 1, 2),
         service: TrainingService | str | None = None,
         board: ClassBoard | str | os.PathLike | None = None) -> LiveTrainer:
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
        The dataset selected at start. Digits (1,077 training images of 8×8) train in about
        1.5 s on a laptop CPU; Fashion-MNIST trains on a subset, with a time estimate shown
        before the run.
    classes : sequence of 3 int
        The class triple of the template plane (changeable in the widget).
    service : TrainingService or str, optional
        Train on a class's shared pool of workers (:mod:`labviz.classroom.training_service`),
        given as a service or its scheduler's address, instead of in this process.
    board : ClassBoard or path, optional
        Put every finished run on the class's board (:mod:`labviz.classroom.class_board`).

    Returns
    -------
    LiveTrainer
        Displays itself in a notebook; ``.session.history()`` holds the runs, and ``train()``,
        ``cancel()`` and ``wait()`` drive it from code.
    """
    from labviz.widgets.trainer import LiveTrainer

    classes = tuple(classes)
    if len(classes) != 3 or any(isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < 10
                                for k in classes):
        raise ValueError(f"`classes` must be 3 class indices in [0, 9]; got {classes!r}.")
    if isinstance(service, str):
        from labviz.classroom.training_service import TrainingService

        service = TrainingService(service)
    if isinstance(board, (str, os.PathLike)):
        from labviz.classroom.class_board import ClassBoard

        board = ClassBoard(board)
    return LiveTrainer(dataset=dataset, classes=classes, service=service, board=board)


#: The zoo checkpoints :func:`app` explores: digits, so the page is up in seconds on any machine.
APP_SOURCES = ("digits-ce-s0", "digits-ls0.1-s0")
#: Environment variables naming the class's training service (a Dask scheduler address) and
#: board (an SQLite file) for :func:`app`; ``labviz app`` sets them for its kernels.
SERVICE_ENV, BOARD_ENV = "LABVIZ_TRAINING_SERVICE", "LABVIZ_CLASS_BOARD"


def app(*, explore_sources: Sequence[Source] = APP_SOURCES) -> ipywidgets.VBox:
    """The classroom app: live training and the explorer in two tabs, under a short guide.

    ``make app`` serves this through Voilà (``notebooks/app.ipynb``): a page with no code, for
    students who have never used Jupyter. There (see :func:`labviz.servers.jupyter.launch_app`) the
    environment names the class's shared training service and board:
    :data:`SERVICE_ENV` (a Dask scheduler's address) and :data:`BOARD_ENV` (the board's SQLite
    file); without them, the app trains in its own kernel and keeps no board.

    The explorer is built when its tab is first chosen: a page that opens on live training then
    draws and holds only the trainer (for a class of 30 on two cores, the pages' first view and
    each visitor's kernel are the costs that count).

    Parameters
    ----------
    explore_sources : sequence of str or Predictions
        What the explorer tab shows (see :func:`explore`).

    Returns
    -------
    ipywidgets.VBox
        Its ``.trainer`` attribute is the live trainer, and ``.explorer`` the explorer once its
        tab has been chosen (None before).
    """
    import ipywidgets

    from labviz.widgets._common import message_html
    from labviz.widgets.explorer_data import check_sources

    sources = list(explore_sources)
    check_sources(sources, "explore_sources")  # at once, though the explorer is built when chosen
    trainer = live(service=os.environ.get(SERVICE_ENV) or None,
                   board=os.environ.get(BOARD_ENV) or None)
    guide = ipywidgets.HTML(
        "<h2>labviz: how labels shape a classifier</h2>"
        "<p><b>Live training</b>: choose a loss and its α, press <b>Train</b>, and watch the "
        "template plane, the reliability diagram, the confusion matrix and the collapse metrics "
        "change. Every run is kept in <i>History</i>; <i>Compare two runs</i> puts any two side "
        "by side. <b>Explorer</b>: click a confusion cell to find its images, drag a lasso over "
        "points to see their calibration.</p>")
    explorer_tab = ipywidgets.VBox([ipywidgets.HTML(message_html("Opening the explorer ...",
                                                                 kind="busy"))])
    tabs = ipywidgets.Tab(children=[trainer.widget, explorer_tab])
    tabs.set_title(0, "Live training")
    tabs.set_title(1, "Explorer")
    page = ipywidgets.VBox([guide, tabs])
    page.trainer, page.explorer = trainer, None

    def open_explorer(change: dict) -> None:
        if change["new"] == 1 and page.explorer is None:
            try:
                page.explorer = explore(sources)
            except Exception as exc:  # in Voilà, the tab is the only place a student sees it
                explorer_tab.children = (ipywidgets.HTML(message_html(
                    f"The explorer could not open: {exc}", kind="warn")),)
                raise
            explorer_tab.children = (page.explorer.widget,)

    tabs.observe(open_explorer, "selected_index")
    return page
