"""``import labviz`` gives its subpackages, the compute modules the README names and the figures'
displays as attributes, imported on first use (PEP 562), and stays light."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import labviz
import labviz.compute
import labviz.figures

FIGURES = Path(labviz.figures.__file__).parent


@pytest.mark.parametrize(("name", "path"), sorted(labviz.SUBMODULES.items()))
def test_each_shortcut_is_its_module(name, path):
    assert getattr(labviz, name) is importlib.import_module(path)
    assert name in dir(labviz) and name in labviz.__all__


def test_the_readme_s_modules_without_importing_them():
    code = ("import sys, labviz\n"
            "heavy = [m for m in ('plotly', 'asyncio', 'labviz.compute.calibration') if m in sys.modules]\n"
            "print(heavy, labviz.calibration.__name__, labviz.compute.confusion.__name__,\n"
            "      labviz.export.__module__, labviz.figures.ConfusionDisplay.__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "labviz.compute.calibration", "labviz.compute.confusion",
                                  "labviz.figures.export", "ConfusionDisplay"]


def test_from_labviz_import_a_shortcut_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from labviz import calibration, label_quality

    assert calibration.__name__ == "labviz.compute.calibration"
    assert label_quality.__name__ == "labviz.compute.label_quality"


def test_functions_are_the_figures_ones():
    from labviz.figures.export import export
    from labviz.figures.html_report import write_report

    assert labviz.export is export and labviz.write_report is write_report


@pytest.mark.parametrize("module", [labviz, labviz.compute, labviz.figures])
def test_unknown_names_still_raise_attribute_error(module):
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        module.no_such_name  # noqa: B018


def test_every_compute_module_is_an_attribute_of_compute():
    on_disk = {p.stem for p in Path(labviz.compute.__file__).parent.glob("[!_]*.py")}
    assert set(labviz.compute.MODULES) == on_disk
    assert labviz.compute.calibration is importlib.import_module("labviz.compute.calibration")


def test_figures_export_every_display_it_defines():
    defined = {node.name: path.stem for path in FIGURES.glob("[!_]*.py")
               for node in ast.parse(path.read_text()).body
               if isinstance(node, ast.ClassDef) and node.name.endswith("Display")}
    exported = {k: m for k, m in labviz.figures.EXPORTS.items() if k.endswith("Display")}
    assert exported == defined
    for name in labviz.figures.__all__:
        assert getattr(labviz.figures, name).__name__ == name
