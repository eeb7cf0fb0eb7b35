"""The mention database: the only package that speaks SQL.

- `interface`: `MentionStore`, what the pipeline, alerts, notify, digest and CLI ask of it, in
  their words, as small protocols grouped by who asks (and which answers the hourly rollups carry);
- `types`, `rows`: what it takes and gives (MentionRow, SourceHealth, HourCounts, typed rows, ...)
  and `iso`, the one time format of the database;
- `sqlite`: `SQLiteStore`, the first engine (one file in WAL mode), and users' read-only SQL;
- `migrations`: the SQLite schema, including the triggers that keep the hourly rollups;
- `queries`: ready SQL for common questions; `retention`: the daily prune job.

`Store` is `SQLiteStore`: `Store(path)` opens the database file at `path`, as every caller and
test did before there was an interface. `open_store` is where a caller that only knows the
configured database asks for one; an engine for another kind of location joins there.
Tables and views are documented in the README and stable for users' SQL.
"""

from pathlib import Path

from listener.store.interface import MentionStore
from listener.store.sqlite.migrations import MIGRATIONS
from listener.store.sqlite import BUSY_TIMEOUT_MS, SQLiteStore, check_select, run_readonly
from listener.store.types import (Counts, HourCounts, JobRun, MentionFilter, MentionRow, QueryResult, SaveResult, SourceHealth, iso,
                                  parse_iso)

Store = SQLiteStore


def open_store(path: str | Path) -> MentionStore:
    """The mention database at `path` (an SQLite file), created and migrated if need be."""
    return SQLiteStore(path)


__all__ = ["MentionStore", "Store", "SQLiteStore", "open_store", "MentionRow", "MentionFilter", "SaveResult", "SourceHealth",
           "HourCounts", "Counts", "JobRun", "QueryResult", "iso", "parse_iso", "run_readonly", "check_select",
           "MIGRATIONS", "BUSY_TIMEOUT_MS"]
