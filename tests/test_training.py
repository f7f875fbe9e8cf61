import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from labviz.zoo import training
from labviz.zoo.models import SmallCNN
from labviz.zoo.training import TrainConfig


def test_label_smoothing_equals_ce_against_smoothed_target():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    y = torch.tensor([0])
    # By hand: target (0.9 + 0.1/3, 0.1/3, 0.1/3); loss = -sum target * log_softmax.
    log_p = [2 - math.log(math.exp(2) + 1 + math.exp(-1)), -math.log(math.exp(2) + 1 + math.exp(-1))]
    log_p.append(-1 + log_p[1])
    target = [0.9 + 0.1 / 3, 0.1 / 3, 0.1 / 3]
    expected = -sum(t * lp for t, lp in zip(target, log_p))
    assert training.label_smoothing_loss(logits, y, 0.1).item() == pytest.approx(expected, rel=1e-6)
    # torch's built-in label smoothing uses the same definition.
    assert training.label_smoothing_loss(logits, y, 0.1).item() == pytest.approx(
        F.cross_entropy(logits, y, label_smoothing=0.1).item(), rel=1e-6)


def test_negative_label_smoothing_targets():
    t = training.smoothed_targets(torch.tensor([1]), 4, -0.1)
    assert t.tolist()[0] == pytest.approx([-0.025, 1.075, -0.025, -0.025])
    assert t.sum().item() == pytest.approx(1.0)


def test_alpha_zero_is_plain_cross_entropy(rng):
    logits = torch.tensor(rng.normal(size=(5, 4)), dtype=torch.float32)
    y = torch.tensor([0, 1, 2, 3, 0])
    ce = F.cross_entropy(logits, y).item()
    assert training.label_smoothing_loss(logits, y, 0.0).item() == pytest.approx(ce, rel=1e-6)
    assert training.maxsup_loss(logits, y, 0.0).item() == pytest.approx(ce, rel=1e-6)


def test_maxsup_formula_by_hand():
    logits = torch.tensor([[3.0, 1.0, -1.0], [0.0, 2.0, 1.0]])
    y = torch.tensor([1, 1])
    # Penalties: z_max - mean = 3 - 1 = 2 and 2 - 1 = 1; batch mean 1.5; times alpha 0.2 = 0.3.
    expected = F.cross_entropy(logits, y).item() + 0.3
    assert training.maxsup_loss(logits, y, 0.2).item() == pytest.approx(expected, rel=1e-6)


def test_distillation_loss_by_hand():
    s = torch.tensor([[1.0, 0.0]])
    t = torch.tensor([[0.0, 2.0]])
    y = torch.tensor([0])
    T, w = 2.0, 0.5
    ps = F.softmax(s / T, dim=1)[0]
    pt = F.softmax(t / T, dim=1)[0]
    kl = float((pt * (pt.log() - ps.log())).sum())
    expected = (1 - w) * F.cross_entropy(s, y).item() + w * T * T * kl
    got = training.distillation_loss(s, t, y, temperature=T, weight=w).item()
    assert got == pytest.approx(expected, rel=1e-6)
    # Identical logits leave only the hard term.
    same = training.distillation_loss(s, s, y, temperature=T, weight=w).item()
    assert same == pytest.approx((1 - w) * F.cross_entropy(s, y).item(), rel=1e-6)


def test_symmetric_noise_rate_and_exact_mask(rng):
    y = rng.integers(0, 10, size=1000)
    noisy = training.symmetric_noise(y, 0.4, n_classes=10, seed=3)
    assert noisy.flipped.sum() == 400
    np.testing.assert_array_equal(noisy.flipped, noisy.labels != y)
    # Flipped labels spread over all other classes.
    offsets = (noisy.labels[noisy.flipped] - y[noisy.flipped]) % 10
    assert set(offsets) == set(range(1, 10))
    again = training.symmetric_noise(y, 0.4, n_classes=10, seed=3)
    np.testing.assert_array_equal(again.labels, noisy.labels)


def test_class_dependent_noise_only_touches_pairs(rng):
    y = np.repeat(np.arange(10), 100)
    noisy = training.class_dependent_noise(y, 0.3, pairs={6: 0, 0: 6}, n_classes=10, seed=0)
    assert noisy.flipped.sum() == 60
    assert set(y[noisy.flipped]) == {0, 6}
    assert (noisy.labels[noisy.flipped & (y == 6)] == 0).all()
    np.testing.assert_array_equal(noisy.flipped, noisy.labels != y)


