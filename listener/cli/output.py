"""How the commands print: JSON Lines or a table, user SQL's rows as a table, CSV or JSON, times
in the configured display zone, counted nouns. Everything shown goes through `listener.terminal`,
so text from outside stays data."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import click
from rich.table import Column, Table

from listener import terminal

if TYPE_CHECKING:
    from listener.config import Config

err_console = terminal.console(stderr=True)


def json_option(what: str) -> Callable:
    """The `--json` flag of a command (`as_json`), its help saying `what` it prints instead."""
    return click.option("--json", "as_json", is_flag=True, help=what)


def echo_json_lines(records: Iterable[dict]) -> None:
    """One JSON object a line, non-ASCII as itself."""
    for record in records:
        click.echo(json.dumps(record, ensure_ascii=False))


def output_options(command: Callable) -> Callable:
    """`--csv`, `--json` and `--table` (the default) as `fmt`, as sqlite-utils' `output_options`."""
    for option in reversed((click.option("--csv", "fmt", flag_value="csv", help="Output CSV."),
                            click.option("--json", "fmt", flag_value="json", help="Output a JSON array of objects."),
                            click.option("--table", "fmt", flag_value="table", default=True,
                                         help="Output a table (default)."))):
        command = option(command)
    return command


def echo_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> None:
    """Rows with their column names in `fmt` (csv, json: an array of objects, table)."""
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(columns)
        w.writerows(rows)
        click.echo(buf.getvalue(), nl=False)
    elif fmt == "json":
        click.echo(json.dumps([dict(zip(columns, r)) for r in rows], ensure_ascii=False, indent=2))
    else:
        table = Table(*(Column(c, overflow="fold") for c in columns))  # a link folds, never cut with "…"
        for r in rows:
            table.add_row(*["" if v is None else str(v) for v in r])
        terminal.console(min_width=120).print(table)


def shown_time(dt: datetime | str | None, config: Config, default: str = "-") -> str:
    """A time for people: in the display zone (`[digest] timezone`), named (`Mon 23 Nov 14:05 CET`)."""
    from listener.alerts import wording

    return wording.shown_time(dt, config.digest.tzinfo, default)


def counted(n: int, noun: str) -> str:
    """`1 mention`, `2 mentions`."""
    return f"{n} {noun}{'s' if n != 1 else ''}"
