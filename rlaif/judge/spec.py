"""Judge definitions: the YAML schema, loading, and the judge's identity (rater string).

A judge is one YAML file in `judges/` (or any path passed to `--judge`):

    name: pairwise-logprob      # shown in the rater string
    kind: llm                   # llm | rule | reward_model
    mode: pairwise              # pairwise (one call per pair and order) | pointwise (a score per
                                # response) | binary (good/bad per response, for KTO)
    backend: local              # any rlaif.backends spec: local, openai:MODEL, anthropic:MODEL, ...
    template: pairwise_logprob_v1   # a versioned prompt template in prompts/ (or a path)
    parser: logprob_ab          # see rlaif.judge.parsers.PARSERS
    sampling: {max_tokens: 1, temperature: 0.0, top_logprobs: 20}

The rater stored on every label is `NAME@VERSION:MODEL`, e.g. `pairwise-logprob@v1:local`:
VERSION comes from the template's `_vN` suffix (or `version:` for judges without a template),
MODEL is the backend spec (for rule judges the checker's id: a built-in's stable id, e.g.
`rlaif.constraints:check` for `constraints`, or the user's `module:function`; the checkpoint for reward models).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rlaif import catalog
from rlaif.errors import ConfigError, InputError
from rlaif.judge.parsers import PARSERS
from rlaif.judge.templates import Template, load_template
from rlaif.records import read_yaml
from rlaif.scoring import RULES, rule_model


class Sampling(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_tokens: int = Field(default=256, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int | None = None
    stop: list[str] = Field(default_factory=list)
    top_logprobs: int = Field(default=0, ge=0, le=20)
    logprob_positions: int = Field(default=1, ge=1)


class Choices(BaseModel):
    """The verdict tokens of a log-prob judge (matched after stripping spaces and brackets)."""

    model_config = ConfigDict(extra="forbid")

    first: str = "A"
    second: str = "B"


class JudgeSpec(BaseModel):
    """The schema of a judge YAML file. Unknown keys are errors (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    kind: Literal["llm", "rule", "reward_model"] = "llm"
    mode: Literal["pairwise", "pointwise", "binary"] = "pairwise"
    backend: str = "local"
    model: str | None = None  # reward_model: checkpoint path; llm: optional alias for backend
    template: str | None = None
    version: str | None = None
    parser: str | None = None
    choices: Choices = Field(default_factory=Choices)
    sampling: Sampling = Field(default_factory=Sampling)
    score_range: tuple[float, float] | None = None
    aspects: list[str] | None = None
    soft: Literal["hard", "sigmoid"] = "hard"  # how a pointwise judge turns two scores into p_a
    scale: float = Field(default=1.0, gt=0.0)  # sigmoid((s_a - s_b) / scale)
    checker: str | None = None  # rule: a built-in checker's name (rlaif.scoring.RULES) or "module:function"
    scorer: str | None = None  # reward_model: "module:Class" standing in for the trained reward model

    @model_validator(mode="after")
    def _check_kind(self) -> JudgeSpec:
        if self.kind == "llm":
            if not self.template:
                raise ValueError("an llm judge needs 'template' (a prompt template in prompts/)")
            if not self.parser:
                raise ValueError(f"an llm judge needs 'parser' (one of {', '.join(sorted(PARSERS))})")
            if self.parser not in PARSERS:
                raise ValueError(f"unknown parser '{self.parser}' (one of {', '.join(sorted(PARSERS))})")
            wants = PARSERS[self.parser].mode
            if wants != self.mode:
                raise ValueError(f"parser '{self.parser}' is for mode '{wants}', but mode is '{self.mode}'")
            if self.parser == "aspects" and not self.aspects:
                raise ValueError("parser 'aspects' needs the list 'aspects'")
        elif self.kind == "rule":
            if not self.checker or (":" not in self.checker and self.checker not in RULES):
                raise ValueError(f"a rule judge needs 'checker': a built-in ({', '.join(RULES)}) or "
                                 "'module:function'")
            if self.mode == "pairwise":
                raise ValueError("a rule judge scores single responses: mode pointwise or binary")
        elif self.kind == "reward_model":
            if self.scorer is not None and ":" not in self.scorer:
                raise ValueError("a reward_model judge's 'scorer' is 'module:Class' (leave it out for the "
                                 "reward model of `rlaif train rm`)")
            if self.mode != "pointwise":
                raise ValueError("a reward_model judge is pointwise")
        if self.template is None and not self.version:
            raise ValueError("a judge without a template needs 'version' (e.g. v1) for its rater identity")
        return self


_VERSION = re.compile(r"_(v\d+)$")


class Judge:
    """A loaded judge: its spec, its rendered template, the model it runs on and its rater id."""

    def __init__(self, spec: JudgeSpec, path: Path | None = None, model: str | None = None,
                 backend: Any = None):
        self.spec = spec
        self.path = path
        self.template: Template | None = load_template(spec.template) if spec.template else None
        if spec.version:
            self.version = spec.version
        else:
            m = _VERSION.search(Path(spec.template).stem)
            self.version = m.group(1) if m else "v0"
        if spec.kind == "llm":
            self.model = model or spec.model or spec.backend
        elif spec.kind == "rule":
            self.model = model or rule_model(spec.checker)
        else:
            self.model = model or spec.model
            if not self.model:
                raise ConfigError(f"judge '{spec.name}' needs a reward model checkpoint. "
                                  "Fix: pass --judge-model PATH (a directory written by `rlaif train rm`)")
        # An already-built Backend object (tests, library callers); else built from self.model.
        self.backend = backend

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def mode(self) -> str:
        return self.spec.mode

    @property
    def rater(self) -> str:
        return f"{self.spec.name}@{self.version}:{self.model}"

    def __repr__(self) -> str:
        return f"Judge({self.rater})"


def load_judge(name_or_path: str, *, model: str | None = None, backend: Any = None) -> Judge:
    """Load a built-in judge by name or a user's YAML file; `model` overrides its backend/model."""
    path = catalog.find("judges", name_or_path, suffixes=(".yaml", ".yml"))
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise InputError(path, None, "a judge file must be a YAML mapping", "see judges/pairwise.yaml")
    try:
        spec = JudgeSpec.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(x) for x in err['loc']) or 'file'}: {err['msg']}"
                             for err in e.errors())
        raise InputError(path, None, f"not a valid judge definition: {problems}",
                         "compare with a built-in in judges/ (e.g. judges/pairwise.yaml)") from None
    return Judge(spec, path=path, model=model, backend=backend)


def load_judges(names: list[str], models: list[str] | None = None) -> list[Judge]:
    """Several `--judge` flags with `--judge-model` given once (all judges) or once per judge."""
    models = list(models or [])
    if len(models) not in (0, 1, len(names)):
        raise ConfigError(f"{len(models)} --judge-model values for {len(names)} --judge values. "
                          "Fix: give --judge-model once (used by every judge) or once per --judge, in order")
    judges = []
    for i, n in enumerate(names):
        m = models[i] if len(models) == len(names) else (models[0] if models else None)
        j = load_judge(n)
        # One --judge-model for a mixed jury applies to the model judges, not to a rule checker.
        if m is not None and (len(models) == len(names) or j.kind != "rule"):
            j = load_judge(n, model=m)
        judges.append(j)
    raters = [j.rater for j in judges]
    dup = {r for r in raters if raters.count(r) > 1}
    if dup:
        raise ConfigError(f"the same judge appears twice: {', '.join(sorted(dup))}. "
                          "Fix: drop the repeated --judge, or give each its own --judge-model")
    return judges

