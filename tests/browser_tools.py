"""Browser-side tools for measuring and checking widgets in a real page (headless Chromium).

Small helpers for the real-browser tests (``test_browser.py`` starts the servers and opens the
notebooks; this module adds what a WebGL widget such as ``jscatter`` needs):

* :data:`WEBGL_ARGS`, :data:`NO_WEBGL_ARGS` and :func:`browser_page`: headless Chromium with or
  without WebGL (software rendering through SwiftShader; no GPU is needed), and
  :func:`webgl_support` to check what a page really gets.
* :func:`widget_states`: the state of every live ipywidgets model of a kind, read in the page from
  the widget managers of JupyterLab 4 and of Voilà 0.5; :func:`set_widget_state` changes a model
  from the page (both); :func:`execute_in_kernel` runs code in a JupyterLab notebook's kernel.
* :func:`watch_paint` / :func:`wait_for_paint`: when a canvas shows a change after an action,
  timed in the page (``performance.now()``) by reading its pixels on every animation frame;
  :func:`wait_for_screenshot_change` does the same from screenshots, for canvases whose pixels
  cannot be read.
* :func:`tab_memory`: the page's JS heap and the resident memory of the browser's processes, in MB.

Times in the page are ``performance.now()`` milliseconds, on one clock for the whole page
(:func:`page_now` reads it), so a start taken in the page and a paint seen in the page compare
directly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from test_browser import CHROMIUM_ARGS, STEP_TIMEOUT_MS, chromium_page

#: Headless Chromium with WebGL 1 and 2 in software (ANGLE on SwiftShader's Vulkan, here renderer
#: "ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device (Subzero)), SwiftShader driver)"), no GPU
#: needed. It is ``CHROMIUM_ARGS`` without ``--disable-gpu`` (Chromium 156 gives WebGL with it too,
#: but then at 1M points a jupyter-scatter redraw took ~0.9 s, against ~0.05 s without it), with 2-D
#: canvases kept in software (``--disable-accelerated-2d-canvas``: reading a 752×400 canvas's pixels,
#: as :func:`watch_paint` does every frame, then takes ~1.5 ms instead of 70-100 ms of GPU
#: read-back). The automatic fallback to SwiftShader is deprecated; ``--enable-unsafe-swiftshader``
#: asks for it.
WEBGL_ARGS = [*(a for a in CHROMIUM_ARGS if a != "--disable-gpu"), "--use-angle=swiftshader",
              "--enable-unsafe-swiftshader", "--disable-accelerated-2d-canvas"]
#: Headless Chromium where ``canvas.getContext('webgl')`` / ``('webgl2')`` return ``null``, like a
#: browser without WebGL (``--disable-webgl``; ``--disable-3d-apis`` also removes WebGPU).
#: Note that ``CHROMIUM_ARGS`` (``--disable-gpu``) alone does *not* deny WebGL.
NO_WEBGL_ARGS = [*CHROMIUM_ARGS, "--disable-webgl", "--disable-3d-apis"]


@contextmanager
def browser_page(tmp: Path, *, webgl: bool = True, width: int = 1280, height: int = 900,
                 timeout_ms: int = STEP_TIMEOUT_MS, extra_args: tuple[str, ...] = ()) -> Iterator:
    """A page of the system Chromium, headless, with or without WebGL.

    Like ``test_browser.chromium_page``, with the browser profile under ``tmp``.

    Parameters
    ----------
    tmp : Path
        Folder for the browser profile (``tmp / "chromium-profile"``).
    webgl : bool
        Launch with :data:`WEBGL_ARGS` (True) or :data:`NO_WEBGL_ARGS` (False).
    width, height : int
        Viewport size in CSS pixels (device scale factor 1).
    timeout_ms : int
        Default timeout of the page's waits.
    extra_args : tuple of str
        More Chromium switches.

    Yields
    ------
    playwright.sync_api.Page
        The page; the browser is closed on exit.
    """
    args = [*(WEBGL_ARGS if webgl else NO_WEBGL_ARGS), *extra_args]
    with chromium_page(tmp, width=width, height=height, timeout_ms=timeout_ms, args=args) as page:
        yield page


JS_WEBGL_SUPPORT = """() => {
    const out = {};
    for (const kind of ['webgl', 'webgl2']) {
        let gl = null;
        try { gl = document.createElement('canvas').getContext(kind); } catch (e) { gl = null; }
        out[kind] = gl !== null;
        if (gl && out.renderer === undefined) {
            const info = gl.getExtension('WEBGL_debug_renderer_info');
            out.renderer = info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL)
                                : gl.getParameter(gl.RENDERER);
        }
    }
    if (out.renderer === undefined) out.renderer = null;
    return out;
}"""


def webgl_support(page) -> dict:
    """What WebGL the page gets.

    Returns
    -------
    dict
        ``{"webgl": bool, "webgl2": bool, "renderer": str | None}``: whether
        ``document.createElement('canvas').getContext(kind)`` gives a context, and the (unmasked)
        renderer string of the first one.
    """
    return page.evaluate(JS_WEBGL_SUPPORT)


def page_now(page) -> float:
    """The page's clock: ``performance.now()`` in milliseconds."""
    return page.evaluate("() => performance.now()")


