"""Local training: reward models, DPO (soft labels, cDPO, IPO) and KTO from preference files; PPO, RLOO and
GRPO online, from prompts and a reward callable.

Losses are pure tensor functions (`losses.py`, `rl/losses.py`); each recipe (`rm.py`, `dpo.py`, `kto.py`,
`ppo.py`, `rloo.py`, `grpo.py`) reads top to bottom and runs on one engine (`engine.py`: the clock, resume,
metrics, the optimizer step, checkpoints) through a step source (offline: `offline.py`; online: the stages of
`rl/stages.py`), after a shared prelude (`prelude.py`; online: `rl/prelude.py`). Imports nothing from judges,
backends, call handling or API SDKs: the online recipes take the reward as a callable (`rlaif.rewards` builds
one from `--reward` specs).
"""
from __future__ import annotations

__all__ = ["train_rm", "train_dpo", "train_kto", "train_ppo", "train_rloo", "train_grpo", "RewardScorer",
           "load_config", "TrainResult", "RECIPES", "ONLINE_RECIPES"]

ONLINE_RECIPES = ("ppo", "rloo", "grpo")  # sample from prompts and need a reward function
RECIPES = ("rm", "dpo", "kto", *ONLINE_RECIPES)


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
    if name in ("train_ppo", "train_rloo", "train_grpo"):
        import importlib

        return getattr(importlib.import_module(f"rlaif.train.{name.removeprefix('train_')}"), name)
    if name == "RewardScorer":
        from rlaif.train.reward_model import RewardScorer
        return RewardScorer
    if name == "TrainResult":
        from rlaif.train.checkpoint import TrainResult
        return TrainResult
    if name == "load_config":
        from rlaif.train.config import load_config
        return load_config
    raise AttributeError(name)


def train(recipe: str, config=None, reward_fn=None, **overrides):
    """Run the recipe named `recipe` (one of RECIPES); the online ones need `reward_fn` (a `RewardFn`)."""
    from rlaif.errors import ConfigError

    if recipe not in RECIPES:
        raise ConfigError(f"unknown recipe {recipe!r}. Fix: use one of {', '.join(RECIPES)}")
    if recipe in ONLINE_RECIPES:
        return __getattr__(f"train_{recipe}")(config, reward_fn, **overrides)
    return __getattr__(f"train_{recipe}")(config, **overrides)
