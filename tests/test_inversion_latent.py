"""The generative (PPA-style) model-inversion attack, its Poincaré loss, and the feature distance."""

import re

import numpy as np
import pytest
import torch
from torch import nn

from labviz import zoo

from labviz.zoo import generative

from labviz.compute import inversion
from labviz.compute.inversion import feature_distance, invert_latent, poincare_loss
from labviz.zoo.models import SmallCNN


# ----- the Poincaré loss --------------------------------------------------------------------------
def _reference_poincare(logits: np.ndarray, targets: np.ndarray, xi: float) -> np.ndarray:
    """The definition, written out directly (fine for logits that are not near one-hot)."""
    u = logits / np.abs(logits).sum(axis=1, keepdims=True)
    v = np.eye(logits.shape[1])[targets] * (1 - xi)
    num = 2 * ((u - v) ** 2).sum(axis=1)
    den = (1 - (u ** 2).sum(axis=1)) * (1 - (v ** 2).sum(axis=1))
    return np.arccosh(1 + num / den)


def test_poincare_loss_by_hand():
    # u = (3/4, -1/4), v = (0, 1 - 1/2): ‖u − v‖² = 9/16 + 9/16 = 9/8, 1 − ‖u‖² = 6/16,
    # 1 − ‖v‖² = 3/4, so the argument is 1 + 2·(9/8) / ((3/8)·(3/4)) = 1 + 8 = 9.
    loss = poincare_loss(torch.tensor([[3.0, -1.0]]), torch.tensor([1]), xi=0.5)
    assert float(loss[0]) == pytest.approx(np.arccosh(9.0), rel=1e-12)
    assert loss.dtype == torch.float64 and loss.shape == (1,)


def test_poincare_loss_agrees_with_a_direct_implementation():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(200, 10))
    targets = rng.integers(0, 10, size=200)
    for xi in (1e-4, 1e-5, 0.3):
        got = poincare_loss(torch.from_numpy(logits), torch.from_numpy(targets), xi=xi).numpy()
        np.testing.assert_allclose(got, _reference_poincare(logits, targets, xi), rtol=1e-9)
    # numpy inputs give the same values; float32 tensors too (computed in float64 inside)
    np.testing.assert_allclose(poincare_loss(logits, targets).numpy(),
                               _reference_poincare(logits, targets, inversion.POINCARE_XI), rtol=1e-9)
    as32 = torch.from_numpy(logits.astype(np.float32))
    np.testing.assert_allclose(poincare_loss(as32, targets).numpy(),
                               _reference_poincare(as32.double().numpy(), targets, 1e-4), rtol=1e-9)


def test_poincare_loss_ignores_the_scale_of_the_logits():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, -0.3]])
    y = torch.tensor([0, 2])
    torch.testing.assert_close(poincare_loss(logits, y), poincare_loss(7.5 * logits, y))


def test_poincare_loss_is_smallest_in_the_target_one_hot_direction():
    y = torch.tensor([3])
    loss_at = {k: float(poincare_loss(20 * torch.eye(10)[k:k + 1] + 0.01, y)[0]) for k in range(10)}
    assert min(loss_at, key=loss_at.get) == 3
    # Descending the loss from a random start ends pointing at the target.
    torch.manual_seed(0)
    x = torch.randn(8, 10, dtype=torch.float64, requires_grad=True)
    targets = torch.arange(8)
    opt = torch.optim.Adam([x], lr=0.05)
    for _ in range(500):
        opt.zero_grad()
        poincare_loss(x, targets).sum().backward()
        opt.step()
    u = x.detach() / x.detach().norm(dim=1, keepdim=True)
    assert torch.equal(u.argmax(dim=1), targets)
    assert (u[torch.arange(8), targets] > 0.99).all()


def test_poincare_loss_is_finite_for_confident_logits():
    confident = torch.tensor([[1e4, -1e-3, 2e-3, 0.0], [50.0, 0.0, 0.0, 0.0], [1e30, -1.0, 1.0, 0.0]],
                             requires_grad=True)
    loss = poincare_loss(confident, torch.tensor([0, 0, 0]))
    assert torch.isfinite(loss).all()
    loss.sum().backward()
    assert torch.isfinite(confident.grad).all()
    wrong = poincare_loss(torch.tensor([[1e4, 1e-3, 0.0, 0.0]]), torch.tensor([1]))
    assert torch.isfinite(wrong).all() and float(wrong[0]) > float(loss[0].detach())
    assert torch.isfinite(poincare_loss(torch.zeros(1, 4), torch.tensor([2]))).all()


