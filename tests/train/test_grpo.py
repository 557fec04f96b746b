"""rlaif/train/grpo.py through `rlaif train grpo` on the tiny model: the loss settings TRL 1.16 names (GSPO's
importance_sampling_level=sequence, loss_type cispo and sapo) each complete a run and change the loss; groups whose
rewards are all equal are counted (`frac_reward_zero_std`), warned about, and with `filter_zero_std_groups` left
out of the loss; temperature=0, which can give no group any variance, is refused with exit 2 and the key to change.

The reward `half_flat` gives every response to a prompt that says FLAT the same reward, and the others rewards that
differ, so with half the prompts FLAT and every prompt in every step, exactly half the groups are flat.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from rlaif.errors import ConfigError
from rlaif.train.config import load_config
from rlaif.train.grpo import GRPO, config_notes
from tests.support.cli_helpers import rlaif_inproc

ROOT = Path(__file__).resolve().parents[2]
REWARD = "python:tests.train.test_grpo:half_flat"
RUN = ("threads=1", "batch_size=8", "k=4", "micro_batch_size=8", "max_new_tokens=4", "lr=1e-2", "beta=0.04")


def half_flat(prompts, *args, completions=None, **kwargs):
    """1.0 for every response to a prompt that says FLAT; else a number that differs between responses (from the
    response's characters). Takes the responses positionally or as TRL's `completions=`."""
    responses = args[0] if args else completions
    return [1.0 if "FLAT" in str(p) else (sum(map(ord, str(r))) % 997) / 997
            for p, r in zip(prompts, responses, strict=True)]


def _prompts(path: Path, flat_every: int = 2, n: int = 8) -> Path:
    rows = [{"prompt_id": f"p{i}", "prompt": f"Tell me about item {i}" + (" FLAT" if i % flat_every == 0 else "")}
            for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _train(tiny_model_dir, tmp_path, name: str, *keys: str, flat_every: int = 2):
    out = tmp_path / name
    r = rlaif_inproc("train", "grpo", "--prompts", _prompts(tmp_path / "prompts.jsonl", flat_every),
                     "--model", tiny_model_dir, "--reward", REWARD, "-o", out, *RUN, *keys)
    assert r.code == 0, r.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [row for row in rows if row.get("split") == "train"], r, out


SETTINGS = {"gspo": ("importance_sampling_level=sequence", "loss_type=grpo"),
            "cispo": ("loss_type=cispo", "epsilon_high=5.0"),
            "sapo": ("loss_type=sapo",),
            "gspo-sapo": ("importance_sampling_level=sequence", "loss_type=sapo", "sapo_temperature_neg=2.0")}


def test_each_new_loss_setting_completes_and_changes_the_loss(tiny_model_dir, tmp_path):
    """Two steps of two epochs each (the second epoch is off-policy, so the ratio leaves 1 and the GSPO ratio differs
    from the per-token one). Same seeds, same samples at step 1: each setting's loss there differs from the default's
    (dapo, token level) and from the grpo/token loss it modifies, and the run records its keys in OUT/config.yaml."""
    base, _, _ = _train(tiny_model_dir, tmp_path, "base", "max_steps=2", "ppo_epochs=2")
    plain_grpo, _, _ = _train(tiny_model_dir, tmp_path, "grpo", "max_steps=2", "ppo_epochs=2", "loss_type=grpo")
    for name, keys in SETTINGS.items():
        rows, run, out = _train(tiny_model_dir, tmp_path, name, "max_steps=2", "ppo_epochs=2", *keys)
        assert [r["step"] for r in rows] == [1, 2], name
        assert all(r["frac_reward_zero_std"] == 0.5 for r in rows), name
        assert rows[0]["reward"] == pytest.approx(base[0]["reward"], abs=1e-9)  # the same samples
        for other in (base, plain_grpo):
            assert abs(rows[0]["loss"] - other[0]["loss"]) > 1e-7, (name, rows[0]["loss"], other[0]["loss"])
        saved = yaml.safe_load((out / "config.yaml").read_text())
        assert all(str(saved[k.split("=")[0]]).lower() == k.split("=")[1] for k in keys), (name, saved)
        assert "Traceback" not in run.stderr
    notes = config_notes(load_config("grpo", None, ["loss_type=cispo"]))
    assert notes and "epsilon_high=5.0" in notes[0]  # TRL's default cap (epsilon, 0.2) said at the start
    assert config_notes(load_config("grpo", None, ["loss_type=cispo", "epsilon_high=5"])) == []
    notes = config_notes(load_config("grpo", None, ["importance_sampling_level=sequence"]))  # with dapo: as TRL warns
    assert len(notes) == 1 and "loss_type=grpo" in notes[0]
    assert config_notes(load_config("grpo", None, ["importance_sampling_level=sequence", "loss_type=grpo"])) == []


def test_dapo_filter_leaves_flat_groups_out_of_the_loss(tiny_model_dir, tmp_path):
    """Step 1, on-policy, loss_type=grpo (each response's token mean, summed, over the count of responses): the flat
    groups' advantages are 0 and the KL's gradient is 0 at the reference, so their rows add nothing to the gradient
    but count in its denominator. Filtered out, the denominator halves (16 of 32 responses): the gradient norm
    doubles, exactly."""
    keys = ("max_steps=1", "loss_type=grpo", "max_grad_norm=null")
    plain, _, _ = _train(tiny_model_dir, tmp_path, "plain", *keys)
    filtered, _, out = _train(tiny_model_dir, tmp_path, "filtered", *keys, "filter_zero_std_groups=true")
    assert plain[0]["frac_reward_zero_std"] == filtered[0]["frac_reward_zero_std"] == 0.5
    assert plain[0]["grad_norm"] > 0
    assert filtered[0]["grad_norm"] == pytest.approx(2 * plain[0]["grad_norm"], rel=1e-5)
    assert yaml.safe_load((out / "config.yaml").read_text())["filter_zero_std_groups"] is True


def test_a_run_where_every_group_is_flat_says_so(tiny_model_dir, tmp_path):
    """Every prompt FLAT: the run completes, `frac_reward_zero_std` is 1 in every row, and stderr says once that the
    step learned nothing from the reward, and what to change."""
    rows, run, _ = _train(tiny_model_dir, tmp_path, "flat", "max_steps=2", flat_every=1)
    assert [r["frac_reward_zero_std"] for r in rows] == [1.0, 1.0]
    assert GRPO.info(object.__new__(GRPO), rows[-1]).endswith(" zero-std 1.00")  # the progress line's text
    text = " ".join(run.stderr.split())
    assert text.count("every group's 4 rewards were equal") == 1, run.stderr[-2000:]
    assert "frac_reward_zero_std=1" in text and "Fix:" in text


def test_temperature_zero_is_refused_as_the_user_met_it(tiny_model_dir, tmp_path):
    """`rlaif train grpo ... temperature=0` in a real process: exit 2 before anything loads, the key named, why
    (greedy: k identical responses, zero advantages), and the Fix; no traceback, no metrics."""
    out = tmp_path / "greedy"
    cmd = [sys.executable, "-m", "rlaif.cli", "train", "grpo", "--prompts", str(_prompts(tmp_path / "p.jsonl")),
           "--model", str(tiny_model_dir), "--reward", REWARD, "-o", str(out), "temperature=0", "max_steps=2"]
    proc = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2, proc.stderr[-2000:]
    text = " ".join(proc.stderr.split())
    assert "temperature=0 samples greedily" in text and "every advantage is 0" in text, text
    assert "Fix: set temperature=1.0" in text and text.count("Fix:") == 1 and "Traceback" not in text
    assert not (out / "metrics.jsonl").exists()
    with pytest.raises(ConfigError, match="temperature=0 samples greedily"):  # RLOO's groups too
        load_config("rloo", None, ["temperature=0"])
    load_config("ppo", None, ["temperature=0"])  # PPO's value baseline needs no group variance


@pytest.mark.parametrize("override,hint", [
    ("filter_groups=true", "did you mean 'filter_zero_std_groups'?"),
    ("dynamic_sampling=true", "did you mean 'filter_zero_std_groups'?"),
    ("importance_sampling=sequence", "did you mean 'importance_sampling_level'?"),
    ("delta=4", "rlaif has no delta"),
    ("vespo_k_pos=2", "loss_type=vespo is not implemented"),
    ("loss_type=luspo", "'grpo', 'bnpo', 'dr_grpo', 'dapo', 'cispo' or 'sapo'"),
    ("importance_sampling_level=seq", "'token' or 'sequence'"),
    ("sapo_temperature_neg=0", "sapo_temperature_neg"),
])
def test_trl_loss_keys_and_values_get_a_hint(override, hint):
    with pytest.raises(ConfigError) as e:
        load_config("grpo", None, [override])
    assert hint in str(e.value) and "Fix:" in str(e.value)


def test_the_new_keys_are_grpo_keys():
    with pytest.raises(ConfigError, match="'importance_sampling_level' is a key of the grpo config, not of rloo"):
        load_config("rloo", None, ["importance_sampling_level=sequence"])
    cfg = load_config("grpo", None, [])
    assert cfg.filter_zero_std_groups is False
    # TRL 1.16's GRPOConfig names and defaults, so a TRL config's loss keys carry over unchanged
    trl = pytest.importorskip("trl")
    fields = trl.GRPOConfig.__dataclass_fields__
    for key in ("importance_sampling_level", "loss_type", "sapo_temperature_pos", "sapo_temperature_neg", "epsilon",
                "epsilon_high", "temperature", "scale_rewards"):
        assert getattr(cfg, key) == fields[key].default, key


def test_bf16_on_the_cpu_runs_and_samples_from_the_updated_weights(tiny_model_dir, tmp_path, monkeypatch):
    from rlaif.train.rl.rollout import Bf16Copy

    seen = []
    real_of = Bf16Copy.of

    def spy(self, model):
        out = real_of(self, model)
        seen.append((out.dtype, next(model.parameters()).dtype, next(out.parameters()).clone()))
        return out

    monkeypatch.setattr(Bf16Copy, "of", spy)
    rows, _, _ = _train(tiny_model_dir, tmp_path, "bf16", "max_steps=2", "precision=bf16")
    assert len(rows) == 2 and all(r["loss"] == r["loss"] for r in rows)  # finite, not NaN
    assert [(a, b) for a, b, _ in seen] == [(torch.bfloat16, torch.float32)] * 2  # one refresh a step
    assert not torch.equal(seen[0][2], seen[1][2])  # step 2 sampled from the weights step 1 updated
