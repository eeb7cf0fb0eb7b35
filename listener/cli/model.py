"""Commands about the sentiment model: `score` (texts given on the command line) and `model eval`
(its quality on labelled data: a file, or the team's corrections)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from listener import terminal
from listener.cli.context import load, model_config, model_factory, open_store
from listener.cli.group import cli
from listener.cli.output import echo_json_lines, json_option


@cli.command()
@click.argument("texts", nargs=-1, required=True)
@json_option("One JSON object per text.")
@click.pass_context
def score(ctx: click.Context, texts: tuple[str, ...], as_json: bool) -> None:
    """Score the sentiment of TEXTS with the configured model."""
    model = model_factory(model_config(ctx))()
    results = model.score(list(texts))
    if as_json:
        echo_json_lines({"text": text, "sentiment": s.label, "p_negative": round(s.p_negative, 4),
                         "p_neutral": round(s.p_neutral, 4), "p_positive": round(s.p_positive, 4),
                         "sentiment_score": round(s.score, 4), "model": model.name} for text, s in zip(texts, results))
        return
    table = Table("sentiment", "score", "neg", "neu", "pos", "text", title=f"model: {model.name}")
    for text, s in zip(texts, results):
        table.add_row(s.label, f"{s.score:+.2f}", f"{s.p_negative:.2f}", f"{s.p_neutral:.2f}", f"{s.p_positive:.2f}", text)
    terminal.console().print(table)


@cli.group()
def model() -> None:
    """The sentiment model: evaluate it on labelled data."""


@model.command("eval")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--corrections", "on_corrections", is_flag=True,
              help="Evaluate on the team's sentiment corrections in the database instead of a file.")
@click.option("--model", "model_name", help="A model name or folder instead of the configured one.")
@json_option("Print one JSON object.")
@click.pass_context
def model_eval(ctx: click.Context, file: Path | None, on_corrections: bool, model_name: str | None,
               as_json: bool) -> None:
    """Evaluate the model on FILE.tsv (columns text, label 0/1/2, optional language), or on the team's
    corrected labels (--corrections).

    Prints macro-averaged recall (TweetEval's metric), macro-F1, accuracy, per-class recall and the
    confusion matrix, overall and per language.
    """
    from dataclasses import replace

    from listener.models.data import read_tsv
    from listener.models.metrics import evaluate

    if (file is None) == (not on_corrections):
        raise click.ClickException("give either FILE.tsv or --corrections")
    model_cfg = model_config(ctx)
    if model_name:
        model_cfg = replace(model_cfg, name=model_name)
    if on_corrections:
        from listener.tools.corrections import evaluate_on_corrections

        with open_store(load(ctx)) as store:
            result = evaluate_on_corrections(store, model_factory(model_cfg))
    else:
        result = evaluate(model_factory(model_cfg)(), read_tsv(file))
    if as_json:
        click.echo(json.dumps(result))
        return
    console = terminal.console(min_width=120)
    groups = [("all", result)] + list(result.get("by_language", {}).items())
    table = Table("subset", "n", "macro recall", "macro F1", "accuracy", "recall neg", "recall neu", "recall pos",
                  title=f"{file.name if file else 'the corrections'}: model {result['model']}")
    for name, r in groups:
        table.add_row(name, str(r["n"]), f"{r['macro_recall']:.3f}", f"{r['macro_f1']:.3f}", f"{r['accuracy']:.3f}",
                      *(f"{r['recall'][k]:.3f}" for k in ("negative", "neutral", "positive")))
    console.print(table)
    matrix = Table("gold \\ predicted", "negative", "neutral", "positive", title="confusion matrix (all)")
    for label, row in zip(("negative", "neutral", "positive"), result["confusion"]):
        matrix.add_row(label, *map(str, row))
    console.print(matrix)
