"""Static export: file formats and sizes, the template on a copy only, and clear errors."""

from __future__ import annotations

import importlib
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
import pytest

from labviz.figures.style import TEMPLATE

# The module behind `labviz.export` (the function).
ex = importlib.import_module("labviz.figures.export")

needs_chromium = pytest.mark.skipif(
    not Path(ex.CHROMIUM_PATH).is_file(),
    reason=f"Chromium is not installed at {ex.CHROMIUM_PATH} (apt-get install chromium)",
)


def _figure() -> go.Figure:
    return go.Figure(go.Scatter(x=[0, 1, 2], y=[1, 3, 2], mode="lines+markers", name="a"))


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One figure written as PNG, SVG and PDF through one browser, and the figure as it was."""
    folder = tmp_path_factory.mktemp("export")
    fig = _figure()
    before = fig.to_dict()
    default = pio.templates.default
    paths = ex.export_many([(fig, folder / f"f.{fmt}") for fmt in ("png", "svg", "pdf")],
                           width=320, height=240, scale=2)
    return {"fig": fig, "before": before, "default": default, "paths": paths}


# ----- formats ------------------------------------------------------------------------------------
@needs_chromium
@pytest.mark.service
def test_export_many_writes_each_format(exported):
    png, svg, pdf = exported["paths"]
    assert _png_size(png.read_bytes()) == (640, 480)
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    assert pdf.read_bytes().startswith(b"%PDF")


@needs_chromium
@pytest.mark.service
def test_export_png_has_width_times_scale(tmp_path):
    path = ex.export(_figure(), tmp_path / "g.png", width=300, height=200, scale=1.5)
    assert path == tmp_path / "g.png"
    assert _png_size(path.read_bytes()) == (450, 300)


@needs_chromium
@pytest.mark.service
def test_export_uses_the_figure_size_when_none_is_given(tmp_path):
    fig = _figure().update_layout(width=250, height=150)
    path = ex.export(fig, tmp_path / "h.png")
    assert _png_size(path.read_bytes()) == (250, 150)


# ----- the template -------------------------------------------------------------------------------
@needs_chromium
@pytest.mark.service
def test_exported_file_is_styled_but_the_figure_and_default_are_not(exported):
    svg = exported["paths"][1].read_text()
    # The labviz font and first series colour (#0072B2) are in the file; plotly's default font is not.
    assert "Arial, Helvetica" in svg
    assert "rgb(0, 114, 178)" in svg
    assert "Open Sans" not in svg
    assert exported["fig"].to_dict() == exported["before"]
    assert pio.templates.default == exported["default"]
    assert "labviz" not in pio.templates


def test_styled_copy_applies_template_to_a_copy():
    fig = _figure()
    before = fig.to_dict()
    copy = ex.styled_copy(fig)
    assert copy is not fig
    assert copy.layout.template.to_plotly_json() == TEMPLATE.to_plotly_json()
    assert fig.to_dict() == before


def test_styled_copy_turns_webgl_scatter_into_svg_scatter():
    fig = go.Figure(go.Scattergl(x=[0, 1], y=[1, 0], mode="markers", marker=dict(color="red")))
    copy = ex.styled_copy(fig)
    assert [t.type for t in copy.data] == ["scatter"]
    assert copy.data[0].marker.color == "red"
    assert fig.data[0].type == "scattergl"


# ----- errors -------------------------------------------------------------------------------------
def test_unknown_extension_is_an_error(tmp_path):
    expected = r"`path` must end in one of \['.png', '.svg', '.pdf'\]; got .*f\.jpg"
    with pytest.raises(ValueError, match=expected):
        ex.export(_figure(), tmp_path / "f.jpg")
    assert not (tmp_path / "f.jpg").exists()


def test_existing_file_is_kept_without_overwrite(tmp_path):
    path = tmp_path / "mine.png"
    path.write_bytes(b"the user's file")
    with pytest.raises(FileExistsError, match="mine.png exists; pass overwrite=True"):
        ex.export(_figure(), path)
    assert path.read_bytes() == b"the user's file"


@needs_chromium
@pytest.mark.service
def test_overwrite_true_replaces_the_file(tmp_path):
    path = tmp_path / "mine.svg"
    path.write_text("old")
    ex.export(_figure(), path, overwrite=True)
    assert ET.parse(path).getroot().tag.endswith("svg")


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="existing folder"):
        ex.export(_figure(), tmp_path / "nowhere" / "f.png")


def test_missing_chromium_says_how_to_install_and_never_downloads(tmp_path, monkeypatch):
    import kaleido

    def no_download(*args, **kwargs):
        raise AssertionError("labviz must never download a browser")

    monkeypatch.setattr(kaleido, "get_chrome_sync", no_download)
    monkeypatch.setattr(kaleido, "get_chrome", no_download)
    monkeypatch.delenv("LABVIZ_CHROMIUM", raising=False)
    monkeypatch.setattr(ex, "CHROMIUM_PATH", str(tmp_path / "no-chromium"))
    with pytest.raises(FileNotFoundError, match=r"no executable at .*no-chromium.*apt-get install chromium"):
        ex.export(_figure(), tmp_path / "f.png")
    assert not (tmp_path / "f.png").exists()


def test_labviz_chromium_overrides_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv("LABVIZ_CHROMIUM", str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match="elsewhere"):
        ex.find_chromium()


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match=r"`items\[0\]` figure must be a plotly.graph_objects.Figure; got dict"):
        ex.export({"data": []}, tmp_path / "f.png")
    with pytest.raises(ValueError, match="`width` must be > 0; got 0"):
        ex.export(_figure(), tmp_path / "f.png", width=0)
    with pytest.raises(TypeError, match="`scale` must be a positive number or None; got str '2'"):
        ex.export(_figure(), tmp_path / "f.png", scale="2")
    with pytest.raises(TypeError, match="`path` must be a str or os.PathLike; got int"):
        ex.export(_figure(), 3)


def test_export_many_checks_every_item_before_writing(tmp_path):
    (tmp_path / "b.png").write_bytes(b"keep")
    with pytest.raises(FileExistsError, match="b.png exists"):
        ex.export_many([(_figure(), tmp_path / "a.png"), (_figure(), tmp_path / "b.png")])
    assert not (tmp_path / "a.png").exists()
    with pytest.raises(ValueError, match="`items` must write each file once; got .*c.svg' twice"):
        ex.export_many([(_figure(), tmp_path / "c.svg"), (_figure(), tmp_path / "c.svg")])
    with pytest.raises(TypeError, match=r"`items\[0\]` must be a \(figure, path\) pair; got Figure"):
        ex.export_many([_figure()])
    assert ex.export_many([]) == []


def test_session_must_be_open():
    with pytest.raises(RuntimeError, match="ExportSession is not open"):
        ex.ExportSession().render(_figure(), "png")
