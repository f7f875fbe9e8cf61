"""The explorer's probabilities at a temperature: the top-1 confidence of ``softmax(logits / T)``.

:class:`ScaledProbabilities` keeps each model's top-1 confidence at the last temperature asked,
so that a move of the temperature slider costs one chunked pass over the (n_samples, n_classes)
logits per model, and a click or a redraw at the same temperature costs none. The views need
only that confidence (the reliability diagram, the per-class table, the bins and the hover), and
accuracy does not depend on T, so no (n_samples, n_classes) matrix is held: at 50,000 x 1,000 the
explorer keeps 400 KB per model rather than two float64 matrices of 400 MB. At T = 1 the
confidence is the model's own ``confidence`` to the bit (the same float64 operations).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import NDArray

from labviz.core._numeric import top_probability
from labviz.core.predictions import Predictions


class ScaledProbabilities:
    """The top-1 confidence of ``softmax(logits / T)`` per model, the last temperature's kept."""

    def __init__(self) -> None:
        self._scaled: dict[int, tuple[float, NDArray[np.float64]]] = {}  # by id of the model

    def confidence(self, p: Predictions, temperature: float) -> NDArray[np.float64]:
        """``softmax(p.logits / temperature).max(axis=1)``, shape (n_samples,), computed a row
        chunk at a time (:func:`~labviz.core._numeric.top_probability`)."""
        key = id(p)
        hit = self._scaled.get(key)
        if hit is not None and hit[0] == temperature:
            return hit[1]
        conf = (p.confidence if temperature == 1.0
                else top_probability(p.logits, temperature=temperature))
        self._scaled[key] = (temperature, conf)
        return conf

    def of(self, p: Predictions, temperature: float
           ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``softmax(p.logits / temperature)``, shape (n_samples, n_classes), and its top-1
        confidence, shape (n_samples,). The probabilities are a new float64 matrix, not kept
        (the explorer's views use :meth:`confidence` alone)."""
        probs = np.empty(p.logits.shape, dtype=np.float64)
        for rows, chunk in p.prob_chunks(temperature=temperature):
            probs[rows] = chunk
        return probs, self.confidence(p, temperature)

    def keep_only(self, models: Iterable[Predictions]) -> None:
        """Forget every model but ``models`` (those on screen)."""
        live = {id(p) for p in models}
        for key in [k for k in self._scaled if k not in live]:
            del self._scaled[key]
