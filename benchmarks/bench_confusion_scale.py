"""Confusion at 1,000 classes: the clustered order, the heat map's build, size and paint, a zoom.

Synthetic ImageNet-like predictions (``make_imagenet_like``: 50,000 x 1,000 float32 logits, 76%
top-1), and the 1.28M-sample training-set case, whose counts come from 1.28M labels generated and
counted 64k at a time (``ConfusionAccumulator``; the 1,000 x 1,000 matrix is the same size). Rows:

* the matrix from the logits (argmax, then counts) beside ``sklearn.metrics.confusion_matrix``,
  with the memory traced while ``ConfusionDisplay.from_predictions`` and ``per_class_table`` run
  (no softmax: the goal is far less than the logits' own size);
* ``class_order`` beside scipy's ``linkage(..., optimal_ordering=True)``, what it ran before;
* building ``confusion_figure`` in the clustered order and writing its JSON (the size is the goal,
  < 5 MB), beside ``sklearn.metrics.ConfusionMatrixDisplay.from_predictions`` drawn on matplotlib's
  Agg canvas (``include_values=False``: 10^6 text artists would take minutes);
* painting that JSON in headless Chromium: a page holding plotly.js and the figure JSON, timed in
  the page's clock from the ``Plotly.newPlot`` call to its promise (after ``plotly_afterplot``) and
  to the next animation frame (the first paint), cold (first plot of the page) and warm (again);
* a zoom: the block of a searched class and its neighbours (``class_neighbourhood``), built;
* a click on the explorer's first confused pair to the highlight, on 50,000 samples with 64-d
  features and 8 x 8 images: in Python (the handler the button runs, ``select_cell``), and in
  JupyterLab in headless Chromium, from the press on the pair's button to the first frame of the
  WebGL scatter showing the highlight (driven with ``tests/explorer_page.py``'s helpers); with
  ``--large``, that in-page click again on 1,281,167 samples.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from bench_calibration_report import make_imagenet_like
from timing import Timing, best_of, goal, make_row, skipped

TESTS = Path(__file__).resolve().parents[1] / "tests"
FULL = {"n": 50_000, "c": 1_000, "train": 1_281_167, "chunk": 65_536}
QUICK = {"n": 5_000, "c": 200, "train": 40_000, "chunk": 16_384}
SIZE_LIMIT_MB = 5.0
PAINT_LIMIT_S = 2.0

# In the page: parse the figure JSON, then time Plotly.newPlot to its promise and to the next
# animation frame after it; `again` plots it once more, purged, for the warm time.
JS_PAINT = """async () => {
    const gd = document.getElementById('gd');
    const text = document.getElementById('fig').textContent;
    const times = [];
    for (let k = 0; k < 2; k++) {
        if (k) { Plotly.purge(gd); await new Promise(r => requestAnimationFrame(() => r())); }
        const t0 = performance.now();
        const fig = JSON.parse(text);
        const t1 = performance.now();
        await Plotly.newPlot(gd, fig.data, fig.layout);
        const t2 = performance.now();
        await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r())));
        const t3 = performance.now();
        times.push({parse_ms: t1 - t0, afterplot_ms: t2 - t1, paint_ms: t3 - t1,
                    cells: gd.querySelectorAll('.hm').length});
    }
    return times;
}"""


def _page_html(plotly_js: Path, figure_json: str) -> str:
    safe = figure_json.replace("</", "<\\/")  # keep the JSON inside its script element
    return (f'<!doctype html><html><head><meta charset="utf-8"><script src="{plotly_js.as_uri()}">'
            f'</script></head><body><div id="gd"></div><script id="fig" type="application/json">'
            f"{safe}</script></body></html>")


def paint_in_chromium(figure_json: str, tmp: Path) -> list[dict]:
    """The page times of :data:`JS_PAINT` for ``figure_json`` in headless Chromium: cold, warm."""
    import plotly

    sys.path.insert(0, str(TESTS))
    from browser_tools import browser_page

    plotly_js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    page_file = tmp / "confusion.html"
    page_file.write_text(_page_html(plotly_js, figure_json), encoding="utf-8")
    with browser_page(tmp, webgl=True, width=1300, height=1100, timeout_ms=120_000) as page:
        page.goto(page_file.as_uri())
        page.wait_for_function("() => window.Plotly !== undefined")
        return page.evaluate(JS_PAINT)


def _ms(seconds_ms: float) -> Timing:
    return Timing(seconds=seconds_ms / 1000, reps=1, all_seconds=[seconds_ms / 1000])


def _traced_peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _train_counts(n: int, c: int, chunk: int):
    """Counts of ``n`` ImageNet-like labels, generated and counted ``chunk`` at a time."""
    from labviz.compute.confusion import ConfusionAccumulator

    acc = ConfusionAccumulator(c)
    for k, start in enumerate(range(0, n, chunk)):
        y, z = make_imagenet_like(min(chunk, n - start), c, seed=1000 + k)
        acc.update(y, z.argmax(axis=1))
    return acc.matrix()


def _figure_rows(case: str, cm, names, params: dict, y, yp, kw: dict, log) -> list[dict]:
    """Build, JSON and paint of the clustered heat map of ``cm``; beside scikit-learn's display
    when the labels ``y``, ``yp`` are given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    from labviz.compute.confusion import class_order
    from labviz.figures.confusion import confusion_figure

    c = len(cm)
    order = class_order(cm)
    build = best_of(lambda: confusion_figure(cm, class_names=names, order=order), **kw)
    fig = build.value
    build.value = None
    to_json = best_of(fig.to_json, **kw)
    text = to_json.value
    to_json.value = None
    mb = len(text.encode()) / 1e6
    peers = {}
    if y is not None:
        def sklearn_display():
            disp = ConfusionMatrixDisplay.from_predictions(y, yp, labels=np.arange(c),
                                                           include_values=False)
            disp.figure_.canvas.draw()
            plt.close(disp.figure_)

        peers["sklearn ConfusionMatrixDisplay (Agg draw)"] = best_of(
            sklearn_display, budget=kw["budget"], max_reps=2)
    both = Timing(seconds=build.seconds + to_json.seconds, reps=min(build.reps, to_json.reps))
    row = make_row("confusion-scale", f"heat map build + JSON {case}",
                   {**params, "json_mb": round(mb, 3), "build_s": build.seconds,
                    "to_json_s": to_json.seconds},
                   labviz=both, peers=peers,
                   notes=f"{mb:.2f} MB of figure JSON, no per-cell text"
                   + (" (issue 25 measured 42.8 MB and 12.5 s)" if c == 1000 else ""))
    row["goals"] = [goal(f"JSON < {SIZE_LIMIT_MB:.0f} MB", mb, SIZE_LIMIT_MB, unit="MB")]
    rows = [row]
    log(f"  {case}: build {build.seconds:.3f} s + JSON {to_json.seconds:.3f} s, {mb:.2f} MB; "
        + ", ".join(f"{k} {t.seconds:.2f} s" for k, t in peers.items() if t.seconds))
    if not Path("/usr/bin/chromium").exists():
        rows.append(make_row("confusion-scale", f"heat map paint {case}", params,
                             labviz=skipped("Chromium is not installed at /usr/bin/chromium")))
        return rows
    with tempfile.TemporaryDirectory(prefix="labviz-bench-confusion-") as tmp:
        try:
            cold, warm = paint_in_chromium(text, Path(tmp))
        except Exception as exc:  # recorded; the other rows stand
            rows.append(make_row("confusion-scale", f"heat map paint {case}", params,
                                 labviz=skipped(f"failed: {exc}")))
            return rows
    paint = make_row("confusion-scale", f"heat map paint (Chromium, cold) {case}",
                     {**params, "json_mb": round(mb, 3), "parse_ms": round(cold["parse_ms"], 1),
                      "newplot_to_afterplot_ms": round(cold["afterplot_ms"], 1),
                      "warm_paint_ms": round(warm["paint_ms"], 1)},
                     labviz=_ms(cold["paint_ms"]),
                     notes=f"newPlot → afterplot {cold['afterplot_ms']:.0f} ms, → first frame "
                           f"{cold['paint_ms']:.0f} ms; JSON.parse {cold['parse_ms']:.0f} ms; "
                           f"warm (second plot) {warm['paint_ms']:.0f} ms")
    paint["goals"] = [goal(f"< {PAINT_LIMIT_S:.0f} s", cold["paint_ms"] / 1000, PAINT_LIMIT_S,
                           unit="s")]
    rows.append(paint)
    log(f"  {case}: paint cold {cold['paint_ms']:.0f} ms (newPlot → afterplot "
        f"{cold['afterplot_ms']:.0f} ms, parse {cold['parse_ms']:.0f} ms), warm "
        f"{warm['paint_ms']:.0f} ms")
    return rows


