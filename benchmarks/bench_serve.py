"""Requests/s and p50/p99 latency of `rlaif serve` against calling the same scorer in-process.

Scorers, both loaded in one service (a real `python -m rlaif.cli serve` subprocess on loopback):

(a) a local reward model: a random LlamaForSequenceClassification (2 layers, 64 wide, the SmolLM2
    tokenizer, as tests/conftest.py builds its tiny model) saved as `rlaif train rm` saves one, on the CPU.
    (The embedded SmolLM2-135M as a reward model is too slow on a CPU for this table, and a CPU gains little
    from batching a model that size: its forward cost grows with the tokens either way.);
(b) the `rubric` judge on the loopback fake server (tests/support/fakeserver.py, its own process) answering every
    call after 50 ms, with `-c 64`.

Every request is one item, as OpenRLHF sends them, with a response never seen before (no cache hits; each
run has a fresh cache). The service is driven by C concurrent clients (one asyncio loop, aiohttp). In-process
means C threads each calling `build_reward_fn([SPEC])` on its own item: for the reward model one shared
scorer (one item per forward: one-request-at-a-time scoring), for the judge one reward function per thread
(one call layer each). The reward model is also served by a second service started with `--max-batch 1`
(no coalescing: one request at a time through the same HTTP stack), which isolates what batching buys.
Targets at C = 64: the batched service's reward model >= 3x one-request-at-a-time scoring; the service's
judge within 10% of in-process.

Both sides run torch with one thread (OMP_NUM_THREADS=1 unless set): on a small shared machine, OpenMP's
spin-waiting threads on oversubscribed cores cost the service's scorer thread ~350 ms a batch.

    python benchmarks/bench_serve.py [--requests 320] [--concurrency 1 8 64]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch loads; the service inherits it
LATENCY = 0.05
KEY = "sk-bench-not-a-real-key"
FAKE = ("import sys; sys.path.insert(0, 'tests/support'); from fakeserver import FakeServer; "
        "s = FakeServer(reply=lambda c: 'Fine.\\nRating: [[7]]', latency_s=float(sys.argv[1])).start(); "
        "print(s.openai_url, flush=True); sys.stdin.read()")


def make_rm(d: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    from rlaif.localmodel import local_model_dir

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(local_model_dir())
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024, num_labels=1,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    LlamaForSequenceClassification(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return d


def item(kind: str, i: int, run: str) -> tuple[str, str]:
    return (f"Write a short note about topic {i % 17}.",
            f"{run} {kind} note {i}: the river bends past the old mill and the light is {i % 7} shades of grey.")


def stats(latencies: list[float], wall: float) -> dict:
    lat = sorted(latencies)
    return {"rps": len(lat) / wall, "p50_ms": 1000 * statistics.median(lat),
            "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))]}


async def _drive(url: str, scorer: str, n: int, c: int, run: str) -> dict:
    """C clients, each posting its next one-item request as soon as its last answer is in (aiohttp: httpx's
    connection pool costs this process ~6 ms of CPU a request when answers come back in bursts, which made
    the load generator, not the service, the bottleneck on 2 cores)."""
    import aiohttp

    latencies: list[float] = []
    todo = iter(range(n))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c),
                                     timeout=aiohttp.ClientTimeout(total=300)) as client:
        async def worker() -> None:
            for i in todo:
                p, r = item(scorer, i, run)
                t0 = time.perf_counter()
                async with client.post(url + "/v1/score", json={"items": [{"prompt": p, "response": r}],
                                                                "scorers": [scorer]}) as resp:
                    body = await resp.json()
                latencies.append(time.perf_counter() - t0)
                assert resp.status == 200 and body["results"][0]["scores"][scorer] is not None, str(body)[:300]

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(c)))
        return stats(latencies, time.perf_counter() - t0)


def in_process(fns: list, n: int, c: int, kind: str, run: str) -> dict:
    from rlaif.scoring import RewardBatch

    latencies: list[float] = []
    counter = iter(range(n))
    lock = threading.Lock()

    def worker(k: int) -> None:
        fn = fns[k % len(fns)]
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            p, r = item(kind, i, run)
            t0 = time.perf_counter()
            out = fn(RewardBatch([[{"role": "user", "content": p}]], [r], [{}]))
            latencies.append(time.perf_counter() - t0)
            assert out.rewards[0] is not None, out.errors

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(c)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return stats(latencies, time.perf_counter() - t0)


def scorer_ceiling(fn, n: int = 64) -> tuple[float, float]:
    """Seconds for n new items scored in one batch and one at a time, in-process: the most batching can buy."""
    from rlaif.scoring import RewardBatch

    def items(tag: str) -> list[tuple[str, str]]:
        return [item("rm", i, tag) for i in range(n)]

    def batch(pairs) -> RewardBatch:
        return RewardBatch([[{"role": "user", "content": p}] for p, _ in pairs], [r for _, r in pairs],
                           [{}] * len(pairs))

    fn(batch(items("warm")))
    t0 = time.perf_counter()
    fn(batch(items("batched")))
    together = time.perf_counter() - t0
    t0 = time.perf_counter()
    for pair in items("single"):
        fn(batch([pair]))
    return together, time.perf_counter() - t0


def start_service(rm: Path, judge_url: str, cache: Path, max_batch: int) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RLAIF_CACHE": str(cache), "BENCH_KEY": KEY}
    env.pop("RLAIF_SERVE_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-m", "rlaif.cli", "serve", "--reward-model", str(rm), "-j", "rubric",
                             "--judge-model", "openai:bench", "--base-url", judge_url, "--api-key-env", "BENCH_KEY",
                             "-c", "64", "--max-batch", str(max_batch), "--device", "cpu", "--port", "0"],
                            env=env, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = re.search(r"rlaif serve: (http://\S+)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"the service did not start: {line!r}")
    return proc, m.group(1)


def row(label: str, c: int, served: dict, local: dict, unbatched: dict | None = None) -> str:
    cells = [served, local] + ([unbatched] if unbatched else [])
    text = " | ".join(f"{d['rps']:8.1f} {d['p50_ms']:8.1f} {d['p99_ms']:8.1f}" for d in cells)
    ratios = f"{served['rps'] / local['rps']:6.2f}x"
    if unbatched:
        ratios += f" {served['rps'] / unbatched['rps']:6.2f}x"
    return f"{label:<14} {c:>4} | {text} | {ratios}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=320, help="requests per row at the highest concurrency")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    os.environ["RLAIF_CACHE"] = str(tmp / "cache-inproc")
    os.environ["BENCH_KEY"] = KEY
    rm = make_rm(tmp / "rm")
    fake = subprocess.Popen([sys.executable, "-c", FAKE, str(LATENCY)], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    judge_url = fake.stdout.readline().strip()
    proc, url = start_service(rm, judge_url, tmp / "cache-served", max_batch=64)
    proc1, url1 = start_service(rm, judge_url, tmp / "cache-served-1", max_batch=1)
    from rlaif.rewards import build_reward_fn

    rm_fn = build_reward_fn([f"rm:{rm}"], device="cpu")
    together, alone = scorer_ceiling(rm_fn)
    print(f"reward model alone, in-process: 64 new items in one call {1000 * together:.1f} ms, one at a time "
          f"{1000 * alone:.1f} ms: batching can buy at most {alone / together:.1f}x on this machine")
    print(f"service {url} (--max-batch 64) and {url1} (--max-batch 1); reward model {rm} (2x64 Llama, CPU); "
          f"judge: fake server, {LATENCY * 1000:.0f} ms/call")
    head = " | ".join(f"{n:>8} {'p50 ms':>8} {'p99 ms':>8}" for n in ("served/s", "inproc/s"))
    print(f"{'scorer':<14} {'C':>4} | {head} | {'unbatch/s':>8} {'p50 ms':>8} {'p99 ms':>8} | "
          "served/inproc, served/unbatched")
    results = {}
    try:
        for c in args.concurrency:
            n = max(20, args.requests * c // max(args.concurrency))
            served = asyncio.run(_drive(url, "rm", n, c, f"s{c}"))
            local = in_process([rm_fn], n, c, "rm", f"l{c}")
            unbatched = asyncio.run(_drive(url1, "rm", n, c, f"u{c}"))
            print(row("reward model", c, served, local, unbatched), flush=True)
            results[("rm", c)] = (served, local, unbatched)
        for c in args.concurrency:
            n = max(20, args.requests * c // max(args.concurrency))
            served = asyncio.run(_drive(url, "rubric", n, c, f"s{c}"))
            fns = [build_reward_fn(["judge:rubric"], judge_model="openai:bench", base_urls=[judge_url],
                                   api_key_env="BENCH_KEY", concurrency=1) for _ in range(c)]
            local = in_process(fns, n, c, "rubric", f"l{c}")
            for f in fns:
                f.close()
            print(row("judge 50 ms", c, served, local), flush=True)
            results[("judge", c)] = (served, local)
    finally:
        for p in (proc, proc1):
            p.terminate()
            p.wait(60)
        fake.kill()
        rm_fn.close()
    top, low = max(args.concurrency), min(args.concurrency)
    served, local, unbatched = results[("rm", top)]
    print(f"reward model at C={top}: batched service {served['rps'] / unbatched['rps']:.2f}x the same service scoring "
          f"one request at a time (--max-batch 1), {served['rps'] / results[('rm', low)][1]['rps']:.2f}x one-at-a-time "
          "in-process scoring at C=1 (target >= 3x)")
    overhead = 1 - results[("judge", top)][0]["rps"] / results[("judge", top)][1]["rps"]
    print(f"judge at C={top}: the service costs {100 * overhead:+.1f}% of in-process throughput (target <= 10%)")


if __name__ == "__main__":
    main()
