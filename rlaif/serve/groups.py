"""`POST /get_reward?group=JUDGE[&pairs=M]`: group-relative rewards (`rlaif.rewards.group`) for the samples of a
request. The items of one request that share a prompt (`prompts[i]`, else the prompt cut from `query[i]`) form
a group; the loaded pairwise judge JUDGE compares them in both orders (through its coalescer and the call
cache) and each item's reward is its mean win probability against the others. A prompt with one item in the
request gets null and the reason: groups must be sent together, in one request.
"""
from __future__ import annotations

from rlaif.rewards.group import LONE, mean_wins, schedule
from rlaif.serve.limits import ApiError
from rlaif.serve.openrlhf import cut_query
from rlaif.serve.scorers import PairInput


def _pairs_param(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ApiError(422, "invalid_request", f"pairs={value!r} is not a whole number >= 1: the opponents each "
                                               "sample meets (leave it out for all pairs)", field="pairs")
    return int(value)


async def group_reward(service, req, params) -> dict:
    """The /get_reward answer for `req` in group mode (`service`: `rlaif.serve.app.Service`)."""
    name = params.get("group")
    if name not in service.scorers.pair:
        loaded = ", ".join(service.scorers.pair) or "none (start the service with --judge pairwise)"
        raise ApiError(422, "unknown_judge", f"group mode needs a loaded pairwise judge; '{name}' is not one. "
                                             f"Loaded: {loaded}", field="group")
    pairs = _pairs_param(params.get("pairs"))
    n = len(req.query)
    cuts = [cut_query(q, None if req.prompts is None else req.prompts[i]) for i, q in enumerate(req.query)]
    ok = [i for i, c in enumerate(cuts) if c.error is None]
    keys = [str(cuts[i].messages) if req.prompts is None else req.prompts[i] for i in ok]
    todo = [(ok[a], ok[b]) for a, b in schedule(keys, pairs)]
    items = [PairInput(cuts[i].messages, cuts[i].response, cuts[j].response) for i, j in todo]
    out = await service.run(name, items) if items else []
    scores = mean_wins(n, [(i, j, c.p_a) for (i, j), c in zip(todo, out, strict=True)], LONE)
    errors = [c.error if c.error is not None else None if v is not None else f"{name}: {e}"
              for c, v, e in zip(cuts, scores.values, scores.errors, strict=True)]
    rewards = scores.values
    return {"rewards": rewards, "scores": rewards,
            "extra_logs": {"scored": sum(v is not None for v in rewards), "unscored": sum(v is None for v in rewards),
                           "pairs_judged": len(todo), "judge_calls": 2 * len(todo)},
            "errors": errors}
