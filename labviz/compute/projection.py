"""2-D projections of penultimate features: PCA, UMAP and t-SNE, as tidy frames, cached on disk.

:func:`project` maps a feature matrix to 2-D. :func:`projection_frame` does it for a
:class:`labviz.Predictions` and returns one row per sample with the labels, predictions and
confidence a scatter plot needs; UMAP and t-SNE take tens of seconds on large sets, so results are
cached on disk (see :mod:`labviz.core.cache`), keyed by a sha256 of the feature bytes and the method's
parameters. :func:`aligned_projections` puts two sets of predictions (two models, or one model on
two splits) on the same axes so they can be compared side by side.

Large sets (measured on 2 shared cores; synthetic float32 features, 64-D, 10 Gaussian clusters;
``benchmarks/bench_projection_scale.py``):

* PCA below :data:`PCA_STREAM_FROM` entries is scikit-learn's ``PCA`` on the features as they
  are: float32 features are not copied to float64, and for tall data scikit-learn's solver works
  from the covariance matrix ("covariance_eigh"). Larger, memory-mapped or float16 features are
  streamed (:func:`_streamed_pca`: a randomized subspace iteration reading a 16 MB row block at
  a time, in float32 products summed in float64), so a 1.28M x 2,048 memory map (10.5 GB) is
  projected holding two blocks and the (n, 2) result; its coordinates are the float64 PCA's
  within 1e-6 of their range (measured on ReLU features; the tests hold 1e-4).
  Neither copies float32 features to float64: at 1M x 64, 0.2 s and +8 MB against 0.4 s and
  +550 MB with a float64 copy.
* UMAP above ``sample_size`` samples (default 20,000) is fitted on a seeded random sample; every
  other sample is placed at the inverse-distance weighted mean of the 2-D positions of its 10
  nearest sample points (pynndescent's index of the fit). 100k: 11 s against 51-70 s for a full
  UMAP; 1M: 20-27 s, +130 MB (a full UMAP: tens of minutes). The first UMAP of a process adds
  about 20 s of numba compilation. Quality, on 2,000 held-out samples: the fraction of 2-D 10-NN
  in the sample's own cluster is 0.9996 (full UMAP 1.0000) at 100k and 0.997 at 1M; on real CNN
  features (Fashion-MNIST, 25k, sample of 5k) 10-NN recall is 0.099 and same-class 0.82, against
  0.175 and 0.83 for a full UMAP. ``UMAP.transform`` in place of the kNN placement: no better
  (recall 0.075 on Fashion-MNIST, same-cluster 0.997 at 1M) and 6.5x slower (178 s against
  27 s at 1M). Samples of 10k take as long as 20k (UMAP gives up to 10k samples 500 epochs, not
  200); 50k take 60 s at 1M for same-cluster 0.999.
* Frames hold the class names as ``pandas.Categorical``: 1M rows in 60 MB, built in 0.1 s (0.8 s
  and 88 MB with pandas' string columns).

umap-learn is imported only when ``method="umap"`` is used; tqdm only for progress bars.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from labviz.core import _validation as v
from labviz.core._inputs import as_predictions
from labviz.core.cache import cache_key, cached_arrays
from labviz.core.predictions import Predictions

if TYPE_CHECKING:
    from tqdm.auto import tqdm

Method = Literal["pca", "umap", "tsne"]
Alignment = Literal["procrustes", "shared_pca"]
#: Called with the fraction done, a float in [0, 1], from the thread that computes.
Progress = Callable[[float], None]

METHODS: tuple[str, ...] = ("pca", "umap", "tsne")
ALIGNMENTS: tuple[str, ...] = ("procrustes", "shared_pca")
#: Columns of every projection frame, in order.
FRAME_COLUMNS: tuple[str, ...] = (
    "x", "y", "label", "label_name", "prediction", "prediction_name",
    "confidence", "correct", "flipped", "given", "id",
)
#: UMAP on more samples than this fits on a random sample of this size and places the rest.
DEFAULT_SAMPLE_SIZE = 20_000
#: Bump when the projection code changes in a way that makes old cache entries wrong.
#: 2: UMAP above ``sample_size`` samples is fitted on a sample (the key holds the sample size).
_CACHE_VERSION = 2
#: Procrustes needs a few common points to fix a rotation, a scale and a translation in 2-D.
_MIN_SHARED = 3
#: Rows per chunk when streaming features: a float64 chunk of 64 features is 32 MB.
_CHUNK = 65_536
#: Each placed point sits at the weighted mean of this many nearest sample points.
_PLACE_NEIGHBORS = 10
#: pynndescent's search slack for the placement queries (the value ``UMAP.transform`` uses).
_QUERY_EPSILON = 0.12
#: Fitting one sample point costs about as much as placing this many points (measured: a 20k
#: fit took 10 s and placing 980k points 16 s); it splits the progress between the two steps.
_FIT_COST = 30
#: UMAP fits on at least this many points show umap's epoch progress bar (they take seconds).
_BAR_MIN_SAMPLES = 10_000
#: From this many entries (n_samples x n_features), and for memory-mapped or float16 features
#: at any size, PCA reads the features a row block at a time (:func:`_streamed_pca`) rather than
#: handing the whole matrix to scikit-learn (whose randomized solver, for more than 1,000
#: features, centres a copy of it: 400 MB at 50,000 x 2,048).
PCA_STREAM_FROM = 1 << 24
#: Entries per row block of the streamed PCA: a float32 block of 2**22 entries is 16 MB.
_PCA_CHUNK_ENTRIES = 1 << 22
#: The streamed PCA's subspace: 2 components and 22 more. The passes are bound by reading the
#: features, so a wider subspace costs little and converges faster where the spectrum decays.
_PCA_BLOCK = 24
#: Passes of the streamed PCA's subspace iteration (scikit-learn's ``n_iter="auto"`` for 2
#: components). Measured against the float64 PCA's coordinates, as a fraction of their range:
#: 10,000 x 2,048 ReLU features, 4e-7 (scikit-learn's randomized solver 3e-6); 3,000 x 48 ReLU
#: features whose third component has 0.3 of the second's variance over a flat noise floor,
#: 8e-7 (4 passes: 5e-4).
_PCA_ITERATIONS = 7
#: Below this many points umap-learn finds neighbours exactly, and so does the placement (building
#: a pynndescent index costs about 20 s of numba compilation in every new process).
_EXACT_BELOW = 4096


# ----- validation -------------------------------------------------------------------------------
def _check_features(features: ArrayLike) -> NDArray[np.floating]:
    """Features as a 2-D array of at least 2 x 2 finite reals.

    float16, float32 and float64 arrays are checked in place, a row chunk at a time, and
    returned as they are (a ``np.memmap`` stays one; a float64 copy of 1M x 64 float32 features
    would take 512 MB, of 1.28M x 2,048 ones 21 GB); any other real dtype becomes float64.
    """
    arr = v.as_array(features, "features")
    if arr.dtype in (np.float16, np.float32, np.float64) and arr.ndim == 2 and arr.size:
        # chunked: np.isfinite of the whole matrix would allocate one byte per entry
        if arr.dtype == np.float16 and arr.dtype.isnative and arr.flags.c_contiguous:
            # read as integers, in place: numpy's float16 isfinite is some 70 times slower
            v.check_stored_floats(arr, "features", ndim=2, shape_hint="(n_samples, n_features)",
                                  keep_float16=True)
        elif n_bad := v.count_nonfinite(arr):
            raise ValueError(f"`features` must be finite; got {n_bad} NaN or inf values.")
        x = arr
    else:
        x = v.check_finite_float(arr, "features", ndim=2, shape_hint="(n_samples, n_features)")
    if x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(
            f"`features` must have at least 2 samples (rows) and 2 features (columns); got {x.shape}."
        )
    return x


@dataclass(frozen=True)
class _Params:
    """The options of one projection; those its method uses are validated (see
    :func:`_check_params`), the others are kept as given and never read."""

    method: Method
    random_state: int | None
    n_neighbors: int
    min_dist: float
    n_epochs: int | None
    sample_size: int | None
    perplexity: float
    max_iter: int

    def key(self) -> dict[str, object]:
        """The options the method uses, by name: the parameter part of the cache key."""
        out: dict[str, object] = {"method": self.method, "random_state": self.random_state}
        if self.method == "umap":
            out.update(n_neighbors=self.n_neighbors, min_dist=self.min_dist,
                       n_epochs=self.n_epochs, sample_size=self.sample_size)
        elif self.method == "tsne":
            out.update(perplexity=self.perplexity, max_iter=self.max_iter)
        return out


def _check_params(
    method: Method, n_samples: int, *, random_state: int | None, n_neighbors: int,
    min_dist: float, n_epochs: int | None, sample_size: int | None, perplexity: float,
    max_iter: int,
) -> _Params:
    """Validate the options ``method`` uses.

    UMAP's ``sample_size`` comes back as the size of the sample actually fitted: ``None`` when
    every sample is fitted (``n_samples <= sample_size``), so that equal results share a key.
    """
    v.check_option(method, "method", METHODS)
    if random_state is not None:
        random_state = v.check_int(random_state, "random_state", minimum=0)
    if method == "umap":
        n_neighbors = v.check_int(n_neighbors, "n_neighbors", minimum=2)
        if n_neighbors >= n_samples:
            raise ValueError(
                f"`n_neighbors` must be less than the number of samples for method='umap'; "
                f"got n_neighbors={n_neighbors} with {n_samples} samples."
            )
        if isinstance(min_dist, bool) or not isinstance(min_dist, (int, float, np.number)):
            raise TypeError(f"`min_dist` must be a number; got {type(min_dist).__name__}.")
        if not 0 <= min_dist <= 1:
            raise ValueError(f"`min_dist` must be in [0, 1]; got {min_dist!r}.")
        if n_epochs is not None:
            n_epochs = v.check_int(n_epochs, "n_epochs", minimum=1)
        if sample_size is not None:
            sample_size = v.check_int(sample_size, "sample_size")
            if sample_size <= n_neighbors:
                raise ValueError(
                    f"`sample_size` must be greater than `n_neighbors` for method='umap' (the "
                    f"sample is fitted with that many neighbours); got sample_size={sample_size} "
                    f"with n_neighbors={n_neighbors}."
                )
            if sample_size >= n_samples:
                sample_size = None
        min_dist = float(min_dist)
    elif method == "tsne":
        if isinstance(perplexity, bool) or not isinstance(perplexity, (int, float, np.number)):
            raise TypeError(f"`perplexity` must be a number; got {type(perplexity).__name__}.")
        if not (np.isfinite(perplexity) and perplexity > 0):
            raise ValueError(f"`perplexity` must be a positive number; got {perplexity!r}.")
        if perplexity >= n_samples:
            raise ValueError(
                f"`perplexity` must be less than the number of samples for method='tsne'; "
                f"got perplexity={perplexity} with {n_samples} samples."
            )
        max_iter = v.check_int(max_iter, "max_iter", minimum=250)
        perplexity = float(perplexity)
    return _Params(method=method, random_state=random_state, n_neighbors=n_neighbors,
                   min_dist=min_dist, n_epochs=n_epochs, sample_size=sample_size,
                   perplexity=perplexity, max_iter=max_iter)


def _check_progress(progress: object) -> Progress | None:
    if progress is not None and not callable(progress):
        raise TypeError(f"`progress` must be a callable taking the fraction done (a float in "
                        f"[0, 1]) or None; got {type(progress).__name__}.")
    return progress


def _check_predictions(
    predictions: object, name: str = "predictions"
) -> tuple[Predictions, NDArray[np.float32]]:
    """The Predictions and its features (not yet checked: see :func:`_check_features`)."""
    p = as_predictions(predictions, name)
    if p.features is None:
        raise ValueError(
            f"`{name}` must hold features (penultimate activations) to be projected; "
            f"got features=None. Build it with `features=` or from a model with a feature layer."
        )
    return p, p.features


# ----- progress ---------------------------------------------------------------------------------
def _bars_disabled() -> bool:
    """tqdm's own switch, ``TQDM_DISABLE``: umap's epoch bar gets an explicit ``disable``, which
    tqdm would otherwise let win over the environment."""
    return os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")


class _Reporter:
    """Passes the fraction done to a callback and a tqdm bar; never goes back, never past 1."""

    def __init__(self, callback: Progress | None, bar: tqdm | None = None) -> None:
        self._callback, self._bar, self.done = callback, bar, 0.0

    def __call__(self, fraction: float) -> None:
        self.done = min(max(float(fraction), self.done), 1.0)
        if self._bar is not None:
            self._bar.update(round(100 * self.done) - self._bar.n)
        if self._callback is not None:
            self._callback(self.done)


@contextmanager
def _reporting(callback: Progress | None, *, desc: str | None = None) -> Iterator[_Reporter]:
    """A reporter that starts at 0 and ends at 1; with ``desc``, also a tqdm bar in percent."""
    bar = None
    if desc is not None:
        from tqdm.auto import tqdm  # lazy: tqdm.auto looks for a notebook front end

        bar = tqdm(total=100, desc=desc, unit="%", bar_format="{l_bar}{bar}| [{elapsed}<{remaining}]")
    report = _Reporter(callback, bar)
    try:
        report(0.0)
        yield report
        report(1.0)
    finally:
        if bar is not None:
            bar.close()


# ----- projection -------------------------------------------------------------------------------
def _chunks(n: int) -> range:
    return range(0, n, _CHUNK)


def _sample_indices(n_samples: int, sample_size: int, seed: int | None) -> NDArray[np.intp]:
    """The sorted rows UMAP is fitted on: a uniform random sample without replacement."""
    return np.sort(np.random.default_rng(seed).choice(n_samples, sample_size, replace=False))


def _pca_streams(x: NDArray[np.floating]) -> bool:
    """Whether PCA streams ``x`` (:func:`_streamed_pca`) rather than calling scikit-learn's PCA
    on the whole matrix: memory-mapped or float16 features, and from
    :data:`PCA_STREAM_FROM` entries."""
    return isinstance(x, np.memmap) or x.dtype == np.float16 or x.size >= PCA_STREAM_FROM


def _row_blocks(n: int, d: int) -> Iterator[slice]:
    step = max(1, _PCA_CHUNK_ENTRIES // d)
    return (slice(i, min(i + step, n)) for i in range(0, n, step))


def _streamed_pca(x: NDArray[np.floating], seed: int | None,
                  report: _Reporter | None = None) -> NDArray[np.float64]:
    """The two leading principal components' coordinates of ``x``, reading it a row block at a
    time (a memory map is never read whole, nor copied).

    A randomized subspace iteration (Halko, Martinsson and Tropp 2011, Alg. 4.4, the method of
    scikit-learn's ``randomized_svd``) on the centred features, :data:`_PCA_BLOCK` columns wide
    and :data:`_PCA_ITERATIONS` passes, then a Rayleigh-Ritz step; each pass multiplies a block
    of centred float32 rows by a (n_features, 24) matrix and adds the products up in float64.
    One more pass takes the mean, one the coordinates.
    The mean is subtracted in float32 block by block, so the features' offset (non-negative
    ReLU features sit far from 0) costs no precision. Signs follow scikit-learn's ``PCA`` (the
    largest entry of each component positive). Memory: two float32 blocks of
    :data:`_PCA_CHUNK_ENTRIES` entries and the (n_samples, 2) result.
    """
    n, d = x.shape
    blocks = list(_row_blocks(n, d))
    width = min(_PCA_BLOCK, d, n)
    passes = _PCA_ITERATIONS + 2
    done = [0]

    def step() -> None:
        done[0] += 1
        if report is not None:
            report(done[0] / passes)

    total = np.zeros(d)
    for rows in blocks:
        total += np.asarray(x[rows], dtype=np.float32).sum(axis=0, dtype=np.float64)
    mean = total / n
    mean32 = mean.astype(np.float32)
    step()

    # one block's buffer, reused: a fresh 16 MB array per block costs its page faults each time
    buffer = np.empty((blocks[0].stop - blocks[0].start, d), dtype=np.float32)

    def centred(rows: slice) -> NDArray[np.float32]:
        return np.subtract(x[rows], mean32, out=buffer[:rows.stop - rows.start],
                           dtype=np.float32, casting="same_kind")

    z: NDArray[np.float64] = np.random.default_rng(seed).standard_normal((d, width))
    for _ in range(_PCA_ITERATIONS):
        q = np.linalg.qr(z)[0]
        q32, z = q.astype(np.float32), np.zeros((d, width))
        for rows in blocks:
            a = centred(rows)
            z += a.T @ (a @ q32)  # (A^T A) q, a block of rows at a time
        step()
    # Rayleigh-Ritz: the leading eigenvectors of q^T A^T A q, from the last pass's products
    ritz = q.T @ z
    _, vecs = np.linalg.eigh((ritz + ritz.T) / 2)
    components = (q @ vecs[:, ::-1][:, :2]).T  # (2, n_features)
    biggest = np.abs(components).argmax(axis=1)
    components *= np.sign(components[np.arange(2), biggest])[:, None]
    basis = np.ascontiguousarray(components.T, dtype=np.float32)
    emb = np.empty((n, 2))
    for rows in blocks:
        emb[rows] = centred(rows) @ basis
    step()
    return emb


def _umap(x: NDArray[np.floating], params: _Params, report: _Reporter) -> NDArray:
    import umap  # lazy: importing umap-learn compiles numba code and takes seconds

    seed, sample_size = params.random_state, params.sample_size
    # a seeded UMAP is only reproducible single-threaded (umap warns otherwise)
    n_jobs = 1 if seed is not None else -1
    n_fit = len(x) if sample_size is None else sample_size

    def reducer(**extra: object) -> umap.UMAP:
        return umap.UMAP(
            n_components=2, n_neighbors=params.n_neighbors, min_dist=params.min_dist,
            n_epochs=params.n_epochs, random_state=seed, n_jobs=n_jobs,
            tqdm_kwds={"disable": n_fit < _BAR_MIN_SAMPLES or _bars_disabled(), "leave": False},
            **extra,
        )

    if sample_size is None:
        return reducer().fit_transform(x)

    n = len(x)
    fit_share = sample_size * _FIT_COST / (sample_size * _FIT_COST + n - sample_size)
    sample = _sample_indices(n, sample_size, seed)
    fitted = np.ascontiguousarray(x[sample], dtype=np.float32)
    k = min(_PLACE_NEIGHBORS, sample_size)
    if sample_size < _EXACT_BELOW:
        from sklearn.neighbors import NearestNeighbors

        anchors = reducer().fit(fitted).embedding_
        exact = NearestNeighbors(n_neighbors=k).fit(fitted)

        def nearest(rows: NDArray[np.float32]) -> tuple[NDArray, NDArray]:
            dist, ind = exact.kneighbors(rows)
            return ind, dist
    else:
        from sklearn.utils import check_random_state
        from umap.umap_ import nearest_neighbors

        # the sample's neighbour graph, computed here as UMAP would, so that its search index
        # is ours to place the other points with
        knn = nearest_neighbors(fitted, params.n_neighbors, "euclidean", {}, False,
                                check_random_state(seed), low_memory=True,
                                use_pynndescent=True, n_jobs=n_jobs)
        report(0.1 * fit_share)  # measured: the graph takes about a tenth of the fit
        anchors = reducer(precomputed_knn=knn).fit(fitted).embedding_

        def nearest(rows: NDArray[np.float32]) -> tuple[NDArray, NDArray]:
            return knn[2].query(rows, k=k, epsilon=_QUERY_EPSILON)
    report(fit_share)
    anchors = anchors.astype(np.float64)
    emb = np.empty((n, 2))
    emb[sample] = anchors
    rest = np.setdiff1d(np.arange(n), sample, assume_unique=True)
    for i in _chunks(len(rest)):
        rows = rest[i:i + _CHUNK]
        ind, dist = nearest(np.ascontiguousarray(x[rows], dtype=np.float32))
        # inverse-distance weights; a copy of a sample point lands on it
        w = 1.0 / np.maximum(dist.astype(np.float64), 1e-12)
        w /= w.sum(axis=1, keepdims=True)
        emb[rows] = np.einsum("ik,ikj->ij", w, anchors[ind])
        report(fit_share + (1 - fit_share) * min(i + _CHUNK, len(rest)) / len(rest))
    return emb


def _run(x: NDArray[np.floating], params: _Params,
         progress: Progress | None = None) -> NDArray[np.float64]:
    """Project validated features with validated parameters."""
    method, seed = params.method, params.random_state
    sampled = method == "umap" and params.sample_size is not None
    desc = (f"UMAP: fit {params.sample_size:,} of {len(x):,} samples, place the rest"
            if sampled else None)
    with _reporting(progress, desc=desc) as report:
        if method == "pca" and _pca_streams(x):
            emb = _streamed_pca(x, seed, report)
        elif method == "pca":
            from sklearn.decomposition import PCA

            # float32 features stay float32: for tall data scikit-learn takes the covariance
            # route ("covariance_eigh"), which needs no copy of them
            emb = PCA(n_components=2, random_state=seed).fit_transform(x)
        elif method == "tsne":
            from sklearn.manifold import TSNE

            emb = TSNE(
                n_components=2, perplexity=params.perplexity, max_iter=params.max_iter,
                init="pca", learning_rate="auto", random_state=seed,
            ).fit_transform(x.astype(np.float64, copy=False))  # float32 and float64 features agree
        else:
            emb = _umap(x, params, report)
    return np.asarray(emb, dtype=np.float64)


def project(
    features: ArrayLike,
    *,
    method: Method = "pca",
    random_state: int | None = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    n_epochs: int | None = None,
    sample_size: int | None = DEFAULT_SAMPLE_SIZE,
    perplexity: float = 30.0,
    max_iter: int = 1000,
    progress: Progress | None = None,
) -> NDArray[np.float64]:
    """Project features to 2-D with PCA, UMAP or t-SNE.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        At least 2 samples and 2 features, all finite. float32 features are read in place (PCA
        then computes in float32; the result is float64).
    method : {"pca", "umap", "tsne"}
        ``"pca"``: the two leading principal components, as scikit-learn's ``PCA`` (linear and
        fast: 1M x 64 in about a second). ``"umap"``: umap-learn ``UMAP`` (imported on first
        use). ``"tsne"``: scikit-learn ``TSNE`` (Barnes-Hut, PCA initialisation).
    random_state : int or None
        Seed; the output is deterministic for a given seed. With ``None``, UMAP runs in parallel
        and is not reproducible.
    n_neighbors, min_dist, n_epochs : UMAP only
        ``n_neighbors`` must be less than ``n_samples``; ``min_dist`` in [0, 1]; ``n_epochs=None``
        lets UMAP choose (200 for large sets, 500 for small ones).
    sample_size : int or None, default 20000; UMAP only
        With more samples than this, UMAP is fitted on a random sample of ``sample_size`` of them
        (drawn with ``random_state``) and every other sample is placed at the inverse-distance
        weighted mean of the 2-D positions of its 10 nearest sample points (found with the
        pynndescent index of the fit, or exactly for samples under 4096). 1M samples take about
        30 s on 2 cores. ``None`` fits all samples (70 s at 100k; tens of minutes at 1M). Must
        be greater than ``n_neighbors``.
    perplexity, max_iter : t-SNE only
        ``perplexity`` must be less than ``n_samples``; ``max_iter`` at least 250.
    progress : callable or None
        Called with the fraction done (a float in [0, 1], non-decreasing, 0 first and 1 last)
        from the thread that computes, e.g. to drive a widget's progress bar. A sampled UMAP also
        shows a tqdm bar, and UMAP fits of 10,000 samples or more umap's bar of epochs
        (``TQDM_DISABLE=1`` hides both).

    Returns
    -------
    ndarray of shape (n_samples, 2)

    Examples
    --------
    >>> X = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [2.0, 1.0, 0.0]])
    >>> np.abs(project(X)).round(6).tolist()
    [[1.0, 0.5], [1.0, 0.5], [1.0, 0.5], [1.0, 0.5]]
    """
    x = _check_features(features)
    params = _check_params(
        method, x.shape[0], random_state=random_state, n_neighbors=n_neighbors,
        min_dist=min_dist, n_epochs=n_epochs, sample_size=sample_size, perplexity=perplexity,
        max_iter=max_iter,
    )
    return _run(x, params, _check_progress(progress))


def _features_digest(features: NDArray) -> str:
    arr = np.ascontiguousarray(features)
    h = hashlib.sha256(arr.data.cast("B"))
    h.update(f"{arr.dtype.str}{arr.shape}".encode())
    return h.hexdigest()


def _library_version(method: str) -> str:
    if method == "umap":  # the sampled path places points with pynndescent's index
        return f"umap-learn {metadata.version('umap-learn')}, " \
               f"pynndescent {metadata.version('pynndescent')}"
    return metadata.version("scikit-learn")


def _names_column(names: tuple[str, ...], classes: NDArray[np.integer]) -> pd.Categorical:
    """``names[classes]`` as a Categorical: one byte per row where an object column holds a
    string (1M rows: 1 MB against about 60 MB)."""
    categories = pd.Index(pd.unique(np.asarray(names, dtype=object)))  # repeated names: once
    codes = categories.get_indexer(list(names))
    return pd.Categorical.from_codes(codes[classes], categories=categories)


def _frame(predictions: Predictions, emb: NDArray[np.float64]) -> pd.DataFrame:
    names = tuple(predictions.class_names)
    y, pred = predictions.y_true, predictions.y_pred.astype(np.int64)
    frame = pd.DataFrame({
        "x": emb[:, 0], "y": emb[:, 1],
        "label": y, "label_name": _names_column(names, y),
        "prediction": pred, "prediction_name": _names_column(names, pred),
        "confidence": predictions.confidence.astype(np.float64),
        "correct": predictions.correct, "flipped": predictions.flipped,
        "given": predictions.y_given, "id": predictions.ids,
    }, columns=list(FRAME_COLUMNS))
    frame.attrs = {"name": predictions.name, "class_names": names}
    return frame


def projection_frame(
    predictions: Predictions,
    *,
    method: Method = "pca",
    random_state: int | None = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    n_epochs: int | None = None,
    sample_size: int | None = DEFAULT_SAMPLE_SIZE,
    perplexity: float = 30.0,
    max_iter: int = 1000,
    cache: bool = True,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Project ``predictions.features`` to 2-D; one row per sample, ready to scatter.

    Parameters
    ----------
    predictions : Predictions
        Must hold ``features``.
    method, random_state, n_neighbors, min_dist, n_epochs, sample_size, perplexity, max_iter
        As in :func:`project`.
    cache : bool
        Reuse (and store) the projection in the on-disk cache, namespace ``"projections"``. The key
        is the sha256 of the feature bytes, their shape and dtype, the method's parameters (for
        UMAP, the size of the sample fitted) and the version of the library that computes it, so
        identical features are never projected twice and any change of data or parameters
        misses. ``random_state=None`` is never cached.
    progress : callable or None
        As in :func:`project`; a cached projection reports 0 and then 1.

    Returns
    -------
    pandas.DataFrame
        One row per sample, columns ``x, y`` (float), ``label`` (true class, int),
        ``label_name`` (categorical of str), ``prediction`` (int), ``prediction_name``
        (categorical of str), ``confidence`` (top-label probability), ``correct``, ``flipped``
        (bool; given label != true label), ``given`` (the given label, int) and ``id``.
        ``frame.attrs`` holds ``method``, ``name`` and ``class_names``.

    Examples
    --------
    >>> p = Predictions.from_arrays(
    ...     y_true=[0, 1, 1], logits=[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]],
    ...     features=[[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    >>> projection_frame(p, cache=False)[["label", "prediction", "correct", "id"]].values.tolist()
    [[0, 0, True, 0], [1, 1, True, 1], [1, 0, False, 2]]
    """
    predictions, feats = _check_predictions(predictions)
    if not isinstance(cache, (bool, np.bool_)):
        raise TypeError(f"`cache` must be a bool; got {type(cache).__name__}.")
    _check_features(feats)
    params = _check_params(
        method, feats.shape[0], random_state=random_state, n_neighbors=n_neighbors,
        min_dist=min_dist, n_epochs=n_epochs, sample_size=sample_size, perplexity=perplexity,
        max_iter=max_iter,
    )
    progress = _check_progress(progress)
    computed = []

    def build() -> dict[str, np.ndarray]:
        computed.append(True)
        # through the module-level name, so tests can count calls to `project`
        return {"embedding": project(
            feats, method=method, random_state=random_state, n_neighbors=params.n_neighbors,
            min_dist=params.min_dist, n_epochs=params.n_epochs, sample_size=params.sample_size,
            perplexity=params.perplexity, max_iter=params.max_iter, progress=progress)}

    if cache and random_state is not None:
        key = cache_key(
            features=_features_digest(feats), version=_CACHE_VERSION,
            library=_library_version(method), **params.key(),
        )
        emb = cached_arrays("projections", key, build, required=("embedding",))["embedding"]
    else:
        emb = build()["embedding"]
    if progress is not None and not computed:
        progress(0.0)
        progress(1.0)
    frame = _frame(predictions, np.asarray(emb, dtype=np.float64))
    frame.attrs["method"] = method
    return frame


