"""The audit of judges and labelers: bias, consistency, accuracy against gold, agreement.

`audit_labels(labels, gold=None) -> dict` computes everything `rlaif audit` writes to
audit.json from `rlaif.records.Label` records (the output of `rlaif label`, or human
and LLM annotations converted with `rlaif convert`). Keys and definitions are listed
in README.md ("Auditing judges and labelers"); the statistics live in `rlaif.stats`.
`run_audit` is the command, called alike by `rlaif audit`, the demo and online DPO: the audit
written to OUT/audit.json, audit.md and audit.html, returned as an `AuditRun`.

Conventions:
- A rater's verdict on a pair combines all its valid labels on it by `rlaif.stats.verdicts`'
  `unanimous_or_tie` rule: the same winner in every one gives that winner, otherwise a tie
  (MT-Bench's conservative rule for two orders). Every statistic on verdicts uses it (verdict
  counts, agreement, consensus, gold agreement, self-preference, Dawid–Skene); the per-label
  rates (invalid, tie, position, first position, length, accuracy, calibration) read labels.
- Every rate carries k (numerator), n (denominator) and a 95% bootstrap interval; the
  bootstrap resamples items (pairs), seeded, shared by all statistics of one audit.
- Undefined numbers are null, never NaN.
- Gold: `gold="NAME"` uses the verdicts of rater NAME (then left out of `raters` and of
  `agreement`); a list of labels uses those (any raters; several gold votes per item allowed).
  An item's gold verdict is the most common gold vote; items where the top votes tie have none.
- Self-preference needs to know which model a rater is. A label field `rater_model` says so;
  without it, the rater name is matched case-insensitively against `model_a`/`model_b`, as
  is the part before its first "/" and the part after a "provider:" prefix
  ("gpt-4/pair-v2" and "openai:gpt-4" both match the model "gpt-4").
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

from rlaif.errors import ConfigError
from rlaif.records import Label, write_json, write_text
from rlaif.stats import bias
from rlaif.stats.agreement import (
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    krippendorff_alpha_interval,
    percent_agreement,
)
from rlaif.stats.bootstrap import DEFAULT_ROUNDS, DEFAULT_SEED, Estimate, ItemBootstrap, ratio, sum_statistic
from rlaif.stats.dawid_skene import dawid_skene
from rlaif.stats.verdicts import unanimous_or_tie

VERDICTS = ("a", "b", "tie")
CODE = {"a": 0, "b": 1, "tie": 2}
ORDER_CODE = {"ab": 0, "ba": 1}


@dataclass
class RaterData:
    """One rater's labels as arrays over the audit's item index."""

    name: str
    labels: list[Label]
    item: np.ndarray
    winner: np.ndarray  # 0 a, 1 b, 2 tie, -1 invalid
    order: np.ndarray  # 0 ab, 1 ba, -1 unknown
    p_a: np.ndarray  # NaN where absent
    len_a: np.ndarray  # NaN where the response text is absent
    len_b: np.ndarray
    verdict: dict[int, int] = field(default_factory=dict)  # item -> combined verdict code


def _rater_data(name: str, labels: list[Label], index: dict[str, int]) -> RaterData:
    def length(text):
        return float(len(text)) if isinstance(text, str) else np.nan

    rd = RaterData(
        name, labels,
        item=np.array([index[lb.item] for lb in labels], dtype=np.int64),
        winner=np.array([CODE[lb.winner] if lb.winner in CODE else -1 for lb in labels], dtype=np.int64),
        order=np.array([ORDER_CODE.get(lb.order or "", -1) for lb in labels], dtype=np.int64),
        p_a=np.array([np.nan if lb.p_a is None else lb.p_a for lb in labels], dtype=float),
        len_a=np.array([length(lb.response_a) for lb in labels]),
        len_b=np.array([length(lb.response_b) for lb in labels]),
    )
    rd.verdict = combine_verdicts(rd.item, rd.winner)
    return rd


def combine_verdicts(item: np.ndarray, winner: np.ndarray) -> dict[int, int]:
    """Per item, the combined verdict of one rater's valid labels (`unanimous_or_tie`)."""
    seen: dict[int, set[int]] = defaultdict(set)
    for i, w in zip(item.tolist(), winner.tolist(), strict=True):
        if w >= 0:
            seen[i].add(w)
    return {i: unanimous_or_tie(ws, CODE["tie"]) for i, ws in seen.items()}


