"""Every number a fixed-seed run of the main commands prints, as one JSON, to prove a refactor changed none.

    python benchmarks/behaviour_snapshot.py -o before.json            # on the old checkout
    python benchmarks/behaviour_snapshot.py -o after.json             # on the new one
    python benchmarks/behaviour_snapshot.py --compare before.json after.json

It drives the command line only (the one interface a refactor keeps), in subprocesses run against this
checkout's `rlaif/` (PYTHONPATH), each with a fresh call cache:

- `rlaif label` (two judges and a mean jury on the loopback fake OpenAI server, a deterministic judge whose
  verdict depends on a hash of the prompt it is shown, so the labels carry flips, ties and disagreement),
- `rlaif audit`, `rlaif elo` and `rlaif winrate --labels` on those labels,
- `rlaif train dpo` and `rlaif train grpo` (rule reward) on a tiny random Llama with the SmolLM2 tokenizer,
- `rlaif demo --quick` (about 2.5 minutes; `--skip-demo` leaves it out).

What is kept: every JSON output, metrics.jsonl and the label files, with wall-clock, path and version fields
dropped (`VOLATILE`). `--compare` lists every value that differs (floats beyond a relative 1e-9) and exits 1
if any does.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for sub in ("tests/support", "tests"):  # the loopback server lives with the tests
    if (ROOT / sub / "fakeserver.py").exists():
        sys.path.insert(0, str(ROOT / sub))
        break
from fakeserver import FakeServer, Reply  # noqa: E402

VOLATILE = re.compile(r"(time|second|elapsed|per_s|_s$|date|created|started|finished|path|dir$|rss|wall|duration"
                      r"|pid|host|version|url|command|out$|output|cache)", re.I)
WORDS = "apple river stone cloud green quick silent bright north paper window garden".split()
SHOWN = re.compile(r"Answer A:\n<<<\n(.*?)\n>>>\n\nAnswer B:\n<<<\n(.*?)\n>>>", re.S)


def judge_reply(call):
    """A deterministic, imperfect judge: mostly the longer answer, sometimes the first shown, sometimes a tie."""
    m = SHOWN.search(call.prompt)
    if m is None:
        return "no pair shown"
    a, b = m.group(1), m.group(2)
    h = int(hashlib.sha256(call.prompt.encode()).hexdigest(), 16)
    if call.body.get("logprobs"):
        p_a = 0.3 + 0.4 * ((h % 100) / 100) + (0.15 if len(a) > len(b) else -0.15)
        p_a = min(max(p_a, 0.05), 0.95)
        return Reply("A" if p_a > 0.5 else "B", top_logprobs=[{"A": math.log(p_a), " B": math.log(1 - p_a)}])
    r = h % 10
    if r < 2:
        return "[[C]]"
    if r < 4:
        return "[[A]]"
    return "[[A]]" if len(a) >= len(b) else "[[B]]"


def write_responses(path: Path) -> None:
    rows = []
    for i in range(12):
        for j, pol in enumerate(("base", "tuned", "other")):
            k = 3 + (i * 7 + j * 5) % 9
            text = " ".join(WORDS[(i + j + n) % len(WORDS)] for n in range(k))
            rows.append({"prompt_id": f"q{i}", "prompt": f"Tell me about {WORDS[i % len(WORDS)]} number {i}.",
                         "policy": pol, "response": text, "sample": 0})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def write_pairs(path: Path, n: int = 32) -> None:
    import random

    rng = random.Random(0)
    with path.open("w") as f:
        for i in range(n):
            topic = " ".join(rng.sample(WORDS, 3))
            good = " ".join(rng.choices(WORDS, k=rng.randint(3, 9)))
            bad = " ".join(rng.choices(WORDS, k=rng.randint(3, 9)))
            f.write(json.dumps({"prompt": f"Say something about {topic}.", "chosen": f"OK! {good}",
                                "rejected": bad, "prompt_id": f"p{i}"}) + "\n")


def write_prompts(path: Path, n: int = 8) -> None:
    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"prompt_id": f"p{i}", "prompt": f"Say something about {WORDS[i]} in lowercase.",
                                "constraints": [{"family": "casing", "type": "lowercase"}] if i % 2 else
                                [{"family": "length", "type": "words", "n": 5, "relation": "at most"}]}) + "\n")


def tiny_model(d: Path) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    sys.path.insert(0, str(ROOT))
    from rlaif.localmodel import local_model_dir

    tok = AutoTokenizer.from_pretrained(local_model_dir())  # may convert the GGUF once, which draws random numbers
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(d)
    tok.save_pretrained(d)


def rlaif(work: Path, *args) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RLAIF_CACHE": str(work / "cache"), "OMP_NUM_THREADS": "1",
           "OPENAI_API_KEY": "sk-snapshot-not-a-key", "TOKENIZERS_PARALLELISM": "false"}
    res = subprocess.run([sys.executable, "-m", "rlaif.cli", *map(str, args)], env=env, capture_output=True,
                         text=True)
    if res.returncode != 0:
        sys.exit(f"rlaif {' '.join(map(str, args))} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    print(f"ran: rlaif {' '.join(map(str, args[:2]))}", file=sys.stderr)


def clean(x):
    if isinstance(x, dict):
        return {k: clean(v) for k, v in sorted(x.items()) if not VOLATILE.search(k)}
    if isinstance(x, list):
        return [clean(v) for v in x]
    return x


def read(path: Path, work: Path):
    text = path.read_text().replace(str(work), "<work>")  # rater ids name the run's folder
    if path.suffix == ".jsonl":
        return [clean(json.loads(line)) for line in text.splitlines() if line.strip()]
    return clean(json.loads(text))


def snapshot(work: Path, with_demo: bool) -> dict:
    out: dict = {}
    write_responses(work / "responses.jsonl")
    with FakeServer(reply=judge_reply) as srv:
        rlaif(work, "label", work / "responses.jsonl", "--judge", "pairwise", "--judge", "pairwise-logprob",
              "--judge-model", "openai:judge", "--base-url", srv.openai_url, "--jury", "mean", "-o", work / "label")
    for name in ("labels.jsonl", "preferences.jsonl", "summary.json"):
        out[f"label/{name}"] = read(work / "label" / name, work)
    labels = work / "label" / "labels.jsonl"
    rlaif(work, "audit", labels, "-o", work / "audit")
    out["audit/audit.json"] = read(work / "audit" / "audit.json", work)
    rlaif(work, "elo", labels, "-o", work / "elo")
    out["elo"] = {p.name: read(p, work) for p in sorted((work / "elo").glob("*.json"))}
    rlaif(work, "winrate", "--labels", labels, "--policy", "tuned", "--baseline", "base", "-o", work / "winrate",
          "--bootstrap", "500")
    out["winrate/winrate.json"] = read(work / "winrate" / "winrate.json", work)

    tiny_model(work / "tiny")
    write_pairs(work / "pairs.jsonl")
    rlaif(work, "train", "dpo", "--data", work / "pairs.jsonl", "--model", work / "tiny", "-o", work / "dpo",
          "max_steps=3", "batch_size=4", "seed=0")
    out["dpo/metrics.jsonl"] = read(work / "dpo" / "metrics.jsonl", work)
    write_prompts(work / "prompts.jsonl")
    rlaif(work, "train", "grpo", "--prompts", work / "prompts.jsonl", "--model", work / "tiny", "--reward", "rule",
          "-o", work / "grpo", "max_steps=2", "batch_size=4", "max_new_tokens=8", "seed=0")
    out["grpo/metrics.jsonl"] = read(work / "grpo" / "metrics.jsonl", work)
    if with_demo:
        rlaif(work, "demo", "--quick", "-o", work / "demo")
        out["demo/demo.json"] = read(work / "demo" / "demo.json", work)
    return out


def diff(a, b, where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b))
        return [d for k in keys for d in (diff(a.get(k), b.get(k), f"{where}.{k}") if k in a and k in b
                                          else [f"{where}.{k}: only in {'before' if k in a else 'after'}"])]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items before, {len(b)} after"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in diff(x, y, f"{where}[{i}]")]
    if isinstance(a, float) and isinstance(b, float | int) and not isinstance(b, bool):
        return [] if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) else [f"{where}: {a!r} -> {b!r}"]
    return [] if a == b else [f"{where}: {a!r} -> {b!r}"]


def count(x) -> int:
    if isinstance(x, dict):
        return sum(count(v) for v in x.values())
    if isinstance(x, list):
        return sum(count(v) for v in x)
    return 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", type=Path)
    ap.add_argument("--skip-demo", action="store_true")
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = ap.parse_args()
    if args.compare:
        before, after = (json.loads(p.read_text()) for p in args.compare)
        diffs = diff(before, after)
        for d in diffs:
            print(d)
        print(f"{count(before)} values before, {count(after)} after; {len(diffs)} differ "
              f"({', '.join(sorted(before))})")
        sys.exit(1 if diffs else 0)
    if not args.out:
        ap.error("give -o OUT.json, or --compare BEFORE AFTER")
    with tempfile.TemporaryDirectory(prefix="rlaif-snapshot-") as tmp:
        snap = snapshot(Path(tmp), with_demo=not args.skip_demo)
    args.out.write_text(json.dumps(snap, indent=1, sort_keys=True) + "\n")
    print(f"{count(snap)} values -> {args.out}")


if __name__ == "__main__":
    main()
