"""Diversity of a policy's samples: distinct-n, EAD, self-BLEU and embedding diversity.

Pure numpy. Texts arrive already tokenized (a sequence of tokens per sample: strings or ints);
`rlaif.eval.diversity` does the tokenizing and the embedding. EAD may count other tokens than the
other metrics (`ead_samples_by_prompt`): by default those of a tokenizer with a fixed vocabulary,
while distinct-n and self-BLEU count whitespace words. Samples are organized in *groups*: the K
samples of one prompt (per-input diversity, averaged over prompts) or the first sample of every
prompt (across-input diversity, one group).

Definitions, for one group:

- `distinct_n`: distinct n-grams / total n-grams, pooled over the group's samples (Li et al., 2016).
  K identical samples therefore score 1/K of one sample's ratio: repetition across samples counts.
- `ead`: expectation-adjusted distinct n-grams (Liu et al., 2022; used by Kirk et al., 2023):
  distinct_count / E[distinct], E = V·(1 − ((V−1)/V)^C) for C total n-grams drawn uniformly from a
  vocabulary of V, averaged over n = 1..5 (orders with no n-gram are skipped). With a tokenizer, V is
  its vocabulary size for every order, as in the reference implementation and Kirk et al.; this is
  the default, so values compare across runs. Whitespace tokens (on request) have no fixed
  vocabulary, so V_n is the number of distinct n-grams of order n in the whole input
  (`ngram_vocabulary`): a single V (the distinct words) would let C exceed V for n ≥ 2 and push
  across-input EAD far above 1 (we measured 18.5 on 1,000 forty-word samples). That V depends on
  the input, is at least the distinct count by construction, and tracks only the type/token ratio.
- `self_bleu`: the mean over samples of the sentence BLEU of each sample against all the others
  as references, on the 0-100 scale. It equals, to floating-point rounding, the mean of
  `sacrebleu.sentence_bleu(hyp, others, tokenize="none")` (defaults otherwise: exponential
  smoothing, effective order, up to 4-grams) over samples whose tokens are joined by spaces.
  Computed here in one vectorized pass: every sample's n-gram counts are built once, and the
  clipping count "max over the other samples" comes from each n-gram's top two counts in the group.
- `embedding`: 1 − mean pairwise cosine similarity of the samples' embeddings.

Groups with fewer than two samples have no self-BLEU or embedding diversity and are skipped.
"""
from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

BLEU_ORDER = 4
EAD_ORDERS = (1, 2, 3, 4, 5)

Tokens = Sequence[Hashable]


@dataclass
class DiversityMetrics:
    distinct_1: float | None
    distinct_2: float | None
    ead: float | None
    self_bleu: float | None
    embedding: float | None

    def to_dict(self) -> dict[str, float | None]:
        return asdict(self)


# ---- n-gram codes for many groups at once ----------------------------------------------------------------

def as_int_sequences(seqs: Sequence[Tokens]) -> list[np.ndarray]:
    """Map token sequences (strings or ints) to int arrays with one id per distinct token."""
    vocab: dict[Hashable, int] = {}
    return [np.fromiter((vocab.setdefault(t, len(vocab)) for t in s), dtype=np.int64, count=len(s)) for s in seqs]


@dataclass
class _Ngrams:
    seq: np.ndarray  # which sample each n-gram occurrence belongs to
    code: np.ndarray  # a dense id per distinct n-gram (of this order)


def _ngram_codes(seqs: list[np.ndarray], max_n: int) -> tuple[np.ndarray, list[_Ngrams]]:
    """Dense n-gram ids for n = 1..max_n over all sequences; equal n-grams get equal ids."""
    lens = np.array([len(s) for s in seqs], dtype=np.int64)
    if lens.sum() == 0:
        empty = _Ngrams(np.zeros(0, np.int64), np.zeros(0, np.int64))
        return lens, [empty] * max_n
    tok = np.concatenate(seqs).astype(np.int64)
    seq_of = np.repeat(np.arange(len(seqs)), lens)
    starts = np.cumsum(lens) - lens
    remaining = np.repeat(lens, lens) - (np.arange(len(tok)) - np.repeat(starts, lens))
    uni_vals, uni = np.unique(tok, return_inverse=True)
    n_uni = len(uni_vals)
    pos = np.arange(len(tok))
    cur = uni
    out = [_Ngrams(seq_of, uni)]
    for n in range(2, max_n + 1):
        keep = remaining[pos] >= n
        pos = pos[keep]
        combined = cur[keep] * n_uni + uni[pos + n - 1]  # (id of the (n-1)-gram, next token)
        _, cur = np.unique(combined, return_inverse=True)
        out.append(_Ngrams(seq_of[pos], cur))
    return lens, out


