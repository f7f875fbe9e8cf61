"""Calibration metrics: labviz against torchmetrics, netcal and scikit-learn on the same float32 inputs.

Three tasks per size:

* ``ece``: top-label ECE (15 uniform bins, L1): ``labviz.compute.calibration.expected_calibration_error``
  vs ``torchmetrics.functional.classification.multiclass_calibration_error`` vs
  ``netcal.metrics.ECE(15).measure``.
* ``curve``: top-label reliability curve: ``labviz.compute.calibration.reliability_curve`` vs
  ``sklearn.calibration.calibration_curve`` on the top-label confidence and correctness (the numpy
  lines that compute those are timed with it: a user of scikit-learn has to write them).
* ``curve-binary``: ``labviz.compute.calibration.reliability_curve_binary`` vs ``calibration_curve`` on a
  1-D positive-class probability.
* ``top-of-rows``: only the top class and probability of each row, the first step of any
  top-label metric: labviz's compiled scan (``labviz.core._scan``, which also takes the row sums and the
  minimum) vs numpy's ``argmax`` plus a gather vs ``torch.max(dim=1)``. It shows how far from the
  read-once bound that step alone is at small C.

The read-once bound is one ``max`` over the probability array (``probs.max()``): any calibration
metric has to read every probability at least once.
"""

from __future__ import annotations

import numpy as np

from timing import Timing, best_of, goal, make_row, mem_available_bytes, skipped

N_BINS = 15
FULL_N = (10_000, 100_000, 1_000_000)
FULL_C = (10, 100, 1000)
QUICK_N = (1_000, 10_000)
QUICK_C = (10, 100)
#: Extra memory a peer needs, as a multiple of the probability array's bytes (measured with
#: ru_maxrss at 1e5 x 1000 float32: netcal copies to float64 and more, torchmetrics ~0.8x).
EXTRA_MEMORY = {"netcal": 2.2, "torchmetrics": 1.0, "labviz": 0.05, "sklearn": 0.1}
#: netcal is a pure-numpy loop with float64 copies: one repetition above this many entries.
NETCAL_SINGLE_REP = 10_000_000


