"""What the explorer finds without being asked: a point's nearest neighbours in feature space,
each sample's label disagreement and local calibration gap, regions ranked by calibration error,
and error slices.

The numbers come from :mod:`labviz.compute.neighbours` (a cosine k-nearest-neighbour graph of
the penultimate features, cached on disk) and :mod:`labviz.compute.regions` (k-means regions
with their ECE and its 95% interval; error slices by Wilson interval). :class:`Finds` computes
them for the models on screen in a background thread when something needs them first (a click
on a point, a colouring by a score, the "find regions and error slices" button), with its
progress in the status line; they are kept per model (:func:`finds_of`, :func:`regions_of`) for
the life of its Predictions. The regions come first: they take seconds where the index takes
minutes (in the explorer's kernel at 1M x 64: 9 s against 357 s, numba's compilation included;
at 100k, 3.5 s against 81 s; load 8), so their list is shown while the index is built, and the
button, which needs no index, builds them alone.
Its handlers (:meth:`Finds.show_neighbours`, :meth:`Finds.select_region`,
:meth:`Finds.select_slice`) are what a click does, and select through the explorer's one
selection path, as a lasso does. :class:`~labviz.widgets.finds_view.FindsView` draws them.

Colours. ``"label_disagreement"`` (the share of a sample's 10 neighbours whose given label
differs from its own, on the sequential scale over [0, 1]) and ``"local_gap"`` (mean confidence
minus accuracy among its 10 neighbours at the explorer's temperature, on a diverging scale
centred at 0: over-confident warm, under-confident cool) are written into each panel's
``scores`` by :meth:`Finds.attach`, with ``"confidence"`` at the temperature; the projection
views read them there.
"""

from __future__ import annotations

import functools
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from labviz.compute.neighbours import (
    DEFAULT_K,
    NeighbourIndex,
    label_disagreement,
    local_calibration_gap,
    neighbour_index,
)
from labviz.compute.regions import Regions, error_slices, find_regions
from labviz.core import _validation as v
from labviz.core.predictions import Predictions
from labviz.figures.projection import ThumbnailURIs
from labviz.widgets._common import message_html, samples
from labviz.widgets.finds_view import FindsView, neighbours_html
from labviz.widgets.projection_views import ProjectionView
from labviz.widgets.selections import Selection, sample_row
from labviz.widgets.state import ViewState
from labviz.widgets.temperature import ScaledProbabilities

#: The colourings that need the neighbour index.
SCORE_COLORS: tuple[str, ...] = ("label_disagreement", "local_gap")
#: Neighbours listed for a clicked point (the scores use as many).
N_NEIGHBOURS = DEFAULT_K
#: Bootstrap replicas of each region's ECE interval.
REGION_BOOTSTRAPS = 1000
#: Progress is reported each time it has grown by this many percent.
PROGRESS_STEP = 5
#: The regions' share of a whole build's progress (computed first, in about 1% of its time).
REGIONS_SHARE = 0.05

Say = Callable[[str, str], None]
Select = Callable[[Selection], NDArray[np.int64]]


@dataclass(frozen=True, eq=False)
class RegionFinds:
    """The regions of one model's features and its error slices.

    Attributes
    ----------
    regions : Regions
        :func:`~labviz.compute.regions.find_regions`, ranked by ECE.
    slices : pandas.DataFrame
        :func:`~labviz.compute.regions.error_slices` of those regions, ranked.
    seconds : float
        Wall time of their build (or of reading the clustering from the disk cache).
    """

    regions: Regions
    slices: pd.DataFrame
    seconds: float


