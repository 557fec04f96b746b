"""The shipped OpenRLHF reward file (`rlaif/integrations/openrlhf_reward.py`), loaded and called as OpenRLHF
loads and calls a `.py` given as `--reward.remote_url`, against a real token-protected `rlaif serve`."""
from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from serve_helpers import ROOT, TOKEN, Served

THREE_WORDS = [{"family": "length", "type": "words", "n": 3, "relation": "at least"}]
PROMPT = "<|im_start|>user\nSay three words.<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    """A token, the rule scorer, and -1 for what it cannot score."""
    with Served(["--reward-scorer", "rule", "--unscored-reward", "-1"],
                cache=tmp_path_factory.mktemp("openrlhf-file") / "cache", token=TOKEN) as s:
        yield s


@pytest.fixture
def reward_file() -> Path:
    out = subprocess.run([sys.executable, "-m", "rlaif.integrations.openrlhf_reward"], capture_output=True, text=True,
                         check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.strip()
    path = Path(out)
    assert path.is_file() and path.name == "openrlhf_reward.py"
    return path


def load_like_openrlhf(path: Path):
    """openrlhf/utils/agent.py: `spec_from_file_location("reward_func", path)`, executed, `.reward_func` taken."""
    spec = importlib.util.spec_from_file_location("reward_func", str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def call_like_openrlhf(fn, query: str, prompt: str, label) -> dict:
    """One sample per call, in a thread (`asyncio.to_thread`), then the answer's fields as OpenRLHF's samples
    generator turns them into tensors."""
    import torch

    async def fetch():
        return await asyncio.gather(asyncio.to_thread(fn, [query], [prompt], [label]))

    info, = asyncio.run(fetch())
    reward, score = info.get("rewards"), info.get("scores")
    logs = {k: torch.tensor([v.flatten()[0].item() if isinstance(v, torch.Tensor) else v])
            for k, v in (info.get("extra_logs") or {}).items()}
    return {"rewards": torch.tensor([reward]), "scores": torch.tensor([score]), "extra_logs": logs}


def test_the_shipped_file_reaches_a_token_protected_service(svc, reward_file, monkeypatch):
    monkeypatch.setenv("RLAIF_URL", svc.url)
    monkeypatch.setenv("RLAIF_SERVE_TOKEN", TOKEN)
    module = load_like_openrlhf(reward_file)
    got = call_like_openrlhf(module.reward_func, PROMPT + "one two three<|im_end|>", PROMPT, THREE_WORDS)
    assert got["rewards"].tolist() == [1.0] and got["scores"].tolist() == [1.0]  # one reward per sample
    assert {k: v.tolist() for k, v in got["extra_logs"].items()} == {"rlaif_scored": [1.0], "rlaif_unscored": [0.0]}
    # an item the service cannot score (no constraints): the service's --unscored-reward, counted
    got = call_like_openrlhf(module.reward_func, PROMPT + "hello", PROMPT, None)
    assert got["rewards"].tolist() == [-1.0] and got["extra_logs"]["rlaif_unscored"].tolist() == [1.0]
    # without the token the service refuses at once (no retries: a 401 cannot get better)
    monkeypatch.delenv("RLAIF_SERVE_TOKEN")
    with pytest.raises(module.RewardServiceError, match="HTTP 401"):
        module.reward_func([PROMPT + "x"], [PROMPT], [None])
    assert TOKEN not in svc.stdout + svc.stderr


def test_chunks_failover_and_retries(svc, reward_file, monkeypatch):
    module = load_like_openrlhf(reward_file)
    # nothing listens on port 9: each chunk that starts there is retried on the next URL
    monkeypatch.setenv("RLAIF_URL", f"http://127.0.0.1:9,{svc.url}/get_reward")
    monkeypatch.setenv("RLAIF_SERVE_TOKEN", TOKEN)
    monkeypatch.setenv("RLAIF_CHUNK", "2")
    monkeypatch.setenv("RLAIF_BACKOFF_S", "0")
    before = _requests(svc)
    texts = ["one two three", "one", "a b c d", "", "x y z"]
    out = module.reward_func([PROMPT + t for t in texts], [PROMPT] * 5, [THREE_WORDS] * 5)
    assert out["rewards"].tolist() == [1.0, 0.0, 1.0, 0.0, 1.0] and out["rewards"].dtype.is_floating_point
    assert _requests(svc) - before == 3  # five items in chunks of 2: three requests reached the service
    assert module.reward_func([], [], [])["rewards"].tolist() == []
    monkeypatch.setenv("RLAIF_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("RLAIF_RETRIES", "2")
    with pytest.raises(module.RewardServiceError, match=r"refused \(after 3 tries\)\. Fix: check that `rlaif serve`"):
        module.reward_func([PROMPT + "x"], [PROMPT], [None])


def test_a_null_without_a_fallback_is_an_error_never_a_number(reward_file, monkeypatch):
    module = load_like_openrlhf(reward_file)
    monkeypatch.setenv("RLAIF_URL", "http://127.0.0.1:9")
    answer = {"rewards": [0.5, None], "errors": [None, "rule: no constraints"]}
    with pytest.raises(module.RewardServiceError, match="could not score an item .rule: no constraints.*Fix: "):
        module._rewards([answer], module.settings())
    monkeypatch.setenv("RLAIF_UNSCORED_REWARD", "-2")
    assert module._rewards([answer], module.settings()) == ([0.5, -2.0], 1)


@pytest.mark.parametrize("name,value", [("RLAIF_CHUNK", "0"), ("RLAIF_CHUNK", "many"), ("RLAIF_RETRIES", "-1"),
                                        ("RLAIF_TIMEOUT_S", "0"), ("RLAIF_BACKOFF_S", "nan"),
                                        ("RLAIF_UNSCORED_REWARD", "inf"), ("RLAIF_URL", "ftp://host"),
                                        ("RLAIF_URL", "")])
def test_bad_settings_name_the_variable_and_the_fix(reward_file, monkeypatch, name, value):
    module = load_like_openrlhf(reward_file)
    monkeypatch.setenv("RLAIF_URL", "http://127.0.0.1:9")
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=f"{name}.*Fix: "):
        module.reward_func(["q"], ["q"], [None])


def _requests(svc) -> float:
    for line in svc.get("/metrics").text.splitlines():
        if line.startswith('rlaif_serve_requests_total{endpoint="get_reward",status="200"}'):
            return float(line.split()[-1])
    return 0.0


def test_unscored_reward_turns_nulls_into_a_value_openrlhf_can_tensor(svc):
    """The service with --unscored-reward -1: OpenRLHF's own HTTP answer converts, and the count is kept."""
    import torch

    before = _unscored(svc)
    r = svc.post("/get_reward", {"query": [PROMPT + "hello", PROMPT + "one two three"], "prompts": [PROMPT] * 2,
                                 "labels": [None, THREE_WORDS]})
    body = r.json()
    assert r.status_code == 200 and body["rewards"] == [-1.0, 1.0] == body["scores"]
    assert "carries no constraints" in body["errors"][0] and body["errors"][1] is None
    assert body["extra_logs"] == {"scored": 1, "unscored": 1}
    assert torch.tensor([body["rewards"]]).tolist() == [[-1.0, 1.0]]  # OpenRLHF's conversion no longer fails
    assert _unscored(svc) - before == 1


def _unscored(svc) -> float:
    for line in svc.get("/metrics").text.splitlines():
        if line.startswith('rlaif_serve_unscored_total{scorer="rule"}'):
            return float(line.split()[-1])
    return 0.0
