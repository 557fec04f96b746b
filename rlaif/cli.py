"""The `rlaif` command line: thin typer commands.

Heavy imports (torch, transformers, SDKs, pandas) happen inside command bodies so
`rlaif --help` answers fast. Only `main()` turns rlaif errors into exit code 2.
Each command section below belongs to one area; keep them separate.
"""
from __future__ import annotations

import sys
from pathlib import Path

import typer

from rlaif.errors import RlaifError

app = typer.Typer(
    help="RL from AI feedback: label, audit, train, evaluate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """RL from AI feedback: label, audit, train, evaluate."""


def main() -> None:
    try:
        app()
    except RlaifError as e:
        typer.secho(f"error: {e}", err=True, fg="red")
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        typer.secho("interrupted: re-run the same command to resume", err=True)
        sys.exit(130)


# --- foundation: generate ------------------------------------------------------------------------
@app.command()
def generate(
    prompts: str = typer.Argument(..., help="prompt file (.jsonl: plain, Alpaca, chat or MT-Bench lines) "
                                            "or a built-in prompt set name, e.g. demo"),
    policy: str = typer.Option(..., "--policy", help="openai:MODEL, anthropic:MODEL, vllm:PATH, hf:PATH or local"),
    out: Path = typer.Option(..., "-o", "--out", help="responses.jsonl (appended; a re-run resumes)"),
    samples: int = typer.Option(1, "-n", "--samples", min=1, help="responses per prompt"),
    temperature: float = typer.Option(0.7, "--temperature", min=0.0),
    max_tokens: int = typer.Option(512, "--max-tokens", min=1),
    seed: int | None = typer.Option(None, "--seed", help="sample s is drawn with seed S+s"),
    concurrency: int = typer.Option(8, "--concurrency", min=1, help="calls in flight at once"),
    base_url: list[str] | None = typer.Option(None, "--base-url", help="an OpenAI-compatible server "
                                              "(vLLM, llama.cpp, Ollama); repeat to spread the load"),
    api_key_env: str | None = typer.Option(None, "--api-key-env", help="environment variable holding the key "
                                           "(default OPENAI_API_KEY / ANTHROPIC_API_KEY)"),
    timeout: float = typer.Option(120.0, "--timeout", min=0.1, help="seconds per call before it is retried"),
) -> None:
    """Sample responses from a policy: one line per (prompt, sample), appended as results arrive."""
    from rlaif.catalog import find
    from rlaif.generate import generate as run
    from rlaif.records import read_prompts

    records = read_prompts(find("prompts", prompts))
    run(records, policy, out, samples=samples, temperature=temperature, max_tokens=max_tokens, seed=seed,
        concurrency=concurrency, base_urls=base_url or None, api_key_env=api_key_env, timeout_s=timeout)



# --- labeling: label, synth, probe ---------------------------------------------------------------


# --- audit: audit, elo, convert ------------------------------------------------------------------


# --- training: train -----------------------------------------------------------------------------


# --- evaluation: winrate, diversity, eval --------------------------------------------------------


# --- the whole loop: demo ------------------------------------------------------------------------
@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "-o", "--out", help="output directory"),
    quick: bool = typer.Option(False, "--quick", help="a smaller, faster run"),
) -> None:
    """Run the RLAIF loop offline on the embedded default model."""
    from rlaif.demo import run_demo

    run_demo(out, quick=quick)


if __name__ == "__main__":
    main()
