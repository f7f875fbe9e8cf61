"""Training recipes: the losses labviz compares, label-noise injection, and a deterministic loop.

Losses (all averaged over the batch):

- cross-entropy: ``-log p_y``;
- label smoothing with any α (negative too): cross-entropy against ``(1 − α)·onehot(y) + α/K``;
- MaxSup (Zhou et al. 2025): ``CE + α·(z_max − mean_k z_k)`` on the logits z;
- knowledge distillation (Hinton et al. 2015): ``(1 − w)·CE(y) + w·T²·KL(p_teacher^T ‖ p_student^T)``,
  where ``p^T = softmax(z / T)``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike, NDArray
from torch import nn

from labviz.core import _validation as v

Loss = Literal["ce", "ls", "maxsup", "kd"]
LOSSES: tuple[str, ...] = ("ce", "ls", "maxsup", "kd")


# ----- losses ------------------------------------------------------------------------------------
def smoothed_targets(y: torch.Tensor, n_classes: int, alpha: float) -> torch.Tensor:
    """Label-smoothed targets ``(1 − α)·onehot(y) + α/K``, shape (batch, K).

    >>> smoothed_targets(torch.tensor([0]), 4, 0.2).tolist()
    [[0.8500000238418579, 0.05000000074505806, 0.05000000074505806, 0.05000000074505806]]
    """
    onehot = F.one_hot(y, n_classes).to(torch.float32)
    return (1 - alpha) * onehot + alpha / n_classes


#: Negative label smoothing stops pushing a wrong class down once its probability is below this.
NLS_FLOOR = 1e-6


def label_smoothing_loss(logits: torch.Tensor, y: torch.Tensor, alpha: float, *,
                         floor: float | None = NLS_FLOOR) -> torch.Tensor:
    """Cross-entropy against label-smoothed targets; α may be negative (negative label smoothing).

    With α < 0 the wrong classes get negative targets ``α/K``, and ``−(α/K)·log p_k`` falls without
    bound as ``p_k → 0``: the loss has no minimum, and an unregularised net drives its logits to
    infinity (ours reached ``|z| ≈ 1e10`` and 58% test accuracy). So for negative targets we floor
    ``log p_k`` at ``log NLS_FLOOR``: a wrong class stops being pushed down once ``p_k < 1e-6``.
    Above the floor the loss and its gradient are exactly those of negative label smoothing.
    ``floor=None`` trains negative label smoothing as written, unbounded.
    """
    targets = smoothed_targets(y, logits.shape[1], alpha)
    log_p = F.log_softmax(logits, dim=1)
    if alpha < 0 and floor is not None:
        log_p = torch.where(targets < 0, log_p.clamp(min=math.log(floor)), log_p)
    return -(targets * log_p).sum(dim=1).mean()


def maxsup_loss(logits: torch.Tensor, y: torch.Tensor, alpha: float) -> torch.Tensor:
    """MaxSup: ``CE + α·(z_max − mean_k z_k)``; it penalises the top-1 logit, whichever class it is."""
    penalty = logits.max(dim=1).values - logits.mean(dim=1)
    return F.cross_entropy(logits, y) + alpha * penalty.mean()


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    y: torch.Tensor,
    *,
    temperature: float,
    weight: float,
) -> torch.Tensor:
    """``(1 − w)·CE(student, y) + w·T²·KL(softmax(teacher/T) ‖ softmax(student/T))``.

    The T² factor keeps the soft term's gradients on the scale of the hard term's (Hinton et al.).
    """
    t = temperature
    soft = F.kl_div(
        F.log_softmax(student_logits / t, dim=1),
        F.log_softmax(teacher_logits / t, dim=1),
        reduction="batchmean", log_target=True,
    )
    return (1 - weight) * F.cross_entropy(student_logits, y) + weight * t * t * soft


# ----- label noise -------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class NoisyLabels:
    """Labels after noise injection, with the exact record of what was flipped.

    Attributes
    ----------
    labels : ndarray of shape (n_samples,)
        The given (possibly flipped) labels.
    flipped : ndarray of shape (n_samples,), bool
        True exactly where ``labels`` differs from the clean labels.
    """

    labels: NDArray[np.int64]
    flipped: NDArray[np.bool_]

    @property
    def rate(self) -> float:
        """The share of labels flipped."""
        return float(self.flipped.mean())


def symmetric_noise(y: ArrayLike, rate: float, *, n_classes: int, seed: int) -> NoisyLabels:
    """Flip exactly ``round(rate · n)`` labels, each to a different class drawn uniformly.

    >>> noisy = symmetric_noise(np.zeros(10, dtype=int), 0.3, n_classes=3, seed=0)
    >>> int(noisy.flipped.sum()), bool((noisy.labels[noisy.flipped] != 0).all())
    (3, True)
    """
    y = v.check_labels(y, "y", n_classes=n_classes, n_classes_arg="n_classes")
    _check_rate(rate)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(y), size=round(rate * len(y)), replace=False)
    labels = y.copy()
    # An offset in 1..K-1 guarantees the new class differs from the old one.
    labels[chosen] = (y[chosen] + rng.integers(1, n_classes, size=len(chosen))) % n_classes
    return NoisyLabels(labels=labels, flipped=labels != y)


def class_dependent_noise(
    y: ArrayLike, rate: float, *, pairs: dict[int, int], n_classes: int, seed: int
) -> NoisyLabels:
    """Flip a share ``rate`` of each source class in ``pairs`` to its target class.

    For Fashion-MNIST's Shirt↔T-shirt confusion: ``pairs={6: 0, 0: 6}``.

    >>> y = np.array([0] * 10 + [1] * 10)
    >>> noisy = class_dependent_noise(y, 0.5, pairs={0: 1}, n_classes=2, seed=0)
    >>> int(noisy.flipped[:10].sum()), int(noisy.flipped[10:].sum())
    (5, 0)
    """
    y = v.check_labels(y, "y", n_classes=n_classes, n_classes_arg="n_classes")
    _check_rate(rate)
    for src, dst in pairs.items():
        if not (0 <= src < n_classes and 0 <= dst < n_classes) or src == dst:
            raise ValueError(f"`pairs` must map a class to a different class in [0, {n_classes - 1}]; "
                             f"got {src}->{dst}.")
    rng = np.random.default_rng(seed)
    labels = y.copy()
    for src, dst in pairs.items():
        members = np.flatnonzero(y == src)
        chosen = rng.choice(members, size=round(rate * len(members)), replace=False)
        labels[chosen] = dst
    return NoisyLabels(labels=labels, flipped=labels != y)


def _check_rate(rate: float) -> None:
    if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        raise ValueError(f"`rate` must be a number in [0, 1]; got {rate!r}.")


# ----- the training loop -------------------------------------------------------------------------
class TrainingCancelled(Exception):
    """Training was stopped through its ``stop`` event before it finished."""


@dataclass(frozen=True)
class TrainConfig:
    """How to train one model.

    ``alpha`` is the label-smoothing or MaxSup strength; ``temperature`` and ``kd_weight`` apply to
    ``loss="kd"``. ``snapshots`` lists the epochs (1-based) after which a copy of the weights is kept.

    ``alpha`` may follow a schedule (:meth:`alpha_at`): 0 for the first ``alpha_warmup`` epochs,
    then a linear ramp to ``alpha`` over ``alpha_ramp`` epochs, as Struppek et al. (2024) train
    negative label smoothing. ``nls_floor=False`` trains negative label smoothing without
    :data:`NLS_FLOOR`.
    """

    loss: Loss = "ce"
    alpha: float = 0.0
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    temperature: float = 4.0
    kd_weight: float = 0.9
    snapshots: tuple[int, ...] = ()
    alpha_warmup: int = 0
    alpha_ramp: int = 0
    nls_floor: bool = True

    def __post_init__(self) -> None:
        v.check_option(self.loss, "loss", LOSSES)
        v.check_int(self.epochs, "epochs", minimum=1)
        v.check_int(self.alpha_warmup, "alpha_warmup", minimum=0)
        v.check_int(self.alpha_ramp, "alpha_ramp", minimum=0)
        if self.alpha_warmup + self.alpha_ramp > self.epochs:
            raise ValueError(f"`alpha_warmup` + `alpha_ramp` must not exceed `epochs` ({self.epochs}); "
                             f"got {self.alpha_warmup} + {self.alpha_ramp}.")
        v.check_int(self.batch_size, "batch_size", minimum=1)
        bad = [e for e in self.snapshots if not 1 <= e <= self.epochs]
        if bad:
            raise ValueError(f"`snapshots` must be epochs in [1, {self.epochs}]; got {bad}.")
        if self.loss == "kd" and self.temperature <= 0:
            raise ValueError(f"`temperature` must be > 0; got {self.temperature}.")


    def alpha_at(self, epoch: int) -> float:
        """The α of (1-based) ``epoch`` under the schedule.

        >>> c = TrainConfig(loss="ls", alpha=-0.1, epochs=6, alpha_warmup=2, alpha_ramp=2)
        >>> [round(c.alpha_at(e), 3) for e in range(1, 7)]
        [0.0, 0.0, -0.05, -0.1, -0.1, -0.1]
        """
        if epoch <= self.alpha_warmup:
            return 0.0
        if epoch <= self.alpha_warmup + self.alpha_ramp:
            return self.alpha * (epoch - self.alpha_warmup) / self.alpha_ramp
        return self.alpha


@dataclass(eq=False)
class TrainResult:
    """The trained model, its snapshots (epoch → state dict), and the time it took."""

    model: nn.Module
    snapshots: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    seconds: float = 0.0
    losses: list[float] = field(default_factory=list)


def images_to_tensor(images: NDArray) -> torch.Tensor:
    """uint8 images (n, H, W) → float tensor (n, 1, H, W) scaled to [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32) / 255.0).unsqueeze(1)


