"""The file contracts: typed records and validated JSONL read/write.

A leaf module (pydantic only: no torch, no SDKs), imported by everything else.
Reading validates every line and fails with `PATH:LINE: problem. Fix: ...`;
writing goes to a temp file that is renamed into place, so nothing is half-written.
Appending (for resumable runs) flushes each line as it is written.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_serializer

from rlaif.errors import ConfigError, InputError

Message = dict[str, Any]  # {"role": ..., "content": ...}
Text = str | list[Message]  # a prompt or response: a string or a chat message list


class Record(BaseModel):
    """Base record: unknown fields are kept, so files from other tools round-trip.

    Fields named in `WRITTEN_WHEN_SET` are declared (typed, readable without getattr) but written only when
    the record was given them: a label of a rule checker carries no `usage`, a converted label no `judge`."""

    model_config = ConfigDict(extra="allow")
    WRITTEN_WHEN_SET: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        for name in self.WRITTEN_WHEN_SET - self.model_fields_set:
            data.pop(name, None)
        return data


class Usage(Record):
    input_tokens: int = 0
    output_tokens: int = 0


class Prompt(Record):
    """One prompt of a prompt set. `prompt` is a string or a chat message list."""

    prompt_id: str
    prompt: Text
    category: str | None = None
    constraints: list[dict[str, Any]] | None = None  # verifiable constraints (see rlaif.instructions.constraints)


class Response(Record):
    """One sample of one policy for one prompt (`rlaif generate` output)."""

    prompt_id: str
    prompt: Text
    policy: str
    sample: int = 0
    response: str
    usage: Usage | None = None
    constraints: list[dict[str, Any]] | None = None  # the prompt's, when a responses file carries them (rule judge)
    revised_from: str | None = None  # a rule-guided revision (the demo): the POLICY#SAMPLE it revises
    WRITTEN_WHEN_SET: ClassVar[frozenset[str]] = frozenset({"constraints", "revised_from"})


Winner = Literal["a", "b", "tie"]


class Label(Record):
    """One verdict by one rater on one pair. `winner` is always in terms of the
    original a/b, whatever order was shown; `order` says which was shown first."""

    item: str
    rater: str
    winner: Winner | None = None
    order: Literal["ab", "ba"] | None = None
    p_a: float | None = Field(default=None, ge=0.0, le=1.0)
    model_a: str | None = None
    model_b: str | None = None
    prompt: Text | None = None
    response_a: str | None = None
    response_b: str | None = None
    raw: str | None = None
    error: str | None = None
    # What `rlaif label` writes beside the verdict (each only where it applies), and what converted files may
    # carry; declared after the fields above, in the order `rlaif label` has always written them.
    judge: str | None = None  # the judge's name (rater is name@version:model)
    prompt_id: str | int | None = None  # other tools' files may number their prompts
    sample_a: int | None = None
    sample_b: int | None = None
    parse: str | None = None  # how the verdict was read from the reply (LLM judges)
    usage: Usage | None = None
    cached: bool | None = None
    latency_s: float | None = None
    top_logprobs: list[dict[str, float]] | None = None
    call_failed: bool | None = None  # the call failed: `raw` is no reply, --reparse must not read it
    score_a: float | None = None  # pointwise judges: the two scores the verdict came from
    score_b: float | None = None
    rater_model: str | None = None  # the model behind the rater, for self-preference (converted files)
    category: str | int | None = None  # the prompt's category, for per-category win rates
    WRITTEN_WHEN_SET: ClassVar[frozenset[str]] = frozenset({
        "judge", "prompt_id", "sample_a", "sample_b", "parse", "usage", "cached", "latency_s", "top_logprobs",
        "call_failed", "score_a", "score_b", "rater_model", "category",
        "created_at", "lead_time_s", "strength", "confidence", "topic", "status", "repeat", "rating"})
    # human annotations (rlaif.annotations): when, how long, how sure, about what, and which repeat
    created_at: str | None = None  # ISO 8601 UTC, e.g. "2024-05-01T12:00:00Z"
    lead_time_s: float | None = None
    strength: str | float | None = None  # "clear", "slight" or a number
    confidence: str | float | None = None
    topic: str | None = None
    status: str | None = None  # the tool's status of a kept annotation (e.g. "submitted")
    repeat: int | None = None  # 1, 2, ... for the same rater's later labels of one item (kept: intra-rater data)
    rating: float | None = None  # a rating of response_a alone (e.g. 1-5), no winner: a pointwise human label


class Preference(Record):
    """TRL's preference format plus rlaif's provenance fields."""

    prompt: Text
    chosen: Text
    rejected: Text
    p_chosen: float | None = Field(default=None, ge=0.0, le=1.0)
    prompt_id: str | None = None
    chosen_policy: str | None = None
    rejected_policy: str | None = None
    judges: list[str] | None = None
    agreement: float | None = None


class KTORecord(Record):
    """TRL's unpaired (KTO) format."""

    prompt: Text
    completion: Text
    label: bool


