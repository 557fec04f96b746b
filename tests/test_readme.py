"""The README's examples work as printed (issue 23, item 11).

Every `rlaif ...` command line in a bash block (also after `VAR=... `, `&&` or `torchrun ... -m rlaif.cli`) is
parsed by the real command line with the path checks left out (the files are the reader's): the command exists,
each option is one of its options with a value of the right type and range, the required ones are there, and a
`rlaif train` override is a key of the recipe's config with a valid value. Python blocks must compile.

A block is run for real when the line before it is `<!-- readme-test: run -->`, in order, in a fresh folder,
with the QUICK settings below; `<!-- readme-test: skip (reason) -->` says why one is not (an API key, a GPU,
minutes of training, the reader's own files). A block without a marker is parsed, not run: new sections need
no change here.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARK = re.compile(r"<!--\s*readme-test:\s*(run|skip)\s*(?:\((.*)\))?\s*-->")
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence
    lang: str
    text: str
    mark: str | None  # "run", "skip" or None
    reason: str


@dataclass(frozen=True)
class Command:
    line: int
    argv: list[str]  # after `rlaif`


def readme_blocks(text: str) -> list[Block]:
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang, start = m.group(1), m.group(2), i
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        body = "\n".join(x[len(indent):] if x.startswith(indent) else x for x in lines[i + 1:j])
        prev = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        mark = MARK.search(prev)
        blocks.append(Block(start + 1, lang, body, mark.group(1) if mark else None,
                            (mark.group(2) or "") if mark else ""))
        i = j + 1
    return blocks


def rlaif_commands(block: Block) -> list[Command]:
    """The `rlaif` command lines of a shell block: continuations joined, comments dropped, `&&`/`;`/`|` split."""
    found: list[Command] = []
    joined, first = "", None
    for n, raw in enumerate(block.text.splitlines(), start=block.line + 1):
        first = first or n
        if raw.rstrip().endswith("\\"):
            joined += raw.rstrip()[:-1] + " "
            continue
        words = shlex.split(joined + raw, comments=True)
        joined, line = "", first
        first = None
        segment: list[str] = []
        for w in [*words, ";"]:
            if w not in ("&&", ";", "|", "||"):
                segment.append(w)
                continue
            if "rlaif" in segment:
                found.append(Command(line, segment[segment.index("rlaif") + 1:]))
            elif "rlaif.cli" in segment:  # torchrun ... -m rlaif.cli train ...
                found.append(Command(line, segment[segment.index("rlaif.cli") + 1:]))
            segment = []
    return found


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))
SHELL = [b for b in BLOCKS if b.lang in ("bash", "sh", "shell", "console")]
COMMANDS = [c for b in SHELL for c in rlaif_commands(b)]


def test_the_readme_has_examples_and_every_skip_says_why():
    assert len(COMMANDS) >= 40 and any(b.mark == "run" for b in SHELL)
    assert all(b.reason.strip() for b in BLOCKS if b.mark == "skip"), "a skipped block says why"


def _parse_only(root):
    """`root` with every path check taken off: the reader's files need not exist for a line to parse."""
    def strip(cmd):
        for p in getattr(cmd, "params", []):
            p.callback = None
        for sub in getattr(cmd, "commands", {}).values():
            strip(sub)
    strip(root)
    return root


def check_parses(argv: list[str]) -> None:
    """Parse `rlaif ARGV` with the real click parser (types, ranges, required options; train's overrides
    against the recipe's config), without running it; a click or rlaif error says what is wrong."""
    from rlaif.cli.entry import command

    cmd, rest, name = _parse_only(command()), list(argv), "rlaif"
    while hasattr(cmd, "commands"):  # a group (rlaif, rlaif cache): the subcommand named next
        name, *rest = rest
        assert name in cmd.commands, f"`rlaif` has no command {name!r}"
        cmd = cmd.commands[name]
    ctx = cmd.make_context(name, rest)
    if cmd.name == "train":
        recipe, overrides = ctx.params["recipe"], list(ctx.params["overrides"] or [])
        if recipe == "online-dpo":
            from rlaif.pipelines.online_dpo import DEFAULT_CONFIG, load_online_config

            load_online_config(DEFAULT_CONFIG, overrides)
        else:
            from rlaif.train.config import CONFIG_DIR, load_config

            load_config(recipe, CONFIG_DIR / f"{recipe}.yaml", overrides)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: f"README:{c.line}")
def test_every_rlaif_command_in_the_readme_parses(command):
    check_parses(command.argv)


