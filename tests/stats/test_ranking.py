"""Bradley–Terry, online Elo, CI-aware ranks and style control."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rlaif.stats.ranking import Battles, ci_ranks, fit_bt, fit_bt_style, online_elo, to_ratings, win_rates


def test_two_players_three_one():
    # MLE: sigmoid(d) = 3/4 -> d = ln 3 -> rating gap 400 log10(3) = 190.85
    b = Battles.from_names(["x", "x", "x", "y"], ["y", "y", "y", "x"], [1, 1, 1, 1])
    res = fit_bt(b)
    assert res.ratings[0] - res.ratings[1] == pytest.approx(400 * math.log10(3), abs=0.01)
    assert res.ratings.mean() == pytest.approx(1000)
    # a tie is half a win: 2 wins + 2 ties = 3 of 4 points, the same gap
    t = Battles.from_names(["x"] * 4, ["y"] * 4, [1, 1, 0.5, 0.5])
    assert np.diff(fit_bt(t).ratings[::-1])[0] == pytest.approx(190.85, abs=0.01)


def _random_battles(seed=0, m=12, n=6000, ties=0.1):
    rng = np.random.default_rng(seed)
    true = rng.normal(0, 1, m)
    a = rng.integers(0, m, n)
    b = (a + rng.integers(1, m, n)) % m
    y = (rng.random(n) < 1 / (1 + np.exp(-(true[a] - true[b])))).astype(float)
    y[rng.random(n) < ties] = 0.5
    return Battles([f"m{i}" for i in range(m)], a, b, y)


def test_matches_choix_and_logistic_regression():
    choix = pytest.importorskip("choix")
    b = _random_battles(ties=0.0)
    ours = fit_bt(b).ratings
    data = [(int(i), int(j)) if y == 1 else (int(j), int(i)) for i, j, y in zip(b.a, b.b, b.outcome, strict=True)]
    ref = to_ratings(choix.opt_pairwise(len(b.models), data, alpha=0), b.models)
    assert np.abs(ours - ref).max() < 0.01

    # with ties as half wins: an unpenalized logistic regression on duplicated rows (a tie = a win + a loss)
    from sklearn.linear_model import LogisticRegression

    bt = _random_battles(seed=3, n=3000, ties=0.2)
    m = len(bt.models)
    x = np.zeros((len(bt.a), m))
    x[np.arange(len(bt.a)), bt.a] = 1
    x[np.arange(len(bt.a)), bt.b] = -1
    xx = np.vstack([x, x])
    yy = np.r_[(bt.outcome >= 0.5).astype(int), (bt.outcome > 0.5).astype(int)]
    lr = LogisticRegression(fit_intercept=False, C=1e8, tol=1e-10, max_iter=10000).fit(xx, yy)
    ref = to_ratings(lr.coef_[0], bt.models)
    assert np.abs(fit_bt(bt).ratings - ref).max() < 0.01


def test_bootstrap_intervals_ranks_and_anchor():
    b = _random_battles(seed=1)
    res = fit_bt(b, rounds=300, seed=4)
    assert res.boot.shape == (300, len(b.models))
    lo, hi = np.percentile(res.boot, [2.5, 97.5], axis=0)
    assert np.all(lo < res.ratings) and np.all(res.ratings < hi)
    again = fit_bt(b, rounds=300, seed=4)
    assert np.array_equal(again.boot, res.boot)  # seeded
    # analytic check: the bootstrap spread matches the inverse Fisher information
    assert 0.8 < np.median(res.boot.std(axis=0)) / _fisher_sd(b, res.ratings) < 1.25
    anchored = fit_bt(b, anchor=("m3", 1200.0))
    assert anchored.ratings[3] == pytest.approx(1200) and np.allclose(np.diff(anchored.ratings), np.diff(res.ratings))


def _fisher_sd(b, ratings):
    theta = (ratings - 1000) / (400 / math.log(10))
    m = len(b.models)
    h = np.zeros((m, m))
    p = 1 / (1 + np.exp(-(theta[b.a] - theta[b.b])))
    w = p * (1 - p)
    np.add.at(h, (b.a, b.a), w)
    np.add.at(h, (b.b, b.b), w)
    np.add.at(h, (b.a, b.b), -w)
    np.add.at(h, (b.b, b.a), -w)
    cov = np.linalg.pinv(h)  # centred parametrization
    return float(np.median(np.sqrt(np.diag(cov)))) * 400 / math.log(10)


def test_ci_ranks_lmsys_rule():
    low = np.array([1100, 1050, 1040, 900])
    high = np.array([1200, 1110, 1090, 1000])
    # model 0 overlaps model 1 (1100 < 1110): both rank 1; model 2 is below model 0's lower bound
    assert ci_ranks(low, high).tolist() == [1, 1, 2, 4]


def test_separable_data_stays_finite():
    b = Battles.from_names(["x"] * 5 + ["y"] * 5, ["y"] * 5 + ["z"] * 5, [1] * 10)
    res = fit_bt(b, rounds=20)
    assert np.all(np.isfinite(res.ratings)) and res.ratings[0] > res.ratings[1] > res.ratings[2]
    assert np.all(np.isfinite(res.boot))


def test_online_elo_by_hand():
    b = Battles.from_names(["x", "x"], ["y", "y"], [1, 0])
    ratings, _ = online_elo(b, k=4)
    # first: expected 0.5, x +2 -> 1002/998; second: x expected 1/(1+10^(-4/400)), loses
    e = 1 / (1 + 10 ** (-4 / 400))
    x = 1002 - 4 * e
    assert ratings[0] == pytest.approx(x) and ratings[1] == pytest.approx(2000 - x)
    big = _random_battles(seed=2, m=5, n=3000)
    r, boot = online_elo(big, rounds=20, seed=1)
    assert boot.shape == (20, 5)
    bt = fit_bt(big).ratings
    assert np.corrcoef(r, bt)[0, 1] > 0.95


def test_style_control_recovers_length_effect():
    rng = np.random.default_rng(7)
    m, n = 6, 20000
    true = np.linspace(-1, 1, m)
    a = rng.integers(0, m, n)
    b = (a + rng.integers(1, m, n)) % m
    s = rng.normal(0, 1, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(true[a] - true[b] + 0.8 * s)))).astype(float)
    battles = Battles([f"m{i}" for i in range(m)], a, b, y)
    ratings, beta, boot, boot_beta = fit_bt_style(battles, s, rounds=5, seed=0)
    assert beta == pytest.approx(0.8 * s.std(), abs=0.08)
    theta = (ratings - 1000) / (400 / math.log(10))
    assert np.abs((theta - theta.mean()) - (true - true.mean())).max() < 0.1
    assert boot.shape == (5, m) and boot_beta.shape == (5,)
    # against an unpenalized logistic regression with the same design
    from sklearn.linear_model import LogisticRegression

    z = (s - s.mean()) / s.std()
    x = np.zeros((n, m + 1))
    x[np.arange(n), a] = 1
    x[np.arange(n), b] = -1
    x[:, m] = z
    lr = LogisticRegression(fit_intercept=False, C=1e8, tol=1e-10, max_iter=10000).fit(x, y)
    assert beta == pytest.approx(lr.coef_[0][m], abs=1e-3)
    assert np.abs(to_ratings(lr.coef_[0][:m], battles.models) - ratings).max() < 0.05


def test_win_rates():
    b = Battles.from_names(["x", "x", "y"], ["y", "z", "z"], [1, 0.5, 0])
    n, wr = win_rates(b)
    assert n.tolist() == [2, 2, 2] and wr.tolist() == [0.75, 0.0, 0.75]


def test_connectivity():
    from rlaif.stats.ranking import is_connected

    assert is_connected(Battles.from_names(["x", "y"], ["y", "z"], [1, 0]))
    assert not is_connected(Battles.from_names(["x", "u"], ["y", "v"], [1, 0]))
