"""`hf:PATH` and `local`: transformers models from a local directory or GGUF file, CPU or GPU.

Batched generation with left padding; requests in a batch that share sampling
parameters run as one `generate` call. `precision`: "auto" runs bf16 on CUDA and fp32 on the
CPU; "bf16" also samples in bf16 on the CPU, from a bf16 copy of the weights (about 1.8x faster
on CPUs with native bf16, AVX512-BF16 or AMX) while log-probabilities stay in fp32; "fp32" is
fp32 everywhere. With `top_logprobs > 0` the raw (pre-sampling)
log-probabilities of the first `logprob_positions` generated tokens come back with the
top-k alternatives, as OpenAI reports them. Only existing local paths load
(`local_files_only`): nothing is ever fetched from a hub.
"""
from __future__ import annotations

import asyncio
import copy
import hashlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlaif.backends.base import Backend, Completion, Request, check_local_path
from rlaif.errors import BackendError, MissingDependency

PRECISIONS = ("auto", "fp32", "bf16")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")


def weights_fingerprint(path: Path) -> str:
    """A short hash of the names, sizes and modification times of a model's weight and config files."""
    if path.is_file():
        files = [path]
    else:
        files = sorted(f for f in path.iterdir() if f.is_file() and (f.suffix in _WEIGHT_SUFFIXES or f.name in (
            "config.json", "adapter_config.json")))
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:12]


@dataclass
class SequenceLogprob:
    """log p(response | prompt) and how many tokens it covers."""

    logprob: float
    tokens: int


# Rows per scoring forward: a forward is bound by arithmetic already, so wider batches buy nothing and hold
# rows x length x vocabulary logits at once.
_SCORE_ROWS = 32


