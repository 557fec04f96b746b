"""Local training from preference files: reward models, DPO (soft labels, cDPO, IPO) and KTO.

Losses are pure tensor functions (`losses.py`); each recipe (`rm.py`, `dpo.py`, `kto.py`) reads top
to bottom and shares the prelude, batching, reference log-probs, the step loop and checkpoints
(`common.py`, `batching.py`, `reference.py`, `loop.py`, `checkpoint.py`).
Imports nothing from judges, backends, call handling or API SDKs.
"""
from __future__ import annotations

__all__ = ["train_rm", "train_dpo", "train_kto", "RewardScorer", "load_config", "TrainResult", "RECIPES"]

RECIPES = ("rm", "dpo", "kto")


def __getattr__(name: str):  # torch is imported only when a recipe is used
    if name == "train_rm":
        from rlaif.train.rm import train_rm
        return train_rm
    if name == "train_dpo":
        from rlaif.train.dpo import train_dpo
        return train_dpo
    if name == "train_kto":
        from rlaif.train.kto import train_kto
        return train_kto
    if name == "RewardScorer":
        from rlaif.train.reward import RewardScorer
        return RewardScorer
    if name == "TrainResult":
        from rlaif.train.checkpoint import TrainResult
        return TrainResult
    if name == "load_config":
        from rlaif.train.config import load_config
        return load_config
    raise AttributeError(name)


def train(recipe: str, config=None, **overrides):
    """Run the recipe named `recipe` ("rm", "dpo" or "kto")."""
    from rlaif.errors import ConfigError

    if recipe not in RECIPES:
        raise ConfigError(f"unknown recipe {recipe!r}. Fix: use one of {', '.join(RECIPES)}")
    return __getattr__(f"train_{recipe}")(config, **overrides)
