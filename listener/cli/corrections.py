"""Commands about the team's corrections of the model: `corrections` (the current ones) and
`corrections export` (the sentiment ones as a training TSV)."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import click
from rich.table import Column, Table

from listener import terminal
from listener.cli.context import load, open_store
from listener.cli.group import cli
from listener.cli.output import counted, echo_json_lines, json_option, shown_time
from listener.sources.text import clip

SINCE = click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"])


def _utc(since: datetime | None) -> datetime | None:
    return since.replace(tzinfo=timezone.utc) if since else None


@cli.group(invoke_without_command=True)
@click.option("--since", type=SINCE, help="Only corrections made since (UTC).")
@json_option("One JSON object per correction.")
@click.pass_context
def corrections(ctx: click.Context, since: datetime | None, as_json: bool) -> None:
    """The team's corrections of the model, oldest first: sentiments set right and mentions not relevant."""
    if ctx.invoked_subcommand is not None:
        return
    config = load(ctx)
    with open_store(config) as store:
        rows = store.corrections(_utc(since))
    if as_json:
        echo_json_lines(rows)
        return
    table = Table("at", "by", "mention", "correction", "model said", Column("text", overflow="fold"),
                  title=f"corrections (times in {config.digest.timezone})")
    for c in rows:
        what = c["label"] if c["label"] != "not relevant" else f"not relevant to {c['topic'] or 'any topic'}"
        text = (c["title"] + ": " if c["title"] and c["title"] not in c["text"] else "") + c["text"]
        table.add_row(shown_time(c["corrected_at"], config), c["corrected_by"], str(c["mention_id"]), what,
                      c["model_sentiment"] or "not scored", clip(text))
    terminal.console(min_width=120).print(table)
    click.echo(counted(len(rows), "correction"), err=True)


@corrections.command("export")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write to this file instead of standard output.")
@click.option("--since", type=SINCE, help="Only corrections made since (UTC).")
@click.pass_context
def corrections_export(ctx: click.Context, out_file: Path | None, since: datetime | None) -> None:
    """Write the sentiment corrections as TSV in the training format (text, label 0/1/2, language).

    The file is what `listener model eval FILE.tsv` reads, in the format of the bundled model's training data.
    """
    from listener.tools.corrections import export_corrections

    config = load(ctx)
    with open_store(config) as store:
        if out_file is None:
            export_corrections(store, sys.stdout, _utc(since))
            return
        with out_file.open("w", encoding="utf-8", newline="") as out:
            n = export_corrections(store, out, _utc(since))
    click.echo(f"{counted(n, 'labelled example')} written to {out_file}", err=True)
