"""Bootstrap confidence intervals of top-label ECE: labviz against scipy.stats.bootstrap.

* ``ece-ci``: the 95% percentile interval of top-label ECE (15 equal-width bins, L1) with 1,000
  replicas, ``labviz.compute.calibration.calibration_interval`` vs ``scipy.stats.bootstrap`` (method
  "percentile", the same ``n_resamples``; its statistic recomputes
  the same ECE, ``reliability_curve_binary(correct, confidence).calibration_error()``, on each
  resample of the 1-D top-label confidence and correctness, read off the matrix once outside the
  timing, which favours scipy).
  scipy runs only where it takes seconds (N <= 1e5 in full runs); the goal, the interval at
  N = 1e6, C = 100 in under 1 s, is labviz alone.

The read-once bound is one ``max`` over the probability array, as in ``bench_calibration``.
"""

from __future__ import annotations

import numpy as np

from bench_calibration import make_probs
from timing import best_of, goal, make_row, skipped

N_BINS = 15
N_BOOT = 1000
FULL = ((10_000, 100), (100_000, 100), (1_000_000, 100))
QUICK = ((1_000, 10), (10_000, 100))
#: scipy.stats.bootstrap is timed up to this many samples (1,000 ECEs at 1e5 take ~4 s).
SCIPY_MAX_N = {False: 100_000, True: 1_000}
#: The interval at N = 1e6, C = 100 within this many seconds.
GOAL_SECONDS = 1.0


def run(quick: bool = False, log=print) -> list[dict]:
    from scipy import stats

    import labviz.compute.calibration as lc
    from labviz.core import _scan

    # The compiled scan is loaded (or compiled) on the first big input, once per process.
    y, p = make_probs(_scan.MIN_ENTRIES // 10 + 1, 10)
    lc.calibration_interval(y, p, n_boot=10)
    rows = []
    for n, c in (QUICK if quick else FULL):
        y, p = make_probs(n, c)
        kw = {"budget": 0.5, "max_reps": 3} if quick else {"budget": 3.0, "max_reps": 5}
        params = {"n_samples": n, "n_classes": c, "n_bins": N_BINS, "n_boot": N_BOOT,
                  "dtype": "float32", "confidence": 0.95}
        lab = best_of(lambda: lc.calibration_interval(y, p, n_bins=N_BINS, n_boot=N_BOOT), **kw)
        ci = lab.value
        lab.value = {"estimate": ci.estimate, "low": ci.low, "high": ci.high}

        if n <= SCIPY_MAX_N[quick]:
            pred = p.argmax(axis=1)
            conf = p[np.arange(n), pred].astype(np.float64)
            hit = (pred == y).astype(np.int64)

            def scipy_ci():
                # The top-label ECE is the binary calibration error of (confidence, correct).
                res = stats.bootstrap(
                    (np.arange(n),), lambda i: lc.reliability_curve_binary(
                        hit[i], conf[i], n_bins=N_BINS).calibration_error("l1"),
                    vectorized=False, n_resamples=N_BOOT, batch=50, method="percentile",
                    rng=np.random.default_rng(0))
                return res.confidence_interval

            sc = best_of(scipy_ci, max_reps=1)
            sc.value = {"low": float(sc.value.low), "high": float(sc.value.high),
                        "abs_diff_low_to_labviz": abs(float(sc.value.low) - ci.low),
                        "abs_diff_high_to_labviz": abs(float(sc.value.high) - ci.high)}
        else:
            sc = skipped(f"scipy.stats.bootstrap recomputes the ECE 1,000 times; timed only up "
                         f"to N={SCIPY_MAX_N[quick]:.0e}")
        bound = best_of(lambda: float(p.max()), **kw)
        row = make_row("calibration-ci", f"ece-ci N={n:.0e} C={c}", params, labviz=lab,
                       peers={"scipy.stats.bootstrap": sc}, bound=bound)
        goals = [goal("≤ fastest peer", row["ratio_to_fastest_peer"], 1.0)] if sc.seconds else []
        if (n, c) == (1_000_000, 100):
            goals.append(goal("95% CI < 1 s", lab.seconds, GOAL_SECONDS, unit="s",
                              why="1,000 replicas at 1e6 x 100 float32"))
        row["goals"] = goals
        rows.append(row)
        peer = f"{sc.seconds:.3f}s" if sc.seconds else "skipped"
        ratio = row["ratio_to_fastest_peer"]
        log(f"  {row['case']:<24} labviz {lab.seconds:.4f}s  (scipy.stats.bootstrap {peer})"
            + (f"  scipy/labviz {1 / ratio:,.0f}×" if ratio else ""))
        del p
    return rows
