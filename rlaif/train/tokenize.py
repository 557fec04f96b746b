"""Tokenization with the model's chat template: prompt tokens masked, one BOS, one EOS, safe truncation.

The prompt is rendered with `add_generation_prompt=True`; the completion's tokens are
what the template adds after it (so the model is trained on exactly what it would
generate, end-of-turn marker included). Both parts are tokenized with
add_special_tokens=False, because the template already wrote BOS where the model
wants it: that is how a doubled BOS is avoided.

Truncation never cuts inside a special marker: the prompt is shortened by dropping
its oldest turns (the system message stays), then by cutting the *text* of the
last turn from the left and re-rendering, so every template marker is rendered
whole; a completion is cut from the right inside its text and then loses its
end-of-turn suffix entirely rather than keeping half of it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from rlaif.errors import ConfigError
from rlaif.scoring import Messages


@dataclass
class Tokenized:
    prompt: list[int]
    completions: list[list[int]]

    @property
    def lengths(self) -> list[int]:
        return [len(self.prompt) + len(c) for c in self.completions]


class ChatTokenizer:
    """Turns (prompt messages, completion messages) into token ids for one tokenizer."""

    def __init__(self, tokenizer, max_length: int, max_prompt_length: int):
        if max_prompt_length >= max_length:
            raise ConfigError(f"max_prompt_length ({max_prompt_length}) must be below max_length ({max_length}). "
                              "Fix: lower max_prompt_length or raise max_length")
        self.tok = tokenizer
        self.max_length, self.max_prompt_length = max_length, max_prompt_length
        self.has_template = bool(getattr(tokenizer, "chat_template", None))
        self._rendered: dict[str, str] = {}  # prompt (as JSON) -> its rendering with the generation prompt
        self.bos, self.eos = tokenizer.bos_token_id, tokenizer.eos_token_id
        probe = tokenizer("a", add_special_tokens=True)["input_ids"]
        self.wants_bos = self.bos is not None and bool(probe) and probe[0] == self.bos

    # ---- rendering -------------------------------------------------------------------------------
    def _encode(self, text: str) -> list[int]:
        return list(self.tok(text, add_special_tokens=False)["input_ids"])

    def _prompt_text(self, prompt: Messages) -> str:
        if not self.has_template:
            return "\n\n".join(str(m["content"]) for m in prompt) + "\n\n"
        # memoized: every item renders its prompt twice (alone, and as the prefix of the full chat), and a
        # prompt's k responses or both sides of a pair share it; a template render costs ~20 µs, the key ~2
        key = json.dumps(prompt, sort_keys=True, ensure_ascii=False, default=str)
        text = self._rendered.get(key)
        if text is None:
            if len(self._rendered) >= 4096:
                self._rendered.clear()
            text = self._rendered[key] = self.tok.apply_chat_template(prompt, add_generation_prompt=True,
                                                                       tokenize=False)
        return text

    def prompt_ids(self, prompt: Messages) -> list[int]:
        ids = self._encode(self._prompt_text(prompt))
        if self.wants_bos and (not ids or ids[0] != self.bos):
            ids = [self.bos] + ids
        while self.bos is not None and len(ids) > 1 and ids[0] == self.bos and ids[1] == self.bos:
            ids = ids[1:]
        return ids

    def completion_ids(self, prompt: Messages, completion: Messages) -> tuple[list[int], int]:
        """Completion ids and where its end-of-turn suffix starts (the suffix is kept whole or dropped)."""
        text = None
        if self.has_template:
            p = self._prompt_text(prompt)
            full = self.tok.apply_chat_template(prompt + completion, tokenize=False)
            if full.startswith(p):
                text = full[len(p):]
        if text is None:  # no template, or one whose rendering of the prompt is not a prefix
            text = "".join(str(m["content"]) for m in completion)
        ids = self._encode(text)
        if self.eos is not None and self.eos not in ids:
            ids.append(self.eos)
        while len(ids) > 1 and ids[-1] == ids[-2] == self.eos:
            ids.pop()
        cut = len(ids) - 1 - ids[::-1].index(self.eos) if self.eos in ids else len(ids)
        return ids, cut

    # ---- truncation ------------------------------------------------------------------------------
    def _fit_prompt(self, prompt: Messages) -> list[int]:
        ids = self.prompt_ids(prompt)
        if len(ids) <= self.max_prompt_length:
            return ids
        msgs = list(prompt)
        system = msgs[:1] if msgs and msgs[0].get("role") == "system" else []
        rest = msgs[len(system):]
        while len(rest) > 1:  # drop whole turns, oldest first
            rest = rest[1:]
            ids = self.prompt_ids(system + rest)
            if len(ids) <= self.max_prompt_length:
                return ids
        for head in ([*system], []):  # then cut the last turn's text from the left; drop a long system last
            ids = self._cut_text_left(head, rest[-1] if rest else None)
            if ids is not None:
                return ids
        raise ConfigError(f"max_prompt_length={self.max_prompt_length} cannot hold even an empty prompt in this "
                          "chat template. Fix: raise max_prompt_length")

    def _cut_text_left(self, head: Messages, last: dict | None) -> list[int] | None:
        if last is None:
            ids = self.prompt_ids(head)
            return ids if len(ids) <= self.max_prompt_length else None
        content = self._encode(str(last["content"]))

        def render(k: int) -> list[int]:
            text = self.tok.decode(content[len(content) - k:]) if k else ""
            return self.prompt_ids(head + [{**last, "content": text}])

        if len(render(0)) > self.max_prompt_length:
            return None
        lo, hi = 0, len(content)  # largest k whose rendering fits (binary search: decode/encode may shift by one)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if len(render(mid)) <= self.max_prompt_length:
                lo = mid
            else:
                hi = mid - 1
        return render(lo)

    @staticmethod
    def _cut_completion(ids: list[int], suffix_at: int, budget: int) -> list[int]:
        if len(ids) <= budget:
            return ids
        # cut inside the text; the end-of-turn suffix is never kept in part (one token at least survives)
        return ids[:max(1, min(budget, suffix_at))]

    def __call__(self, prompt: Messages, completions: list[Messages]) -> Tokenized:
        p = self._fit_prompt(prompt)
        budget = self.max_length - len(p)
        outs = []
        for c in completions:
            ids, suffix_at = self.completion_ids(prompt, c)
            outs.append(self._cut_completion(ids, suffix_at, budget))
        return Tokenized(p, outs)
