"""labviz 0.1's import paths keep working for one release, each with a warning naming its new path."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys

import pytest

import labviz
from labviz import _moved


def forget(monkeypatch, old: str) -> None:
    """Make ``labviz.<old>`` unimported again, as in a fresh interpreter."""
    monkeypatch.delitem(sys.modules, f"labviz.{old}", raising=False)
    monkeypatch.delattr(labviz, old, raising=False)


@pytest.mark.parametrize(("old", "new"), sorted(_moved.MOVED.items()))
def test_every_old_path_warns_and_gives_the_moved_module(old, new, monkeypatch):
    old_name, new_name = f"labviz.{old}", f"labviz.{new}"
    forget(monkeypatch, old)
    expected = rf"`{re.escape(old_name)}` is deprecated .* import `{re.escape(new_name)}` instead"
    with pytest.warns(DeprecationWarning, match=expected):
        module = importlib.import_module(old_name)
    assert module is importlib.import_module(new_name)


@pytest.mark.service
def test_from_import_of_an_old_module_warns_at_the_users_line():
    code = ("import warnings; warnings.simplefilter('error')\n"
            "try:\n"
            "    from labviz import training\n"
            "except DeprecationWarning as w:\n"
            "    print(w)\n"
            "import labviz.zoo.training\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ("`labviz.training` is deprecated and will be removed in labviz "
                                  "0.3; import `labviz.zoo.training` instead.")


def test_an_old_path_and_its_new_one_share_names(monkeypatch):
    forget(monkeypatch, "calibration")
    with pytest.warns(DeprecationWarning):
        from labviz.calibration import expected_calibration_error as old
    from labviz.compute.calibration import expected_calibration_error as new

    assert old is new


def test_names_that_never_existed_still_fail():
    with pytest.raises(ModuleNotFoundError, match="labviz.no_such_module"):
        importlib.import_module("labviz.no_such_module")


def test_predictions_from_zoo_is_a_deprecated_alias_of_zoo_predictions():
    from labviz import zoo

    with pytest.warns(DeprecationWarning, match=r"Predictions.from_zoo.* use `labviz.zoo.predictions"):
        p = labviz.Predictions.from_zoo("digits-ce-s0", "test", with_images=False)
    q = zoo.predictions("digits-ce-s0", "test", with_images=False)
    assert p.name == q.name
    assert (p.logits == q.logits).all() and (p.ids == q.ids).all()


def test_arch_spec_is_deprecated_and_still_answers():
    from dataclasses import asdict

    from labviz.zoo import models

    with pytest.warns(DeprecationWarning, match=r"arch_spec.* removed in labviz 0.3.*asdict"):
        spec = models.arch_spec("cnn-small")
    assert spec == asdict(models.ARCHS["cnn-small"])
