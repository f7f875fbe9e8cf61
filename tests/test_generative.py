"""The generative prior: trained only on images no classifier saw, shipped intact, loaded safely."""

import ast
import dataclasses
import json
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from labviz import zoo
from labviz.zoo import datasets, generative
from labviz.zoo.splits import source

needs_fmnist = pytest.mark.skipif(datasets.fashion_mnist_dir() is None,
                                  reason="Fashion-MNIST is not installed")

SHIPPED = generative.entry(generative.DEFAULT_NAME)
SHIPPED_PATH = zoo.zoo_dir() / SHIPPED["file"]


# ----- data ---------------------------------------------------------------------------------------
def test_unused_ids_are_the_complement_of_the_classifiers_splits():
    splits = zoo.split_indices("fashion-mnist")
    unused = generative.unused_ids()
    assert len(unused) == 60_000 - len(splits["train"]) - len(splits["val"]) == 45_000
    assert len(np.unique(unused)) == len(unused)
    assert not set(unused.tolist()) & set(splits["train"].tolist())
    assert not set(unused.tolist()) & set(splits["val"].tolist())
    together = np.concatenate([unused, splits["train"], splits["val"]])
    np.testing.assert_array_equal(np.sort(together), np.arange(60_000))


def test_split_unused_holds_back_a_seeded_disjoint_part():
    train, val = generative.split_unused(5_000, seed=0)
    assert len(val) == 5_000 and len(train) == 40_000
    assert not set(train.tolist()) & set(val.tolist())
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), generative.unused_ids())
    again, _ = generative.split_unused(5_000, seed=0)
    other, _ = generative.split_unused(5_000, seed=1)
    np.testing.assert_array_equal(train, again)
    assert not np.array_equal(train, other)


def test_split_unused_names_a_bad_val_size():
    with pytest.raises(ValueError, match="`val_size` must be <= 44999; got 45000"):
        generative.split_unused(45_000, seed=0)


def test_shipped_generator_never_saw_a_classifier_image():
    """The ids stored in the file itself, against the splits and every classifier's own record."""
    tensors = load_file(str(SHIPPED_PATH))
    seen = set(tensors["ids.train"].tolist()) | set(tensors["ids.val"].tolist())
    assert len(tensors["ids.train"]) == SHIPPED["train_size"] == 40_000
    assert len(tensors["ids.val"]) == SHIPPED["val_size"] == 5_000
    assert seen == set(generative.unused_ids().tolist())
    splits = zoo.split_indices("fashion-mnist")
    assert not seen & (set(splits["train"].tolist()) | set(splits["val"].tolist()))
    for e in zoo.read_manifest():
        if e["dataset"] == "fashion-mnist":
            trained = load_file(str(zoo.zoo_dir() / e["file"]))["labels.train_index"]
            assert not seen & set(trained.tolist()), e["name"]


# ----- the shipped file ---------------------------------------------------------------------------
def test_shipped_file_matches_its_manifest_entry():
    assert zoo.sha256_file(SHIPPED_PATH) == SHIPPED["sha256"]
    assert SHIPPED_PATH.stat().st_size == SHIPPED["bytes"] < 2_000_000
    assert SHIPPED["latent_dim"] == SHIPPED["architecture"]["latent_dim"]
    assert SHIPPED["config_key"] == generative.VAEConfig(**{
        **SHIPPED["training"], "channels": tuple(SHIPPED["training"]["channels"])}).key()
    assert SHIPPED["train_seconds"] < 600


