"""Nearest neighbours in feature space (cosine), and per-sample scores from them.

API (what the explorer calls)
-----------------------------
* :func:`neighbour_index` ``(predictions_or_features, *, n_neighbors=None (20), method="auto",
  random_state=0, cache=True, progress=None) -> NeighbourIndex``: every sample's
  ``n_neighbors`` nearest other samples by cosine similarity of the penultimate features, built
  once (in a thread if you like: ``progress(fraction)`` is called from it) and cached on disk
  (:mod:`labviz.core.cache`, namespace ``"neighbours"``, keyed by a sha256 of the feature bytes,
  the method and ``n_neighbors``).
* :meth:`NeighbourIndex.query` ``(i, k=10) -> (indices, similarities)``: sample ``i``'s ``k``
  nearest neighbours, nearest first, itself excluded; ``k <= index.n_neighbors``. A row lookup
  in the built graph: microseconds at any size.
* :func:`label_disagreement` ``(predictions, index, *, k=10) -> ndarray (n_samples,)``: the share
  of a sample's ``k`` neighbours whose given label differs from its own given label.
* :func:`local_calibration_gap` ``(predictions, index, *, k=10) -> ndarray (n_samples,)``: mean
  confidence minus accuracy among a sample's ``k`` neighbours (> 0: over-confident there).

Regions (clusters of the features) and error slices are in :mod:`labviz.compute.regions`.

How the index is built
----------------------
The index *is* the k-nearest-neighbour graph of all samples, shape (n_samples, n_neighbors),
because the scores need every sample's neighbours anyway, and a query is then a row lookup.
Cosine similarity is the dot product of L2-normalised features (a zero row has similarity 0 to
everything), so both methods work on a float32 normalised copy (1M x 64: 256 MB):

* ``"exact"``: blocked matrix products (a block of query rows times a block of the other rows,
  64 MB of similarities at a time) with a running top-k (``numpy.argpartition``); nothing of size
  samples x samples is held. O(n^2 d): right below :data:`EXACT_BELOW` samples.
* ``"nndescent"``: pynndescent's ``NNDescent`` (which umap-learn brings) on the normalised
  features with the euclidean metric (the same order as cosine: ``|a - b|^2 = 2 - 2 cos``).
  Approximate; its first use in a process compiles numba code.
* ``"auto"``: exact below :data:`EXACT_BELOW` (50,000) samples, NNDescent from there.

Measured
--------
On the 2 cores shared with other jobs (load average in brackets), synthetic float32 features (10
Gaussian clusters, a hard case for an approximate search: no structure within a cluster),
``benchmarks/bench_neighbours.py``; exact times for all samples are the measured time of 1,000
query rows scaled to N (the cost is linear in the rows):

* 1M x 64: exact 5,300-9,500 s (1.5-2.6 h; load 1-8), so out. NNDescent (40 trees) 228 s,
  +2.2 GB peak RSS (the 256 MB normalised copy and NNDescent's heaps; 3.0 GB for the whole
  process), recall@10 against exact search 0.90 (load 2.7); with pynndescent's 21 trees 156 s
  and 0.86 (load 1.2-3.6; 556 s at load 6-8). Plus 28-78 s of numba compilation once per
  process. The graph kept (20 neighbours) is 160 MB, reloaded from the cache in 0.4 s.
* 100k x 64: exact 85 s (load 3.5; 189 s at load 5-8); NNDescent (21 trees) 17 s, +213 MB
  (load 3.5; 56 s at load 5-8), recall@10 0.98.
* 50k x 64: exact 11 s (load 1.3; 45 s at load 6); NNDescent (21 trees) 13-16 s (load 6)
  plus the compilation, recall@20 0.99.
* 50k x 2,048: exact 144 s (load 5-6); NNDescent (21 trees) 63 s, +820 MB, recall@10 0.90.
* A query (:meth:`NeighbourIndex.query`, k=10) takes 2-4 us at every size (the slowest of 1,000:
  4 ms); one sample's exact neighbours searched on the spot with no index take 12-27 ms at
  1M x 64, 8 ms at 100k x 64 and 14-47 ms at 50k x 2,048. Both scores for all samples
  (k=10): 0.29-0.31 s at 1M, 0.04 s at 100k.

So NNDescent serves 1M and exact search does not; below 50k exact search costs less than
NNDescent's compilation alone, and is exact.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from labviz.core import _validation as v
from labviz.core._inputs import arrays_given, as_predictions
from labviz.core.cache import cache_key, cached_arrays
from labviz.core.predictions import Predictions

Method = Literal["auto", "exact", "nndescent"]
#: Called with the fraction done, a float in [0, 1], from the thread that computes.
Progress = Callable[[float], None]

METHODS: tuple[str, ...] = ("auto", "exact", "nndescent")
#: Neighbours kept per sample by default: the explorer lists up to this many.
DEFAULT_NEIGHBORS = 20
#: Neighbours per sample the scores use by default.
DEFAULT_K = 10
#: ``method="auto"`` searches exactly below this many samples, with NNDescent from there.
EXACT_BELOW = 50_000
#: NNDescent builds a graph this many times wider than the neighbours kept, for recall.
_BUILD_WIDTH = 2
#: Random-projection trees that start NNDescent (pynndescent's default: 21 at 1M). Its recall is
#: bound by them, not by its iterations: at 300k x 64, recall@10 0.942 with 21 trees in 56 s,
#: 0.966 with 40 in 61 s, 0.979 with 64 in 78 s (40 iterations in place of 18: no change).
_N_TREES = 40
#: Bump when the index code changes in a way that makes old cache entries wrong.
_CACHE_VERSION = 2
#: Similarities held at once by the exact search (float32 entries): 64 MB.
_BLOCK_ENTRIES = 1 << 24
#: Rows per chunk when scoring.
_CHUNK = 65_536
#: Entries per row chunk when reading features: 2**22 float32 entries are 16 MB.
_CHUNK_ENTRIES = 1 << 22


# ----- the index --------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class NeighbourIndex:
    """Every sample's nearest other samples by cosine similarity of their features.

    Build it with :func:`neighbour_index`.

    Attributes
    ----------
    indices : ndarray of shape (n_samples, n_neighbors), int32
        Row ``i`` holds sample ``i``'s neighbours, nearest first; never ``i`` itself.
    similarities : ndarray of shape (n_samples, n_neighbors), float32
        Their cosine similarities to sample ``i``, non-increasing along each row.
    method : {"exact", "nndescent"}
        How the graph was found (``"nndescent"`` is approximate).
    """

    indices: NDArray[np.int32]
    similarities: NDArray[np.float32]
    method: str

    @property
    def n_samples(self) -> int:
        """Number of samples indexed."""
        return int(self.indices.shape[0])

    @property
    def n_neighbors(self) -> int:
        """Neighbours kept per sample: the largest ``k`` :meth:`query` accepts."""
        return int(self.indices.shape[1])

    def check_k(self, k: int) -> int:
        """``k`` as an int in ``[1, n_neighbors]``, else a ValueError naming ``k``."""
        k = v.check_int(k, "k", minimum=1)
        if k > self.n_neighbors:
            raise ValueError(f"`k` must be at most the index's n_neighbors={self.n_neighbors}; got "
                             f"{k}. Build the index with neighbour_index(..., n_neighbors={k}).")
        return k

    def query(self, i: int, k: int = DEFAULT_K) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
        """Sample ``i``'s ``k`` nearest other samples, nearest first.

        Parameters
        ----------
        i : int
            A sample position in ``[0, n_samples)``.
        k : int, default 10
            At most :attr:`n_neighbors`.

        Returns
        -------
        indices : ndarray of shape (k,), int32
        similarities : ndarray of shape (k,), float32
            Cosine similarities, non-increasing.

        Examples
        --------
        >>> index = neighbour_index([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], n_neighbors=2,
        ...                         cache=False)
        >>> index.query(0, 1)[0].tolist()
        [1]
        """
        i = v.check_int(i, "i", minimum=0, maximum=self.n_samples - 1)
        k = self.check_k(k)
        return self.indices[i, :k].copy(), self.similarities[i, :k].copy()


def _check_progress(progress: object) -> Progress | None:
    if progress is not None and not callable(progress):
        raise TypeError(f"`progress` must be a callable taking the fraction done (a float in "
                        f"[0, 1]) or None; got {type(progress).__name__}.")
    return progress


def features_of(source: object, name: str = "predictions") -> NDArray[np.floating]:
    """The checked (n_samples, n_features) features of a Predictions or of an array.

    float16, float32 and float64 arrays (memory maps too) are checked a row chunk at a time
    and returned as they are; other real arrays become float64.
    """
    if isinstance(source, Predictions):
        if source.features is None:
            raise ValueError(f"`{name}` must hold features (penultimate activations); got "
                             "features=None. Build it with `features=` or from a model with a "
                             "feature layer.")
        arr = v.as_array(source.features, f"{name}.features")
    else:
        arr = v.as_array(source, name)  # type: ignore[arg-type]
    if arr.ndim != 2:
        raise ValueError(f"`{name}` must have shape (n_samples, n_features); got {arr.shape}.")
    if arr.shape[0] < 2 or arr.shape[1] < 1:
        raise ValueError(f"`{name}` must have at least 2 samples and 1 feature; got {arr.shape}.")
    if arr.dtype in (np.float16, np.float32, np.float64):
        if n_bad := v.count_nonfinite(arr):
            raise ValueError(f"`{name}` must be finite; got {n_bad} NaN or inf values.")
        return arr
    return v.check_finite_float(arr, name, ndim=2, shape_hint="(n_samples, n_features)")


def normalised(features: NDArray[np.floating]) -> NDArray[np.float32]:
    """Rows scaled to unit L2 norm, float32, a row chunk at a time; zero rows stay zero.

    A new (n_samples, n_features) float32 array: the one copy the index needs.
    """
    n, d = features.shape
    out = np.empty(features.shape, dtype=np.float32)
    step = max(1, _CHUNK_ENTRIES // max(d, 1))
    for start in range(0, n, step):
        block = np.asarray(features[start:start + step], dtype=np.float32)
        norm = np.sqrt(np.einsum("ij,ij->i", block, block, dtype=np.float64))
        out[start:start + step] = block / np.where(norm > 0, norm, 1.0).astype(np.float32)[:, None]
    return out


def _drop_self(ind: NDArray, sim: NDArray, rows: NDArray[np.intp], k: int
               ) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
    """The first ``k`` entries of each row that are not the row's own sample (given ``k + 1``)."""
    is_self = ind == rows[:, None]
    # where a row lacks itself (ties, or an approximate search), drop its last entry instead
    missing = ~is_self.any(axis=1)
    is_self[missing, -1] = True
    keep = ~is_self
    return (ind[keep].reshape(len(rows), k).astype(np.int32),
            sim[keep].reshape(len(rows), k).astype(np.float32))


