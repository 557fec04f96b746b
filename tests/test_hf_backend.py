"""The hf and local backends: real transformers generation, batching, first-token log-probs, offline only."""
from __future__ import annotations

import pytest

from rlaif.backends import get_backend
from rlaif.backends.base import Request
from rlaif.calls import complete_all
from rlaif.errors import ConfigError


def req(text: str, **kw) -> Request:
    return Request(messages=[{"role": "user", "content": text}], **kw)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    import torch

    torch.set_num_threads(1)  # 2 shared cores: a second OpenMP thread makes small models 10x slower
    return get_backend(f"hf:{tiny_model_dir}", batch_size=4)


def test_batched_greedy_generation_matches_one_by_one(tiny):
    prompts = ["Hello there", "Name a colour.", "What is two plus two?"]
    batched = complete_all(tiny, [req(p, max_tokens=6) for p in prompts], cache=False, progress=False)
    singles = [complete_all(tiny, [req(p, max_tokens=6)], cache=False, progress=False).completions[0]
               for p in prompts]
    assert [c.text for c in batched.completions] == [c.text for c in singles]
    for c in batched.completions:
        assert c.output_tokens == 6 and c.finish_reason == "length" and c.input_tokens > 5
    assert batched.stats.attempts == 1  # three requests, one batch


def test_first_token_logprobs_equal_a_manual_forward_pass(tiny, tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    r = req("Is the sky blue? Answer A or B.", max_tokens=2, top_logprobs=5, logprob_positions=2)
    c = complete_all(tiny, [r], cache=False, progress=False).completions[0]
    assert len(c.top_logprobs) == 2 and all(len(d) <= 5 for d in c.top_logprobs)

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    text = tok.apply_chat_template(r.messages, add_generation_prompt=True, tokenize=False)
    ids = tok(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        lp = torch.log_softmax(model(ids).logits[0, -1].float(), -1)
    vals, top = lp.topk(5)
    expected = {}
    for v, t in zip(vals.tolist(), top.tolist(), strict=True):
        expected.setdefault(tok.decode([t]), v)
    assert c.top_logprobs[0].keys() == expected.keys()
    for k, v in expected.items():
        assert c.top_logprobs[0][k] == pytest.approx(v, abs=1e-4)
    greedy = max(c.top_logprobs[0], key=c.top_logprobs[0].get)
    assert c.text.startswith(greedy.strip()[:1]) or not greedy.strip()


def test_mixed_sampling_parameters_in_one_batch(tiny):
    reqs = [req("a", max_tokens=3), req("b", max_tokens=5), req("c", max_tokens=3, temperature=0.9, seed=1)]
    res = complete_all(tiny, reqs, cache=False, progress=False)
    assert [c.output_tokens for c in res.completions] == [3, 5, 3]
    again = complete_all(tiny, reqs, cache=False, progress=False)
    assert [c.text for c in again.completions] == [c.text for c in res.completions]  # seeded sampling


def test_hub_ids_and_missing_paths_are_refused_without_downloading():
    with pytest.raises(ConfigError, match="never downloads.*huggingface-cli download HuggingFaceTB/SmolLM2"):
        get_backend("hf:HuggingFaceTB/SmolLM2-135M-Instruct")
    with pytest.raises(ConfigError, match="no such file"):
        get_backend("hf:./no/such/dir")
    with pytest.raises(ConfigError, match="unknown backend"):
        get_backend("bogus:model")
    with pytest.raises(ConfigError, match="has no model"):
        get_backend("openai")


@pytest.mark.slow
def test_local_model_loads_offline_and_answers(monkeypatch):
    import torch

    torch.set_num_threads(1)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    b = get_backend("local")
    assert b.spec == "local" and b.model == "SmolLM2-135M-Instruct" and b.max_batch > 1
    res = complete_all(b, [req("What is the capital of France?", max_tokens=12),
                           req("Say hello in French.", max_tokens=12)], progress=False)
    assert "Paris" in res.completions[0].text
    assert all(c.text.strip() and c.output_tokens > 0 for c in res.completions)
