"""Hostile inputs: every bad argument fails with a ValueError or TypeError naming it and what was seen.

Never an IndexError, a MemoryError, an error from torch or numpy internals, a silent wrong answer
or a hang. And the unusual-but-valid layouts (non-contiguous, Fortran-order, read-only and
negative-stride arrays, torch tensors, pandas objects, lists) work and give the same answer as a plain
contiguous array.

Counted cases (each one a pytest item; 635 in all):

* 542 bad-input cases in ``test_bad_input_fails_clearly``: 20 bad ``probs`` and 9 bad labels for
  each of the 10 functions that take (labels, probs) (290); 9 bad labels and 18 bad ``probs`` for
  ``Predictions.from_arrays``; 9 bad label pairs x 5 confusion functions (45); 10 bad features x 6
  collapse functions (60) and 9 for ``project``; and 111 single cases for options (``n_bins``,
  ``strategy``, ``norm``, ``normalize``, ``k``, ``temperature``, ``classes``, ``method``...),
  matrices, Predictions, projections and the label-quality functions;
* 3 on logits vs probabilities: logits passed as ``probs`` are refused (2 cases), and a test
  documenting that probabilities passed as ``logits`` cannot be detected;
* 48 layouts and containers that must work and agree with contiguous input: 10 function groups x
  4 layouts (strided, Fortran-order, read-only, negative strides), 4 for Predictions and the views
  built on it, and 4 containers (torch tensors with grad, pandas with an index, lists, float32);
* 16 huge-class-count cases (C = 100_000 columns, or labels up to 10**6, with 4 samples): 10 that
  must run in bounded memory, and 6 regression cases (a table must not build a C x C matrix; a
  square result too large fails with a ValueError, not a raw MemoryError; class-wise quantile ECE
  must not loop over classes);
* 8 more regression cases (wrapped-around labels, float32 overflow, temperature overflow,
  ``subset([])``, bfloat16 tensors, float16 probabilities, unbounded ``n_bins``);
* 9 small regression cases (``classwise="no"``, ``symmetric="no"``, ``name=None``,
  meta-device tensors, the exact ``T_MAX``, an 8 GB ``CalibrationAccumulator``, a dense result
  from an explicit ``n_classes``);
* 6 on an explicit ``n_classes`` too small for the labels: 5 functions whose message names
  ``n_classes`` and the largest label, and a negative label, which still blames the labels;
* 3 on sample ids (2-D, repeated, unknown), through their one check.

So 587 hostile inputs (542 + 3 + 16 + 8 + 9 + 6 + 3).
"""

from __future__ import annotations

import dataclasses
import tracemalloc
import warnings

import numpy as np
import pandas as pd
import pytest

from labviz.compute import calibration as cal
from labviz.compute import collapse as co
from labviz.compute import confusion as cf
from labviz.compute import label_quality as lq
from labviz.compute import projection as pj
from labviz.core.predictions import Predictions

# ----- fixtures of valid data ---------------------------------------------------------------------
Y = np.array([0, 1, 2, 1, 0, 2])
P = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6],
              [0.3, 0.4, 0.3], [0.5, 0.25, 0.25], [0.1, 0.1, 0.8]])
LOGITS = np.log(P) + 1.5
X = np.array([[1.0, 0.2, -0.3], [0.9, -0.1, 0.4], [-0.5, 1.0, 0.2],
              [0.3, 1.2, -0.8], [1.1, 0.1, 0.0], [-0.7, -0.4, 1.3]])
W = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def _preds(**kw) -> Predictions:
    return Predictions.from_arrays(y_true=Y, logits=LOGITS, features=X, weights=W, **kw)


# ----- functions under test, grouped by the shape of their data arguments --------------------------
# (name, label argument's name, call(labels, probs))
PROBS_FUNCS = [
    ("reliability_curve", "y_true", lambda y, p: cal.reliability_curve(y, p, n_bins=5)),
    ("ece", "y_true", lambda y, p: cal.expected_calibration_error(y, p, n_bins=5)),
    ("ece_classwise_quantile", "y_true",
     lambda y, p: cal.expected_calibration_error(y, p, n_bins=3, strategy="quantile", classwise=True)),
    ("debiased", "y_true", lambda y, p: cal.debiased_calibration_error(y, p, n_bins=3, classwise=True)),
    ("nll", "y_true", cal.negative_log_likelihood),
    ("brier", "y_true", cal.brier_score),
    ("accumulator", "y_true", lambda y, p: cal.CalibrationAccumulator(3, n_bins=5).update(y, p)),
    ("per_sample_loss", "y", lq.per_sample_loss),
    ("misclassified_confidence", "y_true", lambda y, p: co.misclassified_confidence(p, y)),
    ("find_label_errors", "y_given", lq.find_label_errors),
]

_nan = P.copy()
_nan[1, 1] = np.nan
_inf = P.copy()
_inf[0, 0] = np.inf
# (id, bad probs, exception, message pattern); every pattern names `probs` and what was seen
BAD_PROBS = [
    ("nan", _nan, ValueError, r"`probs` must be finite; got 1 NaN or inf"),
    ("inf", _inf, ValueError, r"`probs` must be finite; got 1 NaN or inf"),
    ("neg-inf", -_inf, ValueError, r"`probs` must be finite; got 1 NaN or inf"),
    ("strings", P.astype(str), TypeError, r"`probs` must hold real numbers; got .*dtype <U"),
    ("objects", P.astype(object), TypeError, r"`probs` must hold real numbers; got .*dtype object"),
    ("booleans", P > 0.3, TypeError, r"`probs` must hold real numbers; got .*dtype bool"),
    ("complex", P.astype(complex), TypeError, r"`probs` must hold real numbers; got .*complex"),
    ("none", None, TypeError, r"`probs` must be array-like; got None"),
    ("ragged", [[0.5, 0.5], [1.0]] * 3, TypeError, r"`probs` must be array-like; got list"),
    ("scalar", 0.5, ValueError, r"`probs` must have shape \(n_samples, n_classes\); got \(\)"),
    ("1-d", P[:, 0], ValueError, r"`probs` must have shape \(n_samples, n_classes\); got \(6,\)"),
    ("3-d", P[None], ValueError, r"`probs` must have shape \(n_samples, n_classes\); got \(1, 6, 3\)"),
    ("no-columns", np.zeros((6, 0)), ValueError, r"`probs` must not be empty; got shape \(6, 0\)"),
    ("one-column", np.ones((6, 1)), ValueError, r"`probs` must have at least 2 classes.*got shape \(6, 1\)"),
    ("rows-sum-0.9", P * 0.9, ValueError, r"`probs` rows must sum to 1; got row 0 summing to 0\.9"),
    ("rows-sum-2", np.hstack([P, P])[:, :3] * 2, ValueError, r"`probs` must hold probabilities in \[0, 1\]"),
    ("negative", P + np.array([-0.2, 0.1, 0.1]), ValueError,
     r"`probs` must hold probabilities in \[0, 1\]; got values in \[-0\.1"),
    # logits where probabilities are expected: the message says what to do
    ("logits", LOGITS, ValueError, r"`probs` must hold probabilities.*If these are logits, apply a softmax"),
    ("logits-in-unit-range", np.full((6, 3), 0.9), ValueError, r"`probs` rows must sum to 1; got row 0 summing to 2\.7"),
    ("wrong-length", P[:4], ValueError, r"same number of samples; got `y.*` has 6, `probs` has 4"),
]

