"""Migration m007: corrections. Released: never edited; a change is a new migration."""

from __future__ import annotations

import sqlite_utils


def up(db: sqlite_utils.Database) -> None:
    """The team's corrections of the model: a mention's sentiment, or the mention not relevant to one
    topic (or to all of its topics). One current correction per mention and kind (its sentiment; not
    relevant to a topic, or to all): a later one replaces it. The store writes the corrected label into
    `mentions` (so m002's triggers move the rollups) and removes a not-relevant mention's topic links;
    the trigger on that removal takes it out of the rollups (pruning, which removes links too, keeps
    its counts: no correction names them), and the trigger on insert keeps it from being linked again."""
    db.executescript(
        """
        CREATE TABLE corrections (
            id INTEGER PRIMARY KEY,
            mention_id INTEGER NOT NULL REFERENCES mentions(id) ON DELETE CASCADE,
            topic TEXT,                      -- not relevant to this topic; NULL: to all of them (or a sentiment)
            label TEXT NOT NULL CHECK (label IN ('negative', 'neutral', 'positive', 'not relevant')),
            model_sentiment TEXT,            -- the model's label before (NULL: not scored yet)
            model_p_negative REAL, model_p_neutral REAL, model_p_positive REAL,
            model TEXT,                      -- the model that gave it
            corrected_by TEXT NOT NULL,
            corrected_at TEXT NOT NULL,
            CHECK (topic IS NULL OR label = 'not relevant')
        );
        CREATE UNIQUE INDEX corrections_current ON corrections(mention_id, label = 'not relevant', coalesce(topic, ''));
        CREATE INDEX corrections_at ON corrections(corrected_at);

        -- a topic link removed because the mention is not relevant to it: out of the topic's rollups
        CREATE TRIGGER mention_topic_not_relevant AFTER DELETE ON mention_topics
        WHEN (SELECT sentiment FROM mentions WHERE id = old.mention_id) IS NOT NULL
         AND EXISTS (SELECT 1 FROM corrections WHERE mention_id = old.mention_id AND label = 'not relevant'
                     AND (topic IS NULL OR topic = old.topic))
        BEGIN
            UPDATE topic_hourly SET mentions = mentions - 1, negative = negative - (m.s = 'negative'),
                neutral = neutral - (m.s = 'neutral'), positive = positive - (m.s = 'positive'),
                p_negative = p_negative - coalesce(m.p, 0), p_negative_sq = p_negative_sq - coalesce(m.p * m.p, 0)
            FROM (SELECT sentiment AS s, p_negative AS p FROM mentions WHERE id = old.mention_id) AS m
            WHERE topic = old.topic AND hour = substr(old.published_at, 1, 13) || ':00:00Z';
            UPDATE hashtag_hourly SET mentions = mentions - 1, negative = negative - (m.s = 'negative'),
                neutral = neutral - (m.s = 'neutral'), positive = positive - (m.s = 'positive'),
                p_negative = p_negative - coalesce(m.p, 0)
            FROM (SELECT sentiment AS s, p_negative AS p FROM mentions WHERE id = old.mention_id) AS m
            WHERE topic = old.topic AND hour = substr(old.published_at, 1, 13) || ':00:00Z'
              AND hashtag IN (SELECT hashtag FROM hashtags WHERE mention_id = old.mention_id);
            UPDATE topic_breakdown_hourly SET mentions = mentions - 1, negative = negative - (m.s = 'negative'),
                neutral = neutral - (m.s = 'neutral'), positive = positive - (m.s = 'positive')
            FROM (SELECT source AS src, coalesce(language, '') AS lang, sentiment AS s FROM mentions
                  WHERE id = old.mention_id) AS m
            WHERE topic = old.topic AND hour = substr(old.published_at, 1, 13) || ':00:00Z'
              AND source = m.src AND language = m.lang;
            -- an hour, hashtag, source or language left with nothing is not shown with 0
            DELETE FROM topic_hourly WHERE topic = old.topic AND hour = substr(old.published_at, 1, 13) || ':00:00Z'
              AND mentions = 0;
            DELETE FROM hashtag_hourly WHERE topic = old.topic AND hour = substr(old.published_at, 1, 13) || ':00:00Z'
              AND mentions = 0;
            DELETE FROM topic_breakdown_hourly WHERE topic = old.topic
              AND hour = substr(old.published_at, 1, 13) || ':00:00Z' AND mentions = 0;
        END;

        -- the same mention fetched or imported again is not linked to a topic it is not relevant to
        CREATE TRIGGER mention_topic_kept_out BEFORE INSERT ON mention_topics
        WHEN EXISTS (SELECT 1 FROM corrections WHERE mention_id = new.mention_id AND label = 'not relevant'
                     AND (topic IS NULL OR topic = new.topic))
        BEGIN
            SELECT RAISE(IGNORE);
        END;
        """
    )
