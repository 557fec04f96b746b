""""Did you mean" hints for unknown training-config keys: close misspellings, and the names users of TRL and
transformers' Trainer type, with what rlaif calls them (or that rlaif has no such setting, and what to do)."""
from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel

# a TRL / TrainingArguments / peft name -> (rlaif's key, or None when rlaif has no equivalent; what to know)
FOREIGN_KEYS: dict[str, tuple[str | None, str]] = {
    "learning_rate": ("lr", ""),
    "per_device_train_batch_size": ("micro_batch_size", "It is the examples per forward pass on one process; "
                                                        "batch_size is the examples per optimizer step, all processes"),
    "per_device_eval_batch_size": ("micro_batch_size", "It sizes the evaluation passes too"),
    "num_train_epochs": ("epochs", ""),
    "gradient_accumulation_steps": (None, "set batch_size (examples per optimizer step, over all processes) and "
                                          "micro_batch_size (per forward pass): accumulation makes up the rest"),
    "max_completion_length": (None, "max_length bounds prompt + response tokens, max_prompt_length the prompt"),
    "warmup_ratio": (None, "use warmup_steps (optimizer steps)"),
    "logging_steps": ("log_every", ""),
    "save_steps": ("save_every", ""),
    "eval_steps": ("eval_every", ""),
    "eval_strategy": (None, "set eval_every (steps); the end of training is always evaluated"),
    "evaluation_strategy": (None, "set eval_every (steps); the end of training is always evaluated"),
    "save_strategy": (None, "a checkpoint is saved every save_every steps and at the end"),
    "save_total_limit": (None, "it keeps one resumable checkpoint, OUT/checkpoint"),
    "output_dir": ("out", "Or pass -o OUTDIR"),
    "model_name_or_path": ("model", "Give 'local' or a local model directory"),
    "lr_scheduler_type": ("lr_scheduler", "One of constant, linear, cosine"),
    "bf16": ("precision", "Set precision=bf16"),
    "fp16": (None, "precision is auto, fp32 or bf16"),
    "use_peft": ("lora", "E.g. lora.r=16 turns LoRA on"),
    "lora_r": ("lora.r", ""),
    "lora_alpha": ("lora.alpha", ""),
    "lora_dropout": ("lora.dropout", ""),
    "lora_target_modules": ("lora.target_modules", ""),
    "ref_model": ("reference", "A local model directory"),
    "precompute_ref_log_probs": (None, "reference log-probs are always computed once and cached in OUT"),
    "center_rewards_coefficient": ("center_rewards_coef", ""),
    "resume_from_checkpoint": ("resume", "resume=true (the default) continues from OUT/checkpoint"),
    "report_to": (None, "metrics are written to OUT/metrics.jsonl"),
    "deepspeed": (None, "fsdp=true shards the model under torchrun"),
    "dataset_name": ("data", "A local JSONL file, or pass --data FILE"),
}

# TRL's GRPOConfig / RLOOConfig (and its old PPOConfig) names -> the online recipes' keys. Used for the online
# recipes, and for the offline ones when FOREIGN_KEYS has no entry (so "num_generations" on dpo names ppo/rloo/grpo).
ONLINE_KEYS: dict[str, tuple[str | None, str]] = {
    "num_generations": ("k", "The responses sampled per prompt"),
    "max_completion_length": ("max_new_tokens", ""),
    "response_length": ("max_new_tokens", ""),
    "num_iterations": ("ppo_epochs", "The passes over each rollout batch"),
    "num_ppo_epochs": ("ppo_epochs", ""),
    "num_mini_batches": ("minibatches", "Optimizer steps per pass over a rollout batch"),
    "steps_per_generation": ("minibatches", "Optimizer steps per pass over a rollout batch"),
    "generation_batch_size": ("batch_size", "It counts prompts per step, over all processes; rows = batch_size·k"),
    "per_device_train_batch_size": ("micro_batch_size", "It is the rows (responses) per forward pass on one "
                                                        "process; batch_size counts prompts per step"),
    "kl_coef": ("beta", ""),
    "init_kl_coef": ("beta", ""),
    "cliprange": ("epsilon", ""),
    "cliprange_value": ("value_clip", ""),
    "target": ("kl_target", "Setting it turns the adaptive KL controller on"),
    "target_kl": ("kl_target", "Setting it turns the adaptive KL controller on"),
    "adap_kl_ctrl": ("kl_target", "Setting kl_target turns the adaptive KL controller on"),
    "horizon": ("kl_horizon", ""),
    "whiten_rewards": ("normalize_rewards", ""),
    "reward_model_path": (None, "pass --reward rm:PATH"),
    "reward_funcs": (None, "pass --reward SPEC (repeatable): rule, rm:PATH, judge:NAME, python:MODULE:FUNCTION, ..."),
    "reward_weights": (None, "give each --reward its weight as SPEC@WEIGHT"),
    "use_vllm": (None, "rollouts are sampled by the policy itself (HF generate with the KV cache)"),
    "mask_truncated_completions": (None, "ppo's missing_eos_penalty penalizes responses that never end"),
    # GRPO's loss options TRL 1.16 has and rlaif does not (its own keys carry TRL's names: importance_sampling_level,
    # loss_type with grpo/bnpo/dr_grpo/dapo/cispo/sapo, sapo_temperature_pos/neg, epsilon_high)
    "delta": (None, "two-sided clipping (INTELLECT-2) is not implemented; epsilon and epsilon_high clip the ratio"),
    "vespo_k_pos": (None, "loss_type=vespo is not implemented; loss_type takes grpo, bnpo, dr_grpo, dapo, cispo, sapo"),
    "vespo_k_neg": (None, "loss_type=vespo is not implemented; loss_type takes grpo, bnpo, dr_grpo, dapo, cispo, sapo"),
    "vespo_lambda_pos": (None, "loss_type=vespo is not implemented"),
    "vespo_lambda_neg": (None, "loss_type=vespo is not implemented"),
    "use_bias_correction_kl": (None, "the k3 KL term is always multiplied by the ratio, TRL's default"),
    "top_entropy_quantile": (None, "every response token is trained on"),
    "off_policy_mask_threshold": (None, "no off-policy sequence masking; ppo_epochs=1 minibatches=1 is on-policy"),
    "filter_groups": ("filter_zero_std_groups", "DAPO's dynamic filter (verl's filter_groups), without refilling "
                                                "the batch: groups whose rewards are all equal leave the loss"),
    "dynamic_sampling": ("filter_zero_std_groups", "DAPO's dynamic filter, without refilling the batch"),
}


