"""The online recipes end to end on the tiny random model: each learns a planted reward, the first minibatch sees
ratio 1 and KL 0, metrics carry every field, a SIGKILLed run resumes at the right step with its KL controller,
2-process DDP equals one process, and bad reward specs or prompt files stop the CLI with exit 2 and `file:line`.

The planted reward (tests/support/rl_helpers.py `space_share`) is the share of response tokens that start a word: about
0.65 for the random model, 1.0 when it has learned to emit only such tokens.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlaif.errors import RlaifError
from tests.support.rl_helpers import write_prompts
from tests.support.train_helpers import kill_after_rows

ROOT = Path(__file__).resolve().parents[3]
PLANTED = "python:tests.support.rl_helpers:space_share"
FAST = {"batch_size": 4, "k": 4, "max_new_tokens": 16, "lr": 3e-2, "beta": 0.001, "threads": 1}
# PPO learns slower than the group methods on this reward: its batch-whitened advantages carry no per-prompt
# baseline, so it takes several epochs per rollout (and λ = 1: the sequence reward reaches every token)
RECIPE_CFG = {"grpo": {}, "rloo": {}, "ppo": {"ppo_epochs": 4, "lam": 1.0}}
COMMON_FIELDS = ("reward", "reward_std", f"reward/{PLANTED}", f"reward/{PLANTED}_std", "reward/skipped", "kl_k1",
                 "kl_k3", "entropy", "clip_frac", "approx_kl", "response_length", "no_eos_share", "gen_s", "reward_s",
                 "update_s", "loss", "grad_norm", "lr", "beta", "ratio_first_dev", "rows", "tokens_per_s")
PPO_FIELDS = ("value_loss", "explained_variance")


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _train(recipe: str, tiny_model_dir, tmp_path, reward: str = PLANTED, **cfg):
    from rlaif.rewards import build_reward_fn
    from rlaif.train import train

    prompts = write_prompts(tmp_path / "prompts.jsonl", n=16, skip_every=cfg.pop("skip_every", 0))
    config = {"prompts": str(prompts), "model": str(tiny_model_dir), "out": str(tmp_path / recipe), **FAST, **cfg}
    with build_reward_fn([reward]) as fn:
        return train(recipe, config, fn)


@pytest.mark.parametrize("recipe", ["grpo", "rloo", "ppo"])
def test_each_recipe_learns_the_planted_reward(recipe, tiny_model_dir, tmp_path):
    result = _train(recipe, tiny_model_dir, tmp_path, max_steps=12, **RECIPE_CFG[recipe])
    rows = _rows(tmp_path / recipe)
    assert [r["step"] for r in rows] == list(range(1, 13)) and result.steps == 12
    fields = COMMON_FIELDS + (PPO_FIELDS if recipe == "ppo" else ())
    assert all(r.get(f) is not None for r in rows for f in fields), [f for f in fields if rows[0].get(f) is None]
    # at step 1 the policy is the reference: KL exactly 0; each step's first minibatch: ratio exactly 1 (fp32)
    assert rows[0]["kl_k1"] == 0.0 and rows[0]["kl_k3"] == 0.0
    assert all(r["ratio_first_dev"] == 0.0 for r in rows)
    first = sum(r["reward"] for r in rows[:3]) / 3
    last = sum(r["reward"] for r in rows[-3:]) / 3
    assert last > first + 0.08, [round(r["reward"], 3) for r in rows]
    assert rows[-1]["kl_k1"] > 0.5 and rows[-1]["kl_k3"] > 0.1  # it moved away from the reference
    assert rows[0]["rows"] == 16 and rows[0]["response_length"] <= 16
    out = tmp_path / recipe
    assert (out / "model.safetensors").exists() and (out / "train_result.json").exists()
    assert (out / "value_head.pt").exists() == (recipe == "ppo")


def test_unscored_responses_are_dropped_and_counted(tiny_model_dir, tmp_path):
    """Every fourth prompt's responses get None: they leave the update, reward/skipped counts them, the run goes on
    while no more than max_skipped_share of a step is unscored."""
    _train("grpo", tiny_model_dir, tmp_path, reward="python:tests.support.rl_helpers:half_unscored", skip_every=4,
           max_steps=4, max_new_tokens=4, max_skipped_share=0.8)
    rows = _rows(tmp_path / "grpo")
    assert sum(r["reward/skipped"] for r in rows) > 0 and all(r["reward/skipped"] % 4 == 0 for r in rows)
    assert all(r["reward"] == 1.0 for r in rows)  # the mean over the scored responses only


def test_a_batch_mostly_unscored_stops_with_a_clear_error(tiny_model_dir, tmp_path):
    with pytest.raises(RlaifError, match="could not be scored .*max_skipped_share"):
        _train("grpo", tiny_model_dir, tmp_path, reward="python:tests.support.rl_helpers:half_unscored", skip_every=1,
               max_steps=2, max_new_tokens=4)


def test_a_diverging_run_stops_on_nan(tiny_model_dir, tmp_path):
    with pytest.raises(RlaifError, match="non-finite|is nan|is inf"):
        _train("grpo", tiny_model_dir, tmp_path, max_steps=4, lr=1e12, max_grad_norm=None, max_new_tokens=4)


def test_group_configs_need_two_per_group_and_whole_minibatches():
    from rlaif.errors import ConfigError
    from rlaif.train.config import load_config

    with pytest.raises(ConfigError, match="k >= 2"):
        load_config("grpo", None, ["k=1"])
    with pytest.raises(ConfigError, match="minibatches=99 exceeds"):
        load_config("ppo", None, ["minibatches=99", "batch_size=2"])
    with pytest.raises(ConfigError, match="unknown key 'data'.*--prompts"):
        load_config("rloo", None, ["data=x.jsonl"])


# ---- through the CLI, in real subprocesses ------------------------------------------------------------
def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _cmd(recipe: str, prompts, model, out, *extra, reward: str = PLANTED) -> list[str]:
    return [sys.executable, "-m", "rlaif.cli", "train", recipe, "--prompts", str(prompts), "--model", str(model),
            "--reward", reward, "-o", str(out), "threads=1", *extra]


def test_bad_reward_specs_and_prompt_files_exit_2(tiny_model_dir, tmp_path):
    prompts = write_prompts(tmp_path / "prompts.jsonl", n=8)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "fine"}\n{"nothing": "here"}\n')
    cases = [
        (_cmd("grpo", prompts, tiny_model_dir, tmp_path / "a", reward="bogus:x"), "unknown reward kind 'bogus'"),
        (_cmd("grpo", prompts, tiny_model_dir, tmp_path / "b", reward="python:tests.support.rl_helpers:nope"),
         "has no function 'nope'"),
        (_cmd("ppo", bad, tiny_model_dir, tmp_path / "c"), f"{bad}:2: not a prompt record"),
        (_cmd("rloo", prompts, tiny_model_dir, tmp_path / "d", "num_generations=4"), "did you mean 'k'?"),
    ]
    for cmd, message in cases:
        proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, (cmd, proc.stderr[-2000:])
        assert message in " ".join(proc.stderr.split()), proc.stderr[-2000:]


def test_trl_reward_functions_sync_and_async_run_under_the_cli(tiny_model_dir, tmp_path):
    """TRL reward functions, unchanged: one reading `completion_ids` and a prompt-file column, one `async def`."""
    prompts = write_prompts(tmp_path / "prompts.jsonl", n=8)
    sync = "python:tests.support.rl_helpers:trl_distinct_ids"
    asynchronous = "python:tests.support.rl_helpers:trl_async_words"
    cmd = _cmd("grpo", prompts, tiny_model_dir, tmp_path / "trl", "batch_size=2", "k=2", "max_new_tokens=6",
               "max_steps=1", "max_skipped_share=0.9", reward=sync) + ["--reward", f"{asynchronous}@0.5"]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    row, = _rows(tmp_path / "trl")
    assert 0.0 < row[f"reward/{sync}"] <= 1.0 and row[f"reward/{asynchronous}"] >= 0.0


RESUME = ("batch_size=4", "k=2", "max_new_tokens=8", "lr=1e-2", "max_steps=14", "save_every=2", "kl_target=0.5",
          "kl_horizon=40", "beta=0.05", "ppo_epochs=2")


def test_ppo_resumes_after_sigkill_at_the_right_step_with_its_kl_controller(tiny_model_dir, tmp_path):
    """The adaptive β after a kill -9 and a resume equals the uninterrupted run's, step by step."""
    prompts = write_prompts(tmp_path / "prompts.jsonl", n=16)
    full = tmp_path / "full"
    subprocess.run(_cmd("ppo", prompts, tiny_model_dir, full, *RESUME), check=True, env=_env(), capture_output=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cmd("ppo", prompts, tiny_model_dir, killed, *RESUME), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_after_rows(proc, killed, 5)
    done_before = len(_rows(killed))
    resumed = subprocess.run(_cmd("ppo", prompts, tiny_model_dir, killed, *RESUME), env=_env(), capture_output=True,
                             text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    step = int(resumed.stderr.split("resuming from")[1].split("at step")[1].split()[0])
    assert step % 2 == 0 and 2 <= step <= done_before  # the last periodic checkpoint
    a, b = _rows(full), _rows(killed)
    assert [r["step"] for r in b] == list(range(1, 15))  # rows after the checkpoint written once, not twice
    assert len({round(r["beta"], 8) for r in a}) > 3  # the controller moved β
    for ra, rb in zip(a, b, strict=True):
        for key in ("beta", "reward", "kl_k1", "loss", "value_loss"):
            assert ra[key] == pytest.approx(rb[key], rel=1e-5, abs=1e-7), (ra["step"], key)


def test_two_process_ddp_equals_one_process(tiny_model_dir, tmp_path):
    """torchrun, 2 CPU processes (gloo), 2 prompts each, against one process with the same 4 prompts per step.
    Greedy rollouts (temperature 0) make the sampled responses the same however the prompts are batched; the
    reward, KL, losses, gradient norm and the whitened advantages then agree because every count and every
    whitening statistic is reduced over both processes."""
    prompts = write_prompts(tmp_path / "prompts.jsonl", n=8)
    extra = ("batch_size=4", "k=1", "max_new_tokens=8", "temperature=0", "max_steps=3", "lr=1e-3", "ppo_epochs=2")
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    subprocess.run(_cmd("ppo", prompts, tiny_model_dir, single, *extra), check=True, env=_env(), capture_output=True)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = subprocess.run(torchrun + _cmd("ppo", prompts, tiny_model_dir, ddp, *extra)[1:], env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = _rows(single), _rows(ddp)
    assert len(a) == len(b) == 3 and all(r["rows"] == 4 for r in b)
    for ra, rb in zip(a, b, strict=True):
        for key in ("reward", "kl_k1", "kl_k3", "loss", "grad_norm", "value_loss", "entropy", "response_length"):
            assert ra[key] == pytest.approx(rb[key], rel=1e-4, abs=1e-5), (ra["step"], key, ra[key], rb[key])


# ---- the user's reward module failing: exit 2 naming it, never a traceback or a silent exit ---------------------

EXITING = '''import os
import sys

CALLS = [0]


def reward(prompts, completions, **kwargs):
    CALLS[0] += 1
    if CALLS[0] >= int(os.environ.get("EXIT_AT") or 10**9):
        sys.exit(0)
    return [float(len(c) % 3) for c in completions]
'''


def _user_env(folder: Path, **extra: str) -> dict:
    return {**_env(), "PYTHONPATH": f"{ROOT}{os.pathsep}{folder}", **extra}


def test_a_reward_calling_sys_exit_stops_with_exit_2_and_the_run_resumes(tiny_model_dir, tmp_path):
    """As met: sys.exit(0) inside the reward function ended the run with no message (and exit 0)."""
    (tmp_path / "exiting_reward.py").write_text(EXITING)
    prompts = write_prompts(tmp_path / "prompts.jsonl", n=16)
    out = tmp_path / "run"
    cmd = _cmd("grpo", prompts, tiny_model_dir, out, "batch_size=4", "k=2", "max_new_tokens=8", "max_steps=6",
               "save_every=2", reward="python:exiting_reward:reward")
    first = subprocess.run(cmd, env=_user_env(tmp_path, EXIT_AT="4"), capture_output=True, text=True, timeout=300)
    said = " ".join(first.stderr.split())
    assert first.returncode == 2 and "Traceback" not in first.stderr, first.stderr[-2000:]
    where = tmp_path / "exiting_reward.py"
    assert f"--reward 'python:exiting_reward:reward': exiting_reward:reward called sys.exit(0) at {where}:10" in said
    assert "Fix: raise an exception instead" in said and "resumes from the last checkpoint" in said
    done = len(_rows(out))
    assert 2 <= done < 6
    again = subprocess.run(cmd, env=_user_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    step = int(again.stderr.split("resuming from")[1].split("at step")[1].split()[0])
    assert step % 2 == 0 and 2 <= step <= done
    assert [r["step"] for r in _rows(out)] == list(range(1, 7))


@pytest.mark.parametrize("source,line,error", [
    ("def reward(prompts, responses, metadata)\n    return [1.0]\n", 1, "SyntaxError"),
    ("import json\n\nCONFIG = json.loads('{not json')\n", 3, "raised JSONDecodeError"),
    ("import sys\nif __name__ != '__main__':\n    sys.exit('no config found')\n", 3,
     "called sys.exit('no config found')"),
    ("import nonexistent_package_xyz\n", 1, "raised ModuleNotFoundError: No module named 'nonexistent_package_xyz'"),
])
def test_a_reward_module_that_fails_at_import_exits_2_naming_the_line(tiny_model_dir, tmp_path, source, line, error):
    """As met: a SyntaxError (or any exception) at import gave a traceback and exit 1; sys.exit, a silent exit."""
    (tmp_path / "broken_reward.py").write_text(source)
    prompts = write_prompts(tmp_path / "prompts.jsonl", n=8)
    cmd = _cmd("grpo", prompts, tiny_model_dir, tmp_path / "run", "max_steps=1", reward="python:broken_reward:reward")
    proc = subprocess.run(cmd, env=_user_env(tmp_path), capture_output=True, text=True, timeout=300)
    said = " ".join(proc.stderr.split())
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "--reward 'python:broken_reward:reward': importing module 'broken_reward' failed" in said, said
    assert error in said and f"at {tmp_path / 'broken_reward.py'}:{line}. Fix: correct" in said, said
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
