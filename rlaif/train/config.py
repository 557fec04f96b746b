"""Training configs: one pydantic model per recipe, filled from a YAML file and key=value overrides.

An unknown key or a value of the wrong type is a ConfigError that names the key; an unknown key gets a
"did you mean" hint (`config_hints.py`), also for the names TRL and transformers' Trainer use.
The shipped defaults live in rlaif/train/configs/{rm,dpo,kto,ppo,rloo,grpo}.yaml. `TrainConfig` holds the keys
every recipe shares; its two siblings add the offline recipes' preference data (`OfflineConfig`: rm, dpo, kto)
and the online recipes' prompts and sampling (`OnlineConfig`: ppo, rloo, grpo).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rlaif.errors import ConfigError, InputError
from rlaif.records import read_yaml
from rlaif.train.config_hints import config_keys, flat_sections, unknown_key_hint

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


class LoraConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    r: int = Field(16, gt=0)  # adapter rank; setting any lora.* key turns LoRA on
    alpha: int = Field(32, gt=0)  # adapter scaling (alpha / r multiplies the update)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)  # dropout on the adapter's input
    target_modules: list[str] | str = "all-linear"  # the layers that get adapters (peft names)


class TrainConfig(BaseModel):
    """Options shared by every recipe, offline and online."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    model: str = "local"  # "local" (the embedded default) or a local transformers directory
    out: str | None = None  # output directory
    seed: int = 0  # seeds data order, sampling and initialisation
    max_prompt_length: int = Field(256, gt=0)  # prompt tokens kept (longer prompts are cut from the left)
    batch_size: int = Field(8, gt=0)  # examples (pairs for rm/dpo) per optimizer step, over all processes
    micro_batch_size: int = Field(8, gt=0)  # examples per forward pass on one process
    epochs: float = Field(1.0, gt=0)  # passes over the data (or the prompts)
    max_steps: int | None = Field(None, gt=0)  # optimizer steps; overrides epochs when set
    max_seconds: float | None = Field(None, gt=0)  # training-time budget; stops after the step that crosses it
    lr: float = Field(5e-6, gt=0)  # AdamW learning rate
    weight_decay: float = Field(0.0, ge=0)  # AdamW weight decay
    warmup_steps: int = Field(0, ge=0)  # optimizer steps of linear warm-up from 0
    lr_scheduler: Literal["constant", "linear", "cosine"] = "constant"  # after warm-up: constant or linear/cosine decay
    max_grad_norm: float | None = Field(1.0, gt=0)  # gradient-norm clipping (null: none)
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    gradient_checkpointing: Literal["auto", "on", "off"] = "auto"  # auto: on for CUDA
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: cuda when available
    fsdp: bool = False  # shard parameters across processes (CUDA, under torchrun / accelerate launch)
    lora: LoraConfig | None = None
    share_prompt: bool = True  # one row per prompt: its responses attend to the prompt, not to each other
    save_every: int = Field(50, gt=0)  # optimizer steps between resumable checkpoints
    log_every: int = Field(1, gt=0)  # optimizer steps between metrics.jsonl lines
    threads: int | None = Field(None, gt=0)  # torch CPU threads (default: torch's choice)
    resume: bool = True  # continue from OUT/checkpoint when it exists
    keep_checkpoint: bool = False  # keep OUT/checkpoint once the run is complete (to extend it later)

    @field_validator("gradient_checkpointing", mode="before")
    @classmethod
    def _on_off(cls, value: Any) -> Any:  # YAML reads on/off (and TRL's true/false) as booleans
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


class OfflineConfig(TrainConfig):
    """The offline recipes' preference data and its held-out split."""

    data: str | None = None  # JSONL file (rlaif records or any TRL-format file)
    eval_data: str | None = None  # a separate held-out file; else `eval_fraction` of `data`, split by prompt
    eval_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    max_length: int = Field(512, gt=8)  # prompt + response tokens
    group_by_length: bool = True  # batch examples of similar length (less padding)
    eval_every: int | None = Field(None, gt=0)  # steps between evaluations (always at the end)


class RMConfig(OfflineConfig):
    lr: float = Field(1e-5, gt=0)
    center_rewards_coef: float = Field(0.0, ge=0)
    soft_labels: bool = True  # use p_chosen as the target when a record has it
    margin_field: str | None = None  # a record field holding a margin for -log σ(r_c - r_r - margin)


