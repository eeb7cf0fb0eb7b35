"""The notification outbox on PostgreSQL: queued once per message id, each delivery attempt recorded."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Iterator, Sequence

from listener.store.postgres.connection import PostgresBase
from listener.store.rows import OutboxCounts, OutboxProblem, OutboxRow, OutboxStatus
from listener.store.types import iso
from listener.store.decode import outbox_row


class PostgresOutbox(PostgresBase):
    """`interface.Outbox` on PostgreSQL."""

    def enqueue(self, *, message_id: str, channel: str, kind: str, recipients: Sequence[str], subject: str,
                body_text: str, body_html: str | None, payload: dict | None, now: datetime) -> bool:
        """(Inside another transaction, such as an evaluation's, part of it. A message id queued before
        takes no id from the sequence, so ids follow one another as on SQLite.)"""
        with self.transaction() as conn:
            cur = conn.execute(
                """INSERT INTO outbox (message_id, channel, kind, recipients, subject, body_text, body_html, payload,
                       created_at, next_attempt_at)
                   SELECT %(message_id)s, %(channel)s, %(kind)s, %(recipients)s, %(subject)s, %(body_text)s,
                          %(body_html)s, %(payload)s, %(now)s::timestamptz, %(now)s::timestamptz
                   WHERE NOT EXISTS (SELECT 1 FROM outbox WHERE message_id = %(message_id)s)
                   ON CONFLICT (message_id) DO NOTHING""",
                {"message_id": message_id, "channel": channel, "kind": kind, "recipients": json.dumps(list(recipients)),
                 "subject": subject, "body_text": body_text, "body_html": body_html,
                 "payload": json.dumps(payload) if payload is not None else None, "now": iso(now)})
            return cur.rowcount == 1

    def outbox_has(self, message_id: str) -> bool:
        return self._one("SELECT 1 AS found FROM outbox WHERE message_id = %s", (message_id,)) is not None

    def outbox_status(self, message_id: str) -> OutboxStatus | None:
        return self._one("SELECT created_at, attempts, sent_at, last_error FROM outbox WHERE message_id = %s",
                         (message_id,))  # type: ignore[return-value]

    def due_notifications(self, now: datetime, limit: int = 100) -> list[OutboxRow]:
        return list(self._decoded(
            """SELECT * FROM outbox WHERE sent_at IS NULL AND given_up_at IS NULL AND next_attempt_at <= %s
               ORDER BY id LIMIT %s""", (iso(now), limit)))

    def notifications(self) -> list[OutboxRow]:
        return list(self._decoded("SELECT * FROM outbox ORDER BY id"))

    def _decoded(self, sql: str, params: Any = ()) -> Iterator[OutboxRow]:
        """Outbox rows with their recipients and payload decoded from JSON."""
        return (outbox_row(r) for r in self._dicts(sql, params))

    def _update(self, sql: str, params: Sequence[Any]) -> None:
        with self.transaction() as conn:
            conn.execute(sql, params)

    def mark_sent(self, outbox_id: int, now: datetime) -> None:
        self._update("UPDATE outbox SET sent_at = %s, attempts = attempts + 1, last_error = NULL WHERE id = %s",
                     (iso(now), outbox_id))

    def mark_failed(self, outbox_id: int, error: str, next_attempt_at: datetime) -> None:
        self._update("UPDATE outbox SET attempts = attempts + 1, last_error = %s, next_attempt_at = %s WHERE id = %s",
                     (error, iso(next_attempt_at), outbox_id))

    def mark_given_up(self, outbox_id: int, error: str, now: datetime) -> None:
        self._update("UPDATE outbox SET attempts = attempts + 1, last_error = %s, given_up_at = %s WHERE id = %s",
                     (error, iso(now), outbox_id))

    def outbox_counts(self) -> OutboxCounts:
        return self._one(  # type: ignore[return-value]
            """SELECT count(*) FILTER (WHERE sent_at IS NULL AND given_up_at IS NULL) AS queued, count(sent_at) AS sent,
                      count(given_up_at) AS given_up FROM outbox""")

    def outbox_problems(self) -> list[OutboxProblem]:
        return self._dicts(  # type: ignore[return-value]
            """SELECT channel, given_up, count(*) AS count, min(created_at) AS oldest,
                      min(next_attempt_at) AS next_attempt_at,
                      (SELECT o2.last_error FROM outbox o2 WHERE o2.channel = o.channel AND o2.sent_at IS NULL
                         AND (o2.given_up_at IS NOT NULL) = o.given_up AND o2.last_error IS NOT NULL
                       ORDER BY o2.id DESC LIMIT 1) AS last_error
               FROM (SELECT channel, created_at, next_attempt_at, given_up_at IS NOT NULL AS given_up FROM outbox
                     WHERE sent_at IS NULL AND (last_error IS NOT NULL OR given_up_at IS NOT NULL)) o
               GROUP BY channel, given_up ORDER BY given_up, channel COLLATE "C" """)
