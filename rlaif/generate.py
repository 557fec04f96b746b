"""`rlaif generate`: sample responses from a policy for every prompt, appended as they arrive.

One output line per (prompt, sample): `{"prompt_id", "prompt", "policy", "sample",
"response", "usage"}`. Lines are flushed as results arrive, so kill -9 loses at most the
calls in flight; a re-run skips every (prompt_id, sample) already in the output and the
call cache makes the rest of the finished work free. Once every call has finished, the file is rewritten
(atomically) in prompt order, samples ascending: the concurrent calls finish in any order, and data whose
order depended on that would make one seed two different training runs.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlaif.backends import get_backend
from rlaif.backends.base import Backend, Completion, Request
from rlaif.calls import DEFAULT_MAX_FAILED, CallStats, check_max_failed, complete_all
from rlaif.errors import ConfigError, InputError
from rlaif.outlock import locks_output
from rlaif.records import (
    JsonlAppender,
    Prompt,
    Response,
    as_messages,
    atomic_write,
    drop_duplicate_rows,
    iter_json_lines,
    read_jsonl,
)


@dataclass
class GenerateSummary:
    out: Path
    prompts: int
    samples: int
    already_done: int  # lines found in the output before this run
    written: int  # lines this run appended
    stats: CallStats = field(default_factory=CallStats)


def _finished(out: Path, policy: str) -> set[tuple[str, int]]:
    """(prompt_id, sample) pairs already in the output; a torn last line and duplicate rows are dropped first."""
    if not out.exists():
        return set()
    JsonlAppender(out).close()  # truncates a partial last line left by a killed run
    drop_duplicate_rows(out, lambda o: (o.get("policy"), o.get("prompt_id"), o.get("sample", 0)))  # older races
    done: set[tuple[str, int]] = set()
    for n, rec in enumerate(read_jsonl(out, Response), 1):
        if rec.policy != policy:
            raise InputError(out, n, f"this file holds responses of policy '{rec.policy}', not '{policy}'",
                             "write each policy's responses to its own file (-o)")
        done.add((rec.prompt_id, rec.sample))
    return done


@locks_output("out")  # one writer per file, before any call; a run that wrote nothing leaves no file
def generate(prompts: list[Prompt], policy: str | Backend, out: str | Path, *, samples: int = 1,
             temperature: float = 0.7, max_tokens: int = 512, seed: int | None = None, concurrency: int = 8,
             base_urls: list[str] | None = None, api_key_env: str | None = None, timeout_s: float = 120.0,
             progress: bool | None = None, name: str | None = None, max_failed: float = DEFAULT_MAX_FAILED,
             **backend_opts: Any) -> GenerateSummary:
    """Generate `samples` responses per prompt into `out` (resumable). `policy` is a backend spec or a backend;
    `name` is the policy name written on each line (default: the backend spec). A call that fails for good
    writes no line (a re-run makes it again); more than `max_failed` of them raise CallsFailed at the end."""
    if samples < 1 or max_tokens < 1 or concurrency < 1:
        raise ConfigError("-n/--samples, --max-tokens and --concurrency must be at least 1")
    check_max_failed(max_failed)
    out = Path(out)
    backend = get_backend(policy, base_urls=base_urls, api_key_env=api_key_env, timeout_s=timeout_s,
                          **backend_opts) if isinstance(policy, str) else policy
    name = name or backend.spec
    done = _finished(out, name)
    todo: list[tuple[Prompt, int]] = [(p, s) for p in prompts for s in range(samples) if (p.prompt_id, s) not in done]
    summary = GenerateSummary(out=out, prompts=len(prompts), samples=samples, already_done=len(done), written=0)
    if not todo:
        print(f"{out}: all {len(prompts) * samples} responses are there already; nothing to do", file=sys.stderr)
        return summary
    requests = [Request(messages=as_messages(p.prompt), max_tokens=max_tokens, temperature=temperature, top_p=1.0,
                        # distinct samples need distinct seeds, or a seeded API returns one answer n times
                        seed=None if seed is None else seed + s, sample=s)
                for p, s in todo]
    with JsonlAppender(out) as sink:
        def write(i: int, c: Completion) -> None:
            if c.error is not None:  # no line: the resume makes this call again
                return
            p, s = todo[i]
            # The Response record's fields, as a plain dict: a model per line cost more than the write.
            sink.write({"prompt_id": p.prompt_id, "prompt": p.prompt, "policy": name, "sample": s,
                        "response": c.text,
                        "usage": {"input_tokens": c.input_tokens, "output_tokens": c.output_tokens}})
            summary.written += 1

        result = complete_all(backend, requests, concurrency=concurrency, on_result=write, progress=progress,
                              summary=True, description=f"generate {name}", on_error="record")
    summary.stats = result.stats
    if summary.written:
        _in_prompt_order(out, prompts)
    print(f"{out}: wrote {summary.written} responses ({summary.already_done} were there already)", file=sys.stderr)
    result.stats.check(max_failed, f"generate {name}")
    return summary


def _in_prompt_order(out: Path, prompts: list[Prompt]) -> None:
    """Rewrite `out` atomically, when it is not already so, with its lines in the order of `prompts`, samples
    ascending; lines of prompts not in the list first, in their order (a stable sort)."""
    rank: dict[str, int] = {}
    for i, p in enumerate(prompts):
        rank.setdefault(p.prompt_id, i)
    rows = sorted(iter_json_lines(out), key=lambda row: (rank.get(row[1].get("prompt_id"), -1),
                                                         row[1].get("sample", 0)))
    order = [n for n, _ in rows]
    if order == sorted(order):
        return
    with out.open(encoding="utf-8") as f:  # the same line split as iter_json_lines (not str.splitlines)
        lines = f.readlines()
    atomic_write(out, lambda f: f.writelines(lines[n - 1] for n in order))
