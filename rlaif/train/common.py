"""Set-up steps every recipe takes in the same order: config, output dir, runtime, data, tokens."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml

from rlaif.errors import ConfigError
from rlaif.records import write_text
from rlaif.train.config import TrainConfig, validate
from rlaif.train.data import Example, split_by_prompt
from rlaif.train.tokenize import ChatTokenizer, Tokenized


def resolve_config(recipe: str, config: TrainConfig | dict | None, overrides: dict[str, Any]) -> TrainConfig:
    if isinstance(config, TrainConfig):
        data = config.model_dump()
    else:
        data = dict(config or {})
    data.update(overrides)
    cfg = validate(recipe, data)
    if not cfg.data:
        raise ConfigError(f"no training data given. Fix: pass --data FILE (or data: in the {recipe} config)")
    if not cfg.out:
        raise ConfigError("no output directory given. Fix: pass -o OUTDIR (or out: in the config)")
    return cfg


def output_dir(cfg: TrainConfig, recipe: str) -> Path:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "config.yaml",  # atomic: every process of a multi-process run writes the same text
               f"# resolved {recipe} config of this run\n" + yaml.safe_dump(cfg.model_dump(), sort_keys=False))
    return out


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    torch.manual_seed(seed)


def train_eval_split(cfg: TrainConfig, load: Callable[[str], list[Example]]) -> tuple[list[Example], list[Example]]:
    examples = load(cfg.data)
    if cfg.eval_data:
        return examples, load(cfg.eval_data)
    return split_by_prompt(examples, cfg.eval_fraction, cfg.seed)


def encode_all(encoder: ChatTokenizer, examples: list[Example]) -> list[Tokenized]:
    return [encoder(e.prompt, e.completions) for e in examples]
