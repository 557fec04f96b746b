"""`CallOptions`: how a command makes its model calls, as one frozen record.

The command line (and the demo, online DPO) builds it once from the shared options (`--concurrency`,
`--no-cache`, `--base-url`, `--api-key-env`, `--timeout`, `--max-failed`) and passes it whole to
`run_label`, `run_eval`, `run_synth`, `run_probes`, `winrate_from_responses_file`, `run_online_dpo` and
`rlaif serve`'s scorers, which hand it to the call layer (`LiveCalls.of`) and check the failed share against
`max_failed` at the end.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rlaif.calls.stats import DEFAULT_MAX_FAILED, check_max_failed


@dataclass(frozen=True)
class CallOptions:
    concurrency: int = 8  # calls in flight at once
    cache: bool = True  # answer from (and store in) the call cache
    progress: bool | None = None  # a progress bar: None = only on a terminal
    base_urls: Sequence[str] | None = None  # OpenAI-compatible servers of the HTTP backends (spread over them)
    api_key_env: str | None = None  # the environment variable holding the API key
    timeout_s: float | None = None  # per call; None: the backend's default
    max_failed: float = DEFAULT_MAX_FAILED  # share of failed calls past which the command stops (exit 3)

    def __post_init__(self) -> None:
        check_max_failed(self.max_failed)
