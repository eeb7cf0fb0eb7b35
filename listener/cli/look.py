"""Commands that look at what is stored: search, sql (users' own and ready queries), digest, and
export (mentions out as JSON Lines or CSV)."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

import click

from listener import terminal
from listener.cli.context import load, open_store
from listener.cli.group import cli
from listener.cli.output import counted, echo_json_lines, echo_rows, json_option, output_options, shown_time
from listener.sources.text import clip
from listener.tools.export import FORMATS


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("query", nargs=-1, required=True)
@click.option("--topic", help="Only mentions of this topic.")
@click.option("--limit", default=50, show_default=True, help="At most this many mentions, newest first.")
@json_option("One JSON object per mention.")
@click.pass_context
def search(ctx: click.Context, query: tuple[str, ...], topic: str | None, limit: int, as_json: bool) -> None:
    """Search stored mentions with the topic query syntax (words, "phrases", #tags, @handles, OR, -exclusions).

    The QUERY may start with an exclusion: listener search '-"we are hiring" acme'.
    """
    from listener.search import search_mentions

    config = load(ctx)
    with open_store(config) as store:
        rows = search_mentions(store, " ".join(query), topic=topic, limit=limit)
    if as_json:
        echo_json_lines(rows)
        return
    out = terminal.console()
    for r in rows:  # one block per mention: its link whole, on a line of its own
        head = f"{shown_time(r['published_at'], config)}  {r['source']}  {r['sentiment'] or 'not scored'}"
        out.print(terminal.styled(head + (f"  {r['author']}" if r["author"] else ""), "bold"))
        text = (r["title"] + ": " if r["title"] and r["title"] not in r["text"] else "") + r["text"]
        out.print("  " + clip(text))
        if r["url"]:
            out.print(terminal.styled("  " + r["url"], "cyan"), soft_wrap=True)
    click.echo(f"{counted(len(rows), 'mention')} (times in {config.digest.timezone})", err=True)


def _bindings(params: tuple[str, ...]) -> dict[str, str]:
    """`--param NAME=VALUE`s as {NAME: VALUE}."""
    bound = {}
    for p in params:
        name, sep, value = p.partition("=")
        if not sep or not name:
            raise click.ClickException(f"--param {p!r}: expected NAME=VALUE")
        bound[name] = value
    return bound


@cli.command()
@click.argument("sql", required=False)
@click.option("--query", "query_name", metavar="NAME", help="Run a ready query instead (see the README: angry-this-week, ...).")
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE", help="Bind :NAME in the query.")
@output_options
@click.option("--time-limit", default=30.0, show_default=True, help="Seconds before the query is stopped.")
@click.pass_context
def sql(ctx: click.Context, sql: str | None, query_name: str | None, params: tuple[str, ...], fmt: str,
        time_limit: float) -> None:
    """Run a read-only SQL query (or a ready one, --query NAME) on the mention database.

    SQLite's SQL on the database file, PostgreSQL's on a postgresql:// database; :now is bound to
    the current UTC time unless --param now=... is given.
    """
    from listener.store.queries import ready_query
    from listener.user_sql import run_user_sql

    if (sql is None) == (query_name is None):
        raise click.ClickException("give either SQL or --query NAME")
    config = load(ctx)
    if query_name is not None:
        try:
            sql = ready_query(query_name).for_location(config.database.location)
        except KeyError as exc:
            raise click.ClickException(exc.args[0]) from None
    result = run_user_sql(config.database.location, sql, _bindings(params), datetime.now(timezone.utc),
                          time_limit=time_limit)
    echo_rows(result.columns, result.rows, fmt)


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


@cli.command()
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="jsonl", show_default=True)
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), help="Only mentions published since (UTC).")
@click.option("--topic", help="Only mentions of this topic.")
@click.pass_context
def export(ctx: click.Context, fmt: str, since: datetime | None, topic: str | None) -> None:
    """Stream stored mentions out as JSON Lines (the replay format) or CSV."""
    from listener.tools.export import export_mentions

    config = load(ctx)
    with open_store(config) as store:
        export_mentions(store, sys.stdout, fmt, since=since.replace(tzinfo=timezone.utc) if since else None, topic=topic)
