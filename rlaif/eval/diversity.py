"""`rlaif diversity`: tokenize and embed each policy's samples, score them with `rlaif.stats.diversity`, write.

- `diversity_report`    → {policy: {"per_input", "across_input", counts, tokenizers, vocabularies, warnings}}
- `diversity_from_file` → `diversity.json`, `diversity.md` (`rlaif diversity RESPONSES`)

Tokens. Distinct-n and self-BLEU count whitespace words unless a tokenizer is given. EAD divides
distinct n-grams by their expectation under a vocabulary of V, so it needs a V that does not depend on
the input: by default it counts the tokens of the embedded default model's tokenizer (SmolLM2, loaded
from the local conversion, never downloaded) with V = that tokenizer's size for every order, as Kirk et
al. (2023) do with theirs; values then compare across runs. With `--tokenizer` every metric uses that
tokenizer; `--tokenizer whitespace` gives EAD on whitespace n-grams with V_n = the input's distinct
n-grams of each order (which tracks only the type/token ratio). Without the local model, the default
fails with `MissingDependency` naming the package and `--tokenizer whitespace` as the way around,
rather than quietly reporting an EAD that does not compare.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlaif import records
from rlaif.errors import InputError
from rlaif.eval.embed import Embedder, TokenizedTexts, default_tokenize, load_embedder, tokenize
from rlaif.records import Response, write_json, write_text
from rlaif.report.markdown import md_table, md_text
from rlaif.stats.diversity import EAD_ORDERS, ngram_vocabulary, policy_diversity

_METRICS = ["distinct_1", "distinct_2", "ead", "self_bleu", "embedding"]


def read_responses(path: str | Path) -> list[Response]:
    """Response records, each (policy, prompt_id, sample) once."""
    out = records.read_responses(path)
    if not out:
        raise InputError(path, None, "the file holds no responses", "pass the output of `rlaif generate`")
    return out


@dataclass
class _Tokens:
    """The tokens of every response for the n-gram metrics, and those EAD counts with its vocabulary."""

    ngram: TokenizedTexts
    ead: TokenizedTexts
    ead_vocab: int | list[int]  # one V for every order, or the whitespace input's V_n per order


def _tokens(texts: list[str], tokenizer: str | None) -> _Tokens:
    ngram = tokenize(texts, tokenizer)
    ead = default_tokenize(texts) if tokenizer is None else ngram
    vocab = ngram_vocabulary(ead.tokens) if ead.tokenizer == "whitespace" else ead.vocab_size
    return _Tokens(ngram, ead, vocab)


def _embed(texts: list[str], embed_dtype: str, progress: Callable[[int, int], None] | None) -> tuple[Embedder, Any]:
    embedder = load_embedder(embed_dtype)
    done = [0]

    def tick(k: int) -> None:
        done[0] += k
        if progress:
            progress(done[0], len(set(texts)))

    return embedder, embedder.encode(texts, progress=tick)


def diversity_report(responses: Sequence[Response], *, tokenizer: str | None = None, embedding: bool = True,
                     embed_dtype: str = "auto", progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """{policy: {"per_input": metrics, "across_input": metrics, "n_prompts", "samples_per_prompt", ...}}."""
    by_policy: dict[str, dict[str, list[Response]]] = {}
    for r in responses:
        by_policy.setdefault(r.policy, {}).setdefault(r.prompt_id, []).append(r)
    texts = [r.response for r in responses]
    tok = _tokens(texts, tokenizer)
    row_of = {id(r): i for i, r in enumerate(responses)}
    embedder, vecs = _embed(texts, embed_dtype, progress) if embedding else (None, None)
    report: dict[str, Any] = {}
    for policy, prompts in by_policy.items():
        groups = [[row_of[id(r)] for r in sorted(rs, key=lambda r: r.sample)] for rs in prompts.values()]
        sizes = [len(g) for g in groups]
        warnings = []
        if min(sizes) != max(sizes):
            warnings.append(f"prompts have between {min(sizes)} and {max(sizes)} samples; "
                            "samples_per_prompt reports the smallest")
        if max(sizes) < 2:
            warnings.append("one sample per prompt: per-input self-BLEU and embedding diversity are undefined")
        metrics = policy_diversity([[tok.ngram.tokens[i] for i in g] for g in groups], tok.ead_vocab,
                                   None if vecs is None else [vecs[g] for g in groups],
                                   ead_samples_by_prompt=[[tok.ead.tokens[i] for i in g] for g in groups])
        report[policy] = {
            "per_input": metrics["per_input"].to_dict(),
            "across_input": metrics["across_input"].to_dict(),
            "n_prompts": len(groups),
            "samples_per_prompt": min(sizes),
            "tokenizer": tok.ngram.tokenizer,
            "vocab_size": tok.ngram.vocab_size,
            "ead_tokenizer": tok.ead.tokenizer,
            "ead_vocab_sizes": tok.ead_vocab if isinstance(tok.ead_vocab, list) else [tok.ead_vocab] * len(EAD_ORDERS),
            "embedding_model": f"{embedder.name} ({embedder.dtype})" if embedder else None,
            "warnings": warnings,
        }
    return report


def _ead_note(first: dict[str, Any]) -> str:
    """What V is in this report's EAD, and whether it compares across runs."""
    v = first["ead_vocab_sizes"]
    if first["ead_tokenizer"] == "whitespace":
        return ("EAD tokens: whitespace, V = the distinct n-grams of each order in this input: "
                f"{', '.join(map(str, v))} (so compare EAD across runs only on a fixed vocabulary: the default, "
                "or a --tokenizer directory).")
    return f"EAD tokens: {first['ead_tokenizer']}, V = its vocabulary of {v[0]} for every order."


def diversity_markdown(report: dict[str, Any]) -> str:
    lines = ["# Diversity", ""]
    for scope, title in (("per_input", "Per input (over each prompt's samples, averaged over prompts)"),
                         ("across_input", "Across inputs (the first sample of every prompt)")):
        lines += [f"## {title}", ""]
        per = scope == "per_input"
        lines.append(md_table([[p, v["n_prompts"], *([v["samples_per_prompt"]] if per else []),
                                *(v[scope][m] for m in _METRICS)] for p, v in report.items()],
                              headers=["policy", "prompts", *(["samples"] if per else []), *_METRICS]))
    first = next(iter(report.values()))
    lines += [f"Tokens for distinct-n and self-BLEU: {first['tokenizer']} (vocabulary {first['vocab_size']}); "
              f"embeddings: {first['embedding_model'] or 'not computed'}. Higher is more diverse, except self-BLEU "
              "(0-100), where lower is more diverse. EAD: distinct n-grams over their expectation under "
              "uniform sampling from a vocabulary of V n-grams, mean of n = 1..5. " + _ead_note(first)]
    warns = [f"- {md_text(p)}: {md_text(w)}" for p, v in report.items() for w in v["warnings"]]
    if warns:
        lines += ["", "## Warnings", "", *warns]
    return "\n".join(lines) + "\n"


def diversity_from_file(responses_path: str | Path, out_dir: str | Path, *, tokenizer: str | None = None,
                        embedding: bool = True, embed_dtype: str = "auto",
                        progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    report = diversity_report(read_responses(responses_path), tokenizer=tokenizer, embedding=embedding,
                              embed_dtype=embed_dtype, progress=progress)
    out = Path(out_dir)
    write_json(out / "diversity.json", report)
    write_text(out / "diversity.md", diversity_markdown(report))
    return report
