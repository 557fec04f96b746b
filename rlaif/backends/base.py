"""The one backend protocol: requests in; text, first-token log-probs, usage, latency out.

Batch-first: `complete` takes a list so local engines (hf, vllm) can batch;
HTTP backends serve a batch of one per call and get their parallelism from the
call layer (rlaif.calls), which also caches, retries and counts every call.

Backends signal failure with two exception kinds defined here (the call layer
imports them; backends may not import the call layer): `TransientError` is
retried with backoff (429, 5xx, timeouts, dropped connections, malformed bodies),
any other `BackendError` fails fast (400, 401, 403, 404). A connection that could not be
made at all (refused, DNS, TLS) is a `TransientError` whose `kind` says so: the call layer
gives it a few quick tries only (`UNREACHABLE`), since waiting rarely brings a server back.
"""
from __future__ import annotations

import email.utils
import socket
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from rlaif.errors import BackendError, ConfigError
from rlaif.records import Message


@dataclass(frozen=True)
class Request:
    messages: list[Message]
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    top_logprobs: int = 0  # >0: return this many alternatives for the first generated tokens
    logprob_positions: int = 1  # how many leading generated positions to report
    sample: int = 0  # sample index: part of the cache key, so n samples are n distinct calls

    def cache_fields(self) -> dict[str, Any]:
        # A shallow dict, not dataclasses.asdict: its deep copy was a tenth of the client's
        # CPU per call at high concurrency, and the fields are only serialized.
        return dict(self.__dict__)


@dataclass
class Completion:
    text: str
    # One dict per leading generated position: token string -> log-probability.
    top_logprobs: list[dict[str, float]] | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    finish_reason: str | None = None
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    # Set (and text left empty) only when the call layer runs with on_error="record"
    # and this request failed for good; failed completions are never cached.
    error: str | None = None


@runtime_checkable
class Backend(Protocol):
    """Every backend class subclasses this, so the attributes with defaults exist on all of them."""

    spec: str  # e.g. "openai:gpt-4o-mini", "local"
    model: str  # the model name used in cache keys and records
    max_batch: int = 1  # how many requests one `complete` call takes well (1 for HTTP)
    timeout_s: float | None = None  # per-call deadline the call layer enforces (None: no deadline)
    price_model: str | None = None  # model name to look up in rlaif.calls' price table (None: free)

    async def complete(self, requests: list[Request]) -> list[Completion]:
        """Serve a batch. Raise TransientError (retried) or BackendError (fatal) on failure."""
        ...

    async def aclose(self) -> None: ...


# Transient kinds where the server could not be reached at all: a few quick tries, not the full backoff.
UNREACHABLE = ("refused", "dns", "tls")


class TransientError(BackendError):
    """A failure worth retrying: rate limit, server error, timeout, dropped connection.

    kind: "refused", "dns", "tls" (see UNREACHABLE), "timeout", "dropped", "connection", or None
    (an HTTP status, a malformed body)."""

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None,
                 kind: str | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status
        self.kind = kind


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from `retry-after-ms` / `Retry-After` (seconds or an HTTP date)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


_FIXES = {
    400: "the server rejected the request; read its message above (context too long? unsupported parameter?)",
    401: "check the API key in the environment variable named by --api-key-env (default {key_env})",
    403: "the key lacks permission for this model or endpoint",
    404: "check the model name and --base-url (an OpenAI-compatible URL usually ends in /v1)",
    422: "the server rejected a parameter; read its message above",
}


def classify_sdk_error(exc: BaseException, sdk: Any, *, provider: str, key_env: str) -> BackendError:
    """Map an openai/anthropic SDK exception onto TransientError (retry) or BackendError (fail fast)."""
    if isinstance(exc, BackendError):
        return exc
    if isinstance(exc, sdk.APIConnectionError):  # APITimeoutError included
        return connection_error(exc, provider, timed_out=isinstance(exc, sdk.APITimeoutError))
    if isinstance(exc, sdk.APIResponseValidationError) or isinstance(exc, ValueError):
        # A truncated or non-JSON body: usually a flaky proxy, so worth another try.
        return TransientError(f"{provider}: malformed response body ({exc})")
    if isinstance(exc, sdk.APIStatusError):
        status = exc.status_code
        message = _server_message(exc)
        if status in (408, 409, 429) or status >= 500:
            headers = getattr(getattr(exc, "response", None), "headers", None)
            return TransientError(f"{provider} answered {status}: {message}",
                                  retry_after=parse_retry_after(headers), status=status)
        fix = _FIXES.get(status, "read the server's message above").format(key_env=key_env)
        # Servers end their messages with a period or not; the sentence joins must not double it.
        err = BackendError(f"{provider} answered {status}: {message.rstrip().rstrip('.')}. Fix: {fix}")
        err.status = status  # 401/403/404 would fail every request: the call layer stops the run
        return err
    return BackendError(f"{provider}: {type(exc).__name__}: {exc}")


