"""Head-to-head win rates with honest intervals, length control and the ID−OOD gap.

Input is one `Outcome` per comparison of the policy against the baseline on a prompt: a verdict
(win / loss / tie, from the policy's side), optionally the probability that the policy wins, the two
response lengths and a category. A prompt may carry several outcomes (several samples, several
raters): they are one *cluster*, and every interval resamples whole prompts.

- `win_rate` = (wins + ties/2) / n.
- `soft_win_rate` = mean probability that the policy wins, over outcomes that carry one.
- `ci_low`/`ci_high`: a percentile bootstrap over prompts (resample prompts with replacement, keep
  all their outcomes; the statistic is the pooled win rate; seeded; `n_boot` replicates). The
  percentile interval is used rather than BCa because it stays defined on degenerate data (all
  wins), where BCa's acceleration is 0/0. With fewer than `SMALL_N` prompts, or a bootstrap
  distribution with no spread, a percentile bootstrap is too narrow (3 wins out of 3 gives [1, 1]),
  so the interval is widened to also cover the Wilson score interval with n = number of prompts.
  `ci_method` in the result says which applied.
- `lc_win_rate`: length-controlled, in the spirit of AlpacaEval's LC. A logistic model
  P(policy wins) = σ(b0 + b1·z), z = (len_policy − len_baseline) / sd(len_policy − len_baseline)
  (scaled, not centred, so z = 0 still means equal length), fitted by Newton's method to fractional
  targets (win 1, tie ½, loss 0) with an L2 penalty ½·λ·b1² (λ = 1: a unit-normal prior on the
  slope, enough to keep separable data finite; the intercept is free). LC = σ(b0), the predicted
  win rate at equal length. This is the `sklearn.linear_model.LogisticRegression(C=1/λ)` objective.
- `warnings` flags a raw-vs-LC difference above 0.1, small samples and partial probabilities.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import expit

from rlaif.records import Label, stable_id
from rlaif.stats.intervals import wilson_interval
from rlaif.stats.verdicts import SCORE, Verdict, side_score, verdict_of_score

SMALL_N = 30  # prompts; below this the interval also covers Wilson's
LC_WARN = 0.1
N_BOOT = 10_000


@dataclass
class Outcome:
    """One comparison of policy vs baseline on one prompt, from the policy's side."""

    prompt_id: str
    verdict: Verdict
    p_win: float | None = None
    len_policy: float | None = None
    len_baseline: float | None = None
    category: str | None = None

    @property
    def score(self) -> float:
        return SCORE[self.verdict]


