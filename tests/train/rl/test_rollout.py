"""Rollouts on the tiny model: the log-probs recomputed on the kept ids equal what `generate` itself sampled from,
rows stop at EOS or max_new_tokens, groups are contiguous, a seed fixes the rollout, and at policy = reference the
ratio is exactly 1 and the KL exactly 0.

The tiny random model almost never samples EOS, so most tests use a copy whose LM head has a bias toward EOS
(about 5% per step at temperature 0.7): rows then end at different lengths and some never end.
"""
from __future__ import annotations

import copy

import pytest
import torch

from rlaif.train.rl import losses as L
from rlaif.train.rl.rollout import response_mask, sample, token_logps

PROMPTS = [[{"role": "user", "content": "Say hi."}],
           [{"role": "system", "content": "Be terse."},
            {"role": "user", "content": "A longer question about colours?"}],
           [{"role": "user", "content": "Name a fruit."}]]
K, MAX_NEW = 4, 12


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def plain(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()


@pytest.fixture(scope="module")
def eos_biased(plain, tok):
    model = copy.deepcopy(plain)
    head = torch.nn.Linear(model.lm_head.in_features, model.lm_head.out_features, bias=True)
    with torch.no_grad():
        head.weight.copy_(model.lm_head.weight)
        head.bias.zero_()
        head.bias[tok.eos_token_id] = 5.5
    model.lm_head = head
    return model


def _sample(model, tok, **kw):
    args = {"k": K, "max_new_tokens": MAX_NEW, "temperature": 0.7, "seed": 0, **kw}
    return sample(model, tok, PROMPTS, **args)


def test_logps_on_the_kept_ids_equal_generates_own_scores(eos_biased, tok):
    """generate's scores are the logits after its temperature processor (top_p = 1, top-k off): log_softmax of
    them at the sampled ids is what the sampler drew from; one forward on prompt + response with the left-padding
    positions reproduces it."""
    r = _sample(eos_biased, tok, return_sampling_logps=True)
    with torch.no_grad():
        out = token_logps(eos_biased, r, temperature=0.7, entropy=True)
    assert out.logps.shape == r.response_ids.shape
    assert (out.logps - r.sampling_logps).abs().max() < 1e-5
    assert (out.logps[r.response_mask == 0] == 0).all() and (out.logps[r.response_mask == 1] < 0).all()
    assert (out.entropy[r.response_mask == 1] > 0).all() and (out.entropy[r.response_mask == 0] == 0).all()
    with torch.no_grad():  # the wrong temperature gives other numbers: the temperature really enters
        assert (token_logps(eos_biased, r, temperature=1.0).logps - r.sampling_logps).abs().max() > 1e-2


def test_rows_stop_at_eos_or_max_new_tokens(eos_biased, tok):
    r = _sample(eos_biased, tok)
    eos = tok.eos_token_id
    assert r.ended.any() and not r.ended.all()  # the bias makes both kinds
    assert r.response_ids.size(1) <= MAX_NEW
    for ids, mask, ended in zip(r.response_ids, r.response_mask, r.ended, strict=True):
        n = int(mask.sum())
        assert mask[:n].all() and not mask[n:].any()  # one contiguous run from the start
        if ended:
            assert ids[n - 1] == eos and eos not in ids[:n - 1].tolist()  # EOS kept, and it is the first
        else:
            assert n == MAX_NEW and eos not in ids.tolist()
        assert (ids[n:] == tok.pad_token_id).all()
    assert r.texts[0] == tok.decode(r.response_ids[0][r.response_mask[0].bool()], skip_special_tokens=True)
    assert all("<|im_end|>" not in t for t in r.texts)


def test_groups_are_contiguous_and_prompts_left_padded(eos_biased, tok):
    r = _sample(eos_biased, tok)
    assert r.rows == len(PROMPTS) * K and r.k == K
    assert r.group.tolist() == [0] * K + [1] * K + [2] * K
    assert r.row_prompts[K] == PROMPTS[1]
    width, n = r.prompt_ids.size(1), int(r.prompt_mask[K].sum())
    assert n < width  # prompt 1 (its own short system message) is the shortest: its rows carry left padding
    assert (r.prompt_mask[K, : width - n] == 0).all() and (r.prompt_mask[K, width - n:] == 1).all()
    assert (r.prompt_ids[K, : width - n] == tok.pad_token_id).all()
    text = tok.apply_chat_template(PROMPTS[1], add_generation_prompt=True, tokenize=False)
    assert r.prompt_ids[K, width - n:].tolist() == tok(text, add_special_tokens=False)["input_ids"]
    sub = r.select([1, 5])
    assert sub.group.tolist() == [0, 1] and sub.texts == [r.texts[1], r.texts[5]]
    batch = sub.reward_batch([{"prompt_id": "a"}, {"prompt_id": "b"}, {"prompt_id": "c"}])
    assert batch.prompts == [PROMPTS[0], PROMPTS[1]] and batch.responses == sub.texts
    assert [m["prompt_id"] for m in batch.metadata] == ["a", "b"]
    # TRL's completion_ids: each row's sampled ids through its EOS, which decode to the response text
    for ids, row, n, text in zip(batch.completion_ids, sub.response_ids, sub.lengths, sub.texts, strict=True):
        assert ids == row[: int(n)].tolist() and tok.decode(ids, skip_special_tokens=True) == text
    assert batch.rows([1]).completion_ids == [batch.completion_ids[1]]


def test_same_seed_same_rollout(eos_biased, tok):
    a, b, c = _sample(eos_biased, tok), _sample(eos_biased, tok), _sample(eos_biased, tok, seed=1)
    assert torch.equal(a.response_ids, b.response_ids) and a.texts == b.texts
    assert not torch.equal(a.response_ids[:, :3], c.response_ids[:, :3])
    state = torch.get_rng_state()
    _sample(eos_biased, tok)
    assert torch.equal(state, torch.get_rng_state())  # the caller's RNG is untouched


def test_greedy_at_temperature_zero_is_scored_at_temperature_one(plain, tok):
    """temperature 0 samples greedily (every row of a group is the same) and runs to max_new_tokens on the plain
    tiny model; its log-probs are log_softmax(logits) at temperature 1, which is what generate reports too."""
    plain.train()
    r = _sample(plain, tok, temperature=0.0, return_sampling_logps=True)
    assert plain.training  # sampling ran in eval mode and restored the mode
    plain.eval()
    assert all(torch.equal(r.response_ids[i], r.response_ids[i - i % K]) for i in range(r.rows))
    assert not r.ended.any() and r.response_mask.all() and r.response_ids.size(1) == MAX_NEW
    with torch.no_grad():
        out = token_logps(plain, r, temperature=0.0)
    assert (out.logps - r.sampling_logps).abs().max() < 1e-5


def test_at_policy_equal_reference_ratio_is_one_and_kl_zero(eos_biased, tok):
    """The first minibatch's log-probs (with gradients) against the rollout-time ones (no grad, other chunking)
    and a frozen copy as the reference: the ratio is exactly 1 and the KL exactly 0 in fp32."""
    r = _sample(eos_biased, tok)
    reference = copy.deepcopy(eos_biased)
    with torch.no_grad():
        old = token_logps(eos_biased, r, 0.7, batch_size=5).logps
        ref = token_logps(reference, r, 0.7, batch_size=3).logps
    rows = [0, 1, 2, 3]
    mb = r.select(rows)
    new = token_logps(eos_biased, mb, 0.7).logps
    assert new.requires_grad
    mask = mb.response_mask.float()
    out = L.grpo_loss(new, old[rows], ref[rows], torch.tensor([1.0, -1.0, 0.5, 0.0]), mask, beta=0.1)
    assert torch.equal(out.ratio * mask, mask) and torch.equal(out.kl * mask, torch.zeros_like(mask))
    assert out.clip_frac.item() == 0.0
    assert torch.equal(L.kl_k1(new.detach(), ref[rows]), torch.zeros_like(new))


def test_response_mask_when_pad_equals_eos():
    """SmolLM2 pads with its EOS id: the first EOS ends the row, whatever follows."""
    ids = torch.tensor([[5, 2, 2, 2], [5, 6, 7, 8], [2, 2, 2, 2]])
    mask, ended = response_mask(ids, [2])
    assert mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]] and ended.tolist() == [True, False, True]


