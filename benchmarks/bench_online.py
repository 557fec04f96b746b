"""One GRPO step: rlaif's `train grpo` against TRL 1.16's GRPOTrainer, same model, prompts, k, tokens and reward.

    python benchmarks/bench_online.py                 # CPU, SmolLM2-135M (the embedded default), fp32
    python benchmarks/bench_online.py --device cuda   # the same comparison on a GPU in bf16

Each implementation runs in its own subprocess (so each peak RSS is its own): one warm-up step, then `--steps`
timed steps, each of `--prompts` prompts × k = `--k` samples of up to `--tokens` new tokens, scored by the same
Python reward (the share of a response's words written in lowercase), β = 0.04 (so both run a reference
model every step: a frozen copy of the starting weights), dapo loss, group scaling, one epoch and one
optimizer step per rollout, lr 1e-6, gradient checkpointing off, fp32 on CPU. Per step: seconds of
generation, reward and update (everything else: reference and policy forward, backward, optimizer), sampled
completion tokens per second, and peak RSS. TRL's split is timed by wrapping its `_generate` and
`_calculate_rewards`. On CPU each run uses one thread by default (`--threads`), as the other benchmarks do: on a
shared machine more threads measure waiting for cores, not work.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOPICS = ("rivers", "bread", "winter", "libraries", "bicycles", "tea", "volcanoes", "chess", "gardens", "trains",
          "owls", "paper", "bridges", "rain", "maps", "clocks")


def lowercase_share(responses: list[str]) -> list[float]:
    """The same reward for both: the share of words with no uppercase letter."""
    out = []
    for text in responses:
        words = text.split()
        out.append(sum(w == w.lower() for w in words) / len(words) if words else 0.0)
    return out


def prompts_for(n: int) -> list[str]:
    return [f"Write two sentences about {TOPICS[i % len(TOPICS)]}." for i in range(n)]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_rlaif(args, out: Path) -> dict:
    from rlaif.scoring import RewardResult
    from rlaif.train.grpo import train_grpo

    path = out.parent / "prompts.jsonl"
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts_for(args.prompts)))
    train_grpo(dict(prompts=str(path), model=args.model, out=str(out), batch_size=args.prompts, k=args.k,
                    micro_batch_size=args.prompts * args.k, max_new_tokens=args.tokens, max_steps=args.steps + 1,
                    lr=1e-6, beta=0.04, loss_type="dapo", scale_rewards="group", temperature=1.0, save_every=10_000,
                    device=args.device, precision="bf16" if args.device == "cuda" else "fp32",
                    gradient_checkpointing="off", resume=False),
               lambda batch: RewardResult(lowercase_share(batch.responses)))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][1:]  # 1st: warm-up
    return {k: [r[k] for r in rows] for k in ("step_s", "gen_s", "reward_s", "update_s")} | {
        "tokens": [r["response_length"] * r["rows"] for r in rows]}


class _TrlTimes:
    """Wraps a GRPOTrainer's generation and reward calls to split each step's seconds."""

    def __init__(self, trainer):
        self.gen, self.reward, self.tokens = [0.0], [0.0], [0]
        gen, rew = trainer._generate, trainer._calculate_rewards

        def timed_gen(*a, **k):
            t0 = time.perf_counter()
            res = gen(*a, **k)
            self.gen[-1] += time.perf_counter() - t0
            self.tokens[-1] += sum(len(c) for c in res[1])
            return res

        def timed_reward(*a, **k):
            t0 = time.perf_counter()
            res = rew(*a, **k)
            self.reward[-1] += time.perf_counter() - t0
            return res

        trainer._generate, trainer._calculate_rewards = timed_gen, timed_reward

    def next_step(self) -> None:
        self.gen.append(0.0)
        self.reward.append(0.0)
        self.tokens.append(0)


def run_trl(args, out: Path) -> dict:
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from rlaif.localmodel import resolve_model_path

    path = resolve_model_path(args.model)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    rows = [{"prompt": [{"role": "user", "content": p}]} for p in prompts_for(args.prompts)] * (args.steps + 1)
    ds = datasets.Dataset.from_list(rows)
    step_s: list[float] = []
    times: list[_TrlTimes] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **k):
            step_s.append(time.perf_counter() - self.t0)
            times[0].next_step()

    cfg = GRPOConfig(output_dir=str(out), per_device_train_batch_size=args.prompts * args.k, num_generations=args.k,
                     max_completion_length=args.tokens, gradient_accumulation_steps=1, max_steps=args.steps + 1,
                     learning_rate=1e-6, beta=0.04, loss_type="dapo", scale_rewards="group", temperature=1.0,
                     logging_steps=1, save_strategy="no", report_to=[], use_cpu=args.device == "cpu",
                     bf16=args.device == "cuda", gradient_checkpointing=False, dataloader_num_workers=0,
                     lr_scheduler_type="constant", seed=0, shuffle_dataset=False)
    def reward(completions, **kw):
        return lowercase_share([c[-1]["content"] for c in completions])

    trainer = GRPOTrainer(model=model, args=cfg, train_dataset=ds, processing_class=tok, callbacks=[Timer()],
                          reward_funcs=[reward])
    times.append(_TrlTimes(trainer))
    trainer.train()
    t = times[0]
    gen, reward, tokens = t.gen[1:len(step_s)], t.reward[1:len(step_s)], t.tokens[1:len(step_s)]
    steps = step_s[1:]
    # TRL generates inside training_step (between step begin and end), so the split is within the step
    return {"step_s": steps, "gen_s": gen, "reward_s": reward,
            "update_s": [s - g - r for s, g, r in zip(steps, gen, reward, strict=True)], "tokens": tokens}


def worker(args) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        res = run_rlaif(args, out) if args.worker == "rlaif" else run_trl(args, out)
    if args.device == "cuda":
        res["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    res["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(res))


def summary(name: str, res: dict) -> dict:
    med = {k: statistics.median(res[k]) for k in ("step_s", "gen_s", "reward_s", "update_s", "tokens")}
    med["tokens_per_s"] = med["tokens"] / med["step_s"]
    line = (f"{name:6s} step {med['step_s']:7.2f} s  (generation {med['gen_s']:6.2f}, reward {med['reward_s']:5.3f}, "
            f"update {med['update_s']:6.2f})  {med['tokens']:5.0f} tokens  {med['tokens_per_s']:6.1f} tok/s  "
            f"peak RSS {res['peak_rss_mb']:7.0f} MB")
    if "peak_gpu_mb" in res:
        line += f"  peak GPU {res['peak_gpu_mb']:7.0f} MB"
    print(line, flush=True)
    return med | {"peak_rss_mb": res["peak_rss_mb"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--model", default="local")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=48, help="max new tokens per response")
    ap.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up step")
    ap.add_argument("--only", default="rlaif,trl")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads per run (default: 1 on CPU)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads is None and args.device == "cpu":
        args.threads = 1
    if args.worker:
        worker(args)
        return
    print(f"GRPO, one step = {args.prompts} prompts x k={args.k}, up to {args.tokens} new tokens, beta 0.04, "
          f"{args.device}, threads={args.threads}; median of {args.steps} steps after a warm-up", flush=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false"}
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    results = {}
    for name in args.only.split(","):
        cmd = [sys.executable, __file__, "--worker", name] + [
            f"--{k}={v}" for k, v in vars(args).items() if k not in ("worker", "only") and v is not None]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not lines:
            print(f"{name}: failed\n{proc.stderr[-3000:]}")
            continue
        results[name] = summary(name, json.loads(lines[-1][7:]))
    if {"rlaif", "trl"} <= set(results):
        a, b = results["rlaif"], results["trl"]
        print(f"rlaif / TRL: throughput {a['tokens_per_s'] / b['tokens_per_s']:.2f}x (tokens per second), "
              f"step time {b['step_s'] / a['step_s']:.2f}x faster, peak RSS {a['peak_rss_mb'] / b['peak_rss_mb']:.2f}x")


if __name__ == "__main__":
    main()