def test_shipped_entry_is_current_so_a_build_would_keep_it(monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("build_generator retrained an up-to-date generator")

    monkeypatch.setattr(generative, "train_vae", no_training)
    assert generative.build_generator(progress=False) == SHIPPED


def test_decoder_maps_the_prior_to_images_in_the_unit_interval():
    decoder, e = generative.load_generator()
    assert not decoder.training and decoder.latent_dim == e["latent_dim"]
    images = generative.sample_images(decoder, 64, seed=0)
    assert images.shape == (64, 28, 28) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    with torch.inference_mode():
        assert decoder(torch.randn(5, decoder.latent_dim)).shape == (5, 1, 28, 28)
    # Different latents give different images: the decoder did not collapse to one output.
    assert images.std(axis=0).mean() > 0.05
    np.testing.assert_array_equal(images, generative.sample_images(decoder, 64, seed=0))


@needs_fmnist
def test_shipped_vae_reconstructs_held_out_unused_images():
    """Better than the mean image by far, and better than PCA with as many components."""
    from sklearn.decomposition import PCA

    from labviz.zoo.training import images_to_tensor

    vae, e = generative.load_vae()
    ids = load_file(str(SHIPPED_PATH))
    images = source("fashion-mnist", "train").images
    held_out = images_to_tensor(images[ids["ids.val"].numpy()])
    train = images[ids["ids.train"].numpy()[:5_000]].reshape(5_000, -1) / 255.0
    with torch.inference_mode():
        mse = float(((vae.reconstruct(held_out) - held_out) ** 2).mean())
    mean_mse = float(((held_out.flatten(1).numpy() - train.mean(axis=0)) ** 2).mean())
    pca = PCA(e["latent_dim"], random_state=0).fit(train)
    flat = held_out.flatten(1).numpy()
    pca_mse = float(((pca.inverse_transform(pca.transform(flat)) - flat) ** 2).mean())
    assert mse < 0.25 * mean_mse, (mse, mean_mse)
    assert mse < pca_mse, (mse, pca_mse)
    assert mse == pytest.approx(e["val_recon_mse"], rel=1e-3)


@pytest.mark.service
def test_zoo_does_not_import_the_generator():
    code = ("import sys, labviz.zoo, labviz.zoo.models, labviz.zoo.training, labviz.zoo.datasets; "
            "assert 'labviz.zoo.generative' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_generator_imports_only_the_data_and_training_layers():
    """No import cycle with the zoo's package, and nothing from studies, figures, widgets or the CLI."""
    tree = ast.parse(Path(generative.__file__).read_text())
    modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and n.module:  # `from m import x`: x itself if a module
            modules |= {f"{n.module}.{a.name}" if f"{n.module}.{a.name}" in sys.modules else n.module
                        for a in n.names}
    ours = {m for m in modules if m.startswith("labviz")}
    assert ours <= {"labviz.core._validation", "labviz.core.files", "labviz.zoo.splits",
                    "labviz.zoo.store", "labviz.zoo.training"}, ours


# ----- building, with a tiny generator on a tiny private data set ---------------------------------
TINY = generative.VAEConfig(latent_dim=2, channels=(2, 4), epochs=2, batch_size=32, val_size=5_000)


@pytest.fixture
def tiny_build(tmp_path, monkeypatch):
    """build_generator on 96 train and 32 held-out synthetic images, writing into ``tmp_path``."""
    train, val = generative.split_unused(5_000, seed=0)

    def small_split(val_size, seed):
        return train[:96], val[:32]

    def synthetic(ids):
        g = torch.Generator().manual_seed(int(ids[0]))
        return torch.rand(len(ids), 1, 28, 28, generator=g)

    monkeypatch.setattr(generative, "split_unused", small_split)
    monkeypatch.setattr(generative, "_images", synthetic)
    calls = []
    real = generative.train_vae

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(generative, "train_vae", counting)
    return tmp_path, calls


def test_build_is_idempotent_deterministic_and_writes_a_loadable_file(tiny_build):
    folder, calls = tiny_build
    path = folder / "tiny.safetensors"
    first = generative.build_generator(TINY, name="tiny", folder=folder, progress=False)
    first_tensors = load_file(str(path))
    assert calls == [1]
    assert generative.build_generator(TINY, name="tiny", folder=folder, progress=False) == first
    assert calls == [1]
    again = generative.build_generator(TINY, name="tiny", folder=folder, force=True, progress=False)
    assert calls == [1, 1]
    # A rebuild has bit-identical tensors. (Not always identical bytes: safetensors writes the
    # metadata's keys in hash order, so the sha256 recorded is that of the file last written.)
    again_tensors = load_file(str(path))
    assert first_tensors.keys() == again_tensors.keys()
    assert all(torch.equal(t, again_tensors[k]) for k, t in first_tensors.items())
    assert again["sha256"] == zoo.sha256_file(path)
    assert path.stat().st_mode & 0o777 == 0o644
    changed = generative.build_generator(dataclasses.replace(TINY, epochs=1),
                                         name="tiny", folder=folder, progress=False)
    assert calls == [1, 1, 1] and changed["config_key"] != first["config_key"]
    assert not torch.equal(load_file(str(path))["decoder.net.0.weight"],
                           first_tensors["decoder.net.0.weight"])
    manifest = json.loads((folder / generative.MANIFEST).read_text())
    assert [e["name"] for e in manifest] == ["tiny"]
    vae, ids = generative.load_vae_file(folder / "tiny.safetensors", sha256=changed["sha256"])
    assert vae.config["latent_dim"] == 2 and not vae.training
    assert len(ids["ids.train"]) == 96 and len(ids["ids.val"]) == 32
    assert sorted(p.name for p in folder.iterdir()) == ["generative.json", "tiny.safetensors"]


@pytest.fixture
def tiny_file(tiny_build):
    folder, _ = tiny_build
    e = generative.build_generator(TINY, name="tiny", folder=folder, progress=False)
    return folder / e["file"], e


def test_corrupt_file_fails_sha256(tiny_file):
    path, e = tiny_file
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="failed its sha256 check"):
        generative.load_vae_file(path, sha256=e["sha256"])


def test_truncated_file_is_refused(tiny_file):
    path, _ = tiny_file
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ValueError, match="not a readable safetensors generator"):
        generative.load_vae_file(path)


