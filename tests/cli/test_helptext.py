"""`--help` as a new user reads it (issue 23, item 14): no `--help <bool>`, no raw `{prompts}` placeholders, no
typer type names, nothing cut at 80 columns; usage errors show the same usage line. Every command is walked."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli_helpers import rlaif_inproc

ROOT = Path(__file__).resolve().parents[2]


def _command_paths() -> list[list[str]]:
    import typer.main

    from rlaif.cli import app

    found: list[list[str]] = [[]]

    def walk(cmd, path: list[str]) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            found.append([*path, name])
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


RAW = [re.compile(r"\{[a-z_]+\}"), re.compile(r"<(bool|str|int|float|path|list\[[a-z]+\])( range)?>"),
       re.compile(r"--help\s+<"), re.compile(r"[│╭╰─]")]


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "rlaif")
def test_help_has_no_raw_placeholders(path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    r = rlaif_inproc(*path, "--help")
    assert r.code == 0, r.stderr
    text = r.stdout
    assert text.startswith(f"Usage: {' '.join(['rlaif', *path])} [OPTIONS]"), text[:200]
    for pattern in RAW:
        assert not pattern.search(text), (pattern.pattern, text)
    assert "--help  " in text or "--help " in text
    assert max(map(len, text.splitlines())) <= 200


def test_root_help_shows_each_summary_whole_and_uses_the_width():
    """Piped with COLUMNS=160: each command's whole first paragraph, lines past 80 columns, no ellipsis."""
    import typer.main

    from rlaif.cli import app
    from rlaif.cli.helptext import paragraphs

    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "160"}
    p = subprocess.run([sys.executable, "-m", "rlaif.cli", "--help"], capture_output=True, text=True, env=env,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    flat = " ".join(p.stdout.split())
    for name, cmd in typer.main.get_command(app).commands.items():
        assert f"{name} {paragraphs(cmd.help)[0]}" in flat, name
    assert max(map(len, p.stdout.splitlines())) > 80
    assert "..." not in p.stdout.replace("COMMAND [ARGS]...", "")


def test_usage_names_arguments_as_written():
    r = rlaif_inproc("generate", "--help")
    assert r.stdout.startswith("Usage: rlaif generate [OPTIONS] PROMPTS\n")
    assert re.search(r"^  -o, --out FILE\s", r.stdout, re.M) and re.search(r"^  --limit N\s", r.stdout, re.M)
    assert "[default: 8; >= 1]" in r.stdout  # --concurrency
    assert rlaif_inproc("train", "--help").stdout.startswith("Usage: rlaif train [OPTIONS] RECIPE [OVERRIDES]...\n")
    err = rlaif_inproc("generate", "demo")  # a usage error shows the same line
    assert err.code == 2
    assert err.stderr.startswith("Usage: rlaif generate [OPTIONS] PROMPTS\n") and "Missing option '--policy'" in \
        err.stderr


def test_no_arguments_prints_the_help():
    for argv in ([], ["cache"]):
        r = rlaif_inproc(*argv)
        assert r.code == 2 and "Commands:" in r.stderr, (argv, r.stderr)


def test_metavars_follow_the_path_checks():
    from rlaif.cli.helptext import metavar

    class P:
        def __init__(self, callback, param_type_name="option", name="x"):
            self.callback, self.param_type_name, self.name, self.metavar = callback, param_type_name, name, None

    from rlaif.cli import paths

    assert metavar(P(paths.output_dir)) == "DIR" and metavar(P(paths.input_file)) == "FILE"
    assert metavar(P(paths.prompt_set)) == "NAME|FILE" and metavar(P(None, "argument", "responses")) == "RESPONSES"
