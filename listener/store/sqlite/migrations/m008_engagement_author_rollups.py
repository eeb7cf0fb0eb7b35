"""Migration m008: engagement and author rollups. Released: never edited; a change is a new migration."""

from __future__ import annotations

import sqlite_utils


def _engagement(row: str) -> str:
    """A mention's engagement (likes + reposts + replies + score, as `mention_details` says) in SQL."""
    return (f"(coalesce({row}.likes, 0) + coalesce({row}.reposts, 0) + coalesce({row}.replies, 0)"
            f" + coalesce({row}.score, 0))")


NEW, OLD, M = _engagement("new"), _engagement("old"), _engagement("m")


def up(db: sqlite_utils.Database) -> None:
    """The dashboard's share of voice by engagement and its top authors from rollups, not the mentions:
    `topic_hourly` also sums the engagement of its scored mentions per sentiment, and
    `topic_author_daily` counts scored mentions per topic, UTC day and author (with their engagement).
    Kept by triggers of their own beside m002's, m003's and m007's (each makes sure its row exists:
    trigger order is not defined): a mention scored, re-scored or corrected moves its engagement between
    sentiments; a duplicate that refreshes likes, reposts, replies or score moves it by the difference;
    a topic linked to a scored mention adds it; a link removed because the mention is not relevant takes
    it out; pruning keeps it. Backfilled from the stored mentions: an hour or day whose mentions were
    pruned before this migration has no engagement (0) and no authors."""
    db.executescript(
        f"""
        ALTER TABLE topic_hourly ADD COLUMN negative_engagement INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE topic_hourly ADD COLUMN neutral_engagement INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE topic_hourly ADD COLUMN positive_engagement INTEGER NOT NULL DEFAULT 0;
        UPDATE topic_hourly SET negative_engagement = g.negative, neutral_engagement = g.neutral,
                                positive_engagement = g.positive
        FROM (SELECT t.topic, substr(t.published_at, 1, 13) || ':00:00Z' AS hour,
                     sum((m.sentiment = 'negative') * {M}) AS negative, sum((m.sentiment = 'neutral') * {M}) AS neutral,
                     sum((m.sentiment = 'positive') * {M}) AS positive
              FROM mention_topics t JOIN mentions m ON m.id = t.mention_id
              WHERE m.sentiment IS NOT NULL GROUP BY 1, 2) AS g
        WHERE topic_hourly.topic = g.topic AND topic_hourly.hour = g.hour;

        -- scored mentions per topic per UTC day (day = 'YYYY-MM-DD' of published_at) per author
        CREATE TABLE topic_author_daily (
            topic TEXT NOT NULL, day TEXT NOT NULL, author TEXT NOT NULL,
            mentions INTEGER NOT NULL DEFAULT 0, negative INTEGER NOT NULL DEFAULT 0,
            neutral INTEGER NOT NULL DEFAULT 0, positive INTEGER NOT NULL DEFAULT 0,
            engagement INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (topic, day, author)
        ) WITHOUT ROWID;
        INSERT INTO topic_author_daily (topic, day, author, mentions, negative, neutral, positive, engagement)
            SELECT t.topic, substr(t.published_at, 1, 10), m.author, count(*), sum(m.sentiment = 'negative'),
                   sum(m.sentiment = 'neutral'), sum(m.sentiment = 'positive'), sum({M})
            FROM mention_topics t JOIN mentions m ON m.id = t.mention_id
            WHERE m.sentiment IS NOT NULL AND m.author IS NOT NULL GROUP BY 1, 2, 3;

        -- scored, re-scored or corrected (its engagement changes sentiment), or its engagement refreshed
        CREATE TRIGGER mentions_engagement AFTER UPDATE OF sentiment, likes, reposts, replies, score ON mentions
        WHEN old.sentiment IS NOT new.sentiment OR (new.sentiment IS NOT NULL AND {OLD} != {NEW})
        BEGIN
            INSERT OR IGNORE INTO topic_hourly (topic, hour)
                SELECT topic, substr(new.published_at, 1, 13) || ':00:00Z' FROM mention_topics
                WHERE mention_id = new.id AND new.sentiment IS NOT NULL;
            UPDATE topic_hourly SET
                negative_engagement = negative_engagement + (new.sentiment IS 'negative') * {NEW}
                                                          - (old.sentiment IS 'negative') * {OLD},
                neutral_engagement = neutral_engagement + (new.sentiment IS 'neutral') * {NEW}
                                                        - (old.sentiment IS 'neutral') * {OLD},
                positive_engagement = positive_engagement + (new.sentiment IS 'positive') * {NEW}
                                                          - (old.sentiment IS 'positive') * {OLD}
            WHERE hour = substr(new.published_at, 1, 13) || ':00:00Z'
              AND topic IN (SELECT topic FROM mention_topics WHERE mention_id = new.id);
            INSERT INTO topic_author_daily (topic, day, author, mentions, negative, neutral, positive, engagement)
                SELECT topic, substr(new.published_at, 1, 10), new.author,
                       (new.sentiment IS NOT NULL) - (old.sentiment IS NOT NULL),
                       (new.sentiment IS 'negative') - (old.sentiment IS 'negative'),
                       (new.sentiment IS 'neutral') - (old.sentiment IS 'neutral'),
                       (new.sentiment IS 'positive') - (old.sentiment IS 'positive'),
                       (new.sentiment IS NOT NULL) * {NEW} - (old.sentiment IS NOT NULL) * {OLD}
                FROM mention_topics WHERE mention_id = new.id AND new.author IS NOT NULL
            ON CONFLICT (topic, day, author) DO UPDATE SET
                mentions = mentions + excluded.mentions, negative = negative + excluded.negative,
                neutral = neutral + excluded.neutral, positive = positive + excluded.positive,
                engagement = engagement + excluded.engagement;
            DELETE FROM topic_author_daily WHERE day = substr(new.published_at, 1, 10) AND author = new.author
              AND mentions = 0 AND topic IN (SELECT topic FROM mention_topics WHERE mention_id = new.id);
        END;

        -- one more topic linked to a mention already scored (the same URL from another source)
        CREATE TRIGGER mention_topic_added_engagement AFTER INSERT ON mention_topics
        WHEN EXISTS (SELECT 1 FROM mentions WHERE id = new.mention_id AND sentiment IS NOT NULL)
        BEGIN
            INSERT OR IGNORE INTO topic_hourly (topic, hour) VALUES (new.topic, substr(new.published_at, 1, 13) || ':00:00Z');
            UPDATE topic_hourly SET negative_engagement = negative_engagement + (m.s = 'negative') * m.e,
                neutral_engagement = neutral_engagement + (m.s = 'neutral') * m.e,
                positive_engagement = positive_engagement + (m.s = 'positive') * m.e
            FROM (SELECT m.sentiment AS s, {M} AS e FROM mentions m WHERE m.id = new.mention_id) AS m
            WHERE topic = new.topic AND hour = substr(new.published_at, 1, 13) || ':00:00Z';
            INSERT INTO topic_author_daily (topic, day, author, mentions, negative, neutral, positive, engagement)
                SELECT new.topic, substr(new.published_at, 1, 10), m.author, 1, m.sentiment = 'negative',
                       m.sentiment = 'neutral', m.sentiment = 'positive', {M}
                FROM mentions m WHERE m.id = new.mention_id AND m.author IS NOT NULL
            ON CONFLICT (topic, day, author) DO UPDATE SET
                mentions = mentions + excluded.mentions, negative = negative + excluded.negative,
                neutral = neutral + excluded.neutral, positive = positive + excluded.positive,
                engagement = engagement + excluded.engagement;
        END;

        -- a topic link removed because the mention is not relevant to it (m007): out of these rollups too
        CREATE TRIGGER mention_topic_not_relevant_engagement AFTER DELETE ON mention_topics
        WHEN (SELECT sentiment FROM mentions WHERE id = old.mention_id) IS NOT NULL
         AND EXISTS (SELECT 1 FROM corrections WHERE mention_id = old.mention_id AND label = 'not relevant'
                     AND (topic IS NULL OR topic = old.topic))
        BEGIN
            UPDATE topic_hourly SET negative_engagement = negative_engagement - (m.s = 'negative') * m.e,
                neutral_engagement = neutral_engagement - (m.s = 'neutral') * m.e,
                positive_engagement = positive_engagement - (m.s = 'positive') * m.e
            FROM (SELECT m.sentiment AS s, {M} AS e FROM mentions m WHERE m.id = old.mention_id) AS m
            WHERE topic = old.topic AND hour = substr(old.published_at, 1, 13) || ':00:00Z';
            UPDATE topic_author_daily SET mentions = mentions - 1, negative = negative - (m.s = 'negative'),
                neutral = neutral - (m.s = 'neutral'), positive = positive - (m.s = 'positive'),
                engagement = engagement - m.e
            FROM (SELECT m.sentiment AS s, m.author AS a, {M} AS e FROM mentions m WHERE m.id = old.mention_id) AS m
            WHERE topic = old.topic AND day = substr(old.published_at, 1, 10) AND author = m.a;
            -- an author left with nothing that day is not shown with 0
            DELETE FROM topic_author_daily WHERE topic = old.topic AND day = substr(old.published_at, 1, 10)
              AND author = (SELECT author FROM mentions WHERE id = old.mention_id) AND mentions = 0;
        END;
        """
    )
