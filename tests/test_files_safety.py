"""Files: labviz never runs code from a file, never uses a damaged one, never loses or clobbers data.

Checkpoints (complementing ``tests/test_zoo.py``, which covers sha256 mismatch, truncation, a
foreign safetensors file, other shapes and a pickle in place of a checkpoint): a header that
claims terabytes, an unknown architecture, and a source scan proving that ``torch.load`` is never
called without ``weights_only=True`` and ``np.load`` never with pickles allowed.

Caches (``labviz.core.cache``): a crafted pickle, an object-dtype ``.npy`` and an ``.npz`` holding an
object array placed as an "activations" entry are never executed and are rebuilt; a failure in
the middle of a write leaves the old entry intact and no temporary file behind; every single-bit
flip and every truncation of an entry is either harmless or detected and rebuilt; two processes
writing and reading one key many times always read a complete entry; ``labviz cache info`` and
``labviz cache clear`` work and clear leaves the user's files alone.

User data: ``Predictions.to_npz`` never overwrites an existing file unless asked.

Manifests and whole-file writes (``labviz.core.files``): a damaged manifest or a file that fails its
sha256 is refused with a message naming the file and what is wrong; a failed write leaves the old
file and no temporary file.
"""

from __future__ import annotations

import ast
import json
import multiprocessing
import pickle
import re
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest

import labviz
from labviz import cli
from labviz.core import cache
from labviz.core.predictions import Predictions

PACKAGE = Path(labviz.__file__).parent


