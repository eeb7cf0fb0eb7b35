"""Migration m006: topic negative spread. Released: never edited; a change is a new migration."""

from __future__ import annotations

import sqlite_utils


def up(db: sqlite_utils.Database) -> None:
    """topic_hourly also sums P(negative)^2: how spread one post's P(negative) is on each topic (the
    model is surer of itself on some topics and languages than on others), kept by two triggers of
    their own beside the rollup's (each makes sure its row exists: trigger order is not defined)."""
    db.executescript(
        """
        ALTER TABLE topic_hourly ADD COLUMN p_negative_sq REAL NOT NULL DEFAULT 0;
        UPDATE topic_hourly SET p_negative_sq = coalesce((
            SELECT sum(m.p_negative * m.p_negative) FROM mention_topics t JOIN mentions m ON m.id = t.mention_id
            WHERE t.topic = topic_hourly.topic AND m.sentiment IS NOT NULL
              AND substr(t.published_at, 1, 13) || ':00:00Z' = topic_hourly.hour),
            -- an hour whose mentions were pruned: the default spread (0.35) around its mean, not none
            CASE WHEN mentions > 0 THEN p_negative * p_negative / mentions + mentions * 0.1225 ELSE 0 END);

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
