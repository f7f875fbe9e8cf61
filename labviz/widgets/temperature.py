"""The explorer's probabilities at a temperature: ``softmax(logits / T)`` of the models on screen.

:class:`ScaledProbabilities` keeps each model's max-subtracted logits and its last result, so that a
move of the temperature slider costs one softmax of the (n_samples, n_classes) logits per model,
and a click or a redraw at the same temperature costs none. At T = 1 the result is the model's own
``probs`` to the bit (the same float64 operations), so the views at T = 1 are the model's own.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import NDArray

from labviz.core._numeric import softmax
from labviz.core.predictions import Predictions


class ScaledProbabilities:
    """``softmax(logits / T)`` per model and temperature, the last one kept per model."""

    def __init__(self) -> None:
        self._shifted: dict[int, NDArray[np.float64]] = {}  # logits - rowmax, by id of the model
        self._scaled: dict[int, tuple[float, NDArray[np.float64], NDArray[np.float64]]] = {}

    def of(self, p: Predictions, temperature: float
           ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``softmax(p.logits / temperature)``, shape (n_samples, n_classes), and its top-1
        confidence, shape (n_samples,)."""
        key = id(p)
        hit = self._scaled.get(key)
        if hit is not None and hit[0] == temperature:
            return hit[1], hit[2]
        if key not in self._shifted:
            z = p.logits.astype(np.float64)
            z -= z.max(axis=1, keepdims=True)
            self._shifted[key] = z
        probs = softmax(self._shifted[key] / temperature)
        conf = probs.max(axis=1)
        self._scaled[key] = (temperature, probs, conf)
        return probs, conf

    def keep_only(self, models: Iterable[Predictions]) -> None:
        """Forget every model but ``models`` (those on screen)."""
        live = {id(p) for p in models}
        for cache in (self._shifted, self._scaled):
            for key in [k for k in cache if k not in live]:
                del cache[key]
