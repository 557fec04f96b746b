"""Diversity metrics on 1,000 prompts x 16 samples (~40 words each): rlaif vs a plain sacrebleu loop.

Run: python benchmarks/bench_diversity.py [--prompts 1000] [--samples 16] [--no-embedding]

The text is synthetic but shaped like policy samples: English words (the vocabulary of the
project's own prompt sets, so the embedder sees about 1.3 word pieces per word, as in real text)
drawn by Zipf's law; each prompt has a 40-word "gist" and each sample rewrites about half of its
words, so samples of a prompt overlap the way real samples do.

The reference is `sacrebleu.sentence_bleu` called once per sample (the usual self-BLEU loop). It is
timed on a subset and extrapolated (printed as such), because the across-input part alone
(1,000 hypotheses x 999 references) would take minutes. On the subsets the two must agree to 1e-9.
Wall and CPU seconds are both printed: on a shared machine the wall time includes waiting.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import time
from pathlib import Path

import numpy as np
import sacrebleu

from rlaif.stats import diversity as D


def english_words() -> list[str]:
    """Distinct words of the shipped prompt sets, most frequent first."""
    counts: dict[str, int] = {}
    for f in sorted((Path(__file__).resolve().parents[1] / "prompts").glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            text = json.loads(line).get("prompt")  # probe sets and other shapes hold no plain prompt
            for w in re.findall(r"[a-z]+", text.lower() if isinstance(text, str) else ""):
                counts[w] = counts.get(w, 0) + 1
    return sorted(counts, key=lambda w: (-counts[w], w))


def synth(n_prompts: int, k: int, words: int = 40, seed: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    lex = english_words()
    weights = [1 / (r + 1) for r in range(len(lex))]  # Zipf's law, s = 1
    out = []
    for _ in range(n_prompts):
        gist = rng.choices(lex, weights, k=words)
        group = []
        for _ in range(k):
            n = max(5, words + rng.randint(-12, 12))
            draws = rng.choices(lex, weights, k=n)
            group.append(" ".join(gist[i % words] if rng.random() < 0.5 else draws[i] for i in range(n)))
        out.append(group)
    return out


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def reference_self_bleu(group: list[str]) -> list[float]:
    return [sacrebleu.sentence_bleu(h, group[:i] + group[i + 1:], tokenize="none").score for i, h in enumerate(group)]


def ngram_metrics(groups: list[list[str]]) -> float:
    """As `rlaif diversity` does by default: whitespace words for distinct-n and self-BLEU, the embedded
    model's tokens (one batch call) for EAD with V = its vocabulary. Returns the wall seconds."""
    from rlaif.eval.embed import default_tokenize

    t0, c0 = time.perf_counter(), time.process_time()
    flat = [t for g in groups for t in g]
    ead = default_tokenize(flat)
    t_tok = time.perf_counter() - t0
    offsets = np.cumsum([0, *(len(g) for g in groups)])
    ead_groups = [ead.tokens[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    res = D.policy_diversity([[t.split() for t in g] for g in groups], vocab_size=ead.vocab_size,
                             ead_samples_by_prompt=ead_groups)
    t_ngram, c_ngram = time.perf_counter() - t0, time.process_time() - c0
    per, across = res["per_input"], res["across_input"]
    print(f"rlaif n-gram metrics (distinct-1/2, EAD, self-BLEU per-input and across-input): {t_ngram:.2f} s "
          f"(CPU {c_ngram:.2f} s), of which loading {ead.tokenizer} and tokenizing for EAD {t_tok:.2f} s")
    print(f"  per-input  self-BLEU {per.self_bleu:.3f}, EAD {per.ead:.3f}, distinct-2 {per.distinct_2:.3f}")
    print(f"  across     self-BLEU {across.self_bleu:.3f}, EAD {across.ead:.3f}, distinct-2 {across.distinct_2:.3f}")
    return t_ngram


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--ref-prompts", type=int, default=40, help="prompts the per-input reference loop runs on")
    ap.add_argument("--ref-across", type=int, default=10, help="hypotheses the across-input reference runs on")
    ap.add_argument("--no-embedding", action="store_true")
    args = ap.parse_args()
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f} (other work slows every figure)")

    groups = synth(args.prompts, args.samples)
    n_texts = sum(len(g) for g in groups)
    print(f"data: {args.prompts} prompts x {args.samples} samples = {n_texts} texts, "
          f"{np.mean([len(t.split()) for g in groups for t in g]):.1f} words on average")

    t_ngram = ngram_metrics(groups)

    # the reference: a plain loop over sacrebleu.sentence_bleu, timed on subsets
    sub = groups[:args.ref_prompts]
    t0 = time.perf_counter()
    ref_scores = [reference_self_bleu(g) for g in sub]
    t_ref_sub = time.perf_counter() - t0
    ours_sub = [D.self_bleu_scores([t.split() for t in g]) for g in sub]
    diff = max(float(np.max(np.abs(np.asarray(r) - o))) for r, o in zip(ref_scores, ours_sub, strict=True))
    t_ref_per = t_ref_sub * args.prompts / len(sub)

    firsts = [g[0] for g in groups]
    t0 = time.perf_counter()
    ref_across = [sacrebleu.sentence_bleu(firsts[i], firsts[:i] + firsts[i + 1:], tokenize="none").score
                  for i in range(args.ref_across)]
    t_ref_across_sub = time.perf_counter() - t0
    ours_across = D.self_bleu_scores([t.split() for t in firsts])[:args.ref_across]
    diff = max(diff, float(np.max(np.abs(np.asarray(ref_across) - ours_across))))
    t_ref_across = t_ref_across_sub * len(firsts) / args.ref_across
    t_ref = t_ref_per + t_ref_across
    print(f"sacrebleu loop, per-input: {t_ref_sub:.2f} s on {len(sub)} prompts -> {t_ref_per:.1f} s extrapolated "
          f"to {args.prompts}")
    print(f"sacrebleu loop, across-input: {t_ref_across_sub:.2f} s on {args.ref_across} of {len(firsts)} hypotheses "
          f"-> {t_ref_across:.1f} s extrapolated")
    print(f"max |rlaif - sacrebleu| on the subsets: {diff:.2e}")
    print(f"self-BLEU + EAD + distinct: rlaif {t_ngram:.2f} s vs sacrebleu loop {t_ref:.1f} s (extrapolated, "
          f"self-BLEU only): {t_ref / t_ngram:.0f}x faster")

    total = t_ngram
    if not args.no_embedding:
        from rlaif.eval.embed import load_embedder

        t0 = time.perf_counter()
        emb = load_embedder("auto")
        t_load = time.perf_counter() - t0
        texts = [t for g in groups for t in g]
        t0, c0 = time.perf_counter(), time.process_time()
        vecs = emb.encode(texts)
        t_enc, c_enc = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        sizes = [len(g) for g in groups]
        offsets = np.cumsum([0, *sizes])
        per_e = float(np.mean([D.embedding_diversity(vecs[a:b]) for a, b in zip(offsets[:-1], offsets[1:],
                                                                               strict=True)]))
        across_e = D.embedding_diversity(vecs[offsets[:-1]])
        t_metric = time.perf_counter() - t0
        n_pieces = sum(len(x) for x in emb.tokenizer(texts[:2000])["input_ids"]) / 2000
        print(f"embedding: import + load {t_load:.1f} s; encode {n_texts} texts ({n_pieces:.0f} word pieces each) "
              f"{t_enc:.1f} s wall, {c_enc:.1f} s CPU over {torch_threads()} threads ({n_texts / t_enc:.0f} texts/s, "
              f"{emb.dtype}); diversity from the vectors {t_metric:.2f} s; "
              f"per-input {per_e:.4f}, across {across_e:.4f}")
        total += t_load + t_enc + t_metric
    print(f"TOTAL {total:.1f} s (target: under 60 s on 2 cores) -> {'OK' if total < 60 else 'OVER TARGET'}")


if __name__ == "__main__":
    main()
