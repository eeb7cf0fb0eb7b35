"""The notification outbox on SQLite: queued once per message id, each delivery attempt recorded."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Iterator, Sequence

from listener.store.rows import OutboxCounts, OutboxProblem, OutboxRow, OutboxStatus
from listener.store.sqlite.connection import SQLiteBase
from listener.store.types import iso
from listener.store.decode import outbox_row


class SQLiteOutbox(SQLiteBase):
    """`interface.Outbox` on SQLite."""

    def enqueue(self, *, message_id: str, channel: str, kind: str, recipients: Sequence[str], subject: str,
                body_text: str, body_html: str | None, payload: dict | None, now: datetime) -> bool:
        """(Inside another transaction, such as an evaluation's, part of it.)"""
        with self.transaction():
            cur = self.conn.execute(
                """INSERT OR IGNORE INTO outbox (message_id, channel, kind, recipients, subject, body_text, body_html,
                       payload, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (message_id, channel, kind, json.dumps(list(recipients)), subject, body_text, body_html,
                 json.dumps(payload) if payload is not None else None, iso(now), iso(now)))
        return cur.rowcount == 1

    def outbox_has(self, message_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM outbox WHERE message_id = ?", (message_id,)).fetchone() is not None

    def outbox_status(self, message_id: str) -> OutboxStatus | None:
        rows = list(self._dicts("SELECT created_at, attempts, sent_at, last_error FROM outbox WHERE message_id = ?",
                                (message_id,)))
        return rows[0] if rows else None

    def due_notifications(self, now: datetime, limit: int = 100) -> list[OutboxRow]:
        return list(self._decoded(
            """SELECT * FROM outbox WHERE sent_at IS NULL AND given_up_at IS NULL AND next_attempt_at <= ?
               ORDER BY id LIMIT ?""", (iso(now), limit)))

    def notifications(self) -> list[OutboxRow]:
        return list(self._decoded("SELECT * FROM outbox ORDER BY id"))

    def _decoded(self, sql: str, params: Any = ()) -> Iterator[OutboxRow]:
        """Outbox rows with their recipients and payload decoded from JSON."""
        return (outbox_row(r) for r in self._dicts(sql, params))

    def mark_sent(self, outbox_id: int, now: datetime) -> None:
        with self.transaction():
            self.conn.execute("UPDATE outbox SET sent_at = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?",
                              (iso(now), outbox_id))

    def mark_failed(self, outbox_id: int, error: str, next_attempt_at: datetime) -> None:
        with self.transaction():
            self.conn.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?",
                              (error, iso(next_attempt_at), outbox_id))

    def mark_given_up(self, outbox_id: int, error: str, now: datetime) -> None:
        with self.transaction():
            self.conn.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ?, given_up_at = ? WHERE id = ?",
                              (error, iso(now), outbox_id))

    def outbox_counts(self) -> OutboxCounts:
        r = self.conn.execute(
            """SELECT coalesce(sum(sent_at IS NULL AND given_up_at IS NULL), 0), count(sent_at),
                      count(given_up_at) FROM outbox""").fetchone()
        return {"queued": r[0], "sent": r[1], "given_up": r[2]}

    def outbox_problems(self) -> list[OutboxProblem]:
        return [{**r, "given_up": bool(r["given_up"])} for r in self._dicts(
            """SELECT channel, given_up_at IS NOT NULL AS given_up, count(*) AS count, min(created_at) AS oldest,
                      min(next_attempt_at) AS next_attempt_at,
                      (SELECT o2.last_error FROM outbox o2 WHERE o2.channel = o.channel AND o2.sent_at IS NULL
                         AND (o2.given_up_at IS NOT NULL) = (o.given_up_at IS NOT NULL) AND o2.last_error IS NOT NULL
                       ORDER BY o2.id DESC LIMIT 1) AS last_error
               FROM outbox o WHERE sent_at IS NULL AND (last_error IS NOT NULL OR given_up_at IS NOT NULL)
               GROUP BY channel, given_up ORDER BY given_up, channel""")]
