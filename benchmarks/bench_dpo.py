"""DPO step throughput and peak memory: rlaif's recipe against TRL's DPOTrainer, same model, data and settings.

    python benchmarks/bench_dpo.py                 # CPU, SmolLM2-135M (the embedded default), fp32
    python benchmarks/bench_dpo.py --device cuda   # the same comparison on a GPU in bf16

Each implementation runs in its own subprocess (so each peak RSS is its own): one warm-up step, then
`--steps` timed steps of `--pairs` pairs whose chosen and rejected sequences are `--tokens` tokens long
(prompt and responses each about half). Throughput counts the same work for both: 2 × pairs × tokens
sequence tokens per step, over the median step time; tokens per CPU-second (process CPU time) is
printed beside it because a shared machine's load moves wall-clock times. On CPU each run uses one
thread by default (`--threads`): then CPU time counts work done, not threads spinning while they wait
for a core another process holds, and the per-CPU-second ratio is the stable figure. TRL runs twice:
with its defaults (the reference model is kept in memory and run every step) and with
precompute_ref_log_probs=True (reference pass before training, like rlaif); rlaif's own one-off
reference pass is reported separately. `--only rlaif-two-rows` runs rlaif without prompt sharing (one row
per response, as TRL does), to show how much of the difference that layout accounts for.
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
WORDS = ("the model learns from feedback given by judges who compare two answers and prefer the one that is "
         "more helpful honest clear and correct while the other answer is vague long or wrong").split()


def make_data(path: Path, tokenizer, n_pairs: int, tokens: int, seed: int = 0) -> None:
    """Pairs whose templated prompt+response sequences are `tokens` long (prompt ≈ response ≈ half)."""
    import random

    rng = random.Random(seed)

    def text(n_tokens: int) -> str:
        words: list[str] = []
        while len(tokenizer(" ".join(words), add_special_tokens=False)["input_ids"]) < n_tokens:
            words.append(rng.choice(WORDS))
        return " ".join(words)

    from rlaif.train.tokenize import ChatTokenizer

    enc = ChatTokenizer(tokenizer, max_length=tokens, max_prompt_length=tokens // 2)
    with path.open("w") as f:
        for _ in range(n_pairs):
            prompt = text(tokens // 2 - 30)  # the template's system prompt and headers take about 30 tokens
            p_len = len(enc.prompt_ids([{"role": "user", "content": prompt}]))
            chosen, rejected = text(tokens - p_len - 2), text(tokens - p_len - 2)
            f.write(json.dumps({"prompt": prompt, "chosen": chosen, "rejected": rejected}) + "\n")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_rlaif(args, data: Path, out: Path, share_prompt: bool = True) -> dict:
    from rlaif.train.dpo import train_dpo

    res = train_dpo(data=str(data), model=args.model, out=str(out), batch_size=args.pairs,
                    micro_batch_size=args.pairs, max_steps=args.steps + 1, lr=1e-6, beta=0.1,
                    max_length=args.tokens + 8, max_prompt_length=args.tokens // 2 + 8, eval_fraction=0.0,
                    save_every=10_000, device=args.device, group_by_length=False,
                    precision="bf16" if args.device == "cuda" else "fp32",
                    gradient_checkpointing="off", resume=False, share_prompt=share_prompt)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["split"] == "train"][1:]  # the first step is the warm-up
    return {"step_s": [r["step_s"] for r in rows], "cpu_s": [r["cpu_s"] for r in rows],
            "reference_s": res.reference_seconds}


def run_trl(args, data: Path, out: Path, precompute: bool) -> dict:
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    from rlaif.localmodel import resolve_model_path

    path = resolve_model_path(args.model)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    ds = datasets.load_dataset("json", data_files=str(data), split="train")
    ds = ds.map(lambda r: {"prompt": [{"role": "user", "content": r["prompt"]}],
                           "chosen": [{"role": "assistant", "content": r["chosen"]}],
                           "rejected": [{"role": "assistant", "content": r["rejected"]}]})
    times: list[float] = []
    cpu: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t0, self.c0 = time.perf_counter(), time.process_time()

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter() - self.t0)
            cpu.append(time.process_time() - self.c0)

    cfg = DPOConfig(output_dir=str(out), per_device_train_batch_size=args.pairs, gradient_accumulation_steps=1,
                    max_steps=args.steps + 1, learning_rate=1e-6, beta=0.1, max_length=args.tokens + 8,
                    logging_steps=1, save_strategy="no", report_to=[], use_cpu=args.device == "cpu",
                    bf16=args.device == "cuda", gradient_checkpointing=False, dataloader_num_workers=0,
                    precompute_ref_log_probs=precompute, lr_scheduler_type="constant", seed=0)
    t0 = time.perf_counter()
    trainer = DPOTrainer(model=model, args=cfg, train_dataset=ds, processing_class=tok, callbacks=[Timer()])
    setup_s = time.perf_counter() - t0
    trainer.train()
    return {"step_s": times[1:], "cpu_s": cpu[1:], "setup_s": setup_s}


def worker(args) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        if args.worker.startswith("rlaif"):  # rlaif-two-rows: chosen and rejected in separate rows
            res = run_rlaif(args, Path(args.data), out, share_prompt=args.worker == "rlaif")
        else:
            res = run_trl(args, Path(args.data), out, precompute=args.worker == "trl-precompute")
    if args.device == "cuda":
        import torch

        res["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    res["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(res))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--model", default="local")
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--only", default="rlaif,trl,trl-precompute")
    ap.add_argument("--rounds", type=int, default=1, help="run the implementations in turn this many times")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads per run (default: 1 on CPU, so CPU time measures work, not waiting)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads is None and args.device == "cpu":
        args.threads = 1
    if args.worker:
        return worker(args)
    if args.device == "cuda" and args.pairs == 4 and args.tokens == 256:
        args.pairs, args.tokens, args.steps = 16, 1024, 5  # a GPU needs a bigger step to be measured at all

    from transformers import AutoTokenizer

    from rlaif.localmodel import resolve_model_path

    tok = AutoTokenizer.from_pretrained(resolve_model_path(args.model))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "pairs.jsonl"
        make_data(data, tok, args.pairs * (args.steps + 1), args.tokens)
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        if args.threads:
            env["OMP_NUM_THREADS"] = str(args.threads)
        order = [name for _ in range(args.rounds) for name in args.only.split(",")]
        load_before = os.getloadavg()[0]
        for name in order:
            cmd = [sys.executable, __file__, "--worker", name, "--data", str(data), "--device", args.device,
                   "--model", args.model, "--pairs", str(args.pairs), "--tokens", str(args.tokens),
                   "--steps", str(args.steps), "--threads", str(args.threads or 0)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if proc.returncode or not line:
                print(f"{name} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
                continue
            r = json.loads(line[-1][7:])
            if name in results:  # later rounds: pool the timed steps, keep the highest peak
                results[name]["step_s"] += r["step_s"]
                results[name]["cpu_s"] += r["cpu_s"]
                results[name]["peak_rss_mb"] = max(results[name]["peak_rss_mb"], r["peak_rss_mb"])
            else:
                results[name] = r
    work = 2 * args.pairs * args.tokens
    print(f"DPO, {args.device}, {args.model}, {args.pairs} pairs x {args.tokens} tokens per step, "
          f"{args.steps} timed steps after 1 warm-up, {args.rounds} round(s), "
          f"{args.threads or 'default'} thread(s); load average "
          f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after ({os.cpu_count()} CPUs)")
    for name, r in results.items():
        med = statistics.median(r["step_s"])
        r["tokens_per_s"] = work / med
        r["tokens_per_cpu_s"] = work / statistics.median(r["cpu_s"])
        extra = f", reference pass {r['reference_s']:.1f} s" if "reference_s" in r else ""
        if name == "trl-precompute":
            extra = f", set-up with its reference pass {r['setup_s']:.1f} s"
        gpu = f", peak GPU {r['peak_gpu_mb']:.0f} MB" if "peak_gpu_mb" in r else ""
        print(f"  {name:15s} median step {med:6.2f} s  {r['tokens_per_s']:7.1f} tokens/s  "
              f"{r['tokens_per_cpu_s']:6.1f} tokens/CPU-s  peak RSS {r['peak_rss_mb']:7.0f} MB{gpu}{extra}")
    if "rlaif" in results:
        ours = results["rlaif"]
        for name in ("trl", "trl-precompute"):
            if name in results:
                print(f"  rlaif vs {name}: throughput x{ours['tokens_per_s'] / results[name]['tokens_per_s']:.2f} "
                      f"(per CPU-second x{ours['tokens_per_cpu_s'] / results[name]['tokens_per_cpu_s']:.2f}), "
                      f"peak RSS x{ours['peak_rss_mb'] / results[name]['peak_rss_mb']:.2f}")
        if ours.get("reference_s"):  # the one-off reference pass, spread over the timed steps' share of the data
            per_step = ours["reference_s"] / (args.steps + 1)
            e2e = work / (statistics.median(ours["step_s"]) + per_step)
            print(f"  rlaif counting its reference pass: {e2e:.1f} tokens/s"
                  + (f" (x{e2e / results['trl']['tokens_per_s']:.2f} TRL defaults)" if "trl" in results else ""))


if __name__ == "__main__":
    main()
