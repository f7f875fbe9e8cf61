"""The zoo: real checkpoints that labviz trains on real data, ships in ``data/checkpoints`` (and in
its wheel, as the package data ``labviz.zoo.checkpoints``; :func:`zoo_dir` finds either), and
rebuilds with one command (``labviz zoo build`` or ``make zoo``).

Each checkpoint is a **safetensors** file (weights, plus the training-set indices and the labels it
was trained with) listed in ``manifest.json`` with its recipe, sha256 and test metrics. Loading
verifies the sha256 and the tensor names and shapes; nothing is ever unpickled. A checkpoint
stores the indices and labels it was trained on, so on the "train" split :func:`compute_activations`
gives exactly those images.

Modules: :mod:`~labviz.zoo.recipe` (every run and what determines it), :mod:`~labviz.zoo.splits`
(the fixed train/val/test splits), :mod:`~labviz.zoo.store` (the files and the manifest),
:mod:`~labviz.zoo.activations` (a checkpoint's predictions), :mod:`~labviz.zoo.building` (training
the zoo), :mod:`~labviz.zoo.drift` (a rebuild against the shipped checkpoint) and
:mod:`~labviz.zoo.series` (checkpoints to step through). Importing the zoo does not import torch:
what trains or loads a model imports it when called.
"""

from labviz.core.files import sha256_file
from labviz.zoo.activations import compute_activations, predictions, warm
from labviz.zoo.building import build, train_recipe
from labviz.zoo.drift import RebuildDrift, rebuild_drift
from labviz.zoo.recipe import (
    KD_TEMPERATURES,
    LS_GRID_ALPHAS,
    LS_GRID_SEEDS,
    NLS_SCHEDULE,
    STUDY_SEEDS,
    TRANSFER_ARCH,
    TRANSFER_EPOCHS,
    TRANSFER_SIZE,
    Recipe,
    # Private, but reachable here: the README and notebook 01 cite it for how the transfer-set
    # study's settings were chosen.
    _transfer_kd_runs,
    recipes,
)
from labviz.zoo.series import Series, SeriesKind, list_series, series_for
from labviz.zoo.splits import DATA_SEED, class_names, images_for, split_data, split_indices
from labviz.zoo.store import (
    MANIFEST,
    REQUIRED_FIELDS,
    entry,
    load,
    load_checkpoint,
    names,
    read_labviz_safetensors,
    read_manifest,
    snapshots,
    verify,
    zoo_dir,
)

__all__ = [
    "DATA_SEED", "KD_TEMPERATURES", "LS_GRID_ALPHAS", "LS_GRID_SEEDS", "MANIFEST", "NLS_SCHEDULE",
    "REQUIRED_FIELDS", "STUDY_SEEDS", "TRANSFER_ARCH", "TRANSFER_EPOCHS", "TRANSFER_SIZE",
    "RebuildDrift", "Recipe", "Series", "SeriesKind",
    "build", "class_names", "compute_activations", "entry", "images_for", "list_series", "load",
    "load_checkpoint", "names", "predictions", "read_labviz_safetensors", "read_manifest",
    "rebuild_drift", "recipes", "series_for", "sha256_file", "snapshots", "split_data",
    "split_indices", "train_recipe", "verify", "warm", "zoo_dir",
]
