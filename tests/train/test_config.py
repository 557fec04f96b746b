"""Training-config errors: an unknown key gets a "did you mean" hint (misspellings, TRL / Trainer names)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from rlaif.errors import ConfigError
from rlaif.train.config import CONFIG_DIR, load_config


def _error(recipe: str, *overrides: str) -> str:
    with pytest.raises(ConfigError) as e:
        load_config(recipe, None, list(overrides))
    return str(e.value)


@pytest.mark.parametrize("recipe,key,hint", [
    ("dpo", "betta", "unknown key 'betta' (did you mean 'beta'?)"),
    ("dpo", "max_lenght", "did you mean 'max_length'"),
    ("dpo", "lora.rr", "unknown key 'lora.rr' (did you mean 'lora.r'?)"),
    ("dpo", "lora.lora_alpha", "did you mean 'lora.alpha'?"),
    ("rm", "betta", "did you mean 'beta'? It is a key of the dpo and kto configs, not of rm"),
])
def test_misspelled_keys_get_the_nearest_name(recipe, key, hint):
    assert hint in _error(recipe, f"{key}=1")


@pytest.mark.parametrize("recipe,key,hint", [
    ("dpo", "learning_rate", "unknown key 'learning_rate' (did you mean 'lr'?)"),
    ("dpo", "per_device_train_batch_size", "did you mean 'micro_batch_size'?"),
    ("dpo", "num_train_epochs", "did you mean 'epochs'?"),
    ("dpo", "logging_steps", "did you mean 'log_every'?"),
    ("dpo", "save_steps", "did you mean 'save_every'?"),
    ("dpo", "eval_steps", "did you mean 'eval_every'?"),
    ("dpo", "output_dir", "did you mean 'out'?"),
    ("dpo", "bf16", "did you mean 'precision'? Set precision=bf16"),
    ("dpo", "lora_r", "did you mean 'lora.r'?"),
    ("dpo", "lr_scheduler_type", "did you mean 'lr_scheduler'?"),
    ("dpo", "ref_model", "did you mean 'reference'?"),
    ("rm", "ref_model", "rlaif calls it 'reference', a key of the dpo and kto configs, not of rm"),
    ("rm", "center_rewards_coefficient", "did you mean 'center_rewards_coef'?"),
    ("dpo", "gradient_accumulation_steps", "rlaif has no gradient_accumulation_steps; set batch_size"),
    ("dpo", "warmup_ratio", "rlaif has no warmup_ratio; use warmup_steps"),
    ("kto", "max_completion_length", "rlaif has no max_completion_length; max_length bounds"),
    ("rm", "beta", "'beta' is a key of the dpo and kto configs, not of rm"),
    ("kto", "loss_type", "'loss_type' is a key of the dpo config, not of kto"),
])
def test_trl_and_trainer_names_map_to_rlaif_names(recipe, key, hint):
    message = _error(recipe, f"{key}=1")
    assert hint in message and f"Fix: the keys of a {recipe} config are" in message


def test_names_rlaif_shares_with_trl_are_accepted():
    cfg = load_config("dpo", None, ["beta=0.2", "loss_type=ipo", "max_length=64", "max_prompt_length=32", "seed=3",
                                    "max_steps=5", "warmup_steps=2", "gradient_checkpointing=on"])
    assert (cfg.beta, cfg.loss_type, cfg.max_steps, cfg.gradient_checkpointing) == (0.2, "ipo", 5, "on")


def test_no_hint_for_a_key_like_no_other():
    assert "unknown key 'frobnicate'. Fix:" in _error("dpo", "frobnicate=1")


def test_a_nested_override_turns_on_a_section_the_yaml_leaves_null():
    """The shipped configs say `lora: null`; `lora.r=8` on the command line must still give LoRA with r=8."""
    cfg = load_config("dpo", CONFIG_DIR / "dpo.yaml", ["lora.r=8"])
    assert cfg.lora is not None and cfg.lora.r == 8


def test_cli_unknown_trl_key_exits_2_with_the_hint(tmp_path):
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    cmd = [sys.executable, "-m", "rlaif.cli", "train", "dpo", "--data", str(data), "--model", "local",
           "-o", str(tmp_path / "o"), "learning_rate=1e-5"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "unknown key 'learning_rate' (did you mean 'lr'?)" in " ".join(proc.stderr.split())


@pytest.mark.parametrize("raw,value", [("on", "on"), ("off", "off"), ("true", "on"), ("false", "off"),
                                       ("auto", "auto")])
def test_gradient_checkpointing_on_off_survive_yaml_booleans(raw, value):
    assert load_config("dpo", None, [f"gradient_checkpointing={raw}"]).gradient_checkpointing == value