def _est(e: Estimate, **extra) -> dict:
    d = e.to_dict()
    d.update(extra)
    return d


def _plurality(votes: Sequence[int]) -> int | None:
    """The most common vote, or None when the top count is shared (or there are no votes)."""
    if not votes:
        return None
    top = Counter(votes).most_common()
    if len(top) > 1 and top[0][1] == top[1][1]:
        return None
    return top[0][0]


def _rater_model_names(rd: RaterData) -> set[str]:
    given = {str(lb.rater_model or "").lower() for lb in rd.labels} - {""}
    if given:
        return given
    name = rd.name.lower()
    names = {name, name.split("/")[0]}
    return names | {n.split(":", 1)[1] for n in names if ":" in n}


def audit_labels(labels: Sequence[Label], gold: str | Sequence[Label] | None = None, *,
                 rounds: int = DEFAULT_ROUNDS, seed: int = DEFAULT_SEED, length_margin: int = 30) -> dict:
    """Audit raters from their labels; see the module docstring and README for every key."""
    labels = list(labels)
    if not labels:
        raise ConfigError("no labels to audit. Fix: pass a label JSONL file with at least one line")
    gold_source = None
    gold_labels: list[Label] = []
    if isinstance(gold, str):
        gold_labels = [lb for lb in labels if lb.rater == gold]
        if not gold_labels:
            raters = sorted({lb.rater for lb in labels})
            raise ConfigError(f"--gold {gold!r}: no labels by that rater. Fix: use one of {raters} or a gold file")
        labels_main = [lb for lb in labels if lb.rater != gold]
        gold_source = f"rater:{gold}"
    else:
        labels_main = labels
        if gold is not None:
            gold_labels = list(gold)
            gold_source = "labels"

    items = sorted({lb.item for lb in labels} | {lb.item for lb in gold_labels})
    index = {it: i for i, it in enumerate(items)}
    n_items = len(items)
    boot = ItemBootstrap(n_items, rounds, seed)

    by_rater: dict[str, list[Label]] = defaultdict(list)
    for lb in labels_main:
        by_rater[lb.rater].append(lb)
    raters = {name: _rater_data(name, lbs, index) for name, lbs in sorted(by_rater.items())}

    gold_votes: dict[int, list[int]] = defaultdict(list)
    by_gold_rater: dict[str, list[Label]] = defaultdict(list)
    for lb in gold_labels:
        by_gold_rater[lb.rater].append(lb)
    for lbs in by_gold_rater.values():
        g = _rater_data("gold", lbs, index)
        for i, v in g.verdict.items():
            gold_votes[i].append(v)
    gold_verdict = {i: v for i, vs in gold_votes.items() if (v := _plurality(vs)) is not None}

    out_raters = {}
    for name, rd in raters.items():
        out_raters[name] = _rater_report(rd, raters, boot, gold_votes, gold_verdict, length_margin, items)

    agreement = _agreement(raters, boot, n_items, items) if len(raters) >= 2 else None
    consensus_counts = Counter()
    for i in range(n_items):
        votes = [rd.verdict[i] for rd in raters.values() if i in rd.verdict]
        v = _plurality(votes)
        consensus_counts["none" if v is None else VERDICTS[v]] += 1

    ds = None
    if len(raters) >= 3:
        ds = _dawid_skene(raters, n_items, out_raters)

    return {
        "n_items": n_items,
        "n_labels": len(labels),
        "n_raters": len(raters),
        "gold": None if gold_source is None else {
            "source": gold_source, "n_items": len(gold_verdict), "n_votes": sum(len(v) for v in gold_votes.values()),
            "verdicts": {VERDICTS[k]: c for k, c in sorted(Counter(gold_verdict.values()).items())}},
        "settings": {"bootstrap_rounds": rounds, "seed": seed, "bootstrap_unit": "item",
                     "length_margin_chars": length_margin},
        "raters": out_raters,
        "agreement": agreement,
        "consensus": {"definition": "plurality of the raters' combined verdicts per item; none when the top is shared",
                      **{k: consensus_counts.get(k, 0) for k in ("a", "b", "tie", "none")}},
        "dawid_skene": ds,
    }


