"""The rm, dpo and kto recipes end to end on a tiny random Llama (CPU, seconds each)."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from rlaif.errors import ConfigError
from rlaif.train.config import load_config
from tests.support.train_helpers import MARKER, rows, write_kto, write_pairs

FAST = dict(batch_size=8, micro_batch_size=4, lr=1e-3, max_length=96, max_prompt_length=48, threads=1)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return write_pairs(tmp_path_factory.mktemp("data") / "pairs.jsonl")


@pytest.fixture(scope="module")
def dpo_run(tiny_model_dir, pairs, tmp_path_factory):
    from rlaif.train.dpo import train_dpo

    out = tmp_path_factory.mktemp("dpo")
    return train_dpo(data=str(pairs), model=str(tiny_model_dir), out=str(out), max_steps=24, eval_every=12, **FAST)


def test_dpo_first_step_is_log2_with_zero_rewards(dpo_run):
    """Policy = reference at step 0: Δ = 0, so the loss is ln 2 and every reward β(π - ref) is 0."""
    first = rows(__import__("pathlib").Path(dpo_run.out_dir))[0]
    assert first["step"] == 1
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-5)
    for key in ("rewards_chosen", "rewards_rejected", "reward_margin", "kl"):
        assert first[key] == pytest.approx(0.0, abs=1e-5)


def test_dpo_learns_the_marker_and_writes_everything(dpo_run, tiny_model_dir):
    from pathlib import Path

    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = Path(dpo_run.out_dir)
    train = rows(out)
    assert len(train) == 24 and dpo_run.steps == 24 and dpo_run.stopped_by == "max_steps"
    keys = {"loss", "rewards_chosen", "rewards_rejected", "reward_accuracy", "reward_margin", "kl", "grad_norm",
            "tokens_per_s", "lr", "step"}
    assert keys <= set(train[-1])
    late = train[-6:]
    assert sum(r["reward_accuracy"] for r in late) / 6 > 0.9
    assert min(r["reward_margin"] for r in late) > 0.5 > train[0]["reward_margin"]
    evals = rows(out, "eval")
    assert [r["step"] for r in evals] == [12, 24] and evals[-1]["reward_accuracy"] > 0.9
    model = AutoModelForCausalLM.from_pretrained(out)  # a plain HF checkpoint with its tokenizer beside it
    tok = AutoTokenizer.from_pretrained(out)
    assert model.config.vocab_size == len(tok)
    result = json.loads((out / "train_result.json").read_text())
    assert result["steps"] == 24 and result["config"]["beta"] == 0.1 and result["eval"]["step"] == 24
    trained = model.state_dict()["model.layers.0.mlp.up_proj.weight"]
    start = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()["model.layers.0.mlp.up_proj.weight"]
    assert not torch.equal(trained, start)


def test_ipo_first_step_is_one_over_two_beta_squared(tiny_model_dir, pairs, tmp_path):
    from rlaif.train.dpo import train_dpo

    res = train_dpo(data=str(pairs), model=str(tiny_model_dir), out=str(tmp_path), loss_type="ipo", beta=0.25,
                    max_steps=1, eval_fraction=0.0, **FAST)
    assert res.train["loss"] == pytest.approx((1 / (2 * 0.25)) ** 2, abs=1e-4)  # Δ = 0: (0 - 1/(2β))² = 4


def test_soft_labels_and_lora_start_at_log2_and_save_a_merged_model(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    from rlaif.train.dpo import train_dpo

    data = write_pairs(tmp_path / "soft.jsonl", n=16, soft=True)
    res = train_dpo(data=str(data), model=str(tiny_model_dir), out=str(tmp_path / "o"), max_steps=2,
                    eval_fraction=0.0, lora={"r": 4, "alpha": 8}, **FAST)
    first = rows(tmp_path / "o")[0]
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-5)  # LoRA's B starts at 0: policy = reference
    assert res.train["step"] == 2
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "o")  # adapters merged into a plain model
    assert not any("lora" in k for k in model.state_dict())


def test_gradient_accumulation_gives_the_big_batch_loss_and_gradients(tiny_model_dir, pairs, tmp_path):
    """Micro-batches of 8, 3 and 1 over one global batch of 8: the same loss and the same gradients."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlaif.train.batching import local_micro_batches, row_cost
    from rlaif.train.data import load_pairs
    from rlaif.train.losses import dpo_loss
    from rlaif.train.modeling import SequenceLogProbs
    from rlaif.train.offline import LossOut, accumulate_gradients
    from rlaif.train.runtime import Runtime
    from rlaif.train.tokenize import ChatTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    enc = ChatTokenizer(tok, 96, 48)
    items = [enc(e.prompt, e.completions) for e in load_pairs(pairs)[:8]]
    ref = torch.randn(8, 2) - 40  # a reference that differs from the policy, so the loss is not at its ln 2 point
    rt = Runtime(torch.device("cpu"), 0, 1, 0, None, False, False)

    def loss_fn(module, batch, idx, ctx):
        logps, _ = module(batch)
        r = ref[idx]
        return LossOut(dpo_loss(logps[0::2], logps[1::2], r[:, 0], r[:, 1], beta=0.1).losses)

    results = []
    for size in (8, 3, 1):
        torch.manual_seed(0)
        module = SequenceLogProbs(AutoModelForCausalLM.from_pretrained(tiny_model_dir))
        micro = local_micro_batches(list(range(8)), [row_cost(i, True) for i in items], 0, 1, size)
        loss_sum, _, _ = accumulate_gradients(module, loss_fn, items, micro, 8, rt, tok.pad_token_id, True, {})
        grads = torch.cat([p.grad.flatten() for p in module.parameters()])
        results.append((loss_sum.item() / 8, grads))
    (l8, g8), (l3, g3), (l1, g1) = results
    assert l3 == pytest.approx(l8, rel=1e-6) and l1 == pytest.approx(l8, rel=1e-6)
    assert torch.allclose(g3, g8, rtol=1e-4, atol=1e-7) and torch.allclose(g1, g8, rtol=1e-4, atol=1e-7)
    assert g8.abs().sum() > 0


