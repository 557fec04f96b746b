"""The human-labeler statistics (rlaif.stats, issue 20 section 2) on a synthetic crowd export.

Run: python benchmarks/bench_labeler_stats.py [--rows 1000000] [--labelers 2000] [--rounds 200] [--skill one-coin]

The table: rows/5 items, labels a/b/tie from labelers whose accuracy is uniform on [0.5, 0.95] (the first
1% answer at random, the next 2% pick the side shown first half of the time), random display order, a
timestamp over 30 days, two strength levels, lead times, 20 topics, a 5-value annotator group, 2% gold items.
Every statistic runs on one shared `ItemBootstrap` of `--rounds` rounds. Prints wall and CPU seconds per step,
the total, and peak memory (the importer is not part of this: see the CLI's own benchmark).
"""
from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

from rlaif.stats.annotations import Annotations
from rlaif.stats.bootstrap import ItemBootstrap
from rlaif.stats.confidence import confidence_calibration
from rlaif.stats.consensus import weighted_consensus
from rlaif.stats.coverage import coverage
from rlaif.stats.crowd_agreement import agreement_summary, overlap_graph
from rlaif.stats.groups import group_report
from rlaif.stats.labelers import audit_labelers


def synthetic(n: int, n_ann: int, seed: int = 0, topics: int = 20) -> Annotations:
    rng = np.random.default_rng(seed)
    n_items = max(1, n // 5)
    truth = rng.choice(3, n_items, p=[0.45, 0.4, 0.15])
    item, who = rng.integers(0, n_items, n), rng.integers(0, n_ann, n)
    acc = rng.uniform(0.5, 0.95, n_ann)
    acc[: n_ann // 100] = 0.0
    label = np.where(rng.random(n) < acc[who], truth[item], rng.integers(0, 3, n))
    order = rng.integers(0, 2, n)
    biased = (who >= n_ann // 100) & (who < 3 * n_ann // 100) & (rng.random(n) < 0.5) & (label != 2)
    label = np.where(biased, order, label)
    return Annotations(item, who, label, time=rng.uniform(0, 30 * 86400, n), order=order,
                       strength=rng.integers(0, 2, n), strength_names=("slight", "clear"),
                       lead_time=rng.exponential(30, n), topic=rng.integers(0, topics, n_items),
                       topic_names=tuple(f"t{i}" for i in range(topics)),
                       gold=np.where(rng.random(n_items) < 0.02, truth, -1),
                       groups={"region": rng.integers(0, 5, n_ann)}, group_names={"region": tuple("ABCDE")})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--labelers", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--skill", default=None, help="also fit a latent-class model (crowd-kit): one-coin, ...")
    args = ap.parse_args()
    ann = synthetic(args.rows, args.labelers)
    boot = ItemBootstrap(ann.n_items, args.rounds, 0)
    times = {}

    def step(name, fn):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        times[name] = {"wall_s": round(time.perf_counter() - w, 2), "cpu_s": round(time.process_time() - c, 2)}
        return out

    step("agreement", lambda: agreement_summary(ann, boot))
    graph = step("overlap graph", lambda: overlap_graph(ann))
    audit = step("labelers + drift", lambda: audit_labelers(ann, boot, skill_model=args.skill))
    step("coverage", lambda: coverage(ann, boot))
    step("groups", lambda: group_report(ann, "region", boot))
    step("confidence", lambda: confidence_calibration(ann, boot))
    rel = np.array([r.agreement.value if r.agreement.value is not None else np.nan for r in audit.labelers])
    cons = step("consensus", lambda: weighted_consensus(ann, rel))
    flags: dict[str, int] = {}
    for r in audit.labelers:
        for f in r.flags:
            flags[f.name] = flags.get(f.name, 0) + 1
    print(json.dumps({"rows": ann.n, "items": ann.n_items, "labelers": ann.n_annotators, "rounds": args.rounds,
                      "steps": times, "total_wall_s": round(sum(t["wall_s"] for t in times.values()), 2),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                      "overlap_pairs": graph.n_pairs, "flags": flags, "consensus_changed": cons.n_changed},
                     indent=1))


if __name__ == "__main__":
    main()
