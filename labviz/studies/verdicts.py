"""Verdicts: a paper's claim judged as an effect with a 95% confidence interval, in the paper's
direction, beside the paper's own number."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

Status = Literal["reproduced", "partly reproduced", "not reproduced"]


@dataclass(frozen=True)
class Verdict:
    """Whether a paper's claim held here, with the checks that decided it."""

    claim: str
    status: Status
    checks: tuple[tuple[str, bool], ...]

    def __str__(self) -> str:
        lines = [f"VERDICT: {self.status} — {self.claim}"]
        lines += [f"  [{'x' if ok else ' '}] {text}" for text, ok in self.checks]
        return "\n".join(lines)


def judge(claim: str, checks: Mapping[str, bool]) -> Verdict:
    """All checks hold: reproduced; some: partly reproduced; none: not reproduced.

    Each check is a sentence stating a measured comparison, with its numbers.

    >>> print(judge("LS helps", {"ECE 0.02 < 0.05": True, "acc 0.88 > 0.89": False}))
    VERDICT: partly reproduced — LS helps
      [x] ECE 0.02 < 0.05
      [ ] acc 0.88 > 0.89
    """
    if not checks:
        raise ValueError("`checks` must hold at least one check; got none.")
    held = [bool(ok) for ok in checks.values()]
    status: Status = ("reproduced" if all(held) else "partly reproduced" if any(held)
                      else "not reproduced")
    return Verdict(claim=claim, status=status, checks=tuple((k, bool(ok)) for k, ok in checks.items()))


# ----- effects over paired seeds -----------------------------------------------------------------
Outcome = Literal["reproduced", "opposite", "inconclusive"]


@dataclass(frozen=True)
class Effect:
    """A paper's claim measured as a paired effect over seeds, with a 95% confidence interval.

    ``differences`` are per seed and signed so that a positive value is the paper's direction; the
    interval is Student's t on their mean (:func:`paired_effect`), or, for a claim measured on one
    run, a bootstrap over its samples (:func:`bootstrap_effect`, with ``over`` saying so). The
    outcome is "reproduced" when the interval excludes zero on the positive side, "opposite" when
    it excludes it on the negative side, and "inconclusive" otherwise, or whenever the
    precondition does not hold.
    """

    claim: str
    measure: str
    seeds: tuple[int, ...]
    differences: tuple[float, ...]
    mean: float
    low: float
    high: float
    paper: str
    precondition: tuple[str, bool] | None = None
    #: What the interval is over, as printed: "3 paired seeds", or a bootstrap over samples.
    over: str = ""

    @property
    def outcome(self) -> Outcome:
        """The verdict: "reproduced", "opposite" or "inconclusive" (see the class docstring)."""
        if self.precondition is not None and not self.precondition[1]:
            return "inconclusive"
        if self.low > 0:
            return "reproduced"
        if self.high < 0:
            return "opposite"
        return "inconclusive"

    def __str__(self) -> str:
        lines = [f"VERDICT: {self.outcome} — {self.claim}"]
        if self.precondition is not None:
            text, ok = self.precondition
            lines.append(f"  precondition [{'x' if ok else ' '}] {text}")
        over = self.over or f"{len(self.seeds)} paired seeds"
        lines.append(f"  effect: {self.measure} = {self.mean:+.4f} [95% CI {self.low:+.4f}, "
                     f"{self.high:+.4f}] over {over} (> 0 is the paper's direction)")
        lines.append(f"  paper: {self.paper}")
        return "\n".join(lines)


