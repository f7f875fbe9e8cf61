"""A small generative prior of 28×28 Fashion-MNIST images, for model inversion through a generator.

Plug & Play Attacks (PPA, Struppek et al. 2022) and "Be Careful What You Smooth For" (Struppek et al.
2024) invert a classifier by searching the latent space of a pretrained generator, so that every
candidate is a plausible image and the attack measures what the classifier leaks about its classes
rather than whether adversarial pixels transfer. labviz's generator is a convolutional **VAE**
(Kingma & Welling 2014): stable and quick to train on a CPU, with a 16-dimensional latent whose
prior is N(0, I).

Data. The zoo's classifiers train on ``split_indices("fashion-mnist")["train"]`` (10,000 ids) and
are validated on its ``"val"`` (5,000 ids), both drawn from the 60,000 official training images. The
generator only sees the other 45,000 (:func:`unused_ids`), so an inversion cannot look like a class
member merely because the generator memorised the attacked model's training images. Of those,
:attr:`VAEConfig.val_size` (5,000) are held back to measure the generator's quality
(:func:`split_unused`); it trains on the remaining 40,000.

Files. ``build_generator()`` writes ``data/checkpoints/fmnist-vae-s0.safetensors`` (weights, plus the
ids it trained on and held back) and an entry in ``data/checkpoints/generative.json`` (sha256, size,
architecture, training settings, time, held-out quality). ``load_generator()`` verifies the sha256
and the tensor names and shapes; nothing is unpickled. ``labviz.zoo`` does not import this module.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from labviz.core import _validation as v
from labviz.core import files
from labviz.zoo.splits import source, split_indices
from labviz.zoo.store import missing_hint, read_labviz_safetensors, zoo_dir

MANIFEST = "generative.json"
FORMAT = "labviz-generator"
DEFAULT_NAME = "fmnist-vae-s0"
DATASET = "fashion-mnist"
N_SOURCE = 60_000  # Fashion-MNIST's official training images, which the zoo's splits index
REQUIRED_FIELDS = ("name", "file", "sha256", "bytes", "latent_dim", "architecture", "training",
                   "config_key", "data_key")


# ----- data ---------------------------------------------------------------------------------------
def unused_ids() -> NDArray[np.int64]:
    """Ids of the Fashion-MNIST training images that no zoo classifier trains or validates on.

    The complement of ``split_indices("fashion-mnist")`` ``"train"`` and ``"val"`` in
    ``range(60000)``, sorted: 45,000 ids.

    Returns
    -------
    ndarray of shape (n_unused,), int64
    """
    splits = split_indices(DATASET)
    used = np.zeros(N_SOURCE, dtype=bool)
    used[splits["train"]] = True
    used[splits["val"]] = True
    return np.flatnonzero(~used).astype(np.int64)


def split_unused(val_size: int, seed: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The generator's own train and held-out ids: a seeded shuffle of :func:`unused_ids`.

    Parameters
    ----------
    val_size : int
        How many unused ids to hold back for measuring the generator.
    seed : int

    Returns
    -------
    train_ids : ndarray of shape (n_unused - val_size,), int64, sorted
    val_ids : ndarray of shape (val_size,), int64, sorted
    """
    ids = unused_ids()
    val_size = v.check_int(val_size, "val_size", minimum=1, maximum=len(ids) - 1)
    perm = np.random.default_rng(seed).permutation(len(ids))
    return np.sort(ids[perm[val_size:]]), np.sort(ids[perm[:val_size]])


def _images(ids: NDArray[np.int64]) -> torch.Tensor:
    """Fashion-MNIST training images ``ids`` as a float tensor (n, 1, 28, 28) in [0, 1]."""
    from labviz.zoo.training import images_to_tensor

    return images_to_tensor(source(DATASET, "train").images[ids])


