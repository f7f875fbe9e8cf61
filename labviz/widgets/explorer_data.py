"""The explorer's models, and what it derives from them once and keeps.

:class:`ExplorerData` holds the sources by label (zoo checkpoint names and user
:class:`~labviz.core.predictions.Predictions`) and caches what is computed from them: each zoo
checkpoint's predictions per split, each projection (keyed by model, reference, split and method;
a model other than its reference is aligned to it by Procrustes), the hover thumbnails and the
fitted temperatures. :meth:`ExplorerData.load_view` turns a choice of checkpoint, second panel,
split and method into the panels the views draw (a :class:`LoadedView`), and computes every
series member's projection up front, so that the snapshot slider never projects. Nothing here
draws or holds a widget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np
import pandas as pd

from labviz.compute.calibration import fit_temperature
from labviz.compute.projection import Method, Progress, aligned_projections, projection_frame
from labviz.core import _validation as v
from labviz.core.predictions import Predictions, Split
from labviz.figures.projection import ThumbnailURIs, hover_thumbnail_uris
from labviz.widgets.state import Panel, Range
from labviz.zoo import Series, entry, series_for
from labviz.zoo import predictions as zoo_predictions

#: A zoo checkpoint name or a user's Predictions (with features).
Source = Union[str, Predictions]


def check_sources(sources: object, name: str = "sources") -> dict[str, Source]:
    """``sources`` (one source or a non-empty sequence: zoo checkpoint names and Predictions with
    features) by label, or a ValueError or TypeError naming the argument ``name``."""
    if isinstance(sources, (str, Predictions)):
        sources = [sources]
    if not isinstance(sources, Sequence) or len(sources) == 0:
        raise TypeError(f"`{name}` must be a zoo checkpoint name, a labviz.Predictions, or a "
                        f"non-empty sequence of them; got {type(sources).__name__}"
                        + (" (empty)." if isinstance(sources, Sequence) else "."))
    out: dict[str, Source] = {}
    for i, s in enumerate(sources):
        if isinstance(s, str):
            try:
                entry(s)
            except ValueError as exc:
                raise ValueError(f"`{name}` must hold zoo checkpoint names or Predictions; "
                                 f"got the unknown name {s!r} at position {i}. ({exc})") from None
            label = s
        elif isinstance(s, Predictions):
            if s.features is None:
                raise ValueError(
                    f"`{name}[{i}]` must hold features (penultimate activations) to be "
                    "projected; got features=None. Pass them when building it: "
                    "`labviz.Predictions.from_arrays(y_true=y, probs=p, features=h)` with `h` "
                    "of shape (n_samples, n_features) (with a torch model, "
                    "`Predictions.from_model(model, loader, feature_layer=...)` records them).")
            label = s.name or f"model {i + 1}"
        else:
            raise TypeError(f"`{name}` must hold zoo checkpoint names or Predictions; got "
                            f"{type(s).__name__} at position {i}.")
        if label in out:
            label = f"{label} #{i + 1}"
        out[label] = s
    return out


@dataclass(frozen=True)
class LoadedView:
    """The panels of one choice of checkpoint, second panel, split and method.

    Attributes
    ----------
    panels : list of Panel
        The checkpoint's panel, then the second panel's (if any).
    ranges : tuple of two (low, high) pairs
        x and y ranges covering every panel and every series member.
    key : str
        Names the choice; it changes with the checkpoint, second panel, split or method.
    series : Series or None
        The checkpoint's epoch snapshots or LS sweep.
    snapshot_index : int or None
        The checkpoint's place in ``series``.
    compare : str or None
        The second panel's source: None when none was asked for, or when it has another number
        of classes than the checkpoint (``notes`` then says so).
    notes : str
        What the status line should say about the panels (empty when all is as asked).
    """

    panels: list[Panel]
    ranges: tuple[Range, Range]
    key: str
    series: Series | None
    snapshot_index: int | None
    compare: str | None
    notes: str


def _padded(lo: float, hi: float) -> Range:
    pad = 0.05 * (hi - lo) if hi > lo else 1.0
    return (lo - pad, hi + pad)


class ExplorerData:
    """The sources, by label, and the caches of what is computed from them.

    Parameters
    ----------
    sources : dict of str to str or Predictions
        As :func:`check_sources` returns them.

    Attributes
    ----------
    sources : dict of str to str or Predictions
    fitted_temperatures : dict
        The temperature fitted by :meth:`fitted_temperature`, by zoo checkpoint name (fitted on
        its "val" split) or by ``id`` of a user's Predictions (fitted on its own samples).
    """

    def __init__(self, sources: dict[str, Source]) -> None:
        self.sources = sources
        self.fitted_temperatures: dict[str | int, float] = {}
        self._loaded: dict[tuple[str, Split], Predictions] = {}
        self._frames: dict[tuple[str, str, Split, Method], pd.DataFrame] = {}
        self._thumbnails: dict[int, ThumbnailURIs] = {}

    def check_label(self, label: object, name: str) -> str:
        """``label``, the label of one of the sources, or a TypeError or ValueError naming the
        argument ``name``."""
        if not isinstance(label, str):
            raise TypeError(f"`{name}` must be the name of one of the sources; "
                            f"got {type(label).__name__}.")
        v.check_option(label, name, list(self.sources))
        return label

    @property
    def has_splits(self) -> bool:
        """Whether a zoo checkpoint is among the sources: only those have splits."""
        return any(isinstance(s, str) for s in self.sources.values())

    def check_split(self, split: object, splits: Sequence[str]) -> Split:
        """``split``, one of ``splits`` that applies to the sources, or a ValueError naming
        the argument ``split``."""
        v.check_option(split, "split", splits)
        if not self.has_splits:
            raise ValueError(
                f"`split` applies to zoo checkpoints only; got split={split!r} with no zoo "
                "checkpoint among the sources (a Predictions holds one set of samples: build one "
                "per split and explore that one). Leave `split` out.")
        return split  # type: ignore[return-value]  # one of ``splits``

    def predictions(self, label: str, split: Split) -> Predictions:
        """The predictions of source ``label`` (or of zoo checkpoint ``label``, e.g. a series
        member) on ``split``; a user's Predictions has one set of samples, whatever the split."""
        source = self.sources.get(label, label)
        if isinstance(source, Predictions):
            return source
        key = (source, split)
        if key not in self._loaded:
            self._loaded[key] = zoo_predictions(source, split)
        return self._loaded[key]

    def n_samples(self, label: str, split: Split) -> int:
        """How many samples source ``label`` has on ``split`` (a user's Predictions: without
        loading anything)."""
        source = self.sources[label]
        if isinstance(source, Predictions):
            return source.n_samples
        return self.predictions(label, split).n_samples

    def zoo_name(self, label: str) -> str | None:
        """The zoo checkpoint ``label`` names (a source or a series member), or None for a user's
        Predictions."""
        source = self.sources.get(label, label)
        return source if isinstance(source, str) else None

    def frame(self, label: str, reference: str, split: Split, method: Method,
              progress: Progress | None = None) -> pd.DataFrame:
        """The projection of ``label`` on the axes of ``reference`` (Procrustes on shared ids),
        computed once; ``progress`` follows it when ``label`` is its own reference."""
        key = (label, reference, split, method)
        if key not in self._frames:
            ref = self.predictions(reference, split)
            if label == reference:
                frame = projection_frame(ref, method=method, progress=progress)
            else:
                frame = aligned_projections(ref, self.predictions(label, split), method=method)[1]
            self._frames[key] = frame
        return self._frames[key]

    def member_panel(self, series: Series, index: int, reference: str, split: Split,
                     method: Method) -> Panel:
        """The panel of member ``index`` of ``series``, on the axes of ``reference``."""
        i = v.check_int(index, "index", minimum=0)
        if i >= len(series.members):
            raise ValueError(f"`index` must be in [0, {len(series.members) - 1}]; got {i}.")
        member = series.members[i]
        return Panel(member, f"{member} ({series.label(i)})",
                     self.predictions(member, split), self.frame(member, reference, split, method))

    def load_view(self, checkpoint: str, compare: str | None, split: Split, method: Method,
                  progress: Progress | None = None) -> LoadedView:
        """The panels of ``checkpoint`` and, beside it, ``compare`` (None: one panel), projected
        with ``method``, every series member's projection computed too. ``progress`` follows
        the checkpoint's projection, which the others are aligned to."""
        source = self.sources[checkpoint]
        series, index = None, None
        if isinstance(source, str):
            series = series_for(source)
            index = None if series is None else series.members.index(source)
        ref = self.predictions(checkpoint, split)
        ref_frame = self.frame(checkpoint, checkpoint, split, method, progress)
        if series is None or index is None:
            frames, left = [ref_frame], Panel(checkpoint, checkpoint, ref, ref_frame)
        else:
            frames = [self.frame(m, checkpoint, split, method) for m in series.members]
            left = self.member_panel(series, index, checkpoint, split, method)
        panels, notes = [left], ""
        if compare is not None:
            other = self.predictions(compare, split)
            if other.n_classes != ref.n_classes:
                notes = (f"{compare} has {other.n_classes} classes and {checkpoint} "
                         f"{ref.n_classes}; showing one panel.")
                compare = None
            else:
                # Procrustes needs shared samples; without them the panels share nothing
                aligned = np.intersect1d(ref.ids, other.ids).size >= 3
                if not aligned:
                    notes = (f"{compare} shares no samples with {checkpoint}; its projection "
                             "is not aligned and shows no highlight.")
                frame = self.frame(compare, checkpoint if aligned else compare, split, method)
                frames.append(frame)
                panels.append(Panel(compare, compare, other, frame))
        xs = np.concatenate([f["x"].to_numpy() for f in frames])
        ys = np.concatenate([f["y"].to_numpy() for f in frames])
        return LoadedView(panels=panels, ranges=(_padded(xs.min(), xs.max()),
                                                 _padded(ys.min(), ys.max())),
                          key=f"{checkpoint}|{compare}|{split}|{method}", series=series,
                          snapshot_index=index, compare=compare, notes=notes)

    def thumbnails(self, p: Predictions) -> ThumbnailURIs | None:
        """The hover images of ``p`` by sample id, made once; None when ``p`` has no images."""
        if p.images is None:
            return None
        if id(p) not in self._thumbnails:
            self._thumbnails[id(p)] = hover_thumbnail_uris(p, size=48)
        return self._thumbnails[id(p)]

    def fitted_temperature(self, label: str, p: Predictions) -> tuple[float, str]:
        """The temperature minimising the NLL (:func:`~labviz.compute.calibration.fit_temperature`)
        for model ``label`` with predictions ``p``, and what it was fitted on, in words: the "val"
        split of a zoo checkpoint, or, for a user's Predictions, which come without a validation
        set, ``p`` itself. Each fit is done once."""
        name = self.zoo_name(label)
        key: str | int = id(p) if name is None else name
        if key not in self.fitted_temperatures:
            fit_on = p
            if name is not None:
                loaded = self._loaded.get((name, "val"))
                fit_on = loaded or zoo_predictions(name, "val", with_images=False)
            self.fitted_temperatures[key] = fit_temperature(fit_on.logits, fit_on.y_true)
        where = (f"fitted on the val split of {name}" if name is not None else
                 f"fitted on the shown samples of {label} themselves, as they come without a "
                 "validation set: the calibration at this T is optimistic")
        return self.fitted_temperatures[key], where