def paired_effect(
    claim: str,
    baseline: Mapping[int, float],
    treated: Mapping[int, float],
    *,
    paper_says: Literal["lower", "higher"],
    measure: str,
    paper: str,
    precondition: tuple[str, bool] | None = None,
    confidence: float = 0.95,
) -> Effect:
    """Judge "treated is ``paper_says`` than baseline" from values paired by seed.

    Parameters
    ----------
    claim : str
        The paper's claim, in words.
    baseline, treated : mapping of int to float
        Seed -> the measured value; only seeds present in both count, at least 2.
    paper_says : {"lower", "higher"}
        The paper's direction for ``treated`` against ``baseline``.
    measure : str
        What the difference is, e.g. ``"test ECE, CE − LS"``.
    paper : str
        The paper's own number, for the printed line.
    precondition : (str, bool), optional
        A sentence with its numbers, and whether it holds; a failed one makes the outcome
        "inconclusive".

    Examples
    --------
    >>> e = paired_effect("LS lowers ECE", {0: 0.05, 1: 0.06, 2: 0.05}, {0: 0.03, 1: 0.03, 2: 0.02},
    ...                   paper_says="lower", measure="ECE, CE − LS", paper="0.150 − 0.024")
    >>> e.outcome, round(e.mean, 4), round(e.low, 4)
    ('reproduced', 0.0267, 0.0123)
    """
    from scipy import stats

    if paper_says not in ("lower", "higher"):
        raise ValueError(f"`paper_says` must be 'lower' or 'higher'; got {paper_says!r}.")
    if not 0 < confidence < 1:
        raise ValueError(f"`confidence` must be in (0, 1); got {confidence!r}.")
    seeds = tuple(sorted(set(baseline) & set(treated)))
    if len(seeds) < 2:
        raise ValueError(f"`baseline` and `treated` must share at least 2 seeds; got {list(seeds)}.")
    sign = 1.0 if paper_says == "lower" else -1.0
    d = np.array([sign * (float(baseline[s]) - float(treated[s])) for s in seeds])
    if not np.isfinite(d).all():
        raise ValueError(f"the paired values must be finite; got differences {d.tolist()}.")
    mean = float(d.mean())
    half = float(stats.t.ppf((1 + confidence) / 2, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    return Effect(claim=claim, measure=measure, seeds=seeds, differences=tuple(d.tolist()),
                  mean=mean, low=mean - half, high=mean + half, paper=paper,
                  precondition=None if precondition is None else (precondition[0], bool(precondition[1])))


def threshold_effect(
    claim: str,
    values: Mapping[int, float],
    *,
    threshold: float,
    paper_says: Literal["lower", "higher"],
    measure: str,
    paper: str,
    precondition: tuple[str, bool] | None = None,
) -> Effect:
    """Judge "the value is ``paper_says`` than ``threshold``" from one value per seed.

    :func:`paired_effect` against a constant baseline: the effect is the mean distance from the
    threshold (fixed in advance), with its 95% t interval over the seeds.

    >>> e = threshold_effect("binning moves ECE", {0: 0.35, 1: 0.38, 2: 0.33}, threshold=0.2,
    ...                      paper_says="higher", measure="relative range − 0.2", paper="-")
    >>> e.outcome, round(e.mean, 4)
    ('reproduced', 0.1533)
    """
    return paired_effect(claim, {s: float(threshold) for s in values}, values, paper_says=paper_says,
                         measure=measure, paper=paper, precondition=precondition)


def bootstrap_effect(
    claim: str,
    statistic: Callable[[NDArray[np.int64]], float],
    n_samples: int,
    *,
    threshold: float,
    paper_says: Literal["lower", "higher"],
    measure: str,
    paper: str,
    precondition: tuple[str, bool] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Effect:
    """Judge "``statistic`` is ``paper_says`` than ``threshold``" for a claim measured on one run.

    With one seed there is no interval over seeds; the interval is then a percentile bootstrap over
    the run's samples: ``statistic(idx)`` is evaluated on ``n_boot`` resamples ``idx`` (indices
    into the ``n_samples`` samples, drawn with replacement, seeded). It says how sure the run's own
    number is, not how much another seed would move it, and the printed line says so.

    >>> values = np.array([0.9, 0.8, 0.95, 0.85, 0.9, 0.7, 0.88, 0.92])
    >>> e = bootstrap_effect("high", lambda idx: float(values[idx].mean()), len(values),
    ...                      threshold=0.5, paper_says="higher", measure="mean − 0.5", paper="-")
    >>> e.outcome, round(e.mean, 4), e.over
    ('reproduced', 0.3625, 'a bootstrap of 8 samples (one run)')
    """
    if paper_says not in ("lower", "higher"):
        raise ValueError(f"`paper_says` must be 'lower' or 'higher'; got {paper_says!r}.")
    if int(n_samples) < 2:
        raise ValueError(f"`n_samples` must be at least 2; got {n_samples!r}.")
    sign = 1.0 if paper_says == "higher" else -1.0
    rng = np.random.default_rng(seed)
    observed = sign * (float(statistic(np.arange(n_samples))) - threshold)
    boot = np.array([sign * (float(statistic(rng.integers(0, n_samples, n_samples))) - threshold)
                     for _ in range(int(n_boot))])
    if not np.isfinite([observed, *boot]).all():
        raise ValueError("`statistic` must return finite values; got NaN or inf on some resample.")
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return Effect(claim=claim, measure=measure, seeds=(), differences=(), mean=observed,
                  low=float(low), high=float(high), paper=paper,
                  precondition=None if precondition is None else (precondition[0], bool(precondition[1])),
                  over=f"a bootstrap of {n_samples} samples (one run)")


# ----- the verdict box that ends a notebook ---------------------------------------------------------
#: Background colour of each outcome's label in the HTML box; dark text stays readable on each.
_OUTCOME_COLOURS: dict[str, str] = {"reproduced": "#d4edda", "opposite": "#f8d7da",
                                    "inconclusive": "#fff3cd"}


def _effect_text(effect: Effect) -> str:
    over = effect.over or f"{len(effect.seeds)} paired seeds"
    return (f"{effect.measure} = {effect.mean:+.4f} [95% CI {effect.low:+.4f}, {effect.high:+.4f}], "
            f"over {over}")


def _md_cell(text: str) -> str:
    # A "|" would end the Markdown cell, and a line break would end the row.
    return " ".join(text.replace("|", "\\|").split())


@dataclass(frozen=True)
class VerdictBox:
    """A notebook's verdicts in one box: each claim, its outcome, the effect with its 95% interval
    beside the paper's number, and one plain sentence of what it means at this scale.

    It renders as HTML in JupyterLab (``_repr_html_``) and as a Markdown table
    (:meth:`to_markdown`); build it with :func:`verdict_box`.
    """

    title: str
    effects: tuple[Effect, ...]
    meanings: tuple[str, ...]

    def rows(self) -> list[dict[str, str]]:
        """One dict per claim: ``claim``, ``verdict``, ``effect``, ``paper`` and ``meaning``."""
        rows = []
        for effect, meaning in zip(self.effects, self.meanings, strict=True):
            claim = effect.claim
            if effect.precondition is not None:
                text, ok = effect.precondition
                claim += f" (precondition {'holds' if ok else 'fails'}: {text})"
            rows.append({"claim": claim, "verdict": effect.outcome, "effect": _effect_text(effect),
                         "paper": effect.paper, "meaning": meaning})
        return rows

    def to_markdown(self) -> str:
        """The box as a Markdown table, under its title in bold.

        >>> e = paired_effect("LS lowers ECE", {0: 0.05, 1: 0.06, 2: 0.05}, {0: 0.03, 1: 0.03, 2: 0.02},
        ...                   paper_says="lower", measure="ECE, CE − LS", paper="+0.126")
        >>> print(verdict_box("01", [(e, "LS calibrates better here.")]).to_markdown())
        **01**
        <BLANKLINE>
        | claim | verdict | effect [95% CI] | paper | what it means here |
        |---|---|---|---|---|
        | LS lowers ECE | reproduced | ECE, CE − LS = +0.0267 [95% CI +0.0123, +0.0410], over 3 paired seeds | +0.126 | LS calibrates better here. |
        """
        lines = [f"**{_md_cell(self.title)}**", "",
                 "| claim | verdict | effect [95% CI] | paper | what it means here |",
                 "|---|---|---|---|---|"]
        lines += ["| " + " | ".join(_md_cell(row[k]) for k in ("claim", "verdict", "effect", "paper",
                                                                "meaning")) + " |"
                  for row in self.rows()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from html import escape

        cells = []
        for row in self.rows():
            colour = _OUTCOME_COLOURS[row["verdict"]]
            cells.append(
                "<tr>"
                f"<td style='text-align:left'>{escape(row['claim'])}</td>"
                f"<td style='text-align:left'><span style='background:{colour};color:#1a1a1a;"
                f"padding:1px 6px;border-radius:3px;white-space:nowrap'><b>{escape(row['verdict'])}"
                "</b></span></td>"
                f"<td style='text-align:left'>{escape(row['effect'])}</td>"
                f"<td style='text-align:left'>{escape(row['paper'])}</td>"
                f"<td style='text-align:left'>{escape(row['meaning'])}</td></tr>")
        head = "".join(f"<th style='text-align:left'>{h}</th>" for h in
                       ("claim", "verdict", "effect [95% CI]", "paper", "what it means here"))
        return ("<div class='labviz-verdicts' style='border:2px solid #4a6fa5;border-radius:6px;"
                "padding:8px 12px;margin:8px 0'>"
                f"<div style='font-weight:bold;font-size:1.1em;margin-bottom:6px'>{escape(self.title)}"
                f"</div><table><thead><tr>{head}</tr></thead><tbody>{''.join(cells)}</tbody></table>"
                "<div style='font-size:0.9em;margin-top:6px'>An effect is signed so that &gt; 0 is the "
                "paper's direction: <i>reproduced</i> when its 95% interval lies above 0, "
                "<i>opposite</i> when below, <i>inconclusive</i> when it straddles 0 or a "
                "precondition fails.</div></div>")


def verdict_box(title: str, entries: Sequence[tuple[Effect, str]]) -> VerdictBox:
    """Gather a notebook's verdicts into one :class:`VerdictBox`.

    Parameters
    ----------
    title : str
        Shown above the table, e.g. the notebook and the paper.
    entries : sequence of (Effect, str)
        Each measured effect with one plain sentence of what it means at this scale.
    """
    if not entries:
        raise ValueError("`entries` must hold at least one (effect, meaning) pair; got none.")
    for i, entry in enumerate(entries):
        if (not isinstance(entry, tuple) or len(entry) != 2 or not isinstance(entry[0], Effect)
                or not isinstance(entry[1], str)):
            raise TypeError(f"`entries[{i}]` must be an (Effect, str) pair; got {entry!r:.80}.")
    return VerdictBox(title=str(title), effects=tuple(e for e, _ in entries),
                      meanings=tuple(m for _, m in entries))
