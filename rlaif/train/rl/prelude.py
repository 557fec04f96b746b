"""The prelude of the online recipes, in the order the offline one (`train/prelude.py`) runs it: config, the OUT
lock and OUT/config.yaml, runtime, seed, prompts, tokenizer, the policy (with a value head for PPO) and the
frozen reference. Prompts come from a prompt file read by `rlaif.records.read_prompts` (so a bad line is a
`file:line` error); each record's fields travel to the reward function as its metadata."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlaif.errors import ConfigError
from rlaif.outlock import OutputLock
from rlaif.records import as_messages, read_prompts
from rlaif.scoring import Messages, RewardFn
from rlaif.train.config import OnlineConfig, resolve_config
from rlaif.train.modeling import attention_supports_shared_prompt, load_model, load_tokenizer, model_path
from rlaif.train.prelude import Run, output_dir, prepare_locked, seed_everything
from rlaif.train.rl.policy import Policy, Reference
from rlaif.train.runtime import setup


@dataclass
class PromptItem:
    messages: Messages  # what the policy is shown
    metadata: dict  # the prompt record's fields (prompt_id, constraints, reference, ...): the reward's metadata


def load_prompt_items(path: str, limit: int | None = None, offset: int = 0) -> list[PromptItem]:
    from rlaif.catalog import prompt_set, select  # the one resolver: a prompts: key may name a built-in set too

    found = prompt_set(path, "prompts")
    return [PromptItem(as_messages(rec.prompt), rec.model_dump())
            for rec in select(read_prompts(found), limit, offset, found)]


@dataclass
class OnlineRun(Run):
    """An online recipe's run: the prompts, the policy, the reference and the reward."""

    prompts: list[PromptItem]
    policy: Policy  # unwrapped
    reference: Reference
    reward_fn: RewardFn
    gold_fn: RewardFn | None = None  # the reward-hacking monitor's gold source: scored, never trained on


def start_online(recipe: str, config: OnlineConfig | dict | None, overrides: dict[str, Any], reward_fn: RewardFn,
                 value_head: bool = False, gold_fn: RewardFn | None = None) -> OnlineRun:
    """Resolve the config, lock and write OUT, start the runtime, seed, read the prompts, load the policy (a
    value head when `value_head`; seeded first, so it is the same on every process) and the reference."""
    if reward_fn is None:
        raise ConfigError(f"the {recipe} recipe needs a reward function. Fix: pass --reward SPEC")
    cfg = resolve_config(recipe, config, overrides, required={
        "prompts": f"no prompts given. Fix: pass --prompts FILE (or prompts: in the {recipe} config)",
        "out": "no output directory given. Fix: pass -o OUTDIR (or out: in the config)"})
    return prepare_locked(Path(cfg.out), lambda lock: _prepare(recipe, cfg, reward_fn, gold_fn, value_head, lock))


def _prepare(recipe: str, cfg: OnlineConfig, reward_fn: RewardFn, gold_fn: RewardFn | None, value_head: bool,
             lock: OutputLock | None) -> OnlineRun:
    out = output_dir(cfg, recipe)
    if cfg.fsdp:
        raise ConfigError(f"fsdp is not supported by {recipe}: sampling needs the whole weights on each process. "
                          "Fix: drop fsdp (the processes use DDP), or train LoRA adapters (lora.r=16)")
    rt = setup(cfg)
    seed_everything(cfg.seed)
    prompts = load_prompt_items(cfg.prompts, cfg.prompts_limit, cfg.prompts_offset)
    if len(prompts) < cfg.batch_size:
        raise ConfigError(f"{cfg.prompts} holds {len(prompts)} prompts, fewer than batch_size={cfg.batch_size} "
                          "(prompts per step). Fix: lower batch_size or give more prompts")
    if cfg.batch_size % rt.world:
        raise ConfigError(f"batch_size={cfg.batch_size} prompts do not split over {rt.world} processes. "
                          f"Fix: use a multiple of {rt.world}")
    path = model_path(cfg.model)
    tok = load_tokenizer(path)
    model = load_model(path, "causal", tok, cfg.lora, rt.gradient_checkpointing)
    policy = Policy(model, value_head=value_head,
                    packed=cfg.share_prompt and attention_supports_shared_prompt(model)).to(rt.device)
    other = load_model(model_path(cfg.reference), "causal", tok) if cfg.reference else None
    reference = Reference(policy, lora=cfg.lora is not None, other=other).to(rt.device)
    return OnlineRun(recipe, cfg, out, rt, path, tok, prompts, policy, reference, reward_fn, gold_fn, lock=lock)
