"""``Predictions``: the one object every labviz view takes.

It holds a classifier's outputs on one set of samples: logits (and so probabilities), penultimate
features, the true and the given (possibly noisy) labels, sample ids, class names and the last
layer's weights (the class templates). Build it from your own arrays, from files (``.npz``, a
folder of ``.npy``, Parquet, safetensors: see :mod:`labviz.core.loaders`), any torch classifier
and data loader, or a zoo checkpoint.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from labviz.core import _validation as v
from labviz.core import loaders
from labviz.core._numeric import softmax  # noqa: F401  (public here too: labviz.core.predictions.softmax)
from labviz.core._numeric import softmax_chunks, top_probability
from labviz.core.cache import atomic_write_npz

if TYPE_CHECKING:  # torch is imported lazily: importing labviz stays fast
    import torch

Split = Literal["train", "val", "test"]

_ARRAY_FIELDS = ("logits", "y_true", "y_given", "ids", "features", "weights", "bias", "images")


@dataclass(frozen=True, eq=False)
class Predictions:
    """A classifier's outputs on one set of samples.

    Build it with :meth:`from_arrays`, :meth:`from_path`, :meth:`from_npz` or :meth:`from_model`
    rather than directly: those validate every array. A shipped checkpoint's come from
    :func:`labviz.zoo.predictions`. Built directly, it holds the arrays it is given as they are.

    Attributes
    ----------
    logits : ndarray of shape (n_samples, n_classes)
    n_samples, n_classes : int
    y_true : ndarray of shape (n_samples,)
        The true labels.
    y_given : ndarray of shape (n_samples,)
        The labels the model was trained with; they differ from ``y_true`` where noise flipped them.
    ids : ndarray of shape (n_samples,)
        Sample ids (indices into the source dataset split).
    class_names : tuple of str, length n_classes
    features : ndarray of shape (n_samples, n_features) or None
        Penultimate-layer activations, float32 or float16.
    weights : ndarray of shape (n_classes, n_features) or None
        The last layer's weight matrix; its rows are the class templates.
    bias : ndarray of shape (n_classes,) or None
    images : ndarray of shape (n_samples, height, width) or None
        Input images, for thumbnails.
    name : str
        A label for legends (e.g. the checkpoint name and split).
    """

    logits: NDArray[np.float32]
    y_true: NDArray[np.int64]
    y_given: NDArray[np.int64]
    ids: NDArray[np.int64]
    class_names: tuple[str, ...]
    # float32, or float16 as from_arrays keeps it; its readers convert what they read
    features: NDArray[Any] | None = None
    weights: NDArray[np.float32] | None = None
    bias: NDArray[np.float32] | None = None
    images: NDArray | None = None
    name: str = ""
    meta: dict = field(default_factory=dict, repr=False)

    # ----- derived quantities -------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        return self.logits.shape[0]

    @property
    def n_classes(self) -> int:
        return self.logits.shape[1]

    @cached_property
    def probs(self) -> NDArray[np.float64]:
        """Softmax of the logits, float64, shape (n_samples, n_classes); computed once and kept.

        A new array (400 MB at 50,000 x 1,000, 10 GB at 1.28M x 1,000), filled a row chunk at a
        time (:meth:`prob_chunks`). :attr:`confidence` needs none of it; metrics of a memory-mapped
        training set can stream :meth:`prob_chunks` (e.g. into ``CalibrationAccumulator``).
        """
        out = np.empty(self.logits.shape, dtype=np.float64)
        for rows, chunk in self.prob_chunks():
            out[rows] = chunk
        return out

    def prob_chunks(self, *, temperature: float = 1.0
                    ) -> Iterator[tuple[slice, NDArray[np.float64]]]:
        """``softmax(logits / temperature)`` a row chunk at a time, as ``(rows, probs)`` pairs.

        Each chunk (2**20 entries: 8 MB of float64) is read from the logits (a memory map reads
        just it) and equals the same rows of :attr:`probs` to the bit at ``temperature=1``.

        Examples
        --------
        >>> p = Predictions.from_arrays(y_true=[0, 1], logits=[[2.0, 0.0], [0.0, 1.0]])
        >>> [(rows.start, chunk.shape) for rows, chunk in p.prob_chunks()]
        [(0, (2, 2))]
        """
        t = v.check_float(temperature, "temperature")
        if not t > 0:
            raise ValueError(f"`temperature` must be > 0; got {t!r}.")
        return softmax_chunks(self.logits, temperature=t)

    @cached_property
    def y_pred(self) -> NDArray[np.int64]:
        """Predicted classes, (n_samples,), a row chunk at a time (argmax copies a memmap whole)."""
        chunks = v.row_chunks(*self.logits.shape)
        return np.concatenate([self.logits[r].argmax(axis=1) for r in chunks]).astype(np.int64)

    @cached_property
    def confidence(self) -> NDArray[np.float64]:
        """Top-label probability, shape (n_samples,), kept read-only: computed a row chunk at a
        time from the logits (no whole :attr:`probs`), equal to ``probs.max(axis=1)`` to the bit."""
        conf = self.probs.max(axis=1) if "probs" in self.__dict__ else top_probability(self.logits)
        conf.flags.writeable = False
        return conf

    @property
    def correct(self) -> NDArray[np.bool_]:
        """Whether the prediction matches the true label."""
        return self.y_pred == self.y_true

    @property
    def flipped(self) -> NDArray[np.bool_]:
        """Whether the given label differs from the true one (label noise)."""
        return self.y_given != self.y_true

    @property
    def accuracy(self) -> float:
        """Fraction of correct predictions; NaN for an empty subset."""
        return float(self.correct.mean()) if self.n_samples else float("nan")

    def __repr__(self) -> str:
        feats = "none" if self.features is None else self.features.shape[1]
        return (
            f"Predictions(name={self.name!r}, n_samples={self.n_samples}, "
            f"n_classes={self.n_classes}, n_features={feats}, accuracy={self.accuracy:.4f}, "
            f"flipped={int(self.flipped.sum())})"
        )

    def subset(self, index: ArrayLike) -> Predictions:
        """The predictions for a subset of samples, given as positions or a boolean mask."""
        idx = v.as_array(index, "index")
        if idx.dtype == bool:
            if idx.shape != (self.n_samples,):
                raise ValueError(
                    f"`index` as a mask must have shape ({self.n_samples},); got {idx.shape}."
                )
            idx = np.flatnonzero(idx)
        elif idx.size == 0:
            idx = np.zeros(0, dtype=np.int64)  # np.asarray([]) is float64, not a valid index
        else:
            idx = v.check_labels(idx, "index", n_classes=self.n_samples)
        return replace(
            self, logits=self.logits[idx], y_true=self.y_true[idx], y_given=self.y_given[idx],
            ids=self.ids[idx],
            features=None if self.features is None else self.features[idx],
            images=None if self.images is None else self.images[idx],
        )

    # ----- constructors -------------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        *,
        y_true: ArrayLike,
        logits: ArrayLike | None = None,
        probs: ArrayLike | None = None,
        features: ArrayLike | None = None,
        y_given: ArrayLike | None = None,
        ids: ArrayLike | None = None,
        class_names: Sequence[str] | None = None,
        weights: ArrayLike | None = None,
        bias: ArrayLike | None = None,
        images: ArrayLike | None = None,
        name: str = "",
    ) -> Predictions:
        """Validate and wrap your own model's outputs, keeping your arrays rather than copies.

        Give exactly one of ``logits`` or ``probs``; labviz never guesses which (it warns when all
        rows of ``logits`` look like probabilities, as ``predict_proba`` gives). ``probs`` are kept
        as the logits ``log(probs)`` (softmax gives them back), so temperature scaling still works.

        **What is copied.** An array is stored as you give it (your object itself; a
        ``np.memmap``, such as ``np.load(path, mmap_mode="r")`` returns, stays memory-mapped)
        when its dtype and layout are already those labviz keeps:

        - ``logits``, ``weights``, ``bias``: C-contiguous float32;
        - ``features``: C-contiguous float32 or float16 (float16 is kept as float16, half the
          memory; the computations that read features convert what they read, as for any dtype);
        - ``y_true``, ``y_given``, ``ids``: int64;
        - ``images``: any real dtype.

        Otherwise one copy is made, row chunk by row chunk: a C-contiguous float32 one for float
        arrays (float64 is rounded to float32, float16 logits widened, other layouts laid out row
        by row), an int64 one for labels and ids of other integer (or integer-valued float)
        dtypes. ``probs`` are always copied: the stored logits are their float32 logarithm. Since
        your arrays are kept, leave them unchanged afterwards: the ``Predictions`` (and the
        probabilities it caches) would no longer match what was checked.

        **What is checked.** Every value: finite, within float32's range, labels among the
        classes, probabilities in [0, 1] with rows summing to 1. Floats are checked a row chunk at
        a time, so checking a memory-mapped array reads it once and never holds it in memory.

        Parameters
        ----------
        y_true : array-like of shape (n_samples,)
            True integer labels in ``[0, n_classes)``.
        logits : array-like of shape (n_samples, n_classes), optional
        probs : array-like of shape (n_samples, n_classes), optional
            Rows must sum to 1.
        features : array-like of shape (n_samples, n_features), optional
        y_given : array-like of shape (n_samples,), optional
            Training labels, if they differ from ``y_true`` (noisy labels). Defaults to ``y_true``.
        ids : array-like of shape (n_samples,), optional
            Defaults to ``0..n_samples-1``.
        class_names : sequence of str of length n_classes, optional
        weights : array-like of shape (n_classes, n_features), optional
            The final linear layer's weights (class templates).
        bias : array-like of shape (n_classes,), optional
        images : array-like of shape (n_samples, height, width), optional
        name : str

        Examples
        --------
        >>> p = Predictions.from_arrays(y_true=[0, 1], logits=[[2.0, 0.0], [0.0, 1.0]])
        >>> p.y_pred.tolist(), p.accuracy
        ([0, 1], 1.0)
        >>> z = np.zeros((2, 2), dtype=np.float32)
        >>> Predictions.from_arrays(y_true=[0, 1], logits=z).logits is z
        True
        """
        if logits is not None and probs is None:
            z = v.check_stored_floats(logits, "logits", ndim=2, shape_hint="(n_samples, n_classes)")
            if z.shape[1] < 2:
                raise ValueError(f"`logits` must have at least 2 classes (columns); got shape "
                                 f"{z.shape}.")
            v.warn_if_probabilities(z, "logits", given_dtype=getattr(logits, "dtype", None))
        elif probs is not None and logits is None:
            z = _log_probs(probs)
        else:
            raise TypeError("Give exactly one of `logits` or `probs`; got "
                            + ("both." if logits is not None else "neither."))
        name = v.check_str(name, "name")
        n, n_classes = z.shape
        src = "logits" if logits is not None else "probs"
        y = v.check_labels(y_true, "y_true", n_classes=n_classes)
        v.check_same_length(y_true=y, **{src: z})
        yg = y if y_given is None else v.check_labels(y_given, "y_given", n_classes=n_classes)
        v.check_same_length(y_true=y, y_given=yg)
        if ids is None:
            id_arr = np.arange(n, dtype=np.int64)
        else:
            id_arr = v.check_sample_ids(ids, "ids", unique=True)
            v.check_same_length(y_true=y, ids=id_arr)
        names = v.check_class_names(class_names, n_classes)
        feats = None
        if features is not None:
            feats = v.check_stored_floats(features, "features", ndim=2,
                                          shape_hint="(n_samples, n_features)", keep_float16=True)
            v.check_same_length(y_true=y, features=feats)
        w = b = None
        if weights is not None:
            w = v.check_stored_floats(weights, "weights", ndim=2,
                                      shape_hint="(n_classes, n_features)")
            if w.shape[0] != n_classes or (feats is not None and w.shape[1] != feats.shape[1]):
                want = f"({n_classes}, {'n_features' if feats is None else feats.shape[1]})"
                raise ValueError(f"`weights` must have shape {want}; got {w.shape}.")
        if bias is not None:
            b = v.check_stored_floats(bias, "bias", ndim=1, shape_hint="(n_classes,)")
            if b.shape != (n_classes,):
                raise ValueError(f"`bias` must have shape ({n_classes},); got {b.shape}.")
        imgs = None
        if images is not None:
            imgs = v.as_array(images, "images")
            if imgs.ndim != 3 or imgs.dtype.kind not in "uif":
                raise ValueError(
                    f"`images` must have shape (n_samples, height, width); got {imgs.shape}."
                )
            v.check_same_length(y_true=y, images=imgs)
        return cls(logits=z, y_true=y, y_given=yg, ids=id_arr, class_names=names,
                   features=feats, weights=w, bias=b, images=imgs, name=name)

    def to_npz(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Save to an ``.npz`` file readable by :meth:`from_npz` (no pickle).

        An existing file is kept unless ``overwrite=True``.
        """
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
        arrays = {k: getattr(self, k) for k in _ARRAY_FIELDS if getattr(self, k) is not None}
        arrays["class_names"] = np.array(self.class_names, dtype=str)
        arrays["name"] = np.array(self.name, dtype=str)
        atomic_write_npz(path, arrays)
        return path

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike[str],
        *,
        mmap: bool = True,
        file_format: loaders.Format | None = None,
    ) -> Predictions:
        """Load predictions from an ``.npz``, ``.parquet`` or ``.safetensors`` file, or a folder
        of ``.npy`` files, holding arrays named like :meth:`from_arrays`'s arguments.

        The formats, and the keys each must hold, are described in :mod:`labviz.core.loaders`.
        Nothing is unpickled. With ``mmap=True`` the arrays of a folder of ``.npy`` files, of
        safetensors and of uncompressed ``.npz`` members are memory-mapped, and :meth:`from_arrays`
        keeps them so (see what it copies).

        Parameters
        ----------
        path : str or path-like
        mmap : bool
            Memory-map the arrays where the format allows, rather than reading them into memory.
        file_format : {"npz", "npy", "parquet", "safetensors"}, optional
            The format, when the path's suffix does not say it ("npy" is a folder).

        Raises
        ------
        ValueError, TypeError
            For a damaged or mislabelled file, or arrays :meth:`from_arrays` refuses; the
            message names the file and the key.

        Examples
        --------
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> np.save(folder / "y_true.npy", np.array([0, 1]))
        >>> np.save(folder / "logits.npy", np.float32([[2, 0], [0, 1]]))
        >>> p = Predictions.from_path(folder)
        >>> p.accuracy, isinstance(p.logits, np.memmap)
        (1.0, True)
        >>> import shutil; shutil.rmtree(folder)
        """
        files = loaders.read_predictions(path, mmap=mmap, file_format=file_format)
        try:
            return cls.from_arrays(**files.arrays, class_names=files.class_names, name=files.name)
        except (ValueError, TypeError) as exc:
            kind = ValueError if isinstance(exc, ValueError) else TypeError
            raise kind(f"{files.path}: {exc}") from None

    @classmethod
    def from_npz(cls, path: str | os.PathLike[str]) -> Predictions:
        """Load predictions from an ``.npz`` file with arrays named like :meth:`from_arrays`'s
        arguments (``logits`` or ``probs``, ``y_true``, optional ``features``, ``class_names``...).

        The file is read into memory, whatever its suffix, with ``allow_pickle=False``;
        :meth:`from_path` memory-maps it.
        """
        return cls.from_path(path, mmap=False, file_format="npz")

    @classmethod
    def from_model(
        cls,
        model: torch.nn.Module,
        loader: torch.utils.data.DataLoader,
        *,
        feature_layer: str,
        head: str | None = None,
        class_names: Sequence[str] | None = None,
        name: str = "",
    ) -> Predictions:
        """Run any torch classifier over a data loader and collect its outputs.

        Parameters
        ----------
        model : torch.nn.Module
            Maps a batch of inputs to logits of shape (batch, n_classes).
        loader : iterable of (inputs, labels) batches
            For example a ``torch.utils.data.DataLoader``. Labels are the true labels.
        feature_layer : str
            Name (as in ``model.named_modules()``) of the module whose output is the penultimate
            representation. A forward hook records it.
        head : str, optional
            Name of the final ``nn.Linear``; its weight rows are the class templates. Defaults to
            the last ``nn.Linear`` in the model.
        class_names : sequence of str, optional
        name : str
        """
        import torch

        modules = dict(model.named_modules())
        if feature_layer not in modules:
            raise ValueError(f"`feature_layer` must name a module of the model, one of "
                             f"{[k for k in modules if k]}; got {feature_layer!r}.")
        linears = [k for k, m in modules.items() if isinstance(m, torch.nn.Linear)]
        head = head if head is not None else (linears[-1] if linears else None)
        if head is not None and not isinstance(modules.get(head), torch.nn.Linear):
            raise ValueError(f"`head` must name an nn.Linear of the model, one of {linears}; "
                             f"got {head!r}.")
        captured: list[torch.Tensor] = []
        hook = modules[feature_layer].register_forward_hook(
            lambda _m, _i, out: captured.append(out.detach().flatten(1).cpu())
        )
        logits, labels = [], []
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                for batch in loader:
                    x, y = batch[0], batch[1]
                    logits.append(model(x).detach().cpu())
                    labels.append(torch.as_tensor(y).cpu())
        finally:
            hook.remove()
            model.train(was_training)
        if not logits:
            raise ValueError("`loader` must yield at least one batch; got none.")
        weights = bias = None
        if head is not None:
            weights = modules[head].weight.detach().cpu().numpy()
            if modules[head].bias is not None:
                bias = modules[head].bias.detach().cpu().numpy()
        return cls.from_arrays(
            y_true=torch.cat(labels).numpy(), logits=torch.cat(logits).numpy(),
            features=torch.cat(captured).numpy(), weights=weights, bias=bias,
            class_names=class_names, name=name,
        )



def _log_probs(probs: ArrayLike) -> NDArray[np.float32]:
    """The float32 logits ``log(probs)`` of checked probabilities, computed a row chunk at a time.

    Each chunk is clipped at float64's smallest normal number and logged in float64, so a zero
    probability gives a finite logit and float32 input gives what its float64 copy would.
    """
    p = v.check_probs_top(probs, "probs")[0]
    z = np.empty(p.shape, dtype=np.float32)
    for rows in v.row_chunks(*p.shape):
        z[rows] = np.log(np.clip(p[rows].astype(np.float64), np.finfo(np.float64).tiny, None))
    return z
