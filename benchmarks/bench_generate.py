"""Throughput of `rlaif generate` against the loopback fake server with a fixed latency per call.

The server runs in its own process (tests/fakeserver.py, one thread per connection) and
answers every call after LATENCY seconds, so the ideal rate at concurrency C is C / LATENCY.
The client is rlaif.generate.generate, the function behind the CLI command, with a fresh
call cache per row. A second run with the output deleted and the cache kept measures
records/s served from the cache. Targets: >= 80% of ideal at 32, >= 60% at 128.

    python benchmarks/bench_generate.py [--latency 0.1] [--rounds 10]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--rounds", type=int, default=10, help="calls per row = rounds x concurrency (at least 30)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 128])
    args = ap.parse_args()

    server = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fakeserver.py"), "--latency", str(args.latency)],
                              stdout=subprocess.PIPE, text=True)
    url = server.stdout.readline().strip()
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-real-key")
    import rlaif.backends.openai_backend  # noqa: F401 - SDK import time is start-up, not per-call work
    from rlaif.generate import generate
    from rlaif.records import read_prompts

    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for c in args.concurrency:
                n = max(30, args.rounds * c)
                pfile = Path(tmp) / f"prompts-{c}.jsonl"
                pfile.write_text("".join(json.dumps({"prompt_id": f"b{c}-{i}", "prompt": f"bench {c} {i}"}) + "\n"
                                         for i in range(n)))
                prompts = read_prompts(pfile)
                os.environ["RLAIF_CACHE"] = str(Path(tmp) / f"cache-{c}")
                out = Path(tmp) / f"out-{c}.jsonl"
                t0 = time.perf_counter()
                s = generate(prompts, "openai:bench", out, base_urls=[url + "/v1"], concurrency=c, max_tokens=16,
                             progress=False)
                live = time.perf_counter() - t0
                assert s.stats.calls == n and s.written == n, s
                out.unlink()
                t0 = time.perf_counter()
                s2 = generate(prompts, "openai:bench", out, base_urls=[url + "/v1"], concurrency=c, max_tokens=16,
                              progress=False)
                cached = time.perf_counter() - t0
                assert s2.stats.calls == 0 and s2.written == n, s2
                ideal = c / args.latency
                rows.append((c, n, n / live, ideal, n / live / ideal, n / cached))
    finally:
        server.terminate()
        server.wait()

    print(f"\nrlaif generate vs loopback server, {args.latency * 1000:.0f} ms per call "
          f"({os.cpu_count()} CPUs; client and server share them)")
    print(f"{'concurrency':>11} {'calls':>6} {'calls/s':>9} {'ideal/s':>9} {'of ideal':>9} {'cached rec/s':>13}")
    for c, n, rate, ideal, frac, cached_rate in rows:
        print(f"{c:>11} {n:>6} {rate:>9.1f} {ideal:>9.1f} {frac:>8.0%} {cached_rate:>13.0f}")
    targets = {32: 0.8, 128: 0.6}
    for c, _, _, _, frac, _ in rows:
        if c in targets:
            verdict = "meets" if frac >= targets[c] else "MISSES"
            print(f"concurrency {c}: {frac:.0%} of ideal, {verdict} the {targets[c]:.0%} target")


if __name__ == "__main__":
    main()