# ----- widget models in the page ----------------------------------------------------------------
#: In-page JS: ``async () => [manager, ...]``, every ipywidgets widget manager of the page.
#: Voilà 0.5 keeps its one manager at ``window.jupyterapp.widgetManager``. JupyterLab 4 keeps one
#: per kernel in a private map of ``@jupyter-widgets/jupyterlab-manager``, but each rendered widget
#: output is a ``WidgetRenderer`` holding ``_manager`` (a PromiseDelegate of its manager), so the
#: Lumino widget tree of the shell is walked for those.
JS_WIDGET_MANAGERS = """async () => {
    const app = window.jupyterapp;
    const managers = [];
    const add = m => { if (m && !managers.includes(m)) managers.push(m); };
    if (!app) return managers;
    add(app.widgetManager);  // Voilà
    const seen = new Set();
    const pending = [];
    const walk = w => {
        if (!w || seen.has(w)) return;
        seen.add(w);
        if (w._manager && w._manager.promise) pending.push(w._manager.promise);
        if (typeof w.children === 'function') {
            try { for (const c of w.children()) walk(c); } catch (e) { /* not a container */ }
        }
    };
    for (const area of ['main', 'down', 'left', 'right', 'header', 'top', 'bottom', 'menu']) {
        try { for (const w of app.shell.widgets(area)) walk(w); } catch (e) { /* no such area */ }
    }
    // a renderer whose kernel never came up never resolves: do not wait on it forever
    const timeout = new Promise(resolve => setTimeout(() => resolve(null), 2000));
    for (const m of await Promise.all(pending.map(p => Promise.race([p, timeout])))) add(m);
    return managers;
}"""

#: In-page JS: ``async (manager) => [model, ...]``, every model a widget manager holds.
JS_MANAGER_MODELS = """async manager => {
    if (manager._modelsSync instanceof Map) return Array.from(manager._modelsSync.values());
    // ManagerBase keeps promises of its models
    const promises = Object.values(manager._models || {});
    const settled = await Promise.allSettled(promises);
    return settled.filter(s => s.status === 'fulfilled').map(s => s.value);
}"""

