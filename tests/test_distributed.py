"""labviz.compute.distributed: Dask map_partitions + merge equals the one-shot functions."""

from __future__ import annotations

import numpy as np
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pytest.importorskip("pyarrow")

from labviz.compute.calibration import (  # noqa: E402
    debiased_calibration_error,
    expected_calibration_error,
    reliability_curve,
)
from labviz.compute.confusion import confusion_matrix  # noqa: E402
from labviz.compute.distributed import (  # noqa: E402
    calibration_from_dask,
    confusion_from_dask,
    prob_columns,
    write_parquet,
)

N_SAMPLES, N_CLASSES, ROWS = 2_300, 6, 500  # 5 partitions, the last one short


def _softmax32(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, N_CLASSES, N_SAMPLES)
    logits = rng.normal(size=(N_SAMPLES, N_CLASSES)) * 2.0
    logits[np.arange(N_SAMPLES), y] += 1.5  # better than chance, so bins are unevenly filled
    return y, _softmax32(logits)


@pytest.fixture(scope="module")
def parquet_dir(data, tmp_path_factory):
    y, probs = data
    folder = tmp_path_factory.mktemp("preds") / "parquet"
    files = write_parquet(folder, y_true=y, probs=probs, rows_per_partition=ROWS)
    assert [f.name for f in files] == [f"part-{i:05d}.parquet" for i in range(5)]
    return folder


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


# ----- on a local cluster ---------------------------------------------------------------------------
@pytest.mark.service
def test_calibration_on_local_cluster_equals_one_shot(client, data, parquet_dir):
    y, probs = data
    ddf = dd.read_parquet(parquet_dir)
    assert ddf.npartitions == 5
    acc = calibration_from_dask(ddf, label_col="y_true", prob_cols=prob_columns(N_CLASSES),
                                n_bins=10, classwise=True)
    assert acc.n_samples == N_SAMPLES
    for norm in ("l1", "l2", "max"):
        want = expected_calibration_error(y, probs, n_bins=10, norm=norm)
        assert acc.expected_calibration_error(norm=norm) == pytest.approx(want, abs=1e-12)
    want_cw = expected_calibration_error(y, probs, n_bins=10, classwise=True)
    assert acc.expected_calibration_error(classwise=True) == pytest.approx(want_cw, abs=1e-12)
    assert acc.debiased_calibration_error() == pytest.approx(
        debiased_calibration_error(y, probs, n_bins=10), abs=1e-12)
    got, want_curve = acc.reliability_curve(), reliability_curve(y, probs, n_bins=10)
    np.testing.assert_array_equal(got.count, want_curve.count)
    np.testing.assert_allclose(got.confidence, want_curve.confidence, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.accuracy, want_curve.accuracy, rtol=0, atol=1e-12)
    # the work ran on the cluster's two worker processes, not in this one
    assert len(client.scheduler_info()["workers"]) == 2


@pytest.mark.service
def test_confusion_on_local_cluster_equals_one_shot(client, data, parquet_dir):
    y, probs = data
    acc = confusion_from_dask(dd.read_parquet(parquet_dir), n_classes=N_CLASSES)
    want = confusion_matrix(y, probs.argmax(axis=1), n_classes=N_CLASSES)
    np.testing.assert_array_equal(acc.matrix(), want)
    assert acc.matrix().dtype == np.int64
    np.testing.assert_allclose(acc.matrix("true"), confusion_matrix(
        y, probs.argmax(axis=1), n_classes=N_CLASSES, normalize="true"), rtol=0, atol=1e-12)


# ----- without a cluster (Dask's default scheduler) -----------------------------------------------
def test_empty_partitions_and_tree_reduction(data, parquet_dir):
    y, probs = data
    ddf = dd.read_parquet(parquet_dir)
    ddf = ddf[ddf["y_true"] == 0]  # every partition shrinks; some may become empty
    mask = y == 0
    acc = calibration_from_dask(ddf, prob_cols=prob_columns(N_CLASSES), n_bins=7, split_every=2)
    assert acc.n_samples == mask.sum()
    assert acc.expected_calibration_error() == pytest.approx(
        expected_calibration_error(y[mask], probs[mask], n_bins=7), abs=1e-12)
    cm = confusion_from_dask(ddf, n_classes=N_CLASSES, split_every=2).matrix()
    np.testing.assert_array_equal(cm, confusion_matrix(y[mask], probs[mask].argmax(axis=1),
                                                       n_classes=N_CLASSES))


def test_parquet_round_trip_keeps_dtypes(data, parquet_dir):
    y, probs = data
    frame = dd.read_parquet(parquet_dir).compute()
    assert list(frame.columns) == ["y_true", "y_pred", *prob_columns(N_CLASSES)]
    assert frame["p0"].dtype == np.float32 and frame["y_true"].dtype == np.int64
    np.testing.assert_array_equal(frame[prob_columns(N_CLASSES)].to_numpy(), probs)
    np.testing.assert_array_equal(frame["y_true"].to_numpy(), y)


# ----- errors ---------------------------------------------------------------------------------------
def test_write_parquet_refuses_to_overwrite(data, tmp_path):
    y, probs = data
    write_parquet(tmp_path / "p", y_true=y[:10], probs=probs[:10])
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_parquet(tmp_path / "p", y_true=y[:10], probs=probs[:10])
    files = write_parquet(tmp_path / "p", y_true=y[:10], probs=probs[:10], overwrite=True,
                          rows_per_partition=4)
    assert len(files) == 3


def test_write_parquet_rejects_logits(tmp_path):
    with pytest.raises(ValueError, match="`probs` rows must sum to 1"):
        write_parquet(tmp_path / "p", y_true=[0, 1], probs=[[0.2, 0.2], [0.5, 0.5]])
    with pytest.raises(ValueError, match=r"`probs` must have shape \(n_samples, n_classes\)"):
        write_parquet(tmp_path / "q", y_true=[0, 1], probs=[0.2, 0.8])


def test_argument_errors(parquet_dir):
    ddf = dd.read_parquet(parquet_dir)
    with pytest.raises(TypeError, match="`ddf` must be a dask.dataframe.DataFrame; got DataFrame"):
        calibration_from_dask(ddf.compute(), prob_cols=prob_columns(N_CLASSES))
    with pytest.raises(ValueError, match=r"`ddf` must have the columns \['p6'\]"):
        calibration_from_dask(ddf, prob_cols=prob_columns(N_CLASSES + 1))
    with pytest.raises(TypeError, match="`prob_cols` must be a sequence of column names; got str"):
        calibration_from_dask(ddf, prob_cols="p0")
    with pytest.raises(ValueError, match="`prob_cols` must name at least 2 columns"):
        calibration_from_dask(ddf, prob_cols=["p0"])
    with pytest.raises(ValueError, match="`n_bins` must be >= 1; got 0"):
        calibration_from_dask(ddf, prob_cols=prob_columns(N_CLASSES), n_bins=0)
    with pytest.raises(ValueError, match="`split_every` must be >= 2; got 1"):
        confusion_from_dask(ddf, n_classes=N_CLASSES, split_every=1)
    with pytest.raises(TypeError, match="`pred_col` must be a column name"):
        confusion_from_dask(ddf, n_classes=N_CLASSES, pred_col=1)
    with pytest.raises(ValueError, match=r"`ddf` must have the columns \['guess'\]"):
        confusion_from_dask(ddf, n_classes=N_CLASSES, pred_col="guess")
