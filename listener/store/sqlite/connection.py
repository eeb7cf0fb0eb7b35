"""The SQLite engine's connection: one file in WAL mode, opened and migrated, its transactions, and
rows as dicts. Every part of the engine builds on `SQLiteBase`."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

import sqlite_utils

from listener.errors import StoreError
from listener.store.sqlite.migrations import MIGRATIONS
from listener.store.types import iso

BUSY_TIMEOUT_MS = 10_000
# Pages the write-ahead log may hold before a commit copies them into the file (SQLite's default: 1000).
# A fetch commits a few pages at a time; with 1000, every few hundred fetches paid a checkpoint and its
# two fsyncs, half of storing them. 10,000 pages (40 MB) checkpoint a tenth as often.
WAL_PAGES = 10_000


MIN_SQLITE = (3, 33, 0)

class SQLiteBase:
    """An open mention database file (migrated on open). `conn`, `path` and `transaction()` are the
    engine's own: nothing outside `listener.store` uses them (SQLite-specific tests do)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if sqlite3.sqlite_version_info < MIN_SQLITE:  # the rollup triggers use UPDATE ... FROM (3.33)
            raise StoreError(f"listener needs SQLite {'.'.join(map(str, MIN_SQLITE))} or newer; this Python has "
                             f"{sqlite3.sqlite_version} (use a Python built with a newer SQLite)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            self.db = sqlite_utils.Database(conn)
            self.db.enable_wal()
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_PAGES}")
            self.migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"cannot create database {self.path}: {exc}") from exc

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def migrate(self) -> list[str]:
        """Apply pending migrations in order; returns the names applied."""
        self.conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        done = {r[0] for r in self.conn.execute("SELECT name FROM _migrations")}
        applied = []
        for name, fn in MIGRATIONS:
            if name in done:
                continue
            with self.transaction():  # BEGIN IMMEDIATE: another process migrating waits here
                if self.conn.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
                    continue  # it applied this one while we waited
                fn(self.db)
                self.conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                                  (name, iso(datetime.now(timezone.utc))))
            applied.append(name)
        return applied

    def transaction(self) -> Transaction:
        """One write transaction; inside another, part of it."""
        return Transaction(self.conn)

    def _index_text(self, mentions: Iterable[tuple[int, str | None, str]]) -> None:
        """Add new mentions, as (id, title, text), to the full-text index `mentions_fts`: every INSERT
        INTO mentions is followed by this in its transaction (one statement for the batch: see m011)."""
        self.conn.executemany("INSERT INTO mentions_fts (rowid, title, text) VALUES (?, ?, ?)", mentions)

    def _dicts(self, sql: str, params: Any = ()) -> Iterator[Any]:
        """The rows of `sql` as dicts by column name, streamed (the caller's row type names the keys)."""
        cur = self.conn.execute(sql, params)
        names = [c[0] for c in cur.description]
        return (dict(zip(names, r)) for r in cur)


class Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception (the connection is autocommit).

    A database error inside (a full disk, a locked file past the busy timeout) rolls the whole
    batch back and is raised as a one-line StoreError: nothing half-written, nothing lost (the
    cursor was not saved, so the next fetch reads the same items again).
    """

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.depth_owner = False

    def __enter__(self):
        if not self.conn.in_transaction:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreError(f"cannot write to the database: {exc}") from exc
            self.depth_owner = True
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        if not self.depth_owner:
            return False
        if exc_type is None:
            try:
                self.conn.execute("COMMIT")
                return False
            except sqlite3.Error as commit_error:
                exc = commit_error
        if self.conn.in_transaction:  # SQLite may already have rolled back (e.g. on a full disk)
            self.conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise StoreError(f"cannot write to the database (nothing of this batch was saved): {exc}") from exc
        return False
