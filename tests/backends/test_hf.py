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


def test_bf16_precision_samples_from_a_bf16_copy_and_scores_in_fp32(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    fp32 = get_backend(f"hf:{tiny_model_dir}", batch_size=4)
    bf16 = get_backend(f"hf:{tiny_model_dir}", batch_size=4, precision="bf16")
    assert bf16.model == fp32.model + "+bf16"  # bf16 samples are cached apart from fp32 ones
    prompts = ["Hello there", "Name a colour."]
    got = complete_all(bf16, [req(p, max_tokens=5) for p in prompts], cache=False, progress=False).completions
    assert bf16._sampler.dtype == torch.bfloat16 and bf16._model.dtype == torch.float32
    # greedy text as a bf16 model of the same weights writes it
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16)
    for p, c in zip(prompts, got, strict=True):
        text = tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False)
        ids = tok(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
        out = model.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
        assert c.text == tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    # log-probabilities (the KL estimate's) stay fp32: equal to the fp32 backend's
    msgs = [[{"role": "user", "content": p}] for p in prompts]
    assert [x.logprob for x in bf16.sequence_logprobs(msgs, ["Hi", "Blue"])] == \
        [x.logprob for x in fp32.sequence_logprobs(msgs, ["Hi", "Blue"])]
    with pytest.raises(Exception, match="precision 'fp16' is not one of auto, fp32, bf16"):
        get_backend(f"hf:{tiny_model_dir}", precision="fp16")


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


def write_tiny_gguf(path, rng_seed: int = 0):
    """A 2-layer llama GGUF (F32) with a byte-level BPE of 261 tokens: converting a real
    49k-token GGUF vocabulary takes transformers 15 s, this one well under a second."""
    import numpy as np
    from gguf import GGUFWriter

    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    byte_symbol = {b: chr(b if b in printable else next(extra)) for b in range(256)}  # GPT-2's byte map
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *(byte_symbol[b] for b in range(256)), "he", "ll"]
    w = GGUFWriter(str(path), arch="llama")
    for key, value in {"block_count": 2, "context_length": 512, "embedding_length": 64, "feed_forward_length": 128,
                       "attention.head_count": 4, "attention.head_count_kv": 2, "rope.dimension_count": 16,
                       "vocab_size": len(tokens)}.items():
        w.add_uint32(f"llama.{key}", value)
    w.add_float32("llama.rope.freq_base", 10000.0)
    w.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    w.add_string("tokenizer.ggml.model", "gpt2")
    w.add_string("tokenizer.ggml.pre", "smollm")
    w.add_array("tokenizer.ggml.tokens", tokens)
    w.add_array("tokenizer.ggml.token_type", [3, 3, 3] + [1] * (len(tokens) - 3))
    w.add_array("tokenizer.ggml.merges", ["h e", "l l"])
    w.add_uint32("tokenizer.ggml.bos_token_id", 1)
    w.add_uint32("tokenizer.ggml.eos_token_id", 2)
    w.add_uint32("tokenizer.ggml.padding_token_id", 2)
    w.add_string("tokenizer.chat_template", "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
                 "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    rng = np.random.default_rng(rng_seed)
    arrays = {"token_embd.weight": (len(tokens), 64), "output_norm.weight": (64,)}
    for b in range(2):
        arrays.update({f"blk.{b}.attn_norm.weight": (64,), f"blk.{b}.ffn_norm.weight": (64,),
                       f"blk.{b}.attn_q.weight": (64, 64), f"blk.{b}.attn_k.weight": (32, 64),
                       f"blk.{b}.attn_v.weight": (32, 64), f"blk.{b}.attn_output.weight": (64, 64),
                       f"blk.{b}.ffn_gate.weight": (128, 64), f"blk.{b}.ffn_up.weight": (128, 64),
                       f"blk.{b}.ffn_down.weight": (64, 128)})
    written = {}
    for name, shape in arrays.items():
        a = np.ones(shape, np.float32) if len(shape) == 1 else (rng.standard_normal(shape) * 0.02).astype(np.float32)
        w.add_tensor(name, a)
        written[name] = a
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return written


def test_gguf_files_and_gguf_only_directories_load(tmp_path):
    import numpy as np
    import torch

    torch.set_num_threads(1)
    d = tmp_path / "gguf-model"
    d.mkdir()
    arrays = write_tiny_gguf(d / "tiny.gguf")
    for spec in (f"hf:{d / 'tiny.gguf'}", f"hf:{d}"):
        b = get_backend(spec)
        res = complete_all(b, [req("hello", max_tokens=3), req("hi", max_tokens=3)], cache=False, progress=False)
        assert all(1 <= c.output_tokens <= 3 and c.input_tokens > 3 for c in res.completions)
        emb = b._model.get_input_embeddings().weight.detach().numpy()
        np.testing.assert_array_equal(emb, arrays["token_embd.weight"])  # F32 in, the same weights out
        assert b._model.config.num_hidden_layers == 2


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
