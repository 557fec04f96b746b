"""`rlaif demo`: the best real path that exists so far (grows into the whole loop).

For now: the embedded default model answers the shipped demo prompt set
(prompts/demo.jsonl) into OUTDIR/responses.jsonl; a re-run resumes and reuses the cache.
"""
from __future__ import annotations

import sys
from pathlib import Path

from rlaif.catalog import find
from rlaif.records import read_prompts


def run_demo(out: Path, quick: bool = False) -> None:
    from rlaif.generate import generate

    prompts = read_prompts(find("prompts", "demo"))[: 4 if quick else 8]
    out = Path(out)
    print(f"demo: the embedded model answers {len(prompts)} prompts from prompts/demo.jsonl", file=sys.stderr)
    summary = generate(prompts, "local", out / "responses.jsonl", samples=1, temperature=0.7, max_tokens=64,
                       seed=0, concurrency=1)
    print(f"demo: responses in {summary.out}", file=sys.stderr)
