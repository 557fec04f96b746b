"""The planted reward of the online-RL tests, and their prompt files.

`space_share`: the share of a response's tokens (SmolLM2 tokenizer) whose text starts with a space. A tiny
random model samples nearly uniformly over the vocabulary, so a single marker token is out of its reach (about
1 in 49k); tokens that start a word are about two thirds of the vocabulary, so the reward starts near 0.65
with real spread between samples, and the policy can push it towards 1 in a few steps.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

WORDS = "apple river stone cloud green quick silent bright north paper window garden".split()


@lru_cache(maxsize=1)
def _tokenizer():
    from transformers import AutoTokenizer

    from rlaif.localmodel import local_model_dir

    return AutoTokenizer.from_pretrained(local_model_dir())


def _texts(completions) -> list[str]:
    return [c if isinstance(c, str) else c[0]["content"] for c in completions]


def space_share(prompts, completions, **kwargs):
    """TRL's reward-function convention: keyword arguments, the prompt file's fields among them."""
    tok = _tokenizer()
    out = []
    for text in _texts(completions):
        ids = tok(text, add_special_tokens=False).input_ids
        out.append(sum(tok.decode([i]).startswith(" ") for i in ids) / len(ids) if ids else 0.0)
    return out


def half_unscored(prompts, completions, skip=None, **kwargs):
    """None for the prompts flagged `skip` in the prompt file: their responses cannot be scored."""
    return [None if s else 1.0 for s in (skip or [None] * len(completions))]


def write_prompts(path: Path, n: int = 16, skip_every: int = 0) -> Path:
    with path.open("w") as f:
        for i in range(n):
            row = {"prompt_id": f"p{i}", "prompt": f"Say something about {WORDS[i % len(WORDS)]} number {i}."}
            if skip_every and i % skip_every == 0:
                row["skip"] = True
            f.write(json.dumps(row) + "\n")
    return path


def word_starts_penalized(prompts, completions, **kwargs):
    """The gold of the planted hacking case: 1 - space_share, so every gain of the proxy is a loss of gold."""
    return [1.0 - v for v in space_share(prompts, completions)]


def word_starts_noisy(prompts, completions, **kwargs):
    """An aligned gold: space_share plus noise that does not depend on the response (seeded by its text)."""
    import random

    return [v + random.Random(text).uniform(-0.05, 0.05)
            for v, text in zip(space_share(prompts, completions), _texts(completions), strict=True)]


def trl_distinct_ids(prompts, completions, completion_ids, prompt_id, **kwargs):
    """A TRL reward function as TRL users write them (keyword arguments; `completion_ids`, a dataset column):
    the share of distinct token ids in each completion. It checks what it is given, and raises (so the rows go
    unscored and the run stops) when the call is not TRL's: string prompts from a string prompt file, ids that
    decode to the completion, one prompt_id per completion."""
    tok = _tokenizer()
    assert all(isinstance(p, str) for p in prompts) and len(prompt_id) == len(completions), (prompts, prompt_id)
    for text, ids in zip(completions, completion_ids, strict=True):
        assert tok.decode(ids, skip_special_tokens=True) == text, (ids, text)
    return [len(set(ids)) / len(ids) if ids else 0.0 for ids in completion_ids]


async def trl_async_words(prompts, completions, **kwargs):
    """An `async def` TRL reward function: words per completion over 10, None for an empty one (unscored)."""
    import asyncio

    await asyncio.sleep(0)
    return [len(c.split()) / 10 if c.strip() else None for c in completions]
