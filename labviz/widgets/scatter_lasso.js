// Prepended to jupyter-scatter's page module by labviz.widgets.projection_views.scatter_module,
// which also makes that module call these objects.
//
// Every frame of regl-scatterplot redraws every point: in software WebGL (SwiftShader) a million
// points take 1.4-1.9 s of CPU a frame, and the page paints nothing else meanwhile. So:
//
// labvizSlowFrames: times each frame of each scatter, from its draw calls to the next animation
// frame; a scatter is slow from a frame of SLOW_MS (and stays slow until one takes under half
// that). With a GPU, frames take milliseconds and nothing below changes; without one, a scatter
// of 100k points is slow already.
//
// labvizLassoTrace: each mouse move of a lasso redrew every point. The changed module does not
// redraw the points while a lasso is drawn; it draws the lasso's path here, on a 2-D canvas over
// the scatter's, and regl-scatterplot still selects the points inside its own path on release.
//
// labvizHoverRing: on a slow scatter, the hovered point's ring and reticle are drawn here too,
// and hovering redraws no point (a click that followed a hover waited for its frame).
//
// labvizHeldDraw: on a slow scatter, a selection made on the page redraws the points once the
// kernel has answered it.
//
// labvizDrawing: a line over the scatter saying that its points are being drawn, from the
// scatter's render until its first draw (seconds at a million points without a GPU).

const labvizSlowFrames = (() => {
  const SLOW_MS = 50;
  const slow = new WeakMap();  // a scatter's canvas -> whether its frames are slow
  const drawn = new WeakMap();  // a scatter's canvas -> when its last frame was drawn

  return {
    // after a frame's draw calls (the GPU works on them out of the page's thread)
    drew(canvas) {
      drawn.set(canvas, performance.now());
    },
    // at each animation frame: the time since the last draw is that draw's
    tick(canvas) {
      const start = drawn.get(canvas);
      if (start === undefined) return;
      drawn.delete(canvas);
      const ms = performance.now() - start;
      const isSlow = ms >= SLOW_MS || (slow.get(canvas) === true && ms >= SLOW_MS / 2);
      slow.set(canvas, isSlow);
      canvas.dataset.labvizSlow = isSlow ? "true" : "false";  // for the page's tests
    },
    slow: (canvas) => slow.get(canvas) === true,
  };
})();

// A 2-D canvas of class `name` over a scatter's `canvas`, at its place and size.
const labvizOverlay = (canvas, name) => {
  let overlay = [...canvas.parentElement.children].find((el) => el.classList.contains(name));
  if (!overlay) {
    overlay = document.createElement("canvas");
    overlay.className = name;
    Object.assign(overlay.style, { position: "absolute", pointerEvents: "none", zIndex: "5" });
    canvas.parentElement.appendChild(overlay);
  }
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  Object.assign(overlay.style, { left: `${canvas.offsetLeft}px`, top: `${canvas.offsetTop}px`,
                                 width: `${width}px`, height: `${height}px` });
  if (overlay.width !== Math.round(width * ratio)) overlay.width = Math.round(width * ratio);
  if (overlay.height !== Math.round(height * ratio)) overlay.height = Math.round(height * ratio);
  const ctx = overlay.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  return ctx;
};

const labvizLassoTrace = (() => {
  const traces = new WeakMap();  // a scatter's canvas -> the lasso's points

  const paint = (canvas, points) => {
    const ctx = labvizOverlay(canvas, "labviz-lasso-trace");
    if (points.length < 2) return;
    ctx.beginPath();
    ctx.moveTo(points[0][0], points[0][1]);
    for (const [x, y] of points) ctx.lineTo(x, y);
    ctx.fillStyle = "rgba(0, 102, 204, 0.08)";
    ctx.fill();
    ctx.strokeStyle = "rgba(0, 102, 204, 0.9)";
    ctx.lineWidth = 2;
    ctx.stroke();
  };

  return {
    start(canvas, point) {
      traces.set(canvas, [point]);
      paint(canvas, [point]);
    },
    extend(canvas, point) {
      const points = traces.get(canvas) || [];
      points.push(point);
      traces.set(canvas, points);
      paint(canvas, points);
    },
    clear(canvas) {
      if (!traces.has(canvas)) return;
      traces.set(canvas, []);
      paint(canvas, []);
    },
  };
})();

