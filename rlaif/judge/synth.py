"""`rlaif synth`: generate responses from several policies and label them, in one command.

Each policy's responses go to OUTDIR/responses/N-POLICY.jsonl through `rlaif.generate`
(resumable, cached), all of them together to OUTDIR/responses.jsonl, and the labeling
outputs beside them, exactly as `rlaif label` writes them.
"""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from rlaif.backends import DEFAULT_TIMEOUT_S, is_http
from rlaif.calls.options import CallOptions
from rlaif.catalog import prompt_set, select
from rlaif.errors import ConfigError
from rlaif.judge.pipeline import run_label
from rlaif.judge.spec import Judge
from rlaif.outlock import locks_output
from rlaif.records import Response, read_jsonl, read_prompts, write_json, write_jsonl


def _slug(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", spec).strip("_")[:80] or "policy"


# `rlaif synth`'s call settings unless told otherwise: the backends' timeout.
SYNTH_CALLS = CallOptions(timeout_s=DEFAULT_TIMEOUT_S)


@locks_output("out", directory=True)
def run_synth(prompts: str | Path, policies: list[str], judges: list[Judge], out: Path, *, samples: int = 1,
              temperature: float = 0.7, max_tokens: int = 512, seed: int | None = None,
              judge_base_urls: list[str] | None = None, options: CallOptions = SYNTH_CALLS, limit: int | None = None,
              offset: int = 0, **label_opts: Any) -> dict:
    """Generate `samples` responses per prompt from every policy, then label them; returns the summary.
    `options.base_urls` serve the HTTP policies, and the judges unless `judge_base_urls` are given.
    Each step checks its failed calls against `options.max_failed` (rlaif.calls.CallStats.check)."""
    o = options
    from rlaif.generate import generate

    if len(set(policies)) != len(policies):
        raise ConfigError("the same --policy is given twice. Fix: list each policy once (use -n for more samples)")
    if len(policies) < 2 and samples < 2:
        raise ConfigError("one policy with one sample per prompt makes no pairs. "
                          "Fix: give two or more --policy, or -n 2 or more")
    prompts_path = prompt_set(prompts)
    records = select(read_prompts(prompts_path), limit, offset, prompts_path)
    out = Path(out)
    files = []
    for i, policy in enumerate(policies):
        f = out / "responses" / f"{i}-{_slug(policy)}.jsonl"
        http = is_http(policy)
        generate(records, policy, f, samples=samples, temperature=temperature, max_tokens=max_tokens, seed=seed,
                 concurrency=o.concurrency, base_urls=o.base_urls if http else None,
                 api_key_env=o.api_key_env if http else None, progress=o.progress, timeout_s=o.timeout_s,
                 max_failed=o.max_failed)
        files.append(f)
    merged: list[Response] = []
    for f in files:
        merged += read_jsonl(f, Response)
    merged.sort(key=lambda r: (r.prompt_id, r.policy, r.sample))  # generate appends in arrival order
    responses_path = write_jsonl(out / "responses.jsonl", merged)
    if judge_base_urls is not None:
        options = replace(options, base_urls=judge_base_urls)
    summary = run_label(responses_path, judges, out, prompts_path=prompts_path, options=options, **label_opts)
    summary["synth"] = {"prompts": str(prompts_path), "policies": policies, "samples": samples,
                        "temperature": temperature, "max_tokens": max_tokens, "n_responses": len(merged)}
    write_json(out / "summary.json", summary)
    return summary
