"""Win rate, clustered bootstrap intervals, length control and the ID-OOD gap.

Checked against hand-computed values (exact bootstrap distributions by enumeration, Wilson's
formula) and reference libraries (scipy.stats.bootstrap, statsmodels, scikit-learn).
"""
from __future__ import annotations

import math
from fractions import Fraction
from math import factorial

import numpy as np
import pytest
from scipy import stats

from rlaif.records import Label
from rlaif.stats import winrate as W


def _record(wins, losses, ties, prefix="p"):
    out = [W.Outcome(f"{prefix}w{i}", "win") for i in range(wins)]
    out += [W.Outcome(f"{prefix}l{i}", "loss") for i in range(losses)]
    out += [W.Outcome(f"{prefix}t{i}", "tie") for i in range(ties)]
    return out


def _exact_bootstrap_quantiles(k_win, k_tie, k_loss, q):
    """Quantiles of the exact bootstrap distribution of the mean, by enumerating multinomial draws."""
    n = k_win + k_tie + k_loss
    dist: dict[Fraction, Fraction] = {}
    for a in range(n + 1):
        for b in range(n + 1 - a):
            c = n - a - b
            pr = Fraction(factorial(n), factorial(a) * factorial(b) * factorial(c))
            pr *= Fraction(k_win, n) ** a * Fraction(k_tie, n) ** b * Fraction(k_loss, n) ** c
            x = Fraction(2 * a + b, 2 * n)
            dist[x] = dist.get(x, 0) + pr
    out, cum = [], Fraction(0)
    xs = sorted(dist)
    for target in q:
        cum = Fraction(0)
        for x in xs:
            cum += dist[x]
            if cum >= Fraction(target).limit_denominator(1000):
                out.append(float(x))
                break
    return out


def test_seven_three_two_by_hand():
    r = W.compute_win_rate(_record(7, 3, 2), n_boot=200_000, seed=1)
    assert (r.n, r.wins, r.losses, r.ties) == (12, 7, 3, 2)
    assert r.win_rate == pytest.approx(8 / 12)
    # The exact bootstrap distribution of the mean of 12 draws from {1 x7, 1/2 x2, 0 x3}:
    # its 2.5% and 97.5% quantiles are 5/12 and 7/8 (P(mean <= 3/8) = 0.017, P(mean <= 5/12) = 0.036,
    # P(mean <= 7/8) = 0.977), so the percentile interval is [5/12, 7/8] ...
    assert _exact_bootstrap_quantiles(7, 2, 3, [0.025, 0.975]) == [5 / 12, 7 / 8]
    # ... and with 12 < 30 prompts it is widened to cover Wilson's interval for p = 2/3, n = 12:
    z = 1.959963984540054
    n, p = 12, 2 / 3
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert center - half == pytest.approx(0.390622, abs=1e-6) and center + half == pytest.approx(0.861880, abs=1e-6)
    assert r.ci_low == pytest.approx(center - half, abs=1e-12)  # Wilson is lower than 5/12
    assert r.ci_high == pytest.approx(7 / 8, abs=1e-12)  # the bootstrap is higher than Wilson's 0.862
    assert "Wilson" in r.ci_method and any("only 12 prompts" in w for w in r.warnings)


def test_wilson_matches_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    for k, n in [(8, 12), (0, 5), (3, 3), (40, 97)]:
        assert W.wilson_interval(k / n, n) == pytest.approx(proportion_confint(k, n, method="wilson"), abs=1e-12)


def test_tiny_and_degenerate_samples_get_sensible_intervals():
    r = W.compute_win_rate(_record(3, 0, 0))
    assert r.win_rate == 1.0 and r.ci_high == 1.0
    assert r.ci_low == pytest.approx(W.wilson_interval(1.0, 3)[0]) and r.ci_low < 0.5  # not [1, 1]
    one = W.compute_win_rate(_record(0, 0, 1))
    assert one.win_rate == 0.5 and one.ci_low < 0.2 and one.ci_high > 0.8
    assert "only 1 prompt:" in one.warnings[0] and any("every comparison is a tie" in w for w in one.warnings)
    assert not any("tie" in w for w in W.compute_win_rate(_record(7, 3, 2)).warnings)
    # many prompts, all wins: no bootstrap spread, still a Wilson lower bound below 1
    many = W.compute_win_rate(_record(100, 0, 0))
    assert many.ci_high == 1.0 and many.ci_low == pytest.approx(W.wilson_interval(1.0, 100)[0])
    empty = W.compute_win_rate([])
    assert empty.n == 0 and empty.win_rate is None and empty.ci_low is None and empty.warnings


def test_unclustered_interval_matches_scipy_bootstrap():
    rng = np.random.default_rng(3)
    verdicts = rng.choice(["win", "loss", "tie"], size=300, p=[0.5, 0.35, 0.15])
    outs = [W.Outcome(f"p{i}", v) for i, v in enumerate(verdicts)]
    r = W.compute_win_rate(outs, n_boot=20_000, seed=0)
    scores = np.array([o.score for o in outs])
    ref = stats.bootstrap((scores,), np.mean, n_resamples=20_000, method="percentile", random_state=1,
                          confidence_level=0.95).confidence_interval
    assert "Wilson" not in r.ci_method
    assert r.ci_low == pytest.approx(ref.low, abs=0.006) and r.ci_high == pytest.approx(ref.high, abs=0.006)


