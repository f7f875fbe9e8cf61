// An anywidget module that stands in for a widget's own page module (see
// labviz.widgets._common.shared_esm, which fills in KEY, SOURCE, TRAIT, WATCH and WAIT_MS).
//
// anywidget drops every message from the kernel to a model that is not initialised 2 s after the
// page created it, and it loads each model's module anew. So this module is small, it loads the
// real one once per page, and it initialises each model at once. The real module's text is
// SOURCE, or, when SOURCE is null, the `text` of the model whose id is in the model's trait TRAIT
// (one model per kernel holds it, so that a page receives it once, not once per widget). The
// real module initialises the model when it has loaded: within WAIT_MS, straight away; later,
// with the changes of the WATCH traits it missed meanwhile replayed to it, in order.

const KEY = __KEY__;
const TRAIT = __TRAIT__;
const WATCH = __WATCH__;
const WAIT_MS = __WAIT_MS__;
const SOURCE = __SOURCE__;

// The text of the model named in `model`'s trait TRAIT. That model may reach the page's widget
// manager a little after this one: Voilà creates all of a page's models together.
async function textOf(model) {
  const id = model.get(TRAIT);
  for (let tries = 0; tries < 200; tries++) {
    const holder = await (async () => model.widget_manager.get_model(id))().catch(() => null);
    if (holder) return holder.get("text");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`labviz: no model ${id} on this page holds the module ${KEY}`);
}

function load(model) {
  const modules = (globalThis.__labvizModules ??= new Map());
  if (!modules.has(KEY)) {
    const source = SOURCE !== null ? Promise.resolve(SOURCE) : textOf(model);
    modules.set(KEY, source.then((text) => {
      const url = URL.createObjectURL(new Blob([text], { type: "text/javascript" }));
      return import(url).finally(() => URL.revokeObjectURL(url));
    }).catch((error) => {
      modules.delete(KEY);  // so that the page's next model tries again
      throw error;
    }));
  }
  return modules.get(KEY);
}

// The model as the real module sees it: its listeners are kept (to replay changes to them), and
// `get` answers a replayed value while that change is replayed.
function replayingModel(model) {
  const listeners = [];
  const replayed = new Map();
  const proxy = Object.create(model);
  proxy.get = (name) => (replayed.has(name) ? replayed.get(name) : model.get(name));
  proxy.on = (name, callback, context) => {
    listeners.push([name, callback, context]);
    model.on(name, callback, context);
  };
  proxy.replay = (changes) => {
    for (const [name, value] of changes) {
      replayed.set(name, value);
      for (const [event, callback, context] of listeners) {
        if (event === `change:${name}`) callback.call(context);
      }
      replayed.delete(name);
    }
  };
  return proxy;
}

export default () => {
  let widget, loaded;
  const ensure = (model) => (loaded ??= load(model).then(async (mod) => {
    widget = typeof mod.default === "function" ? await mod.default() : mod.default;
  }));
  let initialized = null;
  return {
    async initialize(context) {
      initialized = ensure(context.model);
      const soon = await Promise.race([
        loaded.then(() => true),
        new Promise((resolve) => setTimeout(resolve, WAIT_MS, false)),
      ]);
      if (soon) return widget.initialize?.(context);
      const missed = [];
      const record = {};
      for (const name of WATCH) {
        record[name] = () => missed.push([name, context.model.get(name)]);
        context.model.on(`change:${name}`, record[name]);
      }
      const model = replayingModel(context.model);
      initialized = loaded.then(async () => {
        // in one go, so that no change comes between the recording and the real listeners
        const result = widget.initialize?.({ ...context, model });
        for (const name of WATCH) context.model.off(`change:${name}`, record[name]);
        model.replay(missed);
        await result;
      });
    },
    async render(context) {
      await (initialized ?? ensure(context.model));
      return widget.render?.(context);
    },
  };
};
