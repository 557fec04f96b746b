"""vllm: needs CUDA and vllm; elsewhere it must refuse cleanly (never download, say what to do)."""
from __future__ import annotations

import importlib.util

import pytest

from rlaif.backends import get_backend
from rlaif.backends.base import Request
from rlaif.calls import complete_all
from rlaif.errors import ConfigError, MissingDependency


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def test_vllm_refuses_hub_ids_and_explains_missing_pieces(tiny_model_dir):
    with pytest.raises(ConfigError, match="never downloads"):
        get_backend("vllm:meta-llama/Llama-3.1-8B-Instruct")
    if importlib.util.find_spec("vllm") is not None and _cuda():
        pytest.skip("vllm and CUDA present: the GPU test below covers it")
    backend = get_backend(f"vllm:{tiny_model_dir}")
    with pytest.raises((MissingDependency, ConfigError), match="pip install 'rlaif\\[vllm\\]'|CUDA"):
        complete_all(backend, [Request(messages=[{"role": "user", "content": "hi"}])], cache=False, progress=False)


@pytest.mark.gpu
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None or not _cuda(), reason="needs vllm and a CUDA GPU")
def test_vllm_generates_with_logprobs():
    from rlaif.localmodel import local_model_dir

    backend = get_backend(f"vllm:{local_model_dir()}", gpu_memory_utilization=0.3, max_model_len=2048)
    reqs = [Request(messages=[{"role": "user", "content": "What is the capital of France?"}], max_tokens=16,
                    top_logprobs=3), Request(messages=[{"role": "user", "content": "Say hi."}], max_tokens=8)]
    res = complete_all(backend, reqs, cache=False, progress=False)
    assert "Paris" in res.completions[0].text and len(res.completions[0].top_logprobs[0]) == 3
    assert res.completions[1].output_tokens <= 8 and res.stats.attempts == 1
