"""Migration m002: rollups alerts outbox. Released: never edited; a change is a new migration."""

from __future__ import annotations

import sqlite_utils


def up(db: sqlite_utils.Database) -> None:
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
