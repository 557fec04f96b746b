"""Rollouts: k sampled responses per prompt from the current policy, and per-token log-probs on exactly those ids.

`sample` renders each prompt with the chat template (rlaif.train.tokenize.ChatTokenizer, so BOS and
truncation follow the offline recipes), left-pads, and runs one batched `generate` with the KV cache.
The sampled token ids are kept as they came out of the sampler; text is decoded only for the reward
function, never re-encoded. `token_logps` runs one forward over prompt + response with the same left
padding, attention mask and position ids that `generate` used, and scores the kept ids with
log_softmax(logits / temperature), the temperature of the sampling.
"""
from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, replace

import torch

from rlaif.scoring import RewardBatch
from rlaif.train.batching import segment_mask
from rlaif.train.rl.losses import entropy_from_logits
from rlaif.train.tokenize import ChatTokenizer, Messages


@dataclass
class Rollout:
    """R = len(prompts)·k rows; row r answers prompt `group[r]`, and each group's k rows are consecutive."""

    prompt_ids: torch.Tensor  # (R, P) left-padded with the pad id
    prompt_mask: torch.Tensor  # (R, P) 1 at prompt tokens
    response_ids: torch.Tensor  # (R, T) sampled ids; after EOS (or for rows that ended earlier) the pad id
    response_mask: torch.Tensor  # (R, T) 1 up to and including the first EOS (all T if none)
    ended: torch.Tensor  # (R,) bool: EOS was sampled before max_new_tokens ran out
    group: torch.Tensor  # (R,) index into `prompts`
    texts: list[str]  # decoded responses, special tokens skipped (for the reward function only)
    prompts: list[Messages]  # the prompts as given, one per group
    k: int
    sampling_logps: torch.Tensor | None = None  # (R, T) log-probs from generate's own scores (diagnostics only)

    @property
    def rows(self) -> int:
        return self.response_ids.size(0)

    @property
    def lengths(self) -> torch.Tensor:
        """(R,) response tokens per row, EOS included."""
        return self.response_mask.sum(1)

    @property
    def row_prompts(self) -> list[Messages]:
        """The prompt each row answers (what the reward function is given)."""
        return [self.prompts[int(g)] for g in self.group]

    def reward_batch(self, metadata: list[dict]) -> RewardBatch:
        """What the reward function gets for these rows; `metadata` holds one record per prompt (group)."""
        if len(metadata) != len(self.prompts):
            raise ValueError(f"reward_batch needs one metadata record per prompt ({len(self.prompts)}), "
                             f"got {len(metadata)}")
        groups = [int(g) for g in self.group]
        # the sampled ids through EOS, as TRL passes them (`completion_ids`)
        ids = [row[mask.bool()].tolist() for row, mask in zip(self.response_ids.cpu(), self.response_mask.cpu(),
                                                               strict=True)]
        return RewardBatch([self.prompts[g] for g in groups], list(self.texts), [metadata[g] for g in groups], ids)

    def input_ids(self) -> torch.Tensor:
        return torch.cat([self.prompt_ids, self.response_ids], dim=1)

    def attention_mask(self) -> torch.Tensor:
        return torch.cat([self.prompt_mask, self.response_mask], dim=1)

    def select(self, rows: torch.Tensor | list[int]) -> Rollout:
        """The rollout restricted to `rows` (a minibatch, or the scored members); `prompts` and `k` stay."""
        idx = torch.as_tensor(rows, dtype=torch.long)
        pick = (lambda t: None if t is None else t[idx.to(t.device)])
        return replace(self, prompt_ids=pick(self.prompt_ids), prompt_mask=pick(self.prompt_mask),
                       response_ids=pick(self.response_ids), response_mask=pick(self.response_mask),
                       ended=pick(self.ended), group=pick(self.group), texts=[self.texts[i] for i in idx.tolist()],
                       sampling_logps=pick(self.sampling_logps))

    def to(self, device) -> Rollout:
        move = (lambda t: None if t is None else t.to(device))
        return replace(self, prompt_ids=move(self.prompt_ids), prompt_mask=move(self.prompt_mask),
                       response_ids=move(self.response_ids), response_mask=move(self.response_mask),
                       ended=move(self.ended), group=move(self.group), sampling_logps=move(self.sampling_logps))


