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


# what each lazily imported name is defined in (a module of rlaif.train)
_LAZY = {"train_rm": "rm", "train_dpo": "dpo", "train_kto": "kto", "train_ppo": "ppo", "train_rloo": "rloo",
         "train_grpo": "grpo", "RewardScorer": "reward_model", "TrainResult": "checkpoint", "load_config": "config"}


def __getattr__(name: str):  # torch is imported only when a recipe is used
    if name not in _LAZY:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(f"rlaif.train.{_LAZY[name]}"), name)


def train(recipe: str, config=None, reward_fn=None, gold_fn=None, **overrides):
    """Run the recipe named `recipe` (one of RECIPES); the online ones need `reward_fn` (a `RewardFn`) and take
    an optional `gold_fn`, the reward-hacking monitor's gold source."""
    from rlaif.errors import ConfigError

    if recipe not in RECIPES:
        raise ConfigError(f"unknown recipe {recipe!r}. Fix: use one of {', '.join(RECIPES)}")
    if recipe in ONLINE_RECIPES:
        return __getattr__(f"train_{recipe}")(config, reward_fn, gold_fn, **overrides)
    if gold_fn is not None:
        raise ConfigError(f"--gold-reward is for the online recipes ({', '.join(ONLINE_RECIPES)}), not {recipe}")
    return __getattr__(f"train_{recipe}")(config, **overrides)