#: In-page JS: ``value => plain JSON value``. Widget references become "IPY_MODEL_<id>", typed
#: arrays and DataViews plain lists, and ndarray-like ``{view|buffer, dtype, shape}`` objects (the
#: binary serialisation of ipyvolume / jscatter / bqplot) lists of numbers (nested for 2-D).
JS_PLAIN = """value => {
    const CTORS = {int8: Int8Array, uint8: Uint8Array, uint8_clamped: Uint8ClampedArray,
                   int16: Int16Array, uint16: Uint16Array, int32: Int32Array,
                   uint32: Uint32Array, float32: Float32Array, float64: Float64Array,
                   int64: BigInt64Array, uint64: BigUint64Array};
    const typed = (buf, dtype) => {
        const Ctor = CTORS[dtype] || Uint8Array;
        let view;
        if (buf instanceof ArrayBuffer) view = new Ctor(buf);
        else view = new Ctor(buf.buffer, buf.byteOffset,
                             Math.floor(buf.byteLength / Ctor.BYTES_PER_ELEMENT));
        return Array.from(view, Number);
    };
    const plain = v => {
        if (v === undefined || v === null) return null;
        if (typeof v === 'bigint') return Number(v);
        if (typeof v !== 'object') return v;
        if (v instanceof DataView) return typed(v, 'uint8');
        if (ArrayBuffer.isView(v)) return Array.from(v, Number);
        if (v instanceof ArrayBuffer) return typed(v, 'uint8');
        if (Array.isArray(v)) return v.map(plain);
        if (typeof v.get === 'function' && typeof v.model_id === 'string') {
            return 'IPY_MODEL_' + v.model_id;  // a widget model, as ipywidgets serialises it
        }
        const buf = v.view || v.buffer;
        if (buf && typeof v.dtype === 'string' && Array.isArray(v.shape)) {
            const flat = typed(buf, v.dtype);
            if (v.shape.length !== 2) return flat;
            const [rows, cols] = v.shape;
            return Array.from({length: rows}, (_, i) => flat.slice(i * cols, (i + 1) * cols));
        }
        const out = {};
        for (const [k, x] of Object.entries(v)) out[k] = plain(x);
        return out;
    };
    return plain(value);
}"""

JS_WIDGET_STATES = f"""async ([name, keys]) => {{
    const managers = await ({JS_WIDGET_MANAGERS})();
    const modelsOf = {JS_MANAGER_MODELS};
    const plain = {JS_PLAIN};
    const out = [];
    for (const manager of managers) {{
        for (const model of await modelsOf(manager)) {{
            const kinds = [model.get('_model_name'), model.get('_anywidget_id')];
            if (!kinds.includes(name)) continue;
            const state = {{model_id: model.model_id, comm_live: !!model.comm_live}};
            for (const key of keys) state[key] = plain(model.get(key));
            out.push(state);
        }}
    }}
    return out;
}}"""


def widget_states(page, model_name: str, keys: list[str] | tuple[str, ...]) -> list[dict]:
    """The values of ``keys`` in every live widget model of kind ``model_name`` in the page.

    Works in JupyterLab 4 (every notebook or output view in the shell that shows at least one
    widget) and in Voilà 0.5; see :data:`JS_WIDGET_MANAGERS`.

    Parameters
    ----------
    page : playwright.sync_api.Page
        A JupyterLab or Voilà page.
    model_name : str
        Matched against a model's ``_model_name`` (e.g. ``"IntSliderModel"``) and, because every
        anywidget is an ``"AnyModel"``, against its ``_anywidget_id``, the Python class's qualified
        name (``"jscatter.widget.JupyterScatter"``).
    keys : sequence of str
        Trait names to read with ``model.get(key)``.

    Returns
    -------
    list of dict
        One dict per model, in the managers' order: ``model_id``, ``comm_live`` and each key's
        value as plain JSON. Binary arrays (``{view, dtype, shape}``, e.g. jscatter's
        ``selection`` or ``points``) become lists of numbers, nested for 2-D; widget references
        become ``"IPY_MODEL_<id>"``; a missing key is ``None``. Empty if the page shows no widget.
    """
    return page.evaluate(JS_WIDGET_STATES, [model_name, list(keys)])


JS_SET_STATE = f"""async ([modelId, values]) => {{
    for (const manager of await ({JS_WIDGET_MANAGERS})()) {{
        for (const model of await ({JS_MANAGER_MODELS})(manager)) {{
            if (model.model_id !== modelId) continue;
            const sent = performance.now();
            model.set(values);
            model.save_changes();  // a comm message to the kernel, as a control sends it
            return sent;
        }}
    }}
    throw new Error('no widget model ' + modelId + ' in the page');
}}"""


def set_widget_state(page, model_id: str, values: dict) -> float:
    """Set traits of a widget model in the page and sync them to the kernel, as a control would.

    Works in JupyterLab and in Voilà. Plain JSON values only (no binary arrays).

    Parameters
    ----------
    model_id : str
        The model's id (``model_id`` of :func:`widget_states`).
    values : dict
        Trait name to new value, e.g. ``{"value": 3}``.

    Returns
    -------
    float
        The page time (ms) just before the change was set and sent.
    """
    return page.evaluate(JS_SET_STATE, [model_id, values])