@dataclass(frozen=True, eq=False)
class FeatureFinds:
    """What was found in one model's features.

    Attributes
    ----------
    index : NeighbourIndex
        Every sample's nearest other samples (rows of the Predictions).
    disagreement : ndarray of shape (n_samples,)
        :func:`~labviz.compute.neighbours.label_disagreement` with ``k = N_NEIGHBOURS``.
    regions : Regions
        :func:`~labviz.compute.regions.find_regions`, ranked by ECE.
    slices : pandas.DataFrame
        :func:`~labviz.compute.regions.error_slices` of those regions, ranked.
    seconds : float
        Wall time of the index's build (or of reading it from the disk cache) and of the
        disagreement.
    """

    index: NeighbourIndex
    disagreement: NDArray[np.float64]
    regions: Regions
    slices: pd.DataFrame
    seconds: float


_FOUND: weakref.WeakKeyDictionary[Predictions, FeatureFinds] = weakref.WeakKeyDictionary()
_REGIONS: weakref.WeakKeyDictionary[Predictions, RegionFinds] = weakref.WeakKeyDictionary()


def finds_of(p: Predictions) -> FeatureFinds | None:
    """The finds of ``p``, index included, if they were computed in this process (else None)."""
    return _FOUND.get(p)


def regions_of(p: Predictions) -> RegionFinds | None:
    """The regions and slices of ``p``, if they were computed in this process (else None)."""
    return _REGIONS.get(p)


def compute_regions(p: Predictions, progress: Callable[[float], None]) -> RegionFinds:
    """The regions and the slices of ``p`` (those kept, if computed); kept for
    :func:`regions_of`."""
    found = _REGIONS.get(p)
    if found is None:
        start = time.perf_counter()
        regions = find_regions(p, n_boot=REGION_BOOTSTRAPS, progress=progress)
        found = RegionFinds(regions=regions, slices=error_slices(p, regions),
                            seconds=time.perf_counter() - start)
        _REGIONS[p] = found
    progress(1.0)
    return found


def compute_finds(p: Predictions, progress: Callable[[float], None],
                  on_regions: Callable[[], object] | None = None) -> FeatureFinds:
    """The regions and slices of ``p`` (:func:`compute_regions`; :data:`REGIONS_SHARE` of the
    progress), then ``on_regions()``, then its index and disagreement; kept for
    :func:`finds_of`."""
    found = compute_regions(p, lambda f: progress(REGIONS_SHARE * f))
    if on_regions is not None:
        on_regions()
    start = time.perf_counter()
    index = neighbour_index(
        p, progress=lambda f: progress(REGIONS_SHARE + (1 - REGIONS_SHARE) * f))
    full = FeatureFinds(index=index, disagreement=label_disagreement(p, index, k=N_NEIGHBOURS),
                        regions=found.regions, slices=found.slices,
                        seconds=time.perf_counter() - start)
    _FOUND[p] = full
    return full


def _share(progress: Callable[[float], None], i: int, n: int, done: float) -> None:
    """Report ``done`` of the ``i``-th of ``n`` equal parts as the fraction of the whole."""
    progress((i + done) / n)