class HFBackend(Backend):
    # timeout_s and price_model keep the protocol's None: local generation has no deadline, bills nothing.
    def __init__(self, path: str | Path, *, spec: str | None = None, model: str | None = None,
                 batch_size: int = 64, device: str | None = None, precision: str = "auto"):
        if precision not in PRECISIONS:
            raise BackendError(f"precision '{precision}' is not one of {', '.join(PRECISIONS)}")
        self.path = check_local_path("hf", str(path))
        self.spec = spec or f"hf:{path}"
        # The model name is part of the call-cache key: with the weights' fingerprint in it, a checkpoint
        # retrained into the same directory is not answered from the old weights' cache.
        self.model = model or f"{self.path.resolve()}@{weights_fingerprint(self.path)}"
        if precision == "bf16":
            self.model += "+bf16"  # bf16 samples differ from fp32 ones: cached apart
        # Requests per `generate`: decoding is bound by per-token overhead, not arithmetic, so wider batches pay.
        # On 2 CPU cores 64 answers per batch take 0.24 s each, 32 take 0.31 s (benchmarks/bench_local.py).
        self.max_batch = batch_size
        self._device, self._precision = device, precision
        self._lock = threading.Lock()  # one generate at a time: parallel batches only fight for the cores
        self._model = self._tok = self._sampler = None

    # ---- loading ----
    def _load(self) -> None:
        if self._model is not None:
            return
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise MissingDependency("transformers", extra="local", why="the hf and local backends need it") from None
        kwargs: dict[str, Any] = {"local_files_only": True}
        src = self.path
        if src.is_file():
            if src.suffix != ".gguf":
                raise BackendError(f"hf:{src}: a file must be a .gguf. Fix: pass the model directory instead")
            kwargs["gguf_file"], src = src.name, src.parent
        elif not (src / "config.json").exists():
            ggufs = sorted(src.glob("*.gguf"))
            if not ggufs:
                raise BackendError(f"hf:{src}: no config.json or .gguf inside. Fix: point at a transformers model "
                                   "directory (config.json + weights) or a .gguf file")
            kwargs["gguf_file"] = ggufs[0].name
        device = self._device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if device == "cuda" and self._precision != "fp32" else torch.float32
        from transformers.utils import logging as hf_logging

        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # its "Loading weights" bar would interleave with ours
        try:
            tok = AutoTokenizer.from_pretrained(src, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(src, dtype=dtype, **kwargs).to(device)
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        model.eval()
        self._tok, self._model, self._torch = tok, model, torch
        self._sampler = model
        if self._precision == "bf16" and model.dtype != torch.bfloat16:
            self._sampler = copy.deepcopy(model).to(torch.bfloat16)

    def _format(self, messages: list[dict]) -> str:
        if self._tok.chat_template:
            return self._tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"

    # ---- generation ----
    def _generate(self, requests: list[Request]) -> list[Completion]:
        with self._lock:
            self._load()
            out: dict[int, Completion] = {}
            groups: dict[tuple, list[int]] = {}
            for i, r in enumerate(requests):
                sig = (r.max_tokens, r.temperature, r.top_p, r.stop, r.top_logprobs, r.logprob_positions)
                groups.setdefault(sig, []).append(i)
            for idx in groups.values():
                for i, c in zip(idx, self._generate_group([requests[i] for i in idx]), strict=True):
                    out[i] = c
            return [out[i] for i in range(len(requests))]

    def _generate_group(self, reqs: list[Request]) -> list[Completion]:
        torch, tok, model = self._torch, self._tok, self._sampler
        r0 = reqs[0]
        t0 = time.perf_counter()
        enc = tok([self._format(r.messages) for r in reqs], return_tensors="pt", padding=True,
                  add_special_tokens=False).to(model.device)
        sampling = r0.temperature > 0
        gen: dict[str, Any] = {"max_new_tokens": r0.max_tokens, "do_sample": sampling,
                               "pad_token_id": tok.pad_token_id, "return_dict_in_generate": True,
                               "output_logits": r0.top_logprobs > 0}
        if sampling:
            gen.update(temperature=r0.temperature, top_p=r0.top_p, top_k=0)
            # Reproducible for the same batch: seeded by the requests' seeds and sample indices.
            torch.manual_seed(hash(tuple((r.seed or 0, r.sample) for r in reqs)) & 0x7FFFFFFF)
        else:
            gen.update(temperature=None, top_p=None, top_k=None)
        if r0.stop:
            gen.update(stop_strings=list(r0.stop), tokenizer=tok)
        with torch.inference_mode():
            res = model.generate(**enc, **gen)
        new = res.sequences[:, enc["input_ids"].shape[1]:]
        eos = set(_as_list(model.generation_config.eos_token_id)) | {tok.eos_token_id}
        latency = (time.perf_counter() - t0) / len(reqs)
        completions = []
        for b, r in enumerate(reqs):
            ids = new[b].tolist()
            n_out, finish = len(ids), "length"
            for j, t in enumerate(ids):
                if t in eos:
                    n_out, finish = j + 1, "stop"
                    break
            text = tok.decode(ids[:n_out], skip_special_tokens=True)
            for s in r.stop:
                cut = text.find(s)
                if cut >= 0:
                    text, finish = text[:cut], "stop"
            top = None
            if r.top_logprobs > 0:
                top = []
                for p in range(min(r.logprob_positions, n_out, len(res.logits))):
                    lp = torch.log_softmax(res.logits[p][b].float(), dim=-1)
                    vals, ids_k = lp.topk(r.top_logprobs)
                    alts: dict[str, float] = {}
                    for v, t in zip(vals.tolist(), ids_k.tolist(), strict=True):
                        alts.setdefault(tok.decode([t]), v)  # two ids may decode alike: keep the likelier
                    top.append(alts)
            completions.append(Completion(
                text=text, top_logprobs=top, input_tokens=int(enc["attention_mask"][b].sum()),
                output_tokens=n_out, latency_s=latency, finish_reason=finish))
        return completions

    # ---- scoring ----
    def sequence_logprobs(self, prompts: list[list[dict]], responses: list[str], *, ended: list[bool] | None = None,
                          temperature: float = 1.0) -> list[SequenceLogprob]:
        """log p(response | prompt) under this model: the sum of the response tokens' log-probabilities.

        The prompt is formatted as generation saw it (chat template with the generation prompt) and the
        response tokenized on its own, as generated tokens continue the prompt. `ended[i]` adds the
        end-of-turn token (a response that stopped rather than ran out of tokens). `temperature`
        scales the logits, giving the log-probability under the distribution sampled at that temperature.
        """
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        if temperature <= 0:
            raise ValueError("temperature must be positive (greedy decoding has no sequence distribution)")
        ended = [True] * len(responses) if ended is None else list(ended)
        with self._lock:
            self._load()
            torch, tok, model = self._torch, self._tok, self._model
            end_id = _as_list(model.generation_config.eos_token_id)[:1] or [tok.eos_token_id]
            items = []
            for msgs, text, stop in zip(prompts, responses, ended, strict=True):
                p_ids = tok(self._format(msgs), add_special_tokens=False)["input_ids"]
                r_ids = tok(text, add_special_tokens=False)["input_ids"] + (end_id if stop else [])
                items.append((p_ids, r_ids))
            out: list[SequenceLogprob | None] = [None] * len(items)
            order = sorted(range(len(items)), key=lambda i: -(len(items[i][0]) + len(items[i][1])))
            for s in range(0, len(order), _SCORE_ROWS):
                part = order[s:s + _SCORE_ROWS]
                width = max(len(items[i][0]) + len(items[i][1]) for i in part)
                # Right padding: causal attention keeps padding out of every real position's view.
                ids = torch.full((len(part), width), tok.pad_token_id, dtype=torch.long)
                mask = torch.zeros((len(part), width), dtype=torch.long)
                for row, i in enumerate(part):
                    seq = items[i][0] + items[i][1]
                    ids[row, :len(seq)] = torch.tensor(seq)
                    mask[row, :len(seq)] = 1
                # Token t is predicted at position t-1, so positions before the shortest prompt's last token
                # predict no response token: the head and the softmax skip them.
                start = min(len(items[i][0]) for i in part) - 1
                tok_lp = self._token_logprobs(ids, mask, start, temperature)
                for row, i in enumerate(part):
                    n_p, n_r = len(items[i][0]), len(items[i][1])
                    out[i] = SequenceLogprob(float(tok_lp[row, n_p - 1 - start:n_p - 1 - start + n_r].sum()), n_r)
            return [o for o in out if o is not None]

    def _token_logprobs(self, ids, mask, start: int, temperature: float):
        """log p(ids[:, t+1] | ids[:, :t+1]) for t = start .. width-2, as a (rows, width-1-start) CPU tensor."""
        torch, model = self._torch, self._model
        keep = ids.shape[1] - start
        kwargs = {"logits_to_keep": keep} if self._keeps_logits else {}
        with torch.inference_mode():
            logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device), **kwargs).logits
            scaled = logits[:, -keep:-1].float() / temperature
            target = ids[:, start + 1:].to(model.device).unsqueeze(-1)
            # logit minus logsumexp: the gathered log-softmax without materializing it over the vocabulary
            return (scaled.gather(-1, target).squeeze(-1) - torch.logsumexp(scaled, dim=-1)).cpu()

    @property
    def _keeps_logits(self) -> bool:
        import inspect

        return "logits_to_keep" in inspect.signature(self._model.forward).parameters

    async def complete(self, requests: list[Request]) -> list[Completion]:
        return await asyncio.to_thread(self._generate, list(requests))

    async def aclose(self) -> None:
        return None  # the loaded model stays for the next run; it goes with the object


def _as_list(x: Any) -> list:
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def local_backend(**opts: Any) -> HFBackend:
    """The embedded default model (SmolLM2-135M-Instruct), converted once to safetensors."""
    from rlaif.localmodel import LOCAL_NAME, local_model_dir

    return HFBackend(local_model_dir(), spec="local", model=LOCAL_NAME, **opts)
