"""Checks on the path arguments of `rlaif` commands, run by click while it parses the command line.

Every command's path options use one of these callbacks, so a folder given for a file, a missing
input, or an output location that cannot be written fails with `PATH: problem. Fix: ...` (exit 2)
before the command starts any work: in particular before the first paid model call, not after
the last one. Errors while the files are actually read or written are caught at the I/O layer
(`rlaif.records`), with the line where there is one.

Callbacks take (ctx, param, value) and return the value unchanged; `None` (an option not given)
and lists (repeatable options) are handled.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from rlaif.errors import InputError


def _name(param: Any) -> str:
    """How the user spells the parameter: `-o/--out`, `RESPONSES`."""
    opts = [o for o in getattr(param, "opts", []) if o.startswith("-")]
    return "/".join(opts) if opts else str(param.name).upper()


def _stat(path: Path) -> os.stat_result | None:
    """The path's status, None when nothing is there; an unreadable parent is an error."""
    try:
        return path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise InputError(path, None, f"cannot look at it ({e.strerror})", "check the path and its permissions") \
            from None


def _check_file(path: Path, what: str) -> None:
    st = _stat(path)
    if st is None:
        raise InputError(path, None, "no such file", "check the path")
    if stat.S_ISDIR(st.st_mode):
        try:
            inside = sorted(p.name for p in path.iterdir() if p.suffix in (".jsonl", ".json", ".yaml", ".yml"))[:3]
        except OSError:
            inside = []
        hint = f" (this one holds {', '.join(inside)})" if inside else ""
        raise InputError(path, None, f"is a folder, but {what} must be a file",
                         f"pass a file inside it{hint}")
    if not os.access(path, os.R_OK):
        raise InputError(path, None, "is not readable (permission denied)", "check the file's permissions")


def _each(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def input_file(ctx: Any, param: Any, value: Any) -> Any:
    """An existing, readable file (not a folder)."""
    for v in _each(value):
        _check_file(Path(v), _name(param))
    return value


def file_or_name(ctx: Any, param: Any, value: Any) -> Any:
    """A file path, or a name looked up later (a built-in judge, prompt set, suite; a rater): when it
    names something on disk, that must be a readable file."""
    for v in _each(value):
        p = Path(v)
        if _stat(p) is not None:
            _check_file(p, _name(param))
    return value


def prompt_set(ctx: Any, param: Any, value: Any) -> Any:
    """A prompt file or the name of a built-in prompt set (rlaif.catalog.prompt_set, the one resolver), given
    back as the path it resolves to."""
    from rlaif.catalog import prompt_set as resolve

    if value is None:
        return None
    p = Path(value)
    if _stat(p) is not None:
        _check_file(p, _name(param))
        return value
    return str(resolve(value, _name(param)))


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while _stat(p) is None and p != p.parent:
        p = p.parent
    return p


def _check_can_create(path: Path, what: str) -> None:
    """`path` does not exist yet: its nearest existing ancestor must be a writable folder."""
    anc = _nearest_existing(path)
    if not anc.is_dir():
        raise InputError(path, None, f"{anc} is a file, so no folder can be made there for {what}",
                         "pass a location whose folders are folders, or move that file away")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise InputError(path, None, f"cannot create it: the folder {anc} is not writable",
                         "pass a location you can write to, or fix the folder's permissions")


def output_dir(ctx: Any, param: Any, value: Any) -> Any:
    """A folder to write into: an existing writable folder, or one that can be created."""
    for v in _each(value):
        p, what = Path(v), _name(param)
        if _stat(p) is None:
            _check_can_create(p, what)
        elif not p.is_dir():
            raise InputError(p, None, f"is a file, but {what} must be a folder (it is created if missing)",
                             "pass a folder path, or move the file away")
        elif not os.access(p, os.W_OK | os.X_OK):
            raise InputError(p, None, "the folder is not writable",
                             "pass a folder you can write to, or fix its permissions")
    return value


def output_file(ctx: Any, param: Any, value: Any) -> Any:
    """A file to write (or append to): not a folder, writable, its folder creatable."""
    for v in _each(value):
        p, what = Path(v), _name(param)
        if _stat(p) is None:
            _check_can_create(p, what)
        elif p.is_dir():
            raise InputError(p, None, f"is a folder, but {what} must be a file",
                             f"pass a file path, e.g. {p / 'out.jsonl'}")
        elif not os.access(p, os.W_OK):
            raise InputError(p, None, "the file is not writable", "pass a file you can write to, or fix its "
                             "permissions")
    return value


def folder_or_name(ctx: Any, param: Any, value: Any) -> Any:
    """A model or tokenizer folder, or a name (`local`, `whitespace`, a hub-style id looked up later):
    when it names something on disk, that must be a folder."""
    for v in _each(value):
        p = Path(v)
        st = _stat(p)
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise InputError(p, None, f"is a file, but {_name(param)} must be a model folder",
                             "pass the folder that holds config.json (e.g. a `rlaif train` output's model/)")
    return value
