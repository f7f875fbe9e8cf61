"""Deprecated second names of the explorer's attributes, which warn and are removed in labviz 0.3.

``ex.highlighted_ids`` reads ``ex.state.highlighted_ids``, ``ex.confusion_figure`` reads
``ex.confusion.figure``, and so on (:data:`EXPLORER_ALIASES`): each widget or value has one home,
and these names are not part of :class:`~labviz.widgets.explorer.Explorer`.
:func:`add_deprecated_aliases` attaches them to the class as read-only properties that return the
attribute at its home and warn with a ``DeprecationWarning`` naming it.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Mapping

REMOVED_IN = "0.3"

#: Old attribute name → its path on the explorer.
EXPLORER_ALIASES: dict[str, str] = {
    "highlighted_ids": "state.highlighted_ids",
    "temperature": "state.temperature",
    "confusion_figure": "confusion.figure",
    "reliability_figure": "reliability.figure",
    "table_html": "samples.table_html",
    "thumbnails_html": "samples.thumbnails_html",
    "hover_html": "samples.hover_html",
    "series_html": "controls_view.series_html",
}


def _alias(owner: str, name: str, path: str) -> property:
    read = operator.attrgetter(path)

    def get(self: object) -> object:
        warnings.warn(f"`{owner}.{name}` is deprecated and will be removed in labviz "
                      f"{REMOVED_IN}; use `{owner}.{path}` instead.", DeprecationWarning,
                      stacklevel=2)
        return read(self)

    return property(get, doc=f"Deprecated: ``{path}`` (removed in labviz {REMOVED_IN}).")


def add_deprecated_aliases(cls: type, aliases: Mapping[str, str]) -> None:
    """Give ``cls`` a read-only property per entry of ``aliases`` (old name → attribute path)
    that returns the attribute at the path and warns that the old name is deprecated."""
    for name, path in aliases.items():
        setattr(cls, name, _alias(cls.__name__, name, path))
