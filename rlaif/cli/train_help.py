"""What `rlaif train` adds to its help and checks before click parses it (issue 23, item 14).

`rlaif train RECIPE --help` lists the recipe's config keys, each with the default the recipe starts from and
one line, written from the config classes (rlaif.train.config_docs), never by hand; `rlaif train --help`
says how to get them. A config key spelt as an option (`--max-steps 2`) is refused with the key=value to
write instead (exit 2), not click's bare "No such option".
"""
from __future__ import annotations

from typing import Any

from rlaif.cli.helptext import before_parse, extra_help, width
from rlaif.errors import ConfigError

ONLINE_DPO = "online-dpo"


def _recipes() -> tuple[str, ...]:
    from rlaif.train import RECIPES

    return (*RECIPES, ONLINE_DPO)


def _recipe(args: list[str]) -> str | None:
    """The recipe named on the command line: the first argument that is one (options come before or after)."""
    return next((a for a in args if a in _recipes()), None)


def recipe_keys(recipe: str) -> list[Any]:
    """The recipe's `KeyDoc`s, defaults from the shipped config it loads when --config is not given."""
    from rlaif.train.config import CONFIG_DIR, load_config
    from rlaif.train.config_docs import key_docs

    if recipe == ONLINE_DPO:
        from rlaif.pipelines.online_dpo import DEFAULT_CONFIG, load_online_config

        return key_docs(load_online_config(DEFAULT_CONFIG, []), DEFAULT_CONFIG, CONFIG_DIR / "dpo.yaml")
    path = CONFIG_DIR / f"{recipe}.yaml"
    return key_docs(load_config(recipe, path), path)


def _yaml_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(_yaml_value, value)) + "]"
    return str(value)


@extra_help("train")
def keys_help(args: list[str]) -> list[str]:
    import textwrap

    recipe = _recipe(args)
    cols = width()
    if recipe is None:
        return [*textwrap.wrap(f"Config keys: `rlaif train RECIPE --help` lists a recipe's keys, defaults and what "
                               f"each does (RECIPE: {', '.join(_recipes())}); pass them as key=value after the "
                               "recipe, e.g. `rlaif train grpo ... max_steps=2 lora.r=8`, or in a --config YAML "
                               "file.", cols, break_on_hyphens=False), ""]
    docs = recipe_keys(recipe)
    labels = [f"{d.key}={_yaml_value(d.default)}" for d in docs]
    left = min(max(map(len, labels)) + 4, 36)
    lines = textwrap.wrap(f"Config keys of {recipe} (key=default): pass key=value after the recipe, e.g. "
                          f"`rlaif train {recipe} ... max_steps=2`, or put them in a --config YAML file.", cols,
                          break_on_hyphens=False)
    for label, d in zip(labels, docs, strict=True):
        body = textwrap.wrap(d.text, max(cols - left, 30), break_on_hyphens=False) or [""]
        if len(label) + 4 > left:
            lines += [f"  {label}", *(" " * left + b for b in body if b)]
        else:
            lines += [f"  {label}".ljust(left) + body[0], *(" " * left + b for b in body[1:])]
    return [*lines, ""]


def _all_keys() -> dict[str, list[str]]:
    """Every top-level config key -> the recipes that take it."""
    from rlaif.pipelines.online_dpo import OnlineDPOConfig
    from rlaif.train.config import CONFIGS
    from rlaif.train.config_hints import config_keys

    found: dict[str, list[str]] = {}
    for recipe, model in {**CONFIGS, ONLINE_DPO: OnlineDPOConfig}.items():
        for key in config_keys(model):
            found.setdefault(key, []).append(recipe)
    return found


@before_parse("train")
def config_keys_as_options(cmd: Any, args: list[str]) -> None:
    """`--max-steps 2` (or `--max_steps=2`): a config key given as an option; say the key=value to write."""
    known = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
    for i, arg in enumerate(args):
        if arg == "--":
            return
        flag, eq, value = arg.partition("=")
        if not flag.startswith("--") or flag in known:
            continue
        key = flag[2:].replace("-", "_")
        recipes = _all_keys().get(key)
        if recipes is None:
            continue  # click says "No such option", with its own close matches
        if not eq and i + 1 < len(args) and not args[i + 1].startswith("-"):
            value = args[i + 1]
        recipe = _recipe(args)
        where = (f"a config key of {recipe}" if recipe in recipes
                 else f"a config key (of {', '.join(recipes)})")
        raise ConfigError(f"{flag} is not an option of `rlaif train`: {key} is {where}, given as key=value after "
                          f"the recipe. Fix: pass it as {key}={value or 'VALUE'}")
