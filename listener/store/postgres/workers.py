"""Several workers on one PostgreSQL database (`interface.Workers`): a lease is one upsert that
takes the row only when it is free; claims take the free rows with `FOR UPDATE SKIP LOCKED`, so
that workers claiming at the same moment split the work instead of waiting for each other."""

from __future__ import annotations

from datetime import datetime, timedelta

from listener.store.postgres.connection import PostgresBase
from listener.store.rows import LeaseRow, OutboxRow
from listener.store.types import iso
from listener.store.decode import outbox_row


class PostgresWorkers(PostgresBase):
    """`interface.Workers` on PostgreSQL."""

    def claim_lease(self, name: str, worker: str, now: datetime, ttl: timedelta) -> bool:
        with self.transaction() as conn:
            cur = conn.execute(
                """INSERT INTO leases AS l (name, worker, acquired_at, expires_at) VALUES (%s, %s, %s, %s)
                   ON CONFLICT (name) DO UPDATE SET
                       acquired_at = CASE WHEN l.worker = excluded.worker AND l.released_at IS NULL THEN l.acquired_at
                                          ELSE excluded.acquired_at END,
                       worker = excluded.worker, expires_at = excluded.expires_at, released_at = NULL
                   WHERE l.worker = excluded.worker OR l.expires_at <= excluded.acquired_at
                      OR l.released_at IS NOT NULL""",
                (name, worker, iso(now), iso(now + ttl)))
            return cur.rowcount == 1

    def release_lease(self, name: str, worker: str, now: datetime) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE leases SET released_at = %s WHERE name = %s AND worker = %s AND released_at IS NULL",
                         (iso(now), name, worker))

    def end_other_workers(self, worker: str, now: datetime) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE leases SET released_at = %s WHERE worker != %s AND released_at IS NULL", (iso(now), worker))
            conn.execute("DELETE FROM work_claims WHERE worker != %s", (worker,))

    def leases(self, prefix: str = "") -> dict[str, LeaseRow]:
        return {r["name"]: r for r in self._dicts(
            "SELECT * FROM leases WHERE left(name, %s) = %s ORDER BY name", (len(prefix), prefix))}

    def claim_unscored(self, worker: str, now: datetime, ttl: timedelta, limit: int = 1000) -> list[tuple[int, str, str | None]]:
        rows = self._claim("score", worker, now, ttl,
                           """SELECT id AS item, id, text, title FROM mentions m WHERE sentiment IS NULL
                                AND NOT EXISTS (SELECT 1 FROM work_claims c WHERE c.kind = 'score' AND c.item = m.id)
                              ORDER BY id LIMIT %s FOR UPDATE OF m SKIP LOCKED""", (limit,))
        return [(r["id"], r["text"], r["title"]) for r in rows]

    def claim_due_notifications(self, worker: str, now: datetime, ttl: timedelta, limit: int = 100) -> list[OutboxRow]:
        rows = self._claim("deliver", worker, now, ttl,
                           """SELECT o.id AS item, o.* FROM outbox o
                              WHERE sent_at IS NULL AND given_up_at IS NULL AND next_attempt_at <= %s
                                AND NOT EXISTS (SELECT 1 FROM work_claims c WHERE c.kind = 'deliver' AND c.item = o.id)
                              ORDER BY id LIMIT %s FOR UPDATE OF o SKIP LOCKED""", (iso(now), limit))
        for r in rows:
            del r["item"]
        return [outbox_row(r) for r in rows]

    def _claim(self, kind: str, worker: str, now: datetime, ttl: timedelta, select: str, params: tuple) -> list[dict]:
        """In one transaction: end the expired claims of `kind` and `worker`'s own, lock what is free
        (skipping rows another worker is claiming at this moment), claim it."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM work_claims WHERE kind = %s AND (expires_at <= %s OR worker = %s)",
                         (kind, iso(now), worker))
            rows = conn.execute(select, params).fetchall()
            if rows:
                with conn.cursor() as cur:
                    cur.executemany("INSERT INTO work_claims (kind, item, worker, expires_at) VALUES (%s, %s, %s, %s)",
                                    [(kind, r["item"], worker, iso(now + ttl)) for r in rows])
            return rows
