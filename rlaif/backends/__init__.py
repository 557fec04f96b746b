"""Model backends behind one batch-first protocol (see base.py).

`get_backend("openai:gpt-4o-mini")`, `"anthropic:claude-..."`, `"vllm:PATH"`,
`"hf:PATH"`, `"local"`. SDKs and torch are imported lazily inside each backend
module, so importing this package is cheap. `rlaif.backends.scripted` holds a
backend driven by a Python function, for tests.
"""
from __future__ import annotations

from typing import Any

from rlaif.backends.base import Backend, Completion, Request, TransientError
from rlaif.errors import ConfigError

__all__ = ["Backend", "Completion", "Request", "TransientError", "get_backend", "is_http", "SPEC_HELP"]

SPEC_HELP = "openai:MODEL, anthropic:MODEL, vllm:PATH, hf:PATH (a local dir or .gguf file) or local"
DEFAULT_TIMEOUT_S = 120.0
_HTTP_KINDS = ("openai", "anthropic")


def is_http(spec: str) -> bool:
    """Whether a spec names an HTTP backend, the only kind --base-url and --api-key-env apply to."""
    return spec.partition(":")[0] in _HTTP_KINDS


def get_backend(spec: str, *, base_urls: list[str] | None = None, api_key_env: str | None = None,
                timeout_s: float = DEFAULT_TIMEOUT_S, drop_http_opts: bool = False, **opts: Any) -> Backend:
    """Build the backend a spec names. Keys come only from the environment
    (OPENAI_API_KEY / ANTHROPIC_API_KEY, or the variable named by `api_key_env`).

    base_urls/api_key_env given for a non-HTTP spec are refused, unless `drop_http_opts`:
    then they are ignored (a command whose one --base-url serves all of its HTTP backends).
    """
    kind, sep, name = spec.partition(":")
    if spec == "local":
        kind, name = "local", ""
    elif not sep or not name:
        raise ConfigError(f"backend spec '{spec}' has no model. Fix: use one of {SPEC_HELP}")
    http = is_http(spec)
    if drop_http_opts and not http:
        base_urls = api_key_env = None
    if (base_urls or api_key_env) and not http:
        raise ConfigError(f"--base-url and --api-key-env apply to openai: and anthropic: backends, not '{kind}'")
    if kind == "openai":
        from rlaif.backends.openai_backend import OpenAIBackend

        return OpenAIBackend(name, base_urls=base_urls, api_key_env=api_key_env, timeout_s=timeout_s, **opts)
    if kind == "anthropic":
        from rlaif.backends.anthropic_backend import AnthropicBackend

        return AnthropicBackend(name, base_urls=base_urls, api_key_env=api_key_env, timeout_s=timeout_s, **opts)
    if kind == "vllm":
        from rlaif.backends.vllm_backend import VLLMBackend

        return VLLMBackend(name, **opts)
    if kind == "hf":
        from rlaif.backends.hf_backend import HFBackend

        return HFBackend(name, **opts)
    if kind == "local":
        from rlaif.backends.hf_backend import local_backend

        return local_backend(**opts)
    raise ConfigError(f"unknown backend '{kind}' in '{spec}'. Fix: use one of {SPEC_HELP}")
