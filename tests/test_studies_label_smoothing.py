"""labviz.studies.label_smoothing: the measurements of notebook 01 on a fake zoo."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import patch_studies

from labviz import Predictions, studies, zoo
from labviz.compute.calibration import expected_calibration_error
from labviz.compute.collapse import plane_tightness, template_span_share
from labviz.studies import FASHION


@pytest.fixture
def fake_zoo(monkeypatch, rng):
    """CE and LS checkpoints of two seeds, an LS grid, and transfer-set students, all synthetic."""
    entries, preds = {}, {}
    w = rng.normal(size=(10, 8))

    def add(name, family, seed, alpha=0.0, sharp=2.0, **extra):
        entries[name] = {"name": name, "family": family, "seed": seed, "alpha": alpha, "dataset": "fake",
                         "loss": "ls" if alpha else "ce", "arch": "cnn", "noise_rate": 0.0, "epoch": 1,
                         "epochs_total": 1, "teacher": None, "temperature": None, **extra}
        for split in ("train", "val", "test"):
            y = rng.integers(0, 10, size=400)
            feats = w[y] * 3 + rng.normal(size=(400, 8))
            z = sharp * feats @ w.T / 4
            preds[(name, split)] = Predictions.from_arrays(y_true=y, logits=z, features=feats, weights=w,
                                                           name=f"{name} [{split}]")

    for s in (0, 1):
        add(f"ce-s{s}", "ce", s, sharp=3.0)
        for a, sharp in ((0.005, 3.2), (0.01, 3.0), (0.02, 2.5), (0.05, 1.5), (0.1, 1.0)):
            add(f"ls{a}-s{s}", "ls0.1" if a == 0.1 else "ls-grid", s, alpha=a, sharp=sharp)
        add(f"tstudent-s{s}", "tstudent", s, val_accuracy=0.70 + s / 100, test_accuracy=0.71 + s / 100)
        for t in (1.0, 4.0):
            for kind in ("ce", "ls"):
                add(f"tkd-{kind}-T{t:g}-s{s}", f"tkd-{kind}", s, val_accuracy=0.8, test_accuracy=0.8 + t / 100,
                    teacher=f"{'ce' if kind == 'ce' else 'ls0.1'}-s{s}", temperature=t)
    for name in list(entries):
        if entries[name]["teacher"]:
            entries[entries[name]["teacher"]]["test_accuracy"] = 0.9

    monkeypatch.setattr(zoo, "predictions", lambda name, split="test", *, with_images=True: preds[(name, split)])
    patch_studies(monkeypatch, "members", lambda family, dataset="fake": sorted(
        n for n, e in entries.items() if e["family"] == family))
    monkeypatch.setattr(zoo, "entry", lambda name: entries[name])
    monkeypatch.setattr(zoo, "read_manifest", lambda folder=None: list(entries.values()))
    return entries, preds


def test_tightness_table_measures_each_checkpoint_in_both_spaces(fake_zoo):
    _, preds = fake_zoo
    t = studies.tightness_table(["ce", "ls0.1"], dataset="fake", triples={"a": (0, 1, 2)}, splits=("train",))
    assert len(t) == 4 and set(t.columns) >= {"plane_a", "intra", "span_share", "wrong_spread"}
    row = t.set_index("name").loc["ce-s0"]
    p = preds[("ce-s0", "train")]
    assert row.plane_a == pytest.approx(plane_tightness(p.features, p.y_true, p.weights, (0, 1, 2)))
    assert row.span_share == pytest.approx(template_span_share(p.features, p.y_true, p.weights))


def test_ls_grid_finds_seeds_with_every_alpha_whatever_their_family(fake_zoo):
    assert zoo.LS_GRID_ALPHAS == (0.005, 0.01, 0.02, 0.05, 0.1)  # the default, fixed in advance
    grid = studies.ls_grid("fake")
    assert grid == {s: {a: f"ls{a}-s{s}" for a in zoo.LS_GRID_ALPHAS} for s in (0, 1)}
    assert studies.ls_grid("fake", alphas=(0.02, 0.1)) == {s: {0.02: f"ls0.02-s{s}", 0.1: f"ls0.1-s{s}"}
                                                           for s in (0, 1)}
    assert studies.ls_grid("fake", alphas=(0.02, 0.3)) == {}


def test_tuned_ls_table_chooses_alpha_on_validation_ece_only(fake_zoo):
    _, preds = fake_zoo
    t = studies.tuned_ls_table("fake").set_index("seed")
    for s in (0, 1):
        val = {a: expected_calibration_error(preds[(f"ls{a}-s{s}", "val")].y_true,
                                             preds[(f"ls{a}-s{s}", "val")].probs, n_bins=15)
               for a in zoo.LS_GRID_ALPHAS}
        best = min(val, key=val.get)
        assert t.at[s, "alpha"] == best and t.at[s, "val_ece_by_alpha"] == pytest.approx(val)
        test = preds[(f"ls{best}-s{s}", "test")]
        assert t.at[s, "ece_ls"] == pytest.approx(expected_calibration_error(test.y_true, test.probs, n_bins=15))
        assert t.at[s, "ece_ce_ts"] < t.at[s, "ece_ce"]  # temperature scaling of an over-sharp CE helps


def test_transfer_distillation_table_pairs_students_by_seed(fake_zoo):
    t = studies.transfer_distillation_table("fake")
    assert len(t) == 2 * (1 + 2 * 2)
    assert set(t.teacher_kind) == {"none", "ce", "ls"}
    assert t[t.teacher_kind == "none"].temperature.isna().all()
    assert sorted(t[t.family == "tkd-ls"].temperature.unique()) == [1.0, 4.0]
    assert (t[t.teacher_kind != "none"].teacher_test_accuracy == 0.9).all()


def test_soft_target_table_measures_wrong_class_mass_and_its_uniformity(monkeypatch):
    z = np.array([[5.0, 1.0, 1.0, 1.0], [0.0, 6.0, 3.0, 0.0]])
    p = Predictions.from_arrays(y_true=[0, 1], logits=z, name="t")
    monkeypatch.setattr(zoo, "predictions", lambda *a, **k: p)
    monkeypatch.setattr(zoo, "entry", lambda name: {"family": "ce", "seed": 0})
    t = studies.soft_target_table(["t"], temperatures=(1.0, 2.0)).set_index("temperature")
    for temp in (1.0, 2.0):
        q = np.exp(z / temp) / np.exp(z / temp).sum(axis=1, keepdims=True)
        wrong = [q[0, 1:], q[1, [0, 2, 3]]]
        mass = [w.sum() for w in wrong]
        ent = [-(w / m * np.log(w / m)).sum() / np.log(3) for w, m in zip(wrong, mass, strict=True)]
        assert t.at[temp, "wrong_mass"] == pytest.approx(np.mean(mass))
        assert t.at[temp, "wrong_uniformity"] == pytest.approx(np.mean(ent))
    assert t.at[2.0, "wrong_mass"] > t.at[1.0, "wrong_mass"]  # a higher T hands over more
    # the first sample's wrong classes tie: perfectly uniform
    assert pd.Series(t.wrong_uniformity).between(0, 1).all()


# ----- confidence gaps ---------------------------------------------------------------------------
# Two checkpoints of one family on three test samples, with hand-worked confidences.
# "a": probabilities (0.8, 0.2), (0.6, 0.4), (0.3, 0.7) on labels 0, 0, 0 -> 2/3 correct,
#      mean confidence (0.8 + 0.6 + 0.7) / 3 = 0.7, gap 0.7 - 2/3 = 1/30 (over-confident).
# "b": probabilities (0.55, 0.45) x 3 on labels 0, 0, 0 -> all correct, mean confidence 0.55,
#      gap -0.45 (under-confident).
PROBS = {
    "fam-a-s0": [[0.8, 0.2], [0.6, 0.4], [0.3, 0.7]],
    "fam-b-s1": [[0.55, 0.45]] * 3,
}


SEEDS = {"fam-a-s0": 0, "fam-b-s1": 1}



@pytest.fixture
def gap_zoo(monkeypatch):
    def predictions(name, split="test", *, with_images=True):
        logits = np.log(np.asarray(PROBS[name]))
        return Predictions.from_arrays(y_true=[0, 0, 0], logits=logits, name=f"{name} [{split}]")

    patch_studies(monkeypatch, "members", lambda family, dataset=FASHION: list(PROBS))
    monkeypatch.setattr(zoo, "predictions", predictions)
    monkeypatch.setattr(zoo, "entry", lambda name: {"seed": SEEDS[name]})


def test_confidence_gap_table_hand_worked(gap_zoo):
    table = studies.confidence_gap_table(["fam"])
    assert list(table.columns) == ["family", "name", "seed", "accuracy", "mean_confidence", "gap"]
    assert table.name.tolist() == ["fam-a-s0", "fam-b-s1"]
    assert table.seed.tolist() == [0, 1]
    np.testing.assert_allclose(table.accuracy, [2 / 3, 1.0])  # logits are float32: atol 1e-6
    np.testing.assert_allclose(table.mean_confidence, [0.7, 0.55], atol=1e-6)
    np.testing.assert_allclose(table.gap, [0.7 - 2 / 3, -0.45], atol=1e-6)


def test_confidence_gap_table_one_row_per_checkpoint_per_family(gap_zoo):
    table = studies.confidence_gap_table(["x", "y"])
    assert table.family.tolist() == ["x", "x", "y", "y"]


def test_confidence_gap_table_unknown_family_is_refused():
    with pytest.raises(ValueError, match="`family` must name a zoo family"):
        studies.confidence_gap_table(["no-such-family"])


def test_distillation_summary_names_students_and_shows_no_temperature_for_the_student_alone():
    t = pd.DataFrame({"teacher_kind": ["none", "none", "ls", "ls"], "temperature": [np.nan, np.nan, 1.0, 1.0],
                      "seed": [0, 1, 0, 1], "val_accuracy": [0.70, 0.80, 0.75, 0.85],
                      "test_accuracy": [0.71, 0.81, 0.76, 0.86]})
    out = studies.distillation_summary(t, digits=3)
    assert out.student.tolist() == ["alone (no teacher)", "distilled from the LS α=0.1 teacher"]
    assert out["T"].tolist() == ["—", "1"]
    assert out.n.tolist() == [2, 2]
    assert out["test accuracy"].tolist() == ["0.760 ± 0.071", "0.810 ± 0.071"]
    assert "the student alone" in out.attrs["note"]


def test_labelled_uses_display_names_and_keeps_the_note():
    t = pd.DataFrame({"family": ["ls0.1", "ls-0.1", "ce+ts", "new"], "x": [1, 2, 3, 4]})
    t.attrs["note"] = "a note"
    out = studies.labelled(t)
    assert list(out.columns) == ["loss", "x"]
    assert out.loss.tolist() == ["LS α=0.1", "LS α=−0.1", "CE + temperature scaling", "new"]
    assert out.attrs["note"] == "a note"
    with pytest.raises(ValueError, match="`column` must name a column of `table`; got 'fam'"):
        studies.labelled(t, "fam")


def test_table_note_defines_plus_minus_and_the_dash():
    t = pd.DataFrame({"n": [3, 3], "ECE": ["0.040 ± 0.005", "0.050 ± 0.004"], "T": [1.5, np.nan]})
    note = studies.table_note(t)
    assert "± is one sample standard deviation (ddof=1) over the seeds, counted in column n" in note
    assert "—: no value" in note
    assert studies.table_note(pd.DataFrame({"x": [1.0]})) == ""
    t.attrs["note"] = "T: —, the student alone."
    assert studies.table_note(t).startswith("T: —, the student alone.") and "—: no value" not in studies.table_note(t)


def test_show_table_prints_the_title_and_formats_temperatures_and_gaps(capsys, monkeypatch):
    shown = []
    import IPython.display
    monkeypatch.setattr(IPython.display, "display", shown.append)
    studies.show_table("t", pd.DataFrame({"T": [1.0, 1.6883], "k": [1.0, 2.0], "ece": [0.04123, np.nan],
                                          "alpha": [0.0, 0.05]}))
    assert capsys.readouterr().out == "TABLE: t\n"
    html = shown[0].to_html()
    assert ">1.00<" in html and ">1.69<" in html and ">2<" in html and ">0.0412<" in html
    assert ">0.05<" in html and ">0.0500<" not in html
    assert ">—<" in html and "nan" not in html and "—: no value" in html
