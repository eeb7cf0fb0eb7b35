"""Migration m003: digest rollups views jobs. Released: never edited; a change is a new migration."""

from __future__ import annotations

import sqlite_utils


def up(db: sqlite_utils.Database) -> None:
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
