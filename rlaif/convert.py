"""Convert published human and LLM judgments into rlaif label records (`rlaif convert`).

Formats (the layouts of the public releases):
- `pandalm`: PandaLM's test set (`testset-v1.json`: annotator1..3, 1 = response1, 2 = response2,
  0 = tie) and its judge files (`<judge>-testset-v1.json` with `<x>_result`: "1", "2", "0"/"Tie",
  anything else = unparseable). Raters: annotator1..3 and the judge name from the file name.
- `llmbar`: LLMBar's `dataset.json` (gold: `label` 1 or 2) and evaluator `result.json` files
  (`results[-1]` is the final verdict: the Swap strategy re-asks inconsistent pairs and keeps
  the last round); "swap = False" shows output_1 first (order "ab"), "swap = True" output_2 first.
  Rater = the path below `evaluators/` (e.g. "GPT-4/Vanilla"); the gold label becomes rater "gold".
- `arena`: Chatbot Arena battles and MT-Bench human judgments (`model_a`, `model_b`, `winner`:
  model_a | model_b | tie | tie (bothbad)), JSON list or JSONL. Rater = `judge`, else "arena".
- `mt-bench`: MT-Bench pairwise model judgments (`model_1`, `model_2`, `g1_winner` with model_1
  shown first, `g2_winner` with model_2 shown first, `judge`: [model, prompt]).
- `alpaca-eval`: AlpacaEval / AlpacaFarm annotations (`output_1`, `output_2`, `preference`: 1, 2,
  1.5 or 0 = tie, a float in [1, 2] = 2 - P(output_1 better), null = no verdict).
- `reorient` (named, never detected): rlaif label JSONL whose labels of one item name the two models in
  different orientations (annotators shown a pair either way round, each label kept as shown): every
  label is turned to its item's first label's `model_a`/`model_b`, so `rlaif audit` compares verdicts on
  the same models (it refuses the file otherwise).

Item ids are stable: MT-Bench items are (question, turn, model pair) with the pair in sorted
order (winners flipped to match), so judges and humans who saw the models in different
orders land on the same item; AlpacaEval items hash the instruction and the two outputs.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlaif.errors import ConfigError, InputError
from rlaif.records import Label, iter_json_lines, os_error, read_jsonl, read_text, stable_id, write_jsonl

FORMATS = ("pandalm", "llmbar", "arena", "mt-bench", "alpaca-eval", "reorient")
# Human annotation exports (canonical CSV, Label Studio, Argilla, Prodigy): rlaif.annotations reads them.
ANNOTATION_FORMATS = ("csv", "annotations", "label-studio", "argilla", "prodigy")


def load_records(path: str | Path) -> Iterator[tuple[int, dict]]:
    """(line or record number, object) from a JSON list or a JSONL file."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(4096).decode("utf-8", errors="replace").lstrip()
    except OSError as e:
        raise os_error(path, e) from None
    if head.startswith("["):
        try:
            data = json.loads(read_text(path))
        except json.JSONDecodeError as e:
            raise InputError(path, e.lineno, f"not valid JSON ({e.msg})", "fix the JSON syntax") from None
        for n, obj in enumerate(data, 1):
            if not isinstance(obj, dict):
                raise InputError(path, None, f"record {n} is not a JSON object", "expected a list of objects")
            yield n, obj
    else:
        yield from iter_json_lines(path)


def detect_format(path: str | Path) -> str:
    for _, obj in load_records(path):
        keys = set(obj)
        if "annotator1" in keys or any(k.endswith("_result") for k in keys):
            return "pandalm"
        if "results" in keys and "output_1" in keys or {"output_1", "output_2", "label"} <= keys:
            return "llmbar"
        if "g1_winner" in keys:
            return "mt-bench"
        if "preference" in keys and "output_1" in keys:
            return "alpaca-eval"
        if {"model_a", "model_b", "winner"} <= keys:
            return "arena"
        break
    raise InputError(path, 1, "cannot tell the format from the first record",
                     f"name the format with -f, e.g. rlaif convert -f {FORMATS[0]} {path} -o labels.jsonl "
                     f"(-f/--format one of: {', '.join(FORMATS + ANNOTATION_FORMATS)})")


def convert(fmt: str, paths: list[str | Path]) -> list[Label]:
    """Convert files of one format (or "auto": detect per file) into label records."""
    if fmt in ANNOTATION_FORMATS:
        from rlaif.annotations import import_annotations

        return import_annotations(fmt, paths).labels
    if fmt != "auto" and fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}. Fix: use one of auto, {', '.join(FORMATS + ANNOTATION_FORMATS)}")
    groups: dict[str, list[Path]] = {}
    for p in paths:
        f = detect_format(p) if fmt == "auto" else fmt
        groups.setdefault(f, []).append(Path(p))
    out: list[Label] = []
    for f, ps in groups.items():
        out += {"pandalm": _pandalm, "llmbar": _llmbar, "arena": _arena, "mt-bench": _mt_bench,
                "alpaca-eval": _alpaca_eval, "reorient": _reorient}[f](ps)
    return out


