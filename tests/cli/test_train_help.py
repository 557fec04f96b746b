"""`rlaif train RECIPE --help` lists the recipe's config keys, defaults and one line each, made from the config
classes; a config key given as an option says how to pass it (issue 23, item 14)."""
from __future__ import annotations

import re

import pytest

from rlaif.pipelines.online_dpo import OnlineDPOConfig
from rlaif.train.config import CONFIG_DIR, CONFIGS, load_config
from rlaif.train.config_hints import config_keys
from tests.support.cli_helpers import rlaif_inproc


@pytest.mark.parametrize("recipe", [*CONFIGS, "online-dpo"])
def test_train_recipe_help_lists_every_key_with_its_default_and_a_line(recipe, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    r = rlaif_inproc("train", recipe, "--help")
    assert r.code == 0, r.stderr
    section = r.stdout.split(f"Config keys of {recipe}")[1]
    rows = dict(re.findall(r"^  ([a-z_.]+)=(\S*)\s+\S", section, re.M))  # key=default, then its text
    model = OnlineDPOConfig if recipe == "online-dpo" else CONFIGS[recipe]
    assert set(config_keys(model)) <= set(rows), set(config_keys(model)) - set(rows)
    if recipe != "online-dpo":  # the defaults the recipe starts from: its shipped YAML over the class
        cfg = load_config(recipe, CONFIG_DIR / f"{recipe}.yaml")
        assert rows["save_every"] == str(cfg.save_every) and rows["max_steps"] == "null"
        assert rows["lr"] == str(cfg.lr)


def test_grpo_help_as_the_user_asked_for_it(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    text = rlaif_inproc("train", "grpo", "--help").stdout
    assert re.search(r"^  k=4\s+responses sampled per prompt$", text, re.M)
    assert re.search(r"^  beta=0.04\s+KL coefficient against the reference$", text, re.M)
    assert re.search(r"^  max_steps=null\s+optimizer steps; overrides epochs when set$", text, re.M)
    assert re.search(r"^  lora.r=16\s+adapter rank", text, re.M)
    plain = rlaif_inproc("train", "--help").stdout
    assert "rlaif train RECIPE --help" in " ".join(plain.split()) and "Config keys of" not in plain


@pytest.mark.parametrize("argv,fix", [
    (["train", "grpo", "--prompts", "demo", "--max-steps", "2"], "Fix: pass it as max_steps=2"),
    (["train", "rm", "--max_steps=5"], "Fix: pass it as max_steps=5"),
    (["train", "dpo", "--beta", "0.2", "--data", "x.jsonl"], "Fix: pass it as beta=0.2"),
    (["train", "grpo", "--lora", "--model", "local"], "Fix: pass it as lora=VALUE"),
])
def test_a_config_key_given_as_an_option_says_how_to_pass_it(argv, fix):
    r = rlaif_inproc(*argv)
    assert r.code == 2 and "Traceback" not in r.stderr
    assert fix in r.stderr and "is not an option of `rlaif train`" in r.stderr, r.stderr


def test_an_unknown_option_that_is_no_key_is_clicks_error():
    r = rlaif_inproc("train", "grpo", "--bogus", "1")
    assert r.code == 2 and "No such option: --bogus" in r.stderr
