"""The calibration report at ImageNet scale: every estimator with its 95% interval.

Synthetic ResNet-50-like predictions (:func:`make_imagenet_like`): 50,000 samples x 1,000 classes of
float32 logits, 76% top-1 accuracy and over-confident (mean confidence 80%, top-label ECE 3.6%),
as a ResNet-50 on ImageNet val. ``Predictions.probs`` is their
float64 softmax.

* ``report``: ``CalibrationReportDisplay.from_predictions(p).plot()`` on a fresh ``Predictions``
  (its softmax included, as a user's first call pays it), 1,000 replicas per interval. Goal: under
  10 s on this 2-core machine.
* ``ci ...``: ``calibration_interval`` (1,000 replicas) of every metric it offers: top-label ECE on
  equal-width and equal-mass bins in the L1, L2 and max norms, the debiased ECE, class-wise ECE,
  the NLL and the Brier score. Beside it, peers computing the same point estimate on the same
  inputs (none of them gives an interval): torchmetrics' ``multiclass_calibration_error``
  (top-label, equal-width, each norm), netcal's ``ECE`` (equal-width; equal-mass with
  ``equal_intervals=False``), scikit-learn's ``log_loss`` and ``brier_score_loss``. The ratio
  then says what the estimate *and* its interval cost next to a peer's estimate alone; each
  peer's ``abs_diff_to_labviz`` (in results.json) checks that it computes the same number.
  Class-wise ECE on equal-mass bins re-bins every replica's rows (O(n_boot x N x C)): it is
  timed on 2 replicas and reported as skipped at 1,000.
* ``curve``: the report's top-label reliability curve against scikit-learn's
  ``calibration_curve`` on the top-label confidence and correctness; ``smooth ECE`` and
  ``ECE_sweep``: the report's estimators without an interval.

Peak memory: every labviz call is made with the process's peak RSS (``VmHWM``) reset just before
it; ``rss_added_bytes`` is that peak minus the RSS before the call (which holds the inputs:
logits 200 MB, probabilities 400 MB), ``peak_rss_bytes`` the peak itself. The report's row
includes the softmax of a fresh ``Predictions``, which alone adds a peak of 800 MB (the float64
copy of the logits and the probabilities); memory freed and reused within a call does not show.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from bench_projection_scale import _peak, _reset_peak, _status
from timing import Timing, best_of, goal, make_row, skipped

FULL = (50_000, 1_000)
QUICK = (3_000, 100)
N_BINS = 15
N_BOOT = {False: 1000, True: 100}
#: The whole report within this many seconds at 50,000 x 1,000.
GOAL_SECONDS = 10.0

#: Every interval ``calibration_interval`` offers: (case, its options, peers' names).
INTERVALS: tuple[tuple[str, dict, tuple[str, ...]], ...] = (
    ("ECE L1 equal-width", dict(), ("torchmetrics", "netcal")),
    ("ECE L2 equal-width", dict(norm="l2"), ("torchmetrics",)),
    ("ECE max equal-width", dict(norm="max"), ("torchmetrics",)),
    ("ECE L1 equal-mass", dict(strategy="quantile"), ("netcal",)),
    ("ECE L2 equal-mass", dict(strategy="quantile", norm="l2"), ()),
    ("ECE max equal-mass", dict(strategy="quantile", norm="max"), ()),
    ("debiased ECE equal-width", dict(metric="debiased_ece"), ()),
    ("debiased ECE equal-mass", dict(metric="debiased_ece", strategy="quantile"), ()),
    ("classwise ECE L1", dict(classwise=True), ()),
    ("classwise ECE L2", dict(classwise=True, norm="l2"), ()),
    ("classwise ECE max", dict(classwise=True, norm="max"), ()),
    ("classwise debiased ECE", dict(classwise=True, metric="debiased_ece"), ()),
    ("classwise ECE L1 equal-mass", dict(classwise=True, strategy="quantile"), ()),
    ("NLL", dict(metric="nll"), ("sklearn",)),
    ("Brier", dict(metric="brier"), ("sklearn",)),
)


def make_imagenet_like(n: int, c: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and float32 logits of an over-confident ImageNet-like classifier.

    Logits are standard normal noise plus, on one random class per sample, a margin drawn from
    N(9.4, 2^2). Labels are drawn from the softmax of those logits (Gumbel-max), which makes it
    calibrated; the returned logits are 1.05 times larger, which makes it over-confident without
    changing the predictions. At 50,000 x 1,000: 76.1% top-1, mean confidence 79.8%, top-label
    ECE 3.6% (15 bins).
    """
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, c), dtype=np.float32)
    z[np.arange(n), rng.integers(0, c, n)] += rng.normal(9.4, 2.0, n).astype(np.float32)
    y = np.empty(n, dtype=np.int64)
    step = max(1, (1 << 22) // c)
    for s in range(0, n, step):  # row blocks: bounded temporaries
        block = z[s:s + step]
        y[s:s + step] = (block - np.log(-np.log(rng.random(block.shape)))).argmax(axis=1)
    z *= np.float32(1.05)
    return y, z


def _timed(fn, *, reps: int) -> tuple[Timing, dict]:
    """best_of ``fn``, each call made with the peak RSS reset before it; the largest peak seen."""
    seen = {"peak_rss_bytes": 0, "rss_added_bytes": 0}

    def call():
        before = _status("VmRSS")
        _reset_peak()
        value = fn()
        peak = _peak()
        seen["peak_rss_bytes"] = max(seen["peak_rss_bytes"], peak)
        if before is not None:
            seen["rss_added_bytes"] = max(seen["rss_added_bytes"], peak - before)
        return value

    return best_of(call, budget=30.0, max_reps=reps), seen


def _peers(names, options, y, p, c) -> dict[str, Timing]:
    import torch
    import torchmetrics.functional.classification as tmf
    from netcal.metrics import ECE
    from sklearn.metrics import brier_score_loss, log_loss

    pt, yt = torch.from_numpy(p), torch.from_numpy(y)
    norm = options.get("norm", "l1")
    equal_width = options.get("strategy", "uniform") == "uniform"
    fns = {
        "torchmetrics": lambda: float(tmf.multiclass_calibration_error(
            pt, yt, num_classes=c, n_bins=N_BINS, norm=norm)),
        "netcal": lambda: float(ECE(bins=N_BINS, equal_intervals=equal_width).measure(p, y)),
        "sklearn": (lambda: float(log_loss(y, p, labels=np.arange(c)))) if options.get("metric") == "nll"
        else (lambda: float(brier_score_loss(y, p, labels=np.arange(c)))),
    }
    return {name: best_of(fns[name], budget=6.0, max_reps=3) for name in names}


def run(quick: bool = False, log=print) -> list[dict]:
    from sklearn.calibration import calibration_curve

    import labviz.compute.calibration as lc
    from labviz import Predictions
    from labviz.figures.calibration_report import CalibrationReportDisplay

    n, c = QUICK if quick else FULL
    n_boot = N_BOOT[quick]
    y, z = make_imagenet_like(n, c)
    base = Predictions.from_arrays(y_true=y, logits=z, name="resnet50-like")
    # Compiled kernels load (or compile, on a fresh checkout) once per process, and smooth ECE
    # imports relplot on its first call: a small report first, so that the timings are of later
    # calls, as for every peer.
    CalibrationReportDisplay.from_predictions(
        Predictions.from_arrays(y_true=y[:2000], logits=z[:2000]), n_boot=20).plot()
    params = {"n_samples": n, "n_classes": c, "n_bins": N_BINS, "n_boot": n_boot,
              "dtype": "float64 probabilities of float32 logits", "confidence": 0.95}
    rows = []

    def add(case, lab, seen, peers=None, goals=None, value=None):
        if isinstance(value, float):
            for t in (peers or {}).values():
                if isinstance(t.value, float):
                    t.value = {"estimate": t.value, "abs_diff_to_labviz": abs(t.value - value)}
        row = make_row("calibration-report", f"{case} N={n:.0e} C={c}", params, labviz=lab,
                       peers=peers, goals=goals)
        row.update(seen)
        rows.append(row)
        peer = ", ".join(f"{k} {t.seconds:.3f}s" for k, t in (peers or {}).items() if t.seconds)
        took = f"{lab.seconds:7.3f}s" if lab.seconds is not None else f"skipped ({lab.skip})"
        log(f"  {row['case']:<44} labviz {took}  peak +{seen.get('rss_added_bytes', 0) / 2**20:.0f} MB"
            + (f"  ({peer})" if peer else ""))

    def report():
        # A fresh Predictions: its softmax is computed in the call, as on a user's first one.
        fresh = dataclasses.replace(base)
        return CalibrationReportDisplay.from_predictions(fresh, n_boot=n_boot, n_bins=N_BINS).plot()

    lab, seen = _timed(report, reps=2)
    lab.value = None
    add("report", lab, seen, goals=[goal(f"< {GOAL_SECONDS:.0f} s", lab.seconds, GOAL_SECONDS,
                                         unit="s", why="1,000 replicas per interval")])

    p = base.probs
    for case, options, peer_names in INTERVALS:
        def ci(options=options, boot=n_boot):
            return lc.calibration_interval(y, p, n_bins=N_BINS, n_boot=boot, **options)

        if options.get("classwise") and options.get("strategy") == "quantile":
            start = time.perf_counter()
            ci(boot=2)
            per_replica = (time.perf_counter() - start) / 2
            lab = skipped(f"re-bins each replica's {n:,} x {c:,} rows: {per_replica:.1f} s per "
                          f"replica, about {per_replica * n_boot / 60:.0f} min for {n_boot:,}")
            add(case, lab, {})
            continue
        lab, seen = _timed(ci, reps=2)
        interval = lab.value
        lab.value = {"estimate": interval.estimate, "low": interval.low, "high": interval.high}
        add(case, lab, seen, peers=_peers(peer_names, options, y, p, c), value=interval.estimate)

    def sk_curve():
        # The top-label confidence and correctness, which a user of scikit-learn has to compute.
        pred = p.argmax(axis=1)
        return calibration_curve(pred == y, p[np.arange(n), pred], n_bins=N_BINS)

    lab, seen = _timed(lambda: lc.reliability_curve(y, p, n_bins=N_BINS), reps=3)
    lab.value = None
    add("curve", lab, seen, peers={"sklearn": best_of(sk_curve, budget=3.0, max_reps=3)})
    for case, fn in (("smooth ECE", lambda: lc.smooth_ece(y, p)),
                     ("ECE_sweep", lambda: lc.ece_sweep(y, p).ece)):
        lab, seen = _timed(fn, reps=3)
        add(case, lab, seen)
    return rows
