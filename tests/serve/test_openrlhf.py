"""How /get_reward cuts the response out of OpenRLHF's `query`, on SmolLM2's real chat template."""
from __future__ import annotations

import pytest

from rlaif.serve.openrlhf import cut_query, label_metadata, prompt_messages, strip_end

CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour.\nJust one."}]


@pytest.fixture(scope="module")
def rendered(smol_tokenizer):
    prompt = smol_tokenizer.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    return prompt, prompt + "Blue, like the\nsea.<|im_end|>\n"


def test_with_prompts_the_response_is_what_follows_the_prompt(rendered):
    prompt, query = rendered
    cut = cut_query(query, prompt)
    assert cut.error is None and cut.response == "Blue, like the\nsea."
    assert cut.messages == CHAT


def test_without_prompts_the_cut_is_at_the_last_assistant_header(rendered, smol_tokenizer):
    prompt, query = rendered
    assert cut_query(query, None).messages == CHAT and cut_query(query, None).response == "Blue, like the\nsea."
    # a multi-turn prompt: the earlier assistant turn stays in the prompt
    turns = [*CHAT, {"role": "assistant", "content": "Red."}, {"role": "user", "content": "Another?"}]
    text = smol_tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    cut = cut_query(text + "Green.<|im_end|><|endoftext|>", None)
    assert cut.messages == turns and cut.response == "Green."


def test_smollm2_default_system_turn_and_llama3_headers():
    default = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
               "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert [m["role"] for m in prompt_messages(default)] == ["system", "user"]
    llama = ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
             "<|start_header_id|>assistant<|end_header_id|>\n\n")
    cut = cut_query(llama + "Hello!<|eot_id|>", None)
    assert cut.messages == [{"role": "user", "content": "Hi there"}] and cut.response == "Hello!"


def test_what_cannot_be_cut_says_why():
    assert "does not start with its prompt" in cut_query("abc", "xyz").error
    assert "assistant header" in cut_query("plain text", None).error
    plain = cut_query("Question?\n\nAnswer.", "Question?\n\n")  # rlaif's client without a tokenizer
    assert plain.messages == [{"role": "user", "content": "Question?"}] and plain.response == "Answer."
    assert strip_end("x </s>") == "x"


def test_labels_become_constraints_or_the_reference():
    cons = [{"family": "casing", "type": "lowercase"}]
    assert label_metadata(cons) == {"constraints": cons}
    assert label_metadata('[{"family": "casing", "type": "lowercase"}]') == {"constraints": cons}
    assert label_metadata({"reference": "r"}) == {"reference": "r"}
    assert label_metadata("42") == {"label": "42", "reference": "42"}
    assert label_metadata(None) == {}
