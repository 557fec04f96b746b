"""The online recipes' stages and their step source. PPO, RLOO and GRPO (train/ppo.py, rloo.py, grpo.py) each
write one step as these stages, in this order, each returning a value the next ones take:

1. `sample`: `batch_size` prompts (each process samples k responses for its share of them, so a prompt's
   group never spans processes) → `Samples`;
2. `score`: the reward callable → `Scores` (unscored responses, reward None, are dropped from the update and
   counted as `reward/skipped`; more than `max_skipped_share` of a step unscored stops the run);
3. `logprobs`: the reference log-probs and (unless on-policy) the old log-probs and values, in one no-grad
   pass over the same micro-batches the first minibatch trains on, so at the first minibatch of each step
   the ratio is exactly 1 (and at step 1 the KL exactly 0) → `LogProbs`;
4. the recipe's targets (advantages, returns) → `Targets`;
5. `update`: `ppo_epochs` passes over the rows, each in `minibatches` minibatches (one optimizer step each),
   the recipe's `loss` of each micro-batch normalized by the minibatch's global counts, so gradient
   accumulation and DDP give the gradients of one big minibatch → `Update`;
6. `metrics`: the step's row (reduced over processes).

When the update is fully on-policy (one epoch, one minibatch, and the recipe needs no old log-probs in its
targets) stage 3 skips the old log-probs, and the update's own (detached) stand in for them (as TRL does);
`Update.logps` returns them for the KL metrics.

The engine (`train/engine.py`) runs the steps: metrics.jsonl, checkpoints (with the recipe's state such as
the KL controller), resumption, `max_seconds`, the NaN stop.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch

from rlaif.scoring import RewardError, RewardResult
from rlaif.train.checkpoint import TrainResult
from rlaif.train.engine import Engine, MetricSums, NonFiniteError, run_steps
from rlaif.train.rl.hacking import HackingMonitor, OnsetTest, spearman
from rlaif.train.rl.losses import kl_k1, kl_k3, masked_sum
from rlaif.train.rl.policy import PolicyOut, evaluating
from rlaif.train.rl.prelude import OnlineRun, PromptItem
from rlaif.train.rl.rollout import Bf16Copy, Rollout, sample
from rlaif.train.runtime import Runtime, sync_context, unwrap, wrap


# ---- what the stages return ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Samples:
    """1. This process's rows of the step: k responses to each of its prompts."""

    rollout: Rollout
    items: list[PromptItem]  # the prompts sampled (one per group)
    started: float  # perf_counter() at the start of the step
    finished: float  # perf_counter() when sampled


@dataclass(frozen=True)
class Scores:
    """2. The combined reward of each row, and which rows the update keeps."""

    scores: torch.Tensor  # (R,) NaN where unscored
    keep: torch.Tensor  # (R,) 1.0 for rows in the update (scored, and in a group the recipe can use)
    sums: MetricSums  # reward, reward/<source>, reward/skipped
    finished: float  # perf_counter() when scored


@dataclass(frozen=True)
class LogProbs:
    """3. The no-grad pass: reference log-probs, and the old (rollout-policy) log-probs and values."""

    ref: torch.Tensor  # (R, T)
    old: torch.Tensor | None  # (R, T); None when on-policy (the update's own log-probs stand in)
    values: torch.Tensor | None  # (R, T) PPO's value head on the old policy


@dataclass(frozen=True)
class Targets:
    """4. What the loss moves toward."""

    advantages: torch.Tensor  # (R,) or (R, T)
    returns: torch.Tensor | None = None  # (R, T) PPO: the value head's target
    stats: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # metric (numerator, denominator)


@dataclass(frozen=True)
class Batch:
    """What the update trains on: the stages' values together."""

    samples: Samples
    keep: torch.Tensor  # (R,)
    logps: LogProbs
    targets: Targets

    @property
    def rollout(self) -> Rollout:
        return self.samples.rollout

    @property
    def mask(self) -> torch.Tensor:
        """(R, T) the response mask of the kept rows (what the losses sum over)."""
        return self.rollout.response_mask.float() * self.keep[:, None]


@dataclass(frozen=True)
class Counts:
    """A minibatch's kept responses and tokens over all processes, divided by the process count (DDP averages
    gradients over processes, so each contributes its sum over this share of the global count)."""

    seqs: float
    tokens: float


@dataclass(frozen=True)
class Micro:
    """One micro-batch of the update, as the recipe's loss sees it."""

    rows: list[int]
    old: torch.Tensor  # (rows, T) the old log-probs (on-policy: the forward's own, detached)
    counts: Counts  # its minibatch's global counts
    n_micro: int  # micro-batches in its minibatch
    batch: Batch


