"""The zoo on disk: safetensors checkpoints listed in ``manifest.json``, checked before use.

Each checkpoint is a **safetensors** file (weights, plus the training-set indices and the labels it
was trained with) listed in ``manifest.json`` with its recipe, sha256 and test metrics. Loading
verifies the sha256 and the tensor names and shapes; nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labviz.core import files

if TYPE_CHECKING:  # torch and the models load only when a checkpoint does
    import torch

    from labviz.zoo.models import SmallCNN

__all__ = ["CHECKOUT_DIR", "MANIFEST", "PACKAGED_DIR", "REQUIRED_FIELDS", "ZOO_DIR_ENV", "Entry", "entry",
           "load", "load_checkpoint", "missing_hint", "names", "read_labviz_safetensors",
           "read_manifest", "snapshots", "verify", "where_looked", "write_manifest", "zoo_dir"]

#: A manifest entry: the checkpoint's name, file, sha256, recipe fields and metrics.
Entry = dict[str, Any]

MANIFEST = "manifest.json"
REQUIRED_FIELDS = (
    "name", "file", "sha256", "dataset", "arch", "loss", "alpha", "noise_rate", "seed", "epoch",
    "teacher", "train_seconds", "test_accuracy", "test_ece",
)
REBUILD = "`labviz zoo build`"
ZOO_DIR_ENV = "LABVIZ_ZOO_DIR"
#: Where an installed wheel keeps the zoo: ``data/checkpoints``, shipped as ``labviz.zoo.checkpoints``.
PACKAGED_DIR = Path(__file__).resolve().with_name("checkpoints")
#: Where a checkout (an editable install) keeps the zoo.
CHECKOUT_DIR = Path(__file__).resolve().parents[2] / "data" / "checkpoints"


def zoo_dir() -> Path:
    """The zoo's folder: ``$LABVIZ_ZOO_DIR`` if set, else the first that holds a manifest of the
    wheel's packaged zoo (``labviz.zoo.store.PACKAGED_DIR``) and the checkout's ``data/checkpoints``
    (``labviz.zoo.store.CHECKOUT_DIR``).

    Returns
    -------
    Path
        With no manifest in either, the folder a new zoo is built into: the checkout's
        ``data/checkpoints`` in a checkout, else the packaged folder. Reading a manifest that is
        not there then raises ``FileNotFoundError`` naming every place looked in.
    """
    env = os.environ.get(ZOO_DIR_ENV)
    if env:
        return Path(env)
    for folder in (PACKAGED_DIR, CHECKOUT_DIR):
        if (folder / MANIFEST).is_file():
            return folder
    in_checkout = (CHECKOUT_DIR.parents[1] / "pyproject.toml").is_file()
    return CHECKOUT_DIR if in_checkout else PACKAGED_DIR


def where_looked() -> str:
    """The places :func:`zoo_dir` searches, in order, for messages about a missing zoo."""
    env = os.environ.get(ZOO_DIR_ENV)
    if env:
        return f"${ZOO_DIR_ENV}={env}"
    return (f"${ZOO_DIR_ENV} (unset), {PACKAGED_DIR} (an installed wheel's zoo) and "
            f"{CHECKOUT_DIR} (a checkout's zoo)")


def missing_hint(what: str, folder: Path | None) -> str:
    """``what`` (how to build a missing manifest), plus where :func:`zoo_dir` looked when it chose
    the folder (``folder`` is None)."""
    if folder is not None:
        return what
    return f"{what}, or set ${ZOO_DIR_ENV} to a folder holding it (looked in {where_looked()})"


def read_manifest(folder: Path | None = None) -> list[Entry]:
    """The manifest's entries (a list of dicts), validated for the required fields."""
    return files.read_manifest((folder or zoo_dir()) / MANIFEST, required=REQUIRED_FIELDS,
                               kind="zoo",
                               build_hint=missing_hint(f"build the zoo with {REBUILD}", folder))


def write_manifest(entries: list[Entry], folder: Path) -> None:
    """Write ``entries`` as the manifest in ``folder``, atomically."""
    files.write_manifest(folder / MANIFEST, entries)


