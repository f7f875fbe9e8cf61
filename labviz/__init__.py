"""labviz: explore how labels shape trained classifiers.

Importing labviz is fast and has no side effects beyond registering its deprecated import paths
(:mod:`labviz._moved`): torch, plotly, umap and cleanlab load only when a function that needs them
is called. The package's layers and folders are described in ``docs/architecture.md``.
"""

from __future__ import annotations

import warnings

from labviz import _moved
from labviz.core.predictions import Predictions, Split
from labviz.figures.export import export, export_many
from labviz.figures.html_report import write_report
from labviz.widgets import app, explore, live

__all__ = ["Predictions", "app", "explore", "export", "export_many", "live", "write_report",
           "__version__"]
__version__ = "0.2.0"

_moved.install()


def _from_zoo(cls: type[Predictions], name: str, split: Split = "test", *,
              with_images: bool = True) -> Predictions:
    """Deprecated alias of :func:`labviz.zoo.predictions` (removed in labviz 0.3)."""
    warnings.warn("`Predictions.from_zoo` is deprecated and will be removed in labviz 0.3; "
                  "use `labviz.zoo.predictions(name, split)` instead.", DeprecationWarning, stacklevel=2)
    from labviz import zoo

    return zoo.predictions(name, split, with_images=with_images)


# Set here, in the face, because the core may not import the zoo it sits below.
Predictions.from_zoo = classmethod(_from_zoo)  # type: ignore[attr-defined]
