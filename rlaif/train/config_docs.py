"""Each training config key with its default and one line saying what it does, read from the config classes
themselves (for `rlaif train RECIPE --help`), so the help cannot drift from the code.

A key's line is the comment that ends its line in the class body (the nearest class in the MRO that has one);
a key whose class line has no comment takes the one its shipped YAML gives it. Defaults are those of the
shipped YAML the recipe loads when --config is not given, over the class defaults.
"""
from __future__ import annotations

import inspect
import io
import re
import tokenize
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from rlaif.train.config_hints import flat_sections

_FIELD = re.compile(r"^\s*([A-Za-z_]\w*)\s*:")


@dataclass(frozen=True)
class KeyDoc:
    key: str  # as users write it: `lr`, `lora.r`
    default: Any
    text: str  # one line; "" when neither the class nor the YAML says anything


def _trailing_comments(source: str) -> dict[str, str]:
    """`name: type = ...  # text` lines of a class body -> {name: text} (top-level fields only)."""
    out: dict[str, str] = {}  # the comment ending the field's line: it wins over a block above
    blocks: dict[str, str] = {}
    lines = source.splitlines()
    above: list[str] = []  # a block of comment lines: it says what the field right under it is
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            row, col = tok.start
            line = lines[row - 1]
            m = _FIELD.match(line)
            if m and line[:col].strip():  # a comment after code on a field's line
                out.setdefault(m.group(1), tok.string.lstrip("#").strip())
            elif not line[:col].strip():
                above.append(tok.string.lstrip("#").strip())
        elif tok.type == tokenize.NAME and above:
            m = _FIELD.match(lines[tok.start[0] - 1])
            if m and m.group(1) == tok.string:
                blocks.setdefault(tok.string, " ".join(above))
            above = []
    return {**blocks, **out}


@cache
def class_comments(model: type) -> dict[str, str]:
    """A pydantic model's field -> the comment on its line, looked up along the MRO (subclass first)."""
    found: dict[str, str] = {}
    for klass in model.__mro__:
        if not (isinstance(klass, type) and issubclass(klass, BaseModel)) or klass is BaseModel:
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):  # no source in this install: the YAML's comments still apply
            continue
        for name, text in _trailing_comments(source).items():
            found.setdefault(name, text)
    return found


@cache
def yaml_comments(path: Path) -> dict[str, str]:
    """`key: value   # text` lines of a shipped YAML config -> {key: text}."""
    out: dict[str, str] = {}
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z_][\w.]*)\s*:[^#]*#\s*(.+)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def _describe(model: type[BaseModel], values: dict[str, Any], yamls: tuple[Path, ...],
              prefix: str = "") -> list[KeyDoc]:
    comments = class_comments(model)
    from_yaml: dict[str, str] = {}
    for path in reversed(yamls):  # the first file wins
        from_yaml.update(yaml_comments(path))
    sections = flat_sections(model)
    docs: list[KeyDoc] = []
    for name, field in model.model_fields.items():
        value = values.get(name)
        if name in sections:  # written at the top level (online-dpo's DPO keys)
            docs += _describe(sections[name], value or {}, yamls, prefix)
            continue
        key = prefix + name
        text = comments.get(name) or from_yaml.get(key, "")
        inner = [a for a in getattr(field.annotation, "__args__", (field.annotation,))
                 if isinstance(a, type) and issubclass(a, BaseModel)]
        docs.append(KeyDoc(key, value, text))
        if inner:  # a section (lora): its keys too, with the section's defaults when it is off
            sub = value if isinstance(value, dict) else inner[0]().model_dump()
            docs += _describe(inner[0], sub, (), f"{key}.")
    return docs


def key_docs(config: BaseModel, *yamls: Path) -> list[KeyDoc]:
    """Every key of `config`'s class with `config`'s value as the default, in declaration order (a flat
    section's keys where the section sits; a nested section's keys after it, dotted); `yamls`: the shipped
    files whose comments describe a key its class line leaves bare (the first that has one)."""
    return _describe(type(config), config.model_dump(), yamls)
