"""Old import paths of labviz's modules, kept working for one release with a ``DeprecationWarning``.

labviz 0.2 put its modules in folders by layer (``docs/architecture.md``). Code written against 0.1
(``from labviz import calibration``, ``import labviz.predictions``) keeps running: importing an old
path imports the module at its new path, binds it under the old name too, and warns once, naming
the new path. These aliases go in labviz 0.3.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType
from typing import Any

#: Old module path → new module path (both under ``labviz.``).
MOVED: dict[str, str] = {
    "predictions": "core.predictions",
    "cache": "core.cache",
    "calibration": "compute.calibration",
    "confusion": "compute.confusion",
    "projection": "compute.projection",
    "collapse": "compute.collapse",
    "label_quality": "compute.label_quality",
    "inversion": "compute.inversion",
    "distributed": "compute.distributed",
    "datasets": "zoo.datasets",
    "models": "zoo.models",
    "training": "zoo.training",
    "generative": "zoo.generative",
    "live_training": "classroom.live_training",
    "training_service": "classroom.training_service",
    "class_board": "classroom.class_board",
    "board_server": "servers.board_server",
    "voila_pool": "servers.voila_pool",
    "server": "servers.jupyter",
    "exporting": "figures.export",
}
REMOVED_IN = "0.3"


class _AliasLoader(importlib.abc.Loader):
    """Loads an old path by importing the new one: both names then hold the same module object."""

    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        # stacklevel 2 is the importing line: warnings passes over importlib's own frames.
        warnings.warn(f"`{spec.name}` is deprecated and will be removed in labviz {REMOVED_IN}; "
                      f"import `{self.new}` instead.", DeprecationWarning, stacklevel=2)
        return importlib.import_module(self.new)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the new module ran when it was imported."""


class _MovedFinder(importlib.abc.MetaPathFinder):
    """Answers only for the old paths in :data:`MOVED`; every other import passes it by."""

    def find_spec(self, fullname: str, path: Any = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        old = fullname.removeprefix("labviz.")
        if fullname == old or old not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(f"labviz.{MOVED[old]}"))


def install() -> None:
    """Put the finder on ``sys.meta_path`` once (labviz's ``__init__`` calls this)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
