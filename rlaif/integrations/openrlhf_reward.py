"""OpenRLHF's custom reward file over `rlaif serve`: give this file's path as `--reward.remote_url`.

    python -m openrlhf.cli.train_ppo_ray ... --reward.remote_url "$(python -m rlaif.integrations.openrlhf_reward)"

OpenRLHF loads `reward_func(queries, prompts, labels, **kwargs)` from a `.py` path and calls it (in a thread)
with the prompt + response texts, the prompts and the labels; this one posts them to the service's
`/get_reward` and returns what OpenRLHF's local reward contract asks: `{"rewards": tensor, "scores": tensor,
"extra_logs": {name: number}}`. Unlike OpenRLHF's own HTTP client it sends the service's token, retries with
backoff, spreads chunks over several URLs and fails over between them. It imports nothing of rlaif (the
standard library and torch only), so it also works copied to machines where rlaif is not installed.

Settings, from the environment (with Ray: `--runtime-env-json '{"env_vars": {...}}'`):

    RLAIF_URL              the service: http://HOST:PORT (or .../get_reward); comma-separated for several
    RLAIF_SERVE_TOKEN      the service's token, sent as `Authorization: Bearer ...`
    RLAIF_SCORER           the scorer /get_reward uses (?scorer=NAME; default: the service's)
    RLAIF_CHUNK            items per request (default 256; the service's --max-items is 1024)
    RLAIF_RETRIES          retries of a request after 429, 5xx, a refused connection or a timeout (default 5)
    RLAIF_BACKOFF_S        the first wait between tries, doubled each time, Retry-After honoured (default 1)
    RLAIF_TIMEOUT_S        seconds per request (default 180)
    RLAIF_UNSCORED_REWARD  the reward of an item the service could not score; unset: such an item is an error,
                           never a silent number (or start the service with --unscored-reward VALUE)

`extra_logs` holds `rlaif_scored` and `rlaif_unscored`, the counts of this call (OpenRLHF averages them per
sample: the unscored share).
"""
# No `from __future__ import annotations`: OpenRLHF executes this file without registering it in sys.modules, and
# a dataclass with string annotations looks its module up there.
import json
import math
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any


class RewardServiceError(RuntimeError):
    """The service refused a request, could not be reached after the retries, or could not score an item."""


@dataclass(frozen=True)
class Settings:
    urls: list[str]
    token: str | None
    chunk: int
    retries: int
    backoff_s: float
    timeout_s: float
    unscored: float | None


def _number(name: str, default: str, kind: type, low: float) -> Any:
    text = os.environ.get(name, default)
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < low:
        bound = "" if low == -math.inf else f" of at least {low:g}"
        raise ValueError(f"{name}={text!r} is not a finite {kind.__name__}{bound}. Fix: set {name} to e.g. "
                         f"{default}, or unset it")
    return value


def _endpoint(url: str, scorer: str | None) -> str:
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"RLAIF_URL holds {url!r}, not an http(s) URL. Fix: RLAIF_URL=http://HOST:PORT")
    path = parts.path.rstrip("/")
    path = path if path.endswith("/get_reward") else path + "/get_reward"
    query = parts.query or (urllib.parse.urlencode({"scorer": scorer}) if scorer else "")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, query, ""))


def settings() -> Settings:
    """The settings from the environment, each checked (a bad one is a ValueError naming the variable)."""
    raw = os.environ.get("RLAIF_URL", "")
    urls = [u for u in raw.split(",") if u.strip()]
    if not urls:
        raise ValueError("RLAIF_URL is not set. Fix: export RLAIF_URL=http://HOST:PORT (where `rlaif serve` runs)")
    unscored = os.environ.get("RLAIF_UNSCORED_REWARD")
    return Settings(urls=[_endpoint(u, os.environ.get("RLAIF_SCORER")) for u in urls],
                    token=os.environ.get("RLAIF_SERVE_TOKEN") or None,
                    chunk=_number("RLAIF_CHUNK", "256", int, 1), retries=_number("RLAIF_RETRIES", "5", int, 0),
                    backoff_s=_number("RLAIF_BACKOFF_S", "1", float, 0), timeout_s=_number("RLAIF_TIMEOUT_S", "180",
                                                                                           float, 0.001),
                    unscored=None if unscored is None else _number("RLAIF_UNSCORED_REWARD", "0", float, -math.inf))