R = TypeVar("R", bound=BaseModel)


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "line"
        parts.append(f"field '{loc}': {e['msg']}")
    return "; ".join(parts)


def _os_problem(err: OSError, writing: bool) -> tuple[str, str]:
    """(problem, fix) for an OS error on a path, in the user's terms."""
    if isinstance(err, IsADirectoryError):
        return "is a folder, not a file", "pass the file itself (e.g. a .jsonl inside the folder)"
    if isinstance(err, NotADirectoryError):
        return "a part of the path is a file, not a folder", "check the path"
    if isinstance(err, FileNotFoundError):
        return ("its folder does not exist", "create the folder or check the path") if writing else \
               ("no such file", "check the path")
    if isinstance(err, PermissionError):
        return "permission denied", ("pass a location you can write to" if writing
                                     else "check the file's permissions")
    if err.errno == errno.EROFS:
        return "read-only file system", "pass a location on a writable disk"
    if err.errno == errno.ENOSPC:
        return "no space left on the device", "free some disk space"
    return (err.strerror or str(err)).rstrip("."), "check the path"


def os_error(path: str | Path, err: OSError, *, writing: bool = False) -> InputError:
    """An OS error (missing, a folder, permissions, disk) as the project's error naming `path`."""
    where = err.filename if isinstance(err.filename, str) and err.filename != str(path) else None
    problem, fix = _os_problem(err, writing)
    return InputError(path, None, f"{'cannot write: ' if writing else ''}{problem}"
                      + (f" ({where})" if where else ""), fix)


def _not_utf8(path: str | Path, line: int | None, err: UnicodeDecodeError, column: int) -> InputError:
    return InputError(path, line, f"not UTF-8 text (byte 0x{err.object[err.start]:02x} at column {column})",
                      "save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)")


def read_text(path: str | Path) -> str:
    """A whole UTF-8 text file; OS and decoding errors are InputErrors naming the path (and line)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise os_error(path, e) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise _not_utf8(path, line, e, e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1) from None


def read_yaml(path: str | Path) -> Any:
    """One YAML document; bad YAML is an InputError with the line of the problem."""
    import yaml  # only the commands that read judge, suite or training configs need it

    text = read_text(path)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = " ".join(str(getattr(e, "problem", None) or e).split())
        raise InputError(path, None if mark is None else mark.line + 1, f"not valid YAML ({problem})",
                         "fix the YAML syntax") from None


def iter_json_lines(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line; bad JSON or bytes are an InputError."""
    path = Path(path)
    try:
        f = path.open("rb")  # bytes, decoded per line: a bad byte is reported on its own line
    except OSError as e:
        raise os_error(path, e) from None
    with f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise _not_utf8(path, n, e, e.start + 1) from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(path, n, f"not valid JSON ({e.msg} at column {e.colno})",
                                 "each line must be one JSON object (JSON Lines)") from None
            if not isinstance(obj, dict):
                raise InputError(path, n, f"expected a JSON object, got {type(obj).__name__}",
                                 "each line must be one JSON object")
            yield n, obj


