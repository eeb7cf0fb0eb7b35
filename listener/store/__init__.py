"""The mention database: the only package that speaks SQL.

- `types`: what it takes and gives (MentionRow, SourceHealth, HourCounts, ...) and `iso`, the one
  time format of the database;
- `migrations`: the schema, including the triggers that keep the hourly rollups;
- `sqlite`: `Store`, the SQLite engine (one file in WAL mode);
- `readonly`: user SQL, read-only and time-limited.

Tables and views are documented in the README and stable for users' SQL.
"""

from listener.store.migrations import MIGRATIONS
from listener.store.readonly import QueryResult, check_select, run_readonly
from listener.store.sqlite import BUSY_TIMEOUT_MS, Store
from listener.store.types import Counts, HourCounts, MentionRow, SaveResult, SourceHealth, iso, parse_iso

__all__ = ["Store", "MentionRow", "SaveResult", "SourceHealth", "HourCounts", "Counts", "iso", "parse_iso",
           "run_readonly", "check_select", "QueryResult", "MIGRATIONS", "BUSY_TIMEOUT_MS"]
