"""Storing fetches on SQLite: mentions once each (by source id, then by canonical URL), their topics
and hashtags, the source's state and its fetch log, all in one transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

from listener.sources import SourceState
from listener.store.sqlite.connection import SQLiteBase
from listener.store.types import MentionRow, SaveResult, iso


class SQLiteIngest(SQLiteBase):
    """`interface.Ingest` on SQLite (each method's contract is written there)."""

    def save_fetch(self, source: str, kind: str, rows: Sequence[MentionRow], state: SourceState, *,
                   started_at: datetime, now: datetime, next_check_at: datetime, items: int,
                   requests: int, not_modified: bool = False) -> SaveResult:
        with self.transaction():
            saved = self._save_rows(rows)
            self._ensure_source(source, kind)
            self.conn.execute(
                """UPDATE sources SET etag = ?, last_modified = ?, cursor = ?, last_attempt_at = ?,
                   last_success_at = ?, consecutive_errors = 0, next_check_at = ? WHERE name = ?""",
                (state.etag, state.last_modified, state.cursor, iso(started_at), iso(now),
                 iso(next_check_at), source))
            self._log_fetch(source, started_at, now, "not_modified" if not_modified else "ok",
                            items, len(saved.new_ids), requests, None)
        return saved

    def save_mentions(self, rows: Sequence[MentionRow]) -> SaveResult:
        with self.transaction():
            return self._save_rows(rows)

    def record_failure(self, source: str, kind: str, error: str, *, started_at: datetime, now: datetime,
                       next_check_at: datetime, requests: int = 1) -> int:
        with self.transaction():
            self._ensure_source(source, kind)
            self.conn.execute(
                """UPDATE sources SET last_attempt_at = ?, last_error = ?, last_error_at = ?,
                   consecutive_errors = consecutive_errors + 1, next_check_at = ? WHERE name = ?""",
                (iso(started_at), error, iso(now), iso(next_check_at), source))
            self._log_fetch(source, started_at, now, "error", 0, 0, requests, error)
            return self.conn.execute("SELECT consecutive_errors FROM sources WHERE name = ?", (source,)).fetchone()[0]

    def source_state(self, name: str) -> SourceState:
        r = self.conn.execute("SELECT etag, last_modified, cursor FROM sources WHERE name = ?", (name,)).fetchone()
        return SourceState(*r) if r else SourceState()

    def _save_rows(self, rows: Sequence[MentionRow]) -> SaveResult:
        new_ids: list[int] = []
        updated = 0
        for row in rows:
            mention_id, is_new = self._upsert_mention(row)
            if is_new:
                new_ids.append(mention_id)
            else:
                updated += 1
            # a duplicate's topics are linked at the stored mention's time, which every rollup counts it at
            pub = iso(row.published_at) if is_new else self.conn.execute(
                "SELECT published_at FROM mentions WHERE id = ?", (mention_id,)).fetchone()[0]
            self.conn.executemany(
                "INSERT OR IGNORE INTO mention_topics (mention_id, topic, published_at) VALUES (?, ?, ?)",
                [(mention_id, t, pub) for t in row.topics])
            if is_new:
                self.conn.executemany(
                    "INSERT OR IGNORE INTO hashtags (mention_id, hashtag, published_at) VALUES (?, ?, ?)",
                    [(mention_id, h, pub) for h in row.hashtags])
        return SaveResult(new_ids, updated)

    def _upsert_mention(self, row: MentionRow) -> tuple[int, bool]:
        existing = self.conn.execute("SELECT id FROM mentions WHERE source = ? AND source_id = ?",
                                     (row.source, row.source_id)).fetchone()
        if existing is None and row.url:
            existing = self.conn.execute("SELECT id FROM mentions WHERE url = ?", (row.url,)).fetchone()
        if existing is not None:
            self.conn.execute(
                """UPDATE mentions SET likes = coalesce(?, likes), reposts = coalesce(?, reposts),
                   replies = coalesce(?, replies), score = coalesce(?, score) WHERE id = ?""",
                (row.likes, row.reposts, row.replies, row.score, existing[0]))
            return existing[0], False
        cur = self.conn.execute(
            """INSERT INTO mentions (source, source_id, url, author, title, text, language, language_detected,
                   published_at, fetched_at, likes, reposts, replies, score)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (row.source, row.source_id, row.url, row.author, row.title, row.text, row.language,
             int(row.language_detected), iso(row.published_at), iso(row.fetched_at),
             row.likes, row.reposts, row.replies, row.score))
        return cur.lastrowid, True

    def _ensure_source(self, name: str, kind: str) -> None:
        self.conn.execute("INSERT INTO sources (name, kind) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET kind = excluded.kind",
                          (name, kind))

    def _log_fetch(self, source: str, started_at: datetime, finished_at: datetime, status: str, items: int,
                   new: int, requests: int, error: str | None) -> None:
        self.conn.execute(
            """INSERT INTO fetches (source, started_at, finished_at, status, items, new_mentions, requests, error)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            (source, iso(started_at), iso(finished_at), status, items, new, requests, error))
