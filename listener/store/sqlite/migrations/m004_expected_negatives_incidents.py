"""Migration m004: expected negatives incidents. Released: never edited; a change is a new migration."""

from __future__ import annotations

import sqlite_utils


def up(db: sqlite_utils.Database) -> None:
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
