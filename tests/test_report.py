"""``labviz figures``: the headline figures from the digits zoo entries, index.md, idempotence."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

from labviz import report, zoo

needs_chromium = pytest.mark.skipif(
    not Path("/usr/bin/chromium").is_file(),
    reason="Chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One full run on the digits entries, with its own cache folder."""
    out = tmp_path_factory.mktemp("figures")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LABVIZ_CACHE_DIR", str(tmp_path_factory.mktemp("report-cache")))
        results = report.build_figures(out, dataset="digits", fmt="png", progress=False)
    return out, results


@needs_chromium
def test_every_headline_figure_is_written(built):
    out, results = built
    expected = [s.stem for s in report.headline_figures("digits")]
    assert [r.stem for r in results] == expected
    for r in results:
        if r.status == "skipped":  # only a module that does not exist yet may be missing
            assert r.stem == "inversions" and "labviz.compute.inversion" in r.note
            continue
        assert r.status == "written", (r.stem, r.note)
        assert (out / r.file).read_bytes()[:8] == PNG_MAGIC
        assert r.seconds > 0


@needs_chromium
def test_index_lists_every_file_with_caption_and_checkpoints(built):
    out, results = built
    index = (out / report.INDEX_FILE).read_text()
    files = sorted(p.name for p in out.iterdir())
    assert set(files) - {report.INDEX_FILE, report.STATE_FILE} == {r.file for r in results if r.file}
    for r in results:
        section = index.split(f"## {r.stem}\n", 1)[1].split("\n## ", 1)[0]
        if r.file:
            assert f"({r.file})" in section and r.caption in section
            assert all(f"`{n}`" in section for n in r.checkpoints)
        else:
            assert r.note in section
    state = json.loads((out / report.STATE_FILE).read_text())
    assert set(state["files"]) == {r.file for r in results if r.file}


@needs_chromium
def test_second_run_rewrites_nothing(built, monkeypatch):
    out, _ = built
    before = _mtimes(out)

    def no_browser(*args, **kwargs):
        raise AssertionError("an up-to-date folder must not start Chromium")

    monkeypatch.setattr("labviz.figures.export.ExportSession.__enter__", no_browser)
    results = report.build_figures(out, dataset="digits", progress=False)
    assert {r.status for r in results} <= {"unchanged", "skipped"}
    assert _mtimes(out) == before


@needs_chromium
def test_changed_key_or_missing_file_rebuilds_only_that_figure(built, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(built[0], out)
    state_path = out / report.STATE_FILE
    state = json.loads(state_path.read_text())
    state["files"]["confusion-ce.png"]["key"] = "stale"
    state_path.write_text(json.dumps(state))
    (out / "confusion-ls.png").unlink()
    results = {r.stem: r.status for r in report.build_figures(out, dataset="digits", progress=False)}
    assert results["confusion-ce"] == results["confusion-ls"] == "written"
    others = {s for k, s in results.items() if k not in ("confusion-ce", "confusion-ls")}
    assert others <= {"unchanged", "skipped"}
    assert json.loads(state_path.read_text())["files"]["confusion-ce.png"]["key"] != "stale"


@pytest.mark.unit
def test_a_file_not_written_by_labviz_is_never_overwritten(tmp_path):
    (tmp_path / "reliability.png").write_bytes(b"the user's own plot")
    with pytest.raises(FileExistsError, match="reliability.png exists but was not written by `labviz"):
        report.build_figures(tmp_path, dataset="digits", progress=False)
    assert (tmp_path / "reliability.png").read_bytes() == b"the user's own plot"
    assert not (tmp_path / report.INDEX_FILE).exists()


@pytest.mark.unit
def test_figure_key_follows_checkpoints_params_and_format(monkeypatch):
    spec = next(s for s in report.headline_figures("digits") if s.stem == "confusion-ce")
    key = report.figure_key(spec, "png")
    assert report.figure_key(spec, "png") == key
    assert report.figure_key(spec, "svg") != key
    changed = report.FigureSpec(spec.stem, spec.caption, spec.checkpoints, {"split": "val"}, spec.build)
    assert report.figure_key(changed, "png") != key
    real_entry = zoo.entry
    monkeypatch.setattr(zoo, "entry", lambda name: {**real_entry(name), "sha256": "0" * 64})
    assert report.figure_key(spec, "png") != key


@pytest.mark.unit
def test_missing_checkpoint_is_skipped_with_a_note(monkeypatch):
    real = zoo.read_manifest
    monkeypatch.setattr(zoo, "read_manifest",
                        lambda folder=None: [e for e in real(folder) if e["name"] != "digits-ls0.1-s0"])
    specs = {s.stem: s for s in report.headline_figures("digits")}
    assert specs["confusion-ls"].build is None
    assert "digits-ls0.1-s0" in specs["confusion-ls"].skip_reason
    assert specs["confusion-ce"].build is not None


@pytest.mark.unit
def test_early_learning_figure_from_the_noisy_run():
    fig = report.early_learning_figure("digits-ce-noise0.4-s0")
    assert isinstance(fig, go.Figure)
    epochs = [e["epoch"] for e in zoo.snapshots("digits-ce-noise0.4-s0")]
    assert [t.name for t in fig.data] == ["flipped samples predicted as true label",
                                          "flipped samples predicted as given label", "test accuracy"]
    for t in fig.data:
        assert list(t.x) == epochs
        assert all(0 <= y <= 1 for y in t.y)
    as_true, as_given = np.asarray(fig.data[0].y), np.asarray(fig.data[1].y)
    assert np.all(as_true + as_given <= 1 + 1e-12)
    acc = {e["epoch"]: e["test_accuracy"] for e in zoo.snapshots("digits-ce-noise0.4-s0")}
    assert list(fig.data[2].y) == pytest.approx([acc[e] for e in epochs])


@pytest.mark.unit
def test_helpers_take_zoo_names_and_return_figures():
    fig = report.confusion_heatmap_figure("digits-ce-s0")
    assert isinstance(fig, go.Figure) and fig.data[0].type == "heatmap"
    assert np.asarray(fig.data[0].z).shape == (10, 10)
    fig = report.reliability_overlay_figure(["digits-ce-s0", "digits-ls0.1-s0"])
    names = [t.name for t in fig.data]
    assert any(n.startswith("CE (ECE") for n in names) and any(n.startswith("LS α=0.1 (ECE") for n in names)
    with pytest.raises(TypeError, match="`names` must be a sequence of zoo names; got str"):
        report.reliability_overlay_figure("digits-ce-s0")


@pytest.mark.unit
def test_bad_options(tmp_path):
    with pytest.raises(ValueError, match=r"`dataset` must be one of \['fashion-mnist', 'digits'\]; got 'mnist"):
        report.build_figures(tmp_path, dataset="mnist")
    with pytest.raises(ValueError, match=r"`fmt` must be one of \['png', 'svg', 'pdf'\]; got 'jpg'"):
        report.build_figures(tmp_path, fmt="jpg")


@needs_chromium
def test_cli_figures_command(built, tmp_path):
    from labviz import cli

    with pytest.raises(SystemExit) as exit_info:  # argparse exits 0 on --help, 2 on an unknown command
        cli.main(["figures", "--help"])
    if exit_info.value.code != 0:
        pytest.skip("labviz.cli has no `figures` subcommand yet")
    out = tmp_path / "cli"
    shutil.copytree(built[0], out)
    before = _mtimes(out)
    assert cli.main(["figures", "--out", str(out), "--dataset", "digits", "--format", "png"]) == 0
    assert _mtimes(out) == before
