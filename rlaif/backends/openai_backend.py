"""`openai:MODEL` through the official SDK; `base_urls` for any OpenAI-compatible server
(vLLM, llama.cpp, Ollama), several to spread the load.

The SDK does authentication, headers, timeouts, connections and error classes; the body
we send and read is plain chat-completions JSON (`client.post`), which skips the SDK's
typed-argument transforms and response models: that halves the CPU per call at high
concurrency and keeps us clear of signature changes between SDK versions. The SDK's own
retries are off: the call layer retries, so its counts are the true ones.
"""
from __future__ import annotations

import time
from typing import Any

from rlaif.backends._http import ClientPool, api_key, http_client, malformed
from rlaif.backends.base import Backend, Completion, Request, classify_sdk_error
from rlaif.errors import MissingDependency


class OpenAIBackend(Backend):
    max_batch = 1

    def __init__(self, model: str, *, base_urls: list[str] | None = None, api_key_env: str | None = None,
                 timeout_s: float = 120.0):
        try:
            import openai
        except ImportError:
            raise MissingDependency("openai", extra="openai") from None
        self._sdk = openai
        self.model = model
        self.spec = f"openai:{model}"
        self.timeout_s = timeout_s
        self.price_model = None if base_urls else model  # a local server bills nothing
        self._official = not base_urls
        key, self._key_env = api_key("OpenAI", "OPENAI_API_KEY", api_key_env, local_servers=bool(base_urls))
        self._pool = ClientPool(
            lambda url: openai.AsyncOpenAI(api_key=key, base_url=url, max_retries=0, timeout=timeout_s,
                                           http_client=http_client(openai)),
            base_urls, unreachable=(openai.APIConnectionError,))

    @property
    def base_urls(self) -> list[str | None]:
        return self._pool.base_urls

    def _params(self, r: Request) -> dict[str, Any]:
        p: dict[str, Any] = {"model": self.model, "messages": r.messages, "temperature": r.temperature}
        # api.openai.com wants max_completion_tokens (its reasoning models refuse max_tokens);
        # compatible servers all know max_tokens, not all know the newer name.
        p["max_completion_tokens" if self._official else "max_tokens"] = r.max_tokens
        if r.top_p != 1.0:
            p["top_p"] = r.top_p
        if r.seed is not None:
            p["seed"] = r.seed
        if r.stop:
            p["stop"] = list(r.stop)
        if r.top_logprobs > 0:
            p["logprobs"] = True
            p["top_logprobs"] = min(r.top_logprobs, 20)
        return p

    async def _one(self, r: Request) -> Completion:
        t0 = time.perf_counter()
        try:
            async with self._pool.client() as client:
                data = await client.post("/chat/completions", body=self._params(r), cast_to=object)
        except Exception as e:  # noqa: BLE001 - every SDK failure is classified, none escapes raw
            raise classify_sdk_error(e, self._sdk, provider="openai", key_env=self._key_env) from e
        try:
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
            top = None
            content = (choice.get("logprobs") or {}).get("content") if r.top_logprobs > 0 else None
            if content:
                top = [{a["token"]: a["logprob"] for a in pos.get("top_logprobs") or []}
                       or {pos["token"]: pos["logprob"]} for pos in content[: r.logprob_positions]]
            usage = data.get("usage") or {}
        except (KeyError, IndexError, TypeError, AttributeError):
            raise malformed("openai", data) from None
        return Completion(text=text, top_logprobs=top, input_tokens=usage.get("prompt_tokens") or 0,
                          output_tokens=usage.get("completion_tokens") or 0, latency_s=time.perf_counter() - t0,
                          finish_reason=choice.get("finish_reason"))

    async def complete(self, requests: list[Request]) -> list[Completion]:
        return [await self._one(r) for r in requests]

    async def aclose(self) -> None:
        await self._pool.aclose()
