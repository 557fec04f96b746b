"""`--help` as plain text that reads the same in a terminal, a pipe and a log (issue 23, item 14).

typer's own renderers print what its parameter objects say about themselves: `--help <bool>`, `{prompts}` for a
required argument, `<list[str]>`, and a frame cut to 80 columns when the output is not a terminal. Here every
command's help is written from click's plain fields (opts, help, default, min/max, required): usage with
`ARG` and `[ARG]...`, a metavar that says what to pass (FILE, DIR, N, NAME|FILE), the full text of every line
wrapped to the terminal (100 columns in a pipe), nothing truncated. A command can add a section
(`extra_help`, e.g. `rlaif train RECIPE --help`: the recipe's config keys) and check its arguments before
click parses them (`before_parse`, e.g. `--max-steps 2` -> `pass it as max_steps=2`).
"""
from __future__ import annotations

import inspect
import shutil
import textwrap
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

from rlaif.cli import paths

# command name -> a function of the raw arguments giving more help lines; one of the command and its raw
# arguments checking them before click parses them
_EXTRA: dict[str, Callable[[list[str]], list[str]]] = {}
_BEFORE: dict[str, Callable[[Any, list[str]], None]] = {}
_ARGS_KEY = "rlaif.args"
_METAVAR_BY_CHECK = {paths.input_file: "FILE", paths.output_file: "FILE", paths.output_dir: "DIR",
                     paths.file_or_name: "NAME|FILE", paths.prompt_set: "NAME|FILE", paths.folder_or_name: "DIR|NAME"}


def extra_help(name: str) -> Callable:
    def register(fn: Callable[[list[str]], list[str]]) -> Callable[[list[str]], list[str]]:
        _EXTRA[name] = fn
        return fn
    return register


def before_parse(name: str) -> Callable:
    def register(fn: Callable[[Any, list[str]], None]) -> Callable[[Any, list[str]], None]:
        _BEFORE[name] = fn
        return fn
    return register


def width() -> int:
    """The terminal's columns (COLUMNS wins), 100 where there is no terminal; within 60..140 for reading."""
    return max(60, min(140, shutil.get_terminal_size((100, 24)).columns))


def _annotation(param: Any) -> Any:
    desc = getattr(param, "type_descriptor", None)
    return getattr(desc, "annotation", None)


def _is_flag(param: Any) -> bool:
    return bool(getattr(param, "is_flag", False)) or _annotation(param) is bool


def metavar(param: Any) -> str:
    """What to write after an option, or an argument's name: FILE, DIR, N, X, TEXT, NAME|FILE, RESPONSES."""
    if getattr(param, "metavar", None):
        return str(param.metavar)
    if param.param_type_name == "argument":
        return str(param.name).upper()
    check = getattr(param.callback, "__wrapped__", param.callback)
    if check in _METAVAR_BY_CHECK:
        return _METAVAR_BY_CHECK[check]
    ann = _annotation(param)
    inner = [a for a in get_args(ann) if a is not type(None)] or [ann]
    base = inner[0] if len(inner) == 1 else ann
    if get_args(base):  # list[str] -> str
        base = get_args(base)[0]
    return {int: "N", float: "X", Path: "PATH"}.get(base, "TEXT")


def _usage_piece(param: Any) -> str:
    name = metavar(param)
    repeat = "..." if getattr(param, "nargs", 1) == -1 else ""
    return f"{name}{repeat}" if param.required else f"[{name}]{repeat}"


def _range(param: Any) -> str:
    lo, hi = getattr(param, "min", None), getattr(param, "max", None)
    if lo is not None and hi is not None:
        return f"{lo} to {hi}"
    if lo is not None:
        return f">= {lo}"
    return f"<= {hi}" if hi is not None else ""


def _extras(param: Any) -> str:
    bits = []
    default = getattr(param, "default", None)
    shown = not param.required and default not in (None, [], ()) and not (_is_flag(param) and default is False)
    if shown and not callable(default):
        value = ", ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        bits.append(f"default: {value}")
    if _range(param):
        bits.append(_range(param))
    if param.required:
        bits.append("required")
    return f"[{'; '.join(bits)}]" if bits else ""


