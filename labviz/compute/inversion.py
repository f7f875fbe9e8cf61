"""Inputs synthesised from a classifier: model inversion (two attacks), fooling images and noise.

Model inversion (as in "Be Careful What You Smooth For", Struppek et al. 2024) reconstructs what a
classifier has learnt about each class; an *independent* evaluator model then judges whether an
inversion shows its class (:func:`attack_accuracy`), and :func:`feature_distance` measures how far it
lies from the real training images of its class in the evaluator's feature space. Two attacks:

- :func:`invert_latent`, the attack of the paper (Plug & Play Attacks, PPA, Struppek et al. 2022):
  optimise the latent vector of a pretrained generator (:mod:`labviz.zoo.generative`, a VAE trained on
  Fashion-MNIST images no classifier saw) so that the attacked model assigns the generated image to
  the target class, minimising the Poincaré loss (:func:`poincare_loss`). Every candidate is a
  plausible image, so success means the classifier's notion of the class carries over;
- :func:`invert`, the **adversarial-transfer baseline**: gradient ascent on the pixels themselves
  (kept in [0, 1] through a sigmoid) with total-variation and L2 priors. It mostly measures whether
  adversarial patterns found on one model transfer to the evaluator, not whether the classifier
  leaks class features.

The pixel mechanism (:func:`synthesize`) with no prior gives **fooling images** (Nguyen et al. 2015,
"Deep Neural Networks are Easily Fooled"): unrecognisable patterns the model is nevertheless sure
about. Plain uniform noise (:func:`noise_images`) is the third probe of over-confidence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from labviz.core import _validation as v


@dataclass(frozen=True, eq=False)
class Synthesized:
    """Images synthesised for target classes.

    Attributes
    ----------
    images : ndarray of shape (n_images, height, width), float in [0, 1]
    target : ndarray of shape (n_images,), the class each image was optimised for
    confidence : ndarray of shape (n_images,), the source model's probability of the target
    """

    images: NDArray[np.float32]
    target: NDArray[np.int64]
    confidence: NDArray[np.float64]


def _total_variation(x: torch.Tensor) -> torch.Tensor:
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def synthesize(
    model: nn.Module,
    classes: Sequence[int],
    *,
    n_per_class: int = 4,
    image_size: int = 28,
    steps: int = 200,
    lr: float = 0.1,
    tv_weight: float = 0.0,
    l2_weight: float = 0.0,
    seed: int = 0,
) -> Synthesized:
    """Optimise images to maximise ``log p(class | x)`` under optional image priors.

    The loss per image is ``−log p(target | x) + tv_weight·TV(x) + l2_weight·mean((x − ½)²)``.

    Parameters
    ----------
    model : nn.Module
        Maps (batch, 1, image_size, image_size) images in [0, 1] to logits.
    classes : sequence of int
        Target classes; each gets ``n_per_class`` images from different random starts.
    n_per_class, image_size, steps : int
    lr : float
        Adam's step size on the pre-sigmoid pixels.
    tv_weight, l2_weight : float
        Weights of the image priors (0 for fooling images).
    seed : int
        Seeds the random starting images.

    Returns
    -------
    Synthesized
    """
    n_per_class = v.check_int(n_per_class, "n_per_class", minimum=1)
    steps = v.check_int(steps, "steps", minimum=1)
    target = np.repeat(np.asarray([v.check_int(c, "classes", minimum=0) for c in classes]), n_per_class)
    if target.size == 0:
        raise ValueError("`classes` must name at least one class; got none.")
    generator = torch.Generator().manual_seed(seed)
    raw = (torch.randn(len(target), 1, image_size, image_size, generator=generator) * 0.5).requires_grad_()
    y = torch.from_numpy(target)
    optimizer = torch.optim.Adam([raw], lr=lr)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            x = torch.sigmoid(raw)
            loss = F.cross_entropy(model(x), y)
            if tv_weight:
                loss = loss + tv_weight * _total_variation(x)
            if l2_weight:
                loss = loss + l2_weight * ((x - 0.5) ** 2).mean()
            loss.backward()
            optimizer.step()
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
    with torch.inference_mode():
        x = torch.sigmoid(raw)
        probs = F.softmax(model(x), dim=1).numpy().astype(np.float64)
    return Synthesized(images=x[:, 0].numpy(), target=target,
                       confidence=probs[np.arange(len(target)), target])


#: Weight of both image priors in :func:`invert`. Chosen on the CE baseline alone (fmnist-ce-s0,
#: judged by fmnist-student-s0), before any label-smoothed model was inverted: the evaluator's
#: accuracy on its inversions was 0.225 at weight 1.0, 0.40 at 0.3, 0.45 at 0.1 and 0.03, and 0.475
#: with no prior; 0.1 keeps the images smooth at close to the best accuracy.
PRIOR_WEIGHT = 0.1


def invert(model: nn.Module, classes: Sequence[int], *, n_per_class: int = 4, image_size: int = 28,
           steps: int = 300, seed: int = 0) -> Synthesized:
    """Pixel-space model inversion, the **adversarial-transfer baseline** of :func:`invert_latent`.

    Class prototypes by gradient ascent on the pixels, with total-variation and L2 priors of weight
    :data:`PRIOR_WEIGHT` (see :func:`synthesize`). With no generator to keep the images natural,
    the optimiser is free to find adversarial patterns, so the evaluator's accuracy on these
    images mostly measures how well such patterns transfer between two models; the attack of
    Struppek et al. (2024) is :func:`invert_latent`.
    """
    return synthesize(model, classes, n_per_class=n_per_class, image_size=image_size, steps=steps,
                      lr=0.1, tv_weight=PRIOR_WEIGHT, l2_weight=PRIOR_WEIGHT, seed=seed)


# ----- the generative attack (PPA) ---------------------------------------------------------------
#: PPA's ξ: the target one-hot's 1 becomes 1 − ξ, which puts v strictly inside the unit ball, where
#: the Poincaré distance is defined. Plug & Play Attacks' code uses ξ = 1e-4 (its Poincaré loss
#: comes from Li et al. 2020's Po+Trip, where ξ = 1e-5); both leave the loss's shape unchanged.
POINCARE_XI = 1e-4

#: Floor of the denominator (1 − ‖u‖²)(1 − ‖v‖²), reached only when all but one logit are exactly
#: zero (u on the ball's boundary, where the distance is infinite): keeps the loss finite.
_DENOMINATOR_FLOOR = 1e-300


def _logits_tensor(logits: torch.Tensor | NDArray, name: str) -> torch.Tensor:
    """``logits`` as a float tensor (n, n_classes), keeping a given tensor (and its graph) as is."""
    if not isinstance(logits, torch.Tensor):
        logits = torch.from_numpy(v.check_finite_float(logits, name, ndim=2))
    if not logits.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor; got dtype {logits.dtype}.")
    if logits.ndim != 2 or logits.shape[1] < 2 or logits.shape[0] == 0:
        raise ValueError(f"`{name}` must have shape (n_samples, n_classes) with n_classes >= 2; "
                         f"got {tuple(logits.shape)}.")
    if not bool(torch.isfinite(logits).all()):
        raise ValueError(f"`{name}` must be finite; got {int((~torch.isfinite(logits)).sum())} "
                         "NaN or inf values.")
    return logits


def poincare_loss(logits: torch.Tensor | NDArray, targets: torch.Tensor | NDArray, *,
                  xi: float = POINCARE_XI) -> torch.Tensor:
    """PPA's Poincaré loss: the hyperbolic distance between normalised logits and the target.

    With ``u = x / ‖x‖₁`` for logits x and ``v`` the target's one-hot vector with its 1 replaced by
    ``1 − ξ``, the loss is the Poincaré-ball distance
    ``arccosh(1 + 2‖u − v‖² / ((1 − ‖u‖²)(1 − ‖v‖²)))``. It depends on the direction of the
    logits only (not their scale), and grows without bound as u approaches the boundary away
    from v, so unlike cross-entropy it keeps pushing the other logits toward zero rather than
    saturating once the target wins (Struppek et al. 2022). It is smallest near the target's
    one-hot direction: a large target logit and the others near zero.

    Parameters
    ----------
    logits : tensor or array of shape (n_samples, n_classes)
        Tensors keep their autograd graph.
    targets : tensor or array of shape (n_samples,), int
    xi : float in (0, 1)

    Returns
    -------
    tensor of shape (n_samples,), float64
        The per-sample loss (reduce it as you like).

    Examples
    --------
    By hand, for logits (1, 1), target 0 and ξ = ½: u = (½, ½) and v = (½, 0), so
    ‖u − v‖² = ¼, 1 − ‖u‖² = ½, 1 − ‖v‖² = ¾, the argument is 1 + 2·¼/(½·¾) = 7/3, and the loss is
    arccosh(7/3) = ln((7 + 2√10)/3) ≈ 1.4910.

    >>> f"{float(poincare_loss(torch.tensor([[1.0, 1.0]]), torch.tensor([0]), xi=0.5)[0]):.4f}"
    '1.4910'
    >>> f"{np.log((7 + 2 * np.sqrt(10)) / 3):.4f}"
    '1.4910'

    Logits pointing at the target cost less than logits pointing elsewhere:

    >>> loss = poincare_loss(torch.tensor([[8.0, 0.5, -0.5], [0.5, 8.0, -0.5]]), torch.tensor([0, 0]))
    >>> bool(loss[0] < loss[1])
    True
    """
    x = _logits_tensor(logits, "logits")
    y = torch.from_numpy(v.check_labels(targets, "targets", n_classes=x.shape[1]))
    if len(y) != len(x):
        raise ValueError(f"`targets` must have one label per row of `logits`; got {len(y)} labels "
                         f"for {len(x)} rows.")
    xi = v.check_float(xi, "xi")
    if not 0 < xi < 1:
        raise ValueError(f"`xi` must be in (0, 1); got {xi!r}.")
    # float64 throughout: confident logits put u within ~1e-8 of the boundary.
    x = x.to(torch.float64)
    n_classes = x.shape[1]
    norm1 = x.abs().sum(dim=1)
    u = x / norm1.clamp_min(torch.finfo(torch.float64).tiny).unsqueeze(1)
    target = (1 - xi) * F.one_hot(y, n_classes).to(torch.float64)
    diff_sq = ((u - target) ** 2).sum(dim=1)
    # On the L1 sphere, 1 − ‖u‖² = (Σ|u_i|)² − Σu_i² = Σ_i |u_i| Σ_{j≠i} |u_j|: a sum of
    # non-negative terms, exact for confident logits where 1 − ‖u‖² would cancel to 0.
    au = u.abs()
    others = au @ (1 - torch.eye(n_classes, dtype=torch.float64))
    one_minus_u_sq = torch.where(norm1 > 0, (au * others).sum(dim=1), torch.ones_like(norm1))
    one_minus_v_sq = xi * (2 - xi)
    delta = 2 * diff_sq / (one_minus_u_sq * one_minus_v_sq).clamp_min(_DENOMINATOR_FLOOR)
    # arccosh(1 + δ) = log1p(δ + √δ·√(δ + 2)): no digits lost to 1 + δ for small δ, no overflow of
    # δ² for large δ. δ > 0 always: ‖u‖₁ = 1 while ‖v‖₁ = 1 − ξ, so u ≠ v.
    return torch.log1p(delta + delta.sqrt() * (delta + 2).sqrt())


def _cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, targets, reduction="none")


LATENT_LOSSES = ("poincare", "ce")


def _latent_dim(generator: nn.Module) -> int:
    dim = getattr(generator, "latent_dim", None)
    if not isinstance(generator, nn.Module) or isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError("`generator` must be an nn.Module with an int attribute `latent_dim` "
                        f"(e.g. from labviz.zoo.generative.load_generator()); got "
                        f"{type(generator).__name__} with latent_dim={dim!r}.")
    return dim


def _frozen(*modules: nn.Module) -> list[tuple[torch.nn.Parameter, bool]]:
    """Switch off gradients of every parameter of ``modules``; return their former flags."""
    flags = [(p, p.requires_grad) for m in modules for p in m.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    return flags


def invert_latent(
    model: nn.Module,
    generator: nn.Module,
    classes: Sequence[int],
    *,
    n_per_class: int = 4,
    steps: int = 100,
    lr: float = 0.05,
    n_candidates: int = 16,
    seed: int = 0,
    loss: str = "poincare",
) -> Synthesized:
    """Model inversion through a generative prior, as in Plug & Play Attacks (Struppek et al. 2022).

    For each target class, ``n_per_class · n_candidates`` latents are drawn from the prior N(0, I)
    and the ``n_per_class`` that the attacked ``model`` already finds most like the class (lowest
    loss) are kept, as PPA selects its starting points. Those latents are then optimised with Adam
    to minimise ``loss`` of ``model``'s logits on the generated images. The images are the
    generator's outputs, so every inversion lies on the generator's image manifold; the attack
    only chooses *which* plausible image the model assigns to the class.

    Parameters
    ----------
    model : nn.Module
        The attacked classifier; maps (batch, 1, H, W) images in [0, 1] to logits.
    generator : nn.Module
        Maps latents (batch, ``generator.latent_dim``) to images (batch, 1, H, W) in [0, 1], e.g.
        the decoder of :func:`labviz.zoo.generative.load_generator`.
    classes : sequence of int
        Target classes; each gets ``n_per_class`` inversions.
    n_per_class, n_candidates : int
        Inversions per class, and prior draws per inversion to choose its starting latent from.
    steps : int
        Adam steps on the latents (0 returns the chosen starting points).
    lr : float
        Adam's step size on the latents (whose prior has unit scale).
    seed : int
        Seeds the prior draws.
    loss : {"poincare", "ce"}
        :func:`poincare_loss` (PPA's choice) or cross-entropy.

    Returns
    -------
    Synthesized
        ``images`` (n_classes · n_per_class, H, W) in [0, 1], ``target``, and ``confidence``: the
        attacked model's probability of the target.
    """
    n_per_class = v.check_int(n_per_class, "n_per_class", minimum=1)
    n_candidates = v.check_int(n_candidates, "n_candidates", minimum=1)
    steps = v.check_int(steps, "steps", minimum=0)
    lr = v.check_float(lr, "lr")
    if lr <= 0:
        raise ValueError(f"`lr` must be > 0; got {lr!r}.")
    v.check_option(loss, "loss", LATENT_LOSSES)
    objective = poincare_loss if loss == "poincare" else _cross_entropy
    latent_dim = _latent_dim(generator)
    class_list = [v.check_int(c, "classes", minimum=0) for c in classes]
    if not class_list:
        raise ValueError("`classes` must name at least one class; got none.")
    target = np.repeat(np.asarray(class_list, dtype=np.int64), n_per_class)
    y = torch.from_numpy(target)
    rng = torch.Generator().manual_seed(seed)
    model.eval()
    generator.eval()
    flags = _frozen(model, generator)
    # One thread, as in labviz.zoo.training.train: the result then does not depend on the core count
    # (so it can be cached by its arguments), and the small batches gain nothing from more.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        z0 = _starting_latents(model, generator, class_list, n_per_class, n_candidates, latent_dim,
                               objective, rng)
        z = z0.clone().requires_grad_()
        optimizer = torch.optim.Adam([z], lr=lr)
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            # The mean couples nothing: each image's loss depends on its own latent only, and Adam
            # rescales every coordinate, so each inversion is optimised as if alone.
            objective(model(generator(z)), y).mean().backward()
            optimizer.step()
        with torch.inference_mode():
            x = generator(z.detach())
            probs = F.softmax(model(x), dim=1).to(torch.float64).numpy()
    finally:
        torch.set_num_threads(threads)
        for p, flag in flags:
            p.requires_grad_(flag)
    return Synthesized(images=x[:, 0].numpy().astype(np.float32), target=target,
                       confidence=probs[np.arange(len(target)), target])


def _starting_latents(model: nn.Module, generator: nn.Module, classes: list[int], n_per_class: int,
                      n_candidates: int, latent_dim: int,
                      objective: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                      rng: torch.Generator
                      ) -> torch.Tensor:
    """The ``n_per_class`` lowest-loss of ``n_per_class · n_candidates`` prior draws per class,
    stacked class by class: shape (len(classes) · n_per_class, latent_dim)."""
    chosen = []
    with torch.inference_mode():
        for c in classes:
            cand = torch.randn(n_per_class * n_candidates, latent_dim, generator=rng)
            losses = torch.cat([objective(model(generator(zb)), torch.full((len(zb),), c))
                                for zb in cand.split(1024)])
            chosen.append(cand[torch.argsort(losses, stable=True)[:n_per_class]])
    return torch.cat(chosen)


def fooling_images(model: nn.Module, classes: Sequence[int], *, n_per_class: int = 4,
                   image_size: int = 28, steps: int = 100, seed: int = 0) -> Synthesized:
    """Unrecognisable images the model is confident about: gradient ascent with no prior."""
    return synthesize(model, classes, n_per_class=n_per_class, image_size=image_size, steps=steps,
                      lr=0.1, seed=seed)


def noise_images(n: int, *, image_size: int = 28, seed: int = 0) -> NDArray[np.float32]:
    """``n`` images of uniform noise in [0, 1], shape (n, image_size, image_size)."""
    n = v.check_int(n, "n", minimum=1)
    return np.random.default_rng(seed).random((n, image_size, image_size), dtype=np.float32)


def predict_probs(model: nn.Module, images: NDArray) -> NDArray[np.float64]:
    """Softmax probabilities of ``model`` on float images in [0, 1] of shape (n, height, width)."""
    x = v.check_finite_float(images, "images", ndim=3, shape_hint="(n_images, height, width)")
    if x.min() < 0 or x.max() > 1:
        raise ValueError(f"`images` must hold pixel values in [0, 1]; got [{x.min():.3g}, {x.max():.3g}].")
    model.eval()
    with torch.inference_mode():
        logits = model(torch.from_numpy(x.astype(np.float32)).unsqueeze(1))
    return F.softmax(logits, dim=1).numpy().astype(np.float64)


def attack_accuracy(evaluator: nn.Module, synthesized: Synthesized) -> float:
    """Share of synthesised images that an independent ``evaluator`` assigns to their target class."""
    pred = predict_probs(evaluator, synthesized.images).argmax(axis=1)
    return float((pred == synthesized.target).mean())


# ----- scoring inversions by features -------------------------------------------------------------
def _unit_images(images: NDArray, name: str) -> NDArray[np.float32]:
    """uint8 images (scaled by 1/255) or float images in [0, 1], shape (n, H, W), as float32."""
    arr = v.as_array(images, name)
    if arr.dtype == np.uint8:
        if arr.ndim != 3 or arr.shape[0] == 0:
            raise ValueError(f"`{name}` must have shape (n_images, height, width); got {arr.shape}.")
        return arr.astype(np.float32) / 255.0
    x = v.check_finite_float(arr, name, ndim=3, shape_hint="(n_images, height, width)")
    if x.min() < 0 or x.max() > 1:
        raise ValueError(f"`{name}` must hold pixel values in [0, 1] (or uint8); got "
                         f"[{x.min():.3g}, {x.max():.3g}].")
    return x.astype(np.float32)


def _embed(evaluator: nn.Module, x: NDArray[np.float32], chunk_size: int) -> NDArray[np.float64]:
    evaluator.eval()
    embed: Callable[[torch.Tensor], torch.Tensor] = getattr(evaluator, "embed")  # checked callable
    with torch.inference_mode():
        feats = [embed(torch.from_numpy(xb).unsqueeze(1))
                 for xb in np.array_split(x, max(1, -(-len(x) // chunk_size)))]
    return torch.cat(feats).flatten(1).to(torch.float64).numpy()


def feature_distance(
    evaluator: nn.Module,
    images: NDArray,
    targets: NDArray,
    reference_images: NDArray,
    reference_labels: NDArray,
    *,
    chunk_size: int = 1024,
) -> NDArray[np.float64]:
    """PPA's feature distance: how far each inversion lies from the nearest real image of its class.

    For inversion i with target t_i, the Euclidean distance between its penultimate features under
    an *independent* ``evaluator`` (``evaluator.embed``) and those of its nearest neighbour among
    the reference images labelled t_i (typically the attacked model's training images). Lower
    means the inversion looks more like a real member of its class, to a model that was not
    attacked.

    Parameters
    ----------
    evaluator : nn.Module
        Has ``embed(x)``: (batch, 1, H, W) images in [0, 1] → features (batch, feature_dim), as
        :class:`labviz.zoo.models.SmallCNN`.
    images : ndarray of shape (n_images, H, W)
        Inversions, float in [0, 1] (or uint8).
    targets : ndarray of shape (n_images,), int
    reference_images : ndarray of shape (n_reference, H, W), uint8 or float in [0, 1]
    reference_labels : ndarray of shape (n_reference,), int
    chunk_size : int
        Rows per block of the distance computation and per forward pass, which bounds memory at
        about ``chunk_size² · 8`` bytes.

    Returns
    -------
    ndarray of shape (n_images,), float64
    """
    if not callable(getattr(evaluator, "embed", None)):
        raise TypeError("`evaluator` must have an `embed` method giving penultimate features (a "
                        f"labviz SmallCNN); got {type(evaluator).__name__}.")
    chunk_size = v.check_int(chunk_size, "chunk_size", minimum=1)
    x = _unit_images(images, "images")
    ref = _unit_images(reference_images, "reference_images")
    if x.shape[1:] != ref.shape[1:]:
        raise ValueError(f"`reference_images` must have the images' size {x.shape[1:]}; got "
                         f"{ref.shape[1:]}.")
    y = v.check_labels(targets, "targets")
    y_ref = v.check_labels(reference_labels, "reference_labels")
    v.check_same_length(images=x, targets=y)
    v.check_same_length(reference_images=ref, reference_labels=y_ref)
    missing = sorted(set(np.unique(y).tolist()) - set(np.unique(y_ref).tolist()))
    if missing:
        raise ValueError(f"`reference_labels` must contain every target class; got none of "
                         f"classes {missing}.")
    feats, ref_feats = _embed(evaluator, x, chunk_size), _embed(evaluator, ref, chunk_size)
    out = np.empty(len(y), dtype=np.float64)
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        b = ref_feats[y_ref == c]
        b_sq = (b ** 2).sum(axis=1)
        for r in np.array_split(rows, -(-len(rows) // chunk_size)):
            a = feats[r]
            a_sq = (a ** 2).sum(axis=1, keepdims=True)
            best = np.full(len(r), np.inf)
            for start in range(0, len(b), chunk_size):
                # ‖a − b‖² = ‖a‖² + ‖b‖² − 2a·b, one (chunk × chunk) block at a time.
                d_sq = a_sq + b_sq[start:start + chunk_size] - 2 * a @ b[start:start + chunk_size].T
                best = np.minimum(best, d_sq.min(axis=1))
            out[r] = np.sqrt(np.maximum(best, 0.0))
    return out