def read_jsonl(path: str | Path, model: type[R]) -> list[R]:
    """Read and validate every line of a JSONL file as `model`."""
    out = []
    for n, obj in iter_json_lines(path):
        try:
            out.append(model.model_validate(obj))
        except ValidationError as e:
            raise InputError(path, n, f"not a valid {model.__name__} record: {_describe(e)}",
                             _fix_hint(model)) from None
    return out


def read_responses(path: str | Path) -> list[Response]:
    """Response records, each (prompt_id, policy, sample) once: a repeat names both lines."""
    out, seen = [], {}
    for n, obj in iter_json_lines(path):
        try:
            r = Response.model_validate(obj)
        except ValidationError as e:
            raise InputError(path, n, f"not a valid Response record: {_describe(e)}", _fix_hint(Response)) from None
        _check_constraints(r.constraints, path, n)
        key = (r.prompt_id, r.policy, r.sample)
        if key in seen:
            raise InputError(path, n, f"duplicate sample {r.sample} of prompt '{r.prompt_id}' for policy "
                             f"'{r.policy}' (first on line {seen[key]})",
                             "number each prompt's samples 0, 1, 2, ..., or drop the repeated line")
        seen[key] = n
        out.append(r)
    return out


@dataclass
class LabelDuplicates:
    """Label lines that repeat an earlier line's (item, rater, order, repeat). The first line of each is kept
    (a file concatenated twice, or appended onto, keeps its original verdicts); later ones are dropped
    and counted, for the command to warn about."""

    path: str
    count: int = 0
    first_dropped: int | None = None  # one example: this line repeats line `kept`
    kept: int | None = None
    _seen: dict[tuple, int] = field(default_factory=dict, repr=False)

    def is_repeat(self, lb: Label, line: int) -> bool:
        """True (and counted) when `lb` repeats an earlier line; the caller drops it."""
        # a numbered repeat is a new judgment, not a copy; so is the pair shown with its models swapped
        key = (lb.item, lb.rater, lb.order, lb.repeat, lb.model_a, lb.model_b)
        if key not in self._seen:
            self._seen[key] = line
            return False
        self.count += 1
        if self.first_dropped is None:
            self.first_dropped, self.kept = line, self._seen[key]
        return True

    def warning(self) -> str | None:
        if not self.count:
            return None
        return (f"{self.path}: {self.count} duplicate label line(s) (same item, rater and order) ignored; "
                f"the first of each is kept (e.g. line {self.first_dropped} repeats line {self.kept})")


def read_labels(path: str | Path, *, orientation: bool = True) -> tuple[list[Label], LabelDuplicates]:
    """Label records without repeated (item, rater, order) lines, and what was dropped. With `orientation`, every
    label of an item must name its two models in one orientation (`check_orientation`): letters are compared;
    a win rate reads each label's side by model name and needs no such rule."""
    dup = LabelDuplicates(str(path))
    return list(iter_labels(path, dup, orientation=orientation)), dup


def iter_labels(path: str | Path, dup: LabelDuplicates, *, orientation: bool = True) -> Iterator[Label]:
    """`read_labels` one label at a time (a million-line file need not sit in memory as records). Lines are
    validated by pydantic straight from their bytes; a line that fails is read again the slow way, which
    names the problem (bad bytes, bad JSON, not an object, a bad field) with its line."""
    path = Path(path)
    first: dict[str, tuple[str, str, int]] = {}
    try:
        f = path.open("rb")
    except OSError as e:
        raise os_error(path, e) from None
    with f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                lb = Label.model_validate_json(raw)
            except ValidationError:
                lb = _label_at(path, n, raw)
            if orientation:
                check_orientation(lb, path, n, first)
            if not dup.is_repeat(lb, n):
                yield lb


