"""Judge prompt templates: versioned text files in prompts/ rendered with jinja2.

A template file holds a `[system]` section (optional) and a `[user]` section, each
starting on a line of its own. Pairwise templates see `prompt`, `answer_a`, `answer_b`
(the answers in the order shown, not the original a/b); pointwise ones `prompt`,
`response` and `aspects`. Released files are never edited: a change is a new `_vN` file,
so a label's rater id always names the exact text that produced it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import jinja2

from rlaif import catalog
from rlaif.errors import InputError
from rlaif.records import Message, Text, read_text

_SECTION = re.compile(r"^\[(system|user)\][ \t]*$", re.MULTILINE)
_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


@dataclass
class Template:
    path: Path
    system: jinja2.Template | None
    user: jinja2.Template

    def render(self, **fields) -> list[Message]:
        try:
            msgs = []
            if self.system is not None:
                msgs.append({"role": "system", "content": self.system.render(**fields).strip()})
            msgs.append({"role": "user", "content": self.user.render(**fields).strip()})
        except jinja2.UndefinedError as e:
            raise InputError(self.path, None, f"template uses an unknown field ({e.message})",
                             "pairwise templates may use prompt, answer_a, answer_b; "
                             "pointwise ones prompt, response, aspects") from None
        return msgs


def load_template(name_or_path: str) -> Template:
    path = catalog.find("prompts", name_or_path, suffixes=(".txt", ".j2"))
    text = read_text(path)
    parts = _SECTION.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    if len(parts) < 3:
        raise InputError(path, None, "no [user] section",
                         "start the judge's instructions with a line '[user]' (and optionally '[system]' before it)")
    sections: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in sections:
            raise InputError(path, None, f"two [{name}] sections", "keep one [system] and one [user] section")
        sections[name] = body
    if "user" not in sections:
        raise InputError(path, None, "no [user] section", "add a line '[user]' before the judge's instructions")
    try:
        system = _ENV.from_string(sections["system"]) if "system" in sections else None
        user = _ENV.from_string(sections["user"])
    except jinja2.TemplateSyntaxError as e:
        raise InputError(path, e.lineno, f"template syntax error ({e.message})", "fix the jinja2 syntax") from None
    return Template(path=path, system=system, user=user)


def render_prompt(prompt: Text) -> str:
    """The user request as the judge reads it: the text, or a chat transcript for message lists."""
    if isinstance(prompt, str):
        return prompt
    if len(prompt) == 1:
        return str(prompt[0].get("content", ""))
    return "\n\n".join(f"{m.get('role', 'user').capitalize()}: {m.get('content', '')}" for m in prompt)
