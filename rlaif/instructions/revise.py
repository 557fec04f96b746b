"""Rule-guided revisions: mechanically repair a response so it satisfies its prompt's constraints.

A checker can say *that* a response breaks "answer in lowercase" or "end with 'Any other
questions?'"; for most constraint types it can also produce the nearest compliant revision
(lowercase it, append the phrase, cut it to N words). Paired with the original, such a revision
is a preference with a known right answer, which is how the demo gets a training signal from a
135M model that almost never complies on its own (see shared NOTES: DPO on such pairs moved
lowercase compliance from 0.00 to 0.92).

`revise(constraints, response)` returns the revision only if it passes *every* constraint
(re-checked with rlaif.instructions.constraints.check), else None. Types that cannot be repaired by rule
(e.g. "at least 50 words") return None.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable

from rlaif.instructions.constraints import check, keyword_count, sentences, words

Fix = Callable[[str, dict], str | None]


def _cut_words(text: str, n: int) -> str:
    toks = text.split()
    return " ".join(toks[:n]).rstrip(",;:") if len(words(text)) > n else text


def _cut_sentences(text: str, n: int) -> str:
    parts = re.split(r"(?<=[.!?])\s+", text.strip())
    kept = []
    for p in parts:
        if len(sentences(" ".join(kept + [p]))) > n:
            break
        kept.append(p)
    return " ".join(kept) if kept else text


def _cut_chars(text: str, n: int) -> str:
    t = text.strip()
    if len(t) <= n:
        return t
    cut = t[:n]
    return cut[: cut.rfind(" ")] if " " in cut else cut


def _at_most(cut: Callable[[str, int], str]) -> Fix:
    """A cut to `n` for an upper bound; cutting cannot meet a lower bound or an exact count."""
    return lambda t, c: cut(t, c["n"]) if c.get("relation", "at most") == "at most" else None


def _items(text: str, n: int) -> list[str]:
    parts = [p.strip(" -*•\t") for p in re.split(r"(?<=[.!?])\s+|\n+", text.strip()) if p.strip(" -*•\t")]
    parts = [re.sub(r"^\d+[.)]\s*", "", p) for p in parts]
    if len(parts) < n:
        return []
    return parts[: n - 1] + [" ".join(parts[n - 1:])]


def _list(marker: Callable[[int], str]) -> Fix:
    def fix(text: str, c: dict) -> str | None:
        n = c["n"] if c.get("relation", "exactly") != "at most" else min(c["n"], 3)
        items = _items(text, n)
        return "\n".join(f"{marker(i)} {it}" for i, it in enumerate(items, 1)) if items else None
    return fix


def _remove_word(text: str, word: str) -> str:
    out = re.sub(rf"\s*(?<!\w){re.escape(word)}(?!\w)", "", text, flags=re.I)
    return out.strip()


def _frequency(text: str, c: dict) -> str | None:
    k, n, rel = keyword_count(text, c["word"]), c["n"], c.get("relation", "at least")
    if rel == "at least" and k < n:
        return text.rstrip() + "".join(f" {c['word'].capitalize()} matters here." for _ in range(n - k))
    if rel == "at most" and k > n:
        return None
    return text


_FIXES: dict[tuple[str, str], Fix] = {
    ("keywords", "include"): lambda t, c: t.rstrip() + "".join(
        f" This is about {w}." for w in c["words"] if keyword_count(t, w) == 0),
    ("keywords", "exclude"): lambda t, c: _apply_all(t, [lambda s, w=w: _remove_word(s, w) for w in c["words"]]),
    ("keywords", "frequency"): _frequency,
    ("length", "words"): _at_most(_cut_words),
    ("length", "sentences"): _at_most(_cut_sentences),
    ("length", "characters"): _at_most(_cut_chars),
    ("structure", "no_commas"): lambda t, c: t.replace(",", "").replace("，", ""),
    ("structure", "start_phrase"): lambda t, c: f"{c['phrase']} {t.strip()}",
    ("structure", "end_phrase"): lambda t, c: f"{t.strip()} {c['phrase']}",
    ("structure", "postscript"): lambda t, c: f"{t.strip()}\n\n{c['marker']} Thanks for reading.",
    ("structure", "paragraphs"): lambda t, c: (
        "\n\n".join(_items(t, c["n"])) if c.get("relation", "exactly") != "at least" or c["n"] > 1 else t) or None,
    ("structure", "quotation"): lambda t, c: f'"{t.strip()}"',
    ("format", "bullet_list"): _list(lambda i: "-"),
    ("format", "numbered_list"): _list(lambda i: f"{i}."),
    ("format", "title"): lambda t, c: f"<<{' '.join(words(t)[:4]).strip('.,;:!?') or 'Answer'}>>\n\n{t.strip()}",
    ("casing", "lowercase"): lambda t, c: t.lower(),
    ("casing", "uppercase"): lambda t, c: t.upper(),
    ("format", "json"): lambda t, c: json.dumps({"answer": t.strip()}, ensure_ascii=False),
}

# Content first, then cuts, then layout, casing and JSON wrapping last (so they hold for the final text).
_ORDER = ["keywords", "length", "structure", "format", "casing"]
_LAST = {("format", "json"), ("structure", "quotation")}


def _apply_all(text: str, fns: list[Callable[[str], str]]) -> str:
    for fn in fns:
        text = fn(text)
    return text


def revisable(constraint: dict) -> bool:
    return (constraint.get("family"), constraint.get("type")) in _FIXES


def revise(constraints: list[dict], response: str) -> str | None:
    """The rule-guided revision of `response`, or None when no rule revision satisfies every constraint."""
    if not constraints or not response.strip() or not all(revisable(c) for c in constraints):
        return None
    key = lambda c: (((c["family"], c["type"]) in _LAST), _ORDER.index(c["family"]))
    text = response.strip()
    for c in sorted(constraints, key=key):
        text = _FIXES[(c["family"], c["type"])](text, c)
        if text is None or not text.strip():
            return None
    return text if check(constraints, text).all_pass else None