const labvizHoverRing = (() => {
  const locators = new WeakMap();  // a scatter's canvas -> () => the hovered point's [x, y] or null

  const paint = (canvas) => {
    const locate = locators.get(canvas);
    const ctx = labvizOverlay(canvas, "labviz-hover-ring");
    let at = null;
    try {
      if (locate) at = locate();
    } catch (error) {
      // the points are not drawn yet: no ring
    }
    if (!at) return;
    const [x, y] = at;
    ctx.strokeStyle = "rgba(0, 0, 0, 0.15)";
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(0, y);
    ctx.lineTo(canvas.clientWidth, y);
    ctx.moveTo(x, 0);
    ctx.lineTo(x, canvas.clientHeight);
    ctx.stroke();
    ctx.beginPath();
    ctx.arc(x, y, 6, 0, 2 * Math.PI);
    ctx.strokeStyle = "rgba(255, 255, 255, 0.9)";
    ctx.lineWidth = 4;
    ctx.stroke();
    ctx.strokeStyle = "rgba(0, 0, 0, 0.85)";
    ctx.lineWidth = 2;
    ctx.stroke();
  };

  return {
    // Called by hover() in place of its redraw; true when the ring is drawn here.
    show(canvas, locate) {
      if (!labvizSlowFrames.slow(canvas)) {
        if (locators.delete(canvas)) paint(canvas);  // no longer slow: the frames draw it
        return false;
      }
      locators.set(canvas, locate);
      paint(canvas);
      return true;
    },
    // After each frame: the points or the camera may have moved.
    refresh(canvas) {
      if (locators.has(canvas)) paint(canvas);
    },
  };
})();

const labvizDrawing = {
  show(el, n) {
    const note = document.createElement("div");
    note.className = "labviz-drawing";
    note.textContent = `Drawing ${Number(n).toLocaleString("en-US")} points…`;
    Object.assign(note.style, {
      position: "absolute", left: "50%", top: "45%", transform: "translate(-50%, -50%)",
      padding: "6px 10px", borderRadius: "4px", background: "rgba(255, 255, 255, 0.9)",
      color: "#555", font: "13px sans-serif", pointerEvents: "none", zIndex: "6",
    });
    if (!el.style.position) el.style.position = "relative";
    el.appendChild(note);
    return note;
  },
  // after the first frame with the points (the draw's promise resolves before it is painted)
  hide(note) {
    requestAnimationFrame(() => requestAnimationFrame(() => note.remove()));
  },
};

// labvizHeldDraw: a selection made on the page (a click on a point, a lasso's release) makes
// regl-scatterplot redraw every point, and the kernel's answer (the clicked point's neighbours,
// the selection's reliability diagram) arrived meanwhile and waited behind that frame. On a slow
// scatter the redraw waits until the kernel says it has answered (a "labviz-answered" message,
// sent after the answer's own) and a frame has painted that answer, or HOLD_MS at most. Other
// scatters redraw at once.
const labvizHeldDraw = (() => {
  const HOLD_MS = 2000;
  const held = new WeakMap();  // a scatter's canvas -> {draw, timer}

  const release = (canvas) => {
    const hold = held.get(canvas);
    if (!hold) return;
    held.delete(canvas);
    clearTimeout(hold.timer);
    // the answer's messages came before this one: their frame first, then the points
    requestAnimationFrame(() => setTimeout(hold.draw, 0));
  };

  return {
    // called by regl-scatterplot's select() in place of its `draw = true`
    request(canvas, fromPage, draw) {
      if (!fromPage || !labvizSlowFrames.slow(canvas)) {
        release(canvas);
        draw();
        return;
      }
      const previous = held.get(canvas);
      if (previous) clearTimeout(previous.timer);
      held.set(canvas, { draw, timer: setTimeout(() => release(canvas), HOLD_MS) });
    },
    release,
  };
})();