@dataclass
class ClusteredScores:
    """Per-prompt sums and counts of a score in [0, 1]: everything a clustered bootstrap needs."""

    prompt_ids: list[str]
    sums: np.ndarray
    counts: np.ndarray

    @classmethod
    def from_pairs(cls, prompt_ids: Sequence[str], scores: Sequence[float]) -> ClusteredScores:
        index: dict[str, int] = {}
        for pid in prompt_ids:
            index.setdefault(pid, len(index))
        idx = np.fromiter((index[p] for p in prompt_ids), dtype=np.int64, count=len(prompt_ids))
        sums = np.bincount(idx, weights=np.asarray(scores, dtype=float), minlength=len(index))
        counts = np.bincount(idx, minlength=len(index)).astype(float)
        return cls(list(index), sums, counts)

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    @property
    def n_prompts(self) -> int:
        return len(self.prompt_ids)

    @property
    def mean(self) -> float:
        return float(self.sums.sum() / self.counts.sum()) if self.n else float("nan")

    def bootstrap(self, n_boot: int, rng: np.random.Generator) -> np.ndarray:
        """`n_boot` replicates of the pooled mean, resampling prompts (clusters) with replacement."""
        m = self.n_prompts
        out = np.empty(n_boot)
        per = max(1, 2_000_000 // m)  # bound the index matrix to ~16 MB
        for start in range(0, n_boot, per):
            b = min(per, n_boot - start)
            idx = rng.integers(0, m, size=(b, m))
            out[start:start + b] = self.sums[idx].sum(axis=1) / self.counts[idx].sum(axis=1)
        return out


@dataclass
class Interval:
    low: float
    high: float
    method: str


def bootstrap_interval(scores: ClusteredScores, *, n_boot: int = N_BOOT, seed: int = 0,
                       confidence: float = 0.95) -> Interval:
    """Percentile bootstrap over prompts, widened to Wilson's interval for small or degenerate samples."""
    if scores.n == 0:
        return Interval(float("nan"), float("nan"), "none (no outcomes)")
    boot = scores.bootstrap(n_boot, np.random.default_rng(seed))
    alpha = 1 - confidence
    lo, hi = (float(x) for x in np.quantile(boot, [alpha / 2, 1 - alpha / 2]))
    method = f"percentile bootstrap over prompts (B={n_boot}, seed={seed})"
    if scores.n_prompts < SMALL_N or hi - lo == 0:
        wlo, whi = wilson_interval(scores.mean, scores.n_prompts, confidence)
        lo, hi = min(lo, wlo), max(hi, whi)
        method += f", widened to cover the Wilson score interval (n = {scores.n_prompts} prompts)"
    return Interval(lo, hi, method)


# ---- length control -----------------------------------------------------------------------------------

@dataclass
class LogisticFit:
    intercept: float
    slope: float
    scale: float  # the sd the length difference was divided by
    iterations: int

    @property
    def at_zero(self) -> float:
        return float(expit(self.intercept))


def _objective(b: np.ndarray, z: np.ndarray, y: np.ndarray, lam: float) -> float:
    eta = b[0] + b[1] * z
    # -[y log σ(η) + (1−y) log(1−σ(η))] written stably
    return float(np.sum(y * np.logaddexp(0, -eta) + (1 - y) * np.logaddexp(0, eta)) + 0.5 * lam * b[1] ** 2)


def fit_length_logistic(y: Sequence[float], length_diff: Sequence[float], penalty: float = 1.0,
                        tol: float = 1e-12, max_iter: int = 100) -> LogisticFit:
    """Penalized logistic regression of fractional outcomes y on the scaled length difference.

    Requires y not all equal (else the intercept is infinite; callers handle that case).
    """
    y = np.asarray(y, dtype=float)
    d = np.asarray(length_diff, dtype=float)
    scale = float(np.std(d))
    z = d / scale if scale > 0 else np.zeros_like(d)
    ybar = float(np.clip(y.mean(), 1e-9, 1 - 1e-9))
    b = np.array([math.log(ybar / (1 - ybar)), 0.0])
    f = _objective(b, z, y, penalty)
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        p = expit(b[0] + b[1] * z)
        r = p - y
        g = np.array([r.sum(), (r * z).sum() + penalty * b[1]])
        w = p * (1 - p)
        h = np.array([[w.sum(), (w * z).sum()], [(w * z).sum(), (w * z * z).sum() + penalty]])
        step = np.linalg.solve(h, g)
        t = 1.0
        while True:  # step halving keeps every iteration a descent step
            cand = b - t * step
            fc = _objective(cand, z, y, penalty)
            if fc <= f + 1e-15 or t < 1e-8:
                break
            t /= 2
        b, f = cand, fc
        if np.max(np.abs(t * step)) < tol:
            break
    return LogisticFit(float(b[0]), float(b[1]), scale, iterations)


# ---- the win-rate summary ------------------------------------------------------------------------------

@dataclass
class WinRateResult:
    n: int
    n_prompts: int
    wins: int
    losses: int
    ties: int
    win_rate: float | None
    soft_win_rate: float | None
    ci_low: float | None
    ci_high: float | None
    lc_win_rate: float | None
    per_category: dict[str, dict[str, Any]]
    warnings: list[str]
    ci_method: str
    confidence: float
    policy: str | None = None
    baseline: str | None = None
    scores: ClusteredScores | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        keys = ["policy", "baseline", "n", "n_prompts", "wins", "losses", "ties", "win_rate", "soft_win_rate",
                "ci_low", "ci_high", "lc_win_rate", "per_category", "warnings", "ci_method", "confidence"]
        return {k: getattr(self, k) for k in keys}


def compute_win_rate(outcomes: Iterable[Outcome], *, n_boot: int = N_BOOT, seed: int = 0, confidence: float = 0.95,
                     lc_penalty: float = 1.0, by_category: bool = True, policy: str | None = None,
                     baseline: str | None = None) -> WinRateResult:
    """Summarize outcomes: counts, win rate, soft win rate, clustered CI, LC win rate, per category."""
    outcomes = list(outcomes)
    warnings: list[str] = []
    wins = sum(o.verdict == "win" for o in outcomes)
    losses = sum(o.verdict == "loss" for o in outcomes)
    ties = sum(o.verdict == "tie" for o in outcomes)
    n = len(outcomes)
    scores = ClusteredScores.from_pairs([o.prompt_id for o in outcomes], [o.score for o in outcomes])
    if n == 0:
        warnings.append("no outcomes: nothing to compare (check the policy and baseline names)")
        return WinRateResult(0, 0, 0, 0, 0, None, None, None, None, None, {}, warnings, "none", confidence,
                             policy, baseline, scores)
    win_rate = (wins + 0.5 * ties) / n
    ci = bootstrap_interval(scores, n_boot=n_boot, seed=seed, confidence=confidence)
    if scores.n_prompts < SMALL_N:
        noun = "prompt" if scores.n_prompts == 1 else "prompts"
        warnings.append(f"only {scores.n_prompts} {noun}: the interval is wide and approximate")
    if ties == n:
        warnings.append("every comparison is a tie (a judge that flips with the order gives only ties): "
                        "the win rate of 0.5 says nothing about which is better")

    probs = [o.p_win for o in outcomes if o.p_win is not None]
    soft = float(np.mean(probs)) if probs else None
    if probs and len(probs) < n:
        warnings.append(f"soft_win_rate uses the {len(probs)} of {n} outcomes that carry a probability")

    lc = _lc(outcomes, lc_penalty, warnings)
    if lc is not None and abs(lc - win_rate) > LC_WARN:
        warnings.append(f"length-controlled win rate {lc:.3f} differs from the raw {win_rate:.3f} by more than "
                        f"{LC_WARN}: the verdicts track response length")

    per_category: dict[str, dict[str, Any]] = {}
    if by_category:
        cats = sorted({o.category for o in outcomes if o.category is not None})
        for cat in cats:
            sub = compute_win_rate([o for o in outcomes if o.category == cat], n_boot=n_boot, seed=seed,
                                   confidence=confidence, lc_penalty=lc_penalty, by_category=False)
            d = sub.to_dict()
            for k in ("policy", "baseline", "per_category", "ci_method", "confidence"):
                d.pop(k)
            per_category[cat] = d
    return WinRateResult(n, scores.n_prompts, wins, losses, ties, win_rate, soft, ci.low, ci.high, lc, per_category,
                         warnings, ci.method, confidence, policy, baseline, scores)


def _lc(outcomes: list[Outcome], penalty: float, warnings: list[str]) -> float | None:
    have = [o for o in outcomes if o.len_policy is not None and o.len_baseline is not None]
    if not have:
        return None
    if len(have) < len(outcomes):
        warnings.append(f"lc_win_rate uses the {len(have)} of {len(outcomes)} outcomes with both lengths")
    y = np.array([o.score for o in have])
    if np.all(y == y[0]):
        return float(y[0])  # every verdict the same: no length effect can be estimated
    d = np.array([o.len_policy - o.len_baseline for o in have], dtype=float)
    return fit_length_logistic(y, d, penalty=penalty).at_zero


# ---- generalization gap ------------------------------------------------------------------------------

@dataclass
class GapResult:
    id_rate: float
    ood_rate: float
    gap: float
    ci_low: float
    ci_high: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id_rate, "ood": self.ood_rate, "gap": self.gap, "ci_low": self.ci_low,
                "ci_high": self.ci_high, "method": self.method}