def batch_loss(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: TrainConfig,
    teacher_logits: torch.Tensor | None = None, *, epoch: int | None = None,
) -> torch.Tensor:
    """The configured loss of ``model`` on one batch (at ``epoch``, for a scheduled α)."""
    logits = model(x)
    alpha = config.alpha if epoch is None else config.alpha_at(epoch)
    if config.loss == "ce":
        return F.cross_entropy(logits, y)
    if config.loss == "ls":
        return label_smoothing_loss(logits, y, alpha, floor=NLS_FLOOR if config.nls_floor else None)
    if config.loss == "maxsup":
        return maxsup_loss(logits, y, alpha)
    if teacher_logits is None:
        raise ValueError("`teacher_logits` must be given when config.loss == 'kd'; got None.")
    return distillation_loss(logits, teacher_logits, y,
                             temperature=config.temperature, weight=config.kd_weight)


def train(
    model: nn.Module,
    images: NDArray,
    labels: ArrayLike,
    config: TrainConfig,
    *,
    teacher: nn.Module | None = None,
    progress: bool = True,
    description: str = "training",
    on_batch: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
) -> TrainResult:
    """Train ``model`` in place with Adam; deterministic for a given ``config.seed``.

    Training runs on one CPU thread, so the result does not depend on the core count (torch's
    multi-threaded kernels sum in a thread-dependent order): two runs on one machine are
    bit-identical, and several can train side by side, one per core (``labviz zoo build --jobs``).
    A CPU of another kind (AVX2 rather than AVX-512, another vendor) makes torch pick other float
    kernels, which round differently; the weights then drift by a few ulps a step, and the result is
    close to, not equal to, this machine's (:func:`labviz.zoo.rebuild_drift` measures how close).

    Parameters
    ----------
    model : nn.Module
        Freshly built; call ``torch.manual_seed(config.seed)`` before building it (see
        :func:`labviz.zoo.train_recipe`) so that initial weights are seeded too.
    images : ndarray of shape (n_samples, height, width), uint8
    labels : array-like of shape (n_samples,)
        The labels to train on (possibly noisy).
    config : TrainConfig
    teacher : nn.Module, optional
        Required for ``loss="kd"``; its logits are computed once, in eval mode.
    progress : bool
        Show a tqdm progress bar over batches.
    on_batch : callable, optional
        Called as ``on_batch(done, total)`` after every batch (e.g. to drive a progress widget).
    stop : threading.Event, optional
        Checked before every batch; once it is set, training stops with :class:`TrainingCancelled`
        and ``model`` is left part-trained (callers discard it).
    """
    given = v.check_labels(labels, "labels")
    v.check_same_length(images=images, labels=given)
    y = torch.from_numpy(given)
    x = images_to_tensor(images)
    if (config.loss == "kd") != (teacher is not None):
        raise ValueError("`teacher` must be given exactly when config.loss == 'kd'; got "
                         f"loss={config.loss!r} and teacher={'a model' if teacher else None}.")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        teacher_logits = None
        if teacher is not None:
            teacher.eval()
            with torch.inference_mode():
                teacher_logits = torch.cat([teacher(xb) for xb in x.split(1024)])
        return _train(model, x, y, config, teacher_logits, progress, description, on_batch, stop)
    finally:
        torch.set_num_threads(threads)