class _Exploit:
    """Unpickling this creates ``marker``: proof that code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _entry(name: str = "k") -> Path:
    return cache.cache_dir() / "activations" / f"{name}.npz"


def _good_arrays(tag: float = 1.0) -> dict[str, np.ndarray]:
    return {"logits": np.full((5, 3), tag), "y_true": np.arange(5)}


# ----- the package's source ---------------------------------------------------------------------
def _calls(func_name: str, module_names: set[str]):
    """Every call ``<module>.<func_name>(...)`` in the package, as (file, line, keywords)."""
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == func_name and isinstance(node.func.value, ast.Name)
                    and node.func.value.id in module_names):
                yield path.name, node.lineno, {k.arg: k.value for k in node.keywords}


def test_torch_load_is_never_called_without_weights_only():
    for name, line, kw in _calls("load", {"torch"}):
        value = kw.get("weights_only")
        assert isinstance(value, ast.Constant) and value.value is True, f"{name}:{line}"


def test_np_load_never_allows_pickles():
    found = list(_calls("load", {"np", "numpy"}))
    assert found, "expected labviz.core.cache to read arrays with np.load"
    for name, line, kw in found:
        value = kw.get("allow_pickle")
        assert isinstance(value, ast.Constant) and value.value is False, f"{name}:{line}"


def test_the_package_never_imports_pickle_or_evaluates_strings():
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                assert not {"pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"} & set(mods), path.name
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in ("eval", "exec"), f"{path.name}:{node.lineno}"


# ----- checkpoints --------------------------------------------------------------------------------
def test_checkpoint_header_claiming_terabytes_is_refused(tmp_path):
    from labviz import zoo

    path = tmp_path / "huge.safetensors"
    path.write_bytes(struct.pack("<Q", 1 << 42) + b"{}")
    with pytest.raises(ValueError, match="not a readable safetensors checkpoint"):
        zoo.load_checkpoint(path)


def test_checkpoint_with_unknown_architecture_is_refused(tmp_path):
    import torch
    from safetensors.torch import save_file

    from labviz import zoo

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={
        "format": "labviz-checkpoint", "model": json.dumps({"arch": "resnet9000"})})
    with pytest.raises(ValueError, match="has an unknown model description"):
        zoo.load_checkpoint(path)


def test_missing_checkpoint_file_is_a_clear_error(tmp_path):
    from labviz import zoo

    with pytest.raises(FileNotFoundError, match="does not exist"):
        zoo.load_checkpoint(tmp_path / "nope.safetensors")


# ----- poisoned cache entries ---------------------------------------------------------------------
def _poison_pickle(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps({"logits": _Exploit(marker)}))


def _poison_object_npy(path: Path, marker: Path) -> None:
    with open(path, "wb") as fh:  # a bare .npy (not a zip) whose payload is a pickle
        np.save(fh, np.array([_Exploit(marker)], dtype=object), allow_pickle=True)


def _poison_object_member(path: Path, marker: Path) -> None:
    with open(path, "wb") as fh:  # a valid .npz whose "logits" member is an object array
        np.savez(fh, logits=np.array([_Exploit(marker)], dtype=object), y_true=np.arange(5))


def _poison_plain_npy(path: Path, marker: Path) -> None:
    with open(path, "wb") as fh:  # a harmless .npy where an .npz belongs
        np.save(fh, np.arange(5))


POISONS = {
    "pickle": _poison_pickle,
    "object-npy": _poison_object_npy,
    "object-member": _poison_object_member,
    "plain-npy": _poison_plain_npy,  # np.load gives an ndarray, not an archive
}


@pytest.mark.parametrize("poison", list(POISONS.values()), ids=list(POISONS))
def test_poisoned_cache_entry_is_never_executed_and_is_rebuilt(poison, tmp_path):
    marker = tmp_path / "pwned"
    path = _entry()
    path.parent.mkdir(parents=True, exist_ok=True)
    poison(path, marker)
    builds = []

    def build():
        builds.append(1)
        return _good_arrays()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = cache.cached_arrays("activations", "k", build, required=("logits", "y_true"))
    assert not marker.exists()
    assert any("Rebuilding a damaged cache entry" in str(w.message) for w in caught)
    assert builds == [1]
    np.testing.assert_array_equal(got["logits"], _good_arrays()["logits"])
    # the damaged file was replaced by a good entry
    reread = cache.read_npz(path, ("logits", "y_true"))
    np.testing.assert_array_equal(reread["logits"], _good_arrays()["logits"])


def test_poisoned_activation_cache_of_a_zoo_checkpoint_is_rebuilt(tmp_path):
    from labviz import zoo

    name = "digits-ce-s0"
    if name not in zoo.names():
        pytest.skip(f"{name} is not in the zoo at {zoo.zoo_dir()} yet")
    entry = zoo.entry(name)
    marker = tmp_path / "pwned"
    path = cache.cache_dir() / "activations" / f"{entry['sha256'][:32]}-test.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    _poison_pickle(path, marker)
    with pytest.warns(UserWarning, match="Rebuilding a damaged cache entry"):
        p = zoo.predictions(name, "test", with_images=False)
    assert not marker.exists()
    assert p.n_samples == 450 and p.accuracy == pytest.approx(entry["test_accuracy"], abs=1e-6)
    again = zoo.predictions(name, "test", with_images=False)  # now a clean hit
    np.testing.assert_array_equal(again.logits, p.logits)


def test_from_npz_refuses_object_arrays_without_running_them(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "preds.npz"
    with open(path, "wb") as fh:
        np.savez(fh, y_true=np.array([0, 1]), logits=np.array([_Exploit(marker)], dtype=object))
    with pytest.raises(ValueError, match="not a readable labviz array file"):
        Predictions.from_npz(path)
    assert not marker.exists()


# ----- damaged cache entries ----------------------------------------------------------------------
def _written_entry() -> tuple[Path, bytes, dict[str, np.ndarray]]:
    arrays = {"a": np.arange(12, dtype=np.float64), "b": np.array([7, 8, 9])}
    path = cache.cache_dir() / "activations" / "flip.npz"
    cache.atomic_write_npz(path, arrays)
    return path, path.read_bytes(), arrays


def _read_or_refuse(path: Path, arrays: dict[str, np.ndarray]) -> str:
    """'same' if the entry reads back exactly, 'refused' if read_npz raises ValueError."""
    try:
        got = cache.read_npz(path, tuple(arrays))
    except ValueError:
        return "refused"
    same = set(got) == set(arrays) and all(
        got[k].dtype == arrays[k].dtype and np.array_equal(got[k], arrays[k]) for k in arrays)
    assert same, f"a damaged entry was read as {got}"
    return "same"


def test_every_truncation_of_an_entry_is_refused():
    path, data, arrays = _written_entry()
    for n in range(len(data)):
        path.write_bytes(data[:n])
        assert _read_or_refuse(path, arrays) == "refused", n


def test_bit_flips_in_the_data_are_detected_never_used():
    path, data, arrays = _written_entry()
    outcomes = set()
    for i in range(len(data)):
        for bit in (0, 7):
            flipped = bytearray(data)
            flipped[i] ^= 1 << bit
            path.write_bytes(bytes(flipped))
            outcomes.add(_read_or_refuse(path, arrays))
    assert outcomes == {"same", "refused"}


# zipfile raises NotImplementedError ("compression method is not supported") or RuntimeError
# ("File is encrypted") for these flips: read_npz must turn them into a refusal too.
@pytest.mark.parametrize("field", ["compression", "flags"])
def test_flipped_zip_header_fields_are_refused(field):
    path, data, arrays = _written_entry()
    # the first central-directory record: general-purpose flags at +8, compression method at +10
    record = data.find(b"PK\x01\x02")
    assert record > 0
    flipped = bytearray(data)
    flipped[record + {"flags": 8, "compression": 10}[field]] ^= 0x01
    path.write_bytes(bytes(flipped))
    assert _read_or_refuse(path, arrays) == "refused"


def test_entry_missing_a_required_array_is_rebuilt():
    path = cache.cache_dir() / "activations" / "partial.npz"
    cache.atomic_write_npz(path, {"logits": np.zeros((5, 3))})
    with pytest.warns(UserWarning, match=r"lacks the arrays \['y_true'\]"):
        got = cache.cached_arrays("activations", "partial", _good_arrays, required=("logits", "y_true"))
    assert set(got) == {"logits", "y_true"}
    assert set(cache.read_npz(path)) == {"logits", "y_true"}


# ----- atomic writes ------------------------------------------------------------------------------
def test_failure_mid_write_keeps_the_old_entry(monkeypatch):
    path = cache.cache_dir() / "activations" / "k.npz"
    cache.atomic_write_npz(path, _good_arrays(1.0))
    before = path.read_bytes()
    real_savez = np.savez

    def savez_then_crash(file, **arrays):
        real_savez(file, **arrays)  # a complete payload went to the temporary file...
        file.seek(0)
        file.truncate(100)  # ...is half lost...
        raise OSError("disk full")  # ...and the write fails

    monkeypatch.setattr(np, "savez", savez_then_crash)
    with pytest.raises(OSError, match="disk full"):
        cache.atomic_write_npz(path, _good_arrays(2.0))
    monkeypatch.undo()
    assert path.read_bytes() == before
    np.testing.assert_array_equal(cache.read_npz(path)["logits"], _good_arrays(1.0)["logits"])
    assert sorted(p.name for p in path.parent.iterdir()) == ["k.npz"]  # no temporary file left


def test_failing_build_stores_nothing():
    def build():
        raise RuntimeError("model crashed")

    with pytest.raises(RuntimeError, match="model crashed"):
        cache.cached_arrays("activations", "never", build)
    assert not (cache.cache_dir() / "activations" / "never.npz").exists()


# ----- two kernels sharing the cache ---------------------------------------------------------------
def _hammer(cache_root: str, key: str, tag: int, rounds: int) -> int:
    """Write and read one key ``rounds`` times; return the number of incomplete reads."""
    import os

    os.environ["LABVIZ_CACHE_DIR"] = cache_root
    warnings.simplefilter("error")  # a "damaged entry" warning means a torn read: fail loudly
    from labviz.core import cache as c

    path = c.cache_dir() / "activations" / f"{key}.npz"
    bad = 0
    for i in range(rounds):
        value = tag * 100_000 + i
        # big enough that a write takes several syscalls, so a torn read would show
        c.atomic_write_npz(path, {"a": np.full(20_000, value), "b": np.full(20_000, value)})
        got = c.read_npz(path, ("a", "b"))
        a, b = got["a"], got["b"]
        if not (len(a) == len(b) == 20_000 and a[0] == b[0] and np.all(a == a[0]) and np.all(b == b[0])):
            bad += 1
        built = c.cached_arrays("activations", key, lambda: {"a": np.zeros(20_000), "b": np.zeros(20_000)},
                                required=("a", "b"))
        if not np.array_equal(built["a"], built["b"]):
            bad += 1
    return bad


@pytest.mark.service
def test_two_processes_sharing_a_key_never_see_a_torn_entry():
    root = str(cache.cache_dir())
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter, like a second kernel
    with ctx.Pool(2) as pool:  # an exception in a worker (e.g. an unreadable entry) fails the test
        bad = pool.starmap(_hammer, [(root, "shared", 1, 150), (root, "shared", 2, 150)])
    assert bad == [0, 0]
    leftovers = [p.name for p in (cache.cache_dir() / "activations").iterdir() if p.name != "shared.npz"]
    assert leftovers == []


# ----- the CLI ------------------------------------------------------------------------------------
def test_cache_info_reports_namespaces(capsys):
    cache.atomic_write_npz(cache.cache_dir() / "activations" / "a.npz", _good_arrays())
    cache.atomic_write_npz(cache.cache_dir() / "projections" / "b.npz", {"embedding": np.zeros((4, 2))})
    assert cli.main(["cache", "info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["path"] == str(cache.cache_dir())
    assert info["namespaces"]["activations"]["entries"] == 1
    assert info["namespaces"]["projections"]["entries"] == 1
    assert info["namespaces"]["activations"]["bytes"] == (cache.cache_dir() / "activations" / "a.npz").stat().st_size


def test_cache_clear_removes_entries_but_not_the_users_files(capsys):
    root = cache.cache_dir()
    cache.atomic_write_npz(root / "activations" / "a.npz", _good_arrays())
    cache.atomic_write_npz(root / "projections" / "b.npz", {"embedding": np.zeros((4, 2))})
    mine = root / "my_notes.txt"
    mine.write_text("keep me")
    assert cli.main(["cache", "clear"]) == 0
    assert "removed 2 cache entries" in capsys.readouterr().out
    assert mine.read_text() == "keep me"
    assert not list(root.rglob("*.npz"))
    assert cli.main(["cache", "info"]) == 0
    assert json.loads(capsys.readouterr().out)["namespaces"] == {}


def test_cache_clear_spares_user_folders_and_foreign_files():
    root = cache.cache_dir()
    cache.atomic_write_npz(root / "activations" / "a.npz", _good_arrays())
    (root / "activations" / "README.txt").write_text("mine")
    (root / "my_results").mkdir()
    (root / "my_results" / "table.csv").write_text("a,b\n1,2\n")
    (root / "my_results" / "data.npz").write_bytes(b"user data")  # .npz outside a namespace
    cli.main(["cache", "clear"])
    assert (root / "my_results" / "table.csv").exists()
    assert (root / "my_results" / "data.npz").read_bytes() == b"user data"
    assert (root / "activations" / "README.txt").exists()
    assert not (root / "activations" / "a.npz").exists()


def test_cache_clear_removes_stale_temporary_files_only():
    import os
    import time

    folder = cache.cache_dir() / "projections"
    folder.mkdir(parents=True)
    stale, fresh = folder / ".x.npz.abc.tmp", folder / ".y.npz.def.tmp"
    stale.write_bytes(b"left by a crashed write")
    fresh.write_bytes(b"a write in progress")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    assert cache.clear_cache() == 0  # temporary files are not entries
    assert not stale.exists() and fresh.exists()


def test_every_cache_namespace_in_the_package_is_known_to_clear_cache():
    used = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None))
                    == "cached_arrays" and node.args):
                first = node.args[0]
                assert isinstance(first, ast.Constant), f"{path.name}:{node.lineno}: namespace not a literal"
                used.add(first.value)
    assert used and used <= set(cache.NAMESPACES), sorted(used - set(cache.NAMESPACES))


# ----- user data ----------------------------------------------------------------------------------
def _small_predictions() -> Predictions:
    return Predictions.from_arrays(y_true=[0, 1, 1], logits=[[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]],
                                   features=[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], name="mine")


def test_to_npz_never_overwrites_an_existing_file(tmp_path):
    path = tmp_path / "results.npz"
    path.write_bytes(b"the user's thesis data")
    with pytest.raises(FileExistsError, match="exists; pass overwrite=True"):
        _small_predictions().to_npz(path)
    assert path.read_bytes() == b"the user's thesis data"


def test_to_npz_overwrites_only_when_asked_and_round_trips(tmp_path):
    path = tmp_path / "results.npz"
    path.write_bytes(b"old")
    p = _small_predictions()
    assert p.to_npz(path, overwrite=True) == path
    q = Predictions.from_npz(path)
    np.testing.assert_array_equal(q.logits, p.logits)
    np.testing.assert_array_equal(q.features, p.features)
    assert q.name == "mine" and q.class_names == p.class_names
    assert sorted(x.name for x in tmp_path.iterdir()) == ["results.npz"]  # no temporary file left


def test_to_npz_refuses_a_directory_and_keeps_it(tmp_path):
    folder = tmp_path / "results.npz"
    folder.mkdir()
    (folder / "inside.txt").write_text("keep")
    with pytest.raises(FileExistsError):
        _small_predictions().to_npz(folder)
    assert (folder / "inside.txt").read_text() == "keep"


# ----- manifests and whole-file writes ------------------------------------------------------------
_MANIFEST_OPTIONS = {"required": ("name", "file", "sha256"), "kind": "zoo",
                     "build_hint": "build it with `make zoo`"}


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", r"m\.json is not valid JSON"),
    ('{"name": "a"}', r"m\.json must hold a JSON list of entries; got dict"),
    ("[1, 2]", r"m\.json must hold a JSON list of entries; got list"),
    ('[{"name": "a", "file": "a.bin"}]', r"Zoo manifest entry 'a' in .*m\.json lacks fields \['sha256'\]"),
], ids=["not-json", "not-a-list", "not-entries", "missing-field"])
def test_a_damaged_manifest_is_refused_naming_the_problem(tmp_path, text, message):
    from labviz.core import files

    path = tmp_path / "m.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        files.read_manifest(path, **_MANIFEST_OPTIONS)


def test_a_missing_manifest_says_how_to_build_it(tmp_path):
    from labviz.core import files

    path = tmp_path / "m.json"
    with pytest.raises(FileNotFoundError, match=re.escape(f"No zoo manifest at {path}; build it with `make zoo`.")):
        files.read_manifest(path, **_MANIFEST_OPTIONS)


def test_a_manifest_is_written_sorted_readable_by_all_and_verified(tmp_path):
    import hashlib

    from labviz.core import files

    (tmp_path / "a.bin").write_bytes(b"ay")
    (tmp_path / "b.bin").write_bytes(b"bee")
    entries = [{"name": "b", "file": "b.bin", "sha256": files.sha256_file(tmp_path / "b.bin")},
               {"name": "a", "file": "a.bin", "sha256": hashlib.sha256(b"ay").hexdigest()}]
    files.write_manifest(tmp_path / "m.json", entries)
    got = files.read_manifest(tmp_path / "m.json", **_MANIFEST_OPTIONS)
    assert [e["name"] for e in got] == ["a", "b"]
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o644
    assert files.verify_entries(tmp_path, got) == []
    (tmp_path / "a.bin").write_bytes(b"changed")
    (tmp_path / "b.bin").unlink()
    assert files.verify_entries(tmp_path, got) == ["a", "b"]


def test_a_file_failing_its_sha256_is_named_with_both_hashes(tmp_path):
    import hashlib

    from labviz.core import files

    path = tmp_path / "w.bin"
    path.write_bytes(b"weights")
    seen = hashlib.sha256(b"weights").hexdigest()
    files.check_sha256(path, seen, rebuild="`make zoo`")  # a match passes silently
    expected = "0" * 64
    with pytest.raises(ValueError, match=re.escape(
            f"{path} failed its sha256 check: expected {expected}, got {seen}. The file is corrupt "
            "or was replaced; rebuild it with `make zoo`.")):
        files.check_sha256(path, expected, rebuild="`make zoo`")


def test_a_failed_whole_file_write_keeps_the_old_file(tmp_path):
    from labviz.core import files

    path = tmp_path / "f.bin"
    files.atomic_write_bytes(path, b"old")

    def half_then_fail(fh):
        fh.write(b"ne")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        files.atomic_write(path, half_then_fail)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]  # no temporary file left


def test_written_files_get_the_mode_asked_for(tmp_path):
    import os

    from labviz.core import files

    files.atomic_write_bytes(tmp_path / "shipped", b"x")
    cache.atomic_write_npz(tmp_path / "entry.npz", _good_arrays())
    old = os.umask(0o027)
    try:
        files.atomic_write_bytes(tmp_path / "exported", b"x", mode=None)
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == {"shipped": 0o644, "entry.npz": 0o600, "exported": 0o640}
