"""Layer 2, compute: calibration, confusion, projection, collapse, label quality, inversion,
neighbours (cosine k-NN index and per-sample scores) and regions (clusters ranked by ECE, error slices).

Each module is an attribute of this package, imported on first use (PEP 562):
``labviz.compute.calibration`` works after a bare ``import labviz``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

MODULES = ("calibration", "collapse", "confusion", "distributed", "inversion", "label_quality",
           "neighbours", "projection", "regions")
#: ``distributed`` needs the ``distributed`` extra, so ``import *`` leaves it out.
__all__ = [m for m in MODULES if m != "distributed"]


def __getattr__(name: str) -> ModuleType:
    if name not in MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return importlib.import_module(f"{__name__}.{name}")  # the import binds it here too


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(MODULES))