# (id, bad labels, exception, message pattern with {y} for the label argument's name)
BAD_LABELS = [
    ("out-of-range", np.array([0, 1, 3, 1, 0, 2]), ValueError, r"`{y}` must hold labels in \[0, 2\]; got values in \[0, 3\]"),
    ("negative", np.array([0, -1, 2, 1, 0, 2]), ValueError, r"`{y}` must hold labels in \[0, 2\]; got values in \[-1, 2\]"),
    ("non-integer-floats", Y + 0.5, TypeError, r"`{y}` must hold integer class labels; got non-integer floats"),
    ("nan", np.array([0, 1, np.nan, 1, 0, 2]), TypeError, r"`{y}` must hold integer class labels; got non-integer floats such as .*nan"),
    ("strings", np.array(list("abcabc")), TypeError, r"`{y}` must hold integer class labels; got .*dtype <U1"),
    ("booleans", Y > 0, TypeError, r"`{y}` must hold integer class labels; got .*dtype bool"),
    ("objects", Y.astype(object), TypeError, r"`{y}` must hold integer class labels; got .*dtype object"),
    ("2-d", Y[:, None], ValueError, r"`{y}` must have shape \(n_samples,\); got \(6, 1\)"),
    ("empty", np.array([], dtype=int), ValueError, r"`{y}` must not be empty|same number of samples"),
]

PAIR_FUNCS = [
    ("confusion_matrix", cf.confusion_matrix),
    ("per_class_table", cf.per_class_table),
    ("top_confused_pairs", cf.top_confused_pairs),
    ("cell_samples", lambda a, b: cf.cell_samples(a, b, 0, 0)),
    ("ConfusionAccumulator", lambda a, b: cf.ConfusionAccumulator(3).update(a, b)),
]
BAD_PAIRS = [
    ("nan", np.array([0, 1, np.nan, 2]), np.array([0, 1, 2, 2]), TypeError, r"`y_true` must hold integer class labels.*nan"),
    ("inf", np.array([0, 1, 1, 2]), np.array([0, 1, np.inf, 2]), TypeError, r"`y_pred` must hold integer class labels.*inf"),
    ("strings", np.array([0, 1, 1, 2]), np.array(list("abcd")), TypeError, r"`y_pred` must hold integer class labels; got .*<U1"),
    ("objects", np.array([0, 1, 1, 2]), np.array([0, 1, 2, None], dtype=object), TypeError, r"`y_pred` must hold integer class labels; got .*object"),
    ("booleans", np.array([True, False, True, True]), np.array([0, 1, 1, 0]), TypeError, r"`y_true` must hold integer class labels; got .*bool"),
    ("2-d", np.array([[0, 1, 1, 2]]), np.array([[0, 1, 1, 2]]), ValueError, r"`y_true` must have shape \(n_samples,\); got \(1, 4\)"),
    ("empty", [], [], ValueError, r"`y_true` must not be empty; got shape \(0,\)"),
    ("negative", np.array([0, 1, 1, 2]), np.array([0, -1, 1, 2]), ValueError, r"`y_pred` must hold labels in .*got values in \[-1, 2\]"),
    ("lengths", np.array([0, 1, 1, 2]), np.array([0, 1, 1]), ValueError, r"same number of samples; got `y_true` has 4, `y_pred` has 3"),
]

FEATURE_FUNCS = [
    ("intra_class_variation", lambda x: co.intra_class_variation(x, Y)),
    ("inter_class_separability", lambda x: co.inter_class_separability(x, Y)),
    ("nc1", lambda x: co.nc1(x, Y)),
    ("class_mean_cosine", lambda x: co.class_mean_cosine(x, Y)),
    ("collapse_metrics", lambda x: co.collapse_metrics(x, Y)),
    ("template_projection", lambda x: co.template_projection(x, W, (0, 1, 2))),
]
_xnan = X.copy()
_xnan[2, 1] = np.nan
BAD_FEATURES = [
    ("nan", _xnan, ValueError, r"`features` must be finite; got 1 NaN or inf"),
    ("inf", np.full_like(X, np.inf), ValueError, r"`features` must be finite; got 18 NaN or inf"),
    ("strings", X.astype(str), TypeError, r"`features` must hold real numbers; got .*<U"),
    ("objects", X.astype(object), TypeError, r"`features` must hold real numbers; got .*object"),
    ("booleans", X > 0, TypeError, r"`features` must hold real numbers; got .*bool"),
    ("1-d", X[:, 0], ValueError, r"`features` must have shape \(n_samples, n_features\); got \(6,\)"),
    ("3-d", X[None], ValueError, r"`features` must have shape \(n_samples, n_features\); got \(1, 6, 3\)"),
    ("no-rows", np.zeros((0, 3)), ValueError, r"`features` must not be empty; got shape \(0, 3\)"),
    ("no-columns", np.zeros((6, 0)), ValueError, r"`features` must not be empty; got shape \(6, 0\)"),
    ("none", None, TypeError, r"`features` must be array-like; got None"),
]

_errors_frame = pd.DataFrame({"given": [1, 1], "predicted": [0, 2]})

