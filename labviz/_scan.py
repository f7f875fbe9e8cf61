"""One compiled pass over a big probability matrix: row sums, top class, top value, smallest entry.

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
    @numba.njit(cache=True, nogil=True, fastmath={"reassoc"})
    def scan(p, bits, sums, top, pred):  # pragma: no cover - compiled
        lo = bits[0, 0]
        for i in range(p.shape[0]):
            total = 0.0
            hi = bits[i, 0]
            for j in range(p.shape[1]):
                total += p[i, j]
                hi = max(hi, bits[i, j])
                lo = min(lo, bits[i, j])
            k = 0
            while bits[i, k] != hi:  # the first maximum, as np.argmax
                k += 1
            sums[i] = total
            top[i] = p[i, k]
            pred[i] = k
        return lo

    return scan


def row_stats(
    p: NDArray[np.floating],
) -> tuple[NDArray[np.float64], NDArray[np.intp], NDArray[np.float64], float] | None:
    """Row sums, top class, top value and smallest entry of a float32/float64 matrix of shape
    (n_samples, n_classes), or None if an entry is not in [+0, +inf)."""
    p = np.ascontiguousarray(p)
    n = p.shape[0]
    sums, top, pred = np.empty(n), np.empty(n), np.empty(n, dtype=np.intp)
    lo = _kernel()(p, p.view(_BITS[p.dtype]), sums, top, pred)
    # A negative entry (or -0.0) has the sign bit, so the smallest pattern is negative; +inf and
    # NaN patterns lie above every finite one, so a row holding one has a non-finite top.
    if lo < 0 or not np.isfinite(top).all():
        return None
    return sums, pred, top, float(np.array(lo, dtype=_BITS[p.dtype]).view(p.dtype))
