"""``labviz report`` and ``labviz explore``: the self-contained HTML report of one's own predictions
from each file format, and the notebook that explore writes and serves."""

from __future__ import annotations

import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from labviz import Predictions
from labviz.cli import main
from labviz.figures.html_report import SECTIONS, most_confused_triple, write_report
from labviz.servers import jupyter

N, C, D = 600, 12, 16
NAMES = [f"class {k}" for k in range(C)]
#: Few replicas: the intervals' values are tested elsewhere; these tests check the report's shape.
FAST = ["--n-boot", "30", "--no-progress"]


def _arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, N)
    w = rng.standard_normal((C, D)).astype(np.float32)
    features = (1.2 * w[y] + rng.standard_normal((N, D))).astype(np.float32)
    return {"y_true": y, "logits": features @ w.T, "features": features, "weights": w,
            "bias": np.zeros(C, np.float32), "images": rng.random((N, 8, 8)).astype(np.float32)}


def _write(fmt: str, folder: Path) -> Path:
    a = _arrays()
    if fmt == "npz":
        np.savez(folder / "val.npz", **a, class_names=np.array(NAMES))
        return folder / "val.npz"
    if fmt == "npy":
        (folder / "val").mkdir()
        for key, x in a.items():
            np.save(folder / "val" / f"{key}.npy", x)
        (folder / "val" / "class_names.json").write_text(json.dumps(NAMES))
        return folder / "val"
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({"y_true": a["y_true"], "logits": list(a["logits"]),
                          "features": list(a["features"])})
        pq.write_table(table.replace_schema_metadata({"class_names": json.dumps(NAMES)}),
                       folder / "val.parquet")
        return folder / "val.parquet"
    from safetensors.numpy import save_file

    save_file(a, str(folder / "val.safetensors"), metadata={"class_names": json.dumps(NAMES)})
    return folder / "val.safetensors"


