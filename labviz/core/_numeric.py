"""Numeric primitives shared below every other module (no labviz imports)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray


def softmax(logits: NDArray) -> NDArray[np.float64]:
    """Row-wise softmax, stable for large logits.

    >>> softmax(np.array([[0.0, 0.0]])).tolist()
    [[0.5, 0.5]]
    """
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


#: Entries per row chunk of the chunked softmax: a float64 chunk of 2**20 entries is 8 MB.
SOFTMAX_CHUNK_ENTRIES = 1 << 20


def softmax_chunks(
    logits: NDArray, *, temperature: float = 1.0, chunk_entries: int = SOFTMAX_CHUNK_ENTRIES
) -> Iterator[tuple[slice, NDArray[np.float64]]]:
    """``softmax(logits / temperature)`` a row chunk at a time: ``(rows, probs[rows])`` pairs.

    Each chunk is read (a memory map reads only it), widened to float64, shifted by its row
    maxima and then divided by ``temperature``: row by row the same float64 operations as
    :func:`softmax` of the whole matrix, so the chunks are its rows to the bit. Nothing of shape
    (n_samples, n_classes) is held.

    >>> [(s.start, p.round(3).tolist()) for s, p in softmax_chunks(np.zeros((3, 2)), chunk_entries=4)]
    [(0, [[0.5, 0.5], [0.5, 0.5]]), (2, [[0.5, 0.5]])]
    """
    n, c = logits.shape
    step = max(1, chunk_entries // max(c, 1))
    for start in range(0, n, step):
        rows = slice(start, min(start + step, n))
        z = np.array(logits[rows], dtype=np.float64)
        z -= z.max(axis=1, keepdims=True)
        if temperature != 1.0:
            z /= temperature
        yield rows, softmax(z)


def top_probability(logits: NDArray, *, temperature: float = 1.0,
                    chunk_entries: int = SOFTMAX_CHUNK_ENTRIES) -> NDArray[np.float64]:
    """``softmax(logits / temperature).max(axis=1)``, shape (n_samples,), computed a row chunk
    at a time (see :func:`softmax_chunks`): equal to the whole matrix's to the bit, holding
    only n_samples float64 values and one chunk.

    >>> top_probability(np.array([[0.0, 0.0], [0.0, np.log(3.0)]])).round(6).tolist()
    [0.5, 0.75]
    """
    out = np.empty(logits.shape[0], dtype=np.float64)
    for rows, p in softmax_chunks(logits, temperature=temperature, chunk_entries=chunk_entries):
        out[rows] = p.max(axis=1)
    return out