def _exact_rows(x: NDArray[np.float32], rows: slice | NDArray[np.intp], kk: int
                ) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
    """The ``kk`` largest dot products of unit rows ``x[rows]`` with all rows of ``x``, largest
    first: column blocks of about :data:`_BLOCK_ENTRIES` similarities, a running top-k."""
    n = x.shape[0]
    q = x[rows]
    cols_per = max(kk, _BLOCK_ENTRIES // max(1, len(q)))
    best_s = np.full((len(q), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(q), 0), dtype=np.intp)
    for c0 in range(0, n, cols_per):
        s = q @ x[c0:c0 + cols_per].T
        take = min(kk, s.shape[1])
        top = np.argpartition(s, s.shape[1] - take, axis=1)[:, -take:]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, top, axis=1)], axis=1)
        cand_i = np.concatenate([best_i, top + c0], axis=1)
        # ties broken by the lower index, as a stable sort of all columns would
        order = np.lexsort((cand_i, -cand_s), axis=1)[:, :kk]
        best_s = np.take_along_axis(cand_s, order, axis=1)
        best_i = np.take_along_axis(cand_i, order, axis=1)
    return best_i, best_s


def _exact_graph(x: NDArray[np.float32], k: int, report: Progress) -> tuple[NDArray, NDArray]:
    """Exact k nearest other rows of unit rows ``x`` by dot product (:func:`_exact_rows`)."""
    n = x.shape[0]
    rows_per = max(1, min(4096, _BLOCK_ENTRIES // n))
    ind_out = np.empty((n, k), dtype=np.int32)
    sim_out = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, rows_per):
        rows = np.arange(start, min(start + rows_per, n))
        ind, sim = _exact_rows(x, slice(start, start + rows_per), k + 1)
        ind_out[rows], sim_out[rows] = _drop_self(ind, sim, rows, k)
        report((start + len(rows)) / n)
    return ind_out, sim_out


def _nndescent_graph(x: NDArray[np.float32], k: int, seed: int | None,
                     report: Progress) -> tuple[NDArray, NDArray]:
    """Approximate k nearest other rows of unit rows ``x`` with pynndescent's NNDescent."""
    from pynndescent import NNDescent

    report(0.01)
    # a wider graph than kept: recall@20 of 0.89 with 21 neighbours, 0.97 with 31 and 0.99 with
    # 41 (50k x 64 clustered Gaussians), for 25% more time than 21
    nnd = NNDescent(x, metric="euclidean", n_neighbors=min(_BUILD_WIDTH * k + 1, len(x)),
                    n_trees=_N_TREES, random_state=seed, low_memory=True, compressed=True,
                    verbose=False)
    ind, dist = nnd.neighbor_graph
    report(0.95)
    sim = 1.0 - np.asarray(dist, dtype=np.float64) ** 2 / 2.0
    # NNDescent sorts by distance; recompute the order on the rounded similarities to be safe
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k + 1]
    ind = np.take_along_axis(ind, order, axis=1)
    sim = np.take_along_axis(sim, order, axis=1)
    # NNDescent marks the neighbours it did not find with -1: search those rows exactly
    short = np.flatnonzero((ind < 0).any(axis=1))
    for start in range(0, len(short), 1024):
        rows = short[start:start + 1024]
        ind[rows], sim[rows] = _exact_rows(x, rows, k + 1)
    return _drop_self(ind, sim, np.arange(len(x)), k)


