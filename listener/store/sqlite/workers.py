"""Several workers on one SQLite file (`interface.Workers`): leases and claims, each taken in one
write transaction (BEGIN IMMEDIATE), so that two processes never both get one."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

from listener.store.rows import LeaseRow, OutboxRow
from listener.store.sqlite.outbox import SQLiteOutbox
from listener.store.types import iso


class SQLiteWorkers(SQLiteOutbox):
    """`interface.Workers` on SQLite."""

    def claim_lease(self, name: str, worker: str, now: datetime, ttl: timedelta) -> bool:
        with self.transaction():
            cur = self.conn.execute(
                """INSERT INTO leases (name, worker, acquired_at, expires_at) VALUES (?, ?, ?, ?)
                   ON CONFLICT (name) DO UPDATE SET
                       acquired_at = CASE WHEN worker = excluded.worker AND released_at IS NULL THEN acquired_at
                                          ELSE excluded.acquired_at END,
                       worker = excluded.worker, expires_at = excluded.expires_at, released_at = NULL
                   WHERE worker = excluded.worker OR expires_at <= excluded.acquired_at OR released_at IS NOT NULL""",
                (name, worker, iso(now), iso(now + ttl)))
            return cur.rowcount == 1

    def release_lease(self, name: str, worker: str, now: datetime) -> None:
        with self.transaction():
            self.conn.execute("UPDATE leases SET released_at = ? WHERE name = ? AND worker = ? AND released_at IS NULL",
                              (iso(now), name, worker))

    def end_other_workers(self, worker: str, now: datetime) -> None:
        with self.transaction():
            self.conn.execute("UPDATE leases SET released_at = ? WHERE worker != ? AND released_at IS NULL", (iso(now), worker))
            self.conn.execute("DELETE FROM work_claims WHERE worker != ?", (worker,))

    def leases(self, prefix: str = "") -> dict[str, LeaseRow]:
        return {r["name"]: r for r in self._dicts(
            "SELECT * FROM leases WHERE substr(name, 1, ?) = ? ORDER BY name", (len(prefix), prefix))}

    def claim_unscored(self, worker: str, now: datetime, ttl: timedelta, limit: int = 1000) -> list[tuple[int, str, str | None]]:
        return self._claim("score", worker, now, ttl, lambda: self.conn.execute(
            """SELECT id, text, title FROM mentions m WHERE sentiment IS NULL AND NOT EXISTS (
                   SELECT 1 FROM work_claims c WHERE c.kind = 'score' AND c.item = m.id)
               ORDER BY id LIMIT ?""", (limit,)).fetchall(), key=lambda r: r[0])

    def claim_due_notifications(self, worker: str, now: datetime, ttl: timedelta, limit: int = 100) -> list[OutboxRow]:
        return self._claim("deliver", worker, now, ttl, lambda: list(self._decoded(
            """SELECT * FROM outbox o WHERE sent_at IS NULL AND given_up_at IS NULL AND next_attempt_at <= ?
                 AND NOT EXISTS (SELECT 1 FROM work_claims c WHERE c.kind = 'deliver' AND c.item = o.id)
               ORDER BY id LIMIT ?""", (iso(now), limit))), key=lambda r: r["id"])

    def _claim(self, kind: str, worker: str, now: datetime, ttl: timedelta, read: Callable[[], list], key) -> list:
        """In one transaction: end the expired claims of `kind` and `worker`'s own, read what is free
        (`read` leaves out what is still claimed), claim it."""
        with self.transaction():
            self.conn.execute("DELETE FROM work_claims WHERE kind = ? AND (expires_at <= ? OR worker = ?)",
                              (kind, iso(now), worker))
            rows = read()
            self.conn.executemany("INSERT INTO work_claims (kind, item, worker, expires_at) VALUES (?, ?, ?, ?)",
                                  [(kind, key(r), worker, iso(now + ttl)) for r in rows])
            return rows
