"""labviz.studies.verdicts: paired effects with t intervals, and the old checklist verdict."""

import numpy as np
import pytest
from scipy import stats

from labviz.studies.verdicts import (
    bootstrap_effect,
    judge,
    paired_effect,
    threshold_effect,
    verdict_box,
)


def _effect(baseline, treated, **kw):
    return paired_effect("claim", dict(enumerate(baseline)), dict(enumerate(treated)),
                         paper_says=kw.pop("paper_says", "lower"), measure="m", paper="p", **kw)


def test_interval_is_scipys_one_sample_t_interval_on_the_paired_differences(rng):
    base, treated = rng.normal(1.0, 0.1, size=10), rng.normal(0.9, 0.1, size=10)
    e = _effect(base, treated)
    ci = stats.ttest_1samp(base - treated, 0.0).confidence_interval(0.95)
    assert (e.low, e.high) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert e.mean == pytest.approx(np.mean(base - treated))
    assert len(e.seeds) == 10


def test_outcomes_follow_the_interval_in_the_papers_direction():
    assert _effect([1.0, 1.1, 1.2], [0.5, 0.55, 0.7]).outcome == "reproduced"
    assert _effect([0.5, 0.55, 0.7], [1.0, 1.1, 1.2]).outcome == "opposite"
    assert _effect([1.0, 1.1, 1.2], [0.5, 0.55, 0.7], paper_says="higher").outcome == "opposite"
    assert _effect([1.0, 0.5, 1.2], [0.9, 0.7, 1.0]).outcome == "inconclusive"


def test_a_failed_precondition_makes_it_inconclusive_and_is_printed():
    e = _effect([1.0, 1.1, 1.2], [0.5, 0.55, 0.7],
                precondition=("distillation helps: 0.80 > 0.85", False))
    assert e.outcome == "inconclusive"
    text = str(e)
    assert text.startswith("VERDICT: inconclusive — claim")
    assert "precondition [ ] distillation helps: 0.80 > 0.85" in text
    assert "over 3 paired seeds" in text and "paper: p" in text


def test_only_shared_seeds_are_paired():
    e = paired_effect("c", {0: 1.0, 1: 2.0, 5: 9.0}, {0: 0.5, 1: 1.0, 7: 0.0},
                      paper_says="lower", measure="m", paper="p")
    assert e.seeds == (0, 1) and e.differences == (0.5, 1.0)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="`paper_says` must be 'lower' or 'higher'; got 'less'"):
        _effect([1, 2], [1, 2], paper_says="less")
    with pytest.raises(ValueError, match="must share at least 2 seeds; got \\[0\\]"):
        paired_effect("c", {0: 1.0}, {0: 0.5, 1: 2.0}, paper_says="lower", measure="m", paper="p")
    with pytest.raises(ValueError, match="must be finite"):
        _effect([1.0, float("nan")], [1.0, 2.0])


def test_judge_still_lists_its_checks():
    v = judge("LS helps", {"a": True, "b": False})
    assert v.status == "partly reproduced" and str(v).splitlines()[1:] == ["  [x] a", "  [ ] b"]


def test_threshold_effect_is_a_paired_effect_against_a_constant():
    e = threshold_effect("c", {0: 0.30, 1: 0.25, 2: 0.40}, threshold=0.2, paper_says="higher",
                         measure="m", paper="p")
    d = np.array([0.10, 0.05, 0.20])
    ci = stats.ttest_1samp(d, 0.0).confidence_interval(0.95)
    assert e.mean == pytest.approx(d.mean()) and (e.low, e.high) == pytest.approx((ci.low, ci.high))


def test_bootstrap_effect_agrees_with_scipys_percentile_bootstrap(rng):
    x = rng.normal(0.3, 1.0, size=400)
    e = bootstrap_effect("c", lambda idx: float(x[idx].mean()), len(x), threshold=0.0,
                         paper_says="higher", measure="m", paper="p", n_boot=4000)
    ref = stats.bootstrap((x,), np.mean, n_resamples=4000, method="percentile",
                          random_state=np.random.default_rng(1)).confidence_interval
    assert e.mean == pytest.approx(x.mean())
    se = x.std(ddof=1) / np.sqrt(len(x))
    assert abs(e.low - ref.low) < 0.1 * se and abs(e.high - ref.high) < 0.1 * se
    assert "bootstrap of 400 samples (one run)" in str(e)
    lower = bootstrap_effect("c", lambda idx: float(x[idx].mean()), len(x), threshold=1.0,
                             paper_says="lower", measure="m", paper="p")
    assert lower.outcome == "reproduced" and lower.mean == pytest.approx(1.0 - x.mean())


def test_bootstrap_effect_refuses_bad_input():
    with pytest.raises(ValueError, match="`n_samples` must be at least 2; got 1"):
        bootstrap_effect("c", lambda idx: 0.0, 1, threshold=0, paper_says="higher", measure="m", paper="p")
    with pytest.raises(ValueError, match="`statistic` must return finite values"):
        bootstrap_effect("c", lambda idx: float("nan"), 5, threshold=0, paper_says="higher",
                         measure="m", paper="p", n_boot=3)


def _box():
    a = _effect([1.0, 1.1, 1.2], [0.5, 0.55, 0.7])
    b = paired_effect("teachers | students", {0: 1.0, 1: 0.5, 2: 1.2}, {0: 0.9, 1: 0.7, 2: 1.0},
                      paper_says="lower", measure="acc <CE> − LS", paper="+0.0017",
                      precondition=("distillation helps: +0.02", True))
    return verdict_box("Notebook 01 & the paper", [(a, "LS wins here."), (b, "Too few seeds.")]), a, b


def test_verdict_box_markdown_is_one_table_row_per_claim_with_its_interval():
    box, a, b = _box()
    lines = box.to_markdown().splitlines()
    assert lines[0] == "**Notebook 01 & the paper**" and lines[2].startswith("| claim | verdict |")
    rows = lines[4:]
    assert len(rows) == 2
    cells = [c.strip() for c in rows[0].strip("|").split(" | ")]
    assert cells == ["claim", "reproduced", f"m = {a.mean:+.4f} [95% CI {a.low:+.4f}, {a.high:+.4f}], "
                     "over 3 paired seeds", "p", "LS wins here."]
    # a "|" inside a cell is escaped, so the row still has five cells
    assert "teachers \\| students (precondition holds: distillation helps: +0.02)" in rows[1]
    assert len(rows[1].replace("\\|", "").strip("|").split("|")) == 5
    assert "| inconclusive |" in rows[1]


def test_verdict_box_html_escapes_text_and_colours_each_outcome():
    box, _, _ = _box()
    html = box._repr_html_()
    assert html.count("<tr>") == 3                       # the header and two claims
    assert "Notebook 01 &amp; the paper" in html and "acc &lt;CE&gt; − LS" in html
    assert "<CE>" not in html
    assert "#d4edda" in html and "#fff3cd" in html and "#f8d7da" not in html
    assert "95% interval lies above 0" in html


def test_verdict_box_refuses_bad_entries():
    box, a, _ = _box()
    with pytest.raises(ValueError, match="`entries` must hold at least one"):
        verdict_box("t", [])
    with pytest.raises(TypeError, match="`entries\\[1\\]` must be an \\(Effect, str\\) pair; got"):
        verdict_box("t", [(a, "ok"), (a,)])
    with pytest.raises(TypeError, match="`entries\\[0\\]` must be an \\(Effect, str\\) pair"):
        verdict_box("t", [("claim", "meaning")])