def features_digest(features: NDArray) -> str:
    """sha256 of ``features``, dtype and shape included, a row chunk at a time: the cache key."""
    h = hashlib.sha256()
    step = max(1, _CHUNK_ENTRIES // max(features.shape[1], 1))
    for start in range(0, features.shape[0], step):
        h.update(np.ascontiguousarray(features[start:start + step]).data.cast("B"))
    h.update(f"{features.dtype.str}{features.shape}".encode())
    return h.hexdigest()


def _resolve(method: str, n: int) -> str:
    if method == "auto":
        return "exact" if n < EXACT_BELOW else "nndescent"
    return method


def neighbour_index(
    predictions: Predictions | ArrayLike,
    *,
    n_neighbors: int | None = None,
    method: Method = "auto",
    random_state: int | None = 0,
    cache: bool = True,
    progress: Progress | None = None,
) -> NeighbourIndex:
    """Every sample's ``n_neighbors`` nearest other samples, by cosine similarity of the features.

    Parameters
    ----------
    predictions : Predictions or array-like of shape (n_samples, n_features)
        A Predictions with features, or the features themselves (memory maps are read a chunk
        at a time; one float32 normalised copy is made).
    n_neighbors : int or None
        Neighbours kept per sample (the largest ``k`` queries and scores can use), less than
        ``n_samples``; None: 20 (:data:`DEFAULT_NEIGHBORS`), or ``n_samples - 1`` if fewer.
    method : {"auto", "exact", "nndescent"}, default "auto"
        ``"exact"``: blocked matrix products; ``"nndescent"``: pynndescent (approximate);
        ``"auto"``: exact below :data:`EXACT_BELOW` samples.
    random_state : int or None, default 0
        NNDescent's seed. ``None`` is not cached (its graph is not reproducible).
    cache : bool, default True
        Keep the graph on disk (namespace ``"neighbours"``), keyed by a sha256 of the feature
        bytes, the method and ``n_neighbors``.
    progress : callable or None
        Called with the fraction done (a float in [0, 1], 0 first and 1 last) from the thread
        that computes.

    Returns
    -------
    NeighbourIndex

    Examples
    --------
    >>> index = neighbour_index([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]],
    ...                         n_neighbors=1, cache=False)
    >>> index.indices[:, 0].tolist()
    [1, 0, 3, 2]
    """
    name = "predictions" if isinstance(predictions, Predictions) else "features"
    feats = features_of(predictions, name)
    n = feats.shape[0]
    v.check_option(method, "method", METHODS)
    if n_neighbors is None:
        n_neighbors = min(DEFAULT_NEIGHBORS, n - 1)
    n_neighbors = v.check_int(n_neighbors, "n_neighbors", minimum=1)
    if n_neighbors >= n:
        raise ValueError(f"`n_neighbors` must be less than the number of samples ({n}); got "
                         f"{n_neighbors}.")
    if random_state is not None:
        random_state = v.check_int(random_state, "random_state", minimum=0)
    cache = v.check_bool(cache, "cache")
    progress = _check_progress(progress)
    resolved = _resolve(method, n)
    done = [0.0]

    def report(fraction: float) -> None:
        done[0] = min(max(float(fraction), done[0]), 1.0)
        if progress is not None:
            progress(done[0])

    def build() -> dict[str, np.ndarray]:
        x = normalised(feats)
        report(0.02)
        if resolved == "exact":
            ind, sim = _exact_graph(x, n_neighbors, lambda f: report(0.02 + 0.98 * f))
        else:
            ind, sim = _nndescent_graph(x, n_neighbors, random_state, report)
        return {"indices": ind, "similarities": sim}

    report(0.0)
    if cache and (resolved == "exact" or random_state is not None):
        library = (f"pynndescent {metadata.version('pynndescent')}" if resolved == "nndescent"
                   else "exact")
        key = cache_key(features=features_digest(feats), method=resolved, n_neighbors=n_neighbors,
                        random_state=random_state if resolved == "nndescent" else None,
                        version=_CACHE_VERSION, library=library)
        arrays = cached_arrays("neighbours", key, build, required=("indices", "similarities"))
    else:
        arrays = build()
    report(1.0)
    return NeighbourIndex(indices=np.asarray(arrays["indices"], dtype=np.int32),
                          similarities=np.asarray(arrays["similarities"], dtype=np.float32),
                          method=resolved)


# ----- per-sample scores ------------------------------------------------------------------------
def _check_index(index: object, n: int) -> NeighbourIndex:
    if not isinstance(index, NeighbourIndex):
        raise TypeError(f"`index` must be a NeighbourIndex (from neighbour_index); got "
                        f"{type(index).__name__}.")
    if index.n_samples != n:
        raise ValueError(f"`index` must index the same samples; got an index of "
                         f"{index.n_samples} samples for {n} samples.")
    return index


def _neighbour_mean(values: NDArray, index: NeighbourIndex, k: int) -> NDArray[np.float64]:
    """Mean of ``values`` over each sample's first ``k`` neighbours, a row chunk at a time."""
    out = np.empty(index.n_samples)
    for start in range(0, index.n_samples, _CHUNK):
        nb = index.indices[start:start + _CHUNK, :k]
        out[start:start + _CHUNK] = values[nb].mean(axis=1, dtype=np.float64)
    return out


def label_disagreement(
    predictions: Predictions | None,
    index: NeighbourIndex,
    *,
    k: int = DEFAULT_K,
    y_given: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """The share of each sample's ``k`` neighbours whose given label differs from its own.

    ``d_i = (1 / k) sum_{j in N_k(i)} [y_given_j != y_given_i]``, the sample itself excluded.

    Parameters
    ----------
    predictions : Predictions or None
        Its ``y_given`` is read; or None with ``y_given``.
    index : NeighbourIndex
        Of the same samples, with ``n_neighbors >= k``.
    k : int, default 10
    y_given : array-like of shape (n_samples,), optional
        The given labels, in place of ``predictions``.

    Returns
    -------
    ndarray of shape (n_samples,)
        In [0, 1], multiples of ``1 / k``.

    Examples
    --------
    >>> index = neighbour_index([[1.0, 0.0], [0.9, 0.1], [0.8, 0.2]], n_neighbors=2, cache=False)
    >>> label_disagreement(None, index, k=2, y_given=[0, 0, 1]).tolist()
    [0.5, 0.5, 1.0]
    """
    given = arrays_given(predictions, "predictions", {"y_given": y_given})
    y = (as_predictions(predictions).y_given if given is None
         else v.check_labels(given[0], "y_given"))
    index = _check_index(index, len(y))
    k = index.check_k(k)
    out = np.empty(index.n_samples)
    for start in range(0, index.n_samples, _CHUNK):
        nb = index.indices[start:start + _CHUNK, :k]
        own = y[start:start + _CHUNK, None]
        out[start:start + _CHUNK] = (y[nb] != own).mean(axis=1)
    return out


def local_calibration_gap(
    predictions: Predictions | None,
    index: NeighbourIndex,
    *,
    k: int = DEFAULT_K,
    confidence: ArrayLike | None = None,
    correct: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Mean confidence minus accuracy among each sample's ``k`` neighbours (itself excluded).

    ``g_i = (1 / k) sum_{j in N_k(i)} (conf_j - [y_pred_j == y_true_j])``: positive where the
    model is over-confident around sample ``i``, negative where it is under-confident.

    Parameters
    ----------
    predictions : Predictions or None
        Its ``confidence`` and ``correct`` are read; or None with both arrays.
    index : NeighbourIndex
        Of the same samples, with ``n_neighbors >= k``.
    k : int, default 10
    confidence : array-like of shape (n_samples,), optional
        Top-label probabilities in [0, 1].
    correct : array-like of shape (n_samples,), optional
        Whether each prediction is right (bool or 0/1).

    Returns
    -------
    ndarray of shape (n_samples,)
        In [-1, 1].

    Examples
    --------
    >>> index = neighbour_index([[1.0, 0.0], [0.9, 0.1], [0.8, 0.2]], n_neighbors=2, cache=False)
    >>> local_calibration_gap(None, index, k=2, confidence=[0.9, 0.8, 0.6],
    ...                       correct=[True, False, True]).round(3).tolist()
    [0.2, -0.25, 0.35]
    """
    given = arrays_given(predictions, "predictions", {"confidence": confidence,
                                                      "correct": correct})
    if given is None:
        p = as_predictions(predictions)
        conf, hit = p.confidence, p.correct
    else:
        conf = v.check_finite_float(given[0], "confidence", ndim=1, shape_hint="(n_samples,)")
        if conf.size and (conf.min() < 0 or conf.max() > 1):
            raise ValueError(f"`confidence` must lie in [0, 1]; got values in "
                             f"[{conf.min():g}, {conf.max():g}].")
        hit_arr = v.as_array(given[1], "correct")
        if hit_arr.ndim != 1 or not (hit_arr.dtype == bool or np.isin(hit_arr, (0, 1)).all()):
            raise ValueError(f"`correct` must be a (n_samples,) array of bools or 0/1; got "
                             f"{v.describe(hit_arr)}.")
        v.check_same_length(confidence=conf, correct=hit_arr)
        hit = hit_arr.astype(bool)
    index = _check_index(index, len(conf))
    k = index.check_k(k)
    return _neighbour_mean(conf, index, k) - _neighbour_mean(hit, index, k)