def _pair_click_row(y, z, names, kw: dict, log) -> dict:
    """A click on the explorer's first confused pair, in Python: the button's handler."""
    from labviz import Predictions, explore

    n = len(y)
    rng = np.random.default_rng(1)
    features = rng.standard_normal((n, 64), dtype=np.float32)
    images = rng.random((n, 8, 8), dtype=np.float32)
    p = Predictions.from_arrays(y_true=y, logits=z, features=features, images=images,
                                class_names=names, name="imagenet-like")
    start = time.perf_counter()
    ex = explore(p)
    built = time.perf_counter() - start
    button = ex.confusion.pair_buttons[0]
    t, c = int(ex.confusion.pairs["true"].iloc[0]), int(ex.confusion.pairs["pred"].iloc[0])
    click = best_of(lambda: (ex.clear_selection(), button.click()), **kw)
    click.value = None
    expected = int(((p.y_true == t) & (p.y_pred == c)).sum())
    same = ex.state.highlighted_ids.size == expected
    row = make_row("confusion-scale", f"pair click → highlight (Python) N={n} C={len(names)}",
                   {"n_samples": n, "n_classes": len(names), "explore_build_s": round(built, 2),
                    "highlighted": int(ex.state.highlighted_ids.size)},
                   labviz=click,
                   notes="clear_selection + the pair button's handler (select_cell); not timed "
                         "in a page" + ("" if same else "; HIGHLIGHT DIFFERS FROM THE CELL"))
    log(f"  pair click (Python): {click.seconds * 1000:.0f} ms, explore() built in {built:.1f} s")
    return row


