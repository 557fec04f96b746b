"""Verifiable instruction constraints: the instruction text and a rule checker for each.

A constraint is a dict `{"family": ..., "type": ..., **params}` stored on a Prompt record's
`constraints` field. `describe(c)` gives the instruction sentence put into the prompt;
`check(constraints, response)` says which of them a response satisfies. Each type is one row of
`CONSTRAINT_TYPES` (parameters, instruction template, checker, default relation).

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


# ---- checkers -----------------------------------------------------------------------------------------

Checker = Callable[[str, dict], tuple[bool, str]]


def _counted(count: Callable[[str, dict], int], detail: str) -> Checker:
    """A check comparing a count with `n` under `relation`; `detail` formats the count as `{k}`."""
    def check(text: str, c: dict) -> tuple[bool, str]:
        k = count(text, c)
        return compare(k, c["relation"], c["n"]), detail.format(k=k, **c)
    return check


def _json_object(text: str, c: dict) -> tuple[bool, str]:
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


def _title(text: str, c: dict) -> tuple[bool, str]:
    m = re.search(r"<<([^<>\n]*\w[^<>\n]*)>>", text)
    return bool(m), f"title {m.group(0)!r}" if m else "no <<title>> found"


def _include(text: str, c: dict) -> tuple[bool, str]:
    missing = [w for w in c["words"] if keyword_count(text, w) == 0]
    return not missing, f"missing {missing}" if missing else "all present"


def _exclude(text: str, c: dict) -> tuple[bool, str]:
    found = [w for w in c["words"] if keyword_count(text, w) > 0]
    return not found, f"used {found}" if found else "none used"


def _lowercase(text: str, c: dict) -> tuple[bool, str]:
    caps = sum(ch.isupper() for ch in text)
    return caps == 0 and any(ch.islower() for ch in text), f"{caps} capital letters"


def _uppercase(text: str, c: dict) -> tuple[bool, str]:
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


def _start_phrase(text: str, c: dict) -> tuple[bool, str]:
    ok = text.strip().lower().startswith(c["phrase"].strip().lower())
    return ok, f"starts with {text.strip()[:len(c['phrase']) + 10]!r}"


def _end_phrase(text: str, c: dict) -> tuple[bool, str]:
    ok = text.strip().lower().endswith(c["phrase"].strip().lower())
    return ok, f"ends with {text.strip()[-len(c['phrase']) - 10:]!r}"


def _no_commas(text: str, c: dict) -> tuple[bool, str]:
    k = text.count(",") + text.count("，")
    return k == 0, f"{k} commas"


_QUOTES = {'"': '"', "“": "”"}


def _quotation(text: str, c: dict) -> tuple[bool, str]:
    t = text.strip()
    ok = len(t) >= 2 and t[0] in _QUOTES and t[-1] == _QUOTES[t[0]] and bool(_WORD_CHAR.search(t))
    return ok, "wrapped in quotes" if ok else "not wrapped in double quotes"


def _postscript(text: str, c: dict) -> tuple[bool, str]:
    ok = re.search(rf"^\s*{re.escape(c['marker'].strip())}\s*\S", text, flags=re.I | re.M) is not None
    return ok, "postscript found" if ok else f"no line starting with {c['marker']!r}"


# ---- the table ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ConstraintType:
    """One constraint type: the parameters it needs, its instruction text and its checker.

    `instruction` is a `str.format` template over the constraint's fields, plus `{s}` (the plural
    ending of the counted noun: "" when `n`, or the number of `words`, is 1) and `{all_words}` /
    `{any_word}` (the `words` quoted and joined by "and" / "or"). `relation` is the default of a
    counted type, used when the constraint names none.
    """

    family: str
    type: str
    params: tuple[str, ...]
    instruction: str
    checker: Checker
    relation: str | None = None

    def _filled(self, c: dict) -> dict:
        return {"relation": self.relation, **c} if self.relation else c

    def describe(self, c: dict) -> str:
        fields = self._filled(c)
        if "n" in self.params:
            fields = {**fields, "s": "" if c["n"] == 1 else "s"}
        if "words" in self.params:
            fields = {**fields, "s": "" if len(c["words"]) == 1 else "s",
                      "all_words": _quoted_list(c["words"], "and"), "any_word": _quoted_list(c["words"], "or")}
        return self.instruction.format(**fields)

    def check(self, text: str, c: dict) -> tuple[bool, str]:
        return self.checker(text, self._filled(c))


_COUNT = ("n",)  # the one parameter of most counted types

CONSTRAINT_TYPES: tuple[ConstraintType, ...] = (
    ConstraintType("format", "bullet_list", _COUNT, "Format your answer as a bulleted list with {relation} {n} "
                   "item{s}, each on its own line starting with '- '.",
                   _counted(lambda t, c: len(_BULLET.findall(t)), "{k} bullet items"), "exactly"),
    ConstraintType("format", "numbered_list", _COUNT, "Format your answer as a numbered list with {relation} {n} "
                   "item{s} (1., 2., ...), one per line.",
                   _counted(lambda t, c: len(_NUMBERED.findall(t)), "{k} numbered items"), "exactly"),
    ConstraintType("format", "json", (), "Give your entire answer as one valid JSON object, with nothing before or "
                   "after it.", _json_object),
    ConstraintType("format", "title", (), "Give your answer a title wrapped in double angular brackets, like "
                   "<<my title>>.", _title),
    ConstraintType("length", "words", _COUNT, "Use {relation} {n} words.",
                   _counted(lambda t, c: len(words(t)), "{k} words"), "at most"),
    ConstraintType("length", "sentences", _COUNT, "Answer in {relation} {n} sentence{s}.",
                   _counted(lambda t, c: len(sentences(t)), "{k} sentences"), "at most"),
    ConstraintType("length", "characters", _COUNT, "Keep your answer to {relation} {n} characters, spaces included.",
                   _counted(lambda t, c: len(t.strip()), "{k} characters"), "at most"),
    ConstraintType("keywords", "include", ("words",), "Include the word{s} {all_words} in your answer.", _include),
    ConstraintType("keywords", "exclude", ("words",), "Do not use the word{s} {any_word} anywhere in your answer.",
                   _exclude),
    ConstraintType("keywords", "frequency", ("word", "n"), "Use the word '{word}' {relation} {n} time{s}.",
                   _counted(lambda t, c: keyword_count(t, c["word"]), "'{word}' {k} times"), "at least"),
    ConstraintType("casing", "lowercase", (), "Write your entire answer in lowercase letters only: no capital "
                   "letters at all.", _lowercase),
    ConstraintType("casing", "uppercase", (), "Write your entire answer in capital letters only (ALL CAPS).",
                   _uppercase),
    ConstraintType("casing", "capital_words", _COUNT, "Write {relation} {n} word{s} entirely in capital letters for "
                   "emphasis, LIKE THIS.", _counted(lambda t, c: len(_all_caps_words(t)), "{k} all-caps words"),
                   "at least"),
    ConstraintType("structure", "paragraphs", _COUNT, "Write {relation} {n} paragraph{s}, separated from each other by "
                   "one blank line.", _counted(lambda t, c: len(paragraphs(t)), "{k} paragraphs"), "exactly"),
    ConstraintType("structure", "start_phrase", ("phrase",), "Begin your answer with the exact words '{phrase}'.",
                   _start_phrase),
    ConstraintType("structure", "end_phrase", ("phrase",), "End your answer with the exact phrase '{phrase}', with "
                   "nothing after it.", _end_phrase),
    ConstraintType("structure", "no_commas", (), "Do not use any commas in your answer.", _no_commas),
    ConstraintType("structure", "quotation", (), "Wrap your entire answer in double quotation marks.", _quotation),
    ConstraintType("structure", "postscript", ("marker",), "At the end of your answer, add a postscript on its own "
                   "line starting with '{marker}'.", _postscript),
)
_BY_KEY = {(t.family, t.type): t for t in CONSTRAINT_TYPES}
assert len(_BY_KEY) == len(CONSTRAINT_TYPES), "a (family, type) has two rows in CONSTRAINT_TYPES"


def registered() -> list[tuple[str, str]]:
    """Every (family, type) with a checker."""
    return sorted(_BY_KEY)


# ---- the public API --------------------------------------------------------------------------------

def _whole_number(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _text(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _word_list(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(_text(w) for w in v)


# Each parameter: what it must be (said in the error), the test, an example for the Fix. A wrong type would
# otherwise score silently: "words": "abc" is checked letter by letter and fails every response.
PARAMS: dict[str, tuple[str, Callable[[Any], bool], str]] = {
    "n": ("a whole number (0 or more)", _whole_number, '"n": 3'),
    "words": ("a non-empty list of words", _word_list, '"words": ["apple", "pear"]'),
    "word": ("a non-empty string", _text, '"word": "apple"'),
    "phrase": ("a non-empty string", _text, '"phrase": "In short"'),
    "marker": ("a non-empty string", _text, '"marker": "P.S."'),
}


def _type(constraint: dict) -> ConstraintType:
    if not isinstance(constraint, dict):
        raise ConfigError(f"a constraint must be an object, got {constraint!r}. "
                          "Fix: write {\"family\": ..., \"type\": ..., params}")
    key = (constraint.get("family"), constraint.get("type"))
    ctype = _BY_KEY.get(key)
    if ctype is None:
        families = [f for f, t in registered() if t == key[1]]
        if "family" not in constraint and families:
            raise ConfigError(f"constraint of type '{key[1]}': field 'family' is missing, expected one of "
                              f"{', '.join(families)}. Fix: e.g. \"family\": \"{families[0]}\" (for a checker of "
                              "your own, a family of your own)")
        known = ", ".join(f"{f}/{t}" for f, t in registered())
        raise ConfigError(f"unknown constraint {key[0]}/{key[1]}. Fix: use one of {known}")
    missing = [p for p in ctype.params if p not in constraint]
    if missing:
        raise ConfigError(f"constraint {key[0]}/{key[1]} lacks {', '.join(missing)}. "
                          f"Fix: give it {', '.join(ctype.params)}")
    for p in ctype.params:
        expected, ok, example = PARAMS[p]
        if not ok(constraint[p]):
            raise ConfigError(f"constraint {key[0]}/{key[1]}: field '{p}' is {json.dumps(constraint[p])}, expected "
                              f"{expected}. Fix: e.g. {example}")
    rel = constraint.get("relation")
    if rel is not None and rel not in RELATIONS:
        raise ConfigError(f"constraint {key[0]}/{key[1]}: field 'relation' is {json.dumps(rel)}, expected one of "
                          f"{', '.join(RELATIONS)}. Fix: e.g. \"relation\": \"at most\"")
    return ctype


def is_builtin(constraint: Any) -> bool:
    """Whether a constraint is in this table's vocabulary: a built-in family, or no family and a built-in type.
    Others are for a rule checker of the user's own (`checker: module:function` in a judge YAML)."""
    if not isinstance(constraint, dict):
        return True
    if "family" in constraint:
        return constraint["family"] in FAMILIES
    return constraint.get("type") in {t for _, t in _BY_KEY}


def validate_all(constraints: list) -> None:
    """`validate` on each of a prompt's built-in constraints (`is_builtin`); the error names its position."""
    for i, c in enumerate(constraints):
        if not is_builtin(c):
            continue
        try:
            _type(c)
        except ConfigError as e:
            raise ConfigError(f"constraints[{i}]: {e}") from None


def validate(constraint: dict) -> None:
    """Raise ConfigError if the constraint names no known checker or lacks a parameter."""
    _type(constraint)


def describe(constraint: dict) -> str:
    """The instruction sentence for one constraint (what the prompt asks for)."""
    return _type(constraint).describe(constraint)


def check(constraints: Iterable[dict], response: str) -> CheckResult:
    """Check a response against every constraint; an empty response fails them all."""
    out = CheckResult()
    empty = not response or not response.strip()
    for c in constraints:
        ctype = _type(c)
        if empty:
            passed, detail = False, "empty response"
        else:
            passed, detail = ctype.check(response, c)
        out.results.append(ConstraintResult(c["family"], c["type"], bool(passed), detail))
    return out
