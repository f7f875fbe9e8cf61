"""environment.yml (for conda users) installs the same pinned set as pyproject.toml."""

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(project["dependencies"]) | set(project["optional-dependencies"]["test"])


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
