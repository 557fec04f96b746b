"""Verifiable instruction constraints: the instruction text and a rule checker for each.

A constraint is a dict `{"family": ..., "type": ..., **params}` stored on a Prompt record's
`constraints` field. `describe(c)` gives the instruction sentence put into the prompt;
`check(constraints, response)` says which of them a response satisfies.

Families and types (params in parentheses; `relation` is "at most", "at least" or "exactly"):

- format:    bullet_list (n, relation), numbered_list (n, relation), json, title
- length:    words (n, relation), sentences (n, relation), characters (n, relation)
- keywords:  include (words), exclude (words), frequency (word, n, relation)
- casing:    lowercase, uppercase, capital_words (n, relation)
- structure: paragraphs (n, relation), start_phrase (phrase), end_phrase (phrase), no_commas,
             quotation, postscript (marker)

Counting rules, chosen to be predictable rather than clever:
- a *word* is a whitespace-separated token holding at least one letter or digit;
- a *sentence* is a stretch of text holding a letter, ended by `.`, `!` or `?` before a space or the end,
  or by a line break (so `3.5` and a list marker `1.` do not end or make sentences);
- a *paragraph* is a block separated from the next by a blank line;
- a *bullet* is a line starting with `-`, `*` or `•` then a space; a *numbered item* a line starting
  with digits then `.` or `)`;
- keyword matching ignores case and matches whole words only (`art` does not match `party`);
- phrase checks (start, end, postscript marker) ignore case and surrounding whitespace, so a phrase
  can be honoured under a casing constraint.
- An empty (or whitespace-only) response satisfies no constraint: otherwise saying nothing would
  "comply" with exclusions and upper bounds.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from rlaif.errors import ConfigError

RELATIONS = ("at most", "at least", "exactly")
FAMILIES = ("format", "length", "keywords", "casing", "structure")


@dataclass
class ConstraintResult:
    """The verdict on one constraint: `detail` says what was measured."""

    family: str
    type: str
    passed: bool
    detail: str


@dataclass
class CheckResult:
    """Per-constraint verdicts plus the two summaries evaluation uses."""

    results: list[ConstraintResult] = field(default_factory=list)

    @property
    def all_pass(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def share_passed(self) -> float:
        return sum(r.passed for r in self.results) / len(self.results) if self.results else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"all_pass": self.all_pass, "share_passed": self.share_passed,
                "results": [asdict(r) for r in self.results]}


@dataclass(frozen=True)
class _Spec:
    params: tuple[str, ...]
    describe: Callable[[dict], str]
    check: Callable[[str, dict], tuple[bool, str]]


_REGISTRY: dict[tuple[str, str], _Spec] = {}


def _register(family: str, type_: str, params: tuple[str, ...] = ()):
    def wrap(cls):
        _REGISTRY[(family, type_)] = _Spec(params, cls.describe, cls.check)
        return cls
    return wrap


def registered() -> list[tuple[str, str]]:
    """Every (family, type) with a checker."""
    return sorted(_REGISTRY)


# ---- shared measurements ---------------------------------------------------------------------------

_WORD_CHAR = re.compile(r"\w")
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)|\n+")
_LETTER = re.compile(r"[^\W\d_]")
_BULLET = re.compile(r"^\s*[-*•]\s+\S", re.M)
_NUMBERED = re.compile(r"^\s*\d+[.)]\s+\S", re.M)
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n(.*)\n```$", re.S)


def words(text: str) -> list[str]:
    return [t for t in text.split() if _WORD_CHAR.search(t)]


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text) if _LETTER.search(s)]


def paragraphs(text: str) -> list[str]:
    return [p for p in _PARAGRAPH_BREAK.split(text.strip()) if p.strip()]


def keyword_count(text: str, word: str) -> int:
    return len(re.findall(rf"(?<!\w){re.escape(word)}(?!\w)", text, flags=re.I))


def compare(value: int, relation: str, n: int) -> bool:
    if relation == "at most":
        return value <= n
    if relation == "at least":
        return value >= n
    if relation == "exactly":
        return value == n
    raise ConfigError(f"unknown relation '{relation}'. Fix: use one of {', '.join(RELATIONS)}")


def _quoted_list(items: Iterable[str], joiner: str) -> str:
    items = [f"'{w}'" for w in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" {joiner} " + items[-1]


def _plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


# ---- format ----------------------------------------------------------------------------------------

@_register("format", "bullet_list", ("n",))
class _BulletList:
    describe = staticmethod(lambda c: (
        f"Format your answer as a bulleted list with {c.get('relation', 'exactly')} {c['n']} "
        f"{_plural(c['n'], 'item', 'items')}, each on its own line starting with '- '."))

    @staticmethod
    def check(text, c):
        k = len(_BULLET.findall(text))
        return compare(k, c.get("relation", "exactly"), c["n"]), f"{k} bullet items"


@_register("format", "numbered_list", ("n",))
class _NumberedList:
    describe = staticmethod(lambda c: (
        f"Format your answer as a numbered list with {c.get('relation', 'exactly')} {c['n']} "
        f"{_plural(c['n'], 'item', 'items')} (1., 2., ...), one per line."))

    @staticmethod
    def check(text, c):
        k = len(_NUMBERED.findall(text))
        return compare(k, c.get("relation", "exactly"), c["n"]), f"{k} numbered items"


@_register("format", "json")
class _Json:
    describe = staticmethod(
        lambda c: "Give your entire answer as one valid JSON object, with nothing before or after it.")

    @staticmethod
    def check(text, c):
        body = text.strip()
        m = _FENCE.match(body)  # a markdown code fence around the JSON is tolerated
        if m:
            body = m.group(1).strip()
        try:
            obj = json.loads(body)
        except json.JSONDecodeError as e:
            return False, f"not valid JSON ({e.msg})"
        ok = isinstance(obj, dict)
        return ok, "a JSON object" if ok else f"valid JSON but a {type(obj).__name__}, not an object"


@_register("format", "title")
class _Title:
    describe = staticmethod(lambda c: "Give your answer a title wrapped in double angular brackets, like <<my title>>.")

    @staticmethod
    def check(text, c):
        m = re.search(r"<<([^<>\n]*\w[^<>\n]*)>>", text)
        return bool(m), f"title {m.group(0)!r}" if m else "no <<title>> found"


# ---- length ----------------------------------------------------------------------------------------

@_register("length", "words", ("n",))
class _Words:
    describe = staticmethod(lambda c: f"Use {c.get('relation', 'at most')} {c['n']} words.")

    @staticmethod
    def check(text, c):
        k = len(words(text))
        return compare(k, c.get("relation", "at most"), c["n"]), f"{k} words"


@_register("length", "sentences", ("n",))
class _Sentences:
    describe = staticmethod(lambda c: (
        f"Answer in {c.get('relation', 'at most')} {c['n']} {_plural(c['n'], 'sentence', 'sentences')}."))

    @staticmethod
    def check(text, c):
        k = len(sentences(text))
        return compare(k, c.get("relation", "at most"), c["n"]), f"{k} sentences"


@_register("length", "characters", ("n",))
class _Characters:
    describe = staticmethod(lambda c: (
        f"Keep your answer to {c.get('relation', 'at most')} {c['n']} characters, spaces included."))

    @staticmethod
    def check(text, c):
        k = len(text.strip())
        return compare(k, c.get("relation", "at most"), c["n"]), f"{k} characters"


# ---- keywords --------------------------------------------------------------------------------------

@_register("keywords", "include", ("words",))
class _Include:
    describe = staticmethod(lambda c: (
        f"Include the {_plural(len(c['words']), 'word', 'words')} {_quoted_list(c['words'], 'and')} in your answer."))

    @staticmethod
    def check(text, c):
        missing = [w for w in c["words"] if keyword_count(text, w) == 0]
        return not missing, f"missing {missing}" if missing else "all present"


@_register("keywords", "exclude", ("words",))
class _Exclude:
    describe = staticmethod(lambda c: (
        f"Do not use the {_plural(len(c['words']), 'word', 'words')} {_quoted_list(c['words'], 'or')} anywhere "
        "in your answer."))

    @staticmethod
    def check(text, c):
        found = [w for w in c["words"] if keyword_count(text, w) > 0]
        return not found, f"used {found}" if found else "none used"


@_register("keywords", "frequency", ("word", "n"))
class _Frequency:
    describe = staticmethod(lambda c: (
        f"Use the word '{c['word']}' {c.get('relation', 'at least')} {c['n']} "
        f"{_plural(c['n'], 'time', 'times')}."))

    @staticmethod
    def check(text, c):
        k = keyword_count(text, c["word"])
        return compare(k, c.get("relation", "at least"), c["n"]), f"'{c['word']}' {k} times"


# ---- casing ----------------------------------------------------------------------------------------

@_register("casing", "lowercase")
class _Lowercase:
    describe = staticmethod(lambda c: "Write your entire answer in lowercase letters only: no capital letters at all.")

    @staticmethod
    def check(text, c):
        caps = sum(ch.isupper() for ch in text)
        return caps == 0 and any(ch.islower() for ch in text), f"{caps} capital letters"


@_register("casing", "uppercase")
class _Uppercase:
    describe = staticmethod(lambda c: "Write your entire answer in capital letters only (ALL CAPS).")

    @staticmethod
    def check(text, c):
        low = sum(ch.islower() for ch in text)
        return low == 0 and any(ch.isupper() for ch in text), f"{low} lowercase letters"


def _all_caps_words(text: str) -> list[str]:
    # Two or more letters, all capitals: "I" and "A" are ordinary words, not emphasis.
    out = []
    for t in text.split():
        letters = [ch for ch in t if ch.isalpha()]
        if len(letters) >= 2 and all(ch.isupper() for ch in letters):
            out.append(t)
    return out


@_register("casing", "capital_words", ("n",))
class _CapitalWords:
    describe = staticmethod(lambda c: (
        f"Write {c.get('relation', 'at least')} {c['n']} {_plural(c['n'], 'word', 'words')} entirely in capital "
        "letters for emphasis, LIKE THIS."))

    @staticmethod
    def check(text, c):
        k = len(_all_caps_words(text))
        return compare(k, c.get("relation", "at least"), c["n"]), f"{k} all-caps words"


# ---- structure -------------------------------------------------------------------------------------

@_register("structure", "paragraphs", ("n",))
class _Paragraphs:
    describe = staticmethod(lambda c: (
        f"Write {c.get('relation', 'exactly')} {c['n']} {_plural(c['n'], 'paragraph', 'paragraphs')}, "
        "separated from each other by one blank line."))

    @staticmethod
    def check(text, c):
        k = len(paragraphs(text))
        return compare(k, c.get("relation", "exactly"), c["n"]), f"{k} paragraphs"


@_register("structure", "start_phrase", ("phrase",))
class _StartPhrase:
    describe = staticmethod(lambda c: f"Begin your answer with the exact words '{c['phrase']}'.")

    @staticmethod
    def check(text, c):
        ok = text.strip().lower().startswith(c["phrase"].strip().lower())
        return ok, f"starts with {text.strip()[:len(c['phrase']) + 10]!r}"


@_register("structure", "end_phrase", ("phrase",))
class _EndPhrase:
    describe = staticmethod(lambda c: (
        f"End your answer with the exact phrase '{c['phrase']}', with nothing after it."))

    @staticmethod
    def check(text, c):
        ok = text.strip().lower().endswith(c["phrase"].strip().lower())
        return ok, f"ends with {text.strip()[-len(c['phrase']) - 10:]!r}"


@_register("structure", "no_commas")
class _NoCommas:
    describe = staticmethod(lambda c: "Do not use any commas in your answer.")

    @staticmethod
    def check(text, c):
        k = text.count(",") + text.count("，")
        return k == 0, f"{k} commas"


_QUOTES = {'"': '"', "“": "”"}


@_register("structure", "quotation")
class _Quotation:
    describe = staticmethod(lambda c: "Wrap your entire answer in double quotation marks.")

    @staticmethod
    def check(text, c):
        t = text.strip()
        ok = len(t) >= 2 and t[0] in _QUOTES and t[-1] == _QUOTES[t[0]] and bool(_WORD_CHAR.search(t))
        return ok, "wrapped in quotes" if ok else "not wrapped in double quotes"


@_register("structure", "postscript", ("marker",))
class _Postscript:
    describe = staticmethod(lambda c: (
        f"At the end of your answer, add a postscript on its own line starting with '{c['marker']}'."))

    @staticmethod
    def check(text, c):
        pat = rf"^\s*{re.escape(c['marker'].strip())}\s*\S"
        ok = re.search(pat, text, flags=re.I | re.M) is not None
        return ok, "postscript found" if ok else f"no line starting with {c['marker']!r}"


# ---- the public API --------------------------------------------------------------------------------

def _spec(constraint: dict) -> _Spec:
    if not isinstance(constraint, dict):
        raise ConfigError(f"a constraint must be an object, got {constraint!r}. "
                          "Fix: write {\"family\": ..., \"type\": ..., params}")
    key = (constraint.get("family"), constraint.get("type"))
    spec = _REGISTRY.get(key)
    if spec is None:
        known = ", ".join(f"{f}/{t}" for f, t in registered())
        raise ConfigError(f"unknown constraint {key[0]}/{key[1]}. Fix: use one of {known}")
    missing = [p for p in spec.params if p not in constraint]
    if missing:
        raise ConfigError(f"constraint {key[0]}/{key[1]} lacks {', '.join(missing)}. "
                          f"Fix: give it {', '.join(spec.params)}")
    rel = constraint.get("relation")
    if rel is not None and rel not in RELATIONS:
        raise ConfigError(f"constraint {key[0]}/{key[1]} has relation '{rel}'. Fix: use one of {', '.join(RELATIONS)}")
    return spec


def validate(constraint: dict) -> None:
    """Raise ConfigError if the constraint names no known checker or lacks a parameter."""
    _spec(constraint)


def describe(constraint: dict) -> str:
    """The instruction sentence for one constraint (what the prompt asks for)."""
    return _spec(constraint).describe(constraint)


def check(constraints: Iterable[dict], response: str) -> CheckResult:
    """Check a response against every constraint; an empty response fails them all."""
    out = CheckResult()
    empty = not response or not response.strip()
    for c in constraints:
        spec = _spec(c)
        if empty:
            passed, detail = False, "empty response"
        else:
            passed, detail = spec.check(response, c)
        out.results.append(ConstraintResult(c["family"], c["type"], bool(passed), detail))
    return out
