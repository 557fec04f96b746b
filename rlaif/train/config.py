"""Training configs: one pydantic model per recipe, filled from a YAML file and key=value overrides.

An unknown key or a value of the wrong type is a ConfigError that names the key; an unknown key gets a
"did you mean" hint (`config_hints.py`), also for the names TRL and transformers' Trainer use.
The shipped defaults live in rlaif/train/configs/{rm,dpo,kto}.yaml.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rlaif.errors import ConfigError, InputError
from rlaif.records import read_yaml
from rlaif.train.config_hints import unknown_key_hint

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


class LoraConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    r: int = Field(16, gt=0)
    alpha: int = Field(32, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | str = "all-linear"


class TrainConfig(BaseModel):
    """Options shared by every recipe."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    data: str | None = None  # JSONL file (rlaif records or any TRL-format file)
    eval_data: str | None = None  # a separate held-out file; else `eval_fraction` of `data`, split by prompt
    model: str = "local"  # "local" (the embedded default) or a local transformers directory
    out: str | None = None  # output directory
    eval_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    seed: int = 0
    max_length: int = Field(512, gt=8)  # prompt + response tokens
    max_prompt_length: int = Field(256, gt=0)
    batch_size: int = Field(8, gt=0)  # examples (pairs for rm/dpo) per optimizer step, over all processes
    micro_batch_size: int = Field(8, gt=0)  # examples per forward pass on one process
    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, gt=0)
    max_seconds: float | None = Field(None, gt=0)  # training-time budget; stops after the step that crosses it
    lr: float = Field(5e-6, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup_steps: int = Field(0, ge=0)
    lr_scheduler: Literal["constant", "linear", "cosine"] = "constant"
    max_grad_norm: float | None = Field(1.0, gt=0)
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    gradient_checkpointing: Literal["auto", "on", "off"] = "auto"  # auto: on for CUDA
    device: Literal["auto", "cpu", "cuda"] = "auto"
    fsdp: bool = False  # shard parameters across processes (CUDA, under torchrun / accelerate launch)
    lora: LoraConfig | None = None
    group_by_length: bool = True
    share_prompt: bool = True  # one row per prompt: its responses attend to the prompt, not to each other
    save_every: int = Field(50, gt=0)  # optimizer steps between resumable checkpoints
    eval_every: int | None = Field(None, gt=0)  # steps between evaluations (always at the end)
    log_every: int = Field(1, gt=0)
    threads: int | None = Field(None, gt=0)  # torch CPU threads (default: torch's choice)
    resume: bool = True  # continue from OUT/checkpoint when it exists

    @field_validator("gradient_checkpointing", mode="before")
    @classmethod
    def _on_off(cls, value: Any) -> Any:  # YAML reads on/off (and TRL's true/false) as booleans
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


class RMConfig(TrainConfig):
    lr: float = Field(1e-5, gt=0)
    center_rewards_coef: float = Field(0.0, ge=0)
    soft_labels: bool = True  # use p_chosen as the target when a record has it
    margin_field: str | None = None  # a record field holding a margin for -log σ(r_c - r_r - margin)


class DPOConfig(TrainConfig):
    beta: float = Field(0.1, gt=0)
    loss_type: Literal["sigmoid", "ipo"] = "sigmoid"
    label_smoothing: float = Field(0.0, ge=0, lt=0.5)
    soft_labels: bool = True
    reference: str | None = None  # another model as the reference; default: the policy's starting weights


class KTOConfig(TrainConfig):
    beta: float = Field(0.1, gt=0)
    desirable_weight: float = Field(1.0, gt=0)
    undesirable_weight: float = Field(1.0, gt=0)
    reference: str | None = None


CONFIGS: dict[str, type[TrainConfig]] = {"rm": RMConfig, "dpo": DPOConfig, "kto": KTOConfig}


def parse_override(item: str) -> tuple[list[str], Any]:
    """`key=value` (value parsed as YAML, so numbers and booleans get their types; `lora.r=8` nests)."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not key=value. Fix: write e.g. beta=0.2")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def load_config(recipe: str, path: str | Path | None = None, overrides: list[str] | None = None,
                **values: Any) -> TrainConfig:
    """Build a recipe's config: defaults < YAML file < key=value overrides < keyword values."""
    if recipe not in CONFIGS:
        raise ConfigError(f"unknown recipe {recipe!r}. Fix: use one of {', '.join(CONFIGS)}")
    data, source = config_data(path, overrides, example=CONFIG_DIR / f"{recipe}.yaml", **values)
    return validate(recipe, data, source=source)


def config_data(path: str | Path | None = None, overrides: list[str] | None = None, *,
                example: Path | None = None, **values: Any) -> tuple[dict[str, Any], str]:
    """The merged key/values of a YAML file, key=value overrides and keyword values (None skipped), and a
    phrase naming where they came from (for error messages)."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"config file {p} not found. Fix: check the path")
        loaded = read_yaml(p) or {}
        if not isinstance(loaded, dict):
            raise InputError(p, None, "expected a mapping of keys to values",
                             "write one `key: value` per line" + (f", as in {example}" if example else ""))
        data.update(loaded)
    for item in overrides or []:
        keys, value = parse_override(item)
        node = data
        for k in keys[:-1]:
            if not isinstance(node.get(k), dict):  # e.g. `lora: null` in the YAML: lora.r=8 turns it on
                node[k] = {}
            node = node[k]
        node[keys[-1]] = value
    data.update({k: v for k, v in values.items() if v is not None})
    source = " + ".join(x for x in (str(path) if path else "", "key=value overrides" if overrides else "") if x)
    return data, source or "options"


def validate(recipe: str, data: dict[str, Any], source: str = "options",
             configs: dict[str, type[BaseModel]] | None = None) -> TrainConfig:
    """`data` as the config of `recipe` (one of `configs`, default the training recipes'); a ConfigError
    naming every bad key, with a hint for each unknown one."""
    configs = configs or CONFIGS
    model = configs[recipe]
    try:
        return model.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            key = ".".join(str(x) for x in err["loc"])
            if err["type"] == "extra_forbidden":
                hint = unknown_key_hint(recipe, [str(x) for x in err["loc"]], configs)
                problems.append(f"unknown key '{key}'" + (f" ({hint})" if hint else ""))
            elif not key:  # a check of the whole config
                problems.append(str(err["msg"]).removeprefix("Value error, "))
            else:
                problems.append(f"key '{key}': {err['msg']} (got {err.get('input')!r})")
        known = ", ".join(sorted(model.model_fields))
        raise ConfigError(f"bad {recipe} config in {source}: {'; '.join(problems)}. "
                          f"Fix: the keys of a {recipe} config are: {known}") from None
