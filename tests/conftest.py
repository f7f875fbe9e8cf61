"""Shared fixtures. Every test gets its own cache folder, so tests never see each other's entries."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LABVIZ_CACHE_DIR", str(tmp_path_factory.mktemp("labviz-cache")))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def patch_studies(monkeypatch, name: str, value) -> None:
    """Replace ``name`` in every ``labviz.studies`` module that holds it (each imported its own)."""
    import sys

    import labviz.studies  # noqa: F401  (loads every study module)

    for modname, module in list(sys.modules.items()):
        if (modname == "labviz.studies" or modname.startswith("labviz.studies.")) and hasattr(module, name):
            monkeypatch.setattr(module, name, value)