def _scores_of(x: WinRateResult | ClusteredScores) -> ClusteredScores:
    s = x if isinstance(x, ClusteredScores) else x.scores
    if s is None or s.n == 0:
        raise ValueError("generalization_gap needs results with outcomes on both splits")
    return s


def generalization_gap(id_result: WinRateResult | ClusteredScores, ood_result: WinRateResult | ClusteredScores, *,
                       n_boot: int = N_BOOT, seed: int = 0, confidence: float = 0.95) -> GapResult:
    """ID minus OOD rate with a percentile-bootstrap interval.

    The splits are independent prompt sets, so each is resampled on its own (by prompt) and the
    replicate differences give the interval. A positive gap means the policy does worse OOD.
    """
    a, b = _scores_of(id_result), _scores_of(ood_result)
    rng = np.random.default_rng(seed)
    diff = a.bootstrap(n_boot, rng) - b.bootstrap(n_boot, rng)
    alpha = 1 - confidence
    lo, hi = (float(x) for x in np.quantile(diff, [alpha / 2, 1 - alpha / 2]))
    return GapResult(a.mean, b.mean, a.mean - b.mean, lo, hi,
                     f"percentile bootstrap of the difference, prompts resampled within each split "
                     f"(B={n_boot}, seed={seed})")


# ---- from label records ------------------------------------------------------------------------------