def _chain(exc: BaseException) -> list[BaseException]:
    """exc and its causes: the SDKs wrap the transport's error (httpx, aiohttp) which wraps the OS's."""
    out: list[BaseException] = []
    while exc is not None and exc not in out and len(out) < 12:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def _where(exc: BaseException) -> str:
    """host:port of the request that failed, from the SDK error's request (httpx-shaped URL)."""
    url = getattr(getattr(exc, "request", None), "url", None)
    host = getattr(url, "host", None)
    if not host:
        return "the server"
    port = getattr(url, "port", None) or (443 if getattr(url, "scheme", "") == "https" else 80)
    return f"{host}:{port}"


def _connection_kind(chain: list[BaseException], timed_out: bool) -> str:
    names = " ".join(type(e).__name__ for e in chain)
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "refused"
    if any(isinstance(e, socket.gaierror) for e in chain) or "DNSError" in names:
        return "dns"
    if any(isinstance(e, (ssl.SSLError, ssl.CertificateError)) for e in chain) or "SSLError" in names:
        return "tls"
    if any(isinstance(e, ConnectionResetError) for e in chain) or "Disconnected" in names or \
            "RemoteProtocolError" in names:
        return "dropped"
    # openai's aiohttp transport reports every connect failure as a timeout, so this comes last
    if timed_out or any(isinstance(e, TimeoutError) for e in chain):
        return "timeout"
    return "connection"


_CONNECTION_SAYS = {
    "refused": "connection refused by {where} (is the server running? is the port in --base-url right?)",
    "dns": "DNS lookup failed for {where} (is the host name in --base-url right?)",
    "tls": "TLS handshake with {where} failed (an http:// server given as https://, or a bad certificate?)",
    "dropped": "{where} closed the connection without an answer",
    "timeout": "no answer from {where} within the timeout (raise --timeout for slow models)",
    "connection": "could not talk to {where}",
}


def connection_error(exc: BaseException, provider: str, *, timed_out: bool = False) -> TransientError:
    """A transport failure, named for what happened (refused, DNS, TLS, dropped, timeout) and where,
    with the transport's own words: the SDKs' "Connection error." / "Request timed out." hide both."""
    chain = _chain(exc)
    kind = _connection_kind(chain, timed_out)
    # The OS's words when there are any ("[Errno 111] Connect call failed ..."), else the transport's.
    said = [e for e in chain[1:] if str(e) and isinstance(e, Exception)]  # not CancelledError
    os_said = [e for e in said if isinstance(e, OSError)]
    detail = str((os_said or said)[-1 if os_said else 0]) if said else ""
    says = _CONNECTION_SAYS[kind].format(where=_where(exc))
    return TransientError(f"{provider}: {says}" + (f": {detail}" if detail else ""), kind=kind)


def _server_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
    return str(getattr(exc, "message", exc))


def check_local_path(kind: str, spec_path: str) -> Path:
    """An existing local model path; a hub-like id is refused (rlaif never downloads)."""
    path = Path(spec_path).expanduser()
    if path.exists():
        return path
    looks_like_hub = spec_path.count("/") == 1 and not spec_path.startswith((".", "/", "~"))
    if looks_like_hub:
        raise ConfigError(
            f"{kind}:{spec_path} is not a local path, and rlaif never downloads from a model hub. "
            f"Fix: download it first (e.g. `huggingface-cli download {spec_path} --local-dir models/"
            f"{spec_path.split('/')[-1]}`) and pass {kind}:models/{spec_path.split('/')[-1]}")
    raise ConfigError(f"{kind}:{spec_path}: no such file or directory. Fix: give a local model directory "
                      "(config.json + weights) or a .gguf file")
