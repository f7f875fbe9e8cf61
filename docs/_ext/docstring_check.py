"""Fail the docs build on a public function, class, method or property without a docstring.

autodoc documents undocumented members too (``undoc-members``), so every public name reaches
this check; a docstring inherited from a base class counts (``autodoc_inherit_docstrings``), and
so does a property's entry in its class's numpydoc ``Attributes`` section.
Module-level data and attributes are documented by ``#:`` comments, which autodoc reads itself.
"""

from __future__ import annotations

import importlib
import re
import types
from typing import Any

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)
CHECKED = frozenset({"function", "class", "exception", "method", "property"})


def _owner(name: str) -> Any:
    """The class holding the member ``name`` (a dotted path), or None."""
    parts = name.split(".")[:-1]
    for split in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attr in parts[split:]:
            obj = getattr(obj, attr, None)
        return obj
    return None


def _in_attributes_section(name: str) -> bool:
    """Whether ``name``'s class lists it in its docstring's ``Attributes`` section."""
    doc = getattr(_owner(name), "__doc__", None) or ""
    section = re.search(r"^\s*Attributes\n\s*-+\n(.*?)(?:^\s*\w[\w ]*\n\s*-+\n|\Z)", doc, re.S | re.M)
    short = re.escape(name.rsplit(".", 1)[-1])
    return bool(section and re.search(rf"^\s*(\w+, )*{short}(, \w+)* :", section.group(1), re.M))


def check_docstring(app: Sphinx, what: str, name: str, obj: Any, options: Any,
                    lines: list[str]) -> None:
    """Warn (an error under ``-W``) when a public callable or class ``name`` has no docstring."""
    public = not any(part.startswith("_") for part in name.split("."))
    if what in ("function", "class", "exception") and getattr(obj, "__module__", None) != name.rpartition(".")[0]:
        return  # imported here (autodoc leaves it out): checked where it is defined
    if what in CHECKED and public and not any(line.strip() for line in lines):
        if what == "property" and _in_attributes_section(name):
            return
        logger.warning("%s %s has no docstring", what, name, type="labviz", subtype="docstring")


def skip_foreign(app: Sphinx, what: str, name: str, obj: Any, skip: bool, options: Any) -> bool | None:
    """Leave out of a module's page what it imports from elsewhere (``Callable``, plotly's
    ``Points``) and generic aliases (``tuple[float, float]``), which autodoc takes for classes."""
    if what == "module" and isinstance(obj, types.GenericAlias):
        return True
    if what == "module" and isinstance(obj, type | types.FunctionType):
        return not getattr(obj, "__module__", "").startswith("labviz") or None
    return None


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("autodoc-skip-member", skip_foreign)
    app.connect("autodoc-process-docstring", check_docstring, priority=400)  # before numpydoc's
    return {"parallel_read_safe": True, "parallel_write_safe": True}
