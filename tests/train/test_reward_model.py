"""RewardScorer computes as the reward model was trained: bf16 autocast when its run said precision=bf16."""
from __future__ import annotations

import json
import shutil

import pytest


@pytest.mark.parametrize("trained, autocast", [(None, False), ("fp32", False), ("auto", False), ("bf16", True)])
def test_scores_in_the_precision_the_model_was_trained_in(tmp_path, tiny_rm_dir, trained, autocast):
    from rlaif.train.reward_model import RewardScorer

    d = tmp_path / "rm"
    shutil.copytree(tiny_rm_dir, d)
    if trained is not None:  # train_result.json as `rlaif train rm` writes it
        (d / "train_result.json").write_text(json.dumps({"config": {"precision": trained}}))
    scorer = RewardScorer(d, device="cpu")
    assert scorer.autocast is autocast
    prompts, responses = ["Say hi", "Name a colour"], ["Hello there, friend.", "Blue"]
    got = scorer.score(prompts, responses)
    fp32 = RewardScorer(tiny_rm_dir, device="cpu").score(prompts, responses)
    if autocast:  # the same scores up to bf16 rounding, and not computed in fp32
        assert got == pytest.approx(fp32, abs=0.05) and got != fp32
    else:
        assert got == fp32
