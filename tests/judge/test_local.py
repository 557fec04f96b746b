"""A real run of the pairwise-logprob judge on the embedded default model (slow: loads SmolLM2)."""
from __future__ import annotations

import math

import pytest

from rlaif.judge import label_pairs, load_judge
from rlaif.judge.pairing import all_pairs
from rlaif.judge.parsers import ab_probability
from rlaif.records import Response

pytestmark = pytest.mark.slow


def test_local_pairwise_logprob_gives_probabilities_over_a_and_b():
    import torch

    torch.set_num_threads(1)
    rs = [Response(prompt_id="q1", prompt="What is the capital of France?", policy="x", response="Paris."),
          Response(prompt_id="q1", prompt="What is the capital of France?", policy="y", response="Berlin."),
          Response(prompt_id="q2", prompt="What is 2 + 2?", policy="x", response="5"),
          Response(prompt_id="q2", prompt="What is 2 + 2?", policy="y", response="4")]
    pairs = all_pairs(rs)
    j = load_judge("pairwise-logprob")
    run = label_pairs(pairs, [j])
    assert len(run.labels) == 4 and all(x.error is None for x in run.labels)
    for lab in run.labels:
        assert lab.parse == "logprob" and lab.rater == "pairwise-logprob@v1:local"
        (pos,) = lab.top_logprobs  # one position asked for
        p_a_tok, p_b_tok = ab_probability(pos, "A", "B"), ab_probability(pos, "B", "A")
        assert p_a_tok + p_b_tok == pytest.approx(1.0, abs=1e-12)
        assert 0.0 < p_a_tok < 1.0  # both tokens are among the top alternatives of this model
        # the raw next-token probabilities of A and B are a real share of the mass, not renormalized noise
        assert sum(math.exp(lp) for t, lp in pos.items() if t.strip() in ("A", "B")) > 0.05
        # the label's p_a is P(first) mapped back to the original a/b
        assert lab.p_a == pytest.approx(p_a_tok if lab.order == "ab" else p_b_tok)
    assert run.stats[j.rater].calls == 4 and run.stats[j.rater].output_tokens == 4
    # the same run again is served from the call cache
    again = label_pairs(pairs, [load_judge("pairwise-logprob")])
    assert again.stats[j.rater].calls == 0 and [x.p_a for x in again.labels] == [x.p_a for x in run.labels]