JS_EXECUTE = f"""async ([code, timeoutMs]) => {{
    const app = window.jupyterapp;
    if (app && app.name === 'Voila') {{
        throw new Error("Voilà's server forwards only comm and kernel-info messages from the page "
                        + '(voila/app.py, allowed_message_types): drive Python through a widget, '
                        + 'e.g. with set_widget_state');
    }}
    let kernel = null;
    for (const m of await ({JS_WIDGET_MANAGERS})()) {{ if (m.kernel) {{ kernel = m.kernel; break; }} }}
    if (!kernel) {{
        const panel = app && app.shell.currentWidget;
        const session = panel && panel.sessionContext && panel.sessionContext.session;
        kernel = session ? session.kernel : null;
    }}
    if (!kernel) throw new Error('no kernel in the page');
    const future = kernel.requestExecute({{code, silent: false, store_history: false}});
    const sent = performance.now();
    const stdout = [], errors = [];
    future.onIOPub = msg => {{
        const t = msg.header.msg_type;
        if (t === 'stream') stdout.push(msg.content.text);
        if (t === 'error') errors.push(msg.content.ename + ': ' + msg.content.evalue);
    }};
    const timeout = new Promise((_, reject) =>
        setTimeout(() => reject(new Error('no reply within ' + timeoutMs + ' ms')), timeoutMs));
    const reply = await Promise.race([future.done, timeout]);
    return {{status: reply.content.status, sent, replied: performance.now(),
             stdout: stdout.join(''), errors}};
}}"""


def execute_in_kernel(page, code: str, *, timeout_ms: int = STEP_TIMEOUT_MS) -> dict:
    """Run ``code`` in the kernel behind the page's widgets, as the page's own client.

    JupyterLab only. The kernel is the first widget manager's, else the current notebook's. Comm
    messages the code sends (widget updates) reach the page as usual. Voilà refuses: its server
    passes only comm and kernel-info messages from the page to the kernel (``execute_request`` is
    dropped, so the reply would never come); there, change a widget with
    :func:`set_widget_state` and let the notebook's observers run the Python.

    Returns
    -------
    dict
        ``status`` (``"ok"`` or ``"error"``), ``sent`` and ``replied`` (page times in ms of the
        request and of the execute reply), ``stdout`` (text) and ``errors`` (``"Name: value"``).
    """
    return page.evaluate(JS_EXECUTE, [code, timeout_ms])


