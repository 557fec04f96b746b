"""`anthropic:MODEL` through the official SDK (Messages API). System turns go to the
`system` parameter. The Messages API returns no log-probabilities, so a request for
them fails fast with a fix. As in openai_backend, the SDK does auth, headers, timeouts,
connections and error classes while the body is plain Messages JSON (`client.post`):
recent SDKs dropped `temperature` from `messages.create`'s typed signature, the API
still takes it. The SDK's own retries are off: the call layer retries."""
from __future__ import annotations

import time
from typing import Any

from rlaif.backends._http import ClientPool, api_key, http_client, malformed
from rlaif.backends.base import Backend, Completion, Request, classify_sdk_error
from rlaif.errors import BackendError, MissingDependency

_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}


class AnthropicBackend(Backend):
    max_batch = 1

    def __init__(self, model: str, *, base_urls: list[str] | None = None, api_key_env: str | None = None,
                 timeout_s: float = 120.0):
        try:
            import anthropic
        except ImportError:
            raise MissingDependency("anthropic", extra="anthropic") from None
        self._sdk = anthropic
        self.model = model
        self.spec = f"anthropic:{model}"
        self.timeout_s = timeout_s
        self.price_model = None if base_urls else model
        key, self._key_env = api_key("Anthropic", "ANTHROPIC_API_KEY", api_key_env, local_servers=False)
        self._pool = ClientPool(
            lambda url: anthropic.AsyncAnthropic(api_key=key, base_url=url, max_retries=0, timeout=timeout_s,
                                              http_client=http_client(anthropic)),
            base_urls, unreachable=(anthropic.APIConnectionError,))

    def _params(self, r: Request) -> dict[str, Any]:
        system = "\n\n".join(str(m["content"]) for m in r.messages if m.get("role") == "system")
        p: dict[str, Any] = {"model": self.model, "max_tokens": r.max_tokens,
                             "messages": [m for m in r.messages if m.get("role") != "system"]}
        if system:
            p["system"] = system
        # Sent only when they differ from the API's default of 1.0 (some newer models fix them).
        if r.temperature != 1.0:
            p["temperature"] = r.temperature
        if r.top_p != 1.0:
            p["top_p"] = r.top_p
        if r.stop:
            p["stop_sequences"] = list(r.stop)
        return p

    async def _one(self, r: Request) -> Completion:
        if r.top_logprobs > 0:
            raise BackendError("anthropic: the Messages API returns no log-probabilities. Fix: use a judge that "
                               "parses the verdict from text, or an openai:, hf:, vllm: or local backend")
        t0 = time.perf_counter()
        try:
            async with self._pool.client() as client:
                data = await client.post("/v1/messages", body=self._params(r), cast_to=object)
        except Exception as e:  # noqa: BLE001 - every SDK failure is classified, none escapes raw
            raise classify_sdk_error(e, self._sdk, provider="anthropic", key_env=self._key_env) from e
        try:
            text = "".join(b.get("text", "") for b in data["content"] if b.get("type") == "text")
            usage, stop = data.get("usage") or {}, data.get("stop_reason")
        except (KeyError, TypeError, AttributeError):
            raise malformed("anthropic", data) from None
        return Completion(text=text, input_tokens=usage.get("input_tokens") or 0,
                          output_tokens=usage.get("output_tokens") or 0, latency_s=time.perf_counter() - t0,
                          finish_reason=_FINISH.get(stop, stop))

    async def complete(self, requests: list[Request]) -> list[Completion]:
        return [await self._one(r) for r in requests]

    async def aclose(self) -> None:
        await self._pool.aclose()
