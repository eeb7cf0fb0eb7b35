"""The mention database: the only package that speaks SQL.

- `interface`: `MentionStore`, what the pipeline, alerts, notify, digest and CLI ask of it, in
  their words, as small protocols grouped by who asks (and which answers the hourly rollups carry);
- `types`, `rows`: what it takes and gives (MentionRow, SourceHealth, HourCounts, typed rows, ...)
  and `iso`, the one time format of the database;
- `sqlite`: `SQLiteStore`, the first engine (one file in WAL mode), and users' read-only SQL;
- `migrations`: the SQLite schema, including the triggers that keep the hourly rollups;
- `queries`: ready SQL for common questions, in each engine's dialect; `retention`: the daily prune job.

`run_readonly` and `check_select` take users' SQL to a database by its location without opening it
as a store (`listener sql`, `check-config`): SQLite's dialect on a file, PostgreSQL's on a URL.

`Store` is `SQLiteStore` (both imported on first use): `Store(path)` opens the database file at `path`, as every caller and
test did before there was an interface. `open_store` is where a caller that only knows the
configured database asks for one: an SQLite file, or a PostgreSQL URL (`postgres`, the engine for
teams that outgrow one machine, partitioned by month, several workers on one database).
Tables and views are documented in the README and stable for users' SQL.
"""

from pathlib import Path
from typing import Any, Mapping, Sequence

from listener.store.interface import MentionStore
from listener.store.types import (Counts, Fetched, HourCounts, JobRun, MentionFilter, MentionRow, QueryResult, SaveResult, SourceHealth, iso,
                                  parse_iso)

_SQLITE_NAMES = {"Store": "SQLiteStore", "SQLiteStore": "SQLiteStore", "BUSY_TIMEOUT_MS": "BUSY_TIMEOUT_MS"}


def __getattr__(name: str) -> Any:
    """The SQLite engine's names, imported when first asked for: a process that only needs the
    store's types (a parse process making rows) does not load an engine (sqlite-utils and what it
    imports: a fifth of a second)."""
    if name in _SQLITE_NAMES:
        from listener.store import sqlite

        return getattr(sqlite, _SQLITE_NAMES[name])
    if name == "MIGRATIONS":
        from listener.store.sqlite.migrations import MIGRATIONS

        return MIGRATIONS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def is_postgres(location: str | Path) -> bool:
    """Whether `location` names a PostgreSQL database (a postgresql:// URL) rather than an SQLite file."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def open_store(location: str | Path) -> MentionStore:
    """The mention database at `location` (`DatabaseConfig.location`): a postgresql:// URL opens
    the PostgreSQL engine, anything else is an SQLite file. Created and migrated if need be."""
    if is_postgres(location):
        from listener.store.postgres import PostgresStore

        return PostgresStore(str(location))
    from listener.store.sqlite import SQLiteStore

    return SQLiteStore(location)


def run_readonly(location: str | Path, sql: str, params: Mapping[str, Any] | Sequence[Any] | None = None, *,
                 time_limit: float = 30.0, max_rows: int | None = None) -> QueryResult:
    """Run users' SQL read-only and time-limited on the database at `location` (`listener sql`),
    without opening it as a store: in SQLite's dialect on a file, in PostgreSQL's on a URL."""
    if is_postgres(location):
        from listener.store.postgres import readonly

        return readonly.run_readonly(str(location), sql, params, time_limit=time_limit, max_rows=max_rows)
    from listener.store.sqlite import run_readonly as sqlite_readonly

    return sqlite_readonly(location, sql, params, time_limit=time_limit, max_rows=max_rows)


def check_select(sql: str, params: Sequence[str] = (), *, location: str | Path | None = None) -> str | None:
    """Why `sql` would fail as read-only SQL on the database at `location` (None: an SQLite file), or
    None. SQLite's is compiled against the schema in memory; PostgreSQL's on the server itself."""
    if location is not None and is_postgres(location):
        from listener.store.postgres import readonly

        return readonly.check_select(str(location), sql, params)
    from listener.store.sqlite import check_select as sqlite_check

    return sqlite_check(sql, params)


__all__ = ["MentionStore", "Store", "SQLiteStore", "open_store", "is_postgres", "MentionRow", "MentionFilter", "Fetched", "SaveResult", "SourceHealth",
           "HourCounts", "Counts", "JobRun", "QueryResult", "iso", "parse_iso", "run_readonly", "check_select",
           "MIGRATIONS", "BUSY_TIMEOUT_MS"]