def _rater_report(rd: RaterData, raters: dict[str, RaterData], boot: ItemBootstrap, gold_votes, gold_verdict,
                  margin: int, items: list[str]) -> dict:
    n_items = boot.n_items

    def per_item(sel_items, values):
        return np.bincount(sel_items, weights=np.asarray(values, dtype=float), minlength=n_items)

    valid = rd.winner >= 0
    pairs = bias.order_pairs(rd.item, rd.winner, rd.order)
    consistent = pairs.w_ab == pairs.w_ba
    rep: dict = {
        "n": len(rd.labels),
        "n_items": len(set(rd.item.tolist())),
        "invalid_rate": _est(ratio(per_item(rd.item, ~valid), per_item(rd.item, np.ones(len(rd.item))), boot=boot)),
        "tie_rate": _est(ratio(per_item(rd.item, valid & (rd.winner == 2)), per_item(rd.item, valid), boot=boot)),
        "verdicts": {VERDICTS[k]: c for k, c in sorted(Counter(rd.verdict.values()).items())},
        "position_consistency": _est(bias.position_consistency(pairs, boot), n_shown_both_orders=pairs.n_shown_both),
        "first_position_rate": _est(bias.first_position_rate(rd.item, rd.winner, rd.order, boot)),
        "preference_fairness": _est(bias.preference_fairness(pairs, boot)),
        "longer_preferred_rate": _est(bias.longer_preferred_rate(rd.item, rd.winner, rd.len_a, rd.len_b, boot,
                                                                 margin)),
        "flipped_items": [items[i] for i in pairs.item[~consistent].tolist()],
    }
    rep["self_preference"] = _self_preference(rd, raters, boot)
    rep["agreement_with_consensus"] = _with_consensus(rd, raters, boot)
    if gold_votes:
        rep.update(_against_gold(rd, pairs, boot, gold_votes, gold_verdict, items))
    return rep


def _against_gold(rd: RaterData, pairs: bias.OrderPairs, boot: ItemBootstrap, gold_votes, gold_verdict,
                  items: list[str]) -> dict:
    n_items = boot.n_items

    def per_item(sel_items, values):
        return np.bincount(sel_items, weights=np.asarray(values, dtype=float), minlength=n_items)

    g = np.array([gold_verdict.get(i, -1) for i in rd.item.tolist()], dtype=np.int64)
    has_gold = g >= 0
    valid = rd.winner >= 0
    right = valid & has_gold & (rd.winner == g)
    out: dict = {"accuracy": _est(ratio(per_item(rd.item, right), per_item(rd.item, valid & has_gold), boot=boot))}
    by_order = {}
    for name, code in ORDER_CODE.items():
        sel = rd.order == code
        by_order[name] = _est(
            ratio(per_item(rd.item, right & sel), per_item(rd.item, valid & has_gold & sel), boot=boot),
            n_with_invalid=int((sel & has_gold).sum()))
    out["accuracy_by_order"] = by_order

    pg = np.array([gold_verdict.get(i, -1) for i in pairs.item.tolist()], dtype=np.int64)
    with_gold = pg >= 0
    both_right = with_gold & (pairs.w_ab == pg) & (pairs.w_ba == pg)
    shown_both = {i for i in rd.item[rd.order == 0].tolist()} & {i for i in rd.item[rd.order == 1].tolist()}
    out["accuracy_both_orders"] = _est(
        ratio(per_item(pairs.item, both_right), per_item(pairs.item, with_gold), boot=boot),
        n_with_invalid=sum(1 for i in shown_both if i in gold_verdict))

    # MT-Bench agreement: every (rater vote, gold vote) pair on an item counts once
    agree = np.zeros(n_items)
    total = np.zeros(n_items)
    agree_nt = np.zeros(n_items)
    total_nt = np.zeros(n_items)
    for i, v in rd.verdict.items():
        for gv in gold_votes.get(i, []):
            total[i] += 1
            agree[i] += gv == v
            if v != CODE["tie"] and gv != CODE["tie"]:
                total_nt[i] += 1
                agree_nt[i] += gv == v
    out["gold_agreement"] = _est(ratio(agree, total, boot=boot))
    out["gold_agreement_no_ties"] = _est(ratio(agree_nt, total_nt, boot=boot))
    out["gold_disagreements"] = [items[i] for i, v in sorted(rd.verdict.items())
                                 if i in gold_verdict and gold_verdict[i] != v]

    # calibration of p_a against decisive gold verdicts
    sel = np.isfinite(rd.p_a) & np.isin(g, [0, 1])
    if sel.any():
        cal = bias.calibration(rd.item[sel], rd.p_a[sel], (g[sel] == 0).astype(float), boot)
        out["ece"] = _est(cal.ece)
        out["brier"] = _est(cal.brier)
        out["calibration_bins"] = cal.bins
    else:
        out["ece"] = None
    return out


