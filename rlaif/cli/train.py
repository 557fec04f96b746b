"""`rlaif train`: offline (rm, dpo, kto), online (ppo, rloo, grpo) and online-dpo recipes."""
from __future__ import annotations

from pathlib import Path

import typer

from rlaif.cli import train_help  # noqa: F401  (registers the recipe keys in --help, the --max-steps hint)
from rlaif.cli.entry import app
from rlaif.cli.options import (
    _JUDGE_HELP,
    ApiKeyEnv,
    Concurrency,
    Limit,
    Offset,
    call_options,
    prompts_help,
)
from rlaif.cli.paths import file_or_name, folder_or_name, input_file, output_dir, prompt_set


# --- training: train -----------------------------------------------------------------------------
@app.command(context_settings={"allow_extra_args": False})
def train(
    recipe: str = typer.Argument(..., help="rm | dpo | kto (from preference files) | ppo | rloo | grpo (online, from "
                                           "prompts and a reward) | online-dpo (rounds of sampling, judging, DPO)"),
    overrides: list[str] = typer.Argument(None, help="config overrides as key=value (e.g. beta=0.2 lora.r=8)"),
    data: Path = typer.Option(None, "--data", help="preference JSONL (rlaif/TRL format); KTO: prompt/completion/label",
                              callback=input_file),
    model: str = typer.Option(None, "--model", help="'local' (the embedded default) or a local model directory",
                              callback=folder_or_name),
    out: Path = typer.Option(None, "-o", "--out", help="output directory (checkpoint, metrics.jsonl, model)",
                             callback=output_dir),
    config: Path = typer.Option(None, "--config", help="YAML config (default: the shipped one for the recipe)",
                                callback=input_file),
    prompts: str = typer.Option(None, "--prompts", help=prompts_help("ppo/rloo/grpo/online-dpo: what the policy "
                                                                     "answers (constraints and other fields reach the "
                                                                     "reward as metadata)"), callback=prompt_set),
    reward: list[str] = typer.Option([], "--reward", help="ppo/rloo/grpo, repeatable: rule, rule:all, rm:PATH, "
                                     "judge:NAME, pairwise:NAME, group:NAME[,pairs=M], http://HOST:PORT/get_reward, "
                                     "python:MODULE:FUNC, each optionally @WEIGHT"),
    gold_reward: list[str] = typer.Option([], "--gold-reward", help="ppo/rloo/grpo/online-dpo, repeatable: a reward "
                                          "spec (as --reward) scored beside the training reward, never trained on: "
                                          "proxy vs gold and the reward-hacking onset (online-dpo: per round)"),
    judge: list[str] = typer.Option([], "--judge", "-j", help="online-dpo: " + _JUDGE_HELP, callback=file_or_name),
    judge_model: list[str] = typer.Option([], "--judge-model", help="the judges' backend (openai:MODEL, "
                                          "anthropic:MODEL, vllm:PATH, local): online-dpo's --judge, or the "
                                          "judge:/pairwise: rewards (once)"),
    base_url: list[str] = typer.Option([], "--base-url", help="OpenAI/Anthropic-compatible server URL for the judges "
                                                               "(repeat to spread the load)"),
    api_key_env: ApiKeyEnv = None,
    concurrency: Concurrency = 8,
    timeout: float = typer.Option(None, "--timeout", min=0.1, help="seconds per judge or reward-server call"),
    keep_checkpoint: bool = typer.Option(False, "--keep-checkpoint", help="keep OUT/checkpoint (optimizer state, "
                                         "as large as 3x the model) once the run is complete, to extend it later; "
                                         "by default it is removed: the final model is OUT itself"),
    limit: Limit = None,
    offset: Offset = 0,
) -> None:
    """Train a reward model (rm) or a policy (dpo, kto) from preference files, a policy online from prompts and
    a reward (ppo, rloo, grpo), or a policy by rounds of sampling, AI judging and DPO (online-dpo); resumes
    after a kill. A bar on a terminal, a line per log interval otherwise, a short summary at the end (the full
    result is OUT/train_result.json). Re-running a finished run's command trains nothing and prints its summary.

    Multi-process: `torchrun --nproc_per_node N -m rlaif.cli train dpo ...` (DDP; fsdp=true on GPUs).
    """

    from rlaif.train import ONLINE_RECIPES
    from rlaif.train import train as run_recipe
    from rlaif.train.config import CONFIG_DIR, load_config
    from rlaif.train.modeling import quiet_library_loads
    from rlaif.train.summary import run_summary

    quiet_library_loads()
    if keep_checkpoint:
        key = "dpo.keep_checkpoint" if recipe == "online-dpo" else "keep_checkpoint"  # online-dpo: each round's DPO
        overrides = [*(overrides or []), f"{key}=true"]
    if recipe == "online-dpo":
        _train_online_dpo(overrides or [], prompts=prompts, judge=judge, judge_model=judge_model, model=model,
                          out=out, config=config, data=data, base_url=base_url, api_key_env=api_key_env,
                          concurrency=concurrency, gold_reward=gold_reward, limit=limit, offset=offset)
        return
    _check_train_flags(recipe, data=data, prompts=prompts, reward=reward + gold_reward, judge=judge,
                       judge_model=judge_model, base_url=base_url, api_key_env=api_key_env,
                       prompt_cut=limit is not None or offset > 0)
    online = recipe in ONLINE_RECIPES
    source = ({"prompts": prompts, "prompts_limit": limit, "prompts_offset": offset or None} if online
              else {"data": str(data) if data else None})
    cfg = load_config(recipe, config or CONFIG_DIR / f"{recipe}.yaml", overrides or [], **source, model=model,
                      out=str(out) if out else None)
    if not online:
        typer.echo(run_summary(recipe, run_recipe(recipe, cfg), cfg.model))
        return
    result = _train_online(recipe, cfg, reward=reward, gold_reward=gold_reward, judge_model=judge_model,
                           base_url=base_url, api_key_env=api_key_env, concurrency=concurrency, timeout=timeout)
    typer.echo(run_summary(recipe, result, cfg.model))