# (id, call, exception, message pattern): options, matrices and everything else
SINGLE_CASES = [
    # calibration options
    ("n_bins=0", lambda: cal.expected_calibration_error(Y, P, n_bins=0), ValueError, r"`n_bins` must be >= 1; got 0"),
    ("n_bins=-3", lambda: cal.reliability_curve(Y, P, n_bins=-3), ValueError, r"`n_bins` must be >= 1; got -3"),
    ("n_bins=2.5", lambda: cal.expected_calibration_error(Y, P, n_bins=2.5), TypeError, r"`n_bins` must be an integer; got float 2\.5"),
    ("n_bins=True", lambda: cal.debiased_calibration_error(Y, P, n_bins=True), TypeError, r"`n_bins` must be an integer; got bool"),
    ("n_bins='5'", lambda: cal.reliability_curve(Y, P, n_bins="5"), TypeError, r"`n_bins` must be an integer; got str '5'"),
    ("n_bins=None", lambda: cal.expected_calibration_error(Y, P, n_bins=None), TypeError, r"`n_bins` must be an integer; got NoneType"),
    ("strategy", lambda: cal.expected_calibration_error(Y, P, strategy="Uniform"), ValueError,
     r"`strategy` must be one of \['uniform', 'quantile'\]; got 'Uniform'"),
    ("strategy-list", lambda: cal.reliability_curve(Y, P, strategy=["uniform"]), ValueError, r"`strategy` must be one of .*got \['uniform'\]"),
    ("norm", lambda: cal.expected_calibration_error(Y, P, norm="l3"), ValueError, r"`norm` must be one of \['l1', 'l2', 'max'\]; got 'l3'"),
    ("curve-norm", lambda: cal.reliability_curve(Y, P).calibration_error("L1"), ValueError, r"`norm` must be one of .*got 'L1'"),
    ("binary-2d", lambda: cal.reliability_curve_binary(Y % 2, P), ValueError, r"`prob_pos` must have shape \(n_samples,\); got \(6, 3\)"),
    ("binary-range", lambda: cal.reliability_curve_binary([0, 1], [0.2, 1.5]), ValueError,
     r"`prob_pos` must hold probabilities in \[0, 1\]; got values in \[0\.2, 1\.5\]"),
    ("binary-labels", lambda: cal.reliability_curve_binary([0, 2], [0.2, 0.5]), ValueError, r"`y_true` must hold labels in \[0, 1\]; got values in \[0, 2\]"),
    ("binary-nan", lambda: cal.reliability_curve_binary([0, 1], [np.nan, 0.5]), ValueError, r"`prob_pos` must be finite"),
    ("temperature=0", lambda: cal.apply_temperature(LOGITS, 0), ValueError, r"`temperature` must be finite and > 0; got 0\.0"),
    ("temperature=-1", lambda: cal.apply_temperature(LOGITS, -1.0), ValueError, r"`temperature` must be finite and > 0; got -1\.0"),
    ("temperature=nan", lambda: cal.apply_temperature(LOGITS, float("nan")), ValueError, r"`temperature` must be finite and > 0; got nan"),
    ("temperature=inf", lambda: cal.apply_temperature(LOGITS, float("inf")), ValueError, r"`temperature` must be finite and > 0; got inf"),
    ("temperature='2'", lambda: cal.apply_temperature(LOGITS, "2"), TypeError, r"`temperature` must be a real number; got str"),
    ("temperature=True", lambda: cal.apply_temperature(LOGITS, True), TypeError, r"`temperature` must be a real number; got bool"),
    ("apply-logits-nan", lambda: cal.apply_temperature(np.full((2, 2), np.nan), 1.0), ValueError, r"`logits` must be finite; got 4"),
    ("fit-logits-1col", lambda: cal.fit_temperature(np.ones((3, 1)), [0, 0, 0]), ValueError, r"`logits` must have at least 2 classes.*\(3, 1\)"),
    ("fit-labels", lambda: cal.fit_temperature(LOGITS, Y + 1), ValueError, r"`y_true` must hold labels in \[0, 2\]; got values in \[1, 3\]"),
    ("fit-lengths", lambda: cal.fit_temperature(LOGITS, Y[:5]), ValueError, r"`y_true` has 5, `logits` has 6"),
    ("report-test-labels", lambda: cal.temperature_scaling_report(LOGITS, Y, LOGITS, Y + 1), ValueError, r"`test_y` must hold labels in \[0, 2\]"),
    ("report-test-logits", lambda: cal.temperature_scaling_report(LOGITS, Y, LOGITS[:, :1], Y), ValueError, r"`test_logits` must have at least 2 classes"),
    ("accumulator-classes", lambda: cal.CalibrationAccumulator(1), ValueError, r"`n_classes` must be >= 2; got 1"),
    ("accumulator-quantile", lambda: cal.CalibrationAccumulator(3, strategy="quantile"), ValueError, r"`strategy` must be 'uniform' .*got 'quantile'"),
    ("accumulator-columns", lambda: cal.CalibrationAccumulator(4).update(Y, P), ValueError, r"`probs` must have shape \(n_samples, 4\); got \(6, 3\)"),
    ("accumulator-empty", lambda: cal.CalibrationAccumulator(3).expected_calibration_error(), ValueError, r"at least one sample; got none"),
    ("accumulator-merge", lambda: cal.CalibrationAccumulator(3).merge(cal.CalibrationAccumulator(4)), ValueError, r"`other` must have the same .*got \(4, 15, True\)"),
    ("accumulator-merge-type", lambda: cal.CalibrationAccumulator(3).merge(P), TypeError, r"`other` must be a CalibrationAccumulator; got ndarray"),
    # confusion options and matrices
    ("n_classes-too-small", lambda: cf.confusion_matrix([0, 2], [1, 2], n_classes=2), ValueError, r"`n_classes` must be greater than the largest label; got n_classes=2 and labels up to 2 in `y_true`"),
    ("n_classes=0", lambda: cf.confusion_matrix([0], [0], n_classes=0), ValueError, r"`n_classes` must be >= 1; got 0"),
    ("n_classes=3.0", lambda: cf.per_class_table([0], [0], n_classes=3.0), TypeError, r"`n_classes` must be an integer; got float 3\.0"),
    ("normalize", lambda: cf.confusion_matrix([0], [0], normalize="rows"), ValueError, r"`normalize` must be one of \[None, 'true', 'pred', 'all'\]; got 'rows'"),
    ("k=0", lambda: cf.top_confused_pairs([0, 1], [1, 0], k=0), ValueError, r"`k` must be >= 1; got 0"),
    ("class_names-count", lambda: cf.per_class_table([0, 1], [1, 0], class_names=["a"]), ValueError, r"`class_names` must have 2 entries .*got 1"),
    ("class_names-string", lambda: cf.top_confused_pairs([0, 1], [1, 0], class_names="ab"), TypeError, r"`class_names` must be a sequence of strings; got the string 'ab'"),
    ("true_class=-1", lambda: cf.cell_samples([0, 1], [1, 0], -1, 0), ValueError, r"`true_class` must be >= 0; got -1"),
    ("pred_class=1.0", lambda: cf.cell_samples([0, 1], [1, 0], 0, 1.0), TypeError, r"`pred_class` must be an integer; got float 1\.0"),
    ("cell-ids-length", lambda: cf.cell_samples([0, 1], [1, 0], 0, 1, ids=[5]), ValueError, r"`y_true` has 2, `ids` has 1"),
    ("cell-ids-float", lambda: cf.cell_samples([0, 1], [1, 0], 0, 1, ids=[5.0, 6.0]), TypeError, r"`ids` must be a 1-D array of integer sample ids; got .*float64"),
    ("matrix-nan", lambda: cf.normalize_confusion([[1, np.nan], [0, 1]], "true"), ValueError, r"`cm_counts` must be finite; got 1"),
    ("matrix-negative", lambda: cf.normalize_confusion([[1, -1], [0, 1]], None), ValueError, r"`cm_counts` must hold non-negative values; got minimum -1"),
    ("matrix-fractional", lambda: cf.normalize_confusion([[1, 0.5], [0, 1]], "all"), ValueError, r"`cm_counts` must hold integer counts; got .*0\.5"),
    ("matrix-rectangular", lambda: cf.normalize_confusion([[1, 1, 1], [0, 1, 1]], "true"), ValueError, r"`cm_counts` must have shape \(n_classes, n_classes\); got \(2, 3\)"),
    ("matrix-strings", lambda: cf.normalize_confusion([["1", "0"], ["0", "1"]], "true"), TypeError, r"`cm_counts` must hold real numbers; got .*<U1"),
    ("matrix-empty", lambda: cf.class_order(np.zeros((0, 0))), ValueError, r"`cm` must not be empty; got shape \(0, 0\)"),
    ("matrix-3d", lambda: cf.class_order(np.zeros((3, 3, 1))), ValueError, r"`cm` must have shape \(n_classes, n_classes\); got \(3, 3, 1\)"),
    ("accumulator-merge-classes", lambda: cf.ConfusionAccumulator(3).merge(cf.ConfusionAccumulator(4)), ValueError, r"`other` must have n_classes=3; got 4"),
    ("accumulator-merge-matrix", lambda: cf.ConfusionAccumulator(3).merge(np.zeros((3, 3))), TypeError, r"`other` must be a ConfusionAccumulator; got ndarray"),
    # collapse
    ("one-class", lambda: co.nc1(X, np.zeros(6, dtype=int)), ValueError, r"`y` must contain at least 2 classes; got only class 0"),
    ("zero-row", lambda: co.intra_class_variation(np.vstack([X[:5], np.zeros(3)]), Y), ValueError, r"`features` must have no all-zero rows.*got 1"),
    ("feature-label-lengths", lambda: co.nc1(X, Y[:5]), ValueError, r"`features` has 6, `y` has 5"),
    ("cosine-n_classes", lambda: co.class_mean_cosine(X, Y, n_classes=2), ValueError, r"`n_classes` must be greater than the largest label; got n_classes=2 and labels up to 2 in `y`"),
    ("weights-nan", lambda: co.template_projection(X, W * np.nan, (0, 1, 2)), ValueError, r"`weights` must be finite"),
    ("weights-dims", lambda: co.template_projection(X, np.eye(3, 5), (0, 1, 2)), ValueError, r"`features` must have shape \(n_samples, 5\) to match `weights`; got \(6, 3\)"),
    ("classes-out-of-range", lambda: co.template_projection(X, W, (0, 1, 3)), ValueError, r"`classes` must be in \[0, 2\]; got \(0, 1, 3\)"),
    ("classes-repeated", lambda: co.template_projection(X, W, (0, 1, 1)), ValueError, r"`classes` must be 3 distinct class indices; got \(0, 1, 1\)"),
    ("classes-two", lambda: co.template_projection(X, W, (0, 1)), ValueError, r"`classes` must hold exactly 3 class indices; got 2"),
    ("classes-string", lambda: co.template_projection(X, W, "012"), TypeError, r"`classes` must be a sequence of 3 class indices; got str"),
    ("classes-collinear", lambda: co.template_projection(X, np.array([[0.0, 0, 0], [1, 1, 1], [2, 2, 2]]), (0, 1, 2)), ValueError, r"`weights` rows \(0, 1, 2\) must not be collinear"),
    ("plane-frame-no-weights", lambda: co.template_plane_frame(Predictions.from_arrays(y_true=Y, logits=LOGITS, features=X), (0, 1, 2)), ValueError, r"`predictions` must hold `features` and `weights`.*weights=None"),
    ("plane-frame-array", lambda: co.template_plane_frame(X, (0, 1, 2)), TypeError, r"`predictions` must be a labviz.Predictions; got ndarray"),
    ("collapse-table-empty", lambda: co.collapse_table([]), ValueError, r"`predictions` must not be empty; got 0"),
    ("collapse-table-array", lambda: co.collapse_table(X), TypeError, r"`predictions` must be a sequence of labviz.Predictions; got ndarray"),
    ("collapse-table-groups", lambda: co.collapse_table([_preds()], group_by=["a", "b"]), ValueError, r"`group_by` must give one group per checkpoint \(1\); got 2"),
    ("collapse-summary-columns", lambda: co.collapse_summary(pd.DataFrame({"a": [1]})), ValueError, r"`table` must have columns .*got \['a'\]"),
    ("collapse-metrics-y-twice", lambda: co.collapse_metrics(_preds(), Y), TypeError, r"`features` must be a labviz.Predictions, or an array given with `y`; got Predictions and `y`"),
    ("misclassified-no-labels", lambda: co.misclassified_confidence(P), TypeError, r"`probs` must be a labviz.Predictions, or an array given with `y_true`; got ndarray without `y_true`"),
    # projection
    ("project-one-row", lambda: pj.project(X[:1]), ValueError, r"`features` must have at least 2 samples .*got \(1, 3\)"),
    ("project-method", lambda: pj.project(X, method="PCA"), ValueError, r"`method` must be one of \['pca', 'umap', 'tsne'\]; got 'PCA'"),
    ("project-seed", lambda: pj.project(X, random_state=-1), ValueError, r"`random_state` must be >= 0; got -1"),
    ("project-perplexity", lambda: pj.project(X, method="tsne", perplexity=10.0), ValueError, r"`perplexity` must be less than the number of samples.*perplexity=10\.0 with 6"),
    ("project-neighbours", lambda: pj.project(X, method="umap", n_neighbors=6), ValueError, r"`n_neighbors` must be less than the number of samples.*n_neighbors=6 with 6"),
    ("frame-no-features", lambda: pj.projection_frame(Predictions.from_arrays(y_true=Y, logits=LOGITS)), ValueError, r"`predictions` must hold features .*got features=None"),
    ("frame-array", lambda: pj.projection_frame(X), TypeError, r"`predictions` must be a labviz.Predictions; got ndarray"),
    ("frame-cache", lambda: pj.projection_frame(_preds(), cache="yes"), TypeError, r"`cache` must be a bool; got str"),
    ("aligned-shared-ids", lambda: pj.aligned_projections(_preds(), _preds(ids=np.arange(6) + 10)), ValueError, r"must share at least 3 sample ids .*got 0 shared ids"),
    ("aligned-alignment", lambda: pj.aligned_projections(_preds(), _preds(), alignment="icp"), ValueError, r"`alignment` must be one of \['procrustes', 'shared_pca'\]; got 'icp'"),
    # label quality
    ("beta-equal", lambda: lq.fit_beta_mixture([0.3] * 5), ValueError, r"`losses` must not all be equal .*0\.3"),
    ("beta-nan", lambda: lq.fit_beta_mixture([0.1, np.nan, 1.0]), ValueError, r"`losses` must be finite; got 1"),
    ("beta-2d", lambda: lq.fit_beta_mixture([[0.1, 0.2]]), ValueError, r"`losses` must have shape \(n_samples,\); got \(1, 2\)"),
    ("beta-empty", lambda: lq.fit_beta_mixture([]), ValueError, r"`losses` must not be empty"),
    ("beta-percentiles-order", lambda: lq.fit_beta_mixture([0.1, 0.5, 1.0], percentiles=(60, 40)), ValueError, r"`percentiles` must satisfy 0 <= low < high <= 100; got \(60, 40\)"),
    ("beta-percentiles-type", lambda: lq.fit_beta_mixture([0.1, 0.5, 1.0], percentiles="ab"), TypeError, r"`percentiles` must be a pair of numbers; got 'ab'"),
    ("beta-n_iter", lambda: lq.fit_beta_mixture([0.1, 0.5, 1.0], n_iter=0), ValueError, r"`n_iter` must be >= 1; got 0"),
    ("beta-posterior-nan", lambda: lq.fit_beta_mixture([0.1, 0.5, 1.0]).posterior_noisy([np.nan]), ValueError, r"`losses` must be finite"),
    ("non_uniformity-one-column", lambda: lq.non_uniformity(np.ones((3, 1))), ValueError, r"`probs` must have at least 2 classes"),
    ("decile-nan", lambda: lq.accuracy_by_decile([np.nan, 1.0], [True, False], n_bins=1), ValueError, r"`score` must be finite"),
    ("decile-correct-values", lambda: lq.accuracy_by_decile([0.1, 1.0], [2, 1], n_bins=1), TypeError, r"`correct` must hold booleans \(or 0/1\); got .*int64"),
    ("decile-correct-strings", lambda: lq.accuracy_by_decile([0.1, 1.0], ["y", "n"], n_bins=1), TypeError, r"`correct` must hold booleans .*<U1"),
    ("decile-n_bins", lambda: lq.accuracy_by_decile([0.1, 1.0], [1, 0], n_bins=3), ValueError, r"`n_bins` must be at most the number of samples \(2\); got 3"),
    ("decile-lengths", lambda: lq.accuracy_by_decile([0.1, 1.0], [1], n_bins=1), ValueError, r"`score` has 2, `correct` has 1"),
    ("label-errors-missing-class", lambda: lq.find_label_errors([0, 0, 1], np.eye(3)[[0, 0, 1]]), ValueError, r"`y_given` must contain every class .*got no samples of classes \[2\]"),
    ("label-errors-filter", lambda: lq.find_label_errors(Y, P, filter_by="magic"), ValueError, r"`filter_by` must be one of .*got 'magic'"),
    ("label-errors-ids", lambda: lq.find_label_errors(Y, P, ids=Y + 0.5), TypeError, r"`ids` must be a 1-D array of integer sample ids; got .*float64"),
    ("label-error-pairs-columns", lambda: lq.label_error_pairs(pd.DataFrame({"x": [1]})), ValueError, r"`errors` must have columns \['given', 'predicted'\]; got \['x'\]"),
    ("label-error-pairs-type", lambda: lq.label_error_pairs(_errors_frame.to_dict()), TypeError, r"`errors` must be a pandas DataFrame; got dict"),
    # Predictions
    ("predictions-both", lambda: Predictions.from_arrays(y_true=Y, logits=LOGITS, probs=P), TypeError, r"exactly one of `logits` or `probs`; got both"),
    ("predictions-neither", lambda: Predictions.from_arrays(y_true=Y), TypeError, r"exactly one of `logits` or `probs`; got neither"),
    ("predictions-ids-repeated", lambda: Predictions.from_arrays(y_true=Y, logits=LOGITS, ids=[0, 0, 1, 2, 3, 4]), ValueError, r"`ids` must be a 1-D array of unique integer sample ids; got 1 repeated, e\.g\. \[0\]"),
    ("predictions-ids-float", lambda: Predictions.from_arrays(y_true=Y, logits=LOGITS, ids=Y * 1.0), TypeError, r"`ids` must be a 1-D array of unique integer sample ids; got .*float64"),
    ("predictions-weights", lambda: Predictions.from_arrays(y_true=Y, logits=LOGITS, features=X, weights=np.eye(3, 4)), ValueError, r"`weights` must have shape \(3, 3\); got \(3, 4\)"),
    ("predictions-bias", lambda: Predictions.from_arrays(y_true=Y, logits=LOGITS, bias=[0.0, 1.0]), ValueError, r"`bias` must have shape \(3,\); got \(2,\)"),
    ("predictions-images", lambda: Predictions.from_arrays(y_true=Y, logits=LOGITS, images=np.zeros((6, 4))), ValueError, r"`images` must have shape \(n_samples, height, width\); got \(6, 4\)"),
    ("predictions-y_given", lambda: Predictions.from_arrays(y_true=Y, logits=LOGITS, y_given=Y[:3]), ValueError, r"`y_true` has 6, `y_given` has 3"),
    ("predictions-features-nan", lambda: Predictions.from_arrays(y_true=Y, logits=LOGITS, features=_xnan), ValueError, r"`features` must be finite; got 1"),
    ("subset-out-of-range", lambda: _preds().subset([7]), ValueError, r"`index` must hold labels in \[0, 5\]; got values in \[7, 7\]"),
    ("subset-mask-shape", lambda: _preds().subset([True, False]), ValueError, r"`index` as a mask must have shape \(6,\); got \(2,\)"),
]


