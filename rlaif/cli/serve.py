"""`rlaif serve`: the judges and reward models as a service."""
from __future__ import annotations

import math

import typer

from rlaif.cli.entry import app
from rlaif.cli.options import (
    _JUDGE_HELP,
    _JUDGE_MODEL_HELP,
    ApiKeyEnv,
    Concurrency,
    Timeout,
    call_options,
)
from rlaif.cli.paths import file_or_name, folder_or_name


# --- the service: serve ---------------------------------------------------------------------------
@app.command()
def serve(
    judge: list[str] = typer.Option([], "--judge", "-j", help=_JUDGE_HELP + " (pairwise judges: /v1/compare)",
                                    callback=file_or_name),
    judge_model: list[str] = typer.Option([], "--judge-model", help=_JUDGE_MODEL_HELP),
    reward_model: list[str] = typer.Option([], "--reward-model", help="a reward model trained by `rlaif train rm` "
                                           "(its -o directory); repeatable", callback=folder_or_name),
    reward_scorer: str | None = typer.Option(None, "--reward-scorer", help="the scorer /get_reward uses (default: "
                                             "the first reward model, else the first pointwise judge, else rule)"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to bind; any non-loopback one needs "
                                                         "RLAIF_SERVE_TOKEN"),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="port (0: any free port, printed)"),
    base_url: list[str] = typer.Option([], "--base-url", help="OpenAI/Anthropic-compatible server URL "
                                                               "(repeat to spread the load)"),
    api_key_env: ApiKeyEnv = None,
    concurrency: Concurrency = 8,
    timeout: Timeout = 120.0,
    no_cache: bool = typer.Option(False, "--no-cache", help="do not read or write the call cache"),
    device: str | None = typer.Option(None, "--device", help="where reward models run (default: cuda if available)"),
    max_batch: int = typer.Option(64, "--max-batch", min=1, help="items per scorer batch"),
    max_wait_ms: float = typer.Option(2.0, "--max-wait-ms", min=0.0, help="longest wait for a batch to fill"),
    max_queue: int = typer.Option(4096, "--max-queue", min=1, help="items queued per scorer before 429"),
    max_body_bytes: int = typer.Option(16 * 1024 * 1024, "--max-body-bytes", min=1, help="largest request body"),
    max_items: int = typer.Option(1024, "--max-items", min=1, help="most items in one request"),
    max_text_chars: int = typer.Option(100_000, "--max-text-chars", min=1, help="longest prompt or response"),
    drain_timeout: float = typer.Option(60.0, "--drain-timeout", min=0.0, help="seconds to finish requests in "
                                                                               "flight after SIGTERM"),
    unscored_reward: str | None = typer.Option(None, "--unscored-reward", metavar="VALUE",
                                               help="the reward /get_reward sends for an item it could not score "
                                                    "(default: null; OpenRLHF cannot take a null), counted in "
                                                    "extra_logs and /metrics"),
) -> None:
    """Serve judges and reward models over HTTP for RL trainers (OpenRLHF /get_reward, /v1/score, /v1/compare).

    Prints `rlaif serve: http://HOST:PORT`, serves until SIGTERM, finishes the requests in flight, exits 0.
    """
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        from rlaif.errors import MissingDependency

        raise MissingDependency(e.name or "uvicorn", "serve", "rlaif serve") from None
    fill = _unscored_value(unscored_reward)
    from rlaif.serve.app import Batching
    from rlaif.serve.limits import Limits
    from rlaif.serve.loading import ScorerOptions
    from rlaif.serve.server import ServeOptions
    from rlaif.serve.server import serve as run

    calls = call_options(concurrency, base_url, api_key_env, timeout, cache=not no_cache)
    run(ScorerOptions(judges=judge, judge_models=judge_model, reward_models=reward_model, calls=calls, device=device,
                      reward=reward_scorer),
        ServeOptions(host=host, port=port, drain_timeout=drain_timeout, unscored_reward=fill),
        Limits(max_body_bytes=max_body_bytes, max_items=max_items, max_text_chars=max_text_chars),
        Batching(max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=max_queue))


def _unscored_value(text: str | None) -> float | None:
    """--unscored-reward VALUE: a finite number, checked before anything loads."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        from rlaif.errors import ConfigError

        raise ConfigError(f"--unscored-reward '{text}' is not a finite number. Fix: give the reward an unscored item "
                          "should get, e.g. --unscored-reward 0 (or leave the option out to answer null)")
    return value
