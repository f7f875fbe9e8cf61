import numpy as np
import plotly.graph_objects as go
import pytest
from sklearn import metrics

from labviz import Predictions
from labviz.compute import confusion as cf
from labviz.figures import confusion as fc
from labviz.figures.style import SEQUENTIAL


@pytest.fixture
def labels(rng):
    y_true = rng.integers(0, 6, 500)
    y_pred = np.where(rng.random(500) < 0.7, y_true, rng.integers(0, 6, 500))
    return y_true, y_pred


def test_hand_worked_matrix():
    # true 0 -> pred 0, 1; true 1 -> pred 1, 1, 0.
    cm = cf.confusion_matrix([0, 0, 1, 1, 1], [0, 1, 1, 1, 0])
    assert cm.tolist() == [[1, 1], [1, 2]] and cm.dtype == np.int64
    assert cf.confusion_matrix([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], normalize="true").tolist() == [
        [0.5, 0.5], [1 / 3, 2 / 3]]
    assert cf.confusion_matrix([0], [0], n_classes=3).shape == (3, 3)


@pytest.mark.parametrize("normalize", [None, "true", "pred", "all"])
def test_agrees_with_sklearn(labels, normalize):
    y_true, y_pred = labels
    ours = cf.confusion_matrix(y_true, y_pred, normalize=normalize)
    np.testing.assert_allclose(ours, metrics.confusion_matrix(y_true, y_pred, normalize=normalize))


def test_empty_row_normalises_to_zero_like_sklearn():
    ours = cf.confusion_matrix([0, 0], [0, 1], n_classes=3, normalize="true")
    assert ours[2].tolist() == [0.0, 0.0, 0.0]


def test_per_class_table_agrees_with_sklearn(labels):
    y_true, y_pred = labels
    table = cf.per_class_table(y_true, y_pred, class_names=list("abcdef"))
    p, r, f, s = metrics.precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    np.testing.assert_allclose(table.precision, p)
    np.testing.assert_allclose(table.recall, r)
    np.testing.assert_allclose(table.f1, f)
    assert table.support.tolist() == s.tolist() and table.name.tolist() == list("abcdef")


def test_top_confused_pairs_ranked():
    y_true = [0, 0, 0, 0, 1, 1, 2]
    y_pred = [1, 1, 2, 0, 0, 1, 1]
    pairs = cf.top_confused_pairs(y_true, y_pred, k=5)
    assert pairs[["true", "pred", "count"]].values.tolist() == [[0, 1, 2], [2, 1, 1], [1, 0, 1], [0, 2, 1]]
    assert pairs.rate.iloc[0] == pytest.approx(0.5)
    merged = cf.top_confused_pairs(y_true, y_pred, k=1, symmetric=True)
    assert merged[["true", "pred", "count"]].values.tolist() == [[0, 1, 3]]


def test_class_order_groups_a_planted_confused_pair(rng):
    counts = np.diag(np.full(6, 50))
    counts[1, 4] = counts[4, 1] = 30  # classes 1 and 4 are confused with each other
    order = cf.class_order(counts).tolist()
    assert sorted(order) == list(range(6))
    assert abs(order.index(1) - order.index(4)) == 1


def test_cell_samples_and_accumulator(labels):
    y_true, y_pred = labels
    ids = np.arange(1000, 1500)
    got = cf.cell_samples(y_true, y_pred, 2, 3, ids=ids)
    np.testing.assert_array_equal(got, ids[(y_true == 2) & (y_pred == 3)])
    acc = cf.ConfusionAccumulator(6)
    for chunk in np.array_split(np.arange(500), 7):
        acc.update(y_true[chunk], y_pred[chunk])
    other = cf.ConfusionAccumulator(6).update(y_true[:10], y_pred[:10])
    np.testing.assert_array_equal(acc.matrix(), cf.confusion_matrix(y_true, y_pred, n_classes=6))
    np.testing.assert_array_equal(acc.merge(other).matrix(),
                                  acc.matrix() + cf.confusion_matrix(y_true[:10], y_pred[:10], n_classes=6))


def _predictions(rng, n_classes=10, n=300):
    y = rng.integers(0, n_classes, n)
    logits = rng.normal(size=(n, n_classes))
    logits[np.arange(n), y] += 2.0
    return Predictions.from_arrays(y_true=y, logits=logits, images=rng.random((n, 8, 8)),
                                   class_names=[f"class {k}" for k in range(n_classes)])