def test_gradient_accumulation_through_the_recipe(tiny_model_dir, pairs, tmp_path):
    """The same two steps with micro-batches of 8 and of 3: identical losses and gradient norms."""
    from rlaif.train.dpo import train_dpo

    runs = []
    for mb in (8, 3):
        cfg = {**FAST, "micro_batch_size": mb}
        train_dpo(data=str(pairs), model=str(tiny_model_dir), out=str(tmp_path / f"mb{mb}"), max_steps=2,
                  eval_fraction=0.0, **cfg)
        runs.append(rows(tmp_path / f"mb{mb}"))
    for a, b in zip(*runs, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)


def test_reward_model_learns_and_scores(tiny_model_dir, pairs, tmp_path):
    from transformers import AutoModelForSequenceClassification

    from rlaif.train.reward_model import RewardScorer
    from rlaif.train.rm import train_rm

    res = train_rm(data=str(pairs), model=str(tiny_model_dir), out=str(tmp_path), max_steps=24,
                   center_rewards_coef=0.01, **FAST)
    train = rows(tmp_path)
    assert train[0]["kl"] is None
    assert sum(r["reward_accuracy"] for r in train[-6:]) / 6 > 0.9 and res.eval["reward_accuracy"] > 0.9
    assert AutoModelForSequenceClassification.from_pretrained(tmp_path).config.num_labels == 1
    scorer = RewardScorer(tmp_path)
    prompts = ["Say something about rivers.", [{"role": "user", "content": "Say something about clouds."}]]
    good = scorer.score(prompts, [f"{MARKER} river stone", f"{MARKER} cloud"])
    bad = scorer.score(prompts, ["river stone", "cloud"])
    assert all(g > b for g, b in zip(good, bad, strict=True))
    assert scorer.best_of("Say something.", ["green window", f"{MARKER} green window", "paper"]) == 1