# ----- paint ------------------------------------------------------------------------------------
#: In-page JS: arm a watch on a canvas; see :func:`watch_paint`.
JS_WATCH_PAINT = """([target, name, mode, minPixels, settleFrames, timeoutMs]) => {
    const watches = window.__labvizPaint = window.__labvizPaint || {};
    if (watches[name]) watches[name].stopped = true;
    const resolve = () => {
        const el = typeof target === 'string' ? document.querySelector(target) : target;
        return el && el.isConnected ? el : null;
    };
    const scratch = document.createElement('canvas');
    const ctx = scratch.getContext('2d', {willReadFrequently: true});
    // the canvas's pixels as 32-bit words; drawImage works for 2-D canvases and for WebGL ones
    // whose drawing buffer is preserved (or read in the frame they were drawn)
    const read = el => {
        if (!el || !el.width || !el.height) return null;
        if (scratch.width !== el.width || scratch.height !== el.height) {
            scratch.width = el.width; scratch.height = el.height;
        } else {
            ctx.clearRect(0, 0, scratch.width, scratch.height);
        }
        ctx.drawImage(el, 0, 0);
        return new Uint32Array(ctx.getImageData(0, 0, el.width, el.height).data.buffer);
    };
    const differing = (px, ref) => {
        let n = 0;
        if (ref === null || ref.length !== px.length) return px.length;
        for (let i = 0; i < px.length; i++) if (px[i] !== ref[i]) n++;
        return n;
    };
    const distinct = px => {  // pixels unlike the first: 0 for a blank (uniform) canvas
        let n = 0;
        const first = px[0];
        for (let i = 0; i < px.length; i++) if (px[i] !== first) n++;
        return n;
    };
    const w = {
        name, mode, armedAt: performance.now(), stopped: false, checks: 0, lastQuietAt: null,
        paintedAt: null, paintedPixels: 0, settledAt: null, lastChangeAt: null, size: null,
        pollMs: [], checkGaps: [], error: null, timedOut: false, baseline: null, previous: null,
    };
    watches[name] = w;
    if (mode === 'change') {
        const el = resolve();
        if (!el) throw new Error('no canvas to watch: ' + target);
        w.baseline = read(el);
        w.size = [el.width, el.height];
    }
    w.lastQuietAt = w.armedAt;  // nothing painted yet when armed (the baseline, in 'change' mode)
    let lastCheck = null;
    let quiet = 0;
    const tick = () => {
        if (w.stopped) return;
        const now = performance.now();
        // rAF's own timestamps keep a 16.7 ms beat in headless Chromium even when frames are late
        if (lastCheck !== null) w.checkGaps.push(now - lastCheck);
        lastCheck = now;
        let px = null;
        try {
            const el = resolve();
            px = read(el);
            if (el) w.size = [el.width, el.height];
        } catch (e) {
            w.error = String(e); w.stopped = true; return;
        }
        w.checks++;
        if (w.paintedAt === null) {
            const n = px === null ? 0 : (mode === 'change' ? differing(px, w.baseline) : distinct(px));
            if (n >= minPixels) {
                w.paintedAt = now; w.paintedPixels = n; w.lastChangeAt = now; w.previous = px;
                if (settleFrames <= 0) w.stopped = true;
            } else {
                w.lastQuietAt = now;
            }
        } else {  // painted: wait until the canvas holds still for settleFrames frames
            if (px !== null && differing(px, w.previous) > 0) { w.lastChangeAt = now; quiet = 0; }
            else quiet++;
            w.previous = px;
            if (quiet >= settleFrames) { w.settledAt = w.lastChangeAt; w.stopped = true; }
        }
        w.pollMs.push(performance.now() - now);
        if (performance.now() - w.armedAt > timeoutMs) { w.timedOut = true; w.stopped = true; }
        if (!w.stopped) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
    return w.armedAt;
}"""

JS_PAINT_REPORT = """name => {
    const w = (window.__labvizPaint || {})[name];
    if (!w) return null;
    const stats = xs => {
        if (xs.length === 0) return {mean: null, median: null, max: null};
        const sorted = [...xs].sort((a, b) => a - b);
        return {mean: xs.reduce((a, b) => a + b, 0) / xs.length,
                median: sorted[Math.floor(sorted.length / 2)], max: sorted[sorted.length - 1]};
    };
    return {armed_at: w.armedAt, painted_at: w.paintedAt, last_quiet_at: w.lastQuietAt,
            painted_pixels: w.paintedPixels, settled_at: w.settledAt, checks: w.checks,
            size: w.size, poll_ms: stats(w.pollMs), check_gap_ms: stats(w.checkGaps),
            error: w.error, timed_out: w.timedOut, stopped: w.stopped};
}"""


def watch_paint(page, target, *, name: str = "paint", mode: str = "change", min_pixels: int = 1,
                settle_frames: int = 0, timeout_ms: int = STEP_TIMEOUT_MS) -> float:
    """Start watching a canvas for paint, before the action whose paint is to be timed.

    On every animation frame the page copies the canvas into a scratch 2-D canvas and compares its
    pixels (``getImageData``), until it sees paint. The canvas's own context is never touched.

    Parameters
    ----------
    page : playwright.sync_api.Page
    target : str or Locator or ElementHandle
        The canvas: a CSS selector, looked up again on every frame (so it may not exist yet, as
        before a widget is displayed), or an element.
    name : str
        Names the watch, so several can run at once; arming a name again replaces its watch.
    mode : {"change", "content"}
        ``"change"``: paint is ``min_pixels`` pixels differing from the canvas as it is now (it
        must exist). ``"content"``: paint is a canvas with ``min_pixels`` pixels unlike its first
        one, i.e. the first non-blank frame (for a first paint).
    min_pixels : int
        How many pixels must differ.
    settle_frames : int
        If positive, keep watching after the paint until the canvas holds still for that many
        frames, and report the last change as ``settled_at`` (animations, progressive drawing).
    timeout_ms : int
        The watch stops itself after this long.

    Returns
    -------
    float
        The page time (ms) at which the watch was armed (after the baseline was read).

    Notes
    -----
    WebGL canvases read back blank unless created with ``preserveDrawingBuffer: true`` or read in
    the task that drew them. jupyter-scatter (regl-scatterplot) draws with a shared WebGL context
    (``preserveDrawingBuffer: true``) and copies each frame into a 2-D canvas per plot, which is
    the canvas to watch (the first ``canvas`` of the widget's output; the second is its labels
    layer). For unreadable canvases use :func:`wait_for_screenshot_change`.
    """
    if mode not in ("change", "content"):
        raise ValueError(f"`mode` must be 'change' or 'content'; got {mode!r}")
    if not isinstance(target, str) and hasattr(target, "element_handle"):
        target = target.element_handle()
    return page.evaluate(JS_WATCH_PAINT, [target, name, mode, min_pixels, settle_frames,
                                          timeout_ms])


