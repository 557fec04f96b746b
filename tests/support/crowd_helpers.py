"""A synthetic crowd export in the canonical annotation CSV, with labelers of known behaviour planted in it.

`write_crowd(path)` writes rows `annotator,item,prompt,model_a,model_b,response_a,response_b,choice,strength,
created_at,lead_time_s,topic`: `n_items` items, each labelled by `per_item` of `n_labelers` labelers. The truth
is a (60%), b (30%) or tie (10%); honest labelers are right with probability 0.85 and say "clear" more often
when right; labeler "spam" answers at random; "lefty" picks the side shown first 70% of the time; "late"
answers "tie" in the second half of their work; topic "rare" is labelled by "solo" alone; every labeler
sometimes sees the models the other way round (the file's own orientation). Responses of model_a are the
longer ones. `write_annotators` gives each labeler a region (EU/US) and "solo" none (unknown).
"""
from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

COLUMNS = ["annotator", "item", "prompt", "model_a", "model_b", "response_a", "response_b", "choice", "strength",
           "created_at", "lead_time_s", "topic"]
HONEST = [f"h{i}" for i in range(8)]
PLANTED = ["spam", "lefty", "late"]


def _verdict(rng, who: str, truth: str, shown_first: str, k: int, n_own: int) -> str:
    if who == "spam":
        return str(rng.choice(["a", "b", "tie"]))
    if who == "lefty" and rng.random() < 0.7:
        return shown_first
    if who == "late" and k > n_own / 2 and rng.random() < 0.7:
        return "tie"
    if rng.random() < 0.85:
        return truth
    return str(rng.choice([x for x in ("a", "b", "tie") if x != truth]))


def crowd_rows(n_items: int = 240, per_item: int = 4, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    labelers = HONEST + PLANTED
    t0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
    counts: dict[str, int] = {}
    rows = []
    expected = n_items * per_item / len(labelers)
    for i in range(n_items):
        truth = str(rng.choice(["a", "b", "tie"], p=[0.6, 0.3, 0.1]))
        topic = "rare" if i % 20 == 0 else str(rng.choice(["code", "math", "chat"]))
        who_list = ["solo"] if topic == "rare" else list(rng.choice(labelers, per_item, replace=False))
        for who in who_list:
            k = counts[who] = counts.get(who, 0) + 1
            swapped = rng.random() < 0.5  # shown (and written) the other way round
            first = "b" if swapped else "a"
            v = _verdict(rng, who, truth, first, k, expected)
            row_choice = {"a": "b", "b": "a", "tie": "tie"}[v] if swapped else v
            right = v == truth
            strength = "" if v == "tie" else ("clear" if rng.random() < (0.8 if right else 0.3) else "slight")
            ma, mb, ra, rb = ("gpt", "llama", "a long answer " * 6, "short") if not swapped else \
                ("llama", "gpt", "short", "a long answer " * 6)
            rows.append({"annotator": who, "item": f"i{i}", "prompt": f"question {i} <b>&</b>", "model_a": ma,
                         "model_b": mb, "response_a": ra, "response_b": rb, "choice": row_choice,
                         "strength": strength, "created_at": (t0 + timedelta(minutes=10 * len(rows))).isoformat(),
                         "lead_time_s": f"{rng.exponential(30):.1f}", "topic": topic})
    return rows


def write_crowd(path: Path, **kw) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        w.writerows(crowd_rows(**kw))
    return path


def write_annotators(path: Path) -> Path:
    lines = ["annotator,region"] + [f"{who},{'EU' if i % 2 else 'US'}" for i, who in enumerate(HONEST + PLANTED)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