# ----- alignment --------------------------------------------------------------------------------
def _fit_similarity(
    source: NDArray[np.float64], target: NDArray[np.float64]
) -> tuple[NDArray[np.float64], float, NDArray[np.float64]]:
    """Rotation (or reflection) ``R``, scale ``s`` and shift ``t`` minimising
    ``||s * source @ R + t - target||_F`` (orthogonal Procrustes on centred points).

    Returns ``(R, s, t)``; apply as ``s * points @ R + t``. ``R`` is scipy's
    ``orthogonal_procrustes`` (one SVD of the 2 x 2 cross-covariance, the same as its code; the
    tests compare the two), done with numpy so that the explorer needs no scipy in a visitor's
    kernel.
    """
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    s0, t0 = source - mu_s, target - mu_t
    u, sv, vt = np.linalg.svd(s0.T @ t0)
    rot, sv_sum = u @ vt, sv.sum()
    norm2 = float((s0**2).sum())
    # optimal scale given R: trace(R^T S^T T) / ||S||^2 = (sum of singular values) / ||S||^2
    scale = float(sv_sum) / norm2 if norm2 > 0 else 1.0
    return rot, scale, mu_t - scale * mu_s @ rot


def aligned_projections(
    predictions_a: Predictions,
    predictions_b: Predictions,
    *,
    method: Method = "pca",
    alignment: Alignment = "procrustes",
    random_state: int | None = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    n_epochs: int | None = None,
    sample_size: int | None = DEFAULT_SAMPLE_SIZE,
    perplexity: float = 30.0,
    max_iter: int = 1000,
    cache: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Projections of two sets of predictions on the same 2-D axes.

    Parameters
    ----------
    predictions_a, predictions_b : Predictions
        Both must hold ``features``.
    method, random_state, n_neighbors, min_dist, n_epochs, sample_size, perplexity, max_iter, cache
        As in :func:`projection_frame`.
    alignment : {"procrustes", "shared_pca"}
        ``"procrustes"``: project each set on its own (with ``method``), then map b's points onto
        a's with the similarity transform (rotation or reflection, uniform scale, translation)
        that best fits the samples **whose ids occur in both sets** (at least 3), in the least
        squares sense (``scipy.linalg.orthogonal_procrustes`` on centred points; scale
        ``s = sum(singular values) / ||B_c||_F^2``). The transform is then applied to every sample
        of b. The feature dimensions may differ (e.g. two architectures). a is left unchanged.
        ``"shared_pca"``: one PCA fitted on the features of **all samples of both sets** stacked,
        then used to project each; needs ``method="pca"`` and the same number of features, not
        shared ids (e.g. one model on its train and test splits). Not cached (a PCA is fast).

    Returns
    -------
    (frame_a, frame_b) : tuple of pandas.DataFrame
        Each as returned by :func:`projection_frame`, with ``attrs["alignment"]`` set.

    Examples
    --------
    >>> feats = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [1.0, 3.0]])
    >>> pa = Predictions.from_arrays(y_true=[0, 1, 0, 1], logits=np.eye(2)[[0, 1, 0, 1]],
    ...                              features=feats)
    >>> pb = Predictions.from_arrays(y_true=[0, 1, 0, 1], logits=np.eye(2)[[0, 1, 0, 1]],
    ...                              features=5 - 3 * feats)
    >>> a, b = aligned_projections(pa, pb, cache=False)
    >>> bool(np.allclose(a[["x", "y"]], b[["x", "y"]]))
    True
    """
    pa, feats_a = _check_predictions(predictions_a, "predictions_a")
    pb, feats_b = _check_predictions(predictions_b, "predictions_b")
    v.check_option(alignment, "alignment", ALIGNMENTS)
    if alignment == "shared_pca":
        if method != "pca":
            raise ValueError(f"`method` must be 'pca' when alignment='shared_pca'; got {method!r}.")
        da, db = feats_a.shape[1], feats_b.shape[1]
        if da != db:
            raise ValueError(
                f"`predictions_a` and `predictions_b` must have the same number of features for "
                f"alignment='shared_pca'; got {da} and {db}."
            )
        blocks = [_check_features(feats_a), _check_features(feats_b)]
        params = _check_params(
            "pca", sum(len(b) for b in blocks), random_state=random_state,
            n_neighbors=n_neighbors, min_dist=min_dist, n_epochs=n_epochs,
            sample_size=sample_size, perplexity=perplexity, max_iter=max_iter,
        )
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=params.random_state).fit(np.concatenate(blocks))
        frames = tuple(_frame(p, pca.transform(b).astype(np.float64)) for p, b in zip((pa, pb), blocks))
    else:
        # ids first: a missing overlap should fail before any (slow) projection runs
        _, ia, ib = np.intersect1d(pa.ids, pb.ids, assume_unique=True, return_indices=True)
        if len(ia) < _MIN_SHARED:
            raise ValueError(
                f"`predictions_a` and `predictions_b` must share at least {_MIN_SHARED} sample ids "
                f"for alignment='procrustes'; got {len(ia)} shared ids."
            )
        fa, fb = (projection_frame(
            p, method=method, random_state=random_state, n_neighbors=n_neighbors,
            min_dist=min_dist, n_epochs=n_epochs, sample_size=sample_size, perplexity=perplexity,
            max_iter=max_iter, cache=cache) for p in (pa, pb))
        emb_a, emb_b = fa[["x", "y"]].to_numpy(), fb[["x", "y"]].to_numpy()
        rot, scale, shift = _fit_similarity(emb_b[ib], emb_a[ia])
        aligned = scale * emb_b @ rot + shift
        fb["x"], fb["y"] = aligned[:, 0], aligned[:, 1]
        frames = (fa, fb)
    for f in frames:
        f.attrs.update(method=method, alignment=alignment)
    return frames[0], frames[1]