def _cases():
    for name, yname, fn in PROBS_FUNCS:
        for pid, bad, exc, pattern in BAD_PROBS:
            yield pytest.param(lambda fn=fn, bad=bad: fn(Y, bad), exc, pattern, id=f"{name}-probs-{pid}")
        for lid, bad, exc, pattern in BAD_LABELS:
            yield pytest.param(lambda fn=fn, bad=bad: fn(bad, P), exc, pattern.format(y=yname),
                               id=f"{name}-labels-{lid}")
    for lid, bad, exc, pattern in BAD_LABELS:
        yield pytest.param(lambda bad=bad: Predictions.from_arrays(y_true=bad, logits=LOGITS), exc,
                           pattern.format(y="y_true"), id=f"Predictions-labels-{lid}")
    for pid, bad, exc, pattern in BAD_PROBS:
        if pid not in ("wrong-length", "none"):  # probs=None means "neither": a case of its own
            yield pytest.param(lambda bad=bad: Predictions.from_arrays(y_true=Y, probs=bad), exc, pattern,
                               id=f"Predictions-probs-{pid}")
    for name, fn in PAIR_FUNCS:
        for pid, yt, yp, exc, pattern in BAD_PAIRS:
            yield pytest.param(lambda fn=fn, yt=yt, yp=yp: fn(yt, yp), exc, pattern, id=f"{name}-{pid}")
    for name, fn in FEATURE_FUNCS:
        for fid, bad, exc, pattern in BAD_FEATURES:
            yield pytest.param(lambda fn=fn, bad=bad: fn(bad), exc, pattern, id=f"{name}-features-{fid}")
    for fid, bad, exc, pattern in BAD_FEATURES:
        if fid not in ("no-rows",):  # project needs 2 rows: its own message, tested below
            yield pytest.param(lambda bad=bad: pj.project(bad), exc, pattern, id=f"project-features-{fid}")
    for cid, call, exc, pattern in SINGLE_CASES:
        yield pytest.param(call, exc, pattern, id=cid)


