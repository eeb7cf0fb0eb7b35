"""The SQLite engine's schema, as the migrations that build it, applied in order on open and
recorded in `_migrations` (`SQLiteBase.migrate`).

The rollups (`topic_hourly`, `hashtag_hourly`, `topic_breakdown_hourly` per hour; `topic_author_daily`
per day) are kept by the triggers defined here (m002, m003, m004, m006, m007, m008): part of the
store's contract (`listener.store.interface` names what reads them), not an implementation detail;
another engine keeps the same tables its own way. A migration is never edited once released; a change is a new one (so m004
and m006 restate m002's triggers with more columns). One module per migration, mostly SQL text,
listed here in the order they run: read in that order, they are the history of the schema.
"""

from __future__ import annotations

from typing import Callable

import sqlite_utils

from listener.store.sqlite.migrations import (m001_initial, m002_rollups_alerts_outbox, m003_digest_rollups_views_jobs,
                                              m004_expected_negatives_incidents, m005_outbox_given_up,
                                              m006_topic_negative_spread, m007_corrections,
                                              m008_engagement_author_rollups, m009_hashtag_hourly_covering,
                                              m010_workers, m011_fts_by_statement)

# (name recorded in `_migrations`, the function that applies it), in the order they run
MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("m001_initial", m001_initial.up),
    ("m002_rollups_alerts_outbox", m002_rollups_alerts_outbox.up),
    ("m003_digest_rollups_views_jobs", m003_digest_rollups_views_jobs.up),
    ("m004_expected_negatives_incidents", m004_expected_negatives_incidents.up),
    ("m005_outbox_given_up", m005_outbox_given_up.up),
    ("m006_topic_negative_spread", m006_topic_negative_spread.up),
    ("m007_corrections", m007_corrections.up),
    ("m008_engagement_author_rollups", m008_engagement_author_rollups.up),
    ("m009_hashtag_hourly_covering", m009_hashtag_hourly_covering.up),
    ("m010_workers", m010_workers.up),
    ("m011_fts_by_statement", m011_fts_by_statement.up),
]
