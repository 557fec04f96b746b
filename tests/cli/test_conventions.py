"""One flag, one meaning, across every `rlaif` command (walked through click's view of the typer app).

Duck-typed (`.commands`, `param_type_name`): typer may vendor its own click, so click's classes are not its.
"""
from __future__ import annotations

from typing import Any

import typer.main

from rlaif.cli import app

# concept -> (canonical flags, other spellings of the concept that no command may use)
CANONICAL: dict[str, tuple[set[str], set[str]]] = {
    "concurrency": ({"--concurrency", "-c"}, {"--workers", "--parallel", "--jobs"}),
    "bootstrap": ({"--bootstrap"}, {"--n-boot", "--nboot", "--boot", "--rounds", "--bootstrap-rounds"}),
    "seed": ({"--seed"}, {"--random-seed", "--rng-seed"}),
    "timeout": ({"--timeout"}, {"--timeout-s", "--request-timeout"}),
    "max_failed": ({"--max-failed"}, {"--max-failures", "--max-fail", "--fail-share", "--max-errors"}),
    "base_url": ({"--base-url"}, {"--base-urls", "--url", "--server"}),
    "api_key_env": ({"--api-key-env"}, {"--api-key", "--key-env"}),
    "judge_model": ({"--judge-model"}, {"--judge-backend", "--judge-spec"}),
    "out": ({"-o", "--out"}, {"--output", "--out-dir", "--outdir", "--output-dir"}),
    "samples": ({"-n", "--samples"}, {"--n-samples", "--num-samples"}),
    "max_tokens": ({"--max-tokens"}, {"--max-new-tokens"}),
    "judge": ({"-j", "--judge"}, {"--judges"}),
    "limit": ({"--limit"}, {"--max-prompts", "--n-prompts", "--num-prompts", "--first"}),
    "offset": ({"--offset"}, {"--skip", "--start"}),
}
# Commands that read a prompt set take --limit and --offset (`rlaif eval`'s meaning; issue 23, item 9).
READS_PROMPTS = {"generate", "label", "synth", "train", "eval"}
# Commands that call models take -c/--concurrency.
CALLS_MODELS = {"generate", "label", "synth", "probe", "winrate", "eval"}
SHORT_MEANS = {"-c": "concurrency", "-o": "out", "-n": "samples", "-j": "judge"}


def _commands() -> dict[str, Any]:
    root = typer.main.get_command(app)
    found: dict[str, Any] = {}

    def walk(cmd: Any, path: str) -> None:
        if hasattr(cmd, "commands"):  # a group
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}".strip())
        else:
            found[path] = cmd

    walk(root, "")
    return found


def _options(cmd: Any) -> list[Any]:
    return [p for p in cmd.params if p.param_type_name == "option" and p.name != "help"]


def test_the_walk_sees_every_command():
    assert {"generate", "label", "synth", "probe", "audit", "elo", "convert", "train", "winrate", "diversity",
            "eval", "demo", "serve", "cache path", "cache info", "cache clear"} <= set(_commands())


def test_each_concept_has_one_spelling():
    bad = []
    for name, cmd in _commands().items():
        for opt in _options(cmd):
            flags = set(opt.opts) | set(opt.secondary_opts)
            for concept, (canonical, others) in CANONICAL.items():
                if opt.name == concept or flags & (canonical | others):
                    if flags != canonical:
                        bad.append(f"rlaif {name}: {'/'.join(sorted(flags))} spells {concept}; "
                                   f"use {'/'.join(sorted(canonical))}")
    assert not bad, "\n".join(bad)


def test_every_command_that_calls_models_takes_concurrency():
    cmds = _commands()
    missing = [n for n in CALLS_MODELS if not any("--concurrency" in o.opts for o in _options(cmds[n]))]
    assert not missing, f"no -c/--concurrency on: {missing}"
    for n in CALLS_MODELS:
        (opt,) = [o for o in _options(cmds[n]) if "--concurrency" in o.opts]
        assert opt.default == 8 and opt.min == 1, n  # the same default and bound everywhere


def test_every_command_that_calls_models_takes_timeout_and_max_failed():
    cmds = _commands()
    for flag, default, bounds in (("--timeout", 120.0, (0.1, None)), ("--max-failed", 0.5, (0.0, 1.0))):
        missing = [n for n in CALLS_MODELS if not any(flag in o.opts for o in _options(cmds[n]))]
        assert not missing, f"no {flag} on: {missing}"
        for n in CALLS_MODELS:
            (opt,) = [o for o in _options(cmds[n]) if flag in o.opts]
            assert opt.default == default and (opt.min, opt.max) == bounds, (n, flag)


def test_a_long_flag_has_one_short_flag_everywhere():
    short_of: dict[str, dict[str, str]] = {}
    for name, cmd in _commands().items():
        for opt in _options(cmd):
            longs = [f for f in opt.opts if f.startswith("--")]
            shorts = [f for f in opt.opts if not f.startswith("--")]
            for long in longs:
                short_of.setdefault(long, {})[name] = shorts[0] if shorts else ""
    bad = {long: by_cmd for long, by_cmd in short_of.items() if len(set(by_cmd.values()) - {""}) > 1}
    assert not bad, bad


def test_short_flags_mean_one_thing():
    bad = []
    for name, cmd in _commands().items():
        for opt in _options(cmd):
            for short, concept in SHORT_MEANS.items():
                if short in opt.opts and set(opt.opts) != CANONICAL[concept][0]:
                    bad.append(f"rlaif {name}: {short} is {'/'.join(opt.opts)}, not {concept}")
    assert not bad, "\n".join(bad)


def test_every_command_that_reads_prompts_takes_limit_and_offset():
    cmds = _commands()
    for n in READS_PROMPTS:
        opts = {o.name: o for o in _options(cmds[n])}
        assert opts["limit"].min == 1 and opts["limit"].default is None, n
        assert opts["offset"].min == 0 and opts["offset"].default == 0, n