@dataclass
class Packed:
    """A rollout laid out one row per prompt group: `prompt | response 1 | response 2 | ...`, real tokens only.

    Each response attends to its prompt and to itself (a 4D mask), with positions counting on from the end
    of the prompt, as in the padded layout; so the prompt is computed once per group instead of k times and
    no padding is computed inside a row. Target n (a response token) is predicted by the hidden state at
    (`src_row`, `src_pos`) and lands at (`dst_row`, `dst_col`) of the rollout's (R, T) grid.
    """

    input_ids: torch.Tensor  # (G, L)
    attention_mask: torch.Tensor  # (G, 1, L, L) bool
    position_ids: torch.Tensor  # (G, L)
    src_row: torch.Tensor  # (N,)
    src_pos: torch.Tensor  # (N,)
    dst_row: torch.Tensor  # (N,)
    dst_col: torch.Tensor  # (N,)

    def to(self, device) -> Packed:
        return Packed(*(t.to(device) for t in (self.input_ids, self.attention_mask, self.position_ids,
                                                 self.src_row, self.src_pos, self.dst_row, self.dst_col)))


def pack(r: Rollout) -> Packed:
    """The rollout's rows grouped by prompt (rows of one group in row order), for one shared-prompt forward.

    Rows are padded at the end with id 0: padding sees only itself and predicts nothing, so the id is moot."""
    groups: dict[int, list[int]] = {}
    for row, g in enumerate(r.group.tolist()):
        groups.setdefault(g, []).append(row)
    lengths = r.lengths.tolist()
    seqs, positions, segments = [], [], []
    src_row, src_pos, dst_row, dst_col = [], [], [], []
    for gi, members in enumerate(groups.values()):
        prompt = r.prompt_ids[members[0]][r.prompt_mask[members[0]].bool()].tolist()
        ids, pos, seg = list(prompt), list(range(len(prompt))), [0] * len(prompt)
        for k, row in enumerate(members, start=1):
            n = lengths[row]
            start = len(ids)
            src_row += [gi] * n
            src_pos += [len(prompt) - 1] + list(range(start, start + n - 1))  # token t is predicted at t - 1
            dst_row += [row] * n
            dst_col += range(n)
            ids += r.response_ids[row, :n].tolist()
            pos += range(len(prompt), len(prompt) + n)
            seg += [k] * n
        seqs.append(ids), positions.append(pos), segments.append(seg)
    width = max(len(s) for s in seqs)
    input_ids = torch.zeros((len(seqs), width), dtype=torch.long)
    position_ids = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, (ids, pos) in enumerate(zip(seqs, positions, strict=True)):
        input_ids[i, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        position_ids[i, :len(pos)] = torch.tensor(pos, dtype=torch.long)
    lt = lambda x: torch.tensor(x, dtype=torch.long)
    return Packed(input_ids, segment_mask(segments, width), position_ids, lt(src_row), lt(src_pos), lt(dst_row),
                  lt(dst_col))


def eos_ids(model, tokenizer) -> list[int]:
    """Every id that ends a response: the tokenizer's EOS and the model's generation-config EOS ids."""
    ids = {tokenizer.eos_token_id}
    gen = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(gen if isinstance(gen, (list, tuple)) else [gen])
    return sorted(i for i in ids if i is not None)


def pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def _left_pad(seqs: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, width - len(s):] = torch.tensor(s, dtype=torch.long)
        mask[i, width - len(s):] = 1
    return ids, mask


def response_mask(response_ids: torch.Tensor, eos: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask, ended): 1 up to and including each row's first EOS (the pad id may equal EOS, so position
    decides, not the id); rows without EOS are kept whole."""
    is_eos = torch.isin(response_ids, torch.tensor(eos, device=response_ids.device))
    ended = is_eos.any(dim=1)
    never = torch.full_like(ended, response_ids.size(1), dtype=torch.long)
    first = torch.where(ended, is_eos.int().argmax(dim=1), never)
    t = torch.arange(response_ids.size(1), device=response_ids.device)[None, :]
    return (t <= first[:, None]).long(), ended


def _generation_config(model, tokenizer, *, max_new_tokens: int, temperature: float, top_p: float,
                       scores: bool):
    from transformers import GenerationConfig

    greedy = temperature <= 0
    # Every knob that reshapes the distribution is set explicitly: `generate` fills unset ones from the
    # checkpoint's generation_config and then from global defaults (top_k=50), which would sample from a
    # distribution other than the one the log-probs score. top_k=0 disables top-k.
    return GenerationConfig(
        max_new_tokens=max_new_tokens, do_sample=not greedy, temperature=None if greedy else temperature,
        top_p=None if greedy else top_p, top_k=None if greedy else 0, typical_p=1.0, repetition_penalty=1.0,
        no_repeat_ngram_size=0, min_length=0, eos_token_id=eos_ids(model, tokenizer),
        pad_token_id=pad_id(tokenizer), bos_token_id=tokenizer.bos_token_id, use_cache=True,
        return_dict_in_generate=True, output_scores=scores)


def _shared_prefill(lm, prompts: list[list[int]], k: int, pad: int, device):
    """The KV cache of each prompt but its last token, computed once per prompt and repeated for its k rows
    (or None: nothing to share). `generate` then runs only the last prompt token of each row before sampling:
    the prompt is not computed k times over. Positions as `generate` derives them from the left padding."""
    ids, mask = _left_pad(prompts, pad)
    if k == 1 or ids.size(1) < 2:
        return None
    from transformers import DynamicCache

    ids, mask = ids[:, :-1].to(device), mask[:, :-1].to(device)
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    try:
        cache = DynamicCache(config=lm.config)  # per-layer kinds (sliding windows) from the config
    except TypeError:  # transformers 4.x
        cache = DynamicCache()
    lm(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **{_cache_kwarg(lm): cache})
    cache.batch_repeat_interleave(k)
    return cache


def _cache_kwarg(lm) -> str:
    """transformers 5 renamed `past_key_values` to `cache` (the old name warns, and goes in 6.0)."""
    return "cache" if "cache" in inspect.signature(type(lm).forward).parameters else "past_key_values"


def sample(model, tokenizer, prompts: list[Messages], *, k: int, max_new_tokens: int, temperature: float,
           top_p: float = 1.0, seed: int, max_prompt_length: int | None = None,
           return_sampling_logps: bool = False) -> Rollout:
    """k responses per prompt in one batched `generate` (KV cache); `do_sample` unless temperature is 0 (greedy).

    `model` is a causal LM (a DDP/FSDP wrapper's `.module` is used); it is put in eval mode for sampling and
    restored. Sampling draws from a torch RNG seeded with `seed` inside `fork_rng`, so the same seed
    gives the same rollout and the caller's RNG state is untouched. `max_prompt_length` truncates prompts as
    the offline recipes do (oldest turns first, never inside a template marker). `return_sampling_logps`
    keeps generate's own per-token log-probs (log_softmax of its processed scores) for checks.
    """
    if k < 1 or max_new_tokens < 1:
        raise ValueError(f"sample needs k >= 1 and max_new_tokens >= 1 (got k={k}, max_new_tokens={max_new_tokens})")
    lm = getattr(model, "module", model)
    limit = max_prompt_length or 1 << 30
    enc = ChatTokenizer(tokenizer, max_length=limit + 1, max_prompt_length=limit)
    one = [enc(p, []).prompt for p in prompts]
    prompt_ids, prompt_mask = _left_pad([ids for ids in one for _ in range(k)], pad_id(tokenizer))
    device = next(lm.parameters()).device
    cfg = _generation_config(lm, tokenizer, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                             scores=return_sampling_logps)
    was_training = lm.training
    lm.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            cache = _shared_prefill(lm, one, k, pad_id(tokenizer), device)
            torch.manual_seed(seed)
            kw = {} if cache is None else {_cache_kwarg(lm): cache}
            out = lm.generate(input_ids=prompt_ids.to(device), attention_mask=prompt_mask.to(device),
                              generation_config=cfg, **kw)
    finally:
        lm.train(was_training)
    response_ids = out.sequences[:, prompt_ids.size(1):].cpu()
    mask, ended = response_mask(response_ids, cfg.eos_token_id)
    response_ids = response_ids.masked_fill(mask == 0, cfg.pad_token_id)
    texts = [tokenizer.decode(r[m.bool()].tolist(), skip_special_tokens=True)
             for r, m in zip(response_ids, mask, strict=True)]
    logps = None
    if return_sampling_logps:
        scores = torch.stack(out.scores, dim=1).float().cpu()  # (R, T, V) after the temperature / top-p processors
        logps = torch.log_softmax(scores, -1).gather(-1, response_ids[..., None]).squeeze(-1) * mask
    group = torch.arange(len(prompts)).repeat_interleave(k)
    return Rollout(prompt_ids, prompt_mask, response_ids, mask, ended, group, texts, list(prompts), k, logps)


class Bf16Copy:
    """A bf16 copy of a model for sampling on the CPU, its weights refreshed from the model's on each `of(model)`.

    Under autocast every linear layer casts its fp32 weight to bf16 again at every generated token; sampling from
    weights already in bf16 skips that (about 1.5x faster for the 135M model on a CPU with native bf16). The update
    still runs under autocast on the fp32 weights, so this only changes where the same bf16 matmuls read from.
    """

    def __init__(self) -> None:
        self.model: torch.nn.Module | None = None

    @torch.no_grad()
    def of(self, model: torch.nn.Module) -> torch.nn.Module:
        if self.model is None:
            self.model = copy.deepcopy(model).to(torch.bfloat16).requires_grad_(False)
            for p in self.model.parameters():
                p.grad = None  # the copy of a trained model carries its gradients otherwise
        else:
            for dst, src in zip(self.model.parameters(), model.parameters(), strict=True):
                dst.copy_(src)
        return self.model


@dataclass
class TokenLogProbs:
    logps: torch.Tensor  # (R, T) log π(sampled id), 0 outside the response mask
    entropy: torch.Tensor | None  # (R, T) entropy of π(· | prefix) at each response position, or None


def token_logps(model, rollout: Rollout, temperature: float, *, entropy: bool = False,
                batch_size: int | None = None) -> TokenLogProbs:
    """Per-token log-probs of the rollout's sampled ids under `model`, log_softmax(logits / temperature).

    One forward on prompt + response with the rollout's attention mask and position ids counted from the
    first real token (as `generate` counts them under left padding); the LM head runs only at the T
    positions that predict response tokens (`logits_to_keep`). Pass the sampling temperature; a greedy
    rollout (temperature 0) is scored at temperature 1. Gradients flow unless the caller disables them;
    `batch_size` splits the rows into chunks (for no-grad passes over a large rollout).
    """
    temp = temperature if temperature > 0 else 1.0
    device = next(getattr(model, "module", model).parameters()).device
    step = batch_size or rollout.rows
    parts = [_chunk_logps(model, rollout.select(list(range(i, min(i + step, rollout.rows)))).to(device), temp, entropy)
             for i in range(0, rollout.rows, step)]
    logps = torch.cat([p.logps for p in parts])
    ent = torch.cat([p.entropy for p in parts]) if entropy else None
    return TokenLogProbs(logps, ent)


def _chunk_logps(model, r: Rollout, temperature: float, entropy: bool) -> TokenLogProbs:
    ids, attn = r.input_ids(), r.attention_mask()
    positions = (attn.cumsum(-1) - 1).clamp(min=0)
    t = r.response_ids.size(1)
    # logits at the T positions before each response token: keep T + 1 from the end and drop the last
    logits = model(input_ids=ids, attention_mask=attn, position_ids=positions, logits_to_keep=t + 1).logits[:, :-1]
    logits = logits.float() / temperature
    picked = logits.gather(-1, r.response_ids[..., None]).squeeze(-1)
    logps = (picked - torch.logsumexp(logits, dim=-1)) * r.response_mask
    ent = entropy_from_logits(logits) * r.response_mask if entropy else None
    return TokenLogProbs(logps, ent)