def _label_at(path: Path, n: int, raw: bytes) -> Label:
    """The slow path of `iter_labels` for a line that failed: the error that says what is wrong with it."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _not_utf8(path, n, e, e.start + 1) from None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(path, n, f"not valid JSON ({e.msg} at column {e.colno})",
                         "each line must be one JSON object (JSON Lines)") from None
    if not isinstance(obj, dict):
        raise InputError(path, n, f"expected a JSON object, got {type(obj).__name__}",
                         "each line must be one JSON object")
    try:
        return Label.model_validate(obj)
    except ValidationError as e:
        raise InputError(path, n, f"not a valid Label record: {_describe(e)}", _fix_hint(Label)) from None


def check_orientation(lb: Label, path: str | Path, line: int, first: dict[str, tuple[str, str, int]]) -> None:
    """Refuse a label whose model_a/model_b are swapped relative to the first label of its item (`first`: item ->
    (model_a, model_b, line), filled as the file is read): verdicts are compared letter by letter, so a swapped
    label's "a" would count as agreeing with another label's "a" although it names the other model."""
    if not lb.model_a or not lb.model_b or lb.model_a == lb.model_b:
        return
    model_a, model_b, at = first.setdefault(lb.item, (lb.model_a, lb.model_b, line))
    if (lb.model_a, lb.model_b) == (model_b, model_a):
        raise InputError(path, line, f"item '{lb.item}': model_a = '{lb.model_a}', model_b = '{lb.model_b}' are "
                         f"swapped relative to line {at}, so its a/b verdicts would be compared letter by letter",
                         f"re-orient every label of an item to its first label's models: rlaif convert -f reorient "
                         f"{path} -o REORIENTED.jsonl")


def _fix_hint(model: type[BaseModel]) -> str:
    required = [k for k, f in model.model_fields.items() if f.is_required()]
    return f"a {model.__name__} line needs the fields {', '.join(required)}"


def dump(record: BaseModel | dict) -> str:
    obj = record.model_dump(exclude_none=False) if isinstance(record, BaseModel) else record
    return json.dumps(obj, ensure_ascii=False)


def read_json_file(path: str | Path) -> Any:
    """Read one JSON document; a broken file is an InputError naming it."""
    path = Path(path)
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise InputError(path, e.lineno, f"not valid JSON ({e.msg})", "fix or regenerate the file") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[IO[str]], None]) -> Path:
    """Call `write(f)` on a temp file beside `path`, then rename it into place.

    A crash (or kill -9) leaves the old file untouched and at most a stray temp file;
    the result gets the usual permissions (mkstemp alone would make it 0600).
    An OS error (read-only folder, a file where a folder is meant, full disk) is an InputError naming `path`.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise os_error(path, e, writing=True) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise os_error(path, e, writing=True) from None
        raise
    return path


def write_jsonl(path: str | Path, records: Iterable[BaseModel | dict]) -> Path:
    """Write all records atomically."""
    return atomic_write(path, lambda f: f.writelines(dump(r) + "\n" for r in records))


def write_json(path: str | Path, obj: Any) -> Path:
    """Write one JSON document atomically."""

    def write(f: IO[str]) -> None:
        json.dump(obj, f, indent=2, ensure_ascii=False, default=_json_default)
        f.write("\n")

    return atomic_write(path, write)


def write_text(path: str | Path, text: str) -> Path:
    """Write a text file (markdown, HTML) atomically."""
    return atomic_write(path, lambda f: f.write(text))


def _json_default(o: Any):
    if isinstance(o, BaseModel):
        return o.model_dump()
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


class JsonlAppender:
    """Append records to a JSONL file, one flushed line at a time, for resumable runs.

    A run killed mid-write can leave a partial last line; opening the appender
    truncates it, so a resumed run neither duplicates nor loses finished lines.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _drop_partial_last_line(self.path)
            self._f = self.path.open("a", encoding="utf-8")
        except OSError as e:
            raise os_error(self.path, e, writing=True) from None

    def write(self, record: BaseModel | dict) -> None:
        try:
            self._f.write(dump(record) + "\n")
            self._f.flush()
        except OSError as e:  # e.g. the disk filled up mid-run: finished lines stay, a re-run resumes
            raise os_error(self.path, e, writing=True) from None

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _drop_partial_last_line(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as f:
        data = f.read()
        if data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        f.seek(cut)
        f.truncate()


def drop_duplicate_rows(path: str | Path, key: Callable[[dict], Any]) -> int:
    """Keep the first line per `key(row)` (files from runs that raced on one output), rewriting the file
    atomically once if any were dropped; says how many on stderr and returns the count."""
    path = Path(path)
    if not path.exists():
        return 0
    seen: set = set()
    keep: list[int] = []
    for n, obj in iter_json_lines(path):
        k = key(obj)
        if k not in seen:
            seen.add(k)
            keep.append(n)
    with path.open(encoding="utf-8") as f:  # the same line split as iter_json_lines (not str.splitlines)
        lines = f.readlines()
    dropped = sum(1 for line in lines if line.strip()) - len(keep)
    if dropped:
        atomic_write(path, lambda f: f.writelines(lines[n - 1] for n in keep))
        print(f"{path}: dropped {dropped} duplicate line(s) (kept the first of each)", file=sys.stderr)
    return dropped


def stable_id(obj: Any, n: int = 12) -> str:
    """A stable short hash of any JSON-able value (ids for prompts without one)."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:n]


