"""The online step loop PPO, RLOO and GRPO share: sample → reward → reference/old log-probs → update epochs.

One *step* = one rollout batch: `batch_size` prompts (each process samples k responses for its share of
them, so a prompt's group never spans processes), scored by the reward callable, then `ppo_epochs`
passes over the rows, each in `minibatches` minibatches (one optimizer step each). The algorithm (`Algorithm`
subclasses in train/ppo.py, rloo.py, grpo.py) says which rows are kept, turns scores into advantages and
computes the loss of a micro-batch, normalized by the minibatch's global counts so gradient accumulation
and DDP give the gradients of one big minibatch.

Unscored responses (reward None) are dropped from the update and counted (`reward/skipped`); more than
`max_skipped_share` of a step's responses unscored stops the run. The old-policy and reference log-probs
are computed in one no-grad pass over the same micro-batches the first minibatch trains on, so at the first
minibatch of each step the ratio is exactly 1 (and at step 1 the KL exactly 0). When the update is fully
on-policy (one epoch, one minibatch, and the algorithm needs no old log-probs in its targets) that pass is
skipped and the old log-probs are the update's own, detached (as TRL does).

Per step one row in OUT/metrics.jsonl; a checkpoint every `save_every` steps (weights, optimizer, RNG, the
algorithm's state such as the KL controller); a resumed run continues from the last one.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rlaif.errors import RlaifError
from rlaif.progress import ProgressBar
from rlaif.records import JsonlAppender, iter_json_lines, write_jsonl
from rlaif.scoring import RewardError, RewardResult
from rlaif.train.checkpoint import TrainResult, check_resumable, find_checkpoint, load_checkpoint, save_checkpoint
from rlaif.train.loop import make_optimizer
from rlaif.train.rl.losses import kl_k1, kl_k3, masked_sum
from rlaif.train.rl.online import OnlineRun, PromptItem, config_dump
from rlaif.train.rl.policy import PolicyOut, evaluating
from rlaif.train.rl.rollout import Rollout, sample
from rlaif.train.runtime import Runtime, sync_context, unwrap, wrap


class NonFiniteError(RlaifError):
    """A loss or gradient became NaN or infinite: the run stops (the last checkpoint is intact)."""


Stats = dict[str, list[torch.Tensor]]  # name -> [numerator, denominator] summed over rows / tokens


@dataclass
class Experience:
    """One step's rows on this process, with everything the update needs."""

    rollout: Rollout
    scores: torch.Tensor  # (R,) the combined reward, NaN where unscored
    keep: torch.Tensor  # (R,) 1.0 for rows in the update (scored, and in a group the algorithm can use)
    ref_logps: torch.Tensor  # (R, T)
    old_logps: torch.Tensor | None  # (R, T); None until the on-policy update fills it
    old_values: torch.Tensor | None = None  # (R, T) PPO
    advantages: torch.Tensor | None = None  # (R,) or (R, T)
    returns: torch.Tensor | None = None  # (R, T) PPO: the value head's target

    @property
    def mask(self) -> torch.Tensor:
        """(R, T) the response mask of the kept rows (what the losses sum over)."""
        return self.rollout.response_mask.float() * self.keep[:, None]


@dataclass
class Counts:
    """A minibatch's kept responses and tokens over all processes, divided by the process count (DDP averages
    gradients over processes, so each contributes its sum over this share of the global count)."""

    seqs: float
    tokens: float


@dataclass
class MicroLoss:
    loss: torch.Tensor  # this micro-batch's share of the minibatch loss
    stats: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # metric (numerator, denominator)


class Algorithm:
    """What differs between PPO, RLOO and GRPO; the loop calls these in order each step."""

    value_head = False  # PPO: the policy carries a value head
    needs_old_logps = False  # the targets use the old log-probs (so the no-grad pass always runs)
    entropy_grad = False  # the loss has an entropy term (else entropy is a metric, computed without gradients)

    def __init__(self, cfg):
        self.cfg = cfg

    def keep(self, scored: torch.Tensor) -> torch.Tensor:
        """(R,) bool: the rows to train on. Group methods: scored members of groups with >= 2 scored."""
        g = scored.view(-1, self.cfg.k)
        return (g & (g.sum(1, keepdim=True) >= 2)).view(-1)

    def targets(self, exp: Experience, rt: Runtime) -> dict[str, tuple[Any, Any]]:
        raise NotImplementedError

    def micro_loss(self, out: PolicyOut, old: torch.Tensor, exp: Experience, rows: list[int], counts: Counts,
                   n_micro: int) -> MicroLoss:
        raise NotImplementedError

    def end_step(self, kl: float, n_responses: int) -> dict:
        """After the update: e.g. the adaptive KL controller; returns metrics (β)."""
        return {"beta": self.cfg.beta}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


