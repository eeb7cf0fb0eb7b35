"""Storing fetches on SQLite: mentions once each (by source id, then by canonical URL), their topics
and hashtags, the source's state and its fetch log, all in one transaction."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Sequence

from listener.sources import SourceState
from listener.store.sqlite.connection import SQLiteBase
from listener.store.types import Fetched, MentionRow, SaveResult, SavesFetchesInBatches, iso, iso_once


class SQLiteIngest(SavesFetchesInBatches, SQLiteBase):
    """`interface.Ingest` on SQLite (each method's contract is written there)."""

    def save_fetches(self, fetches: Sequence[Fetched]) -> list[SaveResult]:
        with self.transaction():
            return [self._save_fetch(f) for f in fetches]

    def _save_fetch(self, f: Fetched) -> SaveResult:
        """(Within a transaction.)"""
        saved = self._save_rows(f.rows)
        self.conn.execute(
            """INSERT INTO sources (name, kind, etag, last_modified, cursor, last_attempt_at, last_success_at,
                   consecutive_errors, next_check_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)
               ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, etag = excluded.etag,
                   last_modified = excluded.last_modified, cursor = excluded.cursor,
                   last_attempt_at = excluded.last_attempt_at, last_success_at = excluded.last_success_at,
                   consecutive_errors = 0, next_check_at = excluded.next_check_at""",
            (f.source, f.kind, f.state.etag, f.state.last_modified, f.state.cursor, iso(f.started_at), iso(f.now),
             iso(f.next_check_at)))
        self._log_fetch(f.source, f.started_at, f.now, "not_modified" if f.not_modified else "ok",
                        f.items, len(saved.new_ids), f.requests, None)
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
        """Each row stored once, in order: a row whose (source, source id), else whose URL, is stored
        already (before, or earlier in `rows`) refreshes that mention's engagement and links it to
        its topics; any other is inserted. Found with two look-ups for the whole batch, written in one
        batch each: new mentions (their ids looked up after), refreshes, topics and hashtags."""
        if not rows:
            return SaveResult([], 0)
        by_key, by_url = self._stored(rows)
        new: list[list] = []  # rows to insert: [row, likes, reposts, replies, score] (engagement merged)
        refresh: list[tuple] = []  # (likes, reposts, replies, score, id) of mentions stored before
        links: list[tuple[tuple, tuple[str, ...]]] = []  # (target, topics); a target is (id, pub) or ("new", i)
        updated = 0
        for row in rows:
            target = by_key.get((row.source, row.source_id)) or (by_url.get(row.url) if row.url else None)
            engagement = (row.likes, row.reposts, row.replies, row.score)
            if target is None:
                target = ("new", len(new))
                new.append([row, *engagement])
                by_key[(row.source, row.source_id)] = target
                if row.url:
                    by_url[row.url] = target
            else:
                updated += 1
                if target[0] == "new":  # a copy of a row of this batch: its numbers win where it has them
                    pending = new[target[1]]
                    pending[1:] = [n if n is not None else o for n, o in zip(engagement, pending[1:])]
                elif any(n is not None for n in engagement):
                    refresh.append((*engagement, target[0]))
            links.append((target, row.topics))
        if refresh:
            self.conn.executemany(
                """UPDATE mentions SET likes = coalesce(?, likes), reposts = coalesce(?, reposts),
                   replies = coalesce(?, replies), score = coalesce(?, score) WHERE id = ?""", refresh)
        stamp = iso_once()
        self.conn.executemany(
            """INSERT INTO mentions (source, source_id, url, author, title, text, language, language_detected,
                   published_at, fetched_at, likes, reposts, replies, score)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [(row.source, row.source_id, row.url, row.author, row.title, row.text, row.language,
              int(row.language_detected), stamp(row.published_at), stamp(row.fetched_at), likes, reposts, replies,
              score) for row, likes, reposts, replies, score in new])
        ids, _ = self._stored([row for row, *_ in new], urls=False)
        inserted = [ids[(row.source, row.source_id)] for row, *_ in new]  # (id, published_at), in order
        self._index_text((mention_id, row.title, row.text) for (row, *_), (mention_id, _) in zip(new, inserted))
        topic_rows = []
        for target, topics in links:
            mention_id, pub = inserted[target[1]] if target[0] == "new" else target
            topic_rows.extend((mention_id, t, pub) for t in topics)
        # a duplicate's topics are linked at the stored mention's time, which every rollup counts it at
        self.conn.executemany("INSERT OR IGNORE INTO mention_topics (mention_id, topic, published_at) VALUES (?, ?, ?)",
                              topic_rows)
        self.conn.executemany("INSERT OR IGNORE INTO hashtags (mention_id, hashtag, published_at) VALUES (?, ?, ?)",
                              [(mention_id, h, pub) for (row, *_), (mention_id, pub) in zip(new, inserted)
                               for h in row.hashtags])
        return SaveResult([mention_id for mention_id, _ in inserted], updated)

    def _stored(self, rows: Sequence[MentionRow], urls: bool = True) -> tuple[dict, dict]:
        """The mentions stored under the rows' (source, source id)s and (unless not `urls`) under their
        URLs, as {(source, source id): (id, published_at)} and {url: (id, published_at)}."""
        keys = json.dumps([[row.source, row.source_id] for row in rows])
        by_key = {(source, source_id): (mention_id, pub) for mention_id, source, source_id, pub in self.conn.execute(
            """SELECT m.id, m.source, m.source_id, m.published_at FROM json_each(?) AS k
               CROSS JOIN mentions m ON m.source = json_extract(k.value, '$[0]') AND m.source_id = json_extract(k.value, '$[1]')""",
            (keys,))}
        if not urls:
            return by_key, {}
        by_url = {url: (mention_id, pub) for mention_id, url, pub in self.conn.execute(
            "SELECT m.id, m.url, m.published_at FROM json_each(?) AS u CROSS JOIN mentions m ON m.url = u.value",
            (json.dumps(list({row.url for row in rows if row.url})),))}
        return by_key, by_url

    def _ensure_source(self, name: str, kind: str) -> None:
        self.conn.execute("INSERT INTO sources (name, kind) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET kind = excluded.kind",
                          (name, kind))

    def _log_fetch(self, source: str, started_at: datetime, finished_at: datetime, status: str, items: int,
                   new: int, requests: int, error: str | None) -> None:
        self.conn.execute(
            """INSERT INTO fetches (source, started_at, finished_at, status, items, new_mentions, requests, error)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            (source, iso(started_at), iso(finished_at), status, items, new, requests, error))
