"""2-D projections of penultimate features: PCA, UMAP and t-SNE, as tidy frames, cached on disk.

:func:`project` maps a feature matrix to 2-D. :func:`projection_frame` does it for a
:class:`labviz.Predictions` and returns one row per sample with the labels, predictions and
confidence a scatter plot needs; UMAP and t-SNE take tens of seconds on large sets, so results are
cached on disk (see :mod:`labviz.cache`), keyed by a sha256 of the feature bytes and the method's
parameters. :func:`aligned_projections` puts two sets of predictions (two models, or one model on
two splits) on the same axes so they can be compared side by side.

umap-learn is imported only when ``method="umap"`` is used.
"""

from __future__ import annotations

import hashlib
from importlib import metadata
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from labviz import _validation as v
from labviz.cache import cache_key, cached_arrays
from labviz.predictions import Predictions

Method = Literal["pca", "umap", "tsne"]
Alignment = Literal["procrustes", "shared_pca"]

METHODS: tuple[str, ...] = ("pca", "umap", "tsne")
ALIGNMENTS: tuple[str, ...] = ("procrustes", "shared_pca")
#: Columns of every projection frame, in order.
FRAME_COLUMNS: tuple[str, ...] = (
    "x", "y", "label", "label_name", "prediction", "prediction_name",
    "confidence", "correct", "flipped", "given", "id",
)
#: Bump when the projection code changes in a way that makes old cache entries wrong.
_CACHE_VERSION = 1
#: Procrustes needs a few common points to fix a rotation, a scale and a translation in 2-D.
_MIN_SHARED = 3


# ----- validation -------------------------------------------------------------------------------
def _check_features(features: ArrayLike) -> NDArray[np.float64]:
    x = v.check_finite_float(features, "features", ndim=2, shape_hint="(n_samples, n_features)")
    if x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(
            f"`features` must have at least 2 samples (rows) and 2 features (columns); got {x.shape}."
        )
    return x


def _check_params(
    method: str, n_samples: int, *, random_state: int | None, n_neighbors: int,
    min_dist: float, n_epochs: int | None, perplexity: float, max_iter: int,
) -> dict[str, object]:
    """Validate the options ``method`` uses; return them (the cache key's parameter part)."""
    v.check_option(method, "method", METHODS)
    if random_state is not None:
        random_state = v.check_int(random_state, "random_state", minimum=0)
    params: dict[str, object] = {"method": method, "random_state": random_state}
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
        params.update(n_neighbors=n_neighbors, min_dist=float(min_dist), n_epochs=n_epochs)
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
        params.update(perplexity=float(perplexity), max_iter=max_iter)
    return params


def _check_predictions(predictions: object, name: str = "predictions") -> Predictions:
    if not isinstance(predictions, Predictions):
        raise TypeError(f"`{name}` must be a labviz.Predictions; got {type(predictions).__name__}.")
    if predictions.features is None:
        raise ValueError(
            f"`{name}` must hold features (penultimate activations) to be projected; "
            f"got features=None. Build it with `features=` or from a model with a feature layer."
        )
    return predictions


# ----- projection -------------------------------------------------------------------------------
def _run(x: NDArray[np.float64], params: dict[str, object]) -> NDArray[np.float64]:
    """Project validated features with validated parameters."""
    method, seed = params["method"], params["random_state"]
    if method == "pca":
        from sklearn.decomposition import PCA

        emb = PCA(n_components=2, random_state=seed).fit_transform(x)
    elif method == "tsne":
        from sklearn.manifold import TSNE

        emb = TSNE(
            n_components=2, perplexity=params["perplexity"], max_iter=params["max_iter"],
            init="pca", learning_rate="auto", random_state=seed,
        ).fit_transform(x)
    else:
        import umap  # lazy: importing umap-learn compiles numba code and takes seconds

        emb = umap.UMAP(
            n_components=2, n_neighbors=params["n_neighbors"], min_dist=params["min_dist"],
            n_epochs=params["n_epochs"], random_state=seed,
            # a seeded UMAP is only reproducible single-threaded (umap warns otherwise)
            n_jobs=1 if seed is not None else -1,
        ).fit_transform(x)
    return np.asarray(emb, dtype=np.float64)


