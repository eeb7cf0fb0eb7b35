"""The PostgreSQL engine's connection: a pool of psycopg 3 connections to one database, migrated
on open, its transactions, and rows as dicts whose times are ISO text (as on SQLite).

Every connection runs in UTC and reads `timestamptz` back as `2026-11-22T08:00:00Z` and `date` as
`2026-11-22` (`IsoTimeLoader`), so the engine's rows are the same typed dicts as SQLite's. Times
are written as that same text (`iso`), which PostgreSQL reads into the column's type.

JIT compilation is off in its sessions: its statements are lookups planned over every monthly
partition, and compiling such a plan grows with the months (9 s for a batch of 20,000 mentions
with five years stored, for a lookup that runs in 0.1 s).

A store is safe to share between threads (the dashboard's requests, the daemon's jobs): each call
borrows a connection for one transaction; a call made inside `transaction()` on the same thread
joins it. Every part of the engine builds on `PostgresBase`.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterator

from listener.errors import StoreError, redact
from listener.store.postgres.migrations import MIGRATIONS
from listener.store.types import iso

POOL_SIZE = 8  # connections one store keeps at most (the dashboard's threads, the daemon's jobs)
CONNECT_TIMEOUT = 10  # seconds
MIGRATION_LOCK = 7_362_801  # pg_advisory_xact_lock key: one process migrates at a time


def _psycopg():
    try:
        import psycopg
        import psycopg_pool
    except ImportError as exc:  # pragma: no cover - psycopg is a dependency
        raise StoreError("the PostgreSQL engine needs psycopg 3 (pip install 'psycopg[binary,pool]')") from exc
    return psycopg, psycopg_pool


def _iso_loaders(conn) -> None:
    """Read timestamptz as ISO text with a Z (to the second) and date as ISO text, like SQLite's columns."""
    from psycopg.adapt import Loader

    class IsoTimeLoader(Loader):
        def load(self, data) -> str:  # "2026-11-22 08:00:00+00" or "2026-11-22 08:00:00.5+00" in UTC
            text = bytes(data).decode()
            return text[:10] + "T" + text[11:19] + "Z"

    class IsoDateLoader(Loader):
        def load(self, data) -> str:
            return bytes(data).decode()

    conn.adapters.register_loader("timestamptz", IsoTimeLoader)
    conn.adapters.register_loader("date", IsoDateLoader)


def describe(exc: BaseException) -> str:
    """A database error in one line, secrets redacted (a server's message can quote a URL)."""
    text = (getattr(exc, "diag", None) and exc.diag.message_primary) or str(exc) or type(exc).__name__
    return redact(" ".join(str(text).split()))


class PostgresBase:
    """An open mention database on a PostgreSQL server (migrated on open). `url`, `pool` and
    `transaction()` are the engine's own: nothing outside `listener.store` uses them."""

    def __init__(self, url: str, *, pool_size: int = POOL_SIZE):
        psycopg, psycopg_pool = _psycopg()
        self.url = url
        self._local = threading.local()
        from psycopg.rows import dict_row

        def configure(conn) -> None:
            _iso_loaders(conn)
            conn.row_factory = dict_row

        problem = self._connect_error(url)  # the pool would only retry in the background, then time out
        if problem:
            raise StoreError(f"cannot open database {redact(url)}: {problem}")
        try:
            self.pool = psycopg_pool.ConnectionPool(
                url, min_size=1, max_size=pool_size, open=False, configure=configure, timeout=CONNECT_TIMEOUT,
                kwargs={"options": "-c TimeZone=UTC -c client_encoding=UTF8 -c jit=off", "application_name": "listener",
                        "connect_timeout": CONNECT_TIMEOUT})
            self.pool.open(wait=True, timeout=CONNECT_TIMEOUT)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            self._close_pool()
            raise StoreError(f"cannot open database {redact(url)}: {describe(exc)}") from exc
        try:
            self.migrate()
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _connect_error(url: str) -> str | None:
        """Why a connection to `url` fails, in the server's or libpq's words (the pool only says it timed out)."""
        psycopg, _ = _psycopg()
        try:
            psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT).close()
        except psycopg.Error as exc:
            return describe(exc)
        return None

    def _close_pool(self) -> None:
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.close()

    def close(self) -> None:
        self._close_pool()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def migrate(self) -> list[str]:
        """Apply pending migrations in order, one process at a time; returns the names applied."""
        applied = []
        with self.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL)")
            done = {r["name"] for r in conn.execute("SELECT name FROM _migrations")}
            for name, statements in MIGRATIONS:
                if name in done:
                    continue
                for statement in statements:
                    conn.execute(statement)
                conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (%s, %s)",
                             (name, iso(datetime.now(timezone.utc))))
                applied.append(name)
        return applied

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """One transaction on a connection of the pool (its connection given); inside another on
        this thread, part of it. A database error rolls it all back and is raised as a one-line
        StoreError: nothing half-written."""
        current = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        psycopg, psycopg_pool = _psycopg()
        try:
            with self.pool.connection() as conn:
                self._local.conn = conn
                try:
                    with conn.transaction():
                        yield conn
                finally:
                    self._local.conn = None
        except psycopg.Error as exc:
            raise StoreError(f"database error (nothing of this change was saved): {describe(exc)}") from exc
        except psycopg_pool.PoolTimeout as exc:
            raise StoreError(f"no connection to {redact(self.url)} within {CONNECT_TIMEOUT} s") from exc

    def _dicts(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        """The rows of `sql` as dicts by column name (the caller's row type names the keys)."""
        with self.transaction() as conn:
            return conn.execute(sql, params).fetchall()

    def _one(self, sql: str, params: Any = ()) -> dict[str, Any] | None:
        with self.transaction() as conn:
            return conn.execute(sql, params).fetchone()

    def _stream(self, sql: str, params: Any = (), batch: int = 2000) -> Iterator[dict[str, Any]]:
        """The rows of `sql`, streamed by a server-side cursor on a connection of its own."""
        psycopg, _ = _psycopg()
        try:
            with self.pool.connection() as conn, conn.transaction():
                with conn.cursor(name="listener_stream") as cur:
                    cur.itersize = batch
                    cur.execute(sql, params)
                    yield from cur
        except psycopg.Error as exc:
            raise StoreError(f"database error: {describe(exc)}") from exc