def test_bad_arguments(plain, tok):
    with pytest.raises(ValueError, match="k >= 1"):
        sample(plain, tok, PROMPTS, k=0, max_new_tokens=4, temperature=1.0, seed=0)


def test_packed_forward_equals_padded(eos_biased, tok):
    """Shared-prompt packing (one row per group, real tokens only) gives the padded layout's log-probs, entropies,
    values and gradients, also for partial groups out of order and prompts of different lengths."""
    from rlaif.train.rl.policy import Policy
    from rlaif.train.rl.rollout import pack

    r = _sample(eos_biased, tok)
    assert r.lengths.unique().numel() > 1 and r.prompt_mask.sum(1).unique().numel() > 1
    mb = r.select([9, 1, 0, 5, 2, 8])  # groups 2, 0, 1 in that order of first appearance; partial groups
    layout = pack(mb)
    assert layout.input_ids.shape[0] == 3
    assert layout.input_ids.numel() < mb.input_ids().numel()
    assert layout.dst_row.numel() == int(mb.lengths.sum())
    results = []
    for packed in (False, True):
        policy = Policy(copy.deepcopy(eos_biased), value_head=True, packed=packed)
        torch.manual_seed(1)
        torch.nn.init.normal_(policy.value_head.weight, std=0.1)
        out = policy(mb, 0.7, entropy=True)
        (out.logps.sum() + out.values.square().sum()).backward()
        grads = torch.cat([p.grad.flatten() for p in policy.parameters() if p.grad is not None])
        results.append((out, grads))
    (a, ga), (b, gb) = results
    mask = mb.response_mask.float()
    for x, y in ((a.logps, b.logps), (a.entropy, b.entropy), (a.values, b.values)):
        assert torch.equal(x * mask, x) and torch.equal(y * mask, y)  # zero outside the responses
        torch.testing.assert_close(x, y, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(ga, gb, atol=1e-4, rtol=1e-3)


def test_shared_prefill_samples_what_a_full_prefill_samples(eos_biased, tok, monkeypatch):
    """The prompt's KV cache computed once per prompt and repeated k times gives generate the same next-token
    distributions as k separate prefills: the same seed samples the same ids."""
    import rlaif.train.rl.rollout as R

    calls = []
    real = R._shared_prefill
    monkeypatch.setattr(R, "_shared_prefill", lambda *a: calls.append(a) or real(*a))
    shared = _sample(eos_biased, tok, return_sampling_logps=True)
    monkeypatch.setattr(R, "_shared_prefill", lambda *a: None)
    full = _sample(eos_biased, tok, return_sampling_logps=True)
    assert len(calls) == 1
    assert torch.equal(shared.response_ids, full.response_ids) and shared.texts == full.texts
    torch.testing.assert_close(shared.sampling_logps, full.sampling_logps, atol=1e-5, rtol=1e-5)


def test_bf16_copy_samples_what_the_model_cast_to_bf16_samples_and_follows_its_updates(plain, tok):
    from rlaif.train.rl.rollout import Bf16Copy

    model = copy.deepcopy(plain).train()
    for p in model.parameters():
        p.grad = torch.ones_like(p)  # as after a backward: the copy must not carry them
    copies = Bf16Copy()
    first = copies.of(model)
    assert first.dtype == torch.bfloat16 and model.dtype == torch.float32 and model.training
    assert all(p.grad is None and not p.requires_grad for p in first.parameters())
    reference = copy.deepcopy(plain).to(torch.bfloat16)
    assert _sample(first, tok).texts == _sample(reference, tok).texts
    with torch.no_grad():  # an optimizer step
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    again = copies.of(model)
    assert again is first  # refreshed in place, not copied anew
    for got, want in zip(again.parameters(), model.parameters(), strict=True):
        assert torch.equal(got, want.to(torch.bfloat16))
