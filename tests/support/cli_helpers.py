"""The `rlaif` command line run in this process, with its exit code and both streams captured."""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

from rlaif.cli import main


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


def rlaif_inproc(*args: object) -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return Run(code, out.getvalue(), err.getvalue())