def _train_online(recipe: str, cfg, *, reward, gold_reward, judge_model, base_url, api_key_env, concurrency,
                  timeout):
    """ppo / rloo / grpo: the rewards built from their specs (closed after the run), then OUT/training.html."""
    from contextlib import ExitStack

    from rlaif.report.training_page import write_training_page
    from rlaif.rewards import build_reward_fn
    from rlaif.train import train as run_recipe

    _print_group_costs(reward + gold_reward, cfg)
    tokenizer = None
    if any(r.startswith(("http://", "https://")) for r in reward + gold_reward):  # servers get chat-template text
        from rlaif.train.modeling import load_tokenizer, model_path

        tokenizer = load_tokenizer(model_path(cfg.model))
    settings = dict(judge_model=judge_model[0] if judge_model else None, base_urls=base_url or None,
                    api_key_env=api_key_env, concurrency=concurrency, timeout=timeout, tokenizer=tokenizer)
    with ExitStack() as stack:
        reward_fn = stack.enter_context(build_reward_fn(reward, **settings))
        gold_fn = stack.enter_context(build_reward_fn(gold_reward, **settings)) if gold_reward else None
        result = run_recipe(recipe, cfg, reward_fn, gold_fn)
    write_training_page(Path(cfg.out))
    return result


def _print_group_costs(specs: list[str], cfg) -> None:
    """The judge calls of each group reward, on stderr before the run (stdout holds the result's JSON)."""
    import math

    from rlaif.errors import ConfigError
    from rlaif.records import read_prompts
    from rlaif.rewards.group import describe_cost
    from rlaif.rewards.spec import group_arg, parse_reward_spec

    groups = [s for s in map(parse_reward_spec, specs) if s.kind == "group"]
    if not groups:
        return
    if cfg.k < 2:
        raise ConfigError(f"--reward {groups[0].spec}: a group reward compares a prompt's samples with each other, "
                          f"and k={cfg.k}. Fix: sample a group per prompt (k=4, with grpo or rloo), or use "
                          "pairwise:NAME against a reference")
    n = len(read_prompts(cfg.prompts)) if cfg.prompts else cfg.batch_size
    steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * max(1, n // cfg.batch_size)))
    for src in groups:
        typer.echo(describe_cost(src.name, cfg.k, group_arg(src.arg)[1], cfg.batch_size, steps), err=True)


def _check_train_flags(recipe: str, *, data, prompts, reward, judge, judge_model, base_url, api_key_env,
                       prompt_cut: bool = False) -> None:
    """Each recipe family takes its own inputs: refuse the flags of another one, saying which they belong to."""
    from rlaif.errors import ConfigError
    from rlaif.train import ONLINE_RECIPES, RECIPES

    if recipe not in RECIPES:
        raise ConfigError(f"unknown recipe {recipe!r}. Fix: use one of {', '.join(RECIPES)}, online-dpo")
    online = recipe in ONLINE_RECIPES
    if judge:
        raise ConfigError(f"--judge is for online-dpo, not {recipe}. Fix: drop it, or give the judge as "
                          "--reward judge:NAME / pairwise:NAME")
    if online and data:
        raise ConfigError(f"{recipe} samples from prompts, it reads no --data. Fix: pass --prompts FILE")
    if not online and (prompts or reward or judge_model or base_url or api_key_env or prompt_cut):
        raise ConfigError(f"--prompts, --limit, --offset, --reward, --judge-model, --base-url and --api-key-env are "
                          f"for the online recipes ({', '.join(ONLINE_RECIPES)}, online-dpo); {recipe} trains on "
                          "--data. Fix: drop them (max_steps=N bounds a short run)")
    if len(judge_model) > 1:
        raise ConfigError("--judge-model once for the online recipes: every judge: / pairwise: reward runs on it")


def _train_online_dpo(overrides: list[str], *, prompts, judge, judge_model, model, out, config, data, base_url,
                      api_key_env, concurrency, gold_reward, limit, offset) -> None:
    from rlaif.errors import ConfigError
    from rlaif.pipelines.online_dpo import DEFAULT_CONFIG, load_online_config, run_online_dpo

    if data is not None:
        raise ConfigError("online-dpo makes its own preference data each round. Fix: drop --data, pass --prompts")
    cfg = load_online_config(config or DEFAULT_CONFIG, overrides, prompts=prompts, model=model,
                             out=str(out) if out else None, judges=judge or None, judge_models=judge_model or None,
                             gold_reward=gold_reward or None, prompts_limit=limit, prompts_offset=offset or None)
    run = run_online_dpo(cfg, options=call_options(concurrency, base_url, api_key_env))
    typer.echo(run.summary)
