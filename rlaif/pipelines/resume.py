"""What the multi-step commands (`rlaif demo`, `rlaif train online-dpo`) share: finished steps recorded in
OUT/state.json, so a killed run resumes at the first unfinished step.

Every step writes plain files under OUT; a step is marked done only after its last file is written, so a
step killed halfway is redone (its model calls come back from the call cache, training from its checkpoint).
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlaif.errors import ConfigError
from rlaif.records import read_json_file, write_json


def log(command: str, msg: str) -> None:
    print(f"[{command} {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Steps:
    """Finished steps, recorded atomically in OUT/state.json so a re-run skips them.

    `plan` is everything that decides the outputs. A run under another plan either starts over
    (`on_change="restart"`: the demo's --quick after a full run) or is refused (`"refuse"`: a command
    whose outputs of the old plan would be mixed with the new ones)."""

    def __init__(self, out: Path, plan: dict, *, command: str, on_change: str = "restart"):
        self.path = Path(out) / "state.json"
        self.command = command
        self.plan = json.loads(json.dumps(plan))  # as it reads back from state.json
        state = read_json_file(self.path) if self.path.exists() else {}
        same = state.get("plan") == self.plan
        if state.get("done") and not same and on_change == "refuse":
            changed = sorted(k for k in {*self.plan, *state.get("plan", {})}
                             if self.plan.get(k) != state.get("plan", {}).get(k))
            raise ConfigError(f"{out} holds a {command} run with other settings ({', '.join(changed)} changed). "
                              "Fix: use a new -o OUTDIR, or the settings of that run (see its state.json)")
        self.done: dict[str, float] = state.get("done", {}) if same else {}

    def finished(self, name: str) -> bool:
        return name in self.done

    def mark(self, name: str, seconds: float) -> None:
        self.done[name] = round(seconds, 1)
        write_json(self.path, {"plan": self.plan, "done": self.done})

    def run(self, name: str, fn: Callable[..., Any], *args: Any, always: bool = False) -> None:
        """`fn(*args)` unless an earlier run finished it (`always`: run it anyway, e.g. a report of what exists
        now); then mark it done with its seconds."""
        if self.finished(name) and not always:
            log(self.command, f"{name}: done in an earlier run, skipped")
            return
        log(self.command, f"{name} ...")
        t = time.perf_counter()
        fn(*args)
        self.mark(name, time.perf_counter() - t)
        log(self.command, f"{name}: {time.perf_counter() - t:.1f} s")