@dataclass
class LabelOutcomes:
    outcomes: list[Outcome]
    n_labels: int
    n_used: int
    n_errors: int
    n_other_pairs: int

    def notes(self) -> list[str]:
        out = []
        if self.n_errors:
            out.append(f"{self.n_errors} labels without a verdict (errors or unparsed) were skipped")
        if self.n_other_pairs:
            out.append(f"{self.n_other_pairs} labels compare other models and were ignored")
        return out


def _prompt_key(label: Label) -> str:
    if label.prompt_id is not None:
        return str(label.prompt_id)
    if label.prompt is not None:
        return stable_id(label.prompt)
    return label.item


def outcomes_from_labels(labels: Iterable[Label], policy: str, baseline: str, *,
                         categories: dict[str, str] | None = None) -> LabelOutcomes:
    """Turn label records into policy-vs-baseline outcomes.

    Both orders of a pair by one rater are combined into one outcome by `rlaif.stats.verdicts`'
    `mean_score` rule: the policy's score in each label (1 win, ½ tie, 0 loss, whichever side a/b it
    was on) is averaged, and the mean maps to a win (> ½), loss (< ½) or tie (= ½), so a judge that
    always picks the first-shown response yields a tie, not a win. `p_a` becomes the policy's win
    probability and is averaged the same way.
    Lengths are character counts of the two responses. The cluster is the label's `prompt_id` field
    when present, else a hash of the prompt text, else the item.
    """
    groups: dict[tuple[str, str], list[tuple[float, float | None, Label, str]]] = {}
    n_labels = n_errors = n_other = 0
    for lab in labels:
        n_labels += 1
        if (lab.model_a, lab.model_b) == (policy, baseline):
            side = "a"
        elif (lab.model_a, lab.model_b) == (baseline, policy):
            side = "b"
        else:
            n_other += 1
            continue
        if lab.winner is None:
            n_errors += 1
            continue
        s = side_score(lab.winner, side)
        p = None if lab.p_a is None else (lab.p_a if side == "a" else 1 - lab.p_a)
        groups.setdefault((lab.item, lab.rater), []).append((s, p, lab, side))
    outcomes = []
    for (_item, _rater), rows in groups.items():
        mean = sum(r[0] for r in rows) / len(rows)
        verdict = verdict_of_score(mean)
        ps = [r[1] for r in rows if r[1] is not None]
        first, side = rows[0][2], rows[0][3]
        pid = _prompt_key(first)
        la = len(first.response_a) if first.response_a is not None else None
        lb = len(first.response_b) if first.response_b is not None else None
        lp, lbase = (la, lb) if side == "a" else (lb, la)
        cat = first.category or (categories or {}).get(pid)
        outcomes.append(Outcome(pid, verdict, sum(ps) / len(ps) if ps else None, lp, lbase, cat))
    used = sum(len(r) for r in groups.values())
    return LabelOutcomes(outcomes, n_labels, used, n_errors, n_other)


def win_rate_from_labels(labels: Iterable[Label], policy: str, baseline: str, *,
                         categories: dict[str, str] | None = None, **kwargs) -> WinRateResult:
    """`compute_win_rate` on the outcomes of `outcomes_from_labels`, with its skip notes as warnings."""
    lo = outcomes_from_labels(labels, policy, baseline, categories=categories)
    res = compute_win_rate(lo.outcomes, policy=policy, baseline=baseline, **kwargs)
    res.warnings = lo.notes() + res.warnings
    return res
