"""How sources fare, read on PostgreSQL: their health, their failures in a period, the fetch log."""

from __future__ import annotations

from datetime import datetime

from listener.store.postgres.connection import PostgresBase
from listener.store.rows import FetchRecord, SourceFailures
from listener.store.types import SourceHealth, iso
from listener.store.decode import health_of


class PostgresSourceReads(PostgresBase):
    """`interface.SourceReads` on PostgreSQL."""

    def source_health(self, name: str | None = None, *, with_counts: bool = False) -> dict[str, SourceHealth]:
        counts = {r["source"]: r["n"] for r in self._dicts(
            "SELECT source, count(*) AS n FROM mentions" + (" WHERE source = %s" if name else "") + " GROUP BY source",
            (name,) if name else ())} if with_counts else {}
        out = {}
        for d in self._dicts("SELECT * FROM sources" + (" WHERE name = %s" if name else ""), (name,) if name else ()):
            out[d["name"]] = health_of(d, counts.get(d["name"], 0))
        return out

    def source_failures(self, start: datetime, end: datetime) -> list[SourceFailures]:
        return self._dicts(  # type: ignore[return-value]
            """SELECT s.name AS source, s.kind, s.consecutive_errors, s.last_error, s.last_error_at, s.last_success_at,
                      (SELECT count(*) FROM fetches f WHERE f.source = s.name AND f.status = 'error'
                          AND f.started_at >= %(start)s AND f.started_at < %(end)s) AS errors,
                      (SELECT count(*) FROM fetches f WHERE f.source = s.name AND f.status != 'error'
                          AND f.started_at >= %(start)s AND f.started_at < %(end)s) AS ok,
                      (SELECT f.error FROM fetches f WHERE f.source = s.name AND f.status = 'error'
                          AND f.started_at >= %(start)s AND f.started_at < %(end)s
                          ORDER BY f.started_at DESC, f.id DESC LIMIT 1) AS error,
                      CASE WHEN s.consecutive_errors > 0 THEN
                          (SELECT min(f.started_at) FROM fetches f WHERE f.source = s.name AND f.status = 'error'
                              AND (s.last_success_at IS NULL OR f.started_at > s.last_success_at)) END AS failing_since
               FROM sources s ORDER BY s.name COLLATE "C" """, {"start": iso(start), "end": iso(end)})

    def collected_between(self, start: datetime, end: datetime) -> bool:
        return self._one(
            """SELECT EXISTS (SELECT 1 FROM fetches WHERE started_at >= %(start)s AND started_at < %(end)s)
                   OR EXISTS (SELECT 1 FROM mentions WHERE fetched_at >= %(start)s AND fetched_at < %(end)s) AS found""",
            {"start": iso(start), "end": iso(end)})["found"]  # type: ignore[index]

    def fetch_log(self, source: str | None = None) -> list[FetchRecord]:
        return self._dicts("SELECT * FROM fetches" + (" WHERE source = %s" if source is not None else "")  # type: ignore[return-value]
                           + " ORDER BY id", (source,) if source is not None else ())
