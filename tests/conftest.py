"""Shared fixtures: paths to the shared real data, a tiny random Llama with the SmolLM2 tokenizer."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the shared helpers import by bare name (`from fakeserver import ...`, `python:reward_helpers:...` specs)
sys.path.insert(0, str(ROOT / "tests" / "support"))
SHARED_DATA = Path(os.environ.get("RLAIF_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own call cache; the converted default model stays shared."""
    home_cache = Path(os.environ.get("RLAIF_CACHE") or Path.home() / ".cache" / "rlaif")
    monkeypatch.setenv("RLAIF_MODEL_CACHE", str(home_cache / "models"))
    monkeypatch.setenv("RLAIF_CACHE", str(tmp_path_factory.mktemp("rlaif-cache")))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def smol_tokenizer():
    from transformers import AutoTokenizer

    from rlaif.localmodel import local_model_dir

    return AutoTokenizer.from_pretrained(local_model_dir())


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, smol_tokenizer) -> Path:
    """A tiny randomly initialized Llama (2 layers, 64 wide) saved with the SmolLM2 tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tok = smol_tokenizer
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(cfg)
    d = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def tiny_rm_dir(tmp_path_factory, smol_tokenizer):
    """A tiny random reward model (LlamaForSequenceClassification, one label) as `rlaif train rm` saves one."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(0)
    tok = smol_tokenizer
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512, num_labels=1,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    d = tmp_path_factory.mktemp("tiny-rm")
    LlamaForSequenceClassification(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return d
