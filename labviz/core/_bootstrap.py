"""Bootstrap replicas of binned calibration statistics, drawn per cell instead of per sample.

Top-label calibration on fixed (equal-width) bins only needs, per bin, the number of samples, of
correct ones and the sum of their confidences. Split every bin in two *cells* (correct, wrong):
a bootstrap replica (``N`` draws with replacement from the ``N`` samples) then puts
``m ~ Multinomial(N, n_cell / N)`` draws in the cells, exactly as the sample-level bootstrap does,
and needs only the sum of the confidences of the ``m`` draws from each cell. That sum is drawn

* exactly (``m`` picks with replacement among the cell's confidences) for cells of at most
  :data:`EXACT_CELL` samples, and
* from its normal limit for bigger cells, with the exact mean ``m mu`` and variance ``m sigma^2``
  (``mu``, ``sigma^2``: the cell's mean and variance of confidence), clipped to the bin's range.
  The confidences of a cell lie in one bin, so ``sigma`` is at most half a bin width and their
  share of a replica's spread is small next to that of the correct/wrong counts (which are exact);
  the normal error in that small share is of order ``1 / sqrt(m)`` (Berry-Esseen).

A replica costs O(number of cells), not O(N): 1,000 replicas of 15 bins are 30,000 numbers, which
numpy draws in milliseconds, so no compiled kernel is needed here. The one pass over the
probability matrix (top class and confidence) is :mod:`labviz.core._scan`'s.

Statistics that need every sample's own draw count (class-wise cells, where one sample sits in a
cell of every class, and equal-mass bins, whose edges move with the replica) use the sample-level
bootstrap's draws themselves: :func:`index_batches` draws the indices as
``scipy.stats.bootstrap`` does, :func:`draw_counts` turns them into per-sample counts, and a
replica's sum over a group of samples is a weighted sum with those counts:

* :class:`Cells` sums counts (and values) over sparse groups of samples, O(entries) per replica;
* :func:`weighted_column_sums` gives ``counts @ p`` restricted to the entries of ``p`` at or below
  a bound, streaming over chunks of samples (one matrix product per chunk for all replicas), so
  nothing of shape (replicas, samples, classes) is ever held.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Cells of at most this many samples get their confidence sums drawn exactly.
EXACT_CELL = 64

#: Temporaries of the weighted sums hold at most about this many numbers.
BLOCK = 1 << 22

#: The compiled sums (:meth:`Cells.sums`, :func:`equal_mass_sums`) run from this many (replica,
#: entry) pairs on: below, loading a compiled kernel costs more than numpy's passes
#: (``labviz.core._scan``'s threshold).
MIN_COMPILED = 1 << 18

#: :func:`weighted_column_sums` multiplies in float64 up to this many multiply-adds, in float32
#: beyond (see its docstring for the rounding).
EXACT_PRODUCT = 1 << 30


def cell_replicas(
    cell: NDArray[np.intp],
    conf: NDArray[np.float64],
    lo: NDArray[np.float64],
    hi: NDArray[np.float64],
    n_boot: int,
    rng: np.random.Generator,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Replica counts and confidence sums per cell, both of shape (n_boot, n_cells).

    Parameters
    ----------
    cell : ndarray of shape (n_samples,)
        Cell of each sample, in ``[0, n_cells)``.
    conf : ndarray of shape (n_samples,)
        Confidence of each sample.
    lo, hi : ndarray of shape (n_cells,)
        Bounds of the confidences in each cell (the bin edges), to clip the normal draws to.
    n_boot : int
    rng : numpy.random.Generator
    """
    n = len(cell)
    n_cells = len(lo)
    size = np.bincount(cell, minlength=n_cells).astype(np.float64)
    counts = rng.multinomial(n, size / n, size=n_boot).astype(np.float64)

    safe = np.maximum(size, 1.0)
    mean = np.bincount(cell, weights=conf, minlength=n_cells) / safe
    # Centred second moment: no cancellation for the tiny spreads of narrow bins.
    var = np.bincount(cell, weights=(conf - mean[cell]) ** 2, minlength=n_cells) / safe
    sums = counts * mean + np.sqrt(counts * var) * rng.standard_normal(counts.shape)
    np.clip(sums, counts * lo, counts * hi, out=sums)

    small = np.flatnonzero((size > 0) & (size <= EXACT_CELL))
    if len(small):
        is_small = np.zeros(n_cells, dtype=bool)
        is_small[small] = True
        members = np.flatnonzero(is_small[cell])
        members = members[np.argsort(cell[members], kind="stable")]
        small_size = size[small].astype(np.int64)
        offset = np.concatenate(([0], np.cumsum(small_size)[:-1]))
        m = counts[:, small].astype(np.int64)  # (n_boot, n_small)
        slot = np.repeat(np.arange(m.size), m.ravel())  # one entry per draw: replica * n_small + cell
        local = slot % len(small)
        picks = offset[local] + rng.integers(0, small_size[local])
        exact = np.bincount(slot, weights=conf[members][picks], minlength=m.size)
        sums[:, small] = exact.reshape(m.shape)
    return counts, sums