def _unique_counts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and their counts (sort-based: faster than np.unique's hash path here)."""
    s = np.sort(x)
    start = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    return s[start], np.diff(np.r_[start, len(s)])


@dataclass
class _GroupStats:
    lens: np.ndarray  # per sequence
    distinct: np.ndarray  # (groups, max_n) distinct n-gram counts
    total: np.ndarray  # (groups, max_n) n-gram counts
    bleu: np.ndarray | None  # per sequence self-BLEU (nan where the group has one sample)


def _group_stats(seqs: list[np.ndarray], group: np.ndarray, n_groups: int, max_n: int, bleu: bool) -> _GroupStats:
    lens, grams = _ngram_codes(seqs, max_n)
    n_seq = len(seqs)
    distinct = np.zeros((n_groups, max_n))
    total = np.zeros((n_groups, max_n))
    correct = np.zeros((n_seq, BLEU_ORDER))
    for i, g in enumerate(grams):
        n = i + 1
        total[:, i] = np.bincount(group, weights=np.maximum(lens - n + 1, 0), minlength=n_groups)
        if len(g.code) == 0:
            continue
        # distinct n-grams per group
        n_codes = int(g.code.max()) + 1
        gc, _ = _unique_counts(group[g.seq] * n_codes + g.code)
        distinct[:, i] = np.bincount(gc // n_codes, minlength=n_groups)
        if not bleu or n > BLEU_ORDER:
            continue
        # counts per (sequence, n-gram)
        sc, cnt = _unique_counts(g.code * n_seq + g.seq)
        code, seq = sc // n_seq, sc % n_seq
        grp = group[seq]
        # the top two counts of each n-gram within each group; the reference count for a sample is
        # the top count of the *other* samples: the second count if this sample holds the top one.
        order = np.lexsort((cnt, code, grp))
        key = (grp * n_codes + code)[order]
        c_sorted, s_sorted = cnt[order], seq[order]
        last = np.r_[key[1:] != key[:-1], True]
        first = np.r_[True, key[1:] != key[:-1]]
        top_idx = np.flatnonzero(last)
        top = c_sorted[top_idx]
        top_seq = s_sorted[top_idx]
        second = np.where(first[top_idx], 0, c_sorted[np.maximum(top_idx - 1, 0)])
        which = np.cumsum(first) - 1  # run index of each sorted entry
        ref = np.where(s_sorted == top_seq[which], second[which], top[which])
        clipped = np.minimum(c_sorted, ref)
        correct[:, i] = np.bincount(s_sorted, weights=clipped, minlength=n_seq)
    scores = None
    if bleu:
        ref_len = _closest_other_length(lens, group)
        hyp_total = np.maximum(lens[:, None] - np.arange(BLEU_ORDER)[None, :], 0).astype(float)
        scores = sentence_bleu_from_stats(correct, hyp_total, lens.astype(float), ref_len)
        sizes = np.bincount(group, minlength=n_groups)
        scores[sizes[group] < 2] = np.nan
    return _GroupStats(lens, distinct, total, scores)


def _closest_other_length(lens: np.ndarray, group: np.ndarray) -> np.ndarray:
    """For each sequence, the length of the other sequences in its group closest to its own
    (ties go to the shorter, as in sacrebleu); nan where there is no other sequence."""
    order = np.lexsort((lens, group))
    g, length = group[order], lens[order].astype(float)
    # in (group, length) order the closest other lengths are the two neighbours
    prev_ok = np.r_[False, g[1:] == g[:-1]]
    next_ok = np.r_[g[:-1] == g[1:], False]
    prev_len = np.r_[0.0, length[:-1]]
    next_len = np.r_[length[1:], 0.0]
    d_prev = np.where(prev_ok, length - prev_len, np.inf)
    d_next = np.where(next_ok, next_len - length, np.inf)
    best = np.where(d_prev <= d_next, prev_len, next_len)  # a tie goes to the shorter (previous)
    out = np.empty(len(lens))
    out[order] = np.where(prev_ok | next_ok, best, np.nan)
    return out


def sentence_bleu_from_stats(correct: np.ndarray, total: np.ndarray, sys_len: np.ndarray,
                             ref_len: np.ndarray) -> np.ndarray:
    """sacrebleu's sentence BLEU (exp smoothing, effective order) from sufficient statistics, vectorized."""
    with np.errstate(divide="ignore", invalid="ignore"):
        bp = np.where(sys_len < ref_len, np.where(sys_len > 0, np.exp(1 - ref_len / sys_len), 0.0), 1.0)
        has = total > 0
        eff = has.sum(axis=1)
        zero = (correct == 0) & has
        smooth = np.power(2.0, np.cumsum(zero, axis=1))
        prec = np.where(correct > 0, 100.0 * correct / total, 100.0 / (smooth * total))
        logp = np.where(has, np.log(np.where(has, prec, 1.0)), 0.0)
        score = bp * np.exp(logp.sum(axis=1) / np.maximum(eff, 1))
    return np.where(correct.sum(axis=1) == 0, 0.0, score)


Vocab = int | Sequence[int]  # one size for every order, or one per order n = 1, 2, ...


def _vocab_of_orders(vocab_size: Vocab, orders: Sequence[int]) -> np.ndarray:
    if isinstance(vocab_size, (int, np.integer)):
        return np.full(len(orders), float(vocab_size))
    if len(vocab_size) < max(orders):
        raise ValueError(f"{len(vocab_size)} vocabulary sizes given for n-gram orders up to {max(orders)}")
    return np.array([float(vocab_size[o - 1]) for o in orders])


def _ead(distinct: np.ndarray, total: np.ndarray, vocab_size: Vocab | np.ndarray) -> np.ndarray:
    """Per row: mean over orders with n-grams of distinct / (V·(1 − ((V−1)/V)^C)); nan if none.
    `vocab_size`: one V, or one per column of `distinct`."""
    v = np.broadcast_to(np.asarray(vocab_size, dtype=float), total.shape[1:])
    with np.errstate(divide="ignore", invalid="ignore"):
        # V = 1 (one possible n-gram): E = min(C, 1); the max(V, 2) only keeps log1p finite there
        expected = np.where(v > 1, v * -np.expm1(total * np.log1p(-1.0 / np.maximum(v, 2.0))), np.minimum(total, 1.0))
        ratio = np.where(total > 0, distinct / expected, np.nan)
    valid = ~np.isnan(ratio)
    with np.errstate(invalid="ignore"):
        return np.where(valid.any(axis=1), np.nansum(ratio, axis=1) / np.maximum(valid.sum(axis=1), 1), np.nan)


# ---- public functions on one group -------------------------------------------------------------------------

def _one_group(samples: Sequence[Tokens], bleu: bool, max_n: int = 5) -> _GroupStats:
    seqs = as_int_sequences(samples)
    return _group_stats(seqs, np.zeros(len(seqs), dtype=np.int64), 1, max_n, bleu)


def distinct_n(samples: Sequence[Tokens], n: int) -> float | None:
    """Distinct n-grams / total n-grams pooled over the samples; None without n-grams."""
    st = _one_group(samples, bleu=False, max_n=n)
    t = st.total[0, n - 1]
    return float(st.distinct[0, n - 1] / t) if t else None


def ead(samples: Sequence[Tokens], vocab_size: Vocab, orders: Sequence[int] = EAD_ORDERS) -> float | None:
    st = _one_group(samples, bleu=False, max_n=max(orders))
    idx = [o - 1 for o in orders]
    v = _ead(st.distinct[:, idx], st.total[:, idx], _vocab_of_orders(vocab_size, orders))[0]
    return None if np.isnan(v) else float(v)


def ngram_vocabulary(samples: Sequence[Tokens], max_n: int = max(EAD_ORDERS)) -> list[int]:
    """Distinct n-grams of each order n = 1..max_n over all the samples: the EAD vocabulary of
    whitespace tokens."""
    st = _one_group(samples, bleu=False, max_n=max_n)
    return [int(x) for x in st.distinct[0]]


def self_bleu_scores(samples: Sequence[Tokens]) -> np.ndarray:
    """The sentence BLEU of each sample against all the others (0-100)."""
    if len(samples) < 2:
        return np.full(len(samples), np.nan)
    return _one_group(samples, bleu=True, max_n=BLEU_ORDER).bleu


def self_bleu(samples: Sequence[Tokens]) -> float | None:
    s = self_bleu_scores(samples)
    return float(s.mean()) if len(s) >= 2 else None


def embedding_diversity(vectors: np.ndarray) -> float | None:
    """1 − mean pairwise cosine similarity of the rows; None with fewer than two rows."""
    v = _normalize(np.asarray(vectors, dtype=np.float64))
    k = len(v)
    if k < 2:
        return None
    s = v.sum(axis=0)
    mean_cos = (s @ s - (v * v).sum()) / (k * (k - 1))
    return float(max(0.0, 1.0 - mean_cos))  # rounding can leave -1e-16 for identical rows


def _normalize(v: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms > 0, norms, 1.0)


# ---- a policy's report -------------------------------------------------------------------------------------

def _mean(values: np.ndarray) -> float | None:
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else None


def _metrics(seqs: list[np.ndarray], group: np.ndarray, n_groups: int, vocab_size: Vocab,
             embeddings: np.ndarray | None, ead_seqs: list[np.ndarray] | None = None) -> DiversityMetrics:
    st = _group_stats(seqs, group, n_groups, max(EAD_ORDERS), bleu=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = np.where(st.total[:, 0] > 0, st.distinct[:, 0] / st.total[:, 0], np.nan)
        d2 = np.where(st.total[:, 1] > 0, st.distinct[:, 1] / st.total[:, 1], np.nan)
    ead_st = st if ead_seqs is None else _group_stats(ead_seqs, group, n_groups, max(EAD_ORDERS), bleu=False)
    idx = [o - 1 for o in EAD_ORDERS]
    e = _ead(ead_st.distinct[:, idx], ead_st.total[:, idx], _vocab_of_orders(vocab_size, EAD_ORDERS))
    sizes = np.bincount(group, minlength=n_groups)
    bleu_per_group = np.bincount(group, weights=np.nan_to_num(st.bleu), minlength=n_groups) / np.maximum(sizes, 1)
    bleu_per_group[sizes < 2] = np.nan
    emb = None
    if embeddings is not None:
        v = _normalize(np.asarray(embeddings, dtype=np.float64))
        sums = np.zeros((n_groups, v.shape[1]))
        np.add.at(sums, group, v)
        sq = np.bincount(group, weights=(v * v).sum(axis=1), minlength=n_groups)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_cos = ((sums * sums).sum(axis=1) - sq) / (sizes * (sizes - 1))
        mean_cos[sizes < 2] = np.nan
        emb = _mean(np.maximum(0.0, 1.0 - mean_cos))
    return DiversityMetrics(_mean(d1), _mean(d2), _mean(e), _mean(bleu_per_group), emb)


def policy_diversity(samples_by_prompt: Sequence[Sequence[Tokens]], vocab_size: Vocab,
                     embeddings_by_prompt: Sequence[np.ndarray] | None = None, *,
                     ead_samples_by_prompt: Sequence[Sequence[Tokens]] | None = None) -> dict[str, DiversityMetrics]:
    """{"per_input": metrics averaged over prompts, "across_input": metrics over the first samples}.

    `samples_by_prompt[i]` holds prompt i's samples (token sequences) in sample order;
    `embeddings_by_prompt[i]` their embedding rows, if embedding diversity is wanted;
    `ead_samples_by_prompt[i]` the same samples in the tokens EAD counts (default: `samples_by_prompt`),
    whose vocabulary `vocab_size` is.
    """
    sizes = [len(g) for g in samples_by_prompt]
    if ead_samples_by_prompt is not None and [len(g) for g in ead_samples_by_prompt] != sizes:
        raise ValueError("ead_samples_by_prompt must hold the same samples as samples_by_prompt")
    seqs = as_int_sequences([s for group in samples_by_prompt for s in group])
    ead_seqs = None if ead_samples_by_prompt is None else as_int_sequences(
        [s for group in ead_samples_by_prompt for s in group])
    group = np.repeat(np.arange(len(sizes)), sizes)
    firsts = np.cumsum(sizes) - np.asarray(sizes)
    firsts = firsts[np.asarray(sizes) > 0]
    emb_all = None
    if embeddings_by_prompt is not None:
        rows = [np.asarray(e) for e in embeddings_by_prompt if len(e)]
        emb_all = np.concatenate(rows) if rows else None
    per_input = _metrics(seqs, group, len(sizes), vocab_size, emb_all, ead_seqs)
    across = _metrics([seqs[i] for i in firsts], np.zeros(len(firsts), dtype=np.int64), 1, vocab_size,
                      None if emb_all is None else emb_all[firsts],
                      None if ead_seqs is None else [ead_seqs[i] for i in firsts])
    return {"per_input": per_input, "across_input": across}
