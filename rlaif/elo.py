"""Leaderboards from battles (`rlaif elo`): Bradley–Terry ratings with bootstrap intervals.

Input: rlaif label JSONL (one battle per rater and pair: the rater's combined verdict over
its labels on that pair, `rlaif.stats.verdicts.unanimous_or_tie`, MT-Bench's rule) or
Chatbot-Arena-style battles (`model_a`, `model_b`, `winner`: model_a | model_b | tie |
tie (bothbad)), as JSONL or a JSON list.
Output (`leaderboard()`): {"method", "n_battles", "n_models", "anchor", "bootstrap_rounds",
"seed", "ratings": [{model, rating, ci_low, ci_high, rank, n_battles, win_rate}], ...}.
`run_leaderboard` is the command (`rlaif elo`, the demo): the board written to OUT/leaderboard.json,
.csv, .svg and .html, returned as a `LeaderboardRun`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from rlaif.convert import load_records
from rlaif.errors import ConfigError, InputError
from rlaif.records import Label, LabelDuplicates, check_orientation, write_json, write_text
from rlaif.records import _describe as describe_validation_error
from rlaif.stats import ranking
from rlaif.stats.bootstrap import clean
from rlaif.stats.verdicts import unanimous_or_tie

ARENA_WINNERS = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}
LABEL_WINNERS = {"a": 1.0, "b": 0.0, "tie": 0.5}


@dataclass
class BattleFile:
    model_a: list[str]
    model_b: list[str]
    outcome: list[float]
    len_a: list[float]  # response lengths in characters (NaN when unknown), for style control
    len_b: list[float]
    source: str  # "labels" or "arena"
    duplicates: LabelDuplicates | None = None  # repeated label lines, dropped (the first is kept)


def _conv_chars(conv) -> float:
    if isinstance(conv, list):
        return float(sum(len(str(m.get("content", ""))) for m in conv if isinstance(m, dict)
                         and m.get("role") == "assistant"))
    return float(len(conv)) if isinstance(conv, str) else np.nan


def read_battles(path: str | Path) -> BattleFile:
    """Read battles from label JSONL or Arena-style battles; bad lines raise InputError(PATH:LINE). A rater's
    labels of one item are combined letter by letter, so an item's labels must name its models in one
    orientation (`rlaif.records.check_orientation`, as `rlaif audit`)."""
    bf = BattleFile([], [], [], [], [], "", duplicates=LabelDuplicates(str(path)))
    combined: dict[tuple[str, str], dict] = {}
    first: dict[str, tuple[str, str, int]] = {}  # item -> its first label's model_a, model_b, line
    for n, obj in load_records(path):
        if "item" in obj or "rater" in obj:  # label-shaped: validation names a missing item or rater
            try:
                lb = Label.model_validate(obj)
            except ValidationError as e:
                raise InputError(path, n, f"not a valid label: {describe_validation_error(e)}",
                                 "a label line needs item, rater, winner (a|b|tie|null), model_a, model_b") from None
            if not lb.model_a or not lb.model_b:
                raise InputError(path, n, "label has no model_a/model_b",
                                 "a battle needs both model names; set model_a and model_b")
            bf.source = "labels"
            check_orientation(lb, path, n, first)  # first: a swapped label is no repeat of the same (order)
            if bf.duplicates.is_repeat(lb, n):
                continue
            c = combined.setdefault((lb.item, lb.rater), {"lb": lb, "winners": set()})
            if lb.winner is not None:
                c["winners"].add(lb.winner)
        elif {"model_a", "model_b", "winner"} <= set(obj):
            w = obj["winner"]
            if w not in ARENA_WINNERS:
                if w in (None, "", "error"):
                    continue
                raise InputError(path, n, f"winner = {w!r}", "use model_a, model_b, tie or 'tie (bothbad)'")
            bf.source = "arena"
            bf.model_a.append(str(obj["model_a"]))
            bf.model_b.append(str(obj["model_b"]))
            bf.outcome.append(ARENA_WINNERS[w])
            bf.len_a.append(_conv_chars(obj.get("conversation_a", obj.get("response_a"))))
            bf.len_b.append(_conv_chars(obj.get("conversation_b", obj.get("response_b"))))
        else:
            raise InputError(path, n, "neither a label (item, rater, winner) nor a battle (model_a, model_b, winner)",
                             "convert other formats with `rlaif convert`")
    for c in combined.values():
        if not c["winners"]:
            continue  # no valid verdict on this pair
        lb = c["lb"]
        w = unanimous_or_tie(c["winners"], "tie")
        bf.model_a.append(lb.model_a)
        bf.model_b.append(lb.model_b)
        bf.outcome.append(LABEL_WINNERS[w])
        bf.len_a.append(float(len(lb.response_a)) if lb.response_a is not None else np.nan)
        bf.len_b.append(float(len(lb.response_b)) if lb.response_b is not None else np.nan)
    if not bf.outcome:
        raise InputError(path, None, "no battles with a verdict", "the file needs at least one decided battle")
    return bf


def parse_anchor(spec: str | None) -> tuple[str, float] | None:
    if not spec:
        return None
    model, sep, rating = spec.rpartition("=")
    try:
        if sep and model and np.isfinite(float(rating)):
            return model, float(rating)
    except ValueError:
        pass
    raise ConfigError(f"--anchor {spec!r}: expected MODEL=RATING. Fix: e.g. --anchor gpt-4=1200")


def leaderboard(bf: BattleFile, *, rounds: int = 1000, seed: int = 0, anchor: tuple[str, float] | None = None,
                method: str = "bt", k: float = 4.0, style: str | None = None,
                progress: Callable[[float], None] | None = None) -> dict:
    """Ratings with bootstrap 2.5/97.5 percentiles and CI-aware ranks."""
    keep = [i for i, (a, b) in enumerate(zip(bf.model_a, bf.model_b, strict=True)) if a != b]
    n_self = len(bf.outcome) - len(keep)  # a model against itself says nothing about ratings
    if not keep:
        raise ConfigError("every battle pits a model against itself. Fix: check model_a/model_b")
    bf = BattleFile(*([getattr(bf, f)[i] for i in keep] for f in ("model_a", "model_b", "outcome", "len_a", "len_b")),
                    source=bf.source)
    battles = ranking.Battles.from_names(bf.model_a, bf.model_b, bf.outcome)
    if anchor and anchor[0] not in battles.models:
        raise ConfigError(f"--anchor model {anchor[0]!r} is not in the battles. Fix: use one of "
                          f"{', '.join(battles.models[:20])}")
    extra: dict = {}
    if style is not None:
        if style != "length":
            raise ConfigError(f"--style-control {style!r}: only 'length' is supported. Fix: --style-control length")
        if method != "bt":
            raise ConfigError("--style-control works with Bradley–Terry only (drop --online)")
        la, lb = np.asarray(bf.len_a), np.asarray(bf.len_b)
        if not (np.isfinite(la) & np.isfinite(lb)).all():
            raise ConfigError("--style-control length needs the response texts of every battle "
                              "(response_a/response_b in labels, conversation_a/b in battles)")
        s = (la - lb) / np.maximum(la + lb, 1.0)
        ratings, beta, boot, boot_beta = ranking.fit_bt_style(battles, s, rounds=rounds, seed=seed, anchor=anchor,
                                                              progress=progress)
        extra["style_control"] = {"covariate": "(len_a - len_b) / (len_a + len_b), standardized",
                                  "length_coefficient": beta,
                                  "length_coefficient_ci": _ci(boot_beta) if boot_beta is not None else None}
    elif method == "bt":
        res = ranking.fit_bt(battles, rounds=rounds, seed=seed, anchor=anchor)
        ratings, boot = res.ratings, res.boot
    elif method == "elo":
        ratings, boot = ranking.online_elo(battles, k=k, rounds=rounds, seed=seed, anchor=anchor, progress=progress)
        extra["k_factor"] = k
    else:
        raise ConfigError(f"unknown method {method!r}: use bt or elo")
    if boot is not None:
        low, high = np.percentile(boot, [2.5, 97.5], axis=0)
    else:
        low = high = np.full(len(ratings), np.nan)
    ranks = ranking.ci_ranks(low, high) if boot is not None else 1 + (ratings[None, :] > ratings[:, None]).sum(1)
    n, wr = ranking.win_rates(battles)
    order = np.argsort(-ratings, kind="stable")
    rows = [{"model": battles.models[i], "rating": round(float(ratings[i]), 4), "ci_low": _r(low[i]),
             "ci_high": _r(high[i]), "rank": int(ranks[i]), "n_battles": int(n[i]), "win_rate": clean(wr[i])}
            for i in order]
    return {"method": "bradley-terry" if method == "bt" else "online-elo", "scale": "400*log10, mean 1000"
            if anchor is None else f"400*log10, {anchor[0]} = {anchor[1]}",
            "n_battles": len(bf.outcome), "n_self_battles_dropped": n_self, "n_models": len(battles.models),
            "source": bf.source,
            "bootstrap_rounds": rounds, "seed": seed, "anchor": None if anchor is None else
            {"model": anchor[0], "rating": anchor[1]},
            "rank_rule": "1 + number of models whose ci_low exceeds this model's ci_high",
            "comparison_graph_connected": ranking.is_connected(battles), **extra, "ratings": rows}


def _r(x) -> float | None:
    v = clean(x)
    return None if v is None else round(v, 4)


def _ci(samples) -> list[float | None]:
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return [clean(lo), clean(hi)]


def leaderboard_csv(board: dict) -> str:
    cols = ["rank", "model", "rating", "ci_low", "ci_high", "n_battles", "win_rate"]
    lines = [",".join(cols)]
    for r in board["ratings"]:
        cells = []
        for c in cols:
            v = r[c]
            s = "" if v is None else str(v)
            cells.append('"' + s.replace('"', '""') + '"' if any(ch in s for ch in ',"\n') else s)
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


@dataclass
class LeaderboardRun:
    """What `run_leaderboard` wrote: leaderboard.json's content and the folder holding leaderboard.json, .csv,
    .svg and .html."""

    board: dict
    out: Path

    @property
    def summary(self) -> str:
        top = self.board["ratings"][0]
        return (f"{self.board['n_models']} models, {self.board['n_battles']} battles; top: {top['model']} "
                f"({top['rating']:.1f}) -> {self.out}/leaderboard.json, .csv, .svg, .html")


def run_leaderboard(battles: BattleFile, out: str | Path, **settings) -> LeaderboardRun:
    """`rlaif elo`: `leaderboard(battles, **settings)` written to OUT/leaderboard.json, .csv, .svg and .html."""
    from rlaif.report.elo_page import leaderboard_svg, render_elo_html

    out = Path(out)
    board = leaderboard(battles, **settings)
    write_json(out / "leaderboard.json", board)
    write_text(out / "leaderboard.csv", leaderboard_csv(board))
    write_text(out / "leaderboard.svg", leaderboard_svg(board))
    write_text(out / "leaderboard.html", render_elo_html(board))
    return LeaderboardRun(board, out)
