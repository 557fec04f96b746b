"""`rlaif.catalog`: the one resolver of prompt-set names and paths, and the `--offset`/`--limit` cut (issue 23,
items 9 and 10)."""
from __future__ import annotations

import pytest

from rlaif.catalog import catalog_dir, prompt_set, prompt_set_names, select
from rlaif.errors import ConfigError


def test_prompt_sets_by_name_path_and_suffix(tmp_path, monkeypatch):
    d = catalog_dir("prompts")
    assert prompt_set("ifeval_id") == d / "ifeval_id.jsonl" == prompt_set("ifeval_id.jsonl")
    own = tmp_path / "mine.jsonl"
    own.write_text('{"prompt": "hi"}\n')
    assert prompt_set(str(own)) == own
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").write_text('{"prompt": "mine"}\n')  # a user file wins over the built-in name
    assert prompt_set("demo").resolve() == (tmp_path / "demo").resolve()
    # neither the probe items nor the master-key responses are prompt sets
    assert prompt_set_names() == ["assistant", "demo", "ifeval_id", "ifeval_ood"]


def test_an_unknown_name_lists_the_sets_and_never_a_judge_template():
    with pytest.raises(ConfigError) as e:
        prompt_set("pairwise_v1", "PROMPTS")  # a judge template in prompts/, not a prompt set
    msg = str(e.value)
    assert msg.startswith("PROMPTS 'pairwise_v1': no such file") and "Fix:" in msg
    assert "ifeval_id" in msg and "pairwise_v1," not in msg and "probes_v1" not in msg and "master_keys" not in msg
    with pytest.raises(ConfigError):
        prompt_set("sub/ifeval_id")  # a name is a bare name, not a path into the catalog


def test_select_is_evals_offset_and_limit():
    items = list(range(10))
    assert select(items, None, 0, "f") == items
    assert select(items, 3, 0, "f") == [0, 1, 2]
    assert select(items, 3, 8, "f") == [8, 9]  # fewer left than the limit: what is left
    assert select(items, None, 7, "f") == [7, 8, 9]
    with pytest.raises(ConfigError, match=r"f has 10 prompts: none left after skipping 10. Fix: lower --offset"):
        select(items, 2, 10, "f")
    with pytest.raises(ConfigError, match="--limit must be at least 1"):
        select(items, 0, 0, "f")
