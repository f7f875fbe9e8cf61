"""The measurements the notebooks report, computed over the zoo's seeds: one module per phenomenon.

Each function takes zoo names or loss families and returns a tidy ``pandas.DataFrame``; the
notebooks print them and :mod:`labviz.studies.verdicts` turns measured effects into verdicts.
Keeping this here, not in the notebooks, means every number a notebook states is computed by
tested code.

- :mod:`~labviz.studies.label_smoothing`: Müller et al. 2019 (notebook 01);
- :mod:`~labviz.studies.maxsup`: Zhou et al. 2025 (notebook 02);
- :mod:`~labviz.studies.calibration_depth` and :mod:`~labviz.studies.fooling`: notebook 03;
- :mod:`~labviz.studies.noisy_labels` (04), :mod:`~labviz.studies.label_errors` (05),
  :mod:`~labviz.studies.inversion` (06), :mod:`~labviz.studies.non_uniformity` (07);
- :mod:`~labviz.studies.verdicts`: the verdict every notebook prints, shared, and the box of
  verdicts that ends each notebook (:func:`~labviz.studies.verdicts.verdict_box`).

A *family* is the manifest's ``family`` field: "ce", "ls0.1", "maxsup0.1", "ls-0.1", "ls-sweep",
"noisy", "student", "kd-ce", "kd-ls". Everything public is also importable from here.
"""

from labviz.studies._common import (
    FAMILY_LABELS,
    FASHION,
    by_seed,
    labelled,
    mean_sd,
    members,
    show_table,
    summarize,
    table_note,
)
from labviz.studies.calibration_depth import (
    ECE_BINNINGS,
    EVAL_SIZES,
    binning_by_size,
    binning_spread,
    concentration,
    concentration_effects,
    ece_difference,
    ece_variants,
    ece_variants_table,
    ece_variants_wide,
    estimator_table,
    family_ranking,
    mass_by_class,
    miscalibration_regions,
    region_gaps,
    same_side_share,
    temperature_scaling_table,
    where_it_lives,
)
from labviz.studies.fooling import (
    probe_arrays,
    probe_confidences,
    probe_summary,
    probe_table,
    zoo_probes,
)
from labviz.studies.inversion import (
    inversion_attack_table,
    inversion_grid,
    invert_checkpoints,
    invert_checkpoints_latent,
)
from labviz.studies.label_errors import (
    flagged_rate_table,
    mean_probs_predictions,
    named_classes,
    neighbour_overlap,
    top_disagreement,
    within_group_share,
)
from labviz.studies.label_smoothing import (
    TRIPLES,
    calibration_table,
    confidence_gap_table,
    distillation_summary,
    distillation_table,
    ls_grid,
    ls_sweep_table,
    soft_target_table,
    table3,
    tightness_table,
    transfer_distillation_table,
    tuned_ls_table,
)
from labviz.studies.maxsup import (
    collapse_family_table,
    maxsup_layout,
    misclassified_confidence_table,
)
from labviz.studies.noisy_labels import (
    beta_mixture_table,
    early_learning_table,
    flipped_drift_table,
    noisy_posterior,
    rank_auc,
    snapshot_predictions,
)
from labviz.studies.non_uniformity import (
    decile_summary,
    decile_trend,
    non_uniformity_deciles,
    score_agreement,
)
from labviz.studies.verdicts import (
    Effect,
    Outcome,
    Status,
    Verdict,
    VerdictBox,
    bootstrap_effect,
    judge,
    paired_effect,
    threshold_effect,
    verdict_box,
)
