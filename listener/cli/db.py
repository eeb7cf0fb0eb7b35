"""Commands about the database itself: `db copy` (the whole database to another engine, and back)."""

from __future__ import annotations

import click

from listener import terminal
from listener.cli.context import load, open_store
from listener.cli.group import cli
from listener.errors import redact_url


@cli.group()
def db() -> None:
    """The mention database itself."""


@db.command("copy")
@click.option("--to", "target", required=True, metavar="LOCATION",
              help="A new, empty database: a postgresql://user@host:5432/name URL (password in PGPASSWORD) or an SQLite file.")
@click.pass_context
def copy(ctx: click.Context, target: str) -> None:
    """Copy the configured database, every table with its ids, into a new one (SQLite to PostgreSQL,
    and back); each table's rows are counted on both sides at the end. Stop `listener run` first.
    Then point `[database]` at the new one."""
    from listener.store import is_postgres, open_store as open_location
    from listener.store.transfer import copy_database

    config = load(ctx)
    where = redact_url(target) if is_postgres(target) else target
    with open_store(config) as source, open_location(target) as destination:
        last = {}

        def progress(table: str, rows: int) -> None:
            if rows - last.get(table, 0) >= 50_000:
                last[table] = rows
                click.echo(terminal.plain(f"  {table}: {rows:,} rows"))

        report = copy_database(source, destination, progress=progress)
    for table, rows in report.rows.items():
        click.echo(f"  {table}: {rows:,}")
    click.echo(terminal.plain(f"{report.summary()} into {where}"))