@pytest.mark.parametrize(("call", "exc", "pattern"), list(_cases()))
def test_bad_input_fails_clearly(call, exc, pattern):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. cleanlab's "too few examples"; only the error matters
        with pytest.raises(exc, match=pattern):
            call()


# ----- logits and probabilities -------------------------------------------------------------------
def test_logits_given_as_probs_are_refused_with_a_hint():
    with pytest.raises(ValueError, match=r"`probs` must hold probabilities in \[0, 1\].*pass them as `logits`"):
        Predictions.from_arrays(y_true=Y, probs=LOGITS)


def test_positive_logits_given_as_probs_fail_on_the_row_sums():
    z = np.abs(LOGITS) / np.abs(LOGITS).max()  # in [0, 1], but rows do not sum to 1
    with pytest.raises(ValueError, match=r"`probs` rows must sum to 1; got row \d+ summing to"):
        Predictions.from_arrays(y_true=Y, probs=z)


def test_probs_given_as_logits_cannot_be_detected():
    # Any real matrix is a valid set of logits, so probabilities passed as `logits` are accepted:
    # labviz never guesses from value ranges (CONVENTIONS 4). They are softmaxed once more, which
    # flattens them towards uniform. This test documents that behaviour; it cannot be an error.
    p = Predictions.from_arrays(y_true=Y, logits=P)
    np.testing.assert_array_equal(p.y_pred, P.argmax(axis=1))  # the argmax survives...
    assert not np.allclose(p.probs, P)  # ...but the probabilities are not the ones given
    assert p.confidence.max() < P.max(axis=1).max()


