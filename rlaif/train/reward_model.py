"""Score (prompt, response) pairs with a trained reward model: for judging and best-of-n selection.

    scorer = RewardScorer("runs/rm")
    scorer.score(["What is 2+2?"], ["4"])  # -> [1.83]

Plain torch + transformers; it tokenizes and computes exactly as training did (chat template, same truncation,
reward read at the response's last token, bf16 autocast where the model was trained under it), so scores mean
what the training loss made them mean.

A folder whose score head is not in the checkpoint (a causal LM's, e.g. the converted `local` model) is
refused: transformers would start the head from random weights, and every load would score differently.
`fingerprint` is a digest of the files' contents, computed once per load: the call cache keys scores by it,
so a model retrained into the same folder is never answered with the old model's scores.
"""
from __future__ import annotations

import hashlib
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
        # the precision it was trained in (train/runtime.py: auto is bf16 autocast on CUDA, fp32 on the CPU)
        precision = trained.get("precision", "auto")
        self.autocast = precision == "bf16" or (precision == "auto" and self.device.type == "cuda")
        self.fingerprint = weights_digest(path)
        self.tok = load_tokenizer(str(path))
        model = _load_trained_head(path, AutoModelForSequenceClassification)
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
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                values = self.model(batch).tolist()
            for i, v in zip(part, values, strict=True):
                scores[i] = float(v)
        return scores

    def best_of(self, prompt, responses: list[str]) -> int:
        """Index of the highest-scored response (best-of-n selection)."""
        scores = self.score([prompt] * len(responses), responses)
        return max(range(len(responses)), key=scores.__getitem__)


# What a score depends on: the weights, the config, and the tokenizer that makes the tokens.
_SCORED_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                 "chat_template.jinja")


def weights_digest(path: Path) -> str:
    """sha256 over the names and contents of a model folder's weight, config and tokenizer files."""
    files = sorted(f for f in path.iterdir() if f.is_file() and (f.suffix in (".safetensors", ".bin")
                                                                   or f.name in _SCORED_FILES))
    h = hashlib.sha256()
    for f in files:
        with f.open("rb") as fh:
            h.update(f"{f.name}\0".encode() + hashlib.file_digest(fh, "sha256").digest())
    return h.hexdigest()[:20]


def _load_trained_head(path: Path, auto_class):
    """The sequence-classification model, refused (`ConfigError`) when any of its weights, the score head
    above all, is missing from the checkpoint and would be initialised at random."""
    from transformers.utils import logging as hf_logging

    level, bar = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # the load report and bar are noise: a refusal says what matters
    hf_logging.disable_progress_bar()
    try:
        model, info = auto_class.from_pretrained(path, num_labels=1, output_loading_info=True)
    finally:
        hf_logging.set_verbosity(level)
        if bar:
            hf_logging.enable_progress_bar()
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ConfigError(f"{path} holds no trained reward model: the checkpoint lacks {shown}, so its score head "
                          "would start from random weights and score differently on every load (a causal LM's "
                          f"folder?). Fix: train a reward model on it, `rlaif train rm --data prefs.jsonl --model "
                          f"{path} -o runs/rm`, and pass runs/rm")
    return model
