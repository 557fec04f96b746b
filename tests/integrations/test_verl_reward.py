"""The verl adapter (`rlaif/integrations/verl_reward.py`), loaded as verl loads `custom_reward_function.path` and
called with verl's argument names (sync, async, and the batch manager's plural lists), over a real
token-protected `rlaif serve` and over reward specs in-process."""
from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from serve_helpers import ROOT, TOKEN, Served

from rlaif.client import ServiceError
from rlaif.errors import ConfigError

THREE_WORDS = [{"family": "length", "type": "words", "n": 3, "relation": "at least"}]
GOOD = {"data_source": "ifeval", "solution_str": "one two three", "ground_truth": json.dumps(THREE_WORDS),
        "extra_info": {"prompt": "Say three words.", "index": 0}}
SHORT = {**GOOD, "solution_str": "one OK!"}
BARE = {**GOOD, "ground_truth": None}  # no constraints: the rule cannot score it


@pytest.fixture(scope="module")
def verl_module():
    """verl's get_custom_reward_fn: the path from `python -m ...`, `spec_from_file_location("custom_module")`,
    executed (older verl without registering it in sys.modules, as here)."""
    out = subprocess.run([sys.executable, "-m", "rlaif.integrations.verl_reward"], capture_output=True, text=True,
                         check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.strip()
    spec = importlib.util.spec_from_file_location("custom_module", out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert Path(out).name == "verl_reward.py"
    return module


def with_reward_kwargs(fn, **reward_kwargs):
    """verl's wrapper: the config's reward_kwargs merged into each call's keyword arguments (they win)."""
    if inspect.iscoroutinefunction(fn):
        async def wrapped_async(*args, **kwargs):
            return await fn(*args, **{**kwargs, **reward_kwargs})
        return wrapped_async
    return lambda *args, **kwargs: fn(*args, **{**kwargs, **reward_kwargs})


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    with Served(["--reward-scorer", "rule"], cache=tmp_path_factory.mktemp("verl") / "cache", token=TOKEN) as s:
        yield s


def test_local_specs_give_verl_a_score_and_each_source(verl_module):
    score = with_reward_kwargs(verl_module.compute_score, reward="rule")
    assert score(**GOOD) == {"score": 1.0, "unscored": 0.0}
    assert score(**SHORT) == {"score": 0.0, "unscored": 0.0}
    both = with_reward_kwargs(verl_module.compute_score, reward=["rule", "python:reward_helpers:marker@0.5"])
    got = both(**SHORT)  # rule 0 (two words), marker 1 ("OK!"): 0 + 0.5 x 1
    assert got == {"score": 0.5, "unscored": 0.0, "rlaif/rule": 0.0, "rlaif/python:reward_helpers:marker": 1.0}
    with pytest.raises(verl_module.UnscoredError, match="carries no constraints.*Fix: .*unscored_reward=VALUE"):
        score(**BARE)
    filled = with_reward_kwargs(verl_module.compute_score, reward="rule", unscored_reward=-1)
    assert filled(**BARE) == {"score": -1.0, "unscored": 1.0}


def test_the_service_sync_async_and_batch(verl_module, svc, monkeypatch):
    monkeypatch.setenv("RLAIF_SERVE_TOKEN", TOKEN)
    score = with_reward_kwargs(verl_module.compute_score, url=svc.url, unscored_reward=0)
    assert score(**GOOD) == {"score": 1.0, "unscored": 0.0} and score(**BARE) == {"score": 0.0, "unscored": 1.0}
    # verl's reward loop: a coroutine function is awaited, several responses at once
    async_score = with_reward_kwargs(verl_module.compute_score_async, url=svc.url, weights={"rule": 2.0},
                                     unscored_reward=0)
    assert inspect.iscoroutinefunction(verl_module.compute_score_async)

    async def loop():
        return await asyncio.gather(*(async_score(**item) for item in (GOOD, SHORT, BARE)))

    assert asyncio.run(loop()) == [{"score": 2.0, "unscored": 0.0}, {"score": 0.0, "unscored": 0.0},
                                   {"score": 0.0, "unscored": 1.0}]
    batch = with_reward_kwargs(verl_module.compute_score_batch, url=svc.url, unscored_reward=0.5)
    items = (GOOD, SHORT, BARE)
    got = batch(data_sources=[i["data_source"] for i in items], solution_strs=[i["solution_str"] for i in items],
                ground_truths=[i["ground_truth"] for i in items], extra_infos=[i["extra_info"] for i in items])
    assert [g["score"] for g in got] == [1.0, 0.0, 0.5]
    monkeypatch.delenv("RLAIF_SERVE_TOKEN")
    with pytest.raises(ServiceError, match="HTTP 401"):  # the token is the service's: without it, refused
        with_reward_kwargs(verl_module.compute_score, url=svc.url, scorer="rule", token_env="NO_SUCH_VAR")(**GOOD)


@pytest.mark.parametrize("kwargs,says", [
    ({"reward": "rule", "scorrer": "rm"}, "unknown scorrer. Fix: use url, scorer"),
    ({"reward": "rule", "url": "http://127.0.0.1:9"}, "both url and reward given"),
    ({"reward": "rule", "unscored_reward": "low"}, "unscored_reward='low' is not a finite number"),
    ({"reward": "rule", "unscored_reward": math.nan}, "is not a finite number"),
    ({}, "no rlaif service and no reward spec given. Fix: set reward_kwargs.url (or RLAIF_URL)"),
    ({"reward": "bogus:x"}, "unknown reward kind 'bogus'"),
])
def test_bad_reward_kwargs_name_the_key_and_the_fix(verl_module, monkeypatch, kwargs, says):
    monkeypatch.delenv("RLAIF_URL", raising=False)
    for fn in (verl_module.compute_score, verl_module.compute_score_async):
        call = with_reward_kwargs(fn, **kwargs)
        with pytest.raises(ConfigError, match=_re(says)):
            out = call(**GOOD)
            if inspect.isawaitable(out):
                asyncio.run(out)


def _re(text: str) -> str:
    import re

    return re.escape(text)
