"""Eval suites: the YAML schema in `evals/`, loading with errors that name the file and key, policy refs.

A suite names prompt sets per split (each in-distribution or out-of-distribution), the judges, the
default baseline, the metrics and the generation settings:

    name: ifeval
    splits:
      id:  {prompts: ifeval_id, kind: id}
      ood: {prompts: ifeval_ood, kind: ood}
    judges: [rule, pairwise-logprob]
    baseline: local
    metrics: [win_rate, compliance, diversity]
    generation: {samples: 2, max_tokens: 256, temperature: 0.7, seed: 0}
    limit: 100            # optional: the first N prompts of each split

Prompt sets and judges are a path (relative to the suite file) or a built-in name. A policy is
given as `[NAME=]SPEC[,temperature=T]`: NAME (default: the spec) names it in every record.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rlaif import catalog
from rlaif.errors import ConfigError
from rlaif.records import read_yaml

METRICS = ("win_rate", "compliance", "diversity")
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


class SplitSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompts: str = Field(min_length=1)
    kind: Literal["id", "ood"]
    limit: int | None = Field(default=None, ge=1)
    description: str = ""


class GenerationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    samples: int = Field(default=1, ge=1)
    max_tokens: int = Field(default=256, ge=1)
    temperature: float = Field(default=0.7, ge=0.0)
    seed: int | None = 0


class SuiteSpec(BaseModel):
    """The schema of an eval suite file. Unknown keys are errors (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME.pattern)
    description: str = ""
    splits: dict[str, SplitSpec] = Field(min_length=1)
    judges: list[str] = Field(default_factory=list)
    baseline: str | None = None
    metrics: list[Literal["win_rate", "compliance", "diversity"]] = Field(default_factory=lambda: list(METRICS))
    generation: GenerationSpec = Field(default_factory=GenerationSpec)
    limit: int | None = Field(default=None, ge=1)
    embedding: bool = True
    tokenizer: str | None = None
    n_boot: int = Field(default=10_000, ge=100)
    examples: int = Field(default=20, ge=0)

    @field_validator("splits")
    @classmethod
    def _split_names(cls, v: dict[str, SplitSpec]) -> dict[str, SplitSpec]:
        for name in v:
            if not _NAME.match(name):
                raise ValueError(f"split name '{name}' must be letters, digits, '.', '_' or '-' (it names a folder)")
        return v

    @model_validator(mode="after")
    def _judges_for_win_rate(self) -> SuiteSpec:
        if "win_rate" in self.metrics and not self.judges:
            raise ValueError("metric win_rate needs at least one judge under 'judges'")
        return self


@dataclass
class Suite:
    """A loaded suite: its spec, where it came from, and the resolved prompt-set and judge paths."""

    spec: SuiteSpec
    path: Path | None = None
    prompt_paths: dict[str, Path] = field(default_factory=dict)
    judge_paths: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "file"


def _resolve(kind: str, value: str, base: Path | None, suffixes: tuple[str, ...]) -> Path:
    if base is not None and (base / value).is_file():
        return base / value
    return catalog.find(kind, value, suffixes=suffixes)


def suite_from_dict(data: Any, path: Path | None = None) -> Suite:
    """Validate a suite mapping; every error names the file and the key."""
    where = str(path) if path else "<suite>"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a suite file must be a YAML mapping. Fix: compare with evals/ifeval.yaml")
    try:
        spec = SuiteSpec.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"{_loc(err['loc'])}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"{where}: not a valid eval suite: {problems}. Fix: compare with evals/ifeval.yaml "
                          f"(keys: {', '.join(SuiteSpec.model_fields)})") from None
    base = path.parent if path else None
    prompt_paths = {}
    for name, split in spec.splits.items():
        try:
            prompt_paths[name] = _resolve("prompts", split.prompts, base, (".jsonl",))
        except ConfigError as e:
            raise ConfigError(f"{where}: splits.{name}.prompts: {e}") from None
    judge_paths = []
    for i, j in enumerate(spec.judges):
        try:
            judge_paths.append(str(_resolve("judges", j, base, (".yaml", ".yml"))))
        except ConfigError as e:
            raise ConfigError(f"{where}: judges[{i}]: {e}") from None
    if spec.baseline is not None:
        try:
            parse_policy(spec.baseline, "baseline")
        except ConfigError as e:
            raise ConfigError(f"{where}: baseline: {e}") from None
    return Suite(spec, path, prompt_paths, judge_paths)


def load_suite(name_or_path: str | Path) -> Suite:
    """A suite by path, or a built-in in evals/ by name."""
    path = catalog.find("evals", str(name_or_path), suffixes=(".yaml", ".yml"))
    return suite_from_dict(read_yaml(path), path)


# ---- policies ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PolicyRef:
    """A policy to evaluate: the name used in records, the backend spec, and an optional own temperature."""

    name: str
    spec: str
    temperature: float | None = None

    @property
    def is_local(self) -> bool:
        return self.spec == "local" or self.spec.startswith("hf:")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "spec": self.spec, "temperature": self.temperature}


_OPTIONS = ("temperature",)


def parse_policy(text: str, what: str = "--policy") -> PolicyRef:
    """`[NAME=]SPEC[,temperature=T]` -> PolicyRef. NAME defaults to SPEC."""
    head, *opts = text.split(",")
    name, sep, spec = head.partition("=")
    if not sep or not _NAME.match(name):
        name, spec = head, head
    if not spec.strip():
        raise ConfigError(f"{what} '{text}' names no backend. Fix: use [NAME=]SPEC, e.g. sft=local or "
                          "dpo=hf:runs/dpo (the -o folder of `rlaif train dpo`)")
    temperature = None
    for opt in opts:
        key, sep, value = opt.partition("=")
        if key.strip() not in _OPTIONS or not sep:
            raise ConfigError(f"{what} '{text}': unknown option '{opt}'. Fix: the only option is "
                              "',temperature=T' after the spec")
        try:
            temperature = float(value)
        except ValueError:
            raise ConfigError(f"{what} '{text}': temperature '{value}' is not a number. "
                              "Fix: e.g. ,temperature=1.0") from None
        if temperature < 0:
            raise ConfigError(f"{what} '{text}': temperature must be at least 0")
    return PolicyRef(name.strip(), spec.strip(), temperature)


def safe_name(name: str) -> str:
    """A policy name as a file-name part."""
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", name).strip("_") or "policy"