def make_probs(n: int, c: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and float32 softmax probabilities of a better-than-chance classifier, in place."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    p = rng.standard_normal((n, c), dtype=np.float32)
    p *= 2.0
    p[np.arange(n), y] += 2.5
    step = max(1, (1 << 24) // c)  # row blocks: bounded temporaries at 1e6 x 1000
    for s in range(0, n, step):
        block = p[s:s + step]
        block -= block.max(axis=1, keepdims=True)
        np.exp(block, out=block)
        block /= block.sum(axis=1, keepdims=True)
    return y, p


def _fits(peer: str, nbytes: int) -> str | None:
    """None if the peer's extra memory fits in what is available (with 2 GB to spare), else why not."""
    need = EXTRA_MEMORY[peer] * nbytes
    avail = mem_available_bytes()
    if avail is not None and need > avail - 2 * 2**30:
        return (f"needs ~{need / 2**30:.1f} GB more memory than the input; "
                f"{avail / 2**30:.1f} GB available")
    return None


def _time(peer: str, fn, nbytes: int, **kw) -> Timing:
    reason = _fits(peer, nbytes)
    if reason:
        return skipped(reason)
    try:
        return best_of(fn, **kw)
    except MemoryError:
        return skipped("MemoryError")


def _budget(n: int, c: int, quick: bool) -> dict:
    if quick:
        return {"budget": 0.2, "max_reps": 3}
    return {"budget": 3.0 if n * c < 10**8 else 6.0, "max_reps": 7}


def run(quick: bool = False, log=print) -> list[dict]:
    import torch
    import torchmetrics.functional.classification as tmf
    from netcal.metrics import ECE
    from sklearn.calibration import calibration_curve

    import labviz.compute.calibration as lc
    from labviz.core import _scan

    torch_threads = torch.get_num_threads()
    # The compiled scan is loaded (or, on a fresh checkout, compiled) on its first big input, once
    # per process; the timings below are of later calls, as for every peer.
    y, p = make_probs(_scan.MIN_ENTRIES // 10 + 1, 10)
    first_call = best_of(lambda: lc.expected_calibration_error(y, p), max_reps=1)
    log(f"  compiled scan: first call {first_call.seconds:.2f} s (load or compile, once per process)")
    rows = []
    sizes_n, sizes_c = (QUICK_N, QUICK_C) if quick else (FULL_N, FULL_C)
    for c in sizes_c:
        for n in sizes_n:
            y, p = make_probs(n, c)
            nbytes = p.nbytes
            kw = _budget(n, c, quick)
            params = {"n_samples": n, "n_classes": c, "n_bins": N_BINS, "dtype": "float32",
                      "torch_threads": torch_threads}
            bound = best_of(lambda: float(p.max()), **kw)

            # --- ECE ---------------------------------------------------------------------------
            lab = _time("labviz", lambda: lc.expected_calibration_error(y, p, n_bins=N_BINS), nbytes, **kw)
            pt, yt = torch.from_numpy(p), torch.from_numpy(y)
            peers = {
                "torchmetrics": _time("torchmetrics", lambda: float(tmf.multiclass_calibration_error(
                    pt, yt, num_classes=c, n_bins=N_BINS, norm="l1")), nbytes, **kw),
                "netcal": _time("netcal", lambda: float(ECE(bins=N_BINS).measure(p, y)), nbytes,
                                **(kw if n * c < NETCAL_SINGLE_REP else {"max_reps": 1})),
            }
            rows.append(_row("ece", params, lab, peers, bound))
            log(_line(rows[-1]))

            # --- top-label reliability curve -----------------------------------------------------
            def sk_curve():
                pred = p.argmax(axis=1)
                conf = p[np.arange(len(p)), pred]
                return calibration_curve(pred == y, conf, n_bins=N_BINS)

            lab = _time("labviz", lambda: lc.reliability_curve(y, p, n_bins=N_BINS), nbytes, **kw)
            peers = {"sklearn": _time("sklearn", sk_curve, nbytes, **kw)}
            rows.append(_row("curve", params, lab, peers, bound))
            log(_line(rows[-1]))
            del p, pt

    for c in sizes_c[:2]:  # where the read-once bound goes: the first step of any top-label metric
        n = sizes_n[-1]
        y, p = make_probs(n, c)
        rows.append(_top_of_rows(p, _budget(n, c, quick)))
        log(_line(rows[-1]))
        del p

    for n in sizes_n:  # binary: one probability per sample
        rng = np.random.default_rng(1)
        q = rng.random(n).astype(np.float32)
        yb = (rng.random(n) < q).astype(np.int64)
        kw = _budget(n, 1, quick)
        bound = best_of(lambda: float(q.max()), **kw)
        lab = best_of(lambda: lc.reliability_curve_binary(yb, q, n_bins=N_BINS), **kw)
        peers = {"sklearn": best_of(lambda: calibration_curve(yb, q, n_bins=N_BINS), **kw)}
        rows.append(_row("curve-binary", {"n_samples": n, "n_classes": 2, "n_bins": N_BINS,
                                          "dtype": "float32"}, lab, peers, bound))
        log(_line(rows[-1]))
    return rows


def _top_of_rows(p: np.ndarray, kw: dict) -> dict:
    """Time only the top class and probability of each row: labviz's compiled scan (which also
    sums the rows and finds the minimum) against numpy's argmax plus a gather and torch's max(dim=1).
    """
    import torch

    from labviz.core import _scan

    pt = torch.from_numpy(p)
    params = {"n_samples": len(p), "n_classes": p.shape[1], "dtype": "float32",
              "torch_threads": torch.get_num_threads()}
    peers = {
        "numpy argmax": best_of(lambda: p[np.arange(len(p)), p.argmax(axis=1)], **kw),
        "torch max(dim=1)": best_of(lambda: torch.max(pt, 1), **kw),
    }
    row = make_row("calibration", f"top-of-rows N={len(p):.0e} C={p.shape[1]}", params,
                   labviz=best_of(lambda: _scan.row_stats(p), **kw), peers=peers,
                   bound=best_of(lambda: float(p.max()), **kw))
    row["goals"] = []  # a breakdown of where time goes, not a promise: the scan does more than its peers
    return row


def _row(task: str, params: dict, lab: Timing, peers: dict, bound: Timing) -> dict:
    case = f"{task} N={params['n_samples']:.0e} C={params['n_classes']}"
    if isinstance(lab.value, float):
        # agreement: every peer computes the same ECE (up to the bin-edge convention)
        for t in peers.values():
            if isinstance(t.value, float):
                t.value = {"ece": t.value, "abs_diff_to_labviz": abs(t.value - lab.value)}
    else:
        lab.value = None
        for t in peers.values():
            t.value = None
    row = make_row("calibration", case, params, labviz=lab, peers=peers, bound=bound)
    row["goals"] = [
        goal("≤ fastest peer", row["ratio_to_fastest_peer"], 1.0),
        goal("≤ 3× read-once bound", row["ratio_to_bound"], 3.0),
    ]
    return row


def _line(row: dict) -> str:
    def fmt(x):
        return "  n/a" if x is None else f"{x:5.2f}"
    peers = ", ".join(f"{k} {v['seconds']:.4f}s" if v["seconds"] is not None else f"{k} skipped"
                      for k, v in row["peers"].items())
    return (f"  {row['case']:<28} labviz {row['labviz']['seconds']:.4f}s  ({peers})  "
            f"vs peer {fmt(row['ratio_to_fastest_peer'])}  vs bound {fmt(row['ratio_to_bound'])}")
