"""One compiled pass over a big probability matrix: row sums, top class, top value, smallest entry,
and (for top-label calibration on equal-width bins) the per-bin statistics too.

numpy needs three reads of the matrix for these (a matrix-vector product, ``argmax`` and ``min``),
and its ``argmax`` along short rows is slow. This numba kernel reads each row once. It compares the
entries as integers: for IEEE floats >= +0 the bit patterns order as the values do, and integer
maxima vectorise where float maxima (with their NaN rules) do not. So it only answers for matrices
whose entries are all in [+0, +inf); for anything else (a negative entry, -0.0, inf or NaN)
:func:`row_stats` returns None and the caller takes the numpy path, which words the error.

numba is a dependency already (umap-learn's). It is imported on first use and the kernel is cached
on disk, so importing labviz and small inputs never pay for it. The kernel is serial: numba's
parallel layers are either not fork-safe (OpenMP) or not thread-safe (workqueue).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Matrices with fewer entries use numpy: loading the compiled kernel costs more than it saves.
MIN_ENTRIES = 1 << 18

_BITS = {np.dtype(np.float32): np.int32, np.dtype(np.float64): np.int64}


@cache
def _kernel() -> Any:
    import numba

    # "reassoc" lets the row sum vectorise; full fastmath would also assume no NaN or inf.
    jit = numba.njit(cache=True, nogil=True, fastmath={"reassoc"})

    @jit
    def row(p, bits, i):  # pragma: no cover - compiled
        """Row i's sum, smallest bit pattern and top class (its first maximum, as np.argmax)."""
        total = 0.0
        lo = hi = bits[i, 0]
        for j in range(p.shape[1]):
            total += p[i, j]
            hi = max(hi, bits[i, j])
            lo = min(lo, bits[i, j])
        k = 0
        while bits[i, k] != hi:
            k += 1
        return total, lo, k

    @jit
    def scan(p, bits, sums, top, pred):  # pragma: no cover - compiled
        lo = bits[0, 0]
        for i in range(p.shape[0]):
            total, row_lo, k = row(p, bits, i)
            lo = min(lo, row_lo)
            sums[i], top[i], pred[i] = total, p[i, k], k
        return lo

    @jit
    def scan_bins(p, bits, y, edges, count, conf_sum, hit_sum):  # pragma: no cover - compiled
        n_bins = edges.shape[0] - 1
        lo = bits[0, 0]
        hi = 0.0
        worst_sum = 1.0  # the row sum furthest from 1
        for i in range(p.shape[0]):
            total, row_lo, k = row(p, bits, i)
            lo = min(lo, row_lo)
            c = float(p[i, k])
            if not np.isfinite(c):  # inf or NaN in this row: the caller takes the numpy path
                return lo, np.inf, worst_sum
            hi = max(hi, c)
            if abs(total - 1.0) > abs(worst_sum - 1.0):
                worst_sum = total
            # calibration._bin_index, one value at a time: ceil(c n) - 1, then the edge fix
            b = min(max(int(np.ceil(c * n_bins)) - 1, 0), n_bins - 1)
            if b > 0 and c <= edges[b]:
                b -= 1
            if b < n_bins - 1 and c > edges[b + 1]:
                b += 1
            count[b] += 1.0
            conf_sum[b] += c
            if k == y[i]:
                hit_sum[b] += 1.0
        return lo, hi, worst_sum

    return scan, scan_bins


def row_stats(
    p: NDArray[np.floating],
) -> tuple[NDArray[np.float64], NDArray[np.intp], NDArray[np.float64], float] | None:
    """Row sums, top class, top value and smallest entry of a float32/float64 matrix of shape
    (n_samples, n_classes), or None if an entry is not in [+0, +inf)."""
    p = np.ascontiguousarray(p)
    n = p.shape[0]
    sums, top, pred = np.empty(n), np.empty(n), np.empty(n, dtype=np.intp)
    lo = _kernel()[0](p, p.view(_BITS[p.dtype]), sums, top, pred)
    # A negative entry (or -0.0) has the sign bit, so the smallest pattern is negative; +inf and
    # NaN patterns lie above every finite one, so a row holding one has a non-finite top.
    if lo < 0 or not np.isfinite(top).all():
        return None
    return sums, pred, top, float(np.array(lo, dtype=_BITS[p.dtype]).view(p.dtype))


def top_label_bins(
    p: NDArray[np.floating], y: NDArray[np.int64], edges: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float, float, float] | None:
    """Top-label statistics on sorted ``edges`` in one read of ``p``, binned as
    :func:`labviz.compute.calibration._bin_index` bins: per-bin count, confidence sum and hit sum, then the
    smallest entry, the largest top probability, and the row sum furthest from 1. None if an entry
    is not in [+0, +inf). ``y`` must hold valid labels."""
    p = np.ascontiguousarray(p)
    n_bins = len(edges) - 1
    count, conf_sum, hit_sum = np.zeros(n_bins), np.zeros(n_bins), np.zeros(n_bins)
    lo, hi, worst_sum = _kernel()[1](p, p.view(_BITS[p.dtype]), y, edges, count, conf_sum, hit_sum)
    if lo < 0 or not np.isfinite(hi):
        return None
    lo_value = float(np.array(lo, dtype=_BITS[p.dtype]).view(p.dtype))
    return count, conf_sum, hit_sum, lo_value, float(hi), float(worst_sum)
