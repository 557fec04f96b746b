"""Constraint compliance scored by the rule checkers alone (no judge): `constraint_compliance`."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rlaif.instructions.constraints import check
from rlaif.records import Prompt, Response
from rlaif.stats.winrate import ClusteredScores, bootstrap_interval


def constraint_compliance(prompts: Sequence[Prompt], responses: Sequence[Response], *, n_boot: int = 10_000,
                          seed: int = 0) -> dict[str, dict[str, Any]]:
    """Per policy: the share of responses meeting *all* their prompt's constraints, with a prompt-clustered
    interval, the mean share of constraints met, and the pass rate per constraint family and type.

    `scores` (a ClusteredScores of all-pass) is returned too, for `generalization_gap` between splits.
    """
    by_id = {p.prompt_id: p for p in prompts if p.constraints}
    out: dict[str, dict[str, Any]] = {}
    per_policy: dict[str, list[tuple[str, Any]]] = {}
    for r in responses:
        if r.prompt_id in by_id:
            per_policy.setdefault(r.policy, []).append((r.prompt_id, check(by_id[r.prompt_id].constraints,
                                                                             r.response)))
    for policy, rows in per_policy.items():
        scores = ClusteredScores.from_pairs([pid for pid, _ in rows], [float(c.all_pass) for _, c in rows])
        ci = bootstrap_interval(scores, n_boot=n_boot, seed=seed)
        fam: dict[str, list[bool]] = {}
        typ: dict[str, list[bool]] = {}
        for _, c in rows:
            for res in c.results:
                fam.setdefault(res.family, []).append(res.passed)
                typ.setdefault(f"{res.family}/{res.type}", []).append(res.passed)
        out[policy] = {
            "n": scores.n, "n_prompts": scores.n_prompts, "all_pass_rate": scores.mean,
            "ci_low": ci.low, "ci_high": ci.high, "ci_method": ci.method,
            "share_passed": sum(c.share_passed for _, c in rows) / len(rows),
            "per_family": {k: sum(v) / len(v) for k, v in sorted(fam.items())},
            "per_type": {k: sum(v) / len(v) for k, v in sorted(typ.items())},
            "scores": scores,
        }
    return out