def _self_preference(rd: RaterData, raters: dict[str, RaterData], boot: ItemBootstrap) -> dict | None:
    names = _rater_model_names(rd)
    side: dict[int, int] = {}  # item -> 0 if the rater's model is a, 1 if b
    for i, lb in zip(rd.item.tolist(), rd.labels, strict=True):
        ma, mb = (lb.model_a or "").lower(), (lb.model_b or "").lower()
        if (ma in names) != (mb in names):
            side[i] = 0 if ma in names else 1
    if not side:
        return None
    model = next(m for lb in rd.labels for m in (lb.model_a, lb.model_b) if m and m.lower() in names)
    n_items = boot.n_items
    own = np.zeros(n_items)
    others = np.zeros(n_items)
    both = np.zeros(n_items)
    own_only = np.zeros(n_items)
    own_n = np.zeros(n_items)

    def score(v: int, s: int) -> float:
        return 0.5 if v == CODE["tie"] else float(v == s)

    for i, s in side.items():
        if i not in rd.verdict:
            continue
        mine = score(rd.verdict[i], s)
        own_only[i], own_n[i] = mine, 1
        theirs = [score(o.verdict[i], s) for o in raters.values() if o is not rd and i in o.verdict]
        if theirs:
            own[i], others[i], both[i] = mine, float(np.mean(theirs)), 1
    diff = sum_statistic(np.stack([own - others, both], axis=1), lambda t: t[..., 0] / t[..., 1], boot=boot,
                         n=int(both.sum()))
    return {"model": model, **_est(diff),
            "own_win_rate": _est(ratio(own_only, own_n, boot=boot)),
            "others_win_rate_same_items": _est(ratio(others, both, boot=boot))}


def _with_consensus(rd: RaterData, raters: dict[str, RaterData], boot: ItemBootstrap) -> dict | None:
    if len(raters) < 2:
        return None
    agree = np.zeros(boot.n_items)
    count = np.zeros(boot.n_items)
    for i, v in rd.verdict.items():
        c = _plurality([o.verdict[i] for o in raters.values() if o is not rd and i in o.verdict])
        if c is not None:
            count[i] = 1
            agree[i] = v == c
    return _est(ratio(agree, count, boot=boot))


def _agreement(raters: dict[str, RaterData], boot: ItemBootstrap, n_items: int, items: list[str]) -> dict:
    names = list(raters)
    codes = np.full((n_items, len(names)), -1, dtype=np.int64)
    for j, name in enumerate(names):
        for i, v in raters[name].verdict.items():
            codes[i, j] = v
    ordinal = np.select([codes == 1, codes == 2, codes == 0], [0, 1, 2], -1)  # b < tie < a
    # Cohen's kappa only for the pairs of raters that judged an item in common: with many raters (a crowd,
    # each on a slice of the items) most pairs share none and would be empty rows
    rated = (codes >= 0).astype(np.int64)
    shared = rated.T @ rated
    pairs = [(a, b) for a, b in combinations(range(len(names)), 2) if shared[a, b] > 0]
    out = {
        "raters": names,
        "percent_agreement": _est(percent_agreement(codes, 3, boot=boot)),
        "percent_agreement_no_ties": _est(percent_agreement(codes, 3, exclude=(2,), boot=boot)),
        "cohen_kappa": {f"{names[a]}|{names[b]}": _est(cohen_kappa(codes[:, a], codes[:, b], 3, boot=boot))
                        for a, b in pairs},
        "n_rater_pairs": len(names) * (len(names) - 1) // 2,  # of which `cohen_kappa` holds those sharing items
        "fleiss_kappa": _est(fleiss_kappa(codes, 3, boot=boot)),
        "krippendorff_alpha": _est(krippendorff_alpha(codes, 3, "nominal", boot=boot)),
        "krippendorff_alpha_ordinal": _est(krippendorff_alpha(ordinal, 3, "ordinal", boot=boot)),
    }
    p = np.full((n_items, len(names)), np.nan)
    for j, name in enumerate(names):
        rd = raters[name]
        ok = np.isfinite(rd.p_a)
        if ok.any():
            s = np.bincount(rd.item[ok], rd.p_a[ok], n_items)
            c = np.bincount(rd.item[ok], minlength=n_items)
            p[:, j] = np.where(c > 0, s / np.maximum(c, 1), np.nan)
    with_p = np.isfinite(p).any(axis=0).sum()
    out["krippendorff_alpha_p_a"] = (_est(krippendorff_alpha_interval(p, boot=boot), level="interval")
                                     if with_p >= 2 else None)
    rated = (codes >= 0).sum(axis=1)
    disagree = [items[i] for i in range(n_items) if rated[i] >= 2 and len(set(codes[i][codes[i] >= 0])) > 1]
    out["n_items_rated_by_two_or_more"] = int((rated >= 2).sum())
    out["disagreement_items"] = disagree
    return out