@dataclass
class ConvertRun:
    """What `run_convert` wrote: the labels, the label JSONL file holding them, and for human annotation
    exports the importer's account (what was not written and why, re-orientations, repeats)."""

    labels: list[Label]
    out: Path
    account: str | None = None  # annotation imports: rlaif.annotations' one-line summary
    warning: str | None = None  # annotators the --annotators file does not list

    @property
    def summary(self) -> str:
        head = self.account or f"{len(self.labels)} labels by {len({lb.rater for lb in self.labels})} raters"
        return f"{head} -> {self.out}"


def run_convert(fmt: str, paths: list[str | Path], out: str | Path, mapping: list[str] | None = None,
                values: list[str] | None = None, annotators: str | Path | None = None) -> ConvertRun:
    """`rlaif convert`: published judgments (`convert(fmt, paths)`) or human annotation exports
    (`rlaif.annotations`, with --map / --values / --annotators) written to the label JSONL file `out`."""
    if fmt not in ANNOTATION_FORMATS:
        if mapping or values or annotators:
            raise ConfigError("--map, --values and --annotators read human annotation exports. "
                              "Fix: add -f csv, annotations, label-studio, argilla or prodigy, or drop them")
        labels = convert(fmt, paths)
        write_jsonl(out, labels)
        return ConvertRun(labels, Path(out))
    from rlaif.annotations import import_annotations, read_annotators

    known = read_annotators(annotators) if annotators else None  # checked before anything is written
    result = import_annotations(fmt, list(paths), mapping, values)
    write_jsonl(out, result.labels)
    run = ConvertRun(result.labels, Path(out), account=result.summary())
    unknown = known.unknown(lb.rater for lb in result.labels) if known is not None else []
    if unknown:
        run.warning = (f"{len(unknown)} annotator(s) not in {annotators}: {', '.join(unknown[:10])}"
                       f"{' ...' if len(unknown) > 10 else ''}")
    return run


def _text(x: Any) -> str | None:
    """Response text as a string (some releases hold a bare number or boolean)."""
    return x if x is None or isinstance(x, str) else json.dumps(x)


def _need(path, n, obj, *keys):
    missing = [k for k in keys if k not in obj]
    if missing:
        raise InputError(path, n, f"record lacks {', '.join(missing)}",
                         "is this the right format? see rlaif convert --help")


# ---- PandaLM ----

_PANDALM = {1: "a", 2: "b", 0: "tie", "1": "a", "2": "b", "0": "tie", "tie": "tie", "Tie": "tie"}


def _pandalm(paths: list[Path]) -> list[Label]:
    texts: dict[str, dict] = {}
    human, judges = [], []
    for p in paths:
        for n, obj in load_records(p):
            (human if "annotator1" in obj else judges).append((p, n, obj))
    out = []
    for p, n, obj in human:
        _need(p, n, obj, "idx", "annotator1", "response1", "response2")
        item = f"pandalm-{obj['idx']}"
        ma, _, mb = str(obj.get("cmp_key", "")).partition("_")
        prompt = obj.get("instruction", "") + (f"\n\n{obj['input']}" if obj.get("input") else "")
        texts[item] = {"prompt": prompt, "response_a": _text(obj["response1"]), "response_b": _text(obj["response2"]),
                       "model_a": ma or None, "model_b": mb or None}
        for k in (1, 2, 3):
            v = obj.get(f"annotator{k}")
            if v is None:
                continue
            if v not in _PANDALM:
                raise InputError(p, n, f"annotator{k} = {v!r}", "PandaLM annotations are 0 (tie), 1 or 2")
            out.append(Label(item=item, rater=f"annotator{k}", winner=_PANDALM[v], **texts[item]))
    for p, n, obj in judges:
        key = next((k for k in obj if k.endswith("_result")), None)
        if key is None or "idx" not in obj:
            raise InputError(p, n, "record has neither annotator1 nor an idx and *_result field",
                             "pass PandaLM's testset-v1.json and its <judge>-testset-v1.json files")
        stem = p.stem
        rater = stem[: stem.index("-testset")] if "-testset" in stem else key[: -len("_result")]
        item = f"pandalm-{obj['idx']}"
        v = obj[key]
        winner = _PANDALM.get(v)
        reason = obj.get(key[: -len("_result")] + "_reason")
        out.append(Label(item=item, rater=rater, winner=winner, raw=reason,
                         error=None if winner else f"unparseable verdict {v!r}", **texts.get(item, {})))
    return out


