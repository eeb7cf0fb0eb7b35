"""How sources fare, read on SQLite: their health, their failures in a period, the fetch log."""

from __future__ import annotations

from datetime import datetime

from listener.store.rows import FetchRecord, SourceFailures
from listener.store.sqlite.connection import SQLiteBase
from listener.store.types import SourceHealth, iso
from listener.store.decode import health_of


class SQLiteSourceReads(SQLiteBase):
    """`interface.SourceReads` on SQLite."""

    def source_health(self, name: str | None = None, *, with_counts: bool = False) -> dict[str, SourceHealth]:
        counts = dict(self.conn.execute("SELECT source, count(*) FROM mentions GROUP BY source")) if with_counts else {}
        out = {}
        for d in self._dicts("SELECT * FROM sources" + (" WHERE name = ?" if name else ""), (name,) if name else ()):
            out[d["name"]] = health_of(d, counts.get(d["name"], 0))
        return out

    def source_failures(self, start: datetime, end: datetime) -> list[SourceFailures]:
        return list(self._dicts(
            """SELECT s.name AS source, s.kind, s.consecutive_errors, s.last_error, s.last_error_at, s.last_success_at,
                      (SELECT count(*) FROM fetches f WHERE f.source = s.name AND f.status = 'error'
                          AND f.started_at >= :start AND f.started_at < :end) AS errors,
                      (SELECT count(*) FROM fetches f WHERE f.source = s.name AND f.status != 'error'
                          AND f.started_at >= :start AND f.started_at < :end) AS ok,
                      (SELECT f.error FROM fetches f WHERE f.source = s.name AND f.status = 'error'
                          AND f.started_at >= :start AND f.started_at < :end ORDER BY f.started_at DESC, f.id DESC LIMIT 1)
                          AS error,
                      CASE WHEN s.consecutive_errors > 0 THEN
                          (SELECT min(f.started_at) FROM fetches f WHERE f.source = s.name AND f.status = 'error'
                              AND f.started_at > coalesce(s.last_success_at, '')) END AS failing_since
               FROM sources s ORDER BY s.name""", {"start": iso(start), "end": iso(end)}))

    def collected_between(self, start: datetime, end: datetime) -> bool:
        fetched = self.conn.execute("SELECT 1 FROM fetches WHERE started_at >= ? AND started_at < ? LIMIT 1",
                                    (iso(start), iso(end))).fetchone()
        return fetched is not None or self.conn.execute(
            "SELECT 1 FROM mentions WHERE fetched_at >= ? AND fetched_at < ? LIMIT 1", (iso(start), iso(end))).fetchone() is not None

    def fetch_log(self, source: str | None = None) -> list[FetchRecord]:
        return list(self._dicts("SELECT * FROM fetches" + (" WHERE source = ?" if source is not None else "")
                                + " ORDER BY id", (source,) if source is not None else ()))