# ----- unusual but valid layouts ------------------------------------------------------------------
def _strided(a: np.ndarray) -> np.ndarray:
    """The same values as a non-contiguous view (every other element of a bigger array)."""
    big = np.zeros(tuple(2 * s for s in a.shape), dtype=a.dtype)
    view = big[tuple(slice(None, None, 2) for _ in a.shape)]
    view[...] = a
    assert not view.flags.c_contiguous or a.size <= 1
    return view


def _readonly(a: np.ndarray) -> np.ndarray:
    out = a.copy()
    out.setflags(write=False)
    return out


def _reversed(a: np.ndarray) -> np.ndarray:
    """The same values through negative strides."""
    return a[::-1].copy()[::-1]


LAYOUTS = {
    "strided": _strided,
    "fortran": np.asfortranarray,
    "readonly": _readonly,
    "negative-strides": _reversed,
}


Y2 = np.concatenate([Y, Y])
P2 = np.concatenate([P, P[::-1]])
X2 = np.concatenate([X, X * 1.5])

# (id, call(layout)) where layout(a) returns a differently laid out array with the same values
LAYOUT_FUNCS = {
    "ece": lambda L: cal.expected_calibration_error(L(Y2), L(P2), n_bins=4),
    "ece-classwise-quantile": lambda L: cal.expected_calibration_error(L(Y2), L(P2), n_bins=3, strategy="quantile", classwise=True),
    "debiased": lambda L: cal.debiased_calibration_error(L(Y2), L(P2), n_bins=3, classwise=True),
    "curve": lambda L: cal.reliability_curve(L(Y2), L(P2), n_bins=4),
    "nll-brier": lambda L: (cal.negative_log_likelihood(L(Y2), L(P2)), cal.brier_score(L(Y2), L(P2))),
    "temperature": lambda L: (cal.apply_temperature(L(np.log(P2)), 2.0), cal.fit_temperature(L(np.log(P2)), L(Y2))),
    "confusion": lambda L: (cf.confusion_matrix(L(Y2), L(Y2[::-1].copy()), normalize="true"),
                            cf.per_class_table(L(Y2), L(Y2[::-1].copy())),
                            cf.top_confused_pairs(L(Y2), L(Y2[::-1].copy())),
                            cf.class_order(L(cf.confusion_matrix(Y2, Y2[::-1])))),
    "project": lambda L: pj.project(L(X2)),
    "collapse": lambda L: (co.collapse_metrics(L(X2), L(Y2)), co.class_mean_cosine(L(X2), L(Y2)),
                           co.template_projection(L(X2), L(W), (0, 1, 2))),
    "label-quality": lambda L: (lq.per_sample_loss(L(Y2), L(P2)), lq.non_uniformity(L(P2)),
                                lq.fit_beta_mixture(L(lq.per_sample_loss(Y2, P2))).posterior_noisy(L(np.linspace(0, 2, 5))),
                                lq.accuracy_by_decile(L(P2[:, 0]), L(Y2 == 0), n_bins=3)),
}


def _assert_same(a, b) -> None:
    if isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    elif dataclasses.is_dataclass(a):
        _assert_same(tuple(getattr(a, f.name) for f in dataclasses.fields(a)),
                     tuple(getattr(b, f.name) for f in dataclasses.fields(b)))
    else:
        np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("func", list(LAYOUT_FUNCS))
