"""What the two HTTP backends share: the API key from the environment, and a pool of SDK
clients (one per base URL) bound to the running event loop, picked least-busy first."""
from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

from rlaif.errors import ConfigError
from rlaif.redact import remember_secret


def http_client(sdk: Any) -> Any:
    """The SDK's aiohttp transport when aiohttp is installed (a third of the CPU per call of
    the default httpx pool, which matters at high concurrency), else the SDK's default."""
    make = getattr(sdk, "DefaultAioHttpClient", None)
    if make is None:
        return None
    try:
        import aiohttp  # noqa: F401

        return make()
    except (ImportError, RuntimeError):  # older SDKs want their `aiohttp` extra for it
        return None


def malformed(provider: str, what: Any) -> Exception:
    from rlaif.backends.base import TransientError

    return TransientError(f"{provider}: malformed response body ({str(what)[:200]!r})")


def api_key(provider: str, default_env: str, api_key_env: str | None, local_servers: bool) -> tuple[str, str]:
    """(key, env var name). The key lives only in memory: never logged, cached or written; error text
    is redacted of it (rlaif.redact) in case a server echoes it back."""
    env = api_key_env or default_env
    key = os.environ.get(env)
    if key:
        remember_secret(key)
        return key, env
    if api_key_env:
        raise ConfigError(f"--api-key-env names {env}, but {env} is not set. Fix: export {env}=...")
    if local_servers:
        return "not-needed", env  # local OpenAI-compatible servers take any key
    raise ConfigError(f"{provider} needs an API key. Fix: export {env}=... (or name another variable "
                      "with --api-key-env)")


class ClientPool:
    """SDK clients, one per base URL. Async HTTP clients belong to the loop that made
    them, so a new loop (a new `complete_all`) gets new clients."""

    COOLDOWN_S = 10.0  # a server that refused a connection is avoided this long while others answer

    def __init__(self, make: Callable[[str | None], Any], base_urls: list[str] | None,
                 unreachable: tuple[type[BaseException], ...] = ()):
        self._make = make
        self._unreachable = unreachable
        self.base_urls: list[str | None] = list(base_urls) if base_urls else [None]
        self._clients: list[Any] = []
        self._busy: list[int] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next = 0

    def _ensure(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._clients = [self._make(url) for url in self.base_urls]
            self._busy = [0] * len(self._clients)
            self._down_until = [0.0] * len(self._clients)
            self._loop = loop

    @asynccontextmanager
    async def client(self):
        """The least busy reachable client (round-robin among equals), for one request."""
        self._ensure()
        n = len(self._clients)
        start = self._next
        self._next = (self._next + 1) % n
        now = time.monotonic()
        j = min(range(n), key=lambda j: (self._down_until[(start + j) % n] > now, self._busy[(start + j) % n], j))
        i = (start + j) % n
        self._busy[i] += 1
        try:
            yield self._clients[i]
        except self._unreachable:
            self._down_until[i] = time.monotonic() + self.COOLDOWN_S
            raise
        finally:
            self._busy[i] -= 1

    async def aclose(self) -> None:
        clients, self._clients, self._loop = self._clients, [], None
        for c in clients:
            try:
                await c.close()
            except RuntimeError:  # its loop is gone already
                pass
