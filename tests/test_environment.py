"""environment.yml (for conda users) installs the same pinned set as pyproject.toml."""

import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _pyproject_pins():
    """Every pin of the dependencies and of every extra; an extra may name another (labviz[...])."""
    project = _project()
    pins = set(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        pins |= {pin for pin in extra if not pin.startswith("labviz[")}
    return pins


def _environment_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {line for line in pip if not line.startswith("-")}


def test_environment_yml_matches_pyproject():
    assert _environment_pins() == _pyproject_pins()


def test_every_dependency_is_pinned_exactly():
    assert all("==" in pin for pin in _pyproject_pins())


def test_torch_pin_matches_makefile():
    makefile = (ROOT / "Makefile").read_text()
    assert "torch==2.13.0" in makefile and "torch==2.13.0" in _pyproject_pins()


def test_distributed_is_a_user_extra_that_the_tests_install_too():
    extras = _project()["optional-dependencies"]
    assert {"pyarrow==26.0.1", "dask[dataframe,distributed]==2026.8.0"} == set(extras["distributed"])
    assert "labviz[distributed]" in extras["test"]


@pytest.mark.parametrize("missing", ["dask", "pyarrow"])
def test_without_the_distributed_extra_the_error_names_it(missing, monkeypatch, tmp_path):
    import numpy as np

    from labviz.compute import distributed

    for name in [m for m in sys.modules if m == missing or m.startswith(missing + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, missing, None)  # what an absent package looks like to import
    probs = np.full((4, 2), 0.5)
    with pytest.raises(ImportError, match=rf"needs '{missing}', which is not installed; .*"
                                          r"pip install 'labviz\[distributed\]'"):
        if missing == "pyarrow":
            distributed.write_parquet(tmp_path / "p", y_true=[0, 1, 0, 1], probs=probs)
        else:
            distributed.calibration_from_dask(object(), label_col="y_true",
                                              prob_cols=distributed.prob_columns(2))
