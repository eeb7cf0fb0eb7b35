"""The mention database on SQLite: the first engine behind `listener.store.MentionStore`.

One SQLite file in WAL mode. Tables (documented in the README, stable for users' SQL):
`mentions`, `mention_topics`, `hashtags`, `sources`, `fetches`, `mentions_fts` (FTS5 over
title and text), the rollups kept by triggers (`topic_hourly`, `hashtag_hourly`,
`topic_breakdown_hourly` per hour, `topic_author_daily` per day), alert state and history, the `outbox`, `job_runs`, the team's
`corrections` and `_migrations`; views `topic_daily`, `hashtag_daily` and `mention_details`.
Times are UTC ISO-8601 strings (`2026-11-22T08:00:00Z`), which sort and compare as text and work
with SQLite's date functions.

`SQLiteStore` is put together from one part per group of the interface:

- `connection`: opening the file, migrating it, transactions, rows as dicts;
- `ingest`: storing fetches and imports (dedup, topics, hashtags, source state, fetch log);
- `sources`: source health, failures and the fetch log;
- `mentions`: scoring, search, export, counts;
- `matching`: the newest mentions a query matches (an index walked in windows, or FTS5 leading);
- `alert_reads`: windows and hourly rollups for alert kinds;
- `digest_reads`: the digest's counts per period and top mentions;
- `outbox`, `alert_state`: notifications; alert instances, events, incidents, evaluations;
- `workers`: leases and claims, so that several workers share one database;
- `transfer`: whole tables in and out, for `listener db copy`;
- `pruning`: retention and the job log;
- `dashboard`: the web dashboard's filtered mentions, engagement and authors (rollups), outages and incidents;
- `readonly`: users' SQL on a read-only connection;
- `corrections`: the team's corrections of sentiment and relevance, the mention's label from then on.
"""

from listener.store.sqlite.alert_reads import SQLiteAlertReads
from listener.store.sqlite.alert_state import SQLiteAlertState
from listener.store.sqlite.connection import BUSY_TIMEOUT_MS, SQLiteBase, Transaction
from listener.store.sqlite.dashboard import SQLiteDashboard
from listener.store.sqlite.corrections import SQLiteCorrections
from listener.store.sqlite.digest_reads import SQLiteDigestReads
from listener.store.sqlite.ingest import SQLiteIngest
from listener.store.sqlite.mentions import SQLiteMentions
from listener.store.sqlite.pruning import SQLitePruning
from listener.store.sqlite.readonly import SQLiteReadOnly, check_select, run_readonly
from listener.store.sqlite.sources import SQLiteSourceReads
from listener.store.sqlite.transfer import SQLiteTransfer
from listener.store.sqlite.workers import SQLiteWorkers


class SQLiteStore(SQLiteIngest, SQLiteSourceReads, SQLiteMentions, SQLiteReadOnly, SQLiteAlertReads,
                  SQLiteDigestReads, SQLiteDashboard, SQLiteAlertState, SQLiteWorkers, SQLitePruning, SQLiteCorrections,
                  SQLiteTransfer):
    """The mention database in one SQLite file at `path` (created and migrated on open)."""


__all__ = ["SQLiteStore", "SQLiteBase", "Transaction", "BUSY_TIMEOUT_MS", "run_readonly", "check_select"]
