"""The zoo goes wherever labviz goes: a wheel built from this checkout carries ``data/checkpoints``,
and installed into a venv outside the checkout it loads a checkpoint's predictions.

The venv reuses this interpreter's packages through a ``.pth`` line naming its site-packages (a
folder named there is put on ``sys.path`` but its own ``.pth`` files are not run, so labviz's
editable-install finder stays off) and gets the wheel with ``--no-deps``: ``import labviz`` then
comes from the wheel. Notebook 00 takes about 50 s there, beyond this file's budget; its cells'
first step, ``zoo.predictions``, is checked here, and ``labviz zoo verify`` checks every shipped
checkpoint against its sha256 through the wheel's own command.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from labviz import zoo
from labviz.zoo import store

REPO = Path(__file__).resolve().parents[1]
NAME = "fmnist-ce-s0"
#: What the build reads: the package, the zoo it ships, and the metadata's files.
SOURCES = ("pyproject.toml", "README.md", "labviz", "data/checkpoints")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of a copy of this checkout (setuptools writes build/ and *.egg-info beside the
    sources, which other runs in the checkout would trip over), built offline with this
    interpreter's setuptools."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir",
                    str(root / "dist"), str(source)], check=True, capture_output=True)
    (built,) = (root / "dist").glob("labviz-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv outside the checkout holding the wheel, on this interpreter's dependencies."""
    folder = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    (purelib,) = folder.glob("lib/python*/site-packages")
    (purelib / "reuse_running_env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(folder / "bin" / "python"),
                    "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True)
    return folder


def _outside_env(tmp: Path) -> dict[str, str]:
    """This environment without what points labviz at the checkout, and with an empty cache."""
    env = {k: v for k, v in os.environ.items() if k not in (store.ZOO_DIR_ENV, "PYTHONPATH")}
    env["LABVIZ_CACHE_DIR"] = str(tmp / "cache")
    return env


PROBE = f"""
import json, sys
import numpy as np
import labviz
from labviz import zoo
p = zoo.predictions({NAME!r}, "test")
print(json.dumps({{
    "labviz": labviz.__file__,
    "zoo_dir": str(zoo.zoo_dir()),
    "editable_finders": [f.__module__ for f in sys.meta_path if "__editable__" in f.__module__],
    "shape": list(np.shape(p.logits)),
    "n_labels": int(np.size(p.y_true)),
    "accuracy": float(np.mean(np.asarray(p.y_pred) == np.asarray(p.y_true))),
}}))
"""


def test_the_wheel_holds_every_package_and_the_whole_zoo(wheel):
    members = zipfile.ZipFile(wheel).namelist()
    packaged = {Path(m).parent.as_posix().replace("/", ".") for m in members if m.endswith("/__init__.py")}
    in_tree = {p.parent.relative_to(REPO).as_posix().replace("/", ".")
               for p in (REPO / "labviz").rglob("__init__.py")}
    assert packaged == in_tree
    shipped = {Path(m).name for m in members if m.startswith("labviz/zoo/checkpoints/")}
    assert shipped == {p.name for p in store.CHECKOUT_DIR.iterdir() if p.suffix in (".safetensors", ".json")}


def test_an_installed_wheel_loads_predictions_from_its_own_zoo(venv, tmp_path):
    run = subprocess.run([str(venv / "bin" / "python"), "-c", PROBE], cwd=tmp_path,
                         env=_outside_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(seen["labviz"]).is_relative_to(venv)
    assert seen["editable_finders"] == []
    assert Path(seen["zoo_dir"]) == Path(seen["labviz"]).parent / "zoo" / "checkpoints"
    entry = zoo.entry(NAME)
    assert seen["shape"] == [seen["n_labels"], 10]
    assert seen["accuracy"] == pytest.approx(entry["test_accuracy"], abs=1e-4)


def test_the_wheels_command_verifies_every_shipped_checkpoint(venv, tmp_path):
    run = subprocess.run([str(venv / "bin" / "labviz"), "zoo", "verify"], cwd=tmp_path,
                         env=_outside_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "all checkpoints match their sha256" in run.stdout


@pytest.mark.unit
def test_zoo_dir_prefers_the_variable_then_the_packaged_zoo_then_the_checkout(tmp_path, monkeypatch):
    packaged, checkout = tmp_path / "site" / "checkpoints", tmp_path / "repo" / "data" / "checkpoints"
    monkeypatch.setattr(store, "PACKAGED_DIR", packaged)
    monkeypatch.setattr(store, "CHECKOUT_DIR", checkout)
    monkeypatch.delenv(store.ZOO_DIR_ENV, raising=False)
    assert store.zoo_dir() == packaged  # neither holds a zoo, and no pyproject.toml: not a checkout
    (tmp_path / "repo" / "pyproject.toml").parent.mkdir(parents=True)
    (tmp_path / "repo" / "pyproject.toml").touch()
    assert store.zoo_dir() == checkout  # in a checkout, a new zoo is built into data/checkpoints
    for folder in (checkout, packaged):
        folder.mkdir(parents=True)
        (folder / store.MANIFEST).write_text("[]")
        assert store.zoo_dir() == folder
    monkeypatch.setenv(store.ZOO_DIR_ENV, str(tmp_path / "mine"))
    assert store.zoo_dir() == tmp_path / "mine"


@pytest.mark.unit
def test_a_missing_zoo_names_every_place_looked_in(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "PACKAGED_DIR", tmp_path / "site" / "checkpoints")
    monkeypatch.setattr(store, "CHECKOUT_DIR", tmp_path / "repo" / "data" / "checkpoints")
    monkeypatch.delenv(store.ZOO_DIR_ENV, raising=False)
    with pytest.raises(FileNotFoundError) as raised:
        zoo.names()
    message = str(raised.value)
    for place in ("$LABVIZ_ZOO_DIR (unset)", str(store.PACKAGED_DIR), str(store.CHECKOUT_DIR),
                  "labviz zoo build"):
        assert place in message
    monkeypatch.setenv(store.ZOO_DIR_ENV, str(tmp_path / "mine"))
    with pytest.raises(FileNotFoundError, match=r"looked in \$LABVIZ_ZOO_DIR=.*mine\)"):
        zoo.read_manifest()
