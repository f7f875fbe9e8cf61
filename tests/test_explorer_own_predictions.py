"""The explorer on a user's own Predictions: no controls that cannot apply, a split argument
refused with its name, a readable classes list, captioned thumbnails, and a missing-features
message that names ``features=``."""

from __future__ import annotations

import re

import numpy as np
import pytest

from labviz.core.predictions import Predictions
from labviz.widgets import explore
from labviz.widgets.explorer import SPLITS
from labviz.widgets.explorer_data import ExplorerData, check_sources
from labviz.widgets.views import MAX_CLASS_ROWS, Controls


def _own(rng, n=120, n_classes=10, name="mlp", names=None):
    y = np.arange(n) % n_classes
    logits = rng.normal(0, 1, (n, n_classes)) + 3 * np.eye(n_classes)[y]
    return Predictions.from_arrays(
        y_true=y, logits=logits, features=rng.normal(size=(n, 5)) + y[:, None],
        images=rng.random((n, 8, 8)), name=name,
        class_names=names or [f"digit {k}" for k in range(n_classes)])


@pytest.fixture
def own():
    return _own(np.random.default_rng(0))


def test_split_beside_it_and_snapshots_are_hidden_for_one_own_predictions(own):
    ex = explore(own)
    for name in ("split", "compare", "snapshot", "play"):
        assert ex.controls[name].layout.display == "none", name
    assert ex.controls_view.series_html.layout.display == "none"
    assert ex.controls["method"].layout.display is None
    assert ex.controls["snapshot"].layout.width == "420px"


def test_beside_it_is_shown_with_a_second_model(own):
    other = _own(np.random.default_rng(1), name="other")
    ex = explore([own, other])
    assert ex.controls["compare"].layout.display is None
    assert ex.controls["split"].layout.display == "none"


@pytest.mark.parametrize("split", ["train", "test"])
def test_a_split_for_own_predictions_is_refused_naming_it(own, split):
    with pytest.raises(ValueError, match=rf"`split` applies to zoo checkpoints only; got "
                                         rf"split='{split}'.*Leave `split` out"):
        explore(own, split=split)


def test_set_split_without_zoo_checkpoints_is_refused(own):
    ex = explore(own)
    with pytest.raises(ValueError, match=r"`split` applies to zoo checkpoints only; got split='val'"):
        ex.set_split("val")


def test_the_classes_list_shows_every_class_and_name(own):
    ex = explore(own)
    box = ex.controls["classes"]
    assert box.rows == MAX_CLASS_ROWS == len(own.class_names)
    assert "labviz-classes" in box._dom_classes
    width = int(box.layout.width.removesuffix("px"))
    assert width >= 8 * len("digit 0") + 60


def test_the_explorer_styles_its_chosen_classes_readable(own):
    ex = explore(own)
    css = "".join(getattr(w, "value", "") for w in ex.widget.children)
    assert re.search(r"\.labviz-classes select option:checked \{\s*background: linear-gradient", css)


def test_thumbnails_are_captioned_with_labels_and_confidence(own):
    ex = explore(own, max_thumbnails=3)
    ids = ex.select_cell(1, 1)
    html = ex.samples.thumbnails_html.value
    assert html.count("<figcaption>") == 3
    rows = np.searchsorted(own.ids, ids[:3])
    for k in rows:
        assert f"{own.confidence[k]:.3f}</figcaption>" in html
    assert "true digit 1<br><span>pred digit 1</span>" in html


def test_a_wrong_prediction_s_caption_is_marked(own):
    p = own
    wrong = np.flatnonzero(p.y_true != p.y_pred)
    t, q = int(p.y_true[wrong[0]]), int(p.y_pred[wrong[0]])
    ex = explore(p, max_thumbnails=1)
    ex.select_cell(t, q)
    assert f'<span class="wrong">pred digit {q}</span>' in ex.samples.thumbnails_html.value


def test_captions_follow_the_temperature(own):
    ex = explore(own, max_thumbnails=1)
    ex.set_temperature(4.0)
    ids = ex.select_cell(2, 2)
    row = int(np.searchsorted(own.ids, ids[0]))
    z = own.logits[row] / 4.0
    conf = np.exp(z - z.max()).max() / np.exp(z - z.max()).sum()
    assert f"{conf:.3f}</figcaption>" in ex.samples.thumbnails_html.value


def test_explore_without_features_names_the_argument_and_the_call():
    p = Predictions.from_arrays(y_true=[0, 1, 1], probs=[[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]])
    with pytest.raises(ValueError, match=r"`sources\[0\]` must hold features.*got features=None\. "
                                         r"Pass them when building it: `labviz\.Predictions\."
                                         r"from_arrays\(y_true=y, probs=p, features=h\)`"):
        explore(p)


def test_rows_wrap_in_a_narrow_output_rather_than_hide_their_right_side(own):
    rows = [w for w in explore(own).widget.children if type(w).__name__ == "HBox"]
    assert len(rows) == 7
    assert {r.layout.flex_flow for r in rows} == {"row wrap"}


def test_a_zoo_checkpoint_keeps_its_split_and_snapshot_controls():
    data = ExplorerData(check_sources(["digits-ce-s0"]))  # reads the manifest, loads nothing
    assert data.has_splits and data.check_split("val", SPLITS) == "val"
    cv = Controls(labels=["digits-ce-s0"], checkpoint="digits-ce-s0", compare=None, split="val",
                  splits=SPLITS, method="pca", methods=["pca"], color="class", colors=["class"],
                  zoo=data.has_splits)
    for name in ("split", "snapshot", "play"):
        assert cv[name].layout.display is None, name
    assert cv["compare"].layout.display == "none"  # one source: nothing to put beside it
