"""Labeling cost and throughput.

1. On the embedded local model: generated tokens and seconds per label for `pairwise-logprob`
   (one token) against `pairwise-cot` (a rationale, then the verdict), on a handful of pairs in
   both orders, call cache off (every figure is a real call). Prints the cot/logprob ratios.
2. Through the loopback OpenAI-compatible test server (real openai SDK, 50 ms per answer):
   labels per second at concurrency 64 against a concurrency-1 reference run in the same process.

    python benchmarks/bench_label.py [--pairs 3] [--loopback-labels 1024]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "support"))  # the loopback server lives with the tests

from rlaif.judge import LiveCalls, label_pairs, load_judge  # noqa: E402
from rlaif.judge.pairing import all_pairs  # noqa: E402
from rlaif.records import Response  # noqa: E402

QA = [
    ("What is the capital of France?", "The capital of France is Paris.", "The capital of France is Lyon."),
    ("How many legs does a spider have?", "A spider has eight legs.", "A spider has six legs."),
    ("What is 7 times 8?", "7 times 8 is 56.", "7 times 8 is 54."),
    ("Which planet is closest to the Sun?", "Mercury is closest to the Sun.", "Mars is closest to the Sun."),
    ("What gas do plants absorb for photosynthesis?", "Carbon dioxide.", "Nitrogen."),
    ("In which direction does the Sun rise?", "In the east.", "In the north."),
]


def responses(n: int) -> list[Response]:
    out = []
    for i in range(n):
        q, good, bad = QA[i % len(QA)]
        if i >= len(QA):  # distinct texts: identical requests would be served once by the call layer
            q = f"{q} (variant {i})"
        pid = f"q{i}"
        out += [Response(prompt_id=pid, prompt=q, policy="good", response=good),
                Response(prompt_id=pid, prompt=q, policy="bad", response=bad)]
    return out


def bench_local(n_pairs: int) -> None:
    import torch

    from rlaif.backends import get_backend

    torch.set_num_threads(1)  # on a shared 2-core machine a second OpenMP thread slows small models down
    pairs = all_pairs(responses(n_pairs))
    backend = get_backend("local")
    warm = load_judge("pairwise-logprob", backend=backend)
    label_pairs(pairs[:1], [warm], orders="ab", calls=LiveCalls(cache=False))  # load the model outside the timing
    rows = {}
    for name in ("pairwise-logprob", "pairwise-cot"):
        j = load_judge(name, backend=backend)
        t0 = time.perf_counter()
        run = label_pairs(pairs, [j], calls=LiveCalls(cache=False))
        dt = time.perf_counter() - t0
        st = run.stats[j.rater]
        n = len(run.labels)
        invalid = sum(x.error is not None for x in run.labels)
        rows[name] = (st.output_tokens / n, dt / n)
        print(f"local {name:17s} {n} labels: {st.output_tokens / n:7.1f} generated tokens/label, "
              f"{dt / n:6.2f} s/label, {invalid} invalid")
    (t_lp, s_lp), (t_cot, s_cot) = rows["pairwise-logprob"], rows["pairwise-cot"]
    print(f"local pairwise-cot / pairwise-logprob: {t_cot / t_lp:.0f}x tokens, {s_cot / s_lp:.1f}x seconds per label")


def bench_loopback(n_labels: int, latency_s: float = 0.05) -> None:
    from fakeserver import FakeServer

    from rlaif.backends import get_backend
    from rlaif.calls import complete_all
    from rlaif.judge.labeling import pair_orders, pair_request

    os.environ.setdefault("OPENAI_API_KEY", "sk-loopback")
    pairs = all_pairs(responses(n_labels // 2))
    with FakeServer(reply=lambda call: "[[A]]", latency_s=latency_s) as srv:
        def rate(conc: int, use: list) -> float:
            j = load_judge("pairwise", model="openai:loopback")
            calls = LiveCalls(concurrency=conc, cache=False, base_urls=[srv.openai_url])
            t0 = time.perf_counter()
            run = label_pairs(use, [j], calls=calls)
            dt = time.perf_counter() - t0
            assert all(x.error is None for x in run.labels), run.labels[0].error
            return len(run.labels) / dt

        ref_pairs = pairs[: max(1, min(len(pairs), 16))]
        r1 = rate(1, ref_pairs)
        r64 = rate(64, pairs)
        # the call layer alone on the same requests: what labeling adds on top of it
        j = load_judge("pairwise", model="openai:loopback")
        reqs = [pair_request(j, p, o) for p, o in pair_orders(pairs, "both")]
        t0 = time.perf_counter()
        complete_all(get_backend("openai:loopback", base_urls=[srv.openai_url]), reqs, concurrency=64, cache=False,
                     progress=False)
        raw = len(reqs) / (time.perf_counter() - t0)
    print(f"loopback ({latency_s * 1000:.0f} ms/answer): concurrency 1 {r1:7.1f} labels/s "
          f"({2 * len(ref_pairs)} labels), concurrency 64 {r64:7.1f} labels/s ({2 * len(pairs)} labels): "
          f"{r64 / r1:.1f}x")
    print(f"loopback concurrency 64: labeling {r64:.1f} labels/s vs the call layer alone {raw:.1f} calls/s "
          f"(ratio {r64 / raw:.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=3, help="pairs for the local-model comparison")
    ap.add_argument("--loopback-labels", type=int, default=1024, help="labels through the loopback server")
    ap.add_argument("--skip-local", action="store_true")
    args = ap.parse_args()
    if not args.skip_local:
        bench_local(args.pairs)
    bench_loopback(args.loopback_labels)


if __name__ == "__main__":
    main()
