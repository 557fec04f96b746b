"""`/get_reward?group=JUDGE[&pairs=M]` on a real `rlaif serve` (loopback, real HTTP): a request's samples of one
prompt judged against each other in both orders, mean win probabilities by hand, lone samples null with the
reason, bad parameters named; the cost line at start-up."""
from __future__ import annotations

import re

import pytest
from fakeserver import FakeServer
from serve_helpers import Served

_SHOWN = re.compile(r"Answer A:\n<<<\n(.*?)\n>>>\n\nAnswer B:\n<<<\n(.*?)\n>>>", re.S)


def longer_wins(call) -> str:
    a, b = _SHOWN.search(call.prompt).groups()
    return "[[A]]" if len(a) > len(b) else "[[B]]" if len(b) > len(a) else "[[C]]"


def chatml(prompt: str, response: str = "") -> str:
    return f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n{response}"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with FakeServer(reply=longer_wins) as srv, Served(
            ["-j", "pairwise", "--judge-model", "openai:judge", "--base-url", srv.openai_url],
            cache=tmp_path_factory.mktemp("groups") / "cache") as svc:
        yield svc, srv


def test_a_group_sent_together_gets_mean_win_probabilities(served):
    svc, srv = served
    before = srv.count
    queries = [chatml("Q1", "x"), chatml("Q2", "alone"), chatml("Q1", "xxx"), chatml("Q1", "xx")]
    r = svc.post("/get_reward?group=pairwise", {"query": queries})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["rewards"] == [0.0, None, 1.0, 0.5] and body["scores"] == body["rewards"]
    assert "only sample of its prompt" in body["errors"][1] and body["errors"][0] is None
    assert body["extra_logs"] == {"scored": 3, "unscored": 1, "pairs_judged": 3, "judge_calls": 6}
    assert srv.count - before == 6
    assert "/get_reward?group=pairwise: a group of k samples costs k(k-1) judge calls" in svc.stderr


def test_pairs_subset_and_prompts_given(served):
    svc, srv = served
    prompts = [chatml("Q3")] * 4
    queries = [p + "y" * (i + 1) for i, p in enumerate(prompts)]
    r = svc.post("/get_reward?group=pairwise&pairs=1", {"query": queries, "prompts": prompts})
    assert r.status_code == 200, r.text
    assert r.json()["rewards"] == [0.0, 0.0, 1.0, 1.0]  # (0, 2) and (1, 3), the longer wins
    assert r.json()["extra_logs"]["pairs_judged"] == 2


@pytest.mark.parametrize("params, field", [("group=rubric", "group"), ("group=pairwise&pairs=0", "pairs"),
                                           ("group=pairwise&pairs=x", "pairs")])
def test_bad_group_parameters_are_named(served, params, field):
    svc, _ = served
    r = svc.post(f"/get_reward?{params}", {"query": [chatml("Q", "a"), chatml("Q", "b")]})
    assert r.status_code == 422 and r.json()["error"]["field"] == field
