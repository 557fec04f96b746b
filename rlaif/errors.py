"""The error hierarchy. Every message says what is wrong and how to fix it.

Only the CLI turns these into exit codes (2 for anything the user can fix).
"""
from __future__ import annotations


class RlaifError(Exception):
    """Base class: a problem the user can fix. The CLI prints it and exits 2."""

    exit_code = 2


class InputError(RlaifError):
    """A bad input file or line: `PATH:LINE: what is wrong. Fix: how`."""

    def __init__(self, path, line: int | None, problem: str, fix: str = ""):
        self.path, self.line, self.problem, self.fix = str(path), line, problem, fix
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {problem}" + (f". Fix: {fix}" if fix else ""))


class ConfigError(RlaifError):
    """A bad option, judge definition, suite or training config."""


class UserCodeError(RlaifError):
    """The user's own code (a `python:` reward, a rule checker or scorer of one's own) failed to import, or tried
    to end the process: reported as that module failing (where, what, a Fix), never a traceback or a silent exit."""


class MissingDependency(RlaifError):
    """An optional package is not installed; the message gives the pip command."""

    def __init__(self, package: str, extra: str | None = None, why: str = ""):
        hint = f"pip install 'rlaif[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"{package} is not installed{' (' + why + ')' if why else ''}. Fix: {hint}")


class BackendError(RlaifError):
    """A model call failed for good (bad request, auth, not found, retries exhausted)."""

    status: int | None = None  # the HTTP status when a server answered; 401/403/404 stop a whole run
