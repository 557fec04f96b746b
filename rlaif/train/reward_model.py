"""Score (prompt, response) pairs with a trained reward model: for judging and best-of-n selection.

    scorer = RewardScorer("runs/rm")
    scorer.score(["What is 2+2?"], ["4"])  # -> [1.83]

Plain torch + transformers; it tokenizes exactly as training did (chat template, same truncation,
reward read at the response's last token), so scores mean what the training loss made them mean.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from rlaif.errors import ConfigError
from rlaif.train.batching import collate
from rlaif.train.modeling import SequenceRewards, load_tokenizer
from rlaif.train.tokenize import ChatTokenizer


class RewardScorer:
    def __init__(self, path: str | Path, *, device: str | None = None, batch_size: int = 8,
                 max_length: int | None = None, max_prompt_length: int | None = None):
        from transformers import AutoModelForSequenceClassification

        path = Path(path)
        if not (path / "config.json").exists():
            raise ConfigError(f"{path} holds no saved model (no config.json). Fix: pass the -o directory of "
                              "`rlaif train rm`")
        trained = {}
        if (path / "train_result.json").exists():
            trained = json.loads((path / "train_result.json").read_text()).get("config", {})
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.tok = load_tokenizer(str(path))
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
        if model.config.num_labels != 1:
            raise ConfigError(f"{path} is not a reward model (num_labels={model.config.num_labels}). "
                              "Fix: train one with `rlaif train rm`")
        self.model = SequenceRewards(model).to(self.device).eval()
        self.encoder = ChatTokenizer(self.tok, max_length or trained.get("max_length", 512),
                                     max_prompt_length or trained.get("max_prompt_length", 256))
        self.batch_size = batch_size

    @torch.no_grad()
    def score(self, prompts: list, responses: list[str]) -> list[float]:
        """One reward per (prompt, response); prompts are strings or chat message lists."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        items = []
        for p, r in zip(prompts, responses, strict=True):
            pm = [{"role": "user", "content": p}] if isinstance(p, str) else list(p)
            rm = [{"role": "assistant", "content": r}] if isinstance(r, str) else list(r)
            items.append(self.encoder(pm, [rm]))
        order = sorted(range(len(items)), key=lambda i: -len(items[i].prompt) - len(items[i].completions[0]))
        scores = [0.0] * len(items)
        for s in range(0, len(order), self.batch_size):
            part = order[s:s + self.batch_size]
            batch = collate([items[i] for i in part], self.tok.pad_token_id, share_prompt=False).to(self.device)
            for i, v in zip(part, self.model(batch).tolist(), strict=True):
                scores[i] = float(v)
        return scores

    def best_of(self, prompt, responses: list[str]) -> int:
        """Index of the highest-scored response (best-of-n selection)."""
        scores = self.score([prompt] * len(responses), responses)
        return max(range(len(responses)), key=scores.__getitem__)