def percentile_interval(
    replicas: NDArray[np.float64], confidence: float
) -> tuple[float, float]:
    """The ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the replicas
    (linear interpolation, as ``scipy.stats.bootstrap(method="percentile")``)."""
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(replicas, [alpha, 1.0 - alpha])
    return float(low), float(high)


# ----- the sample-level bootstrap's draws, as counts -------------------------------------------------
def index_batches(
    n: int, n_boot: int, rng: np.random.Generator, block: int = BLOCK
) -> Iterator[NDArray[np.int64]]:
    """``n_boot`` resamples of ``range(n)``, in batches of ``max(1, block // n)`` rows, each batch
    drawn as ``rng.integers(0, n, (rows, n))``: the draws of ``scipy.stats.bootstrap`` (which
    draws all ``n_boot`` rows at once, the same numbers while ``n_boot * n <= block``)."""
    batch = max(1, block // n)
    for start in range(0, n_boot, batch):
        yield rng.integers(0, n, (min(batch, n_boot - start), n))


def draw_counts(idx: NDArray[np.int64], n: int, out: NDArray, first: int) -> NDArray:
    """Write how many times each sample is drawn in each resample of ``idx`` (rows, n) into
    ``out[first:first + rows]`` (every row sums to ``n``); return ``out``, or a wider copy of it
    if a count does not fit its dtype (a byte holds any count but a sample drawn 256 times or
    more, which has a chance of about 1/256! per sample)."""
    for r, row in enumerate(idx):
        c = np.bincount(row, minlength=n)  # row by row: a row's counts stay in cache
        top = int(c.max())
        if top > np.iinfo(out.dtype).max:
            out = out.astype(np.min_scalar_type(top))
        out[first + r] = c
    return out


def chunk_counts(
    n: int, n_boot: int, step: int, rng: np.random.Generator
) -> Iterator[tuple[slice, NDArray[np.int64]]]:
    """Draw counts of ``n_boot`` resamples of ``range(n)`` (``n`` draws each, with replacement),
    ``step`` samples at a time: ``(rows, counts)`` pairs, ``counts`` of shape (n_boot, rows).

    The same law as :func:`draw_counts` of :func:`index_batches` (each replica's counts are
    ``Multinomial(n, 1/n, ..., 1/n)``), drawn without holding any replica whole: the draws that
    fall in the next chunk of ``m`` samples among ``R`` not yet visited are
    ``Binomial(left, m / R)`` of the replica's ``left`` remaining draws, spread uniformly over the
    chunk. O(n_boot x step) memory; other random numbers than :func:`index_batches`'.
    """
    left = np.full(n_boot, n, dtype=np.int64)
    for start in range(0, n, step):
        m = min(step, n - start)
        rest = n - start
        k = left.copy() if m == rest else rng.binomial(left, m / rest).astype(np.int64)
        left -= k
        slot = np.repeat(np.arange(n_boot) * m, k) + rng.integers(0, m, int(k.sum()))
        yield slice(start, start + m), np.bincount(slot, minlength=n_boot * m).reshape(n_boot, m)


@dataclass(frozen=True, eq=False)
class Cells:
    """Sparse groups of samples: entry ``e`` puts sample ``rows[e]`` in cell ``cell_of[e]`` with
    value ``values[e]`` (a sample may sit in several cells, a cell hold several samples).

    Attributes
    ----------
    rows, cell_of : ndarray of shape (n_entries,)
    values : ndarray of shape (n_entries,)
        float64; ones where no values were given.
    n_cells, n_samples : int
    """

    rows: NDArray[np.intp]
    cell_of: NDArray[np.intp]
    values: NDArray[np.float64]
    n_cells: int
    n_samples: int

    @classmethod
    def group(cls, rows: NDArray[np.intp], cell_of: NDArray[np.intp],
              values: NDArray[np.floating] | None, n_cells: int, n_samples: int) -> Cells:
        """The entries, in order of their samples (which the compiled sums read in order)."""
        order = np.argsort(rows, kind="stable")
        vals = (np.ones(len(rows)) if values is None
                else np.asarray(values, dtype=np.float64)[order])
        return cls(rows=np.ascontiguousarray(rows[order], dtype=np.intp),
                   cell_of=np.ascontiguousarray(cell_of[order], dtype=np.intp), values=vals,
                   n_cells=n_cells, n_samples=n_samples)

    def sums(self, weights: NDArray, *, values: bool = True
             ) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
        """Per replica and cell, the sum of the entries' weights and (if ``values``) of their
        weighted values: two arrays of shape (n_replicas, n_cells), from per-sample weights of
        shape (n_replicas, n_samples). O(entries) per replica: compiled for at least
        :data:`MIN_COMPILED` (replica, entry) pairs, else a sparse-dense product."""
        reps = len(weights)
        count = np.zeros((reps, self.n_cells))
        total = np.zeros((reps, self.n_cells if values else 0))
        if reps * len(self.rows) >= MIN_COMPILED:
            _cell_sums_kernel()(np.ascontiguousarray(weights), self.rows, self.cell_of,
                                self.values, count, total)
            return count, total if values else None
        from scipy.sparse import csr_matrix

        shape = (self.n_cells, self.n_samples)
        members = csr_matrix((np.ones(len(self.rows)), (self.cell_of, self.rows)), shape=shape)
        weighted = csr_matrix((self.values, (self.cell_of, self.rows)), shape=shape)
        step = max(1, BLOCK // max(self.n_samples, self.n_cells))  # bounds the transposed copy
        for start in range(0, reps, step):
            sub = slice(start, start + step)
            # (cells x samples) @ (samples x replicas): each entry adds a contiguous row.
            w = np.ascontiguousarray(weights[sub].T, dtype=np.float64)
            count[sub] = (members @ w).T
            if values:
                total[sub] = (weighted @ w).T
        return count, total if values else None

    def add_sums(self, weights: NDArray, count: NDArray[np.float64],
                 total: NDArray[np.float64] | None = None) -> None:
        """Add :meth:`sums` into ``count`` and (if given) ``total``, C-contiguous float64 arrays
        of shape (n_replicas, n_cells), in place: a caller summing many chunks of samples
        allocates no table per chunk."""
        if len(weights) * len(self.rows) >= MIN_COMPILED:
            _cell_sums_kernel()(np.ascontiguousarray(weights), self.rows, self.cell_of,
                                self.values, count,
                                np.zeros((len(weights), 0)) if total is None else total)
            return
        c, t = self.sums(weights, values=total is not None)
        count += c
        if total is not None and t is not None:
            total += t


@cache
def _cell_sums_kernel() -> Any:
    import numba

    @numba.njit(cache=True, nogil=True)
    def sums(weights, rows, cell_of, values, count, total):  # pragma: no cover - compiled
        with_values = total.shape[1] > 0
        for r in range(weights.shape[0]):
            w = weights[r]
            for e in range(rows.shape[0]):
                c = w[rows[e]]
                if c != 0:
                    count[r, cell_of[e]] += c
                    if with_values:
                        total[r, cell_of[e]] += c * values[e]

    return sums


def weighted_column_sums(
    p: NDArray[np.floating], upper: float, weights: NDArray
) -> NDArray[np.float64]:
    """``sum_i weights[r, i] * p[i, k] * [p[i, k] <= upper]`` for every replica ``r`` and column
    ``k``: shape (n_replicas, n_columns).

    Streams over chunks of rows: per chunk, one matrix product of the replicas' weights
    (n_replicas, chunk) with the chunk's entries at or below ``upper`` (chunk, n_columns). The
    products run in float64 up to :data:`EXACT_PRODUCT` multiply-adds in all, else (or when ``p``
    is float32) in float32, each chunk's result added in float64: the entries are then rounded to
    24 bits (a relative 6e-8) and each chunk's sums carry a relative error of order
    ``sqrt(chunk) * 6e-8``, about 2e-6 for the chunks used here.

    Parameters
    ----------
    p : ndarray of shape (n_samples, n_columns)
    upper : float
    weights : ndarray of shape (n_replicas, n_samples)
        Small non-negative integers (bootstrap counts), exact in float32.
    """
    n, k = p.shape
    reps = len(weights)
    exact = p.dtype == np.float64 and reps * n * k <= EXACT_PRODUCT
    dtype = np.float64 if exact else np.float32
    out = np.zeros((reps, k))
    # Chunks of rows: (chunk, k) entries and a (reps, chunk) slice of the weights at a time.
    step = max(1, min(1024, BLOCK // max(k, reps)))
    for start in range(0, n, step):
        block = p[start:start + step]
        low: NDArray[np.floating] = np.where(block <= upper, block, 0).astype(dtype, copy=False)
        w: NDArray[np.floating] = weights[:, start:start + step].astype(dtype)
        out += w @ low
    return out


# ----- equal-mass bins of each replica, compiled ---------------------------------------------------
@cache
def _equal_mass_kernel() -> Any:
    import numba

    @numba.njit(cache=True, nogil=True)
    def sums(s, h, order, counts, prev, nxt, gamma, count, conf_sum, hit_sum):  # pragma: no cover
        n_inner = prev.shape[0]
        low = np.empty(n_inner)
        high = np.empty(n_inner)
        inner = np.empty(n_inner)
        for r in range(counts.shape[0]):
            w = counts[r]
            # The replica's t-th smallest value is s[j] for the first j whose running count
            # exceeds t; prev and nxt are non-decreasing.
            total = 0
            a = b = 0
            for j in range(s.shape[0]):
                total += w[order[j]]
                while a < n_inner and prev[a] < total:
                    low[a] = s[j]
                    a += 1
                while b < n_inner and nxt[b] < total:
                    high[b] = s[j]
                    b += 1
                if b == n_inner:
                    break
            for i in range(n_inner):  # np.quantile's interpolation, rounded as it rounds
                diff = high[i] - low[i]
                if gamma[i] >= 0.5:
                    inner[i] = high[i] - diff * (1 - gamma[i])
                else:
                    inner[i] = low[i] + diff * gamma[i]
            k = 0  # right-closed bins: a value's bin is the number of inner edges below it
            for j in range(s.shape[0]):
                c = w[order[j]]
                if c == 0:
                    continue
                while k < n_inner and inner[k] < s[j]:
                    k += 1
                count[r, k] += c
                conf_sum[r, k] += c * s[j]
                hit_sum[r, k] += c * h[j]

    return sums


def equal_mass_sums(
    s: NDArray[np.float64], h: NDArray[np.float64], order: NDArray[np.intp], counts: NDArray,
    prev: NDArray[np.intp], nxt: NDArray[np.intp], gamma: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]] | None:
    """Each replica's count, value sum and ``h`` sum per equal-mass bin, each of shape
    (n_replicas, len(prev) + 1); None for fewer than :data:`MIN_COMPILED` (replica, sample) pairs.

    ``s`` holds the values sorted, ``h`` a weight of each (e.g. correctness) in the same order,
    ``order[j]`` the sample of ``s[j]`` and ``counts[r, i]`` how many times replica ``r`` draws
    sample ``i``. The replica's inner edges interpolate its order statistics ``prev`` and ``nxt``
    with weights ``gamma`` (from ``np.quantile``'s linear method, for all replicas alike since
    each has ``n`` values); its bins are right-closed. Two passes over ``s`` per replica, no
    temporary of the replica's size.
    """
    reps, n = counts.shape
    if reps * n < MIN_COMPILED:
        return None
    shape = (reps, len(prev) + 1)
    count, conf_sum, hit_sum = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    _equal_mass_kernel()(s, h, order, np.ascontiguousarray(counts), prev, nxt, gamma, count,
                         conf_sum, hit_sum)
    return count, conf_sum, hit_sum