def _inner(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model a field holds (`LoraConfig | None` -> LoraConfig), or None."""
    inner = [a for a in getattr(annotation, "__args__", (annotation,))
             if isinstance(a, type) and issubclass(a, BaseModel)]
    return inner[0] if inner else None


def flat_sections(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """The sections a config holds whose keys users write at its top level (online-dpo's DPO config: `beta=0.2`
    sets its `dpo.beta`), by field name; a config names them in `FLAT_SECTIONS`."""
    return {name: _inner(model.model_fields[name].annotation) for name in getattr(model, "FLAT_SECTIONS", ())}


def config_keys(model: type[BaseModel]) -> list[str]:
    """The keys a config takes, as users write them (a flat section's keys in its place)."""
    sections = flat_sections(model)
    return [k for name in model.model_fields
            for k in (config_keys(sections[name]) if name in sections else [name])]


def _field_model(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    """The model that the key `name` of `model` holds (looking inside flat sections too), or None."""
    if name in model.model_fields:
        return _inner(model.model_fields[name].annotation)
    for section in flat_sections(model).values():
        if name in config_keys(section):
            return _field_model(section, name)
    return None


def _submodel(model: type[BaseModel], path: list[str]) -> type[BaseModel] | None:
    """The pydantic model at a dotted path of nested keys (e.g. ['lora'] -> LoraConfig)."""
    for part in path:
        model = _field_model(model, part)
        if model is None:
            return None
    return model


def _online(model: type[BaseModel]) -> bool:
    return "prompts" in _fields(model)


def _recipes_with(key: str, configs: dict[str, type[BaseModel]], asking: str) -> list[str]:
    """The recipes whose config has `key`: those of the asking recipe's kind (offline / online) when any has it."""
    having = [name for name, model in configs.items() if key.split(".")[0] in _fields(model)]
    same = [name for name in having if _online(configs[name]) == _online(configs[asking])]
    return same or having


def _configs_phrase(recipes: list[str]) -> str:
    if len(recipes) == 1:
        return f"the {recipes[0]} config"
    return f"the {', '.join(recipes[:-1])} and {recipes[-1]} configs"


def _foreign_table(key: str, fields: list[str]) -> dict[str, tuple[str | None, str]] | None:
    """ONLINE_KEYS for an online recipe (it has `prompts`) or a key only TRL's online trainers use; else
    FOREIGN_KEYS."""
    if key in ONLINE_KEYS and ("prompts" in fields or key not in FOREIGN_KEYS):
        return ONLINE_KEYS
    return FOREIGN_KEYS if key in FOREIGN_KEYS else None


def _fields(model: type[BaseModel]) -> list[str]:
    return config_keys(model)


def _foreign_hint(recipe: str, key: str, fields: list[str], configs: dict[str, type[BaseModel]]) -> str:
    target, note = _foreign_table(key, fields)[key]
    if target is None:
        return f"rlaif has no {key}; {note}"
    if target.split(".")[0] not in fields:
        where = _configs_phrase(_recipes_with(target, configs, recipe))
        return f"rlaif calls it '{target}', a key of {where}, not of {recipe}"
    return f"did you mean '{target}'?" + (f" {note}" if note else "")


def unknown_key_hint(recipe: str, loc: list[str], configs: dict[str, type[BaseModel]]) -> str:
    """A short hint for the unknown key at `loc` in a `recipe` config, or "" when there is none to give."""
    model = _submodel(configs[recipe], loc[:-1])
    if model is None:
        return ""
    key, prefix = loc[-1], "".join(f"{p}." for p in loc[:-1])
    fields = _fields(model)
    if not prefix and _foreign_table(key, fields) is not None:
        return _foreign_hint(recipe, key, fields, configs)
    others = [] if prefix else [r for r in _recipes_with(key, configs, recipe) if r != recipe]
    if others and _online(configs[recipe]) and not any(_online(configs[r]) for r in others):
        return f"it is a key of the offline recipes; {recipe} samples from prompts: give prompts: or --prompts"
    if others:
        return f"'{key}' is a key of {_configs_phrase(others)}, not of {recipe}"
    unprefixed = key.removeprefix(f"{loc[-2]}_") if prefix else key  # peft's lora_alpha inside lora: alpha
    close = [unprefixed] if unprefixed in fields else difflib.get_close_matches(key, fields, n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(f"'{prefix}{c}'" for c in close) + "?"
    if not prefix:  # a misspelling of another recipe's key
        elsewhere = {f for m in configs.values() for f in _fields(m)}
        for c in difflib.get_close_matches(key, sorted(elsewhere), n=1, cutoff=0.6):
            where = _configs_phrase(_recipes_with(c, configs, recipe))
            return f"did you mean '{c}'? It is a key of {where}, not of {recipe}"
    return ""