# ----- the model ----------------------------------------------------------------------------------
class Decoder(nn.Module):
    """Latent vectors → images: linear → 7×7 maps → two stride-2 transposed convolutions → sigmoid.

    ``forward(z)`` maps (batch, latent_dim) to images (batch, 1, 28, 28) in [0, 1], ready to feed a
    :class:`labviz.zoo.models.SmallCNN`; ``logits(z)`` gives the pre-sigmoid values.
    """

    def __init__(self, latent_dim: int, channels: tuple[int, int]) -> None:
        super().__init__()
        c1, c2 = channels
        self.latent_dim = latent_dim
        self.net = nn.Sequential(
            nn.Linear(latent_dim, c2 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (c2, 7, 7)),
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(c1, 1, 4, stride=2, padding=1),
        )

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel logits of the images decoded from ``z``, shape (n, 1, 28, 28)."""
        return self.net(z)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(z))


class VAE(nn.Module):
    """A convolutional VAE of 28×28 grey images with a diagonal-Gaussian posterior.

    Parameters
    ----------
    latent_dim : int
    channels : tuple of two int
        Widths of the encoder's two stride-2 convolutions (and, mirrored, the decoder's).
    """

    def __init__(self, latent_dim: int = 16, channels: tuple[int, int] = (32, 64)) -> None:
        super().__init__()
        c1, c2 = channels
        self.config = {"latent_dim": latent_dim, "channels": [c1, c2], "image_size": 28}
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c1, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(c2 * 7 * 7, 2 * latent_dim),
        )
        self.decoder = Decoder(latent_dim, (c1, c2))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance of images x (batch, 1, 28, 28), each (batch, latent_dim)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean: images (batch, 1, 28, 28) in [0, 1]."""
        return self.decoder(self.encode(x)[0])


def _architecture(config: dict) -> dict:
    """A plain description of the VAE for the manifest."""
    c1, c2 = config["channels"]
    return {
        "kind": "conv-vae", **config,
        "encoder": f"conv4x4/2({c1}) relu conv4x4/2({c2}) relu linear(2x{config['latent_dim']})",
        "decoder": f"linear({c2}x7x7) relu convT4x4/2({c1}) relu convT4x4/2(1) sigmoid",
        "likelihood": "Bernoulli (binary cross-entropy on pixel intensities)",
        "prior": "N(0, I)",
    }