@dataclass
class MicroLoss:
    loss: torch.Tensor  # this micro-batch's share of the minibatch loss
    stats: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # metric (numerator, denominator)


@dataclass(frozen=True)
class Update:
    """5. What the update did: the last gradient norm, the on-policy log-probs, its metric sums."""

    grad_norm: float
    logps: torch.Tensor | None  # (R, T) on-policy: the rollout policy's own log-probs (for the KL metrics)
    sums: MetricSums


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


# ---- prompts and rows --------------------------------------------------------------------------------
@dataclass(frozen=True)
class PromptOrder:
    """The order in which the steps take the prompts: a seeded shuffle per pass over them, `batch` per step."""

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


def minibatch_counts(rt: Runtime, batch: Batch, parts: list[list[list[int]]]) -> list[Counts]:
    mask, rows = batch.mask, [[i for micro in mb for i in micro] for mb in parts]
    local = torch.tensor([[float(batch.keep[r].sum()), float(mask[r].sum())] for r in rows], dtype=torch.float64)
    total = rt.all_reduce(local.to(rt.device)).cpu() / rt.world
    return [Counts(max(float(s), 1e-8), max(float(t), 1e-8)) for s, t in total.tolist()]


def _mix(seed: int, step: int, epoch: int) -> int:
    return (seed * 1_000_003 + step * 7_919 + epoch * 104_729) % (1 << 62)


def _reward_stats(result: RewardResult, sums: MetricSums) -> None:
    for name, values in [("reward", result.rewards)] + [(f"reward/{k}", v) for k, v in result.by_source.items()]:
        got = [v for v in values if v is not None]
        sums.add(name, sum(got), len(got))
        sums.add(f"{name}|sq", sum(v * v for v in got), len(got))


