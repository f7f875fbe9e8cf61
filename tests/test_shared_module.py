"""``labviz.widgets._common.shared_esm`` in a real page (headless Chromium): the stand-in module
anywidget loads for plotly's and jupyter-scatter's widgets.

It is driven here as anywidget drives a widget module (``default()`` per model, then
``initialize({model})`` and ``render({model, el})``), with small models that have anywidget's
``get``/``on``/``off`` and apply changes as kernel messages do. The real module counts its imports
and logs what its listeners see. Checked, for a real module slower than ``wait_ms`` and for one
faster: it is imported once per page for three models; ``initialize`` returns without waiting
for a slow one, nor for the model holding its text when that model reaches the page later; the
watched trait's changes made before it loaded reach its listeners in order, with their values at
the time (including a reset to null, as plotly's ``_py2js_update`` has); changes after it loaded
reach them directly; an unwatched trait's early changes are not replayed.
"""

from __future__ import annotations

import json

from test_browser import BROWSER_MARKS, chromium_page

from labviz.widgets._common import shared_esm

pytestmark = BROWSER_MARKS

#: A widget module that loads in DELAY_MS and logs each change of ``a`` and ``b`` its model
#: listeners see, with the value ``get`` gives then.
REAL = """
globalThis.__imports = (globalThis.__imports ?? 0) + 1;
globalThis.__log = [];
await new Promise(resolve => setTimeout(resolve, DELAY_MS));
export default () => ({
  initialize({ model }) {
    for (const name of ["a", "b"]) {
      model.on(`change:${name}`, () => globalThis.__log.push([model.get("id"), name,
                                                              model.get(name)]));
    }
  },
  render({ model, el }) { el.textContent = `rendered ${model.get("id")}`; },
});
"""

JS_DRIVE = """async ([esm, trait, source, holderMs]) => {
  const url = URL.createObjectURL(new Blob([esm], { type: "text/javascript" }));
  const mod = await import(url);
  const models = [], initializeMs = [], texts = [];
  // the model holding the module's text reaches the widget manager holderMs after the others
  const start = performance.now();
  let lookups = 0;
  const widget_manager = {
    get_model: async (id) => {
      lookups++;
      if (id !== "holder" || performance.now() - start < holderMs) throw new Error("not found");
      return { get: (name) => (name === "text" ? source : undefined) };
    },
  };
  for (let id = 0; id < 3; id++) {
    const state = new Map([["id", id]]), listeners = [];
    if (trait) state.set(trait, "holder");  // the id of the model holding the module's text
    const model = {
      widget_manager,
      get: name => state.get(name),
      on: (event, callback, context) => listeners.push([event, callback, context]),
      off: (event, callback) => {
        const i = listeners.findIndex(([e, c]) => e === event && c === callback);
        if (i >= 0) listeners.splice(i, 1);
      },
      apply: (name, value) => {  // a change from the kernel
        state.set(name, value);
        for (const [e, c, ctx] of [...listeners]) if (e === `change:${name}`) c.call(ctx);
      },
    };
    const widget = mod.default();
    const t0 = performance.now();
    await widget.initialize({ model });
    initializeMs.push(performance.now() - t0);
    models.push([model, widget]);
  }
  for (const [model] of models) {
    model.apply("a", 1); model.apply("b", "early"); model.apply("a", 2); model.apply("a", null);
  }
  for (const [model, widget] of models) {
    const el = document.createElement("div");
    await widget.render({ model, el });
    texts.push(el.textContent);
    model.apply("a", 3); model.apply("b", "late");
  }
  return { imports: globalThis.__imports, log: globalThis.__log, initializeMs, texts, lookups };
}"""


def _drive(tmp_path, *, delay_ms: int, wait_ms: int, trait: str | None = None,
           holder_ms: int = 0) -> dict:
    source = REAL.replace("DELAY_MS", str(delay_ms))
    esm = shared_esm(source, "test", watch=["a"], wait_ms=wait_ms, trait=trait)
    assert (json.dumps(source) in esm) is (trait is None)  # with a trait, it does not carry it
    with chromium_page(tmp_path, width=800, height=600) as page:
        page.goto("about:blank")
        return page.evaluate(JS_DRIVE, [esm, trait, source, holder_ms])


def _log_of(log: list, model_id: int) -> list:
    return [entry[1:] for entry in log if entry[0] == model_id]


def test_a_slow_module_is_imported_once_and_gets_the_changes_it_missed_in_order(tmp_path):
    seen = _drive(tmp_path, delay_ms=800, wait_ms=50)
    assert seen["imports"] == 1
    assert max(seen["initializeMs"]) < 500  # not the 800 ms the module takes to load
    assert seen["texts"] == ["rendered 0", "rendered 1", "rendered 2"]
    for model_id in range(3):
        # the early `b` was not watched, so only its late change is seen
        assert _log_of(seen["log"], model_id) == [["a", 1], ["a", 2], ["a", None], ["a", 3],
                                                  ["b", "late"]]


def test_the_module_text_can_come_from_a_model_that_reaches_the_page_later(tmp_path):
    seen = _drive(tmp_path, delay_ms=800, wait_ms=50, trait="_labviz_module", holder_ms=300)
    assert seen["imports"] == 1
    assert seen["lookups"] > 1  # the holder was not there at first: it was looked up again
    assert max(seen["initializeMs"]) < 250  # neither the holder nor the module was waited for
    assert seen["texts"] == ["rendered 0", "rendered 1", "rendered 2"]
    for model_id in range(3):
        assert _log_of(seen["log"], model_id) == [["a", 1], ["a", 2], ["a", None], ["a", 3],
                                                  ["b", "late"]]


def test_a_fast_module_initialises_the_models_itself(tmp_path):
    seen = _drive(tmp_path, delay_ms=0, wait_ms=2000)
    assert seen["imports"] == 1
    for model_id in range(3):
        assert _log_of(seen["log"], model_id) == [["a", 1], ["b", "early"], ["a", 2], ["a", None],
                                                  ["a", 3], ["b", "late"]]
