"""The mention database: the only module that speaks SQL.

One SQLite file in WAL mode. Tables (documented in the README, stable for users' SQL):
`mentions`, `mention_topics`, `hashtags`, `sources`, `fetches`, `mentions_fts` (FTS5 over
title and text) and `_migrations`. Times are UTC ISO-8601 strings (`2026-11-22T08:00:00Z`),
which sort and compare as text and work with SQLite's date functions.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import sqlite_utils

from listener.errors import StoreError
from sources import SourceState

BUSY_TIMEOUT_MS = 10_000


def iso(dt: datetime | None) -> str | None:
    """UTC ISO-8601 with a Z, to the second: the one time format in the database."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# ---------------------------------------------------------------- migrations
MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = []


def migration(fn: Callable[[sqlite_utils.Database], None]):
    """Register a migration; they run in definition order, each once, recorded in `_migrations`."""
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@migration
def m001_initial(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE mentions (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,            -- the [[sources]] name it came from
            source_id TEXT NOT NULL,         -- its id within that source (guid, status id...)
            url TEXT,                        -- canonical URL (no utm_*, no fragment, lower-case host)
            author TEXT,
            title TEXT,
            text TEXT NOT NULL,              -- plain text: HTML stripped, entities decoded
            language TEXT,                   -- ISO 639-1, from the source or detected
            language_detected INTEGER NOT NULL DEFAULT 0,  -- 1 when detected, 0 when the source said
            published_at TEXT NOT NULL,      -- UTC ISO-8601; fetched_at when the source gives none
            fetched_at TEXT NOT NULL,
            likes INTEGER, reposts INTEGER, replies INTEGER, score INTEGER,
            sentiment TEXT,                  -- negative / neutral / positive; NULL until scored
            p_negative REAL, p_neutral REAL, p_positive REAL,
            sentiment_score REAL,            -- p_positive - p_negative, in [-1, 1]
            model TEXT,                      -- the model that scored it
            scored_at TEXT,
            UNIQUE (source, source_id)
        );
        CREATE UNIQUE INDEX mentions_url ON mentions(url) WHERE url IS NOT NULL;
        CREATE INDEX mentions_published ON mentions(published_at);
        CREATE INDEX mentions_unscored ON mentions(id) WHERE sentiment IS NULL;

        CREATE TABLE mention_topics (
            mention_id INTEGER NOT NULL REFERENCES mentions(id) ON DELETE CASCADE,
            topic TEXT NOT NULL,
            published_at TEXT NOT NULL,      -- copy of mentions.published_at: per-topic time series
            PRIMARY KEY (mention_id, topic)
        ) WITHOUT ROWID;
        CREATE INDEX mention_topics_topic_time ON mention_topics(topic, published_at);

        CREATE TABLE hashtags (
            mention_id INTEGER NOT NULL REFERENCES mentions(id) ON DELETE CASCADE,
            hashtag TEXT NOT NULL,           -- lower-case, without '#'
            published_at TEXT NOT NULL,
            PRIMARY KEY (mention_id, hashtag)
        ) WITHOUT ROWID;
        CREATE INDEX hashtags_tag_time ON hashtags(hashtag, published_at);

        CREATE TABLE sources (
            name TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            etag TEXT, last_modified TEXT, cursor TEXT,
            last_attempt_at TEXT, last_success_at TEXT,
            last_error TEXT, last_error_at TEXT,
            consecutive_errors INTEGER NOT NULL DEFAULT 0,
            next_check_at TEXT
        );

        CREATE TABLE fetches (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT NOT NULL,
            status TEXT NOT NULL,            -- ok / not_modified / error
            items INTEGER NOT NULL DEFAULT 0,   -- items the source returned
            new_mentions INTEGER NOT NULL DEFAULT 0,
            requests INTEGER NOT NULL DEFAULT 0,
            error TEXT
        );
        CREATE INDEX fetches_source_time ON fetches(source, started_at);
        """
    )
    db["mentions"].enable_fts(["title", "text"], create_triggers=True,
                              tokenize="unicode61 remove_diacritics 2")


# ---------------------------------------------------------------- rows
@dataclass(frozen=True)
class MentionRow:
    """A mention ready to store: matched, canonicalised, language known."""

    source: str
    source_id: str
    text: str
    published_at: datetime
    fetched_at: datetime
    topics: tuple[str, ...]
    hashtags: tuple[str, ...] = ()
    url: str | None = None
    author: str | None = None
    title: str | None = None
    language: str | None = None
    language_detected: bool = False
    likes: int | None = None
    reposts: int | None = None
    replies: int | None = None
    score: int | None = None


@dataclass(frozen=True)
class SaveResult:
    new_ids: list[int] = field(default_factory=list)
    updated: int = 0  # already stored (same source id or same URL): engagement/topics refreshed


@dataclass(frozen=True)
class SourceHealth:
    name: str
    kind: str
    state: SourceState
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_errors: int
    next_check_at: datetime | None
    mentions: int = 0


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
            with self.transaction():
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
        new_ids: list[int] = []
        updated = 0
        with self.transaction():
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
            self._ensure_source(source, kind)
            self.conn.execute(
                """UPDATE sources SET etag = ?, last_modified = ?, cursor = ?, last_attempt_at = ?,
                   last_success_at = ?, consecutive_errors = 0, next_check_at = ? WHERE name = ?""",
                (state.etag, state.last_modified, state.cursor, iso(started_at), iso(now),
                 iso(next_check_at), source))
            self._log_fetch(source, started_at, now, "not_modified" if not_modified else "ok",
                            items, len(new_ids), requests, None)
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

    def count_unscored(self) -> int:
        return self.conn.execute("SELECT count(*) FROM mentions WHERE sentiment IS NULL").fetchone()[0]

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
    def counts(self) -> dict[str, int]:
        return {
            "mentions": self.conn.execute("SELECT count(*) FROM mentions").fetchone()[0],
            "unscored": self.count_unscored(),
        }

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


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception (the connection is autocommit)."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.depth_owner = False

    def __enter__(self):
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN IMMEDIATE")
            self.depth_owner = True
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        if not self.depth_owner:
            return False
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")
        return False


# ---------------------------------------------------------------- read-only SQL
@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple]


def run_readonly(path: str | Path, sql: str, params: dict[str, Any] | Sequence[Any] | None = None, *,
                 time_limit: float = 30.0, max_rows: int | None = None) -> QueryResult:
    """Run user SQL on a read-only connection (mode=ro, query_only) under a time limit."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"database {path} does not exist (run `listener init` or `listener fetch` first)")
    conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute("PRAGMA query_only = 1")
        deadline = time.monotonic() + time_limit
        conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10_000)
        try:
            cur = conn.execute(sql, params or ())
            columns = [c[0] for c in cur.description] if cur.description else []
            rows = cur.fetchmany(max_rows) if max_rows else cur.fetchall()
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                raise StoreError(f"query stopped after the {time_limit:g}s time limit") from exc
            if "readonly" in str(exc) or "read-only" in str(exc) or "attempt to write" in str(exc):
                raise StoreError("the database is opened read-only here: only SELECT queries are allowed") from exc
            raise StoreError(f"SQL error: {exc}") from exc
        except sqlite3.ProgrammingError as exc:
            raise StoreError(f"SQL error: {exc}") from exc
        return QueryResult(columns, rows)
    finally:
        conn.close()

