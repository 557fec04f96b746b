"""The `rlaif` command line: thin typer commands, one module per area.

Heavy imports (torch, transformers, SDKs, pandas) happen inside command bodies so `rlaif --help` answers
fast. `entry.py` holds the app and `main()`, the only place errors become exit codes; `options.py` the flags
several commands share; `paths.py` the path checks every path argument runs before any work. The command
modules are imported here, in the order `rlaif --help` lists them.
"""
from importlib import import_module

from rlaif.cli.entry import app, main

for _area in ("labeling", "audit", "train", "evaluation", "serve", "cache"):  # registers their commands
    import_module(f"rlaif.cli.{_area}")

__all__ = ["app", "main"]
