"""OpenRLHF's remote reward contract (`POST /get_reward`) and how a response is cut from its `query`.

Request: `{"query": [...], "prompts": [...], "labels": [...]}`: `query[i]` is the prompt and the response as
one text (chat template and special tokens kept), `prompts[i]` the prompt text alone, `labels[i]` the
dataset's label (`--data.label_key`). Answer: `{"rewards": [...], "scores": [...], "extra_logs": {...}}`,
plus `errors` (why an item has a null reward; OpenRLHF ignores the key, `rlaif.rewards` reads it).

Cutting `query[i]` into prompt and response:

1. With `prompts[i]`: the response is what follows the prompt (`query` must start with it).
2. Without: the response is what follows the last assistant header of a known chat template: ChatML
   (`<|im_start|>assistant\\n`: SmolLM2, Qwen) or Llama 3 (`<|start_header_id|>assistant<|end_header_id|>\\n\\n`).
   Neither found is that item's error.

End-of-turn tokens after the response (`<|im_end|>`, `<|eot_id|>`, `<|endoftext|>`, `</s>`) and the
whitespace around them are dropped. The prompt text becomes chat messages again: the ChatML or Llama 3
turns when it has them, else the whole text (stripped) as one user message.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

_END_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|endoftext|>", "</s>", "<|end_of_text|>")
_ASSISTANT = ("<|im_start|>assistant\n", "<|start_header_id|>assistant<|end_header_id|>\n\n")
_CHATML_TURN = re.compile(r"<\|im_start\|>(\w+)\n(.*?)(?:<\|im_end\|>|$)", re.S)
_LLAMA3_TURN = re.compile(r"<\|start_header_id\|>(\w+)<\|end_header_id\|>\n\n(.*?)(?:<\|eot_id\|>|$)", re.S)


@dataclass
class Cut:
    """One query cut into the prompt (as chat messages) and the response; `error` when it cannot be."""

    messages: list[dict]
    response: str
    error: str | None = None


def strip_end(response: str) -> str:
    text = response.rstrip()
    changed = True
    while changed:
        changed = False
        for tok in _END_TOKENS:
            if text.endswith(tok):
                text, changed = text[: -len(tok)].rstrip(), True
    return text


def prompt_messages(prompt: str) -> list[dict]:
    """The chat messages of a rendered prompt (an empty trailing assistant header is dropped)."""
    for pattern in (_CHATML_TURN, _LLAMA3_TURN):
        turns = [{"role": role, "content": content.strip()} for role, content in pattern.findall(prompt)]
        if turns:
            if turns[-1]["role"] == "assistant" and not turns[-1]["content"]:
                turns.pop()
            if turns:
                return turns
    return [{"role": "user", "content": prompt.strip()}]


def cut_query(query: str, prompt: str | None) -> Cut:
    if prompt is not None:
        if not query.startswith(prompt):
            return Cut([], "", "query does not start with its prompt (prompts[i]); send query = prompt + response")
        return Cut(prompt_messages(prompt), strip_end(query[len(prompt):]))
    at = max((query.rfind(m) + len(m) if m in query else -1) for m in _ASSISTANT)
    if at < 0:
        return Cut([], "", "no prompts given and no assistant header of a known chat template (ChatML, Llama 3) "
                           "in query: send prompts, so the response is what follows the prompt")
    return Cut(prompt_messages(query[:at]), strip_end(query[at:]))


def label_metadata(label: object) -> dict:
    """What a label tells the scorers: a dict as it is, a list (or its JSON) as constraints, text as the
    reference answer."""
    if isinstance(label, str) and label.lstrip().startswith(("[", "{")):
        try:
            label = json.loads(label)
        except ValueError:
            pass
    if isinstance(label, dict):
        return dict(label)
    if isinstance(label, list):
        return {"constraints": label}
    if label is None:
        return {}
    return {"label": label, "reference": str(label)}