def test_the_checker_catches_what_a_user_would_meet():
    for bad in (["eval", "ifeval", "--policy", "x", "-o", "o", "--limit", "many"],
                ["train", "grpo", "--max-steps", "2"], ["train", "rm", "max_step=2"], ["train", "rm", "lr=fast"],
                ["convert", "FORMAT", "x"], ["label", "r.jsonl", "-o", "o"],
                ["generate", "demo", "--policy", "local", "-o", "o", "--bogus"], ["cache", "purge"]):
        with pytest.raises(Exception) as e:  # click's usage errors and rlaif's errors both exit 2
            check_parses(bad)
        assert getattr(e.value, "exit_code", None) == 2 or isinstance(e.value, AssertionError) and \
            "no command" in str(e.value), (bad, repr(e.value))


def test_the_hints_that_print_a_command_print_one_that_parses(tmp_path):
    """`rlaif convert` without -f suggested `rlaif convert FORMAT ...`; `rlaif eval --help` and two error
    hints named `hf:runs/dpo/model`, but `rlaif train dpo -o runs/dpo` writes the model to runs/dpo."""
    from rlaif.errors import ConfigError
    from rlaif.eval.suite import parse_policy
    from tests.support.cli_helpers import rlaif_inproc

    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"something": 1}\n')
    r = rlaif_inproc("convert", odd, "-o", tmp_path / "l.jsonl")
    assert r.code == 2
    hint = re.search(r"e\.g\. (rlaif convert .*? -o labels\.jsonl)", r.stderr).group(1)
    check_parses(shlex.split(hint)[1:])
    assert hint == f"rlaif convert -f pandalm {odd} -o labels.jsonl"
    shown = rlaif_inproc("eval", "--help").stdout
    assert "dpo=hf:runs/dpo " in " ".join(shown.split()) and "runs/dpo/model" not in shown
    with pytest.raises(ConfigError, match=r"dpo=hf:runs/dpo \(the -o folder of `rlaif train dpo`\)"):
        parse_policy("dpo=")
    assert str(odd) in r.stderr and "Fix: name the format with -f" in r.stderr


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "python"], ids=lambda b: f"README:{b.line}")
def test_python_blocks_compile(block):
    compile(block.text, f"README.md:{block.line}", "exec")


# ---- the blocks marked `run`, for real ----------------------------------------------------------------------
# What the run changes, and why: the embedded 135M model takes about 5 s a response on 2 CPU cores, so a tiny
# random model (tests/conftest.py) stands in for it as policy, baseline, training start and judge; responses
# are 8 tokens; training stops after one step; eval takes one sample; the embedding diversity (a second model)
# is skipped. Every command, option and file path is the README's.
def quick(argv: list[str], tiny: Path) -> list[str]:
    out: list[str] = []
    for i, w in enumerate(argv):
        before = argv[i - 1] if i else ""
        if before in ("--policy", "--baseline") and (w == "local" or w.endswith("=local")):
            w = w[: -len("local")] + f"hf:{tiny}"
        elif before == "--model" and w == "local":
            w = str(tiny)
        elif before == "--max-tokens":
            w = "8"
        out.append(w)
    if argv[0] in ("label", "probe", "eval") and "--judge-model" not in argv:
        out += ["--judge-model", f"hf:{tiny}"]
    if argv[0] == "train":
        out.append("max_steps=1")
    if argv[0] in ("eval", "diversity"):
        out.append("--no-embedding")
    if argv[0] == "eval":
        out += ["--samples", "1", "--max-tokens", "8"]
    return out


def _ensure_pairs(argv: list[str], cwd: Path) -> None:
    """A random model's 8 tokens rarely split the checker, so `rlaif label` may find no preference in them;
    then `train --data FILE` gets two pairs on the same prompts (what a real policy's label step writes), so
    the training and evaluation commands still run as printed. The label step itself ran above."""
    data = cwd / argv[argv.index("--data") + 1]
    if data.is_file() and data.read_text().strip():
        return
    import json

    from rlaif.records import read_responses

    prompts = list(dict.fromkeys(r.prompt for r in read_responses(cwd / "runs/me/responses.jsonl")))[:2]
    data.write_text("".join(json.dumps({"prompt": p, "chosen": "a short answer in lowercase.",
                                        "rejected": "A LONG ANSWER THAT SHOUTS."}) + "\n" for p in prompts))


@pytest.mark.timeout(600)
def test_run_blocks_run_as_printed(tmp_path, tiny_model_dir):
    """The `run` blocks in README order, in one folder: each block reads what the one above it wrote."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = [c for b in SHELL if b.mark == "run" for c in rlaif_commands(b)]
    assert any(c.argv[0] == "generate" for c in run) and any(c.argv[0] == "eval" for c in run)
    for c in run:
        argv = quick(c.argv, tiny_model_dir)
        if argv[0] == "train" and "--data" in argv:
            _ensure_pairs(argv, tmp_path)
        p = subprocess.run([sys.executable, "-m", "rlaif.cli", *argv], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=300)
        assert p.returncode == 0, f"README.md:{c.line}: rlaif {' '.join(argv)}\n{p.stderr[-3000:]}"
        assert "Traceback" not in p.stderr