@pytest.mark.parametrize(("args", "kwargs", "error", "message"), [
    ((torch.zeros(3), [0]), {}, ValueError,
     "`logits` must have shape (n_samples, n_classes) with n_classes >= 2; got (3,)"),
    ((torch.zeros(2, 3, dtype=torch.int64), [0, 1]), {}, TypeError,
     "`logits` must be a floating-point tensor; got dtype torch.int64"),
    ((torch.tensor([[0.0, float("nan")]]), [0]), {}, ValueError,
     "`logits` must be finite; got 1 NaN or inf values"),
    ((torch.zeros(2, 3), [0, 3]), {}, ValueError,
     "`targets` must hold labels in [0, 2]; got values in [0, 3]"),
    ((torch.zeros(2, 3), [0]), {}, ValueError,
     "`targets` must have one label per row of `logits`; got 1 labels for 2 rows"),
    ((torch.zeros(2, 3), [0, 1]), {"xi": 1.0}, ValueError, "`xi` must be in (0, 1); got 1.0"),
    ((torch.zeros(2, 3), [0, 1]), {"xi": 0}, ValueError, "`xi` must be in (0, 1); got 0.0"),
])
def test_poincare_loss_errors_name_the_argument_and_value(args, kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        poincare_loss(*args, **kwargs)


# ----- the latent attack on a tiny generator and classifier ---------------------------------------
class TinyGenerator(nn.Module):
    """3-d latents → 8×8 images in [0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.latent_dim = 3
        self.net = nn.Sequential(nn.Linear(3, 64), nn.Sigmoid(), nn.Unflatten(1, (1, 8, 8)))

    def forward(self, z):
        return self.net(z)


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return SmallCNN(n_classes=4, image_size=8, arch="cnn-tiny").eval(), TinyGenerator().eval()


def test_invert_latent_returns_generator_images_for_each_class(tiny):
    model, gen = tiny
    threads = torch.get_num_threads()
    s = invert_latent(model, gen, [2, 0], n_per_class=3, steps=5, n_candidates=2, seed=1)
    assert s.images.shape == (6, 8, 8) and s.images.dtype == np.float32
    assert 0 <= s.images.min() and s.images.max() <= 1
    np.testing.assert_array_equal(s.target, [2, 2, 2, 0, 0, 0])
    assert s.confidence.shape == (6,) and ((0 <= s.confidence) & (s.confidence <= 1)).all()
    again = invert_latent(model, gen, [2, 0], n_per_class=3, steps=5, n_candidates=2, seed=1)
    np.testing.assert_array_equal(s.images, again.images)
    # gradients and the thread count are restored afterwards
    assert torch.get_num_threads() == threads
    assert all(p.requires_grad for p in list(model.parameters()) + list(gen.parameters()))


def test_invert_latent_starts_from_the_best_prior_candidates(tiny):
    """With steps=0 the inversions are the lowest-loss of the seeded prior draws of each class."""
    model, gen = tiny
    n, k, c = 2, 5, 1
    start = invert_latent(model, gen, [c], n_per_class=n, steps=0, n_candidates=k, seed=3)
    draws = torch.randn(n * k, 3, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        losses = poincare_loss(model(gen(draws)), torch.full((n * k,), c))
        best = gen(draws[torch.argsort(losses)[:n]])[:, 0].numpy()
    np.testing.assert_allclose(start.images, best, atol=1e-6)


def test_invert_latent_with_cross_entropy_raises_the_target_probability(tiny):
    model, gen = tiny
    kw = dict(n_per_class=4, n_candidates=1, seed=0, loss="ce", lr=0.1)
    before = invert_latent(model, gen, [0, 1, 2, 3], steps=0, **kw)
    after = invert_latent(model, gen, [0, 1, 2, 3], steps=50, **kw)
    assert after.confidence.mean() > before.confidence.mean()


class NoLatent(nn.Module):
    def forward(self, z):
        return z


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"loss": "mse"}, ValueError, "`loss` must be one of ['poincare', 'ce']; got 'mse'"),
    ({"n_per_class": 0}, ValueError, "`n_per_class` must be >= 1; got 0"),
    ({"n_candidates": 0}, ValueError, "`n_candidates` must be >= 1; got 0"),
    ({"steps": -1}, ValueError, "`steps` must be >= 0; got -1"),
    ({"lr": 0.0}, ValueError, "`lr` must be > 0; got 0.0"),
    ({"classes": []}, ValueError, "`classes` must name at least one class; got none"),
    ({"classes": [-1]}, ValueError, "`classes` must be >= 0; got -1"),
    ({"generator": NoLatent()}, TypeError,
     "`generator` must be an nn.Module with an int attribute `latent_dim`"),
])
def test_invert_latent_errors_name_the_argument_and_value(tiny, kwargs, error, message):
    model, gen = tiny
    args = {"generator": gen, "classes": [0], **kwargs}
    with pytest.raises(error, match=re.escape(message)):
        invert_latent(model, args.pop("generator"), args.pop("classes"), **args)


# ----- the latent attack on the shipped VAE and a shipped classifier ------------------------------
def test_latent_attack_on_a_shipped_classifier_raises_the_target_probability():
    model, _ = zoo.load("fmnist-ce-s0")
    decoder, _ = generative.load_generator()
    kw = dict(n_per_class=2, n_candidates=4, seed=0)
    before = invert_latent(model, decoder, range(10), steps=0, **kw)
    after = invert_latent(model, decoder, range(10), steps=30, **kw)
    assert after.images.shape == (20, 28, 28)
    assert 0 <= after.images.min() and after.images.max() <= 1
    assert after.confidence.mean() > before.confidence.mean() + 0.05, (
        before.confidence.mean(), after.confidence.mean())
    probs = inversion.predict_probs(model, after.images)
    np.testing.assert_allclose(probs[np.arange(20), after.target], after.confidence, rtol=1e-5)


def test_pixel_attack_is_documented_as_the_adversarial_transfer_baseline():
    assert "adversarial-transfer baseline" in inversion.invert.__doc__


# ----- feature distance ---------------------------------------------------------------------------
def _brute_force_distance(evaluator, images, targets, ref, ref_labels):
    with torch.inference_mode():
        f = evaluator.embed(torch.from_numpy(images).float().unsqueeze(1)).double().numpy()
        g = evaluator.embed(torch.from_numpy(ref).float().unsqueeze(1)).double().numpy()
    out = []
    for i in range(len(images)):
        out.append(min(np.sqrt(((f[i] - g[j]) ** 2).sum())
                       for j in range(len(ref)) if ref_labels[j] == targets[i]))
    return np.array(out)


@pytest.fixture
def evaluator():
    torch.manual_seed(1)
    return SmallCNN(n_classes=3, image_size=8, arch="cnn-tiny").eval()


def test_feature_distance_matches_brute_force(evaluator):
    rng = np.random.default_rng(0)
    images = rng.random((7, 8, 8)).astype(np.float32)
    targets = np.array([0, 1, 2, 0, 1, 2, 0])
    ref_u8 = rng.integers(0, 256, size=(11, 8, 8), dtype=np.uint8)
    ref_labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1])
    expected = _brute_force_distance(evaluator, images, targets, ref_u8 / 255.0, ref_labels)
    for chunk in (1, 2, 3, 1024):
        got = feature_distance(evaluator, images, targets, ref_u8, ref_labels, chunk_size=chunk)
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)
    # float references in [0, 1] are used as they are
    got = feature_distance(evaluator, images, targets, ref_u8 / 255.0, ref_labels)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)


def test_feature_distance_is_zero_for_a_copy_of_a_reference_image_of_its_class(evaluator):
    rng = np.random.default_rng(2)
    ref = rng.random((6, 8, 8)).astype(np.float32)
    labels = np.array([0, 0, 1, 1, 2, 2])
    d = feature_distance(evaluator, ref[[2, 5]], np.array([1, 2]), ref, labels)
    np.testing.assert_allclose(d, 0.0, atol=1e-5)
    # the same image scored against another class is not at distance 0 (unless features collide)
    other = feature_distance(evaluator, ref[[2]], np.array([0]), ref, labels)
    assert other[0] >= 0


@pytest.mark.parametrize(("change", "error", "message"), [
    ({"reference_labels": np.array([0, 0, 1, 1])}, ValueError,
     "`reference_labels` must contain every target class; got none of classes [2]"),
    ({"images": np.full((3, 8, 8), 1.5)}, ValueError,
     "`images` must hold pixel values in [0, 1] (or uint8); got [1.5, 1.5]"),
    ({"images": np.zeros((3, 6, 6))}, ValueError,
     "`reference_images` must have the images' size (6, 6); got (8, 8)"),
    ({"targets": np.array([0, 1])}, ValueError,
     "Arguments must have the same number of samples; got `images` has 3, `targets` has 2"),
    ({"evaluator": nn.Linear(2, 2)}, TypeError,
     "`evaluator` must have an `embed` method giving penultimate features"),
    ({"chunk_size": 0}, ValueError, "`chunk_size` must be >= 1; got 0"),
])
def test_feature_distance_errors_name_the_argument_and_value(evaluator, change, error, message):
    args = {"evaluator": evaluator, "images": np.zeros((3, 8, 8)), "targets": np.array([0, 1, 2]),
            "reference_images": np.zeros((4, 8, 8), dtype=np.uint8),
            "reference_labels": np.array([0, 1, 2, 2])}
    args.update(change)
    with pytest.raises(error, match=re.escape(message)):
        feature_distance(**args)
