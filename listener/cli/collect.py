"""Commands that set listener up and bring mentions in: init, check-config, fetch, import, run
(the daemon), and sources (how each source is doing)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import click
from rich.table import Table

from listener import terminal
from listener.cli.context import config_path, load, model_factory, open_store
from listener.cli.group import cli
from listener.cli.output import counted, echo_json_lines, err_console, json_option, shown_time


@cli.command()
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@click.pass_context
def init(ctx: click.Context, force: bool) -> None:
    """Write a commented starter config.toml and create the database."""
    from listener.config import load_config, starter_config

    path = config_path(ctx)
    starter = starter_config()
    unedited = path.is_file() and path.read_text(encoding="utf-8", errors="replace") == starter
    if path.exists() and not force and not unedited:
        raise click.ClickException(f"{path} already exists and is not the unedited starter config (use --force to "
                                   f"overwrite it, or --config OTHER.toml to start another)")
    if not unedited:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(starter, encoding="utf-8")
    config = load_config(path)
    with open_store(config):
        pass
    click.echo(f"{'kept the starter' if unedited else 'wrote'} {path} and created {config.database.path}")
    click.echo("next: edit the topics and sources, then run `listener check-config` and `listener fetch`")


@cli.command("check-config")
@click.option("--dump", is_flag=True, help="Print the effective configuration (defaults filled in, secrets redacted).")
@click.pass_context
def check_config(ctx: click.Context, dump: bool) -> None:
    """Validate the configuration; report every problem with its path."""
    from listener.alerts import check_rules
    from listener.config import dump_config

    config = load(ctx)
    check_rules(config)
    if dump:
        click.echo(dump_config(config), nl=False)
        return
    click.echo(f"{config_path(ctx)}: OK ({len(config.topics)} topics, {len(config.sources)} sources, "
               f"{len(config.alerts)} alert rules)")


@cli.command()
@click.option("--source", "only", metavar="NAME", help="Fetch only this source, due or not.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]),
              help="Backfill from this UTC date/time, where the source's API allows it.")
@click.option("--no-score", is_flag=True, help="Store mentions without scoring them.")
@click.pass_context
def fetch(ctx: click.Context, only: str | None, since: datetime | None, no_score: bool) -> None:
    """Run one cycle: fetch due sources, match topics, store, score sentiment.

    Exits 1 when a source failed (everything else is still stored).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from listener.pipeline import run_cycle

    config = load(ctx)
    if only is not None and only not in {s.name for s in config.sources}:
        raise click.ClickException(f"no source named {only!r} in {config_path(ctx)} "
                                   f"(known: {', '.join(s.name for s in config.sources) or 'none'})")
    with open_store(config) as store:
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            console=err_console, transient=True, disable=not err_console.is_terminal)
        with progress:
            task = progress.add_task("fetching", total=1 if only else len([s for s in config.sources if s.enabled]))

            def on_outcome(o):
                progress.advance(task)
                if o.ok:
                    note = "not modified" if o.not_modified else f"{o.items} items, {o.new} new"
                    err_console.print(f"  {o.source}: {note}")
                else:
                    err_console.print(terminal.styled(f"  {o.source}: {o.error}", "red"))

            def on_scored(n):
                progress.update(task, description="scoring")

            report = run_cycle(config, store, None if no_score else model_factory(config.model),
                               only=only, since=since.replace(tzinfo=timezone.utc) if since else None,
                               on_outcome=on_outcome, on_scored=on_scored)
        waiting = store.source_health() if not report.outcomes and only is None else {}
    if not report.outcomes and only is None:
        _explain_nothing_due(config, waiting, report)
        return
    click.echo(report.summary())
    if report.failed:
        raise click.ClickException(f"{len(report.failed)} source(s) failed: " +
                                   "; ".join(f"{o.source}: {o.error}" for o in report.failed))


def _explain_nothing_due(config, health: dict, report) -> None:
    """`listener fetch` with no source due: when each one is, why (backed off after failures), and
    how to fetch one now. Exits 1 while a source is failing."""
    enabled = [s for s in config.sources if s.enabled]
    if not enabled:
        raise click.ClickException(f"no enabled sources in {config.path or 'the config'}: add a [[sources]] table")
    click.echo(f"no source was due; {report.scored} scored. Next checks:")
    failing = []
    for src in enabled:
        h = health.get(src.name)
        when = shown_time(h.next_check_at if h else None, config, "now")
        if h and h.consecutive_errors:
            failing.append(src.name)
            click.echo(terminal.plain(f"  {src.name}: backed off until {when} after {counted(h.consecutive_errors, 'failure')}"
                                      f" in a row (last: {h.last_error})"))
        else:
            click.echo(f"  {src.name}: {when}")
    click.echo("`listener fetch --source NAME` fetches one now, due or not.")
    if failing:
        raise SystemExit(1)


@cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--no-score", is_flag=True, help="Store mentions without scoring them.")
@click.pass_context
def import_(ctx: click.Context, file: Path, no_score: bool) -> None:
    """Load a JSON Lines file (the export/replay format) into the database: matched, deduplicated, scored.

    A bad line is reported with its line number and field and left out; the others are imported
    (exit 1 when any line was bad).
    """
    from listener.tools.importer import import_jsonl

    config = load(ctx)
    with open_store(config) as store:
        report = import_jsonl(config, store, file, None if no_score else model_factory(config.model),
                              datetime.now(timezone.utc), on_error=lambda e: click.echo(terminal.plain(e), err=True))
    click.echo(report.summary())
    if report.bad:
        raise SystemExit(1)


@cli.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run the daemon: fetch on schedule, score, evaluate alert rules every minute, send email."""
    from listener.alerts import check_rules
    from listener.daemon import Daemon

    config = load(ctx)
    check_rules(config)
    raise SystemExit(Daemon(config, model_factory(config.model), log=terminal.log_line).run())


@cli.command()
@json_option("One JSON object per source.")
@click.pass_context
def sources(ctx: click.Context, as_json: bool) -> None:
    """Health of every source: last success, last error, errors in a row, next check, mentions."""
    from listener.status import source_statuses

    config = load(ctx)
    with open_store(config) as store:
        rows = source_statuses(config, store)
    if as_json:
        echo_json_lines(r.as_json() for r in rows)
        return
    workers = any(r.worker for r in rows)  # fetched by a daemon (`listener run`): which worker, last
    table = Table("source", "kind", "last success", "errors", "next check", "mentions", *(["worker"] if workers else []),
                  title=f"sources (times in {config.digest.timezone})")
    for r in rows:
        errors = str(r.consecutive_errors)
        table.add_row(r.name + ("" if r.enabled else " (disabled)"), r.kind, shown_time(r.last_success_at, config, "never"),
                      terminal.styled(errors, "red") if r.consecutive_errors else errors,
                      shown_time(r.next_check_at, config, "now"), str(r.mentions), *([r.worker or ""] if workers else []))
    out = terminal.console()
    out.print(table)
    for r in rows:  # errors in full, on their own lines: they are what to act on
        if r.consecutive_errors:
            out.print(terminal.styled(f"{r.name}: {r.consecutive_errors} failed in a row, last at "
                                      f"{shown_time(r.last_error_at, config)}: {r.last_error}", "red"))
