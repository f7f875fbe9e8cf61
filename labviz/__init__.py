"""labviz: explore how labels shape trained classifiers.

Importing labviz is fast and has no side effects: torch, plotly, umap and cleanlab load only when a
function that needs them is called.
"""

from labviz.exporting import export, export_many
from labviz.predictions import Predictions
from labviz.widgets import explore

__all__ = ["Predictions", "explore", "export", "export_many", "__version__"]
__version__ = "0.1.0"