# ---- cross-process helpers -----------------------------------------------------------------------
def gather_rows(rt: Runtime, x: torch.Tensor) -> torch.Tensor:
    """Every process's rows in process order (each holds the same count): the global batch's tensor."""
    if rt.world == 1:
        return x
    n = x.size(0)
    full = torch.zeros((rt.world * n, *x.shape[1:]), dtype=x.dtype, device=rt.device)
    full[rt.rank * n:(rt.rank + 1) * n] = x.to(rt.device)
    return rt.all_reduce(full).to(x.device)


def global_whiten(rt: Runtime, x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / std over the masked entries of every process (unbiased variance), 0 outside the mask."""
    sums = torch.stack([masked_sum(x, mask), masked_sum(x * x, mask), mask.sum()]).double()
    s, s2, n = rt.all_reduce(sums.to(rt.device)).cpu().tolist()
    mean = s / max(n, 1.0)
    var = max(s2 / max(n, 1.0) - mean * mean, 0.0) * (n / (n - 1) if n > 1 else 1.0)
    return (x - mean) / math.sqrt(var + eps) * mask


def _add(acc: Stats, name: str, num, den) -> None:
    a = acc.setdefault(name, [torch.zeros((), dtype=torch.float64), torch.zeros((), dtype=torch.float64)])
    a[0] += torch.as_tensor(num).detach().double().cpu()
    a[1] += torch.as_tensor(den).detach().double().cpu()


def reduce_stats(rt: Runtime, acc: Stats) -> dict[str, float | None]:
    """Sum every (numerator, denominator) over processes; `name|sq` entries become `name_std`."""
    names = sorted(acc)
    if not names:
        return {}
    flat = rt.all_reduce(torch.stack([x for k in names for x in acc[k]]).to(rt.device)).cpu()
    out = {k: (float(flat[2 * i] / flat[2 * i + 1]) if float(flat[2 * i + 1]) > 0 else None)
           for i, k in enumerate(names)}
    for k in [k for k in names if k.endswith("|sq")]:
        base, sq = k[:-3], out.pop(k)
        mean = out.get(base)
        out[f"{base}_std"] = None if mean is None or sq is None else math.sqrt(max(sq - mean * mean, 0.0))
    return out


# ---- prompts and rows --------------------------------------------------------------------------------
@dataclass
class PromptPlan:
    """Which prompts each step samples: a seeded shuffle per pass over the prompts, `batch` per step."""

    n: int
    batch: int
    seed: int

    @property
    def per_epoch(self) -> int:
        return max(1, self.n // self.batch)

    def local(self, step: int, rank: int, world: int) -> list[int]:
        """This process's contiguous share of step `step`'s prompts (whole groups: never split)."""
        import random

        epoch, i = divmod(step, self.per_epoch)
        order = random.Random(self.seed * 1_000_003 + epoch).sample(range(self.n), self.n)
        chosen = order[i * self.batch:(i + 1) * self.batch]
        share = self.batch // world
        return chosen[rank * share:(rank + 1) * share]


def partition(rows: int, minibatches: int, micro: int, seed: int) -> list[list[list[int]]]:
    """The rows shuffled (seeded) into `minibatches` minibatches, each split into micro-batches of `micro` rows.

    Within a minibatch the rows go in row order, so a group's rows (consecutive) share micro-batches and
    with them one copy of their prompt; the split into micro-batches does not change a minibatch's gradient."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(rows, generator=g).tolist()
    bounds = [round(j * rows / minibatches) for j in range(minibatches + 1)]
    return [[sorted(order[lo:hi])[i:i + micro] for i in range(0, hi - lo, micro)]
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]


def minibatch_counts(rt: Runtime, exp: Experience, parts: list[list[list[int]]]) -> list[Counts]:
    mask, rows = exp.mask, [[i for micro in mb for i in micro] for mb in parts]
    local = torch.tensor([[float(exp.keep[r].sum()), float(mask[r].sum())] for r in rows], dtype=torch.float64)
    total = rt.all_reduce(local.to(rt.device)).cpu() / rt.world
    return [Counts(max(float(s), 1e-8), max(float(t), 1e-8)) for s, t in total.tolist()]


# ---- one step -------------------------------------------------------------------------------------------
@dataclass
class _Online:
    """One run of the loop: what it trains with and where it is."""

    run: OnlineRun
    algo: Algorithm
    module: nn.Module  # the Policy, DDP-wrapped when there are several processes
    optimizer: Any
    scheduler: Any
    plan: PromptPlan
    total: int  # steps of the whole run
    writer: JsonlAppender | None = None
    step: int = 0
    started: float = 0.0
    stopped_by: str = "epochs"
    last_row: dict = field(default_factory=dict)
    pending: torch.Tensor | None = None  # the on-policy update's log-probs of this step, for its KL metrics

    @property
    def cfg(self):
        return self.run.cfg

    @property
    def rt(self) -> Runtime:
        return self.run.rt

    @property
    def on_policy(self) -> bool:
        """The update sees the rollout policy only: the old log-probs are the update's own, detached."""
        cfg = self.cfg
        return cfg.ppo_epochs == 1 and cfg.minibatches == 1 and not self.algo.needs_old_logps

    def out_of_time(self) -> bool:  # decided together, so every process stops at the same step
        if self.cfg.max_seconds is None:
            return False
        late = float(time.perf_counter() - self.started >= self.cfg.max_seconds)
        return bool(self.rt.all_reduce(torch.tensor(late, device=self.rt.device)).item() > 0)


def _rollout(loop: _Online) -> tuple[Rollout, list[PromptItem]]:
    cfg, rt = loop.cfg, loop.rt
    items = [loop.run.prompts[i] for i in loop.plan.local(loop.step, rt.rank, rt.world)]
    seed = cfg.seed * 1_000_003 + loop.step * 7_919 + rt.rank  # a resumed step samples what it sampled before
    try:
        with loop.rt.autocast():  # bf16 on CUDA, as the update runs
            rollout = sample(loop.run.policy.model, loop.run.tok, [it.messages for it in items], k=cfg.k,
                             max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                             seed=seed, max_prompt_length=cfg.max_prompt_length)
    except RuntimeError as e:  # the sampler's own check: the last update left non-finite weights
        if "inf" not in str(e) and "nan" not in str(e):
            raise
        raise NonFiniteError(f"sampling at step {loop.step + 1} met non-finite probabilities ({e}): the last update "
                             "left non-finite weights, so the run stops (the last checkpoint is intact). "
                             "Fix: lower lr") from None
    return rollout, items


def _reward_stats(result: RewardResult, acc: Stats) -> None:
    for name, values in [("reward", result.rewards)] + [(f"reward/{k}", v) for k, v in result.by_source.items()]:
        got = [v for v in values if v is not None]
        _add(acc, name, sum(got), len(got))
        _add(acc, f"{name}|sq", sum(v * v for v in got), len(got))


def _score(loop: _Online, rollout: Rollout, items: list[PromptItem], acc: Stats) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores with NaN where unscored, keep mask); stops when too much of the global batch is unscored."""
    result = loop.run.reward_fn(rollout.reward_batch([it.metadata for it in items]))
    if len(result.rewards) != rollout.rows:
        raise RewardError(f"the reward function returned {len(result.rewards)} rewards for {rollout.rows} responses")
    scored = torch.tensor([r is not None for r in result.rewards])
    scores = torch.tensor([math.nan if r is None else float(r) for r in result.rewards], dtype=torch.float32)
    counts = loop.rt.all_reduce(torch.tensor([float((~scored).sum()), float(rollout.rows)], device=loop.rt.device))
    skipped, rows = counts.cpu().tolist()
    _add(acc, "reward/skipped", skipped / loop.rt.world, 1.0 / loop.rt.world)  # the global count
    if rows and skipped / rows > loop.cfg.max_skipped_share:
        first = next((e for e in result.errors if e), "no reason given (another process's responses)")
        raise RewardError(f"{int(skipped)} of {int(rows)} responses of step {loop.step + 1} could not be scored "
                          f"(more than max_skipped_share={loop.cfg.max_skipped_share}); first error: {first}. "
                          "Fix: repair the reward source, or raise max_skipped_share")
    _reward_stats(result, acc)
    return scores, loop.algo.keep(scored).float()


def _prepass(loop: _Online, rollout: Rollout, parts: list[list[list[int]]]) -> tuple[torch.Tensor, ...]:
    """Reference log-probs, and (unless on-policy) the old log-probs and values, on the first epoch's
    micro-batches: the same rows, padding and order as the first minibatch's training forward."""
    cfg, rt, policy = loop.cfg, loop.rt, unwrap(loop.module)
    shape = tuple(rollout.response_ids.shape)
    ref, old, values = torch.zeros(shape), None if loop.on_policy else torch.zeros(shape), None
    if loop.algo.value_head:
        values = torch.zeros(shape)
    with evaluating(policy):
        for rows in (m for mb in parts for m in mb):
            chunk = rollout.select(rows).to(rt.device)
            with rt.autocast():
                ref[rows] = loop.run.reference.logps(chunk, cfg.temperature).float().cpu()
                if old is not None:
                    out = policy(chunk, cfg.temperature)
                    old[rows] = out.logps.float().cpu()
                    if values is not None:
                        values[rows] = out.values.float().cpu()
    return ref, old, values