#: The notebook of the in-page pair click: ImageNet-like predictions with 64-d features and
#: 8 x 8 images, then the explorer.
CELL_DATA = """import sys
sys.path.insert(0, {bench!r})
import numpy as np
import labviz
from bench_calibration_report import make_imagenet_like

y, z = make_imagenet_like({n}, {c})
rng = np.random.default_rng(1)
p = labviz.Predictions.from_arrays(
    y_true=y, logits=z, features=rng.standard_normal(({n}, 64), dtype=np.float32),
    images=rng.random(({n}, 8, 8), dtype=np.float32),
    class_names=[f"n{{k:08d}} class {{k}}" for k in range({c})], name="imagenet-like")"""


def pair_click_in_page(tmp: Path, n: int, c: int, *, timeout_s: float = 400) -> dict:
    """In JupyterLab in headless Chromium: the explorer on ``n`` x ``c`` ImageNet-like
    predictions; the page time from the press on the first confused pair's button to the first
    frame of the scatter showing its highlight, and the status line after it."""
    import nbformat

    sys.path.insert(0, str(TESTS))
    from browser_tools import browser_page, run_cell, wait_for_paint, watch_paint
    from explorer_page import CANVAS, JS_RECORD_POINTER, JS_TEXTS, SETTLE_FRAMES, _wait_idle
    from test_browser import _jupyterlab, open_notebook

    source = tmp / "pairs.ipynb"
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(CELL_DATA.format(bench=str(Path(__file__).parent), n=n, c=c)),
        nbformat.v4.new_code_cell("ex = labviz.explore(p)\nex")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, source)
    ms = int(timeout_s * 1000)
    with _jupyterlab(tmp, source) as (base, token, notebook), \
            browser_page(tmp, webgl=True, width=1500, height=2600, timeout_ms=ms) as page:
        open_notebook(page, base, token, notebook)
        page.evaluate("() => { window.jupyterapp.shell.collapseLeft();"
                      " window.jupyterapp.shell.collapseRight(); }")
        run_cell(page, 0)
        _wait_idle(page, timeout_s, pending=1)
        watch_paint(page, CANVAS, name="first", mode="content", settle_frames=SETTLE_FRAMES,
                    timeout_ms=ms)
        run_cell(page, 1)
        wait_for_paint(page, name="first", timeout_ms=ms)
        _wait_idle(page, timeout_s)
        page.wait_for_timeout(500)
        page.evaluate(JS_RECORD_POINTER)
        button = page.locator(".labviz-explorer button", has_text="→").first
        label = button.inner_text()
        watch_paint(page, page.locator(CANVAS).first, name="pair", min_pixels=20, timeout_ms=ms)
        button.click()
        painted = wait_for_paint(page, name="pair", timeout_ms=ms)
        click_ms = painted["painted_at"] - page.evaluate("() => window.__lvPointer.down")
        page.wait_for_function(f"() => ({JS_TEXTS})().texts.some(t => t.includes('highlighted'))")
        texts = page.evaluate(JS_TEXTS)["texts"]
    return {"click_ms": click_ms, "pair": label,
            "status": next((t for t in texts if "highlighted" in t), "")}