def test_unusual_layouts_work_and_agree(func, layout):
    fn = LAYOUT_FUNCS[func]
    expected = fn(np.ascontiguousarray)
    _assert_same(fn(LAYOUTS[layout]), expected)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_predictions_accept_unusual_layouts(layout):
    L = LAYOUTS[layout]
    p = Predictions.from_arrays(y_true=L(Y2), logits=L(np.log(P2)), features=L(X2), weights=L(W))
    q = Predictions.from_arrays(y_true=Y2, logits=np.log(P2), features=X2, weights=W)
    np.testing.assert_array_equal(p.probs, q.probs)
    pd.testing.assert_frame_equal(pj.projection_frame(p), pj.projection_frame(q))
    pd.testing.assert_frame_equal(co.template_plane_frame(p, (0, 1, 2)), co.template_plane_frame(q, (0, 1, 2)))


@pytest.mark.parametrize("container", ["torch", "pandas", "list", "float32"])
def test_other_array_containers_give_the_same_answer(container):
    import torch

    convert = {
        "torch": lambda a: torch.tensor(a, requires_grad=a.dtype.kind == "f"),
        "pandas": lambda a: pd.Series(a, index=np.arange(len(a)) + 100) if a.ndim == 1 else pd.DataFrame(a),
        "list": lambda a: a.tolist(),
        "float32": lambda a: a.astype(np.float32) if a.dtype.kind == "f" else a,
    }[container]
    tol = 1e-6 if container == "float32" else 1e-12
    assert cal.expected_calibration_error(convert(Y), convert(P)) == pytest.approx(
        cal.expected_calibration_error(Y, P), abs=tol)
    np.testing.assert_array_equal(cf.confusion_matrix(convert(Y), convert(Y[::-1].copy())),
                                  cf.confusion_matrix(Y, Y[::-1]))
    assert co.nc1(convert(X), convert(Y)) == pytest.approx(co.nc1(X, Y), rel=tol)
    p = Predictions.from_arrays(y_true=convert(Y), logits=convert(LOGITS))
    np.testing.assert_allclose(p.logits, LOGITS.astype(np.float32), rtol=1e-6)


# ----- huge class counts --------------------------------------------------------------------------
HUGE_C = 100_000
_rng = np.random.default_rng(0)
HUGE_Y = np.array([0, 17, HUGE_C - 1, 5])
HUGE_P = np.zeros((4, HUGE_C))
HUGE_P[np.arange(4), [0, 3, HUGE_C - 1, 99]] = 0.75
HUGE_P[np.arange(4), [1, 17, 5, 5]] += 0.25
#: Generous ceiling for the peak memory of a call with 4 samples: a few (n_classes x n_bins) or
#: (n_samples x n_classes) arrays are fine; an (n_classes x n_classes) one (80 GB) is not.
PEAK_LIMIT = 400e6


