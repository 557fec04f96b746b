"""Import and audit a large crowd export through the command line (issue 20's scale target: 1M annotations by
2,000 labelers, 200 bootstrap rounds, under 2 minutes and 4 GB on the 2-core CPU machine).

Run: python benchmarks/bench_labelers.py [--rows 1000000] [--labelers 2000] [--rounds 200] [--keep DIR]

Writes a canonical annotation CSV (rows/5 items, a/b/tie verdicts from labelers of accuracy uniform on
[0.5, 0.95], the first 1% answering at random, random display order written as the row's own orientation,
a strength, a timestamp over 30 days, a lead time, 20 topics; an annotator file with a region), then runs
`rlaif convert -f csv` and `rlaif audit --annotators` as subprocesses. Prints wall seconds and peak RSS of
each command (the generation of the CSV is not counted) and the audit's headline figures as JSON.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_export(d: Path, n: int, n_ann: int, seed: int = 0) -> tuple[Path, Path]:
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_items = max(1, n // 5)
    truth = rng.choice(3, n_items, p=[0.45, 0.4, 0.15])
    item, who = rng.integers(0, n_items, n), rng.integers(0, n_ann, n)
    acc = rng.uniform(0.5, 0.95, n_ann)
    acc[: n_ann // 100] = 0.0
    verdict = np.where(rng.random(n) < acc[who], truth[item], rng.integers(0, 3, n))
    swapped = rng.random(n) < 0.5  # this annotator was shown (and the row names) model_b first
    shown = np.where(swapped & (verdict < 2), 1 - verdict, verdict)
    t = pd.Timestamp("2024-05-01", tz="UTC") + pd.to_timedelta(rng.uniform(0, 30 * 86400, n), unit="s")
    frame = pd.DataFrame({
        "annotator": np.char.add("u", who.astype(str)), "item": np.char.add("i", item.astype(str)),
        "prompt": np.char.add("prompt ", item.astype(str)),
        "model_a": np.where(swapped, "m2", "m1"), "model_b": np.where(swapped, "m1", "m2"),
        "response_a": np.where(swapped, "short", "a longer answer with more words"),
        "response_b": np.where(swapped, "a longer answer with more words", "short"),
        "choice": np.array(["a", "b", "tie"])[shown],
        "strength": np.where(shown == 2, "", np.where(rng.random(n) < 0.5, "clear", "slight")),
        "created_at": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "lead_time_s": rng.exponential(30, n).round(1),
        "topic": np.char.add("t", (item % 20).astype(str))})
    export, people = d / "export.csv", d / "annotators.csv"
    frame.to_csv(export, index=False)
    pd.DataFrame({"annotator": [f"u{i}" for i in range(n_ann)],
                  "region": rng.choice(list("ABCDE"), n_ann)}).to_csv(people, index=False)
    return export, people


def timed(args: list[str]) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    w = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "rlaif.cli", *args], capture_output=True, text=True)
    wall = time.perf_counter() - w
    if p.returncode != 0:
        sys.exit(f"rlaif {' '.join(args)} failed:\n{p.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"wall_s": round(wall, 1), "peak_rss_mb": max(peak, before) // 1024, "stdout": p.stdout.strip()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--labelers", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--keep", type=Path, default=None, help="write the files here and keep them")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = args.keep or Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        export, people = write_export(d, args.rows, args.labelers)
        convert = timed(["convert", "-f", "csv", str(export), "-o", str(d / "labels.jsonl")])
        audit = timed(["audit", str(d / "labels.jsonl"), "--annotators", str(people), "--bootstrap",
                       str(args.rounds), "-o", str(d / "audit")])
        res = json.loads((d / "audit" / "labelers.json").read_text())
    flags: dict[str, int] = {}
    for x in res["labelers"]:
        for f in x["flags"]:
            flags[f["name"]] = flags.get(f["name"], 0) + 1
    print(json.dumps({"rows": args.rows, "labelers": args.labelers, "rounds": args.rounds,
                      "convert": convert, "audit": audit,
                      "total_wall_s": round(convert["wall_s"] + audit["wall_s"], 1),
                      "alpha_nominal": res["agreement"]["krippendorff_nominal"]["value"], "flags": flags,
                      "planted_random_labelers": args.labelers // 100,
                      "consensus_changed": res["consensus"]["n_changed"]}, indent=1))


if __name__ == "__main__":
    main()
