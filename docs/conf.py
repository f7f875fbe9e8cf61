"""Sphinx configuration of labviz's documentation (``make docs``).

The site builds offline and renders the notebooks from executed copies without running them
(``_ext/executed_notebooks.py``); ``make docs`` passes ``-W --keep-going``, so any warning fails it.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
# myst-nb reads notebooks with nbformat, whose jsonschema compiles rfc3987-syntax's lark grammar
# on import (about 2.5 s of every build) for an "iri" format check no notebook schema uses.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

import labviz  # noqa: E402

project = "labviz"
author = "the labviz authors"
copyright = "the labviz authors"
version = release = labviz.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",
    "executed_notebooks",
    "docstring_check",
]
templates_path = ["_templates"]

root_doc = "index"
exclude_patterns = ["_build", "architecture.md", "execute_notebooks.py", "**.ipynb_checkpoints",
                    "notebooks/app.ipynb"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}

# ----- notebooks: rendered from the executed copies, never executed here ---------------------------
nb_execution_mode = "off"
nb_ipywidgets_js: dict[str, dict[str, str]] = {}  # its default loads a widget manager from a CDN
nb_merge_streams = True
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# ----- API reference ------------------------------------------------------------------------------
autosummary_generate = ["api.md"]  # the only page with autosummary tables; not the notebooks
autosummary_imported_members = False
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}
autodoc_typehints = "none"  # numpydoc's Parameters sections give the types
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# A public function, class, method or property without a docstring fails the build:
# _ext/docstring_check.py.

# ----- HTML: pydata-sphinx-theme, every asset on the machine ------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"labviz {release}"
html_static_path = ["_static"]
html_css_files = ["labviz.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": True,
    "secondary_sidebar_items": {"notebooks/*": []},
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_show_sourcelink = False
html_copy_source = False
