"""Confusion matrix: ``labviz.compute.confusion.confusion_matrix`` vs ``sklearn.metrics.confusion_matrix``."""

from __future__ import annotations

import numpy as np

from timing import best_of, goal, make_row

FULL_N = (10_000, 100_000, 1_000_000)
FULL_C = (10, 100, 1000)
QUICK_N = (1_000, 10_000)
QUICK_C = (10, 100)


def run(quick: bool = False, log=print) -> list[dict]:
    from sklearn.metrics import confusion_matrix as sk_confusion

    from labviz.compute.confusion import confusion_matrix

    rows = []
    sizes_n, sizes_c = (QUICK_N, QUICK_C) if quick else (FULL_N, FULL_C)
    kw = {"budget": 0.2, "max_reps": 3} if quick else {"budget": 2.0, "max_reps": 7}
    for c in sizes_c:
        for n in sizes_n:
            rng = np.random.default_rng(0)
            y = rng.integers(0, c, n)
            pred = np.where(rng.random(n) < 0.8, y, rng.integers(0, c, n))
            labels = np.arange(c)
            lab = best_of(lambda: confusion_matrix(y, pred, n_classes=c), **kw)
            sk = best_of(lambda: sk_confusion(y, pred, labels=labels), **kw)
            same = bool(np.array_equal(lab.value, sk.value))
            lab.value = sk.value = None
            row = make_row("confusion", f"confusion N={n:.0e} C={c}",
                           {"n_samples": n, "n_classes": c}, labviz=lab, peers={"sklearn": sk},
                           notes="" if same else "MATRICES DIFFER")
            row["goals"] = [goal("≤ fastest peer", row["ratio_to_fastest_peer"], 1.0)]
            row["agrees_with_peer"] = same
            rows.append(row)
            log(f"  {row['case']:<28} labviz {lab.seconds:.4f}s  sklearn {sk.seconds:.4f}s  "
                f"ratio {row['ratio_to_fastest_peer']:.3f}  same={same}")
    return rows
