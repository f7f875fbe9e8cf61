"""Figure layer: functions that take computed results and return ``plotly.graph_objects.Figure``.

Nothing here computes metrics, writes files or touches plotly's global settings.

The displays (scikit-learn's pattern: ``Display.from_predictions(...)`` computes and holds the
data, ``.plot()`` draws) are attributes of this package, imported on first use (PEP 562), so
``labviz.figures`` loads plotly only when one of them is used:

>>> from labviz.figures import ReliabilityDisplay
>>> ReliabilityDisplay.__module__
'labviz.figures.calibration'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labviz.figures.calibration import CorpDisplay, ReliabilityDisplay, TemperatureScalingDisplay
    from labviz.figures.calibration_report import CalibrationReportDisplay
    from labviz.figures.collapse import (
        ClassCosineDisplay,
        CollapseMetricsDisplay,
        MisclassifiedConfidenceDisplay,
        TemplatePlaneDisplay,
    )
    from labviz.figures.confusion import ConfusionDisplay
    from labviz.figures.label_quality import LabelErrorDisplay, LossHistogramDisplay, NonUniformityDisplay
    from labviz.figures.projection import ProjectionDisplay

#: Each display → the module defining it. (``export`` is :mod:`labviz.figures.export`, the module:
#: a function of that name here would be replaced by it once it is imported; ``labviz.export`` is
#: the function.)
EXPORTS: dict[str, str] = {
    "ReliabilityDisplay": "calibration",
    "TemperatureScalingDisplay": "calibration",
    "CorpDisplay": "calibration",
    "CalibrationReportDisplay": "calibration_report",
    "TemplatePlaneDisplay": "collapse",
    "CollapseMetricsDisplay": "collapse",
    "ClassCosineDisplay": "collapse",
    "MisclassifiedConfidenceDisplay": "collapse",
    "ConfusionDisplay": "confusion",
    "LossHistogramDisplay": "label_quality",
    "NonUniformityDisplay": "label_quality",
    "LabelErrorDisplay": "label_quality",
    "ProjectionDisplay": "projection",
}
__all__ = sorted(EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the module defining a name of :data:`EXPORTS` on first use. A submodule's name
    (``labviz.figures.calibration``) is bound by importing it, as in any package."""
    if name not in EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{EXPORTS[name]}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(EXPORTS))