def run(quick: bool = False, log=print, large: bool = False) -> list[dict]:
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform
    from sklearn.metrics import confusion_matrix as sk_confusion

    from labviz import Predictions
    from labviz.compute.confusion import (
        _normalize,
        class_neighbourhood,
        class_order,
        confusion_matrix,
        find_classes,
        per_class_table,
    )
    from labviz.figures.confusion import ConfusionDisplay, confusion_figure

    size = QUICK if quick else FULL
    n, c = size["n"], size["c"]
    kw = {"budget": 0.5, "max_reps": 2} if quick else {"budget": 6.0, "max_reps": 3}
    params = {"n_samples": n, "n_classes": c}
    y, z = make_imagenet_like(n, c)
    names = [f"n{k:08d} class {k}" for k in range(c)]
    rows = []

    # the matrix from the logits, beside scikit-learn's
    argmax = best_of(lambda: z.argmax(axis=1), **kw)
    yp = argmax.value
    argmax.value = None
    lab = best_of(lambda: confusion_matrix(y, yp, n_classes=c), **kw)
    sk = best_of(lambda: sk_confusion(y, yp, labels=np.arange(c)), **kw)
    same = bool(np.array_equal(lab.value, sk.value))
    cm = lab.value
    lab.value = sk.value = None
    p = Predictions.from_arrays(y_true=y, logits=z, class_names=names)
    peak = _traced_peak(lambda: (ConfusionDisplay.from_predictions(p),
                                 per_class_table(p.y_true, p.y_pred, n_classes=c)))
    row = make_row("confusion-scale", f"matrix from logits N={n} C={c}",
                   {**params, "traced_peak_mb": round(peak / 2**20, 1),
                    "logits_mb": round(z.nbytes / 2**20, 1), "argmax_s": argmax.seconds},
                   labviz=lab, peers={"sklearn": sk},
                   notes=("" if same else "MATRICES DIFFER; ")
                   + f"the argmax of the logits {argmax.seconds * 1000:.0f} ms before either; "
                   + f"ConfusionDisplay + per_class_table traced peak {peak / 2**20:.1f} MB "
                     f"beside {z.nbytes / 2**20:.0f} MB of logits, no softmax")
    row["goals"] = [goal("traced peak < logits / 4", peak / z.nbytes, 0.25, unit="×")]
    rows.append(row)
    log(f"  matrix: argmax {argmax.seconds:.3f} s, then labviz {lab.seconds:.3f} s, sklearn "
        f"{sk.seconds:.3f} s, same={same}; "
        f"traced peak {peak / 2**20:.1f} MB")
    del p

    # the clustered order, beside scipy's optimal leaf ordering
    def scipy_optimal():
        sim = _normalize(cm.astype(np.float64), "true")
        dist = 1.0 - (sim + sim.T) / 2
        np.fill_diagonal(dist, 0.0)
        return leaves_list(linkage(squareform(dist, checks=False), method="average",
                                   optimal_ordering=True))

    order_t = best_of(lambda: class_order(cm), **kw)
    scipy_t = best_of(scipy_optimal, budget=kw["budget"], max_reps=1)
    order_t.value = scipy_t.value = None
    rows.append(make_row("confusion-scale", f"class order C={c}", params, labviz=order_t,
                         peers={"scipy optimal_ordering": scipy_t},
                         notes="greedy merge orientation beyond 300 classes"))
    log(f"  class order: {order_t.seconds:.3f} s, scipy optimal ordering {scipy_t.seconds:.2f} s")

    rows += _figure_rows(f"N={n} C={c}", cm, names, params, y, yp, kw, log)

    # a zoom: the block around a searched class
    order = class_order(cm)
    found = find_classes(names, names[c // 2].split()[-1])[:1]
    block = class_neighbourhood(order, found, radius=20)
    zoom = best_of(lambda: confusion_figure(cm, class_names=names, order=order, classes=block),
                   **kw)
    zoom_mb = len(zoom.value.to_json().encode()) / 1e6
    zoom.value = None
    rows.append(make_row("confusion-scale", f"zoom to a {len(block)}-class block C={c}",
                         {**params, "block": len(block), "json_mb": round(zoom_mb, 3)},
                         labviz=zoom, notes=f"{zoom_mb:.3f} MB"))
    log(f"  zoom ({len(block)} classes): {zoom.seconds * 1000:.0f} ms, {zoom_mb:.3f} MB")

    # the training set: the same 1,000 x 1,000 matrix from 1.28M labels, counted in chunks
    start = time.perf_counter()
    train_cm = _train_counts(size["train"], c, size["chunk"])
    counted = time.perf_counter() - start
    train_params = {"n_samples": size["train"], "n_classes": c, "chunk": size["chunk"],
                    "generate_and_count_s": round(counted, 1)}
    log(f"  {size['train']} labels generated and counted in {counted:.1f} s")
    rows += _figure_rows(f"N={size['train']} C={c}", train_cm, names, train_params, None, None,
                         kw, log)

    try:
        rows.append(_pair_click_row(y, z, names, kw, log))
    except Exception as exc:  # recorded; the other rows stand
        rows.append(make_row("confusion-scale", f"pair click → highlight (Python) N={n}",
                             params, labviz=skipped(f"failed: {exc}")))
    for m in (n, size["train"]) if large and not quick else (n,):
        rows.append(_pair_click_in_page_row(m, c, params, log))
    return rows


def _pair_click_in_page_row(n: int, c: int, params: dict, log) -> dict:
    case = f"pair click → highlight painted (Chromium) N={n} C={c}"
    params = {**params, "n_samples": n}
    with tempfile.TemporaryDirectory(prefix="labviz-bench-pairs-") as tmp:
        try:
            seen = pair_click_in_page(Path(tmp), n, c, timeout_s=400 if n <= 100_000 else 1500)
        except Exception as exc:  # recorded; the other rows stand
            log(f"  pair click in the page N={n}: failed ({exc})")
            return make_row("confusion-scale", case, params, labviz=skipped(f"failed: {exc}"))
    log(f"  pair click in the page N={n}: {seen['click_ms']:.0f} ms ({seen['pair']}; "
        f"{seen['status']})")
    return make_row("confusion-scale", case, {**params, "pair": seen["pair"]},
                    labviz=_ms(seen["click_ms"]),
                    notes=f"press on the pair's button → first frame of the scatter with "
                          f"its highlight; status: {seen['status']}")

if __name__ == "__main__":
    out = run(quick="--quick" in sys.argv)
    print(json.dumps([{k: r[k] for k in ("case", "params", "notes")} for r in out], indent=1))