def negative_elbo(vae: VAE, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Per-image negative ELBO in nats: Bernoulli reconstruction loss + KL(q(z|x) ‖ N(0, I)).

    Parameters
    ----------
    vae : VAE
    x : tensor of shape (batch, 1, 28, 28), in [0, 1]
    noise : tensor of shape (batch, latent_dim)
        Standard normal draws for the reparameterisation ``z = μ + σ·noise``.

    Returns
    -------
    tensor of shape (batch,)
    """
    mu, logvar = vae.encode(x)
    z = mu + (0.5 * logvar).exp() * noise
    recon = F.binary_cross_entropy_with_logits(vae.decoder.logits(z), x, reduction="none")
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1)
    return recon.flatten(1).sum(dim=1) + kl


# ----- training -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class VAEConfig:
    """Everything that determines the generator: architecture, data split and training settings."""

    latent_dim: int = 16
    channels: tuple[int, int] = (32, 64)
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    #: Unused images held back (never trained on) to measure the generator.
    val_size: int = 5_000

    def __post_init__(self) -> None:
        v.check_int(self.latent_dim, "latent_dim", minimum=1)
        v.check_int(self.epochs, "epochs", minimum=1)
        v.check_int(self.batch_size, "batch_size", minimum=1)
        v.check_int(self.val_size, "val_size", minimum=1)
        if v.check_float(self.lr, "lr") <= 0:
            raise ValueError(f"`lr` must be > 0; got {self.lr!r}.")
        if len(self.channels) != 2:
            raise ValueError(f"`channels` must be two positive ints; got {self.channels!r}.")
        for c in self.channels:
            v.check_int(c, "channels", minimum=1)

    def key(self) -> str:
        """A short hash of the configuration, naming its trained files."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def _data_key(train_ids: NDArray[np.int64], val_ids: NDArray[np.int64]) -> str:
    """A hash of the ids, so that a change of the zoo's splits makes the generator stale."""
    digest = hashlib.sha256(np.ascontiguousarray(train_ids, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(val_ids, dtype=np.int64).tobytes())
    return digest.hexdigest()[:16]


def train_vae(config: VAEConfig, x: torch.Tensor, *, progress: bool = True,
              description: str = "vae") -> tuple[VAE, list[float], float]:
    """Train a VAE with Adam on images ``x``; deterministic for a given ``config.seed``.

    Runs on one CPU thread, as :func:`labviz.zoo.training.train` does, so that the result does not
    depend on the core count.

    Parameters
    ----------
    config : VAEConfig
    x : tensor of shape (n_images, 1, 28, 28), float in [0, 1]
    progress : bool
        Show a tqdm progress bar over batches.

    Returns
    -------
    vae : VAE, in eval mode
    losses : list of float, the mean negative ELBO (nats per image) of each epoch
    seconds : float
    """
    from tqdm.auto import tqdm

    if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        raise ValueError(f"`x` must have shape (n_images, 1, 28, 28); got {tuple(x.shape)}.")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(config.seed)
        c1, c2 = config.channels
        vae = VAE(config.latent_dim, (c1, c2))
        generator = torch.Generator().manual_seed(config.seed)
        optimizer = torch.optim.Adam(vae.parameters(), lr=config.lr)
        n_batches = -(-len(x) // config.batch_size)
        losses: list[float] = []
        start = time.perf_counter()
        vae.train()
        with tqdm(total=config.epochs * n_batches, desc=description, disable=not progress,
                  leave=False, unit="batch") as bar:
            for epoch in range(1, config.epochs + 1):
                total = 0.0
                for idx in torch.randperm(len(x), generator=generator).split(config.batch_size):
                    noise = torch.randn(len(idx), config.latent_dim, generator=generator)
                    loss = negative_elbo(vae, x[idx], noise).mean()
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    total += loss.item() * len(idx)
                    bar.update(1)
                losses.append(total / len(x))
                bar.set_postfix(epoch=epoch, neg_elbo=f"{losses[-1]:.2f}")
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    vae.eval()
    return vae, losses, seconds


def held_out_quality(vae: VAE, x: torch.Tensor, reference_mean: torch.Tensor, *,
                     seed: int = 0) -> dict[str, float]:
    """How well ``vae`` models held-out images ``x`` (n, 1, 28, 28).

    Returns
    -------
    dict
        ``val_neg_elbo_nats`` (mean negative ELBO per image, one seeded posterior draw),
        ``val_recon_mse`` (per-pixel MSE of decoding the posterior mean) and
        ``val_mean_image_mse`` (per-pixel MSE of predicting every image by ``reference_mean``,
        the mean training image: the bar any generator must clear).
    """
    generator = torch.Generator().manual_seed(seed)
    elbo, mse = [], []
    with torch.inference_mode():
        for xb in x.split(1000):
            noise = torch.randn(len(xb), vae.decoder.latent_dim, generator=generator)
            elbo.append(negative_elbo(vae, xb, noise))
            mse.append(((vae.reconstruct(xb) - xb) ** 2).flatten(1).mean(dim=1))
        baseline = ((x - reference_mean) ** 2).mean()
    return {"val_neg_elbo_nats": round(float(torch.cat(elbo).mean()), 4),
            "val_recon_mse": round(float(torch.cat(mse).mean()), 6),
            "val_mean_image_mse": round(float(baseline), 6)}


# ----- files --------------------------------------------------------------------------------------
def read_manifest(folder: Path | None = None) -> list[dict[str, Any]]:
    """The generator manifest's entries (``generative.json`` in :func:`labviz.zoo.zoo_dir`)."""
    return files.read_manifest((folder or zoo_dir()) / MANIFEST, required=REQUIRED_FIELDS,
                               kind="generator",
                               build_hint=missing_hint("build it with "
                                                       "`labviz.zoo.generative.build_generator()`", folder))


def entry(name: str = DEFAULT_NAME, folder: Path | None = None) -> dict[str, Any]:
    """The manifest entry of generator ``name``."""
    entries = {e["name"]: e for e in read_manifest(folder)}
    if name not in entries:
        raise ValueError(f"`name` must be a generator in {MANIFEST}; got {name!r}. "
                         f"Known: {sorted(entries)}.")
    return entries[name]


def _save(path: Path, vae: VAE, train_ids: NDArray[np.int64], val_ids: NDArray[np.int64],
          config: VAEConfig) -> bytes:
    from safetensors.torch import save

    tensors = {k: t.detach().contiguous() for k, t in vae.state_dict().items()}
    # The ids travel with the weights, so a test can check the file itself against the zoo's splits.
    tensors["ids.train"] = torch.from_numpy(np.asarray(train_ids, dtype=np.int64))
    tensors["ids.val"] = torch.from_numpy(np.asarray(val_ids, dtype=np.int64))
    meta = {"format": FORMAT, "model": json.dumps(vae.config), "config": json.dumps(asdict(config))}
    data = save(tensors, metadata=meta)
    files.atomic_write_bytes(path, data)
    return data


def load_vae_file(path: str | os.PathLike, *, sha256: str | None = None
                  ) -> tuple[VAE, dict[str, torch.Tensor]]:
    """Load a generator file: ``(VAE in eval mode, its id tensors "ids.train" and "ids.val")``.

    Verifies ``sha256`` when given, then the format and the tensor names and shapes. A corrupt,
    truncated or foreign file, or one of another architecture, raises ``ValueError`` naming the
    problem; nothing is unpickled (safetensors holds raw tensors and a JSON header only).
    """
    path = Path(path)
    tensors, meta = read_labviz_safetensors(path, fmt=FORMAT, kind="generator", sha256=sha256,
                                            rebuild="build_generator()")
    try:
        config = json.loads(meta["model"])
        c1, c2 = (int(c) for c in config["channels"])
        vae = VAE(int(config["latent_dim"]), (c1, c2))
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} has an unknown model description {meta.get('model')!r} "
                         f"({exc}).") from None
    ids = {k: t for k, t in tensors.items() if k.startswith("ids.")}
    weights = {k: t for k, t in tensors.items() if not k.startswith("ids.")}
    expected = {k: tuple(t.shape) for k, t in vae.state_dict().items()}
    seen = {k: tuple(t.shape) for k, t in weights.items()}
    if seen != expected:
        diff = sorted(set(expected.items()) ^ set(seen.items()))[:4]
        raise ValueError(f"{path} does not match the VAE it describes ({config}): tensors differ "
                         f"at {diff}.")
    if set(ids) != {"ids.train", "ids.val"} or any(t.ndim != 1 for t in ids.values()):
        raise ValueError(f"{path} must hold 1-d tensors 'ids.train' and 'ids.val'; got "
                         f"{ {k: tuple(t.shape) for k, t in ids.items()} }.")
    with torch.no_grad():
        vae.load_state_dict(weights)
    vae.eval()
    return vae, ids


def load_vae(name: str = DEFAULT_NAME) -> tuple[VAE, dict[str, Any]]:
    """Generator ``name`` as ``(VAE in eval mode, manifest entry)``, its sha256 verified first."""
    e = entry(name)
    vae, _ = load_vae_file(zoo_dir() / e["file"], sha256=e["sha256"])
    return vae, e


def load_generator(name: str = DEFAULT_NAME) -> tuple[Decoder, dict[str, Any]]:
    """The decoder of generator ``name`` (eval mode) and its manifest entry.

    The decoder maps latents (n, ``decoder.latent_dim``) drawn from N(0, I) to images
    (n, 1, 28, 28) in [0, 1]; see :func:`sample_images`.
    """
    vae, e = load_vae(name)
    return vae.decoder, e


def sample_images(decoder: Decoder, n: int, *, seed: int = 0) -> NDArray[np.float32]:
    """``n`` images decoded from latents drawn from the prior N(0, I), shape (n, 28, 28) in [0, 1]."""
    n = v.check_int(n, "n", minimum=1)
    z = torch.randn(n, decoder.latent_dim, generator=torch.Generator().manual_seed(seed))
    decoder.eval()
    with torch.inference_mode():
        return decoder(z)[:, 0].numpy()


# ----- building -----------------------------------------------------------------------------------
def build_generator(config: VAEConfig | None = None, *, name: str = DEFAULT_NAME,
                    folder: Path | None = None, force: bool = False,
                    progress: bool = True) -> dict[str, Any]:
    """Train generator ``name`` if it is missing or outdated, write it, and return its entry.

    Idempotent: an entry whose settings (``config_key``) and training ids (``data_key``) are
    current and whose file matches its sha256 is kept as it is. Training is deterministic, so a
    forced rebuild on the same machine gives bit-identical tensors; the file's bytes (and so its
    sha256) may still differ, because safetensors writes the metadata's keys in hash order.

    Parameters
    ----------
    config : VAEConfig, optional
        Defaults to ``VAEConfig()``.
    name : str
        The entry's name; its file is ``{name}.safetensors``.
    folder : Path, optional
        Where to write; defaults to :func:`labviz.zoo.zoo_dir` (``data/checkpoints``).
    force : bool
        Retrain even if up to date.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        The manifest entry.
    """
    config = config or VAEConfig()
    if not isinstance(config, VAEConfig):
        raise TypeError(f"`config` must be a VAEConfig; got {type(config).__name__}.")
    v.check_str(name, "name")
    folder = Path(folder) if folder is not None else zoo_dir()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        entries = {e["name"]: e for e in read_manifest(folder)}
    except FileNotFoundError:
        entries = {}
    train_ids, val_ids = split_unused(config.val_size, config.seed)
    old = entries.get(name)
    path = folder / f"{name}.safetensors"
    if (not force and old is not None and old["config_key"] == config.key()
            and old["data_key"] == _data_key(train_ids, val_ids)
            and path.is_file() and files.sha256_file(path) == old["sha256"]):
        return old
    x_train = _images(train_ids)
    vae, losses, seconds = train_vae(config, x_train, progress=progress, description=name)
    quality = held_out_quality(vae, _images(val_ids), x_train.mean(dim=0))
    data = _save(path, vae, train_ids, val_ids, config)
    new = {
        "name": name, "file": path.name, "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data), "dataset": DATASET, "latent_dim": config.latent_dim,
        "architecture": _architecture(vae.config), "training": asdict(config),
        "train_size": len(train_ids), "val_size": len(val_ids),
        "data": "Fashion-MNIST training images outside the zoo's train and val splits",
        "config_key": config.key(), "data_key": _data_key(train_ids, val_ids),
        "train_seconds": round(seconds, 2), "final_train_neg_elbo_nats": round(losses[-1], 4),
        **quality,
    }
    new = json.loads(json.dumps(new))  # as read back from the manifest (tuples become lists)
    entries[name] = new
    files.write_manifest(folder / MANIFEST, entries.values())
    return new


def verify(folder: Path | None = None) -> list[str]:
    """Names of generator entries whose file is missing or fails its sha256 check."""
    folder = Path(folder) if folder is not None else zoo_dir()
    return files.verify_entries(folder, read_manifest(folder))