@pytest.mark.parametrize("rate", [-0.1, 1.5, "0.2"])
def test_noise_rate_must_be_in_unit_interval(rate):
    with pytest.raises(ValueError, match="`rate` must be a number in"):
        training.symmetric_noise([0, 1, 2], rate, n_classes=3, seed=0)


def test_noise_pairs_must_differ():
    with pytest.raises(ValueError, match="`pairs` must map a class to a different class"):
        training.class_dependent_noise([0, 1], 0.5, pairs={1: 1}, n_classes=2, seed=0)


def test_noise_labels_out_of_range():
    with pytest.raises(ValueError, match=r"`n_classes` must be greater than the largest label; "
                                         r"got n_classes=3 and labels up to 5 in `y`"):
        training.symmetric_noise([0, 5], 0.5, n_classes=3, seed=0)


def test_config_validation():
    with pytest.raises(ValueError, match="`loss` must be one of"):
        TrainConfig(loss="focal")
    with pytest.raises(ValueError, match=r"`snapshots` must be epochs in \[1, 3\]; got \[5\]"):
        TrainConfig(epochs=3, snapshots=(1, 5))
    with pytest.raises(ValueError, match="`epochs` must be >= 1"):
        TrainConfig(epochs=0)


def _tiny_run(seed, **kwargs):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(64, 8, 8)).astype(np.uint8)
    labels = rng.integers(0, 10, size=64)
    torch.manual_seed(seed)
    model = SmallCNN(image_size=8)
    config = TrainConfig(epochs=2, batch_size=16, seed=seed, **kwargs)
    return training.train(model, images, labels, config, progress=False)


def test_same_seed_gives_identical_weights():
    a, b = _tiny_run(0).model.state_dict(), _tiny_run(0).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = _tiny_run(1).model.state_dict()
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_snapshots_are_taken_at_chosen_epochs():
    result = _tiny_run(0, snapshots=(1,))
    assert list(result.snapshots) == [1]
    final = result.model.state_dict()
    assert not torch.equal(result.snapshots[1]["head.weight"], final["head.weight"])
    assert len(result.losses) == 2 and result.seconds > 0


def test_kd_needs_a_teacher():
    with pytest.raises(ValueError, match="`teacher` must be given exactly when"):
        _tiny_run(0, loss="kd")


def test_kd_batch_loss_needs_teacher_logits():
    x, y = torch.zeros(2, 1, 8, 8), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="`teacher_logits` must be given when config.loss == 'kd'; got None"):
        training.batch_loss(SmallCNN(image_size=8), x, y, TrainConfig(loss="kd"))


def test_train_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="`images` has 4, `labels` has 3"):
        training.train(SmallCNN(image_size=8), np.zeros((4, 8, 8), np.uint8), [0, 1, 2],
                       TrainConfig(epochs=1), progress=False)


def test_model_features_feed_the_head():
    model = SmallCNN(image_size=8).eval()
    x = torch.rand(3, 1, 8, 8)
    h = model.embed(x)
    assert h.shape == (3, 64)
    torch.testing.assert_close(model(x), h @ model.head.weight.T + model.head.bias)


def test_unknown_arch():
    with pytest.raises(ValueError, match="`arch` must be one of"):
        SmallCNN(arch="resnet")


def test_negative_label_smoothing_is_exact_above_the_floor():
    logits = torch.tensor([[1.0, 0.5, -0.5]])
    y = torch.tensor([0])
    target = training.smoothed_targets(y, 3, -0.1)
    plain = -(target * F.log_softmax(logits, dim=1)).sum()
    assert training.label_smoothing_loss(logits, y, -0.1).item() == pytest.approx(plain.item(), rel=1e-6)


def test_negative_label_smoothing_is_bounded_below():
    """Once a wrong class is below the floor, pushing it further gains nothing (no runaway logits)."""
    y = torch.tensor([0])
    far = torch.tensor([[30.0, 0.0, 0.0]], requires_grad=True)
    loss = training.label_smoothing_loss(far, y, -0.1)
    loss.backward()
    farther = training.label_smoothing_loss(torch.tensor([[60.0, 0.0, 0.0]]), y, -0.1)
    assert farther.item() == pytest.approx(loss.item(), abs=1e-6)
    assert far.grad.abs().max().item() < 1e-6


def test_tiny_arch_is_a_narrower_student():
    tiny = SmallCNN(arch="cnn-tiny").eval()
    assert tiny.embed(torch.rand(2, 1, 28, 28)).shape == (2, 16)

    def n_params(model):
        return sum(p.numel() for p in model.parameters())

    assert n_params(tiny) < n_params(SmallCNN(arch="cnn-small")) / 3
