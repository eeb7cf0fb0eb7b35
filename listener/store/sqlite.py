"""The mention database on SQLite: the engine behind `listener.store`.

One SQLite file in WAL mode. Tables (documented in the README, stable for users' SQL):
`mentions`, `mention_topics`, `hashtags`, `sources`, `fetches`, `mentions_fts` (FTS5 over
title and text), the hourly rollups kept by triggers (`topic_hourly`, `hashtag_hourly`,
`topic_breakdown_hourly`), alert state and history, the `outbox`, `job_runs` and `_migrations`;
views `topic_daily`, `hashtag_daily` and `mention_details`. Times are UTC ISO-8601 strings
(`2026-11-22T08:00:00Z`), which sort and compare as text and work with SQLite's date functions.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import sqlite_utils

from listener.errors import StoreError
from listener.store.migrations import MIGRATIONS
from listener.store.types import (Counts, HourCounts, MentionRow, SaveResult, SourceHealth, iso,  # noqa: F401
                                  parse_iso)
from listener.sources import SourceState

BUSY_TIMEOUT_MS = 10_000

_ROLLUPS = {
    "topic": ("''", "topic_hourly", "''", ""),
    "source": ("source", "topic_breakdown_hourly", "m.source", ""),
    "language": ("language", "topic_breakdown_hourly", "coalesce(m.language, '')", ""),
    "hashtag": ("hashtag", "hashtag_hourly", "h.hashtag", "JOIN hashtags h ON h.mention_id = t.mention_id"),
}


def _hour_floor(dt: datetime) -> datetime:
    return dt.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def _add(into: dict[str, Counts], key: str, counts: Sequence[int | None]) -> None:
    old = into.get(key, (0, 0, 0, 0))
    into[key] = tuple(a + (b or 0) for a, b in zip(old, counts))  # type: ignore[assignment]


class Store:
    """Read/write access to the mention database (migrated on open)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            self.db = sqlite_utils.Database(conn)
            self.db.enable_wal()
            conn.execute("PRAGMA synchronous = NORMAL")
            self.migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"cannot create database {self.path}: {exc}") from exc

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ migrations
    def migrate(self) -> list[str]:
        """Apply pending migrations in order; returns the names applied."""
        self.conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        done = {r[0] for r in self.conn.execute("SELECT name FROM _migrations")}
        applied = []
        for name, fn in MIGRATIONS:
            if name in done:
                continue
            with self.transaction():  # BEGIN IMMEDIATE: another process migrating waits here
                if self.conn.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
                    continue  # it applied this one while we waited
                fn(self.db)
                self.conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                                  (name, iso(datetime.now(timezone.utc))))
            applied.append(name)
        return applied

    def transaction(self):
        return _Transaction(self.conn)

    # ------------------------------------------------------------ writing a fetch
    def save_fetch(self, source: str, kind: str, rows: Sequence[MentionRow], state: SourceState, *,
                   started_at: datetime, now: datetime, next_check_at: datetime, items: int,
                   requests: int, not_modified: bool = False) -> SaveResult:
        """Store a successful fetch in ONE transaction: mentions, topics, hashtags, source state, log.

        A mention already stored under the same (source, source_id), or under the same canonical
        URL from another source, is not stored twice: its engagement counts are refreshed and the
        new topics linked.
        """
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
        """Store mentions in one transaction without touching any source's state or fetch log (imports).

        Deduplicated exactly like a fetch: same (source, source_id) or same canonical URL.
        """
        with self.transaction():
            return self._save_rows(rows)

    def _save_rows(self, rows: Sequence[MentionRow]) -> SaveResult:
        new_ids: list[int] = []
        updated = 0
        for row in rows:
            mention_id, is_new = self._upsert_mention(row)
            if is_new:
                new_ids.append(mention_id)
            else:
                updated += 1
            pub = iso(row.published_at)
            self.conn.executemany(
                "INSERT OR IGNORE INTO mention_topics (mention_id, topic, published_at) VALUES (?, ?, ?)",
                [(mention_id, t, pub) for t in row.topics])
            if is_new:
                self.conn.executemany(
                    "INSERT OR IGNORE INTO hashtags (mention_id, hashtag, published_at) VALUES (?, ?, ?)",
                    [(mention_id, h, pub) for h in row.hashtags])
        return SaveResult(new_ids, updated)

    def record_failure(self, source: str, kind: str, error: str, *, started_at: datetime, now: datetime,
                       next_check_at: datetime, requests: int = 1) -> int:
        """Record a failed fetch (never as "zero mentions"); returns the consecutive error count."""
        with self.transaction():
            self._ensure_source(source, kind)
            self.conn.execute(
                """UPDATE sources SET last_attempt_at = ?, last_error = ?, last_error_at = ?,
                   consecutive_errors = consecutive_errors + 1, next_check_at = ? WHERE name = ?""",
                (iso(started_at), error, iso(now), iso(next_check_at), source))
            self._log_fetch(source, started_at, now, "error", 0, 0, requests, error)
            return self.conn.execute("SELECT consecutive_errors FROM sources WHERE name = ?", (source,)).fetchone()[0]

    def _ensure_source(self, name: str, kind: str) -> None:
        self.conn.execute("INSERT INTO sources (name, kind) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET kind = excluded.kind",
                          (name, kind))

    def _log_fetch(self, source, started_at, finished_at, status, items, new, requests, error) -> None:
        self.conn.execute(
            """INSERT INTO fetches (source, started_at, finished_at, status, items, new_mentions, requests, error)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            (source, iso(started_at), iso(finished_at), status, items, new, requests, error))

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

    # ------------------------------------------------------------ sources
    def source_health(self, name: str | None = None, *, with_counts: bool = False) -> dict[str, SourceHealth]:
        """Health of every recorded source (or just `name`); mention counts only when asked (a scan)."""
        counts = dict(self.conn.execute("SELECT source, count(*) FROM mentions GROUP BY source")) if with_counts else {}
        cur = self.conn.execute("SELECT * FROM sources" + (" WHERE name = ?" if name else ""), (name,) if name else ())
        names = [c[0] for c in cur.description]
        out = {}
        for r in cur.fetchall():
            d = dict(zip(names, r))
            out[d["name"]] = SourceHealth(
                name=d["name"], kind=d["kind"],
                state=SourceState(d["etag"], d["last_modified"], d["cursor"]),
                last_attempt_at=parse_iso(d["last_attempt_at"]), last_success_at=parse_iso(d["last_success_at"]),
                last_error=d["last_error"], last_error_at=parse_iso(d["last_error_at"]),
                consecutive_errors=d["consecutive_errors"], next_check_at=parse_iso(d["next_check_at"]),
                mentions=counts.get(d["name"], 0))
        return out

    def source_state(self, name: str) -> SourceState:
        r = self.conn.execute("SELECT etag, last_modified, cursor FROM sources WHERE name = ?", (name,)).fetchone()
        return SourceState(*r) if r else SourceState()

    # ------------------------------------------------------------ scoring
    def unscored(self, limit: int = 1000) -> list[tuple[int, str, str | None]]:
        """Mentions without a sentiment yet, oldest first: (id, text, title)."""
        return self.conn.execute(
            "SELECT id, text, title FROM mentions WHERE sentiment IS NULL ORDER BY id LIMIT ?", (limit,)).fetchall()

    def count_unscored(self, *, topic: str | None = None, since: datetime | None = None) -> int:
        """Mentions not scored yet (of `topic`, published since `since`, when given)."""
        if topic is None and since is None:
            return self.conn.execute("SELECT count(*) FROM mentions WHERE sentiment IS NULL").fetchone()[0]
        return self.conn.execute(
            """SELECT count(*) FROM mentions m JOIN mention_topics t ON t.mention_id = m.id
               WHERE m.sentiment IS NULL AND t.topic = coalesce(?, t.topic) AND m.published_at >= ?""",
            (topic, iso(since) if since else "")).fetchone()[0]

    def save_scores(self, scores: Iterable[tuple[int, Any]], model: str, now: datetime) -> int:
        """Write sentiment for (mention id, models.Sentiment) pairs in one transaction."""
        at = iso(now)
        rows = [(s.label, s.p_negative, s.p_neutral, s.p_positive, s.score, model, at, mid) for mid, s in scores]
        with self.transaction():
            self.conn.executemany(
                """UPDATE mentions SET sentiment = ?, p_negative = ?, p_neutral = ?, p_positive = ?,
                   sentiment_score = ?, model = ?, scored_at = ? WHERE id = ?""", rows)
        return len(rows)

    # ------------------------------------------------------------ reading
    def search(self, fts: str | None, accept: Callable[[dict], bool], *, limit: int = 50,
               topic: str | None = None) -> list[dict]:
        """Mentions newest first: FTS5 `fts` as a prefilter (None = scan), then `accept(row)`."""
        params: list[Any] = []
        where = []
        if fts:
            where.append("m.id IN (SELECT rowid FROM mentions_fts WHERE mentions_fts MATCH ?)")
            params.append(fts)
        if topic:
            where.append("m.id IN (SELECT mention_id FROM mention_topics WHERE topic = ?)")
            params.append(topic)
        sql = ("SELECT m.*, (SELECT group_concat(hashtag, ' ') FROM hashtags h WHERE h.mention_id = m.id) AS hashtag_list "
               "FROM mentions m" + (" WHERE " + " AND ".join(where) if where else "") +
               " ORDER BY m.published_at DESC, m.id DESC")
        out = []
        try:
            cur = self.conn.execute(sql, params)
            names = [c[0] for c in cur.description]
            for r in cur:
                row = dict(zip(names, r))
                if accept(row):
                    out.append(row)
                    if len(out) >= limit:
                        break
        except sqlite3.OperationalError as exc:
            raise StoreError(f"search failed: {exc}") from exc
        return out


    def iter_mentions(self, *, since: datetime | None = None, topic: str | None = None, batch: int = 1000):
        """Stored mentions oldest first, with their topics and hashtags (for export); streamed."""
        where, params = [], []
        if since is not None:
            where.append("m.published_at >= ?")
            params.append(iso(since))
        if topic is not None:
            where.append("m.id IN (SELECT mention_id FROM mention_topics WHERE topic = ?)")
            params.append(topic)
        cur = self.conn.execute(
            "SELECT m.*, (SELECT group_concat(topic, ' ') FROM mention_topics t WHERE t.mention_id = m.id) AS topic_list, "
            "(SELECT group_concat(hashtag, ' ') FROM hashtags h WHERE h.mention_id = m.id) AS hashtag_list "
            "FROM mentions m" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY m.published_at, m.id", params)
        names = [c[0] for c in cur.description]
        while rows := cur.fetchmany(batch):
            for r in rows:
                yield dict(zip(names, r))

    # ------------------------------------------------------------ alert evaluation reads
    def topic_data_since(self, topic: str, sources: Sequence[str] | None = None) -> datetime | None:
        """When `topic`'s history begins: its first scored data, and not before the first successful
        fetch of `sources` (None: of any source), when there is one. Before that, no data is not zero."""
        first_hour = self.conn.execute("SELECT min(hour) FROM topic_hourly WHERE topic = ? AND mentions > 0",
                                       (topic,)).fetchone()[0]
        if first_hour is None:
            return None
        first = self.conn.execute(
            """SELECT min(t.published_at) FROM mention_topics t JOIN mentions m ON m.id = t.mention_id
               WHERE t.topic = ? AND t.published_at < ? AND m.sentiment IS NOT NULL""",
            (topic, iso(parse_iso(first_hour) + timedelta(hours=1)))).fetchone()[0]
        since = parse_iso(first or first_hour)
        where, params = "status != 'error'", []
        if sources is not None:
            if not sources:
                return since
            where += f" AND source IN ({','.join('?' * len(sources))})"
            params = list(sources)
        fetched = self.conn.execute(f"SELECT min(started_at) FROM fetches WHERE {where}", params).fetchone()[0]
        return max(since, parse_iso(fetched)) if fetched else since

    def topic_window(self, topic: str, start: datetime, end: datetime) -> dict[str, float]:
        """Scored mentions of `topic` published in [start, end): counts per sentiment, and the sum of
        P(negative) as `p_negative`."""
        r = self.conn.execute(
            """SELECT count(*), coalesce(sum(m.sentiment = 'negative'), 0), coalesce(sum(m.sentiment = 'neutral'), 0),
                      coalesce(sum(m.sentiment = 'positive'), 0), coalesce(sum(m.p_negative), 0)
               FROM mention_topics t JOIN mentions m ON m.id = t.mention_id
               WHERE t.topic = ? AND t.published_at >= ? AND t.published_at < ? AND m.sentiment IS NOT NULL""",
            (topic, iso(start), iso(end))).fetchone()
        return {"mentions": r[0], "negative": r[1], "neutral": r[2], "positive": r[3], "p_negative": r[4]}

    def hashtag_posts(self, topic: str, start: datetime, end: datetime, *,
                      hashtag: str | None = None) -> dict[str, list[tuple[datetime, float, bool]]]:
        """Per hashtag within `topic` (or just `hashtag`), its scored mentions published in [start, end),
        oldest first: (published_at, P(negative), labelled negative)."""
        out: dict[str, list[tuple[datetime, float, bool]]] = {}
        only = " AND h.hashtag = ?" if hashtag is not None else ""
        for tag, at, p_negative, negative in self.conn.execute(
                f"""SELECT h.hashtag, t.published_at, m.p_negative, m.sentiment = 'negative'
                   FROM mention_topics t JOIN hashtags h ON h.mention_id = t.mention_id
                   JOIN mentions m ON m.id = t.mention_id
                   WHERE t.topic = ? AND t.published_at >= ? AND t.published_at < ? AND m.sentiment IS NOT NULL{only}
                   ORDER BY t.published_at""", (topic, iso(start), iso(end), *([hashtag] if hashtag is not None else []))):
            out.setdefault(tag, []).append((parse_iso(at), p_negative or 0.0, bool(negative)))
        return out

    def topic_hours(self, topic: str, start: datetime, end: datetime) -> dict[str, HourCounts]:
        """Hourly rollup of `topic` for hours in [start, end): hour -> (mentions, negative, P(negative) sum,
        positive, P(negative)^2 sum)."""
        return {h: HourCounts(n, neg, pneg, pos, sq) for h, n, neg, pneg, pos, sq in self.conn.execute(
            """SELECT hour, mentions, negative, p_negative, positive, p_negative_sq FROM topic_hourly
               WHERE topic = ? AND hour >= ? AND hour < ?""",
            (topic, iso(start), iso(end)))}

    def hashtag_hours(self, topic: str, hashtag: str, start: datetime, end: datetime) -> dict[str, HourCounts]:
        """Hourly rollup of one hashtag within a topic: hour -> (mentions, negative, P(negative) sum, positive)."""
        return {h: HourCounts(n, neg, pneg, pos) for h, n, neg, pneg, pos in self.conn.execute(
            """SELECT hour, mentions, negative, p_negative, positive FROM hashtag_hourly
               WHERE topic = ? AND hashtag = ? AND hour >= ? AND hour < ?""",
            (topic, hashtag, iso(start), iso(end)))}

    def hashtag_first_seen(self, topic: str, hashtag: str) -> datetime | None:
        """When `hashtag` was first seen in a scored mention of `topic` (its first hour once pruned)."""
        r = self.conn.execute(
            """SELECT min(t.published_at) FROM hashtags h JOIN mention_topics t ON t.mention_id = h.mention_id
               WHERE h.hashtag = ? AND t.topic = ?""", (hashtag, topic)).fetchone()[0]
        hour = self.conn.execute("SELECT min(hour) FROM hashtag_hourly WHERE topic = ? AND hashtag = ? AND mentions > 0",
                                 (topic, hashtag)).fetchone()[0]
        return parse_iso(min(x for x in (r, hour) if x) if (r or hour) else None)

    def hashtag_share(self, topic: str, hashtag: str, start: datetime, end: datetime) -> tuple[int, int]:
        """(mentions of `hashtag`, mentions of `topic`) in the rollup hours [start, end)."""
        r = self.conn.execute(
            """SELECT (SELECT coalesce(sum(mentions), 0) FROM hashtag_hourly WHERE topic = :t AND hashtag = :h
                         AND hour >= :s AND hour < :e),
                      (SELECT coalesce(sum(mentions), 0) FROM topic_hourly WHERE topic = :t AND hour >= :s AND hour < :e)""",
            {"t": topic, "h": hashtag, "s": iso(start), "e": iso(end)}).fetchone()
        return r[0], r[1]

    def examples(self, topic: str | None, start: datetime, end: datetime, *, sentiment: str | None = "negative",
                 hashtag: str | None = None, ids: Sequence[int] | None = None, limit: int = 5) -> list[dict]:
        """The most engaged mentions (likes + reposts + replies + score) matching the filters."""
        where, params = ["m.published_at >= ?", "m.published_at < ?"], [iso(start), iso(end)]
        if topic is not None:
            where.append("m.id IN (SELECT mention_id FROM mention_topics WHERE topic = ? AND published_at >= ? AND published_at < ?)")
            params += [topic, iso(start), iso(end)]
        if sentiment is not None:
            where.append("m.sentiment = ?")
            params.append(sentiment)
        if hashtag is not None:
            where.append("m.id IN (SELECT mention_id FROM hashtags WHERE hashtag = ? AND published_at >= ? AND published_at < ?)")
            params += [hashtag, iso(start), iso(end)]
        if ids is not None:
            where.append(f"m.id IN ({','.join('?' * len(ids))})")
            params += list(ids)
        cur = self.conn.execute(
            f"""SELECT m.id, m.source, m.url, m.author, m.title, m.text, m.published_at, m.sentiment, m.p_negative,
                       m.likes, m.reposts, m.replies, m.score,
                       coalesce(m.likes, 0) + coalesce(m.reposts, 0) + coalesce(m.replies, 0) + coalesce(m.score, 0) AS engagement
                FROM mentions m WHERE {' AND '.join(where)}
                ORDER BY engagement DESC, m.p_negative DESC, m.id LIMIT ?""", (*params, limit))
        names = [c[0] for c in cur.description]
        return [dict(zip(names, r)) for r in cur]

    def mentions_in(self, topic: str, start: datetime, end: datetime) -> list[dict]:
        """Scored mentions of `topic` published in [start, end) (for keyword rules)."""
        cur = self.conn.execute(
            """SELECT m.id, m.text, m.title, m.author,
                      (SELECT group_concat(hashtag, ' ') FROM hashtags h WHERE h.mention_id = m.id) AS hashtag_list
               FROM mention_topics t JOIN mentions m ON m.id = t.mention_id
               WHERE t.topic = ? AND t.published_at >= ? AND t.published_at < ? AND m.sentiment IS NOT NULL""",
            (topic, iso(start), iso(end)))
        names = [c[0] for c in cur.description]
        return [dict(zip(names, r)) for r in cur]

    # ------------------------------------------------------------ digest reads
    def rollup_counts(self, kind: str, topic: str, bounds: Sequence[datetime],
                      keys: Sequence[str] | None = None) -> list[dict[str, Counts]]:
        """Scored mentions of `topic` in each period [bounds[i], bounds[i+1]), per key, from the rollups.

        `kind` is `topic` (one key, ''), `source`, `language` ('' when unknown) or `hashtag`; `keys`
        limits the answer to those. Whole hours come from the hourly rollups; an hour cut by a bound
        that is not on the hour (a time zone such as Asia/Kolkata) is counted from the mentions.
        """
        key, table, raw_key, raw_join = _ROLLUPS[kind]
        out: list[dict[str, Counts]] = [{} for _ in bounds[1:]]
        if len(bounds) < 2 or (keys is not None and not keys):
            return out
        only, only_raw, key_params = "", "", list(keys or ())
        if keys is not None:
            only = f" AND {key} IN ({','.join('?' * len(keys))})"
            only_raw = f" AND {raw_key} IN ({','.join('?' * len(keys))})"
        cut = sorted({_hour_floor(b) for b in bounds if _hour_floor(b) != b})
        cases = " ".join(f"WHEN hour < ? THEN {i}" for i in range(len(bounds) - 1))
        sql = (f"SELECT CASE {cases} END AS period, {key}, sum(mentions), sum(negative), sum(neutral), sum(positive) "
               f"FROM {table} WHERE topic = ? AND hour >= ? AND hour < ?" + only
               + (f" AND hour NOT IN ({','.join('?' * len(cut))})" if cut else "") + " GROUP BY 1, 2")
        params = ([iso(b) for b in bounds[1:]] + [topic, iso(_hour_floor(bounds[0])), iso(bounds[-1])] + key_params
                  + [iso(c) for c in cut])
        for period, k, *counts in self.conn.execute(sql, params):
            _add(out[period], k, counts)
        for hour in cut:  # the pieces of a cut hour, each in its own period
            for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
                lo, hi = max(a, hour), min(b, hour + timedelta(hours=1))
                if lo >= hi:
                    continue
                for k, *counts in self.conn.execute(
                        f"""SELECT {raw_key}, count(*), sum(m.sentiment = 'negative'), sum(m.sentiment = 'neutral'),
                                   sum(m.sentiment = 'positive')
                            FROM mention_topics t {raw_join} JOIN mentions m ON m.id = t.mention_id
                            WHERE t.topic = ? AND t.published_at >= ? AND t.published_at < ?
                              AND m.sentiment IS NOT NULL{only_raw} GROUP BY 1""", (topic, iso(lo), iso(hi), *key_params)):
                    _add(out[i], k, counts)
        return out

    def topic_hourly_counts(self, topic: str, start: datetime, end: datetime) -> dict[str, Counts]:
        """The hourly rollup of `topic` for the hours that start in [start, end): hour -> counts."""
        return {h: (n, neg, neu, pos) for h, n, neg, neu, pos in self.conn.execute(
            "SELECT hour, mentions, negative, neutral, positive FROM topic_hourly WHERE topic = ? AND hour >= ? AND hour < ?",
            (topic, iso(start), iso(end)))}

    def top_mentions(self, topic: str, start: datetime, end: datetime, sentiments: Sequence[str] = ("positive", "negative"),
                     per_sentiment: int = 3) -> dict[str, list[dict]]:
        """The most engaged mentions of `topic` published in [start, end), per sentiment.

        Engagement is likes + reposts + replies + score; ties go to the stronger sentiment, then the oldest id.
        """
        out: dict[str, list[dict]] = {}
        for sentiment in sentiments:
            cur = self.conn.execute(
                """SELECT m.id, m.source, m.url, m.author, m.title, m.text, m.language, m.published_at, m.sentiment,
                          m.sentiment_score, m.likes, m.reposts, m.replies, m.score,
                          coalesce(m.likes, 0) + coalesce(m.reposts, 0) + coalesce(m.replies, 0) + coalesce(m.score, 0)
                              AS engagement
                   FROM mention_topics t JOIN mentions m ON m.id = t.mention_id
                   WHERE t.topic = ? AND t.published_at >= ? AND t.published_at < ? AND m.sentiment = ?
                   ORDER BY engagement DESC, abs(m.sentiment_score) DESC, m.id LIMIT ?""",
                (topic, iso(start), iso(end), sentiment, per_sentiment))
            names = [c[0] for c in cur.description]
            out[sentiment] = [dict(zip(names, r)) for r in cur]
        return out

    def source_failures(self, start: datetime, end: datetime) -> list[dict]:
        """Every recorded source with its failed and good fetches in [start, end) and its current error streak.

        `failing_since` is the first failed fetch of the current streak (None when it is not failing now).
        """
        cur = self.conn.execute(
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
               FROM sources s ORDER BY s.name""", {"start": iso(start), "end": iso(end)})
        names = [c[0] for c in cur.description]
        return [dict(zip(names, r)) for r in cur]

    # ------------------------------------------------------------ alert state
    def alert_states(self, rule: str | None = None) -> list[dict]:
        cur = self.conn.execute("SELECT * FROM alert_state" + (" WHERE rule = ?" if rule else "") + " ORDER BY rule, labels",
                                (rule,) if rule else ())
        names = [c[0] for c in cur.description]
        return [dict(zip(names, r)) for r in cur]

    def alert_events(self, since: datetime, until: datetime | None = None) -> list[dict]:
        cur = self.conn.execute("SELECT * FROM alert_events WHERE at >= ? AND at < ? ORDER BY at, id",
                                (iso(since), iso(until) if until else "9999"))
        names = [c[0] for c in cur.description]
        return [dict(zip(names, r)) for r in cur]

    def add_alert_event(self, rule: str, labels: str, state: str, at: datetime, value: float | None,
                        summary: str, details: str | None, incident_id: int | None = None) -> None:
        """Record one transition on its own (imports of history; evaluations write theirs in
        `save_alert_evaluation`)."""
        with self.transaction():
            self.conn.execute(
                """INSERT INTO alert_events (rule, labels, state, at, value, summary, details, incident_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)""", (rule, labels, state, iso(at), value, summary, details, incident_id))

    def open_incidents(self) -> list[dict]:
        cur = self.conn.execute("SELECT * FROM incidents WHERE state = 'open' ORDER BY id")
        names = [c[0] for c in cur.description]
        return [dict(zip(names, r)) for r in cur]

    def incidents(self, since: datetime, until: datetime | None = None) -> list[dict]:
        """Incidents open at some time in [since, until): opened before `until`, not closed before `since`."""
        cur = self.conn.execute(
            "SELECT * FROM incidents WHERE opened_at < ? AND (closed_at IS NULL OR closed_at >= ?) ORDER BY opened_at, id",
            (iso(until) if until else "9999", iso(since)))
        names = [c[0] for c in cur.description]
        rows = [dict(zip(names, r)) for r in cur]
        for r in rows:
            for key in ("hashtags", "rules", "members", "announced"):
                r[key] = json.loads(r[key])
            r["lead"] = json.loads(r["lead"]) if r["lead"] else None
        return rows

    def save_alert_evaluation(self, *, states: dict[str, dict[str, dict]], events: Sequence[dict],
                              incidents: Sequence[dict], outbox: Sequence[dict], evaluations: Sequence[dict]) -> dict[str, int]:
        """Write one evaluation in ONE transaction: the instances of every evaluated rule (replacing
        its old ones), its transitions, incidents opened or changed, their notifications and the
        rules' evaluation records. Returns topic -> incident id for the incidents written (events
        of a topic are linked to its incident)."""
        ids: dict[str, int] = {}
        with self.transaction():
            for rule, rows in states.items():
                self.conn.execute("DELETE FROM alert_state WHERE rule = ?", (rule,))
                self.conn.executemany(
                    """INSERT INTO alert_state (rule, labels, state, active_since, fired_at, last_active_at,
                           last_notified_at, value, details)
                       VALUES (:rule, :labels, :state, :active_since, :fired_at, :last_active_at, :last_notified_at,
                               :value, :details)""", list(rows.values()))
            for row in self.open_incidents():
                ids[row["topic"]] = row["id"]
            for inc in incidents:
                if inc["id"] is None:
                    cur = self.conn.execute(
                        f"INSERT INTO incidents ({', '.join(k for k in inc if k != 'id')}) "
                        f"VALUES ({', '.join(':' + k for k in inc if k != 'id')})", inc)
                    ids[inc["topic"]] = cur.lastrowid
                else:
                    self.conn.execute(f"UPDATE incidents SET {', '.join(f'{k} = :{k}' for k in inc if k != 'id')} "
                                      "WHERE id = :id", inc)
                    ids[inc["topic"]] = inc["id"]
            self.conn.executemany(
                """INSERT INTO alert_events (rule, labels, state, at, value, summary, details, incident_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                [(e["rule"], e["labels"], e["state"], iso(e["at"]), e["value"], e["summary"], e["details"],
                  ids.get(e["topic"]) if e.get("topic") else None) for e in events])
            for row in outbox:
                row = dict(row)
                topic = row.pop("incident_topic", None)
                if topic is not None and row["payload"] is not None and row["payload"].get("incident") is None:
                    row["payload"] = {**row["payload"], "incident": ids.get(topic)}  # a new incident's id
                self.enqueue(**row)
            for e in evaluations:
                self.conn.execute(
                    """INSERT INTO rule_evaluations (rule, last_evaluated_at, last_error, instances, status)
                       VALUES (?, ?, ?, ?, ?)
                       ON CONFLICT(rule) DO UPDATE SET last_evaluated_at = excluded.last_evaluated_at,
                         last_error = excluded.last_error, instances = excluded.instances, status = excluded.status""",
                    (e["rule"], iso(e["now"]), e["error"], e["instances"], e["status"]))
        return ids

    def rule_evaluations(self) -> dict[str, dict]:
        cur = self.conn.execute("SELECT * FROM rule_evaluations")
        names = [c[0] for c in cur.description]
        return {r[0]: dict(zip(names, r)) for r in cur}

    # ------------------------------------------------------------ outbox
    def enqueue(self, *, message_id: str, channel: str, kind: str, recipients: Sequence[str], subject: str,
                body_text: str, body_html: str | None, payload: dict | None, now: datetime) -> bool:
        """Queue a notification (inside the caller's transaction); False when that message id exists."""
        cur = self.conn.execute(
            """INSERT OR IGNORE INTO outbox (message_id, channel, kind, recipients, subject, body_text, body_html,
                   payload, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (message_id, channel, kind, json.dumps(list(recipients)), subject, body_text, body_html,
             json.dumps(payload) if payload is not None else None, iso(now), iso(now)))
        return cur.rowcount == 1

    def outbox_has(self, message_id: str) -> bool:
        """Whether a notification with this message id was ever queued (sent or not)."""
        return self.conn.execute("SELECT 1 FROM outbox WHERE message_id = ?", (message_id,)).fetchone() is not None

    def outbox_status(self, message_id: str) -> dict | None:
        """created_at, attempts, sent_at and last_error of one queued notification, or None."""
        cur = self.conn.execute("SELECT created_at, attempts, sent_at, last_error FROM outbox WHERE message_id = ?",
                                (message_id,))
        r = cur.fetchone()
        return dict(zip([c[0] for c in cur.description], r)) if r else None

    def due_notifications(self, now: datetime, limit: int = 100) -> list[dict]:
        cur = self.conn.execute(
            """SELECT * FROM outbox WHERE sent_at IS NULL AND given_up_at IS NULL AND next_attempt_at <= ?
               ORDER BY id LIMIT ?""", (iso(now), limit))
        names = [c[0] for c in cur.description]
        rows = [dict(zip(names, r)) for r in cur]
        for r in rows:
            r["recipients"] = json.loads(r["recipients"])
            r["payload"] = json.loads(r["payload"]) if r["payload"] else None
        return rows

    def mark_sent(self, outbox_id: int, now: datetime) -> None:
        with self.transaction():
            self.conn.execute("UPDATE outbox SET sent_at = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?",
                              (iso(now), outbox_id))

    def mark_failed(self, outbox_id: int, error: str, next_attempt_at: datetime) -> None:
        with self.transaction():
            self.conn.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?",
                              (error, iso(next_attempt_at), outbox_id))

    def collected_between(self, start: datetime, end: datetime) -> bool:
        """Whether listener collected anything in [start, end): a fetch attempt, or a mention stored."""
        fetched = self.conn.execute("SELECT 1 FROM fetches WHERE started_at >= ? AND started_at < ? LIMIT 1",
                                    (iso(start), iso(end))).fetchone()
        return fetched is not None or self.conn.execute(
            "SELECT 1 FROM mentions WHERE fetched_at >= ? AND fetched_at < ? LIMIT 1", (iso(start), iso(end))).fetchone() is not None

    def mark_given_up(self, outbox_id: int, error: str, now: datetime) -> None:
        """A notification no retry can deliver: kept with its error, never attempted again."""
        with self.transaction():
            self.conn.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ?, given_up_at = ? WHERE id = ?",
                              (error, iso(now), outbox_id))

    def outbox_counts(self) -> dict[str, int]:
        r = self.conn.execute(
            """SELECT coalesce(sum(sent_at IS NULL AND given_up_at IS NULL), 0), count(sent_at),
                      count(given_up_at) FROM outbox""").fetchone()
        return {"queued": r[0], "sent": r[1], "given_up": r[2]}

    def outbox_problems(self) -> list[dict]:
        """Why notifications are not going out, per channel: the queued ones that failed (how many,
        since when, the last error, the next attempt) and the given-up ones."""
        cur = self.conn.execute(
            """SELECT channel, given_up_at IS NOT NULL AS given_up, count(*) AS count, min(created_at) AS oldest,
                      min(next_attempt_at) AS next_attempt_at,
                      (SELECT o2.last_error FROM outbox o2 WHERE o2.channel = o.channel AND o2.sent_at IS NULL
                         AND (o2.given_up_at IS NOT NULL) = (o.given_up_at IS NOT NULL) AND o2.last_error IS NOT NULL
                       ORDER BY o2.id DESC LIMIT 1) AS last_error
               FROM outbox o WHERE sent_at IS NULL AND (last_error IS NOT NULL OR given_up_at IS NOT NULL)
               GROUP BY channel, given_up ORDER BY given_up, channel""")
        names = [c[0] for c in cur.description]
        return [{**dict(zip(names, r)), "given_up": bool(r[1])} for r in cur]


    # ------------------------------------------------------------ retention and jobs
    def prune(self, before: datetime, *, batch: int = 5000, on_batch: Callable[[int], None] | None = None) -> int:
        """Delete mentions published before `before`, `batch` at a time, each batch its own transaction.

        Their topics and hashtags go with them (ON DELETE CASCADE) and the FTS index follows by
        trigger; the hourly rollups keep their counts. Between batches other writers get their turn.
        """
        return self._delete_batched("mentions", "published_at < ?", (iso(before),), batch, on_batch,
                                    order_by="published_at")

    def prune_logs(self, before: datetime, *, batch: int = 5000) -> dict[str, int]:
        """Delete log rows older than `before`, in batches like `prune`: fetch attempts, alert events
        and notifications already delivered (unsent ones stay queued, whatever their age). Counts per table."""
        cutoff = (iso(before),)
        return {
            "fetches": self._delete_batched("fetches", "started_at < ?", cutoff, batch),
            "alert_events": self._delete_batched("alert_events", "at < ?", cutoff, batch),
            "incidents": self._delete_batched("incidents", "state = 'closed' AND closed_at < ?", cutoff, batch),
            "outbox": self._delete_batched("outbox", "coalesce(sent_at, given_up_at) < ?", cutoff, batch),
        }

    def _delete_batched(self, table: str, where: str, params: tuple, batch: int,
                        on_batch: Callable[[int], None] | None = None, order_by: str = "id") -> int:
        """DELETE the rows of `table` matching `where`, `batch` per transaction (oldest first by
        `order_by`); the total."""
        total = 0
        select = f"SELECT id FROM {table} WHERE {where} ORDER BY {order_by} LIMIT ?"
        while True:
            with self.transaction():
                n = self.conn.execute(f"DELETE FROM {table} WHERE id IN ({select})", (*params, batch)).rowcount
            total += n
            if on_batch and n:
                on_batch(n)
            if n < batch:
                return total

    def last_job_run(self, job: str) -> datetime | None:
        r = self.conn.execute("SELECT last_run_at FROM job_runs WHERE job = ?", (job,)).fetchone()
        return parse_iso(r[0]) if r else None

    def record_job_run(self, job: str, at: datetime, detail: str | None = None) -> None:
        with self.transaction():
            self.conn.execute(
                """INSERT INTO job_runs (job, last_run_at, detail) VALUES (?, ?, ?)
                   ON CONFLICT(job) DO UPDATE SET last_run_at = excluded.last_run_at, detail = excluded.detail""",
                (job, iso(at), detail))


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception (the connection is autocommit).

    A database error inside (a full disk, a locked file past the busy timeout) rolls the whole
    batch back and is raised as a one-line StoreError: nothing half-written, nothing lost (the
    cursor was not saved, so the next fetch reads the same items again).
    """

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.depth_owner = False

    def __enter__(self):
        if not self.conn.in_transaction:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreError(f"cannot write to the database: {exc}") from exc
            self.depth_owner = True
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        if not self.depth_owner:
            return False
        if exc_type is None:
            try:
                self.conn.execute("COMMIT")
                return False
            except sqlite3.Error as commit_error:
                exc = commit_error
        if self.conn.in_transaction:  # SQLite may already have rolled back (e.g. on a full disk)
            self.conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise StoreError(f"cannot write to the database (nothing of this batch was saved): {exc}") from exc
        return False
