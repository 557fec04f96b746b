"""What `rlaif train` prints when a run ends: where the model is, the headline metrics, what became of the
checkpoint, where the full result is, and the next command to run (the full result stays in
OUT/train_result.json; per-step rows in OUT/metrics.jsonl)."""
from __future__ import annotations

import shlex

from rlaif.progress import format_seconds
from rlaif.train.checkpoint import TrainResult

__all__ = ["run_summary"]

# the metrics worth a glance, in this order, when a row has them (the rest are in train_result.json)
HEADLINE = ("loss", "reward_accuracy", "reward_margin", "reward", "gold", "kl", "kl_k1")


def _metrics(row: dict | None) -> str:
    if not row:
        return "-"
    return "  ".join(f"{k} {row[k]:.4f}" for k in HEADLINE if isinstance(row.get(k), (int, float)))


def _size(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def next_command(recipe: str, out: str, base_model: str) -> str:
    """The command to run next on what the recipe made: a policy is evaluated against the model it started from;
    a reward model trains a policy with GRPO."""
    q = shlex.quote
    if recipe == "rm":
        return f"rlaif train grpo --prompts ifeval_id --reward rm:{q(out)} --model local -o {q(out + '-grpo')}"
    baseline = "local" if base_model == "local" else f"hf:{base_model}"
    return (f"rlaif eval ifeval --policy {q(f'{recipe}=hf:{out}')} --baseline {q(baseline)} --limit 20 "
            f"-o {q(out + '/eval')}")


def run_summary(recipe: str, result: TrainResult, base_model: str) -> str:
    out = result.out_dir
    if result.already_complete:
        head = f"{recipe}: {out} already holds this run, finished ({result.steps} steps): nothing trained"
    else:
        head = (f"{recipe} finished: {result.steps} steps (stopped by {result.stopped_by}) in "
                f"{format_seconds(result.train_seconds)}")
    if result.checkpoint_kept:
        ckpt = f"kept in {out}/checkpoint ({_size(result.checkpoint_bytes)}; remove it when done)"
    else:
        ckpt = (f"removed ({_size(result.checkpoint_bytes)} freed); --keep-checkpoint keeps it, to extend the run "
                "later")
    lines = [head,
             f"  model       {out}  (Hugging Face format, tokenizer beside it)",
             f"  train       {_metrics(result.train)}",
             f"  eval        {_metrics(result.eval)}",
             f"  checkpoint  {ckpt}",
             f"  details     {out}/train_result.json, {out}/metrics.jsonl"]
    if result.hacking:
        onset = result.hacking.get("onset")
        lines.append(f"  hacking     {'onset at step ' + str(onset['step']) if onset else 'no onset found'} "
                     f"({out}/training.html)")
    lines.append(f"next: {next_command(recipe, out, base_model)}")
    return "\n".join(lines)