class _Page(HTMLParser):
    """The headings, script tags and external references of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.h2: list[str] = []
        self.scripts = 0
        self.external: list[str] = []
        self.tables = 0
        self._in_h2 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        self.tables += tag == "table"
        self._in_h2 = tag == "h2"
        for name, value in attrs:
            if name in ("src", "href") and value and not value.startswith(("#", "data:")):
                self.external.append(f"<{tag} {name}={value}>")

    def handle_data(self, data: str) -> None:
        if self._in_h2:
            self.h2.append(data)
            self._in_h2 = False


def _parse(path: Path) -> tuple[str, _Page]:
    text = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    return text, page


@pytest.mark.parametrize("fmt", ["npz", "npy", "parquet", "safetensors"])
def test_report_from_each_format_holds_every_section_offline(tmp_path, fmt, capsys):
    out = tmp_path / "out" / "report.html"
    assert main(["report", str(_write(fmt, tmp_path)), "--out", str(out), *FAST]) == 0
    text, page = _parse(out)
    assert page.h2 == list(SECTIONS.values())
    assert page.external == []  # nothing fetched: no CDN script, stylesheet or MathJax
    # plotly.js's bundle once, in the head; each figure only calls it
    assert text.count("Copyright 2012-") == 1
    # Parquet holds no per-class weights: its template plane says why instead
    # (the figures' own calls: plotly.js's bundle names Plotly.newPlot( in a message of its own)
    assert len(re.findall(r'Plotly\.newPlot\(\s*"', text)) == (3 if fmt == "parquet" else 4)
    assert "Not computed" not in text.split('id="collapse"')[1].split('id="template-plane"')[0]
    assert page.tables >= 5
    assert str(out.resolve()) in capsys.readouterr().out


def test_report_holds_the_estimators_pairs_and_per_class_rows(tmp_path):
    p = Predictions.from_arrays(**_arrays(), class_names=NAMES, name="val")
    text = write_report(p, tmp_path / "r.html", progress=False, n_boot=30).read_text()
    for estimator in ("ECE (equal-width)", "classwise ECE", "smooth ECE", "NLL", "Brier"):
        assert f"<td class=\"text\">{estimator}</td>" in text
    per_class = text.split('id="per-class"')[1].split("</table>")[0]
    assert per_class.count("<tr>") == C + 1  # a header and one row per class
    pairs = text.split('id="confusion"')[1].split("</table>")[0]
    assert 'img class="thumb"' in pairs  # the pairs' samples, as images are given
    assert "intra-class variation" in text and "class separation R²" in text


def test_sections_without_features_say_why(tmp_path):
    a = _arrays()
    p = Predictions.from_arrays(y_true=a["y_true"], logits=a["logits"], name="no features")
    text = write_report(p, tmp_path / "r.html", progress=False, n_boot=30).read_text()
    collapse = text.split('id="collapse"')[1].split('id="template-plane"')[0]
    plane = text.split('id="template-plane"')[1]
    assert "Not computed: the predictions hold no `features`" in collapse
    assert "Not computed: the predictions hold no &#x27;features&#x27; or &#x27;weights&#x27;" in plane
    assert "Plotly.newPlot(" not in plane


def test_label_errors_missing_a_class_says_why(tmp_path):
    a = _arrays()
    keep = a["y_true"] != 3
    p = Predictions.from_arrays(y_true=a["y_true"][keep], logits=a["logits"][keep])
    text = write_report(p, tmp_path / "r.html", progress=False, n_boot=30).read_text()
    errors = text.split('id="label-errors"')[1].split('id="collapse"')[0]
    assert "Not computed: `y_given` must contain every class" in errors


def test_progress_bar_has_one_step_per_section(tmp_path, capsys):
    p = Predictions.from_arrays(**_arrays(), class_names=NAMES)
    write_report(p, tmp_path / "r.html", progress=True, n_boot=30)
    err = capsys.readouterr().err
    assert f"{len(SECTIONS) + 1}/{len(SECTIONS) + 1}" in err  # the sections and the page


def test_figures_dir_exports_every_figure_as_pdf_and_png(tmp_path, monkeypatch):
    written: list[Path] = []

    class Session:  # records what would be rendered; the real export is the browser test below
        def __enter__(self) -> Session:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def export(self, fig, path, *, overwrite):
            assert overwrite and fig.data
            written.append(Path(path))
            return Path(path)

    monkeypatch.setattr("labviz.figures.export.ExportSession", Session)
    p = Predictions.from_arrays(**_arrays(), class_names=NAMES)
    write_report(p, tmp_path / "r.html", figures_dir=tmp_path / "figs", progress=False, n_boot=30)
    stems = ["reliability", "corp", "confusion", "template_plane"]
    assert written == [tmp_path / "figs" / f"{s}.{fmt}" for s in stems for fmt in ("pdf", "png")]


@pytest.mark.service
def test_figures_option_writes_pdf_and_png_files(tmp_path):
    figs = tmp_path / "figs"
    assert main(["report", str(_write("npz", tmp_path)), "--out", str(tmp_path / "r.html"),
                 "--figures", str(figs), *FAST]) == 0
    for stem in ("reliability", "corp", "confusion", "template_plane"):
        assert (figs / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
        assert (figs / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("content, words", [
    (b"PK\x03\x04 not a zip", "is not a readable labviz array file"),
    (None, "does not exist"),
])
def test_a_bad_file_exits_2_naming_it(tmp_path, capsys, content, words):
    path = tmp_path / "broken.npz"
    if content is not None:
        path.write_bytes(content)
    assert main(["report", str(path), "--out", str(tmp_path / "r.html"), *FAST]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and words in err and "Traceback" not in err
    assert not (tmp_path / "r.html").exists()


def test_a_mislabelled_array_exits_2_naming_file_and_key(tmp_path, capsys):
    (tmp_path / "val").mkdir()
    np.save(tmp_path / "val" / "y_true.npy", np.zeros(4, dtype=np.int64))
    np.save(tmp_path / "val" / "logit.npy", np.zeros((4, 2), dtype=np.float32))
    assert main(["explore", str(tmp_path / "val"), "--notebooks", str(tmp_path / "nb")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "val") in err and "logit" in err
    assert not (tmp_path / "nb").exists()


def test_out_must_not_be_a_folder(tmp_path):
    p = Predictions.from_arrays(**_arrays())
    with pytest.raises(ValueError, match="`out` must be an HTML file's path"):
        write_report(p, tmp_path, progress=False)


def test_most_confused_triple_extends_the_top_pair():
    pairs = pd.DataFrame({"true": [3, 5, 1], "pred": [4, 2, 4]})
    assert most_confused_triple(pairs, 6) == (3, 4, 1)
    assert most_confused_triple(pairs.iloc[:2], 6) == (3, 4, 0)  # nothing touches 3 or 4
    assert most_confused_triple(pairs.iloc[:0], 6) == (0, 1, 2)
    with pytest.raises(ValueError, match="`n_classes` must be"):
        most_confused_triple(pairs, 2)


def test_tables_escape_class_names(tmp_path):
    names = [f"<b>{k}</b>" for k in range(C)]
    p = Predictions.from_arrays(**_arrays(), class_names=names)
    text = write_report(p, tmp_path / "r.html", progress=False, n_boot=30).read_text()
    assert "<b>0</b>" not in text and "&lt;b&gt;0&lt;/b&gt;" in text


# ----- labviz explore -----------------------------------------------------------------------------
@pytest.fixture
def served(monkeypatch, tmp_path):
    """What launch_lab would run, captured instead of started; its state goes under tmp_path."""
    seen: dict = {}

    def serve(cmd, *, name, urls, log, ready, timeout_s):
        seen.update(cmd=cmd, urls=urls)
        return 0

    monkeypatch.setattr(jupyter, "_serve", serve)
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "prefix"))
    return seen


def test_explore_writes_a_notebook_that_loads_path_and_serves_it(tmp_path, served, capsys):
    data = _write("npz", tmp_path)
    folder = tmp_path / "work"
    assert main(["explore", str(data), "--notebooks", str(folder), "--port", "8899"]) == 0
    nb = nbformat.read(folder / "val.ipynb", as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert code == [f"import labviz\n\np = labviz.Predictions.from_path({str(data.resolve())!r})\np",
                    "labviz.explore(p)"]
    namespace: dict = {}
    exec(code[0], namespace)  # the notebook's loading cell runs
    assert namespace["p"].n_samples == N and namespace["p"].class_names == tuple(NAMES)
    assert served["cmd"][1:4] == ["-m", "jupyter", "lab"]
    config = json.loads((tmp_path / "prefix" / "etc" / "labviz" /
                         "jupyter_server_config.json").read_text())
    assert config["ServerApp"]["root_dir"] == str(folder)
    assert config["ServerApp"]["open_browser"] is False
    assert config["ServerApp"]["ip"] == "127.0.0.1"
    assert served["urls"]["JupyterLab"].startswith("http://127.0.0.1:8899/lab/tree/val.ipynb?token=")
    assert str(folder / "val.ipynb") in capsys.readouterr().out


def test_explore_never_writes_over_a_users_notebook(tmp_path, served):
    data = _write("npz", tmp_path)
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "val.ipynb").write_text("my own notes")  # not labviz's: kept
    assert main(["explore", str(data), "--notebooks", str(folder)]) == 0
    assert (folder / "val.ipynb").read_text() == "my own notes"
    edited = nbformat.read(folder / "val-2.ipynb", as_version=4)
    edited.cells.append(nbformat.v4.new_markdown_cell("my finding"))
    nbformat.write(edited, folder / "val-2.ipynb")
    assert main(["explore", str(data), "--notebooks", str(folder)]) == 0  # same data: reopened
    assert nbformat.read(folder / "val-2.ipynb", as_version=4).cells[-1].source == "my finding"
    assert sorted(f.name for f in folder.iterdir()) == ["val-2.ipynb", "val.ipynb"]
    assert served["urls"]["JupyterLab"].split("?")[0].endswith("/lab/tree/val-2.ipynb")


def test_report_help_documents_each_formats_keys(capsys):
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    text = capsys.readouterr().out
    for words in ("y_true", "logits or probs", "class_names.json", "__metadata__", "schema",
                  "--figures"):
        assert words in text


def test_corp_steps_draw_the_same_steps_with_fewer_points():
    from labviz.compute.calibration import corp_reliability
    from labviz.figures.html_report import corp_steps

    p = Predictions.from_arrays(**_arrays())
    d = corp_reliability(p.y_true, p.probs, n_boot=50, seed=0)
    thin = corp_steps(d)
    assert len(thin.confidence) < len(d.confidence)
    assert thin.count.sum() == d.count.sum() and thin.confidence[-1] == d.confidence[-1]
    # A step drawn "hv" takes at each original confidence the value of the last kept point at or
    # before it: that value is the original one, rounded.
    at = np.searchsorted(thin.confidence, d.confidence, side="right") - 1
    for kept, full in ((thin.calibrated, d.calibrated), (thin.band_low, d.band_low),
                       (thin.band_high, d.band_high)):
        np.testing.assert_array_equal(kept[at], np.round(full, 3))


def test_corp_band_takes_fewer_refits_past_the_dense_table_limit(tmp_path, monkeypatch):
    from labviz.figures import html_report

    p = Predictions.from_arrays(**_arrays())
    distinct = np.unique(p.confidence).size
    monkeypatch.setattr(html_report, "MAX_CELLS", 10 * distinct)  # as 10^8 is at 100,000 x 1,000
    text = write_report(p, tmp_path / "r.html", progress=False, n_boot=30).read_text()
    diagrams = text.split('id="diagrams"')[1].split('id="confusion"')[0]
    assert f"10 refits, as n_boot x distinct confidences is held to {10 * distinct:.0e}" in diagrams
    assert diagrams.count("Plotly.newPlot(") == 2