def test_clustered_interval_matches_scipy_paired_bootstrap_and_is_wider():
    rng = np.random.default_rng(5)
    outs = []
    for i in range(80):  # 4 samples per prompt; verdicts strongly shared within a prompt
        base = rng.choice(["win", "loss"], p=[0.6, 0.4])
        for _ in range(4):
            v = base if rng.random() < 0.85 else rng.choice(["win", "loss", "tie"])
            outs.append(W.Outcome(f"prompt{i}", v))
    r = W.compute_win_rate(outs, n_boot=20_000, seed=0)
    assert r.n == 320 and r.n_prompts == 80
    cs = r.scores
    ref = stats.bootstrap((cs.sums, cs.counts), lambda s, c, axis=-1: s.sum(axis) / c.sum(axis), paired=True,
                          vectorized=True, n_resamples=20_000, method="percentile", random_state=2).confidence_interval
    assert r.ci_low == pytest.approx(ref.low, abs=0.008) and r.ci_high == pytest.approx(ref.high, abs=0.008)
    # Treating the 320 outcomes as independent understates the uncertainty.
    naive = W.compute_win_rate([W.Outcome(f"x{i}", o.verdict) for i, o in enumerate(outs)], n_boot=20_000)
    assert (r.ci_high - r.ci_low) > 1.5 * (naive.ci_high - naive.ci_low)


def test_bootstrap_is_seeded():
    outs = _record(40, 30, 10)
    a = W.compute_win_rate(outs, seed=7)
    b = W.compute_win_rate(outs, seed=7)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)


def test_soft_win_rate_and_per_category():
    outs = [W.Outcome("a", "win", p_win=0.9, category="math"), W.Outcome("b", "loss", p_win=0.2, category="math"),
            W.Outcome("c", "tie", p_win=0.5, category="chat"), W.Outcome("d", "win", category="chat")]
    r = W.compute_win_rate(outs)
    assert r.soft_win_rate == pytest.approx((0.9 + 0.2 + 0.5) / 3)
    assert any("3 of 4" in w for w in r.warnings)
    assert set(r.per_category) == {"math", "chat"}
    assert r.per_category["chat"]["win_rate"] == 0.75 and r.per_category["math"]["n"] == 2
    d = r.to_dict()
    for k in ["n", "wins", "losses", "ties", "win_rate", "soft_win_rate", "ci_low", "ci_high", "lc_win_rate",
              "per_category", "warnings"]:
        assert k in d


# ---- length control -------------------------------------------------------------------------------------

def _length_data(seed=0, n=400, effect=1.5, base=0.0, shift=0.0):
    rng = np.random.default_rng(seed)
    d = rng.normal(shift, 120, size=n)
    p = 1 / (1 + np.exp(-(base + effect * d / 120)))
    u = rng.random(n)
    y = np.where(u < p * 0.9, 1.0, np.where(u < p * 0.9 + 0.1, 0.5, 0.0))  # some ties
    return y, d


def test_lc_fit_matches_sklearn_with_the_same_penalty():
    from sklearn.linear_model import LogisticRegression

    y, d = _length_data()
    fit = W.fit_length_logistic(y, d, penalty=1.0)
    z = d / np.std(d)
    # fractional targets = each row twice, as a 1 with weight y and as a 0 with weight 1 - y
    X = np.concatenate([z, z])[:, None]
    t = np.concatenate([np.ones_like(y), np.zeros_like(y)])
    w = np.concatenate([y, 1 - y])
    ref = LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000).fit(X, t, sample_weight=w)
    assert fit.intercept == pytest.approx(ref.intercept_[0], abs=1e-6)
    assert fit.slope == pytest.approx(ref.coef_[0, 0], abs=1e-6)


def test_lc_fit_without_penalty_matches_statsmodels_glm():
    import statsmodels.api as sm

    y, d = _length_data(seed=1, effect=0.7)
    fit = W.fit_length_logistic(y, d, penalty=0.0)
    z = d / np.std(d)
    ref = sm.GLM(y, sm.add_constant(z), family=sm.families.Binomial()).fit(tol=1e-12)
    assert fit.intercept == pytest.approx(ref.params[0], abs=1e-7)
    assert fit.slope == pytest.approx(ref.params[1], abs=1e-7)


def test_lc_removes_a_length_bias_and_warns():
    # The judge prefers whichever is longer; at equal length it is a coin flip (base 0).
    y, d = _length_data(seed=2, effect=2.5, base=0.0, shift=150)  # the policy is usually longer
    outs = [W.Outcome(f"p{i}", "win" if s == 1 else "loss" if s == 0 else "tie", len_policy=300 + x, len_baseline=300)
            for i, (s, x) in enumerate(zip(y, d, strict=True))]
    r = W.compute_win_rate(outs, n_boot=2000)
    assert r.win_rate > 0.75
    assert r.lc_win_rate == pytest.approx(0.5, abs=0.12)
    assert any("length-controlled" in w for w in r.warnings)