def _option_label(param: Any) -> str:
    opts = sorted(param.opts, key=lambda o: (o.startswith("--"), o))  # -o, --out
    label = ", ".join(opts)
    if param.secondary_opts:
        label += " / " + ", ".join(param.secondary_opts)
    if not _is_flag(param):
        label += f" {metavar(param)}"
    return label


def _rows(rows: list[tuple[str, str]], cols: int) -> list[str]:
    """A two-column list: the label, then its text wrapped beside it (under it when the label is long)."""
    left = min(max((len(a) for a, _ in rows), default=0) + 4, 34)
    out: list[str] = []
    for label, text in rows:
        body = textwrap.wrap(text, max(cols - left, 30), break_on_hyphens=False) or [""]
        if len(label) + 4 > left:
            out.append(f"  {label}")
            out += [" " * left + line for line in body if line]
        else:
            out.append(f"  {label}".ljust(left) + body[0])
            out += [" " * left + line for line in body[1:]]
    return out


def paragraphs(text: str | None) -> list[str]:
    """A docstring's paragraphs, each one line (its own line breaks were only for the source)."""
    return [" ".join(p.split()) for p in inspect.cleandoc(text or "").split("\n\n") if p.strip()]


def _wrap(text: str, cols: int, indent: str = "  ") -> list[str]:
    return textwrap.wrap(text, cols, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False) or [""]


def usage(cmd: Any, ctx: Any) -> str:
    """`Usage: rlaif generate [OPTIONS] PROMPTS`: also what a usage error shows."""
    args = [p for p in cmd.get_params(ctx) if p.param_type_name == "argument" and not getattr(p, "hidden", False)]
    group = ["COMMAND [ARGS]..."] if hasattr(cmd, "commands") else []
    return f"Usage: {ctx.command_path} " + " ".join(["[OPTIONS]", *map(_usage_piece, args), *group])


def render(cmd: Any, ctx: Any) -> str:
    cols = width()
    params = [p for p in cmd.get_params(ctx) if not getattr(p, "hidden", False)]
    args = [p for p in params if p.param_type_name == "argument"]
    opts = [p for p in params if p.param_type_name == "option"]
    group = hasattr(cmd, "commands")
    lines = [usage(cmd, ctx), ""]
    for para in paragraphs(cmd.help):
        lines += [*_wrap(para, cols), ""]
    if args:
        lines += ["Arguments:", *_rows([(metavar(p), " ".join(x for x in (p.help or "", _extras(p)) if x))
                                        for p in args], cols), ""]
    if opts:
        lines += ["Options:", *_rows([(_option_label(p), " ".join(x for x in (p.help or "", _extras(p)) if x))
                                      for p in opts], cols), ""]
    if group:
        subs = [(name, (paragraphs(sub.help) or [""])[0]) for name, sub in cmd.commands.items()
                if not getattr(sub, "hidden", False)]
        lines += ["Commands:", *_rows(subs, cols), ""]
    extra = _EXTRA.get(cmd.name)
    if extra is not None:
        lines += extra(list(ctx.meta.get(_ARGS_KEY, [])))
    return "\n".join(lines).rstrip() + "\n"


def _format_help(self: Any, ctx: Any, formatter: Any) -> None:
    formatter.write(render(self, ctx))


def _format_usage(self: Any, ctx: Any, formatter: Any) -> None:
    formatter.write(usage(self, ctx) + "\n")


def _parse_args(self: Any, ctx: Any, args: list[str]) -> list[str]:
    ctx.meta[_ARGS_KEY] = list(args)  # for extra_help: `rlaif train grpo --help` knows the recipe
    check = _BEFORE.get(self.name)
    if check is not None and not ctx.resilient_parsing:
        check(self, list(args))
    return type(self).parse_args(self, ctx, args)


def install(cmd: Any) -> Any:
    """Give `cmd` and every command under it this help and the registered checks; returns `cmd`."""
    cmd.format_help = types.MethodType(_format_help, cmd)
    cmd.format_usage = types.MethodType(_format_usage, cmd)
    if not hasattr(cmd, "commands"):
        cmd.parse_args = types.MethodType(_parse_args, cmd)
    for sub in getattr(cmd, "commands", {}).values():
        install(sub)
    return cmd
