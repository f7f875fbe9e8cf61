"""Label-error candidates at ImageNet scale, beside cleanlab called directly.

Synthetic ImageNet-like predictions (:func:`bench_calibration_report.make_imagenet_like`: 50,000 x
1,000 float32 logits, 76% top-1), softmaxed to float64 probabilities once, outside the timings.
The given labels are the generated ones with 2% of them moved to another class (seeded), so that
there are errors to find.

* ``find_label_errors``: labviz's ranked table (``prune_by_noise_rate``, ranked by self-confidence)
  beside ``cleanlab.filter.find_label_issues`` with the same options: what labviz's validation and
  table cost on top of cleanlab's work. ``value`` is the number flagged; they must agree. cleanlab
  runs with its default ``n_jobs`` (a process per core); labviz passes ``n_jobs=1``, which at
  this size is the faster of the two.
* ``find_label_errors_batched``: the streamed path ``labviz report`` takes from 2**26
  probabilities (``Predictions.prob_chunks``, cleanlab's ``LabelInspector``), beside cleanlab's
  ``find_label_issues_batched`` on the same in-memory probabilities (``filter_by`` low
  self-confidence): a pass over row chunks rather than the whole matrix at once. labviz's time
  includes the softmax of every chunk, twice (``Predictions`` holds logits; ``LabelInspector``
  reads the chunks in two passes), which cleanlab, handed the probabilities in memory, skips:
  about half of labviz's time here (profiled).
* the share of the moved labels each finds (recall), in the notes.
"""

from __future__ import annotations

import numpy as np
from bench_calibration_report import make_imagenet_like
from timing import Timing, best_of, make_row

PART = "label-errors"
FULL = {"n": 50_000, "c": 1_000}
QUICK = {"n": 3_000, "c": 100}
NOISE = 0.02


def _inputs(n: int, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Given labels (2% moved), float64 probabilities, and which labels were moved."""
    y, z = make_imagenet_like(n, c)
    z = z.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    rng = np.random.default_rng(2)
    moved = rng.random(n) < NOISE
    given = y.copy()
    given[moved] = (y[moved] + rng.integers(1, c, moved.sum())) % c
    return given, z, moved


def run(quick: bool = False, log=print) -> list[dict]:
    from cleanlab.experimental.label_issues_batched import find_label_issues_batched
    from cleanlab.filter import find_label_issues

    from labviz import Predictions
    from labviz.compute.label_quality import find_label_errors, find_label_errors_batched

    size = QUICK if quick else FULL
    n, c = size["n"], size["c"]
    kw = {"budget": 0.5, "max_reps": 2} if quick else {"budget": 20.0, "max_reps": 3}
    given, probs, moved = _inputs(n, c)
    params = {"n_samples": n, "n_classes": c, "moved_share": NOISE}

    def recall(flagged_rows: np.ndarray) -> float:
        return float(moved[flagged_rows].sum() / moved.sum())

    lab = best_of(lambda: find_label_errors(given, probs), **kw)
    lab_rows = np.asarray(lab.value["id"]) if lab.value is not None else np.array([], dtype=int)
    peer = best_of(lambda: find_label_issues(given, probs, filter_by="prune_by_noise_rate",
                                             return_indices_ranked_by="self_confidence"), **kw)
    peer_rows = np.asarray(peer.value)
    agree = set(lab_rows.tolist()) == set(peer_rows.tolist())
    lab.value, peer.value = len(lab_rows), len(peer_rows)
    rows = [make_row(PART, f"find_label_errors N={n} C={c}", params, labviz=lab,
                     peers={"cleanlab find_label_issues": peer},
                     notes=f"{lab.value} flagged (cleanlab {peer.value}; same rows: {agree}); "
                           f"recall of the moved labels {recall(lab_rows):.3f}")]
    log(f"  find_label_errors: {lab.seconds:.2f} s, cleanlab {peer.seconds:.2f} s, "
        f"{lab.value} flagged, same rows {agree}")

    p = Predictions.from_arrays(y_true=given, probs=probs, name="imagenet-like")
    batched = best_of(lambda: find_label_errors_batched(given, p.prob_chunks), **kw)
    b_rows = np.asarray(batched.value["id"])
    peer_b = best_of(lambda: find_label_issues_batched(labels=given, pred_probs=probs,
                                                       batch_size=16_384, verbose=False,
                                                       n_jobs=1), **kw)
    pb_rows = np.flatnonzero(np.asarray(peer_b.value)) if np.asarray(peer_b.value).dtype == bool \
        else np.asarray(peer_b.value)
    overlap = len(set(b_rows.tolist()) & set(pb_rows.tolist())) / max(1, len(pb_rows))
    batched.value, peer_b.value = len(b_rows), len(pb_rows)
    rows.append(make_row(PART, f"find_label_errors_batched N={n} C={c}", params, labviz=batched,
                         peers={"cleanlab find_label_issues_batched": peer_b},
                         notes=f"{batched.value} flagged (cleanlab {peer_b.value}, {overlap:.3f} "
                               f"of cleanlab's rows also flagged); recall of the moved labels "
                               f"{recall(b_rows):.3f}"))
    log(f"  find_label_errors_batched: {batched.seconds:.2f} s, cleanlab batched "
        f"{peer_b.seconds:.2f} s, {batched.value} flagged")
    return rows


if __name__ == "__main__":
    import json
    import sys

    out = run(quick="--quick" in sys.argv)
    print(json.dumps([{k: r[k] for k in ("case", "notes")} for r in out], indent=1))
