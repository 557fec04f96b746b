"""From labels to datasets and figures: preferences.jsonl (TRL), kto.jsonl, summary.json.

Preferences follow TRL's contract: `prompt`, `chosen`, `rejected` are all strings, or — when
any prompt is a chat message list — all message lists (`chosen`/`rejected` as one assistant
message), so `datasets.load_dataset("json", ...)` reads the file as one consistent schema.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from rlaif.calls.stats import CallStats
from rlaif.judge.jury import Consensus, JudgeVerdict, JuryMethod, consensus, judge_verdicts
from rlaif.judge.labeling import LabelRun, ScoreRecord
from rlaif.judge.pairing import Pair, response_key
from rlaif.records import KTORecord, Label, Preference, Response, Text, as_messages


def _conversational(pairs: list[Pair]) -> bool:
    return any(not isinstance(p.prompt, str) for p in pairs)


def _prompt(prompt: Text, chat: bool) -> Text:
    return as_messages(prompt) if chat else prompt


def _completion(text: str, chat: bool) -> Text:
    return [{"role": "assistant", "content": text}] if chat else text


@dataclass
class PreferenceSet:
    preferences: list[Preference]
    consensus: dict[str, Consensus]
    verdicts: dict[str, dict[str, JudgeVerdict]]
    n_ties: int = 0  # consensus was a tie: no preference
    n_no_verdict: int = 0  # no judge gave a valid verdict
    n_contested: int = 0  # dropped by --min-agreement
    n_low_confidence: int = 0  # dropped by --min-p-chosen
    items_kept: list[str] = field(default_factory=list)


Jury = Callable[[dict[str, dict[str, JudgeVerdict]]], dict[str, Consensus]]  # verdicts -> consensus per item


def build_preferences(pairs: list[Pair], labels: list[Label], *, jury: JuryMethod | Jury = "majority",
                      min_agreement: float = 0.0, min_p_chosen: float = 0.0) -> PreferenceSet:
    """One preference per pair whose consensus names a winner with at least `min_agreement` and
    `p_chosen` >= `min_p_chosen`. `p_chosen` is the consensus probability that the chosen response
    is better (a judge that only follows the position gives about 0.5). `jury` is a method of
    `rlaif.judge.jury.consensus` or a function of the per-judge verdicts (e.g. `jury.checker_led`)."""
    verdicts = judge_verdicts(labels)
    cons = jury(verdicts) if callable(jury) else consensus(verdicts, jury)
    chat = _conversational(pairs)
    out = PreferenceSet([], cons, verdicts)
    for pair in pairs:
        c = cons.get(pair.item)
        if c is None or c.winner is None:
            out.n_no_verdict += 1
            continue
        if c.winner == "tie":
            out.n_ties += 1
            continue
        if c.agreement is not None and c.agreement < min_agreement:
            out.n_contested += 1
            continue
        chosen, rejected = (pair.a, pair.b) if c.winner == "a" else (pair.b, pair.a)
        p_chosen = c.p_a if c.winner == "a" else 1.0 - c.p_a
        if p_chosen < min_p_chosen:
            out.n_low_confidence += 1
            continue
        out.preferences.append(Preference(
            prompt=_prompt(pair.prompt, chat), chosen=_completion(chosen.response, chat),
            rejected=_completion(rejected.response, chat), p_chosen=min(1.0, max(0.0, p_chosen)),
            prompt_id=pair.prompt_id, chosen_policy=chosen.policy, rejected_policy=rejected.policy,
            judges=list(c.raters), agreement=c.agreement))
        out.items_kept.append(pair.item)
    return out


def build_kto(pairs: list[Pair], prefs: PreferenceSet, scores: list[ScoreRecord],
              binary_raters: list[str]) -> list[KTORecord]:
    """Unpaired data: from binary judges' good/bad verdicts when the jury has any (mean over them,
    0.5 is dropped), else from the preferences (each chosen response True, each rejected False,
    as TRL's unpairing does)."""
    chat = _conversational(pairs)
    responses: dict[str, Response] = {}
    for p in pairs:
        responses.setdefault(response_key(p.a), p.a)
        responses.setdefault(response_key(p.b), p.b)
    out: list[KTORecord] = []
    if binary_raters:
        votes: dict[str, list[float]] = defaultdict(list)
        for s in scores:
            if s.rater in binary_raters and s.score is not None:
                votes[s.key].append(s.score)
        for key, r in responses.items():
            v = votes.get(key)
            if not v or sum(v) / len(v) == 0.5:
                continue
            out.append(KTORecord(prompt=_prompt(r.prompt, chat), completion=_completion(r.response, chat),
                                 label=sum(v) / len(v) > 0.5, prompt_id=r.prompt_id, policy=r.policy))
        return out
    seen = set()
    by_item = {p.item: p for p in pairs}
    for item in prefs.items_kept:
        pair, c = by_item[item], prefs.consensus[item]
        chosen, rejected = (pair.a, pair.b) if c.winner == "a" else (pair.b, pair.a)
        for r, good in ((chosen, True), (rejected, False)):
            k = (response_key(r), good)
            if k in seen:
                continue
            seen.add(k)
            out.append(KTORecord(prompt=_prompt(r.prompt, chat), completion=_completion(r.response, chat),
                                 label=good, prompt_id=r.prompt_id, policy=r.policy))
    return out


def judge_summary(rater: str, labels: list[Label], verdicts: dict[str, dict[str, JudgeVerdict]],
                  stats: CallStats | None, scores: list[ScoreRecord]) -> dict:
    """Per-judge figures: n label lines, invalid/tie shares, flip rate over pairs judged validly in
    both orders, and this run's spend (tokens and cost of calls not served from the cache)."""
    mine = [x for x in labels if x.rater == rater]
    valid = [x for x in mine if x.error is None and x.winner is not None]
    both = [v[rater] for v in verdicts.values() if rater in v and v[rater].flipped is not None]
    my_scores = [s for s in scores if s.rater == rater]
    stats = stats or CallStats()
    out = {
        "n": len(mine),
        "n_pairs": sum(1 for v in verdicts.values() if rater in v),
        "invalid_rate": (len(mine) - len(valid)) / len(mine) if mine else None,
        "flip_rate": sum(v.flipped for v in both) / len(both) if both else None,
        "tie_rate": sum(x.winner == "tie" for x in valid) / len(valid) if valid else None,
        "tokens_in": stats.input_tokens,
        "tokens_out": stats.output_tokens,
        "cost_usd": round(stats.cost_usd, 6) if stats.cost_usd is not None else None,
        "billed": stats.billed,
        "calls": stats.calls,
        "cache_hits": stats.cache_hits,
        "failed_calls": stats.failed,
    }
    if my_scores:
        out["n_scores"] = len(my_scores)
        out["invalid_score_rate"] = sum(s.score is None for s in my_scores) / len(my_scores)
    return out


def summarize(run: LabelRun, prefs: PreferenceSet, kto: list[KTORecord], **settings) -> dict:
    raters = [j.rater for j in run.judges]
    return {
        "n_pairs": len(run.pairs),
        "n_labels": len(run.labels),
        "n_invalid": sum(1 for x in run.labels if x.error is not None),
        "n_preferences": len(prefs.preferences),
        "n_kto": len(kto),
        "n_ties": prefs.n_ties,
        "n_contested": prefs.n_contested,
        "n_low_confidence": prefs.n_low_confidence,
        "n_no_verdict": prefs.n_no_verdict,
        **settings,
        "judges": {r: judge_summary(r, run.labels, prefs.verdicts, run.stats.get(r), run.scores) for r in raters},
    }