# ---- prompt files in the shapes users already have ----

_PROMPT_FIX = ('use one of: {"prompt": "..."}; Alpaca {"instruction", "input"}; '
               'chat {"messages": [{"role", "content"}, ...]}; MT-Bench {"question_id", "turns"}')


def normalize_prompt(obj: dict) -> dict:
    """Map Alpaca / chat / MT-Bench / plain shapes onto the Prompt record's fields."""
    obj = dict(obj)
    if "prompt" in obj:
        text = obj.pop("prompt")
    elif "instruction" in obj:
        inp = obj.pop("input", "") or ""
        text = obj.pop("instruction") + (f"\n\n{inp}" if inp else "")
    elif "messages" in obj:
        msgs = obj.pop("messages")
        if not isinstance(msgs, list) or not all(isinstance(m, dict) and "role" in m and "content" in m
                                                 for m in msgs):
            raise ValueError("'messages' must be a list of {'role', 'content'} objects")
        if msgs and msgs[-1]["role"] == "assistant":  # a finished chat: prompt is what precedes the reply
            msgs = msgs[:-1]
        text = msgs
    elif "turns" in obj:
        turns = obj.pop("turns")
        if not isinstance(turns, list) or not turns:
            raise ValueError("'turns' must be a non-empty list of strings")
        text = turns[0]  # MT-Bench: the first turn is the prompt; later turns are kept as data
        obj.setdefault("turns", turns)
    else:
        raise ValueError("no prompt text found")
    pid = obj.pop("prompt_id", None) or obj.pop("question_id", None) or obj.pop("id", None)
    obj["prompt_id"] = str(pid) if pid is not None else stable_id(text)
    obj["prompt"] = text
    return obj


def _check_constraints(constraints: list | None, path: str | Path, line: int) -> None:
    """Every constraint's fields, when the file is read: a wrong type would otherwise score 0 (or fail) silently
    on every response, far from the line that caused it."""
    if constraints is None:
        return
    from rlaif.instructions.constraints import validate_all  # a leaf beside this one (stdlib and errors only)

    try:
        validate_all(constraints)
    except ConfigError as e:
        problem, _, fix = str(e).partition(". Fix: ")
        raise InputError(path, line, problem, fix) from None


def read_prompts(path: str | Path) -> list[Prompt]:
    out, seen = [], {}
    for n, obj in iter_json_lines(path):
        try:
            rec = Prompt.model_validate(normalize_prompt(obj))
        except (ValueError, ValidationError) as e:
            msg = _describe(e) if isinstance(e, ValidationError) else str(e)
            raise InputError(path, n, f"not a prompt record: {msg}", _PROMPT_FIX) from None
        _check_constraints(rec.constraints, path, n)
        if rec.prompt_id in seen:
            raise InputError(path, n, f"duplicate prompt_id '{rec.prompt_id}' (first on line {seen[rec.prompt_id]})",
                             "give every prompt a unique id, or drop the id field to get content hashes")
        seen[rec.prompt_id] = n
        out.append(rec)
    if not out:
        raise InputError(path, None, "the file holds no prompts", _PROMPT_FIX)
    return out


def as_messages(prompt: Text) -> list[Message]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
