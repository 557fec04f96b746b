"""The ifeval suite end to end on the embedded model (slow: real generation and a real LLM judge), and the
hf backend's sequence log-probs against a manual forward pass."""
from __future__ import annotations

import pytest

from rlaif.calls import CallOptions
from rlaif.records import Label, Response, read_jsonl, read_prompts

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    import torch

    torch.set_num_threads(1)  # 2 shared cores: a second OpenMP thread makes small models slower


def _manual_logprob(model, tok, messages, text, ended, temperature):
    import torch

    p = tok(tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False),
            add_special_tokens=False)["input_ids"]
    r = tok(text, add_special_tokens=False)["input_ids"] + ([tok.eos_token_id] if ended else [])
    ids = torch.tensor([p + r])
    with torch.inference_mode():
        lp = torch.log_softmax(model(ids).logits[0].float() / temperature, -1)
    return sum(lp[len(p) - 1 + i, t].item() for i, t in enumerate(r)), len(r)


def test_sequence_logprobs_equal_a_manual_forward_pass(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlaif.backends import get_backend

    backend = get_backend(f"hf:{tiny_model_dir}", batch_size=2)  # 3 items: two batches, padding inside one
    msgs = [[{"role": "user", "content": "Hello there"}], [{"role": "user", "content": "Name a colour, please."}],
            [{"role": "user", "content": "Say nothing."}]]
    texts, ended = ["Hi! How are you today?", "Blue.", ""], [True, False, True]
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    for temperature in (1.0, 1.7):
        got = backend.sequence_logprobs(msgs, texts, ended=ended, temperature=temperature)
        for g, m, t, e in zip(got, msgs, texts, ended, strict=True):
            lp, n = _manual_logprob(model, tok, m, t, e, temperature)
            assert g.tokens == n and g.logprob == pytest.approx(lp, abs=1e-3)
    assert got[2].tokens == 1 and got[1].logprob < 0  # an empty answer that ended is its end token alone
    with pytest.raises(ValueError, match="temperature"):
        backend.sequence_logprobs(msgs, texts, temperature=0)


def test_hf_model_name_changes_with_the_weights(tmp_path, tiny_model_dir):
    import os
    import shutil

    from rlaif.backends import get_backend

    d = tmp_path / "ckpt"
    shutil.copytree(tiny_model_dir, d)
    first = get_backend(f"hf:{d}").model
    assert first == get_backend(f"hf:{d}").model and first.startswith(str(d.resolve()))
    weights = next(d.glob("*.safetensors"))
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # "retrained" in place
    assert get_backend(f"hf:{d}").model != first  # so the call cache holds no answers of the old weights


def test_ifeval_suite_on_the_local_model(tmp_path, tiny_rm_dir):
    from rlaif.catalog import find
    from rlaif.eval.runner import run_eval
    from rlaif.instructions.constraints import check
    from rlaif.localmodel import local_model_dir
    from rlaif.train.reward_model import RewardScorer

    out = tmp_path / "ev"
    policy = f"hot=hf:{local_model_dir()},temperature=1.3"  # the same weights as `local`, sampled hotter
    kw = dict(limit=2, samples=1, max_tokens=16, embedding=False, options=CallOptions(progress=False),
              reward_model=str(tiny_rm_dir), prompts_offset=3)
    r = run_eval("ifeval", policy, "base=local", out, **kw)
    rule, llm, rm = "rule@v1:rlaif.constraints:check", "pairwise-logprob@v1:local", f"reward-model@v1:{tiny_rm_dir}"
    assert r.result["judges"] == [rule, llm, rm] and (r.result["policy"], r.result["baseline"]) == ("hot", "base")
    scorer = RewardScorer(tiny_rm_dir)
    for split, name in (("id", "ifeval_id"), ("ood", "ifeval_ood")):
        s = r.result["splits"][split]
        prompts = read_prompts(find("prompts", name))[3:5]  # the offset skips the first three
        hot = {x.prompt_id: x for x in read_jsonl(out / split / "responses_hot.jsonl", Response)}
        base = {x.prompt_id: x for x in read_jsonl(out / split / "responses_base.jsonl", Response)}
        assert set(hot) == set(base) == {p.prompt_id for p in prompts} and s["n_prompts"] == 2
        # the rule judge's record and the compliance, worked out from the checkers directly
        share = {(p.prompt_id, n): check(p.constraints, rs[p.prompt_id].response)
                 for p in prompts for n, rs in (("hot", hot), ("base", base))}
        diff = [share[(p.prompt_id, "hot")].share_passed - share[(p.prompt_id, "base")].share_passed for p in prompts]
        w = s["win_rate"][rule]
        assert (w["wins"], w["losses"], w["ties"]) == (sum(d > 0 for d in diff), sum(d < 0 for d in diff),
                                                        sum(d == 0 for d in diff))
        for n in ("hot", "base"):
            assert s["compliance"][n]["all_pass_rate"] == sum(share[(p.prompt_id, n)].all_pass for p in prompts) / 2
        # the LLM judge ran in both orders; its verdicts come from log-probs
        labels = [lab for lab in read_jsonl(out / split / "labels.jsonl", Label) if lab.rater == llm]
        assert sorted(lab.order for lab in labels) == ["ab", "ab", "ba", "ba"]
        assert all(lab.parse == "logprob" for lab in labels) and s["win_rate"][llm]["n"] == 2
        # reward means are the reward model's scores; KL between identical weights is zero
        rew = s["reward"]
        ps = [p.prompt_id for p in prompts]
        for rs, role in ((hot, "policy"), (base, "baseline")):
            expected = scorer.score([rs[p].prompt for p in ps], [rs[p].response for p in ps])
            assert rew[role]["mean"] == pytest.approx(sum(expected) / 2, abs=1e-5)
        assert rew["kl_estimate"] == pytest.approx(0.0, abs=1e-9) and rew["kl"]["temperature"] == 1.3
        assert s["diversity"]["hot"]["samples_per_prompt"] == 1
    assert set(r.result["generalization_gap"]["win_rate"]) == {rule, llm, rm}
    assert set(r.result["generalization_gap"]["compliance"]) == {"hot", "base"}
    assert (out / "eval.html").stat().st_size > 1000 and "## Win rate" in (out / "eval.md").read_text()
    # a re-run: every generation, judge call and reward-model score is already done
    again = run_eval("ifeval", policy, "base=local", out, **kw)
    assert again.result["calls"]["made"] == 0
    # the LLM judge: 2 splits x 2 pairs x 2 orders; the reward model: 2 splits x 4 responses
    assert again.result["calls"]["cache_hits"] == 8 + 8
    strip = lambda sp: {k: v for k, v in sp.items() if k != "calls"}
    assert all(strip(again.result["splits"][s]) == strip(r.result["splits"][s]) for s in ("id", "ood"))
    # the KL only where asked (the demo: on the ID split, the distribution trained on)
    id_only = run_eval("ifeval", policy, "base=local", out, kl_kinds=("id",), **kw).result["splits"]
    assert id_only["id"]["reward"]["kl"] == r.result["splits"]["id"]["reward"]["kl"]
    assert id_only["ood"]["reward"]["kl"] is None and id_only["ood"]["reward"]["policy"] is not None
