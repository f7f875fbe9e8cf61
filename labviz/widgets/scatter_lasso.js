// Prepended to jupyter-scatter's page module by labviz.widgets.projection_views.scatter_module,
// which also makes that module call these two objects.
//
// labvizLassoTrace: regl-scatterplot draws its lasso in the WebGL frame, so each mouse move of a
// lasso redraws every point: in software WebGL (SwiftShader) a million points take 1.4-1.9 s of
// CPU a frame, and the lasso lagged the mouse by that much. The changed module does not redraw
// the points while a lasso is drawn; it draws the lasso's path here, on a 2-D canvas over the
// scatter's, and regl-scatterplot still selects the points inside its own path on release.
//
// labvizDrawing: a line over the scatter saying that its points are being drawn, from the
// scatter's render until its first draw (seconds at a million points without a GPU).

const labvizLassoTrace = (() => {
  const traces = new WeakMap();  // a scatter's canvas -> {overlay, points}

  const place = (canvas) => {
    let trace = traces.get(canvas);
    if (!trace || !trace.overlay.isConnected) {
      const overlay = document.createElement("canvas");
      overlay.className = "labviz-lasso-trace";
      Object.assign(overlay.style, { position: "absolute", pointerEvents: "none", zIndex: "5" });
      canvas.parentElement.appendChild(overlay);
      trace = { overlay, points: [] };
      traces.set(canvas, trace);
    }
    const { overlay } = trace;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    Object.assign(overlay.style, { left: `${canvas.offsetLeft}px`, top: `${canvas.offsetTop}px`,
                                   width: `${width}px`, height: `${height}px` });
    if (overlay.width !== Math.round(width * ratio)) overlay.width = Math.round(width * ratio);
    if (overlay.height !== Math.round(height * ratio)) overlay.height = Math.round(height * ratio);
    return trace;
  };

  const paint = ({ overlay, points }) => {
    const ctx = overlay.getContext("2d");
    const ratio = window.devicePixelRatio || 1;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, overlay.width, overlay.height);
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
      const trace = place(canvas);
      trace.points = [point];
      paint(trace);
    },
    extend(canvas, point) {
      const trace = traces.get(canvas) || place(canvas);
      trace.points.push(point);
      paint(trace);
    },
    clear(canvas) {
      const trace = traces.get(canvas);
      if (!trace) return;
      trace.points = [];
      paint(trace);
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