def _dawid_skene(raters: dict[str, RaterData], n_items: int, out_raters: dict) -> dict:
    names = list(raters)
    codes = np.full((n_items, len(names)), -1, dtype=np.int64)
    for j, name in enumerate(names):
        for i, v in raters[name].verdict.items():
            codes[i, j] = v
    res = dawid_skene(codes, 3)
    for j, name in enumerate(names):
        rel = res.reliability[j]
        out_raters[name]["dawid_skene_reliability"] = None if not np.isfinite(rel) else float(rel)
    return {
        "classes": list(VERDICTS),
        "priors": {VERDICTS[k]: float(res.priors[k]) for k in range(3)},
        "confusion": {name: [[float(x) for x in row] for row in res.confusion[j]] for j, name in enumerate(names)},
        "n_iter": res.n_iter,
        "converged": res.converged,
        "definition": "reliability = P(rater's verdict = latent true verdict) under the fitted model",
    }


def read_gold(path) -> list[Label]:
    """Gold labels from JSONL: `item` and `winner` per line; `rater` defaults to "gold"."""
    from pydantic import ValidationError

    from rlaif.errors import InputError
    from rlaif.records import _describe, iter_json_lines

    out = []
    for n, obj in iter_json_lines(path):
        obj.setdefault("rater", "gold")
        try:
            lb = Label.model_validate(obj)
        except ValidationError as e:
            raise InputError(path, n, f"not a gold label: {_describe(e)}",
                             'each line needs "item" and "winner" ("a", "b" or "tie")') from None
        if lb.winner is None:
            raise InputError(path, n, "gold label without a winner", 'set "winner" to "a", "b" or "tie"')
        out.append(lb)
    if not out:
        raise InputError(path, None, "no gold labels", 'add lines like {"item": "...", "winner": "a"}')
    return out


@dataclass
class AuditRun:
    """What `run_audit` wrote: audit.json's content and the folder holding audit.json, audit.md, audit.html."""

    result: dict
    out: Path

    @property
    def summary(self) -> str:
        return (f"audited {self.result['n_raters']} raters on {self.result['n_items']} items -> {self.out}/audit.json, "
                "audit.md, audit.html")


def run_audit(labels: Sequence[Label], out: str | Path, gold: str | None = None, *, gold_file: str | Path | None = None,
              rounds: int = DEFAULT_ROUNDS, seed: int = DEFAULT_SEED, length_margin: int = 30,
              probe_flags: Sequence[dict] = ()) -> AuditRun:
    """`rlaif audit`: audit the raters of `labels` against gold — the rater named `gold` among them, the labels
    of `gold_file` (JSONL lines with item and winner), or none — into OUT/audit.json, audit.md and audit.html.
    `probe_flags`: raters that failed `rlaif probe`'s master-key probe (`rlaif.judge.probe_store`, read by the
    CLI: this module reads no judge code), shown first in the reports and kept in audit.json."""
    from rlaif.report.audit_page import render_audit_html, render_audit_md

    out = Path(out)
    labels = list(labels)
    gold_labels = read_gold(gold_file) if gold_file is not None else []
    result = audit_labels(labels, gold_labels or gold, rounds=rounds, seed=seed, length_margin=length_margin)
    if gold_labels:
        result["gold"]["source"] = f"file:{gold_file}"
    result["probe_flags"] = list(probe_flags)
    html = render_audit_html(result, labels, gold_labels)
    md = render_audit_md(result)
    write_json(out / "audit.json", result)
    write_text(out / "audit.md", md)
    write_text(out / "audit.html", html)
    return AuditRun(result, out)