class DPOConfig(OfflineConfig):
    beta: float = Field(0.1, gt=0)  # strength of the KL pull to the reference (higher: closer)
    loss_type: Literal["sigmoid", "ipo"] = "sigmoid"  # sigmoid (DPO) or ipo
    label_smoothing: float = Field(0.0, ge=0, lt=0.5)  # assumed share of flipped labels (conservative DPO)
    soft_labels: bool = True  # use p_chosen as the target when a record has it
    reference: str | None = None  # another model as the reference; default: the policy's starting weights


class KTOConfig(OfflineConfig):
    beta: float = Field(0.1, gt=0)  # strength of the KL pull to the reference
    desirable_weight: float = Field(1.0, gt=0)  # loss weight of desirable (label true) rows
    undesirable_weight: float = Field(1.0, gt=0)  # loss weight of undesirable rows
    reference: str | None = None


class OnlineConfig(TrainConfig):
    """Options of the online recipes: a step samples k responses for each of `batch_size` prompts with the
    current policy, scores them with the reward callable, and updates the policy `ppo_epochs` times over
    `minibatches` minibatches of those rows (one optimizer step per minibatch); share_prompt: a group's k
    responses share one copy of the prompt in the update's forwards."""

    prompts: str | None = None  # prompt JSONL (rlaif prompt records; constraints/reference fields go to the reward)
    prompts_offset: int = Field(0, ge=0)  # skip the first N prompts (--offset)
    prompts_limit: int | None = Field(None, gt=0)  # then read only N prompts (--limit); null: all the rest
    batch_size: int = Field(8, gt=0)  # prompts per step, over all processes (rows = batch_size · k)
    micro_batch_size: int = Field(8, gt=0)  # rows (responses) per forward pass on one process
    k: int = Field(4, gt=0)  # responses sampled per prompt
    max_new_tokens: int = Field(64, gt=0)
    temperature: float = Field(1.0, ge=0)  # sampling and log-prob temperature; 0 = greedy
    top_p: float = Field(1.0, gt=0, le=1)  # nucleus sampling (1: off)
    ppo_epochs: int = Field(1, gt=0)  # passes over each rollout batch
    minibatches: int = Field(1, gt=0)  # optimizer steps per pass
    beta: float = Field(0.05, ge=0)  # KL coefficient against the reference
    epsilon: float = Field(0.2, gt=0)  # clipping of the ratio (the lower side when epsilon_high is set)
    epsilon_high: float | None = Field(None, gt=0)  # the upper clip when set (DAPO's clip-higher, e.g. 0.28)
    reference: str | None = None  # another model as the reference; default: the policy's starting weights
    max_skipped_share: float = Field(0.5, ge=0, le=1)  # stop when more of a batch cannot be scored
    lr: float = Field(1e-6, gt=0)
    # the reward-hacking monitor (rl/hacking.py), when a gold reward is given (--gold-reward): never in the loss
    gold_fraction: float = Field(1.0, gt=0, le=1)  # share of each step's groups the gold source scores
    hacking_window: int = Field(5, gt=0)  # w: steps per smoothing window of the onset test
    hacking_z: float = Field(1.645, ge=0)  # the proxy's rise over a window must exceed z standard errors
    hacking_patience: int = Field(2, gt=0)  # consecutive steps the onset condition must hold
    stop_on_hacking: bool = False  # end the run at the onset (recorded in train_result.json)

    @model_validator(mode="after")
    def _groups(self) -> OnlineConfig:
        if self.minibatches > self.batch_size * self.k:
            raise ValueError(f"minibatches={self.minibatches} exceeds the rows of a step "
                             f"(batch_size·k = {self.batch_size * self.k})")
        return self


class PPOConfig(OnlineConfig):
    k: int = Field(1, gt=0)
    kl_estimator: Literal["k1", "k3"] = "k1"  # per-token KL penalty in the reward
    kl_target: float | None = Field(None, gt=0)  # set: adaptive β (Ziegler et al.) toward this sequence KL
    kl_horizon: int = Field(10000, gt=0)  # responses over which the adaptive β moves by up to 20%
    gamma: float = Field(1.0, ge=0, le=1)  # discount over tokens
    lam: float = Field(0.95, ge=0, le=1)  # GAE λ
    vf_coef: float = Field(0.1, ge=0)  # weight of the value loss
    value_clip: float = Field(0.2, gt=0)  # clipping of the value update
    entropy_coef: float = Field(0.0, ge=0)  # entropy bonus in the loss
    whiten_advantages: bool = True  # normalise the advantages over the batch
    missing_eos_penalty: float | None = Field(None, ge=0)  # subtracted from the score of a response with no EOS
    normalize_rewards: bool = False  # scores divided by a running std (and centered) before the KL penalty
    reward_clip: float | None = Field(None, gt=0)  # then clipped to ±reward_clip


