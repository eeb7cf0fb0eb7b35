"""The `listener` command line: thin commands that parse their arguments, call one library
function and print.

- `group`: the `listener` group, its global `--config`, errors as one-line messages;
- `context`: what a command works with (the config, its store, the model loader);
- `output`: JSON Lines or tables, CSV/JSON/table for SQL rows, times in the display zone;
- `collect`: init, check-config, fetch, import, run, sources;
- `look`: search, sql, digest, export;
- `alerts`: alerts, alerts test;
- `model`: score, model eval;
- `corrections`: corrections, corrections export;
- `db`: db copy (to another engine, and back);
- `demo`: demo;
- `web`: serve (the dashboard), user-hash.
"""

from __future__ import annotations

from listener.cli import alerts, collect, corrections, db, demo, look, model, web
from listener.cli.group import cli, take_config_everywhere

COMMAND_MODULES = (collect, look, alerts, model, corrections, db, demo, web)  # importing each registers its commands on `cli`
take_config_everywhere(cli)

__all__ = ["cli", "main"]


def main() -> None:  # pragma: no cover
    cli(prog_name="listener")
