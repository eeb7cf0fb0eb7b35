"""The mention database: the only module that speaks SQL.

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
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple, Sequence

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


Counts = tuple[int, int, int, int]  # scored mentions: (mentions, negative, neutral, positive)


class HourCounts(NamedTuple):
    """One hour of a rollup, as alert rules read it."""

    mentions: int
    negative: int  # labelled negative
    p_negative: float  # sum of P(negative): the model's expected number of negatives
    positive: int
    p_negative_sq: float = 0.0  # sum of P(negative)^2: with the sum, how spread the model's P(negative) is (topics)

# rollup_counts kinds: (key in the rollup, rollup table, the same key over the mentions, extra join)
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


@migration
def m002_rollups_alerts_outbox(db: sqlite_utils.Database) -> None:
    """Hourly rollups kept by triggers, alert state and history, the notification outbox."""
    db.executescript(
        """
        -- scored mentions per topic per hour (hour = 'YYYY-MM-DDTHH:00:00Z' of published_at)
        CREATE TABLE topic_hourly (
            topic TEXT NOT NULL, hour TEXT NOT NULL,
            mentions INTEGER NOT NULL DEFAULT 0, negative INTEGER NOT NULL DEFAULT 0,
            neutral INTEGER NOT NULL DEFAULT 0, positive INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (topic, hour)
        ) WITHOUT ROWID;
        -- scored mentions per topic per hashtag per hour
        CREATE TABLE hashtag_hourly (
            topic TEXT NOT NULL, hashtag TEXT NOT NULL, hour TEXT NOT NULL,
            mentions INTEGER NOT NULL DEFAULT 0, negative INTEGER NOT NULL DEFAULT 0,
            neutral INTEGER NOT NULL DEFAULT 0, positive INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (topic, hashtag, hour)
        ) WITHOUT ROWID;

        CREATE TRIGGER mentions_scored AFTER UPDATE OF sentiment ON mentions
        WHEN old.sentiment IS NOT new.sentiment
        BEGIN
            INSERT OR IGNORE INTO topic_hourly (topic, hour)
                SELECT topic, substr(new.published_at, 1, 13) || ':00:00Z' FROM mention_topics WHERE mention_id = new.id;
            UPDATE topic_hourly SET
                mentions = mentions + (new.sentiment IS NOT NULL) - (old.sentiment IS NOT NULL),
                negative = negative + (new.sentiment IS 'negative') - (old.sentiment IS 'negative'),
                neutral = neutral + (new.sentiment IS 'neutral') - (old.sentiment IS 'neutral'),
                positive = positive + (new.sentiment IS 'positive') - (old.sentiment IS 'positive')
            WHERE hour = substr(new.published_at, 1, 13) || ':00:00Z'
              AND topic IN (SELECT topic FROM mention_topics WHERE mention_id = new.id);
            INSERT OR IGNORE INTO hashtag_hourly (topic, hashtag, hour)
                SELECT t.topic, h.hashtag, substr(new.published_at, 1, 13) || ':00:00Z'
                FROM mention_topics t JOIN hashtags h ON h.mention_id = t.mention_id WHERE t.mention_id = new.id;
            UPDATE hashtag_hourly SET
                mentions = mentions + (new.sentiment IS NOT NULL) - (old.sentiment IS NOT NULL),
                negative = negative + (new.sentiment IS 'negative') - (old.sentiment IS 'negative'),
                neutral = neutral + (new.sentiment IS 'neutral') - (old.sentiment IS 'neutral'),
                positive = positive + (new.sentiment IS 'positive') - (old.sentiment IS 'positive')
            WHERE hour = substr(new.published_at, 1, 13) || ':00:00Z'
              AND topic IN (SELECT topic FROM mention_topics WHERE mention_id = new.id)
              AND hashtag IN (SELECT hashtag FROM hashtags WHERE mention_id = new.id);
        END;

        -- a scored mention linked to one more topic later (same URL from another source)
        CREATE TRIGGER mention_topic_added AFTER INSERT ON mention_topics
        WHEN (SELECT sentiment FROM mentions WHERE id = new.mention_id) IS NOT NULL
        BEGIN
            INSERT OR IGNORE INTO topic_hourly (topic, hour) VALUES (new.topic, substr(new.published_at, 1, 13) || ':00:00Z');
            UPDATE topic_hourly SET mentions = mentions + 1,
                negative = negative + ((SELECT sentiment FROM mentions WHERE id = new.mention_id) = 'negative'),
                neutral = neutral + ((SELECT sentiment FROM mentions WHERE id = new.mention_id) = 'neutral'),
                positive = positive + ((SELECT sentiment FROM mentions WHERE id = new.mention_id) = 'positive')
            WHERE topic = new.topic AND hour = substr(new.published_at, 1, 13) || ':00:00Z';
            INSERT OR IGNORE INTO hashtag_hourly (topic, hashtag, hour)
                SELECT new.topic, hashtag, substr(new.published_at, 1, 13) || ':00:00Z' FROM hashtags WHERE mention_id = new.mention_id;
            UPDATE hashtag_hourly SET mentions = mentions + 1,
                negative = negative + ((SELECT sentiment FROM mentions WHERE id = new.mention_id) = 'negative'),
                neutral = neutral + ((SELECT sentiment FROM mentions WHERE id = new.mention_id) = 'neutral'),
                positive = positive + ((SELECT sentiment FROM mentions WHERE id = new.mention_id) = 'positive')
            WHERE topic = new.topic AND hour = substr(new.published_at, 1, 13) || ':00:00Z'
              AND hashtag IN (SELECT hashtag FROM hashtags WHERE mention_id = new.mention_id);
        END;

        -- the current state of every alert instance (rule + labels)
        CREATE TABLE alert_state (
            rule TEXT NOT NULL,
            labels TEXT NOT NULL,            -- JSON object, keys sorted: the instance's identity
            state TEXT NOT NULL,             -- pending / firing
            active_since TEXT NOT NULL,      -- when the condition became true (pending since)
            fired_at TEXT,
            last_active_at TEXT NOT NULL,    -- last evaluation that found the condition true
            last_notified_at TEXT,
            value REAL,
            details TEXT,                    -- JSON: the numbers and examples of the last evaluation
            PRIMARY KEY (rule, labels)
        ) WITHOUT ROWID;

        -- every transition: pending, firing, resolved (and repeat notifications)
        CREATE TABLE alert_events (
            id INTEGER PRIMARY KEY,
            rule TEXT NOT NULL,
            labels TEXT NOT NULL,
            state TEXT NOT NULL,             -- pending / firing / resolved / inactive / repeat
            at TEXT NOT NULL,
            value REAL,
            summary TEXT,
            details TEXT
        );
        CREATE INDEX alert_events_at ON alert_events(at);

        CREATE TABLE rule_evaluations (
            rule TEXT PRIMARY KEY,
            last_evaluated_at TEXT NOT NULL,
            last_error TEXT,
            instances INTEGER NOT NULL DEFAULT 0
        );

        -- notifications to deliver, written in the same transaction as what caused them
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            message_id TEXT NOT NULL UNIQUE, -- also the Message-ID header: re-delivery is idempotent
            channel TEXT NOT NULL,           -- email / webhook:NAME
            kind TEXT NOT NULL,              -- alert / source_down / digest
            recipients TEXT NOT NULL,        -- JSON list
            subject TEXT NOT NULL,
            body_text TEXT NOT NULL,
            body_html TEXT,
            payload TEXT,                    -- JSON for webhooks; attachments for email
            created_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            sent_at TEXT,
            last_error TEXT
        );
        CREATE INDEX outbox_pending ON outbox(next_attempt_at) WHERE sent_at IS NULL;
        """
    )


@migration
def m003_digest_rollups_views_jobs(db: sqlite_utils.Database) -> None:
    """Hourly counts per topic by source and language (triggers), reading views, a job log."""
    db.executescript(
        """
        -- scored mentions per topic per hour, by source and language ('' when unknown)
        CREATE TABLE topic_breakdown_hourly (
            topic TEXT NOT NULL, hour TEXT NOT NULL, source TEXT NOT NULL, language TEXT NOT NULL,
            mentions INTEGER NOT NULL DEFAULT 0, negative INTEGER NOT NULL DEFAULT 0,
            neutral INTEGER NOT NULL DEFAULT 0, positive INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (topic, hour, source, language)
        ) WITHOUT ROWID;

        CREATE TRIGGER mentions_scored_breakdown AFTER UPDATE OF sentiment ON mentions
        WHEN old.sentiment IS NOT new.sentiment
        BEGIN
            INSERT INTO topic_breakdown_hourly (topic, hour, source, language, mentions, negative, neutral, positive)
                SELECT topic, substr(new.published_at, 1, 13) || ':00:00Z', new.source, coalesce(new.language, ''),
                       (new.sentiment IS NOT NULL) - (old.sentiment IS NOT NULL),
                       (new.sentiment IS 'negative') - (old.sentiment IS 'negative'),
                       (new.sentiment IS 'neutral') - (old.sentiment IS 'neutral'),
                       (new.sentiment IS 'positive') - (old.sentiment IS 'positive')
                FROM mention_topics WHERE mention_id = new.id
            ON CONFLICT (topic, hour, source, language) DO UPDATE SET
                mentions = mentions + excluded.mentions, negative = negative + excluded.negative,
                neutral = neutral + excluded.neutral, positive = positive + excluded.positive;
        END;

        CREATE TRIGGER mention_topic_added_breakdown AFTER INSERT ON mention_topics
        WHEN (SELECT sentiment FROM mentions WHERE id = new.mention_id) IS NOT NULL
        BEGIN
            INSERT INTO topic_breakdown_hourly (topic, hour, source, language, mentions, negative, neutral, positive)
                SELECT new.topic, substr(new.published_at, 1, 13) || ':00:00Z', m.source, coalesce(m.language, ''), 1,
                       m.sentiment = 'negative', m.sentiment = 'neutral', m.sentiment = 'positive'
                FROM mentions m WHERE m.id = new.mention_id
            ON CONFLICT (topic, hour, source, language) DO UPDATE SET
                mentions = mentions + excluded.mentions, negative = negative + excluded.negative,
                neutral = neutral + excluded.neutral, positive = positive + excluded.positive;
        END;

        INSERT INTO topic_breakdown_hourly (topic, hour, source, language, mentions, negative, neutral, positive)
            SELECT t.topic, substr(t.published_at, 1, 13) || ':00:00Z', m.source, coalesce(m.language, ''), count(*),
                   sum(m.sentiment = 'negative'), sum(m.sentiment = 'neutral'), sum(m.sentiment = 'positive')
            FROM mention_topics t JOIN mentions m ON m.id = t.mention_id
            WHERE m.sentiment IS NOT NULL GROUP BY 1, 2, 3, 4;

        -- a day's hashtags of one topic without reading every hashtag's history
        CREATE INDEX hashtag_hourly_topic_hour ON hashtag_hourly(topic, hour);

        -- per UTC day, from the hourly rollups (so they outlive pruned mentions)
        CREATE VIEW topic_daily AS
            SELECT topic, substr(hour, 1, 10) AS day, sum(mentions) AS mentions, sum(negative) AS negative,
                   sum(neutral) AS neutral, sum(positive) AS positive,
                   round(1.0 * (sum(positive) - sum(negative)) / nullif(sum(positive) + sum(negative), 0), 4) AS net_sentiment
            FROM topic_hourly GROUP BY topic, substr(hour, 1, 10);
        CREATE VIEW hashtag_daily AS
            SELECT topic, hashtag, substr(hour, 1, 10) AS day, sum(mentions) AS mentions, sum(negative) AS negative,
                   sum(neutral) AS neutral, sum(positive) AS positive,
                   round(1.0 * (sum(positive) - sum(negative)) / nullif(sum(positive) + sum(negative), 0), 4) AS net_sentiment
            FROM hashtag_hourly GROUP BY topic, hashtag, substr(hour, 1, 10);
        -- one row per mention with its topics and hashtags as space-separated text, and its engagement
        CREATE VIEW mention_details AS
            SELECT m.*,
                   coalesce(m.likes, 0) + coalesce(m.reposts, 0) + coalesce(m.replies, 0) + coalesce(m.score, 0) AS engagement,
                   (SELECT group_concat(topic, ' ') FROM (SELECT topic FROM mention_topics
                        WHERE mention_id = m.id ORDER BY topic)) AS topics,
                   (SELECT group_concat(hashtag, ' ') FROM (SELECT hashtag FROM hashtags
                        WHERE mention_id = m.id ORDER BY hashtag)) AS hashtags
            FROM mentions m;

        -- the last run of periodic maintenance jobs (retention), so a restart does not repeat them
        CREATE TABLE job_runs (
            job TEXT PRIMARY KEY,
            last_run_at TEXT NOT NULL,
            detail TEXT
        );
        """
    )


@migration
def m004_expected_negatives_incidents(db: sqlite_utils.Database) -> None:
    """Rollups also sum P(negative) (the model's expected negatives); incidents group alerts."""
    db.executescript(
        """
        ALTER TABLE topic_hourly ADD COLUMN p_negative REAL NOT NULL DEFAULT 0;
        ALTER TABLE hashtag_hourly ADD COLUMN p_negative REAL NOT NULL DEFAULT 0;
        UPDATE topic_hourly SET p_negative = coalesce((
            SELECT sum(m.p_negative) FROM mention_topics t JOIN mentions m ON m.id = t.mention_id
            WHERE t.topic = topic_hourly.topic AND m.sentiment IS NOT NULL
              AND substr(t.published_at, 1, 13) || ':00:00Z' = topic_hourly.hour), 0);
        UPDATE hashtag_hourly SET p_negative = coalesce((
            SELECT sum(m.p_negative) FROM mention_topics t JOIN hashtags h ON h.mention_id = t.mention_id
            JOIN mentions m ON m.id = t.mention_id
            WHERE t.topic = hashtag_hourly.topic AND h.hashtag = hashtag_hourly.hashtag AND m.sentiment IS NOT NULL
              AND substr(t.published_at, 1, 13) || ':00:00Z' = hashtag_hourly.hour), 0);

        DROP TRIGGER mentions_scored;
        CREATE TRIGGER mentions_scored AFTER UPDATE OF sentiment, p_negative ON mentions
        WHEN old.sentiment IS NOT new.sentiment OR old.p_negative IS NOT new.p_negative
        BEGIN
            INSERT OR IGNORE INTO topic_hourly (topic, hour)
                SELECT topic, substr(new.published_at, 1, 13) || ':00:00Z' FROM mention_topics WHERE mention_id = new.id;
            UPDATE topic_hourly SET
                mentions = mentions + (new.sentiment IS NOT NULL) - (old.sentiment IS NOT NULL),
                negative = negative + (new.sentiment IS 'negative') - (old.sentiment IS 'negative'),
                neutral = neutral + (new.sentiment IS 'neutral') - (old.sentiment IS 'neutral'),
                positive = positive + (new.sentiment IS 'positive') - (old.sentiment IS 'positive'),
                p_negative = p_negative + coalesce(CASE WHEN new.sentiment IS NOT NULL THEN new.p_negative END, 0)
                                        - coalesce(CASE WHEN old.sentiment IS NOT NULL THEN old.p_negative END, 0)
            WHERE hour = substr(new.published_at, 1, 13) || ':00:00Z'
              AND topic IN (SELECT topic FROM mention_topics WHERE mention_id = new.id);
            INSERT OR IGNORE INTO hashtag_hourly (topic, hashtag, hour)
                SELECT t.topic, h.hashtag, substr(new.published_at, 1, 13) || ':00:00Z'
                FROM mention_topics t JOIN hashtags h ON h.mention_id = t.mention_id WHERE t.mention_id = new.id;
            UPDATE hashtag_hourly SET
                mentions = mentions + (new.sentiment IS NOT NULL) - (old.sentiment IS NOT NULL),
                negative = negative + (new.sentiment IS 'negative') - (old.sentiment IS 'negative'),
                neutral = neutral + (new.sentiment IS 'neutral') - (old.sentiment IS 'neutral'),
                positive = positive + (new.sentiment IS 'positive') - (old.sentiment IS 'positive'),
                p_negative = p_negative + coalesce(CASE WHEN new.sentiment IS NOT NULL THEN new.p_negative END, 0)
                                        - coalesce(CASE WHEN old.sentiment IS NOT NULL THEN old.p_negative END, 0)
            WHERE hour = substr(new.published_at, 1, 13) || ':00:00Z'
              AND topic IN (SELECT topic FROM mention_topics WHERE mention_id = new.id)
              AND hashtag IN (SELECT hashtag FROM hashtags WHERE mention_id = new.id);
        END;

        DROP TRIGGER mention_topic_added;
        CREATE TRIGGER mention_topic_added AFTER INSERT ON mention_topics
        WHEN (SELECT sentiment FROM mentions WHERE id = new.mention_id) IS NOT NULL
        BEGIN
            INSERT OR IGNORE INTO topic_hourly (topic, hour) VALUES (new.topic, substr(new.published_at, 1, 13) || ':00:00Z');
            UPDATE topic_hourly SET mentions = mentions + 1,
                negative = negative + ((SELECT sentiment FROM mentions WHERE id = new.mention_id) = 'negative'),
                neutral = neutral + ((SELECT sentiment FROM mentions WHERE id = new.mention_id) = 'neutral'),
                positive = positive + ((SELECT sentiment FROM mentions WHERE id = new.mention_id) = 'positive'),
                p_negative = p_negative + coalesce((SELECT p_negative FROM mentions WHERE id = new.mention_id), 0)
            WHERE topic = new.topic AND hour = substr(new.published_at, 1, 13) || ':00:00Z';
            INSERT OR IGNORE INTO hashtag_hourly (topic, hashtag, hour)
                SELECT new.topic, hashtag, substr(new.published_at, 1, 13) || ':00:00Z' FROM hashtags WHERE mention_id = new.mention_id;
            UPDATE hashtag_hourly SET mentions = mentions + 1,
                negative = negative + ((SELECT sentiment FROM mentions WHERE id = new.mention_id) = 'negative'),
                neutral = neutral + ((SELECT sentiment FROM mentions WHERE id = new.mention_id) = 'neutral'),
                positive = positive + ((SELECT sentiment FROM mentions WHERE id = new.mention_id) = 'positive'),
                p_negative = p_negative + coalesce((SELECT p_negative FROM mentions WHERE id = new.mention_id), 0)
            WHERE topic = new.topic AND hour = substr(new.published_at, 1, 13) || ':00:00Z'
              AND hashtag IN (SELECT hashtag FROM hashtags WHERE mention_id = new.mention_id);
        END;

        -- alerts on one topic that overlap in time: one incident, one notification when it opens
        -- (and when it grows materially), one when it closes
        CREATE TABLE incidents (
            id INTEGER PRIMARY KEY,
            topic TEXT NOT NULL,
            state TEXT NOT NULL,             -- open / closed
            opened_at TEXT NOT NULL,         -- when its first alert fired
            notified_at TEXT,                -- when the opening notice was queued (NULL: not yet)
            last_notified_at TEXT,
            closed_at TEXT,
            lead_rule TEXT,                  -- the alert its notices are about (a backlash first)
            lead_labels TEXT,
            lead TEXT,                       -- JSON: that alert's last summary and numbers
            summary TEXT,                    -- the lead's last summary, in plain words
            peak REAL,                       -- highest mentions/h seen by its alerts
            peak_at TEXT,
            hashtags TEXT NOT NULL DEFAULT '[]',  -- JSON list: every hashtag involved
            rules TEXT NOT NULL DEFAULT '[]',     -- JSON list: every rule that fired in it
            members TEXT NOT NULL DEFAULT '[]',   -- JSON list of "rule|labels": every alert instance in it
            announced TEXT NOT NULL DEFAULT '[]', -- JSON list: the members its messages have named
            notifications INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX incidents_open ON incidents(topic) WHERE state = 'open';
        CREATE INDEX incidents_opened ON incidents(opened_at);
        ALTER TABLE alert_events ADD COLUMN incident_id INTEGER;
        -- what a rule could not do yet, in words ("learning: 2 of 7 days")
        ALTER TABLE rule_evaluations ADD COLUMN status TEXT;
        """
    )


@migration
def m005_outbox_given_up(db: sqlite_utils.Database) -> None:
    """A notification that cannot ever be delivered (a webhook answering 404) is given up, not retried."""
    db.executescript(
        """
        ALTER TABLE outbox ADD COLUMN given_up_at TEXT;
        DROP INDEX outbox_pending;
        CREATE INDEX outbox_pending ON outbox(next_attempt_at) WHERE sent_at IS NULL AND given_up_at IS NULL;
        """
    )


@migration
def m006_topic_negative_spread(db: sqlite_utils.Database) -> None:
    """topic_hourly also sums P(negative)^2: how spread one post's P(negative) is on each topic (the
    model is surer of itself on some topics and languages than on others), kept by two triggers of
    their own beside the rollup's (each makes sure its row exists: trigger order is not defined)."""
    db.executescript(
        """
        ALTER TABLE topic_hourly ADD COLUMN p_negative_sq REAL NOT NULL DEFAULT 0;
        UPDATE topic_hourly SET p_negative_sq = coalesce((
            SELECT sum(m.p_negative * m.p_negative) FROM mention_topics t JOIN mentions m ON m.id = t.mention_id
            WHERE t.topic = topic_hourly.topic AND m.sentiment IS NOT NULL
              AND substr(t.published_at, 1, 13) || ':00:00Z' = topic_hourly.hour), 0);

        CREATE TRIGGER mentions_scored_spread AFTER UPDATE OF sentiment, p_negative ON mentions
        WHEN old.sentiment IS NOT new.sentiment OR old.p_negative IS NOT new.p_negative
        BEGIN
            INSERT OR IGNORE INTO topic_hourly (topic, hour)
                SELECT topic, substr(new.published_at, 1, 13) || ':00:00Z' FROM mention_topics WHERE mention_id = new.id;
            UPDATE topic_hourly SET
                p_negative_sq = p_negative_sq
                    + coalesce(CASE WHEN new.sentiment IS NOT NULL THEN new.p_negative * new.p_negative END, 0)
                    - coalesce(CASE WHEN old.sentiment IS NOT NULL THEN old.p_negative * old.p_negative END, 0)
            WHERE hour = substr(new.published_at, 1, 13) || ':00:00Z'
              AND topic IN (SELECT topic FROM mention_topics WHERE mention_id = new.id);
        END;

        CREATE TRIGGER mention_topic_added_spread AFTER INSERT ON mention_topics
        WHEN (SELECT sentiment FROM mentions WHERE id = new.mention_id) IS NOT NULL
        BEGIN
            INSERT OR IGNORE INTO topic_hourly (topic, hour) VALUES (new.topic, substr(new.published_at, 1, 13) || ':00:00Z');
            UPDATE topic_hourly SET p_negative_sq = p_negative_sq
                + coalesce((SELECT p_negative * p_negative FROM mentions WHERE id = new.mention_id), 0)
            WHERE topic = new.topic AND hour = substr(new.published_at, 1, 13) || ':00:00Z';
        END;
        """
    )


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


# ---------------------------------------------------------------- read-only SQL
READONLY_CACHE_KB = 16_384  # page cache of a read-only query
READONLY_MAX_VALUE = 10_000_000  # bytes: the longest string or blob a read-only query may make
# PRAGMAs that only describe the schema: the ones read-only SQL may use (without setting anything).
READONLY_PRAGMAS = frozenset({
    "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list",
    "collation_list", "function_list", "pragma_list", "compile_options", "user_version", "schema_version",
    "data_version", "page_count", "page_size", "freelist_count", "encoding",
})
_DENIED = {
    sqlite3.SQLITE_ATTACH: "ATTACH", sqlite3.SQLITE_DETACH: "DETACH",
    **{getattr(sqlite3, f"SQLITE_{a}"): a.replace("_", " ") for a in (
        "INSERT", "UPDATE", "DELETE", "CREATE_TABLE", "CREATE_INDEX", "CREATE_VIEW", "CREATE_TRIGGER",
        "CREATE_TEMP_TABLE", "CREATE_TEMP_INDEX", "CREATE_TEMP_VIEW", "CREATE_TEMP_TRIGGER", "DROP_TABLE",
        "DROP_INDEX", "DROP_VIEW", "DROP_TRIGGER", "DROP_TEMP_TABLE", "DROP_TEMP_INDEX", "DROP_TEMP_VIEW",
        "DROP_TEMP_TRIGGER", "ALTER_TABLE", "REINDEX", "ANALYZE", "CREATE_VTABLE", "DROP_VTABLE")},
}


def _readonly_authorizer(denied: list[str], action: int, arg1, arg2, db_name, trigger) -> int:
    """SQLite's authorizer for user SQL: reads of the main database only. ATTACH (which creates
    files, also as `file:...?mode=rwc` and inside VACUUM INTO), writes, and PRAGMAs that set
    something are refused before they run."""
    name = _DENIED.get(action)
    if name is None and action == sqlite3.SQLITE_PRAGMA:
        pragma = (arg1 or "").lower()
        if pragma not in READONLY_PRAGMAS or (arg2 is not None and pragma not in (
                "table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list", "table_list")):
            name = f"PRAGMA {pragma}"
    if name is None and action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in ("load_extension", "readfile",
                                                                                        "writefile", "edit"):
        name = f"the function {arg2}"
    if name is None:
        return sqlite3.SQLITE_OK
    denied.append(name)
    return sqlite3.SQLITE_DENY


def check_select(sql: str, params: Sequence[str] = ()) -> str | None:
    """Why `sql` would fail on the mention database (compiled against the real schema), or None."""
    conn = sqlite3.connect(":memory:")
    try:
        db = sqlite_utils.Database(conn)
        for _, fn in MIGRATIONS:
            fn(db)
        conn.execute("PRAGMA query_only = 1")
        conn.execute("EXPLAIN " + sql, {p: None for p in params})
        return None
    except (sqlite3.Error, sqlite3.Warning) as exc:
        return str(exc)
    finally:
        conn.close()



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
        conn.execute(f"PRAGMA cache_size = -{READONLY_CACHE_KB}")
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, READONLY_MAX_VALUE)  # no gigabyte strings or blobs
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        denied: list[str] = []
        conn.set_authorizer(lambda *args: _readonly_authorizer(denied, *args))
        deadline = time.monotonic() + time_limit
        conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10_000)
        try:
            cur = conn.execute(sql, params or ())
            columns = [c[0] for c in cur.description] if cur.description else []
            rows = cur.fetchmany(max_rows) if max_rows else cur.fetchall()
        except sqlite3.DatabaseError as exc:
            if denied:
                raise StoreError(f"{denied[0]} is not allowed: the database is read-only here (SELECT queries on "
                                 "the mention database only: no writes, no ATTACH, no PRAGMA that sets anything)") from exc
            if "too big" in str(exc):
                raise StoreError(f"SQL error: {exc} (a value may be at most {READONLY_MAX_VALUE:,} bytes here)") from exc
            if not isinstance(exc, sqlite3.OperationalError):
                raise StoreError(f"SQL error: {exc}") from exc
            if "interrupted" in str(exc):
                raise StoreError(f"query stopped after the {time_limit:g}s time limit") from exc
            if "readonly" in str(exc) or "read-only" in str(exc) or "attempt to write" in str(exc):
                raise StoreError("the database is opened read-only here: only SELECT queries are allowed") from exc
            raise StoreError(f"SQL error: {exc}") from exc
        return QueryResult(columns, rows)
    finally:
        conn.close()