def _optimizer_step(loop: _Online) -> float:
    params = [p for p in loop.module.parameters() if p.requires_grad]
    grad_norm = float(torch.nn.utils.clip_grad_norm_(params, loop.cfg.max_grad_norm or float("inf")))
    if not math.isfinite(grad_norm):
        loop.optimizer.zero_grad(set_to_none=True)
        raise NonFiniteError(f"the gradient norm is {grad_norm} at step {loop.step + 1}: the loss or the model "
                             "went non-finite, so the run stops (the last checkpoint is intact). Fix: lower lr, "
                             "or check the rewards for huge values (reward_clip / normalize_rewards in ppo)")
    loop.optimizer.step()
    loop.scheduler.step()
    loop.optimizer.zero_grad(set_to_none=True)
    return grad_norm


def _micro_step(loop: _Online, exp: Experience, rows: list[int], counts: Counts, n_micro: int, last: bool,
                first: bool, acc: Stats) -> None:
    """Forward and backward of one micro-batch; metrics into `acc`."""
    cfg, rt = loop.cfg, loop.rt
    chunk = exp.rollout.select(rows).to(rt.device)
    with sync_context(loop.module, rt, last=last):
        with rt.autocast():
            out = loop.module(chunk, cfg.temperature, entropy=True, entropy_grad=loop.algo.entropy_grad)
        on_policy = exp.old_logps is None or loop.on_policy
        old = out.logps.detach() if on_policy else exp.old_logps[rows].to(out.logps)
        ml = loop.algo.micro_loss(out, old, exp, rows, counts, n_micro)
        if not torch.isfinite(ml.loss):
            raise NonFiniteError(f"the loss is {float(ml.loss)} at step {loop.step + 1}, so the run stops (the last "
                                 "checkpoint is intact). Fix: lower lr, or check the rewards for huge values")
        ml.loss.backward()
    mask = exp.mask[rows].to(out.logps)
    if on_policy and exp.old_logps is None:  # filled for the KL metrics: the rollout policy's own log-probs
        loop.pending[rows] = out.logps.detach().float().cpu()
    if first:
        dev = ((torch.exp(out.logps.detach() - old) - 1).abs() * mask).max()
        _add(acc, "ratio_first_dev", dev * len(rows), len(rows))
    _add(acc, "loss", ml.loss.detach() / rt.world, 0.0)
    _add(acc, "entropy", masked_sum(out.entropy.detach(), mask), mask.sum())
    _add(acc, "approx_kl", masked_sum(0.5 * (out.logps.detach() - old) ** 2, mask), mask.sum())
    for name, (num, den) in ml.stats.items():
        _add(acc, name, num, den)