def wait_for_paint(page, *, name: str = "paint", timeout_ms: int = STEP_TIMEOUT_MS) -> dict:
    """Wait for the paint a :func:`watch_paint` watch looks for; return its timings.

    Returns
    -------
    dict
        Page times in ms: ``armed_at``; ``painted_at``, the first frame showing the paint (the
        paint happened after ``last_quiet_at``, the last frame without it, or ``armed_at``, so
        the granularity is one frame); ``settled_at`` (with ``settle_frames``, else ``None``);
        ``painted_pixels``; ``checks`` (frames looked at); ``size`` of the canvas in pixels;
        ``poll_ms`` and ``check_gap_ms`` (``{"mean", "median", "max"}`` of the time one pixel
        read took and of the time between two reads, i.e. between frames: ~16.7 ms, more while the
        page is busy); ``error`` / ``timed_out``. A 2-D canvas's pending drawing is done when it is
        read, so the read that sees the paint also carries the cost of drawing it; the median read
        is the watch's own cost.

    Raises
    ------
    TimeoutError
        If no paint was seen within ``timeout_ms`` (the message holds the report).
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    done = """name => { const w = (window.__labvizPaint || {})[name];
        return !w || w.error !== null || w.timedOut
            || (w.paintedAt !== null && (w.stopped || w.settledAt !== null)); }"""
    try:
        page.wait_for_function(done, arg=name, timeout=timeout_ms, polling=50)
    except PlaywrightTimeout:
        pass
    report = paint_report(page, name=name)
    if report["painted_at"] is None or report["error"]:
        page.evaluate("name => { const w = (window.__labvizPaint || {})[name];"
                      " if (w) w.stopped = true; }", name)
        raise TimeoutError(f"no paint seen within {timeout_ms} ms: {report}")
    return report


def paint_report(page, *, name: str = "paint") -> dict:
    """The report of a :func:`watch_paint` watch as it stands, without waiting.

    Returns
    -------
    dict
        As :func:`wait_for_paint`, plus ``stopped``; ``painted_at`` is ``None`` while no paint was
        seen (e.g. to check that an idle canvas is not reported as painted, and to time the
        watch's reads on it).

    Raises
    ------
    ValueError
        If no watch of that name was armed in the page.
    """
    report = page.evaluate(JS_PAINT_REPORT, name)
    if report is None:
        raise ValueError(f"no paint watch named {name!r}; call watch_paint first")
    return report


def wait_for_screenshot_change(page, target, *, baseline: bytes | None = None,
                               timeout_ms: int = STEP_TIMEOUT_MS) -> dict:
    """Wait until a screenshot of ``target``'s box differs from ``baseline``; time it in the page.

    For canvases whose pixels the page cannot read (WebGL without a preserved drawing buffer):
    what the browser composited is captured instead, with CDP ``Page.captureScreenshot`` clipped to
    the element's box (which must stay inside the viewport). Equal pixels give equal PNG bytes
    from one browser, so the bytes are compared. Coarse: one capture of a 752×400 box took 150-300
    ms with :data:`WEBGL_ARGS` (GPU compositing), ~45 ms with ``--disable-gpu``.

    Parameters
    ----------
    target : Locator
        The element (its bounding box is taken once, at the start).
    baseline : bytes, optional
        PNG bytes to compare against; by default, a screenshot taken now.

    Returns
    -------
    dict
        ``started_at`` and ``changed_at`` (page ms; ``changed_at`` is read right after the first
        differing capture, the change happened after the previous capture began), ``shots``,
        ``shot_ms`` (``{"mean", "max"}`` of one capture round trip: the granularity), and ``png``
        (the changed capture's bytes).
    """
    import base64

    box = target.bounding_box()
    if box is None:
        raise ValueError("the target has no box (is it displayed?)")
    cdp = page.context.new_cdp_session(page)
    clip = {"x": box["x"], "y": box["y"], "width": box["width"], "height": box["height"],
            "scale": 1}

    def shot() -> bytes:
        data = cdp.send("Page.captureScreenshot", {"format": "png", "clip": clip})["data"]
        return base64.b64decode(data)

    try:
        if baseline is None:
            baseline = shot()
        started = page_now(page)
        durations = []
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            t = time.perf_counter()
            png = shot()
            durations.append((time.perf_counter() - t) * 1000)
            if png != baseline:
                changed = page_now(page)
                return {"started_at": started, "changed_at": changed, "shots": len(durations),
                        "shot_ms": {"mean": sum(durations) / len(durations),
                                    "max": max(durations)}, "png": png}
            if time.monotonic() > deadline:
                raise TimeoutError(f"no change in {len(durations)} screenshots within "
                                   f"{timeout_ms} ms")
    finally:
        cdp.detach()


# ----- memory -----------------------------------------------------------------------------------
def tab_memory(page) -> dict:
    """The page's JS heap and the memory of its browser's processes, in MB.

    Returns
    -------
    dict
        ``js_heap_used_mb`` and ``js_heap_total_mb`` (CDP ``Performance.getMetrics``:
        ``JSHeapUsedSize`` / ``JSHeapTotalSize`` of the page's main frame), ``dom_nodes``;
        ``renderer_rss_mb`` (summed over the browser's renderer processes, listed by CDP
        ``SystemInfo.getProcessInfo``), ``renderer_rss_max_mb`` (the largest renderer: with one tab
        open, the tab's own; the others are spare and utility renderers), ``renderers`` (how many),
        ``gpu_rss_mb`` (the GPU process, which holds WebGL buffers and, with SwiftShader, renders
        them) and ``browser_rss_mb``. RSS counts shared pages in every process.
    """
    import psutil

    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("Performance.enable")
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    finally:
        cdp.detach()
    browser_cdp = page.context.browser.new_browser_cdp_session()
    try:
        processes = browser_cdp.send("SystemInfo.getProcessInfo")["processInfo"]
    finally:
        browser_cdp.detach()

    mb = 1024 * 1024
    rss: dict[str, list[float]] = {}
    for info in processes:
        try:
            value = psutil.Process(info["id"]).memory_info().rss / mb
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss.setdefault(info["type"], []).append(value)
    renderers = rss.get("renderer", [])
    return {"js_heap_used_mb": metrics.get("JSHeapUsedSize", 0) / mb,
            "js_heap_total_mb": metrics.get("JSHeapTotalSize", 0) / mb,
            "dom_nodes": int(metrics.get("Nodes", 0)),
            "renderer_rss_mb": sum(renderers), "renderer_rss_max_mb": max(renderers, default=0.0),
            "renderers": len(renderers), "gpu_rss_mb": sum(rss.get("GPU", [])),
            "browser_rss_mb": sum(rss.get("browser", []))}


# ----- JupyterLab -------------------------------------------------------------------------------
JS_RUN_CELL = """index => {
    const app = window.jupyterapp;
    const panel = app.shell.currentWidget;
    panel.content.activeCellIndex = index;
    const started = performance.now();
    // not awaited: the command resolves only when the cell is done; the page is watched instead
    app.commands.execute('notebook:run-cell');
    return started;
}"""


def run_cell(page, index: int) -> float:
    """Run cell ``index`` of JupyterLab's current notebook, as Ctrl-Enter would (the
    selection stays on it), without waiting.

    Returns
    -------
    float
        The page time (ms) just before the run command was issued.
    """
    return page.evaluate(JS_RUN_CELL, index)
