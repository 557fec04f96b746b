"""Training data: rlaif Preference / KTORecord JSONL or any TRL-format file, normalized to messages.

TRL's shapes are accepted as they are: prompt/chosen/rejected as strings or message
lists, and the "implicit prompt" shape where chosen and rejected are whole
conversations that share their opening turns. A KTO recipe also accepts a
preference file (chosen → desirable, rejected → undesirable).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rlaif.errors import InputError
from rlaif.records import KTORecord, Preference, iter_json_lines, stable_id

Messages = list[dict[str, Any]]


@dataclass
class Example:
    """One training example: a prompt and one (KTO) or two (chosen, rejected) completions."""

    prompt: Messages
    completions: list[Messages]
    line: int  # line in the source file, for messages
    p_chosen: float | None = None  # soft label (pairs)
    margin: float | None = None  # reward-model margin (pairs)
    desirable: bool | None = None  # KTO label
    prompt_key: str = field(default="")


def _messages(value: Any, role: str) -> Messages:
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    return [dict(m) for m in value]


def _split_implicit(obj: dict) -> dict:
    """TRL's implicit-prompt shape: chosen/rejected are full conversations; the prompt is their shared opening."""
    chosen, rejected = obj.get("chosen"), obj.get("rejected")
    if "prompt" in obj or not (isinstance(chosen, list) and isinstance(rejected, list)):
        return obj
    n = 0
    while n < min(len(chosen), len(rejected)) - 1 and chosen[n] == rejected[n]:
        n += 1
    if n == 0:
        raise ValueError("no 'prompt' field and chosen/rejected share no opening messages")
    return {**obj, "prompt": chosen[:n], "chosen": chosen[n:], "rejected": rejected[n:]}


_PAIR_FIX = ('each line needs "prompt", "chosen", "rejected" (strings or message lists), '
             'optionally "p_chosen" in [0, 1]')
_KTO_FIX = 'each line needs "prompt", "completion" (strings or message lists) and "label" (true/false)'


def _check_completion(path, n, msgs: Messages, name: str) -> None:
    if not msgs or any(not isinstance(m, dict) or "role" not in m or "content" not in m for m in msgs):
        raise InputError(path, n, f"'{name}' must be a string or a non-empty list of {{role, content}} messages",
                         _PAIR_FIX)


def load_pairs(path: str | Path, margin_field: str | None = None) -> list[Example]:
    """Read a preference file (rlaif Preference lines or TRL's paired formats)."""
    out = []
    for n, obj in iter_json_lines(path):
        try:
            rec = Preference.model_validate(_split_implicit(obj))
        except (ValidationError, ValueError) as e:
            problem = e.errors()[0]["msg"] if isinstance(e, ValidationError) else str(e)
            loc = ".".join(str(x) for x in e.errors()[0]["loc"]) if isinstance(e, ValidationError) else ""
            raise InputError(path, n, f"not a preference record ({loc + ': ' if loc else ''}{problem})",
                             _PAIR_FIX) from None
        prompt = _messages(rec.prompt, "user")
        chosen, rejected = _messages(rec.chosen, "assistant"), _messages(rec.rejected, "assistant")
        _check_completion(path, n, chosen, "chosen")
        _check_completion(path, n, rejected, "rejected")
        margin = None
        if margin_field:
            raw = obj.get(margin_field)
            if not isinstance(raw, int | float) or isinstance(raw, bool):
                raise InputError(path, n, f"field '{margin_field}' (the margin) is missing or not a number",
                                 "give every line a numeric margin, or drop margin_field")
            margin = float(raw)
        out.append(Example(prompt, [chosen, rejected], n, p_chosen=rec.p_chosen, margin=margin,
                           prompt_key=stable_id(prompt)))
    if not out:
        raise InputError(path, None, "the file holds no preference pairs", _PAIR_FIX)
    return out


def load_unpaired(path: str | Path) -> list[Example]:
    """Read a KTO file ({prompt, completion, label}); a preference file is unpaired into two examples."""
    out = []
    for n, obj in iter_json_lines(path):
        if "chosen" in obj and "completion" not in obj:
            out.extend(load_pairs_from_obj(path, n, obj))
            continue
        try:
            rec = KTORecord.model_validate(obj)
        except ValidationError as e:
            err = e.errors()[0]
            raise InputError(path, n, f"not a KTO record ({'.'.join(map(str, err['loc']))}: {err['msg']})",
                             _KTO_FIX) from None
        prompt = _messages(rec.prompt, "user")
        completion = _messages(rec.completion, "assistant")
        _check_completion(path, n, completion, "completion")
        out.append(Example(prompt, [completion], n, desirable=rec.label, prompt_key=stable_id(prompt)))
    if not out:
        raise InputError(path, None, "the file holds no examples", _KTO_FIX)
    return out


def load_pairs_from_obj(path, n: int, obj: dict) -> list[Example]:
    try:
        rec = Preference.model_validate(_split_implicit(obj))
    except (ValidationError, ValueError) as e:
        raise InputError(path, n, f"not a preference record ({e})", _PAIR_FIX) from None
    prompt = _messages(rec.prompt, "user")
    key = stable_id(prompt)
    return [Example(prompt, [_messages(rec.chosen, "assistant")], n, desirable=True, prompt_key=key),
            Example(prompt, [_messages(rec.rejected, "assistant")], n, desirable=False, prompt_key=key)]


def split_by_prompt(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Hold out `fraction` of the distinct prompts (all their examples), so no prompt is in both splits."""
    if fraction <= 0:
        return examples, []
    keys = sorted({e.prompt_key for e in examples})
    if len(keys) < 2:
        return examples, []
    random.Random(seed).shuffle(keys)
    n_eval = min(len(keys) - 1, max(1, round(fraction * len(keys))))
    held = set(keys[:n_eval])
    return [e for e in examples if e.prompt_key not in held], [e for e in examples if e.prompt_key in held]


def mismatched_partners(n: int, seed: int) -> list[int]:
    """A fixed derangement: example i borrows the completion of partner[i] (≠ i) for KTO's KL estimate.

    Fixed once per run so the reference log-probs of these pairs can be cached with the rest."""
    if n < 2:
        return [0] * n
    order = list(range(n))
    random.Random(seed + 7).shuffle(order)
    partner = [0] * n
    for k, i in enumerate(order):  # a cycle through a random order never maps i to itself
        partner[i] = order[(k + 1) % n]
    return partner
