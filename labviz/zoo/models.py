"""Small CNNs with an explicit penultimate layer, so that "features" has one meaning everywhere.

``model.embed(x)`` gives the penultimate features h (after the ReLU), and ``model.head`` is the final
``nn.Linear``: logits = head(h) = W h + b, so the rows of W are the class templates.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import TypedDict

import torch
from torch import nn


@dataclass(frozen=True)
class ArchSpec:
    """Widths of a :class:`SmallCNN`: two conv blocks, then a fully connected feature layer."""

    channels: tuple[int, int]
    feature_dim: int


#: Named architectures used by the zoo. "cnn" is the main model; "cnn-small" is the KD student of
#: the full-train-set KD runs; "cnn-tiny" is the transfer-set student, made weak (a quarter of the
#: main model's widths, ~7k parameters) so that a teacher has something to teach it.
ARCHS: dict[str, ArchSpec] = {
    "cnn": ArchSpec(channels=(16, 32), feature_dim=64),
    "cnn-small": ArchSpec(channels=(8, 16), feature_dim=32),
    "cnn-tiny": ArchSpec(channels=(4, 8), feature_dim=16),
}


class CNNConfig(TypedDict):
    """What builds a :class:`SmallCNN` (``SmallCNN(**config)``); checkpoints record it."""

    n_classes: int
    image_size: int
    arch: str


class SmallCNN(nn.Module):
    """conv3×3 → ReLU → maxpool, twice, then a linear feature layer + ReLU, then the linear head.

    Parameters
    ----------
    n_classes : int
    image_size : int
        Side of the square input images (28 for Fashion-MNIST, 8 for digits); must be divisible by 4.
    arch : str
        A key of :data:`ARCHS`.
    """

    def __init__(self, n_classes: int = 10, image_size: int = 28, arch: str = "cnn") -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"`arch` must be one of {list(ARCHS)}; got {arch!r}.")
        if image_size % 4:
            raise ValueError(f"`image_size` must be divisible by 4; got {image_size}.")
        spec = ARCHS[arch]
        c1, c2 = spec.channels
        self.config: CNNConfig = {"n_classes": n_classes, "image_size": image_size, "arch": arch}
        self.body = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(c2 * (image_size // 4) ** 2, spec.feature_dim), nn.ReLU(),
        )
        self.head = nn.Linear(spec.feature_dim, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features, shape (batch, feature_dim)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))



def arch_spec(arch: str) -> dict[str, object]:
    """The widths of ``arch`` as a plain dict. Deprecated: unused by labviz; removed in 0.3.

    Use ``dataclasses.asdict(labviz.zoo.models.ARCHS[arch])``.
    """
    warnings.warn("`labviz.zoo.models.arch_spec` is deprecated and will be removed in labviz 0.3; use "
                  "`dataclasses.asdict(labviz.zoo.models.ARCHS[arch])`.", DeprecationWarning, stacklevel=2)
    return asdict(ARCHS[arch])
