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


# ---- OpenRLHF's multi-URL client against a real `rlaif serve` ------------------------------------------------

THREE_WORDS = [{"family": "length", "type": "words", "n": 3, "relation": "at least"}]


async def _openrlhf_fetch(urls: list[str], queries: list, prompts: list, labels: list, tries: int = 5) -> list:
    """What OpenRLHF's single-turn executor does with several comma-separated reward URLs (openrlhf/utils/agent.py,
    `_fetch_rewards_via_http`): ceil(n / servers) items per server in order, so the servers past the batch's
    size get empty lists; each request tried `tries` times (aiohttp, no auth header, raise_for_status); the
    answers gathered, and any server failing every try fails the whole gather."""
    import asyncio

    import aiohttp

    size = -(-len(queries) // len(urls))

    async def post(url: str, data: dict) -> dict:
        for _ in range(tries):
            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=180)) as session:
                    async with session.post(url, json=data) as response:
                        response.raise_for_status()
                        return await response.json()
            except aiohttp.ClientError:
                await asyncio.sleep(0.01)
        raise RuntimeError(f"Request error for {tries} times")

    return await asyncio.gather(*(post(u, {"query": queries[i * size:(i + 1) * size],
                                           "prompts": prompts[i * size:(i + 1) * size],
                                           "labels": labels[i * size:(i + 1) * size]}) for i, u in enumerate(urls)))


def _as_openrlhf_tensors(answer: dict):
    """OpenRLHF's samples generator: `torch.tensor([reward])` of the first answer's rewards and scores, and each
    extra_logs value as a tensor."""
    import torch

    return (torch.tensor([answer["rewards"]]), torch.tensor([answer["scores"]]),
            {k: torch.tensor([v]) for k, v in answer["extra_logs"].items()})


def _chatml(prompt: str) -> str:
    return f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def open_service(tmp_path_factory):
    """No token (OpenRLHF's client sends none), the rule scorer, null for what it cannot score."""
    from serve_helpers import Served

    with Served(["--reward-scorer", "rule"], cache=tmp_path_factory.mktemp("openrlhf") / "cache") as s:
        yield s


def test_several_reward_urls_one_sample_each_the_empty_requests_get_200(open_service):
    import asyncio

    urls = [f"{open_service.url}/get_reward"] * 3  # three "servers": OpenRLHF sends one sample per request
    prompt = _chatml("Say three words.")
    answers = asyncio.run(_openrlhf_fetch(urls, [prompt + "one two three<|im_end|>"], [prompt], [THREE_WORDS]))
    assert answers[1:] == [{"rewards": [], "scores": [], "extra_logs": {}, "errors": []}] * 2
    rewards, scores, logs = _as_openrlhf_tensors(answers[0])
    assert rewards.tolist() == [[1.0]] and scores.tolist() == [[1.0]]
    assert {k: v.tolist() for k, v in logs.items()} == {"scored": [1], "unscored": [0]}
    # a bigger batch over two servers: ceil(3 / 2) = 2 items, then 1, in order
    queries = [prompt + t for t in ("one two three", "one", "four five six seven")]
    first, second = asyncio.run(_openrlhf_fetch(urls[:2], queries, [prompt] * 3, [THREE_WORDS] * 3))
    assert first["rewards"] == [1.0, 0.0] and second["rewards"] == [1.0]


def test_a_null_reward_breaks_openrlhfs_tensor_and_the_service_says_why(open_service):
    import asyncio

    prompt = _chatml("Say anything.")
    answer, = asyncio.run(_openrlhf_fetch([f"{open_service.url}/get_reward"], [prompt + "hi"], [prompt], [None]))
    assert answer["rewards"] == [None] and "carries no constraints" in answer["errors"][0]
    assert answer["extra_logs"] == {"scored": 0, "unscored": 1}
    with pytest.raises(RuntimeError, match="NoneType"):  # what OpenRLHF does with a null: hence --unscored-reward
        _as_openrlhf_tensors(answer)
    metrics = open_service.get("/metrics").text
    assert 'rlaif_serve_unscored_total{scorer="rule"} 1.0' in metrics


def test_retries_reach_a_service_that_comes_up_late(tmp_path):
    """OpenRLHF's tries (one a second there) outlast a service still starting: the gather succeeds."""
    import asyncio
    import socket

    from serve_helpers import Served

    with socket.socket() as s:  # a free port, nothing listening yet
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    late = Served(["--reward-scorer", "rule"], cache=tmp_path / "cache", port=port)

    async def run():
        fetch = asyncio.create_task(_openrlhf_fetch([f"http://127.0.0.1:{port}/get_reward"],
                                                    [_chatml("Q") + "one two three"], [_chatml("Q")],
                                                    [THREE_WORDS], tries=2000))
        await asyncio.sleep(0.05)
        await asyncio.to_thread(late.start)
        return await fetch

    try:
        answer, = asyncio.run(run())
    finally:
        late.stop()
    assert answer["rewards"] == [1.0]
