"""rlaif/train/rloo.py through `rlaif train rloo` on the tiny model: groups whose scores are all equal are counted per
step as `frac_reward_zero_std` (TRL's name), as GRPO counts them (tests/train/test_grpo.py)."""
from __future__ import annotations

import json

from tests.support.cli_helpers import rlaif_inproc
from tests.train.test_grpo import REWARD, RUN, _prompts


def test_zero_variance_groups_are_counted(tiny_model_dir, tmp_path):
    """Half the prompts say FLAT (every response scores 1.0) and every prompt is in every step: half the groups."""
    out = tmp_path / "rloo"
    r = rlaif_inproc("train", "rloo", "--prompts", _prompts(tmp_path / "p.jsonl"), "--model", tiny_model_dir,
                     "--reward", REWARD, "-o", out, *RUN, "max_steps=2")
    assert r.code == 0, r.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["frac_reward_zero_std"] for row in rows if row.get("split") == "train"] == [0.5, 0.5]