class GroupConfig(OnlineConfig):
    """RLOO and GRPO: advantages relative to the other responses of the same prompt."""

    @model_validator(mode="after")
    def _two_per_group(self) -> GroupConfig:
        if self.k < 2:
            raise ValueError(f"k={self.k}: group baselines need k >= 2 responses per prompt")
        if self.temperature == 0:
            # greedy sampling gives a group k copies of one response: its advantages sum to 0 over identical
            # log-probs, so the gradient is 0 whatever the reward (even a noisy one); the run would learn nothing
            raise ValueError(f"temperature=0 samples greedily, so the k={self.k} responses to a prompt are all the "
                             "same, every group's rewards are equal, every advantage is 0 and nothing is learned. "
                             "Fix: set temperature=1.0 (the default, as TRL's) or another value above 0")
        return self


class RLOOConfig(GroupConfig):
    normalize_advantages: bool = False  # whiten the advantages over the batch (TRL's normalize_advantages)


class GRPOConfig(GroupConfig):
    beta: float = Field(0.04, ge=0)
    loss_type: Literal["grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo"] = "dapo"
    scale_rewards: Literal["group", "batch", "none"] = "group"
    importance_sampling_level: Literal["token", "sequence"] = "token"  # sequence: one ratio per response (GSPO)
    sapo_temperature_pos: float = Field(1.0, gt=0)  # loss_type=sapo: the gate's temperature where A > 0
    sapo_temperature_neg: float = Field(1.05, gt=0)  # ... and where A <= 0
    filter_zero_std_groups: bool = False  # leave groups whose rewards are all equal out of the loss (DAPO's filter)


CONFIGS: dict[str, type[TrainConfig]] = {"rm": RMConfig, "dpo": DPOConfig, "kto": KTOConfig, "ppo": PPOConfig,
                                         "rloo": RLOOConfig, "grpo": GRPOConfig}


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


def flat_dump(cfg: BaseModel) -> dict[str, Any]:
    """A config's values as users write them: the keys of a section it holds flat (`flat_sections`) at the top."""
    data = cfg.model_dump()
    for name in flat_sections(type(cfg)):
        data.update(data.pop(name))
    return data


def validate(recipe: str, data: dict[str, Any], source: str = "options",
             configs: dict[str, type[BaseModel]] | None = None) -> TrainConfig:
    """`data` as the config of `recipe` (one of `configs`, default the training recipes'); a ConfigError
    naming every bad key, with a hint for each unknown one."""
    configs = configs or CONFIGS
    model = configs[recipe]
    problems = []
    try:
        return model.model_validate(data)
    except ValidationError as e:
        for err in e.errors():
            loc = [str(x) for x in err["loc"]]
            if loc and loc[0] in flat_sections(model):  # a held section's key, written at the top level
                loc = loc[1:]
            key = ".".join(loc)
            if err["type"] == "extra_forbidden":
                hint = unknown_key_hint(recipe, loc, configs)
                problems.append(f"unknown key '{key}'" + (f" ({hint})" if hint else ""))
            elif not key:  # a check of the whole config, or across keys (e.g. k and minibatches)
                problems.append(str(err["msg"]).removeprefix("Value error, "))
            else:
                problems.append(f"key '{key}': {err['msg']} (got {err.get('input')!r})")
    known = ", ".join(sorted(config_keys(model)))
    if problems and all("Fix:" in p for p in problems):  # each check already says what to change
        raise ConfigError(f"bad {recipe} config in {source}: {'; '.join(problems)}") from None
    raise ConfigError(f"bad {recipe} config in {source}: {'; '.join(problems)}. "
                      f"Fix: the keys of a {recipe} config are: {known}") from None


def resolve_config(recipe: str, config: BaseModel | dict | None, overrides: dict[str, Any], *,
                   required: dict[str, str], configs: dict[str, type[BaseModel]] | None = None,
                   skip_none: bool = False) -> Any:
    """What a recipe's entry point was given as its config: a config object or a dict of keys, `overrides`
    on top (`skip_none`: an override of None is not given), validated; a ConfigError with the message of each
    `required` key left empty."""
    data = flat_dump(config) if isinstance(config, BaseModel) else dict(config or {})
    data.update({k: v for k, v in overrides.items() if not (skip_none and v is None)})
    cfg = validate(recipe, data, configs=configs)
    values = flat_dump(cfg)
    for key, message in required.items():
        if not values.get(key):
            raise ConfigError(message)
    return cfg