# ---- LLMBar ----

def _llmbar_rater(path: Path) -> str:
    parts = path.resolve().parts
    if "evaluators" in parts:
        return "/".join(parts[parts.index("evaluators") + 1 : -1])
    return path.parent.name


def _llmbar(paths: list[Path]) -> list[Label]:
    out, gold_done = [], set()
    for p in paths:
        for n, obj in load_records(p):
            _need(p, n, obj, "input", "output_1", "output_2")
            item = "llmbar-" + stable_id([obj["input"], obj["output_1"], obj["output_2"]])
            text = {"prompt": obj["input"], "response_a": _text(obj["output_1"]), "response_b": _text(obj["output_2"])}
            if "label" in obj and item not in gold_done:
                if obj["label"] not in (1, 2, "1", "2"):
                    raise InputError(p, n, f"label = {obj['label']!r}", "LLMBar labels are 1 or 2")
                out.append(Label(item=item, rater="gold", winner="a" if str(obj["label"]) == "1" else "b", **text))
                gold_done.add(item)
            if "results" not in obj:
                continue
            if not obj["results"]:
                raise InputError(p, n, "empty results", "each item needs at least one round of results")
            final = obj["results"][-1]
            for key, order in (("swap = False", "ab"), ("swap = True", "ba")):
                if key not in final:
                    continue
                r = final[key]
                w = r.get("winner")
                w = str(w) if w is not None else None
                winner = {"1": "a", "2": "b"}.get(w) if w else None
                raw = r.get("completion")
                raw = "\n".join(str(x) for x in raw) if isinstance(raw, list) else raw
                out.append(Label(item=item, rater=_llmbar_rater(p), winner=winner, order=order, raw=raw,
                                 error=None if winner else f"no verdict ({w!r})", **text))
    return out


# ---- Chatbot Arena / MT-Bench ----

def _last_reply(conv: Any) -> str | None:
    if isinstance(conv, list):
        replies = [m.get("content") for m in conv if isinstance(m, dict) and m.get("role") == "assistant"]
        return _text(replies[-1]) if replies else None
    return conv if isinstance(conv, str) else None


def _prompt_of(conv: Any) -> Any:
    if isinstance(conv, list) and conv:
        msgs = [m for m in conv if isinstance(m, dict)]
        if msgs and msgs[-1].get("role") == "assistant":
            msgs = msgs[:-1]
        return msgs
    return None


def _canonical(qid: Any, turn: Any, m1: str, m2: str) -> tuple[str, bool]:
    """Item id for (question, turn, unordered model pair); True when m1/m2 are swapped in it."""
    a, b = sorted([m1, m2])
    return f"mtbench-q{qid}-t{turn}-{a}-vs-{b}", a != m1


_FLIP = {"a": "b", "b": "a", "tie": "tie", None: None}


def _arena(paths: list[Path]) -> list[Label]:
    out = []
    for p in paths:
        for n, obj in load_records(p):
            _need(p, n, obj, "model_a", "model_b", "winner")
            w = obj["winner"]
            winner = {"model_a": "a", "model_b": "b", "tie": "tie", "tie (bothbad)": "tie"}.get(w)
            if winner is None and w not in (None, "", "error"):
                raise InputError(p, n, f"winner = {w!r}", "use model_a, model_b, tie or 'tie (bothbad)'")
            ma, mb = str(obj["model_a"]), str(obj["model_b"])
            ca, cb = obj.get("conversation_a"), obj.get("conversation_b")
            extra = {"response_a": _last_reply(ca), "response_b": _last_reply(cb), "prompt": _prompt_of(ca)}
            rater = str(obj.get("judge") or "arena")
            if "turn" in obj and "question_id" in obj:  # MT-Bench human judgments: pair items across judges
                item, swapped = _canonical(obj["question_id"], obj["turn"], ma, mb)
            else:
                item = str(obj.get("question_id") or obj.get("id") or stable_id(obj))
                swapped = False
            if swapped:
                ma, mb, winner = mb, ma, _FLIP[winner]
                extra["response_a"], extra["response_b"] = extra["response_b"], extra["response_a"]
            out.append(Label(item=item, rater=rater, winner=winner, order="ba" if swapped else "ab", model_a=ma,
                             model_b=mb, error=None if winner else f"no verdict ({w!r})", **extra,
                             **({"tie_bothbad": True} if w == "tie (bothbad)" else {})))
    return out


