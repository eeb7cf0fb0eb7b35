"""Migration m001: initial. Released: never edited; a change is a new migration."""

from __future__ import annotations

import sqlite_utils


def up(db: sqlite_utils.Database) -> None:
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
