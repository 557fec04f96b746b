"""The prelude every recipe runs in the same order: config, OUT (its lock and config.yaml), runtime, seed, data,
tokens, model. `Run` is what every prelude returns (the online one, `rl/prelude.py`, adds prompts, policy and
reference to it); the offline recipes' `start_recipe` is here."""
from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
import yaml
from torch import nn

from rlaif.outlock import OutputLock
from rlaif.records import write_text
from rlaif.train.checkpoint import RunComplete, finished_run
from rlaif.train.config import OfflineConfig, TrainConfig, resolve_config
from rlaif.train.data import Example, split_by_prompt
from rlaif.train.modeling import attention_supports_shared_prompt, load_model, load_tokenizer, model_path
from rlaif.train.runtime import Runtime, setup
from rlaif.train.tokenize import ChatTokenizer, Tokenized

T = TypeVar("T")


def output_dir(cfg: TrainConfig, recipe: str) -> Path:
    """OUT, made, with the resolved config in OUT/config.yaml. Raises `RunComplete` when OUT holds this run
    finished (see `finished_run`), before anything in OUT is touched."""
    out = Path(cfg.out)
    done = finished_run(out, cfg)
    if done is not None:
        raise RunComplete(done)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "config.yaml",  # atomic: every process of a multi-process run writes the same text
               f"# resolved {recipe} config of this run\n" + yaml.safe_dump(cfg.model_dump(), sort_keys=False))
    return out


def returns_finished_run(entry: Callable[..., Any]) -> Callable[..., Any]:
    """A recipe entry point that returns the saved result (with a note on stderr) when OUT holds the run finished."""
    @functools.wraps(entry)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return entry(*args, **kwargs)
        except RunComplete as done:
            if int(os.environ.get("RANK", "0")) == 0:
                print(f"{done.result.out_dir} holds this run, finished: nothing to train (resume=false trains it "
                      "again from scratch)", file=sys.stderr)
            return done.result

    return wrapper


def lock_output_dir(out: Path) -> OutputLock | None:
    """One run per OUT (a second one would interleave checkpoints and metrics): the main process holds the
    lock for as long as the recipe's Run lives (the kernel drops it if the process dies). Taken before
    the runtime starts, so the rank is read from torchrun's environment."""
    if int(os.environ.get("RANK", "0")) != 0:
        return None
    return OutputLock(out, directory=True).acquire()


def prepare_locked(out: Path, prepare: Callable[[OutputLock | None], T]) -> T:
    """`prepare(lock)` under OUT's lock; the lock is released if preparing fails (the run holds it otherwise)."""
    lock = lock_output_dir(out)
    try:
        return prepare(lock)
    except BaseException:
        if lock is not None:
            lock.release()
        raise


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    torch.manual_seed(seed)


def train_eval_split(cfg: OfflineConfig, load: Callable[[str], list[Example]]) -> tuple[list[Example], list[Example]]:
    examples = load(cfg.data)
    if cfg.eval_data:
        return examples, load(cfg.eval_data)
    return split_by_prompt(examples, cfg.eval_fraction, cfg.seed)


def encode_all(encoder: ChatTokenizer, examples: list[Example]) -> list[Tokenized]:
    return [encoder(e.prompt, e.completions) for e in examples]


@dataclass
class Run:
    """What a recipe's prelude set up: its config and where it runs, the tokenizer, OUT's writer lock. A run is
    used in a `with` block: leaving it releases the lock (the recipe is done with OUT)."""

    recipe: str
    cfg: Any  # the recipe's TrainConfig subclass
    out: Path
    rt: Runtime
    model_path: str
    tok: Any  # a transformers tokenizer
    lock: OutputLock | None = field(default=None, kw_only=True)  # OUT's writer lock (main process)

    @property
    def pad_id(self) -> int:
        return self.tok.pad_token_id

    def close(self) -> None:
        """The recipe is done with OUT: release its writer lock."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class RecipeRun(Run):
    """An offline recipe's run: the data as examples and as tokens, and the (unwrapped) model to train."""

    encoder: ChatTokenizer
    train_ex: list[Example]
    eval_ex: list[Example]
    items: list[Tokenized]
    eval_items: list[Tokenized]
    model: nn.Module
    share: bool  # one row per prompt, its responses sharing it (when the attention implementation allows)


def start_recipe(recipe: str, config: OfflineConfig | dict | None, overrides: dict[str, Any],
                 load: Callable[[OfflineConfig, str], list[Example]], head: str) -> RecipeRun:
    """Resolve the config, write it to OUT, start the runtime, seed, read and split the data, tokenize it
    and load the model (`head`: "causal" or "reward"; seeded first, so a new head is the same on every process).

    `load(cfg, file)` reads one data file."""
    cfg = resolve_config(recipe, config, overrides, required={
        "data": f"no training data given. Fix: pass --data FILE (or data: in the {recipe} config)",
        "out": "no output directory given. Fix: pass -o OUTDIR (or out: in the config)"})
    return prepare_locked(Path(cfg.out), lambda lock: _prepare(recipe, cfg, load, head, lock))


def _prepare(recipe: str, cfg: OfflineConfig, load: Callable[[OfflineConfig, str], list[Example]], head: str,
             lock: OutputLock | None) -> RecipeRun:
    out = output_dir(cfg, recipe)
    rt = setup(cfg)
    seed_everything(cfg.seed)
    path = model_path(cfg.model)
    tok = load_tokenizer(path)
    train_ex, eval_ex = train_eval_split(cfg, lambda file: load(cfg, file))
    encoder = ChatTokenizer(tok, cfg.max_length, cfg.max_prompt_length)
    model = load_model(path, head, tok, cfg.lora, rt.gradient_checkpointing)
    share = cfg.share_prompt and attention_supports_shared_prompt(model)
    return RecipeRun(recipe, cfg, out, rt, path, tok, encoder, train_ex, eval_ex, encode_all(encoder, train_ex),
                     encode_all(encoder, eval_ex), model, share, lock=lock)