def _mt_bench(paths: list[Path]) -> list[Label]:
    out = []
    for p in paths:
        for n, obj in load_records(p):
            _need(p, n, obj, "question_id", "model_1", "model_2", "g1_winner", "g2_winner")
            judge = obj.get("judge")
            rater = "/".join(str(x) for x in judge) if isinstance(judge, list) else str(judge or "judge")
            m1, m2 = str(obj["model_1"]), str(obj["model_2"])
            item, swapped = _canonical(obj["question_id"], obj.get("turn", 1), m1, m2)
            for game, first in (("g1", m1), ("g2", m2)):
                w = obj[f"{game}_winner"]
                winner = {"model_1": "a", "model_2": "b", "tie": "tie"}.get(w)
                if winner is None and w not in ("error", None, ""):
                    raise InputError(p, n, f"{game}_winner = {w!r}", "use model_1, model_2, tie or error")
                if swapped:
                    winner = _FLIP[winner]
                ma, mb = (m2, m1) if swapped else (m1, m2)
                out.append(Label(item=item, rater=rater, winner=winner, order="ab" if first == ma else "ba",
                                 model_a=ma, model_b=mb, raw=obj.get(f"{game}_judgment"),
                                 error=None if winner else f"no verdict ({w!r})"))
    return out


# ---- AlpacaEval ----

def _alpaca_eval(paths: list[Path]) -> list[Label]:
    out = []
    for p in paths:
        for n, obj in load_records(p):
            _need(p, n, obj, "instruction", "output_1", "output_2", "preference")
            pref = obj["preference"]
            p_a = winner = None
            if pref is not None:
                try:
                    pref = float(pref)
                except (TypeError, ValueError):
                    raise InputError(p, n, f"preference = {pref!r}", "use 1, 2, 1.5 or 0 (tie), or null") from None
                if pref == 0 or pref == 1.5:
                    winner = "tie"
                elif 1 <= pref <= 2:
                    p_a = 2.0 - pref
                    winner = "a" if p_a > 0.5 else "b"
                    p_a = p_a if pref not in (1.0, 2.0) else None  # hard verdicts carry no probability
                else:
                    raise InputError(p, n, f"preference = {pref}", "AlpacaEval preferences lie in [1, 2] (or 0)")
            prompt = obj["instruction"] + (f"\n\n{obj['input']}" if obj.get("input") else "")
            o1, o2 = _text(obj["output_1"]), _text(obj["output_2"])
            g1, g2 = obj.get("generator_1"), obj.get("generator_2")
            swapped = str(o1) > str(o2)
            item = "alpaca-" + stable_id([prompt, *sorted([str(o1), str(o2)])])
            if swapped:
                o1, o2, g1, g2, winner = o2, o1, g2, g1, _FLIP[winner]
                p_a = None if p_a is None else 1 - p_a
            rater = obj.get("annotator") or (f"annotator-{obj['annotator_index']}" if "annotator_index" in obj
                                              else p.stem)
            out.append(Label(item=item, rater=str(rater), winner=winner, p_a=p_a, prompt=prompt, response_a=o1,
                             response_b=o2, model_a=g1, model_b=g2, raw=obj.get("raw_completion") if isinstance(
                                 obj.get("raw_completion"), str) else None,
                             error=None if winner else "no preference"))
    return out


# ---- re-orientation of rlaif labels ----

_MISSING = object()
_SWAPPED = (("model_a", "model_b"), ("response_a", "response_b"), ("sample_a", "sample_b"), ("score_a", "score_b"))


def swap_sides(lb: Label) -> Label:
    """The same verdict with a and b exchanged: models, responses, samples, scores, winner, p_a and the order
    shown (the response shown first is now b)."""
    d = lb.model_dump()
    for x, y in _SWAPPED:
        vx, vy = d.pop(x, _MISSING), d.pop(y, _MISSING)
        d.update({k: v for k, v in ((x, vy), (y, vx)) if v is not _MISSING})
    d["winner"] = _FLIP[lb.winner]
    d["p_a"] = None if lb.p_a is None else 1.0 - lb.p_a
    d["order"] = {"ab": "ba", "ba": "ab", None: None}[lb.order]
    return Label.model_validate(d)


def reorient(labels: list[Label]) -> list[Label]:
    """Every label in its item's first label's orientation (model_a, model_b); others unchanged."""
    first: dict[str, tuple[str, str]] = {}
    out = []
    for lb in labels:
        if lb.model_a and lb.model_b and lb.model_a != lb.model_b:
            ma, mb = first.setdefault(lb.item, (lb.model_a, lb.model_b))
            if (lb.model_a, lb.model_b) == (mb, ma):
                lb = swap_sides(lb)
        out.append(lb)
    return out


def _reorient(paths: list[Path]) -> list[Label]:
    return reorient([lb for p in paths for lb in read_jsonl(p, Label)])