def _update(loop: _Online, exp: Experience, first_parts: list[list[list[int]]], acc: Stats) -> float:
    """`ppo_epochs` passes, `minibatches` optimizer steps each; returns the last gradient norm."""
    cfg, grad_norm = loop.cfg, 0.0
    for epoch in range(cfg.ppo_epochs):
        parts = first_parts if epoch == 0 else partition(exp.rollout.rows, cfg.minibatches, cfg.micro_batch_size,
                                                         _mix(cfg.seed, loop.step, epoch))
        for j, (mb, counts) in enumerate(zip(parts, minibatch_counts(loop.rt, exp, parts), strict=True)):
            for i, rows in enumerate(mb):
                _micro_step(loop, exp, rows, counts, len(mb), i == len(mb) - 1, epoch == 0 and j == 0, acc)
            grad_norm = _optimizer_step(loop)
            _add(acc, "loss", 0.0, 1.0 / loop.rt.world)  # the loss row is the mean over optimizer steps
    return grad_norm


def _mix(seed: int, step: int, epoch: int) -> int:
    return (seed * 1_000_003 + step * 7_919 + epoch * 104_729) % (1 << 62)


def _rollout_stats(exp: Experience, acc: Stats) -> None:
    r, mask = exp.rollout, exp.rollout.response_mask.float()
    n = float(r.rows)
    _add(acc, "kl_k1", masked_sum(kl_k1(exp.old_logps, exp.ref_logps), mask), n)
    _add(acc, "kl_k3", masked_sum(kl_k3(exp.old_logps, exp.ref_logps), mask), n)
    _add(acc, "response_length", mask.sum(), n)
    _add(acc, "no_eos_share", float((~r.ended).sum()), n)


