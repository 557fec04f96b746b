"""`rlaif.client` as the README shows it (issue 23, item 11): `rc.compare` against a service started without a
pairwise judge says so and how to start one (it showed `''`); with one, the README's calls answer. A real
`rlaif serve` subprocess on loopback; the pairwise judge runs on tests/support/fakeserver.py."""
from __future__ import annotations

import pytest
from fakeserver import FakeServer
from serve_helpers import Served, judge_reply

from rlaif.client import RewardClient, ServiceError


def test_compare_without_a_pairwise_judge_says_how_to_start_one(tmp_path):
    with Served(["-j", "rule"], cache=tmp_path / "cache") as svc, RewardClient(svc.url, retries=0) as rc:
        assert rc.score(["Name a colour."], ["blue"], constraints=[[{"family": "casing", "type": "lowercase"}]]
                        )[0].scores == {"rule": 1.0}  # /v1/score needs no pairwise judge
        with pytest.raises(ServiceError) as e:
            rc.compare(["Name a colour."], ["Blue."], ["No."])
    msg = str(e.value)
    assert "HTTP 422: this service has no pairwise judge, so /v1/compare cannot answer (it was started without a " \
           "pairwise --judge). Fix: start" in msg
    assert "Fix: start the service with one, e.g. `rlaif serve -j pairwise-logprob`" in msg
    assert "''" not in msg


def test_the_readme_calls_answer_with_a_pairwise_judge(tmp_path):
    with FakeServer(reply=judge_reply) as upstream, \
            Served(["-j", "rubric", "-j", "pairwise", "--judge-model", "openai:judge", "--base-url",
                    upstream.openai_url], cache=tmp_path / "cache", env={"OPENAI_API_KEY": "k"}) as svc, \
            RewardClient(svc.url) as rc:
        scored = rc.score(["Name a colour."], ["Blue, grade 8."])
        assert scored[0].scores == {"rubric": pytest.approx(7 / 9)}  # 1..10 scaled to 0..1
        (pair,) = rc.compare(["Name a colour."], ["Blue, a good answer."], ["No."])
        assert pair["winner"] == "a" and pair["p_a"] == 1.0 and not pair["flipped"]
        with pytest.raises(ServiceError, match="no pairwise judge 'nope' is loaded; loaded: pairwise. Fix: name"):
            rc.compare(["q"], ["a"], ["b"], judge="nope")
