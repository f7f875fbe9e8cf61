"""pyproject.toml declares ranges; requirements.lock pins the tested set inside them.

environment.yml (for conda users) pins the declared packages at the lock's versions, and the
Makefile installs torch at the lock's version before the rest.
"""

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _declared():
    """Every requirement of the dependencies and of every extra; an extra may name another (labviz[...])."""
    project = _project()
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines += [line for line in extra if not line.startswith("labviz[")]
    return [Requirement(line) for line in lines]


def _locked():
    """The lock's pins, by canonical name."""
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        assert match, f"requirements.lock: {line!r} is not an exact pin"
        name = canonicalize_name(match[1])
        assert name not in pins, f"requirements.lock pins {name} twice"
        pins[name] = Version(match[2])
    return pins


def _environment_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return [Requirement(line) for line in pip if not line.startswith("-")]


def test_every_declared_dependency_is_locked_within_its_range():
    locked = _locked()
    for req in _declared():
        name = canonicalize_name(req.name)
        assert name in locked, f"{req} is declared in pyproject.toml but not in requirements.lock"
        assert req.specifier.contains(locked[name], prereleases=True), (
            f"requirements.lock pins {name}=={locked[name]}, outside the declared {req}")


def test_declared_dependencies_are_floors_without_caps():
    for req in _declared():
        operators = {spec.operator for spec in req.specifier}
        assert operators == {">="}, f"pyproject.toml: {req} should be a floor (>=) alone"


def test_environment_yml_pins_the_declared_packages_at_the_locked_versions():
    locked = _locked()
    declared = {canonicalize_name(req.name): req.extras for req in _declared()}
    pins = {canonicalize_name(req.name): req for req in _environment_pins()}
    assert pins.keys() == declared.keys()
    for name, req in pins.items():
        assert req.extras == declared[name], f"environment.yml: {req} drops or adds extras"
        assert str(req.specifier) == f"=={locked[name]}", (
            f"environment.yml pins {req}; requirements.lock has {name}=={locked[name]}")


def test_torch_pin_in_the_makefile_is_the_locked_version():
    match = re.search(r"^TORCH\s*:=\s*torch==(\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert match, "the Makefile's TORCH := torch==X.Y.Z line is missing"
    torch = _locked()["torch"]
    assert Version(match[1]) == torch
    # PyPI has no +cpu builds: the lock names the plain version, which /opt/wheels' CPU build satisfies
    assert torch.local is None


@pytest.mark.skipif(Path(sys.prefix).resolve() != (ROOT / ".venv").resolve(),
                    reason="checks the venv that `make` installs from the lock")
def test_the_venv_that_make_installs_holds_the_locked_set():
    wrong = {}
    for name, version in _locked().items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            installed = None
        if installed is None or installed.public != version.public:
            wrong[name] = (str(version), installed and str(installed))
    assert not wrong, f"(locked, installed) differ: {wrong}"


def test_distributed_is_a_user_extra_that_the_tests_install_too():
    extras = _project()["optional-dependencies"]
    assert {Requirement(line).name for line in extras["distributed"]} == {"pyarrow", "dask"}
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
