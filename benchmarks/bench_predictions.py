"""Extraction throughput: ``Predictions.from_model`` vs a bare torch forward loop on the same loader.

The model is the zoo's Fashion-MNIST architecture (``SmallCNN``, 28x28 inputs), randomly initialised
with a fixed seed: throughput does not depend on the weights. Both sides run in inference mode over
the same ``DataLoader``; the bare loop keeps the logits and labels, ``from_model`` also records the
penultimate features (forward hook), the head's weights and validates everything. The two are
timed alternately, so that drifting load on a shared machine hits both alike.
"""

from __future__ import annotations

import gc
import time

from timing import Timing, goal, make_row

FULL_N, QUICK_N = 10_000, 1_000
BATCH = 512


def run(quick: bool = False, log=print) -> list[dict]:
    import torch

    from labviz.zoo.models import SmallCNN
    from labviz.core.predictions import Predictions

    n = QUICK_N if quick else FULL_N
    torch.manual_seed(0)
    model = SmallCNN(n_classes=10, image_size=28).eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (n,), generator=gen)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=BATCH)

    def bare():
        logits, labels = [], []
        with torch.inference_mode():
            for xb, yb in loader:
                logits.append(model(xb))
                labels.append(yb)
        return torch.cat(logits).numpy(), torch.cat(labels).numpy()

    def labviz():
        return Predictions.from_model(model, loader, feature_layer="body")

    reps = 3 if quick else 5
    times = {"bare": [], "labviz": []}
    bare()  # warm-up: first convolutions allocate and pick kernels
    for _ in range(reps):
        for name, fn in (("bare", bare), ("labviz", labviz)):
            gc.collect()
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    lab = Timing(seconds=min(times["labviz"]), reps=reps, all_seconds=times["labviz"])
    base = Timing(seconds=min(times["bare"]), reps=reps, all_seconds=times["bare"])
    row = make_row("predictions", f"from_model N={n}",
                   {"n_samples": n, "batch_size": BATCH, "model": "SmallCNN(28x28, cnn)",
                    "torch_threads": torch.get_num_threads()},
                   labviz=lab, peers={"bare torch loop": base})
    row["samples_per_second"] = {"labviz": n / lab.seconds, "bare": n / base.seconds}
    row["goals"] = [goal("≤ 1.2× bare loop", row["ratio_to_fastest_peer"], 1.2)]
    log(f"  {row['case']:<20} labviz {lab.seconds:.3f}s  bare {base.seconds:.3f}s  "
        f"ratio {row['ratio_to_fastest_peer']:.3f}")
    return [row]
