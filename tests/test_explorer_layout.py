"""What a person meets on the explorer's page before and after a first click, without a browser:
the status line's reserved height, the messages beside the images, the thousands format of every
count, and the jupyter-scatter panel's legend clear of its y axis (labviz.widgets.explorer,
labviz.widgets.views, labviz.widgets.projection_views)."""

from __future__ import annotations

import numpy as np
import pytest

from labviz import Predictions, explore
from labviz.widgets._common import samples
from labviz.widgets.views import STATUS_HEIGHT


def _predictions(rng, n=300, n_classes=4, images=True):
    y = rng.integers(0, n_classes, n)
    features = rng.normal(0, 4, (n_classes, 6))[y] + rng.normal(0, 1, (n, 6))
    logits = rng.normal(0, 1.5, (n, n_classes)) + 2 * np.eye(n_classes)[y]
    return Predictions.from_arrays(y_true=y, logits=logits, features=features,
                                   ids=np.arange(n), class_names=[f"c{k}" for k in range(n_classes)],
                                   images=rng.random((n, 8, 8)) if images else None, name="toy")


@pytest.fixture
def toy(rng):
    return _predictions(rng)


def test_the_status_line_holds_its_height_before_anything_is_said(toy):
    ex = explore(toy)
    assert ex.status == "" and ex.status_html.value == ""
    # the page reserves the line: the first message (a click's) moves nothing below it
    assert ex.status_html.layout.min_height == STATUS_HEIGHT == "32px"
    assert ex.status_html.layout.display in (None, "")
    assert ex.widget.children[0] is ex.status_html
    ex.select_cell(0, 0)
    assert ex.status and ex.status_html.layout.min_height == STATUS_HEIGHT


def test_without_images_no_count_of_shown_images_is_given(rng):
    p = _predictions(rng, images=False)
    ex = explore(p, max_thumbnails=4)
    ids = ex.select_points(p.ids[:50])
    text = ex.samples.thumbnails_html.value
    assert "carry no images" in text and f"{len(ids)} samples highlighted" in text
    assert "shown" not in text


def test_with_images_the_first_shown_are_counted(toy):
    ex = explore(toy, max_thumbnails=4)
    ex.select_points(toy.ids[:50])
    assert "50 samples highlighted (first 4 shown)" in ex.samples.thumbnails_html.value


def test_counts_are_printed_with_thousands_separators():
    assert samples(1) == "1 sample" and samples(1_000_000) == "1,000,000 samples"


def test_titles_print_large_counts_with_separators(rng):
    p = _predictions(rng, n=1_200, images=False)
    ex = explore(p, backend="webgl")
    assert ex.confusion.figure.layout.title.text.endswith("(1,200 samples)")
    assert "all 1,200 samples" in ex.reliability.figure.layout.title.text
    ex.select_points(p.ids[:1_100])
    assert ex.status == "Selection of 1,100 samples."
    assert "selection of 1,100 samples" in ex.reliability.figure.layout.title.text


def test_the_scatter_legend_sits_away_from_its_y_axis(toy):
    # jupyter-scatter draws its y axis on the right: a legend at the top right stands between
    # the points and the axis' labels
    ex = explore(toy, backend="webgl")
    widget = ex.projection.scatters[0].widget
    assert widget.axes and widget.legend
    assert widget.legend_position == "top-left"