def test_kto_first_step_is_half_times_weights_and_it_learns(tiny_model_dir, tmp_path):
    """r = 0 and z0 = 0 at step 0: each loss is λ·(1 - σ(0)) = 0.5·λ. The first global batch holds all
    train examples here, so the loss is 0.5·(λ_D·n_D + λ_U·n_U)/n."""
    from rlaif.train.data import load_unpaired, split_by_prompt
    from rlaif.train.kto import train_kto

    data = write_kto(tmp_path / "kto.jsonl")
    train_ex, _ = split_by_prompt(load_unpaired(data), 0.1, seed=0)
    n_d = sum(e.desirable for e in train_ex)
    n_u = len(train_ex) - n_d
    cfg = {**FAST, "batch_size": 64}
    res = train_kto(data=str(data), model=str(tiny_model_dir), out=str(tmp_path / "o"), max_steps=12,
                    desirable_weight=1.5, undesirable_weight=2.0, **cfg)
    first = rows(tmp_path / "o")[0]
    assert first["loss"] == pytest.approx(0.5 * (1.5 * n_d + 2.0 * n_u) / (n_d + n_u), abs=1e-5)
    assert first["kl"] == pytest.approx(0.0, abs=1e-5)
    assert res.train["rewards_chosen"] > res.train["rewards_rejected"]
    assert res.train["kl"] >= 0 and res.train["reward_margin"] > 0 and res.eval["loss"] > 0


def test_max_seconds_budget_stops_training(tiny_model_dir, pairs, tmp_path):
    from rlaif.train.dpo import train_dpo

    res = train_dpo(data=str(pairs), model=str(tiny_model_dir), out=str(tmp_path), epochs=1000, max_seconds=0.5,
                    eval_fraction=0.0, **FAST)
    assert res.stopped_by == "max_seconds" and 1 <= res.steps < 5000


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="unknown key 'betta'"):
        load_config("dpo", None, ["betta=0.2"])
    with pytest.raises(ConfigError, match="key 'beta'.*valid number"):
        load_config("dpo", None, ["beta=abc"])
    with pytest.raises(ConfigError, match="key 'lora.r'"):
        load_config("dpo", None, ["lora.r=x"])
    cfg = load_config("kto", None, ["desirable_weight=1.33", "lora.r=8"])
    assert cfg.desirable_weight == 1.33 and cfg.lora.r == 8


def test_shipped_configs_validate_and_show_their_command():
    from rlaif.train.config import CONFIG_DIR

    for recipe in ("rm", "dpo", "kto"):
        path = CONFIG_DIR / f"{recipe}.yaml"
        assert f"rlaif train {recipe} --data" in path.read_text().splitlines()[1]
        load_config(recipe, path)


def test_cli_bad_line_and_bad_key_exit_2(tiny_model_dir, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n" + '{"prompt": "p"}\n')
    cmd = [sys.executable, "-m", "rlaif.cli", "train", "dpo", "--data", str(bad), "--model", str(tiny_model_dir),
           "-o", str(tmp_path / "o")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 2 and f"{bad}:2:" in proc.stderr, proc.stderr
    proc = subprocess.run(cmd + ["bta=1"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown key 'bta'" in proc.stderr


def test_rerun_extends_a_finished_run_with_its_kept_checkpoint_and_refuses_a_changed_config(tiny_model_dir, pairs,
                                                                                             tmp_path):
    from rlaif.train.dpo import train_dpo

    args = dict(data=str(pairs), model=str(tiny_model_dir), out=str(tmp_path), eval_fraction=0.0,
                keep_checkpoint=True, **FAST)  # without it the checkpoint goes at the end (tests/train/test_summary.py)
    train_dpo(max_steps=2, **args)
    res = train_dpo(max_steps=3, **args)  # a bigger budget continues from the saved step 2
    assert res.steps == 3 and [r["step"] for r in rows(tmp_path)] == [1, 2, 3] and res.checkpoint_kept
    with pytest.raises(ConfigError, match="beta changed"):
        train_dpo(max_steps=4, beta=0.5, **{k: v for k, v in args.items()})


def test_reward_model_with_lora_saves_a_merged_scorer(tiny_model_dir, pairs, tmp_path):
    from transformers import AutoModelForSequenceClassification

    from rlaif.train.reward_model import RewardScorer
    from rlaif.train.rm import train_rm

    train_rm(data=str(pairs), model=str(tiny_model_dir), out=str(tmp_path), max_steps=2, eval_fraction=0.0,
             lora={"r": 4, "alpha": 8}, **FAST)
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert model.config.num_labels == 1 and not any("lora" in k for k in model.state_dict())
    scores = RewardScorer(tmp_path).score(["Hi"], ["Hello"])
    assert len(scores) == 1 and math.isfinite(scores[0])