def test_foreign_safetensors_and_zoo_classifiers_are_refused(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(3, 3)}, str(path))
    with pytest.raises(ValueError, match="not a labviz generator \\(metadata format=None"):
        generative.load_vae_file(path)
    classifier = zoo.zoo_dir() / zoo.entry("fmnist-ce-s0")["file"]
    with pytest.raises(ValueError, match="format='labviz-checkpoint', expected 'labviz-generator'"):
        generative.load_vae_file(classifier)


def test_wrong_shapes_are_refused(tiny_file, tmp_path):
    path, _ = tiny_file
    tensors = load_file(str(path))
    tensors["decoder.net.0.weight"] = torch.zeros(7, 7)
    bad = tmp_path / "bad.safetensors"
    meta = {"format": "labviz-generator", "model": json.dumps(
        {"latent_dim": 2, "channels": [2, 4], "image_size": 28})}
    save_file(tensors, str(bad), metadata=meta)
    with pytest.raises(ValueError, match="does not match the VAE it describes.*decoder.net.0.weight"):
        generative.load_vae_file(bad)
    tensors = load_file(str(path))
    del tensors["ids.val"]
    save_file(tensors, str(bad), metadata=meta)
    with pytest.raises(ValueError, match="must hold 1-d tensors 'ids.train' and 'ids.val'"):
        generative.load_vae_file(bad)
    save_file(load_file(str(path)), str(bad), metadata={**meta, "model": "{not json"})
    with pytest.raises(ValueError, match="unknown model description"):
        generative.load_vae_file(bad)


def test_pickle_in_place_of_a_generator_is_never_executed(tiny_file, tmp_path):
    path, _ = tiny_file
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(ValueError, match="not a readable safetensors generator"):
        generative.load_vae_file(path)
    assert not marker.exists()


def test_load_through_the_manifest_verifies_sha256(tiny_file, monkeypatch):
    path, e = tiny_file
    monkeypatch.setenv("LABVIZ_ZOO_DIR", str(path.parent))
    decoder, got = generative.load_generator("tiny")
    assert got == e and decoder.latent_dim == 2
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ValueError, match="failed its sha256 check"):
        generative.load_generator("tiny")


def test_unknown_name_and_missing_manifest(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="`name` must be a generator in generative.json; got 'nope'"):
        generative.entry("nope")
    monkeypatch.setenv("LABVIZ_ZOO_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="build_generator"):
        generative.load_generator()
    (tmp_path / generative.MANIFEST).write_text(json.dumps([{"name": "x"}]))
    with pytest.raises(ValueError, match="lacks fields"):
        generative.load_generator("x")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"latent_dim": 0}, "`latent_dim` must be >= 1; got 0"),
    ({"epochs": 1.5}, "`epochs` must be an integer; got float 1.5"),
    ({"lr": -1.0}, "`lr` must be > 0; got -1.0"),
    ({"channels": (8,)}, "`channels` must be two positive ints; got (8,)"),
])
def test_config_errors_name_the_argument_and_value(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        generative.VAEConfig(**kwargs)


def test_build_refuses_a_config_of_another_type(tmp_path):
    with pytest.raises(TypeError, match="`config` must be a VAEConfig; got dict"):
        generative.build_generator({"epochs": 1}, folder=tmp_path)


def test_train_vae_names_a_bad_image_shape():
    with pytest.raises(ValueError, match=re.escape("`x` must have shape (n_images, 1, 28, 28); got (4, 28, 28)")):
        generative.train_vae(TINY, torch.zeros(4, 28, 28), progress=False)


def test_verify_names_a_missing_or_damaged_generator(tmp_path):
    e = generative.entry()
    shutil.copy(zoo.zoo_dir() / e["file"], tmp_path / e["file"])
    (tmp_path / generative.MANIFEST).write_text(json.dumps([e]))
    assert generative.verify(tmp_path) == []
    data = bytearray((tmp_path / e["file"]).read_bytes())
    data[-5] ^= 0xFF
    (tmp_path / e["file"]).write_bytes(bytes(data))
    assert generative.verify(tmp_path) == [e["name"]]
    (tmp_path / e["file"]).unlink()
    assert generative.verify(tmp_path) == [e["name"]]
