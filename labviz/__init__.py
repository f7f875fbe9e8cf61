"""labviz: explore how labels shape trained classifiers.

Importing labviz is fast and has no side effects beyond registering its deprecated import paths
(:mod:`labviz._moved`): torch, plotly, umap and cleanlab load only when a function that needs them
is called. The package's layers and folders are described in ``docs/architecture.md``.

Its subpackages and main modules are attributes, imported on first use (PEP 562): after
``import labviz``, ``labviz.calibration`` is :mod:`labviz.compute.calibration`, ``labviz.zoo``
the zoo and ``labviz.figures`` the figures with their displays.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

from labviz import _moved
from labviz.core.predictions import Predictions, Split
from labviz.widgets import app, explore, live

if TYPE_CHECKING:
    from labviz import classroom, compute, core, figures, servers, studies, widgets, zoo
    from labviz.compute import (calibration, collapse, confusion, label_quality, neighbours,
                                projection, regions)
    from labviz.figures.export import export, export_many
    from labviz.figures.html_report import write_report

#: Modules reachable as ``labviz.<name>``, imported on first use: the layers' packages, and the
#: compute modules the README names, one level up. ``import labviz.calibration`` (a module path,
#: not this attribute) is labviz 0.1's deprecated path and warns (:mod:`labviz._moved`).
SUBMODULES: dict[str, str] = {
    "core": "labviz.core",
    "compute": "labviz.compute",
    "zoo": "labviz.zoo",
    "classroom": "labviz.classroom",
    "studies": "labviz.studies",
    "figures": "labviz.figures",
    "widgets": "labviz.widgets",
    "servers": "labviz.servers",
    "calibration": "labviz.compute.calibration",
    "confusion": "labviz.compute.confusion",
    "projection": "labviz.compute.projection",
    "collapse": "labviz.compute.collapse",
    "label_quality": "labviz.compute.label_quality",
    "neighbours": "labviz.compute.neighbours",
    "regions": "labviz.compute.regions",
}
#: Functions reachable as ``labviz.<name>``, imported on first use (the exporter loads asyncio).
FUNCTIONS: dict[str, str] = {
    "export": "labviz.figures.export",
    "export_many": "labviz.figures.export",
    "write_report": "labviz.figures.html_report",
}

__all__ = ["Predictions", "app", "explore", "export", "export_many", "live", "write_report",
           "__version__", *SUBMODULES]
__version__ = "0.2.0"

_moved.install()


def __getattr__(name: str) -> Any:
    """Import a submodule or function of :data:`SUBMODULES` / :data:`FUNCTIONS` on first use."""
    if name in SUBMODULES:
        value = importlib.import_module(SUBMODULES[name])
    elif name in FUNCTIONS:
        value = getattr(importlib.import_module(FUNCTIONS[name]), name)
    else:
        raise AttributeError(f"module 'labviz' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(SUBMODULES) | set(FUNCTIONS))


def _from_zoo(cls: type[Predictions], name: str, split: Split = "test", *,
              with_images: bool = True) -> Predictions:
    """Deprecated alias of :func:`labviz.zoo.predictions` (removed in labviz 0.3)."""
    warnings.warn("`Predictions.from_zoo` is deprecated and will be removed in labviz 0.3; "
                  "use `labviz.zoo.predictions(name, split)` instead.", DeprecationWarning, stacklevel=2)
    from labviz import zoo

    return zoo.predictions(name, split, with_images=with_images)


# Set here, in the face, because the core may not import the zoo it sits below.
Predictions.from_zoo = classmethod(_from_zoo)  # type: ignore[attr-defined]
