"""labviz: explore how labels shape trained classifiers.

Importing labviz is fast and has no side effects: torch, plotly, umap and cleanlab load only when a
function that needs them is called.
"""

from labviz.predictions import Predictions

__all__ = ["Predictions", "__version__"]
__version__ = "0.1.0"
