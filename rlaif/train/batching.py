"""From tokenized examples to padded tensors, and the order in which batches are drawn.

Two row layouts, numerically the same (a test checks):
- shared prompt (default): one row per example, `prompt | completion 1 | completion 2`; a 4D mask lets
  each completion attend to the prompt and to itself only, and its positions restart after the prompt.
  The prompt is computed once per pair instead of twice.
- one row per (prompt, completion), with a 2D padding mask (the classic concatenated batch).
Either way `targets` lists, for every completion token, the row and position whose output predicts
it and the sequence it belongs to; sequence k of example i has index i*K + k.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import torch

from rlaif.train.tokenize import Tokenized

if TYPE_CHECKING:
    from rlaif.train.runtime import Runtime


@dataclass
class Batch:
    input_ids: torch.Tensor  # (R, L)
    attention_mask: torch.Tensor  # (R, L) 0/1, or (R, 1, L, L) bool when prompts are shared
    position_ids: torch.Tensor  # (R, L)
    tgt_row: torch.Tensor  # (T,) row of the position whose output predicts the token
    tgt_pos: torch.Tensor  # (T,)
    tgt_token: torch.Tensor  # (T,)
    tgt_seq: torch.Tensor  # (T,) sequence index
    last_row: torch.Tensor  # (S,) where each sequence's last token sits (reward models read there)
    last_pos: torch.Tensor  # (S,)
    n_seqs: int
    n_tokens: int  # real (non-pad) tokens in the batch

    def to(self, device) -> Batch:
        return Batch(**{k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v)
                        for k, v in self.__dict__.items()})


def collate(items: list[Tokenized], pad_id: int, share_prompt: bool) -> Batch:
    rows: list[list[int]] = []
    positions: list[list[int]] = []
    segments: list[list[int]] = []  # 0 = prompt, k+1 = completion k (shared layout only)
    t_row, t_pos, t_tok, t_seq, l_row, l_pos = [], [], [], [], [], []
    k_per = len(items[0].completions)
    for i, it in enumerate(items):
        p = it.prompt
        if share_prompt:
            r = len(rows)
            ids, pos, seg = list(p), list(range(len(p))), [0] * len(p)
            for k, c in enumerate(it.completions):
                start = len(ids)
                for t, tok in enumerate(c):  # token t is predicted by the previous token of its own segment
                    prev = (start + t - 1) if t > 0 else len(p) - 1
                    if prev >= 0:
                        t_row.append(r), t_pos.append(prev), t_tok.append(tok), t_seq.append(i * k_per + k)
                ids += c
                pos += range(len(p), len(p) + len(c))
                seg += [k + 1] * len(c)
                l_row.append(r), l_pos.append(len(ids) - 1)
            rows.append(ids), positions.append(pos), segments.append(seg)
        else:
            for k, c in enumerate(it.completions):
                r = len(rows)
                for t, tok in enumerate(c):
                    prev = len(p) + t - 1
                    if prev >= 0:
                        t_row.append(r), t_pos.append(prev), t_tok.append(tok), t_seq.append(i * k_per + k)
                rows.append(p + c), positions.append(list(range(len(p) + len(c))))
                l_row.append(r), l_pos.append(len(p) + len(c) - 1)
    width = max(len(r) for r in rows)
    n = len(rows)
    input_ids = torch.full((n, width), pad_id, dtype=torch.long)
    position_ids = torch.zeros((n, width), dtype=torch.long)
    mask2d = torch.zeros((n, width), dtype=torch.long)
    for r, (ids, pos) in enumerate(zip(rows, positions, strict=True)):
        input_ids[r, :len(ids)] = torch.tensor(ids)
        position_ids[r, :len(pos)] = torch.tensor(pos)
        mask2d[r, :len(ids)] = 1
    if share_prompt:
        attention = segment_mask(segments, width)
    else:
        attention = mask2d
    lt = lambda x: torch.tensor(x, dtype=torch.long)
    return Batch(input_ids, attention, position_ids, lt(t_row), lt(t_pos), lt(t_tok), lt(t_seq),
                 lt(l_row), lt(l_pos), n_seqs=len(items) * k_per, n_tokens=int(mask2d.sum()))


def segment_mask(segments: list[list[int]], width: int) -> torch.Tensor:
    """(R, 1, width, width) bool attention of shared-prompt rows: segment 0 is the prompt, segment k >= 1 a
    response; a token sees earlier tokens of the prompt and of its own segment. Padding (past a row's
    segments) sees only itself, so no query row is all-masked (that gives NaN)."""
    seg = torch.full((len(segments), width), -1, dtype=torch.long)
    for r, s in enumerate(segments):
        seg[r, :len(s)] = torch.tensor(s, dtype=torch.long)
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    q, kv = seg[:, :, None], seg[:, None, :]
    allowed = causal & (kv != -1) & (q != -1) & ((kv == 0) | (kv == q))
    allowed |= torch.eye(width, dtype=torch.bool)
    return allowed[:, None]


def row_cost(it: Tokenized, share_prompt: bool) -> int:
    return len(it.prompt) + sum(len(c) for c in it.completions) if share_prompt else max(it.lengths)


def epoch_batches(costs: list[int], batch_size: int, world: int, seed: int, epoch: int,
                  group_by_length: bool) -> list[list[int]]:
    """The global batches of one epoch, as lists of example indices (same on every process).

    Length grouping: shuffle, cut into mega-batches of 64 batches, sort each by length and slice it into
    batches, then shuffle the batches, so padding is small and the order stays random. The partial last
    batch is dropped (unless it is the only one), so the batches do not depend on the process count.
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    idx = list(range(len(costs)))
    rng.shuffle(idx)
    if group_by_length:
        mega = batch_size * 64
        idx = [i for s in range(0, len(idx), mega) for i in sorted(idx[s:s + mega], key=lambda j: -costs[j])]
    batches = [idx[s:s + batch_size] for s in range(0, len(idx), batch_size)]
    if len(batches) > 1 and len(batches[-1]) < batch_size:
        batches.pop()  # drop the partial last batch, so every process count sees the same batches
    batches = [b[:len(b) - len(b) % world] for b in batches]  # only a lone, short batch is cut
    batches = [b for b in batches if b]
    if group_by_length:
        rng.shuffle(batches)
    return batches