def test_lc_equals_raw_when_lengths_are_equal_and_stays_finite_when_separable():
    outs = [W.Outcome(f"p{i}", v, len_policy=100, len_baseline=100) for i, v in enumerate(["win"] * 6 + ["loss"] * 4)]
    r = W.compute_win_rate(outs)
    assert r.lc_win_rate == pytest.approx(0.6, abs=1e-9) and r.win_rate == 0.6
    # wins exactly when longer: perfectly separable; the penalty keeps the slope finite
    sep = [W.Outcome(f"s{i}", "win" if i % 2 else "loss", len_policy=100 + (50 if i % 2 else -50), len_baseline=100)
           for i in range(40)]
    fit = W.fit_length_logistic([o.score for o in sep], [o.len_policy - o.len_baseline for o in sep])
    assert math.isfinite(fit.slope) and 0 < fit.slope < 20
    assert W.compute_win_rate(sep).lc_win_rate == pytest.approx(0.5, abs=1e-6)
    allwin = W.compute_win_rate([W.Outcome(f"w{i}", "win", len_policy=i, len_baseline=5) for i in range(10)])
    assert allwin.lc_win_rate == 1.0


# ---- generalization gap -------------------------------------------------------------------------------

def test_generalization_gap_against_normal_approximation():
    id_res = W.compute_win_rate(_record(140, 50, 10, "i"))
    ood_res = W.compute_win_rate(_record(90, 100, 10, "o"))
    g = W.generalization_gap(id_res, ood_res, n_boot=40_000, seed=3)
    assert g.id_rate == pytest.approx(145 / 200) and g.ood_rate == pytest.approx(95 / 200)
    assert g.gap == pytest.approx(0.25)
    # independent splits: se = sqrt(var_id / n + var_ood / n) with plug-in variances
    s_id = np.array([o.score for o in _record(140, 50, 10)])
    s_ood = np.array([o.score for o in _record(90, 100, 10)])
    se = math.sqrt(s_id.var() / 200 + s_ood.var() / 200)
    assert g.ci_low == pytest.approx(0.25 - 1.96 * se, abs=0.01)
    assert g.ci_high == pytest.approx(0.25 + 1.96 * se, abs=0.01)
    with pytest.raises(ValueError):
        W.generalization_gap(id_res, W.compute_win_rate([]))


# ---- from labels ----------------------------------------------------------------------------------------

def _label(item, rater, order, winner, a="pol", b="base", p_a=None, ra="xx", rb="yyyy", prompt="q", **extra):
    return Label(item=item, rater=rater, order=order, winner=winner, model_a=a, model_b=b, p_a=p_a,
                 response_a=ra, response_b=rb, prompt=prompt, **extra)


def test_outcomes_from_labels_combine_both_orders():
    labels = [
        # consistent judge: policy (a) wins in both orders
        _label("i1", "j", "ab", "a", p_a=0.8), _label("i1", "j", "ba", "a", p_a=0.6),
        # position-biased judge: picks whoever is shown first -> one win, one loss -> a tie
        _label("i2", "j", "ab", "a", prompt="q2"), _label("i2", "j", "ba", "b", prompt="q2"),
        # policy is model_b here, and wins once and ties once -> a win (mean 0.75)
        _label("i3", "j", "ab", "b", a="base", b="pol", p_a=0.3, prompt="q3", prompt_id="P3", category="math"),
        _label("i3", "j", "ba", "tie", a="base", b="pol", prompt="q3", prompt_id="P3", category="math"),
        # errors and other models are skipped
        _label("i4", "j", "ab", None, prompt="q4"), _label("i5", "j", "ab", "a", a="other", prompt="q5"),
    ]
    lo = W.outcomes_from_labels(labels, "pol", "base")
    assert (lo.n_labels, lo.n_used, lo.n_errors, lo.n_other_pairs) == (8, 6, 1, 1)
    by_pid = {o.prompt_id: o for o in lo.outcomes}
    o1 = by_pid[W.stable_id("q")]
    assert o1.verdict == "win" and o1.p_win == pytest.approx(0.7) and (o1.len_policy, o1.len_baseline) == (2, 4)
    assert by_pid[W.stable_id("q2")].verdict == "tie"
    o3 = by_pid["P3"]
    assert o3.verdict == "win" and o3.p_win == pytest.approx(0.7) and o3.category == "math"
    assert (o3.len_policy, o3.len_baseline) == (4, 2)
    r = W.win_rate_from_labels(labels, "pol", "base")
    assert (r.wins, r.ties, r.losses) == (2, 1, 0) and r.policy == "pol"
    assert any("without a verdict" in w for w in r.warnings) and any("other models" in w for w in r.warnings)


def test_several_raters_are_separate_outcomes_in_one_cluster():
    labels = [_label("i1", r, o, "a" if r != "r3" else "b") for r in ("r1", "r2", "r3") for o in ("ab", "ba")]
    r = W.win_rate_from_labels(labels, "pol", "base")
    assert (r.n, r.n_prompts, r.wins, r.losses) == (3, 1, 2, 1)