def _post(url: str, body: bytes, s: Settings) -> dict:
    headers = {"content-type": "application/json"}
    if s.token:
        headers["authorization"] = f"Bearer {s.token}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=s.timeout_s) as response:
        return json.loads(response.read())


def _refusal(e: urllib.error.HTTPError) -> str:
    try:
        error = json.loads(e.read()).get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    fix = f" Fix: {error['fix']}" if isinstance(error, dict) and error.get("fix") else ""
    return f"HTTP {e.code}: {error.get('message', e.reason) if isinstance(error, dict) else e.reason}{fix}"


def _request(payload: dict, first: int, s: Settings) -> dict:
    """One chunk, tried on URL `first` and then on the next ones in turn, with backoff between tries."""
    body = json.dumps(payload, default=str).encode()
    problem = ""
    for attempt in range(s.retries + 1):
        url = s.urls[(first + attempt) % len(s.urls)]
        wait = s.backoff_s * 2 ** attempt
        try:
            return _post(url, body, s)
        except urllib.error.HTTPError as e:
            problem = f"{url}: {_refusal(e)}"
            if e.code != 429 and e.code < 500:  # the request itself is wrong (or the token): retrying cannot help
                raise RewardServiceError(problem) from None
            after = e.headers.get("retry-after") if e.headers else None
            wait = float(after) if after and after.replace(".", "", 1).isdigit() else wait
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
            problem = f"{url}: {getattr(e, 'reason', None) or e}"
        if attempt < s.retries:
            time.sleep(min(wait, 30.0))
    raise RewardServiceError(f"{problem} (after {s.retries + 1} tries). Fix: check that `rlaif serve` runs at "
                             "RLAIF_URL and is not overloaded")


def _rewards(answers: list[dict], s: Settings) -> tuple[list[float], int]:
    values: list[float] = []
    unscored = 0
    for answer in answers:
        errors = answer.get("errors") or [None] * len(answer["rewards"])
        for value, why in zip(answer["rewards"], errors, strict=True):
            if value is None or why is not None:  # a value beside a reason: the service's --unscored-reward
                unscored += 1
            if value is None:
                if s.unscored is None:
                    raise RewardServiceError(f"the service could not score an item ({why}). Fix: repair the reward "
                                             "source, or set RLAIF_UNSCORED_REWARD (or start the service with "
                                             "--unscored-reward VALUE) to give such items a reward")
                value = s.unscored
            values.append(float(value))
    return values, unscored


def reward_func(queries: list[str], prompts: list[str], labels: list[Any], **kwargs: Any) -> dict:
    """OpenRLHF's local reward function: the service's /get_reward rewards as tensors."""
    import torch

    s = settings()
    n = len(queries)
    bounds = [(lo, min(lo + s.chunk, n)) for lo in range(0, n, s.chunk)]
    payloads = [{"query": list(queries[lo:hi]), "prompts": None if prompts is None else list(prompts[lo:hi]),
                 "labels": None if labels is None else list(labels[lo:hi])} for lo, hi in bounds]
    with ThreadPoolExecutor(max(1, min(8, len(payloads)))) as pool:
        answers = list(pool.map(lambda jp: _request(jp[1], jp[0], s), enumerate(payloads)))
    values, unscored = _rewards(answers, s)
    if len(values) != n:
        raise RewardServiceError(f"the service answered {len(values)} rewards for {n} queries")
    rewards = torch.tensor(values, dtype=torch.float32)
    return {"rewards": rewards, "scores": rewards.clone(),
            "extra_logs": {"rlaif_scored": float(n - unscored), "rlaif_unscored": float(unscored)}}


if __name__ == "__main__":  # `python -m rlaif.integrations.openrlhf_reward`: the path to give OpenRLHF
    print(os.path.abspath(__file__))
