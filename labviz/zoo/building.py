"""Training the zoo: one recipe at a time, or every missing or outdated one (``labviz zoo build``).

Training is deterministic and single-threaded, so a rebuild on the machine that built the zoo is
bit-identical, and :func:`build` trains several runs side by side, one per core, in a process pool.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from labviz.core.files import atomic_write_bytes, sha256_file
from labviz.zoo.recipe import Recipe, recipes
from labviz.zoo.splits import split_data
from labviz.zoo.store import Entry, load_checkpoint, read_manifest, write_manifest, zoo_dir

if TYPE_CHECKING:  # torch loads only when something trains
    import torch
    from torch import nn

    from labviz.core.predictions import Split
    from labviz.zoo.models import CNNConfig
    from labviz.zoo.training import TrainResult

__all__ = ["build", "holdout_metrics", "train_recipe"]


def holdout_metrics(model: nn.Module, dataset: str) -> dict[str, float]:
    """Accuracy and 15-bin ECE of ``model`` on the val and test splits of ``dataset``.

    Returns
    -------
    dict
        ``val_accuracy``, ``val_ece``, ``test_accuracy`` and ``test_ece``, rounded to 6 decimals.
    """
    from labviz.compute.calibration import expected_calibration_error
    from labviz.core._numeric import softmax
    from labviz.zoo.training import predict_logits

    splits: tuple[Split, ...] = ("val", "test")
    out = {}
    for split in splits:
        images, y, _ = split_data(dataset, split)
        probs = softmax(predict_logits(model, images).astype(np.float64))
        out[f"{split}_accuracy"] = round(float((probs.argmax(1) == y).mean()), 6)
        out[f"{split}_ece"] = round(expected_calibration_error(y, probs, n_bins=15), 6)
    return out


def _save(path: Path, state: Mapping[str, torch.Tensor], train_index: ArrayLike,
          train_given: ArrayLike, config: CNNConfig, recipe: Recipe) -> str:
    """Write a checkpoint file (weights, the ids and labels it trained on); return its sha256."""
    import torch
    from safetensors.torch import save

    tensors = {k: t.contiguous() for k, t in state.items()}
    tensors["labels.train_index"] = torch.from_numpy(np.asarray(train_index, dtype=np.int64))
    tensors["labels.train_given"] = torch.from_numpy(np.asarray(train_given, dtype=np.int64))
    meta = {"format": "labviz-checkpoint", "model": json.dumps(config), "recipe": json.dumps(asdict(recipe))}
    data = save(tensors, metadata=meta)
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def _train_subset(recipe: Recipe) -> tuple[NDArray[np.uint8], NDArray[np.int64], NDArray[np.int64]]:
    """Images, clean labels and ids that ``recipe`` trains on: the first ``train_size`` of the split."""
    images, y_clean, ids = split_data(recipe.dataset, "train")
    if recipe.train_size is None:
        return images, y_clean, ids
    if recipe.train_size > len(ids):
        raise ValueError(f"`train_size` must be at most the {len(ids)} images of the "
                         f"{recipe.dataset} train split; got {recipe.train_size}.")
    n = recipe.train_size
    return images[:n], y_clean[:n], ids[:n]


def train_recipe(recipe: Recipe, *, progress: bool = True, teacher_model: nn.Module | None = None
                 ) -> tuple[TrainResult, NDArray[np.int64], NDArray[np.int64]]:
    """Train one recipe from scratch: ``(TrainResult, train_index, given_labels)``. Deterministic.

    ``train_index`` and ``given_labels`` are those of the images actually trained on (the first
    ``recipe.train_size`` of the train split, when it is set). The model is built right after
    ``torch.manual_seed(recipe.seed)`` and the data order is drawn from ``recipe.seed`` alone, so
    runs of one seed, architecture and train size start from the same weights and see the same
    batches whatever their loss or teacher: their comparisons are paired.
    """
    import torch

    from labviz.zoo.models import SmallCNN
    from labviz.zoo.training import TrainConfig, symmetric_noise, train

    images, y_clean, ids = _train_subset(recipe)
    given = y_clean
    if recipe.noise_rate:
        given = symmetric_noise(y_clean, recipe.noise_rate, n_classes=10, seed=recipe.seed).labels
    config = TrainConfig(loss=recipe.loss, alpha=recipe.alpha, epochs=recipe.epochs, seed=recipe.seed,
                         temperature=recipe.temperature, kd_weight=recipe.kd_weight,
                         snapshots=recipe.snapshots, alpha_warmup=recipe.alpha_warmup,
                         alpha_ramp=recipe.alpha_ramp, nls_floor=recipe.nls_floor)
    torch.manual_seed(recipe.seed)
    model = SmallCNN(n_classes=10, image_size=images.shape[1], arch=recipe.arch)
    result = train(model, images, given, config, teacher=teacher_model, progress=progress,
                   description=recipe.name)
    return result, ids, given


def _entry(recipe: Recipe, name: str, epoch: int, sha: str, seconds: float | None,
           metrics: dict[str, float], size: int) -> Entry:
    return {
        "name": name, "file": f"{name}.safetensors", "sha256": sha, "bytes": size,
        "dataset": recipe.dataset, "arch": recipe.arch, "loss": recipe.loss, "alpha": recipe.alpha,
        "noise_rate": recipe.noise_rate, "seed": recipe.seed, "epoch": epoch,
        "epochs_total": recipe.epochs, "teacher": recipe.teacher,
        "temperature": recipe.temperature if recipe.loss == "kd" else None,
        "kd_weight": recipe.kd_weight if recipe.loss == "kd" else None,
        "family": recipe.family, "run": recipe.name, "recipe_key": recipe.key(),
        "train_size": recipe.train_size,
        "alpha_warmup": recipe.alpha_warmup, "alpha_ramp": recipe.alpha_ramp,
        "nls_floor": recipe.nls_floor,
        "train_seconds": None if seconds is None else round(seconds, 2), **metrics,
    }


def _run_recipe(recipe: Recipe, folder: Path, teacher_entry: Entry | None,
                progress: bool) -> list[Entry]:
    """Train one recipe, write its checkpoint (and snapshots) into ``folder``; return their entries.

    Runs in a worker process when the build is parallel, so it takes and returns plain data.
    """
    from labviz.zoo.models import SmallCNN

    teacher = None
    if teacher_entry is not None:
        teacher, _, _ = load_checkpoint(folder / teacher_entry["file"], sha256=teacher_entry["sha256"])
    result, index, given = train_recipe(recipe, progress=progress, teacher_model=teacher)
    if not isinstance(result.model, SmallCNN):  # what train_recipe builds; narrows the type
        raise TypeError(f"train_recipe must return a SmallCNN; got {type(result.model).__name__}.")
    config = result.model.config
    states = {**result.snapshots, recipe.epochs: result.model.state_dict()}
    entries = []
    for epoch, state in sorted(states.items()):
        final = epoch == recipe.epochs
        name = recipe.name if final else f"{recipe.name}-e{epoch:02d}"
        model = SmallCNN(**config)
        model.load_state_dict(state)
        sha = _save(folder / f"{name}.safetensors", state, index, given, config, recipe)
        # A snapshot's training time is part of its run's, so it records none of its own.
        entries.append(_entry(recipe, name, epoch, sha, result.seconds if final else None,
                              holdout_metrics(model, recipe.dataset),
                              (folder / f"{name}.safetensors").stat().st_size))
    return entries


def build(
    only: Iterable[str] | None = None,
    *,
    dataset: str | None = None,
    folder: Path | None = None,
    force: bool = False,
    jobs: int = 1,
    progress: bool = True,
) -> list[Entry]:
    """Train every missing or outdated zoo entry and update the manifest; return the manifest.

    Idempotent: an entry whose recipe is unchanged and whose file matches its sha256 is kept.
    The manifest is rewritten after every run, so an interrupted build keeps what it finished.
    Training is single-threaded (see :func:`labviz.zoo.training.train`), so ``jobs`` runs train side
    by side, one per core; students start once their teachers are done.

    Parameters
    ----------
    only : iterable of str, optional
        Run names to build (their teachers are built too if missing).
    dataset : {"fashion-mnist", "digits"}, optional
        Build only this dataset's entries.
    folder : Path, optional
        Where to write; defaults to :func:`labviz.zoo.zoo_dir`.
    force : bool
        Retrain even entries that are up to date.
    jobs : int
        Runs trained in parallel (worker processes).
    """
    from concurrent.futures import Future, ProcessPoolExecutor, as_completed

    from tqdm.auto import tqdm

    root = folder or zoo_dir()
    root.mkdir(parents=True, exist_ok=True)
    try:
        entries = {e["name"]: e for e in read_manifest(root)}
    except FileNotFoundError:
        entries = {}
    all_runs = {r.name: r for r in recipes()}
    wanted = [r for r in all_runs.values() if dataset is None or r.dataset == dataset]
    if only is not None:
        chosen = set(only)
        unknown = chosen - set(all_runs)
        if unknown:
            raise ValueError(f"`only` must name zoo runs; got unknown {sorted(unknown)}.")
        with_teachers = chosen | {t for n in chosen if (t := all_runs[n].teacher)}
        wanted = [r for r in wanted if r.name in with_teachers]

    def up_to_date(r: Recipe) -> bool:
        e = entries.get(r.name)
        return (not force and e is not None and e.get("recipe_key") == r.key()
                and (root / e["file"]).is_file() and sha256_file(root / e["file"]) == e["sha256"])

    def record(run: str, new: list[Entry]) -> None:
        for stale in [n for n, e in entries.items() if e.get("run") == run]:
            entries.pop(stale)
        entries.update({e["name"]: e for e in new})
        write_manifest(list(entries.values()), root)

    def teacher_of(r: Recipe) -> Entry | None:
        return entries.get(r.teacher) if r.teacher else None

    todo = [r for r in wanted if not up_to_date(r)]
    stages = [[r for r in todo if not r.teacher], [r for r in todo if r.teacher]]
    with tqdm(total=len(todo), desc="zoo", unit="run", disable=not progress) as bar:
        for stage in stages:
            if jobs == 1:
                for r in stage:
                    record(r.name, _run_recipe(r, root, teacher_of(r), progress))
                    bar.update(1)
                continue
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                futures: dict[Future[list[Entry]], Recipe] = {
                    pool.submit(_run_recipe, r, root, teacher_of(r), False): r for r in stage}
                for future in as_completed(futures):
                    record(futures[future].name, future.result())
                    bar.set_postfix(done=futures[future].name)
                    bar.update(1)
    return read_manifest(root) if entries else []
