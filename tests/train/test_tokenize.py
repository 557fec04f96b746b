"""Tokenization for training: chat-template masking, one BOS/EOS, safe truncation, message lists, batching."""
from __future__ import annotations

import copy
import json

import pytest
import torch

from rlaif.errors import InputError
from rlaif.train.batching import collate, epoch_batches, local_micro_batches
from rlaif.train.data import load_pairs, load_unpaired, mismatched_partners, split_by_prompt
from rlaif.train.tokenize import ChatTokenizer

U = lambda text: [{"role": "user", "content": text}]
A = lambda text: [{"role": "assistant", "content": text}]


def test_prompt_masked_and_completion_is_what_the_template_adds(smol_tokenizer):
    enc = ChatTokenizer(smol_tokenizer, 512, 256)
    out = enc(U("What is two plus two?"), [A("Four."), A("Five.")])
    full = smol_tokenizer.apply_chat_template(U("What is two plus two?") + A("Four."), tokenize=False)
    assert smol_tokenizer.decode(out.prompt + out.completions[0]) == full
    assert smol_tokenizer.decode(out.prompt).endswith("<|im_start|>assistant\n")
    assert smol_tokenizer.decode(out.completions[0]) == "Four.<|im_end|>\n"
    bos, eos = smol_tokenizer.bos_token_id, smol_tokenizer.eos_token_id
    assert out.prompt[0] == bos and out.prompt[1] != bos  # one BOS, from the template
    for c in out.completions:
        assert c.count(eos) == 1  # one EOS: the template's end-of-turn, not a second one appended


def test_no_template_tokenizer_gets_one_eos_and_text_prompt(smol_tokenizer):
    tok = copy.deepcopy(smol_tokenizer)
    tok.chat_template = None
    enc = ChatTokenizer(tok, 128, 64)
    out = enc(U("Hello"), [A("World")])
    assert tok.decode(out.prompt) == "Hello\n\n"
    assert out.completions[0][-1] == tok.eos_token_id and out.completions[0].count(tok.eos_token_id) == 1


def test_template_that_writes_bos_is_not_doubled(smol_tokenizer):
    tok = copy.deepcopy(smol_tokenizer)
    tok.chat_template = ("{{ bos_token }}{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                         "{% if add_generation_prompt %}assistant: {% endif %}")
    enc = ChatTokenizer(tok, 128, 64)
    out = enc(U("Hi"), [A("Yo")])
    assert out.prompt[0] == tok.bos_token_id and out.prompt.count(tok.bos_token_id) == 1
    assert out.completions[0].count(tok.eos_token_id) == 1  # no end-of-turn in this template: one EOS appended


def test_prompt_truncation_drops_old_turns_then_cuts_text_left_never_a_marker(smol_tokenizer):
    tok = smol_tokenizer
    enc = ChatTokenizer(tok, 160, 80)
    chat = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "first question " * 20},
            {"role": "assistant", "content": "first answer " * 20},
            {"role": "user", "content": "second question about " + "many words " * 60 + "THE END"}]
    out = enc(chat, [A("answer " * 200)])
    text = tok.decode(out.prompt)
    assert len(out.prompt) <= 80
    assert "first question" not in text and "Be brief." in text  # oldest turns gone, system kept
    assert text.endswith("THE END<|im_end|>\n<|im_start|>assistant\n")  # the end of the last turn survives
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n")  # markers whole
    comp = out.completions[0]
    assert len(out.prompt) + len(comp) == 160
    assert tok.eos_token_id not in comp  # cut inside the text: no partial end-of-turn suffix


def test_completion_cut_inside_the_end_marker_drops_the_whole_marker(smol_tokenizer):
    tok = smol_tokenizer
    enc = ChatTokenizer(tok, 64, 40)
    prompt = U("Hi")
    ids, suffix_at = enc.completion_ids(prompt, A("one two three"))
    assert tok.decode(ids[suffix_at:]) == "<|im_end|>\n"  # the suffix: end-of-turn plus newline
    cut = enc._cut_completion(ids, suffix_at, len(ids) - 1)  # a budget that would keep "<|im_end|>" without "\n"
    assert cut == ids[:suffix_at]


