"""`rlaif audit`, `elo`, `convert`: judges audited, models ranked, published judgments read."""
from __future__ import annotations

from pathlib import Path

import typer

from rlaif.cli.entry import app, warn
from rlaif.cli.paths import file_or_name, input_file, output_dir, output_file


# --- audit: audit, elo, convert ------------------------------------------------------------------
@app.command()
def audit(
    labels: Path = typer.Argument(..., help="label JSONL (rlaif label output, or `rlaif convert` output)",
                                  callback=input_file),
    out: Path = typer.Option(..., "-o", "--out", help="output directory: audit.json, audit.md, audit.html",
                             callback=output_dir),
    gold: str = typer.Option(None, "--gold", help="a rater name in LABELS whose verdicts are gold, or a gold "
                             "label file (JSONL lines with item and winner)", callback=file_or_name),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="bootstrap rounds for the 95% intervals "
                                  "(0: no intervals)"),
    seed: int = typer.Option(0, "--seed", help="bootstrap seed"),
    length_margin: int = typer.Option(30, "--length-margin", min=0, help="characters two responses must differ "
                                      "by to count in longer_preferred_rate"),
    annotators: Path = typer.Option(None, "--annotators", help="human labelers: annotators.csv (`annotator` plus "
                                    "any columns: region, vendor, ...) for group and coverage analyses",
                                    callback=input_file),
    labelers: bool = typer.Option(False, "--labelers", help="audit the raters as human labelers (automatic with "
                                  "--annotators or labels converted from an annotation tool)"),
    window: str = typer.Option("50", "--window", help="human labelers: drift windows, a count of annotations "
                               "per labeler, or day / week"),
    topic_field: str = typer.Option("topic", "--topic-field", help="human labelers: the label field that names "
                                    "an item's topic (topic, category, prompt_id, model_a, model_b, judge)"),
    skill_model: str = typer.Option("one-coin", "--skill-model", help="human labelers: crowd-kit latent-class "
                                    "model for skill (dawid-skene, one-coin, glad, mace) or none"),
) -> None:
    """Audit judges and labelers: position and length bias, self-preference, accuracy, agreement; for human
    labelers also drift, coverage, groups, calibration and a reliability-weighted consensus."""
    from rlaif.audit import run_audit
    from rlaif.errors import InputError
    from rlaif.labelers.table import looks_human
    from rlaif.records import read_labels

    is_file = gold is not None and Path(gold).is_file()
    if labelers or annotators is not None or looks_human(labels):
        _audit_labelers(labels, out, gold, is_file, annotators, bootstrap=bootstrap, seed=seed,
                        length_margin=length_margin, window=window, topic_field=topic_field, skill_model=skill_model)
        return
    rows, duplicates = read_labels(labels)
    if not rows:
        raise InputError(labels, None, "the file holds no labels", _NO_LABELS)
    warn(duplicates.warning())
    from rlaif.judge.probe_store import master_key_flags

    flags = master_key_flags([r.rater for r in rows])
    run = run_audit(rows, out, None if is_file else gold, gold_file=gold if is_file else None, rounds=bootstrap,
                    seed=seed, length_margin=length_margin, probe_flags=flags)
    typer.echo(run.summary)
    for f in flags:
        warn(f["message"])


_NO_LABELS = "pass a label JSONL file (`rlaif label` or `rlaif convert` output) with at least one line"


def _audit_labelers(labels: Path, out: Path, gold: str | None, is_file: bool, annotators: Path | None,
                    **flags) -> None:
    from rlaif.annotations.annotators import read_annotators
    from rlaif.audit import read_gold
    from rlaif.errors import InputError
    from rlaif.labelers.audit import run_labeler_audit
    from rlaif.labelers.settings import LabelerAuditSettings
    from rlaif.labelers.table import LabelTable

    window = flags.pop("window")
    skill = flags.pop("skill_model")
    settings = LabelerAuditSettings(rounds=flags["bootstrap"], seed=flags["seed"],
                                    window=int(window) if window.isdigit() else window,
                                    topic_field=flags["topic_field"], skill_model=None if skill == "none" else skill,
                                    length_margin=flags["length_margin"])
    people = read_annotators(annotators) if annotators is not None else None
    gold_labels = read_gold(gold) if is_file else ()
    table = LabelTable.read(labels, topic_field=settings.topic_field, length_margin=settings.length_margin)
    if not len(table):
        raise InputError(labels, None, "the file holds no labels", _NO_LABELS)
    warn(table.duplicates.warning())
    run = run_labeler_audit(table, out, annotators=people, gold=None if is_file else gold, gold_labels=gold_labels,
                            settings=settings)
    typer.echo(run.summary)
    for f in run.result["findings"]:
        if f["level"] == "act":
            warn(f["text"])