def test_heatmap_contents(rng):
    p = _predictions(rng)
    display = fc.ConfusionDisplay.from_predictions(p)
    fig = display.plot()
    (heat,) = fig.data
    assert isinstance(heat, go.Heatmap)
    counts = cf.confusion_matrix(p.y_true, p.y_pred, n_classes=10)
    np.testing.assert_allclose(np.asarray(heat.z, float), counts / counts.sum(1, keepdims=True))
    assert "%{customdata" in heat.hovertemplate  # counts and percentages on hover
    assert heat.colorscale[0][1] == go.Heatmap(colorscale=SEQUENTIAL).colorscale[0][1]
    assert fig.layout.yaxis.autorange == "reversed"
    assert list(fig.layout.xaxis.ticktext) == list(p.class_names)


def test_heatmap_stays_readable_at_100_classes(rng):
    fig = fc.ConfusionDisplay.from_predictions(_predictions(rng, n_classes=100, n=3000)).plot()
    assert fig.data[0].text is None or not any(any(row) for row in fig.data[0].text)
    assert len(fig.layout.xaxis.tickvals) < 100  # thinned tick labels
    assert fig.layout.xaxis.tickangle == -90


def test_drill_down_gives_ids_and_thumbnails(rng):
    p = _predictions(rng)
    display = fc.ConfusionDisplay.from_predictions(p)
    ids = display.cell_ids(3, 3)
    np.testing.assert_array_equal(ids, p.ids[(p.y_true == 3) & (p.y_pred == 3)])
    gallery = display.cell_thumbnails(3, 3, max_images=4)
    assert isinstance(gallery.data[0], go.Image)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: cf.confusion_matrix([0, 1], [0, 1, 1]), ValueError, "`y_true` has 2, `y_pred` has 3"),
        (lambda: cf.confusion_matrix([0, 3], [0, 1], n_classes=2), ValueError,
         r"`n_classes` must be greater than the largest label; got n_classes=2 and labels up to 3 "
         r"in `y_true`"),
        (lambda: cf.confusion_matrix([0.5, 1], [0, 1]), TypeError, "`y_true` must hold integer class labels"),
        (lambda: cf.confusion_matrix(["a", "b"], [0, 1]), TypeError, "`y_true` must hold integer class labels"),
        (lambda: cf.confusion_matrix([True, False], [0, 1]), TypeError, "`y_true` must hold integer class labels"),
        (lambda: cf.confusion_matrix([], []), ValueError, "`y_true` must not be empty"),
        (lambda: cf.confusion_matrix([[0, 1]], [[0, 1]]), ValueError, r"`y_true` must have shape \(n_samples,\)"),
        (lambda: cf.confusion_matrix([0, 1], [0, 1], normalize="rows"), ValueError, "`normalize` must be one of"),
        (lambda: cf.top_confused_pairs([0, 1], [1, 0], k=0), ValueError, "`k` must be >= 1"),
        (lambda: cf.class_order([[1, 2, 3]]), ValueError, r"`cm` must have shape \(n_classes, n_classes\)"),
    ],
)
def test_bad_input_messages(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_thumbnails_need_images(rng):
    p = _predictions(rng)
    display = fc.ConfusionDisplay.from_predictions(y_true=p.y_true, y_pred=p.y_pred)
    with pytest.raises(ValueError, match="images"):
        display.cell_thumbnails(0, 0)


def test_cell_text_and_customdata_at_10_classes():
    # 3 of class 0 right, 1 predicted as class 1; class 1 always right: hand-checkable percentages.
    counts = np.zeros((10, 10), dtype=int)
    counts[0, 0], counts[0, 1], counts[1, 1] = 3, 1, 2
    (heat,) = fc.confusion_figure(counts, normalize=None).data
    np.testing.assert_array_equal(heat.z, counts)
    np.testing.assert_allclose(heat.customdata[0, 1], [1, 25.0, 100 / 3])
    assert heat.texttemplate == "%{text}"
    assert np.asarray(heat.text).shape == (10, 10)
    # zero cells stay blank so the few non-zero ones stand out
    assert sum(t != "" for row in heat.text for t in row) == 3 and heat.text[0][0] == "3"


def test_reordered_heatmap_moves_rows_and_labels_together():
    counts = np.array([[5, 0, 4], [0, 9, 0], [3, 0, 6]])
    order = cf.class_order(counts)
    fig = fc.confusion_figure(counts, class_names=["a", "b", "c"], normalize=None, order=order)
    np.testing.assert_array_equal(fig.data[0].z, counts[np.ix_(order, order)])
    assert list(fig.data[0].y) == [["a", "b", "c"][k] for k in order]
    display = fc.ConfusionDisplay.from_predictions(y_true=[0, 0, 2, 1], y_pred=[2, 0, 0, 1], order=True)
    assert abs(display.order.tolist().index(0) - display.order.tolist().index(2)) == 1


def test_symmetric_rate_divides_by_both_supports():
    # 0<->1 confused 3 times among 4 + 2 samples of classes 0 and 1.
    pairs = cf.top_confused_pairs([0, 0, 0, 0, 1, 1], [1, 1, 0, 0, 0, 1], symmetric=True)
    assert pairs[["true", "pred", "count"]].values.tolist() == [[0, 1, 3]]
    assert pairs.rate.iloc[0] == pytest.approx(3 / 6)


def test_accumulator_merge_leaves_inputs_unchanged():
    a = cf.ConfusionAccumulator(2).update([0, 1], [0, 0])
    b = cf.ConfusionAccumulator(2).update([1], [1])
    merged = a.merge(b)
    assert merged.matrix().tolist() == [[1, 0], [1, 1]] and a.n_samples == 2 and b.n_samples == 1
    assert merged.matrix("true").tolist() == [[1.0, 0.0], [0.5, 0.5]]


def test_per_class_bars_and_empty_cell_gallery(rng):
    p = _predictions(rng, n_classes=4, n=40)
    display = fc.ConfusionDisplay.from_predictions(p)
    bars = display.plot_per_class()
    assert [t.name for t in bars.data] == ["precision", "recall", "f1"]
    np.testing.assert_allclose(bars.data[1].y, cf.per_class_table(p.y_true, p.y_pred, n_classes=4).recall)
    empty = fc.ConfusionDisplay.from_predictions(
        Predictions.from_arrays(y_true=[0, 1], logits=[[1.0, 0.0], [0.0, 1.0]], images=np.zeros((2, 4, 4))))
    fig = empty.cell_thumbnails(0, 1)
    assert fig.layout.annotations[0].text == "no samples in this cell"


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: cf.confusion_matrix([np.nan, 1], [0, 1]), TypeError, "non-integer floats such as .*nan"),
        (lambda: fc.confusion_figure([[0.5, 1], [0, 1]]), ValueError, "`cm_counts` must hold integer counts"),
        (lambda: fc.confusion_figure([[-1, 1], [0, 1]]), ValueError, "`cm_counts` must hold non-negative"),
        (lambda: fc.confusion_figure([[1, 0], [0, 1]], order=[0, 0]), ValueError,
         r"`order` must be a permutation of 0..1"),
        (lambda: cf.ConfusionAccumulator(2).merge(cf.ConfusionAccumulator(3)), ValueError,
         "`other` must have n_classes=2; got 3"),
        (lambda: cf.ConfusionAccumulator(2).merge(np.zeros((2, 2))), TypeError,
         "`other` must be a ConfusionAccumulator"),
        (lambda: cf.cell_samples([0, 1], [0, 1], 0, 0, ids=[1, 2, 3]), ValueError, "`ids` has 3"),
        (lambda: fc.ConfusionDisplay.from_predictions(y_true=[0, 1], y_pred=[0, 1]).cell_ids(0, 2),
         ValueError, r"`pred_class` must be in \[0, 1\]; got 2"),
        (lambda: fc.ConfusionDisplay.from_predictions([0, 1]), TypeError,
         "`predictions` must be a labviz.Predictions"),
        (lambda: fc.ConfusionDisplay.from_predictions(y_true=[0, 1]), TypeError,
         r"`predictions` must be a labviz.Predictions, or None with the arrays `y_true` and "
         r"`y_pred`; got None and `y_true` without `y_pred`\."),
    ],
)
def test_more_bad_input_messages(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ----- many classes: the clustered order, the compact heat map, blocks and search ------------------
def _planted_groups(n_classes, rng, group=5):
    """Counts where each run of ``group`` classes (shuffled) is confused within itself."""
    perm = rng.permutation(n_classes)
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    for start in range(0, n_classes, group):
        g = perm[start:start + group]
        cm[np.ix_(g, g)] = rng.integers(1, 5, (len(g), len(g)))
        cm[g, g] = 40
    return cm, perm


def test_greedy_class_order_keeps_planted_groups_together(rng):
    n = cf.OPTIMAL_ORDERING_MAX_CLASSES + 100  # past the optimal ordering
    cm, perm = _planted_groups(n, rng)
    order = cf.class_order(cm)
    assert np.array_equal(np.sort(order), np.arange(n))
    position = np.argsort(order)
    spans = [np.ptp(position[perm[s:s + 5]]) for s in range(0, n, 5)]
    assert max(spans) == 4  # each group of 5 sits in 5 consecutive places


def test_large_heatmap_has_no_cell_text_and_a_bounded_size(rng):
    n = 300
    cm = rng.integers(0, 3, (n, n)) * (rng.random((n, n)) < 0.1)
    cm[np.arange(n), np.arange(n)] = 50
    names = [f"class {k}" for k in range(n)]
    fig = fc.confusion_figure(cm, class_names=names)
    (heat,) = fig.data
    assert heat.text is None and heat.texttemplate is None and heat.customdata is None
    assert "%{z" in heat.hovertemplate and "%{y}" in heat.hovertemplate
    # 3 significant digits of each row's share; empty cells stay exact zeros
    share = cm / cm.sum(1, keepdims=True)
    np.testing.assert_allclose(np.asarray(heat.z, float), share, rtol=5e-3)
    assert np.array_equal(np.asarray(heat.z, float) == 0, cm == 0)
    # about 2 bytes per empty cell and 7 per other one, plus the names: scales as n^2
    assert len(fig.to_json()) < 2.2 * n * n + 7 * np.count_nonzero(cm) + 40 * n + 20_000
    assert len(fig.layout.xaxis.tickvals) <= 50


def test_zoom_shows_exactly_the_block_in_the_clustered_order(rng):
    cm, _ = _planted_groups(30, rng)
    order = cf.class_order(cm)
    block = order[7:19]
    fig = fc.confusion_figure(cm, normalize=None, order=order, classes=block[::-1])
    np.testing.assert_array_equal(fig.data[0].z, cm[np.ix_(block, block)])
    assert list(fig.data[0].y) == [str(k) for k in block]
    # shares stay those of the whole matrix: of all the true class's samples
    share = fc.confusion_figure(cm, order=order, classes=block).data[0].z
    np.testing.assert_allclose(share, (cm / cm.sum(1, keepdims=True))[np.ix_(block, block)])
    np.testing.assert_allclose(fig.data[0].customdata[..., 0], cm[np.ix_(block, block)])
    display = fc.ConfusionDisplay.from_predictions(y_true=[0, 1, 2, 2], y_pred=[0, 2, 2, 1])
    assert display.plot(classes=[1, 2]).data[0].z.tolist() == [[0.0, 1.0], [0.5, 0.5]]


def test_search_and_neighbourhood():
    names = ["tabby cat", "Persian cat", "dog", "CATAMARAN", "canoe"]
    found = cf.find_classes(names, "  Cat ")
    assert found.tolist() == [0, 1, 3]
    assert cf.find_classes(names, "zebra").size == 0
    order = [4, 2, 0, 1, 3]
    assert cf.class_neighbourhood(order, [2], radius=1).tolist() == [4, 2, 0]
    assert cf.class_neighbourhood(order, [4, 3], radius=1).tolist() == [4, 2, 1, 3]
    assert cf.class_neighbourhood(order, [0], radius=0).tolist() == [0]


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: cf.find_classes(["a"], "  "), ValueError, r"`query` must hold part of a class name; got '  '"),
        (lambda: cf.find_classes(["a"], 3), TypeError, "`query` must be a string; got int 3"),
        (lambda: fc.confusion_figure(np.eye(3, dtype=int), classes=[]), ValueError,
         "`classes` must be a non-empty sequence of class indices"),
        (lambda: fc.confusion_figure(np.eye(3, dtype=int), classes=[0, 3]), ValueError,
         r"`classes` must hold class indices in \[0, 2\]; got \[3\]"),
        (lambda: fc.confusion_figure(np.eye(3, dtype=int), classes=[1, 1]), ValueError,
         r"`classes` must name each class once; got \[1\]"),
        (lambda: fc.confusion_figure(np.eye(3, dtype=int), classes=[0.5]), TypeError,
         "`classes` must hold integer class indices"),
        (lambda: cf.class_neighbourhood([0, 0, 1], [0]), ValueError, "`order` must be a permutation"),
        (lambda: cf.class_neighbourhood([0, 1], [0], radius=-1), ValueError, "`radius` must be >= 0"),
    ],
)
def test_block_and_search_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_confusion_from_logits_allocates_far_less_than_the_logits(rng):
    import tracemalloc

    n, c = 20_000, 200
    logits = rng.standard_normal((n, c), dtype=np.float32)
    p = Predictions.from_arrays(y_true=rng.integers(0, c, n), logits=logits)
    tracemalloc.start()
    try:
        display = fc.ConfusionDisplay.from_predictions(p)
        cf.per_class_table(p.y_true, p.y_pred, n_classes=c)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert display.counts.sum() == n
    assert "probs" not in vars(p)  # argmax of the logits: no softmax
    assert peak < logits.nbytes / 4