def test_message_lists_and_trl_implicit_prompt(tmp_path, smol_tokenizer):
    path = tmp_path / "p.jsonl"
    rows = [
        {"prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}],
         "chosen": [{"role": "assistant", "content": "good"}], "rejected": [{"role": "assistant", "content": "bad"}]},
        {"chosen": [{"role": "user", "content": "Q2"}, {"role": "assistant", "content": "yes"}],
         "rejected": [{"role": "user", "content": "Q2"}, {"role": "assistant", "content": "no"}], "p_chosen": 0.7},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ex = load_pairs(path)
    assert ex[0].prompt[0]["role"] == "system" and ex[1].prompt == U("Q2") and ex[1].completions[1] == A("no")
    assert ex[1].p_chosen == 0.7
    out = ChatTokenizer(smol_tokenizer, 128, 64)(ex[1].prompt, ex[1].completions)
    assert smol_tokenizer.decode(out.completions[1]) == "no<|im_end|>\n"
    kto = load_unpaired(path)  # a preference file unpaired for KTO
    assert [e.desirable for e in kto] == [True, False, True, False]


def test_bad_lines_name_path_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n"
                    + json.dumps({"prompt": "p", "chosen": "a"}) + "\n")
    with pytest.raises(InputError, match=r"bad.jsonl:2: .*rejected"):
        load_pairs(path)
    path.write_text(json.dumps({"prompt": "p", "completion": "a", "label": "maybe"}) + "\n")
    with pytest.raises(InputError, match=r"bad.jsonl:1: .*label"):
        load_unpaired(path)
    path.write_text("{not json\n")
    with pytest.raises(InputError, match=r"bad.jsonl:1: not valid JSON"):
        load_pairs(path)


def test_split_by_prompt_and_partners_are_disjoint_and_fixed(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"q{i % 10}", "chosen": "a", "rejected": "b"}) + "\n"
                            for i in range(40)))
    train, held = split_by_prompt(load_pairs(path), 0.2, seed=0)
    assert len(held) == 8 and not {e.prompt_key for e in train} & {e.prompt_key for e in held}
    partner = mismatched_partners(7, seed=3)
    assert sorted(partner) == list(range(7)) and all(p != i for i, p in enumerate(partner))
    assert partner == mismatched_partners(7, seed=3)


def test_length_grouped_batches_cover_the_data_and_split_evenly():
    costs = [5, 100, 7, 90, 6, 95, 8, 80, 9, 85, 10, 70]
    batches = epoch_batches(costs, 4, world=2, seed=0, epoch=0, group_by_length=True)
    assert sorted(i for b in batches for i in b) == list(range(12))
    assert batches == epoch_batches(costs, 4, world=2, seed=0, epoch=0, group_by_length=True)
    by_length = sorted(range(12), key=lambda i: -costs[i])  # like with like: slices of the length order
    assert {frozenset(b) for b in batches} == {frozenset(by_length[s:s + 4]) for s in (0, 4, 8)}
    micro = [local_micro_batches(batches[0], costs, r, 2, micro_batch_size=1) for r in range(2)]
    assert len(micro[0]) == len(micro[1]) == 2  # same number of backward passes on every process
    odd = costs + [50]  # 13 examples: the partial last batch is dropped, whatever the process count
    assert epoch_batches(odd, 4, 1, 0, 0, True) == epoch_batches(odd, 4, 2, 0, 0, True)
    assert len(epoch_batches(odd, 4, 1, 0, 0, True)) == 3
    assert epoch_batches(costs[:3], 4, 2, 0, 0, False)[0].__len__() == 2  # a lone short batch is kept, cut to 2


def test_shared_prompt_rows_equal_separate_rows(tiny_model_dir, smol_tokenizer):
    """One row `prompt | chosen | rejected` with a block mask gives the same log-probs and rewards as two rows."""
    from transformers import AutoModelForCausalLM

    from rlaif.train.modeling import SequenceLogProbs

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    enc = ChatTokenizer(smol_tokenizer, 256, 128)
    items = [enc(U("Tell me a fact about cats."), [A("Cats purr."), A("Dogs bark loudly at night.")]),
             enc(U("Hi"), [A("Hello there, how can I help you today?"), A("Hey.")])]
    lp = SequenceLogProbs(model)
    with torch.no_grad():
        shared, n_shared = lp(collate(items, smol_tokenizer.pad_token_id, share_prompt=True))
        separate, n_sep = lp(collate(items, smol_tokenizer.pad_token_id, share_prompt=False))
    assert torch.equal(n_shared, n_sep)
    assert torch.allclose(shared, separate, atol=1e-4), (shared, separate)
    # and against a plain forward of each full sequence with transformers' own loss-style arithmetic
    for k, it in enumerate(items):
        for j, comp in enumerate(it.completions):
            ids = torch.tensor([it.prompt + comp])
            with torch.no_grad():
                logits = model(ids).logits[0, len(it.prompt) - 1:-1]
            ref = torch.log_softmax(logits.float(), -1).gather(1, torch.tensor(comp)[:, None]).sum()
            assert shared[2 * k + j].item() == pytest.approx(ref.item(), abs=1e-4)


def test_eval_passes_give_every_process_the_same_number_of_batches():
    """9 examples over 2 processes in batches of 4: 5 + 4 examples, 2 passes each; the repeat is not kept."""
    from rlaif.train.batching import micro_batches_for
    from rlaif.train.runtime import Runtime

    costs = list(range(9))
    per_rank = [micro_batches_for(9, costs, Runtime(torch.device("cpu"), r, 2, r, None, False, False), 4)
                for r in range(2)]
    assert [len(b) for b in per_rank] == [2, 2]
    kept = sorted(i for batches in per_rank for mb, keep in batches if keep for i in mb)
    assert kept == list(range(9))