def _train(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: TrainConfig,
    teacher_logits: torch.Tensor | None, progress: bool, description: str,
    on_batch: Callable[[int, int], None] | None, stop: threading.Event | None,
) -> TrainResult:
    from tqdm.auto import tqdm

    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n_batches = -(-len(y) // config.batch_size)
    result = TrainResult(model=model)
    start = time.perf_counter()
    model.train()
    done, n_total = 0, config.epochs * n_batches
    with tqdm(total=n_total, desc=description, disable=not progress,
              leave=False, unit="batch") as bar:
        for epoch in range(1, config.epochs + 1):
            order = torch.randperm(len(y), generator=generator)
            total = 0.0
            for idx in order.split(config.batch_size):
                if stop is not None and stop.is_set():
                    raise TrainingCancelled(
                        f"{description}: stopped in epoch {epoch} of {config.epochs}.")
                optimizer.zero_grad(set_to_none=True)
                t_logits = teacher_logits[idx] if teacher_logits is not None else None
                loss = batch_loss(model, x[idx], y[idx], config, t_logits, epoch=epoch)
                loss.backward()
                optimizer.step()
                total += loss.item() * len(idx)
                bar.update(1)
                done += 1
                if on_batch is not None:
                    on_batch(done, n_total)
            result.losses.append(total / len(y))
            bar.set_postfix(epoch=epoch, loss=f"{result.losses[-1]:.4f}")
            if epoch in config.snapshots:
                result.snapshots[epoch] = {k: t.detach().clone() for k, t in model.state_dict().items()}
    model.eval()
    result.seconds = time.perf_counter() - start
    return result


def predict_logits(model: nn.Module, images: NDArray, *, batch_size: int = 2048) -> NDArray[np.float32]:
    """Logits of ``model`` on uint8 images, in eval mode."""
    model.eval()
    with torch.inference_mode():
        return torch.cat([model(xb) for xb in images_to_tensor(images).split(batch_size)]).numpy()
