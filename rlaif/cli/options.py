"""Options several commands share, declared once so a flag means one thing everywhere
(tests/test_cli_conventions.py checks the spellings across all commands)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rlaif.calls.options import CallOptions

Concurrency = Annotated[int, typer.Option("--concurrency", "-c", min=1, help="calls in flight at once")]
ApiKeyEnv = Annotated[str | None, typer.Option("--api-key-env", help="environment variable holding the API key "
                                                "(default OPENAI_API_KEY / ANTHROPIC_API_KEY)")]
Timeout = Annotated[float, typer.Option("--timeout", min=0.1, help="seconds per call before it is retried")]
MaxFailed = Annotated[float, typer.Option("--max-failed", min=0.0, max=1.0,
                                          help="share of the calls made that may fail for good (after retries) "
                                               "before the run exits 3; what was answered is kept for the re-run "
                                               "(0: any failure, 1: never)")]
# How `rlaif label` and `rlaif synth` build and filter preference pairs.
Orders = Annotated[str, typer.Option("--orders", help="both | random | ab: the orders each pair is shown in")]
Pairing = Annotated[str, typer.Option("--pairing", help="all | best-worst | reference")]
Reference = Annotated[str | None, typer.Option("--reference", help="the baseline policy for --pairing reference")]
Jury = Annotated[str, typer.Option("--jury", help="majority | mean | dawid-skene")]
MinAgreement = Annotated[float, typer.Option("--min-agreement", help="drop pairs whose judges agree less")]
MinPChosen = Annotated[float, typer.Option("--min-p-chosen", help="drop preferences whose consensus "
                                                                  "probability is lower (e.g. 0.7)")]

# How many prompts a command reads: the same spelling and meaning on every command that reads a prompt set.
Limit = Annotated[int | None, typer.Option("--limit", min=1, help="read only N prompts (after --offset): "
                                                                  "try a command on a few first")]
Offset = Annotated[int, typer.Option("--offset", min=0, help="skip the first N prompts (e.g. those trained on)")]
Precision = Annotated[str, typer.Option("--precision", help="auto | fp32 | bf16, for hf: and local models: auto is "
                                        "bf16 on CUDA and fp32 on the CPU; bf16 samples in bf16 on the CPU too (about "
                                        "1.8x faster where it has AVX512-BF16 or AMX; log-probs stay fp32)")]


def prompts_help(what: str) -> str:
    """The help of a PROMPTS argument or --prompts option: what it is for, and the built-in names it takes."""
    from rlaif.catalog import prompt_set_names
    from rlaif.errors import ConfigError

    try:
        names = ", ".join(prompt_set_names())
    except ConfigError:  # a broken install: `--help` still answers; the command itself says what is missing
        names = "see prompts/"
    return f"{what}: a prompt JSONL file (plain, Alpaca, chat or MT-Bench lines) or a built-in prompt set ({names})"


_JUDGE_HELP = ("a built-in judge (pairwise, pairwise-logprob, pairwise-cot, rubric, rubric-aspects, binary, rule, "
               "reward-model) or a judge YAML file; repeat for a jury")
_JUDGE_MODEL_HELP = ("run the judge(s) on this backend/model instead (openai:MODEL, anthropic:MODEL, hf:PATH, "
                     "vllm:PATH, local; a checkpoint dir for reward-model): once for all judges, or once per --judge")


def local_precision(spec: str, precision: str) -> dict[str, str]:
    """The backend option `--precision` gives a policy spec: hf: and local models take it; others only auto."""
    from rlaif.backends.hf_backend import PRECISIONS
    from rlaif.errors import ConfigError

    if precision not in PRECISIONS:
        raise ConfigError(f"--precision '{precision}' is not one of {', '.join(PRECISIONS)}")
    if spec == "local" or spec.startswith("hf:"):
        return {"precision": precision}
    if precision != "auto":
        raise ConfigError(f"--precision applies to hf: and local models, not '{spec}'. Fix: leave it out")
    return {}


def call_options(concurrency: int, base_url: list[str] | None, api_key_env: str | None,
                 timeout: float | None = None, max_failed: float = 0.5, *, cache: bool = True) -> CallOptions:
    """The `CallOptions` of the shared call flags (an empty --base-url list: the backend's own server; the
    defaults are those of `CallOptions`, for commands without --timeout or --max-failed)."""
    from rlaif.calls.options import CallOptions

    return CallOptions(concurrency=concurrency, cache=cache, base_urls=base_url or None, api_key_env=api_key_env,
                       timeout_s=timeout, max_failed=max_failed)
