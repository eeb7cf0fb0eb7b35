"""The monthly partitions of the mention tables on PostgreSQL: made on demand before a batch is stored,
and detached and dropped whole by retention.

`mentions`, `mention_topics` and `hashtags` are partitioned by range of `published_at`, one
partition per UTC month (`mentions_p2026_11`), with no default partition, so a new month can always
be attached. A partition is made as a table of its own, then attached: ATTACH takes a lock that
lets readers and writers of the other months go on (CREATE TABLE ... PARTITION OF would wait for
every open transaction on the table and block the rest behind it). One process makes partitions at
a time (an advisory lock), each table's only when it is missing, in a transaction of its own on a
connection of its own, so that it is there, committed, for the batch that needs it.

Retention detaches a partition CONCURRENTLY (it waits for the readers of the table; nobody waits
for it), then drops it.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterable, Iterator

from listener.errors import StoreError
from listener.store.postgres.connection import PostgresBase, describe
from listener.store.types import iso

PARTITIONED = ("mentions", "mention_topics", "hashtags")
PARTITION_LOCK = 7_362_802  # pg_advisory_xact_lock key: one process makes partitions at a time
_NAME = re.compile(r"_p(\d{4})_(\d{2})$")

Month = tuple[int, int]  # (year, month), UTC


def month_of(at: datetime) -> Month:
    at = at.astimezone(timezone.utc) if at.tzinfo else at
    return at.year, at.month


def month_bounds(month: Month) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month), UTC."""
    year, mon = month
    start = datetime(year, mon, 1, tzinfo=timezone.utc)
    return start, datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=timezone.utc)


def partition_name(table: str, month: Month) -> str:
    return f"{table}_p{month[0]:04d}_{month[1]:02d}"


class PostgresPartitions(PostgresBase):
    """Partition management for the other parts of the engine (ingest, retention)."""

    _known_months: frozenset[Month] = frozenset()  # made (or seen) by this store: no need to look

    def _ensure_partitions(self, times: Iterable[datetime]) -> None:
        """Make sure every mention table has the partition of each month of `times` (committed at once)."""
        months = {month_of(t) for t in times} - self._known_months
        if not months:
            return
        with self._own_connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))
            for table in PARTITIONED:
                have = self._months(conn, table)
                for month in sorted(months - have):
                    name, (start, end) = partition_name(table, month), month_bounds(month)
                    # a table of that name not attached is what a drop cut short left: pruned mentions
                    conn.execute(f"DROP TABLE IF EXISTS {name}")
                    conn.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
                    conn.execute(f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ('{iso(start)}') TO ('{iso(end)}')")
        self._known_months = self._known_months | months

    def _forget_partitions(self) -> None:
        """Look again next time (another process's retention may have dropped a month this one knew)."""
        self._known_months = frozenset()

    def _partition_months(self) -> list[Month]:
        """The months `mentions` has a partition for, oldest first."""
        with self._own_connection() as conn:
            return sorted(self._months(conn, "mentions"))

    def _drop_month(self, month: Month) -> int:
        """Detach and drop the month's partition of every mention table; how many mentions it held.
        (Only the partitions go: their keys and corrections are the caller's.)"""
        self._forget_partitions()
        held = 0
        with self._own_connection() as conn:
            conn.autocommit = True  # DETACH ... CONCURRENTLY runs outside a transaction block
            try:
                for table in PARTITIONED:
                    name = partition_name(table, month)
                    state = conn.execute(
                        "SELECT i.inhdetachpending AS pending FROM pg_inherits i WHERE i.inhrelid = to_regclass(%s)",
                        (name,)).fetchone()
                    if state is not None:
                        how = "FINALIZE" if state["pending"] else "CONCURRENTLY"  # an earlier detach was cut short
                        conn.execute(f"ALTER TABLE {table} DETACH PARTITION {name} {how}")
                    if table == "mentions" and conn.execute("SELECT to_regclass(%s) AS t", (name,)).fetchone()["t"]:
                        held = conn.execute(f"SELECT count(*) AS n FROM {name}").fetchone()["n"]
                    conn.execute(f"DROP TABLE IF EXISTS {name}")
            finally:
                conn.autocommit = False
        return held

    @staticmethod
    def _months(conn, table: str) -> set[Month]:
        rows = conn.execute("SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                            "WHERE i.inhparent = %s::regclass AND NOT i.inhdetachpending", (table,))
        return {(int(m.group(1)), int(m.group(2))) for m in (_NAME.search(r["name"]) for r in rows) if m}

    @contextmanager
    def _own_connection(self) -> Iterator:
        """A connection of the pool apart from this thread's transaction; errors as one-line StoreErrors."""
        import psycopg

        try:
            with self.pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:
            raise StoreError(f"database error (partitions of the mention tables): {describe(exc)}") from exc