def online_step(loop: _Online) -> dict:
    """One step: sample, score, the reference/old pass, targets, update; returns its metrics row."""
    cfg, rt, acc = loop.cfg, loop.rt, {}
    t0 = time.perf_counter()
    rollout, items = _rollout(loop)
    t1 = time.perf_counter()
    scores, keep = _score(loop, rollout, items, acc)
    t2 = time.perf_counter()
    parts = partition(rollout.rows, cfg.minibatches, cfg.micro_batch_size, _mix(cfg.seed, loop.step, 0))
    ref, old, values = _prepass(loop, rollout, parts)
    exp = Experience(rollout, scores, keep, ref, old, values)
    for name, (num, den) in loop.algo.targets(exp, rt).items():
        _add(acc, name, num, den)
    loop.pending = torch.zeros(tuple(rollout.response_ids.shape))
    grad_norm = _update(loop, exp, parts, acc)
    if exp.old_logps is None:
        exp.old_logps = loop.pending
    _rollout_stats(exp, acc)
    t3 = time.perf_counter()
    loop.step += 1
    row = {"split": "train", "step": loop.step, "rows": rollout.rows * rt.world, **reduce_stats(rt, acc)}
    row.update(loop.algo.end_step(row["kl_k1"], row["rows"]))
    tokens = float(rt.all_reduce(torch.tensor(float(rollout.lengths.sum()), device=rt.device)))
    row.update(grad_norm=grad_norm, lr=loop.scheduler.get_last_lr()[0], gen_s=round(t1 - t0, 4),
               reward_s=round(t2 - t1, 4), update_s=round(t3 - t2, 4), step_s=round(t3 - t0, 4),
               tokens_per_s=round(tokens / max(t3 - t0, 1e-9), 2),  # sampled response tokens per second
               elapsed_s=round(time.perf_counter() - loop.started, 3))
    _check_finite(row, loop.step)
    return row


def _check_finite(row: dict, step: int) -> None:
    bad = [k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v) and not k.startswith("reward")]
    if bad:
        raise NonFiniteError(f"step {step}: {', '.join(bad)} became non-finite ({row[bad[0]]}), so the run stops "
                             "(the last checkpoint is intact). Fix: lower lr or beta")


