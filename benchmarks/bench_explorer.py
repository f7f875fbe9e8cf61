"""Explorer: server-side latency of the interaction handlers (no browser), at 10k, 70k and 1M points.

The explorer (``labviz.explore``) is built on two synthetic prediction sets with features
(side-by-side panels, PCA, projections precomputed when the explorer is built, as in use). Each
handler a click, lasso, dropdown, slider or button triggers is then called directly and timed:
that is the Python work between the browser's event and the trace updates sent back. Goal: under
300 ms.

The calibration rows: a temperature-slider move (alternating T = 1.5 and 0.8, so that every move
computes a new softmax of both models' logits), the "Fitted T" button (these Predictions have no
validation set, so T is fitted on the N shown samples of the left model; the remembered fit is
forgotten before each press, so every press fits), and a click on the fullest reliability bin of
the left model (chosen on the diagram of all samples; a repeated click selects the same samples).

The finds rows (``labviz.widgets.finds``), once the models' neighbour index, regions and slices
are built (the build itself is ``bench_neighbours``'): a click on a point (its 10 neighbours
listed), a click on the region of largest ECE (its samples selected) and a colouring by the local
calibration gap and back (the gap computed at the current temperature for both models).
"""

from __future__ import annotations

import numpy as np

from timing import best_of, goal, make_row, skipped

FULL_SIZES = (10_000, 70_000, 1_000_000)
QUICK_SIZES = (2_000,)
LIMIT_S = 0.3


def _predictions(n: int, seed: int):
    from labviz.core.predictions import Predictions

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    logits = rng.normal(size=(n, 10)).astype(np.float32)
    logits[np.arange(n), y] += 2.5
    centres = rng.normal(scale=4.0, size=(10, 64))
    feats = (centres[y] + rng.normal(size=(n, 64))).astype(np.float32)
    return Predictions.from_arrays(y_true=y, logits=logits, features=feats,
                                   name=f"synthetic-{seed}")


def explorer_unavailable_row(reason: str) -> dict:
    """The row recorded when the explorer cannot be benchmarked."""
    row = make_row("explorer", "explorer handlers", {}, labviz=skipped(reason))
    row["goals"] = [goal(f"< {LIMIT_S * 1000:.0f} ms", None, LIMIT_S, unit="s", why=reason)]
    return row


def run(quick: bool = False, log=print) -> list[dict]:
    try:
        from labviz.widgets import explore
    except ImportError as exc:
        log(f"  explorer not available ({exc})")
        return [explorer_unavailable_row(f"explorer not available ({exc})")]

    rows = []
    kw = {"budget": 0.5, "max_reps": 3} if quick else {"budget": 2.0, "max_reps": 5}
    for n in QUICK_SIZES if quick else FULL_SIZES:
        a, b = _predictions(n, 0), _predictions(n, 1)
        build = best_of(lambda: explore([a, b], method="pca"), max_reps=1)
        ex = build.value
        build.value = None
        lasso = np.sort(np.random.default_rng(2).choice(a.ids, size=n // 10, replace=False))
        temperatures = iter(np.tile([1.5, 0.8], 1000))

        def fitted_t():
            ex.data.fitted_temperatures.clear()  # time the fit, not the remembered result
            ex.use_fitted_temperature()

        target: list = []

        def bin_click():
            if not target:  # the fullest bin of the diagram of all samples, at the current T
                ex.clear_selection()
                label = next(iter(ex.curves))
                target.extend([label, int(np.argmax(ex.curves[label].count))])
            assert ex.select_bin(*target).size

        ex.finds.build()
        ex.finds.wait()
        point = int(a.ids[n // 3])

        def local_gap_and_back():
            ex.set_color("local_gap")
            ex.set_color("class")
            ex.finds._gaps.clear()  # time the gap, not the remembered one

        handlers = {
            "select_cell": lambda: ex.select_cell(3, 5),
            "select_points (10% lasso)": lambda: ex.select_points(lasso),
            "clear_selection": ex.clear_selection,
            "set_color confidence": lambda: ex.set_color("confidence"),
            "set_temperature (slider move)": lambda: ex.set_temperature(next(temperatures)),
            "use_fitted_temperature (button)": fitted_t,
            "select_bin (reliability click)": bin_click,
            "set_classes (5 of 10)": lambda: ex.set_classes([0, 1, 2, 3, 4]),
            "show_neighbours (point click)": lambda: ex.finds.show_neighbours(point),
            "select_region (region click)": lambda: ex.finds.select_region(0),
            "set_color local_gap and back": local_gap_and_back,
        }
        for name, fn in handlers.items():
            t = best_of(fn, **kw)
            t.value = None
            row = make_row("explorer", f"{name} N={n}", {"n_samples": n, "panels": 2,
                                                        "method": "pca"}, labviz=t)
            row["goals"] = [goal(f"< {LIMIT_S * 1000:.0f} ms", t.seconds, LIMIT_S, unit="s")]
            rows.append(row)
            log(f"  {row['case']:<36} {t.seconds * 1000:8.1f} ms")
        row = make_row("explorer", f"build (explore) N={n}", {"n_samples": n, "panels": 2,
                                                               "method": "pca"}, labviz=build,
                       notes="includes two PCA projections; not an interaction handler")
        rows.append(row)
        log(f"  {row['case']:<36} {build.seconds * 1000:8.1f} ms (build, no goal)")
    return rows