@app.command()
def elo(
    battles: Path = typer.Argument(..., help="label JSONL or Chatbot-Arena-style battles (JSONL or JSON list)",
                                   callback=input_file),
    out: Path = typer.Option(..., "-o", "--out", help="output directory: leaderboard.json/.csv/.svg/.html",
                             callback=output_dir),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="bootstrap rounds (0: no intervals)"),
    anchor: str = typer.Option(None, "--anchor", help="MODEL=RATING: shift ratings so MODEL has RATING"),
    style_control: str = typer.Option(None, "--style-control", help="'length': add a length-difference "
                                      "covariate to the Bradley–Terry regression"),
    online: bool = typer.Option(False, "--online", help="online Elo (sequential updates) instead of "
                                "Bradley–Terry"),
    k: float = typer.Option(4.0, "--k", min=0.0, help="K-factor for --online"),
    seed: int = typer.Option(0, "--seed", help="bootstrap seed"),
) -> None:
    """Rank models: Bradley–Terry ratings with bootstrap intervals and CI-aware ranks."""
    from rich.progress import Progress

    from rlaif.elo import parse_anchor, read_battles, run_leaderboard
    from rlaif.progress import stderr_console

    with Progress(transient=True, console=stderr_console()) as bar:
        task = bar.add_task("bootstrap", total=1.0)
        battle_file = read_battles(battles)
        run = run_leaderboard(battle_file, out, rounds=bootstrap, seed=seed, anchor=parse_anchor(anchor),
                              method="elo" if online else "bt", k=k, style=style_control,
                              progress=lambda f: bar.update(task, completed=f))
    warn(battle_file.duplicates.warning() if battle_file.duplicates else None)
    if not run.board["comparison_graph_connected"]:
        typer.secho("warning: the models fall into groups that never met; ratings across groups are not "
                    "comparable", err=True, fg="yellow")
    typer.echo(run.summary)


@app.command()
def convert(
    inputs: list[Path] = typer.Argument(..., help="files in one of the formats below", callback=input_file),
    out: Path = typer.Option(..., "-o", "--out", help="output label JSONL", callback=output_file),
    fmt: str = typer.Option("auto", "--format", "-f", help="auto, pandalm, llmbar, arena, mt-bench, alpaca-eval; "
                            "reorient (rlaif labels: each item's labels turned to one model_a/model_b); "
                            "human annotations: csv (= annotations), label-studio, argilla, prodigy"),
    mapping: list[str] = typer.Option(None, "--map", help="annotations: rename a column, data key or question, "
                                      "SOURCE=NAME (e.g. worker_id=annotator, verdict=choice)"),
    values: list[str] = typer.Option(None, "--values", help="annotations: a choice spelling, SPELLING=a|b|tie"
                                     "[:STRENGTH] (e.g. a-is-better=a:clear); a = the response shown first"),
    annotators: Path = typer.Option(None, "--annotators", help="annotations: annotators.csv (`annotator` plus any "
                                    "columns) checked against the labels' annotators", callback=input_file),
) -> None:
    """Convert PandaLM, LLMBar, Chatbot Arena, MT-Bench or AlpacaEval judgments, or human annotation exports
    (canonical CSV, Label Studio, Argilla, Prodigy), into label JSONL, or re-orient rlaif labels."""
    from rlaif.convert import run_convert

    run = run_convert(fmt, list(inputs), out, mapping=mapping, values=values, annotators=annotators)
    typer.echo(run.summary)
    warn(run.warning)
