"""`vllm:PATH`: vLLM's in-process offline engine (GPU only; vllm imported lazily).

One `complete` call is one `LLM.chat` over the whole batch with per-request sampling
parameters, so vLLM's continuous batching sees everything at once. Log-probs of the
first generated tokens come back with the top-k alternatives, as the other backends
report them. Only local model paths load: nothing is fetched from a hub.
"""
from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from rlaif.backends.base import Backend, Completion, Request, check_local_path
from rlaif.errors import ConfigError, MissingDependency


class VLLMBackend(Backend):
    # timeout_s and price_model keep the protocol's None: local generation has no deadline, bills nothing.
    def __init__(self, path: str, *, batch_size: int = 256, **engine_opts: Any):
        self.path = check_local_path("vllm", path)
        self.spec = f"vllm:{path}"
        self.model = str(self.path.resolve())
        self.max_batch = batch_size
        self._engine_opts = engine_opts  # e.g. tensor_parallel_size, gpu_memory_utilization, max_model_len
        self._llm = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        if self._llm is not None:
            return
        try:
            import torch
            import vllm
        except ImportError:
            raise MissingDependency("vllm", extra="vllm", why="the vllm backend needs it (and a CUDA GPU)") from None
        if not torch.cuda.is_available():
            raise ConfigError(f"{self.spec}: vLLM needs a CUDA GPU and none is visible. Fix: use hf:{self.path} "
                              "on this machine")
        self._vllm = vllm
        self._llm = vllm.LLM(model=str(self.path), **self._engine_opts)

    def _params(self, r: Request) -> Any:
        return self._vllm.SamplingParams(
            n=1, temperature=r.temperature, top_p=r.top_p, max_tokens=r.max_tokens,
            seed=r.seed,
            stop=list(r.stop) or None, logprobs=r.top_logprobs or None)

    def _generate(self, requests: list[Request]) -> list[Completion]:
        with self._lock:
            self._load()
            t0 = time.perf_counter()
            outs = self._llm.chat([r.messages for r in requests], [self._params(r) for r in requests],
                                  use_tqdm=False)
            latency = (time.perf_counter() - t0) / max(1, len(requests))
        completions = []
        for r, o in zip(requests, outs, strict=True):
            c = o.outputs[0]
            top = None
            if r.top_logprobs > 0 and c.logprobs:
                top = [{(lp.decoded_token or str(tid)): lp.logprob
                        for tid, lp in sorted(pos.items(), key=lambda kv: -kv[1].logprob)[: r.top_logprobs]}
                       for pos in c.logprobs[: r.logprob_positions]]
            completions.append(Completion(
                text=c.text, top_logprobs=top, input_tokens=len(o.prompt_token_ids or []),
                output_tokens=len(c.token_ids), latency_s=latency,
                finish_reason="length" if c.finish_reason == "length" else "stop"))
        return completions

    async def complete(self, requests: list[Request]) -> list[Completion]:
        return await asyncio.to_thread(self._generate, list(requests))

    async def aclose(self) -> None:
        return None
