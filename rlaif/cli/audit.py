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
) -> None:
    """Audit judges and labelers: position and length bias, self-preference, accuracy, agreement."""
    from rlaif.audit import audit_labels, read_gold
    from rlaif.errors import InputError
    from rlaif.records import read_labels, write_json, write_text
    from rlaif.report.audit_page import render_audit_html, render_audit_md

    rows, duplicates = read_labels(labels)
    if not rows:
        raise InputError(labels, None, "the file holds no labels",
                         "pass a label JSONL file (`rlaif label` or `rlaif convert` output) with at least one line")
    warn(duplicates.warning())
    gold_arg, gold_labels = gold, []
    if gold is not None and Path(gold).is_file():
        gold_labels = read_gold(gold)
        gold_arg = gold_labels
    result = audit_labels(rows, gold_arg, rounds=bootstrap, seed=seed, length_margin=length_margin)
    if gold_labels:
        result["gold"]["source"] = f"file:{gold}"
    html = render_audit_html(result, rows, gold_labels)
    md = render_audit_md(result)
    write_json(out / "audit.json", result)
    write_text(out / "audit.md", md)
    write_text(out / "audit.html", html)
    typer.echo(f"audited {result['n_raters']} raters on {result['n_items']} items -> {out}/audit.json, "
               "audit.md, audit.html")


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

    from rlaif.elo import leaderboard, leaderboard_csv, parse_anchor, read_battles
    from rlaif.progress import stderr_console
    from rlaif.records import write_json, write_text
    from rlaif.report.elo_page import leaderboard_svg, render_elo_html

    with Progress(transient=True, console=stderr_console()) as bar:
        task = bar.add_task("bootstrap", total=1.0)
        battle_file = read_battles(battles)
        board = leaderboard(battle_file, rounds=bootstrap, seed=seed, anchor=parse_anchor(anchor),
                            method="elo" if online else "bt", k=k, style=style_control,
                            progress=lambda f: bar.update(task, completed=f))
    warn(battle_file.duplicates.warning() if battle_file.duplicates else None)
    if not board["comparison_graph_connected"]:
        typer.secho("warning: the models fall into groups that never met; ratings across groups are not "
                    "comparable", err=True, fg="yellow")
    write_json(out / "leaderboard.json", board)
    write_text(out / "leaderboard.csv", leaderboard_csv(board))
    write_text(out / "leaderboard.svg", leaderboard_svg(board))
    write_text(out / "leaderboard.html", render_elo_html(board))
    top = board["ratings"][0]
    typer.echo(f"{board['n_models']} models, {board['n_battles']} battles; top: {top['model']} "
               f"({top['rating']:.1f}) -> {out}/leaderboard.json, .csv, .svg, .html")


@app.command()
def convert(
    inputs: list[Path] = typer.Argument(..., help="files in one of the formats below", callback=input_file),
    out: Path = typer.Option(..., "-o", "--out", help="output label JSONL", callback=output_file),
    fmt: str = typer.Option("auto", "--format", "-f", help="auto, pandalm, llmbar, arena, mt-bench, alpaca-eval; "
                            "human annotations: csv (= annotations), label-studio, argilla, prodigy"),
    mapping: list[str] = typer.Option(None, "--map", help="annotations: rename a column, data key or question, "
                                      "SOURCE=NAME (e.g. worker_id=annotator, verdict=choice)"),
    values: list[str] = typer.Option(None, "--values", help="annotations: a choice spelling, SPELLING=a|b|tie"
                                     "[:STRENGTH] (e.g. a-is-better=a:clear); a = the response shown first"),
    annotators: Path = typer.Option(None, "--annotators", help="annotations: annotators.csv (`annotator` plus any "
                                    "columns) checked against the labels' annotators", callback=input_file),
) -> None:
    """Convert PandaLM, LLMBar, Chatbot Arena, MT-Bench or AlpacaEval judgments, or human annotation exports
    (canonical CSV, Label Studio, Argilla, Prodigy), into label JSONL."""
    from rlaif.convert import ANNOTATION_FORMATS
    from rlaif.convert import convert as run_convert
    from rlaif.records import write_jsonl

    if fmt not in ANNOTATION_FORMATS:
        if mapping or values or annotators:
            from rlaif.errors import ConfigError

            raise ConfigError("--map, --values and --annotators read human annotation exports. "
                              "Fix: add -f csv, annotations, label-studio, argilla or prodigy, or drop them")
        labels = run_convert(fmt, list(inputs))
        write_jsonl(out, labels)
        typer.echo(f"{len(labels)} labels by {len({lb.rater for lb in labels})} raters -> {out}")
        return
    from rlaif.annotations import import_annotations, read_annotators

    known = read_annotators(annotators) if annotators else None  # checked before anything is written
    result = import_annotations(fmt, list(inputs), mapping, values)
    write_jsonl(out, result.labels)
    typer.echo(f"{result.summary()} -> {out}")
    if known is not None:
        unknown = known.unknown(lb.rater for lb in result.labels)
        warn(f"{len(unknown)} annotator(s) not in {annotators}: {', '.join(unknown[:10])}"
             f"{' ...' if len(unknown) > 10 else ''}" if unknown else None)
