"""labviz: explore how labels shape trained classifiers.

Importing labviz is fast and has no side effects: torch, plotly, umap and cleanlab load only when a
function that needs them is called.
"""

from labviz.figures.export import export, export_many
from labviz.core.predictions import Predictions
from labviz.widgets import app, explore, live

__all__ = ["Predictions", "app", "explore", "export", "export_many", "live", "__version__"]
__version__ = "0.1.0"
