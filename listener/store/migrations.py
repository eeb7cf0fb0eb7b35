"""The SQLite engine's schema, as the migrations that build it, applied in order on open and
recorded in `_migrations` (`SQLiteBase.migrate`).

The hourly rollups (`topic_hourly`, `hashtag_hourly`, `topic_breakdown_hourly`) are kept by the
triggers defined here (m002, m003, m004, m006): part of the store's contract (`listener.store.
interface` names what reads them), not an implementation detail; another engine keeps the same
tables its own way. A migration is never edited once released; a change is a new one (so m004
and m006 restate m002's triggers with more columns). One file, read top to bottom as the history
of the schema, mostly SQL text.
"""

from __future__ import annotations

from typing import Callable

import sqlite_utils

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


@migration
def m007_corrections(db: sqlite_utils.Database) -> None:
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