def _peak_bytes(call) -> float:
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("call", [
    pytest.param(lambda: cal.expected_calibration_error(HUGE_Y, HUGE_P), id="ece"),
    pytest.param(lambda: cal.expected_calibration_error(HUGE_Y, HUGE_P, classwise=True), id="ece-classwise"),
    pytest.param(lambda: cal.debiased_calibration_error(HUGE_Y, HUGE_P, classwise=True), id="debiased-classwise"),
    pytest.param(lambda: cal.reliability_curve(HUGE_Y, HUGE_P), id="curve"),
    pytest.param(lambda: (cal.negative_log_likelihood(HUGE_Y, HUGE_P), cal.brier_score(HUGE_Y, HUGE_P)), id="scores"),
    pytest.param(lambda: cal.CalibrationAccumulator(HUGE_C).update(HUGE_Y, HUGE_P).expected_calibration_error(classwise=True), id="accumulator"),
    pytest.param(lambda: (lq.per_sample_loss(HUGE_Y, HUGE_P), lq.non_uniformity(HUGE_P),
                          co.misclassified_confidence(HUGE_P, HUGE_Y)), id="per-sample"),
    pytest.param(lambda: cf.cell_samples(HUGE_Y * 10, HUGE_Y, 0, 0), id="cell_samples"),
    pytest.param(lambda: co.collapse_metrics(X[:4], HUGE_Y * 10), id="collapse_metrics"),
    pytest.param(lambda: co.template_projection(X, np.eye(HUGE_C, 3) + 0.5, (0, 1, 2)), id="template_projection"),
])
def test_huge_class_counts_use_bounded_memory(call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _peak_bytes(call) < PEAK_LIMIT


def _in_memory_limited_process(code: str) -> str:
    """Run ``code`` in a fresh interpreter whose address space is capped at 3 GB; return its
    last line of output, or the type and message of the exception it raised.

    Calls that may try to allocate terabytes run here: under Linux's default overcommit a
    multi-GB allocation can succeed and then take the machine down when it is touched.
    """
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import resource, sys, traceback
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
        import numpy as np
        from labviz.compute import calibration as cal
        from labviz.compute import collapse as co
        from labviz.compute import confusion as cf
        try:
        {body}
            print("ok")
        except BaseException as exc:
            print(f"{{type(exc).__name__}}: {{exc}}".splitlines()[0])
    """).format(body=textwrap.indent(textwrap.dedent(code), "    "))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    lines = out.stdout.strip().splitlines()
    return lines[-1] if lines else f"no output (exit {out.returncode}): {out.stderr[-500:]}"


# Labels up to 10**6 with 4 samples: a C x C int64 matrix would be 8 TB.
_BIG = "y = np.array([0, 3, 999_999, 12]); p = np.array([0, 999_999, 7, 12])\n"


@pytest.mark.parametrize("call", ["cf.per_class_table(y, p)", "cf.top_confused_pairs(y, p)"])
@pytest.mark.service
def test_tables_with_huge_labels_work_in_bounded_memory(call):
    assert _in_memory_limited_process(_BIG + call) == "ok"


@pytest.mark.parametrize("call", [
    "cf.confusion_matrix(y, p)",
    "cf.confusion_matrix([0], [0], n_classes=10**6)",
    "co.class_mean_cosine(np.eye(4, 3) + 1, y)",
])
@pytest.mark.service
def test_square_results_for_huge_class_counts_fail_clearly(call):
    assert _in_memory_limited_process(_BIG + call).startswith("ValueError: `")


def test_classwise_quantile_ece_does_not_loop_over_classes(monkeypatch):
    calls = []
    real = cal._quantile_edges

    def counting(values, n_bins):
        calls.append(1)
        if len(calls) > 100:  # stop early: the loop would run 100_000 times
            raise AssertionError("quantile edges computed once per class")
        return real(values, n_bins)

    monkeypatch.setattr(cal, "_quantile_edges", counting)
    cal.expected_calibration_error(HUGE_Y, HUGE_P, strategy="quantile", classwise=True)


# ----- regression cases: huge labels, overflow, unusual dtypes and sizes -------------------------
@pytest.mark.parametrize("bad", [np.array([0, 1e20]), np.array([0, 2**63 + 5], dtype=np.uint64)])
def test_huge_labels_are_reported_as_given(bad):
    with pytest.raises(ValueError, match=r"`y_pred` must hold labels in .*got values in \[0, (1e\+20|9223372036854775813)"):
        cf.confusion_matrix([0, 1], bad)


def test_values_beyond_float32_are_refused_not_turned_into_inf():
    z = LOGITS.copy()
    z[0, 0] = 1e39
    try:
        p = Predictions.from_arrays(y_true=Y, logits=z)
    except ValueError as exc:
        assert "`logits`" in str(exc)
        return
    assert np.isfinite(p.logits).all() and np.isfinite(p.probs).all()


def test_temperature_scaling_of_extreme_logits_stays_finite():
    p = cal.apply_temperature(np.array([[1e308, -1e308], [0.0, 1.0]]), 0.5)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_subset_with_an_empty_index():
    p = _preds()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice" either
        empty = p.subset([])
        assert empty.n_samples == 0 and empty.features.shape == (0, X.shape[1])
        assert np.isnan(empty.accuracy) and "n_samples=0" in repr(empty)


def test_bfloat16_tensors_are_accepted():
    import torch

    p = Predictions.from_arrays(y_true=torch.tensor(Y), logits=torch.tensor(LOGITS).bfloat16())
    np.testing.assert_allclose(p.logits, LOGITS, rtol=1e-2)


def test_float16_probabilities_are_accepted():
    e = cal.expected_calibration_error(Y, P.astype(np.float16))
    assert e == pytest.approx(cal.expected_calibration_error(Y, P), abs=1e-3)


@pytest.mark.service
def test_absurd_n_bins_fail_clearly():
    out = _in_memory_limited_process("cal.expected_calibration_error([0, 1], [[0.9, 0.1], [0.2, 0.8]], n_bins=10**9)")
    assert out.startswith("ValueError: `n_bins`"), out


# ----- small regressions fixed along with the bugs above -------------------------------------------
@pytest.mark.parametrize("call", [
    lambda: cal.expected_calibration_error(Y, P, classwise="no"),
    lambda: cal.debiased_calibration_error(Y, P, classwise="no"),
    lambda: cal.CalibrationAccumulator(3, classwise="no"),
    lambda: cf.top_confused_pairs(Y, Y[::-1], symmetric="no"),
], ids=["ece", "debiased", "accumulator", "top_confused_pairs"])
def test_flags_must_be_bools_not_truthy_strings(call):
    with pytest.raises(TypeError, match=r"`(classwise|symmetric)` must be a bool; got str 'no'"):
        call()


def test_predictions_name_must_be_a_string():
    with pytest.raises(TypeError, match=r"`name` must be a str; got NoneType None"):
        Predictions.from_arrays(y_true=Y, logits=LOGITS, name=None)


def test_meta_device_tensors_fail_clearly():
    import torch

    with pytest.raises(TypeError, match=r"`logits` must hold values; got a torch tensor on the meta device"):
        Predictions.from_arrays(y_true=Y, logits=torch.empty(6, 3, device="meta"))


def test_fit_temperature_returns_the_exact_end_of_its_range():
    z = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])  # uninformative: T -> infinity
    with pytest.warns(RuntimeWarning, match="edge of the searched range"):
        t = cal.fit_temperature(z, [0, 1, 0, 1])
    assert t == cal.T_MAX


def test_accumulator_with_an_absurd_class_count_fails_clearly():
    with pytest.raises(ValueError, match=r"`n_classes` is too large .*got n_classes=1000000000"):
        cal.CalibrationAccumulator(10**9)
    assert cal.CalibrationAccumulator(10**9, classwise=False).n_classes == 10**9  # nothing dense


def test_confusion_accumulator_with_an_absurd_class_count_fails_clearly():
    with pytest.raises(ValueError, match=r"`n_classes` is too large for a dense confusion matrix"):
        cf.ConfusionAccumulator(10**6)


# ----- an n_classes too small for the labels blames n_classes -------------------------------------
@pytest.mark.parametrize(("call", "labels", "largest"), [
    (lambda: cf.confusion_matrix([0, 1], [0, 4], n_classes=3), "y_pred", 4),
    (lambda: cf.per_class_table([5, 1], [0, 1], n_classes=3), "y_true", 5),
    (lambda: cf.ConfusionAccumulator(3).update([0, 1], [0, 3]), "y_pred", 3),
    (lambda: co.class_mean_cosine(X, Y, n_classes=2), "y", 2),
    (lambda: cal.mean_confidence_per_class([0, 7], [0.5, 0.9], n_classes=3), "y_pred", 7),
], ids=["confusion_matrix", "per_class_table", "ConfusionAccumulator", "class_mean_cosine",
        "mean_confidence_per_class"])
def test_n_classes_too_small_names_n_classes_and_the_largest_label(call, labels, largest):
    n = 2 if labels == "y" else 3
    with pytest.raises(ValueError, match=rf"^`n_classes` must be greater than the largest label; "
                                         rf"got n_classes={n} and labels up to {largest} in `{labels}`\.$"):
        call()


def test_a_negative_label_still_blames_the_labels_not_n_classes():
    with pytest.raises(ValueError, match=r"^`y_true` must hold labels in \[0, 2\]; got values in \[-1, 1\]"):
        cf.confusion_matrix([-1, 1], [0, 1], n_classes=3)


# ----- sample ids: one check, one message ---------------------------------------------------------
@pytest.mark.parametrize(("ids", "kwargs", "exc", "pattern"), [
    (np.array([[1, 2]]), {}, ValueError, r"^`ids` must be a 1-D array of integer sample ids; got shape \(1, 2\)\.$"),
    (np.array([3, 1, 3, 1]), {"unique": True}, ValueError,
     r"^`ids` must be a 1-D array of unique integer sample ids; got 2 repeated, e\.g\. \[1, 3\]\.$"),
    (np.array([4, 9, 7]), {"within": np.arange(5), "of": "the frame"}, ValueError,
     r"^`ids` must be a 1-D array of integer sample ids of the frame; got 2 unknown, e\.g\. \[7, 9\]\.$"),
], ids=["2-d", "repeated", "unknown"])
def test_sample_ids_fail_with_one_message(ids, kwargs, exc, pattern):
    from labviz.core._validation import check_sample_ids

    with pytest.raises(exc, match=pattern):
        check_sample_ids(ids, "ids", **kwargs)