def verify(folder: Path | None = None) -> list[str]:
    """Names of manifest entries whose file is missing or fails its sha256 check."""
    folder = folder or zoo_dir()
    return files.verify_entries(folder, read_manifest(folder))


def names(*, dataset: str | None = None) -> list[str]:
    """Names of the zoo's entries, optionally of one dataset."""
    return [e["name"] for e in read_manifest() if dataset is None or e["dataset"] == dataset]


def snapshots(run: str) -> list[Entry]:
    """The manifest entries of one training run, by epoch (its snapshots, then the final model).

    A run without snapshots gives a list of one entry.
    """
    found = sorted((e for e in read_manifest() if e["run"] == run), key=lambda e: e["epoch"])
    if not found:
        raise ValueError(f"`run` must name a zoo run; got {run!r}.")
    return found


def entry(name: str) -> Entry:
    """The manifest entry of checkpoint ``name``."""
    entries = {e["name"]: e for e in read_manifest()}
    if name not in entries:
        close = [n for n in entries if name.split("-")[0] in n][:8]
        raise ValueError(f"`name` must be a zoo checkpoint; got {name!r}. Some names: {close or list(entries)[:8]}.")
    return entries[name]


def read_labviz_safetensors(path: str | os.PathLike[str], *, fmt: str, kind: str,
                            sha256: str | None = None, rebuild: str = REBUILD
                            ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata of a labviz safetensors file whose metadata ``format`` is ``fmt``.

    Checks, in order: the file exists; its sha256 (when given); it is readable safetensors; its
    format. Each failure raises naming the file, ``kind`` (what the file should be) and, for a bad
    sha256, how to ``rebuild`` it. Nothing is ever unpickled.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{kind.capitalize()} file {path} does not exist.")
    if sha256 is not None:
        files.check_sha256(path, sha256, rebuild=rebuild)
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{path} is not a readable safetensors {kind} ({exc}).") from None
    if meta.get("format") != fmt:
        raise ValueError(f"{path} is a safetensors file but not a labviz {kind} "
                         f"(metadata format={meta.get('format')!r}, expected {fmt!r}).")
    return tensors, meta


def load_checkpoint(path: str | os.PathLike[str], *, sha256: str | None = None
                    ) -> tuple[SmallCNN, dict[str, str], dict[str, torch.Tensor]]:
    """Load a labviz checkpoint file: ``(model, metadata, tensors)``.

    Verifies ``sha256`` when given, then the architecture's tensor names and shapes. A truncated,
    corrupted or foreign file raises ``ValueError`` naming the problem; nothing is unpickled.
    The model comes in eval mode with its convolution weights channels-last: on a CPU, oneDNN then
    runs the convolutions 2-3x faster than in the default layout, for the same outputs up to
    float32 rounding (about 1e-5 on the features); inputs may be in either layout.
    """
    import torch

    from labviz.zoo.models import ARCHS, SmallCNN

    path = Path(path)
    tensors, meta = read_labviz_safetensors(path, fmt="labviz-checkpoint", kind="checkpoint",
                                            sha256=sha256)
    try:
        config = json.loads(meta["model"])
        arch = config["arch"]
        if arch not in ARCHS:
            raise KeyError(arch)
        model = SmallCNN(**config)
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} has an unknown model description {meta.get('model')!r} ({exc}).") from None
    weights = {k: t for k, t in tensors.items() if not k.startswith("labels.")}
    expected = {k: tuple(t.shape) for k, t in model.state_dict().items()}
    seen = {k: tuple(t.shape) for k, t in weights.items()}
    if seen != expected:
        diff = sorted(set(expected.items()) ^ set(seen.items()))[:4]
        raise ValueError(f"{path} does not match architecture {arch!r}: tensors differ at {diff}.")
    with torch.no_grad():
        model.load_state_dict(weights)
    # Module.to documents memory_format, which torch's type stubs leave out
    model.eval().to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model, meta, tensors


def load(name: str) -> tuple[SmallCNN, Entry]:
    """Zoo checkpoint ``name`` as ``(model, entry)``: an eval-mode ``SmallCNN`` and its manifest entry.

    The file's sha256 is verified against the manifest first.
    """
    e = entry(name)
    model, _, _ = load_checkpoint(zoo_dir() / e["file"], sha256=e["sha256"])
    return model, e