class Finds:
    """Neighbours, scores, regions and slices of the models in ``state``'s panels.

    Parameters
    ----------
    state : ViewState
        The explorer's (read; :meth:`attach` writes the panels' ``scores``).
    probabilities : ScaledProbabilities
        The explorer's, for the models' confidence at ``state.temperature``.
    select : callable
        The explorer's selection path: highlights a :class:`~labviz.widgets.selections.Selection`
        and returns its ids.
    say : callable
        ``say(text, kind)`` writes the status line.
    thumbnails : callable
        The images of a model by sample id (None without images).
    projection : callable
        The explorer's projection view now (:meth:`draw_projection` draws it).

    Attributes
    ----------
    view : FindsView
    neighbours : ndarray of shape (n_neighbours,)
        The sample ids of the last clicked point's neighbours, nearest first (empty before).
    """

    def __init__(self, state: ViewState, probabilities: ScaledProbabilities, *, select: Select,
                 say: Say, thumbnails: Callable[[Predictions], ThumbnailURIs | None],
                 projection: Callable[[], ProjectionView]) -> None:
        self.state, self._probabilities, self._select, self._say = state, probabilities, select, say
        self._thumbnails, self._projection = thumbnails, projection
        self.view = FindsView(on_region=self.select_region, on_slice=self.select_slice,
                              on_neighbours=self.select_neighbours, on_build=self.build_regions)
        self.neighbours = np.zeros(0, dtype=np.int64)
        self._clicked: int | None = None
        self._thread: threading.Thread | None = None
        self._then: list[Callable[[], object]] = []
        self._lock = threading.RLock()  # a callback run when a build is done may build again
        self._want_index = False  # whether a build asked for since the last one needs the index
        self._gaps: dict[int, tuple[float, Predictions, NDArray[np.float64]]] = {}

    # ----- building -------------------------------------------------------------------------------
    def _missing(self, index: bool = True) -> list[Predictions]:
        """The panels' models with features whose finds (``index``), or regions, are missing."""
        have = finds_of if index else regions_of
        return [panel.predictions for panel in self.state.panels
                if have(panel.predictions) is None and panel.predictions.features is not None]

    def ready(self) -> bool:
        """Whether every panel's finds, index included, are computed."""
        return not self._missing()

    def build(self, then: Callable[[], object] | None = None, *, index: bool = True) -> None:
        """Compute the finds of the panels' models in a thread (nothing if they exist): their
        regions and slices, then, with ``index``, their neighbour index; then call ``then()``
        (at once if there is nothing to compute). A build asked for while one runs follows it."""
        with self._lock:
            if then is not None:
                self._then.append(then)
            self._want_index = self._want_index or index
            thread = self._thread
            if (thread is not None and thread.is_alive()
                    and thread is not threading.current_thread()):
                return  # the running build looks again when it is done
            missing = self._missing(self._want_index)
            if not missing:
                self._want_index = False
                self._finish()
                return
            self._thread = threading.Thread(target=self._work, args=(missing, self._want_index),
                                            daemon=True, name="labviz-finds")
            self._thread.start()

    def build_regions(self) -> None:
        """Compute the regions and slices of the panels' models, not their index, in a thread
        (what the "find regions and error slices" button does)."""
        self.build(index=False)

    def _work(self, models: list[Predictions], index: bool) -> None:
        n = sum(p.n_samples for p in models)
        said = -PROGRESS_STEP
        what = "the regions, then the neighbour index," if index else "the regions"

        def progress(done: float) -> None:
            nonlocal said
            if int(100 * done) >= said + PROGRESS_STEP:
                said = int(100 * done)
                self._say(f"Building {what} of {samples(n)} in the background: {said}% (cached "
                          "on disk afterwards).", "busy")

        try:
            seconds = [0.0, 0.0]  # the regions', the index's
            for i, p in enumerate(models):
                share = functools.partial(_share, progress, i, len(models))
                if index:
                    seconds[1] += compute_finds(p, share, on_regions=self.draw_lists).seconds
                else:
                    compute_regions(p, share)
                    self.draw_lists()
                seconds[0] += _REGIONS[p].seconds
        except Exception as exc:  # reported, never lost in the thread
            with self._lock:
                self._then.clear()
                self._want_index = False
            self._say(f"The {'neighbour index' if index else 'regions'} failed: {exc}", "warn")
            return
        self._say(f"Neighbours, regions and error slices of {samples(n)} ready (index "
                  f"{seconds[1]:.1f} s, regions {seconds[0]:.1f} s)." if index else
                  f"Regions and error slices of {samples(n)} ready (regions {seconds[0]:.1f} s).",
                  "info")
        self.build(index=False)  # what was asked for meanwhile (an index), else the callbacks

    def _finish(self) -> None:
        then, self._then = self._then, []
        self.draw_lists()
        if self.state.color in SCORE_COLORS:
            self.draw_projection()
        for f in then:
            f()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the builds running, if any (one may follow another); True when none is
        running."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            thread = self._thread
            if thread is None:
                return True
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                return False
            if self._thread is thread:
                return True

    def _confidence(self, p: Predictions) -> NDArray[np.float64]:
        return self._probabilities.confidence(p, self.state.temperature)

    # ----- drawing --------------------------------------------------------------------------------
    def attach(self) -> None:
        """Write the score the projections are coloured by into each panel's ``scores``:
        ``"confidence"`` at the temperature, or, once the model's finds exist,
        ``"label_disagreement"`` or ``"local_gap"`` (at the temperature: 2 x n_samples x 10
        gathers). A score whose finds are missing starts their build, and the projections are
        drawn again when it is done (meanwhile, by class)."""
        color = self.state.color
        if color != "confidence" and color not in SCORE_COLORS:
            return
        for panel in self.state.panels:
            p = panel.predictions
            found = finds_of(p)
            if color == "confidence":
                panel.scores[color] = self._confidence(p)
            elif found is None:
                if p.features is not None:
                    self.build()
            elif color == "label_disagreement":
                panel.scores[color] = found.disagreement
            else:
                panel.scores[color] = self._local_gap(p, found)

    def _local_gap(self, p: Predictions, found: FeatureFinds) -> NDArray[np.float64]:
        """``p``'s local gap at the temperature; the last temperature's kept per model (0.5 s at
        1M samples: a change of colouring and back costs nothing)."""
        t = self.state.temperature
        hit = self._gaps.get(id(p))
        if hit is None or hit[0] != t or hit[1] is not p:
            gap = local_calibration_gap(None, found.index, k=N_NEIGHBOURS,
                                        confidence=self._confidence(p), correct=p.correct)
            live = {id(panel.predictions) for panel in self.state.panels}
            self._gaps = {k: h for k, h in self._gaps.items() if k in live}  # on screen only
            hit = self._gaps[id(p)] = (t, p, gap)
        return hit[2]

    def draw_projection(self, *, animate: bool = False) -> None:
        """Draw the projections, with the score they are coloured by (:meth:`attach`)."""
        self.attach()
        self._projection().draw(self.state, animate=animate)

    def on_temperature(self) -> None:
        """Draw the projections again if their colour depends on the temperature (the
        confidence, the local gap)."""
        if self.state.color in ("confidence", "local_gap"):
            self.draw_projection()

    def draw_lists(self) -> None:
        """List the left panel's regions and slices (or say why not)."""
        p = self.state.panels[0].predictions
        found = regions_of(p)
        if found is None:
            note = ("These predictions have no features: no neighbours, regions or slices."
                    if p.features is None else
                    "Regions of feature space ranked by calibration error, and error slices: "
                    "computed in the background in seconds (a click on a point builds them "
                    "too, before the neighbour index), then cached on disk.")
            self.view.draw_lists(None, None, note, can_build=p.features is not None)
        else:
            self.view.draw_lists(found.regions.table, found.slices)

    # ----- handlers -------------------------------------------------------------------------------
    def show_neighbours(self, sample_id: int) -> NDArray[np.int64]:
        """List the nearest neighbours of sample ``sample_id`` of the left panel in feature space
        (what a click on a point does); while the index is being built, say so and list them
        when it is done.

        Returns
        -------
        ndarray of shape (n_neighbours,)
            Their sample ids, nearest first (empty while the index is being built).
        """
        row = sample_row(self.state, sample_id)
        p = self.state.panels[0].predictions
        found = finds_of(p)
        if found is None:
            if p.features is None:
                self.view.draw_neighbours(message_html(
                    "These predictions have no features: no neighbours to list."),
                    can_highlight=False)
                return np.zeros(0, dtype=np.int64)
            self.view.draw_neighbours(message_html(
                f"The neighbours of id {int(sample_id)} are listed once the neighbour index is "
                "built (in the background; see the status line)."), can_highlight=False)
            self.build(then=lambda: self._neighbours_of(p, sample_id))
            return np.zeros(0, dtype=np.int64)
        return self._neighbours_of(p, sample_id, row)

    def _neighbours_of(self, p: Predictions, sample_id: int,
                       row: int | None = None) -> NDArray[np.int64]:
        found = finds_of(p)
        if found is None or p is not self.state.panels[0].predictions:
            return np.zeros(0, dtype=np.int64)  # another view was loaded meanwhile
        row = sample_row(self.state, sample_id) if row is None else row
        rows, similarity = found.index.query(row, min(N_NEIGHBOURS, found.index.n_neighbors))
        self.view.draw_neighbours(neighbours_html(p, row, rows.astype(np.intp), similarity,
                                                  self._confidence(p), self._thumbnails(p)),
                                  can_highlight=True)
        self._clicked = int(sample_id)
        self.neighbours = p.ids[rows].astype(np.int64)
        return self.neighbours

    def select_neighbours(self) -> NDArray[np.int64]:
        """Select the last clicked point and its listed neighbours (the "highlight them"
        button)."""
        if self._clicked is None:
            return self._select(Selection(np.zeros(0, dtype=np.int64), "",
                                          "Empty selection: no point was clicked; the views are "
                                          "unchanged."))
        ids = np.unique(np.append(self.neighbours, self._clicked))
        return self._select(Selection(ids, f"Id {self._clicked} and its {len(ids) - 1:,} nearest "
                                           f"neighbours: {samples(len(ids))} highlighted.",
                                      "Empty selection."))

    def select_region(self, rank: int) -> NDArray[np.int64]:
        """Select the samples of the region ranked ``rank`` (0: the largest ECE) of the left
        panel (what a click on a listed region does).

        Returns
        -------
        ndarray of shape (size,)
            The region's sample ids, sorted.
        """
        p, found = self._found("select_region")
        table = found.regions.table
        k = v.check_int(rank, "rank", minimum=0, maximum=len(table) - 1)
        row = table.iloc[k]
        ids = np.sort(p.ids[found.regions.members(int(row["region"]))]).astype(np.int64)
        return self._select(Selection(
            ids, f"Region {int(row['region'])}: {samples(len(ids))} highlighted, ECE "
                 f"{row['ece']:.3f} (95% CI {row['ece_low']:.3f}–{row['ece_high']:.3f}), "
                 f"accuracy {row['accuracy']:.3f}, mean confidence {row['confidence']:.3f}.",
            f"Empty selection: region {int(row['region'])} has no samples."))

    def select_slice(self, rank: int) -> NDArray[np.int64]:
        """Select the samples of the error slice ranked ``rank`` of the left panel (what a click
        on a listed slice does).

        Returns
        -------
        ndarray of shape (size,)
            The slice's sample ids, sorted.
        """
        p, found = self._found("select_slice")
        if found.slices.empty:
            raise ValueError(f"`rank` must be a listed error slice; {p.name} has none.")
        k = v.check_int(rank, "rank", minimum=0, maximum=len(found.slices) - 1)
        row = found.slices.iloc[k]
        ids = np.sort(p.ids[found.regions.members(int(row["region"]))]).astype(np.int64)
        return self._select(Selection(
            ids, f"Error slice {row['name']} (region {int(row['region'])}): "
                 f"{samples(len(ids))} highlighted, error rate {row['error_rate']:.1%} (95% CI "
                 f"{row['error_low']:.1%}–{row['error_high']:.1%}; "
                 f"{row['overall_error_rate']:.1%} overall).",
            f"Empty selection: slice {row['name']} has no samples."))

    def _found(self, handler: str) -> tuple[Predictions, RegionFinds]:
        p = self.state.panels[0].predictions
        found = regions_of(p)
        if found is None:
            raise ValueError(f"`{handler}` needs the regions of {p.name}, which are not computed "
                             "yet: call `finds.build()` and `finds.wait()` first.")
        return p, found