# ---- the stages -----------------------------------------------------------------------------------------
class OnlineSteps:
    """The engine's step source for the online recipes: `step` runs the six stages in order. A recipe subclass
    gives stage 4 (`targets`) and the loss stage 5 minimizes (`loss`); what else differs is a class attribute,
    `keep` or `end_step`."""

    value_head = False  # PPO: the policy carries a value head
    needs_old_logps = False  # the targets use the old log-probs (so stage 3 always computes them)
    entropy_grad = False  # the loss has an entropy term (else entropy is a metric, computed without gradients)
    stops_on_nonfinite = True

    def __init__(self, run: OnlineRun):
        self.run, self.cfg, self.rt = run, run.cfg, run.rt
        self.label = run.recipe
        self.prompt_order = PromptOrder(len(run.prompts), self.cfg.batch_size, self.cfg.seed)
        self.total = self.cfg.max_steps or max(1, math.ceil(self.cfg.epochs * self.prompt_order.per_epoch))
        self.optimizer_steps = self.total * self.cfg.ppo_epochs * self.cfg.minibatches
        cfg = self.cfg
        self.monitor = None if run.gold_fn is None else HackingMonitor(
            OnsetTest(cfg.hacking_window, cfg.hacking_z, cfg.hacking_patience))
        self._bf16_copy = Bf16Copy()

    @property
    def on_policy(self) -> bool:
        """The update sees the rollout policy only: the old log-probs are the update's own, detached."""
        cfg = self.cfg
        return cfg.ppo_epochs == 1 and cfg.minibatches == 1 and not self.needs_old_logps

    def step(self, engine: Engine) -> dict:
        """One step, stage by stage; each stage returns what the next ones take."""
        samples = self.sample(engine)  # 1. k responses per prompt from the current policy
        scores = self.score(engine, samples)  # 2. the reward of each; the rows the update keeps
        parts = self.first_parts(engine, samples)
        logps = self.logprobs(engine, samples, parts)  # 3. reference (and old) log-probs
        targets = self.targets(samples, scores, logps)  # 4. advantages (and returns): the recipe's
        batch = Batch(samples, scores.keep, logps, targets)
        update = self.update(engine, batch, parts)  # 5. epochs of minibatch updates on the recipe's `loss`
        return self.metrics(engine, batch, scores, update)  # 6. the step's metrics row

    # -- what a recipe gives ------------------------------------------------------------------------------
    def targets(self, samples: Samples, scores: Scores, logps: LogProbs) -> Targets:
        raise NotImplementedError

    def loss(self, out: PolicyOut, micro: Micro) -> MicroLoss:
        """One micro-batch's share of its minibatch's loss, and its metrics."""
        raise NotImplementedError

    def keep(self, scored: torch.Tensor) -> torch.Tensor:
        """(R,) bool: the rows to train on. Group methods: scored members of groups with >= 2 scored."""
        g = scored.view(-1, self.cfg.k)
        return (g & (g.sum(1, keepdim=True) >= 2)).view(-1)

    def end_step(self, kl: float, n_responses: int) -> dict:
        """After the update: e.g. the adaptive KL controller; returns metrics (β)."""
        return {"beta": self.cfg.beta}

    def controller_state(self) -> dict:
        """The recipe's state across steps (PPO: the KL controller, the reward moments), checkpointed."""
        return {}

    def load_controller_state(self, state: dict) -> None:
        pass

    # -- the engine's protocol ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        state = {"algorithm": self.controller_state()}
        if self.monitor is not None:
            state["hacking"] = self.monitor.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.load_controller_state(state.get("algorithm", {}))
        if self.monitor is not None:
            self.monitor.load_state_dict(state.get("hacking", {}))

    def after_step(self, engine: Engine, timed_out: bool) -> dict | None:
        """The hacking monitor: a `split: hacking` row at the step its onset test fires (and the stop, when
        `stop_on_hacking`)."""
        if self.monitor is None:
            return None
        onset = self.monitor.add(engine.last_row)
        if onset is None:
            return None
        if self.cfg.stop_on_hacking:
            engine.stop = "hacking"
        # keyed by the step it fired at (a resumed run trims rows after its checkpoint by this step)
        return {"split": "hacking", **asdict(onset), "onset_step": onset.step, "step": engine.step}

    def finish(self, engine: Engine) -> dict | None:
        return None

    def info(self, row: dict) -> str:
        reward, loss = row.get("reward"), row.get("loss")
        info = f"loss {loss:.4f} " if loss is not None else ""
        return info + (f"reward {reward:.3f}" if reward is not None else "reward -") + f" kl {row['kl_k1']:.3f}"

    # -- 1.-6. the stages ---------------------------------------------------------------------------------
    def sample(self, engine: Engine) -> Samples:
        """1. k responses to each of this process's prompts of the step, from the current policy."""
        cfg, rt, run, t0 = self.cfg, self.rt, self.run, time.perf_counter()
        items = [run.prompts[i] for i in self.prompt_order.local(engine.step, rt.rank, rt.world)]
        seed = cfg.seed * 1_000_003 + engine.step * 7_919 + rt.rank  # a resumed step samples what it sampled before
        try:
            with rt.autocast():  # bf16 as the update runs
                rollout = sample(self._sampler(), run.tok, [it.messages for it in items], k=cfg.k,
                                 max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                                 seed=seed, max_prompt_length=cfg.max_prompt_length)
        except RuntimeError as e:  # the sampler's own check: the last update left non-finite weights
            if "inf" not in str(e) and "nan" not in str(e):
                raise
            raise NonFiniteError(f"sampling at step {engine.step + 1} met non-finite probabilities ({e}): the last "
                                 "update left non-finite weights, so the run stops (the last checkpoint is intact). "
                                 "Fix: lower lr") from None
        return Samples(rollout, items, t0, time.perf_counter())

    def _sampler(self) -> torch.nn.Module:
        """The policy, or on a CPU under bf16 its bf16 copy (`Bf16Copy`), refreshed to this step's weights."""
        rt, model = self.rt, self.run.policy.model
        if rt.autocast_dtype is None or rt.device.type != "cpu" or rt.fsdp:
            return model
        return self._bf16_copy.of(unwrap(model))

    def score(self, engine: Engine, samples: Samples) -> Scores:
        """2. The reward of each row (NaN where unscored) and the rows kept; stops when too much of the global
        batch is unscored."""
        rollout, rt, sums = samples.rollout, self.rt, MetricSums()
        result = self.run.reward_fn(rollout.reward_batch([it.metadata for it in samples.items]))
        if len(result.rewards) != rollout.rows:
            raise RewardError(f"the reward function returned {len(result.rewards)} rewards for {rollout.rows} "
                              "responses")
        scored = torch.tensor([r is not None for r in result.rewards])
        scores = torch.tensor([math.nan if r is None else float(r) for r in result.rewards], dtype=torch.float32)
        counts = rt.all_reduce(torch.tensor([float((~scored).sum()), float(rollout.rows)], device=rt.device))
        skipped, rows = counts.cpu().tolist()
        sums.add("reward/skipped", skipped / rt.world, 1.0 / rt.world)  # the global count
        if rows and skipped / rows > self.cfg.max_skipped_share:
            first = next((e for e in result.errors if e), "no reason given (another process's responses)")
            raise RewardError(f"{int(skipped)} of {int(rows)} responses of step {engine.step + 1} could not be "
                              f"scored (more than max_skipped_share={self.cfg.max_skipped_share}); first error: "
                              f"{first}. Fix: repair the reward source, or raise max_skipped_share")
        _reward_stats(result, sums)
        if self.run.gold_fn is not None:
            self.gold(engine, samples, result, sums)
        return Scores(scores, self.keep(scored).float(), sums, time.perf_counter())

    def gold(self, engine: Engine, samples: Samples, proxy: RewardResult, sums: MetricSums) -> None:
        """The monitor's gold reward on `gold_fraction` of this process's groups (seeded per step): its mean and
        its rank correlation with the proxy, into the step's metrics; never into the update."""
        rollout, k, n_groups = samples.rollout, self.cfg.k, len(samples.items)
        take = max(1, math.ceil(self.cfg.gold_fraction * n_groups))
        groups = sorted(random.Random(_mix(self.cfg.seed, engine.step, 1)).sample(range(n_groups), take))
        rows = [g * k + j for g in groups for j in range(k)]
        batch = rollout.reward_batch([it.metadata for it in samples.items]).rows(rows)
        gold = self.run.gold_fn(batch).rewards
        if len(gold) != len(rows):
            raise RewardError(f"the gold reward returned {len(gold)} rewards for {len(rows)} responses")
        got = [v for v in gold if v is not None]
        sums.add("gold", sum(got), len(got))
        sums.add("gold|sq", sum(v * v for v in got), len(got))
        both = [(proxy.rewards[i], v) for i, v in zip(rows, gold, strict=True)
                if v is not None and proxy.rewards[i] is not None]
        rho = spearman([p for p, _ in both], [g for _, g in both])
        if rho is not None:
            sums.add("gold/spearman", rho, 1.0)

    def first_parts(self, engine: Engine, samples: Samples) -> list[list[list[int]]]:
        """The first epoch's minibatches and micro-batches (stage 3 runs on them too)."""
        cfg = self.cfg
        return partition(samples.rollout.rows, cfg.minibatches, cfg.micro_batch_size, _mix(cfg.seed, engine.step, 0))

    def logprobs(self, engine: Engine, samples: Samples, parts: list[list[list[int]]]) -> LogProbs:
        """3. Reference log-probs, and (unless on-policy) the old log-probs and values, on the first epoch's
        micro-batches: the same rows, padding and order as the first minibatch's training forward."""
        cfg, rt, policy, rollout = self.cfg, self.rt, unwrap(engine.module), samples.rollout
        shape = tuple(rollout.response_ids.shape)
        ref, old, values = torch.zeros(shape), None if self.on_policy else torch.zeros(shape), None
        if self.value_head:
            values = torch.zeros(shape)
        with evaluating(policy):
            for rows in (m for mb in parts for m in mb):
                chunk = rollout.select(rows).to(rt.device)
                with rt.autocast():
                    ref[rows] = self.run.reference.logps(chunk, cfg.temperature).float().cpu()
                    if old is not None:
                        out = policy(chunk, cfg.temperature)
                        old[rows] = out.logps.float().cpu()
                        if values is not None:
                            values[rows] = out.values.float().cpu()
        return LogProbs(ref, old, values)

    def update(self, engine: Engine, batch: Batch, first_parts: list[list[list[int]]]) -> Update:
        """5. `ppo_epochs` passes, `minibatches` optimizer steps each."""
        cfg, grad_norm, sums = self.cfg, 0.0, MetricSums()
        own = torch.zeros(tuple(batch.rollout.response_ids.shape)) if batch.logps.old is None else None
        for epoch in range(cfg.ppo_epochs):
            parts = first_parts if epoch == 0 else partition(batch.rollout.rows, cfg.minibatches,
                                                             cfg.micro_batch_size, _mix(cfg.seed, engine.step, epoch))
            for j, (mb, counts) in enumerate(zip(parts, minibatch_counts(self.rt, batch, parts), strict=True)):
                for i, rows in enumerate(mb):
                    logps = self._micro_step(engine, batch, rows, counts, len(mb), sums,
                                             last=i == len(mb) - 1, first=epoch == 0 and j == 0)
                    if own is not None:  # on-policy: the rollout policy's own log-probs, for the KL metrics
                        own[rows] = logps.float().cpu()
                grad_norm = engine.optimizer_step(stop_on_nonfinite=True)
                sums.add("loss", 0.0, 1.0 / self.rt.world)  # the loss row is the mean over optimizer steps
        return Update(grad_norm, own, sums)

    def _micro_step(self, engine: Engine, batch: Batch, rows: list[int], counts: Counts, n_micro: int,
                    sums: MetricSums, *, last: bool, first: bool) -> torch.Tensor:
        """Forward and backward of one micro-batch (`last`: of its minibatch; `first`: the step's first minibatch);
        metrics into `sums`; its (detached) log-probs."""
        cfg, rt = self.cfg, self.rt
        chunk = batch.rollout.select(rows).to(rt.device)
        with sync_context(engine.module, rt, last=last):
            with rt.autocast():
                out = engine.module(chunk, cfg.temperature, entropy=True, entropy_grad=self.entropy_grad)
            old = out.logps.detach() if batch.logps.old is None else batch.logps.old[rows].to(out.logps)
            ml = self.loss(out, Micro(rows, old, counts, n_micro, batch))
            if not torch.isfinite(ml.loss):
                raise NonFiniteError(f"the loss is {float(ml.loss)} at step {engine.step + 1}, so the run stops (the "
                                     "last checkpoint is intact). Fix: lower lr, or check the rewards for huge values")
            ml.loss.backward()
        mask = batch.mask[rows].to(out.logps)
        if first:
            dev = ((torch.exp(out.logps.detach() - old) - 1).abs() * mask).max()
            sums.add("ratio_first_dev", dev * len(rows), len(rows))
        sums.add("loss", ml.loss.detach() / rt.world, 0.0)
        sums.add("entropy", masked_sum(out.entropy.detach(), mask), mask.sum())
        sums.add("approx_kl", masked_sum(0.5 * (out.logps.detach() - old) ** 2, mask), mask.sum())
        sums.add_all(ml.stats)
        return out.logps.detach()

    def metrics(self, engine: Engine, batch: Batch, scores: Scores, update: Update) -> dict:
        """6. The step's row: the stages' metrics reduced over processes, β, the timings."""
        rt, r, t3 = self.rt, batch.rollout, time.perf_counter()
        old = batch.logps.old if batch.logps.old is not None else update.logps
        mask, n = r.response_mask.float(), float(r.rows)
        rollout = MetricSums()
        rollout.add("kl_k1", masked_sum(kl_k1(old, batch.logps.ref), mask), n)
        rollout.add("kl_k3", masked_sum(kl_k3(old, batch.logps.ref), mask), n)
        rollout.add("response_length", mask.sum(), n)
        rollout.add("no_eos_share", float((~r.ended).sum()), n)
        sums = MetricSums.joined(scores.sums, MetricSums.of(batch.targets.stats), update.sums, rollout)
        row = {"split": "train", "step": engine.step + 1, "rows": r.rows * rt.world, **sums.reduce(rt)}
        row.update(self.end_step(row["kl_k1"], row["rows"]))
        tokens = float(rt.all_reduce(torch.tensor(float(r.lengths.sum()), device=rt.device)))
        t0, t1, t2 = batch.samples.started, batch.samples.finished, scores.finished
        row.update(grad_norm=update.grad_norm, lr=engine.scheduler.get_last_lr()[0], gen_s=round(t1 - t0, 4),
                   reward_s=round(t2 - t1, 4), update_s=round(t3 - t2, 4), step_s=round(t3 - t0, 4),
                   tokens_per_s=round(tokens / max(t3 - t0, 1e-9), 2),  # sampled response tokens per second
                   elapsed_s=round(engine.elapsed(), 3))
        return row


def train_online(run: OnlineRun, steps: OnlineSteps) -> TrainResult:
    """Steps until `epochs` passes over the prompts, `max_steps` or `max_seconds` run out; resumes from OUT's
    checkpoint; the final model in Hugging Face format in OUT (and PPO's value head)."""
    from rlaif.train.checkpoint import save_final

    rt = run.rt
    module = wrap(run.policy, rt)
    result = run_steps(run.cfg, rt, module, run.out, steps)
    if steps.monitor is not None:
        result = replace(result, hacking=steps.monitor.summary())
    save_final(run.out, rt, module, run.tok, result, run.cfg.model_dump())
    if rt.is_main and run.policy.value_head is not None:
        torch.save(run.policy.value_head.state_dict(), run.out / "value_head.pt")
    return result
