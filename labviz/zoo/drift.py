"""How far a fresh rebuild of a zoo run lies from the shipped checkpoint (``benchmarks/drift.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from labviz.zoo.building import holdout_metrics, train_recipe
from labviz.zoo.recipe import recipes
from labviz.zoo.splits import split_data
from labviz.zoo.store import entry, load

__all__ = ["RebuildDrift", "rebuild_drift"]


@dataclass(frozen=True)
class RebuildDrift:
    """How far a fresh rebuild of a zoo run lies from the shipped checkpoint and its manifest entry.

    On the machine that built the zoo a rebuild is bit-identical. On a CPU of another kind torch
    picks other float kernels (ATen's AVX2 or AVX-512 paths, oneDNN's, MKL's), which round
    differently, so the weights drift by a few ulps per step and the metrics by a sample or so.
    """

    name: str
    bit_identical: bool
    #: Largest ``|w_rebuilt − w_shipped|`` over every weight, and the largest ``|w_shipped|``.
    max_weight_diff: float
    max_weight: float
    test_samples: int
    #: Test samples whose predicted class differs between the rebuilt and the shipped model.
    prediction_changes: int
    #: Largest ``|p_rebuilt − p_shipped|`` of the top-class probability over the test set.
    max_confidence_diff: float
    #: Rebuilt minus manifest: test accuracy, and 15-bin test ECE.
    accuracy_diff: float
    ece_diff: float


def rebuild_drift(name: str, *, progress: bool = False) -> RebuildDrift:
    """Retrain zoo run ``name`` from scratch on this machine and compare it with the shipped one.

    The shipped file is checked against its sha256 first; a student's teacher is the shipped one.
    """
    import torch

    from labviz.zoo.training import predict_logits

    runs = {r.name: r for r in recipes()}
    if name not in runs:
        raise ValueError(f"`name` must be a zoo run (not a snapshot); got {name!r}.")
    recipe, e = runs[name], entry(name)
    if e["recipe_key"] != recipe.key():
        raise ValueError(f"The manifest entry of {name!r} was built from another recipe "
                         f"(key {e['recipe_key']}, current {recipe.key()}); rebuild the zoo first.")
    shipped, _ = load(name)
    teacher = load(recipe.teacher)[0] if recipe.teacher else None
    result, _, _ = train_recipe(recipe, progress=progress, teacher_model=teacher)
    new, old = result.model.state_dict(), shipped.state_dict()
    diffs = [float((new[k] - t).abs().max()) for k, t in old.items() if t.is_floating_point()]
    images, y, _ = split_data(recipe.dataset, "test")
    top_new, top_old = (torch.from_numpy(predict_logits(m, images)).double().softmax(1).max(1)
                        for m in (result.model, shipped))
    metrics = holdout_metrics(result.model, recipe.dataset)
    return RebuildDrift(
        name=name,
        bit_identical=all(torch.equal(new[k], t) for k, t in old.items()),
        max_weight_diff=max(diffs),
        max_weight=max(float(t.abs().max()) for t in old.values() if t.is_floating_point()),
        test_samples=len(y),
        prediction_changes=int((top_new.indices != top_old.indices).sum()),
        max_confidence_diff=float((top_new.values - top_old.values).abs().max()),
        accuracy_diff=metrics["test_accuracy"] - e["test_accuracy"],
        ece_diff=metrics["test_ece"] - e["test_ece"],
    )