# ---- the run -----------------------------------------------------------------------------------------
def _resume(loop: _Online) -> float:
    """Load OUT's checkpoint when there is one and resuming is on (else start metrics afresh); returns the
    training seconds already spent."""
    cfg, rt, metrics = loop.cfg, loop.rt, loop.run.out / "metrics.jsonl"
    ckpt = find_checkpoint(loop.run.out) if cfg.resume else None
    elapsed = 0.0
    if ckpt is not None:
        check_resumable(ckpt, cfg)
        saved = load_checkpoint(ckpt, rt, loop.module, loop.optimizer, loop.scheduler)
        loop.step, elapsed = saved.step, saved.elapsed_s
        loop.algo.load_state_dict(saved.extra.get("algorithm", {}))
        if rt.is_main:
            if metrics.exists():  # rows written after the checkpoint are written again by the resumed run
                write_jsonl(metrics, [o for _, o in iter_json_lines(metrics) if o.get("step", 0) <= loop.step])
            print(f"resuming from {ckpt} at step {loop.step}", file=sys.stderr)
    elif rt.is_main and metrics.exists():
        metrics.unlink()
    rt.barrier()
    return elapsed


def _save(loop: _Online) -> None:
    save_checkpoint(loop.run.out, loop.rt, loop.module, loop.optimizer, loop.scheduler, loop.step,
                    time.perf_counter() - loop.started, loop.cfg, extra={"algorithm": loop.algo.state_dict()})


def _step_info(row: dict) -> str:
    reward = row.get("reward")
    return (f"reward {reward:.3f}" if reward is not None else "reward -") + f" kl {row['kl_k1']:.3f}"


def _run_steps(loop: _Online) -> None:
    progress = ProgressBar(loop.total, loop.run.recipe, enabled=None if loop.rt.is_main else False,
                           completed=loop.step)
    try:
        while loop.step < loop.total:
            if loop.out_of_time():  # a resumed run whose time budget was already spent
                loop.stopped_by = "max_seconds"
                break
            row = online_step(loop)
            loop.last_row = row
            if loop.writer and (loop.step % loop.cfg.log_every == 0 or loop.step == loop.total):
                loop.writer.write(row)
            progress.update(loop.step, _step_info(row))
            timed_out = loop.out_of_time()
            if loop.step % loop.cfg.save_every == 0 or loop.step == loop.total or timed_out:
                _save(loop)
            if timed_out:
                loop.stopped_by = "max_seconds"
                break
    finally:
        progress.close()


def train_online(run: OnlineRun, algo: Algorithm) -> TrainResult:
    """Steps until `epochs` passes over the prompts, `max_steps` or `max_seconds` run out; resumes from OUT's
    checkpoint; the final model in Hugging Face format in OUT."""
    from rlaif.train.checkpoint import save_final

    cfg, rt = run.cfg, run.rt
    plan = PromptPlan(len(run.prompts), cfg.batch_size, cfg.seed)
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * plan.per_epoch))
    module = wrap(run.policy, rt)
    optimizer, scheduler = make_optimizer(module, cfg, total * cfg.ppo_epochs * cfg.minibatches, rt.device)
    loop = _Online(run, algo, module, optimizer, scheduler, plan, total,
                   stopped_by="max_steps" if cfg.max_steps else "epochs")
    elapsed = _resume(loop)
    loop.writer = JsonlAppender(run.out / "metrics.jsonl") if rt.is_main else None
    module.train()
    loop.started = time.perf_counter() - elapsed
    try:
        _run_steps(loop)
    finally:
        if loop.writer:
            loop.writer.close()
    last = (loop.last_row or _last_saved_row(run.out)) if rt.is_main else loop.last_row
    result = TrainResult(str(run.out), loop.step, loop.stopped_by, last, None,
                         round(time.perf_counter() - loop.started, 3), 0.0)
    save_final(run.out, rt, module, run.tok, result, config_dump(cfg))
    if rt.is_main and run.policy.value_head is not None:
        torch.save(run.policy.value_head.state_dict(), run.out / "value_head.pt")
    return result


def _last_saved_row(out: Path) -> dict:
    """The last metrics row of a run resumed after its last step."""
    path = out / "metrics.jsonl"
    rows = [o for _, o in iter_json_lines(path)] if path.exists() else []
    return rows[-1] if rows else {}