def project(
    features: ArrayLike,
    *,
    method: Method = "pca",
    random_state: int | None = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    n_epochs: int | None = None,
    perplexity: float = 30.0,
    max_iter: int = 1000,
) -> NDArray[np.float64]:
    """Project features to 2-D with PCA, UMAP or t-SNE.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        At least 2 samples and 2 features, all finite.
    method : {"pca", "umap", "tsne"}
        ``"pca"``: scikit-learn ``PCA`` (the two leading principal components, linear and fast).
        ``"umap"``: umap-learn ``UMAP`` (imported on first use). ``"tsne"``: scikit-learn ``TSNE``
        (Barnes-Hut, PCA initialisation).
    random_state : int or None
        Seed; the output is deterministic for a given seed. With ``None``, UMAP runs in parallel
        and is not reproducible.
    n_neighbors, min_dist, n_epochs : UMAP only
        ``n_neighbors`` must be less than ``n_samples``; ``min_dist`` in [0, 1]; ``n_epochs=None``
        lets UMAP choose (200 for large sets, 500 for small ones).
    perplexity, max_iter : t-SNE only
        ``perplexity`` must be less than ``n_samples``; ``max_iter`` at least 250.

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
        min_dist=min_dist, n_epochs=n_epochs, perplexity=perplexity, max_iter=max_iter,
    )
    return _run(x, params)


def _features_digest(features: NDArray) -> str:
    arr = np.ascontiguousarray(features)
    h = hashlib.sha256(memoryview(arr).cast("B"))
    h.update(f"{arr.dtype.str}{arr.shape}".encode())
    return h.hexdigest()


def _library_version(method: str) -> str:
    return metadata.version("umap-learn" if method == "umap" else "scikit-learn")


def _frame(predictions: Predictions, emb: NDArray[np.float64]) -> pd.DataFrame:
    names = np.asarray(predictions.class_names, dtype=object)
    y, pred = predictions.y_true, predictions.y_pred.astype(np.int64)
    frame = pd.DataFrame({
        "x": emb[:, 0], "y": emb[:, 1],
        "label": y, "label_name": names[y].astype(str),
        "prediction": pred, "prediction_name": names[pred].astype(str),
        "confidence": predictions.confidence.astype(np.float64),
        "correct": predictions.correct, "flipped": predictions.flipped,
        "given": predictions.y_given, "id": predictions.ids,
    }, columns=list(FRAME_COLUMNS))
    frame.attrs = {"name": predictions.name, "class_names": tuple(predictions.class_names)}
    return frame


def projection_frame(
    predictions: Predictions,
    *,
    method: Method = "pca",
    random_state: int | None = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    n_epochs: int | None = None,
    perplexity: float = 30.0,
    max_iter: int = 1000,
    cache: bool = True,
) -> pd.DataFrame:
    """Project ``predictions.features`` to 2-D; one row per sample, ready to scatter.

    Parameters
    ----------
    predictions : Predictions
        Must hold ``features``.
    method, random_state, n_neighbors, min_dist, n_epochs, perplexity, max_iter
        As in :func:`project`.
    cache : bool
        Reuse (and store) the projection in the on-disk cache, namespace ``"projections"``. The key
        is the sha256 of the feature bytes, their shape and dtype, the method's parameters and the
        version of the library that computes it, so identical features are never projected twice
        and any change of data or parameters misses. ``random_state=None`` is never cached.

    Returns
    -------
    pandas.DataFrame
        One row per sample, columns ``x, y`` (float), ``label`` (true class, int),
        ``label_name``, ``prediction`` (int), ``prediction_name``, ``confidence`` (top-label
        probability), ``correct``, ``flipped`` (bool; given label != true label), ``given`` (the
        given label, int) and ``id``. ``frame.attrs`` holds ``method``, ``name`` and
        ``class_names``.

    Examples
    --------
    >>> p = Predictions.from_arrays(
    ...     y_true=[0, 1, 1], logits=[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]],
    ...     features=[[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    >>> projection_frame(p, cache=False)[["label", "prediction", "correct", "id"]].values.tolist()
    [[0, 0, True, 0], [1, 1, True, 1], [1, 0, False, 2]]
    """
    predictions = _check_predictions(predictions)
    if not isinstance(cache, (bool, np.bool_)):
        raise TypeError(f"`cache` must be a bool; got {type(cache).__name__}.")
    feats = predictions.features
    _check_features(feats)
    params = _check_params(
        method, feats.shape[0], random_state=random_state, n_neighbors=n_neighbors,
        min_dist=min_dist, n_epochs=n_epochs, perplexity=perplexity, max_iter=max_iter,
    )
    options = {k: val for k, val in params.items() if k not in ("method", "random_state")}

    def build() -> dict[str, np.ndarray]:
        # through the module-level name, so tests can count calls to `project`
        return {"embedding": project(feats, method=method, random_state=random_state, **options)}

    if cache and random_state is not None:
        key = cache_key(
            features=_features_digest(feats), version=_CACHE_VERSION,
            library=_library_version(method), **params,
        )
        emb = cached_arrays("projections", key, build, required=("embedding",))["embedding"]
    else:
        emb = build()["embedding"]
    frame = _frame(predictions, np.asarray(emb, dtype=np.float64))
    frame.attrs["method"] = method
    return frame


# ----- alignment --------------------------------------------------------------------------------
def _fit_similarity(
    source: NDArray[np.float64], target: NDArray[np.float64]
) -> tuple[NDArray[np.float64], float, NDArray[np.float64]]:
    """Rotation (or reflection) ``R``, scale ``s`` and shift ``t`` minimising
    ``||s * source @ R + t - target||_F`` (orthogonal Procrustes on centred points).

    Returns ``(R, s, t)``; apply as ``s * points @ R + t``.
    """
    from scipy.linalg import orthogonal_procrustes

    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    s0, t0 = source - mu_s, target - mu_t
    rot, sv_sum = orthogonal_procrustes(s0, t0)
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
    perplexity: float = 30.0,
    max_iter: int = 1000,
    cache: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Projections of two sets of predictions on the same 2-D axes.

    Parameters
    ----------
    predictions_a, predictions_b : Predictions
        Both must hold ``features``.
    method, random_state, n_neighbors, min_dist, n_epochs, perplexity, max_iter, cache
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
    pa = _check_predictions(predictions_a, "predictions_a")
    pb = _check_predictions(predictions_b, "predictions_b")
    v.check_option(alignment, "alignment", ALIGNMENTS)
    opts = dict(method=method, random_state=random_state, n_neighbors=n_neighbors,
                min_dist=min_dist, n_epochs=n_epochs, perplexity=perplexity, max_iter=max_iter)
    if alignment == "shared_pca":
        if method != "pca":
            raise ValueError(f"`method` must be 'pca' when alignment='shared_pca'; got {method!r}.")
        da, db = pa.features.shape[1], pb.features.shape[1]
        if da != db:
            raise ValueError(
                f"`predictions_a` and `predictions_b` must have the same number of features for "
                f"alignment='shared_pca'; got {da} and {db}."
            )
        stacked = _check_features(np.concatenate([pa.features, pb.features]))
        params = _check_params(
            "pca", stacked.shape[0], random_state=random_state, n_neighbors=n_neighbors,
            min_dist=min_dist, n_epochs=n_epochs, perplexity=perplexity, max_iter=max_iter,
        )
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=params["random_state"]).fit(stacked)
        frames = tuple(
            _frame(p, pca.transform(_check_features(p.features))) for p in (pa, pb)
        )
    else:
        # ids first: a missing overlap should fail before any (slow) projection runs
        _, ia, ib = np.intersect1d(pa.ids, pb.ids, assume_unique=True, return_indices=True)
        if len(ia) < _MIN_SHARED:
            raise ValueError(
                f"`predictions_a` and `predictions_b` must share at least {_MIN_SHARED} sample ids "
                f"for alignment='procrustes'; got {len(ia)} shared ids."
            )
        fa = projection_frame(pa, cache=cache, **opts)
        fb = projection_frame(pb, cache=cache, **opts)
        emb_a, emb_b = fa[["x", "y"]].to_numpy(), fb[["x", "y"]].to_numpy()
        rot, scale, shift = _fit_similarity(emb_b[ib], emb_a[ia])
        aligned = scale * emb_b @ rot + shift
        fb["x"], fb["y"] = aligned[:, 0], aligned[:, 1]
        frames = (fa, fb)
    for f in frames:
        f.attrs.update(method=method, alignment=alignment)
    return frames[0], frames[1]
