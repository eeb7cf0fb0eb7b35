"""Users' SQL on the SQLite file (`listener sql`, `sql` alert rules): read-only, time-limited, no
files created, no gigabyte values; and a check that a rule's SQL compiles against the schema."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import sqlite_utils

from listener.errors import StoreError
from listener.store.sqlite.migrations import MIGRATIONS
from listener.store.sqlite.connection import BUSY_TIMEOUT_MS, SQLiteBase
from listener.store.types import QueryResult

READONLY_CACHE_KB = 16_384  # page cache of a read-only query
READONLY_MAX_VALUE = 10_000_000  # bytes: the longest string or blob a read-only query may make
# PRAGMAs that only describe the schema: the ones read-only SQL may use (without setting anything).
READONLY_PRAGMAS = frozenset({
    "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list",
    "collation_list", "function_list", "pragma_list", "compile_options", "user_version", "schema_version",
    "data_version", "page_count", "page_size", "freelist_count", "encoding",
})
_DENIED = {
    sqlite3.SQLITE_ATTACH: "ATTACH", sqlite3.SQLITE_DETACH: "DETACH",
    **{getattr(sqlite3, f"SQLITE_{a}"): a.replace("_", " ") for a in (
        "INSERT", "UPDATE", "DELETE", "CREATE_TABLE", "CREATE_INDEX", "CREATE_VIEW", "CREATE_TRIGGER",
        "CREATE_TEMP_TABLE", "CREATE_TEMP_INDEX", "CREATE_TEMP_VIEW", "CREATE_TEMP_TRIGGER", "DROP_TABLE",
        "DROP_INDEX", "DROP_VIEW", "DROP_TRIGGER", "DROP_TEMP_TABLE", "DROP_TEMP_INDEX", "DROP_TEMP_VIEW",
        "DROP_TEMP_TRIGGER", "ALTER_TABLE", "REINDEX", "ANALYZE", "CREATE_VTABLE", "DROP_VTABLE")},
}


def _readonly_authorizer(denied: list[str], action: int, arg1, arg2, db_name, trigger) -> int:
    """SQLite's authorizer for user SQL: reads of the main database only. ATTACH (which creates
    files, also as `file:...?mode=rwc` and inside VACUUM INTO), writes, and PRAGMAs that set
    something are refused before they run."""
    name = _DENIED.get(action)
    if action == sqlite3.SQLITE_UPDATE and arg1 in ("sqlite_master", "sqlite_temp_master") and trigger is None:
        name = None  # SQLite asks this when a virtual table (FTS5, json_each, pragma_*) is first used
    if name is None and action == sqlite3.SQLITE_PRAGMA:
        pragma = (arg1 or "").lower()
        if pragma not in READONLY_PRAGMAS or (arg2 is not None and pragma not in (
                "table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list", "table_list")):
            name = f"PRAGMA {pragma}"
    if name is None and action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in ("load_extension", "readfile",
                                                                                        "writefile", "edit"):
        name = f"the function {arg2}"
    if name is None:
        return sqlite3.SQLITE_OK
    denied.append(name)
    return sqlite3.SQLITE_DENY


def check_select(sql: str, params: Sequence[str] = ()) -> str | None:
    """Why `sql` would fail on the mention database (compiled against the real schema), or None."""
    conn = sqlite3.connect(":memory:")
    try:
        db = sqlite_utils.Database(conn)
        for _, fn in MIGRATIONS:
            fn(db)
        conn.execute("PRAGMA query_only = 1")
        conn.execute("EXPLAIN " + sql, {p: None for p in params})
        return None
    except (sqlite3.Error, sqlite3.Warning) as exc:
        return str(exc)
    finally:
        conn.close()


def run_readonly(path: str | Path, sql: str, params: Mapping[str, Any] | Sequence[Any] | None = None, *,
                 time_limit: float = 30.0, max_rows: int | None = None) -> QueryResult:
    """Run user SQL on the database file at `path` on a read-only connection (mode=ro, query_only)
    under a time limit: StoreError when the file does not exist (it is never created here)."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"database {path} does not exist (run `listener init` or `listener fetch` first)")
    conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute("PRAGMA query_only = 1")
        conn.execute(f"PRAGMA cache_size = -{READONLY_CACHE_KB}")
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, READONLY_MAX_VALUE)  # no gigabyte strings or blobs
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        denied: list[str] = []
        conn.set_authorizer(lambda *args: _readonly_authorizer(denied, *args))
        deadline = time.monotonic() + time_limit
        conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10_000)
        try:
            cur = conn.execute(sql, params or ())
            columns = [c[0] for c in cur.description] if cur.description else []
            rows = cur.fetchmany(max_rows) if max_rows else cur.fetchall()
        except sqlite3.DatabaseError as exc:
            if denied:
                raise StoreError(f"{denied[0]} is not allowed: the database is read-only here (SELECT queries on "
                                 "the mention database only: no writes, no ATTACH, no PRAGMA that sets anything)") from exc
            if "too big" in str(exc):
                raise StoreError(f"SQL error: {exc} (a value may be at most {READONLY_MAX_VALUE:,} bytes here)") from exc
            if not isinstance(exc, sqlite3.OperationalError):
                raise StoreError(f"SQL error: {exc}") from exc
            if "interrupted" in str(exc):
                raise StoreError(f"query stopped after the {time_limit:g}s time limit") from exc
            if "readonly" in str(exc) or "read-only" in str(exc) or "attempt to write" in str(exc):
                raise StoreError("the database is opened read-only here: only SELECT queries are allowed") from exc
            raise StoreError(f"SQL error: {exc}") from exc
        return QueryResult(columns, rows)
    finally:
        conn.close()


class SQLiteReadOnly(SQLiteBase):
    """`interface.ReadOnlySQL` on SQLite: a second, read-only connection to the same file."""

    def read_only_query(self, sql: str, params: Mapping[str, Any] | Sequence[Any] | None = None, *,
                        time_limit: float = 30.0, max_rows: int | None = None) -> QueryResult:
        return run_readonly(self.path, sql, params, time_limit=time_limit, max_rows=max_rows)