def local_micro_batches(batch: list[int], costs: list[int], rank: int, world: int,
                        micro_batch_size: int) -> list[list[int]]:
    """This process's share of a global batch, split into micro-batches of similar length.

    Every process gets the same number of micro-batches (DDP needs the same number of backward passes)."""
    ordered = sorted(batch, key=lambda j: -costs[j])
    mine = ordered[rank::world]
    m = -(-len(mine) // micro_batch_size)
    size, extra = divmod(len(mine), m)
    out, s = [], 0
    for k in range(m):
        e = s + size + (1 if k < extra else 0)
        out.append(mine[s:e])
        s = e
    return out


class Pass(NamedTuple):
    """One forward pass of an evaluation or reference pass: which examples, and whether its results count."""

    indices: list[int]
    keep: bool


def micro_batches_for(n: int, costs: list[int], rt: Runtime, size: int) -> list[Pass]:
    """This process's share of `n` examples in length-sorted micro-batches (for reference and eval passes).

    Every process gets the same number of passes (FSDP's forward is a collective): a process with fewer
    repeats a batch and marks it `keep=False`, so its results are dropped."""
    order = sorted(range(n), key=lambda j: -costs[j])
    mine = order[rt.rank::rt.world]
    batches = [Pass(mine[s:s + size], True) for s in range(0, len(mine), size)]
    most = -(-len(order[0::rt.world]) // size) if order else 0
    while len(batches) < most:
        batches.append(Pass(batches[-1].indices if batches else order[:1], False))
    return batches
