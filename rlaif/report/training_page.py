"""training.html beside a training run: the per-step curves of OUT/metrics.jsonl and, when a gold reward was
scored beside the proxy (`--gold-reward`), the reward-hacking picture: proxy and gold per step, gold and proxy
against the KL to the start, and the onset the monitor found (train_result.json's `hacking`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rlaif.records import iter_json_lines, read_json_file, write_text
from rlaif.report.html import Section, figure, metrics, new_figure, paragraph, render_page, table

CURVES = {"online": ("reward", "kl_k3", "response_length"), "offline": ("loss", "reward_accuracy", "reward_margin")}


def step_panels(rows: list[dict], keys: tuple[str, ...]) -> Any:
    """Small plots of per-step metrics side by side, one per key."""
    fig, axes = new_figure(7.0, 2.6, ncols=len(keys))
    for ax, key in zip(axes, keys, strict=True):
        ax.plot([r["step"] for r in rows], [r.get(key) for r in rows], marker="o", ms=3, color="#0969da")
        ax.set_title(key.replace("_", " "), fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    return fig


def hacking_figure(rows: list[dict], hacking: dict | None) -> Any:
    """Two panels: proxy and gold per step (each on its own axis: their scales differ), and both against the
    KL to the start (the over-optimization picture); the onset marked on each."""
    rows = [r for r in rows if r.get("gold") is not None]
    steps, kl = [r["step"] for r in rows], [r.get("kl_k3") for r in rows]
    proxy, gold = [r.get("reward") for r in rows], [r["gold"] for r in rows]
    onset = (hacking or {}).get("onset")
    fig, (left, right) = new_figure(8.0, 3.0, ncols=2)
    for ax, x, xlabel in ((left, steps, "step"), (right, kl, "KL to the start (k3, per response)")):
        ax.plot(x, proxy, marker="o", ms=3, color="#0969da", label="proxy (trained on)")
        twin = ax.twinx()
        twin.plot(x, gold, marker="s", ms=3, color="#cf222e", label="gold (never trained on)")
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel("proxy", color="#0969da", fontsize=8)
        twin.set_ylabel("gold", color="#cf222e", fontsize=8)
        ax.tick_params(labelsize=7)
        twin.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if onset is not None:
            at = onset["step"] if x is steps else onset.get("kl")
            if at is not None:
                ax.axvline(at, color="#8250df", ls="--", lw=1)
    left.set_title("proxy and gold per step", fontsize=9)
    right.set_title("proxy and gold as the policy moves away", fontsize=9)
    return fig


def hacking_sentence(hacking: dict) -> str:
    """What the monitor measured, in one or two sentences from its numbers."""
    start, end, onset = hacking.get("start"), hacking.get("end"), hacking.get("onset")
    if not start or not end:
        return (f"Too few steps ({hacking.get('steps', 0)}) for the onset test (it needs "
                f"{2 * hacking['test']['window']}).")
    text = (f"Smoothed over {hacking['test']['window']} steps, the proxy went from {start['proxy']:.3f} to "
            f"{end['proxy']:.3f} and the gold reward from {start['gold']:.3f} to {end['gold']:.3f}")
    if end.get("kl") is not None:
        text += f" while the KL to the start reached {end['kl']:.3f}"
    if onset is None:
        return text + (". No onset: at no step did the proxy rise beyond its noise over a window in which gold did "
                       "not rise.")
    kl = f", KL {onset['kl']:.3f}" if onset.get("kl") is not None else ""
    return (text + f". Onset at step {onset['step']}{kl}: the proxy rose {onset['proxy_rise']:+.3f} over the last "
            f"window (more than {hacking['test']['z']} standard errors, {onset['se']:.3f}) while gold moved "
            f"{onset['gold_rise']:+.3f}; from there the proxy stops being a good guide to the gold reward.")


def render_training_html(rows: list[dict], result: dict) -> str:
    train = [r for r in rows if r.get("split") == "train"]
    online = any("kl_k3" in r for r in train)
    keys = tuple(k for k in CURVES["online" if online else "offline"] if any(r.get(k) is not None for r in train))
    sections = [Section("Training", [
        metrics({"steps": result.get("steps"), "stopped by": result.get("stopped_by"),
                 "seconds": result.get("train_seconds")}),
        figure(step_panels(train, keys), caption="Per-step metrics from metrics.jsonl.") if train and keys
        else paragraph("No training steps were logged.", note=True)])]
    hacking = result.get("hacking")
    if hacking is not None:
        onset = hacking.get("onset")
        rho = hacking.get("curve_spearman")
        sections.append(Section("Proxy vs gold reward", [
            paragraph(hacking_sentence(hacking)),
            metrics({"onset step": onset["step"] if onset else "none", "KL at onset": onset["kl"] if onset else None,
                     "rank correlation of the step curves": rho}),
            figure(hacking_figure(train, hacking), caption="Blue: the proxy the policy is trained on; red: the gold "
                   "reward, scored on the same rollouts and never trained on; dashed: the onset."),
            table([{"step": r["step"], "proxy": r.get("reward"), "gold": r.get("gold"),
                    "rank correlation in the step": r.get("gold/spearman"), "KL k3": r.get("kl_k3")} for r in train],
                  caption="Per step: the means over the step's rollouts (gold over gold_fraction of the groups)."),
            paragraph("The onset test (rlaif/train/rl/hacking.py): trailing means over w steps; onset = the first of "
                      "m consecutive steps where the smoothed proxy rose over the last window by more than z "
                      "standard errors of its step means while the smoothed gold did not rise at all. "
                      f"Here w = {hacking['test']['window']}, z = {hacking['test']['z']}, "
                      f"m = {hacking['test']['patience']}.", note=True)],
            intro="A gold reward beside the proxy shows when the policy starts to please the proxy rather than do "
                  "what is wanted."))
    return render_page("rlaif training run", sections, subtitle=str(result.get("out_dir", "")))


def write_training_page(out: Path) -> Path | None:
    """OUT/training.html from OUT/metrics.jsonl and OUT/train_result.json (None when the run wrote neither)."""
    out = Path(out)
    if not (out / "metrics.jsonl").exists() or not (out / "train_result.json").exists():
        return None
    rows = [obj for _, obj in iter_json_lines(out / "metrics.jsonl")]
    return write_text(out / "training.html", render_training_html(rows, read_json_file(out / "train_result.json")))
